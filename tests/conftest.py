"""Test-wide settings: float64 available everywhere (gradient checks need it).

Tests that want float32 ask for it explicitly (``dtype=jnp.float32``).
"""

import os
import signal
import subprocess
import sys
import types

# Compile fast, run slower. The suite's programs are small and most run once, so XLA's
# optimisation passes cost more than they save: with these two settings test_grad.py and
# test_losses.py took 67 s against 152 s (one process, backend compile 31 s against 110 s). They
# reach the processes the tests start (the CLI's, the examples'), so a test comparing their
# results with an in-process fit compares the same programs. What they change is only how a
# program is optimised (float results may round differently), never what it computes; a test
# of a bit-for-bit promise compares two programs compiled alike. FNN_TEST_XLA=default runs the
# suite with XLA's default settings, as users get them.
FAST_COMPILE_FLAG = "--xla_cpu_use_fusion_emitters=false"


def _xla_accepts(flag: str) -> bool:
    """XLA ends the process on an unknown flag in XLA_FLAGS (a jaxlib may retire this one)."""
    env = {**os.environ, "XLA_FLAGS": flag, "JAX_PLATFORMS": "cpu"}
    probe = "import jax; jax.devices()"
    return subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True).returncode == 0


if os.environ.get("FNN_TEST_XLA", "fast") != "default":
    os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "1"
    _flags = os.environ.get("XLA_FLAGS", "")
    # xdist's workers inherit the controller's environment: the probe runs once per session
    if FAST_COMPILE_FLAG not in _flags.split() and _xla_accepts(FAST_COMPILE_FLAG):
        os.environ["XLA_FLAGS"] = f"{_flags} {FAST_COMPILE_FLAG}".strip()

import jax  # noqa: E402
import numpy as np  # noqa: E402
from hypothesis import settings  # noqa: E402

# The CLI's persistent compilation cache stays off in the tests (and the processes they start):
# no files in the user's cache folder, and each test compiles what it measures. The test of the
# cache turns it on with --cache-dir.
os.environ["FNN_COMPILATION_CACHE"] = "0"

jax.config.update("jax_enable_x64", True)
# On a GPU, XLA's default float32 matmul is TF32's (a 10-bit mantissa: ~1e-3 relative): the
# tests' references are float32 and float64 arithmetic, so the suite asks for full float32 there
# (users keep the default, as Keras on JAX does). A CPU computes float32 matmuls in full anyway.
if jax.default_backend() != "cpu":
    jax.config.update("jax_default_matmul_precision", "highest")

# The tests of Ctrl-C and SIGTERM send the signals to this process and to the commands they
# start. A shell without job control starts a background job (`pytest &`, a CI script's `cmd &`)
# with SIGINT ignored, and Python then installs no handler for it (nor do the processes the tests
# start, which inherit the ignoring): Python's default is put in place, as an interactive run has it.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
# the environment variable above is read when jax is first imported, which a plugin may do first
jax.config.update("jax_disable_most_optimizations", os.environ.get("JAX_DISABLE_MOST_OPTIMIZATIONS") == "1")

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


def _fnn_modules():
    return [m for name, m in list(sys.modules.items()) if name == "fnn" or name.startswith("fnn.")]


def _no_cpu_views(monkeypatch):
    """No in-place view of a device array's buffer anywhere in fnn, as on a GPU."""
    import fnn  # noqa: F401  (its modules loaded)

    for module in _fnn_modules():
        if hasattr(module, "cpu_view"):
            monkeypatch.setattr(module, "cpu_view", lambda a: None)


@pytest.fixture(autouse=os.environ.get("FNN_TEST_AS_ON_A_GPU") == "1")
def _as_on_a_gpu(monkeypatch):
    """FNN_TEST_AS_ON_A_GPU=1: every test takes a GPU's code paths (no in-place views of CPU
    buffers); the tests of CPU zero-copy then fail, as a GPU does not promise it."""
    _no_cpu_views(monkeypatch)


@pytest.fixture
def accelerator(monkeypatch):
    """The CPU made to behave as a GPU does where fnn looks: no in-place view of a device array's
    buffer (``cpu_view`` gives None), and an implicit read of an array's value to the host
    refused, as a GPU's device-to-host transfer guard refuses it (XLA does not apply the guard
    to a CPU buffer it can read without copying); ``jax.device_get``, an explicit transfer, is
    allowed. Use with ``jax.transfer_guard("disallow")``."""
    import threading

    import jax.numpy as jnp

    _no_cpu_views(monkeypatch)
    array_type, explicit = type(jnp.zeros(())), threading.local()
    value, device_get = array_type._value, jax.device_get

    def read(self):
        if not getattr(explicit, "on", False) and jax.config.jax_transfer_guard_device_to_host == "disallow":
            raise RuntimeError(f"disallowed device-to-host transfer (implicit read of {self.dtype}{list(self.shape)})")
        return value.fget(self)

    def get(x):
        explicit.on = True
        try:
            return device_get(x)
        finally:
            explicit.on = False

    monkeypatch.setattr(array_type, "_value", property(read))
    monkeypatch.setattr(jax, "device_get", get)
    # NumPy reads a CPU array through its buffer protocol, not through _value: fnn's modules see
    # a NumPy whose functions refuse a jax array under the guard, as the GPU's transfer does
    guarded = _GuardedNumPy(lambda: not getattr(explicit, "on", False))
    for module in _fnn_modules():
        if getattr(module, "np", None) is np:
            monkeypatch.setattr(module, "np", guarded)


class _GuardedNumPy:
    """NumPy, each function (ufuncs too) refusing a concrete jax array among its arguments while
    ``implicit()`` and ``jax.transfer_guard("disallow")`` hold; types, modules and constants as
    they are."""

    def __init__(self, implicit):
        self._implicit = implicit

    # these read an array's shape or dtype alone, never its values
    _METADATA = frozenset({"shape", "ndim", "size", "result_type", "can_cast", "isscalar", "iscomplexobj", "isrealobj"})

    def _refuse(self, name, args, kwargs):
        if name in self._METADATA or not self._implicit():
            return
        if jax.config.jax_transfer_guard_device_to_host != "disallow":
            return
        for a in (*args, *kwargs.values()):
            if isinstance(a, jax.Array) and not isinstance(a, jax.core.Tracer):
                raise RuntimeError(f"disallowed device-to-host transfer (numpy.{name} of {a.dtype}{list(a.shape)})")

    def __getattr__(self, name):
        attr = getattr(np, name)
        if isinstance(attr, type | types.ModuleType) or not callable(attr):
            return attr
        return _GuardedFunction(self, name, attr)


class _GuardedFunction:
    def __init__(self, owner, name, fn):
        self._owner, self._name, self._fn = owner, name, fn

    def __call__(self, *args, **kwargs):
        self._owner._refuse(self._name, args, kwargs)
        return self._fn(*args, **kwargs)

    def __getattr__(self, name):  # a ufunc's reduce, at, ...: guarded alike
        attr = getattr(self._fn, name)
        return _GuardedFunction(self._owner, f"{self._name}.{name}", attr) if callable(attr) else attr


def staged(fn):
    """``fn()`` as ONE compiled program. fn's inputs are constants of the trace (concrete NumPy
    values), so losses and metrics take the path of concrete inputs (their label and value checks
    on the host), but their operations are staged into one program rather than compiled one by
    one, as an eager call's are."""
    return jax.jit(fn)()


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
