import os

# Before anything imports triton: its interpreter must be chosen before the first @triton.jit.
os.environ.setdefault("TRITON_INTERPRET", "1")
# Kernels fill NaN/-7-poisoned buffers, so an element a kernel forgets to write fails the test.
os.environ.setdefault("RNNGEN_POISON_OUTPUTS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402



@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
