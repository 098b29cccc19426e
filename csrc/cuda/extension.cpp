// rnngen._cuda: the torch binding of the CUDA kernels (ops in the namespace rnngen_cuda, with
// exactly the schemas of rnngen_cpu: both take them from csrc/common/schemas.h). A kernel named
// like one of rnngen.dispatch.KERNELS becomes the "cuda" backend's kernel (float32). The op layer
// has checked shapes, dtypes and devices and made every input contiguous; this binding only lays
// the weights out as the kernels read them (transposed, columns padded to a multiple of 4), calls
// the launchers (sample.cu, decode.cu, scan.cu) on the current stream, and runs the backward's
// weight-gradient GEMMs (cuBLAS) after the fused reverse loops.
#include <Python.h>

#include <cstdint>
#include <optional>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../common/schemas.h"
#include "launchers.h"

extern "C" PyObject* PyInit__cuda(void) {
  static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cuda", nullptr, -1, nullptr};
  return PyModule_Create(&module);
}

namespace rnngen {
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

void check_launch(cudaError_t err, const char* kernel) {
  TORCH_CHECK(err == cudaSuccess, "rnngen_cuda::", kernel, " failed to launch: ", cudaGetErrorString(err),
              err == cudaErrorInvalidConfiguration
                  ? " (one batch row's on-chip state exceeds this GPU's shared memory per block: the hidden size is "
                    "too large for the fused CUDA kernels; use backend='reference')"
                  : "");
}

const float* f32(const at::Tensor& t) { return t.const_data_ptr<float>(); }
float* f32_out(at::Tensor& t) { return t.mutable_data_ptr<float>(); }

// m (any strides) as a contiguous, 16-byte aligned tensor whose last dimension is zero-padded to
// a multiple of 4 (the kernels read it as float4).
at::Tensor pad4(const at::Tensor& m) {
  const int64_t cols = m.size(-1), cols4 = (cols + 3) / 4 * 4;
  if (cols == cols4 && m.is_contiguous() && reinterpret_cast<uintptr_t>(m.const_data_ptr()) % 16 == 0) return m;
  std::vector<int64_t> sizes = m.sizes().vec();
  sizes.back() = cols4;
  at::Tensor out = at::zeros(sizes, m.options().memory_format(at::MemoryFormat::Contiguous));
  out.narrow(-1, 0, cols).copy_(m);
  return out;
}

struct Launch {
  c10::cuda::CUDAGuard guard;
  cudaStream_t stream;
  explicit Launch(const at::Tensor& t) : guard(t.device()), stream(at::cuda::getCurrentCUDAStream()) {}
};

void scan_forward(const at::Tensor& gi, const at::Tensor& h0, const at::Tensor& w_hh, const at::Tensor& b_hh,
                  at::Tensor& out, at::Tensor& gates) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;  // the weights may require grad
  const Launch launch(gi);
  const int64_t B = gi.size(0), T = gi.size(1), H = h0.size(1);
  const at::Tensor w_t = pad4(w_hh.t()), bias = pad4(b_hh);  // [H, G4], [G4]
  check_launch(cuda::launch_scan_forward(f32(gi), f32(h0), f32(w_t), f32(bias), f32_out(out),
                                         gates.numel() ? f32_out(gates) : nullptr, B, T, H, launch.stream),
               "scan_forward");
}

void scan_backward(const at::Tensor& grad_out, const at::Tensor& gi, const at::Tensor& h0, const at::Tensor& w_hh,
                   const at::Tensor& b_hh, const at::Tensor& out, const at::Tensor& gates, at::Tensor& d_gi,
                   at::Tensor& d_h0, at::Tensor& d_w_hh, at::Tensor& d_b_hh) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;
  const Launch launch(gi);
  const int64_t B = gi.size(0), T = gi.size(1), H = h0.size(1), G = 3 * H;
  // Every step's hidden gates: kept by the forward, or recomputed at once (one GEMM).
  const at::Tensor h_prev = at::cat({h0.unsqueeze(1), out.narrow(1, 0, T - 1)}, 1);  // [B, T, H]
  const at::Tensor gh = gates.numel() ? gates : at::addmm(b_hh, h_prev.view({B * T, H}), w_hh.t());
  at::Tensor d_gh = at::empty({B, T, G}, gi.options());
  const at::Tensor w = pad4(w_hh);  // [3H, H4]
  check_launch(cuda::launch_scan_backward(f32(grad_out), f32(gi), f32(gh), f32(h0), f32(out), f32(w), f32_out(d_gi),
                                          f32_out(d_gh), f32_out(d_h0), B, T, H, launch.stream),
               "scan_backward");
  // The weight gradient: one GEMM over all steps.
  const at::Tensor d_gh2 = d_gh.view({B * T, G});
  at::mm_out(d_w_hh, d_gh2.t(), h_prev.view({B * T, H}));
  at::sum_out(d_b_hh, d_gh2, 0);
}

