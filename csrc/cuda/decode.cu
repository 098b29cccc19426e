// Fused CUDA decode (the article's generator): each step's output is the next step's input.
// Templates over the cell (cells.cuh). Layout and sizing rules: see the top of sample.cu
// (plan.h). The math follows rnngen/ops/decode/naive.py. G = gates * H.
//
// forward:  shared: [W_hh^T (H x G4)] [W_out^T (H x C4)] (each if it fits) h [R, H4] | y [R, G4 + C4]
//           | c [R, H4] (LSTM)
//           per step: y = [h W_hh^T + b_hh | h W_out^T + b_out] (block product), barrier;
//           per (row, unit): gi = W_ih x_t + b_ih (C terms, W_ih from global memory),
//           (h, c) = cell(gi, gh, h, c), hidden_t (c_hidden_t) and out_t = x_t written; barrier.
// backward: shared: [W_hh (G x H4)] dh [R, H4] | dgi [R, G4] | dgh [R, G4] (GRU only: the other
//           cells' dgh is dgi) | dx [R, C4] | dc [R, H4] (LSTM)
//           per step (t = T-1 .. 0): dh += grad_hidden_t (dc += grad_c_t); the cell's backward
//           per (row, unit) (d_gi_t, d_gh_t to global and shared), dh = the direct part (GRU:
//           dh * z; else 0); barrier; dh += dgh @ W_hh (block product) and dx_t = grad_out_t +
//           dgi @ W_ih (one warp per (row, output), written to global d_x for the weight GEMMs);
//           barrier; dh += dx_t @ W_out; barrier.
#include "cells.cuh"
#include "launchers.h"

namespace rnngen::cuda {
namespace {

struct DecodeForwardArgs {
  const float* h0;     // [B, H]
  const float* c0;     // [B, H] (LSTM)
  const float* w_ih;   // [G, C]
  const float* b_ih;   // [G]
  const float* w;      // W_hh^T [H, G4]
  const float* b_hh;   // [G4]
  const float* head;   // W_out^T [H, C4]
  const float* b_out;  // [C4]
  float* out;          // [B, T, C]
  float* hidden;       // [B, T, H]
  float* c_hidden;     // [B, T, H] (LSTM)
  int B, T, H, C;
  bool weights_on_chip, head_on_chip;
  Operand operand = Operand::f32;  // the cluster variant's product on tensor cores (plan: tensor_cores)
};

template <class Cell, int BT>
__global__ void __launch_bounds__(kThreads, 1) decode_forward_kernel(DecodeForwardArgs a) {
  constexpr int NG = Cell::kGates;
  float* p = shared_base();
  const int H = a.H, G = NG * H, T = a.T, C = a.C;
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
  float* h = p;             // [BT, H4]
  float* y = h + BT * H4;   // [BT, G4 + C4]: hidden gates | output x_t
  float* cs = y + BT * ldy; // [BT, H4] (LSTM)
  zero_shared(h, BT * (H4 + ldy + (Cell::kCellState ? H4 : 0)));
  __syncthreads();
  const int b0 = blockIdx.x * BT, rows = min(BT, a.B - b0);
  for (int i = threadIdx.x; i < rows * H; i += blockDim.x) {
    h[(i / H) * H4 + i % H] = a.h0[static_cast<int64_t>(b0) * H + i];
    if constexpr (Cell::kCellState) cs[(i / H) * H4 + i % H] = a.c0[static_cast<int64_t>(b0) * H + i];
  }
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
      float gi[NG], gh[NG];
#pragma unroll
      for (int q = 0; q < NG; ++q) {
        const float* wr = a.w_ih + static_cast<int64_t>(q * H + j) * C;
        float s = a.b_ih[q * H + j];
        for (int c = 0; c < C; ++c) s = fmaf(wr[c], x[c], s);
        gi[q] = s;
        gh[q] = g[q * H + j];
      }
      float* hj = h + b * H4 + j;
      float hn, cn = 0.0f;
      Cell::forward(gi, gh, *hj, Cell::kCellState ? cs[b * H4 + j] : 0.0f, hn, cn);
      *hj = hn;
      const int64_t btj = (static_cast<int64_t>(b0 + b) * T + t) * H + j;
      a.hidden[btj] = hn;
      if constexpr (Cell::kCellState) {
        cs[b * H4 + j] = cn;
        a.c_hidden[btj] = cn;
      }
    }
    __syncthreads();
  }
}

