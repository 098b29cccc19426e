// Launchers of the CUDA kernels: plain C++ declarations (raw pointers, no torch headers), so
// every .cu compiles with nvcc alone and the torch binding (extension.cpp) stays thin.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace rnngen {

// u[i] = philox_uniform(seed, offset[i]) for i < n (see csrc/common/philox.h).
cudaError_t launch_philox_uniform(uint64_t seed, const int64_t* offset, float* u, int64_t n, cudaStream_t stream);

// The fused kernels (sample.cu, decode.cu, scan.cu). Inputs are contiguous float32 device
// arrays; weights arrive in the layouts the kernels read (transposed, columns zero-padded to a
// multiple of 4: "G4" = round4(3H), "H4" = round4(H), "K4" = round4(K), "C4" = round4(C)),
// which the binding prepares. Each returns the launch error (cudaErrorInvalidConfiguration when
// one row's on-chip state does not fit the device's shared memory) and never synchronises.
namespace cuda {

// values [B, T] (int64): h0 [B, H], emb [C, K, 3H], cond [B, 3H], w_hh_t [H, G4], b_hh [G4],
// w_out_t [C, H, K4], b_out [C, K4], known [B, T] or null.
cudaError_t launch_sample(const float* h0, const float* emb, const float* cond, const float* w_hh_t,
                          const float* b_hh, const float* w_out_t, const float* b_out, float temperature,
                          uint64_t seed, int64_t row_offset, const int64_t* known, int64_t* values, int64_t B,
                          int64_t T, int64_t H, int64_t C, int64_t K, cudaStream_t stream);

// out [B, T, C], hidden [B, T, H]: h0 [B, H], w_ih [3H, C], b_ih [3H], w_hh_t [H, G4], b_hh [G4],
// w_out_t [H, C4], b_out [C4].
cudaError_t launch_decode_forward(const float* h0, const float* w_ih, const float* b_ih, const float* w_hh_t,
                                  const float* b_hh, const float* w_out_t, const float* b_out, float* out,
                                  float* hidden, int64_t B, int64_t T, int64_t H, int64_t C, cudaStream_t stream);

// The reverse loop of decode: d_gi, d_gh [B, T, 3H], d_x [B, T, C] (every step's gradients of the
// input gates, hidden gates and outputs, for the weight-gradient GEMMs after it) and d_h0 [B, H].
// gi, gh [B, T, 3H]: every step's gates (recomputed by the caller); hidden [B, T, H];
// w_ih [3H, C], w_hh [3H, H4], w_out [C, H].
cudaError_t launch_decode_backward(const float* grad_out, const float* grad_hidden, const float* gi,
                                   const float* gh, const float* h0, const float* hidden, const float* w_ih,
                                   const float* w_hh, const float* w_out, float* d_gi, float* d_gh, float* d_x,
                                   float* d_h0, int64_t B, int64_t T, int64_t H, int64_t C, cudaStream_t stream);

// out [B, T, H] and, unless null, gates [B, T, 3H]: gi [B, T, 3H], h0 [B, H], w_hh_t [H, G4], b_hh [G4].
cudaError_t launch_scan_forward(const float* gi, const float* h0, const float* w_hh_t, const float* b_hh,
                                float* out, float* gates, int64_t B, int64_t T, int64_t H, cudaStream_t stream);

// The reverse loop of scan: d_gi, d_gh [B, T, 3H] and d_h0 [B, H]. gh [B, T, 3H]: every step's
// hidden gates (saved by the forward or recomputed by the caller); w_hh [3H, H4].
cudaError_t launch_scan_backward(const float* grad_out, const float* gi, const float* gh, const float* h0,
                                 const float* out, const float* w_hh, float* d_gi, float* d_gh, float* d_h0,
                                 int64_t B, int64_t T, int64_t H, cudaStream_t stream);

}  // namespace cuda
}  // namespace rnngen
