"""The initializers whose distribution does not depend on the shape: Keras's random_normal,
truncated_normal and random_uniform, and the constants."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import Array

from fnn._validate import real
from fnn.initializers._base import Initializer, canonical_shape, flat, float_dtype


@dataclasses.dataclass(frozen=True)
class _Random:
    distribution: str  # "normal", "truncated_normal" (at ±2 stddev) or "uniform"
    a: float  # mean, or minval
    b: float  # stddev, or maxval

    def __call__(self, key: Array, shape: int | Sequence[int], dtype: Any = jnp.float32) -> Array:
        dtype, shape = float_dtype(dtype), canonical_shape(shape)
        if self.distribution == "uniform":
            return flat(jax.random.uniform, key, shape, dtype, self.a, self.b)
        affine = lambda z: self.a + self.b * z  # in float32 for a 16-bit dtype, then rounded
        if self.distribution == "normal":
            return flat(jax.random.normal, key, shape, dtype, affine=affine)
        return flat(jax.random.truncated_normal, key, shape, dtype, -2.0, 2.0, affine=affine)

    def __repr__(self) -> str:
        """The public call that builds an equal initializer: ``random_normal(mean=0.0, stddev=0.1)``."""
        if self.distribution == "uniform":
            return f"random_uniform(minval={self.a!r}, maxval={self.b!r})"
        factory = "random_normal" if self.distribution == "normal" else "truncated_normal"
        return f"{factory}(mean={self.a!r}, stddev={self.b!r})"


@dataclasses.dataclass(frozen=True)
class _Constant:
    value: float

    # by the value's bits: constant(-0.0) fills -0.0, and compared equal to constant(0.0) it
    # would take that one's compiled init program (equal keys must mean equal programs)
    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Constant) and self.value.hex() == other.value.hex()

    def __hash__(self) -> int:
        return hash((_Constant, self.value.hex()))

    def __call__(self, key: Array, shape: int | Sequence[int], dtype: Any = jnp.float32) -> Array:
        # key is unused; taken so every initializer has one signature.
        return jnp.full(canonical_shape(shape), self.value, dtype)

    def __repr__(self) -> str:
        """The public call that builds an equal initializer: ``constant(value=0.5)``."""
        return f"constant(value={self.value!r})"


def random_normal(mean: float = 0.0, stddev: float = 0.05) -> Initializer:
    """``N(mean, stddev^2)``, untruncated (Keras's RandomNormal defaults).

    Args:
        mean: The mean, a finite float.
        stddev: The standard deviation (before truncation), a finite float >= 0.

    Returns:
        An initializer ``init(key, shape, dtype=jnp.float32) -> Array``; calling it raises
        TypeError for a non-floating ``dtype`` or a shape that is not ints, ValueError for a
        negative size.

    Raises:
        TypeError: For a ``mean`` or ``stddev`` that is not a real number.
        ValueError: For a non-finite ``mean``, or ``stddev`` < 0 or non-finite.
    """
    return _Random("normal", real("mean", mean), real("stddev", stddev, lo=0.0))


def truncated_normal(mean: float = 0.0, stddev: float = 0.05) -> Initializer:
    """``mean + stddev * z``, ``z`` standard normal truncated to [-2, 2] (Keras's TruncatedNormal;
    like Keras, not rescaled: the resulting std is ``0.88 stddev``).

    Args:
        mean: The mean, a finite float.
        stddev: The standard deviation (before truncation), a finite float >= 0.

    Returns:
        An initializer ``init(key, shape, dtype=jnp.float32) -> Array``; calling it raises
        TypeError for a non-floating ``dtype`` or a shape that is not ints, ValueError for a
        negative size.

    Raises:
        TypeError: For a ``mean`` or ``stddev`` that is not a real number.
        ValueError: For a non-finite ``mean``, or ``stddev`` < 0 or non-finite.
    """
    return _Random("truncated_normal", real("mean", mean), real("stddev", stddev, lo=0.0))


def random_uniform(minval: float = -0.05, maxval: float = 0.05) -> Initializer:
    """``U(minval, maxval)`` (Keras's RandomUniform defaults).

    Args:
        minval: The lower bound, a finite float.
        maxval: The upper bound, a finite float >= ``minval``.

    Returns:
        An initializer ``init(key, shape, dtype=jnp.float32) -> Array``; calling it raises
        TypeError for a non-floating ``dtype`` or a shape that is not ints, ValueError for a
        negative size.

    Raises:
        TypeError: For a bound that is not a real number.
        ValueError: For a non-finite bound, or ``minval > maxval``.
    """
    minval, maxval = real("minval", minval), real("maxval", maxval)
    if minval > maxval:
        raise ValueError(f"minval must be <= maxval, got minval={minval}, maxval={maxval}")
    return _Random("uniform", minval, maxval)


def constant(value: float = 0.0) -> Initializer:
    """Every entry ``value``; any dtype.

    Args:
        value: The value, a finite float (cast to the requested dtype).

    Returns:
        An initializer ``init(key, shape, dtype=jnp.float32) -> Array`` (``key`` unused).

    Raises:
        TypeError: For a ``value`` that is not a real number.
        ValueError: For a non-finite ``value``.

    Examples:
        >>> import fnn, jax
        >>> fnn.initializers.constant(0.5)(jax.random.PRNGKey(0), (2,)).tolist()
        [0.5, 0.5]
    """
    return _Constant(real("value", value))


def zeros() -> Initializer:
    """Every entry 0 (Keras's default bias initializer); any dtype.

    Returns:
        An initializer ``init(key, shape, dtype=jnp.float32) -> Array`` (``key`` unused).
    """
    return _Constant(0.0)


def ones() -> Initializer:
    """Every entry 1; any dtype.

    Returns:
        An initializer ``init(key, shape, dtype=jnp.float32) -> Array`` (``key`` unused).
    """
    return _Constant(1.0)
