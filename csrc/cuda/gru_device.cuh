// Building blocks of the fused CUDA kernels (sample.cu, decode.cu, scan.cu): the GRU cell and
// its backward (host and device, so a host program can check them), the per-step block matvec,
// the warp's inverse-CDF draw and the launch helper. No torch headers.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__CUDACC__) || defined(RNNGEN_CUDA_EMULATION)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#endif
#if defined(__CUDACC__)
#include <cooperative_groups.h>
#endif

#include "../common/philox.h"
#include "plan.h"

namespace rnngen::cuda {

#if defined(__CUDACC__)
#define RNNGEN_HD __host__ __device__ __forceinline__
#else
#define RNNGEN_HD inline
#endif

// ---- where a step's time goes (bench/gpu/step_clocks.cu) ----
// Built with -DRNNGEN_STEP_CLOCKS, the split kernels of sample and decode (forward) add, on
// thread 0 of block 0, the clock64() cycles of each phase of every step to
// rnngen_step_clocks[phase]: the barriers make thread 0's timeline the block's. Otherwise the
// stamps compile to nothing.
#if defined(RNNGEN_STEP_CLOCKS) && defined(__CUDACC__)
constexpr int kClockPhases = 8;
__device__ unsigned long long rnngen_step_clocks[kClockPhases];
#define RNNGEN_CLOCK_START long long rnngen_clock_last = clock64()
#define RNNGEN_CLOCK(phase)                                                                     \
  do {                                                                                          \
    if (blockIdx.x == 0 && threadIdx.x == 0) {                                                  \
      const long long rnngen_clock_now = clock64();                                             \
      ::rnngen::cuda::rnngen_step_clocks[phase] += rnngen_clock_now - rnngen_clock_last;        \
      rnngen_clock_last = rnngen_clock_now;                                                     \
    }                                                                                           \
  } while (0)
#else
#define RNNGEN_CLOCK_START do { } while (0)
#define RNNGEN_CLOCK(phase) do { } while (0)
#endif

// ---- GRU math (exactly nn.GRU's; expf/tanhf, not the fast intrinsics) ----

RNNGEN_HD float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// h' from the input gates (i_*), the hidden gates (g_* = W_hh h + b_hh) and h.
RNNGEN_HD float gru_cell(float i_r, float i_z, float i_n, float g_r, float g_z, float g_n, float h) {
  const float r = sigmoid(i_r + g_r);
  const float z = sigmoid(i_z + g_z);
  const float n = tanhf(i_n + r * g_n);
  return (1.0f - z) * n + z * h;
}

// Backward of one unit for dL/dh' = d: the gate pre-activation gradients (da_r, da_z, da_n: the
// input-gate gradients; the hidden gates' are the same except n: da_n * r), r, and d * z (the
// part of dL/dh that does not pass through W_hh). As rnngen/ops/gru_cell.py step_backward.
struct CellGrad {
  float da_r, da_z, da_n, r, direct;
};
RNNGEN_HD CellGrad gru_cell_backward(float d, float i_r, float i_z, float i_n, float g_r, float g_z, float g_n,
                                     float h) {
  const float r = sigmoid(i_r + g_r);
  const float z = sigmoid(i_z + g_z);
  const float n = tanhf(i_n + r * g_n);
  CellGrad out;
  out.da_n = d * (1.0f - z) * (1.0f - n * n);
  out.da_z = d * (h - n) * z * (1.0f - z);
  out.da_r = out.da_n * g_n * r * (1.0f - r);
  out.r = r;
  out.direct = d * z;
  return out;
}

// The device code below also compiles on the host with RNNGEN_CUDA_EMULATION (threads, barriers
// and warp shuffles emulated: tests/cuda_emulation.h), where tests run the kernels on the CPU.
#if defined(__CUDACC__) || defined(RNNGEN_CUDA_EMULATION)

// The block's dynamic shared memory (the emulation provides its own).
#if !defined(RNNGEN_CUDA_EMULATION)
__device__ __forceinline__ float* shared_base() {
  extern __shared__ float4 smem4[];
  return reinterpret_cast<float*>(smem4);
}
#endif

// ---- where the blocks of a split kernel meet ----
// The split kernels (scan.cu) share W_hh's columns out over the blocks of a group, which
// exchange each step's slices: Cluster, the 8 blocks of an sm_90 thread-block cluster (each
// tile of rows its own cluster; the slices in shared memory, read through distributed shared
// memory), or GridGroup, every block of a cooperative launch (one tile of rows; the slices in a
// global exchange buffer, read past L1, after a grid barrier). Both give: block_rank, size, tile,
// sync, own(shared, offset) (where this block puts the slices it shares), remote(own, rank) (the
// same place of block rank) and load (a read of another block's slice). The emulation provides
// its own of both.
struct GroupArgs {
  float* exchange = nullptr;  // GridGroup: [blocks][stride] floats of global memory
  int64_t stride = 0;
  int blocks = 0;
};

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
struct Cluster {
  static constexpr bool kCluster = true;
  cooperative_groups::cluster_group group = cooperative_groups::this_cluster();
  Cluster() = default;
  __device__ explicit Cluster(const GroupArgs&) {}
  __device__ unsigned block_rank() { return group.block_rank(); }
  __device__ int size() const { return kClusterBlocks; }
  __device__ int tile() const { return static_cast<int>(blockIdx.x) / kClusterBlocks; }
  __device__ void sync() { group.sync(); }
  template <typename T>
  __device__ T* map_shared_rank(T* addr, int rank) { return group.map_shared_rank(addr, rank); }
  template <typename T>
  __device__ T* own(T* shared, int64_t) { return shared; }
  template <typename T>
  __device__ T* remote(T* own, int rank) { return group.map_shared_rank(own, rank); }
  __device__ float load(const float* p) const { return *p; }
};
#elif !defined(RNNGEN_CUDA_EMULATION)
struct Cluster {  // sm_80 and the host pass: the cluster instantiations compile to a trap
  static constexpr bool kCluster = true;
  __host__ __device__ explicit Cluster(const GroupArgs&) {}
};
#endif

// Whether a split kernel's body is compiled for this pass: the cluster instantiations only on
// sm_90 (and the emulation); on sm_80 they compile to a trap (the launchers never pick them).
#if (defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900) || defined(RNNGEN_CUDA_EMULATION) || !defined(__CUDA_ARCH__)
#define RNNGEN_SPLIT_RUNS(Group) true
#else
#define RNNGEN_SPLIT_RUNS(Group) (!Group::kCluster)
#endif

#if defined(__CUDACC__)
struct GridGroup {
  static constexpr bool kCluster = false;
  GroupArgs g;
  __device__ explicit GridGroup(const GroupArgs& args) : g(args) {}
  __device__ unsigned block_rank() const { return blockIdx.x; }
  __device__ int size() const { return g.blocks; }
  __device__ int tile() const { return 0; }
  __device__ void sync() const { cooperative_groups::this_grid().sync(); }  // (a memory fence too)
  template <typename T>
  __device__ T* own(T*, int64_t offset) const {
    return reinterpret_cast<T*>(g.exchange + static_cast<int64_t>(blockIdx.x) * g.stride + offset);
  }
  template <typename T>
  __device__ T* remote(T* own, int rank) const {
    return own + (static_cast<int64_t>(rank) - static_cast<int64_t>(blockIdx.x)) * g.stride;
  }
  __device__ float load(const float* p) const { return __ldcg(p); }  // not a stale line of this SM's L1
};
#endif

// ---- the per-step product: y[b, :] = bias + x[b, :] @ M for the block's BT rows ----
// M is row-major [kdim, ld] in shared or global memory (ld a multiple of 4, zero-padded columns);
// x is shared [BT, ldx] (ldx a multiple of 4); y is shared [BT, ldy]. Thread i owns the 4
// columns 4i..4i+3 for all BT rows: a warp reads 512 contiguous bytes of M per k (no bank
// conflicts), x is a broadcast, and BT float4 accumulators stay in registers.
struct MatVec {
  const float* m;
  int ld, kdim, groups;  // groups: column groups of 4 (ld / 4, or fewer)
  const float* bias;     // [groups * 4] or null
  float* y;
  int ldy;
  bool accumulate;       // y += instead of y =
};

template <int BT>
__device__ __forceinline__ void matvec_group(const float* __restrict__ m, int ld, int kdim,
                                             const float* __restrict__ bias, float* y, int ldy, bool accumulate,
                                             int i, const float* __restrict__ x, int ldx) {
  float4 acc[BT];
  const float4 b = bias ? reinterpret_cast<const float4*>(bias)[i] : make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
  for (int r = 0; r < BT; ++r) acc[r] = b;
  const float* mp = m + 4 * i;
  int k = 0;
  for (; k + 4 <= kdim; k += 4) {
    const float4 w0 = *reinterpret_cast<const float4*>(mp + (k + 0) * ld);
    const float4 w1 = *reinterpret_cast<const float4*>(mp + (k + 1) * ld);
    const float4 w2 = *reinterpret_cast<const float4*>(mp + (k + 2) * ld);
    const float4 w3 = *reinterpret_cast<const float4*>(mp + (k + 3) * ld);
#pragma unroll
    for (int r = 0; r < BT; ++r) {
      const float4 xv = *reinterpret_cast<const float4*>(x + r * ldx + k);
      acc[r].x = fmaf(xv.w, w3.x, fmaf(xv.z, w2.x, fmaf(xv.y, w1.x, fmaf(xv.x, w0.x, acc[r].x))));
      acc[r].y = fmaf(xv.w, w3.y, fmaf(xv.z, w2.y, fmaf(xv.y, w1.y, fmaf(xv.x, w0.y, acc[r].y))));
      acc[r].z = fmaf(xv.w, w3.z, fmaf(xv.z, w2.z, fmaf(xv.y, w1.z, fmaf(xv.x, w0.z, acc[r].z))));
      acc[r].w = fmaf(xv.w, w3.w, fmaf(xv.z, w2.w, fmaf(xv.y, w1.w, fmaf(xv.x, w0.w, acc[r].w))));
    }
  }
  for (; k < kdim; ++k) {
    const float4 w0 = *reinterpret_cast<const float4*>(mp + k * ld);
#pragma unroll
    for (int r = 0; r < BT; ++r) {
      const float xv = x[r * ldx + k];
      acc[r].x = fmaf(xv, w0.x, acc[r].x);
      acc[r].y = fmaf(xv, w0.y, acc[r].y);
      acc[r].z = fmaf(xv, w0.z, acc[r].z);
      acc[r].w = fmaf(xv, w0.w, acc[r].w);
    }
  }
#pragma unroll
  for (int r = 0; r < BT; ++r) {
    float4* out = reinterpret_cast<float4*>(y + r * ldy) + i;
    if (accumulate) {
      const float4 o = *out;
      acc[r].x += o.x;
      acc[r].y += o.y;
      acc[r].z += o.z;
      acc[r].w += o.w;
    }
    *out = acc[r];
  }
}

// Two products over the same x in one pass of the block's threads (gates and head together).
template <int BT>
__device__ __forceinline__ void matvec2(const MatVec& a, const MatVec& b, const float* x, int ldx) {
  const int n = a.groups + b.groups;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const bool first = i < a.groups;
    matvec_group<BT>(first ? a.m : b.m, first ? a.ld : b.ld, first ? a.kdim : b.kdim, first ? a.bias : b.bias,
                     first ? a.y : b.y, first ? a.ldy : b.ldy, first ? a.accumulate : b.accumulate,
                     first ? i : i - a.groups, x, ldx);
  }
}

