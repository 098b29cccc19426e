// Fused CPU kernels of the cells beside the GRU (cells.h: the LSTM and the Elman RNN, tanh and
// relu): scan forward and backward, decode forward and backward, sample. The op layer
// (rnngen/ops/*/op.py) has checked and made contiguous every input and allocated the outputs;
// the math follows rnngen/ops/*/naive.py. The batch rows are split over the threads, each
// running the whole time loop for its rows against weights packed once per call (as the GRU's
// row path in scan.cpp, decode.cpp, sample.cpp); these kernels have no unit-split team, so with
// fewer rows than threads (B = 1) they run one thread.
#include <omp.h>
#include <torch/library.h>

#include <optional>
#include <vector>

#include "cells.h"
#include "draw.h"

namespace rnngen::cpu {
namespace {

// float steps compiled for AVX-512, AVX2 and baseline x86-64 (target_clones does not take
// templates, hence one entry point per cell and direction); double takes the template as is.
#define RNNGEN_CELL_ENTRY(name, Cell)                                                                               \
  RNNGEN_CLONES void name##_forward_f32(const float* gi, const float* gh, const float* h, const float* c,           \
                                        float* h_new, float* c_new, int64_t H) {                                   \
    Cell::forward(gi, gh, h, c, h_new, c_new, H);                                                                  \
  }                                                                                                                \
  RNNGEN_CLONES void name##_backward_f32(const float* dh, float* dc, const float* gi, const float* gh,             \
                                         const float* c_prev, const float* c_new, const float* h_new, float* dgate, \
                                         int64_t H) {                                                              \
    Cell::backward(dh, dc, gi, gh, c_prev, c_new, h_new, dgate, H);                                                \
  }
RNNGEN_CELL_ENTRY(lstm, LstmCell)
RNNGEN_CELL_ENTRY(rnn_tanh, ElmanCell<false>)
RNNGEN_CELL_ENTRY(rnn_relu, ElmanCell<true>)
#undef RNNGEN_CELL_ENTRY

template <class Cell, typename T>
void step(const T* gi, const T* gh, const T* h, const T* c, T* h_new, T* c_new, int64_t H) {
  if constexpr (std::is_same_v<T, float> && std::is_same_v<Cell, LstmCell>) {
    lstm_forward_f32(gi, gh, h, c, h_new, c_new, H);
  } else if constexpr (std::is_same_v<T, float> && std::is_same_v<Cell, ElmanCell<false>>) {
    rnn_tanh_forward_f32(gi, gh, h, c, h_new, c_new, H);
  } else if constexpr (std::is_same_v<T, float> && std::is_same_v<Cell, ElmanCell<true>>) {
    rnn_relu_forward_f32(gi, gh, h, c, h_new, c_new, H);
  } else {
    Cell::forward(gi, gh, h, c, h_new, c_new, H);
  }
}

template <class Cell, typename T>
void step_backward(const T* dh, T* dc, const T* gi, const T* gh, const T* c_prev, const T* c_new, const T* h_new,
                   T* dgate, int64_t H) {
  if constexpr (std::is_same_v<T, float> && std::is_same_v<Cell, LstmCell>) {
    lstm_backward_f32(dh, dc, gi, gh, c_prev, c_new, h_new, dgate, H);
  } else if constexpr (std::is_same_v<T, float> && std::is_same_v<Cell, ElmanCell<false>>) {
    rnn_tanh_backward_f32(dh, dc, gi, gh, c_prev, c_new, h_new, dgate, H);
  } else if constexpr (std::is_same_v<T, float> && std::is_same_v<Cell, ElmanCell<true>>) {
    rnn_relu_backward_f32(dh, dc, gi, gh, c_prev, c_new, h_new, dgate, H);
  } else {
    Cell::backward(dh, dc, gi, gh, c_prev, c_new, h_new, dgate, H);
  }
}

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
  step_backward<Cell>(dh, dc, gi_p + bt * G, gh_p + bt * G, cp_p ? cp_p + bt * H : nullptr,
                      c_p ? c_p + bt * H : nullptr, h_p + bt * H, dgate_p + bt * G, H);
}

template <typename T>
const T* ptr(const at::Tensor& t) {  // null for the empty cell-state tensors of the Elman cells
  return t.numel() ? t.const_data_ptr<T>() : nullptr;
}

template <typename T>
T* mut(at::Tensor& t) {
  return t.numel() ? t.mutable_data_ptr<T>() : nullptr;
}

