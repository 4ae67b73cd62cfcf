"""Intersection over union with Keras 3's semantics (``IoU``, ``MeanIoU``, ``BinaryIoU``,
``OneHotIoU``, ``OneHotMeanIoU``): each batch gives its weighted ``C x C`` confusion matrix
(rows the true class, columns the predicted one), summed on the device across batches, and the
value is computed from the total, so a streamed IoU is the IoU of the whole data set.

Per class ``IoU = TP / (TP + FP + FN)``; the metric is their mean over the target classes whose
denominator is not 0 (a class neither present nor predicted counts for nothing; none at all
gives 0). Keras's rounding is kept: ``TP / (den + 1e-7)`` and ``sum / (valid + 1e-7)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn._validate import boolean, integer, real
from fnn.metrics._base import Entry, as_arrays, float_dtype, namespace, sample_weights

Array = jax.Array

EPSILON = 1e-7  # Keras's backend.epsilon()


def _labels(y: Array, sparse: bool, axis: int, what: str) -> Array:
    """Integer class ids: ``y`` truncated toward 0 (Keras casts to its default int dtype), or
    the argmax of scores along ``axis``."""
    if not sparse:
        if y.ndim == 0:
            raise ValueError(f"{what} must hold scores along axis={axis} (sparse_{what}=False); got a scalar")
        y = jnp.argmax(y, axis=axis)
    return y.astype(jnp.int32)


def _confusion(
    y_true: Any,
    y_pred: Any,
    sample_weight: Any,
    num_classes: int,
    ignore_class: int | None = None,
    sparse_y_true: bool = True,
    sparse_y_pred: bool = True,
    axis: int = -1,
    **_: Any,
) -> tuple[Array]:
    """The weighted confusion matrix ``cm[i, j] = sum w [true == i] [pred == j]`` of one batch,
    ``(num_classes, num_classes)``. Labels outside ``[0, num_classes)`` on either side, and
    true labels equal to ``ignore_class``, count for nothing (Keras 3.15's bounds mask)."""
    t, p = as_arrays(y_true, y_pred)
    dtype = float_dtype(t, p)
    t = _labels(t, sparse_y_true, axis, "y_true")
    p = _labels(p, sparse_y_pred, axis, "y_pred")
    if t.size != p.size:
        hint = "" if sparse_y_pred is False else " (pass sparse_y_pred=False for scores per class)"
        raise ValueError(
            f"IoU needs one predicted class per label: y_true gives {t.size} labels {np.shape(y_true)} and y_pred "
            f"{p.size} {np.shape(y_pred)}{hint}"
        )
    w = jnp.ones(t.shape, dtype) if sample_weight is None else sample_weights(sample_weight, t.shape, dtype)
    t, p, w = t.reshape(-1), p.reshape(-1), w.reshape(-1)
    keep = (t >= 0) & (t < num_classes) & (p >= 0) & (p < num_classes)
    if ignore_class is not None:
        keep &= t != ignore_class
    w = jnp.where(keep, w, 0)
    rows = jax.nn.one_hot(t, num_classes, dtype=dtype) * w[:, None]
    # a matmul sums in a fixed order (a scatter-add would not); HIGHEST keeps float32 weights exact on GPU
    cm = jnp.einsum("mi,mj->ij", rows, jax.nn.one_hot(p, num_classes, dtype=dtype), precision="highest")
    return (cm,)


def _binary_confusion(y_true: Any, y_pred: Any, sample_weight: Any, threshold: float, **_: Any) -> tuple[Array]:
    """:func:`_confusion` of 2 classes, predicted 1 where ``y_pred >= threshold``."""
    t, p = as_arrays(y_true, y_pred)
    return _confusion(t, (p >= threshold).astype(jnp.int32), sample_weight, 2)


def _one_hot_confusion(y_true: Any, y_pred: Any, sample_weight: Any, **options: Any) -> tuple[Array]:
    """:func:`_confusion` of one-hot targets (their argmax along ``axis``); ``y_pred`` scores of
    their shape, or with ``sparse_y_pred`` class ids of their shape without the class axis."""
    t_shape, p_shape = np.shape(y_true), np.shape(y_pred)  # np: jnp.shape warns on lists
    if options.get("sparse_y_pred"):
        axis = options.get("axis", -1)
        if not -len(t_shape) <= axis < len(t_shape):
            raise ValueError(f"one-hot IoU needs one-hot targets along axis={axis}, got y_true {t_shape}")
        axis %= len(t_shape)
        want = t_shape[:axis] + t_shape[axis + 1 :]
        if p_shape != want:
            raise ValueError(
                f"one-hot IoU with sparse_y_pred=True needs class ids of y_true's shape {t_shape} without "
                f"its class axis, {want}; got y_pred {p_shape}"
            )
    elif t_shape != p_shape:
        raise ValueError(
            f"one-hot IoU needs one-hot targets of y_pred's shape {p_shape}, got y_true "
            f"{t_shape} (for integer labels: iou or mean_iou, with sparse_y_pred=False for scores; "
            "for class ids as y_pred: sparse_y_pred=True)"
        )
    return _confusion(y_true, y_pred, sample_weight, **options, sparse_y_true=False)


def _iou_value(cm: Any, num_classes: int = 2, target_class_ids: Sequence[int] | None = None, **_: Any) -> Any:
    """Mean of ``TP / (TP + FP + FN)`` over the target classes whose denominator is > 1e-9
    (Keras's ``IoU.result``); all classes when ``target_class_ids`` is None."""
    xp = namespace(cm)
    cm = xp.asarray(cm)
    tp = xp.diagonal(cm)
    den = xp.sum(cm, axis=0) + xp.sum(cm, axis=1) - tp
    ids = list(range(num_classes)) if target_class_ids is None else list(target_class_ids)
    tp, den = tp[xp.asarray(ids)], den[xp.asarray(ids)]
    valid = den > 1e-9
    iou = xp.where(valid, tp / (den + EPSILON), 0)
    return xp.sum(iou) / (xp.sum(valid.astype(cm.dtype)) + EPSILON)


def _class_ids(value: Any, num_classes: int) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"target_class_ids must be a list or tuple of ints, got {value!r}")
    ids = tuple(integer("target_class_ids", v, 0) for v in value)
    if not ids:
        raise ValueError("target_class_ids must name at least one class, got an empty list")
    if max(ids) >= num_classes:
        raise ValueError(f"target class id {max(ids)} is out of range, which is [0, {num_classes})")
    return ids


