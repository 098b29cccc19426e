// The sampling RNG of the design contract, shared by the C++ CPU and CUDA kernels.
//
// philox_uniform(seed, offset) equals Triton's tl.rand(seed, offset) bit for bit: Philox4x32
// with 10 rounds, key = the seed's low and high 32 bits, counter = (offset low, offset high,
// 0, 0), the first output word read as int32, a negative one replaced by its bitwise NOT, then
// multiplied in float32 by 4.6566127342e-10. The sample op draws u for row b, step t at
// offset = (row_offset + b) * T + t.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define RNNGEN_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define RNNGEN_HOST_DEVICE inline
#endif

namespace rnngen {

RNNGEN_HOST_DEVICE uint32_t philox_first_word(uint64_t seed, uint64_t offset) {
  uint32_t c0 = static_cast<uint32_t>(offset), c1 = static_cast<uint32_t>(offset >> 32);
  uint32_t c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
#if defined(__CUDACC__)
#pragma unroll
#endif
  for (int round = 0; round < 10; ++round) {
    const uint64_t prod_b = static_cast<uint64_t>(0xCD9E8D57u) * c2;
    const uint64_t prod_a = static_cast<uint64_t>(0xD2511F53u) * c0;
    const uint32_t next_c0 = static_cast<uint32_t>(prod_b >> 32) ^ c1 ^ k0;
    const uint32_t next_c2 = static_cast<uint32_t>(prod_a >> 32) ^ c3 ^ k1;
    c1 = static_cast<uint32_t>(prod_b);
    c3 = static_cast<uint32_t>(prod_a);
    c0 = next_c0;
    c2 = next_c2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return c0;
}

RNNGEN_HOST_DEVICE float philox_uniform(uint64_t seed, uint64_t offset) {
  int32_t x = static_cast<int32_t>(philox_first_word(seed, offset));
  if (x < 0) x = ~x;
  return static_cast<float>(x) * 4.6566127342e-10f;
}

}  // namespace rnngen
