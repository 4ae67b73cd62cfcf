"""Activation functions, each beside its hand-written derivative.

Elementwise activations come as a pair ``f(x)`` / ``f_grad(x, y=None)``: ``f_grad`` is the
derivative ``f'(x)`` elementwise; ``y = f(x)`` may be passed in when the caller already has it
(sigmoid, tanh, silu reuse it). softmax and log_softmax are not elementwise, so they come with a
vector-Jacobian product ``f_vjp(x, y, dy)`` instead. Every function maps an array of any shape to
an array of the same shape and floating dtype (integer inputs become the default float dtype);
softmax/log_softmax act along ``axis`` (default: the last). No derivative uses jax's autodiff.

Kinks take the value that ``jax.grad`` gives of the same forward function, which is also what
``jax.nn`` (Keras 3's JAX backend) gives: relu'(0) = 0, relu6'(0) = relu6'(6) = 0,
hard_sigmoid'(-3) = hard_sigmoid'(3) = 0, leaky_relu'(0) = 1 (the x >= 0 branch) and
elu'(0) = alpha (the x <= 0 branch).

The layers consume activations only through :func:`get`, which returns an :class:`Activation`
``(name, fn, vjp)``; equal names and hyperparameters give equal, equally hashed Activations,
because jitted training functions are cached on them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import Array, lax

from fnn._registry import Registry
from fnn._validate import boolean, integer, real
from fnn._values import bound

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CLIP = 1e4
_GELU_CUBIC = 0.044715
# Klambauer et al. (2017) to full precision, as jax.nn.selu and torch use; Keras's docstring
# quotes them rounded to 1.67326324 and 1.05070098.
__all__ = [
    "Activation",
    "get",
    "names",
    "derivative",
    "SELU_ALPHA",
    "SELU_SCALE",
    "swish",
    "softmax",
    "softmax_vjp",
    "log_softmax",
    "log_softmax_vjp",
    "linear",
    "linear_grad",
    "sigmoid",
    "sigmoid_grad",
    "tanh",
    "tanh_grad",
    "relu",
    "relu_grad",
    "relu6",
    "relu6_grad",
    "leaky_relu",
    "leaky_relu_grad",
    "elu",
    "elu_grad",
    "selu",
    "selu_grad",
    "gelu",
    "gelu_grad",
    "gelu_tanh",
    "gelu_tanh_grad",
    "silu",
    "silu_grad",
    "softplus",
    "softplus_grad",
    "softsign",
    "softsign_grad",
    "hard_sigmoid",
    "hard_sigmoid_grad",
    "mish",
    "mish_grad",
]

SELU_ALPHA = 1.6732632423543772848170429916717
"""SELU's ``alpha`` (Klambauer et al. 2017, to full precision, as ``jax.nn.selu`` and torch)."""
SELU_SCALE = 1.0507009873554804934193349852946
"""SELU's ``scale`` (Klambauer et al. 2017, to full precision)."""


def _as_float(x: Any) -> Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(float)  # the default float dtype (float32 unless x64 is enabled)
    return x


# ---------------------------------------------------------------------------------------------
# Elementwise activations: forward f(x) and derivative f_grad(x, y=None) = f'(x).
# ---------------------------------------------------------------------------------------------


def linear(x: Array) -> Array:
    """Identity: ``f(x) = x``.

    Args:
        x: Input array, any shape (integers become the default float dtype).

    Returns:
        ``f(x)``, of the shape of ``x``.
    """
    return _as_float(x)


def linear_grad(x: Array, y: Array | None = None) -> Array:
    """``f'(x) = 1``.

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it; not needed here.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    return jnp.ones_like(_as_float(x))


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
    return lax.logistic(_as_float(x))


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


def tanh(x: Array) -> Array:
    """``f(x) = tanh(x)``.

    Args:
        x: Input array, any shape (integers become the default float dtype).

    Returns:
        ``f(x)``, of the shape of ``x``.
    """
    return jnp.tanh(_as_float(x))


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
    x = _as_float(x)
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
    x = _as_float(x)
    return (x > 0).astype(x.dtype)


def relu6(x: Array) -> Array:
    """``f(x) = min(max(x, 0), 6)``. f'(0) = f'(6) = 0, as jax.nn.relu6.

    Args:
        x: Input array, any shape (integers become the default float dtype).

    Returns:
        ``f(x)``, of the shape of ``x``.
    """
    x = _as_float(x)
    return jnp.where(x <= 0, 0, jnp.where(x >= 6, 6, x))


def relu6_grad(x: Array, y: Array | None = None) -> Array:
    """``f'(x) = 1 if 0 < x < 6 else 0``.

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it; not needed here.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    x = _as_float(x)
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
    x = _as_float(x)
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
    x = _as_float(x)
    return jnp.where(x >= 0, 1, negative_slope).astype(x.dtype)


