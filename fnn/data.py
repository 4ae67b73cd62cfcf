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

from fnn._random import permutation_of_bits as _permutation_of_bits
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

    Args:
        x: Inputs, an array or nested lists, samples first.
        y: Targets, samples first, or None.
        names: How messages name ``x`` and ``y``.
        x_ndim: The rank ``x`` must have (None: any rank >= 1).
        n_features: The size ``x``'s last axis must have (None: any).
        allow_nonfinite: Accept NaN and inf.

    Returns:
        ``(x, y)`` as arrays (``y`` None if it was).

    Raises:
        TypeError: For data that is not numeric (or not real).
        ValueError: For a wrong rank or feature count, no samples, different sample counts, or
            NaN/inf values (the message gives their count and the first index).

    Examples:
        >>> import fnn
        >>> x, y = fnn.data.check_arrays([[1.0, 2.0], [3.0, 4.0]], [0, 1])
        >>> x.shape, y.shape
        ((2, 2), (2,))
        >>> fnn.data.check_arrays([[1.0, 2.0]], [0, 1])
        Traceback (most recent call last):
        ...
        ValueError: x and y must hold the same number of samples; got 1 in x and 2 in y
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
    return _permutation_of_bits(np.asarray(key_data(check_key("key", key))), n)


def _samples_first(a: Any, name: str) -> Any:
    """``a`` as an array of samples: nested lists become NumPy arrays; a scalar is refused."""
    if a is None:
        return None
    if not hasattr(a, "shape"):
        a = np.asarray(a)
    if len(a.shape) == 0:
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
    part empty is a ValueError, as in Keras. The parts share the input's memory where they can
    (NumPy views; a jax array on a CPU device); a jax array on an accelerator is copied.

    Args:
        x: Inputs, samples first (an array or nested lists).
        y: Targets, samples first, or None.
        validation_split: The fraction held out, in (0, 1).

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
    validation_split = real(
        "validation_split", validation_split, 0.0, 1.0, lo_open=True, hi_open=True, what="a float in (0, 1)"
    )
    x, y = _samples_first(x, "x"), _samples_first(y, "y")
    n = x.shape[0]
    if y is not None and y.shape[0] != n:
        raise ValueError(f"x and y must hold the same number of samples; got {n} and {y.shape[0]}")
    split_at = math.floor(n * (1.0 - validation_split))
    if split_at == 0 or split_at == n:
        raise ValueError(
            f"validation_split={validation_split} leaves no training or no "
            f"validation sample out of {n}; use more data or another split"
        )
    x_tr, x_val = _split_rows(x, split_at)
    y_tr, y_val = (None, None) if y is None else _split_rows(y, split_at)
    return (x_tr, y_tr), (x_val, y_val)


def _cpu_view(a: jax.Array) -> np.ndarray | None:
    """A read-only NumPy view of the buffer of a jax array held by one CPU device (None for any
    other array). Through DLPack: ``np.asarray`` would cache the view on ``a`` for good."""
    devices = a.devices()
    if (
        getattr(a, "weak_type", False)
        or not a.is_fully_addressable
        or len(devices) != 1
        or next(iter(devices)).platform != "cpu"
    ):
        return None
    exporter: Any = a  # (numpy's stubs type __dlpack__'s stream keyword narrower than jax's)
    try:
        return np.from_dlpack(exporter)
    except (BufferError, TypeError, ValueError, RuntimeError):  # a dtype DLPack lacks (bfloat16)
        return None


def _split_rows(a: Any, at: int) -> tuple[Any, Any]:
    """``(a[:at], a[at:])`` sharing ``a``'s memory where it can: NumPy views; for a jax array
    on a CPU device, arrays over its buffer (XLA:CPU adopts host memory aligned to 64 bytes
    without copying, so only a part that starts off that alignment is copied). Slicing a jax
    array anywhere else copies it: both parts together, the whole array again."""
    view = _cpu_view(a) if isinstance(a, jax.Array) else None
    if view is None:
        return a[:at], a[at:]
    where = a.sharding if getattr(a, "committed", True) else None  # a slice keeps its placement
    return jax.device_put(view[:at], where), jax.device_put(view[at:], where)


