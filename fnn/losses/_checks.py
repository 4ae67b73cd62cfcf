"""The checks of a loss's inputs, shared by its kernels (``_kernels.py``, ``_focal.py``,
``_overlap.py``) and by :func:`fnn.losses.get`: ``y_true`` against ``y_pred`` (shapes, integer
class labels and their values when concrete), class axes, and the ranges of the options.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn._placement import to_host
from fnn._validate import is_real_scalar, real

Array = jax.Array


def as_float(x: Any) -> Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(float)  # the default float dtype (float32 unless x64 is enabled)
    return x


def concrete(x: Any) -> np.ndarray | None:
    """Host copy of ``x``'s values, or None for a tracer (value checks are skipped under jit)."""
    if isinstance(x, jax.core.Tracer):
        return None
    return to_host(x)


def norm_axis(axis: Any, ndim: int, loss: str) -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{loss}: axis must be an int, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{loss}: axis {axis} is out of range for y_pred of rank {ndim}")
    return int(axis) % ndim


def pair(y_true: Any, y_pred: Any, loss: str) -> tuple[Array, Array]:
    """``(y_true, y_pred)`` as floats of y_pred's dtype and of y_pred's shape."""
    p = as_float(y_pred)
    t = jnp.asarray(y_true)
    if p.ndim == 0:
        raise ValueError(f"{loss}: y_pred must have at least one axis (the batch), got a scalar")
    if t.shape != p.shape:
        trailing_one = (t.shape + (1,) == p.shape) or (t.shape == p.shape + (1,))
        if not trailing_one:
            raise ValueError(f"{loss}: y_true shape {t.shape} does not match y_pred shape {p.shape}")
        t = t.reshape(p.shape)
    return t.astype(p.dtype), p


def same_rank(x1: Array, x2: Array) -> tuple[Array, Array]:
    """Keras's ``squeeze_or_expand_to_same_rank``: where the ranks differ by one and the longer
    ends in 1, a rank-1 partner gains a trailing 1 (N against (N, 1) is N rows of one value),
    otherwise the trailing 1 is squeezed."""
    if x1.ndim == x2.ndim + 1 and x1.shape[-1] == 1:
        x1, x2 = (x1, x2[..., None]) if x2.ndim == 1 else (jnp.squeeze(x1, -1), x2)
    elif x2.ndim == x1.ndim + 1 and x2.shape[-1] == 1:
        x1, x2 = (x1[..., None], x2) if x1.ndim == 1 else (x1, jnp.squeeze(x2, -1))
    return x1, x2


def elementwise(y_true: Any, y_pred: Any, loss: str, axis: int = -1):
    """``(t, p, axis)``: axis is None for rank-1 inputs (each entry is a sample)."""
    t, p = pair(y_true, y_pred, loss)
    return t, p, (None if p.ndim == 1 else norm_axis(axis, p.ndim, loss))


# A loss option's valid values: (low, high, low excluded, high excluded).
OPTION_RANGES = {
    "label_smoothing": (0.0, 1.0, False, False),
    "alpha": (0.0, 1.0, False, False),
    "gamma": (0.0, math.inf, False, False),
    "delta": (0.0, math.inf, True, False),
    "q": (0.0, 1.0, True, True),
}
# Where a loss's option has a range of its own: weights that need not sum to 1.
LOSS_OPTION_RANGES = {
    ("categorical_focal_crossentropy", "alpha"): (0.0, math.inf, False, False),
    ("tversky", "alpha"): (0.0, math.inf, False, False),
    ("tversky", "beta"): (0.0, math.inf, False, False),
    ("circle", "gamma"): (0.0, math.inf, True, False),
    ("circle", "margin"): (-math.inf, math.inf, False, False),  # finite
}


def check_option_range(value: Any, option: str, loss: str) -> None:
    """A concrete value of ``option`` outside its range (:data:`LOSS_OPTION_RANGES`, else
    :data:`OPTION_RANGES`) is a ValueError naming it (a traced one is the caller's: it cannot be
    checked before running)."""
    bounds = LOSS_OPTION_RANGES.get((loss, option), OPTION_RANGES.get(option))
    host = isinstance(value, (numbers.Real, np.ndarray)) or is_real_scalar(value)  # bfloat16 too
    if bounds is not None and not (host or isinstance(value, jax.Array)):
        raise TypeError(f"{loss}: {option} must be a real number, got {type(value).__name__} {value!r}")
    if bounds is not None and host:
        lo, hi, lo_open, hi_open = bounds
        for v in np.asarray(value, dtype=float).reshape(-1):  # one per output, or one for all
            real(f"{loss}: {option}", float(v), lo, hi, lo_open=lo_open, hi_open=hi_open)


def contract_error(message: str) -> ValueError:
    """The loss's own mistake (a custom loss that breaks its contract, what ``fn`` and ``grad``
    return; an option that does not fit ``y_pred``), marked so that
    :func:`fnn.losses.check_targets` does not blame the targets (:func:`breaks_contract`)."""
    err = ValueError(message)
    setattr(err, "fnn_loss_contract", True)  # noqa: B010  (exceptions take attributes; mypy knows none)
    return err


def breaks_contract(err: BaseException) -> bool:
    return getattr(err, "fnn_loss_contract", False)


