"""Data preparation: validation of arrays, batching, train/validation split, one-hot, scaling.

Everything here runs on the host before anything is compiled, in NumPy (jax arrays are accepted
and kept where no copy is needed). Batching follows Keras's ``Model.fit`` for in-memory arrays:
``ceil(N / B)`` batches per epoch, the last one partial, a fresh permutation per epoch when
shuffling, and ``validation_split`` taking the last samples before any shuffle.
"""

from __future__ import annotations

import dataclasses
import math
import weakref
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn._validate import boolean, integer, key as check_key, key_data, real

__all__ = [
    "check_arrays",
    "num_batches",
    "permutation",
    "batches",
    "train_val_split",
    "one_hot",
    "Standardizer",
    "standardize",
]


def _as_array(a: Any, name: str) -> Any:
    if a is None:
        raise ValueError(f"{name} is required; got None")
    if isinstance(a, (np.ndarray, jax.Array)):
        arr = a
    else:
        try:
            arr = np.asarray(a)
        except (ValueError, TypeError) as err:  # ragged nested lists, odd objects
            raise TypeError(f"{name} must be an array of numbers; got {type(a).__name__} ({err})") from None
    if arr.dtype.kind in "mM" or not (jnp.issubdtype(arr.dtype, jnp.number) or arr.dtype == np.bool_):
        raise TypeError(f"{name} must hold numbers; got dtype {arr.dtype}")
    if jnp.issubdtype(arr.dtype, jnp.complexfloating):
        raise TypeError(f"{name} must hold real numbers; got dtype {arr.dtype}")
    return arr


@jax.jit
def _finite_sum(a: jax.Array) -> jax.Array:
    # NaN and inf propagate through a sum, which XLA forms in one fused pass (all(isfinite(a))
    # materialised a boolean copy of the data on CPU); a finite overflow is re-checked exactly.
    return jnp.isfinite(jnp.sum(a, dtype=jnp.promote_types(a.dtype, jnp.float32)))


# jax Arrays already found finite, by id, each entry removed when its array dies. A jax.Array
# is immutable, so a second fit on the same device arrays skips a full pass over them.
_FINITE: dict[int, weakref.ref] = {}


def _known_finite(a: jax.Array) -> bool:
    ref = _FINITE.get(id(a))
    return ref is not None and ref() is a


def _remember_finite(a: jax.Array) -> None:
    key = id(a)

    def forget(_: object, key: int = key) -> None:
        _FINITE.pop(key, None)

    _FINITE[key] = weakref.ref(a, forget)


def _check_finite(a: Any, name: str) -> None:
    if not jnp.issubdtype(a.dtype, jnp.inexact):
        return
    if isinstance(a, jax.Array):
        if _known_finite(a):
            return
        ok = bool(_finite_sum(a)) or bool(jnp.all(jnp.isfinite(a)))
        if ok:
            _remember_finite(a)
    else:
        # NaN and inf propagate through a sum, which NumPy forms with a small cast buffer; only if
        # it is not finite (or a finite sum overflowed) is an elementwise check needed.
        with np.errstate(over="ignore", invalid="ignore"):
            ok = math.isfinite(float(np.sum(a, dtype=np.float64))) or bool(np.isfinite(a).all())
    if not ok:
        bad = ~np.isfinite(np.asarray(a))
        count = int(bad.sum())
        first = tuple(int(i) for i in np.argwhere(np.asarray(bad))[0])
        raise ValueError(
            f"{name} contains {count} NaN/inf value(s), the first at index {first}; clean or impute the data first"
        )


