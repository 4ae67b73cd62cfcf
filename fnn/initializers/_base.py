"""What an initializer is: its type, the shape and dtype it is called with, a kernel shape's fans
(Keras's ``compute_fans``), and the flat draw every random initializer makes."""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import Array

from fnn._keys import key as check_key

Initializer = Callable[..., Array]  # (key, shape, dtype=jnp.float32) -> Array
"""The type of an initializer: ``init(key, shape, dtype=jnp.float32) -> Array``, ``shape`` an int
or a sequence of ints, ``key`` a PRNG key (ignored by the constant initializers)."""


def canonical_shape(shape: int | Sequence[int]) -> tuple[int, ...]:
    seq = (shape,) if isinstance(shape, numbers.Integral) else shape
    try:
        dims = tuple(operator.index(d) for d in seq)  # type: ignore[union-attr]
    except TypeError:
        raise TypeError(f"shape must be a sequence of ints, got {shape!r}") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"shape must have non-negative dimensions, got {dims}")
    return dims


def float_dtype(dtype: Any) -> jnp.dtype:
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"dtype must be a floating dtype for a random initializer, got {dtype}")
    return dtype


def compute_fans(shape: int | Sequence[int]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a kernel shape, by Keras's rule (see the :mod:`fnn.initializers` docstring).

    ValueError for a scalar shape or a zero fan, where variance scaling has no meaning.

    Args:
        shape: A kernel shape, an int or a sequence of ints: ``(in, out)``, ``(n,)``, or
            ``(*receptive_field, in, out)``.

    Returns:
        ``(fan_in, fan_out)``, ints.

    Raises:
        TypeError: For a shape that is not an int or a sequence of ints.
        ValueError: For a negative size, an empty shape ``()``, or a zero fan.

    Examples:
        >>> import fnn
        >>> fnn.initializers.compute_fans((3, 5)), fnn.initializers.compute_fans((2, 2, 3, 5))
        ((3, 5), (12, 20))
    """
    dims = canonical_shape(shape)
    if not dims:
        raise ValueError("shape must have at least one dimension to define fan_in/fan_out, got ()")
    if len(dims) == 1:
        fan_in = fan_out = dims[0]
    else:
        receptive_field = math.prod(dims[:-2])
        fan_in, fan_out = dims[-2] * receptive_field, dims[-1] * receptive_field
    if fan_in == 0 or fan_out == 0:
        raise ValueError(f"shape {dims} has a zero fan (fan_in={fan_in}, fan_out={fan_out})")
    return fan_in, fan_out


def flat(
    draw: Callable[..., Array],
    key: Array,
    shape: tuple[int, ...],
    dtype: Any,
    *bounds: float,
    affine: Callable[[Array], Array] | None = None,
) -> Array:
    """``draw`` over ``shape``, drawn as one flat vector and reshaped: the same bits (threefry
    fills in row-major order), and XLA:CPU compiles a 1-D draw several times faster than an N-D
    one (figures: benchmarks/RESULTS.md, "initializers"). ``affine`` (``z -> mean + std * z``)
    is applied in the dtype drawn in (:func:`_drawn_in`), before the one rounding to ``dtype``."""
    # A Keras-style int seed named here, not deep inside jax.random ("invalid PRNG key data")
    key = check_key("key", key)
    size = math.prod(shape)
    drawn_in = _drawn_in(dtype)
    if draw is jax.random.truncated_normal:
        out = draw(key, *bounds, (size,), drawn_in)
    elif draw is jax.random.uniform:
        out = draw(key, (size,), drawn_in, *bounds)
    else:
        out = draw(key, (size,), drawn_in)
    if affine is not None:
        out = affine(out)
    return out.astype(dtype).reshape(shape)


def _drawn_in(dtype: Any) -> Any:
    """The dtype a draw for ``dtype`` is made in: float32 for the 16-bit floats, rounded to them
    after. Drawn in its own 8 bits, a bfloat16 uniform is floored onto 128 values (mean 0.5 -
    2**-8: every kernel's mean a seventh of its std below 0), and the normals inherit the grid and
    the bias (float16: 1,024 values); Keras's initializers draw in float32 and cast too."""
    d = jnp.dtype(dtype)
    return jnp.dtype(jnp.float32) if jnp.issubdtype(d, jnp.floating) and d.itemsize < 4 else d
