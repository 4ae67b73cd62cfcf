"""The rectifiers and the other piecewise-linear activations: linear, relu, relu6, leaky_relu,
elu, celu and selu (rectifiers whose negative branch is exponential), and hard_sigmoid (relu6
shifted and scaled), each beside its derivative ``f_grad(x, y=None)``.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from fnn.activations._base import as_float, elementwise_jvp, with_derivative

# Klambauer et al. (2017) to full precision, as jax.nn.selu and torch use; Keras's docstring
# quotes them rounded to 1.67326324 and 1.05070098.
SELU_ALPHA = 1.6732632423543772848170429916717
"""SELU's ``alpha`` (Klambauer et al. 2017, to full precision, as ``jax.nn.selu`` and torch)."""
SELU_SCALE = 1.0507009873554804934193349852946
"""SELU's ``scale`` (Klambauer et al. 2017, to full precision)."""


def linear(x: Array) -> Array:
    """Identity: ``f(x) = x``.

    Args:
        x: Input array, any shape (integers become the default float dtype).

    Returns:
        ``f(x)``, of the shape of ``x``.
    """
    return as_float(x)


def linear_grad(x: Array, y: Array | None = None) -> Array:
    """``f'(x) = 1``.

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it; not needed here.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    return jnp.ones_like(as_float(x))


def relu(x: Array) -> Array:
    """``f(x) = max(x, 0)``. Written as a select so NaN propagates and f'(0) = 0.

    Args:
        x: Input array, any shape (integers become the default float dtype).

    Returns:
        ``f(x)``, of the shape of ``x``.

    Examples:
        >>> import fnn
        >>> fnn.activations.relu([-1.0, 0.0, 2.0]).tolist()
        [0.0, 0.0, 2.0]
    """
    x = as_float(x)
    return jnp.where(x <= 0, 0, x)


def relu_grad(x: Array, y: Array | None = None) -> Array:
    """``f'(x) = 1 if x > 0 else 0`` (0 at the kink).

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it; not needed here.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.

    Examples:
        >>> import fnn
        >>> fnn.activations.relu_grad([-1.0, 0.0, 2.0]).tolist()
        [0.0, 0.0, 1.0]
    """
    x = as_float(x)
    return (x > 0).astype(x.dtype)


def relu6(x: Array) -> Array:
    """``f(x) = min(max(x, 0), 6)``. f'(0) = f'(6) = 0, as jax.nn.relu6.

    Args:
        x: Input array, any shape (integers become the default float dtype).

    Returns:
        ``f(x)``, of the shape of ``x``.
    """
    x = as_float(x)
    return jnp.where(x <= 0, 0, jnp.where(x >= 6, 6, x))


def relu6_grad(x: Array, y: Array | None = None) -> Array:
    """``f'(x) = 1 if 0 < x < 6 else 0``.

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it; not needed here.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    x = as_float(x)
    return ((x > 0) & (x < 6)).astype(x.dtype)


def leaky_relu(x: Array, negative_slope: float = 0.2) -> Array:
    """``f(x) = x if x >= 0 else negative_slope * x`` (Keras 3's default slope 0.2).

    Args:
        x: Input array, any shape (integers become the default float dtype).
        negative_slope: The slope for ``x < 0`` (Keras 3's default 0.2).

    Returns:
        ``f(x)``, of the shape of ``x``.

    Examples:
        >>> import fnn
        >>> fnn.activations.leaky_relu([-1.0, 2.0], negative_slope=0.5).tolist()
        [-0.5, 2.0]
    """
    x = as_float(x)
    return jnp.where(x >= 0, x, negative_slope * x)


