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


def test_output_paths_of_the_wrong_kind_name_the_argument(tmp_path, capsys):
    """--out of train/demo is a folder, of sample/complete a file: the wrong kind is one line naming
    the argument, before any work, and the file in the way is left as it was."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    for argv in (["train", "--data", "digits", "--out", str(a_file), "--steps", "1"], ["demo", "--out", str(a_file)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"--out {a_file} exists and is not a directory" in err and len(err.strip().splitlines()) == 1
    assert a_file.read_text() == "keep me"
    assert main(["sample", "--out", str(tmp_path), "--n", "2"]) == 2
    assert f"--out {tmp_path} is a directory" in capsys.readouterr().err
    assert main(["sample", "--out", str(tmp_path / "x.png"), "--n", "2", "--save-array", str(tmp_path)]) == 2
    assert f"--save-array {tmp_path} is a directory" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
