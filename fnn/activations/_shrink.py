"""The shrinkage activations, which zero or pull in the small inputs: hard_shrink, soft_shrink,
tanh_shrink, and threshold (small inputs replaced by a constant), each beside its derivative
``f_grad(x, y=None)``.

Kinks take the value ``jax.grad`` gives of Keras 3's JAX forward (a select whose branch at the
kink is the small-input one): hard_shrink and soft_shrink have f'(±threshold) = 0, threshold has
f'(threshold) = 0. tanh_shrink is smooth.

NaN inputs: a NaN fails every comparison, so hard_shrink and soft_shrink give 0 for it and
threshold its ``default_value``, as Keras 3's JAX forwards do (torch's give NaN). A layer that
diverged to NaN before one of them is hidden behind it: the loss stays finite, but fit's
TerminateOnNaN, which checks the params after every step too, still stops the run.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from fnn.activations._base import as_float, elementwise_jvp, with_derivative


def hard_shrink(x: Array, threshold: float = 0.5) -> Array:
    """``f(x) = x if |x| > threshold else 0``.

    Args:
        x: Input array, any shape (integers become the default float dtype).
        threshold: The magnitude at or below which inputs become 0, >= 0 (Keras's default 0.5).

    Returns:
        ``f(x)``, of the shape of ``x``.

    Examples:
        >>> import fnn
        >>> fnn.activations.hard_shrink([-1.0, 0.5, 0.75]).tolist()
        [-1.0, 0.0, 0.75]
    """
    x = as_float(x)
    return jnp.where(jnp.abs(x) > threshold, x, 0)


def hard_shrink_grad(x: Array, y: Array | None = None, threshold: float = 0.5) -> Array:
    """``f'(x) = 1 if |x| > threshold else 0`` (0 at ±threshold).

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it; not needed here.
        threshold: As in the forward.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    x = as_float(x)
    return (jnp.abs(x) > threshold).astype(x.dtype)


def soft_shrink(x: Array, threshold: float = 0.5) -> Array:
    """``f(x) = x - threshold if x > threshold, x + threshold if x < -threshold, else 0``.

    Args:
        x: Input array, any shape (integers become the default float dtype).
        threshold: How far inputs are pulled towards 0, >= 0 (Keras's default 0.5).

    Returns:
        ``f(x)``, of the shape of ``x``.

    Examples:
        >>> import fnn
        >>> fnn.activations.soft_shrink([-1.0, 0.25, 0.75]).tolist()
        [-0.5, 0.0, 0.25]
    """
    x = as_float(x)
    return jnp.where(x > threshold, x - threshold, jnp.where(x < -threshold, x + threshold, 0))


def soft_shrink_grad(x: Array, y: Array | None = None, threshold: float = 0.5) -> Array:
    """``f'(x) = 1 if |x| > threshold else 0`` (0 at ±threshold), as hard_shrink's.

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it; not needed here.
        threshold: As in the forward.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    return hard_shrink_grad(x, threshold=threshold)


def tanh_shrink(x: Array) -> Array:
    """``f(x) = x - tanh(x)`` (as Keras and torch: near 0, ``x^3/3`` to an absolute, not relative,
    error of a few ulps of ``x``).

    Args:
        x: Input array, any shape (integers become the default float dtype).

    Returns:
        ``f(x)``, of the shape of ``x``.
    """
    x = as_float(x)
    return x - jnp.tanh(x)


def tanh_shrink_grad(x: Array, y: Array | None = None) -> Array:
    """``f'(x) = 1 - (1 - tanh(x)^2) = tanh(x)^2`` (from x: ``x - y`` would lose the small tanh).

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it; not needed here.

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    t = jnp.tanh(as_float(x))
    return t * t


def threshold(x: Array, threshold: float, default_value: float) -> Array:
    """``f(x) = x if x > threshold else default_value``. Both options are required, as in Keras
    (``fnn.activations.get("threshold", threshold=0.0, default_value=-1.0)``).

    Args:
        x: Input array, any shape (integers become the default float dtype).
        threshold: The value at or below which inputs are replaced.
        default_value: What replaces them.

    Returns:
        ``f(x)``, of the shape of ``x``.

    Examples:
        >>> import fnn
        >>> fnn.activations.threshold([-1.0, 0.0, 2.0], threshold=0.0, default_value=-5.0).tolist()
        [-5.0, -5.0, 2.0]
    """
    x = as_float(x)
    return jnp.where(x > threshold, x, default_value)


def threshold_grad(x: Array, y: Array | None, threshold: float, default_value: float) -> Array:
    """``f'(x) = 1 if x > threshold else 0`` (0 at the threshold, where f jumps unless
    ``default_value == threshold``). ``y`` has no default here: the options after it have none.

    Args:
        x: The forward's input, any shape.
        y: ``f(x)`` if the caller already has it, else None; not needed here.
        threshold: As in the forward.
        default_value: As in the forward (the derivative does not depend on it).

    Returns:
        ``f'(x)`` elementwise, of the shape and float dtype of ``x``.
    """
    x = as_float(x)
    return (x > threshold).astype(x.dtype)


# jax's derivative of each forward above is its hand-written one (see _base.py).
hard_shrink = with_derivative(hard_shrink, elementwise_jvp(hard_shrink_grad))
soft_shrink = with_derivative(soft_shrink, elementwise_jvp(soft_shrink_grad))
tanh_shrink = with_derivative(tanh_shrink, elementwise_jvp(tanh_shrink_grad))
threshold = with_derivative(threshold, elementwise_jvp(threshold_grad))
