// Fused CUDA scan: forward (every hidden state of a cell over given input gates) and the
// reverse loop of its backward, templates over the cell (cells.cuh: the GRU, the LSTM, the Elman
// cells). Layout and sizing rules: see the top of sample.cu (plan.h). The math follows
// rnngen/ops/scan/naive.py. G = gates * H (3H for the GRU, 4H for the LSTM, H for Elman).
//
// forward:  shared: [W_hh^T (H x G4) if it fits] h [R, H4] | gh [R, G4] | c [R, H4] (LSTM)
//           per step: gh = h W_hh^T + b_hh (block product), barrier, (h, c) = cell(gi_t, gh, h, c)
//           per (row, unit), out_t (c_out_t, gates_t) written to global memory, barrier.
// backward: shared: [W_hh (G x H4) if it fits] dh [R, H4] | dgh [R, G4] | dc [R, H4] (LSTM)
//           per step (t = T-1 .. 0): dh += grad_out_t (dc += grad_c_t); the cell's backward per
//           (row, unit) writes d_gi_t (and, for the GRU, d_gh_t: the other cells' are d_gi_t)
//           to global memory for the weight-gradient GEMM after the loop and dgh (shared),
//           dh = the direct part (GRU: dh * z; else 0), dc = dL/dc_{t-1}; barrier;
//           dh += dgh @ W_hh (block product); barrier.
#include "cells.cuh"
#include "launchers.h"

namespace rnngen::cuda {
namespace {

struct ScanForwardArgs {
  const float* gi;    // [B, T, G]
  const float* h0;    // [B, H]
  const float* c0;    // [B, H] (LSTM; else null)
  const float* w;     // W_hh^T [H, G4]
  const float* b_hh;  // [G4]
  float* out;         // [B, T, H]
  float* c_out;       // [B, T, H] (LSTM; else null)
  float* gates;       // [B, T, G] or null
  int B, T, H;
  bool weights_on_chip;
  Operand operand = Operand::f32;  // the cluster variant's product on tensor cores (plan: tensor_cores)
};

template <class Cell, int BT>
__global__ void __launch_bounds__(kThreads, 1) scan_forward_kernel(ScanForwardArgs a) {
  constexpr int NG = Cell::kGates;
  float* p = shared_base();
  const int H = a.H, G = NG * H, T = a.T;
  const int H4 = static_cast<int>(round4(H)), G4 = static_cast<int>(round4(G));
  const float* w = a.w;
  if (a.weights_on_chip) {
    copy_to_shared(p, a.w, static_cast<int64_t>(H) * G4);
    w = p;
    p += static_cast<int64_t>(H) * G4;
  }
  float* h = p;             // [BT, H4]
  float* gh = h + BT * H4;  // [BT, G4]
  float* cs = gh + BT * G4; // [BT, H4] (LSTM)
  zero_shared(h, BT * (H4 + G4 + (Cell::kCellState ? H4 : 0)));
  __syncthreads();
  const int b0 = blockIdx.x * BT, rows = min(BT, a.B - b0);
  for (int i = threadIdx.x; i < rows * H; i += blockDim.x) {
    h[(i / H) * H4 + i % H] = a.h0[static_cast<int64_t>(b0) * H + i];
    if constexpr (Cell::kCellState) cs[(i / H) * H4 + i % H] = a.c0[static_cast<int64_t>(b0) * H + i];
  }
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
      float xi[NG], xh[NG];
#pragma unroll
      for (int q = 0; q < NG; ++q) {
        xi[q] = gi[q * H + j];
        xh[q] = g[q * H + j];
      }
      float* hj = h + b * H4 + j;
      float hn, cn = 0.0f;
      Cell::forward(xi, xh, *hj, Cell::kCellState ? cs[b * H4 + j] : 0.0f, hn, cn);
      *hj = hn;
      a.out[bt * H + j] = hn;
      if constexpr (Cell::kCellState) {
        cs[b * H4 + j] = cn;
        a.c_out[bt * H + j] = cn;
      }
      if (a.gates) {
        float* saved = a.gates + bt * G;
#pragma unroll
        for (int q = 0; q < NG; ++q) saved[q * H + j] = xh[q];
      }
    }
    __syncthreads();
  }
}

