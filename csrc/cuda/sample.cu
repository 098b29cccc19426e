// Fused CUDA sample: one launch generates the whole batch, all T steps (logits, the contract's
// Philox inverse-CDF draw, the drawn value's gate row as the next input, conditioning, lagged
// inputs, forced known values). The math follows rnngen/ops/sample/naive.py; the op layer has
// checked every input (known values in range included, at most kMaxLags distinct lags >= 1) and
// made it contiguous.
//
// How every fused CUDA kernel of rnngen (sample.cu, decode.cu, scan.cu) is laid out
// (rules in plan.h, shared by the launchers and the tests):
//
// - One block of 256 threads per tile of R batch rows (R = 1, 2, 4 or 8: the fewest that give
//   each multiprocessor at most one block, e.g. B <= 132 on an H100 gives R = 1); the block runs
//   the whole time loop for its rows, so no grid-wide synchronisation is ever needed.
// - Shared memory holds, per row, the hidden state h (H floats), the step's hidden gates
//   W_hh h + b_hh (3H) and the logits / outputs (K or C): (4H + K) * 4 bytes per row for sample
//   (plus the drawn value and the rows of the lagged tables for the next step: 20 ints).
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
//   value (u from Philox at offset (row_offset + b) * T + t, c = t % C, or the known value) and
//   looks up the values its lagged inputs need, then every (row, unit) updates h in place; 3
//   barriers per step.
// - The per-step cost is bound by reading the weights (shared memory ~128 B/clock/SM, L2 for
//   the rest), so R rows per block cost about as much as one while R <= 8.
// - Limits: R halves while one block's state exceeds the device's opt-in shared memory; one
//   row's state alone must fit (sample: 4H + K floats; about H <= 14000 on sm_90), else the
//   launcher returns cudaErrorInvalidConfiguration and the op raises.
// - sm_90 (Hopper) cluster variants, sample, scan and decode: when W_hh does not fit one block (on
//   sm_90: H >= 256) and H is a multiple of 32, a cluster of 8 blocks
//   shares each row tile; block q keeps in shared memory the W_hh^T columns of units
//   [q H/8, (q+1) H/8) (all three gates: 1.5 H^2 bytes, 96 KB at H = 256) and 1/8 of the head's
//   logit columns, computes those gates and logits (k split over the warps), and the blocks
//   exchange logits and h slices through distributed shared memory, two cluster barriers per
//   step; every block draws the same value from the gathered logits. Rows per cluster: the
//   fewest that need no more clusters than the device runs at once (cudaOccupancyMaxActiveClusters).
//   Used only when the kernel was compiled for sm_90 (binaryVersion >= 90), the device is
//   sm_90 or newer, the split fits (H = 256 with K = 256 and C = 1 or 3: 155 / 219 KB per
//   block) and RNNGEN_CUDA_CLUSTERS is not "0"; otherwise the one-block path above runs.
//   scan (scan.cu) splits the same way: forward keeps W_hh^T's columns of its units and
//   exchanges h, backward keeps W_hh's columns of its units and exchanges dgh (one cluster
//   barrier per step, the exchanged slices double-buffered); about 130 KB per block at H = 256.
//   decode (decode.cu) too: each block also keeps the whole head and forms the step's outputs
//   itself from the gathered h; its backward exchanges dgh and each block's share of dx_t.
// - decode keeps [W_hh^T | W_out^T] like sample (C outputs instead of K logits) and reads W_ih
//   [3H, C] from global memory (C is small); scan forward keeps W_hh^T only. The backward
//   kernels keep W_hh itself (the product dh += dgh @ W_hh) with the same rule and carry dL/dh
//   in shared memory; their weight gradients are GEMMs (cuBLAS) after the reverse loop.
// - Every kernel is a template over the cell (cells.cuh): the sizes above are the GRU's (3 gate
//   blocks). The LSTM has 4 (W_hh^T: 16 H^2 bytes, on chip up to about H = 120 on sm_90) and
//   carries a cell state c [R, H4] beside h (never leaving the chip either; the cluster variants
//   keep each block's units of it); the Elman cells have 1 (4 H^2 bytes: on chip up to about
//   H = 240 on sm_90). The plans (plan.h) take the cell's layout: each cell gets the same rules.
#include <cstdlib>


