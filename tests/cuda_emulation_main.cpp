// Runs one fused CUDA kernel of csrc/cuda on the CPU (tests/cuda_emulation.h), the way its
// launcher would (plan_* from plan.h for a pretend device), on inputs the test wrote to a folder:
//
//   cuda_emulation [CELL_]KERNEL DIR SMS SMEM_LIMIT [streamed]
//
// "streamed" keeps every weight in global memory whatever the plan says (the path large H takes).
// CELL_: lstm_, rnn_tanh_ or rnn_relu_ (as rnngen.dispatch names the ops), none for the GRU.
// KERNEL: sample, scan_forward, scan_backward, decode_forward, decode_backward, and the sm_90
// variants sample_cluster, scan_forward_cluster, scan_backward_cluster, decode_forward_cluster,
// decode_backward_cluster, and the grid-split scan_forward_grid, scan_backward_grid, sample_grid,
// decode_forward_grid, decode_backward_grid (SMS: the blocks the grid may have). DIR holds dims.txt
// ("B T H C K temperature seed row_offset has_known has_gates") and one raw little-endian file
// per array (float32, or int64 for known/values/lags), in the layouts of csrc/cuda/launchers.h;
// the LSTM's cell-state arrays (c0, c_out, grad_c, c_hidden) are read only for the LSTM, the
// gates gi, gh of the backward kernels not for the Elman cells (as the binding: null pointers);
// an absent grad_c reads as zero, absent lags (and lag_emb) of sample as no lags. Outputs are
// written there too (d_gh: the GRU only; d_c0: the LSTM only). Prints the plan that ran.
#include "cuda_emulation.h"

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

#include "cuda/decode.cu"
#include "cuda/sample.cu"
#include "cuda/scan.cu"

using namespace rnngen::cuda;

static std::string dir;

template <typename T>
static std::vector<T> load(const char* name) {
  std::ifstream f(dir + "/" + name, std::ios::binary | std::ios::ate);
  if (!f) {
    std::fprintf(stderr, "missing %s\n", name);
    std::exit(2);
  }
  const std::streamsize bytes = f.tellg();
  std::vector<T> v(static_cast<size_t>(bytes) / sizeof(T));
  f.seekg(0);
  f.read(reinterpret_cast<char*>(v.data()), bytes);
  return v;
}

template <typename T>
static void save(const char* name, const std::vector<T>& v) {
  std::ofstream f(dir + "/" + name, std::ios::binary);
  f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(T)));
}

template <typename Args>
static void launch(void (*k1)(Args), void (*k2)(Args), void (*k4)(Args), void (*k8)(Args), const KernelPlan& p,
                   const Args& a) {
  if (p.rows == 0) std::exit(3);
  std::printf("rows=%d weights_on_chip=%d head_on_chip=%d smem=%lld blocks=%lld\n", p.rows, p.weights_on_chip,
              p.head_on_chip, static_cast<long long>(p.smem_bytes), static_cast<long long>(p.blocks));
  emu::run_grid(p.rows == 1 ? k1 : p.rows == 2 ? k2 : p.rows == 4 ? k4 : k8, p.blocks, p.smem_bytes, a);
}

template <typename T>
static std::vector<T> load_if(bool wanted, const char* name) {
  if (!wanted || !std::ifstream(dir + "/" + name)) return {};
  return load<T>(name);
}

template <typename T>
static T* ptr(std::vector<T>& v) {
  return v.empty() ? nullptr : v.data();
}
template <typename T>
static const T* ptr(const std::vector<T>& v) {
  return v.empty() ? nullptr : v.data();
}

struct Dims {
  long B, T, H, C, K, row_offset, has_known, has_gates, operand;
  float temperature;
  unsigned long long seed;
  int sms;
  long limit;
  bool streamed;
};

template <typename Kernel>
static Kernel pick(int rows, Kernel k1, Kernel k2, Kernel k4, Kernel k8, Kernel k16) {  // the cluster variants
  return rows == 1 ? k1 : rows == 2 ? k2 : rows == 4 ? k4 : rows == 8 ? k8 : k16;
}

static void show_grid(const GridPlan& p) {
  std::printf("rows=%d weights_on_chip=1 head_on_chip=0 smem=%lld blocks=%d units=%lld\n", p.rows,
              static_cast<long long>(p.smem_bytes), p.blocks, static_cast<long long>(p.units));
}

static void show_cluster(const ClusterPlan& p, bool head) {
  std::printf("rows=%d weights_on_chip=1 head_on_chip=%d smem=%lld blocks=%lld tensor_cores=%d\n", p.rows,
              head ? 1 : 0, static_cast<long long>(p.smem_bytes), static_cast<long long>(p.clusters * kClusterBlocks),
              p.tensor_cores ? 1 : 0);
}

