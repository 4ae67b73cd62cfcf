r"""Generic transforms: scaling (by a constant, a learning rate, a schedule, a trust ratio),
clipping, weight decay and momentum.

Each rule is written once here and reused by the named optimizers in ``_alias_*.py``. Every
hyperparameter may be a Python number (checked when the transform is built) or a scalar array
(a value :func:`inject_hyperparams` keeps in the optimizer state, traced under ``jit``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fnn._dtypes import promoted
from fnn._validate import boolean, hyper, is_traced
from fnn._values import bound
from fnn.optimizers._base import (
    Array,
    GradientTransformation,
    OptState,
    Params,
    Schedule,
    Updates,
    as_array,
    cast,
    count0,
    leafwise,
    moment_dtype,
    need_params,
    stateless,
    tree_scale,
    zeros_like_moments,
)

# ---------------------------------------------------------------------------------------------
# Scaling.


def _scale(step_size: Any, updates: Updates, params: Params) -> Updates:
    return tree_scale(updates, step_size)


def scale(step_size: float | Array) -> GradientTransformation:
    """``step_size * updates`` (``scale(-lr)`` turns a gradient into a descent step).

    Args:
        step_size: The factor, a number or a scalar array.

    Returns:
        The transform, a :class:`GradientTransformation`.

    Raises:
        ValueError: For a hyperparameter out of range.
        TypeError: For a hyperparameter of the wrong type.

    Examples:
        >>> import fnn, jax.numpy as jnp
        >>> t = fnn.optimizers.scale(-0.5)
        >>> t.update([jnp.array(2.0)], t.init(None))[0][0].tolist()
        -1.0
    """
    return stateless(bound(_scale, hyper("step_size", step_size)))


class ScaleByScheduleState(NamedTuple):
    """State of :func:`scale_by_schedule`: ``count``, the updates so far (the schedule's step)."""

    count: Array  # type: ignore[assignment]  # the field shadows tuple.count, as in optax


def _schedule_init(schedule: Schedule, params: Params) -> ScaleByScheduleState:
    return ScaleByScheduleState(count0())


def _schedule_update(
    schedule: Schedule, updates: Updates, state: ScaleByScheduleState, params: Params = None
) -> tuple[Updates, ScaleByScheduleState]:
    return tree_scale(updates, schedule(state.count)), ScaleByScheduleState(state.count + 1)


def scale_by_schedule(schedule: Schedule) -> GradientTransformation:
    """``schedule(count) * updates`` with ``count`` the number of earlier updates (from 0).

    Args:
        schedule: ``step -> factor`` (e.g. from :mod:`fnn.schedules`).

    Returns:
        The transform, a :class:`GradientTransformation`.

    Raises:
        TypeError: If ``schedule`` is not callable.
    """
    if not callable(schedule):
        raise TypeError(f"schedule must be callable step -> value, got {schedule!r}")
    return GradientTransformation(bound(_schedule_init, schedule), bound(_schedule_update, schedule))


def _rate_factor(flip: bool, schedule: Schedule, count: Array) -> Array:
    """A learning-rate schedule's factor, ``-rate`` for descent: a transform of its own, so that
    fit finds the rate (:func:`schedule_held`) and checks it ``>= 0``."""
    rate = jnp.asarray(schedule(count))
    return -rate if flip else rate


def schedule_held(init: Any) -> tuple[Schedule, bool] | None:
    """The schedule ``init`` holds where it is :func:`scale_by_schedule`'s init (None otherwise),
    and whether it is :func:`scale_by_learning_rate`'s rate (whose values must be ``>= 0``)."""
    if not (isinstance(init, bound) and init.fn is _schedule_init):
        return None
    (schedule,) = init.args
    if isinstance(schedule, bound) and schedule.fn is _rate_factor:
        return schedule.args[1], True
    return schedule, False


def scale_by_learning_rate(
    learning_rate: float | Array | Schedule, *, flip_sign: bool = True
) -> GradientTransformation:
    """``-learning_rate * updates``: the last link of every optimizer's chain.

    ``learning_rate`` is a number (``>= 0``), a scalar array, or a schedule ``step -> rate``
    (``step`` counts updates from 0). ``flip_sign=False`` scales without negating (ascent).

    Args:
        learning_rate: A number ``>= 0``, a scalar array, or a schedule ``step -> rate``.
        flip_sign: Negate (descent); False scales without negating (ascent).

    Returns:
        The transform, a :class:`GradientTransformation`.

    Raises:
        ValueError: For a hyperparameter out of range.
        TypeError: For a hyperparameter of the wrong type.
    """
    flip = boolean("flip_sign", flip_sign)
    if callable(learning_rate):
        return scale_by_schedule(bound(_rate_factor, flip, learning_rate))
    lr = hyper("learning_rate", learning_rate, lo=0.0)
    return scale(-lr if flip else lr)


def _trust_ratio(min_norm: Any, trust_coefficient: Any, eps: Any, updates: Updates, params: Params) -> Updates:
    need_params(params, "scale_by_trust_ratio", "the parameter norms")

    def leaf(u, p):
        u, p = as_array(u), as_array(p, "params")
        dt = moment_dtype(u.dtype)
        p_norm = jnp.maximum(jnp.linalg.norm(p.astype(dt).ravel()), min_norm)
        u_norm = jnp.maximum(jnp.linalg.norm(u.astype(dt).ravel()), min_norm)
        ratio = trust_coefficient * p_norm / (u_norm + eps)
        # A zero norm on either side would freeze the leaf (or divide by 0): leave it unscaled.
        ratio = jnp.where((p_norm == 0) | (u_norm == 0), 1.0, ratio)
        return (u.astype(dt) * ratio.astype(dt)).astype(u.dtype)

    return jax.tree.map(leaf, updates, params)


def scale_by_trust_ratio(
    min_norm: float = 0.0, trust_coefficient: float = 1.0, eps: float = 0.0
) -> GradientTransformation:
    r"""Layer-wise trust ratio (LARS, LAMB): each leaf's update times
    :math:`c\,\max(\|\theta\|, n_0) / (\max(\|u\|, n_0) + \epsilon)`, or 1 where either norm is 0.

    ``c`` = trust_coefficient, :math:`n_0` = min_norm. LAMB is
    ``chain(scale_by_adam(), add_decayed_weights(wd), scale_by_trust_ratio(), scale_by_learning_rate(lr))``.

    Args:
        min_norm: n_0 >= 0, the floor of both norms.
        trust_coefficient: c >= 0.
        eps: ε >= 0, added to the update's norm.

    Returns:
        The transform, a :class:`GradientTransformation`.

    Raises:
        ValueError: For a hyperparameter out of range; at update, without ``params`` (this
            transform reads them).
        TypeError: For a hyperparameter of the wrong type.
    """
    return stateless(
        bound(
            _trust_ratio,
            hyper("min_norm", min_norm, lo=0.0),
            hyper("trust_coefficient", trust_coefficient, lo=0.0),
            hyper("eps", eps, lo=0.0),
        )
    )


# ---------------------------------------------------------------------------------------------
# Clipping.


def global_norm(tree: Updates) -> Array:
    """``sqrt(sum of squares of every leaf)``, accumulated in float32 or wider.

    Args:
        tree: A pytree of arrays (updates, gradients...).

    Returns:
        The norm, a scalar (0 for a tree without leaves).

    Examples:
        >>> import fnn, jax.numpy as jnp
        >>> float(fnn.optimizers.global_norm({"w": jnp.array([3.0]), "b": jnp.array([4.0])}))
        5.0
    """
    leaves = [as_array(x) for x in jax.tree.leaves(tree)]
    if not leaves:
        return jnp.zeros((), jnp.float32)
    dt = moment_dtype(promoted(*leaves))  # leaves of several dtypes: a sum of fnn's own
    return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(dt))) for x in leaves))


