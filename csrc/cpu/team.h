// How many threads the fused CPU kernels use, and how the unit-split kernels' threads work as a
// team that still runs when other processes want the cores.
//
// Thread count: at::get_num_threads(), capped by the CPUs this process may run on (its affinity
// mask, e.g. taskset, and a cgroup CPU quota, e.g. a container limited to one CPU): more
// threads than that only take turns on the same cores.
//
// The unit-split kernels (fewer rows than threads: B = 1 sampling and generation) split each
// step's hidden units over the threads, which meet at a spinning barrier once or twice a step.
// That is the fastest on a quiet machine and the slowest on a busy one: when the OS deschedules
// one thread, the other spins through its time slice, once or twice a step. So the barrier times
// its waits; a wait far longer than a step's work (kSlowWaitNs) means the team is not being run
// together, and the whole team switches, at that barrier, to one thread that computes every
// slice (the same slices and tiles, so the same bits). The process then starts such calls on one
// thread for a while (kPauseMinNs, doubling up to kPauseMaxNs while the machine stays busy) and
// then tries the team again.
#pragma once

#include <ATen/Parallel.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

namespace rnngen::cpu {

// The CPUs this process may run on now: its affinity mask, capped by a cgroup CPU quota
// (rounded up). At least 1. In team.cpp, with cgroup_cpu_limit (0: no quota).
int usable_cpus();
int cgroup_cpu_limit(const std::string& proc_cgroup, const std::string& root);

// The threads a kernel uses: at::get_num_threads(), at most usable_cpus().
inline int kernel_threads() { return std::max(1, std::min(at::get_num_threads(), usable_cpus())); }

// The rows each thread takes: the batch split evenly over the kernel's threads.
inline int64_t row_grain(int64_t rows) {
  const int64_t threads = kernel_threads();
  return std::max<int64_t>(1, (rows + threads - 1) / threads);
}

// With fewer rows than threads (B = 1 on a laptop is the common case) splitting rows leaves
// cores idle, and one core streaming all of W_hh from its L2 each step is bandwidth-bound. Then
// the forward kernels split the hidden units instead: each thread holds its slice of the weights
// in its own L2, and the threads meet at a barrier once (sample: twice) per step.
// The number of slices to split units into: the most (up to kernel_threads()) that give every
// slice whole 64-wide tiles of H (and of K, the logits, when given); 1 means "split rows
// instead". It does not depend on how busy the machine is (run_unit_split decides how many
// threads compute the slices), so neither do the results.
inline int units_threads(int64_t rows, int64_t H, int64_t K = 0) {
  if (at::in_parallel_region()) return 1;  // called from a parallel region: no team to split over
  const int threads = kernel_threads();
  if (rows >= threads) return 1;
  for (int t = threads; t >= 2; --t)
    if (H % (64 * t) == 0 && K % (64 * t) == 0) return t;
  return 1;
}

// This thread's slices [slice0, slice1) inside a unit-split region. OpenMP may form a smaller
// team than asked (OMP_DYNAMIC, OMP_THREAD_LIMIT, or one thread on purpose): the slices are then
// shared over the team it got or, if that team does not divide them evenly, thread 0 takes them all.
struct UnitShare {
  int parts = 1;  // threads that work (and meet at the barrier)
  int64_t slice0 = 0, slice1 = 0;
  bool active() const { return slice1 > slice0; }
};

inline UnitShare unit_share(int slices) {
  const int team = omp_get_num_threads(), id = omp_get_thread_num();
  if (slices % team == 0) return {team, id * (slices / team), (id + 1) * (slices / team)};
  return {1, 0, id == 0 ? slices : 0};
}

// How the unit-split kernels run their team (team_policy op; tests and benchmarks).
enum class TeamPolicy : int {
  adaptive = 0,  // the default: the team, one thread after a slow wait (see above)
  solo = 1,      // one thread computes every slice, from the start
  handover = 2,  // the team for the first step, then one thread (tests the switch)
  team = 3,      // the team, never one thread (the kernels before the switch existed)
};

// Process-wide: the policy, whether to start on one thread now, and counters.
struct TeamState {
  std::atomic<int> policy{0};
  std::atomic<int64_t> solo_until_ns{0};  // steady-clock time before which calls start solo
  std::atomic<int64_t> pause_ns{0};       // the current pause after a switch
  std::atomic<int64_t> team_calls{0}, switched_calls{0}, solo_calls{0};
};
TeamState& team_state();  // in team.cpp

constexpr int64_t kSlowWaitNs = 200'000;  // a wait this long: the other thread was descheduled
constexpr int kSlowWaits = 3;             // slow waits in a call before a switch is considered
constexpr double kSoloShare = 3.0;        // a switch when the team takes over parts * work * this
constexpr int64_t kPauseMinNs = 100'000'000;    // 0.1 s on one thread after a switch,
constexpr int64_t kPauseMaxNs = 2'000'000'000;  // doubling while each new try switches again

inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// One thread's account of a call's waits at the team barrier.
struct WaitLog {
  int64_t since = 0;    // when the account started (the first barrier of the call left out)
  int64_t slow_ns = 0;  // time spent in slow waits since
  int slow = 0;         // how many
};

// The per-step meeting point of the unit-split kernels: a spinning barrier (an OpenMP barrier
// costs about a microsecond here, as much as a step's work at H=128) that also decides whether
// the team goes on as one thread.
//
// The decision compares what the team costs with what one thread would. Each waiting thread
// keeps a WaitLog; a wait over kSlowWaitNs means its partner was not running. Once a thread has
// had kSlowWaits slow waits in the call and its waiting outweighs its work by the factor one
// thread would need (parts * kSoloShare - 1: one thread does parts times the work, and on a busy
// machine gets about 1 / kSoloShare of a core), it votes. The last thread to arrive reads the
// votes and publishes the decision before it releases the others, so every thread returns the
// same answer (a vote cast after that read counts at the next barrier). Measured on the 2-vCPU
// VM, quiet: a few waits of 0.2-4 ms in a few hundred 784-step calls, alone in their call, so
// no switch; beside two busy processes a team that stops being run together (a 784-step
// generator call taking 108 ms instead of 9) has slow waits at nearly every step.
class TeamBarrier {
 public:
  // Called by one thread (omp single) before any wait.
  void reset(int threads) {
    threads_ = threads;
    vote_.store(false, std::memory_order_relaxed);
  }