template <class Cell>
static int run(const std::string& kernel, const Dims& d) {
  constexpr bool cs = Cell::kCellState, gates_read = Cell::kUsesGates;
  const long B = d.B, T = d.T, H = d.H, C = d.C, K = d.K, G = Cell::kGates * d.H;
  const int b = static_cast<int>(B), t = static_cast<int>(T), h = static_cast<int>(H), c = static_cast<int>(C),
            k = static_cast<int>(K);
  const CellLayout layout = Cell::kLayout;
  if (kernel == "sample" || kernel == "sample_cluster" || kernel == "sample_grid") {
    const auto h0 = load<float>("h0"), c0 = load_if<float>(cs, "c0"), emb = load<float>("emb"),
               cond = load<float>("cond");
    const auto w = load<float>("w_hh_t"), bh = load<float>("b_hh"), head = load<float>("w_out_t"),
               bo = load<float>("b_out");
    const auto known = d.has_known ? load<int64_t>("known") : std::vector<int64_t>();
    const auto lags = load_if<int64_t>(true, "lags");
    const auto lag_emb = load_if<float>(!lags.empty(), "lag_emb");
    Lags lag;
    if (!make_lags(ptr(lags), static_cast<int64_t>(lags.size()), T, lag)) return 4;  // the launcher's check
    std::vector<int64_t> values(B * T, -7);
    SampleArgs a{h0.data(), ptr(c0), emb.data(), ptr(lag_emb), lag, cond.data(), w.data(), bh.data(), head.data(),
                 bo.data(), ptr(known), values.data(), b, t, h, c, k, d.temperature, d.seed, d.row_offset, false,
                 false};
    if (kernel == "sample") {
      KernelPlan p = plan_sample(B, H, C, K, d.sms, d.limit, layout);
      if (d.streamed) p.weights_on_chip = p.head_on_chip = false;
      a.weights_on_chip = p.weights_on_chip;
      a.head_on_chip = p.head_on_chip;
      launch(sample_kernel<Cell, 1>, sample_kernel<Cell, 2>, sample_kernel<Cell, 4>, sample_kernel<Cell, 8>, p, a);
    } else if (kernel == "sample_cluster") {
      const ClusterPlan p = plan_sample_cluster(B, H, C, K, d.sms, d.limit, layout);  // SMS: clusters at once
      if (p.rows == 0) return 3;
      show_cluster(p, true);
      const int S = static_cast<int>(p.units), KQ = static_cast<int>(p.head_cols);
      emu::run_blocks(pick(p.rows, sample_split_kernel<Cell, 1, Cluster>, sample_split_kernel<Cell, 2, Cluster>,
                           sample_split_kernel<Cell, 4, Cluster>, sample_split_kernel<Cell, 8, Cluster>,
                           sample_split_kernel<Cell, 16, Cluster>),
                      p.clusters * kClusterBlocks, kClusterBlocks, p.smem_bytes, a, S, KQ, GroupArgs{});
    }
    if (kernel == "sample_grid") {
      const GridPlan p = plan_sample_grid(B, H, C, K, d.sms, d.limit, layout);  // SMS: the device's
      if (p.rows == 0) return 3;
      std::vector<float> exchange(static_cast<size_t>(p.exchange) * p.blocks, NAN);
      show_grid(p);
      emu::run_blocks(pick(p.rows, sample_split_kernel<Cell, 1, GridGroup>, sample_split_kernel<Cell, 2, GridGroup>,
                           sample_split_kernel<Cell, 4, GridGroup>, sample_split_kernel<Cell, 8, GridGroup>,
                           sample_split_kernel<Cell, 16, GridGroup>),
                      p.blocks, p.blocks, p.smem_bytes, a, static_cast<int>(p.units), static_cast<int>(p.head_cols),
                      GroupArgs{exchange.data(), p.exchange, p.blocks});
    }
    save("values", values);
  } else if (kernel == "scan_forward" || kernel == "scan_forward_cluster" || kernel == "scan_forward_grid") {
    const auto gi = load<float>("gi"), h0 = load<float>("h0"), c0 = load_if<float>(cs, "c0"),
               w = load<float>("w_hh_t"), bh = load<float>("b_hh");
    std::vector<float> out(B * T * H, NAN), c_out(cs ? B * T * H : 0, NAN), gates(d.has_gates ? B * T * G : 0, NAN);
    ScanForwardArgs a{gi.data(), h0.data(), ptr(c0), w.data(), bh.data(), out.data(), ptr(c_out), ptr(gates),
                      b, t, h, false};
    if (kernel == "scan_forward") {
      KernelPlan p = plan_scan_forward(B, H, d.sms, d.limit, layout);
      if (d.streamed) p.weights_on_chip = p.head_on_chip = false;
      a.weights_on_chip = p.weights_on_chip;
      launch(scan_forward_kernel<Cell, 1>, scan_forward_kernel<Cell, 2>, scan_forward_kernel<Cell, 4>,
             scan_forward_kernel<Cell, 8>, p, a);
    } else if (kernel == "scan_forward_cluster") {
      const ClusterPlan p = plan_scan_forward_cluster(B, H, d.sms, d.limit, layout, static_cast<int>(d.operand));
      if (p.rows == 0) return 3;
      show_cluster(p, false);
      a.operand = p.tensor_cores ? static_cast<Operand>(d.operand) : Operand::f32;
      emu::run_blocks(pick(p.rows, scan_forward_split_kernel<Cell, 1, Cluster>, scan_forward_split_kernel<Cell, 2, Cluster>,
                           scan_forward_split_kernel<Cell, 4, Cluster>, scan_forward_split_kernel<Cell, 8, Cluster>,
                           scan_forward_split_kernel<Cell, 16, Cluster>),
                      p.clusters * kClusterBlocks, kClusterBlocks, p.smem_bytes, a, static_cast<int>(p.units),
                      GroupArgs{});
    } else {
      const GridPlan p = plan_scan_forward_grid(B, H, d.sms, d.limit, layout);  // SMS: the device's
      if (p.rows == 0) return 3;
      std::vector<float> exchange(static_cast<size_t>(p.exchange) * p.blocks, NAN);
      show_grid(p);
      emu::run_blocks(pick(p.rows, scan_forward_split_kernel<Cell, 1, GridGroup>,
                           scan_forward_split_kernel<Cell, 2, GridGroup>, scan_forward_split_kernel<Cell, 4, GridGroup>,
                           scan_forward_split_kernel<Cell, 8, GridGroup>, scan_forward_split_kernel<Cell, 16, GridGroup>),
                      p.blocks, p.blocks, p.smem_bytes, a, static_cast<int>(p.units),
                      GroupArgs{exchange.data(), p.exchange, p.blocks});
    }
    save("out", out);
    save("gates", gates);
    if (cs) save("c_out", c_out);
  } else if (kernel == "scan_backward" || kernel == "scan_backward_cluster" || kernel == "scan_backward_grid") {
    const auto go = load<float>("grad_out"), gc = load_if<float>(cs, "grad_c"), gi = load_if<float>(gates_read, "gi"),
               gh = load_if<float>(gates_read, "gh"), h0 = load<float>("h0"), c0 = load_if<float>(cs, "c0"),
               out = load<float>("out"), c_out = load_if<float>(cs, "c_out"), w = load<float>("w_hh");
    std::vector<float> d_gi(B * T * G, NAN), d_gh(Cell::kSplitGrads ? B * T * G : 0, NAN), d_h0(B * H, NAN),
        d_c0(cs ? B * H : 0, NAN);
    ScanBackwardArgs a{go.data(), ptr(gc), ptr(gi), ptr(gh), h0.data(), ptr(c0), out.data(), ptr(c_out), w.data(),
                       d_gi.data(), ptr(d_gh), d_h0.data(), ptr(d_c0), b, t, h, false};
    if (kernel == "scan_backward") {
      KernelPlan p = plan_scan_backward(B, H, d.sms, d.limit, layout);
      if (d.streamed) p.weights_on_chip = p.head_on_chip = false;
      a.weights_on_chip = p.weights_on_chip;
      launch(scan_backward_kernel<Cell, 1>, scan_backward_kernel<Cell, 2>, scan_backward_kernel<Cell, 4>,
             scan_backward_kernel<Cell, 8>, p, a);
    } else if (kernel == "scan_backward_cluster") {
      const ClusterPlan p = plan_scan_backward_cluster(B, H, d.sms, d.limit, layout);
      if (p.rows == 0) return 3;
      show_cluster(p, false);
      emu::run_blocks(pick(p.rows, scan_backward_split_kernel<Cell, 1, Cluster>,
                           scan_backward_split_kernel<Cell, 2, Cluster>, scan_backward_split_kernel<Cell, 4, Cluster>,
                           scan_backward_split_kernel<Cell, 8, Cluster>, scan_backward_split_kernel<Cell, 16, Cluster>),
                      p.clusters * kClusterBlocks, kClusterBlocks, p.smem_bytes, a, static_cast<int>(p.units),
                      GroupArgs{});
    } else {
      const GridPlan p = plan_scan_backward_grid(B, H, d.sms, d.limit, layout);
      if (p.rows == 0) return 3;
      std::vector<float> exchange(static_cast<size_t>(p.exchange) * p.blocks, NAN);
      show_grid(p);
      emu::run_blocks(pick(p.rows, scan_backward_split_kernel<Cell, 1, GridGroup>,
                           scan_backward_split_kernel<Cell, 2, GridGroup>,
                           scan_backward_split_kernel<Cell, 4, GridGroup>,
                           scan_backward_split_kernel<Cell, 8, GridGroup>,
                           scan_backward_split_kernel<Cell, 16, GridGroup>),
                      p.blocks, p.blocks, p.smem_bytes, a, static_cast<int>(p.units),
                      GroupArgs{exchange.data(), p.exchange, p.blocks});
    }
    save("d_gi", d_gi);
    if (Cell::kSplitGrads) save("d_gh", d_gh);
    save("d_h0", d_h0);
    if (cs) save("d_c0", d_c0);
  } else if (kernel == "decode_forward" || kernel == "decode_forward_cluster" || kernel == "decode_forward_grid") {
    const auto h0 = load<float>("h0"), c0 = load_if<float>(cs, "c0"), w_ih = load<float>("w_ih"),
               b_ih = load<float>("b_ih"), w = load<float>("w_hh_t"), bh = load<float>("b_hh"),
               head = load<float>("w_out_t"), bo = load<float>("b_out");
    std::vector<float> out(B * T * C, NAN), hidden(B * T * H, NAN), c_hidden(cs ? B * T * H : 0, NAN);
    KernelPlan p = plan_decode_forward(B, H, C, d.sms, d.limit, layout);
    if (d.streamed) p.weights_on_chip = p.head_on_chip = false;
    DecodeForwardArgs a{h0.data(), ptr(c0), w_ih.data(), b_ih.data(), w.data(), bh.data(), head.data(),
                        bo.data(), out.data(), hidden.data(), ptr(c_hidden), b, t, h, c, p.weights_on_chip,
                        p.head_on_chip};
    if (kernel == "decode_forward") {
      launch(decode_forward_kernel<Cell, 1>, decode_forward_kernel<Cell, 2>, decode_forward_kernel<Cell, 4>,
             decode_forward_kernel<Cell, 8>, p, a);
    } else if (kernel == "decode_forward_cluster") {
      const ClusterPlan cp = plan_decode_forward_cluster(B, H, C, d.sms, d.limit, layout, static_cast<int>(d.operand));
      if (cp.rows == 0) return 3;
      show_cluster(cp, true);
      a.operand = cp.tensor_cores ? static_cast<Operand>(d.operand) : Operand::f32;
      emu::run_blocks(pick(cp.rows, decode_forward_split_kernel<Cell, 1, Cluster>,
                           decode_forward_split_kernel<Cell, 2, Cluster>, decode_forward_split_kernel<Cell, 4, Cluster>,
                           decode_forward_split_kernel<Cell, 8, Cluster>, decode_forward_split_kernel<Cell, 16, Cluster>),
                      cp.clusters * kClusterBlocks, kClusterBlocks, cp.smem_bytes, a, static_cast<int>(cp.units),
                      GroupArgs{});
    } else {
      const GridPlan gp = plan_decode_forward_grid(B, H, C, d.sms, d.limit, layout);
      if (gp.rows == 0) return 3;
      std::vector<float> exchange(static_cast<size_t>(gp.exchange) * gp.blocks, NAN);
      show_grid(gp);
      emu::run_blocks(pick(gp.rows, decode_forward_split_kernel<Cell, 1, GridGroup>,
                           decode_forward_split_kernel<Cell, 2, GridGroup>,
                           decode_forward_split_kernel<Cell, 4, GridGroup>,
                           decode_forward_split_kernel<Cell, 8, GridGroup>,
                           decode_forward_split_kernel<Cell, 16, GridGroup>),
                      gp.blocks, gp.blocks, gp.smem_bytes, a, static_cast<int>(gp.units),
                      GroupArgs{exchange.data(), gp.exchange, gp.blocks});
    }
    save("out", out);
    save("hidden", hidden);
    if (cs) save("c_hidden", c_hidden);
  } else if (kernel == "decode_backward" || kernel == "decode_backward_cluster" || kernel == "decode_backward_grid") {
    const auto go = load<float>("grad_out"), ghid = load<float>("grad_hidden"), gc = load_if<float>(cs, "grad_c"),
               gi = load_if<float>(gates_read, "gi"), gh = load_if<float>(gates_read, "gh"), h0 = load<float>("h0"),
               c0 = load_if<float>(cs, "c0"), hidden = load<float>("hidden"),
               c_hidden = load_if<float>(cs, "c_hidden"), w_ih = load<float>("w_ih"), w = load<float>("w_hh"),
               w_out = load<float>("w_out");
    std::vector<float> d_gi(B * T * G, NAN), d_gh(Cell::kSplitGrads ? B * T * G : 0, NAN), d_x(B * T * C, NAN),
        d_h0(B * H, NAN), d_c0(cs ? B * H : 0, NAN);
    KernelPlan p = plan_decode_backward(B, H, C, d.sms, d.limit, layout);
    if (d.streamed) p.weights_on_chip = p.head_on_chip = false;
    const DecodeBackwardArgs a{go.data(), ghid.data(), ptr(gc), ptr(gi), ptr(gh), h0.data(), ptr(c0), hidden.data(),
                               ptr(c_hidden), w_ih.data(), w.data(), w_out.data(), d_gi.data(), ptr(d_gh),
                               d_x.data(), d_h0.data(), ptr(d_c0), b, t, h, c, p.weights_on_chip};
    if (kernel == "decode_backward") {
      launch(decode_backward_kernel<Cell, 1>, decode_backward_kernel<Cell, 2>, decode_backward_kernel<Cell, 4>,
             decode_backward_kernel<Cell, 8>, p, a);
    } else if (kernel == "decode_backward_cluster") {
      const ClusterPlan cp = plan_decode_backward_cluster(B, H, C, d.sms, d.limit, layout);
      if (cp.rows == 0) return 3;
      show_cluster(cp, false);
      emu::run_blocks(pick(cp.rows, decode_backward_split_kernel<Cell, 1, Cluster>,
                           decode_backward_split_kernel<Cell, 2, Cluster>,
                           decode_backward_split_kernel<Cell, 4, Cluster>,
                           decode_backward_split_kernel<Cell, 8, Cluster>,
                           decode_backward_split_kernel<Cell, 16, Cluster>),
                      cp.clusters * kClusterBlocks, kClusterBlocks, cp.smem_bytes, a, static_cast<int>(cp.units),
                      GroupArgs{});
    } else {
      const GridPlan gp = plan_decode_backward_grid(B, H, C, d.sms, d.limit, layout);
      if (gp.rows == 0) return 3;
      std::vector<float> exchange(static_cast<size_t>(gp.exchange) * gp.blocks, NAN);
      show_grid(gp);
      emu::run_blocks(pick(gp.rows, decode_backward_split_kernel<Cell, 1, GridGroup>,
                           decode_backward_split_kernel<Cell, 2, GridGroup>,
                           decode_backward_split_kernel<Cell, 4, GridGroup>,
                           decode_backward_split_kernel<Cell, 8, GridGroup>,
                           decode_backward_split_kernel<Cell, 16, GridGroup>),
                      gp.blocks, gp.blocks, gp.smem_bytes, a, static_cast<int>(gp.units),
                      GroupArgs{exchange.data(), gp.exchange, gp.blocks});
    }
    save("d_gi", d_gi);
    if (Cell::kSplitGrads) save("d_gh", d_gh);
    save("d_x", d_x);
    save("d_h0", d_h0);
    if (cs) save("d_c0", d_c0);
  } else {
    return 1;
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 5 && argc != 6) return 1;
  Dims d{};
  d.streamed = argc == 6 && std::string(argv[5]) == "streamed";
  std::string kernel = argv[1];
  dir = argv[2];
  d.sms = std::atoi(argv[3]);
  d.limit = std::atol(argv[4]);
  std::ifstream(dir + "/dims.txt") >> d.B >> d.T >> d.H >> d.C >> d.K >> d.temperature >> d.seed >> d.row_offset >>
      d.has_known >> d.has_gates;
  std::ifstream(dir + "/operand.txt") >> d.operand;  // tensor-core operand of scan/decode forward (absent: 0)
  for (const char* prefix : {"lstm_", "rnn_tanh_", "rnn_relu_"}) {
    const std::string p = prefix;
    if (kernel.rfind(p, 0) != 0) continue;
    kernel = kernel.substr(p.size());
    if (p == "lstm_") return run<LstmCell>(kernel, d);
    if (p == "rnn_tanh_") return run<RnnTanhCell>(kernel, d);
    return run<RnnReluCell>(kernel, d);
  }
  return run<GruCell>(kernel, d);
}
