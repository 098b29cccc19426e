// tests/test_cpu_tiles.py compiles this for each target_clones level of the CPU kernels: the
// bf16-pair tiles (csrc/cpu/gemm_tiles.h) against the float32 tiles on the same bf16-exact
// weights, 4-row and 1-row-two-tile forms; exit status 0 when they agree bit for bit and the
// sums are right (against double).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "cpu/gemm_tiles.h"

using namespace rnngen::cpu;

int main() {
  const int64_t K = 37, tiles = 2, N = 64 * tiles;
  std::mt19937 gen(1);
  std::normal_distribution<float> normal;
  std::vector<float> w(tiles * K * 64), x(4 * K), bias(N);
  for (auto& v : w) {  // bfloat16 numbers: the low 16 bits cleared
    v = normal(gen);
    uint32_t u;
    std::memcpy(&u, &v, 4);
    u &= 0xFFFF0000u;
    std::memcpy(&v, &u, 4);
  }
  for (auto& v : x) v = normal(gen);
  for (auto& v : bias) v = normal(gen);
  // PackedWeight's pairs: column 32h + i in the low half, 32h + 16 + i in the high half
  std::vector<uint32_t> pairs(tiles * K * 32);
  std::vector<uint32_t> bits(w.size());
  std::memcpy(bits.data(), w.data(), 4 * w.size());
  for (int64_t row = 0; row < tiles * K; ++row)
    for (int h = 0; h < 2; ++h)
      for (int i = 0; i < 16; ++i)
        pairs[row * 32 + 16 * h + i] = (bits[row * 64 + 32 * h + 16 + i] & 0xFFFF0000u) | (bits[row * 64 + 32 * h + i] >> 16);
  std::vector<float> f32(4 * N), b16(4 * N), b16_two(4 * N);
  for (int64_t t = 0; t < tiles; ++t) {
    gemm_tile<4>(x.data(), K, w.data() + t * K * 64, K, bias.data() + 64 * t, f32.data() + 64 * t, N);
    gemm_tile<4>(x.data(), K, pairs.data() + t * K * 32, K, bias.data() + 64 * t, b16.data() + 64 * t, N);
  }
  for (int r = 0; r < 4; ++r) gemm_tile<1, 2>(x.data() + r * K, K, pairs.data(), K, bias.data(), b16_two.data() + r * N, N);
  double worst = 0;
  for (int r = 0; r < 4; ++r)
    for (int64_t c = 0; c < N; ++c) {
      double sum = bias[c];
      for (int64_t k = 0; k < K; ++k) sum += double(x[r * K + k]) * w[(c / 64) * K * 64 + k * 64 + c % 64];
      worst = std::fmax(worst, std::fabs(f32[r * N + c] - sum));
      if (f32[r * N + c] != b16[r * N + c] || f32[r * N + c] != b16_two[r * N + c]) {
        std::printf("row %d column %ld: float32 tiles %.9g, bf16 pairs %.9g (4 rows) %.9g (1 row)\n", r, long(c),
                    f32[r * N + c], b16[r * N + c], b16_two[r * N + c]);
        return 1;
      }
    }
  std::printf("max |error| against double: %.3g\n", worst);
  return worst < 1e-4 ? 0 : 1;
}
