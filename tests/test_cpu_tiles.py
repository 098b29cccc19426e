"""The CPU GEMM tiles and their packing at every target_clones level the extension is built for
(x86-64-v4, -v3, baseline): the loader picks one by the CPU, so the tests of the built extension
only reach the best this machine has. The packing must put every weight where the tiles read it
(rows in any order, K with and without a remainder of 16), and the bf16-pair tiles must give the
float32 tiles' results bit for bit (precision="bf16" is exact float32 arithmetic on bf16-valued
weights). Skipped without g++."""

import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CXX = shutil.which("g++")
ARCHES = ["x86-64", "x86-64-v3", "x86-64-v4"]


def _runs_here(arch: str) -> bool:
    flags = pathlib.Path("/proc/cpuinfo").read_text() if pathlib.Path("/proc/cpuinfo").exists() else ""
    need = {"x86-64": [], "x86-64-v3": ["avx2", "fma"], "x86-64-v4": ["avx512f", "avx512bw", "avx512vl"]}[arch]
    return all(f" {flag}" in flags for flag in need)


@pytest.mark.skipif(CXX is None, reason="needs g++")
@pytest.mark.parametrize("arch", ARCHES)
def test_packing_and_tiles(arch, tmp_path):
    if not _runs_here(arch):
        pytest.skip(f"this CPU cannot run {arch} code")
    exe = tmp_path / f"tiles_{arch}"
    subprocess.run([CXX, "-std=c++17", "-O3", f"-march={arch}", f"-I{ROOT / 'csrc'}",
                    str(ROOT / "tests" / "cpu_tiles_main.cpp"), "-o", str(exe)], check=True, timeout=300)
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
