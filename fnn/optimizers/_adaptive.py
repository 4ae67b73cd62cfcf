r"""Second-moment rules without momentum, as direction transforms (what they are, and the
notation of their formulas: ``_direction.py``): :func:`scale_by_rms` (RMSprop, centered or not),
:func:`scale_by_adagrad` and :func:`scale_by_adadelta`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from fnn._validate import hyper
from fnn.optimizers._base import (
    Array,
    GradientTransformation,
    Params,
    cast,
    complements,
    count0,
    leafwise,
    safe_eps,
    scalar_dtype,
    zeros_like_moments,
)
from fnn.optimizers._direction import bound_transform, check_eps


class ScaleByRmsState(NamedTuple):
    """State of :func:`scale_by_rms`: ``nu`` (the mean square) and ``mu`` (the mean, when centered; else None)."""

    nu: Params
    mu: Params | None


def _rms_init(decay, eps, centered, params) -> ScaleByRmsState:
    return ScaleByRmsState(zeros_like_moments(params), zeros_like_moments(params) if centered else None)


def _rms_update(decay, eps, centered, updates, state, params=None):
    def leaf(u, _, v, *gbar):
        (a,) = cast(u.dtype, decay)
        (d,) = complements(u.dtype, decay)
        v = a * v + d * u * u
        out = [v]
        if centered:
            g = a * gbar[0] + d * u
            out.append(g)
            v = v - g * g
        return (u / (jnp.sqrt(v) + safe_eps(eps, u.dtype)), *out)

    buffers = [state.nu] + ([state.mu] if centered else [])
    out, nu, *mu = leafwise(leaf, 1 + len(buffers), updates, None, *buffers)
    return out, ScaleByRmsState(nu, mu[0] if centered else None)


def scale_by_rms(decay: float = 0.99, eps: float = 1e-8, centered: bool = False) -> GradientTransformation:
    r"""RMSprop's direction (``torch.optim.RMSprop``; ``decay`` is torch's ``alpha``).

    .. math::
        v_t = \alpha v_{t-1} + (1-\alpha) u_t^2;\quad
        \tilde v_t = v_t - \bar u_t^2,\; \bar u_t = \alpha \bar u_{t-1} + (1-\alpha) u_t
        \text{ (centered) else } v_t;\quad
        \text{out}_t = u_t / (\sqrt{\tilde v_t} + \epsilon)

    Args:
        decay: α in [0, 1], the decay of the mean square.
        eps: ε >= 0, added to the denominator.
        centered: Subtract the square of the running mean of ``u``.

    Returns:
        The transform, a :class:`GradientTransformation`.

    Raises:
        ValueError: For a hyperparameter out of range.
        TypeError: For a hyperparameter of the wrong type.
    """
    return bound_transform(_rms_init, _rms_update, hyper("decay", decay, 0.0, 1.0), check_eps(eps), bool(centered))


class ScaleByAdagradState(NamedTuple):
    """State of :func:`scale_by_adagrad`: ``count`` and ``sum`` (the sum of squares s)."""

    count: Array  # type: ignore[assignment]  # the field shadows tuple.count, as in optax
    sum: Params


def _adagrad_init(initial_accumulator_value, eps, lr_decay, params) -> ScaleByAdagradState:
    return ScaleByAdagradState(count0(), zeros_like_moments(params, initial_accumulator_value))


def _adagrad_update(initial_accumulator_value, eps, lr_decay, updates, state, params=None):
    decay = 1 / (1 + state.count.astype(scalar_dtype()) * jnp.asarray(lr_decay, scalar_dtype()))

    def leaf(u, _, s):
        (d,) = cast(u.dtype, decay)
        s = s + u * u
        return d * u / (jnp.sqrt(s) + safe_eps(eps, u.dtype)), s

    out, s = leafwise(leaf, 2, updates, None, state.sum)
    return out, ScaleByAdagradState(state.count + 1, s)


def scale_by_adagrad(
    initial_accumulator_value: float = 0.0, eps: float = 1e-10, lr_decay: float = 0.0
) -> GradientTransformation:
    r"""Adagrad's direction (``torch.optim.Adagrad``), its ``lr_decay`` included.

    .. math::
        s_t = s_{t-1} + u_t^2 \;(s_0 = \text{initial\_accumulator\_value});\quad
        \text{out}_t = \frac{u_t}{(1 + (t-1)\eta)(\sqrt{s_t} + \epsilon)}

    with :math:`\eta` = lr_decay.

    Args:
        initial_accumulator_value: s_0 >= 0.
        eps: ε >= 0, added to the denominator.
        lr_decay: η >= 0.

    Returns:
        The transform, a :class:`GradientTransformation`.

    Raises:
        ValueError: For a hyperparameter out of range.
        TypeError: For a hyperparameter of the wrong type.
    """
    return bound_transform(
        _adagrad_init,
        _adagrad_update,
        hyper("initial_accumulator_value", initial_accumulator_value, lo=0.0),
        check_eps(eps),
        hyper("lr_decay", lr_decay, lo=0.0),
    )


class ScaleByAdadeltaState(NamedTuple):
    """State of :func:`scale_by_adadelta`: ``nu`` (v, of the updates) and ``delta`` (d, of the steps)."""

    nu: Params
    delta: Params


def _adadelta_init(rho, eps, params) -> ScaleByAdadeltaState:
    return ScaleByAdadeltaState(zeros_like_moments(params), zeros_like_moments(params))


def _adadelta_update(rho, eps, updates, state, params=None):
    def leaf(u, _, v, d):
        (r,) = cast(u.dtype, rho)
        (c,) = complements(u.dtype, rho)
        e = safe_eps(eps, u.dtype)
        v = r * v + c * u * u
        dx = jnp.sqrt(d + e) / jnp.sqrt(v + e) * u
        return dx, v, r * d + c * dx * dx

    out, nu, delta = leafwise(leaf, 3, updates, None, state.nu, state.delta)
    return out, ScaleByAdadeltaState(nu, delta)


def scale_by_adadelta(rho: float = 0.9, eps: float = 1e-6) -> GradientTransformation:
    r"""Adadelta's direction (``torch.optim.Adadelta``).

    .. math::
        v_t = \rho v_{t-1} + (1-\rho) u_t^2;\quad
        \text{out}_t = \Delta_t = \frac{\sqrt{d_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}} u_t;\quad
        d_t = \rho d_{t-1} + (1-\rho) \Delta_t^2

    Args:
        rho: ρ in [0, 1], the decay of both running averages.
        eps: ε >= 0, added to the denominator.

    Returns:
        The transform, a :class:`GradientTransformation`.

    Raises:
        ValueError: For a hyperparameter out of range.
        TypeError: For a hyperparameter of the wrong type.
    """
    return bound_transform(_adadelta_init, _adadelta_update, hyper("rho", rho, 0.0, 1.0), check_eps(eps))
