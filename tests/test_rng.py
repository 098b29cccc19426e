"""The sampling RNG contract: Triton's tl.rand(seed, offset), bit for bit, on every implementation."""

import importlib.util

import pytest
import torch

import rnngen

# First uniforms of three seeds at offsets 0, 1, 2, 3, 784, 2**33 + 1 (float.hex, exact float32),
# produced by Triton 3.9's interpreter running tl.rand and equal to rnngen.philox_uniform.
PINNED = {
    0: ["0x1.989fa2p-1", "0x1.c6ccd4p-5", "0x1.3ea8c8p-5", "0x1.b37884p-2", "0x1.ceac9cp-1", "0x1.d46ep-2"],
    2024: ["0x1.95d25p-1", "0x1.629852p-1", "0x1.b2ecc4p-1", "0x1.57d57ep-1", "0x1.83b8eep-1", "0x1.8163c2p-1"],
    2**63 + 1: ["0x1.5674e8p-2", "0x1.f5aad8p-2", "0x1.7f8f9cp-2", "0x1.b3c062p-1", "0x1.09b09cp-1", "0x1.385754p-2"],
}
PINNED_OFFSETS = torch.tensor([0, 1, 2, 3, 784, 2**33 + 1])
SEEDS = [0, 1, 42, 2**31 - 1, 2**31, 2**32 + 3, 2**63 - 1, 2**63, 2**64 - 1]


def _offsets():
    g = torch.Generator().manual_seed(0)
    special = torch.tensor([2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**33 + 5, 2**40 + 123, 2**62 + 7])
    return torch.cat([torch.arange(64), special, torch.randint(0, 2**62, (57,), generator=g)])


@pytest.mark.parametrize("seed", sorted(PINNED))
def test_pinned_first_uniforms(seed):
    got = rnngen.philox_uniform(seed, PINNED_OFFSETS)
    assert got.dtype == torch.float32
    assert [float(x) for x in got] == [float.fromhex(h) for h in PINNED[seed]]


def test_uniform_range_and_layout():
    u = rnngen.philox_uniform(7, torch.arange(100_000))
    assert 0 <= float(u.min()) and float(u.max()) < 1
    assert abs(float(u.mean()) - 0.5) < 0.005
    # the sample op's layout: offset = (row_offset + row) * T + t
    grid = rnngen.sample_uniforms(7, batch=3, steps=5, row_offset=2)
    assert torch.equal(grid.flatten(), rnngen.philox_uniform(7, torch.arange(10, 25)))
    # seeds are taken mod 2**64 (negative ones included)
    assert torch.equal(rnngen.philox_uniform(-1, PINNED_OFFSETS), rnngen.philox_uniform(2**64 - 1, PINNED_OFFSETS))


def test_bad_arguments():
    with pytest.raises(TypeError, match="seed"):
        rnngen.philox_uniform(1.5, PINNED_OFFSETS)
    with pytest.raises(TypeError, match="offset"):
        rnngen.philox_uniform(1, PINNED_OFFSETS.int())


def test_cpp_extension_matches():
    cpu = pytest.importorskip("rnngen._cpu", reason="C++ extension not built")
    assert cpu is not None
    offsets = _offsets()
    for seed in SEEDS:
        signed = seed - 2**64 if seed >= 2**63 else seed  # the op takes the seed's bits as int64
        assert torch.equal(torch.ops.rnngen_cpu.philox_uniform(signed, offsets), rnngen.philox_uniform(seed, offsets))


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton not installed")
def test_triton_tl_rand_matches():
    import triton
    import triton.language as tl

    @triton.jit
    def rand_kernel(out_ptr, offset_ptr, seed, N: tl.constexpr):
        i = tl.arange(0, N)
        tl.store(out_ptr + i, tl.rand(seed, tl.load(offset_ptr + i)))

    offsets = _offsets()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and not rnngen.dispatch.triton_interpreting():
        pytest.skip("no GPU and TRITON_INTERPRET is not set")
    for seed in SEEDS:
        out = torch.empty(offsets.numel(), dtype=torch.float32, device=device)
        rand_kernel[(1,)](out, offsets.to(device), seed, N=offsets.numel())
        assert torch.equal(out.cpu(), rnngen.philox_uniform(seed, offsets)), seed