def _iou_options(options: dict[str, Any]) -> dict[str, Any]:
    """Keras's options checked (the bad one named) and normalised to hashable values."""
    out = dict(options)
    if "num_classes" in out:
        if out["num_classes"] is None:
            raise TypeError("this IoU metric needs num_classes= (the number of classes, >= 1)")
        out["num_classes"] = integer("num_classes", out["num_classes"], 1)
    if "target_class_ids" in out:
        if out["target_class_ids"] is None:
            raise TypeError("IoU needs target_class_ids= (the classes to average over; MeanIoU takes them all)")
        out["target_class_ids"] = _class_ids(out["target_class_ids"], out.get("num_classes", 2))
    if out.get("ignore_class") is not None:
        out["ignore_class"] = integer("ignore_class", out["ignore_class"])
    for key in ("sparse_y_true", "sparse_y_pred"):
        if key in out:
            out[key] = boolean(key, out[key])
    if "axis" in out:
        out["axis"] = integer("axis", out["axis"])
    if "threshold" in out:
        out["threshold"] = real("threshold", out["threshold"])
    return out


def _one_batch(confusion: Any, y_true: Any, y_pred: Any, **options: Any) -> Array:
    """The metric of one batch: ``options`` checked, then the IoU of ``confusion``'s matrix."""
    o = _iou_options(options)
    return _iou_value(*confusion(y_true, y_pred, None, **o), **o)


