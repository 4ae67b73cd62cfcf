"""Metrics by name: the registry, :func:`names` and :func:`get`, which resolves ``"accuracy"`` by the
loss, then the shapes, and reads a loss's ``from_logits`` and ``ignore_class`` for the metrics.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Sequence
from typing import Any

from fnn import losses
from fnn._registry import Registry
from fnn._values import bound
from fnn.metrics._accuracy import ENTRIES as ACCURACY
from fnn.metrics._at_threshold import ENTRIES as AT_THRESHOLD
from fnn.metrics._auc import ENTRIES as AUC
from fnn.metrics._base import Entry, Metric
from fnn.metrics._confusion import ENTRIES as CONFUSION
from fnn.metrics._correlation import ENTRIES as CORRELATION
from fnn.metrics._from_loss import ALIASES as LOSS_ALIASES, ENTRIES as FROM_LOSS, loss_object_sums, mean
from fnn.metrics._fscore import ENTRIES as FSCORE
from fnn.metrics._iou import ENTRIES as IOU
from fnn.metrics._regression import ENTRIES as REGRESSION

_REGISTRY: dict[str, Entry] = {**ACCURACY, **REGRESSION, **AUC, **CONFUSION, **FSCORE, **FROM_LOSS, **AT_THRESHOLD}
_REGISTRY.update({**IOU, **CORRELATION})
_BUILTIN = {e.scores for e in _REGISTRY.values()}
_DIRECTIONS = {e.scores: e.direction for e in _REGISTRY.values()}
# fnn's loss functions given as metrics (mse's scores are shared with rmse and need no entry here)
_LOSS_FUNCTIONS = {f: n for n in losses.names() if callable(f := getattr(losses, n, None))}


def is_builtin(metric: Metric) -> bool:
    """Whether ``metric`` is one of fnn's own (by name or ``get``), whose scores are per sample
    and honour ``sample_weight``; a metric of your own is not assumed to."""
    return metric.scores in _BUILTIN


def direction(metric: Metric) -> str | None:
    """Which way ``metric`` improves, as Keras's metrics declare it (their ``_direction``):
    ``"up"`` for the accuracies, auc, precision, recall, f1_score, fbeta_score, r2_score,
    cosine_similarity, the threshold searches (precision_at_recall...), the IoU family and the
    correlations; ``"down"`` for the
    errors, the other metrics that are losses, and one of fnn's built-in losses given as a
    metric (Keras's rule for a Keras loss given as one); None for the confusion counts
    (true_positives...), which Keras's declare no direction for, and for a metric of your own,
    which no name can speak for."""
    if metric.scores in _DIRECTIONS:
        return _DIRECTIONS[metric.scores]
    loss = loss_of(metric)
    builtin_loss = loss is not None and loss.kernel is None
    return "down" if builtin_loss or metric.scores in _LOSS_FUNCTIONS else None


def loss_of(metric: Metric) -> losses.Loss | None:
    """The :class:`fnn.losses.Loss` a metric was made of (given as a metric), else None."""
    scores = metric.scores
    if isinstance(scores, bound) and scores.fn is loss_object_sums:
        return scores.args[0]
    return scores if isinstance(scores, losses.Loss) else None  # a whole-batch one, called as it is


NAMES = Registry(
    "metric",
    {**_REGISTRY, "accuracy": None},
    aliases={
        "mean_absolute_error": "mae",
        "mean_squared_error": "mse",
        "root_mean_squared_error": "rmse",
        "acc": "accuracy",
        "f1": "f1_score",
        "r2": "r2_score",
        **LOSS_ALIASES,
    },
    known="metrics",
)


def direction_of_name(name: str) -> str | None:
    """Which way the built-in metric logged as ``name`` (``"accuracy"``, ``"acc"``, ``"mae"``...,
    any case, without ``val_``) improves: ``"up"``, ``"down"``, or None where the name is not a
    built-in metric's or is one Keras declares no direction for (the confusion counts). Only a
    name to go by, so a metric of your own that took a built-in one's name is read as that one."""
    if name not in NAMES:
        return None
    entry = NAMES.lookup(name)
    return "up" if entry is None else entry.direction  # None: "accuracy", settled by the loss, always "up"


# Losses that decide what "accuracy" means, whatever the shapes (Keras 2's rule); any other loss
# leaves the decision to the shapes (Keras 3's rule).
_BINARY_LOSSES = {"binary_crossentropy", "binary_focal_crossentropy", "bce"}
_SPARSE_LOSSES = {"sparse_categorical_crossentropy"}
_CATEGORICAL_LOSSES = {"categorical_crossentropy", "cce"}
# Losses of regression targets, for which "accuracy" would silently compare real values for equality.
_REGRESSION_LOSSES = {
    "mean_squared_error", "mse", "mean_absolute_error", "mae", "mean_absolute_percentage_error", "mape",
    "mean_squared_logarithmic_error", "msle", "huber", "huber_loss", "log_cosh", "logcosh", "poisson",
    "cosine_similarity",
}  # fmt: skip


def names() -> list[str]:
    """Every name :func:`get` accepts, aliases included.

    Returns:
        The names, sorted (``get`` also accepts them in any case, without underscores).

    Examples:
        >>> import fnn
        >>> "auc" in fnn.metrics.names(), "accuracy" in fnn.metrics.names()
        (True, True)
    """
    return NAMES.names()


def _loss_name(loss: Any) -> str | None:
    if loss is None:
        return None
    if isinstance(loss, str):  # any name fnn.losses takes ("BinaryCrossentropy", "mse"): its loss's
        try:
            return losses.get(loss).name
        except (ValueError, TypeError):
            return loss.lower()
    for attr in ("name", "__name__"):
        value = getattr(loss, attr, None)
        if isinstance(value, str):
            return value.lower()
    func = getattr(loss, "func", None)  # functools.partial of a loss function
    return _loss_name(func) if func is not None else None


def loss_option(loss: Any, key: str) -> Any:
    """The option ``key`` of ``loss`` (an fnn Loss, a partial, Keras's loss object...), or None
    where the loss does not say."""
    value = getattr(loss, key, None)
    if value is None:
        for attr in ("keywords", "kwargs", "options", "config"):
            mapping = getattr(loss, attr, None)
            if isinstance(mapping, tuple):  # an fnn Loss keeps its options as sorted pairs
                try:
                    mapping = dict(mapping)
                except (TypeError, ValueError):
                    continue
            if isinstance(mapping, dict) and key in mapping:
                return mapping[key]
    return value


def _resolve_accuracy(loss: Any, y_true_shape: Sequence[int] | None, y_pred_shape: Sequence[int] | None) -> str:
    loss_name = _loss_name(loss)
    if loss_name in _REGRESSION_LOSSES:
        raise ValueError(
            f"metric 'accuracy' means nothing for the regression loss {loss_name!r} (it would count exact "
            "equalities of real numbers): use 'mae', 'mse' or 'rmse', or name the accuracy you mean "
            "(binary_accuracy, categorical_accuracy, sparse_categorical_accuracy)"
        )
    if loss_name in _BINARY_LOSSES:
        return "binary_accuracy"
    if loss_name in _SPARSE_LOSSES:
        return "sparse_categorical_accuracy"
    if loss_name in _CATEGORICAL_LOSSES:
        return "categorical_accuracy"
    if y_pred_shape is None:
        raise ValueError(
            "metric 'accuracy' is resolved from the loss or the shapes: pass loss= (a "
            "crossentropy) or y_true_shape= and y_pred_shape=, or name the accuracy you mean "
            "(binary_accuracy, categorical_accuracy, sparse_categorical_accuracy)"
        )
    y_pred_shape = tuple(y_pred_shape)
    if len(y_pred_shape) < 2 or y_pred_shape[-1] == 1:
        return "binary_accuracy"
    if y_true_shape is None:
        raise ValueError(
            "metric 'accuracy' needs y_true_shape= to tell labels from one-hot "
            "targets when the loss is not a crossentropy"
        )
    y_true_shape = tuple(y_true_shape)
    if len(y_true_shape) < len(y_pred_shape) or (y_true_shape and y_true_shape[-1] == 1):
        return "sparse_categorical_accuracy"
    return "categorical_accuracy"


def get(
    identifier: str | Metric | Callable[..., Any],
    *,
    loss: Any = None,
    y_true_shape: Sequence[int] | None = None,
    y_pred_shape: Sequence[int] | None = None,
    **options: Any,
) -> Metric:
    """A :class:`Metric` from a name, a Metric, or a function ``(y_true, y_pred) -> scores``.

    Names ignore case and underscores, so Keras's class names resolve (``"AUC"``,
    ``"Precision"``, ``"F1Score"``, ``"R2Score"``, ``"SparseCategoricalAccuracy"``). The metric
    keeps the exact string it was asked for as its name, the key of its history entries, as
    Keras 3 names them (``compile_utils.get_metric``): ``"AUC"`` logs ``AUC`` and ``val_AUC``,
    ``"acc"`` stays ``acc``, ``"MeanAbsoluteError"`` stays ``MeanAbsoluteError``.

    ``"accuracy"``/``"acc"`` (in any case) is resolved by the loss first, then by the shapes:
    binary_accuracy for a binary (focal) crossentropy loss, sparse_categorical_accuracy for
    sparse categorical crossentropy, categorical_accuracy for categorical crossentropy (Keras
    2's rule, by the loss); with any other loss (or none), by the shapes as Keras 3 does:
    binary_accuracy for an output of size 1 (or rank 1), sparse_categorical_accuracy for
    integer targets (rank one less than the output, or a last dimension of 1),
    categorical_accuracy otherwise. Keras 3 (``compile_utils.get_metric``) looks at the shapes
    alone, so the two differ where a crossentropy loss and the shapes disagree: a binary (focal)
    crossentropy on an output of several units (multi-label) gives binary_accuracy here,
    categorical_accuracy in Keras 3; a categorical or sparse categorical crossentropy on an
    output of one unit gives categorical_accuracy or sparse_categorical_accuracy here,
    binary_accuracy in Keras 3. Name the accuracy you mean (``"binary_accuracy"``...) to get the
    same metric in both. A regression loss is refused here (it would count exact equalities of
    real numbers), where Keras 3 resolves by the shapes.

    Keras's metrics that are losses are the streamed mean of the fnn loss's per-sample values
    (weighted by the sample weights as ``weighted_metrics``): ``"mape"``, ``"msle"``,
    ``"log_cosh_error"``, ``"poisson"``, ``"kl_divergence"``, ``"binary_crossentropy"``
    (``"bce"``), ``"categorical_crossentropy"``, ``"sparse_categorical_crossentropy"``,
    ``"hinge"``, ``"squared_hinge"``, ``"categorical_hinge"``, and ``"cosine_similarity"``,
    which, as Keras's ``CosineSimilarity`` metric, is the mean cosine itself (+1 for vectors of
    the same direction), the negative of the loss. Their long and class names resolve too
    (``"mean_absolute_percentage_error"``, ``"MeanSquaredLogarithmicError"``, ``"LogCoshError"``,
    ``"KLDivergence"``, ``"BinaryCrossentropy"``...), as do the loss names ``"kld"`` and
    ``"log_cosh"`` (which Keras 3's ``metrics.get`` refuses). Samples labelled
    ``ignore_class`` count for nothing in ``sparse_categorical_crossentropy`` (Keras's metric
    counts them as zeros unless sample weights are given). Shapes and numerics are the loss's
    (:mod:`fnn.losses`).

    A loss with ``from_logits=True`` makes the threshold metrics (binary_accuracy, auc,
    precision, recall, the confusion counts, f1_score, fbeta_score, precision_at_recall and its
    kin) and the crossentropy metrics read logits unless ``from_logits`` is given here (Keras
    would read the logits as probabilities; binary_iou takes no ``from_logits``: its
    ``threshold`` applies to the outputs as they are, as in Keras); a sparse loss's
    ``ignore_class`` likewise reaches ``sparse_categorical_crossentropy`` and the IoU metrics
    unless given here. A metric built here without ``loss`` (the way to give options:
    ``get("auc", curve="PR")``) leaves those two to the loss of the ``fit`` or ``evaluate`` it
    is handed to, as a name does; given here, ``from_logits=False`` keeps Keras's reading.

    Options (equal options give equal, hashable metrics; each metric's are validated here,
    those of a function of yours when it is first traced, which :func:`resolve` with shapes
    does before any compilation):
    binary_accuracy ``threshold``, ``from_logits``; the top-k metrics ``k``; auc ``curve``
    (``"ROC"``/``"PR"``), ``num_thresholds`` (>= 2), ``summation_method``, ``from_logits``;
    precision and recall ``threshold``, ``class_id``, ``from_logits``; precision_at_recall,
    recall_at_precision, sensitivity_at_specificity and specificity_at_sensitivity their floor
    (``recall``, ``precision``, ``specificity``, ``sensitivity``: required, as in Keras),
    ``num_thresholds`` (>= 1), ``class_id``, ``from_logits``; true_positives,
    false_positives, true_negatives and false_negatives ``threshold`` (Keras's ``thresholds``,
    one value), ``from_logits``; f1_score ``average`` (``"micro"``/``"macro"``/``"weighted"``),
    ``threshold`` (None, the default: argmax), ``from_logits``; fbeta_score the same and
    ``beta`` (> 0); r2_score ``class_aggregation``; binary_crossentropy ``from_logits``,
    ``label_smoothing``; categorical_crossentropy ``from_logits``, ``label_smoothing``,
    ``axis``; sparse_categorical_crossentropy ``from_logits``, ``ignore_class``, ``axis``;
    cosine_similarity ``axis`` (the options of Keras's metric classes, validated as the
    losses validate them); iou ``num_classes`` and ``target_class_ids`` (both required),
    ``ignore_class``, ``sparse_y_true``, ``sparse_y_pred``, ``axis``; mean_iou the same but
    ``target_class_ids``; one_hot_iou and one_hot_mean_iou the same but ``sparse_y_true``;
    binary_iou ``target_class_ids``, ``threshold``; pearson_correlation and
    concordance_correlation ``axis``. E.g. ``get("auc", curve="PR", num_thresholds=500)``,
    ``get("MeanIoU", num_classes=21, ignore_class=255)``.

    Keras's ``Accuracy`` (exact equality) has no name here: Keras 3's compile resolves the
    string ``"Accuracy"``, in any case, by the shapes as ``"accuracy"``, and so does this.

    A callable ``identifier`` becomes a mean metric named after it (its ``name``, a loss's
    included, as Keras 3 names a metric object; else its ``__name__``): its per-element (or
    per-sample) scores are averaged over the data set, and ``options`` are passed to it. One
    number per batch is taken as the batch's mean and weighted by its size, where Keras 3
    averages the batches' numbers plainly (see :class:`Metric`).

    Args:
        identifier: A metric name (:func:`names`), a :class:`Metric` (returned as it is, but
            for the options it left to a loss), or a function ``(y_true, y_pred, **options)
            -> scores``.
        loss: The loss the metric goes with (a name or a Loss): resolves ``"accuracy"`` and
            gives its ``from_logits`` to the threshold metrics.
        y_true_shape: The targets' shape, to resolve ``"accuracy"``.
        y_pred_shape: The outputs' shape, to resolve ``"accuracy"``.
        **options: The metric's options (above).

    Returns:
        The :class:`Metric` (hashable; equal options give equal metrics).

    Raises:
        TypeError: For options given with a Metric instance, an option the metric does not
            take, an option of the wrong type, or an ``identifier`` that is neither a name, a
            Metric nor callable.
        ValueError: For an unknown name (listing the known ones), a bad option value,
            ``"accuracy"`` with a regression loss, or ``"accuracy"`` that neither the loss nor
            the shapes resolve.

    Examples:
        >>> import fnn
        >>> m = fnn.metrics.get("acc", loss="sparse_categorical_crossentropy")
        >>> m.name, float(m([1, 0], [[0.2, 0.8], [0.3, 0.7]]))  # sparse_categorical_accuracy
        ('acc', 0.5)
        >>> dict(fnn.metrics.get("AUC", curve="pr").options)["curve"]
        'PR'
        >>> float(fnn.metrics.get("mape")([1.0, 2.0], [1.5, 2.0]))  # 100 * mean(|e| / |y|)
        25.0
        >>> m = fnn.metrics.get("CosineSimilarity")  # the cosine, not the loss's negative
        >>> m.name, round(float(m([[1.0, 0.0], [1.0, 1.0]], [[2.0, 0.0], [1.0, 0.0]])), 4)
        ('CosineSimilarity', 0.8536)
    """
    if isinstance(identifier, Metric):
        if options:
            raise TypeError(
                f"options {sorted(options)} cannot be applied to a Metric instance "
                f"({identifier.name!r}); build it with them instead"
            )
        if loss is None or not identifier.follows_loss:
            return identifier
        # built without a loss: the options it left to one are the loss's, as for a name
        settled = dict(identifier.options) | _loss_settles(identifier.follows_loss, loss)
        return dataclasses.replace(identifier, options=tuple(sorted(settled.items())), follows_loss=())
    if isinstance(identifier, str):
        key = NAMES.canonical(identifier)
        name = identifier  # Keras 3 logs a metric under the very string asked for ("AUC", "ACC")
        if key == "accuracy":
            key = _resolve_accuracy(loss, y_true_shape, y_pred_shape)
            if key != "binary_accuracy":
                options.pop("from_logits", None)  # argmax does not care about logits
        entry = _REGISTRY[key]
        unknown = set(options) - set(entry.defaults)
        if unknown:
            raise TypeError(
                f"metric {identifier!r} got unknown option(s) {sorted(unknown)}; "
                f"it accepts {sorted(entry.defaults) or 'none'}"
            )
        # what the loss says of the outputs (logits) and targets (ignored class), where not given
        open_ = tuple(k for k in _LOSS_SETTLES if k in entry.defaults and k not in options)
        if loss is not None:
            options.update(_loss_settles(open_, loss))
        settings = {**entry.defaults, **options}
        if entry.check is not None:
            settings = entry.check(settings)
        follows = () if loss is not None else open_
        return Metric(name, entry.scores, tuple(sorted(settings.items())), entry.root, entry.finish, follows)
    # A Loss, or one of fnn.losses' functions: its per-sample values, weighted where weights are
    # given, as a name's; called, it gives the batch's mean, which a metric would weigh as one
    # number (the unweighted mean, whatever the weights).
    loss = identifier if isinstance(identifier, losses.Loss) and not options else None
    if isinstance(identifier, types.FunctionType) and identifier in _LOSS_FUNCTIONS:
        loss = losses.get(_LOSS_FUNCTIONS[identifier], **options)
    if loss is not None and not _batch_ratio(loss):
        return Metric(_callable_name(identifier), bound(loss_object_sums, loss), finish=mean)
    if callable(identifier):
        return Metric(_callable_name(identifier), identifier, tuple(sorted(options.items())))
    raise TypeError(f"metric must be a name, a Metric or a callable; got {identifier!r}")


def _batch_ratio(loss: losses.Loss) -> bool:
    """Whether ``loss`` is one value of its whole batch (dice, tversky with ``axis=None``; circle),
    which has no per-sample values to weigh: such a metric is the mean of its batches' values.
    (A mean over the samples not of ``ignore_class`` has them: that class weighs 0.)"""
    return loss.whole_batch and dict(loss.options).get("ignore_class") is None


# The options of a metric that the loss settles where they are not given.
_LOSS_SETTLES = ("from_logits", "ignore_class")


def _loss_settles(names: Sequence[str], loss: Any) -> dict[str, Any]:
    """The values ``loss`` gives the metric options ``names`` (``from_logits`` a bool)."""
    said = {k: loss_option(loss, k) for k in names}
    return {k: bool(v) if k == "from_logits" else v for k, v in said.items()}


def _callable_name(fn: Any) -> str:
    """The name a callable metric is logged under: its ``name`` (an :class:`fnn.losses.Loss`'s,
    a custom loss's own), as Keras 3 names a metric object, then its ``__name__``, then its
    type's (a ``functools.partial``: ``partial``)."""
    for attribute in ("name", "__name__"):
        name = getattr(fn, attribute, None)
        if isinstance(name, str) and name:
            return name
    return type(fn).__name__
