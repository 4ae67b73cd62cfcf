"""The area under the ROC or precision-recall curve with Keras 3's semantics (``AUC``): weighted
confusion counts at ``num_thresholds`` thresholds, summed on the device across batches, and the
area computed from the totals, so a streamed AUC is the AUC of the whole data set."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from fnn._validate import boolean, choice, integer
from fnn.metrics._base import Entry, divide_no_nan, namespace
from fnn.metrics._confusion import binary

Array = jax.Array

CURVES = ("ROC", "PR")
SUMMATION_METHODS = ("interpolation", "minoring", "majoring")


def grid_counts(
    pos: Array, p: Array, w: Array, num_thresholds: int, epsilon_ends: bool = True
) -> tuple[Array, Array, Array, Array]:
    """Weighted ``(tp, fp, tn, fn)`` at Keras's ``num_thresholds`` evenly spaced thresholds ``t_j``,
    each of shape ``(num_thresholds,)``; ``pos``, ``p``, ``w`` (labels as 0/1, probabilities,
    weights) of one shape are pooled (Keras's ``multi_label=False``).

    ``epsilon_ends``: AUC's grid ``-1e-7, 1/(T-1), ..., 1 + 1e-7``, where ``p = 0`` counts above
    the first threshold; without, SensitivitySpecificityBase's ``0, 1/(T-1), ..., 1``, where it
    counts above none. ``num_thresholds=1`` is the latter's single threshold 0.5 (``p > 0.5``).
    """
    if num_thresholds == 1:
        above = (p.reshape(-1, 1) > 0.5).astype(p.dtype)
    else:
        # Keras's bucketed update: p clipped into [0, 1] falls in bucket ceil(p (T - 1)) - 1 (at
        # least 0 with epsilon ends; -1, below every threshold, for p = 0 without), computed in
        # p's dtype, and counts above every threshold j <= its bucket. That is p > t_j but where
        # p (T - 1) rounds: float32(0.6) * 100 is 60.000004, so 0.6 counts above t = 0.6. The
        # comparison with every threshold is fused into the sums (nothing of size N x T is
        # stored) and, unlike a scatter-add of buckets, sums in a fixed order.
        bucket = jnp.ceil(jnp.clip(p, 0.0, 1.0) * (num_thresholds - 1)) - 1
        if epsilon_ends:
            bucket = jnp.maximum(bucket, 0)
        above = (bucket.reshape(-1, 1) >= jnp.arange(num_thresholds, dtype=p.dtype)[None, :]).astype(p.dtype)
    wp, wn = (w * pos).reshape(-1, 1), (w * (1 - pos)).reshape(-1, 1)
    tp, fp = jnp.sum(wp * above, axis=0), jnp.sum(wn * above, axis=0)
    return tp, fp, jnp.sum(wn) - fp, jnp.sum(wp) - tp


def _auc_counts(
    y_true: Any, y_pred: Any, sample_weight: Any, num_thresholds: int, from_logits: bool, **_: Any
) -> tuple[Array, ...]:
    """Weighted ``(tp, fp, tn, fn)`` at each threshold, each of shape ``(num_thresholds,)``; all
    elements are pooled (Keras's ``multi_label=False``)."""
    return grid_counts(*binary(y_true, y_pred, sample_weight, from_logits), num_thresholds)


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
        >>> auc = jax.jit(fnn.metrics.auc)  # jittable, as every metric (options as static arguments)
        >>> round(float(auc(y, p)), 4)  # 3 of the 4 (positive, negative) pairs ranked right
        0.75
    """
    given = {"curve": curve, "num_thresholds": num_thresholds, "summation_method": summation_method}
    o = _auc_options({**given, "from_logits": from_logits})
    tp, fp, tn, fn = _auc_counts(y_true, y_pred, None, **o)
    return _auc_value(tp, fp, tn, fn, **o)


ENTRIES = {
    "auc": Entry(
        _auc_counts,
        {"curve": "ROC", "num_thresholds": 200, "summation_method": "interpolation", "from_logits": False},
        finish=_auc_value,
        check=_auc_options,
        direction="up",
    ),
}
