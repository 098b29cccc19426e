// A CPU emulation of the few CUDA features the fused kernels use, so tests can run the kernels
// of csrc/cuda/*.cu on a machine without a GPU (tests/test_cuda_emulation.py). Each block runs as
// 256 std::threads meeting at a std::barrier for __syncthreads; warp shuffles and ballots go
// through a per-warp exchange array between two warp barriers; blocks run one after another
// over one shared-memory buffer (poisoned with NaN before each block). It checks the kernels'
// logic (indexing, barrier placement, the draw) against the reference, not their timing or
// memory-model subtleties (compute-sanitizer on a GPU does that). The sm_90 cluster variant runs
// its 8 blocks concurrently (2048 threads), with a cluster barrier and each block's own shared
// memory reachable through Cluster::map_shared_rank.
#pragma once

#define RNNGEN_CUDA_EMULATION 1

#include <cuda_runtime.h>  // float4, make_float4, uint3 (host declarations only)

#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <thread>
#include <vector>

#define __launch_bounds__(...)

namespace emu {
constexpr int kBlockThreads = 256;
struct Warp {
  std::barrier<> bar{32};
  float f[32];
  int i[32];
  unsigned frag[32][6];  // mma16816: each lane's A and B fragments
};
inline thread_local uint3 thread_idx{0, 0, 0};
inline thread_local uint3 block_idx{0, 0, 0};
inline uint3 block_dim{kBlockThreads, 1, 1};
inline thread_local std::barrier<>* block_barrier = nullptr;  // this thread's block
inline thread_local Warp* warps = nullptr;
inline thread_local float* block_smem = nullptr;
inline thread_local unsigned cluster_rank = 0;
inline std::barrier<>* cluster_barrier = nullptr;
inline float* cluster_smem[128] = {};  // the blocks that run together (a cluster, or a whole split grid)
inline Warp& warp() { return warps[thread_idx.x / 32]; }
inline int lane() { return static_cast<int>(thread_idx.x % 32); }
}  // namespace emu

#define threadIdx (emu::thread_idx)
#define blockIdx (emu::block_idx)
#define blockDim (emu::block_dim)

inline void __syncthreads() { emu::block_barrier->arrive_and_wait(); }
inline void __trap() { std::abort(); }
using std::max;
using std::min;

inline float __shfl_sync(unsigned, float v, int src) {
  emu::Warp& w = emu::warp();
  w.f[emu::lane()] = v;
  w.bar.arrive_and_wait();
  const float r = w.f[src & 31];
  w.bar.arrive_and_wait();
  return r;
}
inline int __shfl_sync(unsigned, int v, int src) {
  emu::Warp& w = emu::warp();
  w.i[emu::lane()] = v;
  w.bar.arrive_and_wait();
  const int r = w.i[src & 31];
  w.bar.arrive_and_wait();
  return r;
}
inline float __shfl_xor_sync(unsigned, float v, int mask) { return __shfl_sync(0u, v, emu::lane() ^ mask); }
inline float __shfl_up_sync(unsigned, float v, unsigned delta) {
  const int l = emu::lane();
  const float r = __shfl_sync(0u, v, l >= static_cast<int>(delta) ? l - static_cast<int>(delta) : l);
  return l >= static_cast<int>(delta) ? r : v;
}
inline unsigned __ballot_sync(unsigned, int predicate) {
  emu::Warp& w = emu::warp();
  w.i[emu::lane()] = predicate != 0;
  w.bar.arrive_and_wait();
  unsigned bits = 0;
  for (int l = 0; l < 32; ++l) bits |= static_cast<unsigned>(w.i[l]) << l;
  w.bar.arrive_and_wait();
  return bits;
}
inline int __ffs(unsigned x) { return __builtin_ffs(static_cast<int>(x)); }

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace rnngen::cuda {
inline float* shared_base() { return emu::block_smem; }

enum class Operand : int;
// mma.sync.m16n8k16 (gru_device.cuh has the fragment layout): the warp's lanes exchange their
// fragments, each lane forms its four sums (float32, in k order) and adds them to d.
inline float unpack_half(unsigned word, int half, int op) {
  const unsigned short bits = static_cast<unsigned short>(half ? word >> 16 : word & 0xffffu);
  if (op == 2) {
    __half_raw raw;
    raw.x = bits;
    return __half2float(__half(raw));
  }
  const unsigned f = static_cast<unsigned>(bits) << 16;
  float v;
  std::memcpy(&v, &f, 4);
  return v;
}
inline float tf32_value(unsigned word) {  // the float32 bits of a TF32 operand (already rounded)
  float v;
  std::memcpy(&v, &word, 4);
  return v;
}
inline void mma16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], Operand operand) {
  const int op = static_cast<int>(operand);
  emu::Warp& w = emu::warp();
  const int lane = emu::lane();
  for (int r = 0; r < 4; ++r) w.frag[lane][r] = a[r];
  w.frag[lane][4] = b[0];
  w.frag[lane][5] = b[1];
  w.bar.arrive_and_wait();
  const int g = lane / 4, t4 = lane % 4;
  if (op == 3) {  // m16n8k8, tf32: one value a register
    for (int i = 0; i < 4; ++i) {
      const int row = g + (i >= 2 ? 8 : 0), col = 2 * t4 + (i & 1);
      float sum = 0.0f;
      for (int k = 0; k < 8; ++k) {
        const float av = tf32_value(w.frag[(row % 8) * 4 + k % 4][(row >= 8 ? 1 : 0) + (k >= 4 ? 2 : 0)]);
        const float bv = tf32_value(w.frag[col * 4 + k % 4][4 + (k >= 4 ? 1 : 0)]);
        sum += av * bv;
      }
      d[i] += sum;
    }
    w.bar.arrive_and_wait();
    return;
  }
  for (int i = 0; i < 4; ++i) {
    const int row = g + (i >= 2 ? 8 : 0), col = 2 * t4 + (i & 1);
    float sum = 0.0f;
    for (int k = 0; k < 16; ++k) {
      const int kk = k % 8;
      const float av = unpack_half(w.frag[(row % 8) * 4 + kk / 2][(row >= 8 ? 1 : 0) + (k >= 8 ? 2 : 0)], kk % 2, op);
      const float bv = unpack_half(w.frag[col * 4 + kk / 2][4 + (k >= 8 ? 1 : 0)], kk % 2, op);
      sum += av * bv;
    }
    d[i] += sum;
  }
  w.bar.arrive_and_wait();
}