struct DecodeBackwardArgs {
  const float* grad_out;     // [B, T, C]
  const float* grad_hidden;  // [B, T, H]
  const float* grad_c;       // [B, T, H] (LSTM; null: zero)
  const float* gi;           // [B, T, G] (null for the Elman cells: not read)
  const float* gh;           // [B, T, G] (likewise)
  const float* h0;           // [B, H]
  const float* c0;           // [B, H] (LSTM)
  const float* hidden;       // [B, T, H]
  const float* c_hidden;     // [B, T, H] (LSTM)
  const float* w_ih;         // [G, C]
  const float* w;            // W_hh [G, H4]
  const float* w_out;        // [C, H]
  float* d_gi;               // [B, T, G]
  float* d_gh;               // [B, T, G] (GRU; the other cells' equal d_gi: null)
  float* d_x;                // [B, T, C]
  float* d_h0;               // [B, H]
  float* d_c0;               // [B, H] (LSTM)
  int B, T, H, C;
  bool weights_on_chip;
};

template <class Cell, int BT>
__global__ void __launch_bounds__(kThreads, 1) decode_backward_kernel(DecodeBackwardArgs a) {
  constexpr int NG = Cell::kGates;
  float* p = shared_base();
  const int H = a.H, G = NG * H, T = a.T, C = a.C;
  const int H4 = static_cast<int>(round4(H)), G4 = static_cast<int>(round4(G)), C4 = static_cast<int>(round4(C));
  const float* w = a.w;
  if (a.weights_on_chip) {
    copy_to_shared(p, a.w, static_cast<int64_t>(G) * H4);
    w = p;
    p += static_cast<int64_t>(G) * H4;
  }
  constexpr int kGateBufs = Cell::kSplitGrads ? 2 : 1;
  float* dh = p;                                          // [BT, H4]
  float* dgi = dh + BT * H4;                              // [BT, G4]
  float* dgh = Cell::kSplitGrads ? dgi + BT * G4 : dgi;   // [BT, G4] (GRU; else dgi itself)
  float* dx = dgi + kGateBufs * BT * G4;                  // [BT, C4]
  float* dcs = dx + BT * C4;                              // [BT, H4] (LSTM)
  zero_shared(dh, BT * (H4 + kGateBufs * G4 + C4 + (Cell::kCellState ? H4 : 0)));
  __syncthreads();
  const int b0 = blockIdx.x * BT, rows = min(BT, a.B - b0);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const MatVec product{w, H4, G, H4 / 4, nullptr, dh, H4, true};
  for (int t = T - 1; t >= 0; --t) {
    for (int i = threadIdx.x; i < rows * H; i += blockDim.x) {
      const int b = i / H, j = i % H;
      const int64_t bt = static_cast<int64_t>(b0 + b) * T + t;
      float* dhj = dh + b * H4 + j;
      const float d = *dhj + a.grad_hidden[bt * H + j];
      float dc = 0.0f;
      if constexpr (Cell::kCellState) dc = dcs[b * H4 + j] + (a.grad_c ? a.grad_c[bt * H + j] : 0.0f);
      float dgiv[NG], dghv[NG], direct;
      unit_backward<Cell>(d, dc, Cell::kUsesGates ? a.gi + bt * G : nullptr,
                          Cell::kUsesGates ? a.gh + bt * G : nullptr, H, j, a.hidden, a.h0, a.c_hidden, a.c0,
                          b0 + b, bt, t, dgiv, dghv, direct);
      float* dgi_t = a.d_gi + bt * G;
      float* di = dgi + b * G4;
#pragma unroll
      for (int q = 0; q < NG; ++q) dgi_t[q * H + j] = dgiv[q];
      if constexpr (Cell::kSplitGrads) {
        float* dgh_t = a.d_gh + bt * G;
#pragma unroll
        for (int q = 0; q < NG; ++q) dgh_t[q * H + j] = dghv[q];
      }
#pragma unroll
      for (int q = 0; q < NG; ++q) di[q * H + j] = dgiv[q];
      if constexpr (Cell::kSplitGrads) {
        float* dg = dgh + b * G4;
#pragma unroll
        for (int q = 0; q < NG; ++q) dg[q * H + j] = dghv[q];
      }
      *dhj = direct;
      if constexpr (Cell::kCellState) dcs[b * H4 + j] = dc;
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
  for (int i = threadIdx.x; i < rows * H; i += blockDim.x) {
    a.d_h0[static_cast<int64_t>(b0) * H + i] = dh[(i / H) * H4 + i % H];
    if constexpr (Cell::kCellState) a.d_c0[static_cast<int64_t>(b0) * H + i] = dcs[(i / H) * H4 + i % H];
  }
}


// ---- split variants (plan_decode_*_cluster, plan_decode_*_grid in plan.h) ----
// Templates over the group of blocks that share a tile of BT rows, as scan.cu's: an sm_90
// cluster of kClusterBlocks blocks, or every block of one cooperative launch (one tile of
// B <= 16 rows; the exchanged slices in global memory). Block q owns units [q S, (q+1) S),
// S = H / N, and all NG gates of those units (SG = NG * S columns). "cluster barrier": the group's.
// forward:  shared: W_hh^T's columns of its units' gates [H, SG], b_hh's, W_ih's rows of its
//           units [SG, C] and b_ih's, the whole head W_out^T [H, C4], the full h [BT, H], its
//           units of the new h (two buffers, by step parity), their cell state (LSTM), x_t
//           [BT, C4], k-split partial sums. Per step: partial gates (k split over the warps) and
//           x_t = h W_out^T + b_out (one warp per (row, output); every block computes the same
//           x_t from the same h in the same order, so all blocks feed the same input), barrier;
//           its units' cell update (block 0 writes out_t), cluster barrier; gather the full h,
//           barrier.
// backward: shared: W_hh's columns of its units [G, S], W_out's [C, S], W_ih's rows of its units
//           [SG, C], dh of its units, its units' dgh (two buffers), dgi (GRU; else dgh), every
//           unit's dgh [BT, G], its share of dx_t (two buffers), dx_t, dc (LSTM), partial sums.
//           Per step: the cell's backward for its units, barrier; its share of dgi @ W_ih, cluster
//           barrier; gather every block's dgh, dx_t = grad_out_t + the shares summed in rank order
//           (block 0 writes d_x), barrier; dgh @ W_hh[:, own] (k = G split over the warps),
//           barrier; dh = direct + partial sums + dx_t @ W_out[:, own], barrier.
template <class Cell, int BT, class Group>
__global__ void __launch_bounds__(kThreads, 1) decode_forward_split_kernel(DecodeForwardArgs a, int S, GroupArgs ga) {
  if constexpr (!RNNGEN_SPLIT_RUNS(Group)) {
    __trap();
  } else {
  constexpr int NG = Cell::kGates;
  Group cluster(ga);
  const int q = static_cast<int>(cluster.block_rank());
  const int tile = cluster.tile();
  float* p = shared_base();
  const int H = a.H, G = NG * H, T = a.T, C = a.C, SG = NG * S;
  const int G4 = static_cast<int>(round4(G)), C4 = static_cast<int>(round4(C));
  const bool tc = BT == kMaxClusterRows && a.operand != Operand::f32;  // tensor cores (the plan's choice)
  float* w = p;  // [H, SG]: column g*S + s is W_hh^T's column g*H + q*S + s
  uint32_t* wf = reinterpret_cast<uint32_t*>(p);  // or those columns as packed mma fragments
  p += tc ? packed_weight_floats(H, SG, static_cast<int>(a.operand)) : static_cast<int64_t>(H) * SG;
  float* bh = p;  // [SG]
  p += SG;
  float* wi = p;  // [SG, C]: row g*S + s is W_ih's row g*H + q*S + s
  p += SG * C;
  float* bi = p;  // [SG]
  p += SG;
  float* head = p;  // [H, C4]
  p += static_cast<int64_t>(H) * C4;
  float* h = p;                         // [BT, H]
  float* h_own = cluster.own(h + BT * H, 0);  // [2][BT, S] (shared, or the grid's exchange buffer)
  float* c_own = h + BT * H + 2 * BT * S;     // [BT, S] (LSTM)
  float* x = c_own + (Cell::kCellState ? BT * S : 0);  // [BT, C4]
  float* partial = x + BT * C4;         // [P, BT, SG]
  const auto column = [&](int k, int col) { return a.w[static_cast<int64_t>(k) * G4 + (col / S) * H + q * S + col % S]; };
  if (tc) {
    pack_b_fragments(wf, H, SG, column, a.operand);
  } else {
    for (int64_t i = threadIdx.x; i < static_cast<int64_t>(H) * SG; i += blockDim.x)
      w[i] = column(static_cast<int>(i / SG), static_cast<int>(i % SG));
  }
  for (int i = threadIdx.x; i < SG; i += blockDim.x) {
    const int row = (i / S) * H + q * S + i % S;
    bh[i] = a.b_hh[row];
    bi[i] = a.b_ih[row];
    for (int c = 0; c < C; ++c) wi[i * C + c] = a.w_ih[static_cast<int64_t>(row) * C + c];
  }
  copy_to_shared(head, a.head, static_cast<int64_t>(H) * C4);
  const int groups = SG / 4;
  int P = kThreads / groups;
  P = tc || P < 1 ? 1 : P > 8 ? 8 : P;
  const int kc = static_cast<int>(round4((H + P - 1) / P));
  zero_shared(h, BT * (H + 2 * S + (Cell::kCellState ? S : 0) + C4) + P * BT * SG);
  __syncthreads();
  const int b0 = tile * BT, rows = min(BT, a.B - b0);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int i = threadIdx.x; i < rows * H; i += blockDim.x) h[i] = a.h0[static_cast<int64_t>(b0) * H + i];
  if constexpr (Cell::kCellState)
    for (int i = threadIdx.x; i < rows * S; i += blockDim.x)
      c_own[i] = a.c0[static_cast<int64_t>(b0 + i / S) * H + q * S + i % S];
  __syncthreads();
  RNNGEN_CLOCK_START;
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
    for (int o = warp; o < rows * C; o += kThreads / 32) {  // x_t = h W_out^T + b_out
      const int b = o / C, c = o % C;
      float s = 0.0f;
      for (int k = lane; k < H; k += 32) s = fmaf(h[b * H + k], head[static_cast<int64_t>(k) * C4 + c], s);
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
      if (lane == 0) x[b * C4 + c] = s + a.b_out[c];
    }
    __syncthreads();
    RNNGEN_CLOCK(0);  // the block product and the outputs x_t
    if (q == 0)
      for (int i = threadIdx.x; i < rows * C; i += blockDim.x)
        a.out[(static_cast<int64_t>(b0 + i / C) * T + t) * C + i % C] = x[(i / C) * C4 + i % C];
    float* own = h_own + (t & 1) * BT * S;
    for (int i = threadIdx.x; i < rows * S; i += blockDim.x) {
      const int b = i / S, s = i % S, j = q * S + s;
      float g[NG], xi[NG];
#pragma unroll
      for (int gate = 0; gate < NG; ++gate) {
        const int col = gate * S + s;
        float sum = partial[b * SG + col];
        for (int part = 1; part < P; ++part) sum += partial[part * BT * SG + b * SG + col];
        g[gate] = sum;
        float in = bi[col];
        for (int c = 0; c < C; ++c) in = fmaf(wi[col * C + c], x[b * C4 + c], in);
        xi[gate] = in;
      }
      float hn, cn = 0.0f;
      Cell::forward(xi, g, h[b * H + j], Cell::kCellState ? c_own[i] : 0.0f, hn, cn);
      own[b * S + s] = hn;
      const int64_t btj = (static_cast<int64_t>(b0 + b) * T + t) * H + j;
      a.hidden[btj] = hn;
      if constexpr (Cell::kCellState) {
        c_own[i] = cn;
        a.c_hidden[btj] = cn;
      }
    }
    cluster.sync();  // every block's units of h_t are written
    RNNGEN_CLOCK(1);  // the cell update of its units and the cluster barrier
    for (int i = threadIdx.x; i < rows * H; i += blockDim.x) {
      const int b = i / H, j = i % H;
      h[i] = cluster.load(cluster.remote(own, j / S) + b * S + j % S);
    }
    __syncthreads();
    RNNGEN_CLOCK(2);  // h gathered from the other blocks
  }
  cluster.sync();  // the others may still read this block's last units
  }
}