def elu(x: Array, alpha: float = 1.0) -> Array:
    """``f(x) = x if x > 0 else alpha (exp(x) - 1)``.

    Args:
        x: Input array, any shape (integers become the default float dtype).
        alpha: The scale of the negative branch.

    Returns:
        ``f(x)``, of the shape of ``x``.
    """
    x = _as_float(x)
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
    x = _as_float(x)
    return jnp.where(x > 0, 1, alpha * jnp.exp(jnp.where(x > 0, 0, x))).astype(x.dtype)


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
    x = _as_float(x)
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
    x = _as_float(x)
    return 0.5 * lax.erfc(-x * _SQRT_HALF) + x * jnp.exp(-0.5 * x * x) * _INV_SQRT_2PI


def gelu_tanh(x: Array) -> Array:
    """Tanh-approximate GELU ``f(x) = (x/2)(1 + tanh(u))``, ``u = sqrt(2/pi)(x + 0.044715 x^3)``.

    Computed as ``x sigmoid(2u)``, the same function without cancellation for x < 0. The cubic
    is evaluated at ``x`` clipped to ``[-1e4, 1e4]``, where ``sigmoid(2u)`` is already exactly 0 or 1:
    ``x^3`` would overflow (float32: for ``|x| >= 7e12``) and give NaN derivatives.

    Args:
        x: Input array, any shape (integers become the default float dtype).

    Returns:
        ``f(x)``, of the shape of ``x``.
    """
    x = _as_float(x)
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
    x = _as_float(x)
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
    x = _as_float(x)
    return x * lax.logistic(x)


def silu_grad(x: Array, y: Array | None = None) -> Array:
    """``f'(x) = s + x s (1 - s) = s + f(x)(1 - s)``, ``s = sigmoid(x)``.

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it (reused instead of recomputed), else None.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    x = _as_float(x)
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
    return jnp.logaddexp(_as_float(x), 0)


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
    x = _as_float(x)
    return x / (1 + jnp.abs(x))


def softsign_grad(x: Array, y: Array | None = None) -> Array:
    """``f'(x) = 1 / (1 + |x|)^2`` (from x: ``(1 - |y|)^2`` loses precision as |y| -> 1).

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it; not needed here.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    x = _as_float(x)
    d = 1 + jnp.abs(x)
    return 1 / (d * d)


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
    return relu6(_as_float(x) + 3) / 6


def hard_sigmoid_grad(x: Array, y: Array | None = None) -> Array:
    """``f'(x) = 1/6 if -3 < x < 3 else 0`` (0 at ±3).

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it; not needed here.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    z = _as_float(x) + 3  # test z, not x, so rounding in x + 3 agrees with the forward
    return jnp.where((z > 0) & (z < 6), 1 / 6, 0).astype(z.dtype)


def mish(x: Array) -> Array:
    """``f(x) = x tanh(softplus(x))``.

    Args:
        x: Input array, any shape (integers become the default float dtype).

    Returns:
        ``f(x)``, of the shape of ``x``.
    """
    x = _as_float(x)
    return x * jnp.tanh(softplus(x))


def mish_grad(x: Array, y: Array | None = None) -> Array:
    """``f'(x) = t + x (1 - t^2) sigmoid(x)``, ``t = tanh(softplus(x))``.

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it; not needed here.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    x = _as_float(x)
    t = jnp.tanh(softplus(x))
    return t + x * (1 - t * t) * lax.logistic(x)


# ---------------------------------------------------------------------------------------------
# Along-an-axis activations: forward f(x) and vector-Jacobian product f_vjp(x, y, dy).
# ---------------------------------------------------------------------------------------------


