// The kernels' schemas, defined once for both C++ extensions (rnngen_cpu, rnngen_cuda), so that
// an op of either has the same arguments as the other's and as rnngen.dispatch calls it with.
#pragma once

#include <torch/library.h>

#include <string>

namespace rnngen {

// The five kernels' schemas for one cell: the GRU's under their plain names, every other cell's
// prefixed with its name (lstm_scan_forward, ...; rnngen.dispatch looks them up so). A cell with
// a cell state (the LSTM) takes c0 after h0, fills every step's cell state after the hidden
// states, takes their upstream gradient after the hidden states' and returns d_c0 after d_h0.
inline void define_kernels(torch::Library& m, const std::string& cell, bool cell_state) {
  const std::string p = cell == "gru" ? "" : cell + "_";
  const std::string c0 = cell_state ? "Tensor c0, " : "";
  auto def = [&](const std::string& schema) { m.def((p + schema).c_str()); };
  def("scan_forward(Tensor gi, Tensor h0, " + c0 + "Tensor w_hh, Tensor b_hh, Tensor(a!) out, " +
      (cell_state ? "Tensor(c!) c_out, " : "") + "Tensor(b!) gates) -> ()");
  def("scan_backward(Tensor grad_out, " + std::string(cell_state ? "Tensor grad_c, " : "") + "Tensor gi, Tensor h0, " +
      c0 + "Tensor w_hh, Tensor b_hh, Tensor out, " + (cell_state ? "Tensor c_out, " : "") +
      "Tensor gates, Tensor(a!) d_gi, Tensor(b!) d_h0, " + (cell_state ? "Tensor(e!) d_c0, " : "") +
      "Tensor(c!) d_w_hh, Tensor(d!) d_b_hh) -> ()");
  def("decode_forward(Tensor h0, " + c0 + "Tensor w_ih, Tensor b_ih, Tensor w_hh, Tensor b_hh, Tensor w_out, "
      "Tensor b_out, Tensor(a!) out, Tensor(b!) hidden" + (cell_state ? ", Tensor(c!) c_hidden" : "") + ") -> ()");
  def("decode_backward(Tensor grad_out, Tensor grad_hidden, " + std::string(cell_state ? "Tensor grad_c, " : "") +
      "Tensor h0, " + c0 + "Tensor w_ih, Tensor b_ih, Tensor w_hh, Tensor b_hh, Tensor w_out, Tensor b_out, "
      "Tensor out, Tensor hidden, " + (cell_state ? "Tensor c_hidden, " : "") + "Tensor(a!) d_h0, " +
      (cell_state ? "Tensor(h!) d_c0, " : "") +
      "Tensor(b!) d_w_ih, Tensor(c!) d_b_ih, Tensor(d!) d_w_hh, Tensor(e!) d_b_hh, Tensor(f!) d_w_out, "
      "Tensor(g!) d_b_out) -> ()");
  def("sample(Tensor h0, " + c0 + "Tensor emb, Tensor lag_emb, int[] lags, Tensor cond, Tensor w_hh, Tensor b_hh, Tensor w_out, Tensor b_out, "
      "float temperature, int seed, int row_offset, Tensor? known, Tensor(a!) values) -> ()");
}

}  // namespace rnngen
