"""Cheap stand-ins for the smooth activations, without exp or tanh: hard_tanh (for tanh),
hard_silu (for silu), sparse_sigmoid (for sigmoid), and sparse_plus and squareplus (for softplus),
each beside its derivative ``f_grad(x, y=None)``. The first four are piecewise polynomials;
squareplus is algebraic. (hard_sigmoid, relu6 shifted, lives with the rectifiers.)

Kinks take the value ``jax.grad`` gives of ``jax.nn``'s function of the same name (Keras 3's JAX
backend calls it): hard_tanh'(±1) = 1 (the inner branch), hard_silu'(-3) = 0 and
hard_silu'(3) = 1 (the outer branches), sparse_sigmoid'(±1) = 1/4 (a clip, whose autodiff splits
each kink in halves). sparse_plus and squareplus have a continuous derivative: no kinks.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from jax import Array

from fnn.activations._base import as_float, elementwise_jvp, with_derivative
from fnn.activations._rectifiers import hard_sigmoid, hard_sigmoid_grad


def hard_tanh(x: Array) -> Array:
    """``f(x) = -1 if x < -1, x if -1 <= x <= 1, 1 if x > 1``.

    Args:
        x: Input array, any shape (integers become the default float dtype).

    Returns:
        ``f(x)``, of the shape of ``x``.

    Examples:
        >>> import fnn
        >>> fnn.activations.hard_tanh([-2.0, 0.5, 2.0]).tolist()
        [-1.0, 0.5, 1.0]
    """
    x = as_float(x)
    return jnp.where(x > 1, 1, jnp.where(x < -1, -1, x))


def hard_tanh_grad(x: Array, y: Array | None = None) -> Array:
    """``f'(x) = 1 if -1 <= x <= 1 else 0`` (1 at ±1, as jax.nn.hard_tanh).

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it; not needed here.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    x = as_float(x)
    return (~(jnp.abs(x) > 1)).astype(x.dtype)  # NaN passes its gradient on, as jax.nn.hard_tanh's


def hard_silu(x: Array) -> Array:
    """Hard SiLU / hard swish ``f(x) = x hard_sigmoid(x) = x relu6(x + 3) / 6``: 0 below -3,
    ``x`` above 3.

    Args:
        x: Input array, any shape (integers become the default float dtype).

    Returns:
        ``f(x)``, of the shape of ``x``.

    Examples:
        >>> import fnn
        >>> fnn.activations.hard_silu([-4.0, 0.0, 4.0]).tolist()
        [-0.0, 0.0, 4.0]
    """
    x = as_float(x)
    return x * hard_sigmoid(x)


def hard_silu_grad(x: Array, y: Array | None = None) -> Array:
    """``f'(x) = hard_sigmoid(x) + x hard_sigmoid'(x)``: 0 for x <= -3, ``(2x + 3)/6`` between,
    1 for x >= 3 (0 at -3 and 1 at 3, as jax.nn.hard_silu).

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it; not needed here.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    # clipped past the kinks, where the slope is flat: x * 0 would be NaN at x = +-inf
    x = jnp.clip(as_float(x), -4, 4)
    return hard_sigmoid(x) + x * hard_sigmoid_grad(x)


hard_swish_grad = hard_silu_grad


def sparse_sigmoid(x: Array) -> Array:
    """``f(x) = clip(x + 1, 0, 2) / 2`` (Blondel et al. 2019): 0 below -1, 1 above 1.

    Args:
        x: Input array, any shape (integers become the default float dtype).

    Returns:
        ``f(x)``, of the shape of ``x``.
    """
    return 0.5 * jnp.clip(as_float(x) + 1, 0, 2)


def sparse_sigmoid_grad(x: Array, y: Array | None = None) -> Array:
    """``f'(x) = 1/2 if -1 < x < 1, 0 if |x| > 1`` and 1/4 at ±1 (as jax.nn.sparse_sigmoid).

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it; not needed here.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    z = as_float(x) + 1  # test z, not x, so rounding in x + 1 agrees with the forward
    inside = (z > 0) & (z < 2)
    return jnp.where(inside, 0.5, jnp.where((z == 0) | (z == 2), 0.25, 0)).astype(z.dtype)


