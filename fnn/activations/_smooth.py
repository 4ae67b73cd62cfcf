"""The smooth activations: sigmoid and log_sigmoid, tanh, gelu and its tanh approximation, silu
(swish), softplus, softsign, mish and exponential, each beside its derivative ``f_grad(x, y=None)``.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax import Array, lax

from fnn.activations._base import as_float, elementwise_jvp, with_derivative

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
# |x| beyond which sigmoid(2u) is exactly 0 or 1 in every float dtype (float64's last nonzero
# s(1 - s) is near |x| = 21) and x^3 still fits float16 (27000 < 65504)
_GELU_CLIP = 30.0
_GELU_CUBIC = 0.044715


def sigmoid(x: Array) -> Array:
    """``f(x) = 1 / (1 + exp(-x))``, via lax.logistic (no overflow at either tail).

    Args:
        x: Input array, any shape (integers become the default float dtype).

    Returns:
        ``f(x)``, of the shape of ``x``.

    Examples:
        >>> import fnn
        >>> fnn.activations.sigmoid([0.0]).tolist()
        [0.5]
    """
    return lax.logistic(as_float(x))


def sigmoid_grad(x: Array, y: Array | None = None) -> Array:
    """``f'(x) = f(x) (1 - f(x))``.

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it (reused instead of recomputed), else None.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.

    Examples:
        >>> import fnn
        >>> fnn.activations.sigmoid_grad([0.0]).tolist()
        [0.25]
    """
    y = sigmoid(x) if y is None else y
    return y * (1 - y)


def log_sigmoid(x: Array) -> Array:
    """``f(x) = log sigmoid(x) = -softplus(-x)`` (no overflow at either tail).

    Args:
        x: Input array, any shape (integers become the default float dtype).

    Returns:
        ``f(x)``, of the shape of ``x``.
    """
    return -jnp.logaddexp(-as_float(x), 0)


def log_sigmoid_grad(x: Array, y: Array | None = None) -> Array:
    """``f'(x) = sigmoid(-x) = 1 - sigmoid(x)``.

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it; not needed here.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    return lax.logistic(-as_float(x))


def tanh(x: Array) -> Array:
    """``f(x) = tanh(x)``.

    Args:
        x: Input array, any shape (integers become the default float dtype).

    Returns:
        ``f(x)``, of the shape of ``x``.
    """
    return jnp.tanh(as_float(x))