def iou(
    y_true: jax.typing.ArrayLike,
    y_pred: jax.typing.ArrayLike,
    num_classes: int,
    target_class_ids: Sequence[int],
    ignore_class: int | None = None,
    sparse_y_true: bool = True,
    sparse_y_pred: bool = True,
    axis: int = -1,
) -> Array:
    """Intersection over union, ``TP / (TP + FP + FN)`` per class from the confusion matrix,
    averaged over ``target_class_ids`` (Keras's ``IoU``; one id: that class's IoU). A target
    class with ``TP + FP + FN = 0`` (absent and never predicted) is left out of the mean.

    Labels of any shape are flattened; float labels (and sparse float predictions) are truncated
    to integers as Keras does. Labels outside ``[0, num_classes)`` on either side, and true
    labels equal to ``ignore_class``, are dropped, as in Keras 3.15. Sample weights are summed as
    given (Keras's default integer ``dtype`` would truncate fractional ones; fnn matches Keras's
    ``IoU(..., dtype="float32")``).

    Args:
        y_true: Class ids of any shape (or scores along ``axis`` with ``sparse_y_true=False``).
        y_pred: Class ids with as many elements (or scores along ``axis`` with
            ``sparse_y_pred=False``: their argmax).
        num_classes: The number of classes C (>= 1): the confusion matrix is C x C.
        target_class_ids: The classes averaged over, each in ``[0, C)``.
        ignore_class: A true label that counts for nothing (a "void" class, e.g. 255), or None.
        sparse_y_true: ``y_true`` holds class ids; False: take its argmax along ``axis``.
        sparse_y_pred: ``y_pred`` holds class ids; False: take its argmax along ``axis``.
        axis: The class axis of scores.

    Returns:
        The scalar IoU (0 when no target class has a nonzero denominator).

    Raises:
        ValueError: For a bad option value (named), or label counts that differ.
        TypeError: For a missing or mistyped option.

    Examples:
        >>> import fnn
        >>> # cm = [[1, 1], [1, 1]]: class 0 has TP 1, FP 1, FN 1
        >>> round(float(fnn.metrics.iou([0, 0, 1, 1], [0, 1, 0, 1], num_classes=2, target_class_ids=[0])), 4)
        0.3333
    """
    return _one_batch(_confusion, y_true, y_pred, num_classes=num_classes, target_class_ids=target_class_ids,
                      ignore_class=ignore_class, sparse_y_true=sparse_y_true, sparse_y_pred=sparse_y_pred,
                      axis=axis)  # fmt: skip


def mean_iou(
    y_true: jax.typing.ArrayLike,
    y_pred: jax.typing.ArrayLike,
    num_classes: int,
    ignore_class: int | None = None,
    sparse_y_true: bool = True,
    sparse_y_pred: bool = True,
    axis: int = -1,
) -> Array:
    """:func:`iou` averaged over every class (Keras's ``MeanIoU``): the mean over the classes
    present in the targets or the predictions of ``TP / (TP + FP + FN)``.

    Arguments, result and errors as in :func:`iou`, with every class a target.

    Examples:
        >>> import fnn
        >>> # per class IoU: 1/3 and 1/3
        >>> round(float(fnn.metrics.mean_iou([0, 0, 1, 1], [0, 1, 0, 1], num_classes=2)), 4)
        0.3333
    """
    return _one_batch(_confusion, y_true, y_pred, num_classes=num_classes, ignore_class=ignore_class,
                      sparse_y_true=sparse_y_true, sparse_y_pred=sparse_y_pred, axis=axis)  # fmt: skip


