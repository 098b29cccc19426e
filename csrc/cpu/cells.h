// The recurrent cells, one step (and, beside the GRU, its backward) each, in PyTorch's gate
// order (rnngen/ops/cells.py is the reference):
//
//   GruCell    gates r | z | n:      n = tanh(gi_n + r gh_n),  h' = (1 - z) n + z h
//   LstmCell   gates i | f | g | o:  c' = f c + i g,  h' = o tanh(c')
//   ElmanCell  one gate block:       h' = tanh(a) or relu(a),  a = gi + gh
//
// The forward kernels (scan.cpp, decode.cpp, sample.cpp) take a cell as a template parameter
// and call its step through cell_forward, over a whole row of H units or over one thread's
// slice of them (the unit-split kernels): gate g of unit j is gi[g * gi_stride + j] and
// gh[g * gh_stride + j]. A new cell is a struct here, its float entry points in cells.cpp and
// its schemas (csrc/common/schemas.h); every forward kernel then has it.
//
// The backward differs: the GRU's r gate multiplies gh_n, so its input and hidden gate
// gradients differ and part of dL/dh bypasses W_hh (gru_row_backward, scan.cpp, decode.cpp).
// For the other cells both gate gradients equal one `dgate` (the gates enter as gi + gh) and all
// of dL/dh_{t-1} is dgate @ W_hh; the LSTM also carries dL/dc (`dc`, updated in place from
// dL/dc' to dL/dc). Their backward kernels are in cells.cpp.
#pragma once

#include "gru_kernels.h"

namespace rnngen::cpu {

struct GruCell {
  static constexpr int kGates = 3;
  static constexpr bool kCellState = false;

  template <typename T>
  RNNGEN_INLINE static void forward(const T* gi, int64_t gi_stride, const T* gh, int64_t gh_stride, const T* h,
                                    const T* /*c*/, T* h_new, T* /*c_new*/, int64_t n) {
    gru_units_impl(gi, gi_stride, gh, gh_stride, h, h_new, n);
  }
};

struct LstmCell {
  static constexpr int kGates = 4;
  static constexpr bool kCellState = true;

  template <typename T>
  RNNGEN_INLINE static void forward(const T* __restrict__ gi, int64_t si, const T* __restrict__ gh, int64_t sh,
                                    const T* /*h*/, const T* __restrict__ c, T* __restrict__ h_new,
                                    T* __restrict__ c_new, int64_t n) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
      const T i = sigmoid(gi[j] + gh[j]), f = sigmoid(gi[si + j] + gh[sh + j]);
      const T g = tanh_fast(gi[2 * si + j] + gh[2 * sh + j]), o = sigmoid(gi[3 * si + j] + gh[3 * sh + j]);
      const T cn = f * c[j] + i * g;
      c_new[j] = cn;
      h_new[j] = o * tanh_fast(cn);
    }
  }

  template <typename T>
  RNNGEN_INLINE static void backward(const T* __restrict__ dh, T* __restrict__ dc, const T* __restrict__ gi,
                                     const T* __restrict__ gh, const T* __restrict__ c_prev,
                                     const T* __restrict__ c_new, const T* /*h_new*/, T* __restrict__ dgate,
                                     int64_t H) {
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const T i = sigmoid(gi[j] + gh[j]), f = sigmoid(gi[H + j] + gh[H + j]);
      const T g = tanh_fast(gi[2 * H + j] + gh[2 * H + j]), o = sigmoid(gi[3 * H + j] + gh[3 * H + j]);
      const T tc = tanh_fast(c_new[j]);
      const T d = dc[j] + dh[j] * o * (T(1) - tc * tc);  // dL/dc' in all
      dgate[j] = d * g * i * (T(1) - i);
      dgate[H + j] = d * c_prev[j] * f * (T(1) - f);
      dgate[2 * H + j] = d * i * (T(1) - g * g);
      dgate[3 * H + j] = dh[j] * tc * o * (T(1) - o);
      dc[j] = d * f;
    }
  }
};

