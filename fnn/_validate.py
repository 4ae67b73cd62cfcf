"""Argument checks shared by every public function, with one rule: a wrong *type* raises
``TypeError``, a bad *value* of the right type raises ``ValueError``, and the message names the
argument and says what was expected.

NumPy scalars and 0-d arrays, and concrete 0-d jax arrays, are welcome wherever Python numbers
are (``np.float32(0.2)``, ``np.int64(3)``, ``jnp.float32(0.2)``); ``bool`` is never a number,
nor is a value held in an 8-bit float (already rounded: 0.9 in float8_e4m3fn is 0.875).
``hyper`` lets traced values through unchecked, so that functions which take hyperparameters
also run inside ``jit``/``vmap`` (hyperparameters held in an optimizer state arrive as tracers).
"""

from __future__ import annotations

import errno
import functools
import inspect
import math
import numbers
import os
import tempfile
import warnings
from collections.abc import Iterable
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

T = TypeVar("T")


def is_traced(value: Any) -> bool:
    """True for an abstract value (inside ``jit``, ``vmap``, ``grad``): it cannot be checked."""
    return isinstance(value, jax.core.Tracer)


# What a function raises under jit that it would not raise eagerly (concrete values used as
# Python numbers or bools): a layer's init that raises it runs eagerly; a schedule may not.
UNTRACEABLE = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerArrayConversionError,
    jax.errors.TracerBoolConversionError,
    jax.errors.TracerIntegerConversionError,
)


def eval_shape_or_run(fn: Any, *args: Any) -> Any:
    """``jax.eval_shape(fn, *args)``; where ``fn`` cannot be traced (a user layer's init that
    seeds NumPy from the key), ``fn`` runs eagerly instead, as ``Network.init`` runs it, and its
    arrays come back as the same ``ShapeDtypeStruct``s (so an eager result is not held on to)."""
    try:
        return jax.eval_shape(fn, *args)
    except UNTRACEABLE:
        return jax.eval_shape(lambda out: out, fn(*args))


def unbindable(fn: Any, *args: Any, **kwargs: Any) -> inspect.Signature | None:
    """``fn``'s signature if it cannot take ``args``/``kwargs`` (a call that would fail on its
    signature, not inside it); None if it can, or if its signature cannot be read (a builtin).
    A decorator's wrapper is judged, not the function it wraps: the wrapper is what is called."""
    try:
        sig = inspect.signature(fn, follow_wrapped=False)
    except (TypeError, ValueError):
        return None
    try:
        sig.bind(*args, **kwargs)
    except TypeError:
        return sig
    return None


def interval(lo: float, hi: float, lo_open: bool, hi_open: bool) -> str:
    """``in [lo, hi)``, ``> lo``, ``<= hi``...: what a value must be, in words."""
    if math.isfinite(lo) and math.isfinite(hi):
        return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if math.isfinite(lo):
        return f"{'>' if lo_open else '>='} {lo:g}"
    return f"{'<' if hi_open else '<='} {hi:g}"


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


def is_real_scalar(value: Any, arrays: tuple[type, ...] = (np.ndarray, np.generic)) -> bool:
    """A 0-d instance of ``arrays`` of a real dtype (:func:`is_real_dtype`): ``np.float16(0.1)``,
    ``ml_dtypes.bfloat16(0.1)``, ``np.array(3)``; not a bool."""
    if not isinstance(value, arrays):
        return False
    held: Any = value  # an array or scalar of one of ``arrays``
    return np.ndim(held) == 0 and is_real_dtype(held.dtype)


def is_real_number(value: Any) -> bool:
    """A real number: Python's, NumPy's or a 0-d (NumPy or jax) array of a real dtype, bfloat16
    too; not a bool."""
    if isinstance(value, (bool, np.bool_)):
        return False
    return isinstance(value, numbers.Real) or is_real_scalar(value, (np.ndarray, np.generic, jax.Array))


