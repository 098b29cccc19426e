// The float entry points of gru_kernels.h, each compiled three times (AVX-512, AVX2, baseline)
// and chosen by the CPU at load time; double takes the generic build.
#include "gru_kernels.h"

namespace rnngen::cpu {

namespace {

RNNGEN_CLONES void gemm_rows_small(const float* x, int64_t ldx, int64_t rows, const float* wt, int64_t K, int64_t N,
                                   const float* bias, float* out, int64_t ldo) {
  gemm_rows_impl(x, ldx, rows, wt, K, N, bias, out, ldo);
}

// Below this many rows the plain loops beat a BLAS call (measured on a Sapphire Rapids core).
constexpr int64_t kBlasRows = 8;

template <typename T>
void gemm_rows_blas(const T* x, int64_t ldx, int64_t rows, const T* wt, int64_t K, int64_t N, const T* bias,
                    T* out, int64_t ldo) {
  const auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  const at::Tensor xs = at::from_blob(const_cast<T*>(x), {rows, K}, {ldx, 1}, options);
  const at::Tensor ws = at::from_blob(const_cast<T*>(wt), {K, N}, {N, 1}, options);
  at::Tensor os = at::from_blob(out, {rows, N}, {ldo, 1}, options);
  if (bias) {
    at::addmm_out(os, at::from_blob(const_cast<T*>(bias), {N}, options), xs, ws);
  } else {
    at::mm_out(os, xs, ws);
  }
}

}  // namespace

void gemm_rows(const float* x, int64_t ldx, int64_t rows, const float* wt, int64_t K, int64_t N,
               const float* bias, float* out, int64_t ldo) {
  if (rows >= kBlasRows) {
    gemm_rows_blas(x, ldx, rows, wt, K, N, bias, out, ldo);
  } else {
    gemm_rows_small(x, ldx, rows, wt, K, N, bias, out, ldo);
  }
}

void gemm_rows(const double* x, int64_t ldx, int64_t rows, const double* wt, int64_t K, int64_t N,
               const double* bias, double* out, int64_t ldo) {
  if (rows >= kBlasRows) {
    gemm_rows_blas(x, ldx, rows, wt, K, N, bias, out, ldo);
  } else {
    gemm_rows_impl(x, ldx, rows, wt, K, N, bias, out, ldo);
  }
}

RNNGEN_CLONES void gru_row(const float* gi, const float* gh, const float* h, float* h_new, int64_t H) {
  gru_row_impl(gi, gh, h, h_new, H);
}

void gru_row(const double* gi, const double* gh, const double* h, double* h_new, int64_t H) {
  gru_row_impl(gi, gh, h, h_new, H);
}

RNNGEN_CLONES void gru_row_backward(const float* dh, const float* gi, const float* gh, const float* h, float* dgi,
                                    float* dgh, float* dh_direct, int64_t H) {
  gru_row_backward_impl(dh, gi, gh, h, dgi, dgh, dh_direct, H);
}

void gru_row_backward(const double* dh, const double* gi, const double* gh, const double* h, double* dgi,
                      double* dgh, double* dh_direct, int64_t H) {
  gru_row_backward_impl(dh, gi, gh, h, dgi, dgh, dh_direct, H);
}

}  // namespace rnngen::cpu
