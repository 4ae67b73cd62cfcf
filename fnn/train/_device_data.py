"""Data on the device for training and evaluation: the dtypes it is held in (the params' for
inputs, at least float32 for targets and weights) and the one conversion and transfer that puts
it there, a finite value that overflows its dtype named before anything is compiled."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn._dtypes import target_dtype
from fnn._validate import is_traced
from fnn.train._data_checks import check_held

# XLA:CPU adopts a NumPy array aligned to this many bytes as a device buffer without copying it
# (jax.device_put); any other host array is copied.
_ALIGN = 64


def _adoptable(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``a`` converted to ``dtype``, C-ordered, in memory aligned to ``_ALIGN`` bytes: on CPU the
    conversion's copy becomes the device array (``astype``'s copy would sit at any alignment,
    and the transfer would copy it again); elsewhere it is the source of the one transfer."""
    nbytes = a.size * dtype.itemsize
    raw = np.empty(nbytes + _ALIGN, np.uint8)
    start = -raw.ctypes.data % _ALIGN
    out = raw[start : start + nbytes].view(dtype).reshape(a.shape)
    np.copyto(out, a, casting="unsafe")  # under the caller's np.errstate: an overflow may raise
    return out


@functools.partial(jax.jit, static_argnums=1)
def _narrowed(a: jax.Array, dtype: Any) -> tuple[jax.Array, jax.Array]:
    """``a`` in the narrower ``dtype``, and whether it stayed finite: one program, as the
    conversion alone was. Read from the held values' bits: XLA:GPU may compute past a
    narrowing cast (its excess precision drops a convert to float16 that is converted back,
    as a float32 sum of the held values would: 70000 summed finite there, stored as inf)."""
    held = a.astype(dtype)
    # the params' dtypes (PARAMS_DTYPES: float8 params are refused) are IEEE formats, where a
    # value whose exponent bits are all ones is inf or NaN
    info = jnp.finfo(dtype)
    uint = np.dtype(f"uint{info.bits}")
    exponent = uint.type(((1 << info.nexp) - 1) << info.nmant)
    return held, jnp.all((jax.lax.bitcast_convert_type(held, uint) & exponent) != exponent)


def _narrows(source: Any, target: Any) -> bool:
    """Whether finite values of ``source`` (floating, integer or bool) may overflow in the
    floating ``target`` (70000 in float16)."""
    if jnp.issubdtype(source, jnp.integer):
        return bool(jnp.finfo(target).max < jnp.iinfo(source).max)
    return jnp.issubdtype(source, jnp.floating) and bool(jnp.finfo(target).max < jnp.finfo(source).max)


def to_device(
    dtype: Any, arrays: Sequence[Any], names: Sequence[str], first_row: int = 0, inputs: bool = False
) -> tuple:
    """The ``arrays``, floating ones in ``dtype`` (None stays None), on the default device; with
    ``inputs`` (a network's ``x``) integer and bool ones too, as the network computes in the
    params' dtype (int32 x under float64 params would otherwise meet float32 in a LayerNorm's
    statistics, int32 promoting with float32 there). Host arrays are converted on the host and
    transferred (``jnp.asarray`` would compile a program per shape).
    A finite value that overflows ``dtype`` (1e39 in float32, 70000 in float16) is a
    ValueError naming the array (``names``, the arrays' argument names; ``first_row``: the
    index in it of their first row, for a validation split) before anything is compiled.

    Memory: a host array that needs converting (float64 for float32 params, int64 labels
    without x64, ...) is converted once, into memory XLA:CPU adopts, so the device array is the
    only copy; one already in its dtype is transferred as it is (one device copy, none where
    XLA:CPU can adopt it); a jax array already in its dtype is used as it is. A host array's
    overflow is flagged by its cast (into bfloat16, whose cast flags none, by a pass over the
    result); a jax array's narrowing reads the converted values' bits in the same program."""

    def one(a: Any, name: str) -> Any:
        if a is None:
            return None
        floating = jnp.issubdtype(a.dtype, jnp.floating) or (  # bfloat16 too
            inputs and (np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_)
        )
        # canonical: NumPy float64 params without x64 compute in float32; native: JAX holds no
        # other byte order ('>i8' labels are converted as a wider dtype would be)
        target = np.dtype(jax.dtypes.canonicalize_dtype(dtype if floating else a.dtype)).newbyteorder("=")
        if isinstance(a, jax.Array):
            if not floating or a.dtype == target:
                return a
            if not _narrows(a.dtype, target) or is_traced(a):  # a tracer's values cannot be read
                return a.astype(target)
            held, finite = _narrowed(a, target)
            if not bool(jax.device_get(finite)):  # explicit: a transfer guard allows it
                check_held(name, a, held, first_row)
            return held
        a = np.asarray(a)
        if a.dtype != target:
            source = a
            try:  # the cast itself flags a finite value that becomes inf: no pass of its own
                with np.errstate(over="raise"):
                    a = _adoptable(source, target)
            except FloatingPointError:
                with np.errstate(over="ignore"):
                    a = _adoptable(source, target)
                check_held(name, source, a, first_row)
            else:
                if floating and target.kind != "f" and _narrows(source.dtype, target):
                    # ml_dtypes' casts (to bfloat16) never flag an overflow: a pass over the result
                    check_held(name, source, a, first_row)
        return jax.device_put(a)

    return tuple(one(a, name) for a, name in zip(arrays, names, strict=True))


def data_to_device(
    dtype: Any, x: Any, y: Any, w: Any, names: Sequence[str] = ("x", "y", "sample_weight"), first_row: int = 0
) -> tuple[Any, Any, Any]:
    """``(x, y, w)`` on the device as :func:`to_device` moves them: ``x`` in the params' dtype
    ``dtype`` (integer and bool inputs too), floating targets and weights in :func:`target_dtype` (class indices stay
    integers)."""
    (x,) = to_device(dtype, [x], names[:1], first_row, inputs=True)
    y, w = to_device(target_dtype(dtype), [y, w], names[1:], first_row)
    return x, y, w