template <class Cell, int BT, class Group>
__global__ void __launch_bounds__(kThreads, 1) decode_backward_split_kernel(DecodeBackwardArgs a, int S, GroupArgs ga) {
  if constexpr (!RNNGEN_SPLIT_RUNS(Group)) {
    __trap();
  } else {
  constexpr int NG = Cell::kGates;
  Group cluster(ga);
  const int q = static_cast<int>(cluster.block_rank());
  const int tile = cluster.tile();
  float* p = shared_base();
  const int H = a.H, G = NG * H, T = a.T, C = a.C, SG = NG * S;
  const int H4 = static_cast<int>(round4(H)), C4 = static_cast<int>(round4(C));
  float* w = p;  // [G, S]: W_hh's columns q*S .. q*S + S
  p += static_cast<int64_t>(G) * S;
  float* wo = p;  // [C, S]: W_out's columns q*S .. q*S + S
  p += C * S;
  float* wi = p;  // [SG, C]: row g*S + s is W_ih's row g*H + q*S + s
  p += SG * C;
  constexpr int kOwnGi = Cell::kSplitGrads ? 1 : 0;
  // (dgh_own and dx_own: shared, or for the grid split the block's part of the exchange buffer)
  float* dh = p;                                 // [BT, S]
  float* dgh_own = cluster.own(dh + BT * S, 0);  // [2][BT, SG]: the gate blocks of its units, in gate order
  float* dgi_own = dh + BT * S + 2 * BT * SG;    // [BT, SG] (GRU; else the current dgh_own)
  float* dgh = dgi_own + kOwnGi * BT * SG;       // [BT, G]: every unit's, in gate order
  float* dx_own = cluster.own(dgh + BT * G, 2 * BT * SG);  // [2][BT, C4]: its units' share of dgi @ W_ih
  float* dx = dgh + BT * G + 2 * BT * C4;        // [BT, C4]
  float* dc_own = dx + BT * C4;                  // [BT, S] (LSTM)
  float* partial = dc_own + (Cell::kCellState ? BT * S : 0);  // [P, BT, S]
  for (int64_t i = threadIdx.x; i < static_cast<int64_t>(G) * S; i += blockDim.x)
    w[i] = a.w[(i / S) * H4 + q * S + i % S];
  for (int i = threadIdx.x; i < C * S; i += blockDim.x) wo[i] = a.w_out[static_cast<int64_t>(i / S) * H + q * S + i % S];
  for (int i = threadIdx.x; i < SG * C; i += blockDim.x) {
    const int col = i / C;
    wi[i] = a.w_ih[static_cast<int64_t>((col / S) * H + q * S + col % S) * C + i % C];
  }
  const int groups = S / 4;
  int P = kThreads / groups;
  P = P < 1 ? 1 : P > 8 ? 8 : P;
  const int kc = static_cast<int>(round4((G + P - 1) / P));
  zero_shared(dh, BT * (S + (2 + kOwnGi) * SG + G + 3 * C4 + (Cell::kCellState ? S : 0)) + P * BT * S);
  __syncthreads();
  const int b0 = tile * BT, rows = min(BT, a.B - b0);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int t = T - 1; t >= 0; --t) {
    float* own = dgh_own + (t & 1) * BT * SG;
    float* own_gi = Cell::kSplitGrads ? dgi_own : own;
    for (int i = threadIdx.x; i < rows * S; i += blockDim.x) {
      const int b = i / S, s = i % S, j = q * S + s;
      const int64_t bt = static_cast<int64_t>(b0 + b) * T + t;
      const float d = dh[b * S + s] + a.grad_hidden[bt * H + j];
      float dc = 0.0f;
      if constexpr (Cell::kCellState) dc = dc_own[i] + (a.grad_c ? a.grad_c[bt * H + j] : 0.0f);
      float dgiv[NG], dghv[NG], direct;
      unit_backward<Cell>(d, dc, Cell::kUsesGates ? a.gi + bt * G : nullptr,
                          Cell::kUsesGates ? a.gh + bt * G : nullptr, H, j, a.hidden, a.h0, a.c_hidden, a.c0,
                          b0 + b, bt, t, dgiv, dghv, direct);
      float* dgi_t = a.d_gi + bt * G;
#pragma unroll
      for (int gate = 0; gate < NG; ++gate) dgi_t[gate * H + j] = dgiv[gate];
      if constexpr (Cell::kSplitGrads) {
        float* dgh_t = a.d_gh + bt * G;
#pragma unroll
        for (int gate = 0; gate < NG; ++gate) {
          dgh_t[gate * H + j] = dghv[gate];
          own_gi[b * SG + gate * S + s] = dgiv[gate];
        }
      }
#pragma unroll
      for (int gate = 0; gate < NG; ++gate) own[b * SG + gate * S + s] = dghv[gate];
      dh[b * S + s] = direct;
      if constexpr (Cell::kCellState) dc_own[i] = dc;
    }
    __syncthreads();
    float* share = dx_own + (t & 1) * BT * C4;
    for (int o = warp; o < rows * C; o += kThreads / 32) {  // this block's share of dgi_t @ W_ih
      const int b = o / C, c = o % C;
      float s = 0.0f;
      for (int k = lane; k < SG; k += 32) s = fmaf(own_gi[b * SG + k], wi[k * C + c], s);
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
      if (lane == 0) share[b * C4 + c] = s;
    }
    cluster.sync();  // every block's dgh and dx share of step t are written
    for (int i = threadIdx.x; i < rows * G; i += blockDim.x) {
      const int b = i / G, g = i % G, gate = g / H, j = g % H;
      dgh[i] = cluster.load(cluster.remote(own, j / S) + b * SG + gate * S + j % S);
    }
    for (int i = threadIdx.x; i < rows * C; i += blockDim.x) {  // dx_t = grad_out_t + the shares, in rank order
      const int b = i / C, c = i % C;
      const int64_t btc = (static_cast<int64_t>(b0 + b) * T + t) * C + c;
      float s = a.grad_out[btc];
      for (int r = 0; r < cluster.size(); ++r) s += cluster.load(cluster.remote(share, r) + b * C4 + c);
      dx[b * C4 + c] = s;
      if (q == 0) a.d_x[btc] = s;
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < groups * P; idx += blockDim.x) {  // dgh @ W_hh[:, own units]
      const int part = idx / groups, i = idx % groups;
      const int k0 = min(G, part * kc), k1 = min(G, k0 + kc);
      matvec_group<BT>(w + static_cast<int64_t>(k0) * S, S, k1 - k0, nullptr, partial + part * BT * S, S, false, i,
                       dgh + k0, G);
    }
    __syncthreads();
    for (int i = threadIdx.x; i < BT * S; i += blockDim.x) {  // + dx_t @ W_out[:, own units]
      const int b = i / S, s = i % S;
      float sum = dh[i];
      for (int part = 0; part < P; ++part) sum += partial[part * BT * S + i];
      for (int c = 0; c < C; ++c) sum = fmaf(dx[b * C4 + c], wo[c * S + s], sum);
      dh[i] = sum;
    }
    __syncthreads();
  }
  for (int i = threadIdx.x; i < rows * S; i += blockDim.x) {
    a.d_h0[static_cast<int64_t>(b0 + i / S) * H + q * S + i % S] = dh[i];
    if constexpr (Cell::kCellState) a.d_c0[static_cast<int64_t>(b0 + i / S) * H + q * S + i % S] = dc_own[i];
  }
  cluster.sync();  // the others may still read this block's last dgh and dx share
  }
}

}  // namespace

