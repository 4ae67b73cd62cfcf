"""Training: one compiled step, one compiled epoch, ``fit`` with Keras's semantics, many models
at once (``fit_many``, ``sweep``), evaluation and batched prediction (``predict``).

The lesson's loop (forward, loss, backward, update, repeated for ``ceil(N / batch_size)``
iterations per epoch until a stopping criterion holds) runs as ONE XLA program per epoch; the
host reads its sums once per epoch. ``batch_size=N`` is full-batch gradient descent,
``batch_size=1`` is SGD. ``fit`` and ``fit_many`` share one preparation path and one epoch loop,
and every evaluation (validation, ``evaluate``, ``eval_step``) one pass.
"""

from fnn.train._epoch import train_step as train_step
from fnn.train._evaluate import eval_step as eval_step, evaluate as evaluate
from fnn.train._fit import FitResult as FitResult, History as History, fit as fit
from fnn.train._many import SweepResult as SweepResult, fit_many as fit_many, sweep as sweep
from fnn.train._predict import predict as predict

__all__ = [
    "fit", "FitResult", "History", "fit_many", "sweep", "SweepResult", "train_step", "eval_step", "evaluate", "predict",
]  # fmt: skip
