// tests/test_cpu_tiles.py compiles this for each target_clones level of the CPU kernels
// (csrc/cpu/gemm_tiles.h): the packing (rows in any order, float32 tiles and bf16 pairs, K with
// and without a remainder of 16) against plain loops, then the bf16-pair tiles against the
// float32 tiles on the same bf16-exact weights, 4-row, 1-row-two-tile and 1-row-six-tile forms.
// Exit status 0 when all agree bit for bit and the sums are right (against double).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "cpu/gemm_tiles.h"

using namespace rnngen::cpu;

static uint32_t bits_of(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  return u;
}

static int check(int64_t K) {
  const int64_t tiles = 6, N = 64 * tiles;
  std::mt19937 gen(static_cast<unsigned>(K));
  std::normal_distribution<float> normal;
  std::vector<float> w(N * K), x(4 * K), bias(N);  // w: [N, K] row-major, bfloat16 numbers
  for (auto& v : w) {
    const uint32_t u = bits_of(normal(gen)) & 0xFFFF0000u;
    std::memcpy(&v, &u, 4);
  }
  for (auto& v : x) v = normal(gen);
  for (auto& v : bias) v = normal(gen);
  std::vector<int64_t> order(N);  // packed row i is row order[i] of w
  for (int64_t i = 0; i < N; ++i) order[i] = (i * 7 + 3) % N;
  std::vector<const float*> rows(N);
  for (int64_t i = 0; i < N; ++i) rows[i] = w.data() + order[i] * K;
  // the packing: float32 tiles [tiles][K][64]; pairs [tiles][K][32], column 32h + i low, 32h + 16 + i high
  std::vector<float> packed(tiles * K * 64, NAN);
  std::vector<uint32_t> pairs(tiles * K * 32, 0xDEADBEEFu);
  pack_tiles_impl(rows.data(), K, tiles, false, packed.data());
  pack_tiles_impl(rows.data(), K, tiles, true, pairs.data());
  for (int64_t t = 0; t < tiles; ++t)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t n = 0; n < 64; ++n) {
        const float want = rows[t * 64 + n][k];
        if (bits_of(packed[(t * K + k) * 64 + n]) != bits_of(want)) {
          std::printf("K=%ld: packed tile %ld k %ld column %ld is wrong\n", long(K), long(t), long(k), long(n));
          return 1;
        }
        if (n % 32 < 16) {
          const uint32_t pair = (bits_of(rows[t * 64 + n + 16][k]) & 0xFFFF0000u) | (bits_of(want) >> 16);
          if (pairs[(t * K + k) * 32 + n / 32 * 16 + n % 16] != pair) {
            std::printf("K=%ld: pair tile %ld k %ld column %ld is wrong\n", long(K), long(t), long(k), long(n));
            return 1;
          }
        }
      }
  std::vector<float> f32(4 * N), b16(4 * N), b16_two(4 * N), b16_six(4 * N);
  for (int64_t t = 0; t < tiles; ++t) {
    gemm_tile<4>(x.data(), K, packed.data() + t * K * 64, K, bias.data() + 64 * t, f32.data() + 64 * t, N);
    gemm_tile<4>(x.data(), K, pairs.data() + t * K * 32, K, bias.data() + 64 * t, b16.data() + 64 * t, N);
  }
  for (int r = 0; r < 4; ++r) {
    for (int64_t t = 0; t < tiles; t += 2)
      gemm_tile<1, 2>(x.data() + r * K, K, pairs.data() + t * K * 32, K, bias.data() + 64 * t,
                      b16_two.data() + r * N + 64 * t, N);
    gemm_tile<1, 6>(x.data() + r * K, K, pairs.data(), K, bias.data(), b16_six.data() + r * N, N);
  }
  double worst = 0;
  for (int r = 0; r < 4; ++r)
    for (int64_t c = 0; c < N; ++c) {
      double sum = bias[c];
      for (int64_t k = 0; k < K; ++k) sum += double(x[r * K + k]) * rows[c][k];
      const float got = f32[r * N + c];
      worst = std::fmax(worst, std::fabs(got - sum));
      if (got != b16[r * N + c] || got != b16_two[r * N + c] || got != b16_six[r * N + c]) {
        std::printf("K=%ld row %d column %ld: float32 tiles %.9g, bf16 pairs %.9g (4 rows) %.9g (1 row, two tiles) "
                    "%.9g (1 row, six tiles)\n", long(K), r, long(c), got, b16[r * N + c], b16_two[r * N + c],
                    b16_six[r * N + c]);
        return 1;
      }
    }
  std::printf("K=%ld: max |error| against double: %.3g\n", long(K), worst);
  return worst < 1e-4 ? 0 : 1;
}

int main() { return check(37) || check(64) || check(1); }
