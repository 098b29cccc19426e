// Fused CUDA decode (the article's generator): each step's output is the next step's input.
// Layout and sizing rules: see the top of sample.cu (plan.h). The math follows
// rnngen/ops/decode/naive.py.
//
// forward:  shared: [W_hh^T (H x G4)] [W_out^T (H x C4)] (each if it fits) h [R, H4] | y [R, G4 + C4]
//           per step: y = [h W_hh^T + b_hh | h W_out^T + b_out] (block product), barrier;
//           per (row, unit): gi = W_ih x_t + b_ih (C terms, W_ih from global memory),
//           h = GRU(gi, gh, h), hidden_t and out_t = x_t written; barrier.
// backward: shared: [W_hh (3H x H4)] dh [R, H4] | dgi [R, G4] | dgh [R, G4] | dx [R, C4]
//           per step (t = T-1 .. 0): dh += grad_hidden_t; the cell's backward per (row, unit)
//           (d_gi_t, d_gh_t to global and shared), dh = dh * z; barrier; dh += dgh @ W_hh
//           (block product) and dx_t = grad_out_t + dgi @ W_ih (one warp per (row, output),
//           written to global d_x for the weight GEMMs); barrier; dh += dx_t @ W_out; barrier.
#include "gru_device.cuh"
#include "launchers.h"

