// The recurrent cells beside the GRU (gru_kernels.h), one step and its backward for one row of
// H units each, in PyTorch's gate order (rnngen/ops/cells.py is the reference):
//
//   LstmCell   gates i | f | g | o:  c' = f c + i g,  h' = o tanh(c')
//   ElmanCell  one gate block:       h' = tanh(a) or relu(a),  a = gi + gh
//
// For these cells the gradient of the input gates equals that of the hidden gates (both enter
// as gi + gh) and no part of dL/dh bypasses W_hh, so a backward step yields one gate gradient
// `dgate` and the caller forms dL/dh_{t-1} = dgate @ W_hh. The LSTM also carries dL/dc (`dc`,
// updated in place from dL/dc' to dL/dc). The kernels of cells.cpp take a cell as a template
// parameter: a new cell is a struct here and its schemas in extension.cpp.
#pragma once

#include "gru_kernels.h"

namespace rnngen::cpu {

struct LstmCell {
  static constexpr int kGates = 4;
  static constexpr bool kCellState = true;

  template <typename T>
  RNNGEN_INLINE static void forward(const T* __restrict__ gi, const T* __restrict__ gh, const T* /*h*/,
                                    const T* __restrict__ c, T* __restrict__ h_new, T* __restrict__ c_new,
                                    int64_t H) {
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const T i = sigmoid(gi[j] + gh[j]), f = sigmoid(gi[H + j] + gh[H + j]);
      const T g = tanh_fast(gi[2 * H + j] + gh[2 * H + j]), o = sigmoid(gi[3 * H + j] + gh[3 * H + j]);
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
  RNNGEN_INLINE static void forward(const T* __restrict__ gi, const T* __restrict__ gh, const T* /*h*/,
                                    const T* /*c*/, T* __restrict__ h_new, T* /*c_new*/, int64_t H) {
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
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

}  // namespace rnngen::cpu