def leaky_relu_grad(x: Array, y: Array | None = None, negative_slope: float = 0.2) -> Array:
    """``f'(x) = 1 if x >= 0 else negative_slope`` (1 at the kink, as jax.nn.leaky_relu).

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it; not needed here.
        negative_slope: The slope for ``x < 0`` (Keras 3's default 0.2).

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    x = as_float(x)
    return jnp.where(x >= 0, 1, negative_slope).astype(x.dtype)


def elu(x: Array, alpha: float = 1.0) -> Array:
    """``f(x) = x if x > 0 else alpha (exp(x) - 1)``.

    Args:
        x: Input array, any shape (integers become the default float dtype).
        alpha: The scale of the negative branch.

    Returns:
        ``f(x)``, of the shape of ``x``.
    """
    x = as_float(x)
    # exp only sees x <= 0, so the unused branch cannot overflow; a select rather than
    # minimum(x, 0), whose autodiff splits the kink 50/50, so jax.grad agrees with elu_grad.
    return jnp.where(x > 0, x, alpha * jnp.expm1(jnp.where(x > 0, 0, x)))


def elu_grad(x: Array, y: Array | None = None, alpha: float = 1.0) -> Array:
    """``f'(x) = 1 if x > 0 else alpha exp(x)`` (alpha at the kink).

    Not ``y + alpha``: that cancels to noise for x << 0, while exp costs nothing extra here.

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it; not needed here.
        alpha: The scale of the negative branch.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    x = as_float(x)
    return jnp.where(x > 0, 1, alpha * jnp.exp(jnp.where(x > 0, 0, x))).astype(x.dtype)


def celu(x: Array, alpha: float = 1.0) -> Array:
    """``f(x) = x if x > 0 else alpha (exp(x / alpha) - 1)``: elu with its negative branch
    stretched by alpha, so that f'(0) = 1 from both sides for every alpha (no kink).

    Args:
        x: Input array, any shape (integers become the default float dtype).
        alpha: The scale of the negative branch, > 0 (Keras's default 1.0: elu).

    Returns:
        ``f(x)``, of the shape of ``x``.

    Examples:
        >>> import fnn
        >>> fnn.activations.celu([2.0, 0.0]).tolist()
        [2.0, 0.0]
    """
    x = as_float(x)
    # exp only sees x <= 0, as in elu
    return jnp.where(x > 0, x, alpha * jnp.expm1(jnp.where(x > 0, 0, x) / alpha))


def celu_grad(x: Array, y: Array | None = None, alpha: float = 1.0) -> Array:
    """``f'(x) = 1 if x > 0 else exp(x / alpha)`` (1 at 0 from both sides).

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it; not needed here.
        alpha: The scale of the negative branch, > 0.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    x = as_float(x)
    return jnp.where(x > 0, 1, jnp.exp(jnp.where(x > 0, 0, x) / alpha)).astype(x.dtype)


def selu(x: Array) -> Array:
    """``f(x) = scale * elu(x, alpha)`` with the SELU constants :data:`SELU_SCALE`, :data:`SELU_ALPHA`.

    Args:
        x: Input array, any shape (integers become the default float dtype).

    Returns:
        ``f(x)``, of the shape of ``x``.
    """
    return SELU_SCALE * elu(x, SELU_ALPHA)


def selu_grad(x: Array, y: Array | None = None) -> Array:
    """``f'(x) = scale if x > 0 else scale alpha exp(x)``.

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it; not needed here.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    return SELU_SCALE * elu_grad(x, alpha=SELU_ALPHA)


def hard_sigmoid(x: Array) -> Array:
    """``f(x) = relu6(x + 3) / 6`` (Keras 3's definition): 0 below -3, 1 above 3.

    Args:
        x: Input array, any shape (integers become the default float dtype).

    Returns:
        ``f(x)``, of the shape of ``x``.

    Examples:
        >>> import fnn
        >>> fnn.activations.hard_sigmoid([-4.0, 0.0, 4.0]).tolist()
        [0.0, 0.5, 1.0]
    """
    return relu6(as_float(x) + 3) / 6


def hard_sigmoid_grad(x: Array, y: Array | None = None) -> Array:
    """``f'(x) = 1/6 if -3 < x < 3 else 0`` (0 at ±3).

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it; not needed here.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    z = as_float(x) + 3  # test z, not x, so rounding in x + 3 agrees with the forward
    return jnp.where((z > 0) & (z < 6), 1 / 6, 0).astype(z.dtype)


# jax's derivative of each forward above is its hand-written one (see _base.py).
linear = with_derivative(linear, elementwise_jvp(linear_grad))
relu = with_derivative(relu, elementwise_jvp(relu_grad))
relu6 = with_derivative(relu6, elementwise_jvp(relu6_grad))
leaky_relu = with_derivative(leaky_relu, elementwise_jvp(leaky_relu_grad))
elu = with_derivative(elu, elementwise_jvp(elu_grad))
celu = with_derivative(celu, elementwise_jvp(celu_grad))
selu = with_derivative(selu, elementwise_jvp(selu_grad))
hard_sigmoid = with_derivative(hard_sigmoid, elementwise_jvp(hard_sigmoid_grad))
