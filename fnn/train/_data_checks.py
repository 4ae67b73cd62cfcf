"""The data ``fit``, ``fit_many`` and ``evaluate`` train or score on, checked before anything is
compiled: the validation split or ``validation_data``, sample and class weights (and a loss
that can weigh them), the data against the network and the loss, the metrics against the
targets, and class labels held in an integer dtype. Every failure is a ValueError or TypeError
naming the argument.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn import losses, metrics
from fnn._dtypes import is_real_dtype
from fnn._network_checks import check_against_network, rank_error
from fnn._placement import to_host
from fnn._validate import is_real_scalar, is_traced, real
from fnn.data import check_arrays, train_val_split
from fnn.losses._loss import LABEL_LOSSES, PAIR_LABEL_LOSSES, SEQUENCE_LABEL_LOSSES
from fnn.metrics._resolve import resolve_both


def _takes_sample_weight(fn: Any) -> bool:
    """Whether ``fn`` can be called with a ``sample_weight=`` keyword (True when its signature
    cannot be read: the call then says for itself)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(
        p.kind is p.VAR_KEYWORD or (p.name == "sample_weight" and p.kind is not p.POSITIONAL_ONLY) for p in params
    )


def check_loss_weighs(loss: Any, **weights: Any) -> None:
    """A plain callable loss must take ``sample_weight=`` for the weights given (named by their
    argument); an :class:`fnn.losses.Loss` always does."""
    given = [name for name, w in weights.items() if w is not None]
    if not given or isinstance(loss, losses.Loss) or _takes_sample_weight(loss):
        return
    name = getattr(loss, "__name__", type(loss).__name__)
    raise TypeError(
        f"{' and '.join(given)} given, but the loss {name} is a plain callable (y_true, y_pred) without "
        "a sample_weight= keyword, so it cannot weigh samples: add that keyword to it, or make it a "
        "Loss of per-sample values with fnn.losses.custom(name, fn), which weighs them as the "
        "built-in losses do"
    )


def check_sample_weight(sample_weight: Any, n: int, name: str = "sample_weight") -> Any:
    """Per-sample weights as a float64 NumPy ``(n,)`` array: real (bools as 0 and 1, as Keras
    casts them), finite and >= 0 (``(n, 1)`` is squeezed, a scalar broadcast). Traced weights
    (under the user's jit) stay traced, in the default float dtype: their values are not read."""
    traced = is_traced(sample_weight)
    try:
        w = sample_weight if traced else np.asarray(jax.device_get(sample_weight))
    except Exception as err:
        raise TypeError(f"{name} must be an array of per-sample weights, got {type(sample_weight).__name__}") from err
    if not (is_real_dtype(w.dtype) or w.dtype == np.bool_):  # bfloat16 too; bools weigh 0 and 1, as in Keras
        raise TypeError(f"{name} must hold real numbers, got dtype {w.dtype}")
    if w.ndim == 0:
        w = (jnp if traced else np).broadcast_to(w, (n,))
    elif w.ndim == 2 and w.shape[1] == 1:
        w = w[:, 0]
    if w.shape != (n,):
        raise ValueError(f"{name} must have one weight per sample, shape ({n},); got shape {w.shape}")
    if traced:
        return w.astype(jnp.result_type(float))
    w = w.astype(np.float64)
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        bad = int(np.argmax(~np.isfinite(w) | (w < 0)))
        raise ValueError(f"{name} must be finite and >= 0; {name}[{bad}] is {w[bad]}")
    return w