def softmax(x: Array, axis: int = -1) -> Array:
    """``f(x)_i = exp(x_i) / sum_j exp(x_j)`` along ``axis``, shifted by the max (no overflow).

    Args:
        x: Input array, any shape (integers become the default float dtype).
        axis: The axis to normalise along.

    Returns:
        Probabilities of the shape of ``x``, summing to 1 along ``axis``.

    Examples:
        >>> import fnn
        >>> fnn.activations.softmax([[0.0, 0.0]]).tolist()
        [[0.5, 0.5]]
    """
    x = _as_float(x)
    e = jnp.exp(x - lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True)))
    return e / jnp.sum(e, axis=axis, keepdims=True)


def softmax_vjp(x: Array, y: Array | None, dy: Array, axis: int = -1) -> Array:
    """``dx = y * (dy - sum(dy * y))``, the sum along ``axis``; ``y = softmax(x)`` or None.

    Args:
        x: The forward's input.
        y: ``softmax(x, axis)`` if the caller has it, else None (recomputed).
        dy: The cotangent of the output, of the shape of ``x``.
        axis: The axis the forward normalised along.

    Returns:
        ``dx``, the vector-Jacobian product, of the shape of ``x``.
    """
    y = softmax(x, axis) if y is None else y
    return y * (dy - jnp.sum(dy * y, axis=axis, keepdims=True))


def log_softmax(x: Array, axis: int = -1) -> Array:
    """``f(x)_i = x_i - log sum_j exp(x_j)`` along ``axis``, shifted by the max (no overflow).

    Args:
        x: Input array, any shape (integers become the default float dtype).
        axis: The axis to normalise along.

    Returns:
        Log-probabilities of the shape of ``x``.
    """
    x = _as_float(x)
    z = x - lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))
    return z - jnp.log(jnp.sum(jnp.exp(z), axis=axis, keepdims=True))


def log_softmax_vjp(x: Array, y: Array | None, dy: Array, axis: int = -1) -> Array:
    """``dx = dy - exp(y) * sum(dy)``, the sum along ``axis``; ``y = log_softmax(x)`` or None.

    Args:
        x: The forward's input.
        y: ``log_softmax(x, axis)`` if the caller has it, else None (recomputed).
        dy: The cotangent of the output, of the shape of ``x``.
        axis: The axis the forward normalised along.

    Returns:
        ``dx``, the vector-Jacobian product, of the shape of ``x``.
    """
    y = log_softmax(x, axis) if y is None else y
    return dy - jnp.exp(y) * jnp.sum(dy, axis=axis, keepdims=True)


# ---------------------------------------------------------------------------------------------
# jax's derivative of every forward above is its hand-written derivative: autodiff (mode=
# "autodiff", gradcheck's reference, users' own jax.grad) agrees with the manual backward at
# every point, kinks (relu at 0, relu6 at 6, hard_sigmoid at ±3...) included. Finite
# differences and NumPy references stay the independent checks.
# ---------------------------------------------------------------------------------------------


def _with_derivative(fn: Callable, jvp: Callable) -> Callable:
    """``fn(x, **params)`` whose JVP is ``jvp(x, y, t, **params)`` (``y = fn(x)``)."""

    @functools.wraps(fn)
    def forward(x: Array, *args: Any, **params: Any) -> Array:
        @jax.custom_jvp
        def f(x):
            return fn(x, *args, **params)

        @f.defjvp
        def f_jvp(primals, tangents):
            (x,), (t,) = primals, tangents
            y = fn(x, *args, **params)
            return y, jvp(x, y, t, *args, **params)

        return f(_as_float(x))

    return forward


def _elementwise_jvp(grad: Callable) -> Callable:
    return lambda x, y, t, *args, **params: t * grad(x, y, *args, **params)


def _log_softmax_jvp(x: Array, y: Array, t: Array, axis: int = -1) -> Array:
    """``J t = t - sum(exp(y) t)`` along ``axis`` (the Jacobian is ``I - 1 softmax^T`` per row)."""
    return t - jnp.sum(jnp.exp(y) * t, axis=axis, keepdims=True)


