"""Weight initializers with Keras's formulas under Keras's names and PyTorch's under PyTorch's,
in the jax.nn.initializers calling style.

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

The PyTorch names follow ``torch.nn.init`` (with the fans above: fnn's kernels are ``(in, out)``,
torch's ``(out, in)``, and both call ``in`` fan_in): ``xavier_uniform`` is ``U(±gain sqrt(6 /
(fi + fo)))``, ``xavier_normal`` an UNTRUNCATED ``N(0, gain^2 2 / (fi + fo))``, ``kaiming_uniform``
``U(±gain sqrt(3 / fan))`` and ``kaiming_normal`` an untruncated ``N(0, gain^2 / fan)``, with
``gain = calculate_gain(nonlinearity, a)`` (``sqrt(2)`` for torch's default ``leaky_relu``, ``a=0``).
So ``xavier_uniform() == glorot_uniform()`` and ``kaiming_uniform() == he_uniform()``, while
``xavier_normal``/``kaiming_normal`` draw the plain normal that glorot_normal/he_normal truncate.

Initializers are frozen dataclasses: equal arguments give equal, equally hashed initializers.
"""

from __future__ import annotations

import dataclasses
import inspect
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
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "calculate_gain",
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
"""The type of an initializer: ``init(key, shape, dtype=jnp.float32) -> Array``, ``shape`` an int
or a sequence of ints, ``key`` a PRNG key (ignored by the constant initializers)."""

# Std of a standard normal truncated to [-2, 2].
TRUNCATED_NORMAL_STD = 0.87962566103423978
"""The standard deviation of a standard normal truncated to [-2, 2]; the variance-scaling
truncated normals divide by it, so that their std is ``sqrt(scale / fan)``."""

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
    """Keras's VarianceScaling: variance ``scale / fan`` (see the module docstring).

    Args:
        scale: The variance's numerator, a finite float > 0.
        mode: Which fan divides it: ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"`` (their mean).
        distribution: ``"truncated_normal"`` (``"normal"``, Keras's legacy spelling, is the
            same), ``"untruncated_normal"`` or ``"uniform"``.

    Returns:
        An initializer ``init(key, shape, dtype=jnp.float32) -> Array`` (a frozen dataclass:
        equal arguments give equal initializers). Calling it raises ValueError for a shape
        without a fan (no axis, a zero size), TypeError for a non-floating ``dtype``.

    Raises:
        TypeError: For a ``scale`` that is not a real number, or a ``mode``/``distribution``
            that is not a string.
        ValueError: For ``scale <= 0`` or non-finite, or an unknown ``mode`` or
            ``distribution``.

    Examples:
        >>> import fnn, jax
        >>> init = fnn.initializers.variance_scaling(2.0, "fan_in", "uniform")
        >>> init == fnn.initializers.he_uniform()
        True
        >>> w = init(jax.random.PRNGKey(0), (3, 5))
        >>> w.shape, bool(abs(w).max() <= (3 * 2.0 / 3) ** 0.5)  # limit sqrt(3 scale / fan_in)
        ((3, 5), True)
    """
    scale = real("scale", scale, lo=0.0, lo_open=True)
    mode = choice("mode", mode, _MODES)
    if distribution == "normal":  # Keras's legacy spelling
        distribution = "truncated_normal"
    distribution = choice("distribution", distribution, _DISTRIBUTIONS)
    return _VarianceScaling(scale, mode, distribution)


def glorot_uniform() -> Initializer:
    """``U(-limit, limit)``, ``limit = sqrt(6 / (fan_in + fan_out))`` (Xavier uniform).

    Keras's default kernel initializer (fnn's Dense uses it too). The same as
    ``variance_scaling(1.0, "fan_avg", "uniform")`` and PyTorch's ``xavier_uniform()``.

    Returns:
        An initializer ``init(key, shape, dtype=jnp.float32) -> Array`` (a frozen dataclass:
        equal arguments give equal initializers). Calling it raises ValueError for a shape
        without a fan (no axis, a zero size), TypeError for a non-floating ``dtype``.

    Examples:
        >>> import fnn, jax
        >>> w = fnn.initializers.glorot_uniform()(jax.random.PRNGKey(0), (3, 5))
        >>> w.shape, bool(abs(w).max() <= (6 / (3 + 5)) ** 0.5)
        ((3, 5), True)
    """
    return _VarianceScaling(1.0, "fan_avg", "uniform")


