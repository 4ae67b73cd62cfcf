"""Metrics from confusion counts, with Keras 3's semantics: ``auc`` (ROC and PR curves over
``num_thresholds`` thresholds), ``precision``, ``recall`` and ``f1_score``.

Each batch gives weighted counts of true/false positives/negatives (summed on the device across
batches), and the value is computed from the totals, so a streamed metric equals the metric of
the whole data set. A label is positive when ``y_true != 0`` (Keras casts labels to bool) and a
prediction when ``y_pred > threshold`` (strictly). ``from_logits=True`` applies the sigmoid first.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from fnn._validate import boolean, choice, integer, real
from fnn.metrics._base import Entry, as_arrays, divide_no_nan, float_dtype, namespace, same_rank, sample_weights

Array = jax.Array

EPSILON = 1e-7  # Keras's backend.epsilon(): the AUC's end thresholds and F1's guards
CURVES = ("ROC", "PR")
SUMMATION_METHODS = ("interpolation", "minoring", "majoring")
AVERAGES = ("micro", "macro", "weighted")


def _binary(y_true: Any, y_pred: Any, sample_weight: Any, from_logits: bool) -> tuple[Array, Array, Array]:
    """``(positive labels as 0/1, probabilities, weights)``, all of the same shape."""
    y_true, y_pred = as_arrays(y_true, y_pred)
    dtype = float_dtype(y_pred)
    t, p = same_rank(y_true, y_pred)
    p = p.astype(dtype)
    if from_logits:
        p = jax.nn.sigmoid(p)
    w = jnp.ones(p.shape, dtype) if sample_weight is None else sample_weights(sample_weight, p.shape, dtype)
    return (t != 0).astype(dtype), p, w


def _auc_counts(
    y_true: Any, y_pred: Any, sample_weight: Any, num_thresholds: int, from_logits: bool, **_: Any
) -> tuple[Array, ...]:
    """Weighted ``(tp, fp, tn, fn)`` at each threshold, each of shape ``(num_thresholds,)``; all
    elements are pooled (Keras's ``multi_label=False``)."""
    pos, p, w = _binary(y_true, y_pred, sample_weight, from_logits)
    # Keras's bucketed update: p clipped into [0, 1] falls in bucket max(ceil(p (T - 1)) - 1, 0),
    # computed in p's dtype, and counts above every threshold j <= its bucket. That is p > t_j
    # but where p (T - 1) rounds: float32(0.6) * 100 is 60.000004, so 0.6 counts above t = 0.6.
    # The comparison with every threshold is fused into the sums (nothing of size N x T is
    # stored) and, unlike a scatter-add of buckets, sums in a fixed order.
    bucket = jnp.maximum(jnp.ceil(jnp.clip(p, 0.0, 1.0) * (num_thresholds - 1)) - 1, 0)
    above = (bucket.reshape(-1, 1) >= jnp.arange(num_thresholds, dtype=p.dtype)[None, :]).astype(p.dtype)
    wp, wn = (w * pos).reshape(-1, 1), (w * (1 - pos)).reshape(-1, 1)
    tp, fp = jnp.sum(wp * above, axis=0), jnp.sum(wn * above, axis=0)
    return tp, fp, jnp.sum(wn) - fp, jnp.sum(wp) - tp


def _interpolated_pr_auc(xp: Any, tp: Any, fp: Any, fn: Any) -> Any:
    # Davis & Goadrich (2006) as Keras writes it: TP and P = TP + FP vary linearly between
    # thresholds, precision = TP / P does not; the closed form integrates it over each interval.
    dtp = tp[:-1] - tp[1:]
    p = tp + fp
    dp = p[:-1] - p[1:]
    slope = divide_no_nan(xp, dtp, xp.maximum(dp, 0))
    intercept = tp[1:] - slope * p[1:]
    both = (p[:-1] > 0) & (p[1:] > 0)
    ratio = xp.where(both, divide_no_nan(xp, p[:-1], xp.maximum(p[1:], 0)), 1)
    increments = divide_no_nan(xp, slope * (dtp + intercept * xp.log(ratio)), xp.maximum(tp[1:] + fn[1:], 0))
    return xp.sum(increments)


def _auc_value(tp: Any, fp: Any, tn: Any, fn: Any, curve: str, summation_method: str, **_: Any) -> Any:
    """The area under the ROC (x = FP rate, y = recall) or PR (x = recall, y = precision) curve
    by a Riemann sum over the thresholds (Keras's ``AUC.result``)."""
    xp = namespace(tp, fp, tn, fn)
    tp, fp, tn, fn = (xp.asarray(a) for a in (tp, fp, tn, fn))
    if curve == "PR" and summation_method == "interpolation":
        return _interpolated_pr_auc(xp, tp, fp, fn)
    recall = divide_no_nan(xp, tp, tp + fn)
    if curve == "ROC":
        x, y = divide_no_nan(xp, fp, fp + tn), recall
    else:
        x, y = recall, divide_no_nan(xp, tp, tp + fp)
    if summation_method == "interpolation":
        heights = (y[:-1] + y[1:]) / 2
    elif summation_method == "minoring":
        heights = xp.minimum(y[:-1], y[1:])
    else:
        heights = xp.maximum(y[:-1], y[1:])
    return xp.sum((x[:-1] - x[1:]) * heights)


def _auc_options(options: dict[str, Any]) -> dict[str, Any]:
    curve, method = options["curve"], options["summation_method"]
    if isinstance(curve, str) and curve.upper() in CURVES:
        curve = curve.upper()  # Keras accepts "roc" and "pr"
    if isinstance(method, str) and method.lower() in SUMMATION_METHODS:
        method = method.lower()
    return {
        "num_thresholds": integer("num_thresholds", options["num_thresholds"], 2),
        "curve": choice("curve", curve, CURVES),
        "summation_method": choice("summation_method", method, SUMMATION_METHODS),
        "from_logits": boolean("from_logits", options["from_logits"]),
    }


def _threshold_counts(
    y_true: Any, y_pred: Any, sample_weight: Any, threshold: float, class_id: int | None, from_logits: bool
) -> tuple[Array, Array, Array]:
    """Weighted ``(tp, fp, fn)`` scalars at ``threshold`` over all elements (or column
    ``class_id`` of an (N, C) output)."""
    if class_id is not None:
        shape = jnp.shape(y_pred)
        if len(shape) < 2 or not class_id < shape[-1]:
            raise ValueError(
                f"class_id={class_id} needs y_pred of shape (N, C) with C > {class_id}; got y_pred {shape}"
            )
    pos, p, w = _binary(y_true, y_pred, sample_weight, from_logits)
    if class_id is not None:
        pos, p, w = pos[..., class_id], p[..., class_id], w[..., class_id]
    predicted = (p > threshold).astype(p.dtype)
    return jnp.sum(w * pos * predicted), jnp.sum(w * (1 - pos) * predicted), jnp.sum(w * pos * (1 - predicted))


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
    return {
        "threshold": real("threshold", options["threshold"], 0.0, 1.0),
        "class_id": None if class_id is None else integer("class_id", class_id, 0),
        "from_logits": boolean("from_logits", options["from_logits"]),
    }


def _f1_counts(
    y_true: Any, y_pred: Any, sample_weight: Any, threshold: float | None, from_logits: bool, **_: Any
) -> tuple[Array, ...]:
    """Per column of an (N, C) output: weighted ``(tp, fp, fn, support)`` (Keras's F1Score)."""
    t, p = as_arrays(y_true, y_pred)
    dtype = float_dtype(p)
    t, p = same_rank(t, p)
    if p.ndim == 1:
        t, p = t[:, None], p[:, None]
    if p.ndim != 2:
        raise ValueError(f"f1_score expects y_true and y_pred of shape (N,) or (N, C); got y_pred {jnp.shape(y_pred)}")
    t, p = t.astype(dtype), p.astype(dtype)
    if from_logits:
        p = jax.nn.sigmoid(p)
    if threshold is None:  # the row's largest score is the prediction (ties all count; zeros never)
        predicted = (p >= jnp.max(p, axis=-1, keepdims=True)) & (jnp.abs(p) > 1e-9)
    else:
        predicted = p > threshold
    predicted = predicted.astype(dtype)
    w = jnp.ones((), dtype) if sample_weight is None else sample_weights(sample_weight, p.shape, dtype)
    return (
        jnp.sum(w * predicted * t, axis=0),
        jnp.sum(w * predicted * (1 - t), axis=0),
        jnp.sum(w * (1 - predicted) * t, axis=0),
        jnp.sum(w * t, axis=0),
    )


def _f1_value(tp: Any, fp: Any, fn: Any, support: Any, average: str, **_: Any) -> Any:
    """``2 P R / (P + R)`` with Keras's ``epsilon`` guards; micro pools the columns' counts first,
    macro averages the columns' F1, weighted weighs them by their support."""
    xp = namespace(tp, fp, fn, support)
    tp, fp, fn, support = (xp.asarray(a) for a in (tp, fp, fn, support))
    if average == "micro":
        tp, fp, fn = xp.sum(tp), xp.sum(fp), xp.sum(fn)
    precision = tp / (tp + fp + EPSILON)
    recall = tp / (tp + fn + EPSILON)
    f1 = 2 * precision * recall / (precision + recall + EPSILON)
    if average == "weighted":
        return xp.sum(f1 * support / (xp.sum(support) + EPSILON))
    return xp.mean(f1)


def _f1_options(options: dict[str, Any]) -> dict[str, Any]:
    threshold = options["threshold"]
    return {
        "average": choice("average", options["average"], AVERAGES),
        "threshold": None if threshold is None else real("threshold", threshold, 0.0, 1.0),
        "from_logits": boolean("from_logits", options["from_logits"]),
    }


def auc(
    y_true: jax.typing.ArrayLike,
    y_pred: jax.typing.ArrayLike,
    curve: str = "ROC",
    num_thresholds: int = 200,
    summation_method: str = "interpolation",
    from_logits: bool = False,
) -> Array:
    """Area under the ROC or precision-recall curve, Keras's ``AUC`` (one batch; streamed through
    :func:`get`, e.g. ``get("auc", curve="PR")``, it is the AUC of the whole data set).

    With ``T = num_thresholds`` thresholds ``t_j`` (``-1e-7``, ``j / (T - 1)`` for
    ``j = 1..T-2``, ``1 + 1e-7``), ``tp_j = sum w [y != 0][p > t_j]`` and likewise ``fp, tn, fn``
    (``p`` clipped into [0, 1]; as Keras buckets it, ``p > t_j`` where ``ceil(p (T - 1)) - 1 >= j``
    in ``p``'s dtype, so a prediction that rounds up there, ``float32(0.6)`` at ``t = 0.6``,
    counts above); ROC sums ``(fpr_j - fpr_{j+1}) (tpr_j + tpr_{j+1}) / 2``, PR
    with ``"interpolation"`` integrates precision between thresholds as Davis & Goadrich (2006).
    ``"minoring"``/``"majoring"`` take the lower/upper of the two heights instead. All elements
    are pooled: y (N,) or (N, k) are N*k binary decisions.

    Args:
        y_true: Labels, positive where nonzero; the shape of ``y_pred`` (up to a trailing 1).
        y_pred: Probabilities in [0, 1] (or logits with ``from_logits=True``); values outside
            [0, 1] are clipped.
        curve: ``"ROC"`` or ``"PR"`` (lower case accepted).
        num_thresholds: The number of thresholds, an int >= 2; more approximate the exact area
            better.
        summation_method: ``"interpolation"``, ``"minoring"`` or ``"majoring"``.
        from_logits: Apply the sigmoid to ``y_pred`` first.

    Returns:
        The scalar area, in [0, 1].

    Raises:
        ValueError: For a bad option value (named: an unknown ``curve`` or
            ``summation_method``, ``num_thresholds < 2``) or shapes that differ beyond a
            trailing 1.
        TypeError: For an option of the wrong type (a non-int ``num_thresholds``, a non-bool
            ``from_logits``...).

    Examples:
        >>> import fnn, jax, numpy as np
        >>> y, p = np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])
        >>> auc = jax.jit(fnn.metrics.auc)  # jittable, as every metric
        >>> round(float(auc(y, p)), 4)  # 3 of the 4 (positive, negative) pairs ranked right
        0.75
    """
    given = {"curve": curve, "num_thresholds": num_thresholds, "summation_method": summation_method}
    o = _auc_options({**given, "from_logits": from_logits})
    tp, fp, tn, fn = _auc_counts(y_true, y_pred, None, **o)
    return _auc_value(tp, fp, tn, fn, **o)


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


def f1_score(
    y_true: jax.typing.ArrayLike,
    y_pred: jax.typing.ArrayLike,
    average: str = "macro",
    threshold: float | None = None,
    from_logits: bool = False,
) -> Array:
    """F1, the harmonic mean ``2 P R / (P + R)`` of precision and recall (Keras's ``F1Score``).

    Each column of y (N, C) is a binary problem (a one-hot or multi-label target; (N,) is one
    column, where every ``average`` is the binary F1): predictions ``y_pred > threshold``, or
    with ``threshold=None`` (the default, as in Keras) the row's largest score, the class a
    softmax classifier predicts. ``P = tp / (tp + fp + eps)``, ``R = tp / (tp + fn + eps)``,
    ``F1 = 2 P R / (P + R + eps)``, ``eps = 1e-7``.

    A single output column (a sigmoid's) needs a threshold, e.g. ``threshold=0.5``: with None
    every nonzero score is its row's largest, so every sample is predicted positive (as in
    Keras). The default ``average="macro"`` gives the scalar a history holds; Keras's default
    ``average=None`` gives one F1 per column, which fnn does not offer.

    Args:
        y_true: 0/1 targets of the shape of ``y_pred`` (up to a trailing 1).
        y_pred: Scores (N,) or (N, C).
        average: ``"micro"`` (F1 of the counts pooled over columns), ``"macro"`` (mean of the
            columns' F1) or ``"weighted"`` (their mean weighted by each column's positive
            labels).
        threshold: The cut in [0, 1], or None (the default) for the row's argmax (ties all
            count; a zero score never does).
        from_logits: Apply the sigmoid to ``y_pred`` first.

    Returns:
        The scalar F1.

    Raises:
        ValueError: For a bad option value (named: an unknown ``average``, ``threshold``
            outside [0, 1]), shapes that differ beyond a trailing 1, or a rank above 2.
        TypeError: For an option of the wrong type.

    Examples:
        >>> import fnn, jax, numpy as np
        >>> y = np.eye(3)[[0, 1, 2, 0]]  # one-hot targets, softmax outputs: argmax all right
        >>> p = np.array([[0.45, 0.35, 0.2], [0.3, 0.4, 0.3], [0.2, 0.3, 0.5], [0.6, 0.2, 0.2]])
        >>> round(float(jax.jit(fnn.metrics.f1_score)(y, p)), 4)
        1.0
        >>> y, p = np.array([0, 1, 1, 0]), np.array([0.2, 0.8, 0.4, 0.6])  # one sigmoid column
        >>> round(float(fnn.metrics.f1_score(y, p, threshold=0.5)), 4)  # P = R = 0.5
        0.5
    """
    o = _f1_options(dict(average=average, threshold=threshold, from_logits=from_logits))
    tp, fp, fn, support = _f1_counts(y_true, y_pred, None, **o)
    return _f1_value(tp, fp, fn, support, **o)


_THRESHOLD_DEFAULTS = {"threshold": 0.5, "class_id": None, "from_logits": False}
ENTRIES = {
    "auc": Entry(
        _auc_counts,
        {"curve": "ROC", "num_thresholds": 200, "summation_method": "interpolation", "from_logits": False},
        finish=_auc_value,
        check=_auc_options,
        direction="up",
    ),
    "precision": Entry(
        _threshold_counts, _THRESHOLD_DEFAULTS, finish=_precision_value, check=_threshold_options, direction="up"
    ),
    "recall": Entry(
        _threshold_counts, _THRESHOLD_DEFAULTS, finish=_recall_value, check=_threshold_options, direction="up"
    ),
    "f1_score": Entry(
        _f1_counts,
        {"average": "macro", "threshold": None, "from_logits": False},
        finish=_f1_value,
        check=_f1_options,
        direction="up",
    ),
}
