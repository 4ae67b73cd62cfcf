"""The dtypes fnn computes in and takes numbers in: params in float16, bfloat16, float32 or
float64 (:data:`PARAMS_DTYPES`; 8-bit floats are storage formats no layer, loss or optimizer
computes in), data of real numbers, and the rule that reads bfloat16 (NumPy kind ``'V'``) as the
real dtype it is. A wrong dtype is a TypeError naming the argument, as in ``_validate.py``.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def promoted(*args: Any) -> np.dtype:
    """``jnp.result_type(*args)`` (dtypes or arrays) under JAX's standard promotion, whatever the
    user's ``jax_numpy_dtype_promotion``: fnn's own dtype rules (statistics and buffers in
    float32 at least, running sums as wide as their widest part) are no implicit promotion of
    the user's, and "strict" refuses even float32 with float64. Cast to it explicitly, the
    numbers are those standard promotion gives."""
    with jax.numpy_dtype_promotion("standard"):
        return np.dtype(jnp.result_type(*args))


def at_least_float32(dtype: Any) -> np.dtype:
    """``jnp.promote_types(dtype, jnp.float32)`` under standard promotion (as :func:`promoted`):
    float16, bfloat16 and integers give float32, float64 stays (not canonicalized)."""
    with jax.numpy_dtype_promotion("standard"):
        return np.dtype(jnp.promote_types(dtype, jnp.float32))


def is_real_dtype(dtype: Any) -> bool:
    """An integer or floating dtype, bool and time deltas not: NumPy's own and ml_dtypes'
    (bfloat16, float8...), whose NumPy kind is ``'V'``, so that ``kind in "iuf"`` or
    ``np.issubdtype(d, np.floating)`` would refuse bfloat16 where float16 passes."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        return False
    if dtype.kind in "mM":  # jnp.issubdtype counts a timedelta an integer
        return False
    return bool(jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.floating))


def check_number_dtype(name: str, value: Any) -> None:
    """A TypeError naming ``name`` for a number (or array of numbers) held in an 8-bit float:
    it has already been rounded (0.9 in float8_e4m3fn is 0.875), and params compute in none
    (:data:`PARAMS_DTYPES`, the rule :func:`params_dtype` follows)."""
    dtype = getattr(value, "dtype", None)
    if dtype is None or not unsupported_float(dtype):
        return
    held = np.asarray(value, np.float64).tolist()
    raise TypeError(
        f"{name} is held in {np.dtype(dtype).name} (as {held!r}); a number must be a Python number or of {_SUPPORTED}"
    )


# The float dtypes params compute in. 8-bit (and narrower) floats are storage formats: JAX
# gives them no implicit promotion with float32, so no layer, loss or optimizer computes with them.
PARAMS_DTYPES = ("float16", "bfloat16", "float32", "float64")
_SUPPORTED = (
    f"{', '.join(PARAMS_DTYPES[:-1])} or {PARAMS_DTYPES[-1]} (8-bit floats have no arithmetic type "
    "promotion in JAX: no layer, loss or optimizer computes in them)"
)


def unsupported_float(dtype: Any) -> bool:
    """Whether ``dtype`` is a float no layer, loss or optimizer computes in (float8...)."""
    return bool(jnp.issubdtype(dtype, jnp.floating)) and np.dtype(dtype).name not in PARAMS_DTYPES


def check_params_float(name: str, dtype: Any) -> None:
    """A TypeError naming ``name`` if ``dtype`` is a float params cannot compute in (float8)."""
    dtype = np.dtype(dtype)
    if unsupported_float(dtype):
        raise TypeError(f"{name} has dtype {dtype.name}; params must be {_SUPPORTED}")


def floating_dtype(name: str, value: Any) -> np.dtype:
    """``value`` as a floating dtype params compute in (``jnp.float32``, ``"bfloat16"``,
    ``np.float64``...; float8 is refused)."""
    try:
        dtype = jnp.dtype(value)
    except TypeError:
        raise TypeError(f"{name} must be a floating dtype, got {value!r}") from None
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{name} must be a floating dtype, got {dtype}")
    if unsupported_float(dtype):
        raise TypeError(f"{name} must be {_SUPPORTED}; got {dtype.name}")
    return dtype


def params_dtype(name: str, value: Any) -> np.dtype:
    """``value`` as the dtype params are held in: :func:`floating_dtype`, canonical (float64
    without ``jax_enable_x64`` is float32, which one warning says); None is the default float
    dtype (float32, float64 with x64), without a warning."""
    if value is None:
        return np.dtype(jax.dtypes.canonicalize_dtype(np.float64))
    dtype = floating_dtype(name, value)
    held = np.dtype(jax.dtypes.canonicalize_dtype(dtype))
    if held != dtype:
        warnings.warn(
            f"{name}={dtype.name} is not available with jax_enable_x64 off: the params are {held.name} "
            "(enable x64 at startup, jax.config.update('jax_enable_x64', True), for float64)",
            UserWarning,
            stacklevel=3,
        )
    return held