def glorot_normal() -> Initializer:
    """Truncated normal (±2) with std ``sqrt(2 / (fan_in + fan_out))`` (Xavier normal).

    ``variance_scaling(1.0, "fan_avg", "truncated_normal")``; PyTorch's :func:`xavier_normal`
    draws an untruncated normal.

    Returns:
        An initializer ``init(key, shape, dtype=jnp.float32) -> Array`` (a frozen dataclass:
        equal arguments give equal initializers). Calling it raises ValueError for a shape
        without a fan (no axis, a zero size), TypeError for a non-floating ``dtype``.
    """
    return _VarianceScaling(1.0, "fan_avg", "truncated_normal")


def he_uniform() -> Initializer:
    """``U(-limit, limit)``, ``limit = sqrt(6 / fan_in)`` (Kaiming uniform).

    ``variance_scaling(2.0, "fan_in", "uniform")``.

    Returns:
        An initializer ``init(key, shape, dtype=jnp.float32) -> Array`` (a frozen dataclass:
        equal arguments give equal initializers). Calling it raises ValueError for a shape
        without a fan (no axis, a zero size), TypeError for a non-floating ``dtype``.
    """
    return _VarianceScaling(2.0, "fan_in", "uniform")


def he_normal() -> Initializer:
    """Truncated normal (±2) with std ``sqrt(2 / fan_in)`` (Kaiming normal).

    ``variance_scaling(2.0, "fan_in", "truncated_normal")``; PyTorch's :func:`kaiming_normal`
    draws an untruncated normal.

    Returns:
        An initializer ``init(key, shape, dtype=jnp.float32) -> Array`` (a frozen dataclass:
        equal arguments give equal initializers). Calling it raises ValueError for a shape
        without a fan (no axis, a zero size), TypeError for a non-floating ``dtype``.
    """
    return _VarianceScaling(2.0, "fan_in", "truncated_normal")


def lecun_uniform() -> Initializer:
    """``U(-limit, limit)``, ``limit = sqrt(3 / fan_in)``.

    ``variance_scaling(1.0, "fan_in", "uniform")``.

    Returns:
        An initializer ``init(key, shape, dtype=jnp.float32) -> Array`` (a frozen dataclass:
        equal arguments give equal initializers). Calling it raises ValueError for a shape
        without a fan (no axis, a zero size), TypeError for a non-floating ``dtype``.
    """
    return _VarianceScaling(1.0, "fan_in", "uniform")


def lecun_normal() -> Initializer:
    """Truncated normal (±2) with std ``sqrt(1 / fan_in)`` (for selu networks).

    ``variance_scaling(1.0, "fan_in", "truncated_normal")``; PyTorch's
    ``kaiming_normal(nonlinearity="linear")`` draws an untruncated normal.

    Returns:
        An initializer ``init(key, shape, dtype=jnp.float32) -> Array`` (a frozen dataclass:
        equal arguments give equal initializers). Calling it raises ValueError for a shape
        without a fan (no axis, a zero size), TypeError for a non-floating ``dtype``.
    """
    return _VarianceScaling(1.0, "fan_in", "truncated_normal")


_NONLINEARITIES = (
    "linear", "sigmoid", "tanh", "relu", "leaky_relu", "selu",
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
)  # fmt: skip


def _gain_squared(nonlinearity: str, param: float | None) -> float:
    """``calculate_gain(nonlinearity, param) ** 2``, formed without a square root so that the
    defaults give exact scales (``kaiming_uniform() == he_uniform()``, scale 2.0)."""
    if nonlinearity == "tanh":
        return 25.0 / 9.0
    if nonlinearity == "relu":
        return 2.0
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return 2.0 / (1.0 + slope * slope)
    if nonlinearity == "selu":
        return 9.0 / 16.0
    return 1.0  # linear, sigmoid, conv*


def _check_gain_args(nonlinearity: Any, param: Any, name: str = "param") -> tuple[str, float | None]:
    nonlinearity = choice("nonlinearity", nonlinearity, _NONLINEARITIES)
    return nonlinearity, (None if param is None else real(name, param))


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """PyTorch's ``torch.nn.init.calculate_gain``: the factor the std of a layer's weights gets
    for the nonlinearity after it.

    linear, sigmoid and conv*: 1; tanh: 5/3; relu: ``sqrt(2)``; leaky_relu:
    ``sqrt(2 / (1 + slope^2))`` with ``slope = param`` (default 0.01); selu: 3/4.

    Args:
        nonlinearity: One of the names above (PyTorch's spelling).
        param: The negative slope of leaky_relu (ignored by the others; None: 0.01).

    Returns:
        The gain, a float.

    Raises:
        ValueError: For an unknown nonlinearity or a non-finite ``param``.
        TypeError: For a ``nonlinearity`` that is not a string, or a ``param`` that is not a
            real number.

    Examples:
        >>> import fnn
        >>> fnn.initializers.calculate_gain("relu") == 2**0.5, fnn.initializers.calculate_gain("tanh")
        (True, 1.6666666666666667)
    """
    nonlinearity, param = _check_gain_args(nonlinearity, param)
    return math.sqrt(_gain_squared(nonlinearity, param))


