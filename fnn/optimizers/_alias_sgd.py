r"""Stochastic gradient descent, plain or with heavy-ball or Nesterov momentum
(``torch.optim.SGD``): :func:`sgd`, :func:`momentum` and :func:`nesterov`; and averaged SGD
(``torch.optim.ASGD``): :func:`asgd`.
"""

from __future__ import annotations

from fnn._validate import boolean, hyper
from fnn.optimizers._alias_args import LearningRate, active, check_learning_rate, coupled_l2, other_names
from fnn.optimizers._asgd import scale_by_asgd
from fnn.optimizers._base import GradientTransformation, chain
from fnn.optimizers._direction import nonnegative
from fnn.optimizers._inject import inject_hyperparams
from fnn.optimizers._transform import scale, scale_by_learning_rate, trace


def _sgd(learning_rate, momentum, dampening, nesterov, weight_decay) -> GradientTransformation:
    links = coupled_l2(weight_decay)
    if momentum is not None:
        links.append(trace(momentum, dampening, nesterov))
    return chain(*links, scale_by_learning_rate(learning_rate))


@other_names
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
        ValueError: For a value out of range (a negative learning rate, a momentum < 0...), or
            ``nesterov=True`` without momentum or with dampening.
        TypeError: For a value of the wrong type.

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
    if nesterov and (active(mom) is None or active(damp) is not None):
        raise ValueError(
            "nesterov=True requires momentum > 0 and dampening == 0, "
            f"got momentum={momentum!r}, dampening={dampening!r}"
        )
    return inject_hyperparams(_sgd)(
        check_learning_rate(learning_rate), active(mom), None if active(mom) is None else damp, nesterov, active(wd)
    )


@other_names
def momentum(
    learning_rate: LearningRate = 1e-2, momentum: float = 0.9, dampening: float = 0.0, weight_decay: float = 0.0
) -> GradientTransformation:
    r"""``sgd`` with heavy-ball momentum (default 0.9), ``torch.optim.SGD(momentum=μ)``.

    .. math::
        g_t \leftarrow g_t + \lambda\theta_{t-1};\quad
        b_t \leftarrow \mu b_{t-1} + (1-\tau) g_t \;(b_1 = g_1);\quad
        \theta_t \leftarrow \theta_{t-1} - \gamma b_t

    with :math:`\mu` = momentum, :math:`\tau` = dampening, :math:`\lambda` = weight_decay.
    ``= chain(add_decayed_weights(λ), trace(μ, τ), scale_by_learning_rate(γ))``
    (``momentum=0``: ``chain(add_decayed_weights(λ), scale_by_learning_rate(γ))``, plain SGD).

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

    Examples:
        Two steps along the same gradient: the second moves by γ(μ + 1)g.

        >>> import fnn, jax.numpy as jnp
        >>> opt = fnn.optimizers.momentum(0.5, momentum=0.5)
        >>> params, grads = {"w": jnp.array([1.0])}, {"w": jnp.array([1.0])}
        >>> state = opt.init(params)
        >>> for _ in range(2):
        ...     updates, state = opt.update(grads, state, params)
        ...     params = fnn.optimizers.apply_updates(params, updates)
        >>> params["w"].tolist()  # 1 - 0.5 * 1 - 0.5 * 1.5
        [-0.25]
    """
    return sgd(learning_rate, momentum=momentum, dampening=dampening, weight_decay=weight_decay)