def _as_real(name: str, value: Any, what: str = "a real number") -> float:
    """Python and NumPy real numbers (0-d NumPy arrays, bfloat16 too) and concrete 0-d jax arrays
    of a real dtype (``jnp.float32(0.5)``), read on the host; not bools, not 8-bit floats
    (:func:`check_number_dtype`)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be {what}, got {value!r}")
    if isinstance(value, numbers.Real):
        return float(value)
    if is_traced(value):  # a setting fixed when its object is built: jit/vmap/grad cannot reach it
        raise TypeError(
            f"{name} must be {what} known when it is set, got a traced value (inside jit, vmap or grad): "
            "build the object outside the transform (to try several values at once, fnn.sweep vmaps over "
            "them: learning_rates=, weight_decays=, hparams=)"
        )
    if is_real_scalar(value, (np.ndarray, np.generic, jax.Array)):
        check_number_dtype(name, value)
        return float(np.asarray(value))
    raise TypeError(f"{name} must be {what}, got {value!r}")


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


def real(
    name: str,
    value: Any,
    lo: float = -math.inf,
    hi: float = math.inf,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    what: str = "a real number",
) -> float:
    """``value`` as a finite float in the interval ``lo..hi`` (closed unless ``*_open``);
    ``what`` describes the expected type in the TypeError."""
    v = _as_real(name, value, what)
    bounded = math.isfinite(lo) and math.isfinite(hi)
    if not math.isfinite(v) and not bounded:
        raise ValueError(f"{name} must be finite, got {value!r}")
    if not math.isfinite(v) or v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi):
        raise ValueError(f"{name} must be {interval(lo, hi, lo_open, hi_open)}, got {value!r}")
    return v


def hyper(
    name: str,
    value: Any,
    lo: float = -math.inf,
    hi: float = math.inf,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> Any:
    """:func:`real` for a hyperparameter, which may also be a scalar jax array (a value held in
    an optimizer state): a concrete one is checked and returned as it is, a traced one passes
    unchecked. Numbers come back as floats."""
    if isinstance(value, jax.Array):
        if np.ndim(value) != 0 or not jnp.issubdtype(value.dtype, jnp.number):
            raise TypeError(f"{name} must be a scalar, got an array of shape {np.shape(value)} and dtype {value.dtype}")
        if not is_traced(value):  # real() refuses an 8-bit float too
            real(name, np.asarray(value), lo, hi, lo_open=lo_open, hi_open=hi_open)
        return value
    v = real(name, value, lo, hi, lo_open=lo_open, hi_open=hi_open)
    # Held in the state as the default float (float32 without x64): 1e39 would be stored as inf.
    dtype = jax.dtypes.canonicalize_dtype(np.float64)
    if abs(v) > float(np.finfo(dtype).max):
        raise ValueError(
            f"{name}={value!r} overflows {np.dtype(dtype).name}, the dtype optimizer states hold it in "
            f"(largest: {np.finfo(dtype).max:.3g}; enable jax_enable_x64 for float64)"
        )
    return v


def integer(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int in ``[minimum, maximum]`` (NumPy integers welcome, floats and bools not)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    v = int(value)
    if minimum is not None and v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {v}")
    return v


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


def npz_reason(err: BaseException) -> str:
    """Why ``np.load(..., allow_pickle=False)`` refused a file, in words fit for a user: numpy's
    own text for a file that is not an archive suggests loading it with pickles allowed."""
    return "not an .npz archive" if "pickled" in str(err) else str(err)


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


def boolean(name: str, value: Any) -> bool:
    """``value`` as a bool (``np.bool_`` welcome; 0/1 and strings are not bools)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def choice(name: str, value: T, options: Iterable[T]) -> T:
    """``value`` if it is one of ``options`` (compared with ``==``); the message lists them."""
    options = tuple(options)
    types = {type(o) for o in options}
    if types and not any(isinstance(value, t) for t in types):
        raise TypeError(f"{name} must be one of {options}, got {type(value).__name__} {value!r}")
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


# ---------------------------------------------------------------------------------------------
# PRNG keys: typed (jax.random.key) and raw (jax.random.PRNGKey, uint32[2]) alike.


def is_typed_key(value: Any) -> bool:
    return jax.dtypes.issubdtype(getattr(value, "dtype", None), jax.dtypes.prng_key)


