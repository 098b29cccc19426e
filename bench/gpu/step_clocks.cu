// Where a step's time goes in the CUDA kernels at B = 1 (issue: "per step at B=1 the time is
// synchronisation and the on-chip GEMV"): sampling (h = 256, 256 levels) and the article's
// generator (decode, h = 256, one output), 784 steps an image, on their sm_90 cluster paths.
// The kernels are built with -DRNNGEN_STEP_CLOCKS: thread 0 of block 0 adds each phase's
// clock64() cycles to rnngen_step_clocks (csrc/cuda/gru_device.cuh). Plain CUDA, no torch:
//
//   nvcc -arch=sm_90 -std=c++17 -O3 -DRNNGEN_STEP_CLOCKS -Icsrc bench/gpu/step_clocks.cu -o step_clocks
//   ./step_clocks [repeats]
//
// Prints, per workload, the time of an image from CUDA events (the mean of `repeats` launches
// after a warm-up) and the cycles and microseconds per step of each phase. The stamps add a few
// instructions and a global add per phase on one thread, so the event time is a little above
// the uninstrumented kernel's (bench/gpu/run.sh times those).
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "cuda/decode.cu"
#include "cuda/sample.cu"

using namespace rnngen::cuda;

#define CHECK(call)                                                                        \
  do {                                                                                     \
    const cudaError_t err_ = (call);                                                       \
    if (err_ != cudaSuccess) {                                                             \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(err_)); \
      std::exit(1);                                                                        \
    }                                                                                      \
  } while (0)

static float* device_random(size_t n, float scale, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> host(n);
  for (float& x : host) x = normal(rng);
  float* dev = nullptr;
  CHECK(cudaMalloc(&dev, n * sizeof(float)));
  CHECK(cudaMemcpy(dev, host.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  return dev;
}

// Run `launch` once to warm up, then `repeats` times with the clocks zeroed; print the phases.
template <typename Launch>
static void measure(const char* name, int repeats, int T, const char* const* phases, int nphases, Launch launch) {
  CHECK(launch());
  CHECK(cudaDeviceSynchronize());
  unsigned long long zero[kClockPhases] = {};
  CHECK(cudaMemcpyToSymbol(rnngen_step_clocks, zero, sizeof(zero)));
  cudaEvent_t start, stop;
  CHECK(cudaEventCreate(&start));
  CHECK(cudaEventCreate(&stop));
  CHECK(cudaEventRecord(start));
  for (int r = 0; r < repeats; ++r) CHECK(launch());
  CHECK(cudaEventRecord(stop));
  CHECK(cudaEventSynchronize(stop));
  float ms = 0.0f;
  CHECK(cudaEventElapsedTime(&ms, start, stop));
  unsigned long long clocks[kClockPhases];
  CHECK(cudaMemcpyFromSymbol(clocks, rnngen_step_clocks, sizeof(clocks)));
  int dev = 0, khz = 0;
  CHECK(cudaGetDevice(&dev));
  CHECK(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, dev));
  const double steps = static_cast<double>(repeats) * T;
  double total = 0.0;
  for (int i = 0; i < nphases; ++i) total += static_cast<double>(clocks[i]);
  std::printf("%s: %.3f ms an image (%d steps: %.2f us a step by CUDA events); SM clock %.0f MHz\n", name,
              ms / repeats, T, 1000.0 * ms / steps, khz / 1000.0);
  for (int i = 0; i < nphases; ++i) {
    const double cycles = clocks[i] / steps;
    std::printf("  %-44s %8.0f cycles  %6.2f us  %5.1f%%\n", phases[i], cycles, cycles / (khz / 1000.0),
                total > 0 ? 100.0 * clocks[i] / total : 0.0);
  }
  if (total == 0.0) std::printf("  (no cycles recorded: the cluster path did not run; sm_90 and clusters needed)\n");
}

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::atoi(argv[1]) : 20;
  const int B = 1, T = 784, H = 256, G = 3 * H, G4 = G, C = 1, K = 256;
  std::mt19937 rng(0);
  const float* h0 = device_random(static_cast<size_t>(B) * H, 1.0f, rng);
  const float* w_hh_t = device_random(static_cast<size_t>(H) * G4, 1.0f / 16, rng);
  const float* b_hh = device_random(G4, 0.1f, rng);

  // sampling: emb [C, K, G], cond [B, G], head [C, H, K4], b_out [C, K4]
  const float* emb = device_random(static_cast<size_t>(C) * K * G, 0.5f, rng);
  const float* cond = device_random(static_cast<size_t>(B) * G, 0.1f, rng);
  const float* head = device_random(static_cast<size_t>(C) * H * K, 0.25f, rng);
  const float* b_out = device_random(static_cast<size_t>(C) * K, 0.1f, rng);
  int64_t* values = nullptr;
  CHECK(cudaMalloc(&values, sizeof(int64_t) * B * T));
  const char* sample_phases[] = {"0 block product (gates, logits)", "1 partial sums + cluster barrier",
                                 "2 gather logits (DSMEM) + barrier", "3 draw (one warp) + barrier",
                                 "4 cell update + cluster barrier", "5 gather h (DSMEM) + barrier"};
  measure("sample GRU h=256 K=256 B=1", repeats, T, sample_phases, 6, [&] {
    return launch_sample(CellKind::gru, h0, nullptr, emb, nullptr, nullptr, 0, cond, w_hh_t, b_hh, head, b_out, 1.0f,
                         7, 0, nullptr, values, B, T, H, C, K, nullptr);
  });

  // the article's generator: w_ih [G, C], b_ih [G], head [H, C4], b_out [C4]
  const int C4 = 4;
  const float* w_ih = device_random(static_cast<size_t>(G) * C, 1.0f, rng);
  const float* b_ih = device_random(G, 0.1f, rng);
  const float* head_d = device_random(static_cast<size_t>(H) * C4, 1.0f / 16, rng);
  const float* b_out_d = device_random(C4, 0.1f, rng);
  float *out = nullptr, *hidden = nullptr;
  CHECK(cudaMalloc(&out, sizeof(float) * B * T * C));
  CHECK(cudaMalloc(&hidden, sizeof(float) * B * T * H));
  const char* decode_phases[] = {"0 block product + outputs x_t + barrier", "1 cell update + cluster barrier",
                                 "2 gather h (DSMEM) + barrier"};
  measure("decode GRU h=256 C=1 B=1", repeats, T, decode_phases, 3, [&] {
    return launch_decode_forward(CellKind::gru, h0, nullptr, w_ih, b_ih, w_hh_t, b_hh, head_d, b_out_d, out, hidden,
                                 nullptr, B, T, H, C, nullptr);
  });
  return 0;
}
