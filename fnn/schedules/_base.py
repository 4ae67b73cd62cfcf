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
    """A schedule as data: ``rule(step, **structure, **values)`` with ``rule`` a module-level function.

    ``arguments`` are the user's (its ``repr``); ``structure`` holds the rule's arguments that
    shape its program (step counts, boundaries, options such as ``staircase``) and ``values``
    its numbers, computed on the host in float64 from the arguments (``1 - alpha`` for
    ``alpha``): :meth:`as_data` splits them, so that an optimizer holds the values in its state
    as arrays and schedules that differ only in values share one program. Derived on the host
    because the rule, given them as arrays, must give the bits it gives with Python floats: an
    operation between two values would otherwise round in the array's dtype (float32), where
    Python rounds once.

    Compared and hashed by value (the rule and its checked arguments), where a closure compares
    by identity: optimizers built with equal schedules have equal ``update`` functions, so
    ``fit``'s cache of compiled epochs serves a schedule built afresh with the same arguments.
    Module-level rules and plain arguments also make it picklable.
    """

    name: str
    rule: Callable[..., Array]
    arguments: tuple[tuple[str, Any], ...]
    structure: tuple[tuple[str, Any], ...]
    values: tuple[tuple[str, Any], ...]

    def __call__(self, step: Any) -> Array:
        rule, values = self.as_data()
        return rule(step, values)  # as an optimizer evaluates it from its state: the same bits

    @property
    def __name__(self) -> str:  # what error messages call a schedule
        return self.name

    def __repr__(self) -> str:
        return f"fnn.schedules.{self.name}({', '.join(f'{k}={v!r}' for k, v in self.arguments)})"

    def as_data(self) -> tuple[ScheduleRule, dict[str, Any]]:
        """The schedule split into its program and its values: ``rule(step, values)`` equals
        ``self(step)`` bit for bit in the same program (eager, or under one ``jit``), with
        ``values`` as given here (floats, a tuple of floats for ``piecewise_constant``) or as
        arrays of them in the default float dtype. (Across programs, op-by-op eager against a
        fused ``jit``, a multiply-add may round once or twice.)"""
        return ScheduleRule(self.name, self.rule, self.structure, tuple(k for k, _ in self.values)), dict(self.values)


@dataclasses.dataclass(frozen=True)
class ScheduleRule:
    """A schedule without its values (:meth:`ScheduleFunction.as_data`): ``self(step, values)``.
    Compared by the rule, its structure and the names of its values, so the schedules of one
    rule and structure have equal ones, whatever their values."""

    name: str
    rule: Callable[..., Array]
    structure: tuple[tuple[str, Any], ...]
    names: tuple[str, ...]

    def __call__(self, step: Any, values: dict[str, Any]) -> Array:
        dtype = float_dtype()  # the dtype the schedule computes in (values held in it: a no-op)
        # Behind a barrier XLA sees no constant, so the values given as Python floats (the schedule
        # called directly) and as an optimizer state's arrays run the same program, bit for bit:
        # constants would be folded ((a * s) / w into s * (a / w)), rounding otherwise.
        arrays = jax.lax.optimization_barrier({k: jnp.asarray(values[k], dtype) for k in self.names})
        # step counts as floats: a Python int beyond int32 (decay_steps=2**31) would overflow as
        # jnp's weak int32 operand; the float of a count below 2**53 is exact
        structure = {k: float(v) if type(v) is int else v for k, v in self.structure}
        return self.rule(step, **structure, **arrays)


def schedule_function(
    name: str, rule: Callable[..., Array], arguments: dict[str, Any], structure: dict[str, Any], values: dict[str, Any]
) -> Schedule:
    """The schedule ``name`` computing ``rule(step, **structure, **values)``, shown as ``name(**arguments)``
    (arguments already checked; ``values`` the rule's numbers, derived from them on the host)."""
    return ScheduleFunction(name, rule, tuple(arguments.items()), tuple(structure.items()), tuple(values.items()))


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


def host_integers(step: Any) -> bool:
    """Whether ``step`` is integers on the host (a Python int, a NumPy integer or integer array),
    which jax would hold as int32 without x64."""
    return isinstance(step, (int, np.integer, np.ndarray)) and np.issubdtype(np.asarray(step).dtype, np.integer)


def float_step(step) -> Array:
    """The step as the schedule computes with it, in the default float dtype; a host integer
    (a NumPy int64 of a long run, a Python int) through float64 first, which jax would take as
    int32 without x64 (2**31 overflowing, or wrapping round to a negative step)."""
    if host_integers(step):
        step = np.asarray(step, np.float64)
    return jnp.asarray(step).astype(float_dtype())
