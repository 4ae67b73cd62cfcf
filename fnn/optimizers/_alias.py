r"""The named optimizers: each a short :func:`chain` of public transforms, with its
hyperparameters injected into the state (:func:`inject_hyperparams`).

Each follows the update rule ``torch.optim`` documents for the same name (Lion follows its
paper); the docstring writes the rule out with :math:`g_t` the gradient, :math:`\theta` the
parameters, :math:`t` the step counting from 1 and :math:`\gamma` the learning rate, and shows
the chain. ``weight_decay`` in the non-W optimizers is L2 coupled into the gradient, as in
PyTorch: :func:`add_decayed_weights` BEFORE the direction transform. A term switched off at
construction (``momentum=0``, ``weight_decay=0``) is left out of the chain and of ``hparams``:
it costs nothing and cannot be switched on later.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from fnn._registry import Registry
from fnn._validate import boolean, hyper, is_traced
from fnn.optimizers._adaptive import (
    scale_by_adadelta,
    scale_by_adagrad,
    scale_by_adam,
    scale_by_adamax,
    scale_by_lion,
    scale_by_nadam,
    scale_by_radam,
    scale_by_rms,
    scale_by_rprop,
)
from fnn.optimizers._base import GradientTransformation, Schedule, chain
from fnn.optimizers._inject import inject_hyperparams
from fnn.optimizers._transform import add_decayed_weights, scale, scale_by_learning_rate, trace

LearningRate = float | Schedule


def _learning_rate(value: Any) -> Any:
    return value if callable(value) else hyper("learning_rate", value, lo=0.0)


def _on(value: Any) -> Any:
    """A term switched off (a number equal to 0) is left out of the chain and the state. An
    array is always on: it is a value held in a state, which must keep one structure."""
    return None if not isinstance(value, jax.Array) and float(value) == 0.0 else value


def _l2(weight_decay: Any) -> list[GradientTransformation]:
    return [] if weight_decay is None else [add_decayed_weights(weight_decay)]


# ---------------------------------------------------------------------------------------------
# SGD.


def _sgd(learning_rate, momentum, dampening, nesterov, weight_decay) -> GradientTransformation:
    links = _l2(weight_decay)
    if momentum is not None:
        links.append(trace(momentum, dampening, nesterov))
    return chain(*links, scale_by_learning_rate(learning_rate))


def sgd(
    learning_rate: LearningRate = 1e-2,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
) -> GradientTransformation:
    r"""Stochastic gradient descent, ``torch.optim.SGD``.

    .. math::
        g_t \leftarrow g_t + \lambda\theta_{t-1};\quad
        b_t \leftarrow \mu b_{t-1} + (1-\tau) g_t \;(b_1 = g_1);\quad
        d_t = g_t + \mu b_t \text{ (nesterov) else } b_t \text{ (} g_t \text{ when } \mu = 0);\quad
        \theta_t \leftarrow \theta_{t-1} - \gamma d_t

    with :math:`\mu` = momentum, :math:`\tau` = dampening, :math:`\lambda` = weight_decay.
    ``= chain(add_decayed_weights(λ), trace(μ, τ, nesterov), scale_by_learning_rate(γ))``.

    Args:
        learning_rate: γ, a float ``>= 0`` or a schedule ``step -> rate`` (:mod:`fnn.schedules`;
            ``step`` counts updates from 0).
        momentum: μ, the heavy-ball momentum (0: plain SGD, no momentum buffer).
        dampening: τ in [0, 1], damping of the gradient's weight in the momentum buffer.
        nesterov: Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
        weight_decay: λ, L2 added to the gradient (0: the term is left out of the chain).

    Returns:
        The optimizer, a :class:`GradientTransformation` with its hyperparameters held in the
        state (:func:`inject_hyperparams`).

    Raises:
        ValueError: For a value out of range (a negative learning rate, a beta outside [0, 1)...).
        TypeError: For a value of the wrong type.
        ValueError: ``nesterov=True`` without momentum or with dampening.

    Examples:
        >>> import fnn, jax.numpy as jnp
        >>> opt = fnn.optimizers.sgd(0.5)
        >>> params = {"w": jnp.array([1.0, 2.0])}
        >>> state = opt.init(params)
        >>> updates, state = opt.update({"w": jnp.array([1.0, -1.0])}, state, params)
        >>> fnn.optimizers.apply_updates(params, updates)["w"].tolist()
        [0.5, 2.5]
    """
    mom = hyper("momentum", momentum, lo=0.0)
    damp = hyper("dampening", dampening, 0.0, 1.0)
    wd = hyper("weight_decay", weight_decay, lo=0.0)
    nesterov = boolean("nesterov", nesterov)
    if nesterov and (_on(mom) is None or _on(damp) is not None):
        raise ValueError(
            "nesterov=True requires momentum > 0 and dampening == 0, "
            f"got momentum={momentum!r}, dampening={dampening!r}"
        )
    return inject_hyperparams(_sgd)(
        _learning_rate(learning_rate), _on(mom), None if _on(mom) is None else damp, nesterov, _on(wd)
    )


def momentum(
    learning_rate: LearningRate = 1e-2, momentum: float = 0.9, dampening: float = 0.0, weight_decay: float = 0.0
) -> GradientTransformation:
    """``sgd`` with heavy-ball momentum (default 0.9).

    Args:
        learning_rate: γ, a float ``>= 0`` or a schedule ``step -> rate`` (:mod:`fnn.schedules`;
            ``step`` counts updates from 0).
        momentum: μ, the heavy-ball momentum.
        dampening: τ in [0, 1].
        weight_decay: λ, L2 added to the gradient (0: the term is left out of the chain).

    Returns:
        The optimizer, a :class:`GradientTransformation` with its hyperparameters held in the
        state (:func:`inject_hyperparams`).

    Raises:
        ValueError: For a value out of range (a negative learning rate, a beta outside [0, 1)...).
        TypeError: For a value of the wrong type.
    """
    return sgd(learning_rate, momentum=momentum, dampening=dampening, weight_decay=weight_decay)


def nesterov(
    learning_rate: LearningRate = 1e-2, momentum: float = 0.9, weight_decay: float = 0.0
) -> GradientTransformation:
    """``sgd`` with Nesterov momentum (default 0.9), PyTorch's formulation.

    Args:
        learning_rate: γ, a float ``>= 0`` or a schedule ``step -> rate`` (:mod:`fnn.schedules`;
            ``step`` counts updates from 0).
        momentum: μ, the Nesterov momentum (> 0).
        weight_decay: λ, L2 added to the gradient (0: the term is left out of the chain).

    Returns:
        The optimizer, a :class:`GradientTransformation` with its hyperparameters held in the
        state (:func:`inject_hyperparams`).

    Raises:
        ValueError: For a value out of range (a negative learning rate, a beta outside [0, 1)...).
        TypeError: For a value of the wrong type.
    """
    return sgd(learning_rate, momentum=momentum, nesterov=True, weight_decay=weight_decay)


# ---------------------------------------------------------------------------------------------
# Adaptive learning rates without first moments.


def _adagrad(learning_rate, lr_decay, initial_accumulator_value, eps, weight_decay) -> GradientTransformation:
    return chain(
        *_l2(weight_decay),
        scale_by_adagrad(initial_accumulator_value, eps, lr_decay),
        scale_by_learning_rate(learning_rate),
    )


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
        initial_accumulator_value: s_0, the starting value of the sum of squares (>= 0).
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
    # s_0 is read once, by init: it is an option of the state's shape, not a hyperparameter.
    return inject_hyperparams(_adagrad, static_args=("initial_accumulator_value",))(
        _learning_rate(learning_rate), decay, acc0, e, _on(wd)
    )


def _rmsprop(learning_rate, decay, eps, momentum, centered, weight_decay) -> GradientTransformation:
    links = [*_l2(weight_decay), scale_by_rms(decay, eps, centered)]
    if momentum is not None:
        links.append(trace(momentum))
    return chain(*links, scale_by_learning_rate(learning_rate))


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
        _learning_rate(learning_rate), a, e, _on(mom), boolean("centered", centered), _on(wd)
    )


def _adadelta(learning_rate, rho, eps, weight_decay) -> GradientTransformation:
    return chain(*_l2(weight_decay), scale_by_adadelta(rho, eps), scale_by_learning_rate(learning_rate))


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
    return inject_hyperparams(_adadelta)(_learning_rate(learning_rate), r, e, _on(wd))


# ---------------------------------------------------------------------------------------------
# The Adam family.


def _betas(b1: Any, b2: Any) -> tuple[Any, Any]:
    return hyper("b1", b1, 0.0, 1.0, hi_open=True), hyper("b2", b2, 0.0, 1.0, hi_open=True)


def _adam(learning_rate, b1, b2, eps, weight_decay, amsgrad, decoupled) -> GradientTransformation:
    direction = scale_by_adam(b1, b2, eps, amsgrad)
    if weight_decay is None:
        links = [direction]
    elif decoupled:  # AdamW: the decay joins the step, after the direction
        links = [direction, add_decayed_weights(weight_decay)]
    else:  # Adam: L2 joins the gradient, before the direction
        links = [add_decayed_weights(weight_decay), direction]
    return chain(*links, scale_by_learning_rate(learning_rate))


def adam(
    learning_rate: LearningRate = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
) -> GradientTransformation:
    r"""Adam, ``torch.optim.Adam`` (L2 weight decay joins the gradient).

    .. math::
        g_t \leftarrow g_t + \lambda\theta_{t-1};\quad
        m_t \leftarrow \beta_1 m_{t-1} + (1-\beta_1) g_t;\quad
        v_t \leftarrow \beta_2 v_{t-1} + (1-\beta_2) g_t^2;\quad
        \hat v_t = \max(\hat v_{t-1}, v_t) \text{ (amsgrad) else } v_t;

        \theta_t \leftarrow \theta_{t-1} - \frac{\gamma}{1-\beta_1^t}\,
        m_t \Big/ \Big(\sqrt{\hat v_t} / \sqrt{1-\beta_2^t} + \epsilon\Big)

    ``= chain(add_decayed_weights(λ), scale_by_adam(β1, β2, ε, amsgrad), scale_by_learning_rate(γ))``.

    Args:
        learning_rate: γ, a float ``>= 0`` or a schedule ``step -> rate`` (:mod:`fnn.schedules`;
            ``step`` counts updates from 0).
        b1: β1, the decay of the first moment, in [0, 1).
        b2: β2, the decay of the second moment, in [0, 1).
        eps: ε, added to the denominator for numerical stability (>= 0).
        weight_decay: λ, L2 added to the gradient (0: the term is left out of the chain).
        amsgrad: Use the running maximum of the second moment (AMSGrad).

    Returns:
        The optimizer, a :class:`GradientTransformation` with its hyperparameters held in the
        state (:func:`inject_hyperparams`).

    Raises:
        ValueError: For a value out of range (a negative learning rate, a beta outside [0, 1)...).
        TypeError: For a value of the wrong type.

    Examples:
        >>> import fnn
        >>> opt = fnn.optimizers.adam(1e-3)
        >>> round(float(fnn.optimizers.get_learning_rate(opt.init({"w": [0.0]}))), 6)
        0.001
        >>> opt.update == fnn.optimizers.adam(0.5).update  # values live in the state: one program
        True
    """
    b1, b2 = _betas(b1, b2)
    e, wd = hyper("eps", eps, lo=0.0), hyper("weight_decay", weight_decay, lo=0.0)
    amsgrad = boolean("amsgrad", amsgrad)
    return inject_hyperparams(_adam)(_learning_rate(learning_rate), b1, b2, e, _on(wd), amsgrad, False)


def adamw(
    learning_rate: LearningRate = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
) -> GradientTransformation:
    r"""AdamW, ``torch.optim.AdamW``: Adam with decoupled weight decay.

    .. math::
        \theta_t \leftarrow \theta_{t-1} - \gamma\lambda\theta_{t-1}
        - \frac{\gamma}{1-\beta_1^t}\, m_t \Big/ \Big(\sqrt{\hat v_t} / \sqrt{1-\beta_2^t} + \epsilon\Big)

    with :math:`m_t, \hat v_t` as in ``adam`` computed from the raw gradient.
    ``= chain(scale_by_adam(β1, β2, ε, amsgrad), add_decayed_weights(λ), scale_by_learning_rate(γ))``.

    Args:
        learning_rate: γ, a float ``>= 0`` or a schedule ``step -> rate`` (:mod:`fnn.schedules`;
            ``step`` counts updates from 0).
        b1: β1, the decay of the first moment, in [0, 1).
        b2: β2, the decay of the second moment, in [0, 1).
        eps: ε, added to the denominator for numerical stability (>= 0).
        weight_decay: λ, decoupled weight decay (0: the term is left out of the chain).
        amsgrad: Use the running maximum of the second moment (AMSGrad).

    Returns:
        The optimizer, a :class:`GradientTransformation` with its hyperparameters held in the
        state (:func:`inject_hyperparams`).

    Raises:
        ValueError: For a value out of range (a negative learning rate, a beta outside [0, 1)...).
        TypeError: For a value of the wrong type.
    """
    b1, b2 = _betas(b1, b2)
    e, wd = hyper("eps", eps, lo=0.0), hyper("weight_decay", weight_decay, lo=0.0)
    amsgrad = boolean("amsgrad", amsgrad)
    return inject_hyperparams(_adam)(_learning_rate(learning_rate), b1, b2, e, _on(wd), amsgrad, True)


def _adamax(learning_rate, b1, b2, eps, weight_decay) -> GradientTransformation:
    return chain(*_l2(weight_decay), scale_by_adamax(b1, b2, eps), scale_by_learning_rate(learning_rate))


def adamax(
    learning_rate: LearningRate = 2e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0
) -> GradientTransformation:
    r"""Adamax, ``torch.optim.Adamax`` (``nu`` is the infinity norm :math:`u_t`).

    .. math::
        g_t \leftarrow g_t + \lambda\theta_{t-1};\quad
        m_t \leftarrow \beta_1 m_{t-1} + (1-\beta_1) g_t;\quad
        u_t \leftarrow \max(\beta_2 u_{t-1}, |g_t| + \epsilon);\quad
        \theta_t \leftarrow \theta_{t-1} - \frac{\gamma}{1-\beta_1^t}\, m_t / u_t

    ``= chain(add_decayed_weights(λ), scale_by_adamax(β1, β2, ε), scale_by_learning_rate(γ))``.

    Args:
        learning_rate: γ, a float ``>= 0`` or a schedule ``step -> rate`` (:mod:`fnn.schedules`;
            ``step`` counts updates from 0).
        b1: β1, the decay of the first moment, in [0, 1).
        b2: β2, the decay of the infinity norm, in [0, 1).
        eps: ε, added to the denominator for numerical stability (>= 0).
        weight_decay: λ, L2 added to the gradient (0: the term is left out of the chain).

    Returns:
        The optimizer, a :class:`GradientTransformation` with its hyperparameters held in the
        state (:func:`inject_hyperparams`).

    Raises:
        ValueError: For a value out of range (a negative learning rate, a beta outside [0, 1)...).
        TypeError: For a value of the wrong type.
    """
    b1, b2 = _betas(b1, b2)
    e, wd = hyper("eps", eps, lo=0.0), hyper("weight_decay", weight_decay, lo=0.0)
    return inject_hyperparams(_adamax)(_learning_rate(learning_rate), b1, b2, e, _on(wd))


def _nadam(learning_rate, b1, b2, eps, weight_decay, momentum_decay) -> GradientTransformation:
    return chain(*_l2(weight_decay), scale_by_nadam(b1, b2, eps, momentum_decay), scale_by_learning_rate(learning_rate))


def nadam(
    learning_rate: LearningRate = 2e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum_decay: float = 4e-3,
) -> GradientTransformation:
    r"""NAdam, ``torch.optim.NAdam`` (Dozat's momentum schedule).

    .. math::
        g_t \leftarrow g_t + \lambda\theta_{t-1};\quad
        \mu_t = \beta_1 (1 - \tfrac12 0.96^{t\psi});\quad
        m_t \leftarrow \beta_1 m_{t-1} + (1-\beta_1) g_t;\quad
        v_t \leftarrow \beta_2 v_{t-1} + (1-\beta_2) g_t^2;

        \hat m_t = \frac{\mu_{t+1} m_t}{1 - \prod_{i=1}^{t+1}\mu_i}
        + \frac{(1-\mu_t) g_t}{1 - \prod_{i=1}^{t}\mu_i};\quad
        \theta_t \leftarrow \theta_{t-1} - \gamma \hat m_t \big/ \big(\sqrt{v_t / (1-\beta_2^t)} + \epsilon\big)

    with :math:`\psi` = momentum_decay.
    ``= chain(add_decayed_weights(λ), scale_by_nadam(β1, β2, ε, ψ), scale_by_learning_rate(γ))``.

    Args:
        learning_rate: γ, a float ``>= 0`` or a schedule ``step -> rate`` (:mod:`fnn.schedules`;
            ``step`` counts updates from 0).
        b1: β1, the decay of the first moment, in [0, 1).
        b2: β2, the decay of the second moment, in [0, 1).
        eps: ε, added to the denominator for numerical stability (>= 0).
        weight_decay: λ, L2 added to the gradient (0: the term is left out of the chain).
        momentum_decay: ψ, the momentum schedule's decay (>= 0).

    Returns:
        The optimizer, a :class:`GradientTransformation` with its hyperparameters held in the
        state (:func:`inject_hyperparams`).

    Raises:
        ValueError: For a value out of range (a negative learning rate, a beta outside [0, 1)...).
        TypeError: For a value of the wrong type.
    """
    b1, b2 = _betas(b1, b2)
    e, wd = hyper("eps", eps, lo=0.0), hyper("weight_decay", weight_decay, lo=0.0)
    psi = hyper("momentum_decay", momentum_decay, lo=0.0)
    return inject_hyperparams(_nadam)(_learning_rate(learning_rate), b1, b2, e, _on(wd), psi)


def _radam(learning_rate, b1, b2, eps, weight_decay) -> GradientTransformation:
    return chain(*_l2(weight_decay), scale_by_radam(b1, b2, eps), scale_by_learning_rate(learning_rate))


def radam(
    learning_rate: LearningRate = 1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0
) -> GradientTransformation:
    r"""RAdam, ``torch.optim.RAdam`` (variance rectification, threshold 5).

    .. math::
        g_t \leftarrow g_t + \lambda\theta_{t-1};\quad
        m_t, v_t \text{ as in Adam};\quad \hat m_t = m_t / (1-\beta_1^t);\quad
        \rho_\infty = \frac{2}{1-\beta_2} - 1;\quad
        \rho_t = \rho_\infty - \frac{2t\beta_2^t}{1-\beta_2^t};

        \text{if } \rho_t > 5:\;
        r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}},\;
        l_t = \frac{\sqrt{1-\beta_2^t}}{\sqrt{v_t} + \epsilon},\;
        \theta_t \leftarrow \theta_{t-1} - \gamma \hat m_t r_t l_t;\quad
        \text{else } \theta_t \leftarrow \theta_{t-1} - \gamma \hat m_t

    ``= chain(add_decayed_weights(λ), scale_by_radam(β1, β2, ε), scale_by_learning_rate(γ))``.

    Args:
        learning_rate: γ, a float ``>= 0`` or a schedule ``step -> rate`` (:mod:`fnn.schedules`;
            ``step`` counts updates from 0).
        b1: β1, the decay of the first moment, in [0, 1).
        b2: β2, the decay of the second moment, in [0, 1).
        eps: ε, added to the denominator for numerical stability (>= 0).
        weight_decay: λ, L2 added to the gradient (0: the term is left out of the chain).

    Returns:
        The optimizer, a :class:`GradientTransformation` with its hyperparameters held in the
        state (:func:`inject_hyperparams`).

    Raises:
        ValueError: For a value out of range (a negative learning rate, a beta outside [0, 1)...).
        TypeError: For a value of the wrong type.
    """
    b1, b2 = _betas(b1, b2)
    e, wd = hyper("eps", eps, lo=0.0), hyper("weight_decay", weight_decay, lo=0.0)
    return inject_hyperparams(_radam)(_learning_rate(learning_rate), b1, b2, e, _on(wd))


# ---------------------------------------------------------------------------------------------
# Sign-based.


def _rprop(learning_rate, eta_minus, eta_plus, step_size_min, step_size_max) -> GradientTransformation:
    return chain(scale_by_rprop(learning_rate, eta_minus, eta_plus, step_size_min, step_size_max), scale(-1.0))


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
        ValueError: For a value out of range (a negative learning rate, a beta outside [0, 1)...).
        TypeError: For a value of the wrong type.
        ValueError: ``etas`` or ``step_sizes`` are not pairs (TypeError if not sequences).
    """
    if not isinstance(etas, (tuple, list)) or not isinstance(step_sizes, (tuple, list)):
        raise TypeError(f"etas and step_sizes must be pairs, got etas={etas!r}, step_sizes={step_sizes!r}")
    if len(etas) != 2 or len(step_sizes) != 2:
        raise ValueError(f"etas and step_sizes must be pairs, got etas={etas!r}, step_sizes={step_sizes!r}")
    eta_minus = hyper("etas[0]", etas[0], 0.0, 1.0, lo_open=True, hi_open=True)
    eta_plus = hyper("etas[1]", etas[1], lo=1.0, lo_open=True)
    smin = hyper("step_sizes[0]", step_sizes[0], lo=0.0)
    smax = hyper("step_sizes[1]", step_sizes[1], lo=0.0 if is_traced(smin) else float(smin))
    return inject_hyperparams(_rprop)(_learning_rate(learning_rate), eta_minus, eta_plus, smin, smax)