def tanh_grad(x: Array, y: Array | None = None) -> Array:
    """``f'(x) = 1 - tanh(x)^2``, as ``(1 - y)(1 + y)``: 1 - y is exact where y nears 1.

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it (reused instead of recomputed), else None.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    y = tanh(x) if y is None else y
    return (1 - y) * (1 + y)


def gelu(x: Array, approximate: bool = False) -> Array:
    """Exact GELU ``f(x) = x Phi(x) = (x/2) erfc(-x / sqrt 2)`` (Keras 3's default).

    ``erfc`` rather than ``1 + erf``, which cancels for x < 0. ``approximate=True`` is gelu_tanh.

    Args:
        x: Input array, any shape (integers become the default float dtype).
        approximate: True for the tanh approximation (:func:`gelu_tanh`).

    Returns:
        ``f(x)``, of the shape of ``x``.
    """
    if approximate:
        return gelu_tanh(x)
    x = as_float(x)
    return 0.5 * x * lax.erfc(-x * _SQRT_HALF)


def gelu_grad(x: Array, y: Array | None = None, approximate: bool = False) -> Array:
    """``f'(x) = Phi(x) + x phi(x)`` with phi the standard normal density.

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it; not needed here.
        approximate: True for the tanh approximation (:func:`gelu_tanh`).

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    if approximate:
        return gelu_tanh_grad(x, y)
    x = as_float(x)
    return 0.5 * lax.erfc(-x * _SQRT_HALF) + x * jnp.exp(-0.5 * x * x) * _INV_SQRT_2PI


def gelu_tanh(x: Array) -> Array:
    """Tanh-approximate GELU ``f(x) = (x/2)(1 + tanh(u))``, ``u = sqrt(2/pi)(x + 0.044715 x^3)``.

    Computed as ``x sigmoid(2u)``, the same function without cancellation for x < 0. The cubic
    is evaluated at ``x`` clipped to ``[-30, 30]``, where ``sigmoid(2u)`` is already exactly 0 or 1
    in every float dtype: ``x^3`` would overflow (float16: ``x^2`` for ``|x| >= 256``, float32:
    ``x^3`` for ``|x| >= 7e12``) and give NaN derivatives.

    Args:
        x: Input array, any shape (integers become the default float dtype).

    Returns:
        ``f(x)``, of the shape of ``x``.
    """
    x = as_float(x)
    xc = jnp.clip(x, -_GELU_CLIP, _GELU_CLIP)
    u = _SQRT_2_OVER_PI * (xc + _GELU_CUBIC * xc * xc * xc)
    return x * lax.logistic(2 * u)


def gelu_tanh_grad(x: Array, y: Array | None = None) -> Array:
    """``f'(x) = s + 2 x s (1 - s) u'`` with ``s = sigmoid(2u)``, ``u' = sqrt(2/pi)(1 + 3 0.044715 x^2)``.

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it; not needed here.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    x = as_float(x)
    xc = jnp.clip(x, -_GELU_CLIP, _GELU_CLIP)  # beyond it s(1 - s) is exactly 0 (see gelu_tanh)
    x2 = xc * xc
    s = lax.logistic(2 * _SQRT_2_OVER_PI * (xc + _GELU_CUBIC * x2 * xc))
    du = _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * x2)
    return s + 2 * xc * s * (1 - s) * du


def silu(x: Array) -> Array:
    """SiLU / swish ``f(x) = x sigmoid(x)``.

    Args:
        x: Input array, any shape (integers become the default float dtype).

    Returns:
        ``f(x)``, of the shape of ``x``.
    """
    x = as_float(x)
    return x * lax.logistic(x)


def silu_grad(x: Array, y: Array | None = None) -> Array:
    """``f'(x) = s + x s (1 - s) = s + f(x)(1 - s)``, ``s = sigmoid(x)``.

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it (reused instead of recomputed), else None.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    x = as_float(x)
    s = lax.logistic(x)
    y = x * s if y is None else y
    return s + y * (1 - s)


swish_grad = silu_grad


def softplus(x: Array) -> Array:
    """``f(x) = log(1 + exp(x))``, as ``logaddexp(x, 0)`` (no overflow).

    Args:
        x: Input array, any shape (integers become the default float dtype).

    Returns:
        ``f(x)``, of the shape of ``x``.
    """
    return jnp.logaddexp(as_float(x), 0)


def softplus_grad(x: Array, y: Array | None = None) -> Array:
    """``f'(x) = sigmoid(x)``.

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it; not needed here.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    return sigmoid(x)


def softsign(x: Array) -> Array:
    """``f(x) = x / (1 + |x|)``.

    Args:
        x: Input array, any shape (integers become the default float dtype).

    Returns:
        ``f(x)``, of the shape of ``x``.
    """
    x = as_float(x)
    return x / (1 + jnp.abs(x))


def softsign_grad(x: Array, y: Array | None = None) -> Array:
    """``f'(x) = 1 / (1 + |x|)^2`` (from x: ``(1 - |y|)^2`` loses precision as |y| -> 1).

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it; not needed here.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    x = as_float(x)
    d = 1 + jnp.abs(x)
    return 1 / (d * d)


def mish(x: Array) -> Array:
    """``f(x) = x tanh(softplus(x))``.

    Args:
        x: Input array, any shape (integers become the default float dtype).

    Returns:
        ``f(x)``, of the shape of ``x``.
    """
    x = as_float(x)
    return x * jnp.tanh(softplus(x))


def mish_grad(x: Array, y: Array | None = None) -> Array:
    """``f'(x) = t + x (1 - t^2) sigmoid(x)``, ``t = tanh(softplus(x))``.

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it; not needed here.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    x = as_float(x)
    t = jnp.tanh(softplus(x))
    return t + x * (1 - t * t) * lax.logistic(x)


def exponential(x: Array) -> Array:
    """``f(x) = exp(x)`` (overflows to inf beyond log of the dtype's largest number, as Keras's).

    Args:
        x: Input array, any shape (integers become the default float dtype).

    Returns:
        ``f(x)``, of the shape of ``x``.
    """
    return jnp.exp(as_float(x))


def exponential_grad(x: Array, y: Array | None = None) -> Array:
    """``f'(x) = exp(x) = f(x)``.

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it (reused instead of recomputed), else None.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    return exponential(x) if y is None else y


# jax's derivative of each forward above is its hand-written one (see _base.py).
sigmoid = with_derivative(sigmoid, elementwise_jvp(sigmoid_grad))
log_sigmoid = with_derivative(log_sigmoid, elementwise_jvp(log_sigmoid_grad))
tanh = with_derivative(tanh, elementwise_jvp(tanh_grad))
gelu = with_derivative(gelu, elementwise_jvp(gelu_grad))
gelu_tanh = with_derivative(gelu_tanh, elementwise_jvp(gelu_tanh_grad))
silu = swish = with_derivative(silu, elementwise_jvp(silu_grad))
softplus = with_derivative(softplus, elementwise_jvp(softplus_grad))
softsign = with_derivative(softsign, elementwise_jvp(softsign_grad))
mish = with_derivative(mish, elementwise_jvp(mish_grad))
exponential = with_derivative(exponential, elementwise_jvp(exponential_grad))
