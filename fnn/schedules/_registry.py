"""The schedules by name: get and names (Keras's, optax's and PyTorch's names)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fnn._registry import Registry
from fnn.schedules._base import Schedule
from fnn.schedules._cosine import cosine_decay, one_cycle, warmup_cosine_decay
from fnn.schedules._decay import constant, exponential_decay, linear, piecewise_constant, polynomial

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