def _clip_global(max_norm: Any, updates: Updates, params: Params) -> Updates:
    # norm == 0 gives max_norm / 0 = inf and a factor of 1: no NaN.
    return tree_scale(updates, jnp.minimum(1.0, max_norm / global_norm(updates)))


def clip_by_global_norm(max_norm: float) -> GradientTransformation:
    """Scale all updates by ``min(1, max_norm / global_norm(updates))`` (Keras's global_clipnorm).

    Args:
        max_norm: The largest global norm let through (> 0).

    Returns:
        The transform, a :class:`GradientTransformation`.

    Raises:
        ValueError: For a hyperparameter out of range.
        TypeError: For a hyperparameter of the wrong type.

    Examples:
        >>> import fnn, jax.numpy as jnp
        >>> clip = fnn.optimizers.clip_by_global_norm(5.0)
        >>> updates, _ = clip.update({"w": jnp.array([6.0, 8.0])}, clip.init(None))  # norm 10
        >>> updates["w"].tolist()
        [3.0, 4.0]
    """
    return stateless(bound(_clip_global, hyper("max_norm", max_norm, lo=0.0, lo_open=True)))


def _clip_value(clip_value: Any, updates: Updates, params: Params) -> Updates:
    def leaf(u: Any) -> Array:
        u = as_array(u)
        return jnp.clip(u, -clip_value, clip_value).astype(u.dtype)

    return jax.tree.map(leaf, updates)


def clip_by_value(clip_value: float) -> GradientTransformation:
    """Clip every update element to ``[-clip_value, clip_value]`` (Keras's clipvalue).

    Args:
        clip_value: The bound (>= 0).

    Returns:
        The transform, a :class:`GradientTransformation`.

    Raises:
        ValueError: For a hyperparameter out of range.
        TypeError: For a hyperparameter of the wrong type.
    """
    return stateless(bound(_clip_value, hyper("clip_value", clip_value, lo=0.0)))


# ---------------------------------------------------------------------------------------------
# Weight decay.


