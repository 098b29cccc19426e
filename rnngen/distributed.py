"""Several processes (torchrun): joining the process group, who is who, sharded sampling.

Under ``torchrun --nproc-per-node N`` every process runs the same script; :func:`init_from_env`
joins them into one process group (gloo on the CPU; NCCL when the processes work on GPUs, each
on GPU ``LOCAL_RANK``: :func:`local_device`), :func:`world` says how many there are and which one this is, and
:func:`sample_sharded` splits a batch of samples over them. torchrun of one process (N = 1, as on
a machine with one GPU) joins a group of one, so its collectives (DDP's gradient all-reduce, the
samples' gather) run through gloo or NCCL as they would for N > 1. In one plain process all three
do what one process would: nothing, (1, 0), ``model.sample``.

``torch.distributed`` is imported only when called, so importing this module costs nothing.
"""

from __future__ import annotations

import os

import torch


def launched() -> bool:
    """Whether torchrun (or anything that sets its variables) started this process: ``WORLD_SIZE``
    > 1, or ``WORLD_SIZE`` with a rendezvous address (``MASTER_ADDR``), as torchrun sets for one
    process too."""
    size = os.environ.get("WORLD_SIZE")
    return size is not None and (int(size) > 1 or "MASTER_ADDR" in os.environ)


def joined() -> bool:
    """Whether this process is in a process group (of one or more): its collectives must run."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def init_from_env(device: torch.device | str | None = None) -> bool:
    """Under torchrun (:func:`launched`), join the process group, once: NCCL when ``device``
    is a CUDA device (made this process's current device first), gloo otherwise. Returns whether
    this process is now part of a group of several."""
    import torch.distributed as dist

    if launched() and not dist.is_initialized():
        device = torch.device(device) if device is not None else torch.device("cpu")
        if device.type == "cuda":
            torch.cuda.set_device(device)  # NCCL's collectives (and gather_object) use the current device
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return world()[0] > 1


def local_device(name: str) -> torch.device:
    """The device this process works on for ``--device name``: under torchrun, "cuda" is GPU
    ``LOCAL_RANK`` (one process per GPU); elsewhere ``name`` itself."""
    device = torch.device(name)
    if device.type == "cuda" and launched():
        if device.index is not None:
            raise ValueError(f"`device` {name}: under torchrun give cuda; each process takes GPU LOCAL_RANK")
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def world() -> tuple[int, int]:
    """(number of processes, this one's rank): (1, 0) unless torch.distributed is initialised."""
    import torch.distributed as dist

    if joined():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def sample_sharded(model, n: int, labels: torch.Tensor | None = None, temperature: float = 1.0, seed: int = 0,
                   guidance: float = 0.0):
    """``model.sample`` of ``n`` images (``guidance``: PixelGRU's, passed only when not 0), split over the processes of a torchrun job (each draws
    its contiguous share with its row offset, so the images do not depend on the number of
    processes) and gathered on rank 0 (on the CPU); other ranks get None. Joins the process group first
    (:func:`init_from_env`); in one process it is ``model.sample(n, ...)``."""
    init_from_env()
    size, rank = world()
    bounds = [n * r // size for r in range(size + 1)]
    mine = slice(bounds[rank], bounds[rank + 1])
    part = model.sample(mine.stop - mine.start, labels=None if labels is None else labels[mine],
                        temperature=temperature, seed=seed, row_offset=mine.start,
                        **({"guidance": guidance} if guidance else {}))
    if not joined():
        return part
    import torch.distributed as dist

    parts = [None] * size if rank == 0 else None
    dist.gather_object(part.cpu(), parts, dst=0)  # gathered on the CPU: a GPU tensor would unpickle onto its sender's GPU
    return torch.cat(parts) if rank == 0 else None