def sparse_plus(x: Array) -> Array:
    """``f(x) = 0 if x <= -1, (x + 1)^2 / 4 if -1 < x < 1, x if x >= 1``.

    Args:
        x: Input array, any shape (integers become the default float dtype).

    Returns:
        ``f(x)``, of the shape of ``x``.
    """
    x = as_float(x)
    z = jnp.clip(x, -1, 1) + 1  # the square only sees [-1, 1]: no overflow in the unused branch
    return jnp.where(x <= -1, 0, jnp.where(x >= 1, x, 0.25 * z * z))


def sparse_plus_grad(x: Array, y: Array | None = None) -> Array:
    """``f'(x) = 0 if x <= -1, (x + 1) / 2 if -1 < x < 1, 1 if x >= 1`` (continuous: 0 at -1, 1 at 1).

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it; not needed here.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    x = as_float(x)
    return 0.5 * (jnp.clip(x, -1, 1) + 1)


def squareplus(x: Array, b: float = 4.0) -> Array:
    """``f(x) = (x + sqrt(x^2 + b)) / 2`` (So 2021), a softplus of square roots.

    ``h = sqrt(x^2 + b)`` is taken as ``hypot(x, sqrt b)``, which cannot overflow, and ``x < 0``
    as ``(b/4) / ((h - x)/2)``, the same number without the cancellation of ``x + h``.

    Args:
        x: Input array, any shape (integers become the default float dtype).
        b: The curvature near 0, > 0 (Keras's default 4; b = 0 would be relu).

    Returns:
        ``f(x)``, of the shape of ``x``.

    Examples:
        >>> import fnn
        >>> fnn.activations.squareplus([0.0, 1.5]).tolist()
        [1.0, 2.0]
    """
    x, h, bx = _squareplus_root(x, b)
    return jnp.where(x >= 0, 0.5 * x + 0.5 * h, 0.25 * bx / (0.5 * h - 0.5 * x))


def squareplus_grad(x: Array, y: Array | None = None, b: float = 4.0) -> Array:
    """``f'(x) = (1 + x / h) / 2`` with ``h = sqrt(x^2 + b)``; for ``x < 0`` as ``b / (4 h (h - x)/2)``.

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it; not needed here.
        b: The curvature near 0, > 0.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    x = as_float(x)
    top = jnp.isposinf(x)  # x / h is inf / inf there; the slope tends to 1
    x, h, bx = _squareplus_root(jnp.where(top, jnp.zeros((), x.dtype), x), b)
    slope = jnp.where(x >= 0, 0.5 + 0.5 * x / h, 0.25 * bx / (h * (0.5 * h - 0.5 * x)))
    return jnp.where(top, jnp.ones((), x.dtype), slope)


def _squareplus_root(x: Array, b: Any) -> tuple[Array, Array, Array]:
    """``x`` as a float array, ``sqrt(x^2 + b)`` and ``b`` in its dtype (an array ``b`` of
    another float dtype would not mix with half-precision ``x`` under strict promotion)."""
    x = as_float(x)
    b = jnp.asarray(b).astype(x.dtype)
    return x, jnp.hypot(x, jnp.sqrt(b)), b


# jax's derivative of each forward above is its hand-written one (see _base.py).
hard_tanh = with_derivative(hard_tanh, elementwise_jvp(hard_tanh_grad))
hard_silu = hard_swish = with_derivative(hard_silu, elementwise_jvp(hard_silu_grad))
sparse_sigmoid = with_derivative(sparse_sigmoid, elementwise_jvp(sparse_sigmoid_grad))
sparse_plus = with_derivative(sparse_plus, elementwise_jvp(sparse_plus_grad))
squareplus = with_derivative(squareplus, elementwise_jvp(squareplus_grad))