linear = _with_derivative(linear, _elementwise_jvp(linear_grad))
sigmoid = _with_derivative(sigmoid, _elementwise_jvp(sigmoid_grad))
tanh = _with_derivative(tanh, _elementwise_jvp(tanh_grad))
relu = _with_derivative(relu, _elementwise_jvp(relu_grad))
relu6 = _with_derivative(relu6, _elementwise_jvp(relu6_grad))
leaky_relu = _with_derivative(leaky_relu, _elementwise_jvp(leaky_relu_grad))
elu = _with_derivative(elu, _elementwise_jvp(elu_grad))
selu = _with_derivative(selu, _elementwise_jvp(selu_grad))
gelu = _with_derivative(gelu, _elementwise_jvp(gelu_grad))
gelu_tanh = _with_derivative(gelu_tanh, _elementwise_jvp(gelu_tanh_grad))
silu = swish = _with_derivative(silu, _elementwise_jvp(silu_grad))
softplus = _with_derivative(softplus, _elementwise_jvp(softplus_grad))
softsign = _with_derivative(softsign, _elementwise_jvp(softsign_grad))
hard_sigmoid = _with_derivative(hard_sigmoid, _elementwise_jvp(hard_sigmoid_grad))
mish = _with_derivative(mish, _elementwise_jvp(mish_grad))
softmax = _with_derivative(softmax, softmax_vjp)  # the softmax Jacobian is symmetric: J t = J^T t
log_softmax = _with_derivative(log_softmax, _log_softmax_jvp)


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------


class Activation(NamedTuple):
    """An activation as the layers consume it: ``y = fn(x)``, ``dx = vjp(x, y, dy)``.

    Build one with :func:`get` (the built-in ones), or directly for your own: ``Dense`` and the
    ``Activation`` layer take it as they take a name. Equal names and hyperparameters give equal,
    equally hashed Activations (compiled training programs are cached on them).

    Attributes:
        name: The display name (the canonical name for a built-in).
        fn: The forward ``x -> y``, any shape to the same shape.
        vjp: ``(x, y, dy) -> dx``, the vector-Jacobian product, written by hand.

    Examples:
        >>> import fnn
        >>> square = fnn.activations.Activation("square", lambda x: x * x, lambda x, y, dy: 2 * x * dy)
        >>> square(3.0), square.vjp(3.0, 9.0, 1.0)
        (9.0, 6.0)
    """

    name: str
    fn: Callable[[Array], Array]
    vjp: Callable[[Array, Array, Array], Array]

    def __call__(self, x: Array) -> Array:
        """``fn(x)``.

        Args:
            x: Input array.

        Returns:
            ``fn(x)``.
        """
        return self.fn(x)


def _elementwise_vjp(grad: Callable, x: Array, y: Array, dy: Array, **params: Any) -> Array:
    return dy * grad(x, y, **params)


class _Spec(NamedTuple):
    fn: Callable
    grad: Callable | None  # elementwise derivative (x, y=None, **params)
    vjp: Callable | None  # along-an-axis (x, y, dy, **params)
    defaults: dict


_REGISTRY: dict[str, _Spec] = {
    "linear": _Spec(linear, linear_grad, None, {}),
    "sigmoid": _Spec(sigmoid, sigmoid_grad, None, {}),
    "tanh": _Spec(tanh, tanh_grad, None, {}),
    "relu": _Spec(relu, relu_grad, None, {}),
    "relu6": _Spec(relu6, relu6_grad, None, {}),
    "leaky_relu": _Spec(leaky_relu, leaky_relu_grad, None, {"negative_slope": 0.2}),
    "elu": _Spec(elu, elu_grad, None, {"alpha": 1.0}),
    "selu": _Spec(selu, selu_grad, None, {}),
    "gelu": _Spec(gelu, gelu_grad, None, {}),
    "gelu_tanh": _Spec(gelu_tanh, gelu_tanh_grad, None, {}),
    "silu": _Spec(silu, silu_grad, None, {}),
    "softplus": _Spec(softplus, softplus_grad, None, {}),
    "softsign": _Spec(softsign, softsign_grad, None, {}),
    "hard_sigmoid": _Spec(hard_sigmoid, hard_sigmoid_grad, None, {}),
    "mish": _Spec(mish, mish_grad, None, {}),
    "softmax": _Spec(softmax, None, softmax_vjp, {"axis": -1}),
    "log_softmax": _Spec(log_softmax, None, log_softmax_vjp, {"axis": -1}),
}
_NAMES = Registry("activation", _REGISTRY, aliases={"swish": "silu", "gelu_approximate": "gelu_tanh"})
# Keyword spellings other libraries use for the same hyperparameter (Keras 2 / tf.nn: alpha).
_KWARG_ALIASES = {"leaky_relu": {"alpha": "negative_slope"}}


def names() -> list[str]:
    """All known activation names, aliases included, sorted.

    Returns:
        The names :func:`get` accepts.
    """
    return _NAMES.names()


