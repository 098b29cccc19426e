// rnngen._cuda: the torch binding of the CUDA kernels (ops in the namespace rnngen_cuda, with
// exactly the schemas of rnngen_cpu: both take them from csrc/common/schemas.h), for every cell:
// the GRU's five kernels under their plain names, the LSTM's and the Elman cells' prefixed with
// the cell's name (lstm_scan_forward, rnn_tanh_sample, ...). A kernel named like one of
// rnngen.dispatch.KERNELS (for a cell of rnngen.dispatch.CELL_NAMES) becomes the "cuda"
// backend's kernel (float32, bfloat16 and float16: see "bfloat16 and float16" below). The op layer
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
#include "plan.h"

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

using cuda::CellKind;

constexpr int gates_of(CellKind cell) {
  return cell == CellKind::gru ? 3 : cell == CellKind::lstm ? 4 : 1;
}

// The cell-state pointers of the LSTM's kernels (null for the other cells, whose adapters below
// pass undefined tensors; an empty grad_c, the cell states unused by the loss, reads as zero).
const float* state_in(CellKind cell, const at::Tensor& t) {
  return cell == CellKind::lstm && t.defined() && t.numel() ? f32(t) : nullptr;
}
float* state_out(CellKind cell, at::Tensor& t) { return cell == CellKind::lstm ? f32_out(t) : nullptr; }

// The states before every step: [B, T, H], state0 then the states after steps 0 .. T-2.
at::Tensor previous(const at::Tensor& state0, const at::Tensor& states) {
  return at::cat({state0.unsqueeze(1), states.narrow(1, 0, states.size(1) - 1)}, 1);
}

// ---- bfloat16 and float16 ----
// The kernels keep the state, the gates and every sum in float32, whatever the op's dtype: a
// bf16/fp16 call runs on float32 copies of its inputs, into float32 buffers that are copied into
// its outputs at the end (one elementwise pass each, small beside the sequential loop; the
// weights are copied anyway, transposed and padded for the kernels). The forward kernels' sm_90
// cluster variants multiply tiles of 16 rows on tensor cores with operands in the op's dtype.
bool low_precision(const at::Tensor& t) { return t.scalar_type() == at::kBFloat16 || t.scalar_type() == at::kHalf; }
// the forward kernels' tensor-core operand type (launchers.h): 1 bf16, 2 fp16 for those dtypes; a
// float32 op 3 (TF32) where torch allows TF32 matmuls (torch.backends.cuda.matmul.allow_tf32, the
// triton backend's switch too), else 0 (float32 products)
int operand_of(const at::Tensor& t) {
  if (t.scalar_type() == at::kBFloat16) return 1;
  if (t.scalar_type() == at::kHalf) return 2;
  return at::globalContext().allowTF32CuBLAS() ? 3 : 0;
}
at::Tensor as_f32(const at::Tensor& t) { return t.defined() && t.numel() ? t.to(at::kFloat) : t; }
at::Tensor f32_buffer(const at::Tensor& t) { return t.defined() ? at::empty(t.sizes(), t.options().dtype(at::kFloat)) : t; }
void copy_back(at::Tensor& dst, const at::Tensor& src) {
  if (dst.defined() && dst.numel()) dst.copy_(src);
}

// ---- the kernels of any cell (the LSTM's arguments; the other cells' adapters follow) ----

void scan_forward_any(CellKind cell, const at::Tensor& gi, const at::Tensor& h0, const at::Tensor& c0,
                      const at::Tensor& w_hh, const at::Tensor& b_hh, at::Tensor& out, at::Tensor& c_out,
                      at::Tensor& gates, int operand = -1) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;  // the weights may require grad
  if (low_precision(gi)) {
    at::Tensor out32 = f32_buffer(out), c_out32 = f32_buffer(c_out), gates32 = f32_buffer(gates);
    scan_forward_any(cell, as_f32(gi), as_f32(h0), as_f32(c0), as_f32(w_hh), as_f32(b_hh), out32, c_out32, gates32,
                     operand_of(gi));
    copy_back(out, out32);
    copy_back(c_out, c_out32);
    copy_back(gates, gates32);
    return;
  }
  const Launch launch(gi);
  const int64_t B = gi.size(0), T = gi.size(1), H = h0.size(1);
  const at::Tensor w_t = pad4(w_hh.t()), bias = pad4(b_hh);  // [H, G4], [G4]
  check_launch(cuda::launch_scan_forward(cell, f32(gi), f32(h0), state_in(cell, c0), f32(w_t), f32(bias),
                                         f32_out(out), state_out(cell, c_out),
                                         gates.numel() ? f32_out(gates) : nullptr, B, T, H, launch.stream,
                                         operand < 0 ? operand_of(gi) : operand),
               "scan_forward");
}