def one_hot(labels: Any, num_classes: int | None = None, dtype: Any = np.float32) -> np.ndarray:
    """One-hot rows ``out[i, labels[i]] = 1`` of shape (N, C) from int labels (N,) or (N, 1).

    ``num_classes`` defaults to ``max(labels) + 1`` (Keras's ``to_categorical``). Labels must be
    integers (integral floats are accepted) in ``[0, num_classes)``.

    Args:
        labels: Integer class ids, shape ``(N,)`` or ``(N, 1)``.
        num_classes: C (None: ``max(labels) + 1``).
        dtype: The dtype of the result.

    Returns:
        The one-hot rows, shape ``(N, C)``.

    Raises:
        ValueError: For labels that are not integers or lie outside ``[0, num_classes)``, or
            ``num_classes < 1``.

    Examples:
        >>> import fnn
        >>> fnn.data.one_hot([0, 2], 3).tolist()
        [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
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

    Attributes:
        mean: The per-feature mean of the training data (float64).
        std: The per-feature standard deviation (float64; 1 for a constant feature).

    Examples:
        >>> import fnn
        >>> s = fnn.data.Standardizer.fit([[0.0, 5.0], [2.0, 5.0]])
        >>> s.transform([[1.0, 5.0], [4.0, 5.0]]).tolist()
        [[0.0, 0.0], [3.0, 0.0]]
        >>> s.inverse_transform([[3.0, 0.0]]).tolist()
        [[4.0, 5.0]]
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: Any, axis: int = 0) -> Standardizer:
        """Statistics of ``x`` along ``axis`` (the samples), computed in float64.

        Args:
            x: Training data, samples along ``axis``.
            axis: The samples axis.

        Returns:
            The fitted Standardizer.

        Raises:
            ValueError: If ``x`` holds no sample.
        """
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
        """``(x - mean) / std`` in ``dtype`` (default: x's float dtype, else float32).

        Args:
            x: Data with the features the Standardizer was fit on (last axis).
            dtype: The result's dtype (None: x's float dtype, else float32).

        Returns:
            The scaled data.

        Raises:
            ValueError: If the feature count differs from the fit's.
        """
        x = np.asarray(x)
        if dtype is None:
            dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
        if x.shape[-1:] != self.mean.shape[-1:]:
            raise ValueError(f"x has {x.shape[-1:]} features, the Standardizer was fit on {self.mean.shape}")
        return ((x - self.mean) / self.std).astype(dtype)

    def inverse_transform(self, z: Any, dtype: Any = None) -> np.ndarray:
        """``z * std + mean``, undoing :meth:`transform`.

        Args:
            z: Scaled data.
            dtype: The result's dtype (None: z's float dtype, else float32).

        Returns:
            The data in its original units.
        """
        z = np.asarray(z)
        if dtype is None:
            dtype = z.dtype if np.issubdtype(z.dtype, np.floating) else np.float32
        return (z * self.std + self.mean).astype(dtype)


def standardize(x_train: Any, *others: Any) -> tuple[np.ndarray, ...]:
    """Scale ``x_train`` and each of ``others`` with statistics of ``x_train`` (see Standardizer).

    Returns the scaled arrays in the order given; keep ``Standardizer.fit(x_train)`` if you need
    the statistics afterwards.

    Args:
        x_train: The training inputs, samples first (the statistics come from them).
        *others: Further arrays to scale the same way (validation, test).

    Returns:
        The scaled ``x_train`` and ``others``, in order.

    Raises:
        ValueError: If ``x_train`` holds no sample or an array's feature count differs.

    Examples:
        >>> import fnn
        >>> x_tr, x_te = fnn.data.standardize([[0.0], [2.0]], [[4.0]])
        >>> x_tr.tolist(), x_te.tolist()
        ([[-1.0], [1.0]], [[3.0]])
    """
    s = Standardizer.fit(x_train)
    return tuple(s.transform(a) for a in (x_train, *others))


def __dir__() -> list[str]:
    """The public API only (implementation imports stay out of ``dir``)."""
    return sorted(__all__)