template <int BT>
__device__ __forceinline__ void matvec1(const MatVec& a, const float* x, int ldx) {
  for (int i = threadIdx.x; i < a.groups; i += blockDim.x)
    matvec_group<BT>(a.m, a.ld, a.kdim, a.bias, a.y, a.ldy, a.accumulate, i, x, ldx);
}

// ---- tensor cores: the block product of 16 rows on mma.sync (sm_80+) ----
// Used by the sm_90 cluster variants of the forward products (scan, decode) for tiles of 16 rows
// (plan.h: tensor_cores) when the op's dtype is bfloat16 or float16, and for float32 ops when
// torch allows TF32 matmuls (torch.backends.cuda.matmul.allow_tf32, as the triton backend). The
// operands are rounded to that type (bf16/fp16 weights are that type already; h is rounded each
// step, as a PyTorch run in that dtype rounds it; TF32: to nearest, 10 mantissa bits), the
// products accumulate in float32, and everything else stays float32.
// mma.sync.m16n8k16 fragments (bf16, fp16; PTX ISA), lane = 4 g + t:
//   A (16 x 16, row-major): a0 = A[g][2t, 2t+1], a1 = A[g+8][2t, 2t+1], a2 = A[g][2t+8, 2t+9], a3 = A[g+8][2t+8, 2t+9]
//   B (16 x 8):             b0 = B[2t, 2t+1][g],  b1 = B[2t+8, 2t+9][g]
//   D (16 x 8, float):      d0, d1 = D[g][2t, 2t+1],  d2, d3 = D[g+8][2t, 2t+1]
// each pair packed in one 32-bit register, the lower index in the low half. m16n8k8 (tf32), one
// value a register: a0 = A[g][t], a1 = A[g+8][t], a2 = A[g][t+4], a3 = A[g+8][t+4];
// b0 = B[t][g], b1 = B[t+4][g]; D as above.
enum class Operand : int { f32 = 0, bf16 = 1, f16 = 2, tf32 = 3 };

