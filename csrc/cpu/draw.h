// The sample kernel's draw (sample.cpp, every cell): the
// contract's Philox uniform and inverse-CDF draw, or a forced known value.
#pragma once

#include <cstdint>

#include "../common/philox.h"

namespace rnngen::cpu {

// Inverse-CDF draw from float32 logits (overwritten): e = exp((l - max) / temperature),
// cdf = running float32 sum in value order, the first k with cdf[k] > u * cdf[K-1], else K-1.
// In sample.cpp.
int64_t draw(float* logits, int64_t K, float temperature, float u);

// The draw for row b at step t: the known value, or the inverse-CDF draw from its logits.
template <typename T_>
int64_t value_at(const T_* logits, float* scratch, int64_t K, float temperature, uint64_t key, int64_t row_offset,
                 int64_t b, int64_t t, int64_t T, const int64_t* known) {
  if (known && known[b * T + t] >= 0) return known[b * T + t];
  for (int64_t k = 0; k < K; ++k) scratch[k] = static_cast<float>(logits[k]);
  const uint64_t offset = static_cast<uint64_t>(row_offset + b) * static_cast<uint64_t>(T) + t;
  return draw(scratch, K, temperature, philox_uniform(key, offset));
}

}  // namespace rnngen::cpu
