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


// ---- sm_90 cluster variants (plan_scan_*_cluster in plan.h) ----
// kClusterBlocks blocks share a tile of BT rows; block q owns units [q S, (q+1) S), S = H / N.
// forward:  shared: W_hh^T's columns of its units' gates [H, 3S], b_hh's, the full h [BT, H], its
//           units of the new h (two buffers, by step parity), k-split partial sums. Per step:
//           partial gates (k split over the warps), barrier, its units' GRU update (sums the
//           partials; writes out_t and gates_t), cluster barrier, gather the full h from the
//           other blocks (distributed shared memory), barrier. Two buffers for the own units let
//           one cluster barrier per step suffice: a block writes buffer t % 2 again only after
//           the next cluster barrier, which every block passes after its gather.
// backward: shared: W_hh's columns of its units [3H, S], dh of its units, its units' dgh (two
//           buffers), all dgh [BT, 3H] gathered, partial sums. Per step: the cell's backward for
//           its units, cluster barrier, gather every block's dgh, barrier, dh += dgh @ W_hh[:, own]
//           (k = 3H split over the warps), barrier, partial sums added, barrier.
template <int BT>
__global__ void __launch_bounds__(kThreads, 1) scan_forward_cluster_kernel(ScanForwardArgs a, int S) {
#if (defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900) || defined(RNNGEN_CUDA_EMULATION)
  Cluster cluster;
  const int q = static_cast<int>(cluster.block_rank());
  const int tile = blockIdx.x / kClusterBlocks;
  float* p = shared_base();
  const int H = a.H, G = 3 * H, T = a.T, S3 = 3 * S;
  const int G4 = static_cast<int>(round4(G));
  float* w = p;  // [H, 3S]: column g*S + s is W_hh^T's column g*H + q*S + s
  p += static_cast<int64_t>(H) * S3;
  float* bh = p;  // [3S]
  p += S3;
  float* h = p;                     // [BT, H]
  float* h_own = h + BT * H;        // [2][BT, S]
  float* partial = h_own + 2 * BT * S;  // [P, BT, 3S]
  for (int64_t i = threadIdx.x; i < static_cast<int64_t>(H) * S3; i += blockDim.x) {
    const int k = static_cast<int>(i / S3), col = static_cast<int>(i % S3);
    w[i] = a.w[static_cast<int64_t>(k) * G4 + (col / S) * H + q * S + col % S];
  }
  for (int i = threadIdx.x; i < S3; i += blockDim.x) bh[i] = a.b_hh[(i / S) * H + q * S + i % S];
  const int groups = S3 / 4;
  int P = kThreads / groups;
  P = P < 1 ? 1 : P > 8 ? 8 : P;
  const int kc = static_cast<int>(round4((H + P - 1) / P));
  zero_shared(h, BT * (H + 2 * S) + P * BT * S3);
  __syncthreads();
  const int b0 = tile * BT, rows = min(BT, a.B - b0);
  for (int i = threadIdx.x; i < rows * H; i += blockDim.x) h[i] = a.h0[static_cast<int64_t>(b0) * H + i];
  __syncthreads();
  for (int t = 0; t < T; ++t) {
    for (int idx = threadIdx.x; idx < groups * P; idx += blockDim.x) {
      const int part = idx / groups, i = idx % groups;
      const int k0 = min(H, part * kc), k1 = min(H, k0 + kc);
      matvec_group<BT>(w + static_cast<int64_t>(k0) * S3, S3, k1 - k0, part > 0 ? nullptr : bh,
                       partial + part * BT * S3, S3, false, i, h + k0, H);
    }
    __syncthreads();
    float* own = h_own + (t & 1) * BT * S;
    for (int i = threadIdx.x; i < rows * S; i += blockDim.x) {
      const int b = i / S, s = i % S, j = q * S + s;
      float g[3];
#pragma unroll
      for (int gate = 0; gate < 3; ++gate) {
        const int col = b * S3 + gate * S + s;
        float sum = partial[col];
        for (int part = 1; part < P; ++part) sum += partial[part * BT * S3 + col];
        g[gate] = sum;
      }
      const int64_t bt = static_cast<int64_t>(b0 + b) * T + t;
      const float* gi = a.gi + bt * G;
      const float hn = gru_cell(gi[j], gi[H + j], gi[2 * H + j], g[0], g[1], g[2], h[b * H + j]);
      own[b * S + s] = hn;
      a.out[bt * H + j] = hn;
      if (a.gates) {
        float* saved = a.gates + bt * G;
        saved[j] = g[0];
        saved[H + j] = g[1];
        saved[2 * H + j] = g[2];
      }
    }
    cluster.sync();  // every block's units of h_t are written
    for (int i = threadIdx.x; i < rows * H; i += blockDim.x) {
      const int b = i / H, j = i % H;
      h[i] = cluster.map_shared_rank(own, j / S)[b * S + j % S];
    }
    __syncthreads();
  }
  cluster.sync();  // the others may still read this block's last units
#else
  __trap();  // never launched: the launcher checks the kernel was compiled for sm_90 or later
#endif
}