void scan_backward_any(CellKind cell, const at::Tensor& grad_out, const at::Tensor& grad_c, const at::Tensor& gi,
                       const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_hh, const at::Tensor& b_hh,
                       const at::Tensor& out, const at::Tensor& c_out, const at::Tensor& gates, at::Tensor& d_gi,
                       at::Tensor& d_h0, at::Tensor& d_c0, at::Tensor& d_w_hh, at::Tensor& d_b_hh) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;
  if (low_precision(gi)) {
    at::Tensor d_gi32 = f32_buffer(d_gi), d_h032 = f32_buffer(d_h0), d_c032 = f32_buffer(d_c0),
               d_w_hh32 = f32_buffer(d_w_hh), d_b_hh32 = f32_buffer(d_b_hh);
    scan_backward_any(cell, as_f32(grad_out), as_f32(grad_c), as_f32(gi), as_f32(h0), as_f32(c0), as_f32(w_hh),
                      as_f32(b_hh), as_f32(out), as_f32(c_out), as_f32(gates), d_gi32, d_h032, d_c032, d_w_hh32,
                      d_b_hh32);
    copy_back(d_gi, d_gi32);
    copy_back(d_h0, d_h032);
    copy_back(d_c0, d_c032);
    copy_back(d_w_hh, d_w_hh32);
    copy_back(d_b_hh, d_b_hh32);
    return;
  }
  const Launch launch(gi);
  const int64_t B = gi.size(0), T = gi.size(1), H = h0.size(1), G = gates_of(cell) * H;
  const at::Tensor h_prev = previous(h0, out);  // [B, T, H]
  // Every step's hidden gates: kept by the forward, or recomputed at once (one GEMM); the Elman
  // cells' backward needs only the states.
  const bool uses_gates = cell == CellKind::gru || cell == CellKind::lstm;
  const at::Tensor gh = !uses_gates ? at::Tensor()
                        : gates.numel() ? gates
                                        : at::addmm(b_hh, h_prev.view({B * T, H}), w_hh.t());
  // the GRU's hidden-gate gradients differ from its input-gate ones; the other cells' are d_gi
  at::Tensor d_gh = cell == CellKind::gru ? at::empty({B, T, G}, gi.options()) : d_gi;
  const at::Tensor w = pad4(w_hh);  // [G, H4]
  check_launch(cuda::launch_scan_backward(cell, f32(grad_out), state_in(cell, grad_c), uses_gates ? f32(gi) : nullptr,
                                          uses_gates ? f32(gh) : nullptr, f32(h0), state_in(cell, c0), f32(out),
                                          state_in(cell, c_out), f32(w), f32_out(d_gi),
                                          cell == CellKind::gru ? f32_out(d_gh) : nullptr, f32_out(d_h0),
                                          state_out(cell, d_c0), B, T, H, launch.stream),
               "scan_backward");
  // The weight gradient: one GEMM over all steps.
  const at::Tensor d_gh2 = d_gh.view({B * T, G});
  at::mm_out(d_w_hh, d_gh2.t(), h_prev.view({B * T, H}));
  at::sum_out(d_b_hh, d_gh2, 0);
}

