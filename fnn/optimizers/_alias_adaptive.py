r"""The named optimizers with adaptive learning rates and no first moment: :func:`adagrad`,
:func:`rmsprop` (whose momentum is on the scaled step) and :func:`adadelta`.
"""

from __future__ import annotations

from fnn._validate import boolean, hyper
from fnn.optimizers._adaptive import scale_by_adadelta, scale_by_adagrad, scale_by_rms
from fnn.optimizers._alias_args import LearningRate, active, check_learning_rate, coupled_l2, other_names
from fnn.optimizers._base import GradientTransformation, chain
from fnn.optimizers._inject import inject_hyperparams, injected
from fnn.optimizers._transform import scale_by_learning_rate, trace


def _adagrad(learning_rate, lr_decay, eps, weight_decay, initial_accumulator_value=0.0) -> GradientTransformation:
    return chain(
        *coupled_l2(weight_decay),
        scale_by_adagrad(initial_accumulator_value, eps, lr_decay),
        scale_by_learning_rate(learning_rate),
    )


@other_names
def adagrad(
    learning_rate: LearningRate = 1e-2,
    lr_decay: float = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
    weight_decay: float = 0.0,
) -> GradientTransformation:
    r"""Adagrad, ``torch.optim.Adagrad``.

    .. math::
        g_t \leftarrow g_t + \lambda\theta_{t-1};\quad
        \tilde\gamma = \gamma / (1 + (t-1)\eta);\quad
        s_t \leftarrow s_{t-1} + g_t^2 \;(s_0 = \text{initial\_accumulator\_value});\quad
        \theta_t \leftarrow \theta_{t-1} - \tilde\gamma\, g_t / (\sqrt{s_t} + \epsilon)

    with :math:`\eta` = lr_decay.
    ``= chain(add_decayed_weights(λ), scale_by_adagrad(s_0, ε, η), scale_by_learning_rate(γ))``.

    Args:
        learning_rate: γ, a float ``>= 0`` or a schedule ``step -> rate`` (:mod:`fnn.schedules`;
            ``step`` counts updates from 0).
        lr_decay: η, the learning rate decays as γ / (1 + (t-1)η).
        initial_accumulator_value: s_0, the starting value of the sum of squares (>= 0). Only
            ``init`` reads it, so it is not held in the state with the hyperparameters
            (:func:`get_hyperparams` does not list it, :func:`set_hyperparams` cannot set it: the
            sum has started from it), and adagrads that differ only in it share ``update`` and
            the programs compiled on it.
        eps: ε, added to the denominator for numerical stability (>= 0).
        weight_decay: λ, L2 added to the gradient (0: the term is left out of the chain).

    Returns:
        The optimizer, a :class:`GradientTransformation` with its hyperparameters held in the
        state (:func:`inject_hyperparams`).

    Raises:
        ValueError: For a value out of range (a negative learning rate, a beta outside [0, 1)...).
        TypeError: For a value of the wrong type.
    """
    decay = hyper("lr_decay", lr_decay, lo=0.0)
    acc0 = hyper("initial_accumulator_value", initial_accumulator_value, lo=0.0)
    e = hyper("eps", eps, lo=0.0)
    wd = hyper("weight_decay", weight_decay, lo=0.0)
    # s_0 is read once, by init: a value of init alone (the update never reads it, so adagrads
    # that differ only in s_0 share their compiled programs), held nowhere in the state, since
    # setting it later could not refill the accumulator it started.
    return injected(_adagrad, init_args=("initial_accumulator_value",))(
        check_learning_rate(learning_rate), decay, e, active(wd), acc0
    )


def _rmsprop(learning_rate, decay, eps, momentum, centered, weight_decay) -> GradientTransformation:
    links = [*coupled_l2(weight_decay), scale_by_rms(decay, eps, centered)]
    if momentum is not None:
        links.append(trace(momentum))
    return chain(*links, scale_by_learning_rate(learning_rate))


