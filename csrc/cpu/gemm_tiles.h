// The float GEMM's register-blocked tiles and the packing into them (see PackedWeight in
// gru_kernels.h for the layouts). Free of ATen, so tests/test_cpu_tiles.py can compile them alone
// for each target_clones level (x86-64-v4, -v3, baseline) and check the packing against plain
// loops and the bf16 pairs against the float32 tiles, bit for bit.
#pragma once

#include <cstdint>
#include <cstring>

#ifndef RNNGEN_INLINE
#define RNNGEN_INLINE inline __attribute__((always_inline))
#endif

namespace rnngen::cpu {

// The float GEMM's register-blocked core: RB rows x NT tiles of 64 columns (4 vectors of 16
// each) of out stay in registers for the whole K loop; each k loads the tiles' weight vectors
// once for all RB rows, so the loop runs at FMA rate instead of accumulator load/store rate
// (RB = 4: 16 accumulators). A single row (RB = 1) takes six or two tiles at once (NT = 6, 2):
// 24 or 8 independent FMA chains instead of 4 hide the FMA and L2 latencies (each column's sum
// keeps its order).
typedef float f32x16 __attribute__((vector_size(64), aligned(4), may_alias));

template <int RB, int NT = 1>
RNNGEN_INLINE void gemm_tile(const float* __restrict__ x, int64_t ldx, const float* __restrict__ w, int64_t K,
                             const float* __restrict__ bias, float* __restrict__ out, int64_t ldo) {
  f32x16 acc[RB][4 * NT];
  #pragma GCC unroll 32
  for (int r = 0; r < RB; ++r)
    #pragma GCC unroll 32
    for (int v = 0; v < 4 * NT; ++v) acc[r][v] = bias ? *reinterpret_cast<const f32x16*>(bias + 16 * v) : f32x16{};
  for (int64_t k = 0; k < K; ++k) {
    f32x16 wv[4 * NT];
    #pragma GCC unroll 32
    for (int t = 0; t < NT; ++t)
      #pragma GCC unroll 32
      for (int v = 0; v < 4; ++v) wv[4 * t + v] = reinterpret_cast<const f32x16*>(w + (t * K + k) * 64)[v];
    #pragma GCC unroll 32
    for (int r = 0; r < RB; ++r) {
      const float xv = x[r * ldx + k];
      #pragma GCC unroll 32
      for (int v = 0; v < 4 * NT; ++v) acc[r][v] += xv * wv[v];
    }
  }
  #pragma GCC unroll 32
  for (int r = 0; r < RB; ++r)
    #pragma GCC unroll 32
    for (int v = 0; v < 4 * NT; ++v) *reinterpret_cast<f32x16*>(out + r * ldo + 16 * v) = acc[r][v];
}

// The same from bf16 pairs (PackedWeight::bf16): per k and tile, two loads and four exact
// widenings instead of four loads. (A cast between vector types reinterprets the bits.)
typedef uint32_t u32x16 __attribute__((vector_size(64), aligned(4), may_alias));

template <int RB, int NT = 1>
RNNGEN_INLINE void gemm_tile(const float* __restrict__ x, int64_t ldx, const uint32_t* __restrict__ w, int64_t K,
                             const float* __restrict__ bias, float* __restrict__ out, int64_t ldo) {
  f32x16 acc[RB][4 * NT];
  #pragma GCC unroll 32
  for (int r = 0; r < RB; ++r)
    #pragma GCC unroll 32
    for (int v = 0; v < 4 * NT; ++v) acc[r][v] = bias ? *reinterpret_cast<const f32x16*>(bias + 16 * v) : f32x16{};
  const u32x16 high = u32x16{} + 0xFFFF0000u;
  for (int64_t k = 0; k < K; ++k) {
    f32x16 wv[4 * NT];
    #pragma GCC unroll 32
    for (int t = 0; t < NT; ++t)
      #pragma GCC unroll 32
      for (int h = 0; h < 2; ++h) {
        const u32x16 pair = reinterpret_cast<const u32x16*>(w + (t * K + k) * 32)[h];
        wv[4 * t + 2 * h] = (f32x16)(pair << 16);
        wv[4 * t + 2 * h + 1] = (f32x16)(pair & high);
      }
    #pragma GCC unroll 32
    for (int r = 0; r < RB; ++r) {
      const float xv = x[r * ldx + k];
      #pragma GCC unroll 32
      for (int v = 0; v < 4 * NT; ++v) acc[r][v] += xv * wv[v];
    }
  }
  #pragma GCC unroll 32
  for (int r = 0; r < RB; ++r)
    #pragma GCC unroll 32
    for (int v = 0; v < 4 * NT; ++v) *reinterpret_cast<f32x16*>(out + r * ldo + 16 * v) = acc[r][v];
}

// A 16 x 16 block in registers, transposed by four perfect shuffles (row i of the result is
// column i of the block). The vector extension's shuffles compile for every target_clones level.
RNNGEN_INLINE void transpose16(f32x16* r) {
  for (int stage = 0; stage < 4; ++stage) {
    f32x16 o[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
      o[2 * i] = __builtin_shufflevector(r[i], r[i + 8], 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      o[2 * i + 1] =
          __builtin_shufflevector(r[i], r[i + 8], 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) r[i] = o[i];
  }
}

// Columns [n0, n0 + 16) of tile `tile`, k in [k0, k0 + 16): the 16 x 16 block of W, transposed.
RNNGEN_INLINE void load_block(const float* const* rows, int64_t tile, int n0, int64_t k0, f32x16* block) {
#pragma GCC unroll 16
  for (int n = 0; n < 16; ++n) block[n] = *reinterpret_cast<const f32x16*>(rows[tile * 64 + n0 + n] + k0);
  transpose16(block);
}

// PackedWeight's tiles from W's rows (rows[n]: row n, K contiguous floats), for rows
// [0, 64 tiles): float32 [tiles][K][64], or bf16 pairs [tiles][K][32] when pairs (the values
// must be bfloat16 numbers: the pairs keep only the high halves). One pass: each 16 x 16 block
// of W is loaded, transposed in registers and stored.
RNNGEN_INLINE void pack_tiles_impl(const float* const* rows, int64_t K, int64_t tiles, bool pairs, void* dst) {
  float* f32 = static_cast<float*>(dst);
  uint32_t* u32 = static_cast<uint32_t*>(dst);
  const u32x16 high = u32x16{} + 0xFFFF0000u;
  for (int64_t tile = 0; tile < tiles; ++tile) {
    int64_t k0 = 0;
    for (; k0 + 16 <= K; k0 += 16)
      for (int n0 = 0; n0 < 64; n0 += 32) {  // columns n0 + i and n0 + 16 + i pair up (PackedWeight)
        f32x16 low_cols[16], high_cols[16];
        load_block(rows, tile, n0, k0, low_cols);
        load_block(rows, tile, n0 + 16, k0, high_cols);
        for (int k = 0; k < 16; ++k) {
          const int64_t row = tile * K + k0 + k;
          if (pairs) {
            *reinterpret_cast<u32x16*>(u32 + row * 32 + n0 / 2) =
                ((u32x16)high_cols[k] & high) | ((u32x16)low_cols[k] >> 16);
          } else {
            *reinterpret_cast<f32x16*>(f32 + row * 64 + n0) = low_cols[k];
            *reinterpret_cast<f32x16*>(f32 + row * 64 + n0 + 16) = high_cols[k];
          }
        }
      }
    for (; k0 < K; ++k0)  // the last K % 16
      for (int n = 0; n < 64; ++n) {
        const int64_t row = tile * K + k0;
        if (!pairs) {
          f32[row * 64 + n] = rows[tile * 64 + n][k0];
        } else if (n % 32 < 16) {  // the pair of column n and column n + 16
          uint32_t low, high;
          std::memcpy(&low, rows[tile * 64 + n] + k0, 4);
          std::memcpy(&high, rows[tile * 64 + n + 16] + k0, 4);
          u32[row * 32 + n / 32 * 16 + n % 16] = (high & 0xFFFF0000u) | (low >> 16);
        }
      }
  }
}

}  // namespace rnngen::cpu