void decode_forward_any(CellKind cell, const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_ih,
                        const at::Tensor& b_ih, const at::Tensor& w_hh, const at::Tensor& b_hh,
                        const at::Tensor& w_out, const at::Tensor& b_out, at::Tensor& out, at::Tensor& hidden,
                        at::Tensor& c_hidden, int operand = -1) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;
  if (low_precision(h0)) {
    at::Tensor out32 = f32_buffer(out), hidden32 = f32_buffer(hidden), c_hidden32 = f32_buffer(c_hidden);
    decode_forward_any(cell, as_f32(h0), as_f32(c0), as_f32(w_ih), as_f32(b_ih), as_f32(w_hh), as_f32(b_hh),
                       as_f32(w_out), as_f32(b_out), out32, hidden32, c_hidden32, operand_of(h0));
    copy_back(out, out32);
    copy_back(hidden, hidden32);
    copy_back(c_hidden, c_hidden32);
    return;
  }
  const Launch launch(h0);
  const int64_t B = h0.size(0), H = h0.size(1), T = out.size(1), C = out.size(2);
  const at::Tensor w_t = pad4(w_hh.t()), bias = pad4(b_hh);        // [H, G4], [G4]
  const at::Tensor head_t = pad4(w_out.t()), head_b = pad4(b_out);  // [H, C4], [C4]
  check_launch(cuda::launch_decode_forward(cell, f32(h0), state_in(cell, c0), f32(w_ih), f32(b_ih), f32(w_t),
                                           f32(bias), f32(head_t), f32(head_b), f32_out(out), f32_out(hidden),
                                           state_out(cell, c_hidden), B, T, H, C, launch.stream,
                                           operand < 0 ? operand_of(h0) : operand),
               "decode_forward");
}

void decode_backward_any(CellKind cell, const at::Tensor& grad_out, const at::Tensor& grad_hidden,
                         const at::Tensor& grad_c, const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_ih,
                         const at::Tensor& b_ih, const at::Tensor& w_hh, const at::Tensor& b_hh,
                         const at::Tensor& w_out, const at::Tensor& b_out, const at::Tensor& out,
                         const at::Tensor& hidden, const at::Tensor& c_hidden, at::Tensor& d_h0, at::Tensor& d_c0,
                         at::Tensor& d_w_ih, at::Tensor& d_b_ih, at::Tensor& d_w_hh, at::Tensor& d_b_hh,
                         at::Tensor& d_w_out, at::Tensor& d_b_out) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;
  if (low_precision(h0)) {
    at::Tensor outs[8] = {d_h0, d_c0, d_w_ih, d_b_ih, d_w_hh, d_b_hh, d_w_out, d_b_out};
    at::Tensor o32[8];
    for (int i = 0; i < 8; ++i) o32[i] = f32_buffer(outs[i]);
    decode_backward_any(cell, as_f32(grad_out), as_f32(grad_hidden), as_f32(grad_c), as_f32(h0), as_f32(c0),
                        as_f32(w_ih), as_f32(b_ih), as_f32(w_hh), as_f32(b_hh), as_f32(w_out), as_f32(b_out),
                        as_f32(out), as_f32(hidden), as_f32(c_hidden), o32[0], o32[1], o32[2], o32[3], o32[4],
                        o32[5], o32[6], o32[7]);
    for (int i = 0; i < 8; ++i) copy_back(outs[i], o32[i]);
    return;
  }
  const Launch launch(h0);
  const int64_t B = h0.size(0), H = h0.size(1), T = out.size(1), C = out.size(2), G = gates_of(cell) * H;
  // Every step's gates at once from the saved outputs and states (two GEMMs; the Elman cells'
  // backward needs only the states), then the reverse loop.
  const at::Tensor h_prev = previous(h0, hidden);  // [B, T, H]
  const at::Tensor hp2 = h_prev.view({B * T, H}), out2 = out.view({B * T, C});
  const bool uses_gates = cell == CellKind::gru || cell == CellKind::lstm;
  const at::Tensor gi = uses_gates ? at::addmm(b_ih, out2, w_ih.t()) : at::Tensor();
  const at::Tensor gh = uses_gates ? at::addmm(b_hh, hp2, w_hh.t()) : at::Tensor();
  at::Tensor d_gi = at::empty({B, T, G}, h0.options());
  at::Tensor d_gh = cell == CellKind::gru ? at::empty_like(d_gi) : d_gi;  // the other cells': equal
  at::Tensor d_x = at::empty({B, T, C}, h0.options());
  const at::Tensor w = pad4(w_hh);  // [G, H4]
  check_launch(cuda::launch_decode_backward(cell, f32(grad_out), f32(grad_hidden), state_in(cell, grad_c),
                                            uses_gates ? f32(gi) : nullptr, uses_gates ? f32(gh) : nullptr, f32(h0),
                                            state_in(cell, c0), f32(hidden), state_in(cell, c_hidden), f32(w_ih),
                                            f32(w), f32(w_out), f32_out(d_gi),
                                            cell == CellKind::gru ? f32_out(d_gh) : nullptr, f32_out(d_x),
                                            f32_out(d_h0), state_out(cell, d_c0), B, T, H, C, launch.stream),
               "decode_backward");
  // Every weight gradient: one GEMM over all steps.
  const at::Tensor dgi2 = d_gi.view({B * T, G}), dgh2 = d_gh.view({B * T, G}), dx2 = d_x.view({B * T, C});
  at::mm_out(d_w_ih, dgi2.t(), out2);
  at::sum_out(d_b_ih, dgi2, 0);
  at::mm_out(d_w_hh, dgh2.t(), hp2);
  if (cell == CellKind::gru)
    at::sum_out(d_b_hh, dgh2, 0);
  else
    d_b_hh.copy_(d_b_ih);
  at::mm_out(d_w_out, dx2.t(), hp2);
  at::sum_out(d_b_out, dx2, 0);
}

