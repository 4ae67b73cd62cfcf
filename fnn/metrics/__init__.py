"""Metrics with Keras 3 semantics, in a streaming form.

Every metric is a pure function ``(y_true, y_pred) -> scalar`` on one batch. A compiled epoch
cannot average per-batch values (``rmse`` or the AUC of a data set is not the mean of per-batch
values, and the last batch may be smaller), so each metric is also a :class:`Metric` whose
``update`` returns one batch's partial sums and whose ``result`` turns the totals into the
value::

    m = fnn.metrics.get("rmse")
    s, c = m.update(y_true_batch, y_pred_batch)      # jittable; add these up on device
    value = m.result(total_s, total_c)               # sqrt(total_s / total_c)

    m = fnn.metrics.get("AUC", curve="PR", num_thresholds=500)
    parts = m.update(y_true_batch, y_pred_batch, sample_weight=w)   # (tp, fp, tn, fn) per threshold
    value = m.result(*totals)

Means (accuracies, ``mae``, ``mse``, ``rmse``, and Keras's metrics that are losses: ``mape``,
``binary_crossentropy``, ``cosine_similarity``... :func:`get` lists them) sum per-element or
per-sample scores and their count (a count of 0 gives 0, as in Keras); ``auc``,
``precision``, ``recall``, ``f1_score`` and ``fbeta_score`` sum confusion counts, and
``true_positives``, ``false_positives``, ``true_negatives`` and ``false_negatives`` are those
counts over the epoch (at ``threshold=0.5``; weighted, the sum of the weights);
``precision_at_recall``, ``recall_at_precision``, ``sensitivity_at_specificity`` and
``specificity_at_sensitivity`` sum those counts at ``num_thresholds`` thresholds and take the
best of one ratio where the other reaches its floor (``get("PrecisionAtRecall", recall=0.8)``,
logged as the name asked for); ``r2_score``
sums ``y``, ``y^2``, the squared residuals and the count; ``iou``, ``mean_iou``, ``binary_iou``,
``one_hot_iou`` and ``one_hot_mean_iou`` sum a confusion matrix. ``pearson_correlation`` and
``concordance_correlation`` are, as in Keras, the mean over the samples of one correlation per
sample (along the last axis), not the correlation of the data set. Every ``update`` takes an optional
``sample_weight`` (Keras's semantics: weighted sums over weighted counts; None is unweighted).
As in Keras 3, :func:`fnn.fit` and :func:`fnn.evaluate` weigh only their ``weighted_metrics``
by the sample or class weights; their ``metrics`` stay unweighted.

``"accuracy"`` (or ``"acc"``) is resolved from the loss (a crossentropy: Keras 2's rule) or else
from the shapes of targets and outputs (Keras 3's rule); :func:`get` says where the two differ.
A metric asked for by a string is named by that very string (``"AUC"`` logs ``AUC`` and
``val_AUC``, as in Keras 3); a callable by its ``name`` (a loss given as a metric), else its
``__name__``. :func:`resolve` checks a list of metrics against the shapes of
targets and outputs without compiling anything, and :func:`check_targets` checks concrete label
values (integer class ids for the sparse metrics), which jit cannot see.
"""

from fnn.metrics._accuracy import (
    binary_accuracy as binary_accuracy,
    categorical_accuracy as categorical_accuracy,
    sparse_categorical_accuracy as sparse_categorical_accuracy,
    sparse_top_k_categorical_accuracy as sparse_top_k_categorical_accuracy,
    top_k_categorical_accuracy as top_k_categorical_accuracy,
)
from fnn.metrics._at_threshold import (
    precision_at_recall as precision_at_recall,
    recall_at_precision as recall_at_precision,
    sensitivity_at_specificity as sensitivity_at_specificity,
    specificity_at_sensitivity as specificity_at_sensitivity,
)
from fnn.metrics._auc import auc as auc
from fnn.metrics._base import Metric as Metric
from fnn.metrics._confusion import (
    false_negatives as false_negatives,
    false_positives as false_positives,
    precision as precision,
    recall as recall,
    true_negatives as true_negatives,
    true_positives as true_positives,
)
from fnn.metrics._correlation import (
    concordance_correlation as concordance_correlation,
    pearson_correlation as pearson_correlation,
)
from fnn.metrics._fscore import f1_score as f1_score, fbeta_score as fbeta_score
from fnn.metrics._iou import (
    binary_iou as binary_iou,
    iou as iou,
    mean_iou as mean_iou,
    one_hot_iou as one_hot_iou,
    one_hot_mean_iou as one_hot_mean_iou,
)
from fnn.metrics._registry import get as get, names as names
from fnn.metrics._regression import (
    mae as mae,
    mse as mse,
    r2_score as r2_score,
    rmse as rmse,
)
from fnn.metrics._resolve import check_targets as check_targets, resolve as resolve

mean_absolute_error = mae
"""Keras's name for :func:`mae` (the same function)."""
mean_squared_error = mse
"""Keras's name for :func:`mse` (the same function)."""
root_mean_squared_error = rmse
"""Keras's name for :func:`rmse` (the same function)."""
f1 = f1_score
"""Short for :func:`f1_score` (the same function)."""
r2 = r2_score
"""Short for :func:`r2_score` (the same function)."""

__all__ = [
    "Metric",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "mae",
    "mse",
    "rmse",
    "mean_absolute_error",
    "mean_squared_error",
    "root_mean_squared_error",
    "r2_score",
    "r2",
    "auc",
    "precision",
    "recall",
    "f1_score",
    "f1",
    "fbeta_score",
    "true_positives",
    "false_positives",
    "true_negatives",
    "false_negatives",
    "precision_at_recall",
    "recall_at_precision",
    "sensitivity_at_specificity",
    "specificity_at_sensitivity",
    "iou",
    "mean_iou",
    "binary_iou",
    "one_hot_iou",
    "one_hot_mean_iou",
    "pearson_correlation",
    "concordance_correlation",
    "get",
    "resolve",
    "check_targets",
    "names",
]


def __dir__() -> list[str]:
    """The public API only (implementation imports stay out of ``dir``)."""
    return sorted(__all__)