def class_weights(class_weight: Any, y: Any) -> np.ndarray:
    """Keras's ``class_weight``: the sample weight of each sample is its class's weight (1 for a
    class not named). The class is ``argmax`` of one-hot or probability rows, else the rounded
    label."""
    if not isinstance(class_weight, Mapping):
        raise TypeError(f"class_weight must be a dict {{class index: weight}}, got {type(class_weight).__name__}")
    table = {}
    for k, v in class_weight.items():
        # Keras looks labels up as int(label): whole-number float keys (np.unique of float
        # binary labels, 0.0 and 1.0) name the classes too.
        whole = (isinstance(k, float) or is_real_scalar(k)) and float(k).is_integer()
        # negative labels too: a hinge loss's classes are -1 and 1 (Keras looks any int up)
        if isinstance(k, (bool, np.bool_)) or not (isinstance(k, (int, np.integer)) or whole):
            raise ValueError(f"class_weight keys must be class labels (whole numbers), got {k!r}")
        table[int(k)] = real(f"class_weight[{k}]", v, lo=0.0)
    labels = np.asarray(jax.device_get(y))
    if labels.ndim > 1:
        labels = np.argmax(labels, axis=-1) if labels.shape[-1] != 1 else labels[..., 0]
    classes = np.round(labels.reshape(labels.shape[0], -1)[:, 0]).astype(np.int64)
    weights = np.ones(classes.shape[0], np.float64)
    for c, v in table.items():  # one vectorised pass per named class, not a Python loop per sample
        weights[classes == c] = v
    return weights


def check_samples(x: Any, y: Any = None, names: tuple[str, str] = ("x", "y")) -> tuple[Any, Any]:
    """:func:`fnn.data.check_arrays` for a network's data: ``x`` of any rank >= 2, samples
    first (a ``Flatten`` network takes images, as Keras's ``fit`` does; the network's own check
    says whether the rest of the shape fits it)."""

    def rank(a: Any) -> None:
        if a.ndim == 1:  # a scalar is check_arrays's to name
            raise rank_error(names[0], a.shape)

    if isinstance(x, (np.ndarray, jax.Array)):
        rank(x)  # before the sample counts, as the rank-2 check of check_arrays came first
    x, y = check_arrays(x, y, names=names, x_ndim=None)
    rank(x)
    return x, y


def check_held(name: str, source: Any, held: Any, first_row: int = 0) -> None:
    """``source``'s finite values converted to ``held``'s narrower dtype must stay finite:
    1e39 in float32 or 70000 in float16 would train on inf (SPEC: no NaN/inf in data). Called
    once a cheap check flagged an overflow (the cast's, a jax array's held bits);
    ``first_row``: the index in ``name`` of the arrays' first row (a validation split's)."""
    held = to_host(held)  # a jax array's read explicitly: a caller's transfer guard allows it
    with np.errstate(over="ignore", invalid="ignore"):
        # NaN and inf propagate through the sum; in float64 a sum of float32 (or narrower)
        # values cannot overflow, so a finite sum is the whole check
        if math.isfinite(float(np.sum(held, dtype=np.float64))):
            return
    bad = ~np.isfinite(held)
    if not bad.any():
        return
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    first = (first[0] + first_row, *first[1:])
    largest = float(np.max(np.abs(to_host(source)[bad])))
    dtype, most = held.dtype, float(jnp.finfo(held.dtype).max)
    raise ValueError(
        f"{name} contains {int(bad.sum())} value(s) that overflow {dtype} (the dtype it is held in), the first "
        f"at index {first}; the largest magnitude is {largest:.4g} and {dtype} holds at most {most:.4g}: scale "
        "the data, or use params of a wider dtype"
    )


def check_required(name: str, value: Any) -> None:
    """A ValueError naming ``name`` for data given as None (it went on to fail as an
    AttributeError in the network's shape check)."""
    if value is None:
        raise ValueError(f"{name} is required; got None")


def split_data(
    x: Any, y: Any, validation_split: float, validation_data: Any, sample_weight: Any = None, class_weight: Any = None
) -> tuple[Any, Any, Any, Any, Any, Any]:
    """``(x_tr, y_tr, w_tr, x_val, y_val, w_val)`` checked (``x_val`` is None without
    validation; the ``w``'s are float64 NumPy sample weights or None). ``validation_data`` is
    ``(x_val, y_val)`` or ``(x_val, y_val, sample_weight_val)``; ``validation_split`` splits
    ``sample_weight`` with the samples; ``class_weight`` weighs the training samples only."""
    check_required("y", y)
    x, y = check_samples(x, y)
    if sample_weight is not None and class_weight is not None:
        raise ValueError("pass sample_weight or class_weight, not both (Keras refuses both too)")
    w = None
    if sample_weight is not None:
        w = check_sample_weight(sample_weight, x.shape[0])
    elif class_weight is not None:
        w = class_weights(class_weight, y)
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError(
                "validation_data must be a pair (x_val, y_val) or a triple (x_val, y_val, sample_weight_val)"
            )
        names = ("validation_data[0]", "validation_data[1]")
        check_required("validation_data[0] (x_val)", validation_data[0])
        check_required("validation_data[1] (y_val)", validation_data[1])
        x_val, y_val = check_samples(validation_data[0], validation_data[1], names=names)
        w_val = None
        if len(validation_data) == 3 and validation_data[2] is not None:
            w_val = check_sample_weight(validation_data[2], x_val.shape[0], "validation_data[2]")
        return x, y, w, x_val, y_val, w_val
    if validation_split > 0:
        (x_tr, y_tr), (x_val, y_val) = train_val_split(x, y, validation_split)
        cut = x_tr.shape[0]
        w_tr, w_val = (None, None) if w is None else (w[:cut], w[cut:] if sample_weight is not None else None)
        return x_tr, y_tr, w_tr, x_val, y_val, w_val
    return x, y, w, None, None, None


