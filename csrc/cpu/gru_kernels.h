// Building blocks of the fused CPU kernels (scan.cpp, decode.cpp, sample.cpp).
//
// Each kernel splits the batch rows over threads (at::parallel_for) and every thread runs the
// whole time loop for its rows: no synchronisation between steps. Per step the work is a small
// GEMM (rows x K times a pre-transposed weight K x N, K and N the GRU sizes) plus fused gate
// arithmetic, both written as plain loops that GCC vectorises: the weights stay hot in the
// core's L2 (W_hh is 768 KiB at H=256 in float32) for all steps.
//
// float kernels are compiled for AVX-512, AVX2 and baseline x86-64 (target_clones: the loader
// picks the best the CPU has); double (used by the tests) takes the generic path.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define RNNGEN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define RNNGEN_CLONES
#endif
#define RNNGEN_INLINE inline __attribute__((always_inline))

namespace rnngen::cpu {

// exp(x) for float without a library call, so loops of it vectorise: 2^n * p(r) with
// r = x - n ln2, Cephes' degree-6 polynomial (about 1 ulp). Saturates at ~1.7e38 / 2^-126
// instead of inf / 0 (harmless in sigmoid and tanh); NaN stays NaN.
RNNGEN_INLINE float exp_fast(float x) {
  x = x < -87.3f ? -87.3f : x;  // comparisons with NaN are false: NaN passes through
  x = x > 88.0f ? 88.0f : x;
  float n = std::floor(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t e = static_cast<int32_t>(n == n ? n : 0.0f) + 127;  // n is NaN only for NaN x
  return p * __builtin_bit_cast(float, e << 23);
}

RNNGEN_INLINE double exp_fast(double x) { return std::exp(x); }

template <typename T>
RNNGEN_INLINE T sigmoid(T x) {
  return T(1) / (T(1) + exp_fast(-x));
}

template <typename T>
RNNGEN_INLINE T tanh_fast(T x) {
  return T(1) - T(2) / (T(1) + exp_fast(T(2) * x));
}

// out[r, n] = bias[n] + sum_k x[r, k] * wt[k, n] for r < rows, n < N. x rows are ldx apart,
// out rows ldo apart; wt is K x N contiguous; bias may be null. Four rows at a time against a
// column tile, four k at a time, so each accumulator load/store feeds four FMAs.
template <typename T>
RNNGEN_INLINE void gemm_rows_impl(const T* __restrict__ x, int64_t ldx, int64_t rows,
                                  const T* __restrict__ wt, int64_t K, int64_t N,
                                  const T* __restrict__ bias, T* __restrict__ out, int64_t ldo) {
  constexpr int64_t RB = 4, NB = 256;
  T acc[RB][NB];
  for (int64_t n0 = 0; n0 < N; n0 += NB) {
    const int64_t nb = std::min(NB, N - n0);
    for (int64_t r0 = 0; r0 < rows; r0 += RB) {
      const int64_t rb = std::min(RB, rows - r0);
      for (int64_t r = 0; r < rb; ++r) {
        if (bias) {
          std::memcpy(acc[r], bias + n0, nb * sizeof(T));
        } else {
          std::fill(acc[r], acc[r] + nb, T(0));
        }
      }
      int64_t k = 0;
      for (; k + 4 <= K; k += 4) {
        const T* w0 = wt + k * N + n0;
        const T* w1 = w0 + N;
        const T* w2 = w1 + N;
        const T* w3 = w2 + N;
        for (int64_t r = 0; r < rb; ++r) {
          const T* xr = x + (r0 + r) * ldx + k;
          const T x0 = xr[0], x1 = xr[1], x2 = xr[2], x3 = xr[3];
          T* a = acc[r];
#pragma omp simd
          for (int64_t n = 0; n < nb; ++n) a[n] += x0 * w0[n] + x1 * w1[n] + x2 * w2[n] + x3 * w3[n];
        }
      }
      for (; k < K; ++k) {
        const T* w0 = wt + k * N + n0;
        for (int64_t r = 0; r < rb; ++r) {
          const T x0 = x[(r0 + r) * ldx + k];
          T* a = acc[r];
#pragma omp simd
          for (int64_t n = 0; n < nb; ++n) a[n] += x0 * w0[n];
        }
      }
      for (int64_t r = 0; r < rb; ++r) std::memcpy(out + (r0 + r) * ldo + n0, acc[r], nb * sizeof(T));
    }
  }
}

// One GRU step for one row, every unit: h_new = (1 - z) n + z h (gate order r, z, n).
template <typename T>
RNNGEN_INLINE void gru_row_impl(const T* __restrict__ gi, const T* __restrict__ gh, const T* h,
                                T* h_new, int64_t H) {
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    const T r = sigmoid(gi[j] + gh[j]);
    const T z = sigmoid(gi[H + j] + gh[H + j]);
    const T n = tanh_fast(gi[2 * H + j] + r * gh[2 * H + j]);
    h_new[j] = (T(1) - z) * n + z * h[j];
  }
}

// Backward of one GRU step for one row (see rnngen/ops/gru_cell.py step_backward): from dh
// (dL/dh_new) and the step's gi, gh, h fills dgi, dgh (3H each) and dh_direct = dh * z.
template <typename T>
RNNGEN_INLINE void gru_row_backward_impl(const T* __restrict__ dh, const T* __restrict__ gi,
                                         const T* __restrict__ gh, const T* __restrict__ h,
                                         T* __restrict__ dgi, T* __restrict__ dgh,
                                         T* __restrict__ dh_direct, int64_t H) {
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    const T r = sigmoid(gi[j] + gh[j]);
    const T z = sigmoid(gi[H + j] + gh[H + j]);
    const T n = tanh_fast(gi[2 * H + j] + r * gh[2 * H + j]);
    const T d = dh[j];
    const T da_n = d * (T(1) - z) * (T(1) - n * n);
    const T da_z = d * (h[j] - n) * z * (T(1) - z);
    const T da_r = da_n * gh[2 * H + j] * r * (T(1) - r);
    dgi[j] = da_r;
    dgi[H + j] = da_z;
    dgi[2 * H + j] = da_n;
    dgh[j] = da_r;
    dgh[H + j] = da_z;
    dgh[2 * H + j] = da_n * r;
    dh_direct[j] = d * z;
  }
}

