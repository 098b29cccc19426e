// rnngen._cpu: the C++ CPU extension. Its ops live in the namespace rnngen_cpu; each op named
// like one of rnngen.dispatch.KERNELS becomes the "cpu" backend's kernel. The schemas are here,
// the kernels beside them (scan.cpp, decode.cpp, sample.cpp). Kernels take contiguous inputs
// and fill the outputs the op layer allocated (the "(a!)" arguments).
#include <Python.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <string>

#include "../common/philox.h"

// `import rnngen._cpu` loads this library, which runs the TORCH_LIBRARY registrations below.
extern "C" PyObject* PyInit__cpu(void) {
  static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cpu", nullptr, -1, nullptr};
  return PyModule_Create(&module);
}

namespace {

at::Tensor philox_uniform_cpu(int64_t seed, const at::Tensor& offset) {
  TORCH_CHECK(offset.scalar_type() == at::kLong, "offset must be an int64 tensor, got ", offset.scalar_type());
  const at::Tensor offsets = offset.contiguous();
  at::Tensor out = at::empty(offsets.sizes(), offsets.options().dtype(at::kFloat));
  const int64_t* src = offsets.data_ptr<int64_t>();
  float* dst = out.data_ptr<float>();
  at::parallel_for(0, offsets.numel(), 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      dst[i] = rnngen::philox_uniform(static_cast<uint64_t>(seed), static_cast<uint64_t>(src[i]));
  });
  return out;
}

// The five kernels' schemas for one cell: the GRU's under their plain names, every other cell's
// prefixed with its name (lstm_scan_forward, ...; rnngen.dispatch looks them up so). A cell with
// a cell state (the LSTM) takes c0 after h0, fills every step's cell state after the hidden
// states, takes their upstream gradient after the hidden states' and returns d_c0 after d_h0.
void define_kernels(torch::Library& m, const std::string& cell, bool cell_state) {
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
  def("sample(Tensor h0, " + c0 + "Tensor emb, Tensor cond, Tensor w_hh, Tensor b_hh, Tensor w_out, Tensor b_out, "
      "float temperature, int seed, int row_offset, Tensor? known, Tensor(a!) values) -> ()");
}

}  // namespace

TORCH_LIBRARY(rnngen_cpu, m) {
  m.def("philox_uniform(int seed, Tensor offset) -> Tensor");
  define_kernels(m, "gru", false);  // scan.cpp, decode.cpp, sample.cpp
  define_kernels(m, "lstm", true);  // cells.cpp
  define_kernels(m, "rnn_tanh", false);
  define_kernels(m, "rnn_relu", false);
}

TORCH_LIBRARY_IMPL(rnngen_cpu, CPU, m) {
  m.impl("philox_uniform", &philox_uniform_cpu);
}
