"""Determinism: the same inputs and seed give bit-identical results, call after call and process
after process, on each backend (with the same thread count; see README "Guarantees")."""

import json
import os
import subprocess
import sys

import pytest
import torch

import rnngen
from helpers import BACKENDS

B, T, H, C, K = 3, 21, 40, 3, 11


def _inputs():
    g = torch.Generator().manual_seed(7)
    w_hh, b_hh = torch.randn(3 * H, H, generator=g) / H**0.5, torch.randn(3 * H, generator=g) * 0.1
    return dict(gi=torch.randn(B, T, 3 * H, generator=g), h0=torch.randn(B, H, generator=g), w_hh=w_hh, b_hh=b_hh,
                w_ih=torch.randn(3 * H, C, generator=g), w_out=torch.randn(C, H, generator=g) / H**0.5,
                emb=torch.randn(C, K, 3 * H, generator=g), heads=torch.randn(C, K, H, generator=g))


def _everything(backend):
    """Every op's outputs and gradients, and samples with and without known values."""
    a = {k: v.detach().requires_grad_() for k, v in _inputs().items()}
    out = rnngen.scan(a["gi"], a["h0"], a["w_hh"], a["b_hh"], backend=backend)
    dec = rnngen.decode(a["h0"], a["w_ih"], None, a["w_hh"], a["b_hh"], a["w_out"], None, T, backend=backend)
    (out.sum() + (dec * dec).sum()).backward()
    known = torch.full((B, T * C), -1)
    known[:, ::5] = 2
    with torch.no_grad():
        samples = [rnngen.sample(a["h0"], a["emb"], a["w_hh"], a["b_hh"], a["heads"], None, T * C, seed=seed,
                                 temperature=0.9, known=kn, backend=backend)
                   for seed, kn in ((0, None), (2**63 + 5, None), (11, known))]
    return [out.detach(), dec.detach(), *[x.grad for x in a.values() if x.grad is not None], *samples]


@pytest.mark.parametrize("backend", BACKENDS)
def test_call_after_call_bit_identical(backend):
    first, second = _everything(backend), _everything(backend)
    assert len(first) == len(second) == 2 + 6 + 3  # outputs, gradients, samples
    for i, (x, y) in enumerate(zip(first, second)):
        assert torch.equal(x, y), f"result {i} differs between two identical calls"


_CHILD = """
import hashlib, json, sys, torch
sys.path.insert(0, {tests!r})
import test_determinism as t
torch.set_num_threads({threads})
print(json.dumps([hashlib.sha256(x.contiguous().numpy().tobytes()).hexdigest() for x in t._everything({backend!r})]))
"""


def _digests_in_new_process(backend: str) -> list[str]:
    code = _CHILD.format(tests=os.path.dirname(__file__), threads=torch.get_num_threads(), backend=backend)
    env = dict(os.environ, PYTHONHASHSEED="random")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_process_after_process_bit_identical(backend):
    assert _digests_in_new_process(backend) == _digests_in_new_process(backend)
