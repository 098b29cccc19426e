// Fused CPU decode (the article's generator): each step's output is the next step's input.
// The forward of every cell, and the GRU's backward (the other cells' backward is in cells.cpp).
// The op layer (rnngen/ops/decode/op.py) has checked and made contiguous every input and
// allocated the outputs. The math follows rnngen/ops/decode/naive.py.
#include <omp.h>
#include <torch/library.h>

#include <vector>

#include "cells.h"

namespace rnngen::cpu {
namespace {

// Fewer rows than threads: the threads split the hidden units (see units_threads); w_hh, b_hh,
// w_ih and b_ih come regrouped into `slices` slices (slice_order), the weights not yet packed
// (each thread packs its own tiles). Each thread computes the step's output x_t itself (C
// values: cheaper than another barrier). run_unit_split (team.h) runs the steps.
template <class Cell, typename T_>
void decode_forward_units(const T_* h0_p, const T_* c0_p, const PackedWeight& w_hh, const T_* b_hh,
                          const T_* w_out, const T_* b_out, const PackedWeight& w_ih, const T_* b_ih, T_* out_p,
                          T_* hid_p, T_* c_p, int64_t B, int64_t T, int64_t H, int64_t C, int slices) {
  constexpr int64_t NG = Cell::kGates;
  const int64_t S = H / slices;
  std::atomic<bool> mixed{false};
  run_unit_split(slices, T, 1, [&](const UnitShare& share) {
    const int64_t tile0 = NG * S * share.slice0 / 64, tile1 = NG * S * share.slice1 / 64;
    settle_pairs({{&w_hh, tile0, tile1}}, mixed);
    w_hh.pack(tile0, tile1);  // this thread's tiles, into its core's cache
    w_ih.pack(tile0, tile1);
    // this thread's gates, per row slice by slice (sized for every slice: one thread may take them all)
    return [&, gh = std::vector<T_>(B * NG * H), gi = std::vector<T_>(B * NG * H), x = std::vector<T_>(B * C)](
               int64_t t, int, int64_t s0, int64_t s1) mutable {
      const int64_t G = NG * S * (s1 - s0), first = NG * S * s0;  // slices [s0, s1): columns [first, NG S s1) of W
      const int64_t prev = t == 0 ? 0 : (t - 1) * H, ld = t == 0 ? H : T * H;
      const T_* h_prev = (t == 0 ? h0_p : hid_p) + prev;
      const T_* c_prev = Cell::kCellState ? (t == 0 ? c0_p : c_p) + prev : nullptr;
      for (int64_t b = 0; b < B; ++b)  // x_t: C dot products (C is small: the seed has C = 1)
        for (int64_t c = 0; c < C; ++c) x[b * C + c] = b_out[c] + dot(h_prev + b * ld, w_out + c * H, H);
      gemm_columns(h_prev, ld, B, w_hh, first / 64, NG * S * s1 / 64, b_hh, gh.data(), G);
      gemm_columns(x.data(), C, B, w_ih, first / 64, NG * S * s1 / 64, b_ih, gi.data(), G);
      for (int64_t b = 0; b < B; ++b) {
        const int64_t bt = b * T + t;
        for (int64_t s = s0; s < s1; ++s) {
          const int64_t j0 = s * S, at = b * G + NG * S * (s - s0);
          cell_forward(Cell{}, gi.data() + at, S, gh.data() + at, S, h_prev + b * ld + j0,
                       c_prev ? c_prev + b * ld + j0 : nullptr, hid_p + bt * H + j0, c_p ? c_p + bt * H + j0 : nullptr,
                       S);
        }
        if (s0 == 0) std::copy_n(x.data() + b * C, C, out_p + bt * C);
      }
    };
  });
}

// Every cell's forward (cells.h). c0 and c_hidden are empty for a cell without a cell state.
template <class Cell>
void decode_forward(const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_ih, const at::Tensor& b_ih,
                    const at::Tensor& w_hh, const at::Tensor& b_hh, const at::Tensor& w_out, const at::Tensor& b_out,
                    at::Tensor& out, at::Tensor& hidden, at::Tensor& c_hidden) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;  // the weights may require grad
  constexpr int NG = Cell::kGates;
  const int64_t B = h0.size(0), H = h0.size(1), T = out.size(1), C = out.size(2), G = NG * H;
  const int threads = units_threads(B, H);
  // Rows split: W_hh and W_out both multiply h_{t-1}, so one pass over h gives gh (columns
  // 0..G) and x_t. Units split: W_hh alone, regrouped by slice (each thread computes x_t as C
  // dot products), and W_ih the same way.
  const bool few_rows = (threads > 1 ? B : row_grain(B)) < 4;  // bf16 pairs pay off (pack_weight)
  const bool units = threads > 1;
  const std::vector<int64_t> order = units ? slice_order(H, threads, NG) : std::vector<int64_t>{};
  const PackedWeight w_in = pack_weight({w_ih}, false, order, units);  // gi = x_t @ w_ih^T + b_ih
  const at::Tensor b_in = units ? gates_by_slice(b_ih, H, threads, NG) : b_ih;
  const PackedWeight w = units ? pack_weight({w_hh}, few_rows, order, true) : pack_weight({w_hh, w_out}, few_rows);
  const at::Tensor bias = units ? gates_by_slice(b_hh, H, threads, NG) : at::cat({b_hh, b_out});
  const int64_t N = G + C;
  AT_DISPATCH_FLOATING_TYPES(h0.scalar_type(), "rnngen_cpu::decode_forward", [&] {
    using T_ = scalar_t;
    const T_ *h0_p = h0.const_data_ptr<T_>(), *c0_p = state_ptr<T_>(c0), *bias_p = bias.const_data_ptr<T_>();
    const T_* bih_p = b_in.const_data_ptr<T_>();
    T_ *out_p = out.mutable_data_ptr<T_>(), *hid_p = hidden.mutable_data_ptr<T_>(), *c_p = state_mut<T_>(c_hidden);
    if (units) {
      decode_forward_units<Cell>(h0_p, c0_p, w, bias_p, w_out.const_data_ptr<T_>(), b_out.const_data_ptr<T_>(), w_in,
                                 bih_p, out_p, hid_p, c_p, B, T, H, C, threads);
      return;
    }
    at::parallel_for(0, B, row_grain(B), [&](int64_t b0, int64_t b1) {
      const int64_t rows = b1 - b0;
      std::vector<T_> ghx(rows * N), gi(rows * G);
      for (int64_t t = 0; t < T; ++t) {
        const int64_t first = t == 0 ? b0 * H : (b0 * T + t - 1) * H, ld = t == 0 ? H : T * H;
        const T_* h_prev = (t == 0 ? h0_p : hid_p) + first;
        const T_* c_prev = Cell::kCellState ? (t == 0 ? c0_p : c_p) + first : nullptr;
        gemm(h_prev, ld, rows, w, bias_p, ghx.data(), N);
        for (int64_t r = 0; r < rows; ++r) std::copy_n(ghx.data() + r * N + G, C, out_p + ((b0 + r) * T + t) * C);
        gemm(ghx.data() + G, N, rows, w_in, bih_p, gi.data(), G);
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t bt = (b0 + r) * T + t;
          cell_forward(Cell{}, gi.data() + r * G, H, ghx.data() + r * N, H, h_prev + r * ld,
                       c_prev ? c_prev + r * ld : nullptr, hid_p + bt * H, c_p ? c_p + bt * H : nullptr, H);
        }
      }
    });
  });
}

