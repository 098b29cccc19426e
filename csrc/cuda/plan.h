// How a fused CUDA kernel of rnngen is laid out on the device: rows per block, which weights
// live in shared memory, and the dynamic shared-memory size. Plain host C++ (no CUDA, no torch),
// so the launchers (*.cu) and a host test (tests/test_cuda_sources.py) use the same rules; the
// rules themselves are described at the top of sample.cu.
#pragma once

#include <cstdint>

namespace rnngen::cuda {

constexpr int kThreads = 256;  // threads per block of every fused kernel
constexpr int kMaxRows = 8;    // batch rows per block: 1, 2, 4 or 8 (one warp draws one row)
constexpr int kMaxClusterRows = 16;  // rows per cluster of the sm_90 variants: up to 16 (B = 256 in one wave)
constexpr int kMaxLags = 16;   // lagged inputs of sample (rnngen/ops/sample/op.py: MAX_LAGS)

#if defined(__CUDACC__)
__host__ __device__
#endif
inline int64_t round4(int64_t n) { return (n + 3) / 4 * 4; }

struct KernelPlan {
  int rows = 0;                 // batch rows per block (0: not even one row's state fits)
  bool weights_on_chip = false; // the recurrent weight copied into shared memory
  bool head_on_chip = false;    // the output head(s) copied into shared memory
  int64_t smem_bytes = 0;       // dynamic shared memory per block
  int64_t blocks = 0;
};

// B rows; per_row: floats of on-chip state per batch row (h, gates, logits...); weight / head:
// floats of the recurrent weight and of the output head (0 when the kernel has none); sms: the
// device's multiprocessors; smem_limit: its opt-in shared memory per block in bytes.
//
// Rows per block: the fewest (a power of two up to kMaxRows) that give every multiprocessor at
// most one block, halved while one block's state would not fit. Then the recurrent weight goes
// on chip if it fits beside the state, then the head if it fits beside both; whatever does not
// fit is read from global memory (L2) every step.
inline KernelPlan plan_kernel(int64_t B, int64_t per_row, int64_t weight, int64_t head, int sms, int64_t smem_limit) {
  KernelPlan p;
  int rows = 1;
  while (rows < kMaxRows && static_cast<int64_t>(rows) * (sms > 0 ? sms : 1) < B) rows *= 2;
  while (rows > 1 && rows * per_row * 4 > smem_limit) rows /= 2;
  int64_t bytes = rows * per_row * 4;
  if (bytes > smem_limit) return p;
  if (weight > 0 && bytes + weight * 4 <= smem_limit) {
    p.weights_on_chip = true;
    bytes += weight * 4;
  }
  if (head > 0 && bytes + head * 4 <= smem_limit) {
    p.head_on_chip = true;
    bytes += head * 4;
  }
  p.rows = rows;
  p.smem_bytes = bytes;
  p.blocks = (B + rows - 1) / rows;
  return p;
}

// The cell a kernel runs, as far as the plans care (csrc/cuda/cells.cuh: each cell's kLayout).
struct CellLayout {
  int gates = 3;             // gate blocks of H rows in W_hh (GRU 3, LSTM 4, Elman 1)
  bool cell_state = false;   // a cell state c beside h (LSTM): one more [H4] per row
  bool split_grads = true;   // separate input- and hidden-gate gradients (GRU): decode backward keeps both
};

// The plans of the five kernels (floats of state per row, weights, head), given the sizes.
// H hidden units, G = gates * H (3H for the GRU); sample: C channels of K values (and per row
// its drawn value, 4 floats' room, and the rows of its lagged tables, kMaxLags ints); decode: C
// outputs. cell: the GRU unless given.
inline KernelPlan plan_sample(int64_t B, int64_t H, int64_t C, int64_t K, int sms, int64_t smem_limit,
                              const CellLayout& cell = CellLayout{}) {
  const int64_t H4 = round4(H), G4 = round4(cell.gates * H), K4 = round4(K), c = cell.cell_state ? H4 : 0;
  return plan_kernel(B, H4 + G4 + K4 + 4 + kMaxLags + c, H * G4, C * H * K4, sms, smem_limit);
}
inline KernelPlan plan_decode_forward(int64_t B, int64_t H, int64_t C, int sms, int64_t smem_limit,
                                      const CellLayout& cell = CellLayout{}) {
  const int64_t H4 = round4(H), G4 = round4(cell.gates * H), C4 = round4(C), c = cell.cell_state ? H4 : 0;
  return plan_kernel(B, H4 + G4 + C4 + c, H * G4, H * C4, sms, smem_limit);
}
inline KernelPlan plan_decode_backward(int64_t B, int64_t H, int64_t C, int sms, int64_t smem_limit,
                                       const CellLayout& cell = CellLayout{}) {
  const int64_t H4 = round4(H), G4 = round4(cell.gates * H), C4 = round4(C), c = cell.cell_state ? H4 : 0;
  return plan_kernel(B, H4 + (cell.split_grads ? 2 : 1) * G4 + C4 + c, cell.gates * H * H4, 0, sms, smem_limit);
}
inline KernelPlan plan_scan_forward(int64_t B, int64_t H, int sms, int64_t smem_limit,
                                    const CellLayout& cell = CellLayout{}) {
  const int64_t H4 = round4(H), G4 = round4(cell.gates * H), c = cell.cell_state ? H4 : 0;
  return plan_kernel(B, H4 + G4 + c, H * G4, 0, sms, smem_limit);
}
inline KernelPlan plan_scan_backward(int64_t B, int64_t H, int sms, int64_t smem_limit,
                                     const CellLayout& cell = CellLayout{}) {
  const int64_t H4 = round4(H), G4 = round4(cell.gates * H), c = cell.cell_state ? H4 : 0;
  return plan_kernel(B, H4 + G4 + c, cell.gates * H * H4, 0, sms, smem_limit);
}

// sample on sm_90 when W_hh does not fit one block (H >= 256 in float32): a thread-block
// cluster of kClusterBlocks blocks shares one tile of rows; block q holds the columns of W_hh^T
// for units [q H/N, (q+1) H/N) (all their gates: 3 H^2 / N floats for the GRU) and a 1/N slice of
// the head's K columns in its shared memory, plus the full h of its rows; each step the blocks
// exchange logits and h slices through distributed shared memory (two cluster barriers).
// Needs H a multiple of 4 N. rows = 0: not applicable (then plan_sample's path runs).
constexpr int kClusterBlocks = 8;  // the portable maximum cluster size

struct ClusterPlan {
  int rows = 0;
  bool tensor_cores = false;  // the forward product on mma.sync (16 rows; gru_device.cuh: Operand)
  int64_t units = 0;      // hidden units per block (H / N)
  int64_t head_cols = 0;  // logit columns per block (a multiple of 4)
  int64_t smem_bytes = 0;
  int64_t clusters = 0;
};

// The cluster plan for `fixed` floats per block (weights) and `per_row` floats per batch row.
// Rows per cluster: the fewest (a power of two up to kMaxClusterRows) that need at most max_clusters
// clusters (first sms / N; the launcher re-plans with the number the device reports it can run
// at once, as a cluster's blocks must share one GPC), halved while they do not fit.
inline ClusterPlan plan_cluster(int64_t B, int64_t fixed, int64_t per_row, int64_t max_clusters, int64_t smem_limit) {
  ClusterPlan p;
  if (B == 0) return p;
  int rows = 1;
  while (rows < kMaxClusterRows && (B + rows - 1) / rows > (max_clusters > 0 ? max_clusters : 1)) rows *= 2;
  while (rows > 1 && (fixed + rows * per_row) * 4 > smem_limit) rows /= 2;
  const int64_t bytes = (fixed + rows * per_row) * 4;
  if (bytes > smem_limit) return p;
  p.rows = rows;
  p.smem_bytes = bytes;
  p.clusters = (B + rows - 1) / rows;
  return p;
}

inline ClusterPlan plan_sample_cluster(int64_t B, int64_t H, int64_t C, int64_t K, int64_t max_clusters,
                                       int64_t smem_limit, const CellLayout& cell = CellLayout{}) {
  const int64_t N = kClusterBlocks;
  if (H % (4 * N) != 0) return ClusterPlan{};
  const int64_t S = H / N, SG = cell.gates * S, KQ = round4((round4(K) + N - 1) / N), K4 = round4(K);
  ClusterPlan p = plan_cluster(B, H * SG + SG + C * H * KQ + C * KQ + round4(kMaxClusterRows),  // weights, values
                               H + SG + KQ + S + K4 + kMaxLags + (cell.cell_state ? S : 0) + 8 * (SG + KQ),
                               // h, gates|logits, own h, logits, lagged rows, own c (LSTM), partials
                               max_clusters, smem_limit);
  p.units = S;
  p.head_cols = KQ;
  return p;
}

// scan on sm_90, the same split: block q keeps W_hh^T's columns of units [q S, (q+1) S) for the
// forward, W_hh's columns of those units (all G = gates * H rows) for the backward: G S floats
// each (the LSTM's cell state of its units stays in the block: it is never exchanged).
// The forward products on tensor cores (`operand`: gru_device.cuh's Operand, 0 for none; 1 bf16,
// 2 fp16, 3 tf32): when the plan gives a cluster 16 rows, W_hh^T's columns are kept as packed mma
// fragments instead (bf16/fp16: half the bytes; tf32: as many).
#if defined(__CUDACC__)
__host__ __device__
#endif
inline int64_t packed_weight_floats(int64_t K, int64_t N, int operand) {
  return K / (operand == 3 ? 8 : 16) * ((N + 7) / 8) * 64;
}

template <typename Plan>
inline ClusterPlan with_tensor_cores(bool tensor, Plan plan) {
  if (tensor) {
    ClusterPlan p = plan(true);
    if (p.rows == kMaxClusterRows) {
      p.tensor_cores = true;
      return p;
    }
  }
  return plan(false);
}

inline ClusterPlan plan_scan_forward_cluster(int64_t B, int64_t H, int64_t max_clusters, int64_t smem_limit,
                                             const CellLayout& cell = CellLayout{}, int operand = 0) {
  const int64_t N = kClusterBlocks;
  if (H % (4 * N) != 0) return ClusterPlan{};
  const int64_t S = H / N, SG = cell.gates * S;
  return with_tensor_cores(operand != 0, [&](bool packed) {
    ClusterPlan p = plan_cluster(B, (packed ? packed_weight_floats(H, SG, operand) : H * SG) + SG,  // W_hh^T cols, b_hh
                                 // h, own h (two buffers), own c (LSTM), partial sums
                                 H + 2 * S + (cell.cell_state ? S : 0) + 8 * SG, max_clusters, smem_limit);
    p.units = S;
    return p;
  });
}
inline ClusterPlan plan_scan_backward_cluster(int64_t B, int64_t H, int64_t max_clusters, int64_t smem_limit,
                                              const CellLayout& cell = CellLayout{}) {
  const int64_t N = kClusterBlocks;
  if (H % (4 * N) != 0) return ClusterPlan{};
  const int64_t S = H / N, SG = cell.gates * S;
  ClusterPlan p = plan_cluster(B, cell.gates * H * S,  // W_hh columns
                               S + 2 * SG + cell.gates * H + (cell.cell_state ? S : 0) + 8 * S,
                               // dh, own dgh (two buffers), all dgh, own dc, partials
                               max_clusters, smem_limit);
  p.units = S;
  return p;
}

// scan when W_hh fits neither one block nor a cluster's 8 (H >= 512 in float32), for one tile of
// B <= kMaxClusterRows rows: the whole grid of a cooperative launch splits it (scan.cu, GridGroup),
// N blocks of S units each, N <= sms (one block per multiprocessor, all resident at once). S: the
// smallest multiple of 4 dividing H with N = H / S <= sms whose block fits (the most blocks: the
// least work a step each), larger while it does not. exchange: floats of global memory per block
// for the slices it shares.
struct GridPlan {
  int rows = 0;  // 0: not applicable
  int64_t units = 0;
  int blocks = 0;
  int64_t smem_bytes = 0;
  int64_t exchange = 0;
  int64_t head_cols = 0;  // sample: logit columns a block (a multiple of 4)
};

template <typename Fixed, typename PerRow, typename Exchange>
inline GridPlan plan_grid(int64_t B, int64_t H, int sms, int64_t smem_limit, Fixed fixed, PerRow per_row,
                          Exchange exchange) {
  GridPlan p;
  if (B == 0 || B > kMaxClusterRows || H % 4 != 0 || sms <= 0) return p;
  int rows = 1;
  while (rows < B) rows *= 2;
  for (int64_t S = 4; S <= H; S += 4) {
    if (H % S != 0 || H / S > sms) continue;
    const int64_t bytes = (fixed(S) + rows * per_row(S)) * 4;
    if (bytes > smem_limit) continue;
    p.rows = rows;
    p.units = S;
    p.blocks = static_cast<int>(H / S);
    p.smem_bytes = bytes;
    p.exchange = round4(exchange(S, rows));
    return p;
  }
  return p;
}

inline GridPlan plan_scan_forward_grid(int64_t B, int64_t H, int sms, int64_t smem_limit,
                                       const CellLayout& cell = CellLayout{}) {
  const int64_t g = cell.gates, c = cell.cell_state ? 1 : 0;
  return plan_grid(B, H, sms, smem_limit, [&](int64_t S) { return H * g * S + g * S; },
                   [&](int64_t S) { return H + 2 * S + c * S + 8 * g * S; },  // as the cluster plan
                   [&](int64_t S, int64_t rows) { return 2 * rows * S; });      // own h, two buffers
}
inline GridPlan plan_scan_backward_grid(int64_t B, int64_t H, int sms, int64_t smem_limit,
                                        const CellLayout& cell = CellLayout{}) {
  const int64_t g = cell.gates, c = cell.cell_state ? 1 : 0;
  return plan_grid(B, H, sms, smem_limit, [&](int64_t S) { return g * H * S; },
                   [&](int64_t S) { return S + 2 * g * S + g * H + c * S + 8 * S; },
                   [&](int64_t S, int64_t rows) { return 2 * rows * g * S; });  // own dgh, two buffers
}

// sample, the same split (the cluster plan's layout with N = H / S blocks; K / N logit columns each)
inline GridPlan plan_sample_grid(int64_t B, int64_t H, int64_t C, int64_t K, int sms, int64_t smem_limit,
                                 const CellLayout& cell = CellLayout{}) {
  const int64_t g = cell.gates, c = cell.cell_state ? 1 : 0, K4 = round4(K);
  const auto kq = [&](int64_t S) { return round4((K4 + H / S - 1) / (H / S)); };
  GridPlan p = plan_grid(
      B, H, sms, smem_limit,
      [&](int64_t S) { return H * g * S + g * S + C * H * kq(S) + C * kq(S) + round4(kMaxClusterRows); },
      [&](int64_t S) { return H + g * S + kq(S) + S + K4 + kMaxLags + c * S + 8 * (g * S + kq(S)); },
      [&](int64_t S, int64_t rows) { return rows * (g * S + kq(S) + S); });  // own gates|logits, own h
  if (p.rows) p.head_cols = kq(p.units);
  return p;
}

// decode, the same split (the cluster plans' layouts with N = H / S blocks)
inline GridPlan plan_decode_forward_grid(int64_t B, int64_t H, int64_t C, int sms, int64_t smem_limit,
                                         const CellLayout& cell = CellLayout{}) {
  const int64_t g = cell.gates, c = cell.cell_state ? 1 : 0, C4 = round4(C);
  return plan_grid(B, H, sms, smem_limit, [&](int64_t S) { return H * g * S + g * S + g * S * C + g * S + H * C4; },
                   [&](int64_t S) { return H + 2 * S + c * S + C4 + 8 * g * S; },
                   [&](int64_t S, int64_t rows) { return 2 * rows * S; });  // own h, two buffers
}
inline GridPlan plan_decode_backward_grid(int64_t B, int64_t H, int64_t C, int sms, int64_t smem_limit,
                                          const CellLayout& cell = CellLayout{}) {
  const int64_t g = cell.gates, c = cell.cell_state ? 1 : 0, C4 = round4(C), split = cell.split_grads ? 1 : 0;
  return plan_grid(B, H, sms, smem_limit, [&](int64_t S) { return g * H * S + C * S + g * S * C; },
                   [&](int64_t S) { return S + (2 + split) * g * S + g * H + 3 * C4 + c * S + 8 * S; },
                   [&](int64_t S, int64_t rows) { return 2 * rows * (g * S + C4); });  // own dgh, own dx share
}

// decode on sm_90, the same split: forward keeps W_hh^T's columns of its units, their rows of
// W_ih and b_ih, and the whole head W_out^T [H, C4] (every block forms the step's outputs x_t
// itself from the full h, so all blocks feed the same inputs); backward keeps W_hh's and W_out's
// columns of its units and its units' rows of W_ih (each block's share of dx_t = dgi @ W_ih is
// exchanged and summed in rank order, so every block holds the same dx_t).
inline ClusterPlan plan_decode_forward_cluster(int64_t B, int64_t H, int64_t C, int64_t max_clusters,
                                               int64_t smem_limit, const CellLayout& cell = CellLayout{},
                                               int operand = 0) {
  const int64_t N = kClusterBlocks;
  if (H % (4 * N) != 0) return ClusterPlan{};
  const int64_t S = H / N, SG = cell.gates * S, C4 = round4(C);
  return with_tensor_cores(operand != 0, [&](bool packed) {
    ClusterPlan p = plan_cluster(B, (packed ? packed_weight_floats(H, SG, operand) : H * SG) + SG + SG * C + SG + H * C4,
                                 // W_hh^T cols, b_hh, W_ih rows, b_ih, head; per row: h, own h (two
                                 // buffers), own c (LSTM), x_t, partial sums
                                 H + 2 * S + (cell.cell_state ? S : 0) + C4 + 8 * SG, max_clusters, smem_limit);
    p.units = S;
    return p;
  });
}
inline ClusterPlan plan_decode_backward_cluster(int64_t B, int64_t H, int64_t C, int64_t max_clusters,
                                                int64_t smem_limit, const CellLayout& cell = CellLayout{}) {
  const int64_t N = kClusterBlocks;
  if (H % (4 * N) != 0) return ClusterPlan{};
  const int64_t S = H / N, SG = cell.gates * S, C4 = round4(C);
  ClusterPlan p = plan_cluster(B, cell.gates * H * S + C * S + SG * C,  // W_hh cols, W_out cols, W_ih rows
                               // dh, own dgh (two buffers), own dgi (GRU), all dgh, own dx share (two
                               // buffers), dx, own dc (LSTM), partials
                               S + 2 * SG + (cell.split_grads ? SG : 0) + cell.gates * H + 3 * C4 +
                                   (cell.cell_state ? S : 0) + 8 * S,
                               max_clusters, smem_limit);
  p.units = S;
  return p;
}

}  // namespace rnngen::cuda
