"""Memory of fit's data path (the checks, the validation split and the transfer to the device),
against the size of the data in the params' dtype (float32).

Measured deterministically, not timed, in ``fit(epochs=0)``, which prepares the data and stops
(a callback looks at the memory at ``on_train_begin``, the data on the device): NumPy's
allocations through ``tracemalloc``, the device buffers through their addresses. On XLA:CPU a
device array may be a NumPy buffer adopted without a copy, or share the buffer of the caller's
array, so the extra memory is the host peak plus the device bytes that are neither an earlier
array's nor a NumPy buffer still held: an upper bound on the true peak that counts every copy
once. (A C-ordered float64 array sometimes passed on the old code too: when malloc happened to
return 64-byte-aligned memory, XLA adopted the float32 copy already; the F-ordered and device
cases failed every time.)
"""

from __future__ import annotations

import tracemalloc

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn

pytestmark = pytest.mark.skipif(
    jax.default_backend() != "cpu", reason="measures how XLA:CPU shares host memory with its device arrays"
)

NET = fnn.mlp([3, 1])
FEATURES = 30  # 120-byte rows: where a split falls decides whether its second part is 64-byte aligned
PARAMS = NET.init(jax.random.PRNGKey(0), (FEATURES,), jnp.float32)
N = 80_000  # 9.9 MB of float32 data: what fit allocates besides the data is well under 1% of it


def _spans(arrays) -> list[tuple[int, int]]:
    """The merged ``[start, stop)`` byte ranges of the arrays' buffers (every shard's)."""
    merged: list[tuple[int, int]] = []
    buffers = [s.data for a in arrays if not a.is_deleted() for s in a.addressable_shards]
    for start, stop in sorted((b.unsafe_buffer_pointer(), b.unsafe_buffer_pointer() + b.nbytes) for b in buffers):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged


def _bytes_outside(arrays, earlier) -> int:
    """Bytes of the arrays' buffers that lie outside the buffers of ``earlier``."""
    old = _spans(earlier)
    return sum(
        stop - start - sum(max(0, min(stop, b) - max(start, a)) for a, b in old) for start, stop in _spans(arrays)
    )


class _Snapshot(fnn.callbacks.Callback):
    """At ``on_train_begin`` (the data prepared, nothing trained): the live device arrays and
    the NumPy memory then held."""

    def on_train_begin(self, ctx):
        self.arrays = jax.live_arrays()
        self.host_held = tracemalloc.get_traced_memory()[0]


def _extra(x, y, validation_split) -> tuple[float, list]:
    """Extra memory of ``fit(epochs=0)`` on ``(x, y)`` over the float32 size of the data; and
    the device arrays it made (the prepared data among them)."""

    def fit(callbacks):
        return fnn.fit(
            NET, PARAMS, fnn.optimizers.sgd(0.1), "mse", x, y, epochs=0, batch_size=32,
            validation_split=validation_split, verbose=0, callbacks=callbacks,
        )  # fmt: skip

    fit([])  # the shape checks traced and params' copy compiled: only the data path is measured
    before = jax.live_arrays()
    snap = _Snapshot()
    tracemalloc.start()
    try:
        fit([snap])
        host_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    made = [a for a in snap.arrays if not any(a is b for b in before)]
    device = _bytes_outside(made, before)
    float32_bytes = (np.size(x) + np.size(y)) * 4
    return (host_peak + max(0, device - snap.host_held)) / float32_bytes, made


def _one(arrays, shape):
    """The one array of ``shape`` among ``arrays``."""
    (found,) = [a for a in arrays if a.shape == shape]
    return found


