// The float entry points of gru_kernels.h, each compiled three times (AVX-512, AVX2, baseline)
// and chosen by the CPU at load time; double takes the generic build.
#include "gru_kernels.h"

namespace rnngen::cpu {

namespace {

RNNGEN_CLONES void gemm_columns_f32(const float* x, int64_t ldx, int64_t rows, const PackedWeight& w, int64_t tile0,
                                    int64_t tile1, bool with_tail, const float* bias, float* out, int64_t ldo) {
  gemm_packed_impl(x, ldx, rows, w, tile0, tile1, with_tail, bias, out, ldo);
}

RNNGEN_CLONES void pack_tiles_f32(const float* const* rows, int64_t K, int64_t tiles, bool pairs, void* dst) {
  pack_tiles_impl(rows, K, tiles, pairs, dst);
}

}  // namespace

void gemm(const float* x, int64_t ldx, int64_t rows, const PackedWeight& w, const float* bias, float* out,
          int64_t ldo) {
  gemm_columns_f32(x, ldx, rows, w, 0, w.tiles, true, bias, out, ldo);
}

void gemm(const double* x, int64_t ldx, int64_t rows, const PackedWeight& w, const double* bias, double* out,
          int64_t ldo) {
  gemm_packed_impl(x, ldx, rows, w, 0, w.tiles, true, bias, out, ldo);
}

void gemm_columns(const float* x, int64_t ldx, int64_t rows, const PackedWeight& w, int64_t tile0, int64_t tile1,
                  const float* bias, float* out, int64_t ldo) {
  gemm_columns_f32(x, ldx, rows, w, tile0, tile1, false, bias, out, ldo);
}

void gemm_columns(const double* x, int64_t ldx, int64_t rows, const PackedWeight& w, int64_t tile0, int64_t tile1,
                  const double* bias, double* out, int64_t ldo) {
  gemm_packed_impl(x, ldx, rows, w, tile0, tile1, false, bias, out, ldo);
}

void pack_tiles(const float* const* rows, int64_t K, int64_t tiles, bool pairs, void* dst) {
  pack_tiles_f32(rows, K, tiles, pairs, dst);
}

void pack_tiles(const double* const* rows, int64_t K, int64_t tiles, bool, void* dst) {
  double* out = static_cast<double*>(dst);
  for (int64_t tile = 0; tile < tiles; ++tile)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t n = 0; n < 64; ++n) out[(tile * K + k) * 64 + n] = rows[tile * 64 + n][k];
}

RNNGEN_CLONES float dot(const float* a, const float* b, int64_t n) { return dot_impl(a, b, n); }

double dot(const double* a, const double* b, int64_t n) { return dot_impl(a, b, n); }

RNNGEN_CLONES void gru_units(const float* gi, int64_t gi_stride, const float* gh, int64_t gh_stride, const float* h,
                             float* h_new, int64_t n) {
  gru_units_impl(gi, gi_stride, gh, gh_stride, h, h_new, n);
}

void gru_units(const double* gi, int64_t gi_stride, const double* gh, int64_t gh_stride, const double* h,
               double* h_new, int64_t n) {
  gru_units_impl(gi, gi_stride, gh, gh_stride, h, h_new, n);
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
