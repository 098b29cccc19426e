"""The benchmark suite runs (tiny sizes) so it cannot rot; nothing here asserts a speed."""

import json
import pathlib
import subprocess
import sys

import pytest
import torch

import rnngen
import rnngen.bench
from rnngen.bench import workloads
from rnngen.bench.timing import TimeLimitExceeded, time_limit

ROOT = pathlib.Path(__file__).resolve().parents[1]
needs_cpu = pytest.mark.skipif(rnngen.backend_status()["cpu"] != "available", reason="cpu backend not built")


@pytest.fixture(scope="module")
def quick_json(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    assert rnngen.bench.main(["--quick", "--json", str(out)]) == 0
    return out


def test_quick_run_writes_every_workload(quick_json, capsys):
    result = json.loads(quick_json.read_text())
    rows = result["rows"]
    names = {spec.name for spec in workloads.specs(quick=True)}
    assert {r["workload"] for r in rows} == names
    for row in rows:  # every row names what it was measured on and with
        for key in ("device", "device_name", "threads", "dtype", "shapes", "torch", "rnngen", "status"):
            assert row[key] not in (None, ""), (key, row)
    assert result["machine"]["device"] == "cpu" and result["settings"]["quick"]
    if "cpu" in rnngen.backends():
        ok = [r for r in rows if r["status"] == "ok"]
        assert {r["workload"] for r in ok} == names and all(r["backend"] in ("cpu", "cpu bf16") for r in ok)
        # precision="bf16" beside float32 where it has its own CPU path: no grad
        bf16 = {r["workload"] for r in ok if r["backend"] == "cpu bf16"}
        assert bf16 == {spec.name for spec in workloads.specs(quick=True) if spec.kind != "scan" and not spec.grad}
        for r in ok:
            assert r["baseline_s"] > 0 and r["rnngen_s"] > 0 and r["speedup"] > 0
            assert len(r["baseline_times_s"]) == len(r["rnngen_times_s"]) == r["repeats"]
    # quick mode leaves torch.compile out, saying so
    assert all(r["status"] == "skipped" for r in rows if r.get("impl") == "torch.compile step")


def test_report_from_json(quick_json, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "chart.png"
    assert rnngen.bench.main(["--from-json", str(quick_json), "--markdown", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "speed-up" in out and "| workload | baseline |" in out and "Measured on" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_is_one_clear_error(quick_json, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    assert rnngen.bench.main(["--from-json", str(quick_json), "--plot", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "matplotlib" in err and "rnngen[bench]" in err


def test_legacy_json_reports():
    legacy = sorted((ROOT / "bench" / "results").glob("cpu-*.json"))
    if not legacy:
        pytest.skip("no bench/results/cpu-*.json")
    assert rnngen.bench.main(["--from-json", str(legacy[0]), "--markdown"]) == 0


def test_failing_compile_is_recorded_not_fatal(tmp_path, monkeypatch):
    def broken(fn):
        raise RuntimeError("no compiler here")
    monkeypatch.setattr(workloads, "_compile", broken)
    out = tmp_path / "c.json"
    assert rnngen.bench.main(["--quick", "--compile", "-k", "B=1 no grad", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    failed = [r for r in rows if r.get("impl") == "torch.compile step"]
    assert failed and all(r["status"] == "failed" and "no compiler here" in r["reason"] for r in failed)


def test_time_limit():
    with pytest.raises(TimeLimitExceeded):
        with time_limit(0.05):
            while True:
                pass
    with time_limit(5):  # a block that ends in time is left alone
        pass


@needs_cpu
def test_a_wrong_answer_fails_the_run(tmp_path, monkeypatch, capsys):
    real = rnngen.RNNImageGenerator.forward
    monkeypatch.setattr(rnngen.RNNImageGenerator, "forward", lambda self, z: real(self, z) + 0.1)
    out = tmp_path / "w.json"
    assert rnngen.bench.main(["--quick", "-k", "B=1 no grad", "--json", str(out)]) == 1
    rows = json.loads(out.read_text())["rows"]
    wrong = [r for r in rows if r["status"] == "wrong"]
    assert wrong and wrong[0]["backend"] == "cpu" and "rnngen_s" not in wrong[0]
    assert "WRONG OUTPUT" in capsys.readouterr().err


def test_cuda_device_refused_without_a_gpu(capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert rnngen.bench.main(["--device", "cuda", "--quick"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_pytest_benchmark_suite_quick(tmp_path):
    pytest.importorskip("pytest_benchmark")
    out = tmp_path / "pb.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", "bench", "-q", "-p", "no:cacheprovider", "--bench-quick",
                           "--benchmark-json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    benchmarks = json.loads(out.read_text())["benchmarks"]
    assert {b["extra_info"]["workload"] for b in benchmarks} == {s.name for s in workloads.specs(quick=True)}
    assert all(b["extra_info"]["device_name"] and b["stats"]["rounds"] == 2 for b in benchmarks)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_flashrnn_adapter_matches_nn_gru(dtype):
    """The benchmark's FlashRNN adapter (gate orders, R layout, the four biases) through the real
    package's own PyTorch GRU (its ``vanilla`` backend, which runs on a CPU; the benchmark runs
    its CUDA kernel with the same arguments), forward and backward, against nn.GRU."""
    pytest.importorskip("flashrnn.flashrnn")
    gru = torch.nn.GRU(1, 16, batch_first=True, dtype=dtype)
    x, dout = torch.randn(3, 10, 1, dtype=dtype), torch.randn(3, 10, 16, dtype=dtype)
    out = workloads._flashrnn_gru(gru, x, True, dout, backend="vanilla")()
    with torch.enable_grad():
        ref = gru(x)[0]
        grads = torch.autograd.grad((ref * dout).sum(), list(gru.parameters()))
    workloads.close_enough(out, (ref.detach(), *grads), 1e-5 if dtype == torch.float32 else 1e-12,
                           "flashrnn adapter")
    # A wrong mapping fails: nn.GRU's own recurrent gate order [r, z, n] instead of FlashRNN's [n, r, z].
    swapped = torch.nn.GRU(1, 16, batch_first=True, dtype=dtype)
    swapped.load_state_dict(gru.state_dict())
    with torch.no_grad():
        swapped.weight_hh_l0.copy_(gru.weight_hh_l0.view(3, 16, 16)[[2, 0, 1]].reshape(48, 16))
    with pytest.raises(AssertionError):
        workloads.close_enough(workloads._flashrnn_gru(swapped, x, True, dout, backend="vanilla")(),
                               (ref.detach(), *grads), 1e-5, "flashrnn adapter")


def test_markdown_keeps_baselines_without_rnngen_and_lists_failures():
    from rnngen.bench import report

    machine = {"device": "cuda", "device_name": "Some GPU", "cuda": "13.0", "cudnn": 91000, "threads": 16,
               "torch": "2.11.0", "rnngen": "0.1.0"}
    common = {"workload": "w", "dtype": "float32"}
    rows = [{**common, "baseline": "eager", "backend": None, "status": "no rnngen", "baseline_s": 0.5,
             "reason": "no rnngen backend measured here"},
            {**common, "baseline": "FlashRNN fused GRU", "backend": None, "impl": "FlashRNN fused GRU",
             "status": "failed", "reason": "ImportError: x"}]
    text = report.markdown({"machine": machine, "settings": {"repeats": 7}, "rows": rows})
    assert "Some GPU" in text and "| w | eager | 500.0 |" in text
    assert "FlashRNN fused GRU failed: ImportError: x" in text
    assert "FAILED" in report.table_line(rows[1])


def test_spent_budget_skips_the_remaining_workloads(tmp_path):
    out = tmp_path / "b.json"
    assert rnngen.bench.main(["--quick", "--budget", "0", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == len(workloads.specs(quick=True))
    assert all(r["status"] == "skipped" and "--budget" in r["reason"] for r in rows)


def test_busy_runs_beside_spinning_processes_and_stops_them(tmp_path, capsys):
    from rnngen.bench.timing import busy_processes

    with busy_processes(2) as procs:
        assert len(procs) == 2 and all(p.poll() is None for p in procs)  # spinning
    assert all(p.poll() is not None for p in procs)  # and gone afterwards
    out = tmp_path / "busy.json"
    assert rnngen.bench.main(["--quick", "--busy", "1", "-k", "B=1 no grad", "--json", str(out), "--markdown"]) == 0
    printed = capsys.readouterr().out
    assert "beside 1 busy processes" in printed
    result = json.loads(out.read_text())
    assert result["settings"]["busy"] == 1 and all(r["busy_processes"] == 1 for r in result["rows"])
    if "cpu" in rnngen.backends():  # how the unit-split calls ran, counted over the run
        team = result["settings"]["cpu_team"]
        assert set(team) == {"usable_cpus", "kernel_threads", "team_calls", "switched_calls", "solo_calls"}
        assert team["usable_cpus"] >= 1 and min(team.values()) >= 0
    assert rnngen.bench.main(["--busy", "-1"]) == 2
    assert "--busy must be 0 or more" in capsys.readouterr().err


def test_results_of_earlier_runs_report_todays_names(tmp_path):
    """Runs made before the article's model was renamed wrote "seed generator ..." and "seed eager
    loop"; the report gives them the suite's names now (the JSON files stay as written)."""
    from rnngen.bench import report

    names = {spec.name for spec in workloads.specs()}
    assert "generator h=256 28x28 B=1 no grad" in names and not any(n.startswith("seed") for n in names)
    assert {"GRU scan T=784 h=1024 B=16 fwd", "GRU scan T=784 h=1024 B=16 fwd+bwd",
            "sampling 256 levels h=1024 28x28 B=1"} <= names
    old = {"workload": "seed generator h=256 28x28 B=1 no grad", "baseline": "seed eager loop", "impl": "rnngen cpu",
           "backend": "cpu", "status": "ok", "baseline_s": 0.036, "rnngen_s": 0.003, "speedup": 12.0}
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"machine": {"device": "cpu"}, "settings": {}, "rows": [old]}))
    row = report.load(str(path))["rows"][0]
    assert (row["workload"], row["baseline"], row["impl"]) == (
        "generator h=256 28x28 B=1 no grad", "article eager loop", "rnngen cpu")
    assert json.loads(path.read_text())["rows"][0] == old
