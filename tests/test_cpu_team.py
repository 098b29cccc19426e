"""The cpu backend on a machine whose cores are shared (csrc/cpu/team.h).

With fewer rows than threads, the fused CPU kernels split each step's hidden units over a team
of threads that meets at a barrier every step; when the team is not being scheduled together
(other processes want the cores) it goes on as one thread, and later calls start on one thread
for a while. Whatever path a call takes (the team, one thread from the start, a switch in the
middle, one thread requested), the results are the same bits. The thread count follows the
process's CPU affinity. Nothing here times anything: the speed is in `rnngen bench --busy N`.
"""

import json
import os
import subprocess
import sys

import pytest
import torch

import rnngen
from rnngen.bench.timing import busy_processes

needs_team = pytest.mark.skipif(
    rnngen.backend_status()["cpu"] != "available" or torch.get_num_threads() < 2 or len(os.sched_getaffinity(0)) < 2,
    reason="needs the cpu backend and at least two threads on two CPUs (the unit split)")

POLICIES = {"adaptive": 0, "solo": 1, "handover": 2, "team": 3}


@pytest.fixture
def team():
    """torch.ops.rnngen_cpu, its policy set back to adaptive afterwards."""
    import rnngen._cpu  # noqa: F401  (registers the ops)

    yield torch.ops.rnngen_cpu
    torch.ops.rnngen_cpu.team_policy(POLICIES["adaptive"])


GATES = {"gru": 3, "lstm": 4, "rnn_tanh": 1, "rnn_relu": 1}


def _inputs(H, K=256, bf16_weights=False, seed=0, cell="gru"):
    g = torch.Generator().manual_seed(seed)
    w = lambda *s: torch.randn(*s, generator=g) * H**-0.5  # noqa: E731
    G = GATES[cell] * H
    a = dict(h0=torch.randn(1, H, generator=g), w_hh=w(G, H), b_hh=w(G), w_ih=w(G, 1), b_ih=w(G),
             w_out=w(1, H), b_out=w(1), gi=torch.randn(1, 40, G, generator=g),
             emb=torch.randn(2, K, G, generator=g), heads=w(2, K, H), b_heads=w(2, K),
             c0=torch.randn(1, H, generator=g) if cell == "lstm" else None)
    if bf16_weights:  # what precision="bf16" hands the kernels: the bf16-pairs layout
        a = {k: v.bfloat16().float() if k in ("w_hh", "heads") else v for k, v in a.items()}
    return a


def _all_ops(a, steps=60, cell="gru", backend="cpu"):
    """Every unit-split kernel at B = 1: sample (with known values too), decode, scan (every
    output, the LSTM's cell states included)."""
    known = torch.full((1, steps), -1)
    known[0, 5:9] = 3
    kw = dict(backend=backend, cell=cell, c0=a["c0"])
    with torch.no_grad():
        results = [rnngen.sample(a["h0"], a["emb"], a["w_hh"], a["b_hh"], a["heads"], a["b_heads"], steps, seed=11,
                                 **kw),
                   rnngen.sample(a["h0"], a["emb"], a["w_hh"], a["b_hh"], a["heads"], a["b_heads"], steps, seed=12,
                                 known=known, temperature=0.7, **kw),
                   rnngen.decode(a["h0"], a["w_ih"], a["b_ih"], a["w_hh"], a["b_hh"], a["w_out"], a["b_out"], steps,
                                 return_hidden=True, **kw),
                   rnngen.scan(a["gi"], a["h0"], a["w_hh"], a["b_hh"], return_cell_state=cell == "lstm", **kw)]
    flat = []
    for r in results:
        flat.extend(r if isinstance(r, tuple) else (r,))
    return flat


def _assert_same(got, want, what):
    for i, (x, y) in enumerate(zip(got, want, strict=True)):
        assert torch.equal(x, y), f"{what}: result {i} differs ({(x.double() - y.double()).abs().max()})"


@needs_team
@pytest.mark.parametrize("cell", list(GATES))
@pytest.mark.parametrize("H, bf16_weights, dtype", [(128, False, torch.float32), (256, True, torch.float32),
                                                     (256, False, torch.float64)], ids=["H128", "H256-bf16", "H256-f64"])
def test_every_path_gives_the_same_bits(team, H, bf16_weights, dtype, cell):
    a = {k: None if v is None else v.to(dtype) for k, v in _inputs(H, bf16_weights=bf16_weights, cell=cell).items()}
    team.team_policy(POLICIES["team"])
    want = _all_ops(a, cell=cell)
    for name in ("solo", "handover", "adaptive"):
        team.team_policy(POLICIES[name])
        _assert_same(_all_ops(a, cell=cell), want, name)
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the row path: no unit split at all
    try:
        _assert_same(_all_ops(a, cell=cell), want, "one thread requested")
    finally:
        torch.set_num_threads(before)
    if dtype == torch.float64:  # and the team's results are the reference's (the same math)
        reference = _all_ops(a, cell=cell, backend="reference")
        for i, (x, y) in enumerate(zip(want, reference, strict=True)):
            assert torch.equal(x, y) if x.dtype == torch.long else torch.allclose(x, y, rtol=1e-10, atol=1e-12), \
                f"result {i} differs from the reference backend's"


