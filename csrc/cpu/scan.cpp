// Fused CPU scan: forward (every hidden state over given input gates) of every cell, and the
// GRU's backward (the other cells' backward is in cells.cpp).
// The op layer (rnngen/ops/scan/op.py) has checked shapes and dtypes and made every input
// contiguous; outputs are allocated there. The math follows rnngen/ops/scan/naive.py.
#include <omp.h>
#include <torch/library.h>

#include <vector>

#include "cells.h"

namespace rnngen::cpu {
namespace {

// Fewer rows than threads: the threads split the hidden units (see units_threads). w and b_p
// are W_hh and b_hh regrouped into `slices` slices (slice_order), w not yet packed.
// run_unit_split (team.h) runs the steps.
template <class Cell, typename T_>
void scan_forward_units(const T_* gi_p, const T_* h0_p, const T_* c0_p, const PackedWeight& w, const T_* b_p,
                        T_* out_p, T_* c_p, T_* gates_p, int64_t B, int64_t T, int64_t H, int slices) {
  constexpr int64_t NG = Cell::kGates;
  const int64_t S = H / slices, G = NG * H;
  std::vector<T_> gh(B * G);  // per row, slice by slice, the cell's gate blocks each (slice_order)
  run_unit_split(slices, T, 1, [&](const UnitShare& share) {
    w.pack(NG * S * share.slice0 / 64, NG * S * share.slice1 / 64);  // this thread's tiles, into its core's cache
    return [&](int64_t t, int, int64_t s0, int64_t s1) {
      // the state before step t of row b: h0[b] (c0[b]) at t = 0, else step t-1's (rows T*H apart)
      const int64_t first = t == 0 ? 0 : (t - 1) * H, ld = t == 0 ? H : T * H;
      const T_* h_prev = (t == 0 ? h0_p : out_p) + first;
      const T_* c_prev = Cell::kCellState ? (t == 0 ? c0_p : c_p) + first : nullptr;
      gemm_columns(h_prev, ld, B, w, NG * S * s0 / 64, NG * S * s1 / 64, b_p, gh.data() + NG * S * s0, G);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t s = s0; s < s1; ++s) {
          const int64_t j0 = s * S, bt = b * T + t;
          const T_* g_s = gh.data() + b * G + NG * S * s;
          cell_forward(Cell{}, gi_p + bt * G + j0, H, g_s, S, h_prev + b * ld + j0,
                       c_prev ? c_prev + b * ld + j0 : nullptr, out_p + bt * H + j0, c_p ? c_p + bt * H + j0 : nullptr,
                       S);
          if (gates_p)
            for (int64_t g = 0; g < NG; ++g) std::copy_n(g_s + g * S, S, gates_p + bt * G + g * H + j0);
        }
    };
  });
}

// Every cell's forward (cells.h). c0 and c_out are empty for a cell without a cell state.
template <class Cell>
void scan_forward(const at::Tensor& gi, const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_hh,
                  const at::Tensor& b_hh, at::Tensor& out, at::Tensor& c_out, at::Tensor& gates) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;  // the weights may require grad
  constexpr int NG = Cell::kGates;
  const int64_t B = gi.size(0), T = gi.size(1), H = h0.size(1), G = NG * H;
  // step t's gates: h_{t-1} @ w_hh^T + b_hh (regrouped by slice when the threads split units)
  const int threads = units_threads(B, H);
  const at::Tensor bias = threads > 1 ? gates_by_slice(b_hh, H, threads, NG) : b_hh;
  const PackedWeight w =
      threads > 1 ? pack_weight({w_hh}, false, slice_order(H, threads, NG), true) : pack_weight(w_hh);
  AT_DISPATCH_FLOATING_TYPES(gi.scalar_type(), "rnngen_cpu::scan_forward", [&] {
    using T_ = scalar_t;
    const T_ *gi_p = gi.const_data_ptr<T_>(), *h0_p = h0.const_data_ptr<T_>(), *c0_p = state_ptr<T_>(c0);
    const T_* b_p = bias.const_data_ptr<T_>();
    T_ *out_p = out.mutable_data_ptr<T_>(), *c_p = state_mut<T_>(c_out);
    T_* gates_p = gates.numel() ? gates.mutable_data_ptr<T_>() : nullptr;  // kept for the backward
    if (threads > 1) {
      scan_forward_units<Cell>(gi_p, h0_p, c0_p, w, b_p, out_p, c_p, gates_p, B, T, H, threads);
      return;
    }
    at::parallel_for(0, B, row_grain(B), [&](int64_t b0, int64_t b1) {
      const int64_t rows = b1 - b0;
      std::vector<T_> scratch(gates_p ? 0 : rows * G);
      for (int64_t t = 0; t < T; ++t) {
        const int64_t first = t == 0 ? b0 * H : (b0 * T + t - 1) * H, ld = t == 0 ? H : T * H;
        const T_* h_prev = (t == 0 ? h0_p : out_p) + first;
        const T_* c_prev = Cell::kCellState ? (t == 0 ? c0_p : c_p) + first : nullptr;
        // the step's hidden gates go straight into the saved gates when there are any
        T_* gh = gates_p ? gates_p + (b0 * T + t) * G : scratch.data();
        const int64_t ld_gh = gates_p ? T * G : G;
        gemm(h_prev, ld, rows, w, b_p, gh, ld_gh);
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t bt = (b0 + r) * T + t;
          cell_forward(Cell{}, gi_p + bt * G, H, gh + r * ld_gh, H, h_prev + r * ld,
                       c_prev ? c_prev + r * ld : nullptr, out_p + bt * H, c_p ? c_p + bt * H : nullptr, H);
        }
      }
    });
  });
}

