// The cells' float steps (cells.h), and the backward kernels of the cells beside the GRU (the
// LSTM and the Elman RNN, tanh and relu): scan backward and decode backward. Their forward
// kernels are the GRU's, generic over the cell (scan.cpp, decode.cpp, sample.cpp). The op layer
// (rnngen/ops/*/op.py) has checked and made contiguous every input and allocated the outputs;
// the math follows rnngen/ops/*/naive.py. The batch rows are split over the threads, each
// running the whole reverse loop for its rows against weights packed once per call.
#include <omp.h>
#include <torch/library.h>

#include <vector>

#include "cells.h"

namespace rnngen::cpu {

// float steps compiled for AVX-512, AVX2 and baseline x86-64.
RNNGEN_CLONES void cell_forward(GruCell, const float* gi, int64_t gi_stride, const float* gh, int64_t gh_stride,
                                const float* h, const float*, float* h_new, float*, int64_t n) {
  gru_units(gi, gi_stride, gh, gh_stride, h, h_new, n);
}

#define RNNGEN_CELL_ENTRY(Cell)                                                                                     \
  RNNGEN_CLONES void cell_forward(Cell, const float* gi, int64_t gi_stride, const float* gh, int64_t gh_stride,     \
                                  const float* h, const float* c, float* h_new, float* c_new, int64_t n) {         \
    Cell::forward(gi, gi_stride, gh, gh_stride, h, c, h_new, c_new, n);                                             \
  }                                                                                                                 \
  RNNGEN_CLONES void cell_backward(Cell, const float* dh, float* dc, const float* gi, const float* gh,              \
                                   const float* c_prev, const float* c_new, const float* h_new, float* dgate,       \
                                   int64_t H) {                                                                     \
    Cell::backward(dh, dc, gi, gh, c_prev, c_new, h_new, dgate, H);                                                 \
  }
RNNGEN_CELL_ENTRY(LstmCell)
RNNGEN_CELL_ENTRY(ElmanCell<false>)
RNNGEN_CELL_ENTRY(ElmanCell<true>)
#undef RNNGEN_CELL_ENTRY

namespace {

// One row of the reverse loop at step t (bt = b * T + t): add the upstream gradients of the
// step's states to dh (and dc), then backpropagate them through the cell into dgate (and dc).
// The saved tensors are [B, T, .]: gates G per step, states H (c_p, cp_p null without a cell state).
template <class Cell, typename T>
void backward_row(T* dh, T* dc, const T* grad_h, const T* grad_c, const T* gi_p, const T* gh_p, const T* cp_p,
                  const T* c_p, const T* h_p, T* dgate_p, int64_t bt, int64_t H) {
  const int64_t G = Cell::kGates * H;
  for (int64_t j = 0; j < H; ++j) dh[j] += grad_h[bt * H + j];
  if (dc)
    for (int64_t j = 0; j < H; ++j) dc[j] += grad_c[bt * H + j];
  cell_backward(Cell{}, dh, dc, gi_p + bt * G, gh_p + bt * G, cp_p ? cp_p + bt * H : nullptr,
                c_p ? c_p + bt * H : nullptr, h_p + bt * H, dgate_p + bt * G, H);
}

// ---- scan ------------------------------------------------------------------------------------

template <class Cell>
void scan_backward(const at::Tensor& grad_out, const at::Tensor& grad_c, const at::Tensor& gi, const at::Tensor& h0,
                   const at::Tensor& c0, const at::Tensor& w_hh, const at::Tensor& b_hh, const at::Tensor& out,
                   const at::Tensor& c_out, const at::Tensor& gates, at::Tensor& d_gi, at::Tensor& d_h0,
                   at::Tensor& d_c0, at::Tensor& d_w_hh, at::Tensor& d_b_hh) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;
  const int64_t B = gi.size(0), T = gi.size(1), H = h0.size(1), G = Cell::kGates * H;
  // Every step's hidden gates: kept by the forward, or recomputed at once (one GEMM).
  const at::Tensor h_prev = previous(h0, out);
  const at::Tensor gh = gates.numel() ? gates : at::addmm(b_hh, h_prev.view({B * T, H}), w_hh.t());
  const at::Tensor c_prev = Cell::kCellState ? previous(c0, c_out) : at::Tensor();
  const PackedWeight w_back = pack_weight(w_hh.t());  // dL/dh_{t-1} = dgate_t @ w_hh
  AT_DISPATCH_FLOATING_TYPES(gi.scalar_type(), "rnngen_cpu::cell_scan_backward", [&] {
    using T_ = scalar_t;
    const T_ *go_p = grad_out.const_data_ptr<T_>(), *gc_p = state_ptr<T_>(grad_c), *gi_p = gi.const_data_ptr<T_>();
    const T_ *gh_p = gh.const_data_ptr<T_>(), *out_p = out.const_data_ptr<T_>();
    const T_ *c_p = state_ptr<T_>(c_out), *cp_p = Cell::kCellState ? c_prev.const_data_ptr<T_>() : nullptr;
    T_ *dgi_p = d_gi.mutable_data_ptr<T_>(), *dh0_p = d_h0.mutable_data_ptr<T_>(), *dc0_p = state_mut<T_>(d_c0);
    // d_b_hh: each chunk of rows sums its own steps' gate gradients, in double, into the slot of
    // its first row; the slots are added in row order below (as scan.cpp).
    std::vector<double> db(B * G, 0.0);
    at::parallel_for(0, B, row_grain(B), [&](int64_t b0, int64_t b1) {
      const int64_t rows = b1 - b0;
      double* db_chunk = db.data() + b0 * G;
      std::vector<T_> dh(rows * H, T_(0)), dc(Cell::kCellState ? rows * H : 0, T_(0));
      for (int64_t t = T - 1; t >= 0; --t) {
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t bt = (b0 + r) * T + t;
          backward_row<Cell>(dh.data() + r * H, Cell::kCellState ? dc.data() + r * H : nullptr, go_p, gc_p, gi_p,
                             gh_p, cp_p, c_p, out_p, dgi_p, bt, H);
          for (int64_t j = 0; j < G; ++j) db_chunk[j] += dgi_p[bt * G + j];
        }
        gemm(dgi_p + (b0 * T + t) * G, T * G, rows, w_back, static_cast<const T_*>(nullptr), dh.data(), H);
      }
      std::copy(dh.begin(), dh.end(), dh0_p + b0 * H);
      if (dc0_p) std::copy(dc.begin(), dc.end(), dc0_p + b0 * H);
    });
    std::vector<double> total(G, 0.0);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < G; ++j) total[j] += db[b * G + j];
    std::copy(total.begin(), total.end(), d_b_hh.mutable_data_ptr<T_>());
  });
  at::mm_out(d_w_hh, d_gi.view({B * T, G}).t(), h_prev.view({B * T, H}));  // the gate gradients are dgh too
}