@needs_team
def test_each_policy_takes_its_path(team):
    """The counters show the path each of the four unit-split calls took: the team, one thread
    from the start, or a switch after the first step."""
    a = _inputs(128)
    expected = {"team": 2, "solo": 4, "handover": 3}  # index in team_stats()
    for name, index in expected.items():
        team.team_policy(POLICIES[name])
        before = team.team_stats()
        _all_ops(a)
        after = team.team_stats()
        assert [y - x for x, y in zip(before[2:], after[2:])] == [4 if i == index else 0 for i in (2, 3, 4)], name


def test_team_policy_refuses_an_unknown_policy(team):
    with pytest.raises(RuntimeError, match="policy must be 0 .adaptive., 1 .solo., 2 .handover. or 3 .team., got 7"):
        team.team_policy(7)


_CHILD = """
import json, torch, rnngen, rnngen._cpu
torch.set_num_threads(2)
import test_cpu_team as t
out = t._all_ops(t._inputs(128))
print(json.dumps({"stats": torch.ops.rnngen_cpu.team_stats(), "sums": [float(x.double().sum()) for x in out]}))
"""


@pytest.mark.skipif(rnngen.backend_status()["cpu"] != "available" or len(os.sched_getaffinity(0)) < 2,
                    reason="needs the cpu backend and two CPUs to leave one out")
def test_thread_count_follows_the_cpu_affinity():
    """Under the equivalent of `taskset -c <one CPU>`, two requested threads become one (no team
    spinning on one core), with the same results."""
    one_cpu = {min(os.sched_getaffinity(0))}

    def child(affinity):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")])}
        done = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, env=env, timeout=300,
                              preexec_fn=(lambda: os.sched_setaffinity(0, affinity)) if affinity else None)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    pinned, free = child(one_cpu), child(None)
    assert pinned["stats"][:2] == [1, 1]  # usable CPUs, kernel threads
    assert free["stats"][:2] == [len(os.sched_getaffinity(0)), 2]
    assert pinned["stats"][2:] == [0, 0, 0]  # no unit split ran: one thread takes the row path
    assert pinned["sums"] == free["sums"]


@needs_team
def test_same_bits_beside_busy_processes(team):
    """Two processes spinning on the CPU while the 784-step sampler runs: whichever path the
    adaptive team takes (on two cores it usually switches to one thread), the same images."""
    a = _inputs(256)
    team.team_policy(POLICIES["team"])
    want = _all_ops(a, steps=784)
    team.team_policy(POLICIES["adaptive"])
    with busy_processes(2):
        for _ in range(3):
            _assert_same(_all_ops(a, steps=784), want, "beside busy processes")


def _cgroup_tree(tmp_path, proc_lines, files):
    (tmp_path / "proc_cgroup").write_text("".join(line + "\n" for line in proc_lines))
    for rel, text in files.items():
        (tmp_path / "fs" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "fs" / rel).write_text(text + "\n")
    return str(tmp_path / "proc_cgroup"), str(tmp_path / "fs")


@pytest.mark.skipif(rnngen.backend_status()["cpu"] != "available", reason="cpu backend not built")
@pytest.mark.parametrize("proc_lines, files, cpus", [
    (["0::/"], {"cpu.max": "max 100000"}, 0),                                   # v2, no quota
    (["0::/"], {"cpu.max": "100000 100000"}, 1),                                # a container limited to one CPU
    (["0::/a/b"], {"a/b/cpu.max": "150000 100000"}, 2),                         # 1.5 CPUs: two threads may run
    (["0::/a/b"], {"a/b/cpu.max": "max 100000", "a/cpu.max": "50000 100000"}, 1),  # a parent's quota binds too
    (["0::/a"], {}, 0),                                                          # no cpu controller files
    (["4:memory:/x", "2:cpu,cpuacct:/"], {"cpu,cpuacct/cpu.cfs_quota_us": "-1",
                                          "cpu,cpuacct/cpu.cfs_period_us": "100000"}, 0),  # v1, no quota
    (["2:cpu,cpuacct:/docker/c1"], {"cpu,cpuacct/docker/c1/cpu.cfs_quota_us": "200000",
                                    "cpu,cpuacct/docker/c1/cpu.cfs_period_us": "100000"}, 2),  # v1 container
    (["1:cpu:/"], {"cpu/cpu.cfs_quota_us": "25000", "cpu/cpu.cfs_period_us": "100000"}, 1),  # a quarter CPU: one
])
def test_cgroup_cpu_quota(tmp_path, proc_lines, files, cpus):
    import rnngen._cpu  # noqa: F401

    assert torch.ops.rnngen_cpu.cgroup_cpu_limit(*_cgroup_tree(tmp_path, proc_lines, files)) == cpus


@pytest.mark.skipif(rnngen.backend_status()["cpu"] != "available" or len(os.sched_getaffinity(0)) < 2,
                    reason="needs the cpu backend and two CPUs")
@pytest.mark.parametrize("env, cpus", [({"OMP_PROC_BIND": "true", "OMP_PLACES": "{0},{1}"}, 2),
                                       ({"GOMP_CPU_AFFINITY": "0 0"}, 1)], ids=["two-places", "one-cpu-twice"])
def test_thread_count_under_openmp_binding(env, cpus):
    """Bound OpenMP threads: the CPUs of all the places count, not the calling thread's own place;
    two threads bound to one CPU are one thread's worth (the team would take turns on it)."""
    code = ("import torch, rnngen, rnngen._cpu; torch.set_num_threads(2); "
            "torch.zeros(1 << 20).add_(1); print(torch.ops.rnngen_cpu.team_stats()[:2])")  # a parallel region binds
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [cpus, cpus]
