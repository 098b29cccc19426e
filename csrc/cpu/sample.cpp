// Fused CPU sample, every cell (cells.h): logits, the contract's Philox inverse-CDF draw, the drawn value's gate row
// as the next input, conditioning and forced known values, all inside one loop over the steps.
// The op layer (rnngen/ops/sample/op.py) has checked every input (known values in range
// included). The math follows rnngen/ops/sample/naive.py.
#include <omp.h>
#include <torch/library.h>

#include <optional>
#include <vector>

#include "draw.h"
#include "cells.h"

namespace rnngen::cpu {

namespace {

RNNGEN_CLONES int64_t draw_clones(float* logits, int64_t K, float temperature, float u) {
  float m = logits[0];
#pragma omp simd reduction(max : m)
  for (int64_t k = 1; k < K; ++k) m = logits[k] > m ? logits[k] : m;
#pragma omp simd
  for (int64_t k = 0; k < K; ++k) logits[k] = exp_fast((logits[k] - m) / temperature);
  float total = 0.0f;
  for (int64_t k = 0; k < K; ++k) logits[k] = total += logits[k];  // now the cdf
  const float threshold = u * total;
  if (threshold != threshold) return 0;  // NaN logits: value 0, as the reference draws
  for (int64_t k = 0; k + 1 < K; ++k)
    if (logits[k] > threshold) return k;
  return K - 1;
}

}  // namespace

int64_t draw(float* logits, int64_t K, float temperature, float u) { return draw_clones(logits, K, temperature, u); }

namespace {

// The lagged inputs (rnngen/ops/sample/naive.py): table j's row for the value lags[j] steps
// before the next step, or nullptr before the first one. At step t that is value t + 1 - lag:
// the value v just drawn for lag 1 (in the units split only one thread has stored it yet, but
// every thread drew the same v), an earlier step's stored value otherwise.
template <typename T_>
struct Lagged {
  const T_* table;  // [L, C, K, G]
  std::vector<int64_t> lags;
  int64_t T, C, K, G;
  const T_* row(size_t j, int64_t b, int64_t t, int64_t v, const int64_t* values) const {
    const int64_t s = t + 1 - lags[j];
    if (s < 0) return nullptr;
    const int64_t value = s == t ? v : values[b * T + s];
    return table + ((static_cast<int64_t>(j) * C + s % C) * K + value) * G;
  }
};

// Fewer rows than threads (see units_threads): each thread computes its slices of the hidden
// units' gates (w_hh and b_hh come regrouped into `slices` slices, slice_order) and of the
// logits (w_hh and w_out not yet packed: each thread packs its own tiles); after a barrier
// every thread draws the same value from the shared logits (same inputs, same order: the same
// number), feeds its units, and the threads meet again before the next step. run_unit_split
// (team.h) runs the two phases of every step.
template <class Cell, typename T_>
void sample_units(const T_* h0_p, const T_* c0_p, const T_* emb_p, const Lagged<T_>& lagged, const T_* cond_p,
                  const PackedWeight& w_hh,
                  const T_* b_hh, const std::vector<PackedWeight>& w_out, const T_* b_out, float temperature,
                  uint64_t key, int64_t row_offset, const int64_t* known, int64_t* val_p, int64_t B, int64_t T,
                  int64_t H, int64_t C, int64_t K, int slices) {
  constexpr int64_t NG = Cell::kGates;
  const int64_t G = NG * H, S = H / slices, KS = K / slices;  // KS: logits per slice
  // shared: the states, each row's gates (slice by slice: slice_order) and logits
  std::vector<T_> h(h0_p, h0_p + B * H), h_next(B * H), gh(B * G), logits(B * K);
  std::vector<T_> c(Cell::kCellState ? B * H : 0), c_next(c.size());
  if constexpr (Cell::kCellState) std::copy(c0_p, c0_p + B * H, c.begin());
  std::atomic<bool> mixed{false};
  run_unit_split(slices, T, 2, [&](const UnitShare& share) {
    std::vector<TileShare> tiles{{&w_hh, NG * S * share.slice0 / 64, NG * S * share.slice1 / 64}};
    for (const PackedWeight& head : w_out) tiles.push_back({&head, KS * share.slice0 / 64, KS * share.slice1 / 64});
    settle_pairs(tiles, mixed);
    w_hh.pack(NG * S * share.slice0 / 64, NG * S * share.slice1 / 64);  // this thread's tiles, into its core's cache
    for (const PackedWeight& head : w_out) head.pack(KS * share.slice0 / 64, KS * share.slice1 / 64);
    // every thread swaps its own copy of the state pointers
    return [&, cur = h.data(), next = h_next.data(), c_cur = c.data(), c_nxt = c_next.data(),
            gi = std::vector<T_>(NG * S), scratch = std::vector<float>(K)](int64_t t, int phase, int64_t s0,
                                                                           int64_t s1) mutable {
      const int64_t ch = t % C;
      if (phase == 0) {  // the gates and logits of slices [s0, s1)
        gemm_columns(cur, H, B, w_hh, NG * S * s0 / 64, NG * S * s1 / 64, b_hh, gh.data() + NG * S * s0, G);
        gemm_columns(cur, H, B, w_out[ch], KS * s0 / 64, KS * s1 / 64, b_out + ch * K, logits.data() + KS * s0, K);
        return;
      }
      for (int64_t b = 0; b < B; ++b) {
        const int64_t v = value_at(logits.data() + b * K, scratch.data(), K, temperature, key, row_offset, b, t, T, known);
        if (s0 == 0) val_p[b * T + t] = v;
        if (t + 1 < T) {  // this thread's units of the next state, from the input gates emb[ch][v] + cond
          for (int64_t s = s0; s < s1; ++s) {
            const int64_t j0 = s * S, u = b * H + j0;
            for (int64_t g = 0; g < NG; ++g)
              for (int64_t i = 0; i < S; ++i)
                gi[g * S + i] = emb_p[(ch * K + v) * G + g * H + j0 + i] + cond_p[b * G + g * H + j0 + i];
            for (size_t j = 0; j < lagged.lags.size(); ++j)
              if (const T_* row = lagged.row(j, b, t, v, val_p))
                for (int64_t g = 0; g < NG; ++g)
                  for (int64_t i = 0; i < S; ++i) gi[g * S + i] += row[g * H + j0 + i];
            cell_forward(Cell{}, gi.data(), S, gh.data() + b * G + NG * S * s, S, cur + u,
                         Cell::kCellState ? c_cur + u : nullptr, next + u, Cell::kCellState ? c_nxt + u : nullptr, S);
          }
        }
      }
      std::swap(cur, next);
      std::swap(c_cur, c_nxt);
    };
  });
}

// Every cell's sampler (cells.h). c0 is empty for a cell without a cell state.
template <class Cell>
void sample(const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& emb, const at::Tensor& lag_emb,
            at::IntArrayRef lags, const at::Tensor& cond, const at::Tensor& w_hh, const at::Tensor& b_hh, const at::Tensor& w_out, const at::Tensor& b_out,
            double temperature, int64_t seed, int64_t row_offset, const std::optional<at::Tensor>& known,
            at::Tensor& values) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;  // the weights may require grad
  constexpr int NG = Cell::kGates;
  const int64_t B = h0.size(0), H = h0.size(1), C = w_out.size(0), K = w_out.size(1), T = values.size(1);
  const int64_t G = NG * H, N = G + K;
  const int threads = units_threads(B, H, K);
  // Rows split: per channel c, [W_hh; W_out[c]], so one pass over h_t gives the next gates and
  // the logits. Units split: W_hh and the heads packed apart (each thread takes a slice of each).
  const bool few_rows = (threads > 1 ? B : row_grain(B)) < 4;  // bf16 pairs pay off (pack_weight)
  std::vector<PackedWeight> ws;
  std::vector<at::Tensor> biases;
  for (int64_t c = 0; c < C; ++c) {
    ws.push_back(threads > 1 ? pack_weight({w_out[c]}, few_rows, {}, true) : pack_weight({w_hh, w_out[c]}, few_rows));
    biases.push_back(at::cat({b_hh, b_out[c]}));
  }
  const int64_t* known_p = known.has_value() ? known->const_data_ptr<int64_t>() : nullptr;
  int64_t* val_p = values.mutable_data_ptr<int64_t>();
  const uint64_t key = static_cast<uint64_t>(seed);
  const float temp = static_cast<float>(temperature);
  AT_DISPATCH_FLOATING_TYPES(h0.scalar_type(), "rnngen_cpu::sample", [&] {
    using T_ = scalar_t;
    const T_ *h0_p = h0.const_data_ptr<T_>(), *c0_p = state_ptr<T_>(c0), *emb_p = emb.const_data_ptr<T_>();
    const T_* cond_p = cond.const_data_ptr<T_>();
    const Lagged<T_> lagged{lag_emb.const_data_ptr<T_>(), lags.vec(), T, C, K, G};
    if (threads > 1) {
      const at::Tensor b_sliced = gates_by_slice(b_hh, H, threads, NG);
      sample_units<Cell>(h0_p, c0_p, emb_p, lagged, cond_p,
                         pack_weight({w_hh}, few_rows, slice_order(H, threads, NG), true),
                         b_sliced.const_data_ptr<T_>(), ws, b_out.const_data_ptr<T_>(), temp, key, row_offset,
                         known_p, val_p, B, T, H, C, K, threads);
      return;
    }
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
          if (t + 1 < T) {  // the next state from the input gates emb[ch][v] + cond (+ the lagged rows)
            const T_ *e = emb_p + (ch * K + v) * G, *cd = cond_p + b * G;
            for (int64_t i = 0; i < G; ++i) gi[i] = e[i] + cd[i];
            for (size_t j = 0; j < lagged.lags.size(); ++j)
              if (const T_* row = lagged.row(j, b, t, v, val_p))
                for (int64_t i = 0; i < G; ++i) gi[i] += row[i];
            cell_forward(Cell{}, gi.data(), H, ghl.data() + r * N, H, h.data() + r * H,
                         Cell::kCellState ? c.data() + r * H : nullptr, h_next.data() + r * H,
                         Cell::kCellState ? c_next.data() + r * H : nullptr, H);
          }
        }
        std::swap(h, h_next);
        std::swap(c, c_next);
      }
    });
  });
}

// The GRU and the Elman cells have no cell state: their schema has no c0.
template <class Cell>
void sample_h(const at::Tensor& h0, const at::Tensor& emb, const at::Tensor& lag_emb, at::IntArrayRef lags,
              const at::Tensor& cond, const at::Tensor& w_hh, const at::Tensor& b_hh, const at::Tensor& w_out,
              const at::Tensor& b_out, double temperature, int64_t seed, int64_t row_offset,
              const std::optional<at::Tensor>& known, at::Tensor& values) {
  sample<Cell>(h0, no_state(h0), emb, lag_emb, lags, cond, w_hh, b_hh, w_out, b_out, temperature, seed, row_offset,
               known, values);
}

}  // namespace

TORCH_LIBRARY_IMPL(rnngen_cpu, CPU, m) {
  m.impl("sample", &sample_h<GruCell>);
  m.impl("lstm_sample", &sample<LstmCell>);
  m.impl("rnn_tanh_sample", &sample_h<ElmanCell<false>>);
  m.impl("rnn_relu_sample", &sample_h<ElmanCell<true>>);
}

}  // namespace rnngen::cpu
