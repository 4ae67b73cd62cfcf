r"""The optimizers that come from Keras 3 (``torch.optim`` has none of them): :func:`lamb` and
:func:`ftrl`, each as ``keras/src/optimizers`` computes it, Keras's defaults included.

Their ``weight_decay`` is Keras's base-class option: decoupled and times the learning rate,
applied to the weights BEFORE the step, which then reads the decayed weights
(:math:`\theta' = \theta_{t-1}(1 - \gamma\lambda)`: LAMB's trust ratio takes their norm, FTRL's
linear term them). In a chain that is ``_decayed_first``, a wrapper rather than a link:
the links after it must see :math:`\theta'` as their params.
"""

from __future__ import annotations

from typing import Any

import jax

from fnn._validate import hyper
from fnn._values import bound
from fnn.optimizers._adam import scale_by_adam
from fnn.optimizers._alias_args import LearningRate, active, check_betas, check_learning_rate, other_names
from fnn.optimizers._base import (
    GradientTransformation,
    OptState,
    Params,
    Updates,
    as_array,
    cast,
    chain,
    leafwise,
    moment_dtype,
    need_params,
)
from fnn.optimizers._ftrl import check_ftrl, check_ftrl_rate, scale_by_ftrl
from fnn.optimizers._inject import injected
from fnn.optimizers._transform import scale_by_learning_rate, scale_by_trust_ratio


def _decayed(rate: Any, p: Any) -> Any:
    p = as_array(p, "params")
    p = p.astype(moment_dtype(p.dtype))
    (r,) = cast(p.dtype, rate)
    return p - p * r


def _decayed_first_update(
    rate: Any, inner: GradientTransformation, updates: Updates, state: OptState, params: Params = None
) -> tuple[Updates, OptState]:
    need_params(params, "weight_decay", "the weights it decays")
    out, state = inner.update(updates, state, jax.tree.map(bound(_decayed, rate), params))
    # from θ to θ' + inner(θ'): exact where inner reaches 0 (FTRL's L1), as Keras's assignment
    (out,) = leafwise(lambda u, p: ((u + _decayed(rate, p)) - p,), 1, out, params)
    return out, state


def _decayed_first(rate: Any, inner: GradientTransformation) -> GradientTransformation:
    """``inner`` run on the weights decayed by Keras's base class, ``θ' = θ - θ·rate``, its
    update then counted from θ: ``out = (θ' + inner(θ')) - θ``."""
    return GradientTransformation(inner.init, bound(_decayed_first_update, rate, inner))


def _keras_weight_decay(step: GradientTransformation, learning_rate: Any, weight_decay: Any) -> GradientTransformation:
    return step if weight_decay is None else _decayed_first(learning_rate * weight_decay, step)


def _lamb(learning_rate, b1, b2, eps, weight_decay) -> GradientTransformation:
    step = chain(scale_by_adam(b1, b2, eps), scale_by_trust_ratio(), scale_by_learning_rate(learning_rate))
    return _keras_weight_decay(step, learning_rate, weight_decay)


@other_names
def lamb(
    learning_rate: LearningRate = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-7,
    weight_decay: float | None = 0.0,
) -> GradientTransformation:
    r"""LAMB, ``keras.optimizers.Lamb`` (You et al. 2020): Adam's bias-corrected direction,
    scaled per leaf by the trust ratio ‖θ‖ / ‖direction‖.

    .. math::
        \theta' = \theta_{t-1}(1 - \gamma\lambda);\quad
        m_t \leftarrow \beta_1 m_{t-1} + (1-\beta_1) g_t;\quad
        v_t \leftarrow \beta_2 v_{t-1} + (1-\beta_2) g_t^2;

        r_t = \frac{m_t / (1-\beta_1^t)}{\sqrt{v_t / (1-\beta_2^t)} + \epsilon};\quad
        \theta_t \leftarrow \theta' - \gamma\,\frac{\|\theta'\|}{\|r_t\|}\, r_t

    per leaf (Keras's variable), the ratio 1 where either norm is 0 (zero weights or a zero
    direction: the step is Adam's, or nothing; with ``eps=0`` a leaf whose gradients have all
    been 0 is 0/0, NaN, as in Keras). :math:`\lambda` = weight_decay is Keras's
    base-class decay, before the step, whose norm the ratio then takes (0: no decay; see the
    module). ``= chain(scale_by_adam(β1, β2, ε), scale_by_trust_ratio(), scale_by_learning_rate(γ))``
    on the decayed weights. Keras's ``beta_1``, ``beta_2`` and ``epsilon`` are ``b1``, ``b2``
    and ``eps`` here, as in :func:`adam`.

    Args:
        learning_rate: γ, a float ``>= 0`` or a schedule ``step -> rate`` (:mod:`fnn.schedules`;
            ``step`` counts updates from 0).
        b1: β1, the decay of the first moment, in [0, 1).
        b2: β2, the decay of the second moment, in [0, 1).
        eps: ε, added to the denominator for numerical stability (>= 0; Keras's 1e-7).
        weight_decay: λ, Keras's decoupled decay times γ, before the step (0 or None, Keras's
            default: left out).

    Returns:
        The optimizer, a :class:`GradientTransformation` with its hyperparameters held in the
        state (:func:`inject_hyperparams`).

    Raises:
        ValueError: For a value out of range (a negative learning rate, a beta outside [0, 1)...).
        TypeError: For a value of the wrong type, or Keras's spelling (``beta_1=``...).

    Examples:
        A step moves each leaf by γ‖θ‖ (here 0.1·5), whatever the gradient's size; the first,
        by about as much in each entry (Adam's first direction is nearly sign(g)):

        >>> import fnn, jax.numpy as jnp
        >>> opt = fnn.optimizers.lamb(0.1)
        >>> params = {"w": jnp.array([3.0, 4.0])}
        >>> updates, _ = opt.update({"w": jnp.array([1e-3, -2.0])}, opt.init(params), params)
        >>> [round(u, 4) for u in updates["w"].tolist()]
        [-0.3535, 0.3536]
    """
    b1, b2 = check_betas(b1, b2)
    e, wd = hyper("eps", eps, lo=0.0), hyper("weight_decay", 0.0 if weight_decay is None else weight_decay, lo=0.0)
    return injected(_lamb)(check_learning_rate(learning_rate), b1, b2, e, active(wd))