// The GRU and the Elman cells have no cell state: their schema has no c0 and c_hidden.
template <class Cell>
void decode_forward_h(const at::Tensor& h0, const at::Tensor& w_ih, const at::Tensor& b_ih, const at::Tensor& w_hh,
                      const at::Tensor& b_hh, const at::Tensor& w_out, const at::Tensor& b_out, at::Tensor& out,
                      at::Tensor& hidden) {
  at::Tensor none = no_state(h0);
  decode_forward<Cell>(h0, none, w_ih, b_ih, w_hh, b_hh, w_out, b_out, out, hidden, none);
}

// The GRU's backward (the other cells' is in cells.cpp).
void decode_backward(const at::Tensor& grad_out, const at::Tensor& grad_hidden, const at::Tensor& h0,
                     const at::Tensor& w_ih, const at::Tensor& b_ih, const at::Tensor& w_hh, const at::Tensor& b_hh,
                     const at::Tensor& w_out, const at::Tensor& b_out, const at::Tensor& out, const at::Tensor& hidden,
                     at::Tensor& d_h0, at::Tensor& d_w_ih, at::Tensor& d_b_ih, at::Tensor& d_w_hh, at::Tensor& d_b_hh,
                     at::Tensor& d_w_out, at::Tensor& d_b_out) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;  // the weights may require grad
  const int64_t B = h0.size(0), H = h0.size(1), T = out.size(1), C = out.size(2), G = 3 * H;
  // Every step's gates at once from the saved outputs and states (two GEMMs), then the reverse loop.
  const at::Tensor h_prev = at::cat({h0.unsqueeze(1), hidden.narrow(1, 0, T - 1)}, 1);  // [B, T, H]
  const at::Tensor gi = at::addmm(b_ih, out.view({B * T, C}), w_ih.t());
  const at::Tensor gh = at::addmm(b_hh, h_prev.view({B * T, H}), w_hh.t());
  // dgh equals dgi in its r and z parts: only its n part is kept, [B, T, H] (as in scan.cpp).
  const at::Tensor d_gi = at::empty({B, T, G}, h0.options()), d_gh_n = at::empty({B, T, H}, h0.options());
  const at::Tensor d_x = at::empty({B, T, C}, h0.options());
  const PackedWeight w_ih_back = pack_weight(w_ih.t()), w_hh_back = pack_weight(w_hh.t());
  const PackedWeight w_out_back = pack_weight(w_out.t());
  AT_DISPATCH_FLOATING_TYPES(h0.scalar_type(), "rnngen_cpu::decode_backward", [&] {
    using T_ = scalar_t;
    const T_ *go_p = grad_out.const_data_ptr<T_>(), *gh_in_p = grad_hidden.const_data_ptr<T_>();
    const T_ *gi_p = gi.const_data_ptr<T_>(), *gh_p = gh.const_data_ptr<T_>(), *hp_p = h_prev.const_data_ptr<T_>();
    T_ *dgi_p = d_gi.mutable_data_ptr<T_>(), *dghn_p = d_gh_n.mutable_data_ptr<T_>(), *dx_p = d_x.mutable_data_ptr<T_>();
    T_* dh0_p = d_h0.mutable_data_ptr<T_>();
    at::parallel_for(0, B, row_grain(B), [&](int64_t b0, int64_t b1) {
      const int64_t rows = b1 - b0;
      std::vector<T_> dh(rows * H, T_(0)), direct(rows * H), via_hh(rows * H), via_out(rows * H), dgh(rows * G);
      for (int64_t t = T - 1; t >= 0; --t) {
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t bt = (b0 + r) * T + t;
          T_* dh_r = dh.data() + r * H;
          for (int64_t j = 0; j < H; ++j) dh_r[j] += gh_in_p[bt * H + j];
          gru_row_backward(dh_r, gi_p + bt * G, gh_p + bt * G, hp_p + bt * H, dgi_p + bt * G, dgh.data() + r * G,
                           direct.data() + r * H, H);
          std::copy_n(dgh.data() + r * G + 2 * H, H, dghn_p + bt * H);
        }
        const int64_t first = b0 * T + t;  // rows of step t are T apart in the [B, T, .] buffers
        // dx_t = dL/dout_t + dgi_t @ W_ih;  dh_{t-1} = dh_t * z + dgh_t @ W_hh + dx_t @ W_out
        const T_* none = nullptr;
        gemm(dgi_p + first * G, T * G, rows, w_ih_back, none, dx_p + first * C, T * C);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t c = 0; c < C; ++c) dx_p[(first + r * T) * C + c] += go_p[(first + r * T) * C + c];
        gemm(dgh.data(), G, rows, w_hh_back, none, via_hh.data(), H);
        gemm(dx_p + first * C, T * C, rows, w_out_back, none, via_out.data(), H);
        for (int64_t i = 0; i < rows * H; ++i) dh[i] = direct[i] + via_hh[i] + via_out[i];
      }
      std::copy(dh.begin(), dh.end(), dh0_p + b0 * H);
    });
  });
  // Every weight gradient: GEMMs over all steps (W_hh's r and z rows from dgi, n rows from dgh's n part).
  const at::Tensor dgi2 = d_gi.view({B * T, G}), dghn2 = d_gh_n.view({B * T, H}), dx2 = d_x.view({B * T, C});
  const at::Tensor hp2 = h_prev.view({B * T, H});
  at::mm_out(d_w_ih, dgi2.t(), out.view({B * T, C}));
  at::sum_out(d_b_ih, dgi2, 0);
  at::Tensor d_w_rz = d_w_hh.narrow(0, 0, 2 * H), d_w_n = d_w_hh.narrow(0, 2 * H, H);
  at::Tensor d_b_rz = d_b_hh.narrow(0, 0, 2 * H), d_b_n = d_b_hh.narrow(0, 2 * H, H);
  at::mm_out(d_w_rz, dgi2.narrow(1, 0, 2 * H).t(), hp2);
  at::mm_out(d_w_n, dghn2.t(), hp2);
  d_b_rz.copy_(d_b_ih.narrow(0, 0, 2 * H));  // the same sum of dgi's r and z parts
  at::sum_out(d_b_n, dghn2, 0);
  at::mm_out(d_w_out, dx2.t(), hp2);
  at::sum_out(d_b_out, dx2, 0);
}

}  // namespace

TORCH_LIBRARY_IMPL(rnngen_cpu, CPU, m) {
  m.impl("decode_forward", &decode_forward_h<GruCell>);
  m.impl("lstm_decode_forward", &decode_forward<LstmCell>);
  m.impl("rnn_tanh_decode_forward", &decode_forward_h<ElmanCell<false>>);
  m.impl("rnn_relu_decode_forward", &decode_forward_h<ElmanCell<true>>);
  m.impl("decode_backward", &decode_backward);
}

}  // namespace rnngen::cpu