template <int BT>
__global__ void __launch_bounds__(kThreads, 1) scan_backward_cluster_kernel(ScanBackwardArgs a, int S) {
#if (defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900) || defined(RNNGEN_CUDA_EMULATION)
  Cluster cluster;
  const int q = static_cast<int>(cluster.block_rank());
  const int tile = blockIdx.x / kClusterBlocks;
  float* p = shared_base();
  const int H = a.H, G = 3 * H, T = a.T, S3 = 3 * S;
  const int H4 = static_cast<int>(round4(H));
  float* w = p;  // [3H, S]: W_hh's columns q*S .. q*S + S
  p += static_cast<int64_t>(G) * S;
  float* dh = p;                       // [BT, S]
  float* dgh_own = dh + BT * S;        // [2][BT, 3S]: r | z | n of its units
  float* dgh = dgh_own + 2 * BT * S3;  // [BT, 3H]: every unit's, gate order r | z | n
  float* partial = dgh + BT * G;       // [P, BT, S]
  for (int64_t i = threadIdx.x; i < static_cast<int64_t>(G) * S; i += blockDim.x)
    w[i] = a.w[(i / S) * H4 + q * S + i % S];
  const int groups = S / 4;
  int P = kThreads / groups;
  P = P < 1 ? 1 : P > 8 ? 8 : P;
  const int kc = static_cast<int>(round4((G + P - 1) / P));
  zero_shared(dh, BT * (S + 2 * S3 + G) + P * BT * S);
  __syncthreads();
  const int b0 = tile * BT, rows = min(BT, a.B - b0);
  for (int t = T - 1; t >= 0; --t) {
    float* own = dgh_own + (t & 1) * BT * S3;
    for (int i = threadIdx.x; i < rows * S; i += blockDim.x) {
      const int b = i / S, s = i % S, j = q * S + s;
      const int64_t bt = static_cast<int64_t>(b0 + b) * T + t;
      const float* gi = a.gi + bt * G;
      const float* g = a.gh + bt * G;
      const float h_prev = t > 0 ? a.out[(bt - 1) * H + j] : a.h0[static_cast<int64_t>(b0 + b) * H + j];
      const float d = dh[b * S + s] + a.grad_out[bt * H + j];
      const CellGrad c = gru_cell_backward(d, gi[j], gi[H + j], gi[2 * H + j], g[j], g[H + j], g[2 * H + j], h_prev);
      float* dgi_t = a.d_gi + bt * G;
      float* dgh_t = a.d_gh + bt * G;
      dgi_t[j] = c.da_r;
      dgi_t[H + j] = c.da_z;
      dgi_t[2 * H + j] = c.da_n;
      dgh_t[j] = c.da_r;
      dgh_t[H + j] = c.da_z;
      dgh_t[2 * H + j] = c.da_n * c.r;
      own[b * S3 + s] = c.da_r;
      own[b * S3 + S + s] = c.da_z;
      own[b * S3 + 2 * S + s] = c.da_n * c.r;
      dh[b * S + s] = c.direct;
    }
    cluster.sync();  // every block's dgh of step t is written
    for (int i = threadIdx.x; i < rows * G; i += blockDim.x) {
      const int b = i / G, g = i % G, gate = g / H, j = g % H;
      dgh[i] = cluster.map_shared_rank(own, j / S)[b * S3 + gate * S + j % S];
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < groups * P; idx += blockDim.x) {  // dgh @ W_hh[:, own units]
      const int part = idx / groups, i = idx % groups;
      const int k0 = min(G, part * kc), k1 = min(G, k0 + kc);
      matvec_group<BT>(w + static_cast<int64_t>(k0) * S, S, k1 - k0, nullptr, partial + part * BT * S, S, false, i,
                       dgh + k0, G);
    }
    __syncthreads();
    for (int i = threadIdx.x; i < BT * S; i += blockDim.x) {
      float sum = dh[i];
      for (int part = 0; part < P; ++part) sum += partial[part * BT * S + i];
      dh[i] = sum;
    }
    __syncthreads();
  }
  for (int i = threadIdx.x; i < rows * S; i += blockDim.x)
    a.d_h0[static_cast<int64_t>(b0 + i / S) * H + q * S + i % S] = dh[i];
  cluster.sync();  // the others may still read this block's last dgh
#else
  __trap();  // never launched: the launcher checks the kernel was compiled for sm_90 or later
#endif
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
  if (!plan.weights_on_chip && clusters_enabled()) {  // W_hh only fits split over a cluster's blocks
    const ClusterPlan cp = plan_scan_forward_cluster(B, H, sms / kClusterBlocks, smem_limit);
    const auto pick = [](int rows) {
      return rows == 1 ? scan_forward_cluster_kernel<1> : rows == 2 ? scan_forward_cluster_kernel<2>
           : rows == 4 ? scan_forward_cluster_kernel<4> : scan_forward_cluster_kernel<8>;
    };
    const auto replan = [&](int64_t clusters) { return plan_scan_forward_cluster(B, H, clusters, smem_limit); };
    const cudaError_t err = launch_clusters(cp, pick, replan, stream, args, static_cast<int>(cp.units));
    if (err != cudaErrorNotSupported) return err;
  }
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
  if (!plan.weights_on_chip && clusters_enabled()) {
    const ClusterPlan cp = plan_scan_backward_cluster(B, H, sms / kClusterBlocks, smem_limit);
    const auto pick = [](int rows) {
      return rows == 1 ? scan_backward_cluster_kernel<1> : rows == 2 ? scan_backward_cluster_kernel<2>
           : rows == 4 ? scan_backward_cluster_kernel<4> : scan_backward_cluster_kernel<8>;
    };
    const auto replan = [&](int64_t clusters) { return plan_scan_backward_cluster(B, H, clusters, smem_limit); };
    const cudaError_t err = launch_clusters(cp, pick, replan, stream, args, static_cast<int>(cp.units));
    if (err != cudaErrorNotSupported) return err;
  }
  return launch_planned(scan_backward_kernel<1>, scan_backward_kernel<2>, scan_backward_kernel<4>,
                        scan_backward_kernel<8>, plan, args, stream);
}

#endif  // __CUDACC__

}  // namespace rnngen::cuda