struct ScanBackwardArgs {
  const float* grad_out;  // [B, T, H]
  const float* grad_c;    // [B, T, H] (LSTM; null: zero)
  const float* gi;        // [B, T, G] (null for the Elman cells: not read)
  const float* gh;        // [B, T, G] (likewise)
  const float* h0;        // [B, H]
  const float* c0;        // [B, H] (LSTM)
  const float* out;       // [B, T, H]
  const float* c_out;     // [B, T, H] (LSTM)
  const float* w;         // W_hh [G, H4]
  float* d_gi;            // [B, T, G]
  float* d_gh;            // [B, T, G] (GRU; the other cells' equal d_gi: null)
  float* d_h0;            // [B, H]
  float* d_c0;            // [B, H] (LSTM)
  int B, T, H;
  bool weights_on_chip;
};

template <class Cell, int BT>
__global__ void __launch_bounds__(kThreads, 1) scan_backward_kernel(ScanBackwardArgs a) {
  constexpr int NG = Cell::kGates;
  float* p = shared_base();
  const int H = a.H, G = NG * H, T = a.T;
  const int H4 = static_cast<int>(round4(H)), G4 = static_cast<int>(round4(G));
  const float* w = a.w;
  if (a.weights_on_chip) {
    copy_to_shared(p, a.w, static_cast<int64_t>(G) * H4);
    w = p;
    p += static_cast<int64_t>(G) * H4;
  }
  float* dh = p;              // [BT, H4]  dL/dh
  float* dgh = dh + BT * H4;  // [BT, G4]  this step's hidden-gate gradients
  float* dcs = dgh + BT * G4; // [BT, H4]  dL/dc (LSTM)
  zero_shared(dh, BT * (H4 + G4 + (Cell::kCellState ? H4 : 0)));
  __syncthreads();
  const int b0 = blockIdx.x * BT, rows = min(BT, a.B - b0);
  const MatVec product{w, H4, G, H4 / 4, nullptr, dh, H4, true};
  for (int t = T - 1; t >= 0; --t) {
    for (int i = threadIdx.x; i < rows * H; i += blockDim.x) {
      const int b = i / H, j = i % H;
      const int64_t bt = static_cast<int64_t>(b0 + b) * T + t;
      float* dhj = dh + b * H4 + j;
      const float d = *dhj + a.grad_out[bt * H + j];
      float dc = 0.0f;
      if constexpr (Cell::kCellState) dc = dcs[b * H4 + j] + (a.grad_c ? a.grad_c[bt * H + j] : 0.0f);
      float dgi[NG], dghv[NG], direct;
      unit_backward<Cell>(d, dc, Cell::kUsesGates ? a.gi + bt * G : nullptr,
                          Cell::kUsesGates ? a.gh + bt * G : nullptr, H, j, a.out, a.h0, a.c_out, a.c0, b0 + b,
                          bt, t, dgi, dghv, direct);
      float* dgi_t = a.d_gi + bt * G;
      float* dg = dgh + b * G4;
#pragma unroll
      for (int q = 0; q < NG; ++q) dgi_t[q * H + j] = dgi[q];
      if constexpr (Cell::kSplitGrads) {
        float* dgh_t = a.d_gh + bt * G;
#pragma unroll
        for (int q = 0; q < NG; ++q) dgh_t[q * H + j] = dghv[q];
      }
#pragma unroll
      for (int q = 0; q < NG; ++q) dg[q * H + j] = dghv[q];
      *dhj = direct;
      if constexpr (Cell::kCellState) dcs[b * H4 + j] = dc;
    }
    __syncthreads();
    matvec1<BT>(product, dgh, G4);  // dh += dgh @ W_hh
    __syncthreads();
  }
  for (int i = threadIdx.x; i < rows * H; i += blockDim.x) {
    a.d_h0[static_cast<int64_t>(b0) * H + i] = dh[(i / H) * H4 + i % H];
    if constexpr (Cell::kCellState) a.d_c0[static_cast<int64_t>(b0) * H + i] = dcs[(i / H) * H4 + i % H];
  }
}