struct GroupArgs;
struct Cluster {  // the 8 blocks that run together, each its own shared memory
  static constexpr bool kCluster = true;
  Cluster() = default;
  template <typename Args>
  explicit Cluster(const Args&) {}
  unsigned block_rank() const { return emu::cluster_rank; }
  int size() const { return 8; }
  int tile() const { return static_cast<int>(emu::block_idx.x) / 8; }
  void sync() const { emu::cluster_barrier->arrive_and_wait(); }
  template <typename T>
  T* map_shared_rank(T* addr, int rank) const {
    const char* mine = reinterpret_cast<const char*>(emu::block_smem);
    return reinterpret_cast<T*>(reinterpret_cast<char*>(emu::cluster_smem[rank]) +
                                (reinterpret_cast<const char*>(addr) - mine));
  }
  template <typename T>
  T* own(T* shared, int64_t) const { return shared; }
  template <typename T>
  T* remote(T* own, int rank) const { return map_shared_rank(own, rank); }
  float load(const float* p) const { return *p; }
};
struct GridGroup {  // every block of the launch runs together (run_blocks with together = blocks)
  static constexpr bool kCluster = false;
  float* exchange;
  int64_t stride;
  int blocks;
  template <typename Args>
  explicit GridGroup(const Args& a) : exchange(a.exchange), stride(a.stride), blocks(a.blocks) {}
  unsigned block_rank() const { return emu::block_idx.x; }
  int size() const { return blocks; }
  int tile() const { return 0; }
  void sync() const { emu::cluster_barrier->arrive_and_wait(); }
  template <typename T>
  T* own(T*, int64_t offset) const { return reinterpret_cast<T*>(exchange + emu::block_idx.x * stride + offset); }
  template <typename T>
  T* remote(T* own, int rank) const { return own + (static_cast<int64_t>(rank) - emu::block_idx.x) * stride; }
  float load(const float* p) const { return *p; }
};
}  // namespace rnngen::cuda

namespace emu {
// Run kernel(args...) over `blocks` blocks of 256 threads: `together` blocks at a time (a
// cluster), each with its own shared memory (NaN-poisoned), block barrier and warps.
template <typename... Args>
void run_blocks(void (*kernel)(Args...), long blocks, int together, long smem_bytes, const Args&... args) {
  const size_t floats = static_cast<size_t>(smem_bytes) / 4 + 4;
  std::vector<std::vector<float4>> smem(together, std::vector<float4>(floats / 4 + 1));
  std::barrier<> cluster_bar(together * kBlockThreads);
  cluster_barrier = &cluster_bar;
  for (long first = 0; first < blocks; first += together) {
    std::vector<std::unique_ptr<std::barrier<>>> bars;
    std::vector<std::unique_ptr<Warp[]>> ws;
    for (int r = 0; r < together; ++r) {
      float* base = reinterpret_cast<float*>(smem[r].data());
      std::fill(base, base + floats, std::numeric_limits<float>::quiet_NaN());
      cluster_smem[r] = base;
      bars.emplace_back(new std::barrier<>(kBlockThreads));
      ws.emplace_back(new Warp[kBlockThreads / 32]);
    }
    std::vector<std::thread> threads;
    for (int r = 0; r < together; ++r)
      for (int t = 0; t < kBlockThreads; ++t)
        threads.emplace_back([&, r, t] {
          thread_idx = uint3{static_cast<unsigned>(t), 0, 0};
          block_idx = uint3{static_cast<unsigned>(first + r), 0, 0};
          block_barrier = bars[r].get();
          warps = ws[r].get();
          block_smem = cluster_smem[r];
          cluster_rank = static_cast<unsigned>(r);
          kernel(args...);
        });
    for (std::thread& th : threads) th.join();
  }
}

template <typename Args>
void run_grid(void (*kernel)(Args), long blocks, long smem_bytes, const Args& args) {
  run_blocks(kernel, blocks, 1, smem_bytes, args);
}
}  // namespace emu