// x rounded to TF32 (to nearest, ties away from zero, as cvt.rna.tf32.f32), as its float32 bits.
RNNGEN_HD uint32_t tf32_bits(float x) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  uint32_t bits;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(bits) : "f"(x));
  return bits;
#else
  uint32_t bits;
  memcpy(&bits, &x, 4);
  if ((bits & 0x7f800000u) == 0x7f800000u) return bits;  // inf, NaN: unchanged
  return (bits + 0x1000u) & 0xffffe000u;
#endif
}

RNNGEN_HD uint32_t pack2(float lo, float hi, Operand op) {
  uint32_t bits;
  if (op == Operand::f16) {
    const __half2 v = __floats2half2_rn(lo, hi);
    memcpy(&bits, &v, 4);
  } else {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    memcpy(&bits, &v, 4);
  }
  return bits;
}

#if !defined(RNNGEN_CUDA_EMULATION)  // (the emulation provides its own)
// d += A B for one warp's fragments (m16n8k8 for tf32, else m16n8k16).
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], Operand op) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if (op == Operand::tf32)
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  else if (op == Operand::f16)
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  __trap();  // never reached: tensor cores are planned for the sm_90 cluster variants only
#endif
}
#endif

// Pack B fragments of the [K, N] weight weight(k, n) (columns >= N zero) as
// [K/16][ceil(N/8)][32 lanes][2] words (plan.h: packed_weight_floats), so that each lane reads its
// two words of a tile at once.
template <typename Weight>
__device__ __forceinline__ void pack_b_fragments(uint32_t* wf, int K, int N, Weight weight, Operand op) {
  const int NT = (N + 7) / 8, KS = op == Operand::tf32 ? 8 : 16;  // KS: k per mma
  const int64_t n_items = static_cast<int64_t>(K / KS) * NT * 32;
  for (int64_t i = threadIdx.x; i < n_items; i += blockDim.x) {
    const int lane = static_cast<int>(i % 32), nt = static_cast<int>((i / 32) % NT), kt = static_cast<int>(i / 32 / NT);
    const int n = nt * 8 + lane / 4, t4 = lane % 4;
    const auto at = [&](int kk) { return n < N ? weight(kk, n) : 0.0f; };
    if (op == Operand::tf32) {
      wf[2 * i] = tf32_bits(at(kt * 8 + t4));
      wf[2 * i + 1] = tf32_bits(at(kt * 8 + t4 + 4));
    } else {
      const int k = kt * 16 + 2 * t4;
      wf[2 * i] = pack2(at(k), at(k + 1), op);
      wf[2 * i + 1] = pack2(at(k + 8), at(k + 9), op);
    }
  }
}

