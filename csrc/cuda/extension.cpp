// rnngen._cuda: the torch binding of the CUDA kernels (ops in the namespace rnngen_cuda).
// A kernel named like one of rnngen.dispatch.KERNELS becomes the "cuda" backend's kernel.
// This version holds the contract's RNG only; the fused CUDA kernels join here.
#include <Python.h>

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "launchers.h"

extern "C" PyObject* PyInit__cuda(void) {
  static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cuda", nullptr, -1, nullptr};
  return PyModule_Create(&module);
}

namespace {

at::Tensor philox_uniform_cuda(int64_t seed, const at::Tensor& offset) {
  TORCH_CHECK(offset.scalar_type() == at::kLong, "offset must be an int64 tensor, got ", offset.scalar_type());
  const c10::cuda::CUDAGuard guard(offset.device());
  const at::Tensor offsets = offset.contiguous();
  at::Tensor out = at::empty(offsets.sizes(), offsets.options().dtype(at::kFloat));
  const cudaError_t err = rnngen::launch_philox_uniform(static_cast<uint64_t>(seed), offsets.data_ptr<int64_t>(),
                                                        out.data_ptr<float>(), offsets.numel(),
                                                        at::cuda::getCurrentCUDAStream());
  TORCH_CHECK(err == cudaSuccess, "philox_uniform launch failed: ", cudaGetErrorString(err));
  return out;
}

}  // namespace

TORCH_LIBRARY(rnngen_cuda, m) {
  m.def("philox_uniform(int seed, Tensor offset) -> Tensor");
}

TORCH_LIBRARY_IMPL(rnngen_cuda, CUDA, m) {
  m.impl("philox_uniform", &philox_uniform_cuda);
}