#if defined(__CUDACC__)  // launching needs nvcc (the kernels above also build for the host emulation)
namespace {

template <class Cell>
cudaError_t decode_forward_for(const DecodeForwardArgs& given, cudaStream_t stream) {
  int sms = 0;
  int64_t smem_limit = 0;
  if (const cudaError_t err = device_limits(&sms, &smem_limit); err != cudaSuccess) return err;
  const KernelPlan plan = plan_decode_forward(given.B, given.H, given.C, sms, smem_limit, Cell::kLayout);
  DecodeForwardArgs args = given;
  args.weights_on_chip = plan.weights_on_chip;
  args.head_on_chip = plan.head_on_chip;
  if (!plan.weights_on_chip && clusters_enabled()) {  // W_hh only fits split over a cluster's blocks
    const int64_t B = given.B, H = given.H, C = given.C;
    const int tensor = static_cast<int>(given.operand);
    const ClusterPlan cp = plan_decode_forward_cluster(B, H, C, sms / kClusterBlocks, smem_limit, Cell::kLayout,
                                                       tensor);
    DecodeForwardArgs cargs = args;
    cargs.operand = cp.tensor_cores ? given.operand : Operand::f32;
    const auto pick = [](int rows) { return pick_rows<Cluster>(rows, decode_forward_split_kernel<Cell, 1, Cluster>,
                                                              decode_forward_split_kernel<Cell, 2, Cluster>,
                                                              decode_forward_split_kernel<Cell, 4, Cluster>,
                                                              decode_forward_split_kernel<Cell, 8, Cluster>,
                                                              decode_forward_split_kernel<Cell, 16, Cluster>); };
    const auto replan = [&](int64_t clusters) {  // (more rows: tensor cores only at 16, which cp has not)
      return plan_decode_forward_cluster(B, H, C, clusters, smem_limit, Cell::kLayout);
    };
    const cudaError_t err = launch_clusters(cp, pick, replan, stream, cargs, static_cast<int>(cp.units), GroupArgs{});
    if (err != cudaErrorNotSupported) return err;
  }
  if (!plan.weights_on_chip && grid_split_enabled()) {  // nor in a cluster: split over the whole grid
    const GridPlan gp = plan_decode_forward_grid(given.B, given.H, given.C, sms, smem_limit, Cell::kLayout);
    const auto kernel = pick_rows<GridGroup>(gp.rows, decode_forward_split_kernel<Cell, 1, GridGroup>,
                                             decode_forward_split_kernel<Cell, 2, GridGroup>,
                                             decode_forward_split_kernel<Cell, 4, GridGroup>,
                                             decode_forward_split_kernel<Cell, 8, GridGroup>,
                                             decode_forward_split_kernel<Cell, 16, GridGroup>);
    DecodeForwardArgs gargs = args;
    gargs.operand = Operand::f32;  // (the grid plan keeps float32 weights: no tensor cores there)
    const cudaError_t err = launch_grid_split(gp, kernel, stream, gargs, static_cast<int>(gp.units));
    if (err != cudaErrorNotSupported) return err;
  }
  return launch_planned(decode_forward_kernel<Cell, 1>, decode_forward_kernel<Cell, 2>,
                        decode_forward_kernel<Cell, 4>, decode_forward_kernel<Cell, 8>, plan, args, stream);
}

template <class Cell>
cudaError_t decode_backward_for(const DecodeBackwardArgs& given, cudaStream_t stream) {
  int sms = 0;
  int64_t smem_limit = 0;
  if (const cudaError_t err = device_limits(&sms, &smem_limit); err != cudaSuccess) return err;
  const KernelPlan plan = plan_decode_backward(given.B, given.H, given.C, sms, smem_limit, Cell::kLayout);
  DecodeBackwardArgs args = given;
  args.weights_on_chip = plan.weights_on_chip;
  if (!plan.weights_on_chip && clusters_enabled()) {
    const int64_t B = given.B, H = given.H, C = given.C;
    const ClusterPlan cp = plan_decode_backward_cluster(B, H, C, sms / kClusterBlocks, smem_limit, Cell::kLayout);
    const auto pick = [](int rows) { return pick_rows<Cluster>(rows, decode_backward_split_kernel<Cell, 1, Cluster>,
                                                              decode_backward_split_kernel<Cell, 2, Cluster>,
                                                              decode_backward_split_kernel<Cell, 4, Cluster>,
                                                              decode_backward_split_kernel<Cell, 8, Cluster>,
                                                              decode_backward_split_kernel<Cell, 16, Cluster>); };
    const auto replan = [&](int64_t clusters) {
      return plan_decode_backward_cluster(B, H, C, clusters, smem_limit, Cell::kLayout);
    };
    const cudaError_t err = launch_clusters(cp, pick, replan, stream, args, static_cast<int>(cp.units), GroupArgs{});
    if (err != cudaErrorNotSupported) return err;
  }
  if (!plan.weights_on_chip && grid_split_enabled()) {
    const GridPlan gp = plan_decode_backward_grid(given.B, given.H, given.C, sms, smem_limit, Cell::kLayout);
    const auto kernel = pick_rows<GridGroup>(gp.rows, decode_backward_split_kernel<Cell, 1, GridGroup>,
                                             decode_backward_split_kernel<Cell, 2, GridGroup>,
                                             decode_backward_split_kernel<Cell, 4, GridGroup>,
                                             decode_backward_split_kernel<Cell, 8, GridGroup>,
                                             decode_backward_split_kernel<Cell, 16, GridGroup>);
    const cudaError_t err = launch_grid_split(gp, kernel, stream, args, static_cast<int>(gp.units));
    if (err != cudaErrorNotSupported) return err;
  }
  return launch_planned(decode_backward_kernel<Cell, 1>, decode_backward_kernel<Cell, 2>,
                        decode_backward_kernel<Cell, 4>, decode_backward_kernel<Cell, 8>, plan, args, stream);
}

}  // namespace

