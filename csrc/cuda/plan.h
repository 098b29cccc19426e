// How a fused CUDA kernel of rnngen is laid out on the device: rows per block, which weights
// live in shared memory, and the dynamic shared-memory size. Plain host C++ (no CUDA, no torch),
// so the launchers (*.cu) and a host test (tests/test_cuda_sources.py) use the same rules; the
// rules themselves are described at the top of sample.cu.
#pragma once

#include <cstdint>

namespace rnngen::cuda {

constexpr int kThreads = 256;  // threads per block of every fused kernel
constexpr int kMaxRows = 8;    // batch rows per block: 1, 2, 4 or 8 (one warp draws one row)

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

// The plans of the five kernels (floats of state per row, weights, head), given the sizes.
// H hidden units, G = 3H gates; sample: C channels of K values; decode: C outputs.
inline KernelPlan plan_sample(int64_t B, int64_t H, int64_t C, int64_t K, int sms, int64_t smem_limit) {
  const int64_t H4 = round4(H), G4 = round4(3 * H), K4 = round4(K);
  return plan_kernel(B, H4 + G4 + K4 + 4, H * G4, C * H * K4, sms, smem_limit);
}
inline KernelPlan plan_decode_forward(int64_t B, int64_t H, int64_t C, int sms, int64_t smem_limit) {
  const int64_t H4 = round4(H), G4 = round4(3 * H), C4 = round4(C);
  return plan_kernel(B, H4 + G4 + C4, H * G4, H * C4, sms, smem_limit);
}
inline KernelPlan plan_decode_backward(int64_t B, int64_t H, int64_t C, int sms, int64_t smem_limit) {
  const int64_t H4 = round4(H), G4 = round4(3 * H), C4 = round4(C);
  return plan_kernel(B, H4 + 2 * G4 + C4, 3 * H * H4, 0, sms, smem_limit);
}
inline KernelPlan plan_scan_forward(int64_t B, int64_t H, int sms, int64_t smem_limit) {
  const int64_t H4 = round4(H), G4 = round4(3 * H);
  return plan_kernel(B, H4 + G4, H * G4, 0, sms, smem_limit);
}
inline KernelPlan plan_scan_backward(int64_t B, int64_t H, int sms, int64_t smem_limit) {
  const int64_t H4 = round4(H), G4 = round4(3 * H);
  return plan_kernel(B, H4 + G4, 3 * H * H4, 0, sms, smem_limit);
}

}  // namespace rnngen::cuda