def check_arrays(
    x: Any,
    y: Any = None,
    *,
    names: tuple[str, str] = ("x", "y"),
    x_ndim: int | None = 2,
    n_features: int | None = None,
    allow_nonfinite: bool = False,
) -> tuple[Any, Any]:
    """Validate inputs and targets before anything is compiled; return them as arrays.

    Checks: numeric dtype (TypeError otherwise); x of rank ``x_ndim`` (samples, features) when
    given; ``n_features`` features when given; y of rank >= 1; at least one sample; the same
    number of samples in x and y; no NaN/inf unless ``allow_nonfinite``. Errors are ValueErrors
    that name the argument (``names``, e.g. ``("validation_data[0]", "validation_data[1]")``)
    and say what was expected. Lists become NumPy arrays; NumPy and jax arrays are kept.
    """
    x_name, y_name = names
    x = _as_array(x, x_name)
    if x_ndim is not None and x.ndim != x_ndim:
        want = "(samples, features)" if x_ndim == 2 else f"rank {x_ndim}"
        raise ValueError(f"{x_name} must be {want}; got shape {tuple(x.shape)} (rank {x.ndim})")
    if x.ndim < 1:
        raise ValueError(f"{x_name} must have a leading samples axis; got a scalar")
    if x.shape[0] == 0:
        raise ValueError(f"{x_name} is empty (0 samples)")
    if n_features is not None and x.shape[-1] != n_features:
        raise ValueError(f"{x_name} must have {n_features} features (last axis); got shape {tuple(x.shape)}")
    if not allow_nonfinite:
        _check_finite(x, x_name)
    if y is None:
        return x, None
    y = _as_array(y, y_name)
    if y.ndim < 1:
        raise ValueError(f"{y_name} must have a leading samples axis; got a scalar")
    if y.shape[0] != x.shape[0]:
        raise ValueError(
            f"{x_name} and {y_name} must hold the same number of samples; got "
            f"{x.shape[0]} in {x_name} and {y.shape[0]} in {y_name}"
        )
    if not allow_nonfinite:
        _check_finite(y, y_name)
    return x, y


def num_batches(n: int, batch_size: int) -> int:
    """Iterations per epoch: ``ceil(n / batch_size)`` (the last batch may be partial)."""
    batch_size = integer("batch_size", batch_size, 1)
    return -(-integer("n", n, 0) // batch_size)


def permutation(key: jax.Array, n: int) -> np.ndarray:
    """A permutation of ``range(n)`` drawn from a jax PRNG key (raw or typed), as NumPy int64.

    The key's bits seed NumPy's PCG64 (``np.random.default_rng(key_data).permutation(n)``):
    deterministic in the key, the same on every process and independent of
    ``jax_enable_x64``. Drawn on the host because XLA:CPU sorts to permute, and fit draws one
    per epoch (figures: benchmarks/RESULTS.md, "What changed in the library").
    """
    n = integer("n", n, 0)
    bits = key_data(check_key("key", key))
    return np.random.default_rng(np.asarray(bits, np.uint32).ravel()).permutation(n)


def batches(
    x: Any, y: Any, batch_size: int, *, shuffle: bool = False, key: jax.Array | None = None
) -> Iterator[tuple[Any, Any]]:
    """Yield ``(x_batch, y_batch)`` in Keras's order: ``ceil(N / B)`` batches, the last partial.

    With ``shuffle=True`` the samples are taken in the order of ``permutation(key, N)`` (one
    epoch; pass a new key per epoch). ``y`` may be None (batches of ``(x_batch, None)``).
    """
    batch_size = integer("batch_size", batch_size, 1)
    shuffle = boolean("shuffle", shuffle)
    n = x.shape[0]
    if y is not None and y.shape[0] != n:
        raise ValueError(f"x and y must hold the same number of samples; got {n} and {y.shape[0]}")
    if shuffle:
        if key is None:
            raise ValueError("shuffle=True needs key= (a jax PRNG key)")
        order = permutation(key, n)
    for start in range(0, n, batch_size):
        if shuffle:
            idx = order[start : start + batch_size]
            yield x[idx], (None if y is None else y[idx])
        else:
            stop = start + batch_size
            yield x[start:stop], (None if y is None else y[start:stop])


def train_val_split(x: Any, y: Any, validation_split: float) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """Keras's ``validation_split``: the LAST fraction of the samples, in order, no shuffle.

    ``split_at = floor(N * (1 - validation_split))``; returns
    ``((x[:split_at], y[:split_at]), (x[split_at:], y[split_at:]))``. A split that leaves either
    part empty is a ValueError, as in Keras.
    """
    validation_split = real(
        "validation_split", validation_split, 0.0, 1.0, lo_open=True, hi_open=True, what="a float in (0, 1)"
    )
    n = x.shape[0]
    if y is not None and y.shape[0] != n:
        raise ValueError(f"x and y must hold the same number of samples; got {n} and {y.shape[0]}")
    split_at = math.floor(n * (1.0 - validation_split))
    if split_at == 0 or split_at == n:
        raise ValueError(
            f"validation_split={validation_split} leaves no training or no "
            f"validation sample out of {n}; use more data or another split"
        )
    y_tr = None if y is None else y[:split_at]
    y_val = None if y is None else y[split_at:]
    return (x[:split_at], y_tr), (x[split_at:], y_val)


def one_hot(labels: Any, num_classes: int | None = None, dtype: Any = np.float32) -> np.ndarray:
    """One-hot rows ``out[i, labels[i]] = 1`` of shape (N, C) from int labels (N,) or (N, 1).

    ``num_classes`` defaults to ``max(labels) + 1`` (Keras's ``to_categorical``). Labels must be
    integers (integral floats are accepted) in ``[0, num_classes)``.
    """
    labels = np.asarray(labels)
    if labels.ndim > 1 and labels.shape[-1] == 1:
        labels = labels.reshape(labels.shape[:-1])
    integral = np.issubdtype(labels.dtype, np.integer) or (
        np.issubdtype(labels.dtype, np.floating) and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels))
    )
    if labels.size and not integral:
        raise ValueError(f"labels must be integer class indices; got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    num_classes = integer("num_classes", num_classes, 1)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}); got values from {labels.min()} to {labels.max()}")
    return (labels[..., None] == np.arange(num_classes)).astype(dtype)


