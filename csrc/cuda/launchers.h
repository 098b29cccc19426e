// Launchers of the CUDA kernels: plain C++ declarations (raw pointers, no torch headers), so
// every .cu compiles with nvcc alone and the torch binding (extension.cpp) stays thin.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace rnngen {

// u[i] = philox_uniform(seed, offset[i]) for i < n (see csrc/common/philox.h).
cudaError_t launch_philox_uniform(uint64_t seed, const int64_t* offset, float* u, int64_t n, cudaStream_t stream);

}  // namespace rnngen
