// The recurrent cells of the fused CUDA kernels (sample.cu, decode.cu, scan.cu), one unit's step
// and its backward each, host and device (a host program can check them: tests/test_cuda_sources.py),
// in PyTorch's gate order (rnngen/ops/cells.py is the reference; csrc/cpu/cells.h the CPU twin):
//
//   GruCell    gates r | z | n:      n = tanh(gi_n + r gh_n),  h' = (1 - z) n + z h
//   LstmCell   gates i | f | g | o:  c' = f c + i g,  h' = o tanh(c')
//   ElmanCell  one gate block:       h' = tanh(a) or relu(a),  a = gi + gh
//
// Every kernel is a template over the cell and calls, per (row, unit j), Cell::forward on the
// unit's gates gi[g * H + j], gh[g * H + j] (g < kGates) and its state, or Cell::backward. The
// kernels read only what a cell's flags ask for (the rest is never loaded):
//   kUsesGates   the backward needs the step's gates gi, gh (GRU, LSTM; Elman: h' alone)
//   kUsesPrevH   the backward needs h_{t-1} (GRU: dz = d (h - n) ...)
//   kUsesNewH    the backward needs h_t (Elman: tanh' = 1 - h'^2, relu' = h' > 0)
//   kCellState   a cell state c beside h (LSTM): c0 in, every step's c out, dL/dc carried back
//   kSplitGrads  the input- and hidden-gate gradients differ (GRU: dgh_n = dgi_n * r) and part of
//                dL/dh bypasses W_hh (direct = d z); for the other cells dgi == dgh (one buffer,
//                one output) and all of dL/dh_{t-1} is dgh @ W_hh.
// The GRU's math is gru_cell / gru_cell_backward of gru_device.cuh, unchanged.
#pragma once

#include "gru_device.cuh"

namespace rnngen::cuda {

struct GruCell {
  static constexpr int kGates = 3;
  static constexpr bool kCellState = false, kUsesGates = true, kUsesPrevH = true, kUsesNewH = false;
  static constexpr bool kSplitGrads = true;
  static constexpr CellLayout kLayout{3, false, true};

  RNNGEN_HD static void forward(const float (&gi)[3], const float (&gh)[3], float h, float /*c*/, float& h_new,
                                float& /*c_new*/) {
    h_new = gru_cell(gi[0], gi[1], gi[2], gh[0], gh[1], gh[2], h);
  }

  // d = dL/dh_t; dc unused. dgi, dgh: the gate gradients; direct: the part of dL/dh_{t-1} that
  // does not pass through W_hh.
  RNNGEN_HD static void backward(float d, float& /*dc*/, const float (&gi)[3], const float (&gh)[3], float h_prev,
                                 float /*c_prev*/, float /*h_new*/, float /*c_new*/, float (&dgi)[3],
                                 float (&dgh)[3], float& direct) {
    const CellGrad c = gru_cell_backward(d, gi[0], gi[1], gi[2], gh[0], gh[1], gh[2], h_prev);
    dgi[0] = c.da_r;
    dgi[1] = c.da_z;
    dgi[2] = c.da_n;
    dgh[0] = c.da_r;
    dgh[1] = c.da_z;
    dgh[2] = c.da_n * c.r;
    direct = c.direct;
  }
};

struct LstmCell {
  static constexpr int kGates = 4;
  static constexpr bool kCellState = true, kUsesGates = true, kUsesPrevH = false, kUsesNewH = false;
  static constexpr bool kSplitGrads = false;
  static constexpr CellLayout kLayout{4, true, false};

  RNNGEN_HD static void forward(const float (&gi)[4], const float (&gh)[4], float /*h*/, float c, float& h_new,
                                float& c_new) {
    const float i = sigmoid(gi[0] + gh[0]), f = sigmoid(gi[1] + gh[1]);
    const float g = tanhf(gi[2] + gh[2]), o = sigmoid(gi[3] + gh[3]);
    c_new = f * c + i * g;
    h_new = o * tanhf(c_new);
  }