// ---- decode ----------------------------------------------------------------------------------

template <class Cell>
void decode_backward(const at::Tensor& grad_out, const at::Tensor& grad_hidden, const at::Tensor& grad_c,
                     const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_ih, const at::Tensor& b_ih,
                     const at::Tensor& w_hh, const at::Tensor& b_hh, const at::Tensor& w_out, const at::Tensor& b_out,
                     const at::Tensor& out, const at::Tensor& hidden, const at::Tensor& c_hidden, at::Tensor& d_h0,
                     at::Tensor& d_c0, at::Tensor& d_w_ih, at::Tensor& d_b_ih, at::Tensor& d_w_hh,
                     at::Tensor& d_b_hh, at::Tensor& d_w_out, at::Tensor& d_b_out) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;
  const int64_t B = h0.size(0), H = h0.size(1), T = out.size(1), C = out.size(2), G = Cell::kGates * H;
  // Every step's gates at once from the saved outputs and states (two GEMMs), then the reverse loop.
  const at::Tensor h_prev = previous(h0, hidden);
  const at::Tensor gi = at::addmm(b_ih, out.view({B * T, C}), w_ih.t());
  const at::Tensor gh = at::addmm(b_hh, h_prev.view({B * T, H}), w_hh.t());
  const at::Tensor c_prev = Cell::kCellState ? previous(c0, c_hidden) : at::Tensor();
  const at::Tensor d_gate = at::empty({B, T, G}, h0.options()), d_x = at::empty({B, T, C}, h0.options());
  const PackedWeight w_ih_back = pack_weight(w_ih.t()), w_hh_back = pack_weight(w_hh.t());
  const PackedWeight w_out_back = pack_weight(w_out.t());
  AT_DISPATCH_FLOATING_TYPES(h0.scalar_type(), "rnngen_cpu::cell_decode_backward", [&] {
    using T_ = scalar_t;
    const T_ *go_p = grad_out.const_data_ptr<T_>(), *ghid_p = grad_hidden.const_data_ptr<T_>();
    const T_ *gc_p = state_ptr<T_>(grad_c), *gi_p = gi.const_data_ptr<T_>(), *gh_p = gh.const_data_ptr<T_>();
    const T_ *hid_p = hidden.const_data_ptr<T_>(), *c_p = state_ptr<T_>(c_hidden);
    const T_* cp_p = Cell::kCellState ? c_prev.const_data_ptr<T_>() : nullptr;
    T_ *dg_p = d_gate.mutable_data_ptr<T_>(), *dx_p = d_x.mutable_data_ptr<T_>();
    T_ *dh0_p = d_h0.mutable_data_ptr<T_>(), *dc0_p = state_mut<T_>(d_c0);
    at::parallel_for(0, B, row_grain(B), [&](int64_t b0, int64_t b1) {
      const int64_t rows = b1 - b0;
      std::vector<T_> dh(rows * H, T_(0)), dc(Cell::kCellState ? rows * H : 0, T_(0)), via_out(rows * H);
      for (int64_t t = T - 1; t >= 0; --t) {
        for (int64_t r = 0; r < rows; ++r) {
          backward_row<Cell>(dh.data() + r * H, Cell::kCellState ? dc.data() + r * H : nullptr, ghid_p, gc_p, gi_p,
                             gh_p, cp_p, c_p, hid_p, dg_p, (b0 + r) * T + t, H);
        }
        const int64_t first = b0 * T + t;  // rows of step t are T apart in the [B, T, .] buffers
        // dx_t = dL/dout_t + dgate_t @ W_ih;  dh_{t-1} = dgate_t @ W_hh + dx_t @ W_out
        const T_* none = nullptr;
        gemm(dg_p + first * G, T * G, rows, w_ih_back, none, dx_p + first * C, T * C);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t c = 0; c < C; ++c) dx_p[(first + r * T) * C + c] += go_p[(first + r * T) * C + c];
        gemm(dg_p + first * G, T * G, rows, w_hh_back, none, dh.data(), H);
        gemm(dx_p + first * C, T * C, rows, w_out_back, none, via_out.data(), H);
        for (int64_t i = 0; i < rows * H; ++i) dh[i] += via_out[i];
      }
      std::copy(dh.begin(), dh.end(), dh0_p + b0 * H);
      if (dc0_p) std::copy(dc.begin(), dc.end(), dc0_p + b0 * H);
    });
  });
  // Every weight gradient: GEMMs over all steps (the gate gradients serve W_ih and W_hh alike).
  const at::Tensor dg2 = d_gate.view({B * T, G}), dx2 = d_x.view({B * T, C}), hp2 = h_prev.view({B * T, H});
  at::mm_out(d_w_ih, dg2.t(), out.view({B * T, C}));
  at::sum_out(d_b_ih, dg2, 0);
  at::mm_out(d_w_hh, dg2.t(), hp2);
  d_b_hh.copy_(d_b_ih);
  at::mm_out(d_w_out, dx2.t(), hp2);
  at::sum_out(d_b_out, dx2, 0);
}

