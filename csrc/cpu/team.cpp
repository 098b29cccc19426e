// usable_cpus() and the team state of team.h, and the ops that set and read it.
#include "team.h"

#include <sched.h>
#include <omp.h>
#include <torch/library.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace rnngen::cpu {

// The CPUs a cgroup CPU quota allows (quota / period, rounded up), or 0 for no quota. cgroup v2
// (cpu.max: "max 100000" or "150000 100000") along this process's cgroup path, every ancestor
// included (the tightest wins), then cgroup v1 (cpu.cfs_quota_us / cpu.cfs_period_us, -1 for
// none). proc_cgroup is /proc/self/cgroup and root /sys/fs/cgroup outside the tests.
int cgroup_cpu_limit(const std::string& proc_cgroup, const std::string& root) {
  auto read = [](const std::string& path) {
    std::ifstream f(path);
    std::string text;
    std::getline(f, text);
    return text;
  };
  int limit = 0;
  auto tighten = [&](double quota, double period) {
    if (quota <= 0 || period <= 0) return;
    const int cpus = std::max(1, static_cast<int>(std::ceil(quota / period)));
    limit = limit == 0 ? cpus : std::min(limit, cpus);
  };
  // Calls visit(dir) for path and each of its ancestors up to the root ("").
  auto up = [](std::string path, auto&& visit) {
    if (path == "/") path.clear();
    for (;; path = path.substr(0, path.rfind('/'))) {
      visit(path);
      if (path.empty()) break;
    }
  };
  std::ifstream groups(proc_cgroup);
  std::string line;
  while (std::getline(groups, line)) {  // "hierarchy:controllers:path"
    const size_t first = line.find(':'), second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1), path = line.substr(second + 1);
    if (line.rfind("0::", 0) == 0) {  // cgroup v2
      up(path, [&](const std::string& dir) {
        std::istringstream max(read(root + dir + "/cpu.max"));
        std::string quota;
        double period = 0;
        if (max >> quota >> period && quota != "max") tighten(std::stod(quota), period);
      });
    } else if (("," + controllers + ",").find(",cpu,") != std::string::npos) {  // cgroup v1's cpu controller
      for (const std::string mount : {"/cpu", "/cpu,cpuacct", "/cpuacct,cpu"})
        up(path, [&](const std::string& dir) {
          const std::string quota = read(root + mount + dir + "/cpu.cfs_quota_us");
          const std::string period = read(root + mount + dir + "/cpu.cfs_period_us");
          if (!quota.empty() && !period.empty()) tighten(std::stod(quota), std::stod(period));
        });
    }
  }
  return limit;
}

namespace {

// The CPUs the threads may use: with OpenMP binding its threads to places (OMP_PROC_BIND,
// OMP_PLACES, GOMP_CPU_AFFINITY) the CPUs of all the places together, since a bound thread's
// own mask is just its place; otherwise this thread's affinity mask (taskset, cpusets), which
// new threads inherit. 0 if unknown.
int affinity_cpus() {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  if (sched_getaffinity(0, sizeof(mask), &mask) != 0) return 0;
  if (omp_get_proc_bind() == omp_proc_bind_false || omp_get_num_places() <= 0) return CPU_COUNT(&mask);
  cpu_set_t places;
  CPU_ZERO(&places);
  for (int p = 0; p < omp_get_num_places(); ++p) {
    std::vector<int> ids(omp_get_place_num_procs(p));
    omp_get_place_proc_ids(p, ids.data());
    for (int id : ids)
      if (id >= 0 && id < CPU_SETSIZE) CPU_SET(id, &places);
  }
  return CPU_COUNT(&places);
}

}  // namespace

int usable_cpus() {
  static const int quota = [] {
    try {
      return cgroup_cpu_limit("/proc/self/cgroup", "/sys/fs/cgroup");
    } catch (const std::exception&) {  // an odd file: no quota known
      return 0;
    }
  }();
  const int mask = affinity_cpus();  // read each call: the mask may change
  int cpus = mask > 0 ? mask : static_cast<int>(std::thread::hardware_concurrency());
  if (quota > 0) cpus = std::min(cpus, quota);
  return std::max(1, cpus);
}

TeamState& team_state() {
  static TeamState state;
  return state;
}

namespace {

int64_t set_team_policy(int64_t policy) {
  TORCH_CHECK(policy >= 0 && policy <= 3, "team_policy: policy must be 0 (adaptive), 1 (solo), 2 (handover) or 3 (team), got ",
              policy);
  TeamState& state = team_state();
  state.solo_until_ns.store(0);
  state.pause_ns.store(0);
  return state.policy.exchange(static_cast<int>(policy));
}

// [usable CPUs, kernel threads, calls run by the team, calls switched to one thread, calls started on one thread]
std::vector<int64_t> team_stats() {
  const TeamState& state = team_state();
  return {usable_cpus(), kernel_threads(), state.team_calls.load(), state.switched_calls.load(),
          state.solo_calls.load()};
}

}  // namespace

// For the tests: cgroup_cpu_limit over a made-up /proc/self/cgroup and cgroup tree.
int64_t cgroup_cpu_limit_op(std::string proc_cgroup, std::string root) { return cgroup_cpu_limit(proc_cgroup, root); }

TORCH_LIBRARY_FRAGMENT(rnngen_cpu, m) {
  m.def("team_policy(int policy) -> int", &set_team_policy);
  m.def("team_stats() -> int[]", &team_stats);
  m.def("cgroup_cpu_limit(str proc_cgroup, str root) -> int", &cgroup_cpu_limit_op);
}

}  // namespace rnngen::cpu
