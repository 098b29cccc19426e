// rnngen._cpu: the C++ CPU extension. Its ops live in the namespace rnngen_cpu; each op named
// like one of rnngen.dispatch.KERNELS becomes the "cpu" backend's kernel. The schemas are here,
// the kernels beside them (scan.cpp, decode.cpp, sample.cpp). Kernels take contiguous inputs
// and fill the outputs the op layer allocated (the "(a!)" arguments).
#include <Python.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../common/philox.h"
#include "../common/schemas.h"

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

}  // namespace

TORCH_LIBRARY(rnngen_cpu, m) {
  m.def("philox_uniform(int seed, Tensor offset) -> Tensor");
  rnngen::define_kernels(m, "gru", false);  // scan.cpp, decode.cpp, sample.cpp
  rnngen::define_kernels(m, "lstm", true);  // cells.cpp
  rnngen::define_kernels(m, "rnn_tanh", false);
  rnngen::define_kernels(m, "rnn_relu", false);
}

TORCH_LIBRARY_IMPL(rnngen_cpu, CPU, m) {
  m.impl("philox_uniform", &philox_uniform_cpu);
}