def real_dtype(name: str, dtype: Any) -> None:
    """A dtype of real numbers (bool, integer or floating): strings, objects, dates and complex
    numbers are a TypeError naming ``name`` (a complex part would be dropped unseen)."""
    dtype = np.dtype(dtype)
    if not (is_real_dtype(dtype) or jnp.issubdtype(dtype, jnp.complexfloating) or dtype == np.bool_):
        raise TypeError(f"{name} must hold numbers; got dtype {dtype}")
    if jnp.issubdtype(dtype, jnp.complexfloating):
        raise TypeError(f"{name} must hold real numbers; got dtype {dtype}")


def check_params_dtypes(params: Any, name: str = "params") -> None:
    """Every params leaf a floating array: integer params would train as a silent no-op (and
    have no gradient to check). The message names the leaf and, from its path, the layer whose
    init gave it where net.init built the params."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        dtype = np.dtype(leaf.dtype) if hasattr(leaf, "dtype") else np.asarray(leaf).dtype
        if not jnp.issubdtype(dtype, jnp.floating):
            first = path[0] if path else None
            layer = f"layer {first.idx}'s" if isinstance(first, jax.tree_util.SequenceKey) else "the layer's"
            raise TypeError(
                f"{name}{jax.tree_util.keystr(path)} has dtype {dtype}: params must be floating arrays (an "
                "integer parameter cannot move by a fractional step, nor be differentiated). Build them with "
                f"net.init; if net.init gave this one, {layer} init returned it: a layer's init must return "
                "its params as floating arrays of the dtype it is given (a fixed array such as a mask belongs "
                "in its forward, not in its params)"
            )


def abstract_array(shape: tuple, dtype: Any) -> jax.ShapeDtypeStruct:
    """A ``jax.ShapeDtypeStruct`` of ``shape`` for an array of ``dtype`` as JAX holds it: the dtype
    canonical (NumPy float64 without ``jax_enable_x64`` is float32, as ``jnp.asarray`` makes it;
    asking for float64 there warns from JAX 0.12) and native; extended dtypes (typed PRNG keys) kept."""
    if jax.dtypes.issubdtype(dtype, jax.dtypes.extended):
        return jax.ShapeDtypeStruct(shape, dtype)
    return jax.ShapeDtypeStruct(shape, jax.dtypes.canonicalize_dtype(np.dtype(dtype).newbyteorder("=")))


def param_dtype(params: Any) -> Any:
    """The dtype the data moves in for ``params``: its first floating leaf's; float32 without one."""
    floating = [d for d in _leaf_dtypes(params) if jnp.issubdtype(d, jnp.floating)]
    return floating[0] if floating else jnp.float32


def _leaf_dtypes(tree: Any) -> list[np.dtype]:
    return [np.dtype(a.dtype) if hasattr(a, "dtype") else np.asarray(a).dtype for a in jax.tree.leaves(tree)]


def target_dtype(dtype: Any) -> Any:
    """The dtype floating targets and sample weights are held in for params of ``dtype``: at
    least float32. Half-precision params compute their outputs in their dtype, but the loss
    takes them against float32 targets, as Keras's losses do (bfloat16 targets of 1001, 1002
    and 1003 are 1000, 1000 and 1004)."""
    return jnp.float32 if jnp.dtype(dtype).itemsize < 4 else dtype


def input_dtype(params: Any, x_dtype: Any) -> np.dtype:
    """The dtype a network meets inputs of ``x_dtype`` in: the first floating params leaf's, as
    fit, evaluate and predict move x (integer and bool x too); ``x_dtype`` without floating
    params (as predict keeps it). Canonical (NumPy float64 without x64 is float32)."""
    floating = any(jnp.issubdtype(d, jnp.floating) for d in _leaf_dtypes(params))
    return np.dtype(jax.dtypes.canonicalize_dtype(param_dtype(params) if floating else x_dtype))


def moved_as_fit_moves(params: Any, x: Any, y: Any) -> tuple[Any, Any]:
    """``x`` in :func:`input_dtype` and ``y`` in :func:`held_dtype`, as ``fit`` and ``evaluate``
    hold the data (traced too: the casts of ``train_step`` and ``eval_step``); anything that is
    not an array (a pytree for a network of the user's, None) as it is."""
    if hasattr(x, "dtype") and not isinstance(x, (list, tuple, dict)):
        x = x.astype(input_dtype(params, x.dtype))
    if hasattr(y, "dtype") and not isinstance(y, (list, tuple, dict)):
        y = y.astype(held_dtype(params, y.dtype))
    return x, y


def held_dtype(params: Any, y_dtype: Any) -> np.dtype:
    """The dtype targets (or weights) of ``y_dtype`` are held in for ``params``: floating ones in
    :func:`target_dtype`, others as they are. Canonical."""
    floating = jnp.issubdtype(y_dtype, jnp.floating)
    return np.dtype(jax.dtypes.canonicalize_dtype(target_dtype(param_dtype(params)) if floating else y_dtype))