def prepare_data(
    net: Any,
    params: Any,
    loss: Any,
    x: Any,
    y: Any,
    validation_split: float,
    validation_data: Any,
    metric_ids: Any,
    sample_weight: Any = None,
    class_weight: Any = None,
    weighted_ids: Any = None,
) -> tuple[Any, Any, Any, Any, Any, Any, tuple, tuple]:
    """Checked ``(x_tr, y_tr, w_tr, x_val, y_val, w_val, metrics, weighted_metrics)``: the
    validation split, shapes against the network, sample weights, and the resolved metrics
    (``x_val`` is None without validation, a ``w`` None without weights)."""
    check_loss_weighs(loss, sample_weight=sample_weight, class_weight=class_weight)
    x_tr, y_tr, w_tr, x_val, y_val, w_val = split_data(
        x, y, validation_split, validation_data, sample_weight, class_weight
    )
    if validation_data is not None:
        check_loss_weighs(loss, **{"validation_data[2]": w_val})
    if x_tr.shape[0] == 0:
        raise ValueError("no training samples left after validation_split")
    out_shape = check_against_network(net, params, loss, x_tr, y_tr, "x", "y")
    if class_weight is not None and len(out_shape) > 2:
        # one class per sample: per-timestep labels would be argmax'ed across the time axis
        raise ValueError(
            f"class_weight weighs each sample by its one class, but the network's outputs "
            f"{tuple(out_shape)} hold several predictions per sample (Keras refuses class_weight "
            "for 3+ dimensional targets too); pass sample_weight instead"
        )
    if x_val is not None:
        val_shape = check_against_network(net, params, loss, x_val, y_val, "validation x", "validation y")
    ms, wms = resolve_both(
        metric_ids, weighted_ids, loss=loss, y_true_shape=y_tr.shape, y_pred_shape=out_shape,
        y_true_dtype=label_dtype(loss, y_tr),
    )  # fmt: skip
    # the metrics' label values, concretely (under jit a float label would be truncated)
    metrics.check_targets((*ms, *wms), y_tr, out_shape, name="y", loss=loss)
    if x_val is not None:
        metrics.check_targets((*ms, *wms), y_val, val_shape, name="validation y", loss=loss)
    return x_tr, sparse_labels(loss, y_tr), w_tr, x_val, sparse_labels(loss, y_val), w_val, ms, wms


def sparse_labels(loss: Any, y: Any) -> Any:
    """Class indices held as floats become int32 (already checked to be integers): the data is
    moved in the params' float dtype, and bfloat16 or float16 would round labels above 256 or
    2048 to other classes. Labels are never cast to a lower-precision float."""
    if y is None or label_dtype(loss, y) == y.dtype:
        return y
    return y.astype(jnp.int32) if isinstance(y, jax.Array) else np.asarray(y).astype(np.int32)


def label_dtype(loss: Any, y: Any) -> Any:
    """The dtype :func:`sparse_labels` gives ``y`` (nothing converted)."""
    if (
        not isinstance(loss, losses.Loss)
        or loss.name not in LABEL_LOSSES | PAIR_LABEL_LOSSES | SEQUENCE_LABEL_LOSSES
        or not jnp.issubdtype(y.dtype, jnp.floating)
    ):
        return y.dtype
    return np.dtype(np.int32)