#include "cells.cuh"
#include "launchers.h"

namespace rnngen::cuda {
namespace {

// The lags, by value in the kernel parameters (no device allocation): lag[l] = min(lags[l], T).
struct Lags {
  int count;
  int lag[kMaxLags];
};

// Lags from the op's L lags for T steps (a lag of T or more never reaches an input, the last
// being step T - 1's: clamped to T, so it fits an int); false unless L <= kMaxLags and every
// lag >= 1.
inline bool make_lags(const int64_t* lags, int64_t L, int64_t T, Lags& out) {
  if (L < 0 || L > kMaxLags) return false;
  out = Lags{static_cast<int>(L), {}};
  for (int64_t l = 0; l < L; ++l) {
    if (lags[l] < 1) return false;
    out.lag[l] = static_cast<int>(lags[l] < T ? lags[l] : T);
  }
  return true;
}

struct SampleArgs {
  const float* h0;    // [B, H]
  const float* c0;    // [B, H] (LSTM)
  const float* emb;   // [C, K, G]
  const float* lag_emb;  // [L, C, K, G]
  Lags lags;             // L lags
  const float* cond;  // [B, G]
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

// The lagged inputs of step t + 1 for one row, by the warp that drew its value v at step t (lane
// l for lag l): row[l] = the row (s % C) * K + values[s] of lag table l, s = t + 1 - lag[l], or
// -1 when s < 0. values[s] for s < t was written at an earlier step (global memory, read back
// after the barriers since: see the kernels); s == t is v itself.
__device__ __forceinline__ void lagged_rows(const SampleArgs& a, int64_t row, int t, int v, int lane, int* rows_out) {
  if (lane >= a.lags.count) return;
  const int s = t + 1 - a.lags.lag[lane];
  rows_out[lane] = s < 0 ? -1 : (s % a.C) * a.K + (s == t ? v : static_cast<int>(a.values[row * a.T + s]));
}

// xi[q] += lag_emb[l][rows[l]][q * H + j] for each present lag, in the order of the lags (after
// emb + cond: the float32 sum every backend forms).
template <int NG>
__device__ __forceinline__ void add_lagged(const SampleArgs& a, const int* rows, int j, float (&xi)[NG]) {
  for (int l = 0; l < a.lags.count; ++l) {
    if (rows[l] < 0) continue;
    const float* e = a.lag_emb + (static_cast<int64_t>(l) * a.C * a.K + rows[l]) * (NG * a.H);
#pragma unroll
    for (int q = 0; q < NG; ++q) xi[q] += e[q * a.H + j];
  }
}

template <class Cell, int BT>
__global__ void __launch_bounds__(kThreads, 1) sample_kernel(SampleArgs a) {
  constexpr int NG = Cell::kGates;
  float* p = shared_base();
  const int H = a.H, G = NG * H, K = a.K, C = a.C, T = a.T;
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
  int* vbuf = reinterpret_cast<int*>(y + BT * ldy);  // [BT] the drawn values (4 floats' room per row)
  int* lag_rows = vbuf + BT * 4;   // [BT, kMaxLags] the lagged tables' rows for the next step
  float* cs = y + BT * (ldy + 4 + kMaxLags);  // [BT, H4] (LSTM)
  zero_shared(h, BT * (H4 + ldy));
  if constexpr (Cell::kCellState) zero_shared(cs, BT * H4);
  __syncthreads();
  const int b0 = blockIdx.x * BT, rows = min(BT, a.B - b0);
  for (int i = threadIdx.x; i < rows * H; i += blockDim.x) {
    h[(i / H) * H4 + i % H] = a.h0[static_cast<int64_t>(b0) * H + i];
    if constexpr (Cell::kCellState) cs[(i / H) * H4 + i % H] = a.c0[static_cast<int64_t>(b0) * H + i];
  }
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
      // this row's earlier values were written by this warp's lane 0 at earlier steps: visible
      // after the barriers since
      lagged_rows(a, b0 + b, t, v, lane, lag_rows + b * kMaxLags);
    }
    __syncthreads();
    if (t + 1 == T) break;
    // (h, c)_{t+1} = cell(emb[c][v] + cond + lagged, (h, c)_t)
    for (int i = threadIdx.x; i < rows * H; i += blockDim.x) {
      const int b = i / H, j = i % H;
      const float* e = a.emb + (static_cast<int64_t>(c) * K + vbuf[b]) * G;
      const float* cd = a.cond + static_cast<int64_t>(b0 + b) * G;
      const float* gh = y + b * ldy;
      float xi[NG], xh[NG];
#pragma unroll
      for (int q = 0; q < NG; ++q) {
        xi[q] = e[q * H + j] + cd[q * H + j];
        xh[q] = gh[q * H + j];
      }
      add_lagged<NG>(a, lag_rows + b * kMaxLags, j, xi);
      float* hj = h + b * H4 + j;
      float hn, cn = 0.0f;
      Cell::forward(xi, xh, *hj, Cell::kCellState ? cs[b * H4 + j] : 0.0f, hn, cn);
      *hj = hn;
      if constexpr (Cell::kCellState) cs[b * H4 + j] = cn;
    }
    __syncthreads();
  }
}


// The split variant, a template over the group of blocks that share a tile of BT rows (scan.cu
// has the same): the sm_90 cluster variant (plan_sample_cluster in plan.h: kClusterBlocks blocks,
// through distributed shared memory), or the grid split (plan_sample_grid: every block of one
// cooperative launch, one tile of B <= 16 rows, through a global exchange buffer; H = 512 and
// 1024). "cluster barrier" below: the group's. Block q keeps in shared memory the W_hh^T columns of its S = H / N units (all their
// gates: SG = gates * S columns), K / N of the head's columns, the full h of the tile's rows and
// (LSTM) the cell state of its units. Per step:
//   gates and logits of its columns (the k dimension split over the warps, partial sums reduced
//   in shared memory) -> cluster barrier -> every block gathers all logits from the others
//   (distributed shared memory) and draws the same value (same numbers, same order) -> it
//   updates its S units -> cluster barrier -> it gathers the full new h from the others.
// Lagged inputs: block 0 writes the values; every block reads the earlier ones it needs from
// there (written two or more cluster barriers before: their release / acquire order global
// memory across the cluster too) and the latest one (lag 1) from its own draw.
template <class Cell, int BT, class Group>
__global__ void __launch_bounds__(kThreads, 1) sample_split_kernel(SampleArgs a, int S, int KQ, GroupArgs ga) {
  if constexpr (!RNNGEN_SPLIT_RUNS(Group)) {
    __trap();
  } else {
  constexpr int NG = Cell::kGates;
  Group cluster(ga);
  const int q = static_cast<int>(cluster.block_rank());
  const int tile = cluster.tile();
  float* p = shared_base();
  const int H = a.H, G = NG * H, K = a.K, C = a.C, T = a.T, S3 = NG * S;  // S3: SG
  const int K4 = static_cast<int>(round4(K)), G4 = static_cast<int>(round4(G));
  const int kq0 = q * KQ, kq = max(0, min(KQ, K4 - kq0));  // this block's logit columns [kq0, kq0 + kq)
  float* w = p;                  // [H, SG]: column g*S + s is W_hh^T's column g*H + q*S + s
  p += static_cast<int64_t>(H) * S3;
  float* bh = p;                 // [SG]
  p += S3;
  float* head = p;               // [C, H, KQ]: W_out[c]^T's columns kq0 ..
  p += static_cast<int64_t>(C) * H * KQ;
  float* bo = p;                 // [C, KQ]
  p += C * KQ;
  const int ldy = S3 + KQ;
  float* h = p;                  // [BT, H]: the full state of the tile's rows (H % 32 == 0)
  // (y and h_own: shared, or for the grid split the block's part of the global exchange buffer)
  float* y = cluster.own(h + BT * H, 0);                    // [BT, SG + KQ]: own gates | own logits
  float* h_own = cluster.own(h + BT * H + BT * ldy, BT * ldy);  // [BT, S]: own units of the next state
  float* logits = h + BT * H + BT * ldy + BT * S;           // [BT, K4]: all logits, gathered
  int* vbuf = reinterpret_cast<int*>(logits + BT * K4);  // [kMaxClusterRows]
  for (int64_t i = threadIdx.x; i < static_cast<int64_t>(H) * S3; i += blockDim.x) {
    const int k = static_cast<int>(i / S3), col = static_cast<int>(i % S3);
    w[i] = a.w[static_cast<int64_t>(k) * G4 + (col / S) * H + q * S + col % S];
  }
  for (int i = threadIdx.x; i < S3; i += blockDim.x) bh[i] = a.b_hh[(i / S) * H + q * S + i % S];
  for (int64_t i = threadIdx.x; i < static_cast<int64_t>(C) * H * KQ; i += blockDim.x) {
    const int64_t ck = i / KQ;  // c * H + k
    const int col = static_cast<int>(i % KQ);
    head[i] = col < kq ? a.head[ck * K4 + kq0 + col] : 0.0f;
  }
  for (int i = threadIdx.x; i < C * KQ; i += blockDim.x)
    bo[i] = i % KQ < kq ? a.b_out[(i / KQ) * K4 + kq0 + i % KQ] : 0.0f;
  zero_shared(h, BT * (H + ldy + S + K4));
  __syncthreads();
  const int b0 = tile * BT, rows = min(BT, a.B - b0);
  for (int i = threadIdx.x; i < rows * H; i += blockDim.x) h[i] = a.h0[static_cast<int64_t>(b0) * H + i];
  __syncthreads();

  // the k split of the block product: P parts of kc (a multiple of 4) rows of the weights
  const int groups = S3 / 4 + kq / 4;
  int P = kThreads / groups;
  P = P < 1 ? 1 : P > 8 ? 8 : P;
  const int kc = static_cast<int>(round4((H + P - 1) / P));
  int* lag_rows = vbuf + kMaxClusterRows;  // [BT, kMaxLags] the lagged tables' rows for the next step
  float* c_own = reinterpret_cast<float*>(lag_rows + BT * kMaxLags);  // [BT, S]: the cell state of its units (LSTM)
  float* partial = c_own + (Cell::kCellState ? BT * S : 0);  // [P, BT, ldy] (plan: P * BT * ldy floats)
  zero_shared(c_own, (Cell::kCellState ? BT * S : 0) + P * BT * ldy);
  __syncthreads();
  if constexpr (Cell::kCellState) {
    for (int i = threadIdx.x; i < rows * S; i += blockDim.x)
      c_own[i] = a.c0[static_cast<int64_t>(b0 + i / S) * H + q * S + i % S];
    __syncthreads();
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  RNNGEN_CLOCK_START;
  for (int t = 0; t < T; ++t) {
    const int c = t % C;
    for (int idx = threadIdx.x; idx < groups * P; idx += blockDim.x) {
      const int part = idx / groups, i = idx % groups;
      const int k0 = min(H, part * kc), k1 = min(H, k0 + kc);
      const bool gate = i < S3 / 4;
      const float* m = gate ? w : head + static_cast<int64_t>(c) * H * KQ;
      const int ld = gate ? S3 : KQ;
      const float* bias = part > 0 ? nullptr : gate ? bh : bo + c * KQ;
      float* out = partial + part * BT * ldy + (gate ? 0 : S3);
      matvec_group<BT>(m + static_cast<int64_t>(k0) * ld, ld, k1 - k0, bias, out, ldy, false, gate ? i : i - S3 / 4,
                       h + k0, H);
    }
    __syncthreads();
    RNNGEN_CLOCK(0);  // the block product (gates and logits of its columns)
    for (int i = threadIdx.x; i < BT * ldy; i += blockDim.x) {
      float sum = partial[i];
      for (int part = 1; part < P; ++part) sum += partial[part * BT * ldy + i];
      y[i] = sum;
    }
    cluster.sync();  // every block's gates and logits are complete
    RNNGEN_CLOCK(1);  // the partial sums and the cluster barrier
    for (int i = threadIdx.x; i < rows * K; i += blockDim.x) {
      const int b = i / K, k = i % K;
      logits[b * K4 + k] = cluster.load(cluster.remote(y, k / KQ) + b * ldy + S3 + k % KQ);
    }
    __syncthreads();
    RNNGEN_CLOCK(2);  // the logits gathered from the other blocks
    for (int b = warp; b < rows; b += kThreads / 32) {
      const int64_t bt = static_cast<int64_t>(b0 + b) * T + t;
      const int64_t forced = a.known ? a.known[bt] : -1;
      int v;
      if (forced >= 0) {
        v = static_cast<int>(forced);
      } else {
        const uint64_t offset = static_cast<uint64_t>(a.row_offset + b0 + b) * static_cast<uint64_t>(T) + t;
        v = warp_draw(logits + b * K4, K, a.temperature, philox_uniform(a.seed, offset), lane);
      }
      if (lane == 0) {
        vbuf[b] = v;
        if (q == 0) a.values[bt] = v;
      }
      lagged_rows(a, b0 + b, t, v, lane, lag_rows + b * kMaxLags);
    }
    __syncthreads();
    RNNGEN_CLOCK(3);  // the draw
    if (t + 1 == T) {
      cluster.sync();  // the others may still read this block's logits
      break;
    }
    for (int i = threadIdx.x; i < rows * S; i += blockDim.x) {  // this block's units of h_{t+1}
      const int b = i / S, s = i % S, j = q * S + s;
      const float* e = a.emb + (static_cast<int64_t>(c) * K + vbuf[b]) * G;
      const float* cd = a.cond + static_cast<int64_t>(b0 + b) * G;
      const float* gh = y + b * ldy;
      float xi[NG], xh[NG];
#pragma unroll
      for (int gate = 0; gate < NG; ++gate) {
        xi[gate] = e[gate * H + j] + cd[gate * H + j];
        xh[gate] = gh[gate * S + s];
      }
      add_lagged<NG>(a, lag_rows + b * kMaxLags, j, xi);
      float hn, cn = 0.0f;
      Cell::forward(xi, xh, h[b * H + j], Cell::kCellState ? c_own[i] : 0.0f, hn, cn);
      h_own[b * S + s] = hn;
      if constexpr (Cell::kCellState) c_own[i] = cn;
    }
    cluster.sync();  // every block's units are updated
    RNNGEN_CLOCK(4);  // the cell update of its units and the cluster barrier
    for (int i = threadIdx.x; i < rows * H; i += blockDim.x) {
      const int b = i / H, j = i % H;
      h[b * H + j] = cluster.load(cluster.remote(h_own, j / S) + b * S + j % S);
    }
    __syncthreads();
    RNNGEN_CLOCK(5);  // h gathered from the other blocks
  }
  }
}

}  // namespace

#if defined(__CUDACC__)
namespace {

template <class Cell>
cudaError_t sample_for(const SampleArgs& given, cudaStream_t stream) {
  int sms = 0;
  int64_t smem_limit = 0;
  if (const cudaError_t err = device_limits(&sms, &smem_limit); err != cudaSuccess) return err;
  const int64_t B = given.B, H = given.H, C = given.C, K = given.K;
  const KernelPlan plan = plan_sample(B, H, C, K, sms, smem_limit, Cell::kLayout);
  SampleArgs args = given;
  args.weights_on_chip = plan.weights_on_chip;
  args.head_on_chip = plan.head_on_chip;
  if (!plan.weights_on_chip && clusters_enabled()) {  // W_hh only fits split over a cluster's blocks
    const ClusterPlan cp = plan_sample_cluster(B, H, C, K, sms / kClusterBlocks, smem_limit, Cell::kLayout);
    const auto pick = [](int rows) { return pick_rows<Cluster>(rows, sample_split_kernel<Cell, 1, Cluster>,
                                                              sample_split_kernel<Cell, 2, Cluster>,
                                                              sample_split_kernel<Cell, 4, Cluster>,
                                                              sample_split_kernel<Cell, 8, Cluster>,
                                                              sample_split_kernel<Cell, 16, Cluster>); };
    const auto replan = [&](int64_t clusters) {
      return plan_sample_cluster(B, H, C, K, clusters, smem_limit, Cell::kLayout);
    };
    const cudaError_t err = launch_clusters(cp, pick, replan, stream, args, static_cast<int>(cp.units),
                                            static_cast<int>(cp.head_cols), GroupArgs{});
    if (err != cudaErrorNotSupported) return err;
  }
  if (!plan.weights_on_chip && grid_split_enabled()) {  // nor in a cluster: split over the whole grid
    const GridPlan gp = plan_sample_grid(B, H, C, K, sms, smem_limit, Cell::kLayout);
    const auto kernel = pick_rows<GridGroup>(gp.rows, sample_split_kernel<Cell, 1, GridGroup>,
                                             sample_split_kernel<Cell, 2, GridGroup>,
                                             sample_split_kernel<Cell, 4, GridGroup>,
                                             sample_split_kernel<Cell, 8, GridGroup>,
                                             sample_split_kernel<Cell, 16, GridGroup>);
    const cudaError_t err = launch_grid_split(gp, kernel, stream, args, static_cast<int>(gp.units),
                                              static_cast<int>(gp.head_cols));
    if (err != cudaErrorNotSupported) return err;
  }
  return launch_planned(sample_kernel<Cell, 1>, sample_kernel<Cell, 2>, sample_kernel<Cell, 4>,
                        sample_kernel<Cell, 8>, plan, args, stream);
}

}  // namespace

cudaError_t launch_sample(CellKind cell, const float* h0, const float* c0, const float* emb, const float* lag_emb,
                          const int64_t* lags, int64_t num_lags, const float* cond, const float* w_hh_t,
                          const float* b_hh, const float* w_out_t, const float* b_out, float temperature,
                          uint64_t seed, int64_t row_offset, const int64_t* known, int64_t* values, int64_t B,
                          int64_t T, int64_t H, int64_t C, int64_t K, cudaStream_t stream) {
  Lags lag;
  if (!make_lags(lags, num_lags, T, lag)) return cudaErrorInvalidValue;
  if (B == 0) return cudaSuccess;
  const SampleArgs args{h0, c0, emb, lag_emb, lag, cond, w_hh_t, b_hh, w_out_t, b_out, known, values,
                        static_cast<int>(B), static_cast<int>(T), static_cast<int>(H), static_cast<int>(C),
                        static_cast<int>(K), temperature, seed, row_offset, false, false};
  switch (cell) {
    case CellKind::gru: return sample_for<GruCell>(args, stream);
    case CellKind::lstm: return sample_for<LstmCell>(args, stream);
    case CellKind::rnn_tanh: return sample_for<RnnTanhCell>(args, stream);
    case CellKind::rnn_relu: return sample_for<RnnReluCell>(args, stream);
  }
  return cudaErrorInvalidValue;
}

#endif  // __CUDACC__

}  // namespace rnngen::cuda
