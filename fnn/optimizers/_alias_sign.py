r"""The sign-based optimizers: :func:`rprop` and :func:`lion`."""

from __future__ import annotations

from fnn._validate import hyper, is_traced
from fnn.optimizers._alias_args import LearningRate, active, check_betas, check_learning_rate, other_names
from fnn.optimizers._base import GradientTransformation, chain
from fnn.optimizers._inject import inject_hyperparams
from fnn.optimizers._sign import scale_by_lion, scale_by_rprop
from fnn.optimizers._transform import add_decayed_weights, scale, scale_by_learning_rate


def _rprop(learning_rate, eta_minus, eta_plus, step_size_min, step_size_max) -> GradientTransformation:
    return chain(scale_by_rprop(learning_rate, eta_minus, eta_plus, step_size_min, step_size_max), scale(-1.0))


@other_names
def rprop(
    learning_rate: LearningRate = 1e-2,
    etas: tuple[float, float] = (0.5, 1.2),
    step_sizes: tuple[float, float] = (1e-6, 50.0),
) -> GradientTransformation:
    r"""Rprop, ``torch.optim.Rprop``; the update returned is *this* step's.

    .. math::
        \eta_t = \mathrm{clip}(\eta_{t-1}\eta_+, \Gamma_{min}, \Gamma_{max}) \text{ if } g_{t-1} g_t > 0;\;
        \mathrm{clip}(\eta_{t-1}\eta_-, \Gamma_{min}, \Gamma_{max}) \text{ and } g_t \leftarrow 0
        \text{ if } g_{t-1} g_t < 0;\; \eta_{t-1} \text{ otherwise};

        \theta_t \leftarrow \theta_{t-1} - \eta_t\,\mathrm{sign}(g_t);\quad g_{t-1} \leftarrow g_t

    with :math:`\eta_0` = learning_rate (it only seeds the step sizes: changing it after the first
    update has no effect, as in PyTorch), :math:`(\eta_-, \eta_+)` = etas and
    :math:`(\Gamma_{min}, \Gamma_{max})` = step_sizes.
    ``= chain(scale_by_rprop(η_0, η_-, η_+, Γ_min, Γ_max), scale(-1))``.

    Args:
        learning_rate: η_0, the initial step size: a float ``>= 0`` or a schedule ``step -> rate``
            (:mod:`fnn.schedules`; ``step`` counts updates from 0).
        etas: ``(η-, η+)``, the factors that shrink (0 < η- < 1) and grow (η+ > 1) the step sizes.
        step_sizes: ``(Γmin, Γmax)``, the bounds of the step sizes.

    Returns:
        The optimizer, a :class:`GradientTransformation` with its hyperparameters held in the
        state (:func:`inject_hyperparams`).

    Raises:
        ValueError: For a value out of range (a negative learning rate, ``etas`` not around 1,
            ``step_sizes`` not increasing...), or ``etas`` or ``step_sizes`` of another length
            than 2.
        TypeError: For a value of the wrong type, or ``etas`` or ``step_sizes`` that are not a
            tuple or list.
    """
    if not isinstance(etas, (tuple, list)) or not isinstance(step_sizes, (tuple, list)):
        raise TypeError(f"etas and step_sizes must be pairs, got etas={etas!r}, step_sizes={step_sizes!r}")
    if len(etas) != 2 or len(step_sizes) != 2:
        raise ValueError(f"etas and step_sizes must be pairs, got etas={etas!r}, step_sizes={step_sizes!r}")
    eta_minus = hyper("etas[0]", etas[0], 0.0, 1.0, lo_open=True, hi_open=True)
    eta_plus = hyper("etas[1]", etas[1], lo=1.0, lo_open=True)
    smin = hyper("step_sizes[0]", step_sizes[0], lo=0.0)
    smax = hyper("step_sizes[1]", step_sizes[1], lo=0.0 if is_traced(smin) else float(smin))
    return inject_hyperparams(_rprop)(check_learning_rate(learning_rate), eta_minus, eta_plus, smin, smax)


def _lion(learning_rate, b1, b2, weight_decay) -> GradientTransformation:
    decay = [] if weight_decay is None else [add_decayed_weights(weight_decay)]
    return chain(scale_by_lion(b1, b2), *decay, scale_by_learning_rate(learning_rate))


@other_names
def lion(
    learning_rate: LearningRate = 1e-4, b1: float = 0.9, b2: float = 0.99, weight_decay: float = 0.0
) -> GradientTransformation:
    r"""Lion (Chen et al. 2023, Algorithm 2; ``torch.optim`` has none), decoupled weight decay.

    .. math::
        c_t = \beta_1 m_{t-1} + (1-\beta_1) g_t;\quad
        \theta_t \leftarrow \theta_{t-1} - \gamma\,(\mathrm{sign}(c_t) + \lambda\theta_{t-1});\quad
        m_t \leftarrow \beta_2 m_{t-1} + (1-\beta_2) g_t

    ``= chain(scale_by_lion(β1, β2), add_decayed_weights(λ), scale_by_learning_rate(γ))``.

    Args:
        learning_rate: γ, a float ``>= 0`` or a schedule ``step -> rate`` (:mod:`fnn.schedules`;
            ``step`` counts updates from 0).
        b1: β1, the interpolation of the update's sign, in [0, 1).
        b2: β2, the decay of the momentum, in [0, 1).
        weight_decay: λ, decoupled weight decay (0: the term is left out of the chain).

    Returns:
        The optimizer, a :class:`GradientTransformation` with its hyperparameters held in the
        state (:func:`inject_hyperparams`).

    Raises:
        ValueError: For a value out of range (a negative learning rate, a beta outside [0, 1)...).
        TypeError: For a value of the wrong type.
    """
    b1, b2 = check_betas(b1, b2)
    wd = hyper("weight_decay", weight_decay, lo=0.0)
    return inject_hyperparams(_lion)(check_learning_rate(learning_rate), b1, b2, active(wd))
