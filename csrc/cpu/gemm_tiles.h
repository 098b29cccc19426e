// The float GEMM's register-blocked tiles (see PackedWeight in gru_kernels.h for the layouts).
// Free of ATen, so tests/test_cpu_tiles.py can compile them alone for each target_clones level
// (x86-64-v4, -v3, baseline) and check the bf16 pairs give the float32 tiles' results bit for bit.
#pragma once

#include <cstdint>

#ifndef RNNGEN_INLINE
#define RNNGEN_INLINE inline __attribute__((always_inline))
#endif

namespace rnngen::cpu {

// The float GEMM's register-blocked core: RB rows x NT tiles of 64 columns (4 vectors of 16
// each) of out stay in registers for the whole K loop; each k loads the tiles' weight vectors
// once for all RB rows, so the loop runs at FMA rate instead of accumulator load/store rate
// (RB = 4: 16 accumulators). A single row (RB = 1) takes two tiles at once (NT = 2): 8
// independent FMA chains instead of 4 hide the FMA latency (each column's sum keeps its order).
typedef float f32x16 __attribute__((vector_size(64), aligned(4), may_alias));

template <int RB, int NT = 1>
RNNGEN_INLINE void gemm_tile(const float* __restrict__ x, int64_t ldx, const float* __restrict__ w, int64_t K,
                             const float* __restrict__ bias, float* __restrict__ out, int64_t ldo) {
  f32x16 acc[RB][4 * NT];
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < 4 * NT; ++v) acc[r][v] = bias ? *reinterpret_cast<const f32x16*>(bias + 16 * v) : f32x16{};
  for (int64_t k = 0; k < K; ++k) {
    f32x16 wv[4 * NT];
    for (int t = 0; t < NT; ++t)
      for (int v = 0; v < 4; ++v) wv[4 * t + v] = reinterpret_cast<const f32x16*>(w + (t * K + k) * 64)[v];
    for (int r = 0; r < RB; ++r) {
      const float xv = x[r * ldx + k];
      for (int v = 0; v < 4 * NT; ++v) acc[r][v] += xv * wv[v];
    }
  }
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < 4 * NT; ++v) *reinterpret_cast<f32x16*>(out + r * ldo + 16 * v) = acc[r][v];
}

// The same from bf16 pairs (PackedWeight::bf16): per k and tile, two loads and four exact
// widenings instead of four loads. (A cast between vector types reinterprets the bits.)
typedef uint32_t u32x16 __attribute__((vector_size(64), aligned(4), may_alias));

template <int RB, int NT = 1>
RNNGEN_INLINE void gemm_tile(const float* __restrict__ x, int64_t ldx, const uint32_t* __restrict__ w, int64_t K,
                             const float* __restrict__ bias, float* __restrict__ out, int64_t ldo) {
  f32x16 acc[RB][4 * NT];
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < 4 * NT; ++v) acc[r][v] = bias ? *reinterpret_cast<const f32x16*>(bias + 16 * v) : f32x16{};
  const u32x16 high = u32x16{} + 0xFFFF0000u;
  for (int64_t k = 0; k < K; ++k) {
    f32x16 wv[4 * NT];
    for (int t = 0; t < NT; ++t)
      for (int h = 0; h < 2; ++h) {
        const u32x16 pair = reinterpret_cast<const u32x16*>(w + (t * K + k) * 32)[h];
        wv[4 * t + 2 * h] = (f32x16)(pair << 16);
        wv[4 * t + 2 * h + 1] = (f32x16)(pair & high);
      }
    for (int r = 0; r < RB; ++r) {
      const float xv = x[r * ldx + k];
      for (int v = 0; v < 4 * NT; ++v) acc[r][v] += xv * wv[v];
    }
  }
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < 4 * NT; ++v) *reinterpret_cast<f32x16*>(out + r * ldo + 16 * v) = acc[r][v];
}

}  // namespace rnngen::cpu