// The states before every step: [B, T, H], state0 then the states after steps 0 .. T-2.
at::Tensor previous(const at::Tensor& state0, const at::Tensor& states) {
  return at::cat({state0.unsqueeze(1), states.narrow(1, 0, states.size(1) - 1)}, 1);
}

// ---- scan ------------------------------------------------------------------------------------

template <class Cell>
void scan_forward(const at::Tensor& gi, const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_hh,
                  const at::Tensor& b_hh, at::Tensor& out, at::Tensor& c_out, at::Tensor& gates) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;  // the weights may require grad
  const int64_t B = gi.size(0), T = gi.size(1), H = h0.size(1), G = Cell::kGates * H;
  const PackedWeight w = pack_weight(w_hh);
  AT_DISPATCH_FLOATING_TYPES(gi.scalar_type(), "rnngen_cpu::cell_scan_forward", [&] {
    using T_ = scalar_t;
    const T_ *gi_p = gi.const_data_ptr<T_>(), *h0_p = h0.const_data_ptr<T_>(), *c0_p = ptr<T_>(c0);
    const T_* b_p = b_hh.const_data_ptr<T_>();
    T_ *out_p = out.mutable_data_ptr<T_>(), *c_p = mut<T_>(c_out), *gates_p = mut<T_>(gates);
    at::parallel_for(0, B, row_grain(B), [&](int64_t b0, int64_t b1) {
      const int64_t rows = b1 - b0;
      std::vector<T_> scratch(gates_p ? 0 : rows * G);
      for (int64_t t = 0; t < T; ++t) {
        // the state before step t of row b: h0[b] (c0[b]) at t = 0, else step t-1's (rows T*H apart)
        const int64_t first = t == 0 ? b0 * H : (b0 * T + t - 1) * H, ld = t == 0 ? H : T * H;
        const T_* h_prev = (t == 0 ? h0_p : out_p) + first;
        const T_* c_prev = Cell::kCellState ? (t == 0 ? c0_p : c_p) + first : nullptr;
        T_* gh = gates_p ? gates_p + (b0 * T + t) * G : scratch.data();  // straight into the saved gates
        const int64_t ld_gh = gates_p ? T * G : G;
        gemm(h_prev, ld, rows, w, b_p, gh, ld_gh);
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t bt = (b0 + r) * T + t;
          step<Cell>(gi_p + bt * G, gh + r * ld_gh, h_prev + r * ld, c_prev ? c_prev + r * ld : nullptr,
                     out_p + bt * H, c_p ? c_p + bt * H : nullptr, H);
        }
      }
    });
  });
}

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
    const T_ *go_p = grad_out.const_data_ptr<T_>(), *gc_p = ptr<T_>(grad_c), *gi_p = gi.const_data_ptr<T_>();
    const T_ *gh_p = gh.const_data_ptr<T_>(), *out_p = out.const_data_ptr<T_>();
    const T_ *c_p = ptr<T_>(c_out), *cp_p = Cell::kCellState ? c_prev.const_data_ptr<T_>() : nullptr;
    T_ *dgi_p = d_gi.mutable_data_ptr<T_>(), *dh0_p = d_h0.mutable_data_ptr<T_>(), *dc0_p = mut<T_>(d_c0);
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
void decode_forward(const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_ih, const at::Tensor& b_ih,
                    const at::Tensor& w_hh, const at::Tensor& b_hh, const at::Tensor& w_out, const at::Tensor& b_out,
                    at::Tensor& out, at::Tensor& hidden, at::Tensor& c_hidden) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;
  const int64_t B = h0.size(0), H = h0.size(1), T = out.size(1), C = out.size(2), G = Cell::kGates * H;
  // W_hh and W_out both multiply h_{t-1}: one pass over h gives gh (columns 0..G) and x_t.
  const bool few_rows = row_grain(B) < 4;  // bf16 pairs pay off (pack_weight)
  const PackedWeight w = pack_weight({w_hh, w_out}, few_rows), w_in = pack_weight(w_ih);
  const at::Tensor bias = at::cat({b_hh, b_out});
  const int64_t N = G + C;
  AT_DISPATCH_FLOATING_TYPES(h0.scalar_type(), "rnngen_cpu::cell_decode_forward", [&] {
    using T_ = scalar_t;
    const T_ *h0_p = h0.const_data_ptr<T_>(), *c0_p = ptr<T_>(c0), *bias_p = bias.const_data_ptr<T_>();
    const T_* bih_p = b_ih.const_data_ptr<T_>();
    T_ *out_p = out.mutable_data_ptr<T_>(), *hid_p = hidden.mutable_data_ptr<T_>(), *c_p = mut<T_>(c_hidden);
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
          step<Cell>(gi.data() + r * G, ghx.data() + r * N, h_prev + r * ld, c_prev ? c_prev + r * ld : nullptr,
                     hid_p + bt * H, c_p ? c_p + bt * H : nullptr, H);
        }
      }
    });
  });
}

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
    const T_ *gc_p = ptr<T_>(grad_c), *gi_p = gi.const_data_ptr<T_>(), *gh_p = gh.const_data_ptr<T_>();
    const T_ *hid_p = hidden.const_data_ptr<T_>(), *c_p = ptr<T_>(c_hidden);
    const T_* cp_p = Cell::kCellState ? c_prev.const_data_ptr<T_>() : nullptr;
    T_ *dg_p = d_gate.mutable_data_ptr<T_>(), *dx_p = d_x.mutable_data_ptr<T_>();
    T_ *dh0_p = d_h0.mutable_data_ptr<T_>(), *dc0_p = mut<T_>(d_c0);
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