  // Returns whether the team goes on as one thread after this barrier.
  bool wait(WaitLog& log) {
    const int generation = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) == threads_ - 1) {
      arrived_.store(0, std::memory_order_relaxed);
      const bool solo = vote_.load(std::memory_order_relaxed);
      solo_.store(solo, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);  // publishes solo_ with the release
      return solo;
    }
    const double over = threads_ * kSoloShare - 1;
    int64_t start = 0, now = 0;
    for (int spins = 1; generation_.load(std::memory_order_acquire) == generation; ++spins) {
      if (spins % 64 != 0) {
        __builtin_ia32_pause();
        continue;
      }
      now = now_ns();  // a clock read every 64 pauses (a few microseconds)
      if (start == 0) start = now;
      const int64_t waited = now - start;
      if (waited > kSlowWaitNs) {
        if (log.since && log.slow + 1 >= kSlowWaits &&
            static_cast<double>(log.slow_ns + waited) > over * static_cast<double>(now - log.since - log.slow_ns - waited))
          vote_.store(true, std::memory_order_relaxed);
        std::this_thread::yield();
      }
    }
    if (start && now - start > kSlowWaitNs) {
      log.slow_ns += now_ns() - start;
      log.slow += 1;
    }
    return solo_.load(std::memory_order_relaxed);
  }

 private:
  int threads_ = 1;
  alignas(64) std::atomic<int> arrived_{0};
  alignas(64) std::atomic<int> generation_{0};
  alignas(64) std::atomic<bool> vote_{false};
  std::atomic<bool> solo_{false};
};

// Runs a unit-split loop of `steps` steps, `phases` phases each (the team meets after every
// phase). make_step(share) is called once per thread, inside the parallel region (pack this
// thread's tiles there; it may use OpenMP barriers), and returns step(t, phase, slice0, slice1),
// which computes phase `phase` of step t for slices [slice0, slice1). Its buffers must hold
// every slice: after a switch, thread 0 computes them all.
template <class MakeStep>
void run_unit_split(int slices, int64_t steps, int phases, const MakeStep& make_step) {
  TeamState& state = team_state();
  const TeamPolicy policy = static_cast<TeamPolicy>(state.policy.load(std::memory_order_relaxed));
  const bool start_solo = policy == TeamPolicy::solo ||
                          (policy == TeamPolicy::adaptive &&
                           now_ns() < state.solo_until_ns.load(std::memory_order_relaxed));
  TeamBarrier barrier;
  std::atomic<bool> switched{false};
#pragma omp parallel num_threads(start_solo ? 1 : slices)
  {
    const UnitShare share = unit_share(slices);
#pragma omp single
    barrier.reset(share.parts);
    auto step = make_step(share);
    const int64_t n = steps * phases;  // phase i is phase i % phases of step i / phases
    int64_t i = 0;
    bool alone = share.parts == 1;
    WaitLog log;
    for (; i < n && !alone; ++i) {
      step(i / phases, static_cast<int>(i % phases), share.slice0, share.slice1);
      bool solo = barrier.wait(log);
      if (i == 0) log = {now_ns(), 0, 0};  // the first wait may include a sleeping worker's wake-up
      if (policy == TeamPolicy::handover) solo = true;
      if (policy == TeamPolicy::team) solo = false;
      if (solo) alone = true;
    }
    if (alone && i > 0 && omp_get_thread_num() == 0) switched.store(true, std::memory_order_relaxed);
    if (omp_get_thread_num() == 0)  // the others leave: their slices are done up to phase i
      for (; i < n; ++i) step(i / phases, static_cast<int>(i % phases), 0, slices);
  }
  if (start_solo) {
    state.solo_calls.fetch_add(1, std::memory_order_relaxed);
  } else if (switched.load(std::memory_order_relaxed)) {
    if (policy == TeamPolicy::adaptive) {  // not scheduled together: start on one thread for a while,
      const int64_t pause =                 // longer each time this repeats
          std::clamp(2 * state.pause_ns.load(std::memory_order_relaxed), kPauseMinNs, kPauseMaxNs);
      state.pause_ns.store(pause, std::memory_order_relaxed);
      state.solo_until_ns.store(now_ns() + pause, std::memory_order_relaxed);
    }
    state.switched_calls.fetch_add(1, std::memory_order_relaxed);
  } else {
    if (slices > 1) state.pause_ns.store(0, std::memory_order_relaxed);  // the team ran: back to the shortest pause
    state.team_calls.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace rnngen::cpu