def binary_iou(
    y_true: jax.typing.ArrayLike,
    y_pred: jax.typing.ArrayLike,
    target_class_ids: Sequence[int] = (0, 1),
    threshold: float = 0.5,
) -> Array:
    """:func:`iou` of two classes (Keras's ``BinaryIoU``): predicted 1 where
    ``y_pred >= threshold``, else 0; labels are truncated to integers, and labels other than 0
    and 1 are dropped.

    Args:
        y_true: 0/1 labels of any shape.
        y_pred: Probabilities or logits with as many elements.
        target_class_ids: ``(0,)``, ``(1,)`` or ``(0, 1)`` (the mean of both IoUs).
        threshold: The cut (a logit cut with ``threshold=0``).

    Returns:
        The scalar IoU.

    Raises:
        ValueError: For a class id other than 0 and 1, or label counts that differ.
        TypeError: For an option of the wrong type.

    Examples:
        >>> import fnn
        >>> round(float(fnn.metrics.binary_iou([0, 1, 0, 1], [0.1, 0.2, 0.4, 0.7], threshold=0.3)), 4)
        0.3333
    """
    return _one_batch(_binary_confusion, y_true, y_pred, target_class_ids=target_class_ids, threshold=threshold)


def one_hot_iou(
    y_true: jax.typing.ArrayLike,
    y_pred: jax.typing.ArrayLike,
    num_classes: int,
    target_class_ids: Sequence[int],
    ignore_class: int | None = None,
    sparse_y_pred: bool = False,
    axis: int = -1,
) -> Array:
    """:func:`iou` of one-hot targets (Keras's ``OneHotIoU``): the argmax of ``y_true`` along
    ``axis`` is the true class, that of ``y_pred`` the predicted one.

    Arguments, result and errors as in :func:`iou` (``y_true`` one-hot, ``y_pred`` scores of the
    same shape, or with ``sparse_y_pred`` class ids of that shape without the class axis).

    Examples:
        >>> import fnn
        >>> t = [[0, 0, 1], [1, 0, 0], [0, 1, 0], [1, 0, 0]]
        >>> p = [[0.2, 0.3, 0.5], [0.1, 0.2, 0.7], [0.5, 0.3, 0.1], [0.1, 0.4, 0.5]]
        >>> round(float(fnn.metrics.one_hot_iou(t, p, num_classes=3, target_class_ids=[0, 2])), 4)
        0.1667
    """
    return _one_batch(_one_hot_confusion, y_true, y_pred, num_classes=num_classes, target_class_ids=target_class_ids,
                      ignore_class=ignore_class, sparse_y_pred=sparse_y_pred, axis=axis)  # fmt: skip


def one_hot_mean_iou(
    y_true: jax.typing.ArrayLike,
    y_pred: jax.typing.ArrayLike,
    num_classes: int,
    ignore_class: int | None = None,
    sparse_y_pred: bool = False,
    axis: int = -1,
) -> Array:
    """:func:`mean_iou` of one-hot targets (Keras's ``OneHotMeanIoU``).

    Arguments, result and errors as in :func:`one_hot_iou`, with every class a target.
    """
    return _one_batch(_one_hot_confusion, y_true, y_pred, num_classes=num_classes, ignore_class=ignore_class,
                      sparse_y_pred=sparse_y_pred, axis=axis)  # fmt: skip


def _entry(scores: Any, defaults: dict[str, Any]) -> Entry:
    return Entry(scores, defaults, finish=_iou_value, check=_iou_options, direction="up")


_SPARSE = {"num_classes": None, "ignore_class": None, "sparse_y_true": True, "sparse_y_pred": True, "axis": -1}
_ONE_HOT = {"num_classes": None, "ignore_class": None, "sparse_y_pred": False, "axis": -1}
ENTRIES = {
    "iou": _entry(_confusion, {**_SPARSE, "target_class_ids": None}),
    "mean_iou": _entry(_confusion, _SPARSE),
    "binary_iou": _entry(_binary_confusion, {"target_class_ids": (0, 1), "threshold": 0.5}),
    "one_hot_iou": _entry(_one_hot_confusion, {**_ONE_HOT, "target_class_ids": None}),
    "one_hot_mean_iou": _entry(_one_hot_confusion, _ONE_HOT),
}
