"""Training: one compiled step, one compiled epoch, ``fit`` with Keras's semantics, many models
at once (``fit_many``, ``sweep``), evaluation and batched prediction (``predict``).

The lesson's loop (forward, loss, backward, update, repeated for ``ceil(N / batch_size)``
iterations per epoch until a stopping criterion holds) runs as ONE XLA program per epoch; the
host reads its sums once per epoch. ``batch_size=N`` is full-batch gradient descent,
``batch_size=1`` is SGD. ``fit`` and ``fit_many`` share one preparation path and one epoch loop,
and every evaluation (validation, ``evaluate``, ``eval_step``) one pass.

* :func:`fit` trains one model (Keras's ``Model.fit``: batching, shuffling, validation,
  metrics, sample and class weights, :mod:`fnn.callbacks`, resumable checkpoints, data-parallel
  meshes) and returns a :class:`FitResult` with its :class:`History`.
* :func:`fit_many` trains K stacked models in one program; :func:`sweep` builds them from a
  grid of seeds and hyperparameters; both return a :class:`SweepResult`.
* :func:`evaluate` and :func:`predict` run a data set through the network in batches (eval
  mode); :func:`train_step` and :func:`eval_step` are the jitted one-batch steps, for loops of
  your own.

Every argument and the data are checked before anything is compiled (a TypeError or ValueError
naming the argument), and compiled programs are cached on the structure: a second call with
the same network, loss, metrics, optimizer family and shapes compiles nothing.
"""

from fnn.train._epoch import train_step as train_step
from fnn.train._evaluate import eval_step as eval_step, evaluate as evaluate
from fnn.train._fit import fit as fit
from fnn.train._many import fit_many as fit_many
from fnn.train._predict import predict as predict
from fnn.train._results import FitResult as FitResult, History as History, SweepResult as SweepResult
from fnn.train._sweep import sweep as sweep

__all__ = [
    "fit", "FitResult", "History", "fit_many", "sweep", "SweepResult", "train_step", "eval_step", "evaluate", "predict",
]  # fmt: skip


def __dir__() -> list[str]:
    """The public API only (implementation imports stay out of ``dir``)."""
    return sorted(__all__)
