"""Weight initializers with Keras's formulas, in the jax.nn.initializers calling style.

Each public factory returns an initializer ``init(key, shape, dtype=jnp.float32) -> Array``::

    init = glorot_uniform()
    w = init(key, (3, 4), jnp.float32)

Fans follow Keras's ``compute_fans``: a 2-D kernel ``(in, out)`` has ``fan_in = in`` and
``fan_out = out``; a 1-D shape ``(n,)`` has both equal to ``n``; a >2-D kernel
``(*receptive_field, in, out)`` multiplies both by ``prod(receptive_field)``.

Variance scaling with ``s = scale / fan`` (``fan`` = fan_in, fan_out or their mean):

* ``uniform``: ``U(-limit, limit)``, ``limit = sqrt(3 s)``;
* ``truncated_normal``: a standard normal truncated to ``[-2, 2]``, times
  ``sqrt(s) / 0.87962566103423978`` (the std of that truncated normal), so the std is ``sqrt(s)``;
* ``untruncated_normal``: ``N(0, s)``.

glorot = (1, fan_avg), he = (2, fan_in), lecun = (1, fan_in); so glorot_uniform is
``U(±sqrt(6 / (fi + fo)))``, he_uniform ``U(±sqrt(6 / fi))``, lecun_uniform ``U(±sqrt(3 / fi))``.

Initializers are frozen dataclasses: equal arguments give equal, equally hashed initializers.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import operator
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import Array

from fnn._registry import Registry
from fnn._validate import choice, real

__all__ = [
    "Initializer",
    "TRUNCATED_NORMAL_STD",
    "compute_fans",
    "variance_scaling",
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "random_normal",
    "truncated_normal",
    "random_uniform",
    "constant",
    "zeros",
    "ones",
    "names",
    "get",
]

Initializer = Callable[..., Array]  # (key, shape, dtype=jnp.float32) -> Array

# Std of a standard normal truncated to [-2, 2].
TRUNCATED_NORMAL_STD = 0.87962566103423978

_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")


def _canonical_shape(shape: int | Sequence[int]) -> tuple[int, ...]:
    seq = (shape,) if isinstance(shape, numbers.Integral) else shape
    try:
        dims = tuple(operator.index(d) for d in seq)  # type: ignore[union-attr]
    except TypeError:
        raise TypeError(f"shape must be a sequence of ints, got {shape!r}") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"shape must have non-negative dimensions, got {dims}")
    return dims


def _float_dtype(dtype: Any) -> jnp.dtype:
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"dtype must be a floating dtype for a random initializer, got {dtype}")
    return dtype


def compute_fans(shape: int | Sequence[int]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a kernel shape, by Keras's rule (see the module docstring).

    ValueError for a scalar shape or a zero fan, where variance scaling has no meaning.
    """
    dims = _canonical_shape(shape)
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


def _flat(draw: Callable[..., Array], key: Array, shape: tuple[int, ...], dtype: Any, *bounds: float) -> Array:
    """``draw`` over ``shape``, drawn as one flat vector and reshaped: the same bits (threefry
    fills in row-major order), and XLA:CPU compiles a 1-D draw several times faster than an N-D
    one (figures: benchmarks/RESULTS.md, "initializers")."""
    size = math.prod(shape)
    if draw is jax.random.truncated_normal:
        return draw(key, *bounds, (size,), dtype).reshape(shape)
    if draw is jax.random.uniform:
        return draw(key, (size,), dtype, *bounds).reshape(shape)
    return draw(key, (size,), dtype).reshape(shape)


@dataclasses.dataclass(frozen=True)
class _VarianceScaling:
    scale: float
    mode: str
    distribution: str

    def __call__(self, key: Array, shape: int | Sequence[int], dtype: Any = jnp.float32) -> Array:
        dtype = _float_dtype(dtype)
        fan_in, fan_out = compute_fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / fan
        shape = _canonical_shape(shape)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return _flat(jax.random.uniform, key, shape, dtype, -limit, limit)
        if self.distribution == "truncated_normal":
            std = math.sqrt(variance) / TRUNCATED_NORMAL_STD
            return std * _flat(jax.random.truncated_normal, key, shape, dtype, -2.0, 2.0)
        return math.sqrt(variance) * _flat(jax.random.normal, key, shape, dtype)


@dataclasses.dataclass(frozen=True)
class _Random:
    distribution: str  # "normal", "truncated_normal" (at ±2 stddev) or "uniform"
    a: float  # mean, or minval
    b: float  # stddev, or maxval

    def __call__(self, key: Array, shape: int | Sequence[int], dtype: Any = jnp.float32) -> Array:
        dtype, shape = _float_dtype(dtype), _canonical_shape(shape)
        if self.distribution == "uniform":
            return _flat(jax.random.uniform, key, shape, dtype, self.a, self.b)
        if self.distribution == "normal":
            z = _flat(jax.random.normal, key, shape, dtype)
        else:
            z = _flat(jax.random.truncated_normal, key, shape, dtype, -2.0, 2.0)
        return self.a + self.b * z


@dataclasses.dataclass(frozen=True)
class _Constant:
    value: float

    def __call__(self, key: Array, shape: int | Sequence[int], dtype: Any = jnp.float32) -> Array:
        # key is unused; taken so every initializer has one signature.
        return jnp.full(_canonical_shape(shape), self.value, dtype)