// y[r, n] = bias[n] + sum_k x[r, k] W[k, n] for the 16 rows of x (shared [16, ldx], float; K a
// multiple of 16) and the N columns of W packed in wf; the block's warps share the column tiles.
__device__ __forceinline__ void mma_product(const uint32_t* wf, int K, int N, const float* bias, const float* x,
                                            int ldx, float* y, int ldy, Operand op) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t4 = lane % 4;
  const bool tf32 = op == Operand::tf32;
  const int NT = (N + 7) / 8, KT = K / (tf32 ? 8 : 16);
  for (int nt = warp; nt < NT; nt += kThreads / 32) {
    float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int kt = 0; kt < KT; ++kt) {
      const float* x0 = x + g * ldx + (tf32 ? kt * 8 + t4 : kt * 16 + 2 * t4);
      const float* x1 = x0 + 8 * ldx;
      uint32_t a[4];
      if (tf32) {
        a[0] = tf32_bits(x0[0]);
        a[1] = tf32_bits(x1[0]);
        a[2] = tf32_bits(x0[4]);
        a[3] = tf32_bits(x1[4]);
      } else {
        a[0] = pack2(x0[0], x0[1], op);
        a[1] = pack2(x1[0], x1[1], op);
        a[2] = pack2(x0[8], x0[9], op);
        a[3] = pack2(x1[8], x1[9], op);
      }
      const uint32_t* bp = wf + ((static_cast<int64_t>(kt) * NT + nt) * 32 + lane) * 2;
      const uint32_t b[2] = {bp[0], bp[1]};
      mma16816(d, a, b, op);
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int col = nt * 8 + 2 * t4 + i;
      if (col < N) {
        const float bb = bias ? bias[col] : 0.0f;
        y[g * ldy + col] = d[i] + bb;
        y[(g + 8) * ldy + col] = d[2 + i] + bb;
      }
    }
  }
}

