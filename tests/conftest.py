"""Test-wide settings: float64 available everywhere (gradient checks need it).

Tests that want float32 ask for it explicitly (``dtype=jnp.float32``).
"""

import os

import jax
from hypothesis import settings

# The CLI's persistent compilation cache stays off in the tests (and the processes they start):
# no files in the user's cache folder, and each test compiles what it measures. The test of the
# cache turns it on with --cache-dir.
os.environ["FNN_COMPILATION_CACHE"] = "0"

jax.config.update("jax_enable_x64", True)

# CI must be reproducible: hypothesis draws the same examples on every run (XLA on CPU also
# flushes subnormals to zero, so strategies over floats exclude them where it matters).
settings.register_profile("fnn", derandomize=True, deadline=None)
settings.load_profile("fnn")

import pytest  # noqa: E402

_BACKEND_COMPILES = [0]


def _count_compiles(event, duration, **kwargs):
    if event == "/jax/core/compile/backend_compile_duration":
        _BACKEND_COMPILES[0] += 1


jax.monitoring.register_event_duration_secs_listener(_count_compiles)


class CompileCounter:
    """``with compiles() as c: ...`` then ``c.count``: XLA compilations inside the block."""

    def __enter__(self):
        self._start = _BACKEND_COMPILES[0]
        return self

    def __exit__(self, *exc):
        self.count = _BACKEND_COMPILES[0] - self._start

    @property
    def so_far(self) -> int:
        return _BACKEND_COMPILES[0] - self._start


@pytest.fixture
def compiles():
    return CompileCounter
