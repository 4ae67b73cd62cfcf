"""F-scores with Keras 3's semantics: ``fbeta_score`` (Keras's ``FBetaScore``) and its case
``beta = 1``, ``f1_score`` (``F1Score``).

Each column of an (N, C) output is a binary problem; each batch gives the columns' weighted
counts of true positives, false positives, false negatives and positive labels (summed on the
device across batches), and the score is computed from the totals, so a streamed score is the
score of the whole data set. A prediction is the row's largest score (``threshold=None``, Keras's
default) or ``y_pred > threshold``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from fnn._validate import boolean, choice, real
from fnn.metrics._base import Entry, as_arrays, float_dtype, namespace, same_rank, sample_weights

Array = jax.Array

EPSILON = 1e-7  # Keras's backend.epsilon(): the guards of P, R and the score
AVERAGES = ("micro", "macro", "weighted")


def _f_counts(
    y_true: Any, y_pred: Any, sample_weight: Any, threshold: float | None, from_logits: bool, **_: Any
) -> tuple[Array, ...]:
    """Per column of an (N, C) output: weighted ``(tp, fp, fn, support)`` (Keras's FBetaScore)."""
    t, p = as_arrays(y_true, y_pred)
    dtype = float_dtype(p)
    t, p = same_rank(t, p)
    if p.ndim == 1:
        t, p = t[:, None], p[:, None]
    if p.ndim != 2:
        raise ValueError(
            f"f1_score and fbeta_score expect y_true and y_pred of shape (N,) or (N, C); got y_pred {jnp.shape(y_pred)}"
        )
    t, p = t.astype(dtype), p.astype(dtype)
    if threshold is None:  # the row's largest score is the prediction (ties all count; zeros never)
        top = p >= jnp.max(p, axis=-1, keepdims=True)
        # logits are compared as they are: the sigmoid keeps their order but rounds every logit
        # past ~17 to 1 (all tied) and every one below ~-21 under Keras's zero cut (none left)
        predicted = top & (p > -jnp.inf) if from_logits else top & (jnp.abs(p) > 1e-9)
    else:
        predicted = (jax.nn.sigmoid(p) if from_logits else p) > threshold
    predicted = predicted.astype(dtype)
    w = jnp.ones((), dtype) if sample_weight is None else sample_weights(sample_weight, p.shape, dtype)
    return (
        jnp.sum(w * predicted * t, axis=0),
        jnp.sum(w * predicted * (1 - t), axis=0),
        jnp.sum(w * (1 - predicted) * t, axis=0),
        jnp.sum(w * t, axis=0),
    )


def _fbeta_value(tp: Any, fp: Any, fn: Any, support: Any, average: str, beta: float = 1.0, **_: Any) -> Any:
    """``(1 + b^2) P R / (b^2 P + R)`` with Keras's ``epsilon`` guards (``b = beta``; f1_score
    has none, 1); micro pools the columns' counts first, macro averages the columns' scores,
    weighted weighs them by their support."""
    xp = namespace(tp, fp, fn, support)
    tp, fp, fn, support = (xp.asarray(a) for a in (tp, fp, fn, support))
    if average == "micro":
        tp, fp, fn = xp.sum(tp), xp.sum(fp), xp.sum(fn)
    precision = tp / (tp + fp + EPSILON)
    recall = tp / (tp + fn + EPSILON)
    b2 = beta * beta
    f = precision * recall / (b2 * precision + recall + EPSILON) * (1 + b2)  # Keras's order of operations
    if average == "weighted":
        return xp.sum(f * support / (xp.sum(support) + EPSILON))
    return xp.mean(f)


def _f1_options(options: dict[str, Any]) -> dict[str, Any]:
    threshold = options["threshold"]
    return {
        "average": choice("average", options["average"], AVERAGES),
        "threshold": None if threshold is None else real("threshold", threshold, 0.0, 1.0),
        "from_logits": boolean("from_logits", options["from_logits"]),
    }


def _fbeta_options(options: dict[str, Any]) -> dict[str, Any]:
    return {**_f1_options(options), "beta": real("beta", options["beta"], 0.0, lo_open=True)}


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
    ``F1 = 2 P R / (P + R + eps)``, ``eps = 1e-7``: :func:`fbeta_score` with ``beta=1``.

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
        from_logits: ``y_pred`` holds logits: the sigmoid is applied before a ``threshold``;
            without one the logits' argmax is the prediction (the sigmoid keeps the order).

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
    tp, fp, fn, support = _f_counts(y_true, y_pred, None, **o)
    return _fbeta_value(tp, fp, fn, support, **o)


def fbeta_score(
    y_true: jax.typing.ArrayLike,
    y_pred: jax.typing.ArrayLike,
    average: str = "macro",
    beta: float = 1.0,
    threshold: float | None = None,
    from_logits: bool = False,
) -> Array:
    """F-beta, ``(1 + b^2) P R / (b^2 P + R)`` with ``b = beta``, which weighs recall ``beta``
    times as much as precision (Keras's ``FBetaScore``; ``beta=1`` is :func:`f1_score`).

    Columns, predictions and averages as in :func:`f1_score`: ``P = tp / (tp + fp + eps)``,
    ``R = tp / (tp + fn + eps)``, ``F = (1 + b^2) (P R / (b^2 P + R + eps))``, ``eps = 1e-7``
    (Keras's order of operations). The default ``average="macro"`` gives the scalar a history
    holds; Keras's default ``average=None`` gives one score per column, which fnn does not offer.

    Args:
        y_true: 0/1 targets of the shape of ``y_pred`` (up to a trailing 1).
        y_pred: Scores (N,) or (N, C).
        average: ``"micro"`` (the score of the counts pooled over columns), ``"macro"`` (mean of
            the columns' scores) or ``"weighted"`` (their mean weighted by each column's
            positive labels).
        beta: How many times recall weighs as much as precision, a finite float > 0 (2 favours
            recall, 0.5 precision).
        threshold: The cut in [0, 1], or None (the default) for the row's argmax (ties all
            count; a zero score never does).
        from_logits: ``y_pred`` holds logits: the sigmoid is applied before a ``threshold``;
            without one the logits' argmax is the prediction (the sigmoid keeps the order).

    Returns:
        The scalar F-beta score.

    Raises:
        ValueError: For a bad option value (named: an unknown ``average``, ``beta <= 0``,
            ``threshold`` outside [0, 1]), shapes that differ beyond a trailing 1, or a rank
            above 2.
        TypeError: For an option of the wrong type.

    Examples:
        >>> import fnn, numpy as np
        >>> y = np.array([[1, 1, 1], [1, 0, 0], [1, 1, 0]])  # Keras's FBetaScore example
        >>> p = np.array([[0.2, 0.6, 0.7], [0.2, 0.6, 0.6], [0.6, 0.8, 0.0]])
        >>> f2 = fnn.metrics.fbeta_score(y, p, beta=2.0, threshold=0.5)  # Keras: 0.3846, 0.9091, 0.8333
        >>> round(float(f2), 4)  # their mean
        0.709
    """
    given = dict(average=average, beta=beta, threshold=threshold, from_logits=from_logits)
    o = _fbeta_options(given)
    tp, fp, fn, support = _f_counts(y_true, y_pred, None, **o)
    return _fbeta_value(tp, fp, fn, support, **o)


ENTRIES = {
    "f1_score": Entry(
        _f_counts,
        {"average": "macro", "threshold": None, "from_logits": False},
        finish=_fbeta_value,
        check=_f1_options,
        direction="up",
    ),
    "fbeta_score": Entry(
        _f_counts,
        {"average": "macro", "beta": 1.0, "threshold": None, "from_logits": False},
        finish=_fbeta_value,
        check=_fbeta_options,
        direction="up",
    ),
}