def xavier_uniform(gain: float = 1.0) -> Initializer:
    """PyTorch's ``xavier_uniform_``: ``U(-a, a)``, ``a = gain * sqrt(6 / (fan_in + fan_out))``
    (``xavier_uniform() == glorot_uniform()``).

    Args:
        gain: The factor of the bound, a finite float > 0 (e.g. ``calculate_gain("tanh")``).

    Returns:
        An initializer ``init(key, shape, dtype=jnp.float32) -> Array`` (a frozen dataclass:
        equal arguments give equal initializers). Calling it raises ValueError for a shape
        without a fan (no axis, a zero size), TypeError for a non-floating ``dtype``.

    Raises:
        ValueError: For ``gain <= 0`` or non-finite.
        TypeError: For a ``gain`` that is not a real number.

    Examples:
        >>> import fnn
        >>> fnn.initializers.xavier_uniform() == fnn.initializers.glorot_uniform()
        True
    """
    gain = real("gain", gain, lo=0.0, lo_open=True)
    return _VarianceScaling(gain * gain, "fan_avg", "uniform")


def xavier_normal(gain: float = 1.0) -> Initializer:
    """PyTorch's ``xavier_normal_``: ``N(0, std^2)``, ``std = gain * sqrt(2 / (fan_in + fan_out))``,
    NOT truncated (Keras's glorot_normal is).

    Args:
        gain: The factor of the std, a finite float > 0.

    Returns:
        An initializer ``init(key, shape, dtype=jnp.float32) -> Array`` (a frozen dataclass:
        equal arguments give equal initializers). Calling it raises ValueError for a shape
        without a fan (no axis, a zero size), TypeError for a non-floating ``dtype``.

    Raises:
        ValueError: For ``gain <= 0`` or non-finite.
        TypeError: For a ``gain`` that is not a real number.
    """
    gain = real("gain", gain, lo=0.0, lo_open=True)
    return _VarianceScaling(gain * gain, "fan_avg", "untruncated_normal")


def _kaiming(a: Any, mode: Any, nonlinearity: Any, distribution: str) -> Initializer:
    mode = choice("mode", mode, ("fan_in", "fan_out"))
    nonlinearity, slope = _check_gain_args(nonlinearity, a, "a")
    return _VarianceScaling(_gain_squared(nonlinearity, slope), mode, distribution)


