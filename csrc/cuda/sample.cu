// Fused CUDA sample: one launch generates the whole batch, all T steps (logits, the contract's
// Philox inverse-CDF draw, the drawn value's gate row as the next input, conditioning, forced
// known values). The math follows rnngen/ops/sample/naive.py; the op layer has checked every
// input (known values in range included) and made it contiguous.
//
// How every fused CUDA kernel of rnngen (sample.cu, decode.cu, scan.cu) is laid out
// (rules in plan.h, shared by the launchers and the tests):
//
// - One block of 256 threads per tile of R batch rows (R = 1, 2, 4 or 8: the fewest that give
//   each multiprocessor at most one block, e.g. B <= 132 on an H100 gives R = 1); the block runs
//   the whole time loop for its rows, so no grid-wide synchronisation is ever needed.
// - Shared memory holds, per row, the hidden state h (H floats), the step's hidden gates
//   W_hh h + b_hh (3H) and the logits / outputs (K or C): (4H + K) * 4 bytes per row for sample.
//   h never leaves the chip between steps.
// - The recurrent weight goes into shared memory (once, before the time loop) when it fits
//   beside that state, then the output head(s) when they fit too; what does not fit is read
//   from global memory every step, where it stays resident in L2 (50 MB on an H100, 40 MB on
//   an A100) because every block reads the same bytes. In float32, W_hh^T takes 12 H^2 bytes:
//     H = 64: 48 KB, H = 96: 108 KB, H = 128: 192 KB (on chip on sm_90: 227 KB per block;
//     not on sm_80: 163 KB), H = 256: 768 KB (always from L2).
//   The head of sample (C channels, K values) takes 4 C K H bytes: K = 256, H = 64: 64 KB (on
//   chip beside W_hh on sm_90 and sm_80); H = 128: 128 KB (from L2).
// - Per step: the block's threads compute [W_hh h + b_hh | W_out[c] h + b_out[c]] for all R rows
//   (thread i owns 4 output columns; R float4 accumulators in registers; weights read once per
//   block per step, shared across the R rows), __syncthreads, then one warp per row draws its
//   value (u from Philox at offset (row_offset + b) * T + t, c = t % C, or the known value), then
//   every (row, unit) updates h in place; 3 barriers per step.
// - The per-step cost is bound by reading the weights (shared memory ~128 B/clock/SM, L2 for
//   the rest), so R rows per block cost about as much as one while R <= 8.
// - Limits: R halves while one block's state exceeds the device's opt-in shared memory; one
//   row's state alone must fit (sample: 4H + K floats; about H <= 14000 on sm_90), else the
//   launcher returns cudaErrorInvalidConfiguration and the op raises.
// - decode keeps [W_hh^T | W_out^T] like sample (C outputs instead of K logits) and reads W_ih
//   [3H, C] from global memory (C is small); scan forward keeps W_hh^T only. The backward
//   kernels keep W_hh itself (the product dh += dgh @ W_hh) with the same rule and carry dL/dh
//   in shared memory; their weight gradients are GEMMs (cuBLAS) after the reverse loop.
#include "gru_device.cuh"
#include "launchers.h"

