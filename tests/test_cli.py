"""The rnngen command: info and argument errors (the image commands: test_train_cli.py)."""

import subprocess
import sys

from rnngen.cli import main


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for name in ("reference", "cpu", "triton", "cuda"):
        assert name in out


def test_bad_arguments_exit_nonzero_without_traceback(tmp_path):
    run = subprocess.run([sys.executable, "-m", "rnngen", "nonsense"], capture_output=True, text=True)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    run = subprocess.run([sys.executable, "-m", "rnngen", "sample", "--out", str(tmp_path / "x.png"), "--n", "0"],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "Traceback" not in run.stderr and "--n must be >= 1" in run.stderr


def test_unavailable_backend_is_one_line(tmp_path, capsys):
    import pytest

    import rnngen

    if rnngen.backend_status()["cuda"] == "available":
        pytest.skip("the cuda backend is available here")
    assert main(["sample", "--out", str(tmp_path / "x.png"), "--backend", "cuda", "--n", "2"]) == 2
    err = capsys.readouterr().err
    assert "backend 'cuda' is not available" in err and len(err.strip().splitlines()) == 1
