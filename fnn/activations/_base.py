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

from fnn._native import native


def as_float(x: Any) -> Array:
    """``x`` as an array (a NumPy one in native byte order first: JAX refuses ``'>f8'``);
    integers and booleans become the default float dtype."""
    x = jnp.asarray(native(x, "x"))
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(float)  # the default float dtype (float32 unless x64 is enabled)
    return x


def with_derivative(fn: Callable, jvp: Callable) -> Callable:
    """``fn(x, **params)`` whose JVP in ``x`` is ``jvp(x, y, t, **params)`` (``y = fn(x)``).

    A parameter that is itself being differentiated (a learned ``leaky_relu`` slope or ``elu``
    alpha, as ``jax.nn``'s allow) gets its tangent from autodiff of ``fn``: closing over it would
    leak its tracer out of the ``custom_jvp``. Parameters that are not traced (Python numbers,
    ``axis``) are closed over, so the usual call compiles to what it did.
    """

    @functools.wraps(fn)
    def forward(x: Array, *args: Any, **params: Any) -> Array:
        names = list(params)
        values = [*args, *params.values()]
        traced = [i for i, v in enumerate(values) if isinstance(v, jax.core.Tracer)]

        def bound(traced_values: Any) -> tuple[list, dict]:
            full = list(values)
            for i, v in zip(traced, traced_values, strict=True):
                full[i] = v
            return full[: len(args)], dict(zip(names, full[len(args) :], strict=True))

        def call(x: Array, traced_values: Any) -> Array:
            a, kw = bound(traced_values)
            return fn(x, *a, **kw)

        @jax.custom_jvp
        def f(x, traced_values):
            return call(x, traced_values)

        def f_jvp(primals, tangents):
            (x, traced_values), (t, t_values) = primals, tangents
            y = call(x, traced_values)
            zero = jax.custom_derivatives.SymbolicZero
            a, kw = bound(traced_values)
            dy = jnp.zeros_like(y) if isinstance(t, zero) else jvp(x, y, t, *a, **kw)
            for i, tv in enumerate(t_values):
                if isinstance(tv, zero):
                    continue
                # d fn / d param: autodiff of the forward (the hand-written part is d/dx)
                one = lambda v, i=i: call(x, [*traced_values[:i], v, *traced_values[i + 1 :]])
                dy = dy + jax.jvp(one, (traced_values[i],), (tv,))[1]
            # a float32 parameter promotes a float16 x's output: the tangent takes y's dtype
            return y, dy.astype(y.dtype)

        f.defjvp(f_jvp, symbolic_zeros=True)
        return f(as_float(x), [values[i] for i in traced])

    return forward


def elementwise_jvp(grad: Callable) -> Callable:
    """The JVP ``t f'(x)`` of an elementwise activation, from its ``f_grad(x, y, **params)``."""
    return lambda x, y, t, *args, **params: t * grad(x, y, *args, **params)