// ---- sample ----------------------------------------------------------------------------------

template <class Cell>
void sample(const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& emb, const at::Tensor& cond,
            const at::Tensor& w_hh, const at::Tensor& b_hh, const at::Tensor& w_out, const at::Tensor& b_out,
            double temperature, int64_t seed, int64_t row_offset, const std::optional<at::Tensor>& known,
            at::Tensor& values) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;
  const int64_t B = h0.size(0), H = h0.size(1), C = w_out.size(0), K = w_out.size(1), T = values.size(1);
  const int64_t G = Cell::kGates * H, N = G + K;
  // per channel c, [W_hh; W_out[c]]: one pass over h_t gives the next gates and the logits
  const bool few_rows = row_grain(B) < 4;
  std::vector<PackedWeight> ws;
  std::vector<at::Tensor> biases;
  for (int64_t c = 0; c < C; ++c) {
    ws.push_back(pack_weight({w_hh, w_out[c]}, few_rows));
    biases.push_back(at::cat({b_hh, b_out[c]}));
  }
  const int64_t* known_p = known.has_value() ? known->const_data_ptr<int64_t>() : nullptr;
  int64_t* val_p = values.mutable_data_ptr<int64_t>();
  const uint64_t key = static_cast<uint64_t>(seed);
  const float temp = static_cast<float>(temperature);
  AT_DISPATCH_FLOATING_TYPES(h0.scalar_type(), "rnngen_cpu::cell_sample", [&] {
    using T_ = scalar_t;
    const T_ *h0_p = h0.const_data_ptr<T_>(), *c0_p = ptr<T_>(c0), *emb_p = emb.const_data_ptr<T_>();
    const T_* cond_p = cond.const_data_ptr<T_>();
    at::parallel_for(0, B, row_grain(B), [&](int64_t b0, int64_t b1) {
      const int64_t rows = b1 - b0;
      std::vector<T_> h(h0_p + b0 * H, h0_p + b1 * H), h_next(rows * H), ghl(rows * N), gi(G);
      std::vector<T_> c(Cell::kCellState ? rows * H : 0), c_next(c.size());
      if constexpr (Cell::kCellState) std::copy(c0_p + b0 * H, c0_p + b1 * H, c.begin());
      std::vector<float> logits(K);
      for (int64_t t = 0; t < T; ++t) {
        const int64_t ch = t % C;
        gemm(h.data(), H, rows, ws[ch], biases[ch].const_data_ptr<T_>(), ghl.data(), N);
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t b = b0 + r;
          const int64_t v = value_at(ghl.data() + r * N + G, logits.data(), K, temp, key, row_offset, b, t, T, known_p);
          val_p[b * T + t] = v;
          if (t + 1 < T) {  // the next state from the input gates emb[ch][v] + cond
            const T_ *e = emb_p + (ch * K + v) * G, *cd = cond_p + b * G;
            for (int64_t i = 0; i < G; ++i) gi[i] = e[i] + cd[i];
            step<Cell>(gi.data(), ghl.data() + r * N, h.data() + r * H, Cell::kCellState ? c.data() + r * H : nullptr,
                       h_next.data() + r * H, Cell::kCellState ? c_next.data() + r * H : nullptr, H);
          }
        }
        std::swap(h, h_next);
        std::swap(c, c_next);
      }
    });
  });
}

