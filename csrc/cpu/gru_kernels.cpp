// The float entry points of gru_kernels.h, each compiled three times (AVX-512, AVX2, baseline)
// and chosen by the CPU at load time; double takes the generic build.
#include "gru_kernels.h"

namespace rnngen::cpu {

RNNGEN_CLONES void gemm_rows(const float* x, int64_t ldx, int64_t rows, const float* wt, int64_t K, int64_t N,
                             const float* bias, float* out, int64_t ldo) {
  gemm_rows_impl(x, ldx, rows, wt, K, N, bias, out, ldo);
}

void gemm_rows(const double* x, int64_t ldx, int64_t rows, const double* wt, int64_t K, int64_t N,
               const double* bias, double* out, int64_t ldo) {
  gemm_rows_impl(x, ldx, rows, wt, K, N, bias, out, ldo);
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
