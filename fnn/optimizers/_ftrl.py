r"""FTRL-Proximal (``keras.optimizers.Ftrl``, McMahan et al. 2013) as a transform:
:func:`scale_by_ftrl`, whose state keeps Keras's two slots, the ``accumulator`` :math:`n` and
the ``linear`` term :math:`z`.

The notation of the formulas is ``_direction.py``'s: :math:`u_t` the incoming update (the
gradient), :math:`\theta_{t-1}` the parameters it was taken at, :math:`t` the step counting
from 1. FTRL solves for the new parameters from :math:`z` rather than stepping from the old
ones, so its output is the whole update :math:`\theta_t - \theta_{t-1}`, learning rate included.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp

from fnn._validate import hyper
from fnn.optimizers._base import GradientTransformation, Params, cast, leafwise, need_params, zeros_like_moments
from fnn.optimizers._direction import bound_transform, nonnegative


class ScaleByFtrlState(NamedTuple):
    """State of :func:`scale_by_ftrl` (Keras's slots), each a tree like the params:

    Attributes:
        accumulator: n, the sum of the squared gradients, from ``initial_accumulator_value``.
        linear: z, the linear term the parameters are solved from, from 0.
    """

    accumulator: Params
    linear: Params


def check_ftrl_rate(learning_rate: Any) -> Any:
    """FTRL's ``learning_rate > 0``: it divides."""
    return hyper("learning_rate", learning_rate, lo=0.0, lo_open=True)


def check_ftrl(learning_rate_power: Any, **nonnegatives: Any) -> tuple[Any, ...]:
    """FTRL's options checked: ``learning_rate_power <= 0``, the others (given by name) ``>= 0``
    (Keras checks all but ``beta``; a negative one can zero the denominator)."""
    return (hyper("learning_rate_power", learning_rate_power, hi=0.0), *nonnegative(**nonnegatives))


def _ftrl_init(learning_rate, power, acc0, l1, l2, l2_shrinkage, beta, params) -> ScaleByFtrlState:
    return ScaleByFtrlState(zeros_like_moments(params, acc0), zeros_like_moments(params))


def _ftrl_update(learning_rate, power, acc0, l1, l2, l2_shrinkage, beta, updates, state, params=None):
    need_params(params, "scale_by_ftrl", "the linear term σθ and the shrinkage 2λ_sθ")

    def leaf(g, p, n, z):
        lr, c, l1_, l2_, s, b = cast(g.dtype, learning_rate, -jnp.asarray(power), l1, l2, l2_shrinkage, beta)
        new_n = n + g * g
        # Keras's order of operations: linear += (g + 2 λ_s θ) - (n_t^-p - n_{t-1}^-p) / γ * θ
        z = z + ((g + 2 * s * p) - (new_n**c - n**c) / lr * p)
        quadratic = new_n**c / lr + 2 * (l2_ + b / (2 * lr))
        return (jnp.clip(z, -l1_, l1_) - z) / quadratic - p, new_n, z

    out, n, z = leafwise(leaf, 3, updates, params, state.accumulator, state.linear)
    return out, ScaleByFtrlState(n, z)


def scale_by_ftrl(
    learning_rate: float = 1e-3,
    learning_rate_power: float = -0.5,
    initial_accumulator_value: float = 0.1,
    l1: float = 0.0,
    l2: float = 0.0,
    l2_shrinkage: float = 0.0,
    beta: float = 0.0,
) -> GradientTransformation:
    r"""FTRL-Proximal's step (``keras.optimizers.Ftrl``), the whole update to add.

    .. math::
        n_t = n_{t-1} + u_t^2;\quad
        \sigma_t = \frac{n_t^{-p} - n_{t-1}^{-p}}{\gamma};\quad
        z_t = z_{t-1} + u_t + 2\lambda_s\theta_{t-1} - \sigma_t\theta_{t-1};

        \theta_t = \frac{\mathrm{clip}(z_t, -\lambda_1, \lambda_1) - z_t}
        {n_t^{-p}/\gamma + 2\lambda_2 + \beta/\gamma};\quad
        \text{out}_t = \theta_t - \theta_{t-1}

    with :math:`p` = learning_rate_power, :math:`n_0` = initial_accumulator_value,
    :math:`z_0 = 0`: a parameter whose :math:`|z_t| \le \lambda_1` is exactly 0 (the L1 term's
    sparsity). The output is the update itself, negated and scaled already: nothing may change
    it after (add it with :func:`apply_updates`). :math:`n_0 = 0` with :math:`\lambda_2 = \beta = 0`
    divides 0 by 0 where a gradient entry is 0 before any nonzero one (NaN, as in Keras).

    Args:
        learning_rate: γ > 0 (it divides).
        learning_rate_power: p <= 0, the power of the accumulator (0: a fixed rate; -0.5:
            Adagrad's).
        initial_accumulator_value: n_0 >= 0.
        l1: λ1 >= 0 (Keras's ``l1_regularization_strength``).
        l2: λ2 >= 0, the stabilising L2 of the FTRL paper (``l2_regularization_strength``).
        l2_shrinkage: λ_s >= 0, an L2 penalty λ_s‖θ‖² added to the loss, whose gradient 2λ_sθ
            joins the linear term, not the accumulator (``l2_shrinkage_regularization_strength``).
        beta: β >= 0, the paper's β.

    Returns:
        The transform, a :class:`GradientTransformation`; its state is a :class:`ScaleByFtrlState`.

    Raises:
        ValueError: For a hyperparameter out of range; at update, without params.
        TypeError: For a hyperparameter of the wrong type.
    """
    config = check_ftrl(
        learning_rate_power,
        initial_accumulator_value=initial_accumulator_value,
        l1=l1,
        l2=l2,
        l2_shrinkage=l2_shrinkage,
        beta=beta,
    )
    return bound_transform(_ftrl_init, _ftrl_update, check_ftrl_rate(learning_rate), *config)
