"""Targets against a loss, checked before anything compiles: the shapes (the loss traced on
abstract arrays, nothing runs) and, for the losses of integer labels, the label values."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn._cache import structural_cache
from fnn._dtypes import abstract_array
from fnn._placement import to_host
from fnn._validate import is_traced
from fnn.losses._checks import breaks_contract, check_label_values, check_pair_labels, norm_axis
from fnn.losses._ctc import check_ctc_labels
from fnn.losses._loss import LABEL_LOSSES, PAIR_LABEL_LOSSES, SEQUENCE_LABEL_LOSSES, Loss, get


def check_targets(loss: str | Loss, y_true: Any, y_pred_shape: tuple, name: str = "y_true") -> None:
    """Eager check (before any compiled code runs) that ``y_true`` fits ``loss`` and predictions
    of shape ``y_pred_shape``: matching shapes, and for sparse CE integer labels in [0, C) (for
    ctc, label sequences padded with the blank 0 that fit the time steps).

    Args:
        loss: A loss name or :class:`Loss`.
        y_true: The targets, as given to ``fit`` or ``evaluate``.
        y_pred_shape: The shape of the network's output for those samples.
        name: How the message names ``y_true``.

    Raises:
        ValueError: If the shapes do not fit the loss, or sparse CE labels are not integers in
            ``[0, C)`` (ctc's: as :func:`fnn.losses.ctc` checks them); the message starts with
            ``name`` (with ``loss`` where a custom loss's ``fn`` or ``grad`` returns the wrong
            shape: the loss's mistake, not the targets').
        TypeError: If ``loss`` is not a name or a Loss, or ``y_pred_shape`` not a tuple (or
            list) of ints.

    Examples:
        >>> import fnn
        >>> fnn.losses.check_targets("sparse_categorical_crossentropy", [0, 3], (2, 3))
        Traceback (most recent call last):
        ...
        ValueError: y_true: sparse_categorical_crossentropy: labels must be in [0, 3) ...; got [3]
    """
    check_targets_as_run(loss, y_true, _shape("y_pred_shape", y_pred_shape), name)


def _shape(name: str, shape: Any) -> tuple[int, ...]:
    """``shape`` as a tuple of ints: a sequence (or 1-d array) of whole numbers >= 0."""
    try:
        dims = np.asarray(shape)
        whole = dims.ndim == 1 and dims.dtype.kind in "iuf" and bool(np.all((dims >= 0) & (dims == np.round(dims))))
    except (TypeError, ValueError):
        whole = False
    if not whole:
        raise TypeError(
            f"{name} must be a tuple of ints (the shape of the network's output, samples first, e.g. "
            f"y_pred.shape); got {type(shape).__name__} {shape!r}"
        )
    return tuple(int(d) for d in dims)


def check_targets_as_run(
    loss: str | Loss,
    y_true: Any,
    y_pred_shape: tuple,
    name: str = "y_true",
    y_dtype: Any = None,
    y_pred_dtype: Any = None,
) -> None:
    """:func:`check_targets` with the loss traced in the dtypes the run computes in: the targets
    in ``y_dtype`` (None: their own), the predictions in ``y_pred_dtype`` (None: floating
    targets' dtype, else the default float: a float32 y against float64 predictions would be a
    mix of the check's own, which ``jax_numpy_dtype_promotion="strict"`` refuses in the loss).
    The label values checked are ``y_true``'s own (none of a traced one: under the user's jit)."""
    loss = get(loss)
    shape = tuple(y_pred_shape)
    try:
        if y_dtype is None:
            y_dtype = y_true.dtype if hasattr(y_true, "dtype") else np.asarray(y_true).dtype
        if y_pred_dtype is None:
            y_pred_dtype = y_dtype if jnp.issubdtype(y_dtype, jnp.floating) else jnp.result_type(float)
        _check_target_shapes(loss, tuple(np.shape(y_true)), np.dtype(y_dtype), shape, np.dtype(y_pred_dtype))
        if loss.name in LABEL_LOSSES and not is_traced(y_true):
            opts = dict(loss.options)
            # the shapes were checked by eval_shape above; the values in NumPy, compiling nothing
            check_label_values(
                to_host(y_true),
                shape[norm_axis(opts.get("axis", -1), len(shape), loss.name)],
                opts.get("ignore_class"),
                loss.name,
            )
        elif loss.name in PAIR_LABEL_LOSSES and not is_traced(y_true):
            check_pair_labels(to_host(y_true), loss.name)
        elif loss.name in SEQUENCE_LABEL_LOSSES and not is_traced(y_true):
            check_ctc_labels(to_host(y_true), shape[2], shape[1])
    except ValueError as e:
        # a custom loss's own contract broken (fn returned one number) is the loss's mistake, not the targets'
        raise ValueError(f"{'loss' if breaks_contract(e) else name}: {e}") from None


@structural_cache(maxsize=256)
def _check_target_shapes(
    loss: Loss, y_shape: tuple, y_dtype: np.dtype, y_pred_shape: tuple, y_pred_dtype: np.dtype
) -> None:
    # Traces the loss (nothing runs); cached because fit checks the same shapes on every call.
    jax.eval_shape(loss, abstract_array(y_shape, y_dtype), abstract_array(y_pred_shape, y_pred_dtype))
