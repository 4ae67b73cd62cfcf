"""Metrics from confusion counts at one threshold, with Keras 3's semantics: ``precision``,
``recall``, and the counts themselves, ``true_positives``, ``false_positives``,
``true_negatives`` and ``false_negatives`` (the AUC's counts at many thresholds are in
``_auc``, the F-scores' per column in ``_fscore``).

Each batch gives weighted counts of true/false positives/negatives (summed on the device across
batches), and the value is computed from the totals, so a streamed metric equals the metric of
the whole data set. A label is positive when ``y_true != 0`` (Keras casts labels to bool) and a
prediction when ``y_pred > threshold`` (strictly). ``from_logits=True`` applies the sigmoid first.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn._validate import boolean, integer, real
from fnn.metrics._base import Entry, as_arrays, divide_no_nan, float_dtype, namespace, same_rank, sample_weights

Array = jax.Array


def binary(y_true: Any, y_pred: Any, sample_weight: Any, from_logits: bool) -> tuple[Array, Array, Array]:
    """``(positive labels as 0/1, probabilities, weights)``, all of the same shape."""
    y_true, y_pred = as_arrays(y_true, y_pred)
    dtype = float_dtype(y_pred)
    t, p = same_rank(y_true, y_pred)
    p = p.astype(dtype)
    if from_logits:
        p = jax.nn.sigmoid(p)
    w = jnp.ones(p.shape, dtype) if sample_weight is None else sample_weights(sample_weight, p.shape, dtype)
    return (t != 0).astype(dtype), p, w


def _cut(pos: Array, p: Array, w: Array, threshold: float) -> tuple[Array, Array, Array, Array]:
    """Weighted ``(tp, fp, tn, fn)`` scalars of the decisions ``p > threshold``."""
    predicted = (p > threshold).astype(p.dtype)
    wp, wn = w * pos, w * (1 - pos)
    return (
        jnp.sum(wp * predicted),
        jnp.sum(wn * predicted),
        jnp.sum(wn * (1 - predicted)),
        jnp.sum(wp * (1 - predicted)),
    )


def columns(
    y_true: Any, y_pred: Any, sample_weight: Any, class_id: int | None, from_logits: bool
) -> tuple[Array, Array, Array]:
    """:func:`binary`'s ``(positive labels, probabilities, weights)`` of all elements, or of column
    ``class_id`` of an (N, C) output alone (Keras's ``class_id``)."""
    if class_id is not None:
        shape = np.shape(y_pred)  # lists too (jnp.shape warns on them)
        if len(shape) < 2 or not class_id < shape[-1]:
            raise ValueError(
                f"class_id={class_id} needs y_pred of shape (N, C) with C > {class_id}; got y_pred {shape}"
            )
    pos, p, w = binary(y_true, y_pred, sample_weight, from_logits)
    if class_id is not None:
        pos, p, w = pos[..., class_id], p[..., class_id], w[..., class_id]
    return pos, p, w


def _threshold_counts(
    y_true: Any, y_pred: Any, sample_weight: Any, threshold: float, class_id: int | None, from_logits: bool
) -> tuple[Array, Array, Array]:
    """Weighted ``(tp, fp, fn)`` scalars at ``threshold`` over all elements (or column
    ``class_id`` of an (N, C) output)."""
    tp, fp, _, fn = _cut(*columns(y_true, y_pred, sample_weight, class_id, from_logits), threshold)
    return tp, fp, fn


def _precision_value(tp: Any, fp: Any, fn: Any, **_: Any) -> Any:
    """``tp / (tp + fp)``, 0 when nothing was predicted positive."""
    xp = namespace(tp, fp, fn)
    return divide_no_nan(xp, xp.asarray(tp), xp.asarray(tp) + fp)


def _recall_value(tp: Any, fp: Any, fn: Any, **_: Any) -> Any:
    """``tp / (tp + fn)``, 0 when there was no positive label."""
    xp = namespace(tp, fp, fn)
    return divide_no_nan(xp, xp.asarray(tp), xp.asarray(tp) + fn)


def _threshold_options(options: dict[str, Any]) -> dict[str, Any]:
    class_id = options["class_id"]
    return {**_count_options(options), "class_id": None if class_id is None else integer("class_id", class_id, 0)}


def _counts(
    y_true: Any, y_pred: Any, sample_weight: Any, threshold: float, from_logits: bool, **_: Any
) -> tuple[Array, ...]:
    """Weighted ``(tp, fp, tn, fn)`` scalars at ``threshold`` over all elements (Keras's
    ``TruePositives``... with one threshold)."""
    return _cut(*binary(y_true, y_pred, sample_weight, from_logits), threshold)


@dataclasses.dataclass(frozen=True)
class _Count:
    """The finish of a count metric: total ``index`` of ``(tp, fp, tn, fn)``, as it is."""

    index: int

    def __call__(self, *totals: Any, **_: Any) -> Any:
        return totals[self.index]


def _count_options(options: dict[str, Any]) -> dict[str, Any]:
    return {
        "threshold": real("threshold", options["threshold"], 0.0, 1.0),
        "from_logits": boolean("from_logits", options["from_logits"]),
    }


def _count(y_true: Any, y_pred: Any, threshold: Any, from_logits: Any, index: int) -> Array:
    o = _count_options(dict(threshold=threshold, from_logits=from_logits))
    return _counts(y_true, y_pred, None, **o)[index]


def precision(
    y_true: jax.typing.ArrayLike,
    y_pred: jax.typing.ArrayLike,
    threshold: float = 0.5,
    class_id: int | None = None,
    from_logits: bool = False,
) -> Array:
    """``tp / (tp + fp)`` with predictions ``y_pred > threshold`` and labels ``y_true != 0``,
    pooled over all elements (Keras's ``Precision``); 0 when nothing is predicted positive.

    Args:
        y_true: Labels of the shape of ``y_pred`` (up to a trailing 1), positive where nonzero.
        y_pred: Probabilities (or logits with ``from_logits=True``), (N,) or (N, C).
        threshold: The cut, in [0, 1]: positive when ``y_pred > threshold``.
        class_id: Only column ``class_id`` of an (N, C) output counts (None: every element).
        from_logits: Apply the sigmoid to ``y_pred`` first.

    Returns:
        The scalar precision.

    Raises:
        ValueError: For a bad option value (named: ``threshold`` outside [0, 1], ``class_id``
            < 0 or not a column of ``y_pred``) or shapes that differ beyond a trailing 1.
        TypeError: For an option of the wrong type.

    Examples:
        >>> import fnn, jax, numpy as np
        >>> y, p = np.array([0, 1, 1, 0]), np.array([0.2, 0.8, 0.4, 0.6])
        >>> float(jax.jit(fnn.metrics.precision)(y, p))  # 1 of the 2 predicted positives
        0.5
    """
    o = _threshold_options(dict(threshold=threshold, class_id=class_id, from_logits=from_logits))
    return _precision_value(*_threshold_counts(y_true, y_pred, None, **o))


def recall(
    y_true: jax.typing.ArrayLike,
    y_pred: jax.typing.ArrayLike,
    threshold: float = 0.5,
    class_id: int | None = None,
    from_logits: bool = False,
) -> Array:
    """``tp / (tp + fn)``, as :func:`precision` (Keras's ``Recall``); 0 without positive labels.

    Args:
        y_true: Labels of the shape of ``y_pred`` (up to a trailing 1), positive where nonzero.
        y_pred: Probabilities (or logits with ``from_logits=True``), (N,) or (N, C).
        threshold: The cut, in [0, 1]: positive when ``y_pred > threshold``.
        class_id: Only column ``class_id`` of an (N, C) output counts (None: every element).
        from_logits: Apply the sigmoid to ``y_pred`` first.

    Returns:
        The scalar recall.

    Raises:
        ValueError: For a bad option value (named: ``threshold`` outside [0, 1], ``class_id``
            < 0 or not a column of ``y_pred``) or shapes that differ beyond a trailing 1.
        TypeError: For an option of the wrong type.

    Examples:
        >>> import fnn, jax, numpy as np
        >>> y, p = np.array([0, 1, 1, 0]), np.array([0.2, 0.8, 0.4, 0.6])
        >>> float(jax.jit(fnn.metrics.recall)(y, p))  # 1 of the 2 positives found
        0.5
    """
    o = _threshold_options(dict(threshold=threshold, class_id=class_id, from_logits=from_logits))
    return _recall_value(*_threshold_counts(y_true, y_pred, None, **o))


def true_positives(
    y_true: jax.typing.ArrayLike, y_pred: jax.typing.ArrayLike, threshold: float = 0.5, from_logits: bool = False
) -> Array:
    """The weighted count of true positives, ``sum w [y_true != 0] [y_pred > threshold]``
    over all elements (Keras's ``TruePositives`` with one threshold; ``w`` = 1 without sample
    weights). Streamed through :func:`get` (``get("true_positives")``), it counts the whole data
    set: an epoch's ``true_positives`` is the number of positive elements predicted positive.

    Args:
        y_true: Labels of the shape of ``y_pred`` (up to a trailing 1), positive where nonzero.
        y_pred: Probabilities (or logits with ``from_logits=True``), of any shape.
        threshold: The cut, in [0, 1]: predicted positive when ``y_pred > threshold``.
        from_logits: Apply the sigmoid to ``y_pred`` first.

    Returns:
        The scalar count (a float: with sample weights, their sum).

    Raises:
        ValueError: For ``threshold`` outside [0, 1] or shapes that differ beyond a trailing 1.
        TypeError: For an option of the wrong type.

    Examples:
        >>> import fnn, numpy as np
        >>> y, p = np.array([0, 1, 1, 0]), np.array([0.2, 0.8, 0.4, 0.6])
        >>> [float(f(y, p)) for f in (fnn.metrics.true_positives, fnn.metrics.false_positives,
        ...     fnn.metrics.true_negatives, fnn.metrics.false_negatives)]
        [1.0, 1.0, 1.0, 1.0]
    """
    return _count(y_true, y_pred, threshold, from_logits, 0)


def false_positives(
    y_true: jax.typing.ArrayLike, y_pred: jax.typing.ArrayLike, threshold: float = 0.5, from_logits: bool = False
) -> Array:
    """The weighted count of false positives, ``sum w [y_true == 0] [y_pred > threshold]`` (Keras's
    ``FalsePositives``; precision is ``tp / (tp + fp)``).

    Arguments, result and errors as in :func:`true_positives`.
    """
    return _count(y_true, y_pred, threshold, from_logits, 1)


def true_negatives(
    y_true: jax.typing.ArrayLike, y_pred: jax.typing.ArrayLike, threshold: float = 0.5, from_logits: bool = False
) -> Array:
    """The weighted count of true negatives, ``sum w [y_true == 0] [y_pred <= threshold]`` (Keras's
    ``TrueNegatives``; specificity is ``tn / (tn + fp)``).

    Arguments, result and errors as in :func:`true_positives`.
    """
    return _count(y_true, y_pred, threshold, from_logits, 2)


def false_negatives(
    y_true: jax.typing.ArrayLike, y_pred: jax.typing.ArrayLike, threshold: float = 0.5, from_logits: bool = False
) -> Array:
    """The weighted count of false negatives, ``sum w [y_true != 0] [y_pred <= threshold]`` (Keras's
    ``FalseNegatives``; recall is ``tp / (tp + fn)``).

    Arguments, result and errors as in :func:`true_positives`.
    """
    return _count(y_true, y_pred, threshold, from_logits, 3)


_THRESHOLD_DEFAULTS = {"threshold": 0.5, "class_id": None, "from_logits": False}
_COUNT_DEFAULTS = {"threshold": 0.5, "from_logits": False}
# Keras's count metrics declare no direction (no _direction): EarlyStopping's mode="auto" refuses them
_COUNTS = {
    name: Entry(_counts, _COUNT_DEFAULTS, finish=_Count(i), check=_count_options, direction=None)
    for i, name in enumerate(("true_positives", "false_positives", "true_negatives", "false_negatives"))
}
ENTRIES = {
    "precision": Entry(
        _threshold_counts, _THRESHOLD_DEFAULTS, finish=_precision_value, check=_threshold_options, direction="up"
    ),
    "recall": Entry(
        _threshold_counts, _THRESHOLD_DEFAULTS, finish=_recall_value, check=_threshold_options, direction="up"
    ),
    **_COUNTS,
}
