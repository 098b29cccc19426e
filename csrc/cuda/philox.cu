// The contract's RNG on the GPU; the fused sample kernel draws from the same header inline.
#include "../common/philox.h"
#include "launchers.h"

namespace {

__global__ void philox_uniform_kernel(uint64_t seed, const int64_t* __restrict__ offset,
                                      float* __restrict__ u, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    u[i] = rnngen::philox_uniform(seed, static_cast<uint64_t>(offset[i]));
}

}  // namespace

namespace rnngen {

cudaError_t launch_philox_uniform(uint64_t seed, const int64_t* offset, float* u, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const int threads = 256;
  const int64_t blocks = (n + threads - 1) / threads;
  philox_uniform_kernel<<<static_cast<unsigned>(blocks < 65535 ? blocks : 65535), threads, 0, stream>>>(seed, offset, u, n);
  return cudaGetLastError();
}

}  // namespace rnngen
