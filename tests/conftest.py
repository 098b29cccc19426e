import os

# Before anything imports triton: its interpreter must be chosen before the first @triton.jit.
os.environ.setdefault("TRITON_INTERPRET", "1")
# Kernels fill NaN/-7-poisoned buffers, so an element a kernel forgets to write fails the test.
os.environ.setdefault("RNNGEN_POISON_OUTPUTS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

# Hypothesis profiles for the property tests (tests/test_properties.py), chosen by the
# HYPOTHESIS_PROFILE environment variable; without it "ci" where CI is set, else "dev".
#   ci:      few examples, derandomized (the same examples on every run: reproducible CI)
#   dev:     a moderate random run for local work
#   nightly: many examples (HYPOTHESIS_PROFILE=nightly python -m pytest tests/test_properties.py)
# The autouse _seed fixture below is function-scoped; the properties draw their own torch seed,
# so hypothesis' health check about it is suppressed.
try:
    from hypothesis import HealthCheck, settings
except ImportError:  # hypothesis is in the test extra; without it only test_properties.py skips
    pass
else:
    _common = dict(deadline=None, print_blob=True,
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    settings.register_profile("ci", max_examples=15, derandomize=True, database=None, **_common)
    settings.register_profile("dev", max_examples=40, **_common)
    settings.register_profile("nightly", max_examples=300, **_common)
    _ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if _ci else "dev"))



@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