  // d = dL/dh_t, dc: dL/dc_t from later steps and the loss on the way in, dL/dc_{t-1} on the way
  // out (as rnngen/ops/cells.py: dc + dh o (1 - tanh(c_t)^2) is dL/dc_t in all).
  RNNGEN_HD static void backward(float d, float& dc, const float (&gi)[4], const float (&gh)[4], float /*h_prev*/,
                                 float c_prev, float /*h_new*/, float c_new, float (&dgi)[4], float (&dgh)[4],
                                 float& direct) {
    const float i = sigmoid(gi[0] + gh[0]), f = sigmoid(gi[1] + gh[1]);
    const float g = tanhf(gi[2] + gh[2]), o = sigmoid(gi[3] + gh[3]);
    const float tc = tanhf(c_new);
    const float dct = dc + d * o * (1.0f - tc * tc);
    dgi[0] = dct * g * i * (1.0f - i);
    dgi[1] = dct * c_prev * f * (1.0f - f);
    dgi[2] = dct * i * (1.0f - g * g);
    dgi[3] = d * tc * o * (1.0f - o);
#pragma unroll
    for (int q = 0; q < 4; ++q) dgh[q] = dgi[q];
    direct = 0.0f;
    dc = dct * f;
  }
};

template <bool Relu>
struct ElmanCell {
  static constexpr int kGates = 1;
  static constexpr bool kCellState = false, kUsesGates = false, kUsesPrevH = false, kUsesNewH = true;
  static constexpr bool kSplitGrads = false;
  static constexpr CellLayout kLayout{1, false, false};

  RNNGEN_HD static void forward(const float (&gi)[1], const float (&gh)[1], float /*h*/, float /*c*/, float& h_new,
                                float& /*c_new*/) {
    const float a = gi[0] + gh[0];
    h_new = Relu ? (a < 0.0f ? 0.0f : a) : tanhf(a);  // relu: NaN stays NaN, as torch.relu
  }

  // From h_t alone (gi, gh are not read: the kernels pass zeros).
  RNNGEN_HD static void backward(float d, float& /*dc*/, const float (&)[1], const float (&)[1], float /*h_prev*/,
                                 float /*c_prev*/, float h_new, float /*c_new*/, float (&dgi)[1], float (&dgh)[1],
                                 float& direct) {
    dgi[0] = Relu ? (h_new > 0.0f ? d : 0.0f) : d * (1.0f - h_new * h_new);
    dgh[0] = dgi[0];
    direct = 0.0f;
  }
};

using RnnTanhCell = ElmanCell<false>;
using RnnReluCell = ElmanCell<true>;

#if defined(__CUDACC__) || defined(RNNGEN_CUDA_EMULATION)

// The backward of unit j of one row at step t (bt = row * T + t) as the scan and decode kernels
// run it: loads what the cell reads (gates gi_t, gh_t [G]; states [B, T, H] with h0 before the
// first step; cell states c_states with c0, LSTM) and calls Cell::backward. d = dL/dh_t; dc as
// Cell::backward.
template <class Cell>
__device__ __forceinline__ void unit_backward(float d, float& dc, const float* gi_t, const float* gh_t, int H, int j,
                                              const float* states, const float* h0, const float* c_states,
                                              const float* c0, int64_t row, int64_t bt, int t,
                                              float (&dgi)[Cell::kGates], float (&dgh)[Cell::kGates],
                                              float& direct) {
  constexpr int NG = Cell::kGates;
  float xi[NG], xh[NG];
#pragma unroll
  for (int g = 0; g < NG; ++g) {
    xi[g] = Cell::kUsesGates ? gi_t[g * H + j] : 0.0f;
    xh[g] = Cell::kUsesGates ? gh_t[g * H + j] : 0.0f;
  }
  float h_prev = 0.0f, h_new = 0.0f, c_prev = 0.0f, c_new = 0.0f;
  if constexpr (Cell::kUsesPrevH) h_prev = t > 0 ? states[(bt - 1) * H + j] : h0[row * H + j];
  if constexpr (Cell::kUsesNewH) h_new = states[bt * H + j];
  if constexpr (Cell::kCellState) {
    c_prev = t > 0 ? c_states[(bt - 1) * H + j] : c0[row * H + j];
    c_new = c_states[bt * H + j];
  }
  Cell::backward(d, dc, xi, xh, h_prev, c_prev, h_new, c_new, dgi, dgh, direct);
}

#endif  // __CUDACC__ || RNNGEN_CUDA_EMULATION

}  // namespace rnngen::cuda
