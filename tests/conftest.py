"""Test-wide settings: float64 available everywhere (gradient checks need it).

Tests that want float32 ask for it explicitly (``dtype=jnp.float32``).
"""

import os

import jax
import numpy as np
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


def run_python_json(code: str, *args: str, timeout: float = 300) -> dict:
    """Runs ``python -c code args...`` in a fresh process on the CPU and returns the JSON object
    its last line of output prints (a fresh process: JAX's persistent cache is set up at start)."""
    import json
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    assert proc.returncode == 0, proc.stderr
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "stdout": proc.stdout}


def swapped(a):
    """``a`` as a NumPy array in the byte order this machine does not use (big-endian on x86 and
    ARM, as data read from a big-endian file), values kept."""
    a = np.asarray(a)
    return a.astype(a.dtype.newbyteorder("S"))