// The GRU and the Elman cells have no cell state: their schema has no c0 and c_out.
template <class Cell>
void scan_forward_h(const at::Tensor& gi, const at::Tensor& h0, const at::Tensor& w_hh, const at::Tensor& b_hh,
                    at::Tensor& out, at::Tensor& gates) {
  at::Tensor none = no_state(h0);
  scan_forward<Cell>(gi, h0, none, w_hh, b_hh, out, none, gates);
}

// The GRU's backward (the other cells' is in cells.cpp).
void scan_backward(const at::Tensor& grad_out, const at::Tensor& gi, const at::Tensor& h0, const at::Tensor& w_hh,
                   const at::Tensor& b_hh, const at::Tensor& out, const at::Tensor& gates, at::Tensor& d_gi,
                   at::Tensor& d_h0,
                   at::Tensor& d_w_hh, at::Tensor& d_b_hh) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;  // the weights may require grad
  const int64_t B = gi.size(0), T = gi.size(1), H = h0.size(1);
  // Every step's hidden gates: kept by the forward, or recomputed at once (one GEMM: all h_{t-1}
  // are known); then the reverse loop.
  const at::Tensor h_prev = at::cat({h0.unsqueeze(1), out.narrow(1, 0, T - 1)}, 1);  // [B, T, H]
  const at::Tensor gh = gates.numel() ? gates : at::addmm(b_hh, h_prev.view({B * T, H}), w_hh.t());
  // dgh equals dgi in its r and z parts (gru_row_backward): only its n part is kept for the
  // weight gradient, [B, T, H] instead of [B, T, 3H] (a fresh 38 MB buffer at B=16, T=784,
  // H=256 costs its page faults and bandwidth every call).
  const at::Tensor d_gh_n = at::empty({B, T, H}, gi.options());
  const PackedWeight w_back = pack_weight(w_hh.t());  // dL/dh_{t-1} += dgh_t @ w_hh
  AT_DISPATCH_FLOATING_TYPES(gi.scalar_type(), "rnngen_cpu::scan_backward", [&] {
    using T_ = scalar_t;
    const T_ *go_p = grad_out.const_data_ptr<T_>(), *gi_p = gi.const_data_ptr<T_>();
    const T_ *hp_p = h_prev.const_data_ptr<T_>(), *gh_p = gh.const_data_ptr<T_>();
    T_ *dgi_p = d_gi.mutable_data_ptr<T_>(), *dghn_p = d_gh_n.mutable_data_ptr<T_>();
    T_* dh0_p = d_h0.mutable_data_ptr<T_>();
    // d_b_hh: each chunk of rows sums its own steps' dgh while they are still in cache, into the
    // slot of its first row; the slots are added in row order below (unused ones hold zeros).
    // In double: a plain running sum over thousands of steps would lose float32 digits.
    std::vector<double> db(B * 3 * H, 0.0);
    at::parallel_for(0, B, row_grain(B), [&](int64_t b0, int64_t b1) {
      const int64_t rows = b1 - b0;
      double* db_chunk = db.data() + b0 * 3 * H;
      std::vector<T_> dh(rows * H, T_(0)), direct(rows * H), through_w(rows * H), dgh(rows * 3 * H);
      for (int64_t t = T - 1; t >= 0; --t) {
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t bt = (b0 + r) * T + t;
          T_* dh_r = dh.data() + r * H;
          T_* dgh_r = dgh.data() + r * 3 * H;
          for (int64_t j = 0; j < H; ++j) dh_r[j] += go_p[bt * H + j];
          gru_row_backward(dh_r, gi_p + bt * 3 * H, gh_p + bt * 3 * H, hp_p + bt * H, dgi_p + bt * 3 * H, dgh_r,
                           direct.data() + r * H, H);
          for (int64_t j = 0; j < 3 * H; ++j) db_chunk[j] += dgh_r[j];
          std::copy_n(dgh_r + 2 * H, H, dghn_p + bt * H);
        }
        gemm(dgh.data(), 3 * H, rows, w_back, static_cast<const T_*>(nullptr), through_w.data(), H);
        for (int64_t i = 0; i < rows * H; ++i) dh[i] = direct[i] + through_w[i];
      }
      std::copy(dh.begin(), dh.end(), dh0_p + b0 * H);
    });
    std::vector<double> total(3 * H, 0.0);  // also the answer for an empty batch
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < 3 * H; ++j) total[j] += db[b * 3 * H + j];
    std::copy(total.begin(), total.end(), d_b_hh.mutable_data_ptr<T_>());
  });
  // The weight gradient: GEMMs over all steps (r and z rows from dgi, n rows from dgh's n part).
  const at::Tensor hp2 = h_prev.view({B * T, H});
  at::Tensor d_w_rz = d_w_hh.narrow(0, 0, 2 * H), d_w_n = d_w_hh.narrow(0, 2 * H, H);
  at::mm_out(d_w_rz, d_gi.view({B * T, 3 * H}).narrow(1, 0, 2 * H).t(), hp2);
  at::mm_out(d_w_n, d_gh_n.view({B * T, H}).t(), hp2);
}

}  // namespace

TORCH_LIBRARY_IMPL(rnngen_cpu, CPU, m) {
  m.impl("scan_forward", &scan_forward_h<GruCell>);
  m.impl("lstm_scan_forward", &scan_forward<LstmCell>);
  m.impl("rnn_tanh_scan_forward", &scan_forward_h<ElmanCell<false>>);
  m.impl("rnn_relu_scan_forward", &scan_forward_h<ElmanCell<true>>);
  m.impl("scan_backward", &scan_backward);
}

}  // namespace rnngen::cpu