def _lion(learning_rate, b1, b2, weight_decay) -> GradientTransformation:
    decay = [] if weight_decay is None else [add_decayed_weights(weight_decay)]
    return chain(scale_by_lion(b1, b2), *decay, scale_by_learning_rate(learning_rate))


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
    b1, b2 = _betas(b1, b2)
    wd = hyper("weight_decay", weight_decay, lo=0.0)
    return inject_hyperparams(_lion)(_learning_rate(learning_rate), b1, b2, _on(wd))


# ---------------------------------------------------------------------------------------------
# Registry (the CLI's names; Keras's and PyTorch's class names resolve too).

_REGISTRY: Registry[Callable[..., GradientTransformation]] = Registry(
    "optimizer",
    {
        "sgd": sgd,
        "momentum": momentum,
        "nesterov": nesterov,
        "adagrad": adagrad,
        "rmsprop": rmsprop,
        "adadelta": adadelta,
        "adam": adam,
        "adamw": adamw,
        "adamax": adamax,
        "nadam": nadam,
        "radam": radam,
        "rprop": rprop,
        "lion": lion,
    },
    known="optimizers",
)


def names() -> list[str]:
    """The optimizer names :func:`get` knows.

    Returns:
        The optimizer names :func:`get` knows, sorted.
    """
    return _REGISTRY.names()


def get(name: str | GradientTransformation, **kwargs: Any) -> GradientTransformation:
    """The optimizer called ``name`` (``"adam"``, ``"Adam"``, ``"RMSprop"``...) built with
    ``kwargs``; a transformation passes through.

    Names ignore case and underscores, so Keras's and PyTorch's class names resolve.

    Args:
        name: An optimizer name (:func:`names`), or a built optimizer (returned as it is).
        **kwargs: The optimizer's arguments (``learning_rate``, ``momentum``...).

    Returns:
        The optimizer.

    Raises:
        ValueError: For an unknown name (listing the known ones).
        TypeError: For keywords given with an already built optimizer, or ones the optimizer
            does not take.

    Examples:
        >>> import fnn
        >>> opt = fnn.optimizers.get("RMSprop", learning_rate=0.5)
        >>> fnn.optimizers.get_learning_rate(opt.init([0.0])).item()
        0.5
    """
    if isinstance(name, GradientTransformation):
        if kwargs:
            raise TypeError("keyword arguments cannot be applied to an already built optimizer")
        return name
    factory: Callable[..., GradientTransformation] = _REGISTRY.lookup(name)
    return factory(**kwargs)
