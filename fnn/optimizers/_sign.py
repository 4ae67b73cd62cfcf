r"""Sign-based rules, as direction transforms (what they are, and the notation of their
formulas: ``_direction.py``): :func:`scale_by_rprop` (a per-element step size times the sign,
``torch.optim.Rprop``) and :func:`scale_by_lion` (Chen et al. 2023).
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
    zeros_like_moments,
)
from fnn.optimizers._direction import bound_transform, check_beta


class ScaleByRpropState(NamedTuple):
    """State of :func:`scale_by_rprop`: ``count``, ``prev`` (the previous update) and ``step_size`` (η per element)."""

    count: Array  # type: ignore[assignment]  # the field shadows tuple.count, as in optax
    prev: Params
    step_size: Params


def _rprop_init(learning_rate, eta_minus, eta_plus, step_size_min, step_size_max, params) -> ScaleByRpropState:
    return ScaleByRpropState(count0(), zeros_like_moments(params), zeros_like_moments(params))


def _rprop_update(learning_rate, eta_minus, eta_plus, step_size_min, step_size_max, updates, state, params=None):
    first = state.count == 0

    def leaf(u, _, prev, step):
        lr, em, ep, lo, hi = cast(u.dtype, learning_rate, eta_minus, eta_plus, step_size_min, step_size_max)
        step = jnp.where(first, lr, step)
        agree = u * prev
        step = jnp.clip(jnp.where(agree > 0, step * ep, jnp.where(agree < 0, step * em, step)), lo, hi)
        u = jnp.where(agree < 0, 0.0, u)
        return step * jnp.sign(u), u, step

    out, prev, step = leafwise(leaf, 3, updates, None, state.prev, state.step_size)
    return out, ScaleByRpropState(state.count + 1, prev, step)


def scale_by_rprop(
    learning_rate: float = 1e-2,
    eta_minus: float = 0.5,
    eta_plus: float = 1.2,
    step_size_min: float = 1e-6,
    step_size_max: float = 50.0,
) -> GradientTransformation:
    r"""Rprop's step (``torch.optim.Rprop``): a per-element step size times the sign.

    .. math::
        \eta_t = \mathrm{clip}(\eta_{t-1}\eta_+, \Gamma_{min}, \Gamma_{max}) \text{ if } u_{t-1} u_t > 0;\;
        \mathrm{clip}(\eta_{t-1}\eta_-, \Gamma_{min}, \Gamma_{max}) \text{ and } u_t \leftarrow 0
        \text{ if } u_{t-1} u_t < 0;\; \eta_{t-1} \text{ otherwise};\quad
        \text{out}_t = \eta_t\,\mathrm{sign}(u_t)

    with :math:`\eta_0` = learning_rate (it only seeds the step sizes: it is read at the first
    update, as in PyTorch). The output is a positive step: negate it (``scale(-1)``) to descend.

    Args:
        learning_rate: η_0 >= 0, the initial step size.
        eta_minus: η- in (0, 1), the factor that shrinks a step size on a sign flip.
        eta_plus: η+ > 1, the factor that grows it while the sign holds.
        step_size_min: Γmin >= 0.
        step_size_max: Γmax >= Γmin.

    Returns:
        The transform, a :class:`GradientTransformation`.

    Raises:
        ValueError: For a hyperparameter out of range.
        TypeError: For a hyperparameter of the wrong type.
    """
    lo = hyper("step_size_min", step_size_min, lo=0.0)
    return bound_transform(
        _rprop_init,
        _rprop_update,
        hyper("learning_rate", learning_rate, lo=0.0),
        hyper("eta_minus", eta_minus, 0.0, 1.0, lo_open=True, hi_open=True),
        hyper("eta_plus", eta_plus, lo=1.0, lo_open=True),
        lo,
        hyper("step_size_max", step_size_max, lo=lo if isinstance(lo, float) else 0.0),
    )


class ScaleByLionState(NamedTuple):
    """State of :func:`scale_by_lion`: ``mu`` (the momentum m)."""

    mu: Params


def _lion_init(b1, b2, params) -> ScaleByLionState:
    return ScaleByLionState(zeros_like_moments(params))


def _lion_update(b1, b2, updates, state, params=None):
    def leaf(u, _, m):
        b1_, b2_ = cast(u.dtype, b1, b2)
        d1, d2 = complements(u.dtype, b1, b2)
        return jnp.sign(b1_ * m + d1 * u), b2_ * m + d2 * u

    out, mu = leafwise(leaf, 2, updates, None, state.mu)
    return out, ScaleByLionState(mu)


def scale_by_lion(b1: float = 0.9, b2: float = 0.99) -> GradientTransformation:
    r"""Lion's direction (Chen et al. 2023, Algorithm 2).

    .. math::
        \text{out}_t = \mathrm{sign}(\beta_1 m_{t-1} + (1-\beta_1) u_t);\quad
        m_t = \beta_2 m_{t-1} + (1-\beta_2) u_t

    Args:
        b1: β1 in [0, 1), the interpolation whose sign is the update.
        b2: β2 in [0, 1), the decay of the momentum.

    Returns:
        The transform, a :class:`GradientTransformation`.

    Raises:
        ValueError: For a hyperparameter out of range.
        TypeError: For a hyperparameter of the wrong type.
    """
    return bound_transform(_lion_init, _lion_update, check_beta("b1", b1), check_beta("b2", b2))
