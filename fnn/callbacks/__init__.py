"""Callbacks: what ``fit`` consults between epochs (Keras's algorithms, host-side only).

A callback is an object with any of ``on_train_begin(ctx)``, ``on_epoch_begin(epoch, ctx)``,
``on_epoch_end(epoch, logs, ctx)``, ``on_train_end(ctx)``, or a plain callable
``fn(epoch, logs)`` called at each epoch's end (returning ``True`` stops training). ``ctx`` is a
:class:`FitContext`: the current params and optimizer state (which a callback may replace),
the history, and ``stop_training``. Epochs run on the device as one program, so callbacks see
epoch boundaries, never single batches; per-batch NaN detection happens inside the compiled
epoch when :class:`TerminateOnNaN` is present.

A callback that keeps state across epochs implements ``get_state()``/``set_state(state)``
(see :class:`Callback`): ``fit`` saves that state in its checkpoints and gives it back when it
resumes, so a resumed run is bit-identical to an uninterrupted one. Every built-in callback does.

The built-in callbacks (Keras 3's algorithms where Keras has one):

* :class:`EarlyStopping` stops when a monitored value stops improving (and can restore the
  best weights); :class:`StopAtThreshold` stops once it reaches a target;
  :class:`TerminateOnNaN` stops at the first non-finite batch, keeping the last finite params.
* :class:`ReduceLROnPlateau` and :class:`LearningRateScheduler` change the learning rate held
  in the optimizer state (nothing recompiles) and log ``learning_rate``.
* :class:`ModelCheckpoint` writes resumable checkpoints; :class:`CSVLogger` one CSV row per
  epoch; both continue a resumed run's files.
* :class:`LambdaCallback` wraps ``fn(epoch, logs)``.

Callbacks run in list order at each hook; a value a callback logs (``learning_rate``) is seen
by the callbacks after it.
"""

from fnn.callbacks._base import Callback as Callback, FitContext as FitContext, LambdaCallback as LambdaCallback
from fnn.callbacks._files import CSVLogger as CSVLogger, ModelCheckpoint as ModelCheckpoint
from fnn.callbacks._learning_rate import (
    LearningRateScheduler as LearningRateScheduler,
    ReduceLROnPlateau as ReduceLROnPlateau,
)
from fnn.callbacks._list import CallbackList as CallbackList, write_checkpoint as write_checkpoint
from fnn.callbacks._monitor import (
    EarlyStopping as EarlyStopping,
    StopAtThreshold as StopAtThreshold,
    TerminateOnNaN as TerminateOnNaN,
)
from fnn.callbacks._progress import Progress as Progress

__all__ = [
    "Callback",
    "FitContext",
    "EarlyStopping",
    "TerminateOnNaN",
    "ReduceLROnPlateau",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "CSVLogger",
    "StopAtThreshold",
    "LambdaCallback",
]


def __dir__() -> list[str]:
    """The public API only (implementation imports stay out of ``dir``)."""
    return sorted(__all__)