void sample_any(CellKind cell, const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& emb,
                const at::Tensor& lag_emb, at::IntArrayRef lags, const at::Tensor& cond, const at::Tensor& w_hh,
                const at::Tensor& b_hh, const at::Tensor& w_out, const at::Tensor& b_out, double temperature,
                int64_t seed, int64_t row_offset, const std::optional<at::Tensor>& known, at::Tensor& values) {
  const at::AutoDispatchBelowADInplaceOrView below_autograd;
  if (low_precision(h0)) {  // the values are int64 whatever the dtype: only the inputs change
    sample_any(cell, as_f32(h0), as_f32(c0), as_f32(emb), as_f32(lag_emb), lags, as_f32(cond), as_f32(w_hh),
               as_f32(b_hh), as_f32(w_out), as_f32(b_out), temperature, seed, row_offset, known, values);
    return;
  }
  const Launch launch(h0);
  const int64_t B = h0.size(0), H = h0.size(1), C = w_out.size(0), K = w_out.size(1), T = values.size(1);
  // the op layer checked these; the kernel takes the lags in its parameters
  const int64_t L = static_cast<int64_t>(lags.size());
  TORCH_CHECK(L <= cuda::kMaxLags && lag_emb.size(0) == L, "sample: at most ", cuda::kMaxLags,
              " lags, one lag_emb table each; got ", L, " lags and ", lag_emb.size(0), " tables");
  const at::Tensor w_t = pad4(w_hh.t()), bias = pad4(b_hh);                   // [H, G4], [G4]
  const at::Tensor head_t = pad4(w_out.transpose(1, 2)), head_b = pad4(b_out);  // [C, H, K4], [C, K4]
  const int64_t* known_p = known.has_value() ? known->const_data_ptr<int64_t>() : nullptr;
  const float* lag_p = L ? f32(lag_emb) : nullptr;  // [L, C, K, G]
  check_launch(cuda::launch_sample(cell, f32(h0), state_in(cell, c0), f32(emb), lag_p, lags.data(), L, f32(cond),
                                   f32(w_t), f32(bias), f32(head_t), f32(head_b), static_cast<float>(temperature),
                                   static_cast<uint64_t>(seed), row_offset, known_p,
                                   values.mutable_data_ptr<int64_t>(), B, T, H, C, K, launch.stream),
               "sample");
}

// ---- the schemas' entry points: the LSTM's take the cell state, the others' (the GRU's and
// the Elman cells') the GRU's arguments ----

template <CellKind Cell>
void scan_forward(const at::Tensor& gi, const at::Tensor& h0, const at::Tensor& w_hh, const at::Tensor& b_hh,
                  at::Tensor& out, at::Tensor& gates) {
  at::Tensor none;
  scan_forward_any(Cell, gi, h0, none, w_hh, b_hh, out, none, gates);
}

