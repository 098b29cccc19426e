"""Multi-process training and sampling: two CPU processes with the gloo backend (as torchrun
starts them) against one process."""

import json
import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from rnngen.cli import main
from rnngen.training import load_checkpoint

TRAIN = ["train", "--data", "digits", "--hidden", "16", "--batch-size", "16", "--steps", "30", "--dropout", "0",
         "--input-dropout", "0", "--weight-dropout", "0", "--ema", "0", "--shift", "1", "--eval-every", "0",
         "--checkpoint-every", "10", "--no-progress"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, argv: list, errors):
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(world),
                       "RANK": str(rank), "LOCAL_RANK": str(rank)})
    torch.set_num_threads(1)
    try:
        code = main(argv)
        if code != 0:
            errors.put(f"rank {rank}: exit {code}")
        if not dist.is_initialized():  # torchrun of one process joins a group of one too
            errors.put(f"rank {rank}: not in a process group")
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        errors.put(f"rank {rank}: {exc!r}")
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _run(world: int, argv: list):
    ctx = mp.get_context("spawn")
    # The free port may be taken by another process before rank 0 binds it: then draw another.
    for attempt in range(3):
        errors = ctx.Queue()
        mp.start_processes(_worker, args=(world, _free_port(), argv, errors), nprocs=world, start_method="spawn")
        reported = [errors.get() for _ in range(world) if not errors.empty()]
        if not any("address already in use" in r.lower() for r in reported):
            break
    assert not reported, reported[0]


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not available")
def test_two_processes_train_like_one(tmp_path):
    _run(2, TRAIN + ["--out", str(tmp_path / "two")])
    torch.set_num_threads(1)
    assert main(TRAIN + ["--out", str(tmp_path / "one")]) == 0
    two, one = (load_checkpoint(str(tmp_path / d / "checkpoint.pt")) for d in ("two", "one"))
    # Half the batch each, gradients averaged: the same parameters as one process, all of it.
    for name, value in one["state"].items():
        torch.testing.assert_close(two["state"][name], value, rtol=1e-4, atol=1e-5, msg=name)
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["steps"] == 30
    assert metrics["train_loss_last"] < metrics["train_loss_first"]
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["checkpoint.pt", "metrics.json", "model.pt"]
    assert json.loads((tmp_path / "one" / "metrics.json").read_text())["world_size"] == 1


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not available")
def test_torchrun_of_one_process_trains_like_a_plain_one(tmp_path):
    # One GPU: torchrun --nproc-per-node 1 joins a group of one (NCCL there, gloo here), and DDP's
    # all-reduce runs; the result is the plain process's.
    _run(1, TRAIN + ["--out", str(tmp_path / "group")])
    torch.set_num_threads(1)
    assert main(TRAIN + ["--out", str(tmp_path / "plain")]) == 0
    group, plain = (load_checkpoint(str(tmp_path / d / "checkpoint.pt")) for d in ("group", "plain"))
    for name, value in plain["state"].items():
        torch.testing.assert_close(group["state"][name], value, rtol=1e-5, atol=1e-6, msg=name)
    assert json.loads((tmp_path / "group" / "metrics.json").read_text())["world_size"] == 1


def test_launched_reads_torchruns_variables(monkeypatch):
    from rnngen.distributed import launched

    for name in ("WORLD_SIZE", "MASTER_ADDR"):
        monkeypatch.delenv(name, raising=False)
    assert not launched()
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not launched()               # WORLD_SIZE=1 alone: no rendezvous to join
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    assert launched()                   # torchrun --nproc-per-node 1
    monkeypatch.delenv("MASTER_ADDR")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert launched()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not available")
def test_sampling_with_two_ranks_equals_one(tmp_path):
    argv = ["sample", "--n", "30", "--labels", "1,4,7", "--seed", "5"]
    _run(2, argv + ["--out", str(tmp_path / "two.png"), "--save-array", str(tmp_path / "two.npz")])
    _run(1, argv + ["--out", str(tmp_path / "group.png"), "--save-array", str(tmp_path / "group.npz")])
    assert main(argv + ["--out", str(tmp_path / "one.png"), "--save-array", str(tmp_path / "one.npz")]) == 0
    two, group, one = (np.load(tmp_path / f"{name}.npz") for name in ("two", "group", "one"))
    for other in (two, group):
        assert np.array_equal(other["images"], one["images"]) and np.array_equal(other["labels"], one["labels"])
    assert (tmp_path / "two.png").stat().st_size > 0
