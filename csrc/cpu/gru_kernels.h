// Building blocks of the fused CPU kernels (scan.cpp, decode.cpp, sample.cpp).
//
// Each kernel splits the batch rows over threads (at::parallel_for) and every thread runs the
// whole time loop for its rows: no synchronisation between steps. With fewer rows than threads
// the forward kernels split the hidden units instead (units_threads, team.h). Per step the work
// is a small GEMM against weights packed once per call into 64-column tiles (PackedWeight) plus
// fused gate arithmetic: the weights stay hot in the core's L2 (W_hh is 768 KiB at H=256 in
// float32) for all steps.
//
// float kernels are compiled for AVX-512, AVX2 and baseline x86-64 (target_clones: the loader
// picks the best the CPU has); double (used by the tests) takes the generic path.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define RNNGEN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define RNNGEN_CLONES
#endif
#define RNNGEN_INLINE inline __attribute__((always_inline))

#include "gemm_tiles.h"
#include "team.h"

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

// tanh for float without a library call. 1 - 2 / (1 + e^2x) alone loses the relative accuracy
// near 0 to cancellation (measured: 1.7e-4 relative error at x = 1e-4, 1.3e-5 at 1e-3), so
// |x| < 0.625 takes Cephes' odd polynomial x + x^3 P(x^2) instead (about 1 ulp). NaN stays NaN.
RNNGEN_INLINE float tanh_fast(float x) {
  const float z = x * x;
  const float p =
      ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z + 1.33314422036e-1f) * z -
       3.33332819422e-1f) * z * x + x;
  const float q = 1.0f - 2.0f / (1.0f + exp_fast(2.0f * x));
  return std::fabs(x) < 0.625f ? p : q;
}

RNNGEN_INLINE double tanh_fast(double x) { return std::tanh(x); }