@other_names
def nesterov(
    learning_rate: LearningRate = 1e-2, momentum: float = 0.9, weight_decay: float = 0.0
) -> GradientTransformation:
    r"""``sgd`` with Nesterov momentum (default 0.9), as ``torch.optim.SGD(nesterov=True)``.

    .. math::
        g_t \leftarrow g_t + \lambda\theta_{t-1};\quad
        b_t \leftarrow \mu b_{t-1} + g_t \;(b_1 = g_1);\quad
        \theta_t \leftarrow \theta_{t-1} - \gamma (g_t + \mu b_t)

    with :math:`\mu` = momentum, :math:`\lambda` = weight_decay.
    ``= chain(add_decayed_weights(λ), trace(μ, nesterov=True), scale_by_learning_rate(γ))``.

    Args:
        learning_rate: γ, a float ``>= 0`` or a schedule ``step -> rate`` (:mod:`fnn.schedules`;
            ``step`` counts updates from 0).
        momentum: μ, the Nesterov momentum (> 0).
        weight_decay: λ, L2 added to the gradient (0: the term is left out of the chain).

    Returns:
        The optimizer, a :class:`GradientTransformation` with its hyperparameters held in the
        state (:func:`inject_hyperparams`).

    Raises:
        ValueError: For a value out of range (a negative learning rate, a beta outside [0, 1)...),
            or ``momentum == 0``.
        TypeError: For a value of the wrong type.

    Examples:
        Two steps along the same gradient: Nesterov looks ahead, γ(1 + μ)g then γ(1 + μ + μ²)g.

        >>> import fnn, jax.numpy as jnp
        >>> opt = fnn.optimizers.nesterov(0.5, momentum=0.5)
        >>> params, grads = {"w": jnp.array([1.0])}, {"w": jnp.array([1.0])}
        >>> state = opt.init(params)
        >>> for _ in range(2):
        ...     updates, state = opt.update(grads, state, params)
        ...     params = fnn.optimizers.apply_updates(params, updates)
        >>> params["w"].tolist()  # 1 - 0.5 * 1.5 - 0.5 * 1.75
        [-0.625]
    """
    return sgd(learning_rate, momentum=momentum, nesterov=True, weight_decay=weight_decay)


def _asgd(learning_rate, lambd, alpha, t0, weight_decay) -> GradientTransformation:
    return chain(*coupled_l2(weight_decay), scale_by_asgd(learning_rate, lambd, alpha, t0), scale(-1.0))


@other_names
def asgd(
    learning_rate: LearningRate = 1e-2,
    lambd: float = 1e-4,
    alpha: float = 0.75,
    t0: float = 1e6,
    weight_decay: float = 0.0,
) -> GradientTransformation:
    r"""Averaged SGD, ``torch.optim.ASGD`` (Polyak and Juditsky 1992): SGD with a decaying step
    size and a decay term, keeping the running average of the parameters.

    .. math::
        g_t \leftarrow g_t + w\theta_{t-1};\quad
        \theta_t \leftarrow \theta_{t-1}(1 - \lambda\eta_{t-1}) - \eta_{t-1} g_t;\quad
        a_t \leftarrow a_{t-1} + \mu_{t-1}(\theta_t - a_{t-1}) \;(a_t = \theta_t \text{ while } \mu_{t-1} = 1);

        \eta_t \leftarrow \frac{\gamma}{(1 + \lambda\gamma t)^{\alpha}};\quad
        \mu_t \leftarrow \frac{1}{\max(1, t - t_0)}

    with :math:`\eta_0 = \gamma`, :math:`\mu_0 = 1`, :math:`\lambda` = lambd, :math:`w` =
    weight_decay, and :math:`a` the averaged parameters (torch's ``state['ax']``, a tree like the
    params): read them with :func:`averaged_params`. The step size of update :math:`t` is the one
    update :math:`t-1` computed from its rate, so a new learning rate (set, or a schedule's)
    takes effect one update later, as in torch.
    ``= chain(add_decayed_weights(w), scale_by_asgd(γ, λ, α, t_0), scale(-1))``.

    Args:
        learning_rate: γ, a float ``>= 0`` or a schedule ``step -> rate`` (:mod:`fnn.schedules`;
            ``step`` counts updates from 0).
        lambd: λ >= 0, the decay term (torch's ``lambd``).
        alpha: α >= 0, the power of the step size's decay.
        t0: t_0 >= 0, the step after which the parameters are averaged (before it, ``a`` is the
            parameters themselves).
        weight_decay: w, L2 added to the gradient (0: the term is left out of the chain).

    Returns:
        The optimizer, a :class:`GradientTransformation` with its hyperparameters held in the
        state (:func:`inject_hyperparams`).

    Raises:
        ValueError: For a value out of range (a negative learning rate, lambd, alpha or t0...).
        TypeError: For a value of the wrong type.

    Examples:
        >>> import fnn, jax.numpy as jnp
        >>> opt = fnn.optimizers.asgd(0.5, lambd=0.0)
        >>> params = {"w": jnp.array([1.0, 2.0])}
        >>> state = opt.init(params)
        >>> updates, state = opt.update({"w": jnp.array([1.0, -1.0])}, state, params)
        >>> fnn.optimizers.apply_updates(params, updates)["w"].tolist()
        [0.5, 2.5]
    """
    lam, a, start, wd = nonnegative(lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay)
    return inject_hyperparams(_asgd)(check_learning_rate(learning_rate), lam, a, start, active(wd))
