"""The CPU benchmark runs (tiny sizes) so it cannot rot; it asserts no speed."""

import importlib.util
import pathlib

import pytest

import rnngen

BENCH = pathlib.Path(__file__).resolve().parents[1] / "bench" / "bench_cpu.py"


@pytest.mark.skipif(rnngen.backend_status()["cpu"] != "available", reason="cpu backend not built")
def test_bench_cpu_quick(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_cpu", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "cpu.json"
    assert bench.main(["--quick", "--json", str(out)]) == 0
    rows = __import__("json").loads(out.read_text())
    assert len(rows) == 4 and all(r["rnngen_s"] > 0 and r["baseline_s"] > 0 and r["cpu"] for r in rows)
    assert "speed-up" in capsys.readouterr().out