def _decay(weight_decay: Any, updates: Updates, params: Params) -> Updates:
    need_params(params, "add_decayed_weights", "weight_decay")
    return leafwise(lambda u, p: (u + cast(u.dtype, weight_decay)[0] * p,), 1, updates, params)[0]


def add_decayed_weights(weight_decay: float | Array = 0.0, mask: Any = None) -> GradientTransformation:
    """``updates + weight_decay * params``.

    Where it sits in the chain says which decay it is: BEFORE the direction transform it is L2
    regularisation coupled into the gradient (``torch.optim.Adam(weight_decay=...)``); AFTER it,
    just before :func:`scale_by_learning_rate`, it is decoupled decay (AdamW, Lion).
    ``mask`` (a tree of bools or ``params -> tree``) limits it to the leaves marked True.

    Args:
        weight_decay: λ >= 0, a number or a scalar array.
        mask: None (every leaf), a pytree of bools with the structure of params (or a prefix of
            it), or a function ``params -> mask``.

    Returns:
        The transform, a :class:`GradientTransformation`.

    Raises:
        ValueError: For a hyperparameter out of range; at update, without ``params`` (this
            transform reads them).
        TypeError: For a hyperparameter of the wrong type.

    Examples:
        >>> import fnn, jax.numpy as jnp
        >>> decay = fnn.optimizers.add_decayed_weights(0.5)
        >>> params = {"w": jnp.array([2.0])}
        >>> decay.update({"w": jnp.array([1.0])}, decay.init(params), params)[0]["w"].tolist()
        [2.0]
    """
    t = stateless(bound(_decay, hyper("weight_decay", weight_decay, lo=0.0)))
    if mask is None:
        return t
    from fnn.optimizers._masking import masked  # masking builds on these transforms

    return masked(t, mask)


# ---------------------------------------------------------------------------------------------
# Momentum.


class TraceState(NamedTuple):
    """State of :func:`trace`: ``count``, the updates that went through the momentum buffer so
    far (those with a momentum of 0 do not count), and ``trace``, the buffer b (shaped like the
    params)."""

    count: Array  # type: ignore[assignment]  # the field shadows tuple.count, as in optax
    trace: Params


def _trace_init(decay: Any, dampening: Any, nesterov: bool, params: Params) -> TraceState:
    return TraceState(count0(), zeros_like_moments(params))


def _trace_update(
    decay: Any, dampening: Any, nesterov: bool, updates: Updates, state: TraceState, params: Params = None
) -> tuple[Updates, OptState]:
    # torch.optim.SGD (and RMSprop) neither reads nor writes the buffer while the momentum is 0
    # (set so through the state mid-run): the step is u itself, undamped, and the buffer waits
    # as it was. b_1 = u_1 undamped on the buffer's first use, the first step or the first with
    # a momentum again after a run of zeros when the buffer was never used.
    on = jnp.asarray(decay) != 0
    weight = jnp.where(state.count == 0, 1.0, 1.0 - jnp.asarray(dampening))

    def leaf(u, _, b):
        mu, c = cast(u.dtype, decay, weight)
        new_b = mu * b + c * u
        out = u + mu * new_b if nesterov else new_b
        return jnp.where(on, out, u), jnp.where(on, new_b, b)

    out, buf = leafwise(leaf, 2, updates, None, state.trace)
    return out, TraceState(state.count + on.astype(state.count.dtype), buf)


def trace(decay: float | Array = 0.9, dampening: float | Array = 0.0, nesterov: bool = False) -> GradientTransformation:
    r"""Momentum as ``torch.optim.SGD`` keeps it.

    .. math::
        b_t = \mu b_{t-1} + (1-\tau) u_t \;(b_1 = u_1);\quad
        \text{out}_t = u_t + \mu b_t \text{ (nesterov) else } b_t

    with :math:`\mu` = decay and :math:`\tau` = dampening. With :math:`\mu = 0` the output is
    :math:`u_t`, undamped, as ``torch.optim.SGD`` steps without momentum, and the buffer is
    neither read nor written: a momentum set to 0 mid-run and back finds it as it was.

    Args:
        decay: μ >= 0, the momentum.
        dampening: τ in [0, 1].
        nesterov: Nesterov's variant (needs ``decay > 0`` and ``dampening == 0``).

    Returns:
        The transform, a :class:`GradientTransformation`.

    Raises:
        ValueError: For a hyperparameter out of range, or ``nesterov=True`` with ``decay == 0``
            or ``dampening != 0``.
        TypeError: For a hyperparameter of the wrong type.
    """
    decay = hyper("decay", decay, lo=0.0)
    dampening = hyper("dampening", dampening, 0.0, 1.0)
    nesterov = boolean("nesterov", nesterov)
    if nesterov and not (is_traced(decay) or is_traced(dampening)) and (float(decay) == 0 or float(dampening) != 0):
        raise ValueError(
            f"nesterov=True requires momentum > 0 and dampening == 0, got momentum={decay!r}, dampening={dampening!r}"
        )
    return GradientTransformation(
        bound(_trace_init, decay, dampening, nesterov), bound(_trace_update, decay, dampening, nesterov)
    )