namespace rnngen::cuda {
namespace {

struct DecodeForwardArgs {
  const float* h0;     // [B, H]
  const float* w_ih;   // [3H, C]
  const float* b_ih;   // [3H]
  const float* w;      // W_hh^T [H, G4]
  const float* b_hh;   // [G4]
  const float* head;   // W_out^T [H, C4]
  const float* b_out;  // [C4]
  float* out;          // [B, T, C]
  float* hidden;       // [B, T, H]
  int B, T, H, C;
  bool weights_on_chip, head_on_chip;
};

template <int BT>
__global__ void __launch_bounds__(kThreads, 1) decode_forward_kernel(DecodeForwardArgs a) {
  float* p = shared_base();
  const int H = a.H, G = 3 * H, T = a.T, C = a.C;
  const int H4 = static_cast<int>(round4(H)), G4 = static_cast<int>(round4(G)), C4 = static_cast<int>(round4(C));
  const float* w = a.w;
  if (a.weights_on_chip) {
    copy_to_shared(p, a.w, static_cast<int64_t>(H) * G4);
    w = p;
    p += static_cast<int64_t>(H) * G4;
  }
  const float* head = a.head;
  if (a.head_on_chip) {
    copy_to_shared(p, a.head, static_cast<int64_t>(H) * C4);
    head = p;
    p += static_cast<int64_t>(H) * C4;
  }
  const int ldy = G4 + C4;
  float* h = p;            // [BT, H4]
  float* y = h + BT * H4;  // [BT, G4 + C4]: hidden gates | output x_t
  zero_shared(h, BT * (H4 + ldy));
  __syncthreads();
  const int b0 = blockIdx.x * BT, rows = min(BT, a.B - b0);
  for (int i = threadIdx.x; i < rows * H; i += blockDim.x)
    h[(i / H) * H4 + i % H] = a.h0[static_cast<int64_t>(b0) * H + i];
  __syncthreads();
  const MatVec gates{w, G4, H, G4 / 4, a.b_hh, y, ldy, false};
  const MatVec outputs{head, C4, H, C4 / 4, a.b_out, y + G4, ldy, false};
  for (int t = 0; t < T; ++t) {
    matvec2<BT>(gates, outputs, h, H4);
    __syncthreads();
    for (int i = threadIdx.x; i < rows * C; i += blockDim.x) {
      const int b = i / C, c = i % C;
      a.out[(static_cast<int64_t>(b0 + b) * T + t) * C + c] = y[b * ldy + G4 + c];
    }
    for (int i = threadIdx.x; i < rows * H; i += blockDim.x) {
      const int b = i / H, j = i % H;
      const float* x = y + b * ldy + G4;
      const float* g = y + b * ldy;
      float gi[3];
#pragma unroll
      for (int q = 0; q < 3; ++q) {
        const float* wr = a.w_ih + static_cast<int64_t>(q * H + j) * C;
        float s = a.b_ih[q * H + j];
        for (int c = 0; c < C; ++c) s = fmaf(wr[c], x[c], s);
        gi[q] = s;
      }
      float* hj = h + b * H4 + j;
      const float hn = gru_cell(gi[0], gi[1], gi[2], g[j], g[H + j], g[2 * H + j], *hj);
      *hj = hn;
      a.hidden[(static_cast<int64_t>(b0 + b) * T + t) * H + j] = hn;
    }
    __syncthreads();
  }
}

struct DecodeBackwardArgs {
  const float* grad_out;     // [B, T, C]
  const float* grad_hidden;  // [B, T, H]
  const float* gi;           // [B, T, 3H]
  const float* gh;           // [B, T, 3H]
  const float* h0;           // [B, H]
  const float* hidden;       // [B, T, H]
  const float* w_ih;         // [3H, C]
  const float* w;            // W_hh [3H, H4]
  const float* w_out;        // [C, H]
  float* d_gi;               // [B, T, 3H]
  float* d_gh;               // [B, T, 3H]
  float* d_x;                // [B, T, C]
  float* d_h0;               // [B, H]
  int B, T, H, C;
  bool weights_on_chip;
};

template <int BT>
__global__ void __launch_bounds__(kThreads, 1) decode_backward_kernel(DecodeBackwardArgs a) {
  float* p = shared_base();
  const int H = a.H, G = 3 * H, T = a.T, C = a.C;
  const int H4 = static_cast<int>(round4(H)), G4 = static_cast<int>(round4(G)), C4 = static_cast<int>(round4(C));
  const float* w = a.w;
  if (a.weights_on_chip) {
    copy_to_shared(p, a.w, static_cast<int64_t>(G) * H4);
    w = p;
    p += static_cast<int64_t>(G) * H4;
  }
  float* dh = p;              // [BT, H4]
  float* dgi = dh + BT * H4;  // [BT, G4]
  float* dgh = dgi + BT * G4; // [BT, G4]
  float* dx = dgh + BT * G4;  // [BT, C4]
  zero_shared(dh, BT * (H4 + 2 * G4 + C4));
  __syncthreads();
  const int b0 = blockIdx.x * BT, rows = min(BT, a.B - b0);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const MatVec product{w, H4, G, H4 / 4, nullptr, dh, H4, true};
  for (int t = T - 1; t >= 0; --t) {
    for (int i = threadIdx.x; i < rows * H; i += blockDim.x) {
      const int b = i / H, j = i % H;
      const int64_t bt = static_cast<int64_t>(b0 + b) * T + t;
      const float* gi = a.gi + bt * G;
      const float* g = a.gh + bt * G;
      const float h_prev = t > 0 ? a.hidden[(bt - 1) * H + j] : a.h0[static_cast<int64_t>(b0 + b) * H + j];
      float* dhj = dh + b * H4 + j;
      const float d = *dhj + a.grad_hidden[bt * H + j];
      const CellGrad c = gru_cell_backward(d, gi[j], gi[H + j], gi[2 * H + j], g[j], g[H + j], g[2 * H + j], h_prev);
      float* dgi_t = a.d_gi + bt * G;
      float* dgh_t = a.d_gh + bt * G;
      dgi_t[j] = c.da_r;
      dgi_t[H + j] = c.da_z;
      dgi_t[2 * H + j] = c.da_n;
      dgh_t[j] = c.da_r;
      dgh_t[H + j] = c.da_z;
      dgh_t[2 * H + j] = c.da_n * c.r;
      float* di = dgi + b * G4;
      di[j] = c.da_r;
      di[H + j] = c.da_z;
      di[2 * H + j] = c.da_n;
      float* dg = dgh + b * G4;
      dg[j] = c.da_r;
      dg[H + j] = c.da_z;
      dg[2 * H + j] = c.da_n * c.r;
      *dhj = c.direct;
    }
    __syncthreads();
    matvec1<BT>(product, dgh, G4);  // dh += dgh @ W_hh
    for (int q = warp; q < rows * C; q += kThreads / 32) {  // dx_t = grad_out_t + dgi @ W_ih
      const int b = q / C, c = q % C;
      const float* di = dgi + b * G4;
      float s = 0.0f;
      for (int g = lane; g < G; g += 32) s = fmaf(di[g], a.w_ih[static_cast<int64_t>(g) * C + c], s);
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
      if (lane == 0) {
        const int64_t btc = (static_cast<int64_t>(b0 + b) * T + t) * C + c;
        s += a.grad_out[btc];
        dx[b * C4 + c] = s;
        a.d_x[btc] = s;
      }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < rows * H; i += blockDim.x) {  // dh += dx_t @ W_out
      const int b = i / H, j = i % H;
      float s = dh[b * H4 + j];
      for (int c = 0; c < C; ++c) s = fmaf(dx[b * C4 + c], a.w_out[static_cast<int64_t>(c) * H + j], s);
      dh[b * H4 + j] = s;
    }
    __syncthreads();
  }
  for (int i = threadIdx.x; i < rows * H; i += blockDim.x)
    a.d_h0[static_cast<int64_t>(b0) * H + i] = dh[(i / H) * H4 + i % H];
}

}  // namespace

#if defined(__CUDACC__)  // launching needs nvcc (the kernels above also build for the host emulation)
cudaError_t launch_decode_forward(const float* h0, const float* w_ih, const float* b_ih, const float* w_hh_t,
                                  const float* b_hh, const float* w_out_t, const float* b_out, float* out,
                                  float* hidden, int64_t B, int64_t T, int64_t H, int64_t C, cudaStream_t stream) {
  if (B == 0) return cudaSuccess;
  int sms = 0;
  int64_t smem_limit = 0;
  if (const cudaError_t err = device_limits(&sms, &smem_limit); err != cudaSuccess) return err;
  const KernelPlan plan = plan_decode_forward(B, H, C, sms, smem_limit);
  const DecodeForwardArgs args{h0, w_ih, b_ih, w_hh_t, b_hh, w_out_t, b_out, out, hidden, static_cast<int>(B),
                               static_cast<int>(T), static_cast<int>(H), static_cast<int>(C), plan.weights_on_chip,
                               plan.head_on_chip};
  return launch_planned(decode_forward_kernel<1>, decode_forward_kernel<2>, decode_forward_kernel<4>,
                        decode_forward_kernel<8>, plan, args, stream);
}

cudaError_t launch_decode_backward(const float* grad_out, const float* grad_hidden, const float* gi,
                                   const float* gh, const float* h0, const float* hidden, const float* w_ih,
                                   const float* w_hh, const float* w_out, float* d_gi, float* d_gh, float* d_x,
                                   float* d_h0, int64_t B, int64_t T, int64_t H, int64_t C, cudaStream_t stream) {
  if (B == 0) return cudaSuccess;
  int sms = 0;
  int64_t smem_limit = 0;
  if (const cudaError_t err = device_limits(&sms, &smem_limit); err != cudaSuccess) return err;
  const KernelPlan plan = plan_decode_backward(B, H, C, sms, smem_limit);
  const DecodeBackwardArgs args{grad_out, grad_hidden, gi, gh, h0, hidden, w_ih, w_hh, w_out, d_gi, d_gh, d_x, d_h0,
                                static_cast<int>(B), static_cast<int>(T), static_cast<int>(H), static_cast<int>(C),
                                plan.weights_on_chip};
  return launch_planned(decode_backward_kernel<1>, decode_backward_kernel<2>, decode_backward_kernel<4>,
                        decode_backward_kernel<8>, plan, args, stream);
}

#endif  // __CUDACC__

}  // namespace rnngen::cuda
