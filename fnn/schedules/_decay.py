"""Decays along a formula of the step: constant, exponential, piecewise constant, polynomial, linear."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fnn._validate import real
from fnn.schedules._base import (
    Array,
    Schedule,
    check_rate,
    check_steps,
    float_dtype,
    float_step,
    host_integers,
    schedule_function,
)


def constant(value: float) -> Schedule:
    """``lr(step) = value``.

    Args:
        value: The rate.

    Returns:
        The schedule, ``step -> learning rate`` (jittable; an integer array of steps gives an
        array of rates).

    Raises:
        ValueError: For a value out of range or a step count that is not a whole number.
        TypeError: For a value of the wrong type.
    """
    v = check_rate("value", value)
    return schedule_function("constant", _constant, arguments=dict(value=v), structure={}, values=dict(value=v))


def _constant(step, value: float) -> Array:
    return jnp.full(jnp.shape(step), value, float_dtype())


def exponential_decay(
    init_value: float,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: float | None = None,
) -> Schedule:
    """``lr(step) = init_value * decay_rate ** (t / transition_steps)``, ``t = max(step - transition_begin, 0)``.

    With ``staircase=True`` the exponent is ``floor(t / transition_steps)`` (Keras's ExponentialDecay
    with ``staircase``). ``end_value`` bounds the result: a floor when decaying (``decay_rate < 1``), a
    ceiling when growing.

    Args:
        init_value: The rate at ``transition_begin``, bounded by ``end_value`` as every rate is (as
            optax's: an ``end_value`` above it while decaying is the rate at every step).
        transition_steps: Steps per factor of ``decay_rate`` (>= 1).
        decay_rate: The factor per ``transition_steps`` (> 0; > 1 grows).
        transition_begin: Steps held at ``init_value`` first (>= 0).
        staircase: Decay in whole steps of ``transition_steps``.
        end_value: The bound (floor when decaying, ceiling when growing), or None.

    Returns:
        The schedule, ``step -> learning rate`` (jittable; an integer array of steps gives an
        array of rates).

    Raises:
        ValueError: For a value out of range or a step count that is not a whole number.
        TypeError: For a value of the wrong type.

    Examples:
        >>> import fnn
        >>> lr = fnn.schedules.exponential_decay(1.0, transition_steps=10, decay_rate=0.5)
        >>> [float(lr(s)) for s in (0, 10, 20)]
        [1.0, 0.5, 0.25]
    """
    if not isinstance(staircase, (bool, np.bool_)):
        raise TypeError(f"staircase must be True or False, got {staircase!r}")
    arguments = dict(
        init_value=check_rate("init_value", init_value),
        transition_steps=check_steps("transition_steps", transition_steps, 1),
        decay_rate=real("decay_rate", decay_rate, lo=0.0, lo_open=True),
        transition_begin=check_steps("transition_begin", transition_begin, 0),
        staircase=bool(staircase),
        end_value=None if end_value is None else check_rate("end_value", end_value),
    )
    numbers = ("init_value", "decay_rate") + (() if end_value is None else ("end_value",))
    return schedule_function(
        "exponential_decay",
        _exponential_decay,
        arguments=arguments,
        structure={k: v for k, v in arguments.items() if k not in numbers and k != "end_value"},
        values={k: arguments[k] for k in numbers},  # no end_value: unbounded, another program
    )


def _exponential_decay(
    step,
    transition_steps: int,
    transition_begin: int,
    staircase: bool,
    init_value: float,
    decay_rate: float,
    end_value: float | None = None,
) -> Array:
    p = jnp.maximum(float_step(step) - transition_begin, 0.0) / transition_steps
    if staircase:
        p = jnp.floor(p)
    v = init_value * decay_rate**p
    if end_value is not None:
        # a floor when decaying, a ceiling when growing: a select, as decay_rate may be an array
        v = jnp.where(decay_rate < 1, jnp.maximum(v, end_value), jnp.minimum(v, end_value))
    return v


def piecewise_constant(boundaries: Sequence[int], values: Sequence[float]) -> Schedule:
    """``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` while ``boundaries[i-1] < step <= boundaries[i]``,
    and ``values[-1]`` after the last boundary (Keras's PiecewiseConstantDecay).

    Args:
        boundaries: Strictly increasing steps where the value changes.
        values: ``len(boundaries) + 1`` rates.

    Returns:
        The schedule, ``step -> learning rate`` (jittable; an integer array of steps gives an
        array of rates).

    Raises:
        ValueError: For a value out of range or a step count that is not a whole number.
        TypeError: For a value of the wrong type.

    Examples:
        >>> import fnn
        >>> lr = fnn.schedules.piecewise_constant([2, 4], [1.0, 0.5, 0.25])
        >>> [float(lr(s)) for s in (0, 2, 3, 5)]
        [1.0, 1.0, 0.5, 0.25]
    """
    for name, seq in (("boundaries", boundaries), ("values", values)):
        is_array = isinstance(seq, (np.ndarray, jax.Array))  # NumPy's or jax's, as Keras takes tensors
        if (
            not (isinstance(seq, Sequence) or is_array)
            or isinstance(seq, (str, bytes))
            or (is_array and np.ndim(seq) != 1)
        ):
            raise TypeError(f"{name} must be a sequence of numbers (a list, a 1-D array), got {seq!r}")
    bs = [real(f"boundaries[{i}]", b) for i, b in enumerate(boundaries)]
    vs = [check_rate(f"values[{i}]", v) for i, v in enumerate(values)]
    if len(vs) != len(bs) + 1:
        raise ValueError(f"values must have len(boundaries) + 1 = {len(bs) + 1} entries, got {len(vs)}")
    if any(b1 <= b0 for b0, b1 in zip(bs, bs[1:], strict=False)):
        raise ValueError(f"boundaries must be strictly increasing, got {list(boundaries)}")
    return schedule_function(
        "piecewise_constant",
        _piecewise_constant,
        arguments=dict(boundaries=tuple(bs), values=tuple(vs)),
        structure=dict(boundaries=tuple(bs)),
        values=dict(values=tuple(vs)),
    )


def _piecewise_constant(step, boundaries: tuple[float, ...], values: tuple[float, ...] | Array) -> Array:
    if host_integers(step):
        # host integers compared on the host, exactly (jax would hold a NumPy int64 as int32
        # without x64, wrapping a long run's steps round)
        host = np.asarray(step, np.int64)
        index = np.sum(host[..., None] > np.floor(np.asarray(boundaries, np.float64)), axis=-1)
        return jnp.asarray(values, float_dtype())[index]
    s = jnp.asarray(step)
    if jnp.issubdtype(s.dtype, jnp.integer):
        # Integer steps compare exactly (as float32, step 2**24 + 1 rounds onto a boundary):
        # step > b iff step > floor(b); a boundary below the dtype's range is always passed,
        # one at or above its top never (no cast that could wrap).
        info = np.iinfo(s.dtype)
        floors = [math.floor(b) for b in boundaries]
        passed = sum(f < info.min for f in floors)
        inside = np.asarray([f for f in floors if info.min <= f < info.max], s.dtype)
        index = passed + jnp.sum(s[..., None] > _on_a_new_last_axis(inside, s.ndim), axis=-1)
    else:
        index = jnp.sum(float_step(s)[..., None] > _on_a_new_last_axis(np.asarray(boundaries), s.ndim), axis=-1)
    return jnp.asarray(values, float_dtype())[index]


def _on_a_new_last_axis(points: np.ndarray, ndim: int) -> np.ndarray:
    """``points`` ``(k,)`` as ``(1, ..., 1, k)``, to compare with steps of ``ndim`` axes, each
    with a new last one: the broadcast written out (jax_numpy_rank_promotion="raise" refuses
    ``(n, 1) > (k,)``)."""
    return points.reshape((1,) * ndim + points.shape)


def polynomial(
    init_value: float, end_value: float, power: float, transition_steps: int, transition_begin: int = 0
) -> Schedule:
    """``lr = (init - end) (1 - t / transition_steps) ** power + end``, ``t = clip(step - begin, 0, transition_steps)``.

    Keras's PolynomialDecay (without ``cycle``) and optax's polynomial_schedule.

    Args:
        init_value: The rate up to ``transition_begin``.
        end_value: The rate from ``transition_begin + transition_steps`` on.
        power: The polynomial's power (> 0).
        transition_steps: The length of the transition (>= 1).
        transition_begin: Steps held at ``init_value`` first (>= 0).

    Returns:
        The schedule, ``step -> learning rate`` (jittable; an integer array of steps gives an
        array of rates).

    Raises:
        ValueError: For a value out of range or a step count that is not a whole number.
        TypeError: For a value of the wrong type.
    """
    init = check_rate("init_value", init_value)
    end = check_rate("end_value", end_value)
    p = real("power", power, lo=0.0, lo_open=True)
    steps = check_steps("transition_steps", transition_steps, 1)
    begin = check_steps("transition_begin", transition_begin, 0)
    return schedule_function(
        "polynomial",
        _polynomial,
        arguments=dict(init_value=init, end_value=end, power=p, transition_steps=steps, transition_begin=begin),
        # power is the program's: XLA computes x**1 and x**2 as x and x * x, exactly
        structure=dict(transition_steps=steps, transition_begin=begin, power=p),
        values=dict(span=init - end, end_value=end),
    )


def _polynomial(
    step, transition_steps: int, transition_begin: int, power: float, span: float, end_value: float
) -> Array:
    n = transition_steps
    t = jnp.clip(float_step(step) - transition_begin, 0.0, n)
    # (n - t) / n is exactly 0 at the end, so the last value is exactly end_value.
    return span * ((n - t) / n) ** power + end_value


def linear(init_value: float, end_value: float, transition_steps: int, transition_begin: int = 0) -> Schedule:
    """``polynomial`` with ``power=1``: straight line from ``init_value`` to ``end_value``, then constant.

    Args:
        init_value: The rate up to ``transition_begin``.
        end_value: The rate from ``transition_begin + transition_steps`` on.
        transition_steps: The length of the line (>= 1).
        transition_begin: Steps held at ``init_value`` first (>= 0).

    Returns:
        The schedule, ``step -> learning rate`` (jittable; an integer array of steps gives an
        array of rates).

    Raises:
        ValueError: For a value out of range or a step count that is not a whole number.
        TypeError: For a value of the wrong type.

    Examples:
        >>> import fnn
        >>> lr = fnn.schedules.linear(1.0, 0.0, transition_steps=4)
        >>> [float(lr(s)) for s in range(6)]
        [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    """
    return polynomial(init_value, end_value, 1.0, transition_steps, transition_begin)
