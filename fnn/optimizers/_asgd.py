r"""Averaged SGD (``torch.optim.ASGD``) as a transform: :func:`scale_by_asgd`, whose state keeps
the step size ``eta``, the averaging weight ``mu`` and the averaged parameters ``ax``, and
:func:`averaged_params`, which reads ``ax`` from any optimizer state (torch's ``state['ax']``).

The notation of the formulas is ``_direction.py``'s: :math:`u_t` the incoming update (the
gradient, with ``asgd``'s L2 weight decay already added), :math:`\theta_{t-1}` the parameters it
was taken at, :math:`t` the step counting from 1.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from fnn.optimizers._base import (
    Array,
    GradientTransformation,
    OptState,
    Params,
    cast,
    count0,
    leafwise,
    moment_dtype,
    need_params,
    scalar_dtype,
    updated,
)
from fnn.optimizers._direction import bound_transform, nonnegative


class ScaleByAsgdState(NamedTuple):
    """State of :func:`scale_by_asgd`, torch's ``state`` of ``ASGD``.

    Attributes:
        count: Updates so far (torch's ``step``).
        eta: η, the step size the next update uses (0-d).
        mu: μ, the averaging weight the next update uses (0-d).
        ax: The averaged parameters, a tree like the params (each leaf float32 or wider): read
            them with :func:`averaged_params`.
    """

    count: Array  # type: ignore[assignment]  # the field shadows tuple.count, as in optax
    eta: Array
    mu: Array
    ax: Params


def _asgd_init(learning_rate, lambd, alpha, t0, params) -> ScaleByAsgdState:
    dt = scalar_dtype()
    # ax starts as the params (in the moments' dtype): averaged_params before the first step is
    # the params themselves, as after it until t0 (the first step sets it to them anyway, mu = 1)
    ax = jax.tree.map(lambda p: jnp.array(p, moment_dtype(jnp.asarray(p).dtype), copy=True), params)
    return ScaleByAsgdState(count0(), jnp.array(learning_rate, dt, copy=True), jnp.ones((), dt), ax)


def _asgd_update(learning_rate, lambd, alpha, t0, updates, state, params=None):
    need_params(params, "scale_by_asgd", "its decay term λθ and the average of the parameters")
    dt = scalar_dtype()
    lr, lam, a, start = cast(dt, learning_rate, lambd, alpha, t0)
    # torch sets eta to the rate at the first step; later steps use the one the last step computed
    eta = jnp.where(state.count == 0, lr, state.eta)

    def leaf(u, p, ax, dtypes):
        e, lam_, mu = cast(u.dtype, eta, lam, state.mu)
        step = e * (u + lam_ * p)
        # the parameters this step reaches, as apply_updates gives them: the step leaves in the
        # update's dtype, negated (scale(-1), exact), added and rounded to the params' dtype
        # (bfloat16 params a step of 1e-3 leaves unchanged are averaged unchanged, as torch's)
        u_dtype, p_dtype = dtypes
        with jax.numpy_dtype_promotion("standard"):  # mixed grads and params: apply_updates's promotion
            new = updated(p.astype(p_dtype), -step.astype(u_dtype)).astype(ax.dtype)
        return step, jnp.where(mu == 1, new, ax + mu * (new - ax))

    out, ax = leafwise(leaf, 2, updates, params, state.ax, dtypes=True)
    t = (state.count + 1).astype(dt)
    next_eta = lr / (1 + lam * lr * t) ** a
    next_mu = 1 / jnp.maximum(1, t - start)
    return out, ScaleByAsgdState(state.count + 1, next_eta, next_mu, ax)


def scale_by_asgd(
    learning_rate: float = 1e-2, lambd: float = 1e-4, alpha: float = 0.75, t0: float = 1e6
) -> GradientTransformation:
    r"""Averaged SGD's step (``torch.optim.ASGD``), with the average of the parameters.

    .. math::
        \text{out}_t = \eta_{t-1} (u_t + \lambda\theta_{t-1});\quad
        \theta_t = \theta_{t-1} - \text{out}_t;\quad
        a_t = a_{t-1} + \mu_{t-1}(\theta_t - a_{t-1}) \;(a_t = \theta_t \text{ while } \mu_{t-1} = 1);

        \eta_t = \frac{\gamma}{(1 + \lambda\gamma t)^{\alpha}};\quad
        \mu_t = \frac{1}{\max(1, t - t_0)}

    with :math:`\eta_0 = \gamma` = learning_rate (read at the first update, as torch reads it at
    its first step), :math:`\mu_0 = 1` and :math:`a` (``ax``, every leaf the shape of its
    parameter) the average of the parameters from step :math:`t_0` on. :math:`\eta_t` takes the
    rate of update :math:`t`, so a new rate (or a schedule's) reaches the step after, as in
    torch. The output is a positive step: negate it (``scale(-1)``) to descend, as the ``ax``
    it keeps assumes (:math:`\theta_t = \theta_{t-1} - \text{out}_t`), so nothing may change
    the updates after it.

    Args:
        learning_rate: γ >= 0.
        lambd: λ >= 0, the decay term (torch's ``lambd``), both in the step and in η.
        alpha: α >= 0, the power of η's decay.
        t0: t_0 >= 0, the step after which averaging starts.

    Returns:
        The transform, a :class:`GradientTransformation`; its state is a :class:`ScaleByAsgdState`.

    Raises:
        ValueError: For a hyperparameter out of range; at update, without params.
        TypeError: For a hyperparameter of the wrong type.
    """
    config = nonnegative(learning_rate=learning_rate, lambd=lambd, alpha=alpha, t0=t0)
    return bound_transform(_asgd_init, _asgd_update, *config)


def averaged_params(state: OptState) -> Params:
    """The averaged parameters ``ax`` of the ASGD in ``state`` (torch's ``state['ax']``).

    They are the parameters themselves up to step ``t0 + 1`` (before the first step too: the
    initial params; torch has no ``ax`` then) (torch's default ``t0=1e6`` is
    rarely reached); from then on their running average, step ``t``'s parameters weighted
    ``1 / (t - 1 - t0)``: for an integer ``t0``, the mean of the parameters since step ``t0 + 2``.
    The parameters are those :func:`apply_updates` gives, rounded to their dtype (half-precision
    params that a step leaves unchanged are averaged unchanged).

    Args:
        state: An optimizer state holding one :func:`scale_by_asgd` state (an :func:`asgd`
            state, nested, chained or vmapped).

    Returns:
        A tree like the params (each leaf in float32 or wider; with a batch axis in a vmapped
        state).

    Raises:
        ValueError: If the state holds no ASGD state, or several.

    Examples:
        >>> import fnn, jax.numpy as jnp
        >>> opt = fnn.optimizers.asgd(0.5, lambd=0.0, t0=0)
        >>> params = {"w": jnp.array([1.0])}
        >>> state = opt.init(params)
        >>> for _ in range(3):  # the params go 0.5, 0.0, -0.5
        ...     updates, state = opt.update({"w": jnp.array([1.0])}, state, params)
        ...     params = fnn.optimizers.apply_updates(params, updates)
        >>> fnn.optimizers.averaged_params(state)["w"].tolist()  # the mean of the last two
        [-0.25]
    """
    is_asgd = lambda node: isinstance(node, ScaleByAsgdState)
    found = [node for node in jax.tree.leaves(state, is_leaf=is_asgd) if is_asgd(node)]
    if len(found) != 1:
        raise ValueError(
            f"averaged_params: the optimizer state holds {len(found) or 'no'} ASGD state{'s' * (len(found) != 1)} "
            "(fnn.optimizers.asgd or scale_by_asgd); it reads the one there is"
        )
    return found[0].ax
