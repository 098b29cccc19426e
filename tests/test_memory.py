"""Memory: repeated calls do not grow the process.

Each case runs an op (or a model step) a few times to warm up allocator caches, then many more
times; the resident set size may not grow by more than ALLOWANCE. A per-call leak of the
outputs or of the saved gates (about 1 MB per call here) would grow it by hundreds of MB.
"""

import gc
import sys

import pytest
import torch

import rnngen
from helpers import BACKENDS, gru_weights

ALLOWANCE_MB = 24
PAGE = 4096
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")


def _rss_mb() -> float:
    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def _grows(step, warmup: int, calls: int) -> float:
    for _ in range(warmup):
        step()
    before = _rss_mb()
    for _ in range(calls):
        step()
    return _rss_mb() - before


def _op_steps(backend):
    # The reference and the Triton interpreter loop in Python: fewer steps for them (the leak a
    # test looks for is per call).
    T = {"reference": 32, "triton": 8}.get(backend, 256)
    B, H, C, K = 4, 64, 3, 32
    _, _, w_hh, b_hh = gru_weights(H, 1, torch.float32)
    w_ih = torch.randn(3 * H, C)
    w_out = torch.randn(C, H) / H**0.5
    gi = torch.randn(B, T, 3 * H)
    emb, heads = torch.randn(C, K, 3 * H), torch.randn(C, K, H)

    def scan():
        params = [x.detach().requires_grad_() for x in (gi, w_hh, b_hh)]
        rnngen.scan(params[0], None, params[1], params[2], backend=backend).sum().backward()

    def decode():
        params = [x.detach().requires_grad_() for x in (w_ih, w_hh, w_out)]
        rnngen.decode(torch.randn(B, H), params[0], None, params[1], b_hh, params[2], None, T,
                      backend=backend).sum().backward()

    def sample():
        rnngen.sample(torch.randn(B, H), emb, w_hh, b_hh, heads, None, T * C, seed=3, backend=backend)

    return {"scan": scan, "decode": decode, "sample": sample}


@pytest.mark.parametrize("op", ["scan", "decode", "sample"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_repeated_op_calls_do_not_grow_memory(backend, op):
    step = _op_steps(backend)[op]
    calls = {"reference": 50, "triton": 20}.get(backend, 300)
    growth = _grows(step, warmup=5, calls=calls)
    assert growth < ALLOWANCE_MB, f"{op} on {backend}: RSS grew {growth:.1f} MB over {calls} calls"


def test_training_steps_and_sampling_do_not_grow_memory():
    """A PixelGRU training step (fused scan, backward, AdamW) and its sampling, many times."""
    model = rnngen.PixelGRU(8, levels=17, hidden_size=64, num_classes=10)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    images, labels = torch.randint(0, 17, (32, 1, 8, 8)), torch.randint(0, 10, (32,))

    def step():
        opt.zero_grad()
        model(images, labels).mean().backward()
        opt.step()
        with torch.no_grad():
            model.sample(10, labels=torch.arange(10), seed=1)

    growth = _grows(step, warmup=5, calls=100)
    assert growth < ALLOWANCE_MB, f"RSS grew {growth:.1f} MB over 100 training steps"
