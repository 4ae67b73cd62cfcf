"""The Schedule type and what every schedule shares: its arguments' checks, the float step, and
:class:`ScheduleFunction`, the value-compared callable every fnn schedule is."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn._validate import real

Array = jax.Array
Schedule = Callable[[Array], Array]
"""The type of a schedule: a function ``step -> learning rate`` (``step`` counts updates from 0)."""


@dataclasses.dataclass(frozen=True, repr=False)
class ScheduleFunction:
    """A schedule as data: ``rule(step, **arguments)`` with ``rule`` a module-level function.

    Compared and hashed by value (the rule and its checked arguments), where a closure compares
    by identity: optimizers built with equal schedules have equal ``update`` functions, so
    ``fit``'s cache of compiled epochs serves a schedule built afresh with the same arguments.
    Module-level rules and plain arguments also make it picklable.
    """

    name: str
    rule: Callable[..., Array]
    arguments: tuple[tuple[str, Any], ...]

    def __call__(self, step: Any) -> Array:
        return self.rule(step, **dict(self.arguments))

    @property
    def __name__(self) -> str:  # what error messages call a schedule
        return self.name

    def __repr__(self) -> str:
        return f"fnn.schedules.{self.name}({', '.join(f'{k}={v!r}' for k, v in self.arguments)})"


def schedule_function(name: str, rule: Callable[..., Array], **arguments: Any) -> Schedule:
    """The schedule ``name`` computing ``rule(step, **arguments)`` (arguments already checked)."""
    return ScheduleFunction(name, rule, tuple(arguments.items()))


def check_steps(name: str, value, minimum: int) -> int:
    """A whole number of steps >= ``minimum``."""
    v = real(name, value, lo=minimum)
    if v != int(v):
        raise ValueError(f"{name} must be a whole number of steps, got {value!r}")
    return int(v)


def check_rate(name: str, value: Any) -> float:
    """A rate a schedule gives: finite and >= 0 (a negative learning rate ascends the loss)."""
    return real(name, value, lo=0.0)


def float_dtype() -> Any:
    """The default float dtype: float64 when x64 is enabled, else float32."""
    return jax.dtypes.canonicalize_dtype(np.float64)


def float_step(step) -> Array:
    return jnp.asarray(step).astype(float_dtype())
