"""The best of one ratio where another is held above a floor, with Keras 3's semantics
(``SensitivitySpecificityBase``): ``precision_at_recall``, ``recall_at_precision``,
``sensitivity_at_specificity`` and ``specificity_at_sensitivity``.

Each batch gives weighted confusion counts at ``num_thresholds`` evenly spaced thresholds (the
AUC's counter, :func:`fnn.metrics._auc.grid_counts`, on Keras's grid ``0, 1/(T-1), ..., 1``
without the AUC's epsilon ends), summed on the device across batches; the value is a search over
the thresholds of the totals, so a streamed metric is the metric of the whole data set.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax

from fnn._validate import boolean, integer, real
from fnn.metrics._auc import grid_counts
from fnn.metrics._base import Entry, divide_no_nan, namespace
from fnn.metrics._confusion import columns

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


def _counts(
    y_true: Any, y_pred: Any, sample_weight: Any, num_thresholds: int, class_id: int | None, from_logits: bool, **_: Any
) -> tuple[Array, ...]:
    """Weighted ``(tp, fp, tn, fn)`` at each threshold, each of shape ``(num_thresholds,)``, over
    all elements (or column ``class_id``)."""
    pos, p, w = columns(y_true, y_pred, sample_weight, class_id, from_logits)
    return grid_counts(pos, p, w, num_thresholds, epsilon_ends=False)


def _ratio(xp: Any, name: str, tp: Any, fp: Any, tn: Any, fn: Any) -> Any:
    """One ratio of the counts per threshold, 0 where its denominator is 0 (Keras's divide_no_nan)."""
    if name == "precision":
        return divide_no_nan(xp, tp, tp + fp)
    if name == "specificity":
        return divide_no_nan(xp, tn, tn + fp)
    return divide_no_nan(xp, tp, tp + fn)  # recall, sensitivity


@dataclasses.dataclass(frozen=True)
class _Search:
    """One metric's rule: the largest ``best`` over the thresholds where ``held >= value`` (the
    option named ``held``), 0 where no threshold qualifies (Keras's ``_find_max_under_constraint``).
    Its ``check`` validates the options; the instance is the metric's ``finish``."""

    keras: str
    held: str
    best: str

    def __call__(self, tp: Any, fp: Any, tn: Any, fn: Any, **options: Any) -> Any:
        xp = namespace(tp, fp, tn, fn)
        counts = tuple(xp.asarray(a) for a in (tp, fp, tn, fn))
        held, best = _ratio(xp, self.held, *counts), _ratio(xp, self.best, *counts)
        feasible = held >= xp.asarray(options[self.held], dtype=held.dtype)  # compared as Keras, in its dtype
        return xp.max(xp.where(feasible, best, 0), initial=0)

    def check(self, options: dict[str, Any]) -> dict[str, Any]:
        value, class_id = options[self.held], options["class_id"]
        if value is None:
            raise TypeError(
                f"{self.keras} needs {self.held}=, the floor of the {self.held} (a number in [0, 1]), "
                f"as Keras's {self.keras}({self.held}=...): e.g. fnn.metrics.get({self.keras!r}, {self.held}=0.8)"
            )
        return {
            self.held: real(self.held, value, 0.0, 1.0),
            "num_thresholds": integer("num_thresholds", options["num_thresholds"], 1),
            "class_id": None if class_id is None else integer("class_id", class_id, 0),
            "from_logits": boolean("from_logits", options["from_logits"]),
        }


_RULES = {
    "precision_at_recall": _Search("PrecisionAtRecall", "recall", "precision"),
    "recall_at_precision": _Search("RecallAtPrecision", "precision", "recall"),
    "sensitivity_at_specificity": _Search("SensitivityAtSpecificity", "specificity", "sensitivity"),
    "specificity_at_sensitivity": _Search("SpecificityAtSensitivity", "sensitivity", "specificity"),
}


def _one_batch(name: str, y_true: Any, y_pred: Any, **options: Any) -> Array:
    rule = _RULES[name]
    o = rule.check(options)
    return rule(*_counts(y_true, y_pred, None, **o), **o)


def precision_at_recall(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    recall: float,
    num_thresholds: int = 200,
    class_id: int | None = None,
    from_logits: bool = False,
) -> Array:
    """The best precision at a recall of at least ``recall``, Keras's ``PrecisionAtRecall`` (one
    batch; streamed through :func:`get`, ``get("precision_at_recall", recall=0.8)``, it is the
    value of the whole data set).

    With ``T = num_thresholds`` thresholds ``t_j = j / (T - 1)`` (``0`` and ``1`` at the ends;
    ``T = 1``: the one threshold 0.5), ``tp_j = sum w [y != 0][p > t_j]`` and likewise ``fp, tn,
    fn`` (``p`` clipped into [0, 1]; bucketed as Keras does, so ``p = 0`` counts above no
    threshold, and a ``p`` on a threshold counts above it where ``p (T - 1)`` rounds up in
    ``p``'s dtype). The value is ``max_j precision_j`` over the ``j`` with ``recall_j >= recall``,
    0 where there is none; a ratio with a zero denominator is 0. All elements are pooled: y (N,)
    or (N, C) are N*C binary decisions, unless ``class_id`` picks one column.

    Args:
        y_true: Labels, positive where nonzero; the shape of ``y_pred`` (up to a trailing 1).
        y_pred: Probabilities (or logits with ``from_logits=True``), (N,) or (N, C); values
            outside [0, 1] are clipped.
        recall: The floor on the recall, in [0, 1].
        num_thresholds: The number of thresholds, an int >= 1.
        class_id: Only column ``class_id`` of an (N, C) output counts (None: every element).
        from_logits: Apply the sigmoid to ``y_pred`` first.

    Returns:
        The scalar precision, in [0, 1].

    Raises:
        ValueError: For a bad option value (named: ``recall`` outside [0, 1],
            ``num_thresholds < 1``, ``class_id`` < 0 or not a column of ``y_pred``) or shapes
            that differ beyond a trailing 1.
        TypeError: For an option of the wrong type (a non-int ``num_thresholds``...).

    Examples:
        >>> import fnn, numpy as np
        >>> y, p = np.array([0, 0, 0, 1, 1]), np.array([0, 0.3, 0.8, 0.3, 0.8])
        >>> float(fnn.metrics.precision_at_recall(y, p, recall=0.5))  # Keras's docstring: 0.5
        0.5
    """
    o = {"recall": recall, "num_thresholds": num_thresholds, "class_id": class_id, "from_logits": from_logits}
    return _one_batch("precision_at_recall", y_true, y_pred, **o)


def recall_at_precision(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    precision: float,
    num_thresholds: int = 200,
    class_id: int | None = None,
    from_logits: bool = False,
) -> Array:
    """The best recall ``tp / (tp + fn)`` at a precision ``tp / (tp + fp)`` of at least
    ``precision``, Keras's ``RecallAtPrecision``; 0 where no threshold reaches that precision.

    Arguments (``precision``: the floor, in [0, 1]), thresholds, result and errors as in
    :func:`precision_at_recall`.

    Examples:
        >>> import fnn, numpy as np
        >>> y, p = np.array([0, 0, 1, 1]), np.array([0, 0.5, 0.3, 0.9])
        >>> float(fnn.metrics.recall_at_precision(y, p, precision=0.8))  # Keras's docstring
        0.5
    """
    o = {"precision": precision, "num_thresholds": num_thresholds, "class_id": class_id, "from_logits": from_logits}
    return _one_batch("recall_at_precision", y_true, y_pred, **o)


def sensitivity_at_specificity(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    specificity: float,
    num_thresholds: int = 200,
    class_id: int | None = None,
    from_logits: bool = False,
) -> Array:
    """The best sensitivity ``tp / (tp + fn)`` at a specificity ``tn / (tn + fp)`` of at least
    ``specificity``, Keras's ``SensitivityAtSpecificity``; 0 where no threshold reaches it.

    Arguments (``specificity``: the floor, in [0, 1]), thresholds, result and errors as in
    :func:`precision_at_recall`.

    Examples:
        >>> import fnn, numpy as np
        >>> y, p = np.array([0, 0, 0, 1, 1]), np.array([0, 0.3, 0.8, 0.3, 0.8])
        >>> float(fnn.metrics.sensitivity_at_specificity(y, p, specificity=0.5))  # Keras's docstring
        0.5
    """
    o = {"specificity": specificity, "num_thresholds": num_thresholds, "class_id": class_id, "from_logits": from_logits}
    return _one_batch("sensitivity_at_specificity", y_true, y_pred, **o)


def specificity_at_sensitivity(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    sensitivity: float,
    num_thresholds: int = 200,
    class_id: int | None = None,
    from_logits: bool = False,
) -> Array:
    """The best specificity ``tn / (tn + fp)`` at a sensitivity ``tp / (tp + fn)`` of at least
    ``sensitivity``, Keras's ``SpecificityAtSensitivity``; 0 where no threshold reaches it.

    Arguments (``sensitivity``: the floor, in [0, 1]), thresholds, result and errors as in
    :func:`precision_at_recall`.

    Examples:
        >>> import fnn, numpy as np
        >>> y, p = np.array([0, 0, 0, 1, 1]), np.array([0, 0.3, 0.8, 0.3, 0.8])
        >>> round(float(fnn.metrics.specificity_at_sensitivity(y, p, sensitivity=0.5)), 4)  # Keras: 0.6667
        0.6667
    """
    o = {"sensitivity": sensitivity, "num_thresholds": num_thresholds, "class_id": class_id, "from_logits": from_logits}
    return _one_batch("specificity_at_sensitivity", y_true, y_pred, **o)


ENTRIES = {
    name: Entry(
        _counts,
        {rule.held: None, "num_thresholds": 200, "class_id": None, "from_logits": False},
        finish=rule,
        check=rule.check,
        direction="up",  # Keras's SensitivitySpecificityBase: self._direction = "up"
    )
    for name, rule in _RULES.items()
}
