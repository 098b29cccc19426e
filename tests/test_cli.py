"""The rnngen command."""

import subprocess
import sys

from rnngen.cli import main


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for name in ("reference", "cpu", "triton", "cuda"):
        assert name in out


def test_demo_runs(capsys):
    assert main(["demo", "--backend", "reference", "--hidden", "16"]) == 0
    out = capsys.readouterr().out
    assert "identical: True" in out and "max |image - seed's|" in out


def test_bad_arguments_exit_nonzero_without_traceback():
    run = subprocess.run([sys.executable, "-m", "rnngen", "demo", "--backend", "cuda"],
                         capture_output=True, text=True)
    if "available" not in run.stdout.split("cuda")[-1][:20]:
        assert run.returncode == 2
        assert "Traceback" not in run.stderr and "error" in run.stderr
    run = subprocess.run([sys.executable, "-m", "rnngen", "nonsense"], capture_output=True, text=True)
    assert run.returncode == 2 and "Traceback" not in run.stderr