// out[r, n] = bias[n] + sum_k x[r, k] * wt[k, n] for r < rows, n < N. Rows of x, wt and out
// are ldx, ldw and ldo apart; bias may be null. Four rows at a time against a column tile, four
// k at a time, so each accumulator load/store feeds four FMAs.
template <typename T>
RNNGEN_INLINE void gemm_rows_impl(const T* __restrict__ x, int64_t ldx, int64_t rows,
                                  const T* __restrict__ wt, int64_t ldw, int64_t K, int64_t N,
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
        const T* w0 = wt + k * ldw + n0;
        const T* w1 = w0 + ldw;
        const T* w2 = w1 + ldw;
        const T* w3 = w2 + ldw;
        for (int64_t r = 0; r < rb; ++r) {
          const T* xr = x + (r0 + r) * ldx + k;
          const T x0 = xr[0], x1 = xr[1], x2 = xr[2], x3 = xr[3];
          T* a = acc[r];
#pragma omp simd
          for (int64_t n = 0; n < nb; ++n) a[n] += x0 * w0[n] + x1 * w1[n] + x2 * w2[n] + x3 * w3[n];
        }
      }
      for (; k < K; ++k) {
        const T* w0 = wt + k * ldw + n0;
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

// Writes rows[0 .. 64 tiles) (K contiguous values each) as PackedWeight's tiles at dst: float32
// [tiles][K][64], or [tiles][K][32] bf16 pairs when pairs (float only). In gru_kernels.cpp.
void pack_tiles(const float* const* rows, int64_t K, int64_t tiles, bool pairs, void* dst);
void pack_tiles(const double* const* rows, int64_t K, int64_t tiles, bool pairs, void* dst);

// Weights packed for the per-step GEMM out = x @ W^T (W is [N, K]): columns in tiles of 64, each
// tile's K x 64 block contiguous, so the K loop streams memory in order; the last N % 64
// rows of W (the last N % 64 columns of out) stay plain, each done as a dot product. (Measured on a Sapphire Rapids core: faster than an
// MKL call per step from 1 to 64 rows, where a call's fixed cost and a GEMM shape this thin
// both hurt.)
//
// float weights whose values are all bfloat16 numbers (the low 16 bits of each zero: what the
// ops' precision="bf16" passes in) may be stored in half the bytes, bf16 = true: each uint32 of a
// tile's row k holds two of them, column 32h + i in its low half and column 32h + 16 + i in its
// high half (h = 0, 1; i < 16). A shift or a mask turns each back into its exact float32, so
// the sums are the same as from the float32 tiles, but each step reads half as much from L2,
// which bounds the one-row (B = 1) GEMM. The callers ask for it (pairs_ok) only where each GEMM
// call has fewer than 4 rows: with 4-row tiles the widening instructions cost more than the
// bytes saved (measured 10-15% slower at 32 rows a thread).
//
// With defer (the unit-split kernels), the bf16 check is deferred too: bf16 is planned whenever
// pairs_ok, each thread checks the rows of its own tiles (rows_bf16) while the others check
// theirs, and the team settles the layout (settle) before anyone packs. One thread scanning all of
// W_hh first cost 0.1 ms a call when the weights were cold (decode, h=256, B=1, on the 2-vCPU VM).
struct PackedWeight {
  int64_t K = 0, N = 0, tiles = 0;
  mutable bool bf16 = false;  // mutable: settle() may turn a planned bf16 layout down
  at::Tensor packed, tail;  // packed: [tiles, K, 64] T (pairs use its first half when deferred), or [tiles, K, 32] int32 pairs
  // The source rows, in packed order (one of the two, by dtype), for pack(): pack_weight fills
  // every tile unless asked to defer, so that the unit-split kernels' threads each fill their
  // own tiles, in parallel and into the cache of the core that streams them every step.
  std::vector<at::Tensor> sources;
  std::vector<const float*> rows_f;
  std::vector<const double*> rows_d;

  // Whether the source rows of tiles [tile0, tile1) are all bfloat16 numbers (float only).
  // Stops at the first row that is not (float32 weights: the first).
  bool rows_bf16(int64_t tile0, int64_t tile1) const {
    if (rows_f.empty()) return false;
    for (int64_t r = tile0 * 64; r < tile1 * 64; ++r) {
      const uint32_t* bits = reinterpret_cast<const uint32_t*>(rows_f[r]);
      uint32_t low = 0;
      for (int64_t k = 0; k < K; ++k) low |= bits[k] & 0xFFFFu;
      if (low != 0) return false;
    }
    return true;
  }

  // By one thread, after every thread's rows_bf16 and before any pack: keep the planned pairs
  // only if every row was a bfloat16 number.
  void settle(bool all_rows_bf16) const { bf16 = bf16 && all_rows_bf16; }

  void pack(int64_t tile0, int64_t tile1) const {
    const int64_t bytes = K * (bf16 ? 32 * 4 : 64 * static_cast<int64_t>(packed.element_size()));
    void* dst = static_cast<char*>(packed.data_ptr()) + tile0 * bytes;
    if (!rows_f.empty()) pack_tiles(rows_f.data() + tile0 * 64, K, tile1 - tile0, bf16, dst);
    if (!rows_d.empty()) pack_tiles(rows_d.data() + tile0 * 64, K, tile1 - tile0, bf16, dst);
  }
};

// Whether every float of t (contiguous) is a bfloat16 number.
inline bool all_bf16(const at::Tensor& t) {
  if (t.scalar_type() != at::kFloat) return false;
  const uint32_t* bits = reinterpret_cast<const uint32_t*>(t.const_data_ptr<float>());
  uint32_t low = 0;
  for (int64_t i = 0, n = t.numel(); i < n && low == 0; i += 4096)  // stops early for float32 weights
    for (int64_t j = i; j < std::min(n, i + 4096); ++j) low |= bits[j] & 0xFFFFu;
  return low == 0;
}

// pack_weight's row list (the rows of p.sources joined, then put in `order`) and its tail: the
// last N % 64 rows as they are (each is done as a dot product).
template <typename T>
void gather_rows(PackedWeight& p, const std::vector<int64_t>& order, std::vector<const T*>& rows) {
  for (const at::Tensor& part : p.sources)
    for (int64_t r = 0; r < part.size(0); ++r) rows.push_back(part.const_data_ptr<T>() + r * p.K);
  if (!order.empty()) {
    const std::vector<const T*> joined = rows;
    for (size_t i = 0; i < order.size(); ++i) rows[i] = joined[order[i]];
  }
  T* tail = p.tail.mutable_data_ptr<T>();
  for (int64_t r = p.tiles * 64; r < p.N; ++r) std::copy_n(rows[r], p.K, tail + (r - p.tiles * 64) * p.K);
}

// Packs the rows of parts ([n_i, K] each) one after another, as at::cat would join them, and in
// `order` when given (row i of the packed weight is row order[i] of that join): one pass from the
// weights as they are into the tiles, with no joined or transposed copy in between. With defer,
// the tiles are left for the caller to fill with pack().
inline PackedWeight pack_weight(const std::vector<at::Tensor>& parts, bool pairs_ok = false,
                                const std::vector<int64_t>& order = {}, bool defer = false) {
  PackedWeight p;
  bool bf16 = pairs_ok;
  for (const at::Tensor& part : parts) {
    p.sources.push_back(part.detach().contiguous());
    p.N += part.size(0);
    bf16 = bf16 && p.sources.back().scalar_type() == at::kFloat && (defer || all_bf16(p.sources.back()));
  }
  p.K = p.sources[0].size(1);
  p.tiles = p.N / 64;
  p.bf16 = bf16 && p.tiles > 0;
  const at::TensorOptions options = p.sources[0].options();
  // deferred: sized for float32 tiles, which settle() may still choose
  p.packed = p.bf16 && !defer ? at::empty({p.tiles, p.K, 32}, options.dtype(at::kInt))
                              : at::empty({p.tiles, p.K, 64}, options);
  p.tail = at::empty({p.N - p.tiles * 64, p.K}, options);
  if (p.sources[0].scalar_type() == at::kFloat) {
    gather_rows(p, order, p.rows_f);
  } else {
    gather_rows(p, order, p.rows_d);  // the ops take float32 and float64 only
  }
  if (!defer) p.pack(0, p.tiles);
  return p;
}

// A thread's share of a deferred PackedWeight: tiles [tile0, tile1).
struct TileShare {
  const PackedWeight* weight;
  int64_t tile0, tile1;
};

// Called by every thread of a unit-split region, before packing: each thread checks the rows of
// its own tiles of the weights with planned bf16 pairs, then the team keeps the pairs only if
// all were bfloat16 numbers (one verdict for all the weights given). `mixed` is shared, false on
// entry. The OpenMP barrier and single bind to the enclosing parallel region.
inline void settle_pairs(const std::vector<TileShare>& mine, std::atomic<bool>& mixed) {
  bool planned = false;  // the same on every thread: nobody settles before all have read it
  for (const TileShare& share : mine) planned = planned || share.weight->bf16;
  if (!planned) return;
  for (const TileShare& share : mine)
    if (share.weight->bf16 && !share.weight->rows_bf16(share.tile0, share.tile1))
      mixed.store(true, std::memory_order_relaxed);
#pragma omp barrier
#pragma omp single
  for (const TileShare& share : mine) share.weight->settle(!mixed.load(std::memory_order_relaxed));
}

inline PackedWeight pack_weight(const at::Tensor& w, bool pairs_ok = false) {
  return pack_weight(std::vector<at::Tensor>{w}, pairs_ok);
}

// double (the tests' dtype): the same tiles, plain loops.
template <int RB, int NT = 1>
RNNGEN_INLINE void gemm_tile(const double* __restrict__ x, int64_t ldx, const double* __restrict__ w, int64_t K,
                             const double* __restrict__ bias, double* __restrict__ out, int64_t ldo) {
  for (int t = 0; t < NT; ++t)
    gemm_rows_impl(x, ldx, RB, w + t * K * 64, 64, K, 64, bias ? bias + 64 * t : nullptr, out + 64 * t, ldo);
}

template <typename T>
RNNGEN_INLINE T dot_impl(const T* a, const T* b, int64_t n) {
  T sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// Tiles [tile0, tile1) of the packed weight (tile_size elements of W each: float32 or bf16
// pairs, which picks the gemm_tile overload): rows in blocks of 4, then the rest one at a time,
// six tiles at once (24 accumulators), then two, then one.
template <typename T, typename W>
RNNGEN_INLINE void gemm_tiles(const T* x, int64_t ldx, int64_t rows, const W* packed, int64_t tile_size, int64_t K,
                              int64_t tile0, int64_t tile1, const T* bias, T* out, int64_t ldo) {
  const int64_t full = rows / 4 * 4;
  for (int64_t tile = tile0; tile < tile1; ++tile)
    for (int64_t r = 0; r < full; r += 4)
      gemm_tile<4>(x + r * ldx, ldx, packed + tile * tile_size, K, bias ? bias + tile * 64 : nullptr,
                   out + r * ldo + (tile - tile0) * 64, ldo);
  for (int64_t r = full; r < rows; ++r) {
    int64_t tile = tile0;
    for (; tile + 6 <= tile1; tile += 6)
      gemm_tile<1, 6>(x + r * ldx, ldx, packed + tile * tile_size, K, bias ? bias + tile * 64 : nullptr,
                      out + r * ldo + (tile - tile0) * 64, ldo);
    for (; tile + 2 <= tile1; tile += 2)
      gemm_tile<1, 2>(x + r * ldx, ldx, packed + tile * tile_size, K, bias ? bias + tile * 64 : nullptr,
                      out + r * ldo + (tile - tile0) * 64, ldo);
    if (tile < tile1)
      gemm_tile<1>(x + r * ldx, ldx, packed + tile * tile_size, K, bias ? bias + tile * 64 : nullptr,
                   out + r * ldo + (tile - tile0) * 64, ldo);
  }
}

// Columns [64 * tile0, 64 * tile1) of out = bias + x @ W^T (plus the tail columns when
// with_tail): out points at column 64 * tile0 of row 0, bias at column 0.
template <typename T>
RNNGEN_INLINE void gemm_packed_impl(const T* x, int64_t ldx, int64_t rows, const PackedWeight& p, int64_t tile0,
                                    int64_t tile1, bool with_tail, const T* bias, T* out, int64_t ldo) {
  if constexpr (std::is_same_v<T, float>) {
    if (p.bf16) {
      const uint32_t* pairs = static_cast<const uint32_t*>(p.packed.const_data_ptr());
      gemm_tiles(x, ldx, rows, pairs, p.K * 32, p.K, tile0, tile1, bias, out, ldo);
    }
  }
  if (!p.bf16) gemm_tiles(x, ldx, rows, p.packed.const_data_ptr<T>(), p.K * 64, p.K, tile0, tile1, bias, out, ldo);
  const int64_t rest = p.N - p.tiles * 64;
  if (!with_tail || rest == 0) return;
  const T* tail = p.tail.const_data_ptr<T>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < rest; ++c)
      out[r * ldo + (p.tiles - tile0) * 64 + c] =
          (bias ? bias[p.tiles * 64 + c] : T(0)) + dot_impl(x + r * ldx, tail + c * p.K, p.K);
}

// One GRU step for one row over n units: h_new = (1 - z) n + z h, gate order r, z, n. Gate g of
// unit j is gi[g * gi_stride + j] and gh[g * gh_stride + j] (stride H for whole rows, smaller
// for a thread's slice of the units).
template <typename T>
RNNGEN_INLINE void gru_units_impl(const T* __restrict__ gi, int64_t gi_stride, const T* __restrict__ gh,
                                  int64_t gh_stride, const T* h, T* h_new, int64_t n) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    const T r = sigmoid(gi[j] + gh[j]);
    const T z = sigmoid(gi[gi_stride + j] + gh[gh_stride + j]);
    const T c = tanh_fast(gi[2 * gi_stride + j] + r * gh[2 * gh_stride + j]);
    h_new[j] = (T(1) - z) * c + z * h[j];
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
// gemm computes every column; gemm_columns only the tiles [tile0, tile1) (a thread's share).
void gemm(const float* x, int64_t ldx, int64_t rows, const PackedWeight& w, const float* bias, float* out, int64_t ldo);
void gemm(const double* x, int64_t ldx, int64_t rows, const PackedWeight& w, const double* bias, double* out,
          int64_t ldo);
void gemm_columns(const float* x, int64_t ldx, int64_t rows, const PackedWeight& w, int64_t tile0, int64_t tile1,
                  const float* bias, float* out, int64_t ldo);
void gemm_columns(const double* x, int64_t ldx, int64_t rows, const PackedWeight& w, int64_t tile0, int64_t tile1,
                  const double* bias, double* out, int64_t ldo);
float dot(const float* a, const float* b, int64_t n);
double dot(const double* a, const double* b, int64_t n);
void gru_units(const float* gi, int64_t gi_stride, const float* gh, int64_t gh_stride, const float* h, float* h_new,
               int64_t n);
void gru_units(const double* gi, int64_t gi_stride, const double* gh, int64_t gh_stride, const double* h,
               double* h_new, int64_t n);

void gru_row_backward(const float* dh, const float* gi, const float* gh, const float* h, float* dgi,
                      float* dgh, float* dh_direct, int64_t H);
void gru_row_backward(const double* dh, const double* gi, const double* gh, const double* h, double* dgi,
                      double* dgh, double* dh_direct, int64_t H);

// The unit-split kernels cut H into `slices` slices of S = H / slices units (one per thread as
// asked). Their gate weights [gates * H, K] and biases [gates * H] are regrouped so that each
// slice's gate rows are adjacent: slice s is rows [gates S s, gates S (s + 1)), whole 64-wide
// tiles, so a thread gets all its gates from one GEMM call, one pass over h_t with 24
// accumulators at S = 128 rather than a pass per gate with 8 (measured about 0.3 us a step
// faster for the article's GRU generator at H = 256, B = 1 on the 2-vCPU Sapphire Rapids VM).
// The output of that call is, per row, this thread's slices one after another, each
// [gate 0 | gate 1 | ...][S] (the GRU: r | z | n).
inline std::vector<int64_t> slice_order(int64_t H, int slices, int gates) {
  const int64_t S = H / slices;
  std::vector<int64_t> order;
  for (int s = 0; s < slices; ++s)
    for (int64_t g = 0; g < gates; ++g)
      for (int64_t j = 0; j < S; ++j) order.push_back(g * H + s * S + j);
  return order;
}

inline at::Tensor gates_by_slice(const at::Tensor& bias, int64_t H, int slices, int gates) {
  return bias.index_select(0, at::tensor(slice_order(H, slices, gates)));
}

}  // namespace rnngen::cpu