@other_names
def rmsprop(
    learning_rate: LearningRate = 1e-2,
    decay: float = 0.99,
    eps: float = 1e-8,
    momentum: float = 0.0,
    centered: bool = False,
    weight_decay: float = 0.0,
) -> GradientTransformation:
    r"""RMSprop, ``torch.optim.RMSprop`` (``decay`` is torch's ``alpha``).

    .. math::
        g_t \leftarrow g_t + \lambda\theta_{t-1};\quad
        v_t \leftarrow \alpha v_{t-1} + (1-\alpha) g_t^2;\quad
        \tilde v_t = v_t - \bar g_t^2,\; \bar g_t \leftarrow \alpha \bar g_{t-1} + (1-\alpha) g_t
        \text{ (centered) else } v_t;

        b_t \leftarrow \mu b_{t-1} + g_t / (\sqrt{\tilde v_t} + \epsilon),\;
        \theta_t \leftarrow \theta_{t-1} - \gamma b_t \text{ (momentum } \mu > 0 \text{) else }
        \theta_t \leftarrow \theta_{t-1} - \gamma g_t / (\sqrt{\tilde v_t} + \epsilon)

    ``= chain(add_decayed_weights(λ), scale_by_rms(α, ε, centered), trace(μ), scale_by_learning_rate(γ))``.

    Args:
        learning_rate: γ, a float ``>= 0`` or a schedule ``step -> rate`` (:mod:`fnn.schedules`;
            ``step`` counts updates from 0).
        decay: α in [0, 1], the decay of the mean square (torch's ``alpha``).
        eps: ε, added to the denominator for numerical stability (>= 0).
        momentum: μ, momentum on the scaled step (0: none).
        centered: Divide by the variance estimate instead of the mean square.
        weight_decay: λ, L2 added to the gradient (0: the term is left out of the chain).

    Returns:
        The optimizer, a :class:`GradientTransformation` with its hyperparameters held in the
        state (:func:`inject_hyperparams`).

    Raises:
        ValueError: For a value out of range (a negative learning rate, a beta outside [0, 1)...).
        TypeError: For a value of the wrong type.
    """
    a = hyper("decay", decay, 0.0, 1.0)
    e = hyper("eps", eps, lo=0.0)
    mom = hyper("momentum", momentum, lo=0.0)
    wd = hyper("weight_decay", weight_decay, lo=0.0)
    return inject_hyperparams(_rmsprop)(
        check_learning_rate(learning_rate), a, e, active(mom), boolean("centered", centered), active(wd)
    )


def _adadelta(learning_rate, rho, eps, weight_decay) -> GradientTransformation:
    return chain(*coupled_l2(weight_decay), scale_by_adadelta(rho, eps), scale_by_learning_rate(learning_rate))


@other_names
def adadelta(
    learning_rate: LearningRate = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0.0
) -> GradientTransformation:
    r"""Adadelta, ``torch.optim.Adadelta``.

    .. math::
        g_t \leftarrow g_t + \lambda\theta_{t-1};\quad
        v_t \leftarrow \rho v_{t-1} + (1-\rho) g_t^2;\quad
        \Delta x_t = \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}} g_t;\quad
        u_t \leftarrow \rho u_{t-1} + (1-\rho) \Delta x_t^2;\quad
        \theta_t \leftarrow \theta_{t-1} - \gamma \Delta x_t

    ``= chain(add_decayed_weights(λ), scale_by_adadelta(ρ, ε), scale_by_learning_rate(γ))``.

    Args:
        learning_rate: γ, a float ``>= 0`` or a schedule ``step -> rate`` (:mod:`fnn.schedules`;
            ``step`` counts updates from 0).
        rho: ρ in [0, 1], the decay of both running averages.
        eps: ε, added to the denominator for numerical stability (>= 0).
        weight_decay: λ, L2 added to the gradient (0: the term is left out of the chain).

    Returns:
        The optimizer, a :class:`GradientTransformation` with its hyperparameters held in the
        state (:func:`inject_hyperparams`).

    Raises:
        ValueError: For a value out of range (a negative learning rate, a beta outside [0, 1)...).
        TypeError: For a value of the wrong type.
    """
    r = hyper("rho", rho, 0.0, 1.0)
    e = hyper("eps", eps, lo=0.0)
    wd = hyper("weight_decay", weight_decay, lo=0.0)
    return inject_hyperparams(_adadelta)(check_learning_rate(learning_rate), r, e, active(wd))