def variance_scaling(scale: float = 1.0, mode: str = "fan_in", distribution: str = "truncated_normal") -> Initializer:
    """Keras's VarianceScaling: variance ``scale / fan`` (see the module docstring)."""
    scale = real("scale", scale, lo=0.0, lo_open=True)
    mode = choice("mode", mode, _MODES)
    if distribution == "normal":  # Keras's legacy spelling
        distribution = "truncated_normal"
    distribution = choice("distribution", distribution, _DISTRIBUTIONS)
    return _VarianceScaling(scale, mode, distribution)


def glorot_uniform() -> Initializer:
    """``U(-limit, limit)``, ``limit = sqrt(6 / (fan_in + fan_out))`` (Xavier uniform)."""
    return _VarianceScaling(1.0, "fan_avg", "uniform")


def glorot_normal() -> Initializer:
    """Truncated normal (±2) with std ``sqrt(2 / (fan_in + fan_out))`` (Xavier normal)."""
    return _VarianceScaling(1.0, "fan_avg", "truncated_normal")


def he_uniform() -> Initializer:
    """``U(-limit, limit)``, ``limit = sqrt(6 / fan_in)`` (Kaiming uniform)."""
    return _VarianceScaling(2.0, "fan_in", "uniform")


def he_normal() -> Initializer:
    """Truncated normal (±2) with std ``sqrt(2 / fan_in)`` (Kaiming normal)."""
    return _VarianceScaling(2.0, "fan_in", "truncated_normal")


def lecun_uniform() -> Initializer:
    """``U(-limit, limit)``, ``limit = sqrt(3 / fan_in)``."""
    return _VarianceScaling(1.0, "fan_in", "uniform")


def lecun_normal() -> Initializer:
    """Truncated normal (±2) with std ``sqrt(1 / fan_in)`` (for selu networks)."""
    return _VarianceScaling(1.0, "fan_in", "truncated_normal")


def random_normal(mean: float = 0.0, stddev: float = 0.05) -> Initializer:
    """``N(mean, stddev^2)``, untruncated (Keras's RandomNormal defaults)."""
    return _Random("normal", real("mean", mean), real("stddev", stddev, lo=0.0))


def truncated_normal(mean: float = 0.0, stddev: float = 0.05) -> Initializer:
    """``mean + stddev * z``, ``z`` standard normal truncated to [-2, 2] (Keras's TruncatedNormal;
    like Keras, not rescaled: the resulting std is ``0.88 stddev``)."""
    return _Random("truncated_normal", real("mean", mean), real("stddev", stddev, lo=0.0))


def random_uniform(minval: float = -0.05, maxval: float = 0.05) -> Initializer:
    """``U(minval, maxval)`` (Keras's RandomUniform defaults)."""
    minval, maxval = real("minval", minval), real("maxval", maxval)
    if minval > maxval:
        raise ValueError(f"minval must be <= maxval, got minval={minval}, maxval={maxval}")
    return _Random("uniform", minval, maxval)


def constant(value: float = 0.0) -> Initializer:
    """Every entry ``value``; any dtype."""
    return _Constant(real("value", value))


def zeros() -> Initializer:
    """Every entry 0 (Keras's default bias initializer); any dtype."""
    return _Constant(0.0)


def ones() -> Initializer:
    """Every entry 1; any dtype."""
    return _Constant(1.0)


_FACTORIES: dict[str, Callable[..., Initializer]] = {
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "he_uniform": he_uniform,
    "he_normal": he_normal,
    "lecun_uniform": lecun_uniform,
    "lecun_normal": lecun_normal,
    "random_normal": random_normal,
    "truncated_normal": truncated_normal,
    "random_uniform": random_uniform,
    "variance_scaling": variance_scaling,
    "constant": constant,
    "zeros": zeros,
    "ones": ones,
}
# Keras's aliases, plus the PyTorch names for the same formulas.
_NAMES = Registry(
    "initializer",
    _FACTORIES,
    aliases={
        "normal": "random_normal",
        "uniform": "random_uniform",
        "zero": "zeros",
        "one": "ones",
        "xavier_uniform": "glorot_uniform",
        "xavier_normal": "glorot_normal",
        "kaiming_uniform": "he_uniform",
        "kaiming_normal": "he_normal",
    },
)


def names() -> list[str]:
    """All known initializer names, aliases included, sorted."""
    return _NAMES.names()


def get(identifier: str | Initializer, **kwargs: Any) -> Initializer:
    """An initializer by name (keywords go to its factory), or a callable passed through.

    ``get("he_normal")``, ``get("random_normal", stddev=0.1)``. ValueError for an unknown name
    (listing the known ones); TypeError for anything that is neither a name nor a callable.
    """
    if isinstance(identifier, str):
        factory = _NAMES.lookup(identifier)
        try:
            return factory(**kwargs)
        except TypeError as e:  # e.g. an unexpected keyword: say which initializer got it
            raise TypeError(f"initializer {identifier!r}: {e}") from None
    if callable(identifier):
        if kwargs:
            raise TypeError("initializer: keyword arguments only apply to a name, not a callable")
        return identifier
    raise TypeError(f"initializer must be a name (str) or a callable, got {type(identifier).__name__}")


def __dir__() -> list[str]:
    """The public API only (implementation imports stay out of ``dir``)."""
    return sorted(__all__)