def _check_params(name: str, defaults: dict, kwargs: dict) -> dict:
    for old, new in _KWARG_ALIASES.get(name, {}).items():
        if old in kwargs:
            if new in kwargs:
                raise TypeError(f"activation {name!r}: give {new!r} or {old!r}, not both")
            kwargs[new] = kwargs.pop(old)
    unknown = sorted(set(kwargs) - set(defaults))
    if unknown:
        allowed = ", ".join(defaults) or "none"
        raise TypeError(f"activation {name!r} got unexpected keyword(s) {unknown}; allowed: {allowed}")
    params = dict(defaults)
    for key, value in kwargs.items():
        where = f"activation {name!r}: {key}"
        params[key] = integer(where, value) if isinstance(defaults[key], int) else real(where, value)
    return params


def get(identifier: str | Activation | None = None, **kwargs: Any) -> Activation:
    """Look an activation up by name (aliases and hyperparameters as keywords).

    ``None`` means "linear". An :class:`Activation` passes through unchanged. Names ignore case
    and underscores, so Keras's and PyTorch's class names resolve (``"ReLU"``, ``"LeakyReLU"``).

    Args:
        identifier: A name (``"relu"``, ``"leaky_relu"``...), an :class:`Activation`, or None.
        **kwargs: The activation's hyperparameters: ``negative_slope`` (leaky_relu; Keras 2's
            ``alpha`` too), ``alpha`` (elu), ``approximate`` (gelu: True gives gelu_tanh),
            ``axis`` (softmax, log_softmax).

    Returns:
        The :class:`Activation`, with its hand-written ``vjp``.

    Raises:
        ValueError: For an unknown name (the message lists the known ones).
        TypeError: For anything that is not a name, an Activation or None, and for unexpected
            or ill-typed keywords.

    Examples:
        >>> import fnn
        >>> act = fnn.activations.get("leaky_relu", negative_slope=0.5)
        >>> act.name, act.fn([-1.0]).tolist()
        ('leaky_relu', [-0.5])
        >>> fnn.activations.get("gelu", approximate=True).name
        'gelu_tanh'
    """
    if isinstance(identifier, Activation):
        if kwargs:
            raise TypeError("activation: keyword arguments only apply to a name, not an Activation")
        return identifier
    if identifier is None:
        identifier = "linear"
    if not isinstance(identifier, str):
        raise TypeError(
            f"activation must be a name (str), an Activation or None, got "
            f"{type(identifier).__name__}; wrap a custom function as Activation(name, fn, vjp)"
        )
    name = _NAMES.canonical(identifier)
    if name == "gelu" and "approximate" in kwargs:
        name = "gelu_tanh" if boolean("activation 'gelu': approximate", kwargs.pop("approximate")) else "gelu"
    spec = _REGISTRY[name]
    params = _check_params(name, spec.defaults, dict(kwargs))
    if spec.grad is None:
        assert spec.vjp is not None  # along-an-axis activations carry a vjp instead
        return Activation(name, bound(spec.fn, **params), bound(spec.vjp, **params))
    fn = bound(spec.fn, **params) if params else spec.fn
    return Activation(name, fn, bound(_elementwise_vjp, spec.grad, **params))


def derivative(identifier: str | Activation | None, x: Array, **kwargs: Any) -> Array:
    """Elementwise derivative ``f'(x)`` of an activation (same shape and dtype as ``x``).

    Args:
        identifier: As in :func:`get`: a name, an :class:`Activation` or None.
        x: Where to take the derivative, any shape.
        **kwargs: The activation's hyperparameters, as in :func:`get`.

    Returns:
        ``f'(x)`` elementwise, of the shape of ``x``.

    Raises:
        ValueError: For softmax and log_softmax, whose Jacobian is not diagonal (use their
            ``vjp``), and for an unknown name.
        TypeError: As :func:`get`.

    Examples:
        >>> import fnn
        >>> fnn.activations.derivative("relu", [-1.0, 3.0]).tolist()
        [0.0, 1.0]
    """
    act = get(identifier, **kwargs)
    if act.name in ("softmax", "log_softmax"):
        raise ValueError(f"activation {act.name!r} is not elementwise; use get({act.name!r}).vjp")
    x = _as_float(x)
    return act.vjp(x, act.fn(x), jnp.ones_like(x))


def __dir__() -> list[str]:
    """The public API only (implementation imports stay out of ``dir``)."""
    return sorted(__all__)