void decode_forward(const at::Tensor& h0, const at::Tensor& w_ih, const at::Tensor& b_ih, const at::Tensor& w_hh,
                    const at::Tensor& b_hh, const at::Tensor& w_out, const at::Tensor& b_out, at::Tensor& out,
                    at::Tensor& hidden) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;
  const Launch launch(h0);
  const int64_t B = h0.size(0), H = h0.size(1), T = out.size(1), C = out.size(2);
  const at::Tensor w_t = pad4(w_hh.t()), bias = pad4(b_hh);        // [H, G4], [G4]
  const at::Tensor head_t = pad4(w_out.t()), head_b = pad4(b_out);  // [H, C4], [C4]
  check_launch(cuda::launch_decode_forward(f32(h0), f32(w_ih), f32(b_ih), f32(w_t), f32(bias), f32(head_t),
                                           f32(head_b), f32_out(out), f32_out(hidden), B, T, H, C, launch.stream),
               "decode_forward");
}

void decode_backward(const at::Tensor& grad_out, const at::Tensor& grad_hidden, const at::Tensor& h0,
                     const at::Tensor& w_ih, const at::Tensor& b_ih, const at::Tensor& w_hh, const at::Tensor& b_hh,
                     const at::Tensor& w_out, const at::Tensor& b_out, const at::Tensor& out, const at::Tensor& hidden,
                     at::Tensor& d_h0, at::Tensor& d_w_ih, at::Tensor& d_b_ih, at::Tensor& d_w_hh, at::Tensor& d_b_hh,
                     at::Tensor& d_w_out, at::Tensor& d_b_out) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;
  const Launch launch(h0);
  const int64_t B = h0.size(0), H = h0.size(1), T = out.size(1), C = out.size(2), G = 3 * H;
  // Every step's gates at once from the saved outputs and states (two GEMMs), then the reverse loop.
  const at::Tensor h_prev = at::cat({h0.unsqueeze(1), hidden.narrow(1, 0, T - 1)}, 1);  // [B, T, H]
  const at::Tensor hp2 = h_prev.view({B * T, H}), out2 = out.view({B * T, C});
  const at::Tensor gi = at::addmm(b_ih, out2, w_ih.t()), gh = at::addmm(b_hh, hp2, w_hh.t());
  at::Tensor d_gi = at::empty({B, T, G}, h0.options()), d_gh = at::empty_like(d_gi);
  at::Tensor d_x = at::empty({B, T, C}, h0.options());
  const at::Tensor w = pad4(w_hh);  // [3H, H4]
  check_launch(cuda::launch_decode_backward(f32(grad_out), f32(grad_hidden), f32(gi), f32(gh), f32(h0), f32(hidden),
                                            f32(w_ih), f32(w), f32(w_out), f32_out(d_gi), f32_out(d_gh), f32_out(d_x),
                                            f32_out(d_h0), B, T, H, C, launch.stream),
               "decode_backward");
  // Every weight gradient: one GEMM over all steps.
  const at::Tensor dgi2 = d_gi.view({B * T, G}), dgh2 = d_gh.view({B * T, G}), dx2 = d_x.view({B * T, C});
  at::mm_out(d_w_ih, dgi2.t(), out2);
  at::sum_out(d_b_ih, dgi2, 0);
  at::mm_out(d_w_hh, dgh2.t(), hp2);
  at::sum_out(d_b_hh, dgh2, 0);
  at::mm_out(d_w_out, dx2.t(), hp2);
  at::sum_out(d_b_out, dx2, 0);
}

void sample(const at::Tensor& h0, const at::Tensor& emb, const at::Tensor& cond, const at::Tensor& w_hh,
            const at::Tensor& b_hh, const at::Tensor& w_out, const at::Tensor& b_out, double temperature, int64_t seed,
            int64_t row_offset, const std::optional<at::Tensor>& known, at::Tensor& values) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;
  const Launch launch(h0);
  const int64_t B = h0.size(0), H = h0.size(1), C = w_out.size(0), K = w_out.size(1), T = values.size(1);
  const at::Tensor w_t = pad4(w_hh.t()), bias = pad4(b_hh);                   // [H, G4], [G4]
  const at::Tensor head_t = pad4(w_out.transpose(1, 2)), head_b = pad4(b_out);  // [C, H, K4], [C, K4]
  const int64_t* known_p = known.has_value() ? known->const_data_ptr<int64_t>() : nullptr;
  check_launch(cuda::launch_sample(f32(h0), f32(emb), f32(cond), f32(w_t), f32(bias), f32(head_t), f32(head_b),
                                   static_cast<float>(temperature), static_cast<uint64_t>(seed), row_offset, known_p,
                                   values.mutable_data_ptr<int64_t>(), B, T, H, C, K, launch.stream),
               "sample");
}

}  // namespace
}  // namespace rnngen

TORCH_LIBRARY(rnngen_cuda, m) {
  m.def("philox_uniform(int seed, Tensor offset) -> Tensor");
  rnngen::define_kernels(m, "gru", false);  // the GRU's five kernels (the other cells: cpu only)
}

TORCH_LIBRARY_IMPL(rnngen_cuda, CUDA, m) {
  m.impl("philox_uniform", &rnngen::philox_uniform_cuda);
  m.impl("scan_forward", &rnngen::scan_forward);
  m.impl("scan_backward", &rnngen::scan_backward);
  m.impl("decode_forward", &rnngen::decode_forward);
  m.impl("decode_backward", &rnngen::decode_backward);
  m.impl("sample", &rnngen::sample);
}
