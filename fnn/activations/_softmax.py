"""The activations along an axis: softmax and log_softmax, each beside its vector-Jacobian
product ``f_vjp(x, y, dy)`` (their Jacobians are not diagonal).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array, lax

from fnn.activations._base import as_float, with_derivative


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
    x = as_float(x)
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
    x = as_float(x)
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


def _log_softmax_jvp(x: Array, y: Array, t: Array, axis: int = -1) -> Array:
    """``J t = t - sum(exp(y) t)`` along ``axis`` (the Jacobian is ``I - 1 softmax^T`` per row)."""
    return t - jnp.sum(jnp.exp(y) * t, axis=axis, keepdims=True)


# jax's derivative of each forward above is its hand-written one (see _base.py).
softmax = with_derivative(softmax, softmax_vjp)  # the softmax Jacobian is symmetric: J t = J^T t
log_softmax = with_derivative(log_softmax, _log_softmax_jvp)