@dataclasses.dataclass(frozen=True)
class Standardizer:
    """Feature scaling ``(x - mean) / std`` with statistics of the training data only.

    ``std`` is the population standard deviation (ddof=0, like scikit-learn's StandardScaler);
    a constant feature (std 0, or within rounding of 0) gets std 1 so it maps to 0, not NaN.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: Any, axis: int = 0) -> Standardizer:
        """Statistics of ``x`` along ``axis`` (the samples), computed in float64."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 0 or x.shape[axis] == 0:
            raise ValueError(f"x must hold at least one sample to fit; got shape {x.shape}")
        mean = x.mean(axis=axis)
        std = x.std(axis=axis)
        # Rounding leaves std ~ eps * |mean| for a constant column; treat that as zero.
        tiny = 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
        std = np.where(std <= tiny, 1.0, std)
        return cls(mean, std)

    def transform(self, x: Any, dtype: Any = None) -> np.ndarray:
        """``(x - mean) / std`` in ``dtype`` (default: x's float dtype, else float32)."""
        x = np.asarray(x)
        if dtype is None:
            dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
        if x.shape[-1:] != self.mean.shape[-1:]:
            raise ValueError(f"x has {x.shape[-1:]} features, the Standardizer was fit on {self.mean.shape}")
        return ((x - self.mean) / self.std).astype(dtype)

    def inverse_transform(self, z: Any, dtype: Any = None) -> np.ndarray:
        """``z * std + mean``, undoing :meth:`transform`."""
        z = np.asarray(z)
        if dtype is None:
            dtype = z.dtype if np.issubdtype(z.dtype, np.floating) else np.float32
        return (z * self.std + self.mean).astype(dtype)


def standardize(x_train: Any, *others: Any) -> tuple[np.ndarray, ...]:
    """Scale ``x_train`` and each of ``others`` with statistics of ``x_train`` (see Standardizer).

    Returns the scaled arrays in the order given; keep ``Standardizer.fit(x_train)`` if you need
    the statistics afterwards.
    """
    s = Standardizer.fit(x_train)
    return tuple(s.transform(a) for a in (x_train, *others))


def __dir__() -> list[str]:
    """The public API only (implementation imports stay out of ``dir``)."""
    return sorted(__all__)
