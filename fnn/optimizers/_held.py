"""The schedules an optimizer holds, found in its ``init`` for ``fnn.fit`` to check before training.

fnn's transforms are values (:func:`fnn._values.bound`): a chain's ``init`` holds its parts'
inits, a masked transform's its inner one's, :func:`scale_by_schedule`'s its schedule, an
injected transform's (:class:`InjectInit`) its scheduled hyperparameters and the factory its
inner transform is built from. So the schedules are found by walking ``opt.init``, however the
transforms nest. A function of the user's own (an optax transform, a ``stateless`` closure)
shows nothing: the schedules it closes over are not found.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from fnn._values import bound
from fnn.optimizers._base import Schedule
from fnn.optimizers._inject import InjectInit
from fnn.optimizers._transform import schedule_held


class HeldSchedule(NamedTuple):
    """A schedule found in an optimizer: ``name`` says what it schedules (a hyperparameter's
    name, ``learning_rate`` for :func:`scale_by_learning_rate`'s, ``scale_by_schedule`` for a
    factor); ``rate``: its values must be ``>= 0`` (a learning rate), not only finite."""

    name: str
    schedule: Schedule
    rate: bool


def held_schedules(opt: Any) -> list[HeldSchedule]:
    """The schedules ``opt`` holds, in the order of its parts: fnn's transforms' and injected
    hyperparameters', nested in chains, masks and injections alike."""
    found: list[HeldSchedule] = []
    _walk(getattr(opt, "init", None), found)
    return found


def _walk(init: Any, found: list[HeldSchedule]) -> None:
    if isinstance(init, InjectInit):
        found.extend(HeldSchedule(name, s, name == "learning_rate") for name, s in init.schedules)
        init.visit_inner(lambda inner: _walk(inner.init, found))
    elif (held := schedule_held(init)) is not None:
        schedule, rate = held
        found.append(HeldSchedule("learning_rate" if rate else "scale_by_schedule", schedule, rate))
    elif isinstance(init, bound):  # a combinator's init: its parts' inits are among its arguments
        for part in (*init.args, *init.kwargs.values()):
            _walk(part, found)
    elif isinstance(init, (tuple, list)):
        for part in init:
            _walk(part, found)