def per_class_option(value: Any, option: str, loss: str) -> Any:
    """An option that is a float or one value per class (categorical focal CE's ``alpha``, which
    Keras's takes as a list too): a float, or a non-empty 1-D sequence or array of values in the
    option's range (:data:`LOSS_OPTION_RANGES`), held as a tuple of floats: hashable, so that a
    Loss holding it keeps its equality and the caches keyed on it (fit's epoch). A traced jax
    array passes as it is (its values cannot be read before running; its rank is checked)."""
    if isinstance(value, jax.core.Tracer):
        if value.ndim > 1:
            raise ValueError(f"{loss}: {option} must be a float or one per class (1-D), got shape {value.shape}")
        return value
    if not isinstance(value, (list, tuple)) and np.ndim(value) == 0:
        return _in_range(value, option, loss)
    try:
        host = np.asarray(value)
    except ValueError:  # ragged
        host = None
    if host is None or host.ndim != 1 or host.size == 0:
        shape = "a ragged sequence" if host is None else f"shape {host.shape}"
        raise ValueError(f"{loss}: {option} must be a float or a non-empty 1-D sequence (one per class), got {shape}")
    return tuple(_in_range(v, option, loss) for v in host.tolist())


def _in_range(value: Any, option: str, loss: str) -> float:
    if not isinstance(value, (bool, np.bool_)):  # real() refuses them; this names a wrong type
        check_option_range(value, option, loss)
    lo, hi, lo_open, hi_open = LOSS_OPTION_RANGES.get((loss, option), OPTION_RANGES[option])
    return real(f"{loss}: {option}", value, lo, hi, lo_open=lo_open, hi_open=hi_open)


def check_class_count(value: Any, option: str, loss: str, n: int, axis_is_last: bool) -> None:
    """A per-class ``value`` (:func:`per_class_option`) holds one value per class of y_pred's
    last axis (``n``), against which it is broadcast (or one value for all)."""
    count = len(value) if isinstance(value, tuple) else (jnp.shape(value)[0] if jnp.ndim(value) == 1 else 1)
    if count not in (1, n):
        where = "classes" if axis_is_last else "entries along its last axis, against which it is broadcast"
        raise contract_error(f"{loss}: {option} has {count} values (one per class), but y_pred has {n} {where}")


def _sparse_labels(y_true: Any, p: Array, ax: int, ignore_class, loss: str) -> Array:
    """Integer labels of the per-sample shape; value checks when concrete."""
    labels = jnp.asarray(y_true)
    per_shape = p.shape[:ax] + p.shape[ax + 1 :]
    if labels.ndim == p.ndim and labels.shape[-1] == 1:
        labels = labels.reshape(labels.shape[:-1])
    if labels.shape == p.shape:  # one-hot (or probability) targets, a categorical loss's
        raise ValueError(
            f"{loss}: y_true has y_pred's shape {p.shape}, as one-hot targets do; it takes integer labels of "
            f"shape {per_shape} or {per_shape + (1,)} (for one-hot targets use categorical_crossentropy, or "
            "y_true.argmax(-1))"
        )
    if labels.shape != per_shape:
        raise ValueError(
            f"{loss}: y_true shape {jnp.shape(y_true)} does not match y_pred shape {p.shape} "
            f"(expected integer labels of shape {per_shape} or {per_shape + (1,)})"
        )
    host = concrete(y_true)
    if host is not None:
        check_label_values(host.reshape(per_shape), p.shape[ax], ignore_class, loss)
    return labels.astype(jnp.int32)


def label_inputs(y_true, y_pred, axis, ignore_class, loss: str) -> tuple[Array, Array, int]:
    """``(labels, p, class axis)`` of a loss of integer labels (checked when concrete)."""
    p = as_float(y_pred)
    if p.ndim == 0:
        raise ValueError(f"{loss}: y_pred must have a class axis, got a scalar")
    ax = norm_axis(axis, p.ndim, loss)
    return _sparse_labels(y_true, p, ax, ignore_class, loss), p, ax


def check_integer_values(host: np.ndarray, loss: str, name: str = "y_true") -> None:
    """Labels that are integers (of an integer dtype, or floats of integer values), in NumPy."""
    if not np.issubdtype(host.dtype, np.integer) and not np.all(host == np.round(host)):
        raise ValueError(f"{loss}: {name} must hold integer class ids, got non-integer values")


def check_pair_labels(host: np.ndarray, loss: str, name: str = "y_true") -> None:
    """Integer labels compared for equality only, held as int32 (as fit holds labels): a value
    past int32 would wrap onto another label, so it is refused."""
    check_integer_values(host, loss, name)
    if host.size and (np.min(host) < -(2**31) or np.max(host) >= 2**31):
        raise ValueError(
            f"{loss}: {name} must fit int32 (labels are held as int32), got values up to "
            f"{max(abs(int(np.min(host))), abs(int(np.max(host))))}; number the classes first "
            "(np.unique(labels, return_inverse=True)[1])"
        )


def check_label_values(host: np.ndarray, n_classes: int, ignore_class, loss: str) -> None:
    """Integer class ids in [0, n_classes) (or ignore_class), checked in NumPy."""
    check_integer_values(host, loss)
    bad = (host < 0) | (host >= n_classes)
    if ignore_class is not None:
        bad &= host != ignore_class
    if np.any(bad):
        raise ValueError(
            f"{loss}: labels must be in [0, {n_classes}) (the number of classes in y_pred)"
            f"{'' if ignore_class is None else f' or equal ignore_class={ignore_class}'}; "
            f"got {np.unique(host[bad])[:5].tolist()}"
        )