namespace rnngen::cuda {
namespace {

struct SampleArgs {
  const float* h0;    // [B, H]
  const float* emb;   // [C, K, 3H]
  const float* cond;  // [B, 3H]
  const float* w;     // W_hh^T, [H, G4] zero-padded
  const float* b_hh;  // [G4]
  const float* head;  // W_out[c]^T, [C, H, K4] zero-padded
  const float* b_out; // [C, K4]
  const int64_t* known;  // [B, T] or null
  int64_t* values;       // [B, T]
  int B, T, H, C, K;
  float temperature;
  uint64_t seed;
  int64_t row_offset;
  bool weights_on_chip, head_on_chip;
};

template <int BT>
__global__ void __launch_bounds__(kThreads, 1) sample_kernel(SampleArgs a) {
  extern __shared__ float4 smem4[];
  float* p = reinterpret_cast<float*>(smem4);
  const int H = a.H, G = 3 * H, K = a.K, C = a.C, T = a.T;
  const int H4 = static_cast<int>(round4(H)), G4 = static_cast<int>(round4(G)), K4 = static_cast<int>(round4(K));
  const float* w = a.w;
  if (a.weights_on_chip) {
    copy_to_shared(p, a.w, static_cast<int64_t>(H) * G4);
    w = p;
    p += static_cast<int64_t>(H) * G4;
  }
  const float* head = a.head;
  if (a.head_on_chip) {
    copy_to_shared(p, a.head, static_cast<int64_t>(C) * H * K4);
    head = p;
    p += static_cast<int64_t>(C) * H * K4;
  }
  const int ldy = G4 + K4;
  float* h = p;            // [BT, H4]
  float* y = h + BT * H4;  // [BT, G4 + K4]: hidden gates | logits
  int* vbuf = reinterpret_cast<int*>(y + BT * ldy);  // [BT] the drawn values
  zero_shared(h, BT * (H4 + ldy));
  __syncthreads();
  const int b0 = blockIdx.x * BT, rows = min(BT, a.B - b0);
  for (int i = threadIdx.x; i < rows * H; i += blockDim.x)
    h[(i / H) * H4 + i % H] = a.h0[static_cast<int64_t>(b0) * H + i];
  __syncthreads();

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int t = 0; t < T; ++t) {
    const int c = t % C;
    const MatVec gates{w, G4, H, G4 / 4, a.b_hh, y, ldy, false};
    const MatVec logits{head + static_cast<int64_t>(c) * H * K4, K4, H, K4 / 4, a.b_out + static_cast<int64_t>(c) * K4,
                        y + G4, ldy, false};
    matvec2<BT>(gates, logits, h, H4);
    __syncthreads();
    for (int b = warp; b < rows; b += kThreads / 32) {
      const int64_t bt = static_cast<int64_t>(b0 + b) * T + t;
      const int64_t forced = a.known ? a.known[bt] : -1;
      int v;
      if (forced >= 0) {
        v = static_cast<int>(forced);
      } else {
        const uint64_t offset = static_cast<uint64_t>(a.row_offset + b0 + b) * static_cast<uint64_t>(T) + t;
        v = warp_draw(y + b * ldy + G4, K, a.temperature, philox_uniform(a.seed, offset), lane);
      }
      if (lane == 0) {
        a.values[bt] = v;
        vbuf[b] = v;
      }
    }
    __syncthreads();
    if (t + 1 == T) break;
    for (int i = threadIdx.x; i < rows * H; i += blockDim.x) {  // h_{t+1} = GRU(emb[c][v] + cond, h_t)
      const int b = i / H, j = i % H;
      const float* e = a.emb + (static_cast<int64_t>(c) * K + vbuf[b]) * G;
      const float* cd = a.cond + static_cast<int64_t>(b0 + b) * G;
      const float* gh = y + b * ldy;
      float* hj = h + b * H4 + j;
      *hj = gru_cell(e[j] + cd[j], e[H + j] + cd[H + j], e[2 * H + j] + cd[2 * H + j], gh[j], gh[H + j],
                     gh[2 * H + j], *hj);
    }
    __syncthreads();
  }
}

}  // namespace

cudaError_t launch_sample(const float* h0, const float* emb, const float* cond, const float* w_hh_t,
                          const float* b_hh, const float* w_out_t, const float* b_out, float temperature,
                          uint64_t seed, int64_t row_offset, const int64_t* known, int64_t* values, int64_t B,
                          int64_t T, int64_t H, int64_t C, int64_t K, cudaStream_t stream) {
  if (B == 0) return cudaSuccess;
  int sms = 0;
  int64_t smem_limit = 0;
  if (const cudaError_t err = device_limits(&sms, &smem_limit); err != cudaSuccess) return err;
  const KernelPlan plan = plan_sample(B, H, C, K, sms, smem_limit);
  const SampleArgs args{h0, emb, cond, w_hh_t, b_hh, w_out_t, b_out, known, values,
                        static_cast<int>(B), static_cast<int>(T), static_cast<int>(H), static_cast<int>(C),
                        static_cast<int>(K), temperature, seed, row_offset, plan.weights_on_chip, plan.head_on_chip};
  return launch_planned(sample_kernel<1>, sample_kernel<2>, sample_kernel<4>, sample_kernel<8>, plan, args, stream);
}

}  // namespace rnngen::cuda