// ---- the draw: one warp, the contract's inverse CDF ----
// e = expf((l - max) / temperature) (written over l), cdf accumulated in float32 in increasing
// value order (each lane sums its own chunk of values in order, a warp scan joins the chunks:
// the same sums up to rounding), the first k with cdf[k] > u * cdf[K-1], else K-1; NaN draws 0.
__device__ __forceinline__ int warp_draw(float* l, int K, float temperature, float u, int lane) {
  constexpr unsigned kAll = 0xffffffffu;
  const int chunk = (K + 31) / 32;
  const int k0 = min(K, lane * chunk), k1 = min(K, k0 + chunk);
  float m = -INFINITY;
  for (int k = k0; k < k1; ++k) m = l[k] > m ? l[k] : m;
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const float o = __shfl_xor_sync(kAll, m, off);
    m = o > m ? o : m;
  }
  float s = 0.0f;
  for (int k = k0; k < k1; ++k) {
    const float e = expf((l[k] - m) / temperature);
    l[k] = e;
    s += e;
  }
  float incl = s;
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    const float o = __shfl_up_sync(kAll, incl, off);
    if (lane >= off) incl += o;
  }
  float run = __shfl_up_sync(kAll, incl, 1);
  if (lane == 0) run = 0.0f;
  const float threshold = u * __shfl_sync(kAll, incl, 31);
  if (threshold != threshold) return 0;  // NaN logits (or inf - inf): value 0, as the reference
  int found = K;
  for (int k = k0; k < k1; ++k) {
    run += l[k];
    if (run > threshold) {
      found = k;
      break;
    }
  }
  const unsigned hit = __ballot_sync(kAll, found < K);
  const int v = hit ? __shfl_sync(kAll, found, __ffs(hit) - 1) : K - 1;
  return v < K - 1 ? v : K - 1;
}

