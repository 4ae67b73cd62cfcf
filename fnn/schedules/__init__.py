"""Learning-rate schedules: functions ``step -> learning rate`` (:data:`Schedule` is their type, an
alias of ``Callable[[Array], Array]``).

``step`` counts optimizer updates from 0 (the first update uses ``schedule(0)``). Every schedule is
a pure, jittable function of an integer (or integer array) step and returns an array in the default
float dtype; the hyperparameters are checked when the schedule is built, so a bad value raises a
``ValueError`` naming the argument before anything is compiled. Pass a schedule as
``learning_rate=`` to any optimizer in :mod:`fnn.optimizers`.

A schedule compares, hashes and pickles by value (its kind and arguments; its ``repr`` shows
them): ``exponential_decay(0.1, 10, 0.5) == exponential_decay(0.1, 10, 0.5)``, so optimizers built
with equal schedules are equal and a second ``fit`` with one built afresh compiles nothing.

A schedule's numbers (``init_value``, ``alpha``, ``peak_value``, ``decay_rate``, ``values``...)
are data, not program: an optimizer holds them in its state (``state.schedule_values``, see
:class:`fnn.optimizers.InjectHyperparamsState`) and evaluates the schedule from them, so
``adam(cosine_decay(3e-3, 100))`` and ``adam(cosine_decay(1e-2, 100))`` have equal ``update``
functions and share ``fit``'s compiled epoch. What shapes the program stays in it: the rule, step
counts and boundaries, ``staircase``, whether ``exponential_decay`` has an ``end_value``, and
``polynomial``'s ``power`` (XLA computes ``x ** 1`` and ``x ** 2`` exactly, as ``x`` and ``x * x``).

Argument names follow optax (``init_value``, ``end_value``, ``transition_steps``...);
``piecewise_constant`` follows Keras's ``PiecewiseConstantDecay`` and ``one_cycle`` follows
PyTorch's ``OneCycleLR`` (two phases, cosine annealing).
"""

from fnn.schedules._base import Schedule as Schedule
from fnn.schedules._cosine import (
    cosine_decay as cosine_decay,
    one_cycle as one_cycle,
    warmup_cosine_decay as warmup_cosine_decay,
)
from fnn.schedules._decay import (
    constant as constant,
    exponential_decay as exponential_decay,
    linear as linear,
    piecewise_constant as piecewise_constant,
    polynomial as polynomial,
)
from fnn.schedules._registry import get as get, names as names

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


def __dir__() -> list[str]:
    """The public API only (implementation imports stay out of ``dir``)."""
    return sorted(__all__)