template <CellKind Cell>
void scan_backward(const at::Tensor& grad_out, const at::Tensor& gi, const at::Tensor& h0, const at::Tensor& w_hh,
                   const at::Tensor& b_hh, const at::Tensor& out, const at::Tensor& gates, at::Tensor& d_gi,
                   at::Tensor& d_h0, at::Tensor& d_w_hh, at::Tensor& d_b_hh) {
  at::Tensor none;
  scan_backward_any(Cell, grad_out, none, gi, h0, none, w_hh, b_hh, out, none, gates, d_gi, d_h0, none, d_w_hh,
                    d_b_hh);
}

template <CellKind Cell>
void decode_forward(const at::Tensor& h0, const at::Tensor& w_ih, const at::Tensor& b_ih, const at::Tensor& w_hh,
                    const at::Tensor& b_hh, const at::Tensor& w_out, const at::Tensor& b_out, at::Tensor& out,
                    at::Tensor& hidden) {
  at::Tensor none;
  decode_forward_any(Cell, h0, none, w_ih, b_ih, w_hh, b_hh, w_out, b_out, out, hidden, none);
}

template <CellKind Cell>
void decode_backward(const at::Tensor& grad_out, const at::Tensor& grad_hidden, const at::Tensor& h0,
                     const at::Tensor& w_ih, const at::Tensor& b_ih, const at::Tensor& w_hh, const at::Tensor& b_hh,
                     const at::Tensor& w_out, const at::Tensor& b_out, const at::Tensor& out, const at::Tensor& hidden,
                     at::Tensor& d_h0, at::Tensor& d_w_ih, at::Tensor& d_b_ih, at::Tensor& d_w_hh, at::Tensor& d_b_hh,
                     at::Tensor& d_w_out, at::Tensor& d_b_out) {
  at::Tensor none;
  decode_backward_any(Cell, grad_out, grad_hidden, none, h0, none, w_ih, b_ih, w_hh, b_hh, w_out, b_out, out, hidden,
                      none, d_h0, none, d_w_ih, d_b_ih, d_w_hh, d_b_hh, d_w_out, d_b_out);
}

template <CellKind Cell>
void sample(const at::Tensor& h0, const at::Tensor& emb, const at::Tensor& lag_emb, at::IntArrayRef lags,
            const at::Tensor& cond, const at::Tensor& w_hh, const at::Tensor& b_hh, const at::Tensor& w_out,
            const at::Tensor& b_out, double temperature, int64_t seed, int64_t row_offset,
            const std::optional<at::Tensor>& known, at::Tensor& values) {
  sample_any(Cell, h0, at::Tensor(), emb, lag_emb, lags, cond, w_hh, b_hh, w_out, b_out, temperature, seed,
             row_offset, known, values);
}

void lstm_scan_forward(const at::Tensor& gi, const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_hh,
                       const at::Tensor& b_hh, at::Tensor& out, at::Tensor& c_out, at::Tensor& gates) {
  scan_forward_any(CellKind::lstm, gi, h0, c0, w_hh, b_hh, out, c_out, gates);
}

void lstm_scan_backward(const at::Tensor& grad_out, const at::Tensor& grad_c, const at::Tensor& gi,
                        const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_hh, const at::Tensor& b_hh,
                        const at::Tensor& out, const at::Tensor& c_out, const at::Tensor& gates, at::Tensor& d_gi,
                        at::Tensor& d_h0, at::Tensor& d_c0, at::Tensor& d_w_hh, at::Tensor& d_b_hh) {
  scan_backward_any(CellKind::lstm, grad_out, grad_c, gi, h0, c0, w_hh, b_hh, out, c_out, gates, d_gi, d_h0, d_c0,
                    d_w_hh, d_b_hh);
}

void lstm_decode_forward(const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_ih, const at::Tensor& b_ih,
                         const at::Tensor& w_hh, const at::Tensor& b_hh, const at::Tensor& w_out,
                         const at::Tensor& b_out, at::Tensor& out, at::Tensor& hidden, at::Tensor& c_hidden) {
  decode_forward_any(CellKind::lstm, h0, c0, w_ih, b_ih, w_hh, b_hh, w_out, b_out, out, hidden, c_hidden);
}