// Copy n floats (n a multiple of 4, both 16-byte aligned) global -> shared with the whole block.
__device__ __forceinline__ void copy_to_shared(float* dst, const float* src, int64_t n) {
  for (int64_t i = threadIdx.x; i < n / 4; i += blockDim.x)
    reinterpret_cast<float4*>(dst)[i] = reinterpret_cast<const float4*>(src)[i];
}

__device__ __forceinline__ void zero_shared(float* dst, int64_t n) {
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) dst[i] = 0.0f;
}

#endif  // __CUDACC__ || RNNGEN_CUDA_EMULATION

#if defined(__CUDACC__)

// ---- launching ----

// The current device's multiprocessor count and opt-in shared memory per block.
inline cudaError_t device_limits(int* sms, int64_t* smem_limit) {
  int dev = 0, smem = 0;
  cudaError_t err = cudaGetDevice(&dev);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(sms, cudaDevAttrMultiProcessorCount, dev);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  *smem_limit = smem;
  return err;
}

// Launch the instantiation for plan.rows rows per block with plan.smem_bytes of shared memory.
template <typename Args>
cudaError_t launch_planned(void (*k1)(Args), void (*k2)(Args), void (*k4)(Args), void (*k8)(Args),
                           const KernelPlan& plan, const Args& args, cudaStream_t stream) {
  if (plan.rows == 0) return cudaErrorInvalidConfiguration;  // one row's state exceeds shared memory
  void (*kernel)(Args) = plan.rows == 1 ? k1 : plan.rows == 2 ? k2 : plan.rows == 4 ? k4 : k8;
  if (plan.smem_bytes > 48 * 1024) {
    const cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                 static_cast<int>(plan.smem_bytes));
    if (err != cudaSuccess) return err;
  }
  kernel<<<static_cast<unsigned>(plan.blocks), kThreads, static_cast<size_t>(plan.smem_bytes), stream>>>(args);
  return cudaGetLastError();
}

// The sm_90 cluster variants run when the device is sm_90 or later and RNNGEN_CUDA_CLUSTERS is
// not "0".
inline bool clusters_enabled() {
  const char* env = std::getenv("RNNGEN_CUDA_CLUSTERS");
  if (env && env[0] == '0') return false;
  int dev = 0, major = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess)
    return false;
  return major >= 9;
}

// Launch a cluster kernel of kClusterBlocks blocks per cluster: pick(rows) gives the
// instantiation for a plan's rows, replan(max_clusters) a plan for at most that many clusters
// (used once when the device runs fewer clusters at a time than planned). Returns
// cudaErrorNotSupported when the variant cannot run here (kernel not compiled for sm_90, or no
// cluster of that size fits): the caller then takes the one-block path.
template <typename Pick, typename Replan, typename... Args>
cudaError_t launch_clusters(ClusterPlan plan, Pick pick, Replan replan, cudaStream_t stream, const Args&... args) {
  if (plan.rows == 0) return cudaErrorNotSupported;
  for (int attempt = 0;; ++attempt) {
    const auto kernel = pick(plan.rows);
    cudaFuncAttributes attr{};
    if (const cudaError_t err = cudaFuncGetAttributes(&attr, kernel); err != cudaSuccess) return err;
    if (attr.binaryVersion < 90 || attr.ptxVersion < 90) return cudaErrorNotSupported;  // built for sm_80 only
    if (const cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                     static_cast<int>(plan.smem_bytes));
        err != cudaSuccess)
      return err;
    cudaLaunchConfig_t config{};
    config.gridDim = dim3(static_cast<unsigned>(plan.clusters * kClusterBlocks));
    config.blockDim = dim3(kThreads);
    config.dynamicSmemBytes = static_cast<size_t>(plan.smem_bytes);
    config.stream = stream;
    cudaLaunchAttribute cluster{};
    cluster.id = cudaLaunchAttributeClusterDimension;
    cluster.val.clusterDim.x = kClusterBlocks;
    cluster.val.clusterDim.y = 1;
    cluster.val.clusterDim.z = 1;
    config.attrs = &cluster;
    config.numAttrs = 1;
    int active = 0;
    if (cudaOccupancyMaxActiveClusters(&active, kernel, &config) != cudaSuccess || active == 0) {
      (void)cudaGetLastError();  // clear it
      return cudaErrorNotSupported;
    }
    if (active < plan.clusters && plan.rows < kMaxClusterRows && attempt == 0) {  // more rows, fewer clusters
      const ClusterPlan fewer = replan(active);
      if (fewer.rows > plan.rows) {
        plan = fewer;
        continue;
      }
    }
    if (const cudaError_t err = cudaLaunchKernelEx(&config, kernel, args...); err != cudaSuccess) return err;
    return cudaGetLastError();
  }
}