cudaError_t launch_decode_forward(CellKind cell, const float* h0, const float* c0, const float* w_ih,
                                  const float* b_ih, const float* w_hh_t, const float* b_hh, const float* w_out_t,
                                  const float* b_out, float* out, float* hidden, float* c_hidden, int64_t B, int64_t T,
                                  int64_t H, int64_t C, cudaStream_t stream, int operand) {
  if (B == 0) return cudaSuccess;
  if (operand < 0 || operand > 3) return cudaErrorInvalidValue;
  const DecodeForwardArgs args{h0, c0, w_ih, b_ih, w_hh_t, b_hh, w_out_t, b_out, out, hidden, c_hidden,
                               static_cast<int>(B), static_cast<int>(T), static_cast<int>(H), static_cast<int>(C),
                               false, false, static_cast<Operand>(operand)};
  switch (cell) {
    case CellKind::gru: return decode_forward_for<GruCell>(args, stream);
    case CellKind::lstm: return decode_forward_for<LstmCell>(args, stream);
    case CellKind::rnn_tanh: return decode_forward_for<RnnTanhCell>(args, stream);
    case CellKind::rnn_relu: return decode_forward_for<RnnReluCell>(args, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t launch_decode_backward(CellKind cell, const float* grad_out, const float* grad_hidden,
                                   const float* grad_c, const float* gi, const float* gh, const float* h0,
                                   const float* c0, const float* hidden, const float* c_hidden, const float* w_ih,
                                   const float* w_hh, const float* w_out, float* d_gi, float* d_gh, float* d_x,
                                   float* d_h0, float* d_c0, int64_t B, int64_t T, int64_t H, int64_t C,
                                   cudaStream_t stream) {
  if (B == 0) return cudaSuccess;
  const DecodeBackwardArgs args{grad_out, grad_hidden, grad_c, gi, gh, h0, c0, hidden, c_hidden, w_ih, w_hh, w_out,
                                d_gi, d_gh, d_x, d_h0, d_c0, static_cast<int>(B), static_cast<int>(T),
                                static_cast<int>(H), static_cast<int>(C), false};
  switch (cell) {
    case CellKind::gru: return decode_backward_for<GruCell>(args, stream);
    case CellKind::lstm: return decode_backward_for<LstmCell>(args, stream);
    case CellKind::rnn_tanh: return decode_backward_for<RnnTanhCell>(args, stream);
    case CellKind::rnn_relu: return decode_backward_for<RnnReluCell>(args, stream);
  }
  return cudaErrorInvalidValue;
}

#endif  // __CUDACC__

}  // namespace rnngen::cuda
