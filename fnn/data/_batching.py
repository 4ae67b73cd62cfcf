"""Keras's ``Model.fit`` batching for in-memory arrays: ``ceil(N / B)`` batches per epoch, the
last one partial, a fresh permutation per epoch when shuffling, and ``validation_split`` taking
the last samples before any shuffle (sharing the input's memory where it can).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np

from fnn._keys import key as check_key, key_data
from fnn._placement import cpu_view, to_host
from fnn._random import permutation_of_bits as _permutation_of_bits
from fnn._validate import boolean, integer, real


def num_batches(n: int, batch_size: int) -> int:
    """Iterations per epoch: ``ceil(n / batch_size)`` (the last batch may be partial).

    Args:
        n: The number of samples (>= 0).
        batch_size: The batch size (>= 1).

    Returns:
        The number of batches.

    Raises:
        ValueError: For ``batch_size < 1`` or ``n < 0``.
        TypeError: For non-integers.

    Examples:
        >>> import fnn
        >>> fnn.data.num_batches(1150, 32), fnn.data.num_batches(1150, 1150), fnn.data.num_batches(1150, 1)
        (36, 1, 1150)
    """
    batch_size = integer("batch_size", batch_size, 1)
    return -(-integer("n", n, 0) // batch_size)


def permutation(key: jax.Array, n: int) -> np.ndarray:
    """A permutation of ``range(n)`` drawn from a jax PRNG key (raw or typed), as NumPy int64.

    The key's bits seed NumPy's PCG64 (``np.random.default_rng(key_data).permutation(n)``):
    deterministic in the key, the same on every process and independent of
    ``jax_enable_x64``. Drawn on the host because XLA:CPU sorts to permute, and fit draws one
    per epoch (figures: benchmarks/RESULTS.md, "What changed in the library").

    Args:
        key: A jax PRNG key (``jax.random.key(seed)`` or ``jax.random.PRNGKey(seed)``).
        n: The number of samples (>= 0).

    Returns:
        The permutation, shape ``(n,)``.

    Raises:
        TypeError: If ``key`` is not a PRNG key or ``n`` not an integer.
        ValueError: For ``n < 0``.

    Examples:
        >>> import fnn, jax
        >>> sorted(fnn.data.permutation(jax.random.PRNGKey(0), 5).tolist())
        [0, 1, 2, 3, 4]
    """
    n = integer("n", n, 0)
    return _permutation_of_bits(to_host(key_data(check_key("key", key))), n)


def _samples_first(a: Any, name: str) -> Any:
    """``a`` as an array of samples: nested lists become NumPy arrays; a scalar is refused."""
    if a is None:
        return None
    given = a
    if not hasattr(a, "shape"):
        a = np.asarray(a)
    if len(a.shape) == 0:
        # a dict, a set, None...: not data at all (NumPy holds it in a 0-d object array)
        if np.dtype(getattr(a, "dtype", np.float64)) == np.dtype(object):
            raise TypeError(f"{name} must be an array or nested lists of numbers, got {type(given).__name__}")
        raise ValueError(f"{name} must hold samples (an array of rank >= 1), got a scalar")
    return a


def batches(
    x: Any, y: Any, batch_size: int, *, shuffle: bool = False, key: jax.Array | None = None
) -> Iterator[tuple[Any, Any]]:
    """Yield ``(x_batch, y_batch)`` in Keras's order: ``ceil(N / B)`` batches, the last partial.

    With ``shuffle=True`` the samples are taken in the order of ``permutation(key, N)`` (one
    epoch; pass a new key per epoch). ``y`` may be None (batches of ``(x_batch, None)``).

    Args:
        x: Inputs, samples first (an array or nested lists).
        y: Targets, samples first, or None.
        batch_size: The batch size (>= 1).
        shuffle: Take the samples in a random order.
        key: The PRNG key of the order (needed with ``shuffle``).

    Yields:
        ``(x_batch, y_batch)`` pairs.

    Raises:
        ValueError: For ``batch_size < 1``, different sample counts, or ``shuffle`` without
            ``key``.
        TypeError: For a ``batch_size`` that is not an integer or a ``shuffle`` that is not a bool.

    Examples:
        >>> import fnn, numpy as np
        >>> [xb.tolist() for xb, _ in fnn.data.batches(np.arange(5), None, 2)]
        [[0, 1], [2, 3], [4]]
    """
    batch_size = integer("batch_size", batch_size, 1)
    shuffle = boolean("shuffle", shuffle)
    x, y = _samples_first(x, "x"), _samples_first(y, "y")
    n = x.shape[0]
    if y is not None and y.shape[0] != n:
        raise ValueError(f"x and y must hold the same number of samples; got {n} and {y.shape[0]}")
    if shuffle:
        if key is None:
            raise ValueError("shuffle=True needs key= (a jax PRNG key)")
        order = permutation(key, n)
    # the checks above run at the call, the batches on iteration (a generator body alone would
    # raise only at the first next(), far from the bad argument)
    return _batches(x, y, n, batch_size, order if shuffle else None)


# jitted: eager indexing puts its own constants on the device implicitly
_gather = jax.jit(lambda a, idx: a[idx])
_slice = jax.jit(lambda a, start, size: jax.lax.dynamic_slice_in_dim(a, start, size), static_argnums=2)


def _batches(x: Any, y: Any, n: int, batch_size: int, order: Any) -> Iterator[tuple[Any, Any]]:
    starts = range(0, n, batch_size)
    sizes = [min(batch_size, n - s) for s in starts]
    host = [order[s : s + k] if order is not None else np.int32(s) for s, k in zip(starts, sizes, strict=True)]
    # what indexes a jax array goes to its device explicitly, in one transfer (an index from the
    # host would be an implicit transfer per batch, which a caller's transfer guard refuses)
    device: Any = jax.device_put(host) if any(isinstance(a, jax.Array) for a in (x, y)) else None

    def take(a: Any, i: int) -> Any:
        if a is None:
            return None
        if not isinstance(a, jax.Array):
            return a[host[i]] if order is not None else a[starts[i] : starts[i] + sizes[i]]
        return _gather(a, device[i]) if order is not None else _slice(a, device[i], sizes[i])

    for i in range(len(starts)):
        yield take(x, i), take(y, i)


def _split_at(n: int, fraction: float, given: Any) -> int:
    """``floor(n * (1 - fraction))`` as NumPy computes Keras's rule with a Python int ``n`` where
    ``given`` (the user's value) has a float dtype narrower than float64: in that dtype (Keras's
    bits), or in float32 where that dtype would round ``n`` or overflow (a 16-bit float's)."""
    dtype = getattr(given, "dtype", None)
    if dtype is None or not jax.dtypes.issubdtype(dtype, np.floating) or np.dtype(dtype).itemsize >= 8:
        return math.floor(n * (1.0 - fraction))
    t = np.dtype(dtype).type
    with np.errstate(over="ignore"):
        n_here = t(n)
        kept = n_here * (t(1) - t(fraction))
    if float(n_here) != n or not np.isfinite(kept):
        kept = np.float32(n) * np.float32(t(1) - t(fraction))
    return math.floor(kept)


def train_val_split(
    x: Any, y: Any, validation_split: float, *, name: str = "validation_split"
) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """Keras's ``validation_split``: the LAST fraction of the samples, in order, no shuffle.

    ``split_at = floor(N * (1 - validation_split))``, computed as Keras computes it: in the
    fraction's own precision when it is a NumPy or jax float (``np.float32(0.2)`` holds out 2 of
    10 samples, where its float64 value, 0.20000000298, would hold out 3), else in float64; returns
    ``((x[:split_at], y[:split_at]), (x[split_at:], y[split_at:]))``. A split that leaves either
    part empty is a ValueError, as in Keras. The parts share the input's memory where they can
    (NumPy views; a jax array on a CPU device); a jax array on an accelerator is copied.

    Args:
        x: Inputs, samples first (an array or nested lists).
        y: Targets, samples first, or None.
        validation_split: The fraction held out, in (0, 1).
        name: The fraction's name in error messages (a command line gives its option's,
            ``"--validation-split"``).

    Returns:
        ``((x_train, y_train), (x_val, y_val))``.

    Raises:
        ValueError: For a fraction outside (0, 1), different sample counts, or a split that
            leaves either part empty.
        TypeError: For a fraction that is not a number.

    Examples:
        >>> import fnn, numpy as np
        >>> (x_tr, _), (x_val, _) = fnn.data.train_val_split(np.arange(10), None, 0.2)
        >>> x_tr.tolist(), x_val.tolist()
        ([0, 1, 2, 3, 4, 5, 6, 7], [8, 9])
    """
    given = validation_split
    validation_split = real(name, validation_split, 0.0, 1.0, lo_open=True, hi_open=True, what="a float in (0, 1)")
    x, y = _samples_first(x, "x"), _samples_first(y, "y")
    n = x.shape[0]
    if y is not None and y.shape[0] != n:
        raise ValueError(f"x and y must hold the same number of samples; got {n} and {y.shape[0]}")
    split_at = _split_at(n, validation_split, given)
    if split_at == 0 or split_at == n:
        raise ValueError(
            f"{name}={validation_split} leaves no training or no "
            f"validation sample out of {n}; use more data or another split"
        )
    x_tr, x_val = _split_rows(x, split_at)
    y_tr, y_val = (None, None) if y is None else _split_rows(y, split_at)
    return (x_tr, y_tr), (x_val, y_val)


def _split_rows(a: Any, at: int) -> tuple[Any, Any]:
    """``(a[:at], a[at:])`` sharing ``a``'s memory where it can: NumPy views; for a jax array
    on a CPU device, arrays over its buffer (XLA:CPU adopts host memory aligned to 64 bytes
    without copying, so only a part that starts off that alignment is copied). Slicing a jax
    array anywhere else copies it: both parts together, the whole array again."""
    if not isinstance(a, jax.Array):
        return a[:at], a[at:]
    # a weakly typed array put back from a view would come back strongly typed
    view = None if getattr(a, "weak_type", False) else cpu_view(a)
    if view is None:  # static slices: a[:at] would put the index on the device (a transfer guard refuses)
        return jax.lax.slice_in_dim(a, 0, at), jax.lax.slice_in_dim(a, at, a.shape[0])
    where = a.sharding if getattr(a, "committed", True) else None  # a slice keeps its placement
    return jax.device_put(view[:at], where), jax.device_put(view[at:], where)
