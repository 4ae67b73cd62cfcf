r"""The Adam family: :func:`adam`, :func:`adamw` (decoupled weight decay), :func:`adamax`,
:func:`nadam` and :func:`radam`.
"""

from __future__ import annotations

from fnn._validate import boolean, hyper
from fnn.optimizers._adam import scale_by_adam, scale_by_adamax, scale_by_nadam, scale_by_radam
from fnn.optimizers._alias_args import LearningRate, active, check_betas, check_learning_rate, coupled_l2, other_names
from fnn.optimizers._base import GradientTransformation, chain
from fnn.optimizers._inject import inject_hyperparams
from fnn.optimizers._transform import add_decayed_weights, scale_by_learning_rate


def _adam(learning_rate, b1, b2, eps, weight_decay, amsgrad, decoupled) -> GradientTransformation:
    direction = scale_by_adam(b1, b2, eps, amsgrad)
    if weight_decay is None:
        links = [direction]
    elif decoupled:  # AdamW: the decay joins the step, after the direction
        links = [direction, add_decayed_weights(weight_decay)]
    else:  # Adam: L2 joins the gradient, before the direction
        links = [add_decayed_weights(weight_decay), direction]
    return chain(*links, scale_by_learning_rate(learning_rate))


@other_names
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
    b1, b2 = check_betas(b1, b2)
    e, wd = hyper("eps", eps, lo=0.0), hyper("weight_decay", weight_decay, lo=0.0)
    amsgrad = boolean("amsgrad", amsgrad)
    return inject_hyperparams(_adam)(check_learning_rate(learning_rate), b1, b2, e, active(wd), amsgrad, False)


@other_names
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
    b1, b2 = check_betas(b1, b2)
    e, wd = hyper("eps", eps, lo=0.0), hyper("weight_decay", weight_decay, lo=0.0)
    amsgrad = boolean("amsgrad", amsgrad)
    return inject_hyperparams(_adam)(check_learning_rate(learning_rate), b1, b2, e, active(wd), amsgrad, True)


def _adamax(learning_rate, b1, b2, eps, weight_decay) -> GradientTransformation:
    return chain(*coupled_l2(weight_decay), scale_by_adamax(b1, b2, eps), scale_by_learning_rate(learning_rate))


@other_names
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
    b1, b2 = check_betas(b1, b2)
    e, wd = hyper("eps", eps, lo=0.0), hyper("weight_decay", weight_decay, lo=0.0)
    return inject_hyperparams(_adamax)(check_learning_rate(learning_rate), b1, b2, e, active(wd))


def _nadam(learning_rate, b1, b2, eps, weight_decay, momentum_decay) -> GradientTransformation:
    return chain(
        *coupled_l2(weight_decay), scale_by_nadam(b1, b2, eps, momentum_decay), scale_by_learning_rate(learning_rate)
    )


@other_names
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
    b1, b2 = check_betas(b1, b2)
    e, wd = hyper("eps", eps, lo=0.0), hyper("weight_decay", weight_decay, lo=0.0)
    psi = hyper("momentum_decay", momentum_decay, lo=0.0)
    return inject_hyperparams(_nadam)(check_learning_rate(learning_rate), b1, b2, e, active(wd), psi)


def _radam(learning_rate, b1, b2, eps, weight_decay) -> GradientTransformation:
    return chain(*coupled_l2(weight_decay), scale_by_radam(b1, b2, eps), scale_by_learning_rate(learning_rate))


@other_names
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
    b1, b2 = check_betas(b1, b2)
    e, wd = hyper("eps", eps, lo=0.0), hyper("weight_decay", weight_decay, lo=0.0)
    return inject_hyperparams(_radam)(check_learning_rate(learning_rate), b1, b2, e, active(wd))
