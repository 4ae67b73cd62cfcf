"""What every activation shares: its input taken as a float array, and jax's derivative of its
forward set to its hand-written derivative.

Each family module rebinds its forwards with :func:`with_derivative`, so autodiff (mode=
"autodiff", gradcheck's reference, users' own jax.grad) agrees with the manual backward at every
point, kinks (relu at 0, relu6 at 6, hard_sigmoid at ±3...) included. Finite differences and
NumPy references stay the independent checks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import Array


def as_float(x: Any) -> Array:
    """``x`` as an array; integers and booleans become the default float dtype."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(float)  # the default float dtype (float32 unless x64 is enabled)
    return x


def with_derivative(fn: Callable, jvp: Callable) -> Callable:
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

        return f(as_float(x))

    return forward


def elementwise_jvp(grad: Callable) -> Callable:
    """The JVP ``t f'(x)`` of an elementwise activation, from its ``f_grad(x, y, **params)``."""
    return lambda x, y, t, *args, **params: t * grad(x, y, *args, **params)
