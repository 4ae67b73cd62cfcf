"""The activations along an axis: softmax, log_softmax and sparsemax, each beside its
vector-Jacobian product ``f_vjp(x, y, dy)`` (their Jacobians are not diagonal).
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


def sparsemax(x: Array, axis: int = -1) -> Array:
    """``f(x)_i = max(x_i - tau, 0)`` along ``axis``, with ``tau`` the threshold that makes the
    outputs sum to 1: the Euclidean projection of ``x`` onto the probability simplex (Martins and
    Astudillo 2016), whose outputs are exactly 0 outside a support.

    With ``z`` sorted in decreasing order, the support holds the ``k`` largest, ``k`` the
    largest ``r`` with ``1 + r z_r > z_1 + ... + z_r``, and ``tau = (z_1 + ... + z_k - 1) / k``;
    ``x`` is shifted by its max first (``f`` does not change; the sums stay small). Keras 3.15's
    sparsemax summed every partial sum of the support instead of the ``k``-th, so its outputs
    sum to less than 1 wherever two or more are nonzero (keras-team/keras#23425, fixed by #23469).

    Args:
        x: Input array, any shape (integers become the default float dtype).
        axis: The axis to project along.

    Returns:
        Probabilities of the shape of ``x``, summing to 1 along ``axis``, some exactly 0.

    Examples:
        >>> import fnn
        >>> fnn.activations.sparsemax([[0.0, 0.5, 1.0], [0.0, 0.0, 3.0]]).tolist()
        [[0.0, 0.25, 0.75], [0.0, 0.0, 1.0]]
    """
    x = as_float(x)
    z = x - jnp.max(x, axis=axis, keepdims=True)
    desc = -jnp.sort(-z, axis=axis)
    partial = jnp.cumsum(desc, axis=axis)
    shape = [1] * z.ndim
    shape[axis] = z.shape[axis]
    r = jnp.arange(1, z.shape[axis] + 1, dtype=z.dtype).reshape(shape)
    k = jnp.sum(1 + r * desc > partial, axis=axis, keepdims=True)  # >= 1: the max is always in
    tau = (jnp.take_along_axis(partial, k - 1, axis=axis) - 1) / k.astype(z.dtype)
    return jnp.where(z > tau, z - tau, 0)


def sparsemax_vjp(x: Array, y: Array | None, dy: Array, axis: int = -1) -> Array:
    """``dx = s * (dy - sum(s * dy) / sum(s))``, the sums along ``axis``, ``s = (y > 0)`` the
    support; ``y = sparsemax(x)`` or None. The Jacobian ``diag(s) - s s^T / sum(s)`` is
    symmetric. Where an input sits exactly at the threshold (``y_i = 0`` from both sides), it is
    outside the support, as relu'(0) = 0.

    Args:
        x: The forward's input.
        y: ``sparsemax(x, axis)`` if the caller has it, else None (recomputed).
        dy: The cotangent of the output, of the shape of ``x``.
        axis: The axis the forward projected along.

    Returns:
        ``dx``, the vector-Jacobian product, of the shape of ``x``.
    """
    y = sparsemax(x, axis) if y is None else y
    s = (y > 0).astype(dy.dtype)
    return s * (dy - jnp.sum(s * dy, axis=axis, keepdims=True) / jnp.sum(s, axis=axis, keepdims=True))


# jax's derivative of each forward above is its hand-written one (see _base.py).
softmax = with_derivative(softmax, softmax_vjp)  # the softmax Jacobian is symmetric: J t = J^T t
log_softmax = with_derivative(log_softmax, _log_softmax_jvp)
sparsemax = with_derivative(sparsemax, sparsemax_vjp)  # symmetric too
