// Launchers of the CUDA kernels: plain C++ declarations (raw pointers, no torch headers), so
// every .cu compiles with nvcc alone and the torch binding (extension.cpp) stays thin.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace rnngen {

// u[i] = philox_uniform(seed, offset[i]) for i < n (see csrc/common/philox.h).
cudaError_t launch_philox_uniform(uint64_t seed, const int64_t* offset, float* u, int64_t n, cudaStream_t stream);

// The fused kernels (sample.cu, decode.cu, scan.cu), each for one of the cells of cells.cuh.
// Inputs are contiguous float32 device arrays; weights arrive in the layouts the kernels read
// (transposed, columns zero-padded to a multiple of 4: "G4" = round4(G), "H4" = round4(H),
// "K4" = round4(K), "C4" = round4(C)), which the binding prepares. G = gates * H: 3H for the GRU,
// 4H for the LSTM, H for the Elman cells. The LSTM's cell-state arrays (c0, c_out, grad_c,
// c_hidden, d_c0) are null for the other cells; grad_c may be null (zero) for the LSTM too. Each
// returns the launch error (cudaErrorInvalidConfiguration when one row's on-chip state does not
// fit the device's shared memory) and never synchronises.
namespace cuda {

enum class CellKind : int { gru, lstm, rnn_tanh, rnn_relu };

// values [B, T] (int64): h0 [B, H], c0 [B, H], emb [C, K, G], lag_emb [L, C, K, G] with lags
// (host memory) the L = num_lags lags (L <= kMaxLags = 16, each >= 1, else cudaErrorInvalidValue;
// they travel in the kernel's parameters), cond [B, G], w_hh_t [H, G4], b_hh [G4],
// w_out_t [C, H, K4], b_out [C, K4], known [B, T] or null.
cudaError_t launch_sample(CellKind cell, const float* h0, const float* c0, const float* emb, const float* lag_emb,
                          const int64_t* lags, int64_t num_lags, const float* cond, const float* w_hh_t,
                          const float* b_hh, const float* w_out_t, const float* b_out, float temperature,
                          uint64_t seed, int64_t row_offset, const int64_t* known, int64_t* values, int64_t B,
                          int64_t T, int64_t H, int64_t C, int64_t K, cudaStream_t stream);

// out [B, T, C], hidden [B, T, H], c_hidden [B, T, H]: h0 [B, H], c0 [B, H], w_ih [G, C], b_ih [G],
// w_hh_t [H, G4], b_hh [G4], w_out_t [H, C4], b_out [C4]. operand (decode and scan forward): the op's
// operand type, 0 float32, 1 bfloat16, 2 float16, 3 TF32: with 1-3 the sm_90 cluster variant
// multiplies 16-row tiles on tensor cores in that type (gru_device.cuh: mma_product); the arrays
// stay float32.
cudaError_t launch_decode_forward(CellKind cell, const float* h0, const float* c0, const float* w_ih,
                                  const float* b_ih, const float* w_hh_t, const float* b_hh, const float* w_out_t,
                                  const float* b_out, float* out, float* hidden, float* c_hidden, int64_t B, int64_t T,
                                  int64_t H, int64_t C, cudaStream_t stream, int operand = 0);

// The reverse loop of decode: d_gi [B, T, G], d_gh [B, T, G] (GRU only: the other cells' hidden-gate
// gradients equal d_gi; pass null), d_x [B, T, C] (every step's gradients of the input gates,
// hidden gates and outputs, for the weight-gradient GEMMs after it), d_h0 and d_c0 [B, H].
// gi, gh [B, T, G]: every step's gates (recomputed by the caller; not read, may be null, for
// the Elman cells); hidden, c_hidden [B, T, H]; w_ih [G, C], w_hh [G, H4], w_out [C, H].
cudaError_t launch_decode_backward(CellKind cell, const float* grad_out, const float* grad_hidden,
                                   const float* grad_c, const float* gi, const float* gh, const float* h0,
                                   const float* c0, const float* hidden, const float* c_hidden, const float* w_ih,
                                   const float* w_hh, const float* w_out, float* d_gi, float* d_gh, float* d_x,
                                   float* d_h0, float* d_c0, int64_t B, int64_t T, int64_t H, int64_t C,
                                   cudaStream_t stream);

// out [B, T, H], c_out [B, T, H] and, unless null, gates [B, T, G]: gi [B, T, G], h0 [B, H],
// c0 [B, H], w_hh_t [H, G4], b_hh [G4].
cudaError_t launch_scan_forward(CellKind cell, const float* gi, const float* h0, const float* c0, const float* w_hh_t,
                                const float* b_hh, float* out, float* c_out, float* gates, int64_t B, int64_t T,
                                int64_t H, cudaStream_t stream, int operand = 0);

// The reverse loop of scan: d_gi [B, T, G], d_gh [B, T, G] (GRU only, as decode), d_h0, d_c0 [B, H].
// gh [B, T, G]: every step's hidden gates (saved by the forward or recomputed by the caller;
// gi and gh are not read, may be null, for the Elman cells); w_hh [G, H4].
cudaError_t launch_scan_backward(CellKind cell, const float* grad_out, const float* grad_c, const float* gi,
                                 const float* gh, const float* h0, const float* c0, const float* out,
                                 const float* c_out, const float* w_hh, float* d_gi, float* d_gh, float* d_h0,
                                 float* d_c0, int64_t B, int64_t T, int64_t H, cudaStream_t stream);

}  // namespace cuda
}  // namespace rnngen