// Entry points: float through target_clones, double generic (defined in gru_kernels.cpp).
// gemm_rows hands blocks of many rows (where a BLAS call's fixed cost is small against the work)
// to ATen's GEMM (MKL or oneDNN), single-threaded inside the caller's thread.
void gemm_rows(const float* x, int64_t ldx, int64_t rows, const float* wt, int64_t K, int64_t N,
               const float* bias, float* out, int64_t ldo);
void gemm_rows(const double* x, int64_t ldx, int64_t rows, const double* wt, int64_t K, int64_t N,
               const double* bias, double* out, int64_t ldo);
void gru_row(const float* gi, const float* gh, const float* h, float* h_new, int64_t H);
void gru_row(const double* gi, const double* gh, const double* h, double* h_new, int64_t H);
void gru_row_backward(const float* dh, const float* gi, const float* gh, const float* h, float* dgi,
                      float* dgh, float* dh_direct, int64_t H);
void gru_row_backward(const double* dh, const double* gi, const double* gh, const double* h, double* dgi,
                      double* dgh, double* dh_direct, int64_t H);

// Columns of a fused weight padded to a multiple of 16 floats, so every row of it starts on a
// 64-byte boundary: [W_a; W_b]^T as one [K, padded(N_a + N_b)] matrix, zeros in the padding.
inline int64_t padded(int64_t n) { return (n + 15) / 16 * 16; }

inline at::Tensor fused_transpose(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor cat = at::cat({a, b});  // [N_a + N_b, K]
  at::Tensor wt = at::zeros({cat.size(1), padded(cat.size(0))}, cat.options());
  wt.narrow(1, 0, cat.size(0)).copy_(cat.t());
  return wt;
}

inline at::Tensor fused_bias(const at::Tensor& a, const at::Tensor& b) {
  return at::constant_pad_nd(at::cat({a, b}), {0, padded(a.size(0) + b.size(0)) - a.size(0) - b.size(0)});
}

// The rows each thread takes: the batch split evenly over the threads (B=1: one thread).
inline int64_t row_grain(int64_t rows) {
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  return std::max<int64_t>(1, (rows + threads - 1) / threads);
}

}  // namespace rnngen::cpu