void lstm_decode_backward(const at::Tensor& grad_out, const at::Tensor& grad_hidden, const at::Tensor& grad_c,
                          const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_ih, const at::Tensor& b_ih,
                          const at::Tensor& w_hh, const at::Tensor& b_hh, const at::Tensor& w_out,
                          const at::Tensor& b_out, const at::Tensor& out, const at::Tensor& hidden,
                          const at::Tensor& c_hidden, at::Tensor& d_h0, at::Tensor& d_c0, at::Tensor& d_w_ih,
                          at::Tensor& d_b_ih, at::Tensor& d_w_hh, at::Tensor& d_b_hh, at::Tensor& d_w_out,
                          at::Tensor& d_b_out) {
  decode_backward_any(CellKind::lstm, grad_out, grad_hidden, grad_c, h0, c0, w_ih, b_ih, w_hh, b_hh, w_out, b_out,
                      out, hidden, c_hidden, d_h0, d_c0, d_w_ih, d_b_ih, d_w_hh, d_b_hh, d_w_out, d_b_out);
}

void lstm_sample(const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& emb, const at::Tensor& lag_emb,
                 at::IntArrayRef lags, const at::Tensor& cond, const at::Tensor& w_hh, const at::Tensor& b_hh,
                 const at::Tensor& w_out, const at::Tensor& b_out, double temperature, int64_t seed,
                 int64_t row_offset, const std::optional<at::Tensor>& known, at::Tensor& values) {
  sample_any(CellKind::lstm, h0, c0, emb, lag_emb, lags, cond, w_hh, b_hh, w_out, b_out, temperature, seed,
             row_offset, known, values);
}

}  // namespace
}  // namespace rnngen

TORCH_LIBRARY(rnngen_cuda, m) {
  m.def("philox_uniform(int seed, Tensor offset) -> Tensor");
  rnngen::define_kernels(m, "gru", false);  // the GRU's five kernels
  rnngen::define_kernels(m, "lstm", true);
  rnngen::define_kernels(m, "rnn_tanh", false);
  rnngen::define_kernels(m, "rnn_relu", false);
}

TORCH_LIBRARY_IMPL(rnngen_cuda, CUDA, m) {
  using rnngen::cuda::CellKind;
  m.impl("philox_uniform", &rnngen::philox_uniform_cuda);
  m.impl("scan_forward", &rnngen::scan_forward<CellKind::gru>);
  m.impl("scan_backward", &rnngen::scan_backward<CellKind::gru>);
  m.impl("decode_forward", &rnngen::decode_forward<CellKind::gru>);
  m.impl("decode_backward", &rnngen::decode_backward<CellKind::gru>);
  m.impl("sample", &rnngen::sample<CellKind::gru>);
  m.impl("lstm_scan_forward", &rnngen::lstm_scan_forward);
  m.impl("lstm_scan_backward", &rnngen::lstm_scan_backward);
  m.impl("lstm_decode_forward", &rnngen::lstm_decode_forward);
  m.impl("lstm_decode_backward", &rnngen::lstm_decode_backward);
  m.impl("lstm_sample", &rnngen::lstm_sample);
  m.impl("rnn_tanh_scan_forward", &rnngen::scan_forward<CellKind::rnn_tanh>);
  m.impl("rnn_tanh_scan_backward", &rnngen::scan_backward<CellKind::rnn_tanh>);
  m.impl("rnn_tanh_decode_forward", &rnngen::decode_forward<CellKind::rnn_tanh>);
  m.impl("rnn_tanh_decode_backward", &rnngen::decode_backward<CellKind::rnn_tanh>);
  m.impl("rnn_tanh_sample", &rnngen::sample<CellKind::rnn_tanh>);
  m.impl("rnn_relu_scan_forward", &rnngen::scan_forward<CellKind::rnn_relu>);
  m.impl("rnn_relu_scan_backward", &rnngen::scan_backward<CellKind::rnn_relu>);
  m.impl("rnn_relu_decode_forward", &rnngen::decode_forward<CellKind::rnn_relu>);
  m.impl("rnn_relu_decode_backward", &rnngen::decode_backward<CellKind::rnn_relu>);
  m.impl("rnn_relu_sample", &rnngen::sample<CellKind::rnn_relu>);
}