// The Elman cells' kernels take the GRU's arguments (no cell state): adapters with empty tensors.
template <class Cell>
void scan_backward_h(const at::Tensor& grad_out, const at::Tensor& gi, const at::Tensor& h0, const at::Tensor& w_hh,
                     const at::Tensor& b_hh, const at::Tensor& out, const at::Tensor& gates, at::Tensor& d_gi,
                     at::Tensor& d_h0, at::Tensor& d_w_hh, at::Tensor& d_b_hh) {
  at::Tensor none = no_state(h0);
  scan_backward<Cell>(grad_out, none, gi, h0, none, w_hh, b_hh, out, none, gates, d_gi, d_h0, none, d_w_hh, d_b_hh);
}

template <class Cell>
void decode_backward_h(const at::Tensor& grad_out, const at::Tensor& grad_hidden, const at::Tensor& h0,
                       const at::Tensor& w_ih, const at::Tensor& b_ih, const at::Tensor& w_hh, const at::Tensor& b_hh,
                       const at::Tensor& w_out, const at::Tensor& b_out, const at::Tensor& out,
                       const at::Tensor& hidden, at::Tensor& d_h0, at::Tensor& d_w_ih, at::Tensor& d_b_ih,
                       at::Tensor& d_w_hh, at::Tensor& d_b_hh, at::Tensor& d_w_out, at::Tensor& d_b_out) {
  at::Tensor none = no_state(h0);
  decode_backward<Cell>(grad_out, grad_hidden, none, h0, none, w_ih, b_ih, w_hh, b_hh, w_out, b_out, out, hidden, none,
                        d_h0, none, d_w_ih, d_b_ih, d_w_hh, d_b_hh, d_w_out, d_b_out);
}

}  // namespace

TORCH_LIBRARY_IMPL(rnngen_cpu, CPU, m) {
  m.impl("lstm_scan_backward", &scan_backward<LstmCell>);
  m.impl("lstm_decode_backward", &decode_backward<LstmCell>);
  m.impl("rnn_tanh_scan_backward", &scan_backward_h<ElmanCell<false>>);
  m.impl("rnn_tanh_decode_backward", &decode_backward_h<ElmanCell<false>>);
  m.impl("rnn_relu_scan_backward", &scan_backward_h<ElmanCell<true>>);
  m.impl("rnn_relu_decode_backward", &decode_backward_h<ElmanCell<true>>);
}

}  // namespace rnngen::cpu
