// Runs one fused CUDA kernel of csrc/cuda on the CPU (tests/cuda_emulation.h), the way its
// launcher would (plan_* from plan.h for a pretend device), on inputs the test wrote to a folder:
//
//   cuda_emulation KERNEL DIR SMS SMEM_LIMIT [streamed]
//
// "streamed" keeps every weight in global memory whatever the plan says (the path large H takes).
// KERNEL: sample, scan_forward, and their sm_90 variants sample_cluster, scan_forward_cluster,
// scan_backward_cluster; scan_forward, scan_backward, decode_forward, decode_backward. DIR holds
// dims.txt ("B T H C K temperature seed row_offset has_known has_gates") and one raw
// little-endian file per array (float32, or int64 for known/values), in the layouts of
// csrc/cuda/launchers.h; outputs are written there too. Prints the plan that ran.
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

int main(int argc, char** argv) {
  if (argc != 5 && argc != 6) return 1;
  const bool streamed = argc == 6 && std::string(argv[5]) == "streamed";
  const std::string kernel = argv[1];
  dir = argv[2];
  const int sms = std::atoi(argv[3]);
  const long limit = std::atol(argv[4]);
  long B, T, H, C, K, row_offset, has_known, has_gates;
  float temperature;
  unsigned long long seed;
  std::ifstream(dir + "/dims.txt") >> B >> T >> H >> C >> K >> temperature >> seed >> row_offset >> has_known >>
      has_gates;
  const int b = static_cast<int>(B), t = static_cast<int>(T), h = static_cast<int>(H), c = static_cast<int>(C),
            k = static_cast<int>(K);
  if (kernel == "sample") {
    const auto h0 = load<float>("h0"), emb = load<float>("emb"), cond = load<float>("cond");
    const auto w = load<float>("w_hh_t"), bh = load<float>("b_hh"), head = load<float>("w_out_t"),
               bo = load<float>("b_out");
    const auto known = has_known ? load<int64_t>("known") : std::vector<int64_t>();
    std::vector<int64_t> values(B * T, -7);
    KernelPlan p = plan_sample(B, H, C, K, sms, limit);
    if (streamed) p.weights_on_chip = p.head_on_chip = false;
    const SampleArgs a{h0.data(), emb.data(), cond.data(), w.data(), bh.data(), head.data(), bo.data(),
                       has_known ? known.data() : nullptr, values.data(), b, t, h, c, k, temperature, seed,
                       row_offset, p.weights_on_chip, p.head_on_chip};
    launch(sample_kernel<1>, sample_kernel<2>, sample_kernel<4>, sample_kernel<8>, p, a);
    save("values", values);
  } else if (kernel == "sample_cluster") {
    const auto h0 = load<float>("h0"), emb = load<float>("emb"), cond = load<float>("cond");
    const auto w = load<float>("w_hh_t"), bh = load<float>("b_hh"), head = load<float>("w_out_t"),
               bo = load<float>("b_out");
    const auto known = has_known ? load<int64_t>("known") : std::vector<int64_t>();
    std::vector<int64_t> values(B * T, -7);
    const ClusterPlan p = plan_sample_cluster(B, H, C, K, sms, limit);  // SMS: clusters that run at once
    if (p.rows == 0) return 3;
    std::printf("rows=%d weights_on_chip=1 head_on_chip=1 smem=%lld blocks=%lld\n", p.rows,
                static_cast<long long>(p.smem_bytes), static_cast<long long>(p.clusters * kClusterBlocks));
    const SampleArgs a{h0.data(), emb.data(), cond.data(), w.data(), bh.data(), head.data(), bo.data(),
                       has_known ? known.data() : nullptr, values.data(), b, t, h, c, k, temperature, seed,
                       row_offset, false, false};
    const int S = static_cast<int>(p.units), KQ = static_cast<int>(p.head_cols);
    void (*kernel_p)(SampleArgs, int, int) = p.rows == 1   ? sample_cluster_kernel<1>
                                             : p.rows == 2 ? sample_cluster_kernel<2>
                                             : p.rows == 4 ? sample_cluster_kernel<4>
                                                           : sample_cluster_kernel<8>;
    emu::run_blocks(kernel_p, p.clusters * kClusterBlocks, kClusterBlocks, p.smem_bytes, a, S, KQ);
    save("values", values);
  } else if (kernel == "scan_forward_cluster") {
    const auto gi = load<float>("gi"), h0 = load<float>("h0"), w = load<float>("w_hh_t"), bh = load<float>("b_hh");
    std::vector<float> out(B * T * H, NAN), gates(has_gates ? B * T * 3 * H : 0, NAN);
    const ClusterPlan p = plan_scan_forward_cluster(B, H, sms, limit);
    if (p.rows == 0) return 3;
    std::printf("rows=%d weights_on_chip=1 head_on_chip=0 smem=%lld blocks=%lld\n", p.rows,
                static_cast<long long>(p.smem_bytes), static_cast<long long>(p.clusters * kClusterBlocks));
    const ScanForwardArgs a{gi.data(), h0.data(), w.data(), bh.data(), out.data(), has_gates ? gates.data() : nullptr,
                            b, t, h, false};
    void (*kernel_p)(ScanForwardArgs, int) = p.rows == 1   ? scan_forward_cluster_kernel<1>
                                             : p.rows == 2 ? scan_forward_cluster_kernel<2>
                                             : p.rows == 4 ? scan_forward_cluster_kernel<4>
                                                           : scan_forward_cluster_kernel<8>;
    emu::run_blocks(kernel_p, p.clusters * kClusterBlocks, kClusterBlocks, p.smem_bytes, a, static_cast<int>(p.units));
    save("out", out);
    save("gates", gates);
  } else if (kernel == "scan_backward_cluster") {
    const auto go = load<float>("grad_out"), gi = load<float>("gi"), gh = load<float>("gh"), h0 = load<float>("h0"),
               out = load<float>("out"), w = load<float>("w_hh");
    std::vector<float> d_gi(B * T * 3 * H, NAN), d_gh(B * T * 3 * H, NAN), d_h0(B * H, NAN);
    const ClusterPlan p = plan_scan_backward_cluster(B, H, sms, limit);
    if (p.rows == 0) return 3;
    std::printf("rows=%d weights_on_chip=1 head_on_chip=0 smem=%lld blocks=%lld\n", p.rows,
                static_cast<long long>(p.smem_bytes), static_cast<long long>(p.clusters * kClusterBlocks));
    const ScanBackwardArgs a{go.data(), gi.data(), gh.data(), h0.data(), out.data(), w.data(), d_gi.data(),
                             d_gh.data(), d_h0.data(), b, t, h, false};
    void (*kernel_p)(ScanBackwardArgs, int) = p.rows == 1   ? scan_backward_cluster_kernel<1>
                                              : p.rows == 2 ? scan_backward_cluster_kernel<2>
                                              : p.rows == 4 ? scan_backward_cluster_kernel<4>
                                                            : scan_backward_cluster_kernel<8>;
    emu::run_blocks(kernel_p, p.clusters * kClusterBlocks, kClusterBlocks, p.smem_bytes, a, static_cast<int>(p.units));
    save("d_gi", d_gi);
    save("d_gh", d_gh);
    save("d_h0", d_h0);
  } else if (kernel == "scan_forward") {
    const auto gi = load<float>("gi"), h0 = load<float>("h0"), w = load<float>("w_hh_t"), bh = load<float>("b_hh");
    std::vector<float> out(B * T * H, NAN), gates(has_gates ? B * T * 3 * H : 0, NAN);
    KernelPlan p = plan_scan_forward(B, H, sms, limit);
    if (streamed) p.weights_on_chip = p.head_on_chip = false;
    const ScanForwardArgs a{gi.data(), h0.data(), w.data(), bh.data(), out.data(), has_gates ? gates.data() : nullptr,
                            b, t, h, p.weights_on_chip};
    launch(scan_forward_kernel<1>, scan_forward_kernel<2>, scan_forward_kernel<4>, scan_forward_kernel<8>, p, a);
    save("out", out);
    save("gates", gates);
  } else if (kernel == "scan_backward") {
    const auto go = load<float>("grad_out"), gi = load<float>("gi"), gh = load<float>("gh"), h0 = load<float>("h0"),
               out = load<float>("out"), w = load<float>("w_hh");
    std::vector<float> d_gi(B * T * 3 * H, NAN), d_gh(B * T * 3 * H, NAN), d_h0(B * H, NAN);
    KernelPlan p = plan_scan_backward(B, H, sms, limit);
    if (streamed) p.weights_on_chip = p.head_on_chip = false;
    const ScanBackwardArgs a{go.data(), gi.data(), gh.data(), h0.data(), out.data(), w.data(), d_gi.data(),
                             d_gh.data(), d_h0.data(), b, t, h, p.weights_on_chip};
    launch(scan_backward_kernel<1>, scan_backward_kernel<2>, scan_backward_kernel<4>, scan_backward_kernel<8>, p, a);
    save("d_gi", d_gi);
    save("d_gh", d_gh);
    save("d_h0", d_h0);
  } else if (kernel == "decode_forward") {
    const auto h0 = load<float>("h0"), w_ih = load<float>("w_ih"), b_ih = load<float>("b_ih"),
               w = load<float>("w_hh_t"), bh = load<float>("b_hh"), head = load<float>("w_out_t"),
               bo = load<float>("b_out");
    std::vector<float> out(B * T * C, NAN), hidden(B * T * H, NAN);
    KernelPlan p = plan_decode_forward(B, H, C, sms, limit);
    if (streamed) p.weights_on_chip = p.head_on_chip = false;
    const DecodeForwardArgs a{h0.data(), w_ih.data(), b_ih.data(), w.data(), bh.data(), head.data(), bo.data(),
                              out.data(), hidden.data(), b, t, h, c, p.weights_on_chip, p.head_on_chip};
    launch(decode_forward_kernel<1>, decode_forward_kernel<2>, decode_forward_kernel<4>, decode_forward_kernel<8>, p,
           a);
    save("out", out);
    save("hidden", hidden);
  } else if (kernel == "decode_backward") {
    const auto go = load<float>("grad_out"), ghid = load<float>("grad_hidden"), gi = load<float>("gi"),
               gh = load<float>("gh"), h0 = load<float>("h0"), hidden = load<float>("hidden"),
               w_ih = load<float>("w_ih"), w = load<float>("w_hh"), w_out = load<float>("w_out");
    std::vector<float> d_gi(B * T * 3 * H, NAN), d_gh(B * T * 3 * H, NAN), d_x(B * T * C, NAN), d_h0(B * H, NAN);
    KernelPlan p = plan_decode_backward(B, H, C, sms, limit);
    if (streamed) p.weights_on_chip = p.head_on_chip = false;
    const DecodeBackwardArgs a{go.data(), ghid.data(), gi.data(), gh.data(), h0.data(), hidden.data(), w_ih.data(),
                               w.data(), w_out.data(), d_gi.data(), d_gh.data(), d_x.data(), d_h0.data(),
                               b, t, h, c, p.weights_on_chip};
    launch(decode_backward_kernel<1>, decode_backward_kernel<2>, decode_backward_kernel<4>,
           decode_backward_kernel<8>, p, a);
    save("d_gi", d_gi);
    save("d_gh", d_gh);
    save("d_x", d_x);
    save("d_h0", d_h0);
  } else {
    return 1;
  }
  return 0;
}
