r"""The named optimizers with adaptive learning rates and no first moment: :func:`adagrad`,
:func:`rmsprop` (whose momentum is on the scaled step), :func:`adadelta` and :func:`adafactor`
(factored second moments, a step relative to the parameters' size).
"""

from __future__ import annotations

from fnn._validate import boolean, hyper
from fnn.optimizers._adafactor import check_adafactor, scale_by_adafactor
from fnn.optimizers._adaptive import scale_by_adadelta, scale_by_adagrad, scale_by_rms
from fnn.optimizers._alias_args import LearningRate, active, check_learning_rate, coupled_l2, other_names
from fnn.optimizers._base import GradientTransformation, chain
from fnn.optimizers._inject import inject_hyperparams, injected
from fnn.optimizers._transform import add_decayed_weights, scale, scale_by_learning_rate, trace


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


def _adafactor(learning_rate, beta2_decay, eps1, eps2, d, weight_decay, maximize) -> GradientTransformation:
    links = [scale(-1.0)] if maximize else []
    links.append(scale_by_adafactor(learning_rate, beta2_decay, eps1, eps2, d))
    if weight_decay is not None:  # decoupled, and scaled by the learning rate (not the relative step)
        links.append(add_decayed_weights(learning_rate * weight_decay))
    return chain(*links, scale(-1.0))


@other_names
def adafactor(
    learning_rate: LearningRate = 1e-2,
    beta2_decay: float = -0.8,
    eps: tuple[float | None, float] = (None, 1e-3),
    d: float = 1.0,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> GradientTransformation:
    r"""Adafactor, ``torch.optim.Adafactor`` (Shazeer and Stern 2018, as torch reads it): the
    second moment of a matrix kept as a row and a column mean, and a step relative to the
    parameters' RMS, capped by the learning rate.

    .. math::
        G_t = -g_t \text{ (maximize) else } g_t;\quad
        \hat\beta_{2,t} = 1 - t^{\tau};\quad
        \rho_t = \min(\gamma, 1/\sqrt t);\quad
        \alpha_t = \max(\epsilon_2, \mathrm{RMS}(\theta_{t-1}))\,\rho_t;

        \text{leaf } (\ldots, n, m):\;
        R_t \leftarrow \hat\beta_{2,t} R_{t-1} + (1-\hat\beta_{2,t})\,\mathrm{mean}_m(G_t^2),\;
        C_t \leftarrow \hat\beta_{2,t} C_{t-1} + (1-\hat\beta_{2,t})\,\mathrm{mean}_n(G_t^2),\;
        \hat V_t = \frac{R_t C_t}{\max(\mathrm{mean}_n(R_t), \epsilon_1)};\quad
        \text{else } \hat V_t \leftarrow \hat\beta_{2,t}\hat V_{t-1} + (1-\hat\beta_{2,t}) G_t^2;

        U_t = G_t / \max(\sqrt{\hat V_t}, \epsilon_1);\quad
        \theta_t \leftarrow \theta_{t-1} - \gamma\lambda\theta_{t-1}
        - \alpha_t\, U_t / \max(1, \mathrm{RMS}(U_t)/d)

    with :math:`\tau` = beta2_decay, :math:`(\epsilon_1, \epsilon_2)` = eps, :math:`\lambda` =
    weight_decay (decoupled, scaled by γ), :math:`\mathrm{mean}_m` the mean over the last axis
    (the row factor :math:`R`, shape ``(..., n, 1)``), :math:`\mathrm{mean}_n` over the one
    before it (the column factor :math:`C`, ``(..., 1, m)``), and :math:`\mathrm{RMS}` over the
    whole leaf. Leaves of 2 or more dimensions are factored (leading axes are a batch of
    matrices), vectors and scalars keep a full :math:`\hat V`. γ caps the relative step
    :math:`\rho_t` (the paper's 0.01) and scales the weight decay.
    ``= chain(scale(-1) if maximize, scale_by_adafactor(γ, τ, ε1, ε2, d), add_decayed_weights(γλ), scale(-1))``.

    Args:
        learning_rate: γ, a float ``>= 0`` or a schedule ``step -> rate`` (:mod:`fnn.schedules`;
            ``step`` counts updates from 0).
        beta2_decay: τ <= 0, the power of the second moments' decay.
        eps: ``(ε1, ε2)``: ε1 >= 0 the floor of the denominators (None: the machine epsilon of
            each parameter's dtype, torch's default), ε2 >= 0 the floor of the parameters' RMS.
        d: d >= 1, the clipping threshold of the update's RMS.
        weight_decay: λ, decoupled weight decay, times γ (0: the term is left out of the chain).
        maximize: Ascend the objective (negate the gradient).

    Returns:
        The optimizer, a :class:`GradientTransformation` with its hyperparameters held in the
        state (:func:`inject_hyperparams`; ε1 as ``eps1`` where given, ε2 as ``eps2``).

    Raises:
        ValueError: For a value out of range (a negative learning rate, beta2_decay > 0, d < 1...),
            or ``eps`` of another length than 2.
        TypeError: For a value of the wrong type, or ``eps`` that is not a tuple or list.

    Examples:
        A vector's first step moves each entry by min(γ, 1)·RMS(θ) (here 0.1·2) against the sign
        of its gradient, whatever the gradient's size:

        >>> import fnn, jax.numpy as jnp
        >>> opt = fnn.optimizers.adafactor(0.1)
        >>> params = {"b": jnp.array([2.0, -2.0, 2.0, 2.0])}
        >>> updates, _ = opt.update({"b": jnp.array([3.0, -1.0, 0.5, 4.0])}, opt.init(params), params)
        >>> [round(u, 4) for u in updates["b"].tolist()]
        [-0.2, 0.2, -0.2, -0.2]
    """
    if not isinstance(eps, (tuple, list)):
        raise TypeError(f"eps must be a pair (eps1, eps2), got eps={eps!r}")
    if len(eps) != 2:
        raise ValueError(f"eps must be a pair (eps1, eps2), got eps={eps!r}")
    tau, eps1, eps2, clip = check_adafactor(beta2_decay, eps[0], eps[1], d)
    wd = hyper("weight_decay", weight_decay, lo=0.0)
    return inject_hyperparams(_adafactor)(
        check_learning_rate(learning_rate), tau, eps1, eps2, clip, active(wd), boolean("maximize", maximize)
    )