def kaiming_uniform(a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Initializer:
    """PyTorch's ``kaiming_uniform_``: ``U(-bound, bound)``, ``bound = gain * sqrt(3 / fan)``,
    ``gain = calculate_gain(nonlinearity, a)`` and ``fan`` the ``mode`` fan; the defaults give
    ``U(±sqrt(6 / fan_in))`` (``kaiming_uniform() == he_uniform()``).

    Args:
        a: The negative slope of leaky_relu (used with ``nonlinearity="leaky_relu"`` only).
        mode: ``"fan_in"`` (keeps the forward pass's variance) or ``"fan_out"`` (the
            backward pass's).
        nonlinearity: The activation after the layer, as :func:`calculate_gain` names it.

    Returns:
        An initializer ``init(key, shape, dtype=jnp.float32) -> Array`` (a frozen dataclass:
        equal arguments give equal initializers). Calling it raises ValueError for a shape
        without a fan (no axis, a zero size), TypeError for a non-floating ``dtype``.

    Raises:
        ValueError: For an unknown ``mode`` or ``nonlinearity``, or a non-finite ``a``.
        TypeError: For a ``mode``/``nonlinearity`` that is not a string, or an ``a`` that is
            not a real number.

    Examples:
        >>> import fnn
        >>> fnn.initializers.kaiming_uniform() == fnn.initializers.he_uniform()
        True
    """
    return _kaiming(a, mode, nonlinearity, "uniform")


def kaiming_normal(a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Initializer:
    """PyTorch's ``kaiming_normal_``: ``N(0, std^2)``, ``std = gain / sqrt(fan)``, NOT truncated
    (Keras's he_normal is); the defaults give ``std = sqrt(2 / fan_in)``.

    Args:
        a: The negative slope of leaky_relu (used with ``nonlinearity="leaky_relu"`` only).
        mode: ``"fan_in"`` (keeps the forward pass's variance) or ``"fan_out"`` (the
            backward pass's).
        nonlinearity: The activation after the layer, as :func:`calculate_gain` names it.

    Returns:
        An initializer ``init(key, shape, dtype=jnp.float32) -> Array`` (a frozen dataclass:
        equal arguments give equal initializers). Calling it raises ValueError for a shape
        without a fan (no axis, a zero size), TypeError for a non-floating ``dtype``.

    Raises:
        ValueError: For an unknown ``mode`` or ``nonlinearity``, or a non-finite ``a``.
        TypeError: For a ``mode``/``nonlinearity`` that is not a string, or an ``a`` that is
            not a real number.
    """
    return _kaiming(a, mode, nonlinearity, "untruncated_normal")


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


_FACTORIES: dict[str, Callable[..., Initializer]] = {
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "he_uniform": he_uniform,
    "he_normal": he_normal,
    "lecun_uniform": lecun_uniform,
    "lecun_normal": lecun_normal,
    "xavier_uniform": xavier_uniform,
    "xavier_normal": xavier_normal,
    "kaiming_uniform": kaiming_uniform,
    "kaiming_normal": kaiming_normal,
    "random_normal": random_normal,
    "truncated_normal": truncated_normal,
    "random_uniform": random_uniform,
    "variance_scaling": variance_scaling,
    "constant": constant,
    "zeros": zeros,
    "ones": ones,
}
# Keras's aliases. The PyTorch names are factories of their own: torch's normals are untruncated.
_NAMES = Registry(
    "initializer",
    _FACTORIES,
    aliases={"normal": "random_normal", "uniform": "random_uniform", "zero": "zeros", "one": "ones"},
)


def names() -> list[str]:
    """All known initializer names, aliases included, sorted.

    Returns:
        The names :func:`get` accepts (also in any case, without underscores: Keras's class
        names such as ``"GlorotUniform"`` resolve).

    Examples:
        >>> import fnn
        >>> "glorot_uniform" in fnn.initializers.names(), "zero" in fnn.initializers.names()
        (True, True)
    """
    return _NAMES.names()


def get(identifier: str | Initializer, **kwargs: Any) -> Initializer:
    """An initializer by name (keywords go to its factory), or a callable passed through.

    ``get("he_normal")``, ``get("random_normal", stddev=0.1)``. ValueError for an unknown name
    (listing the known ones); TypeError for anything that is neither a name nor a callable.

    Args:
        identifier: An initializer name (:func:`names`; case and underscores ignored), or an
            initializer (any callable), returned as it is.
        **kwargs: The named initializer's arguments (``stddev``, ``gain``...).

    Returns:
        The initializer.

    Raises:
        ValueError: For an unknown name, or a bad argument value.
        TypeError: For an ``identifier`` that is neither a name nor a callable, a callable that
            does not take ``(key, shape, dtype)``, keywords given with a callable, or a keyword
            the named initializer does not take.

    Examples:
        >>> import fnn
        >>> fnn.initializers.get("GlorotUniform") == fnn.initializers.glorot_uniform()
        True
        >>> fnn.initializers.get("random_normal", stddev=0.1) == fnn.initializers.random_normal(stddev=0.1)
        True
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
        _check_signature(identifier)
        return identifier
    raise TypeError(f"initializer must be a name (str) or a callable, got {type(identifier).__name__}")


def _check_signature(init: Callable) -> None:
    """An initializer of the user's must take ``(key, shape, dtype)``: a layer passes all three."""
    try:
        sig = inspect.signature(init)
    except (TypeError, ValueError):  # a builtin or C callable: no verdict
        return
    try:
        sig.bind(None, None, None)
    except TypeError:
        name = getattr(init, "__name__", None) or repr(init)
        raise TypeError(
            f"initializer {name} must take (key, shape, dtype) (the jax.nn.initializers signature; dtype may "
            f"default to jnp.float32), but it takes {sig}"
        ) from None


def __dir__() -> list[str]:
    """The public API only (implementation imports stay out of ``dir``)."""
    return sorted(__all__)
