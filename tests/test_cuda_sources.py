"""Every csrc/cuda/*.cu compiles with nvcc alone (no torch headers), without register spills
and within the shared-memory limit; skipped where nvcc is absent."""

import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "csrc" / "cuda").glob("*.cu"))
NVCC = shutil.which("nvcc")
SMEM_LIMIT = {"sm_80": 163 * 1024, "sm_90": 227 * 1024}  # per block, opt-in maximum


@pytest.mark.skipif(NVCC is None, reason="nvcc not found")
@pytest.mark.parametrize("arch", sorted(SMEM_LIMIT))
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_cu_compiles_cleanly(source, arch, tmp_path):
    run = subprocess.run([NVCC, f"-arch={arch}", "-std=c++17", "-O3", "-Xptxas", "-v", "-c", str(source),
                          "-o", str(tmp_path / "out.o")], capture_output=True, text=True, timeout=600)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log
    assert "torch" not in source.read_text(), "a .cu must not include torch headers"
    spills = [int(n) for n in re.findall(r"(\d+) bytes spill (?:stores|loads)", log)]
    assert spills and not any(spills), f"register spills:\n{log}"
    smem = [int(n) for n in re.findall(r"(\d+) bytes smem", log)]
    assert all(s <= SMEM_LIMIT[arch] for s in smem), log
