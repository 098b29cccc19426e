// Fused CUDA scan: forward (every hidden state of the GRU over given input gates) and the
// reverse loop of its backward. Layout and sizing rules: see the top of sample.cu (plan.h).
// The math follows rnngen/ops/scan/naive.py.
//
// forward:  shared: [W_hh^T (H x G4) if it fits] h [R, H4] | gh [R, G4]
//           per step: gh = h W_hh^T + b_hh (block product), barrier, h = GRU(gi_t, gh, h) per
//           (row, unit), out_t (and gates_t) written to global memory, barrier.
// backward: shared: [W_hh (3H x H4) if it fits] dh [R, H4] | dgh [R, G4]
//           per step (t = T-1 .. 0): dh += grad_out_t; the cell's backward per (row, unit)
//           writes d_gi_t, d_gh_t (global, for the weight-gradient GEMM after the loop) and dgh
//           (shared), dh = dh * z; barrier; dh += dgh @ W_hh (block product); barrier.
#include "gru_device.cuh"
#include "launchers.h"

namespace rnngen::cuda {
namespace {

struct ScanForwardArgs {
  const float* gi;    // [B, T, 3H]
  const float* h0;    // [B, H]
  const float* w;     // W_hh^T [H, G4]
  const float* b_hh;  // [G4]
  float* out;         // [B, T, H]
  float* gates;       // [B, T, 3H] or null
  int B, T, H;
  bool weights_on_chip;
};

template <int BT>
__global__ void __launch_bounds__(kThreads, 1) scan_forward_kernel(ScanForwardArgs a) {
  float* p = shared_base();
  const int H = a.H, G = 3 * H, T = a.T;
  const int H4 = static_cast<int>(round4(H)), G4 = static_cast<int>(round4(G));
  const float* w = a.w;
  if (a.weights_on_chip) {
    copy_to_shared(p, a.w, static_cast<int64_t>(H) * G4);
    w = p;
    p += static_cast<int64_t>(H) * G4;
  }
  float* h = p;            // [BT, H4]
  float* gh = h + BT * H4; // [BT, G4]
  zero_shared(h, BT * (H4 + G4));
  __syncthreads();
  const int b0 = blockIdx.x * BT, rows = min(BT, a.B - b0);
  for (int i = threadIdx.x; i < rows * H; i += blockDim.x)
    h[(i / H) * H4 + i % H] = a.h0[static_cast<int64_t>(b0) * H + i];
  __syncthreads();
  const MatVec product{w, G4, H, G4 / 4, a.b_hh, gh, G4, false};
  for (int t = 0; t < T; ++t) {
    matvec1<BT>(product, h, H4);
    __syncthreads();
    for (int i = threadIdx.x; i < rows * H; i += blockDim.x) {
      const int b = i / H, j = i % H;
      const int64_t bt = static_cast<int64_t>(b0 + b) * T + t;
      const float* gi = a.gi + bt * G;
      const float* g = gh + b * G4;
      float* hj = h + b * H4 + j;
      const float hn = gru_cell(gi[j], gi[H + j], gi[2 * H + j], g[j], g[H + j], g[2 * H + j], *hj);
      *hj = hn;
      a.out[bt * H + j] = hn;
      if (a.gates) {
        float* saved = a.gates + bt * G;
        saved[j] = g[j];
        saved[H + j] = g[H + j];
        saved[2 * H + j] = g[2 * H + j];
      }
    }
    __syncthreads();
  }
}

struct ScanBackwardArgs {
  const float* grad_out;  // [B, T, H]
  const float* gi;        // [B, T, 3H]
  const float* gh;        // [B, T, 3H]
  const float* h0;        // [B, H]
  const float* out;       // [B, T, H]
  const float* w;         // W_hh [3H, H4]
  float* d_gi;            // [B, T, 3H]
  float* d_gh;            // [B, T, 3H]
  float* d_h0;            // [B, H]
  int B, T, H;
  bool weights_on_chip;
};

template <int BT>
__global__ void __launch_bounds__(kThreads, 1) scan_backward_kernel(ScanBackwardArgs a) {
  float* p = shared_base();
  const int H = a.H, G = 3 * H, T = a.T;
  const int H4 = static_cast<int>(round4(H)), G4 = static_cast<int>(round4(G));
  const float* w = a.w;
  if (a.weights_on_chip) {
    copy_to_shared(p, a.w, static_cast<int64_t>(G) * H4);
    w = p;
    p += static_cast<int64_t>(G) * H4;
  }
  float* dh = p;             // [BT, H4]  dL/dh
  float* dgh = dh + BT * H4; // [BT, G4]  this step's hidden-gate gradients
  zero_shared(dh, BT * (H4 + G4));
  __syncthreads();
  const int b0 = blockIdx.x * BT, rows = min(BT, a.B - b0);
  const MatVec product{w, H4, G, H4 / 4, nullptr, dh, H4, true};
  for (int t = T - 1; t >= 0; --t) {
    for (int i = threadIdx.x; i < rows * H; i += blockDim.x) {
      const int b = i / H, j = i % H;
      const int64_t bt = static_cast<int64_t>(b0 + b) * T + t;
      const float* gi = a.gi + bt * G;
      const float* g = a.gh + bt * G;
      const float h_prev = t > 0 ? a.out[(bt - 1) * H + j] : a.h0[static_cast<int64_t>(b0 + b) * H + j];
      float* dhj = dh + b * H4 + j;
      const float d = *dhj + a.grad_out[bt * H + j];
      const CellGrad c = gru_cell_backward(d, gi[j], gi[H + j], gi[2 * H + j], g[j], g[H + j], g[2 * H + j], h_prev);
      float* dgi_t = a.d_gi + bt * G;
      float* dgh_t = a.d_gh + bt * G;
      dgi_t[j] = c.da_r;
      dgi_t[H + j] = c.da_z;
      dgi_t[2 * H + j] = c.da_n;
      dgh_t[j] = c.da_r;
      dgh_t[H + j] = c.da_z;
      dgh_t[2 * H + j] = c.da_n * c.r;
      float* dg = dgh + b * G4;
      dg[j] = c.da_r;
      dg[H + j] = c.da_z;
      dg[2 * H + j] = c.da_n * c.r;
      *dhj = c.direct;
    }
    __syncthreads();
    matvec1<BT>(product, dgh, G4);  // dh += dgh @ W_hh
    __syncthreads();
  }
  for (int i = threadIdx.x; i < rows * H; i += blockDim.x)
    a.d_h0[static_cast<int64_t>(b0) * H + i] = dh[(i / H) * H4 + i % H];
}

}  // namespace

#if defined(__CUDACC__)  // launching needs nvcc (the kernels above also build for the host emulation)
cudaError_t launch_scan_forward(const float* gi, const float* h0, const float* w_hh_t, const float* b_hh,
                                float* out, float* gates, int64_t B, int64_t T, int64_t H, cudaStream_t stream) {
  if (B == 0) return cudaSuccess;
  int sms = 0;
  int64_t smem_limit = 0;
  if (const cudaError_t err = device_limits(&sms, &smem_limit); err != cudaSuccess) return err;
  const KernelPlan plan = plan_scan_forward(B, H, sms, smem_limit);
  const ScanForwardArgs args{gi, h0, w_hh_t, b_hh, out, gates, static_cast<int>(B), static_cast<int>(T),
                             static_cast<int>(H), plan.weights_on_chip};
  return launch_planned(scan_forward_kernel<1>, scan_forward_kernel<2>, scan_forward_kernel<4>,
                        scan_forward_kernel<8>, plan, args, stream);
}

cudaError_t launch_scan_backward(const float* grad_out, const float* gi, const float* gh, const float* h0,
                                 const float* out, const float* w_hh, float* d_gi, float* d_gh, float* d_h0,
                                 int64_t B, int64_t T, int64_t H, cudaStream_t stream) {
  if (B == 0) return cudaSuccess;
  int sms = 0;
  int64_t smem_limit = 0;
  if (const cudaError_t err = device_limits(&sms, &smem_limit); err != cudaSuccess) return err;
  const KernelPlan plan = plan_scan_backward(B, H, sms, smem_limit);
  const ScanBackwardArgs args{grad_out, gi, gh, h0, out, w_hh, d_gi, d_gh, d_h0, static_cast<int>(B),
                              static_cast<int>(T), static_cast<int>(H), plan.weights_on_chip};
  return launch_planned(scan_backward_kernel<1>, scan_backward_kernel<2>, scan_backward_kernel<4>,
                        scan_backward_kernel<8>, plan, args, stream);
}

#endif  // __CUDACC__

}  // namespace rnngen::cuda