def _ftrl(
    learning_rate,
    learning_rate_power,
    l1_regularization_strength,
    l2_regularization_strength,
    l2_shrinkage_regularization_strength,
    beta,
    weight_decay,
    initial_accumulator_value=0.1,
) -> GradientTransformation:
    step = scale_by_ftrl(
        learning_rate,
        learning_rate_power,
        initial_accumulator_value,
        l1_regularization_strength,
        l2_regularization_strength,
        l2_shrinkage_regularization_strength,
        beta,
    )
    return _keras_weight_decay(step, learning_rate, weight_decay)


@other_names
def ftrl(
    learning_rate: LearningRate = 1e-3,
    learning_rate_power: float = -0.5,
    initial_accumulator_value: float = 0.1,
    l1_regularization_strength: float = 0.0,
    l2_regularization_strength: float = 0.0,
    l2_shrinkage_regularization_strength: float = 0.0,
    beta: float = 0.0,
    weight_decay: float | None = 0.0,
) -> GradientTransformation:
    r"""FTRL-Proximal, ``keras.optimizers.Ftrl`` (McMahan et al. 2013), Keras's keywords: the
    parameters solved afresh each step from a linear term ``z`` and an accumulator ``n``.

    .. math::
        \theta' = \theta_{t-1}(1 - \gamma\lambda);\quad
        n_t \leftarrow n_{t-1} + g_t^2;\quad
        z_t \leftarrow z_{t-1} + g_t + 2\lambda_s\theta' - \frac{n_t^{-p} - n_{t-1}^{-p}}{\gamma}\,\theta';

        \theta_t \leftarrow \frac{\mathrm{clip}(z_t, -\lambda_1, \lambda_1) - z_t}
        {n_t^{-p}/\gamma + 2\lambda_2 + \beta/\gamma}

    with :math:`p` = learning_rate_power, :math:`n_0` = initial_accumulator_value, :math:`z_0 = 0`,
    :math:`\lambda_1, \lambda_2, \lambda_s` the L1, L2 and L2-shrinkage strengths and
    :math:`\lambda` = weight_decay, Keras's base-class decay before the step (0: none; see the
    module). The parameters are solved from z, not stepped from: without λ2 and β the first
    step keeps the fraction :math:`1 - (n_0/n_1)^{-p}` of the initial weights (none where g = 0,
    none at all for p = 0), as in Keras.
    ``= scale_by_ftrl(γ, p, n_0, λ1, λ2, λ_s, β)`` on the decayed weights.

    Args:
        learning_rate: γ, a float ``> 0`` or a schedule ``step -> rate`` (:mod:`fnn.schedules`;
            ``step`` counts updates from 0) that never reaches 0 (γ divides: 0 gives NaN).
        learning_rate_power: p <= 0 (0: a fixed rate; -0.5: Adagrad-like).
        initial_accumulator_value: n_0 >= 0. Only ``init`` reads it, so it is not held in the
            state with the hyperparameters, and ftrls that differ only in it share ``update``.
        l1_regularization_strength: λ1 >= 0; a parameter whose ``|z| <= λ1`` is exactly 0.
        l2_regularization_strength: λ2 >= 0, the paper's stabilising L2.
        l2_shrinkage_regularization_strength: λ_s >= 0, a penalty λ_s‖θ‖² on the loss.
        beta: β >= 0, the paper's β.
        weight_decay: λ, Keras's decoupled decay times γ, before the step (0 or None, Keras's
            default: left out).

    Returns:
        The optimizer, a :class:`GradientTransformation` with its hyperparameters held in the
        state (:func:`inject_hyperparams`, under Keras's names).

    Raises:
        ValueError: For a value out of range (a learning rate <= 0, a positive
            learning_rate_power, a negative strength...).
        TypeError: For a value of the wrong type.

    Examples:
        With L1, the parameters whose linear term stays within ±λ1 are exactly 0:

        >>> import fnn, jax.numpy as jnp
        >>> opt = fnn.optimizers.ftrl(0.1, l1_regularization_strength=0.5)
        >>> params = {"w": jnp.array([1.0, 1.0])}
        >>> updates, _ = opt.update({"w": jnp.array([0.2, 2.0])}, opt.init(params), params)
        >>> [round(p, 4) for p in fnn.optimizers.apply_updates(params, updates)["w"].tolist()]
        [0.0, 0.7204]
    """
    acc0 = hyper("initial_accumulator_value", initial_accumulator_value, lo=0.0)
    wd = hyper("weight_decay", 0.0 if weight_decay is None else weight_decay, lo=0.0)
    rate = learning_rate if callable(learning_rate) else check_ftrl_rate(learning_rate)
    checked = check_ftrl(
        learning_rate_power,
        l1_regularization_strength=l1_regularization_strength,
        l2_regularization_strength=l2_regularization_strength,
        l2_shrinkage_regularization_strength=l2_shrinkage_regularization_strength,
        beta=beta,
    )
    # n_0 is read once, by init (as adagrad's): a value of init alone, held nowhere in the state
    return injected(_ftrl, init_args=("initial_accumulator_value",))(rate, *checked, active(wd), acc0)