template <bool Relu>
struct ElmanCell {
  static constexpr int kGates = 1;
  static constexpr bool kCellState = false;

  template <typename T>
  RNNGEN_INLINE static void forward(const T* __restrict__ gi, int64_t /*si*/, const T* __restrict__ gh,
                                    int64_t /*sh*/, const T* /*h*/, const T* /*c*/, T* __restrict__ h_new,
                                    T* /*c_new*/, int64_t n) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
      const T a = gi[j] + gh[j];
      h_new[j] = Relu ? (a < T(0) ? T(0) : a) : tanh_fast(a);  // relu: NaN stays NaN, as torch.relu
    }
  }

  template <typename T>
  RNNGEN_INLINE static void backward(const T* __restrict__ dh, T* /*dc*/, const T* /*gi*/, const T* /*gh*/,
                                     const T* /*c_prev*/, const T* /*c_new*/, const T* __restrict__ h_new,
                                     T* __restrict__ dgate, int64_t H) {
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const T h = h_new[j];
      dgate[j] = Relu ? (h > T(0) ? dh[j] : T(0)) : dh[j] * (T(1) - h * h);
    }
  }
};

// The steps as the kernels call them: float through target_clones (AVX-512, AVX2, baseline; in
// cells.cpp, which has one overload per cell since target_clones does not take templates),
// double (the tests' dtype) through the template. c and c_new are null without a cell state.
#define RNNGEN_CELL_FORWARD(Cell)                                                                                    \
  void cell_forward(Cell, const float* gi, int64_t gi_stride, const float* gh, int64_t gh_stride, const float* h, \
                    const float* c, float* h_new, float* c_new, int64_t n);
#define RNNGEN_CELL_BACKWARD(Cell)                                                                                   \
  void cell_backward(Cell, const float* dh, float* dc, const float* gi, const float* gh, const float* c_prev,     \
                     const float* c_new, const float* h_new, float* dgate, int64_t H);
RNNGEN_CELL_FORWARD(GruCell)
RNNGEN_CELL_FORWARD(LstmCell)
RNNGEN_CELL_FORWARD(ElmanCell<false>)
RNNGEN_CELL_FORWARD(ElmanCell<true>)
RNNGEN_CELL_BACKWARD(LstmCell)
RNNGEN_CELL_BACKWARD(ElmanCell<false>)
RNNGEN_CELL_BACKWARD(ElmanCell<true>)

template <class Cell>
inline void cell_forward(Cell, const double* gi, int64_t gi_stride, const double* gh, int64_t gh_stride,
                         const double* h, const double* c, double* h_new, double* c_new, int64_t n) {
  Cell::forward(gi, gi_stride, gh, gh_stride, h, c, h_new, c_new, n);
}

template <class Cell>
inline void cell_backward(Cell, const double* dh, double* dc, const double* gi, const double* gh,
                          const double* c_prev, const double* c_new, const double* h_new, double* dgate, int64_t H) {
  Cell::backward(dh, dc, gi, gh, c_prev, c_new, h_new, dgate, H);
}

// The cell-state tensors are empty for a cell without one: their data pointers are then null.
template <typename T>
const T* state_ptr(const at::Tensor& t) {
  return t.numel() ? t.const_data_ptr<T>() : nullptr;
}

template <typename T>
T* state_mut(at::Tensor& t) {
  return t.numel() ? t.mutable_data_ptr<T>() : nullptr;
}

inline at::Tensor no_state(const at::Tensor& like) { return at::empty({0}, like.options()); }

// The states before every step: [B, T, H], state0 then the states after steps 0 .. T-2.
inline at::Tensor previous(const at::Tensor& state0, const at::Tensor& states) {
  return at::cat({state0.unsqueeze(1), states.narrow(1, 0, states.size(1) - 1)}, 1);
}

}  // namespace rnngen::cpu