// The Elman cells' kernels take the GRU's arguments (no cell state): adapters with empty tensors.
template <class Cell>
void scan_forward_h(const at::Tensor& gi, const at::Tensor& h0, const at::Tensor& w_hh, const at::Tensor& b_hh,
                    at::Tensor& out, at::Tensor& gates) {
  at::Tensor none = at::empty({0}, h0.options());
  scan_forward<Cell>(gi, h0, none, w_hh, b_hh, out, none, gates);
}

template <class Cell>
void scan_backward_h(const at::Tensor& grad_out, const at::Tensor& gi, const at::Tensor& h0, const at::Tensor& w_hh,
                     const at::Tensor& b_hh, const at::Tensor& out, const at::Tensor& gates, at::Tensor& d_gi,
                     at::Tensor& d_h0, at::Tensor& d_w_hh, at::Tensor& d_b_hh) {
  at::Tensor none = at::empty({0}, h0.options());
  scan_backward<Cell>(grad_out, none, gi, h0, none, w_hh, b_hh, out, none, gates, d_gi, d_h0, none, d_w_hh, d_b_hh);
}

template <class Cell>
void decode_forward_h(const at::Tensor& h0, const at::Tensor& w_ih, const at::Tensor& b_ih, const at::Tensor& w_hh,
                      const at::Tensor& b_hh, const at::Tensor& w_out, const at::Tensor& b_out, at::Tensor& out,
                      at::Tensor& hidden) {
  at::Tensor none = at::empty({0}, h0.options());
  decode_forward<Cell>(h0, none, w_ih, b_ih, w_hh, b_hh, w_out, b_out, out, hidden, none);
}

template <class Cell>
void decode_backward_h(const at::Tensor& grad_out, const at::Tensor& grad_hidden, const at::Tensor& h0,
                       const at::Tensor& w_ih, const at::Tensor& b_ih, const at::Tensor& w_hh, const at::Tensor& b_hh,
                       const at::Tensor& w_out, const at::Tensor& b_out, const at::Tensor& out,
                       const at::Tensor& hidden, at::Tensor& d_h0, at::Tensor& d_w_ih, at::Tensor& d_b_ih,
                       at::Tensor& d_w_hh, at::Tensor& d_b_hh, at::Tensor& d_w_out, at::Tensor& d_b_out) {
  at::Tensor none = at::empty({0}, h0.options());
  decode_backward<Cell>(grad_out, grad_hidden, none, h0, none, w_ih, b_ih, w_hh, b_hh, w_out, b_out, out, hidden, none,
                        d_h0, none, d_w_ih, d_b_ih, d_w_hh, d_b_hh, d_w_out, d_b_out);
}

template <class Cell>
void sample_h(const at::Tensor& h0, const at::Tensor& emb, const at::Tensor& cond, const at::Tensor& w_hh,
              const at::Tensor& b_hh, const at::Tensor& w_out, const at::Tensor& b_out, double temperature, int64_t seed,
              int64_t row_offset, const std::optional<at::Tensor>& known, at::Tensor& values) {
  sample<Cell>(h0, at::empty({0}, h0.options()), emb, cond, w_hh, b_hh, w_out, b_out, temperature, seed, row_offset,
               known, values);
}

}  // namespace

TORCH_LIBRARY_IMPL(rnngen_cpu, CPU, m) {
  m.impl("lstm_scan_forward", &scan_forward<LstmCell>);
  m.impl("lstm_scan_backward", &scan_backward<LstmCell>);
  m.impl("lstm_decode_forward", &decode_forward<LstmCell>);
  m.impl("lstm_decode_backward", &decode_backward<LstmCell>);
  m.impl("lstm_sample", &sample<LstmCell>);
  m.impl("rnn_tanh_scan_forward", &scan_forward_h<ElmanCell<false>>);
  m.impl("rnn_tanh_scan_backward", &scan_backward_h<ElmanCell<false>>);
  m.impl("rnn_tanh_decode_forward", &decode_forward_h<ElmanCell<false>>);
  m.impl("rnn_tanh_decode_backward", &decode_backward_h<ElmanCell<false>>);
  m.impl("rnn_tanh_sample", &sample_h<ElmanCell<false>>);
  m.impl("rnn_relu_scan_forward", &scan_forward_h<ElmanCell<true>>);
  m.impl("rnn_relu_scan_backward", &scan_backward_h<ElmanCell<true>>);
  m.impl("rnn_relu_decode_forward", &decode_forward_h<ElmanCell<true>>);
  m.impl("rnn_relu_decode_backward", &decode_backward_h<ElmanCell<true>>);
  m.impl("rnn_relu_sample", &sample_h<ElmanCell<true>>);
}

}  // namespace rnngen::cpu
