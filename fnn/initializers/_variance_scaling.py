"""Variance scaling and the initializers built on it: Keras's :func:`variance_scaling`,
glorot, he and lecun (truncated normals), and PyTorch's xavier and kaiming (untruncated)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import Array

from fnn._validate import choice, real
from fnn.initializers._base import Initializer, canonical_shape, compute_fans, flat, float_dtype
from fnn.initializers._gain import check_gain_args, gain_squared

# Std of a standard normal truncated to [-2, 2].
TRUNCATED_NORMAL_STD = 0.87962566103423978
"""The standard deviation of a standard normal truncated to [-2, 2]; the variance-scaling
truncated normals divide by it, so that their std is ``sqrt(scale / fan)``."""

_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")


@dataclasses.dataclass(frozen=True)
class _VarianceScaling:
    scale: float
    mode: str
    distribution: str

    def __call__(self, key: Array, shape: int | Sequence[int], dtype: Any = jnp.float32) -> Array:
        dtype = float_dtype(dtype)
        fan_in, fan_out = compute_fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / fan
        shape = canonical_shape(shape)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return flat(jax.random.uniform, key, shape, dtype, -limit, limit)
        if self.distribution == "truncated_normal":
            std = math.sqrt(variance) / TRUNCATED_NORMAL_STD
            return flat(jax.random.truncated_normal, key, shape, dtype, -2.0, 2.0, affine=lambda z: std * z)
        std = math.sqrt(variance)
        return flat(jax.random.normal, key, shape, dtype, affine=lambda z: std * z)

    def __repr__(self) -> str:
        """The public call that builds an equal initializer:
        ``variance_scaling(scale=2.0, mode='fan_in', distribution='uniform')``."""
        return f"variance_scaling(scale={self.scale!r}, mode={self.mode!r}, distribution={self.distribution!r})"


def variance_scaling(scale: float = 1.0, mode: str = "fan_in", distribution: str = "truncated_normal") -> Initializer:
    """Keras's VarianceScaling: variance ``scale / fan`` (see the :mod:`fnn.initializers` docstring).

    Args:
        scale: The variance's numerator, a finite float > 0.
        mode: Which fan divides it: ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"`` (their mean),
            lower-case as Keras takes it.
        distribution: ``"truncated_normal"`` (``"normal"``, Keras's legacy spelling, is the
            same), ``"untruncated_normal"`` or ``"uniform"``, in any case (Keras lower-cases
            it: ``"Normal"``, ``"UNIFORM"``).

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
    # Keras lower-cases the distribution (not the mode): "Normal" and "UNIFORM" are accepted
    given, distributions = distribution, (*_DISTRIBUTIONS, "normal")
    distribution = choice("distribution", distribution, distributions) if not isinstance(given, str) else given.lower()
    if distribution not in distributions:
        raise ValueError(f"distribution must be one of {distributions} (in any case), got {given!r}")
    if distribution == "normal":  # Keras's legacy spelling
        distribution = "truncated_normal"
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
    nonlinearity, slope = check_gain_args(nonlinearity, a, "a")
    return _VarianceScaling(gain_squared(nonlinearity, slope), mode, distribution)


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
