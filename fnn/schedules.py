"""Learning-rate schedules: functions ``step -> learning rate``.

``step`` counts optimizer updates from 0 (the first update uses ``schedule(0)``). Every schedule is
a pure, jittable function of an integer (or integer array) step and returns an array in the default
float dtype; the hyperparameters are checked when the schedule is built, so a bad value raises a
``ValueError`` naming the argument before anything is compiled. Pass a schedule as
``learning_rate=`` to any optimizer in :mod:`fnn.optimizers`.

Argument names follow optax (``init_value``, ``end_value``, ``transition_steps``...);
``piecewise_constant`` follows Keras's ``PiecewiseConstantDecay`` and ``one_cycle`` follows
PyTorch's ``OneCycleLR`` (two phases, cosine annealing).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn._registry import Registry
from fnn._validate import real as _real

Array = jax.Array
Schedule = Callable[[Array], Array]
"""The type of a schedule: a function ``step -> learning rate`` (``step`` counts updates from 0)."""

__all__ = [
    "Schedule",
    "constant",
    "exponential_decay",
    "piecewise_constant",
    "cosine_decay",
    "warmup_cosine_decay",
    "linear",
    "polynomial",
    "one_cycle",
    "get",
    "names",
]


def _steps(name: str, value, minimum: int) -> int:
    """A whole number of steps >= ``minimum``."""
    v = _real(name, value, lo=minimum)
    if v != int(v):
        raise ValueError(f"{name} must be a whole number of steps, got {value!r}")
    return int(v)


def _rate(name: str, value: Any) -> float:
    """A rate a schedule gives: finite and >= 0 (a negative learning rate ascends the loss)."""
    return _real(name, value, lo=0.0)


def _float_dtype() -> Any:
    """The default float dtype: float64 when x64 is enabled, else float32."""
    return jax.dtypes.canonicalize_dtype(np.float64)


def _float_step(step) -> Array:
    return jnp.asarray(step).astype(_float_dtype())


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
    v = _rate("value", value)
    return lambda step: jnp.full(jnp.shape(step), v, _float_dtype())


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
        init_value: The rate at ``transition_begin``.
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
    v0 = _rate("init_value", init_value)
    n = _steps("transition_steps", transition_steps, 1)
    rate = _real("decay_rate", decay_rate, lo=0.0, lo_open=True)
    begin = _steps("transition_begin", transition_begin, 0)
    end = None if end_value is None else _rate("end_value", end_value)
    if not isinstance(staircase, (bool, np.bool_)):
        raise TypeError(f"staircase must be True or False, got {staircase!r}")

    def schedule(step):
        p = jnp.maximum(_float_step(step) - begin, 0.0) / n
        if staircase:
            p = jnp.floor(p)
        v = v0 * rate**p
        if end is not None:
            v = jnp.maximum(v, end) if rate < 1 else jnp.minimum(v, end)
        return v

    return schedule


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
        if not isinstance(seq, (Sequence, np.ndarray)) or isinstance(seq, (str, bytes)):
            raise TypeError(f"{name} must be a sequence of numbers, got {seq!r}")
    bs = [_real(f"boundaries[{i}]", b) for i, b in enumerate(boundaries)]
    vs = [_rate(f"values[{i}]", v) for i, v in enumerate(values)]
    if len(vs) != len(bs) + 1:
        raise ValueError(f"values must have len(boundaries) + 1 = {len(bs) + 1} entries, got {len(vs)}")
    if any(b1 <= b0 for b0, b1 in zip(bs, bs[1:], strict=False)):
        raise ValueError(f"boundaries must be strictly increasing, got {list(boundaries)}")
    b_arr, v_arr = np.asarray(bs), np.asarray(vs)

    def schedule(step):
        s = jnp.asarray(step)
        if jnp.issubdtype(s.dtype, jnp.integer):
            # Integer steps compare exactly (as float32, step 2**24 + 1 rounds onto a boundary):
            # step > b iff step > floor(b); a boundary below the dtype's range is always passed,
            # one at or above its top never (no cast that could wrap).
            info = np.iinfo(s.dtype)
            floors = [math.floor(b) for b in bs]
            passed = sum(f < info.min for f in floors)
            inside = np.asarray([f for f in floors if info.min <= f < info.max], s.dtype)
            index = passed + jnp.sum(s[..., None] > inside, axis=-1)
        else:
            index = jnp.sum(_float_step(s)[..., None] > b_arr, axis=-1)
        return jnp.asarray(v_arr, _float_dtype())[index]

    return schedule


def _cosine(fraction: Array) -> Array:
    """0.5 (1 + cos(pi f)): 1 at f=0, 0 at f=1."""
    return 0.5 * (1.0 + jnp.cos(jnp.pi * fraction))


def cosine_decay(init_value: float, decay_steps: int, alpha: float = 0.0) -> Schedule:
    """``lr(step) = init_value * ((1 - alpha) * 0.5 (1 + cos(pi min(step, decay_steps) / decay_steps)) + alpha)``.

    Keras's CosineDecay and optax's cosine_decay_schedule: from ``init_value`` down to
    ``alpha * init_value`` at ``decay_steps``, then constant.

    Args:
        init_value: The rate at step 0.
        decay_steps: Steps to the end of the decay (>= 1).
        alpha: The final rate as a fraction of ``init_value``, in [0, 1].

    Returns:
        The schedule, ``step -> learning rate`` (jittable; an integer array of steps gives an
        array of rates).

    Raises:
        ValueError: For a value out of range or a step count that is not a whole number.
        TypeError: For a value of the wrong type.

    Examples:
        >>> import fnn
        >>> lr = fnn.schedules.cosine_decay(1.0, decay_steps=10)
        >>> [round(float(lr(s)), 6) for s in (0, 5, 10, 20)]
        [1.0, 0.5, 0.0, 0.0]
    """
    v0 = _rate("init_value", init_value)
    n = _steps("decay_steps", decay_steps, 1)
    a = _real("alpha", alpha, 0.0, 1.0)

    def schedule(step):
        f = jnp.minimum(_float_step(step), n) / n
        return v0 * ((1.0 - a) * _cosine(f) + a)

    return schedule


def warmup_cosine_decay(
    init_value: float, peak_value: float, warmup_steps: int, decay_steps: int, end_value: float = 0.0
) -> Schedule:
    """Linear warmup then cosine decay (optax's warmup_cosine_decay_schedule).

    ``lr = init + (peak - init) step / warmup_steps`` for ``step < warmup_steps``, then
    ``lr = end + (peak - end) 0.5 (1 + cos(pi min(step - W, D - W) / (D - W)))`` with ``W =
    warmup_steps`` and ``D = decay_steps`` (the total, warmup included).

    Args:
        init_value: The rate at step 0.
        peak_value: The rate at the end of the warmup.
        warmup_steps: W, the warmup's length (>= 0).
        decay_steps: D, the total length, warmup included (> W).
        end_value: The rate from step D on.

    Returns:
        The schedule, ``step -> learning rate`` (jittable; an integer array of steps gives an
        array of rates).

    Raises:
        ValueError: For a value out of range or a step count that is not a whole number.
        TypeError: For a value of the wrong type.
    """
    v0 = _rate("init_value", init_value)
    peak = _rate("peak_value", peak_value)
    end = _rate("end_value", end_value)
    w = _steps("warmup_steps", warmup_steps, 0)
    d = _steps("decay_steps", decay_steps, w + 1)

    def schedule(step):
        s = _float_step(step)
        warm = v0 + (peak - v0) * s / max(w, 1)
        cool = end + (peak - end) * _cosine(jnp.clip(s - w, 0.0, d - w) / (d - w))
        return jnp.where(s < w, warm, cool)

    return schedule


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
    v0 = _rate("init_value", init_value)
    end = _rate("end_value", end_value)
    pw = _real("power", power, lo=0.0, lo_open=True)
    n = _steps("transition_steps", transition_steps, 1)
    begin = _steps("transition_begin", transition_begin, 0)

    def schedule(step):
        t = jnp.clip(_float_step(step) - begin, 0.0, n)
        # (n - t) / n is exactly 0 at the end, so the last value is exactly end_value.
        return (v0 - end) * ((n - t) / n) ** pw + end

    return schedule


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


def one_cycle(
    total_steps: int, peak_value: float, pct_start: float = 0.3, div_factor: float = 25.0, final_div_factor: float = 1e4
) -> Schedule:
    """PyTorch's ``OneCycleLR`` (``anneal_strategy="cos"``, two phases), learning rate only.

    ``initial = peak / div_factor`` and ``minimum = initial / final_div_factor``. Phase 1 anneals
    from ``initial`` to ``peak`` over steps ``[0, E1]`` with ``E1 = pct_start * total_steps - 1``;
    phase 2 anneals from ``peak`` to ``minimum`` over ``[E1, total_steps - 1]``. Annealing is
    ``end + (start - end) 0.5 (1 + cos(pi pct))``. Steps past the end hold ``minimum``.

    Args:
        total_steps: The cycle's length in steps (>= 2).
        peak_value: The largest rate.
        pct_start: The fraction of the cycle spent rising, in (0, 1).
        div_factor: ``peak / initial`` (> 0).
        final_div_factor: ``initial / minimum`` (> 0).

    Returns:
        The schedule, ``step -> learning rate`` (jittable; an integer array of steps gives an
        array of rates).

    Raises:
        ValueError: For a value out of range or a step count that is not a whole number.
        TypeError: For a value of the wrong type.
        ValueError: If ``pct_start * total_steps`` does not lie in (1, total_steps).
    """
    n = _steps("total_steps", total_steps, 2)
    peak = _rate("peak_value", peak_value)
    pct = _real("pct_start", pct_start, 0.0, 1.0, lo_open=True, hi_open=True)
    div = _real("div_factor", div_factor, lo=0.0, lo_open=True)
    final_div = _real("final_div_factor", final_div_factor, lo=0.0, lo_open=True)
    e1, e2 = pct * n - 1.0, n - 1.0
    if not 0.0 < e1 < e2:
        raise ValueError(
            f"pct_start * total_steps must lie in (1, total_steps), got "
            f"pct_start={pct_start!r}, total_steps={total_steps!r}"
        )
    initial = peak / div
    minimum = initial / final_div

    def schedule(step):
        s = jnp.minimum(_float_step(step), e2)
        up = peak + (initial - peak) * _cosine(s / e1)
        down = minimum + (peak - minimum) * _cosine((s - e1) / (e2 - e1))
        return jnp.where(s <= e1, up, down)

    return schedule


# Keras's class names (ExponentialDecay, PiecewiseConstantDecay, CosineDecay, PolynomialDecay),
# optax's function names and PyTorch's OneCycleLR all resolve.
_NAMES: Registry[Callable[..., Schedule]] = Registry(
    "schedule",
    {
        "constant": constant,
        "exponential_decay": exponential_decay,
        "piecewise_constant": piecewise_constant,
        "cosine_decay": cosine_decay,
        "warmup_cosine_decay": warmup_cosine_decay,
        "linear": linear,
        "polynomial": polynomial,
        "one_cycle": one_cycle,
    },
    aliases={
        "piecewise_constant_decay": "piecewise_constant",
        "polynomial_decay": "polynomial",
        "one_cycle_lr": "one_cycle",
        "cosine_decay_schedule": "cosine_decay",
        "warmup_cosine_decay_schedule": "warmup_cosine_decay",
        "exponential_decay_schedule": "exponential_decay",
        "linear_schedule": "linear",
        "polynomial_schedule": "polynomial",
        "constant_schedule": "constant",
    },
)


def names() -> list[str]:
    """The schedule names :func:`get` knows, aliases included.

    Returns:
        The names, sorted.
    """
    return _NAMES.names()


def get(name: str, **kwargs: Any) -> Schedule:
    """The schedule called ``name`` (``"cosine_decay"``, ``"CosineDecay"``, ``"OneCycleLR"``...)
    built with ``kwargs``.

    Args:
        name: A schedule name (:func:`names`; case and underscores ignored).
        **kwargs: The schedule's arguments.

    Returns:
        The schedule.

    Raises:
        ValueError: For an unknown name (listing the known ones) or a bad argument value.
        TypeError: For arguments the schedule does not take.

    Examples:
        >>> import fnn
        >>> lr = fnn.schedules.get("CosineDecay", init_value=1.0, decay_steps=10)
        >>> round(float(lr(5)), 6)
        0.5
    """
    factory: Callable[..., Schedule] = _NAMES.lookup(name)
    return factory(**kwargs)


def __dir__() -> list[str]:
    """The public API only (implementation imports stay out of ``dir``)."""
    return sorted(__all__)