def is_key(value: Any) -> bool:
    """A single PRNG key, typed (``jax.random.key``) or raw (``jax.random.PRNGKey``)."""
    if not isinstance(value, (jax.Array, np.ndarray)):
        return False
    if is_typed_key(value):
        return value.ndim == 0
    return value.dtype == np.uint32 and value.ndim == 1 and value.shape[0] >= 2


def _raw_key_shape() -> tuple[int, ...]:
    """The shape of a raw key of the default PRNG implementation ((2,) for threefry)."""
    return _raw_key_shape_of(str(getattr(jax.config, "jax_default_prng_impl", "threefry2x32")))


@functools.cache
def _raw_key_shape_of(impl: str) -> tuple[int, ...]:
    return tuple(jax.eval_shape(lambda: jax.random.key_data(jax.random.key(0))).shape)


def key(name: str, value: Any) -> Any:
    """``value`` if it is one PRNG key (typed or raw); TypeError otherwise."""
    if is_key(value):
        if not is_typed_key(value) and tuple(value.shape) != _raw_key_shape():
            raise ValueError(
                f"{name} must be a PRNG key: a raw key is uint32 of shape {_raw_key_shape()} "
                f"(jax.random.PRNGKey(seed)), got shape {tuple(value.shape)}"
            )
        return value
    if isinstance(value, (jax.Array, np.ndarray)) and (is_typed_key(value) or value.dtype == np.uint32):
        raise ValueError(
            f"{name} must be ONE PRNG key, got an array of keys of shape {value.shape} (take one, e.g. {name}[0])"
        )
    raise TypeError(f"{name} must be a jax PRNG key (jax.random.key(seed) or jax.random.PRNGKey(seed)), got {value!r}")


def key_data(value: Any) -> Any:
    """The raw uint32 bits of a key or of stacked keys (typed keys unwrapped, raw ones as they are)."""
    return jax.random.key_data(value) if is_typed_key(value) else value


# ---------------------------------------------------------------------------------------------
# Paths.


def path(name: str, value: Any, *, writable: bool = False, folder: bool = False) -> str:
    """``value`` as a path string (str or ``os.PathLike``).

    With ``writable``, a run that will write there fails now rather than after training: the
    path must not be a folder (or, with ``folder``, must be one or not exist yet), and the
    nearest part of it that exists must be a folder, in which a file can be written now. The
    check creates nothing (a call refused later, for another argument, leaves no folder behind):
    the missing folders are the writer's to create when it writes."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike), got {type(value).__name__} {value!r}")
    p = os.fspath(value)
    if isinstance(p, bytes):
        p = os.fsdecode(p)
    if not p:
        raise ValueError(f"{name} must be a non-empty path")
    if writable and not folder and p.endswith(tuple(filter(None, (os.sep, os.altsep)))):
        # realpath would drop the separator and write a file where the caller meant a folder
        raise ValueError(f"{name} {p!r} ends with a path separator, so it names a folder; it must name a file")
    if writable:
        full = os.path.abspath(p)
        try:
            os.stat(full)
        except OSError as err:  # a loop of symlinks (in any part) can never be written
            if err.errno == errno.ELOOP:
                raise ValueError(f"{name} {p!r} is a loop of symbolic links: nothing can be written there") from None
        if folder and os.path.exists(full) and not os.path.isdir(full):
            raise ValueError(f"{name} {p!r} is a file; it must name a folder")
        if not folder and os.path.isdir(full):
            raise ValueError(f"{name} {p!r} is a folder; it must name a file")
        existing = full if folder else os.path.dirname(full)
        while not os.path.lexists(existing):
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing):
            raise ValueError(f"{name} {p!r}: {existing!r} is a file, not a folder")
        where = full if folder else os.path.dirname(full)
        # The only sure test of writing is to write (permissions, read-only or virtual file
        # systems): a temporary file in the nearest folder that exists, where the writer will
        # create the missing ones, removed at once.
        try:
            with tempfile.NamedTemporaryFile(dir=existing, prefix=".fnn-write-check-"):
                pass
        except OSError as err:
            raise ValueError(f"{name} {p!r}: cannot write in {where!r} ({err.strerror})") from None
    return p