// ---- split variants: W_hh's columns shared out over a group of N blocks (gru_device.cuh) ----
// Group Cluster: the sm_90 cluster variants (plan_scan_*_cluster in plan.h), N = 8 blocks a tile
// of BT rows, the slices exchanged through distributed shared memory. Group GridGroup: every
// block of a cooperative launch (plan_scan_*_grid: H up to 1024 and more, one tile of B <= 16
// rows), the slices exchanged through a global buffer. Block q owns units [q S, (q+1) S), S = H / N,
// and all NG gates of those units (SG = NG * S columns). "cluster barrier" below: the group's.
// forward:  shared: W_hh^T's columns of its units' gates [H, SG], b_hh's, the full h [BT, H], its
//           units of the new h (two buffers, by step parity), their cell state (LSTM), k-split
//           partial sums. Per step: partial gates (k split over the warps), barrier, its units'
//           cell update (sums the partials; writes out_t, c_out_t and gates_t), cluster barrier,
//           gather the full h from the other blocks (distributed shared memory), barrier. Two
//           buffers for the own units let one cluster barrier per step suffice: a block writes
//           buffer t % 2 again only after the next cluster barrier, which every block passes
//           after its gather. The cell state never leaves its block.
// backward: shared: W_hh's columns of its units [G, S], dh of its units, its units' dgh (two
//           buffers), all dgh [BT, G] gathered, dc of its units (LSTM), partial sums. Per step:
//           the cell's backward for its units, cluster barrier, gather every block's dgh,
//           barrier, dh += dgh @ W_hh[:, own] (k = G split over the warps), barrier, partial sums
//           added, barrier.
template <class Cell, int BT, class Group>
__global__ void __launch_bounds__(kThreads, 1) scan_forward_split_kernel(ScanForwardArgs a, int S, GroupArgs ga) {
  if constexpr (!RNNGEN_SPLIT_RUNS(Group)) {
    __trap();
  } else {
  constexpr int NG = Cell::kGates;
  Group cluster(ga);
  const int q = static_cast<int>(cluster.block_rank());
  const int tile = cluster.tile();
  float* p = shared_base();
  const int H = a.H, G = NG * H, T = a.T, SG = NG * S;
  const int G4 = static_cast<int>(round4(G));
  const bool tc = BT == kMaxClusterRows && a.operand != Operand::f32;  // tensor cores (the plan's choice)
  float* w = p;  // [H, SG]: column g*S + s is W_hh^T's column g*H + q*S + s
  uint32_t* wf = reinterpret_cast<uint32_t*>(p);  // or those columns as packed mma fragments
  p += tc ? packed_weight_floats(H, SG, static_cast<int>(a.operand)) : static_cast<int64_t>(H) * SG;
  float* bh = p;  // [SG]
  p += SG;
  float* h = p;                         // [BT, H]
  float* h_own = cluster.own(h + BT * H, 0);  // [2][BT, S] (shared, or the grid's exchange buffer)
  float* c_own = h + BT * H + 2 * BT * S;     // [BT, S] (LSTM)
  float* partial = c_own + (Cell::kCellState ? BT * S : 0);  // [P, BT, SG]
  const auto column = [&](int k, int col) { return a.w[static_cast<int64_t>(k) * G4 + (col / S) * H + q * S + col % S]; };
  if (tc) {
    pack_b_fragments(wf, H, SG, column, a.operand);
  } else {
    for (int64_t i = threadIdx.x; i < static_cast<int64_t>(H) * SG; i += blockDim.x)
      w[i] = column(static_cast<int>(i / SG), static_cast<int>(i % SG));
  }
  for (int i = threadIdx.x; i < SG; i += blockDim.x) bh[i] = a.b_hh[(i / S) * H + q * S + i % S];
  const int groups = SG / 4;
  int P = kThreads / groups;
  P = tc || P < 1 ? 1 : P > 8 ? 8 : P;
  const int kc = static_cast<int>(round4((H + P - 1) / P));
  zero_shared(h, BT * (H + 2 * S + (Cell::kCellState ? S : 0)) + P * BT * SG);
  __syncthreads();
  const int b0 = tile * BT, rows = min(BT, a.B - b0);
  for (int i = threadIdx.x; i < rows * H; i += blockDim.x) h[i] = a.h0[static_cast<int64_t>(b0) * H + i];
  if constexpr (Cell::kCellState)
    for (int i = threadIdx.x; i < rows * S; i += blockDim.x)
      c_own[i] = a.c0[static_cast<int64_t>(b0 + i / S) * H + q * S + i % S];
  __syncthreads();
  for (int t = 0; t < T; ++t) {
    if (tc) {
      mma_product(wf, H, SG, bh, h, H, partial, SG, a.operand);
    } else {
      for (int idx = threadIdx.x; idx < groups * P; idx += blockDim.x) {
        const int part = idx / groups, i = idx % groups;
        const int k0 = min(H, part * kc), k1 = min(H, k0 + kc);
        matvec_group<BT>(w + static_cast<int64_t>(k0) * SG, SG, k1 - k0, part > 0 ? nullptr : bh,
                         partial + part * BT * SG, SG, false, i, h + k0, H);
      }
    }
    __syncthreads();
    float* own = h_own + (t & 1) * BT * S;
    for (int i = threadIdx.x; i < rows * S; i += blockDim.x) {
      const int b = i / S, s = i % S, j = q * S + s;
      float g[NG], xi[NG];
      const int64_t bt = static_cast<int64_t>(b0 + b) * T + t;
      const float* gi = a.gi + bt * G;
#pragma unroll
      for (int gate = 0; gate < NG; ++gate) {
        const int col = b * SG + gate * S + s;
        float sum = partial[col];
        for (int part = 1; part < P; ++part) sum += partial[part * BT * SG + col];
        g[gate] = sum;
        xi[gate] = gi[gate * H + j];
      }
      float hn, cn = 0.0f;
      Cell::forward(xi, g, h[b * H + j], Cell::kCellState ? c_own[i] : 0.0f, hn, cn);
      own[b * S + s] = hn;
      a.out[bt * H + j] = hn;
      if constexpr (Cell::kCellState) {
        c_own[i] = cn;
        a.c_out[bt * H + j] = cn;
      }
      if (a.gates) {
        float* saved = a.gates + bt * G;
#pragma unroll
        for (int gate = 0; gate < NG; ++gate) saved[gate * H + j] = g[gate];
      }
    }
    cluster.sync();  // every block's units of h_t are written
    for (int i = threadIdx.x; i < rows * H; i += blockDim.x) {
      const int b = i / H, j = i % H;
      h[i] = cluster.load(cluster.remote(own, j / S) + b * S + j % S);
    }
    __syncthreads();
  }
  cluster.sync();  // the others may still read this block's last units
  }
}