// The instantiation for `rows` rows (1, 2, 4, 8 or 16) among five.
template <class Group, typename Kernel>
Kernel pick_rows(int rows, Kernel k1, Kernel k2, Kernel k4, Kernel k8, Kernel k16) {
  return rows == 1 ? k1 : rows == 2 ? k2 : rows == 4 ? k4 : rows == 8 ? k8 : k16;
}

// The grid-split variants run unless RNNGEN_CUDA_GRID is "0".
inline bool grid_split_enabled() {
  const char* env = std::getenv("RNNGEN_CUDA_GRID");
  return !(env && env[0] == '0');
}

// Launch a grid-split kernel (plan_*_grid in plan.h): all plan.blocks blocks at once, as one
// cooperative launch (the driver refuses a grid that cannot be resident at once, so the grid
// barrier cannot hang), with a global exchange buffer of plan.exchange floats a block, allocated
// and freed in stream order. kernel(args..., GroupArgs). cudaErrorNotSupported: not applicable
// here (the plan has no rows, or the blocks cannot all be resident): the caller goes on.
template <typename Kernel, typename... Args>
cudaError_t launch_grid_split(const GridPlan& plan, Kernel kernel, cudaStream_t stream, const Args&... args) {
  if (plan.rows == 0) return cudaErrorNotSupported;
  if (const cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                   static_cast<int>(plan.smem_bytes));
      err != cudaSuccess)
    return err;
  int dev = 0, sms = 0, per_sm = 0, cooperative = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&cooperative, cudaDevAttrCooperativeLaunch, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, static_cast<size_t>(plan.smem_bytes)) !=
          cudaSuccess ||
      !cooperative || static_cast<int64_t>(per_sm) * sms < plan.blocks) {
    (void)cudaGetLastError();  // clear it
    return cudaErrorNotSupported;
  }
  GroupArgs group{nullptr, plan.exchange, plan.blocks};
  const size_t bytes = static_cast<size_t>(plan.exchange) * plan.blocks * sizeof(float);
  if (const cudaError_t err = cudaMallocAsync(reinterpret_cast<void**>(&group.exchange), bytes, stream);
      err != cudaSuccess)
    return err;
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned>(plan.blocks));
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = static_cast<size_t>(plan.smem_bytes);
  config.stream = stream;
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeCooperative;
  attr.val.cooperative = 1;
  config.attrs = &attr;
  config.numAttrs = 1;
  cudaError_t err = cudaLaunchKernelEx(&config, kernel, args..., group);
  if (err == cudaSuccess) err = cudaGetLastError();
  const cudaError_t freed = cudaFreeAsync(group.exchange, stream);
  return err != cudaSuccess ? err : freed;
}

#endif  // __CUDACC__

}  // namespace rnngen::cuda
