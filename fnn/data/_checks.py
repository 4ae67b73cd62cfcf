"""The checks of :func:`~fnn.data.check_arrays`: inputs and targets are numeric, real, of the
right rank and sample count, and finite, before anything is compiled (fit, evaluate and
predict run them on every array they are given).
"""

from __future__ import annotations

import math
import weakref
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn._dtypes import real_dtype
from fnn._native import native
from fnn._placement import cpu_view, to_host
from fnn._validate import is_traced


def _as_array(a: Any, name: str) -> Any:
    if a is None:
        raise ValueError(f"{name} is required; got None")
    _refuse_deleted(a, name)  # with NaN allowed too (gradcheck's inputs): not in JAX's words later
    if isinstance(a, (np.ndarray, jax.Array, jax.ShapeDtypeStruct)):
        arr = native(a, name)  # a ShapeDtypeStruct or an object array refused, in words of its own
    else:
        try:
            arr = native(np.asarray(a), name)  # a list of big-endian rows makes a big-endian array
        except (ValueError, TypeError) as err:  # ragged nested lists, odd objects
            raise TypeError(f"{name} must be an array of numbers; got {type(a).__name__} ({err})") from None
    real_dtype(name, arr.dtype)
    return arr


def _refuse_deleted(a: Any, name: str) -> None:
    if isinstance(a, jax.Array) and not is_traced(a) and a.is_deleted():
        raise ValueError(
            f"{name} is a deleted jax array (donated to a compiled program, which took its buffer): pass "
            "one that is alive, e.g. a copy made before the call that donated it"
        )


def _check_not_empty(shape: tuple, name: str) -> None:
    if shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples)")


def check_batch(x: Any, name: str = "x") -> None:
    """What the compiled steps (:func:`fnn.train_step`, :func:`fnn.eval_step`,
    :func:`fnn.value_and_grad`'s function) check of their batch: what its dtype and shape say,
    which are known while tracing, so a tracer is checked as well as an array and no value is
    read (no host sync). The messages are :func:`check_arrays`'s.

    Args:
        x: A batch of inputs, samples first (an array, a tracer, nested lists of numbers, or a
            pytree of arrays for a network of yours that takes one: each leaf is checked).
        name: How the messages name ``x``.

    Raises:
        TypeError: For complex inputs.
        ValueError: For a batch of 0 samples.
    """
    leaves = jax.tree.leaves(x)
    if not any(hasattr(leaf, "dtype") for leaf in leaves):  # nested lists of Python numbers
        try:
            leaves = [np.asarray(x)]
        except (ValueError, TypeError):  # ragged: the network's to refuse, in its words
            return
    for leaf in leaves:
        if not hasattr(leaf, "dtype"):
            continue
        real_dtype(name, leaf.dtype)
        shape = tuple(jnp.shape(leaf))
        if shape:  # a scalar is the network's to refuse
            _check_not_empty(shape, name)


def check_sample_counts(x: Any, y: Any, names: tuple[str, str] = ("x", "y")) -> None:
    """That ``x`` and ``y`` hold the same number of samples (their leading axes), read from their
    shapes alone (so tracers too, while tracing); anything without a leading axis (a pytree of
    a network of yours, a scalar) is not looked at.

    Raises:
        ValueError: For different sample counts, naming both (``names``).
    """
    x_shape: tuple = tuple(getattr(x, "shape", ()))
    y_shape: tuple = tuple(getattr(y, "shape", ()))
    if len(x_shape) and len(y_shape) and x_shape[0] != y_shape[0]:
        x_name, y_name = names
        raise ValueError(
            f"{x_name} and {y_name} must hold the same number of samples; got "
            f"{x_shape[0]} in {x_name} and {y_shape[0]} in {y_name}"
        )


@jax.jit
def _finite_sum(a: jax.Array) -> jax.Array:
    # NaN and inf propagate through a sum, which XLA forms in one fused pass (all(isfinite(a))
    # materialised a boolean copy of the data on CPU); a finite overflow is re-checked exactly.
    # at least float32, named (float8 has no implicit promotion with float32)
    return jnp.isfinite(jnp.sum(a, dtype=jnp.float32 if a.dtype.itemsize < 4 else a.dtype))


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


def _host_finite(a: np.ndarray) -> bool:
    # NaN and inf propagate through a sum, formed in float32 data's own width (a float64 sum casts
    # every element: 3.6x slower), narrower data's in float64 (NumPy casts float16 to float64
    # faster than to float32); only if it is not finite (or a finite sum overflowed) is an
    # elementwise check needed.
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.sum(a, dtype=np.float64 if a.dtype.itemsize < 4 else None)
        return math.isfinite(float(total)) or bool(np.isfinite(a).all())


def _check_finite(a: Any, name: str) -> None:
    # a traced array (the caller under the user's jit or vmap) has no values to look at
    if not jnp.issubdtype(a.dtype, jnp.inexact) or is_traced(a):
        return
    host = a
    if isinstance(a, jax.Array):
        if _known_finite(a):
            return
        # on one CPU device its buffer is read where it lies: no program compiled per data shape
        host = cpu_view(a)
        if host is not None:
            ok = _host_finite(host)
        else:  # an accelerator's, or sharded: one fused sum on the device
            # read explicitly (jax.device_get): a caller's transfer guard allows it
            ok = bool(jax.device_get(_finite_sum(a))) or bool(jax.device_get(jnp.all(jnp.isfinite(a))))
        if ok:
            _remember_finite(a)
    else:
        ok = _host_finite(a)
    if not ok:
        # on the device, the mask alone comes back: a host copy of the data would stay cached on the array
        bad = ~np.isfinite(host) if host is not None else ~to_host(jnp.isfinite(a))
        # the view let go: a traceback kept (as IPython keeps it) must not keep the buffer from donation
        del host
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
    number of samples in x and y; no NaN/inf unless ``allow_nonfinite`` (a traced array, under
    ``jax.jit`` or ``vmap``, has no values: its shape and dtype are checked). Errors are ValueErrors
    that name the argument (``names``, e.g. ``("validation_data[0]", "validation_data[1]")``)
    and say what was expected. Lists become NumPy arrays; NumPy and jax arrays are kept (a NumPy
    array of non-native byte order, ``'>f8'``, as a native copy: JAX holds no other order).

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
    _check_not_empty(tuple(x.shape), x_name)
    if n_features is not None and x.shape[-1] != n_features:
        raise ValueError(f"{x_name} must have {n_features} features (last axis); got shape {tuple(x.shape)}")
    if not allow_nonfinite:
        _check_finite(x, x_name)
    if y is None:
        return x, None
    y = _as_array(y, y_name)
    if y.ndim < 1:
        raise ValueError(f"{y_name} must have a leading samples axis; got a scalar")
    check_sample_counts(x, y, names)
    if not allow_nonfinite:
        _check_finite(y, y_name)
    return x, y