def _float64_data(n: int, order: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.linspace(-1.0, 1.0, n * FEATURES).reshape(n, FEATURES)
    return np.asarray(x, order=order), np.cos(x[:, :1])


@pytest.mark.parametrize("order", ["C", "F"])  # F: a pandas frame's .to_numpy()
@pytest.mark.parametrize("validation_split", [0.0, 0.25])
def test_float64_numpy_data_for_float32_params_is_converted_once(order, validation_split):
    """The conversion to float32 is the device copy (it was a host copy and a device copy: 2x)."""
    x, y = _float64_data(N, order)
    ratio, made = _extra(x, y, validation_split)
    assert ratio < 1.1
    split = N if validation_split == 0 else 3 * N // 4
    x_tr, y_tr = _one(made, (split, FEATURES)), _one(made, (split, 1))
    assert x_tr.dtype == y_tr.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(x_tr), x[:split].astype(np.float32))
    np.testing.assert_array_equal(np.asarray(y_tr), y[:split].astype(np.float32))
    if validation_split:
        np.testing.assert_array_equal(np.asarray(_one(made, (N - split, FEATURES))), x[split:].astype(np.float32))


@pytest.mark.parametrize(
    ("n", "copied"),
    [
        (N, 0.0),  # both parts start on a 64-byte boundary: no copy at all
        (N + 2, 0.25),  # the validation part does not (60,001 rows of 120 bytes): it alone is copied
    ],
)
def test_device_data_is_split_without_copying_the_training_part(n, copied):
    """validation_split on data already on the device used to copy all of it (both parts)."""
    x64, y64 = _float64_data(n, "C")
    x, y = jax.device_put(x64.astype(np.float32)), jax.device_put(y64.astype(np.float32))
    ratio, made = _extra(x, y, 0.25)
    assert ratio < copied + 0.02
    split = (3 * n) // 4
    x_tr, y_tr, x_val = _one(made, (split, FEATURES)), _one(made, (split, 1)), _one(made, (n - split, FEATURES))
    assert x_tr.unsafe_buffer_pointer() == x.unsafe_buffer_pointer()
    np.testing.assert_array_equal(np.asarray(x_tr), x64[:split].astype(np.float32))
    np.testing.assert_array_equal(np.asarray(y_tr), y64[:split].astype(np.float32))
    np.testing.assert_array_equal(np.asarray(x_val), x64[split:].astype(np.float32))


def test_split_parts_outlive_the_callers_array():
    """The parts hold the buffer they share: deleting the caller's array, or donating it to a
    program, leaves them intact (donation then copies instead)."""
    x = jax.device_put(np.arange(64 * FEATURES, dtype=np.float32).reshape(64, FEATURES))
    want = np.arange(64 * FEATURES, dtype=np.float32).reshape(64, FEATURES)
    (x_tr, _), (x_val, _) = fnn.data.train_val_split(x, None, 0.25)
    assert x_tr.unsafe_buffer_pointer() == x.unsafe_buffer_pointer()
    doubled = jax.jit(lambda a: a * 2, donate_argnums=0)(x)
    np.testing.assert_array_equal(np.asarray(doubled), 2 * want)
    x.delete()
    np.testing.assert_array_equal(np.asarray(x_tr), want[:48])
    np.testing.assert_array_equal(np.asarray(x_val), want[48:])


@pytest.mark.parametrize(
    ("dtype", "shared"),
    [(jnp.float32, True), (jnp.int32, True), (jnp.bool_, True), (jnp.bfloat16, False)],  # DLPack has no bfloat16
)
def test_train_val_split_of_device_arrays_keeps_values_dtypes_and_placement(dtype, shared):
    x = jax.device_put(np.arange(40 * 16).reshape(40, 16) % 7 > 2).astype(dtype)
    want = np.asarray(x)
    (x_tr, y_tr), (x_val, y_val) = fnn.data.train_val_split(x, x[:, 0], 0.25)
    for part, ref in ((x_tr, want[:30]), (x_val, want[30:]), (y_tr, want[:30, 0]), (y_val, want[30:, 0])):
        assert isinstance(part, jax.Array) and part.dtype == x.dtype and part.devices() == x.devices()
        np.testing.assert_array_equal(np.asarray(part), ref)
    assert (x_tr.unsafe_buffer_pointer() == x.unsafe_buffer_pointer()) == shared