template <class Cell, int BT, class Group>
__global__ void __launch_bounds__(kThreads, 1) scan_backward_split_kernel(ScanBackwardArgs a, int S, GroupArgs ga) {
  if constexpr (!RNNGEN_SPLIT_RUNS(Group)) {
    __trap();
  } else {
  constexpr int NG = Cell::kGates;
  Group cluster(ga);
  const int q = static_cast<int>(cluster.block_rank());
  const int tile = cluster.tile();
  float* p = shared_base();
  const int H = a.H, G = NG * H, T = a.T, SG = NG * S;
  const int H4 = static_cast<int>(round4(H));
  float* w = p;  // [G, S]: W_hh's columns q*S .. q*S + S
  p += static_cast<int64_t>(G) * S;
  float* dh = p;                       // [BT, S]
  float* dgh_own = cluster.own(dh + BT * S, 0);  // [2][BT, SG]: the gate blocks of its units, in gate order
  float* dgh = dh + BT * S + 2 * BT * SG;        // [BT, G]: every unit's, in gate order
  float* dc_own = dgh + BT * G;        // [BT, S] (LSTM)
  float* partial = dc_own + (Cell::kCellState ? BT * S : 0);  // [P, BT, S]
  for (int64_t i = threadIdx.x; i < static_cast<int64_t>(G) * S; i += blockDim.x)
    w[i] = a.w[(i / S) * H4 + q * S + i % S];
  const int groups = S / 4;
  int P = kThreads / groups;
  P = P < 1 ? 1 : P > 8 ? 8 : P;
  const int kc = static_cast<int>(round4((G + P - 1) / P));
  zero_shared(dh, BT * (S + 2 * SG + G + (Cell::kCellState ? S : 0)) + P * BT * S);
  __syncthreads();
  const int b0 = tile * BT, rows = min(BT, a.B - b0);
  for (int t = T - 1; t >= 0; --t) {
    float* own = dgh_own + (t & 1) * BT * SG;
    for (int i = threadIdx.x; i < rows * S; i += blockDim.x) {
      const int b = i / S, s = i % S, j = q * S + s;
      const int64_t bt = static_cast<int64_t>(b0 + b) * T + t;
      const float d = dh[b * S + s] + a.grad_out[bt * H + j];
      float dc = 0.0f;
      if constexpr (Cell::kCellState) dc = dc_own[i] + (a.grad_c ? a.grad_c[bt * H + j] : 0.0f);
      float dgi[NG], dghv[NG], direct;
      unit_backward<Cell>(d, dc, Cell::kUsesGates ? a.gi + bt * G : nullptr,
                          Cell::kUsesGates ? a.gh + bt * G : nullptr, H, j, a.out, a.h0, a.c_out, a.c0, b0 + b,
                          bt, t, dgi, dghv, direct);
      float* dgi_t = a.d_gi + bt * G;
#pragma unroll
      for (int gate = 0; gate < NG; ++gate) dgi_t[gate * H + j] = dgi[gate];
      if constexpr (Cell::kSplitGrads) {
        float* dgh_t = a.d_gh + bt * G;
#pragma unroll
        for (int gate = 0; gate < NG; ++gate) dgh_t[gate * H + j] = dghv[gate];
      }
#pragma unroll
      for (int gate = 0; gate < NG; ++gate) own[b * SG + gate * S + s] = dghv[gate];
      dh[b * S + s] = direct;
      if constexpr (Cell::kCellState) dc_own[i] = dc;
    }
    cluster.sync();  // every block's dgh of step t is written
    for (int i = threadIdx.x; i < rows * G; i += blockDim.x) {
      const int b = i / G, g = i % G, gate = g / H, j = g % H;
      dgh[i] = cluster.load(cluster.remote(own, j / S) + b * SG + gate * S + j % S);
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
  for (int i = threadIdx.x; i < rows * S; i += blockDim.x) {
    a.d_h0[static_cast<int64_t>(b0 + i / S) * H + q * S + i % S] = dh[i];
    if constexpr (Cell::kCellState) a.d_c0[static_cast<int64_t>(b0 + i / S) * H + q * S + i % S] = dc_own[i];
  }
  cluster.sync();  // the others may still read this block's last dgh
  }
}

}  // namespace

#if defined(__CUDACC__)  // launching needs nvcc (the kernels above also build for the host emulation)
namespace {

template <class Cell>
cudaError_t scan_forward_for(const ScanForwardArgs& given, cudaStream_t stream) {
  int sms = 0;
  int64_t smem_limit = 0;
  if (const cudaError_t err = device_limits(&sms, &smem_limit); err != cudaSuccess) return err;
  const int64_t B = given.B, H = given.H;
  const KernelPlan plan = plan_scan_forward(B, H, sms, smem_limit, Cell::kLayout);
  ScanForwardArgs args = given;
  args.weights_on_chip = plan.weights_on_chip;
  if (!plan.weights_on_chip && clusters_enabled()) {  // W_hh only fits split over a cluster's blocks
    const int tensor = static_cast<int>(given.operand);
    const ClusterPlan cp = plan_scan_forward_cluster(B, H, sms / kClusterBlocks, smem_limit, Cell::kLayout, tensor);
    ScanForwardArgs cargs = args;
    cargs.operand = cp.tensor_cores ? given.operand : Operand::f32;
    const auto pick = [](int rows) { return pick_rows<Cluster>(rows, scan_forward_split_kernel<Cell, 1, Cluster>,
                                                              scan_forward_split_kernel<Cell, 2, Cluster>,
                                                              scan_forward_split_kernel<Cell, 4, Cluster>,
                                                              scan_forward_split_kernel<Cell, 8, Cluster>,
                                                              scan_forward_split_kernel<Cell, 16, Cluster>); };
    const auto replan = [&](int64_t clusters) {  // (more rows: tensor cores only at 16, which cp has not)
      return plan_scan_forward_cluster(B, H, clusters, smem_limit, Cell::kLayout);
    };
    const cudaError_t err = launch_clusters(cp, pick, replan, stream, cargs, static_cast<int>(cp.units), GroupArgs{});
    if (err != cudaErrorNotSupported) return err;
  }
  if (!plan.weights_on_chip && grid_split_enabled()) {  // nor in a cluster: split over the whole grid
    const GridPlan gp = plan_scan_forward_grid(B, H, sms, smem_limit, Cell::kLayout);
    const auto kernel = pick_rows<GridGroup>(gp.rows, scan_forward_split_kernel<Cell, 1, GridGroup>,
                                             scan_forward_split_kernel<Cell, 2, GridGroup>,
                                             scan_forward_split_kernel<Cell, 4, GridGroup>,
                                             scan_forward_split_kernel<Cell, 8, GridGroup>,
                                             scan_forward_split_kernel<Cell, 16, GridGroup>);
    ScanForwardArgs gargs = args;
    gargs.operand = Operand::f32;  // (the grid plan keeps float32 weights: no tensor cores there)
    const cudaError_t err = launch_grid_split(gp, kernel, stream, gargs, static_cast<int>(gp.units));
    if (err != cudaErrorNotSupported) return err;
  }
  return launch_planned(scan_forward_kernel<Cell, 1>, scan_forward_kernel<Cell, 2>, scan_forward_kernel<Cell, 4>,
                        scan_forward_kernel<Cell, 8>, plan, args, stream);
}

template <class Cell>
cudaError_t scan_backward_for(const ScanBackwardArgs& given, cudaStream_t stream) {
  int sms = 0;
  int64_t smem_limit = 0;
  if (const cudaError_t err = device_limits(&sms, &smem_limit); err != cudaSuccess) return err;
  const int64_t B = given.B, H = given.H;
  const KernelPlan plan = plan_scan_backward(B, H, sms, smem_limit, Cell::kLayout);
  ScanBackwardArgs args = given;
  args.weights_on_chip = plan.weights_on_chip;
  if (!plan.weights_on_chip && clusters_enabled()) {
    const ClusterPlan cp = plan_scan_backward_cluster(B, H, sms / kClusterBlocks, smem_limit, Cell::kLayout);
    const auto pick = [](int rows) { return pick_rows<Cluster>(rows, scan_backward_split_kernel<Cell, 1, Cluster>,
                                                              scan_backward_split_kernel<Cell, 2, Cluster>,
                                                              scan_backward_split_kernel<Cell, 4, Cluster>,
                                                              scan_backward_split_kernel<Cell, 8, Cluster>,
                                                              scan_backward_split_kernel<Cell, 16, Cluster>); };
    const auto replan = [&](int64_t clusters) {
      return plan_scan_backward_cluster(B, H, clusters, smem_limit, Cell::kLayout);
    };
    const cudaError_t err = launch_clusters(cp, pick, replan, stream, args, static_cast<int>(cp.units), GroupArgs{});
    if (err != cudaErrorNotSupported) return err;
  }
  if (!plan.weights_on_chip && grid_split_enabled()) {
    const GridPlan gp = plan_scan_backward_grid(B, H, sms, smem_limit, Cell::kLayout);
    const auto kernel = pick_rows<GridGroup>(gp.rows, scan_backward_split_kernel<Cell, 1, GridGroup>,
                                             scan_backward_split_kernel<Cell, 2, GridGroup>,
                                             scan_backward_split_kernel<Cell, 4, GridGroup>,
                                             scan_backward_split_kernel<Cell, 8, GridGroup>,
                                             scan_backward_split_kernel<Cell, 16, GridGroup>);
    const cudaError_t err = launch_grid_split(gp, kernel, stream, args, static_cast<int>(gp.units));
    if (err != cudaErrorNotSupported) return err;
  }
  return launch_planned(scan_backward_kernel<Cell, 1>, scan_backward_kernel<Cell, 2>, scan_backward_kernel<Cell, 4>,
                        scan_backward_kernel<Cell, 8>, plan, args, stream);
}

}  // namespace

cudaError_t launch_scan_forward(CellKind cell, const float* gi, const float* h0, const float* c0, const float* w_hh_t,
                                const float* b_hh, float* out, float* c_out, float* gates, int64_t B, int64_t T,
                                int64_t H, cudaStream_t stream, int operand) {
  if (B == 0) return cudaSuccess;
  if (operand < 0 || operand > 3) return cudaErrorInvalidValue;
  const ScanForwardArgs args{gi, h0, c0, w_hh_t, b_hh, out, c_out, gates, static_cast<int>(B), static_cast<int>(T),
                             static_cast<int>(H), false, static_cast<Operand>(operand)};
  switch (cell) {
    case CellKind::gru: return scan_forward_for<GruCell>(args, stream);
    case CellKind::lstm: return scan_forward_for<LstmCell>(args, stream);
    case CellKind::rnn_tanh: return scan_forward_for<RnnTanhCell>(args, stream);
    case CellKind::rnn_relu: return scan_forward_for<RnnReluCell>(args, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t launch_scan_backward(CellKind cell, const float* grad_out, const float* grad_c, const float* gi,
                                 const float* gh, const float* h0, const float* c0, const float* out,
                                 const float* c_out, const float* w_hh, float* d_gi, float* d_gh, float* d_h0,
                                 float* d_c0, int64_t B, int64_t T, int64_t H, cudaStream_t stream) {
  if (B == 0) return cudaSuccess;
  const ScanBackwardArgs args{grad_out, grad_c, gi, gh, h0, c0, out, c_out, w_hh, d_gi, d_gh, d_h0, d_c0,
                              static_cast<int>(B), static_cast<int>(T), static_cast<int>(H), false};
  switch (cell) {
    case CellKind::gru: return scan_backward_for<GruCell>(args, stream);
    case CellKind::lstm: return scan_backward_for<LstmCell>(args, stream);
    case CellKind::rnn_tanh: return scan_backward_for<RnnTanhCell>(args, stream);
    case CellKind::rnn_relu: return scan_backward_for<RnnReluCell>(args, stream);
  }
  return cudaErrorInvalidValue;
}

#endif  // __CUDACC__

}  // namespace rnngen::cuda
