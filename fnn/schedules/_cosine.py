"""Cosine annealing: cosine decay, with a linear warmup, and PyTorch's one cycle."""

from __future__ import annotations

import jax.numpy as jnp

from fnn._validate import real
from fnn.schedules._base import Array, Schedule, check_rate, check_steps, float_step, schedule_function


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
    init = check_rate("init_value", init_value)
    steps = check_steps("decay_steps", decay_steps, 1)
    a = real("alpha", alpha, 0.0, 1.0)
    return schedule_function(
        "cosine_decay",
        _cosine_decay,
        arguments=dict(init_value=init, decay_steps=steps, alpha=a),
        structure=dict(decay_steps=steps),
        values=dict(init_value=init, alpha=a, span=1.0 - a),
    )


def _cosine_decay(step, decay_steps: int, init_value: float, alpha: float, span: float) -> Array:
    f = jnp.minimum(float_step(step), decay_steps) / decay_steps
    return init_value * (span * _cosine(f) + alpha)


def warmup_cosine_decay(
    init_value: float, peak_value: float, warmup_steps: int, decay_steps: int, end_value: float = 0.0
) -> Schedule:
    """Linear warmup then cosine decay (optax's warmup_cosine_decay_schedule).

    ``lr = init + (peak - init) step / warmup_steps`` for ``step < warmup_steps``, then
    ``lr = end + (peak - end) 0.5 (1 + cos(pi min(step - W, D - W) / (D - W)))`` with ``W =
    warmup_steps`` and ``D = decay_steps`` (the total, warmup included). Steps before 0 give
    ``init_value``, as optax's.

    Args:
        init_value: The rate at step 0, where the warmup starts (with ``warmup_steps=0`` there is
            none: step 0 gives ``peak_value``, as optax's, and ``init_value`` only steps before 0).
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
    init = check_rate("init_value", init_value)
    peak = check_rate("peak_value", peak_value)
    w = check_steps("warmup_steps", warmup_steps, 0)
    d = check_steps("decay_steps", decay_steps, w + 1)
    end = check_rate("end_value", end_value)
    return schedule_function(
        "warmup_cosine_decay",
        _warmup_cosine_decay,
        arguments=dict(init_value=init, peak_value=peak, warmup_steps=w, decay_steps=d, end_value=end),
        structure=dict(warmup_steps=w, decay_steps=d),
        values=dict(init_value=init, end_value=end, rise=peak - init, fall=peak - end),
    )


def _warmup_cosine_decay(
    step, warmup_steps: int, decay_steps: int, init_value: float, end_value: float, rise: float, fall: float
) -> Array:
    s, w, d = float_step(step), warmup_steps, decay_steps
    # steps before 0 are the warmup's, held at init_value (optax's: its warmup clips the step at 0)
    warm = init_value + rise * jnp.maximum(s, 0.0) / max(w, 1)
    cool = end_value + fall * _cosine(jnp.clip(s - w, 0.0, d - w) / (d - w))
    return jnp.where(s < w, warm, cool)


def one_cycle(
    total_steps: int, peak_value: float, pct_start: float = 0.3, div_factor: float = 25.0, final_div_factor: float = 1e4
) -> Schedule:
    """PyTorch's ``OneCycleLR`` (``anneal_strategy="cos"``, two phases), learning rate only.

    ``initial = peak / div_factor`` and ``minimum = initial / final_div_factor``. Phase 1 anneals
    from ``initial`` to ``peak`` over steps ``[0, E1]`` with ``E1 = pct_start * total_steps - 1``;
    phase 2 anneals from ``peak`` to ``minimum`` over ``[E1, total_steps - 1]``. Annealing is
    ``end + (start - end) 0.5 (1 + cos(pi pct))``. Steps past the end hold ``minimum``, steps
    before 0 the initial rate.

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
        ValueError: For a value out of range or a step count that is not a whole number, or
            if ``pct_start * total_steps`` does not lie in (1, total_steps).
        TypeError: For a value of the wrong type.
    """
    n = check_steps("total_steps", total_steps, 2)
    peak = check_rate("peak_value", peak_value)
    pct = real("pct_start", pct_start, 0.0, 1.0, lo_open=True, hi_open=True)
    div = real("div_factor", div_factor, lo=0.0, lo_open=True)
    final_div = real("final_div_factor", final_div_factor, lo=0.0, lo_open=True)
    e1, e2 = pct * n - 1.0, n - 1.0
    if not 0.0 < e1 < e2:
        raise ValueError(
            f"pct_start * total_steps must lie in (1, total_steps), got "
            f"pct_start={pct_start!r}, total_steps={total_steps!r}"
        )
    initial = peak / div
    minimum = initial / final_div
    return schedule_function(
        "one_cycle",
        _one_cycle,
        arguments=dict(total_steps=n, peak_value=peak, pct_start=pct, div_factor=div, final_div_factor=final_div),
        # E1 is a value (pct_start's): the phases meet at a select, not at a step count
        structure=dict(e2=e2),
        values=dict(
            e1=e1, peak=peak, minimum=minimum, up_span=initial - peak, down_span=peak - minimum, down_steps=e2 - e1
        ),
    )


def _one_cycle(
    step, e2: float, e1: float, peak: float, minimum: float, up_span: float, down_span: float, down_steps: float
) -> Array:
    s = jnp.clip(float_step(step), 0.0, e2)  # steps before 0 hold the initial rate, as optax's and torch's
    up = peak + up_span * _cosine(s / e1)
    down = minimum + down_span * _cosine((s - e1) / down_steps)
    return jnp.where(s <= e1, up, down)
