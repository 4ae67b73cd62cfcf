"""The hinge losses, for maximum-margin classification: hinge, squared hinge and categorical
hinge, each beside its hand-written gradient with respect to ``y_pred``; the numerics are the
kernels of ``_kernels.py``. See :mod:`fnn.losses` for the rules they share.
"""

from __future__ import annotations

import jax

from fnn.losses._kernels import (
    categorical_hinge_terms,
    hinge_terms,
    squared_hinge_terms,
)
from fnn.losses._reduction import apply_kernel

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


def hinge(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
    """``mean_i w_i mean_j max(1 - t p, 0)``; {0, 1} labels become {-1, 1} as in Keras.

    Args:
        y_true: Targets, of the shape of ``y_pred`` (a trailing axis of size 1 may be missing
            on either side: ``(N,)`` pairs with ``(N, 1)``).
        y_pred: Predictions, ``(N, D)``, or ``(N,)`` for N samples of one output each.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        The scalar loss, the weighted mean of the per-sample losses (Keras's
        ``"sum_over_batch_size"``).

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match.
        TypeError: For inputs that do not hold real numbers.
    """
    return apply_kernel(hinge_terms, y_true, y_pred, sample_weight, {}, "value")


def hinge_grad(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
    """``-w_i t [1 - t p > 0] / (n D)``.

    The hand-written gradient of :func:`hinge` with respect to ``y_pred`` (``jax.grad``
    of the loss gives the same, at kinks too).

    Args:
        y_true: Targets, of the shape of ``y_pred`` (a trailing axis of size 1 may be missing
            on either side: ``(N,)`` pairs with ``(N, 1)``).
        y_pred: Predictions, ``(N, D)``, or ``(N,)`` for N samples of one output each.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        ``d loss / d y_pred``, of the shape of ``y_pred``.

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match.
        TypeError: For inputs that do not hold real numbers.
    """
    return apply_kernel(hinge_terms, y_true, y_pred, sample_weight, {}, "grad")


def squared_hinge(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
    """``mean_i w_i mean_j max(1 - t p, 0)^2``; {0, 1} labels become {-1, 1}.

    Args:
        y_true: Targets, of the shape of ``y_pred`` (a trailing axis of size 1 may be missing
            on either side: ``(N,)`` pairs with ``(N, 1)``).
        y_pred: Predictions, ``(N, D)``, or ``(N,)`` for N samples of one output each.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        The scalar loss, the weighted mean of the per-sample losses (Keras's
        ``"sum_over_batch_size"``).

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match.
        TypeError: For inputs that do not hold real numbers.
    """
    return apply_kernel(squared_hinge_terms, y_true, y_pred, sample_weight, {}, "value")


def squared_hinge_grad(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
    """``-2 w_i t max(1 - t p, 0) / (n D)``.

    The hand-written gradient of :func:`squared_hinge` with respect to ``y_pred`` (``jax.grad``
    of the loss gives the same, at kinks too).

    Args:
        y_true: Targets, of the shape of ``y_pred`` (a trailing axis of size 1 may be missing
            on either side: ``(N,)`` pairs with ``(N, 1)``).
        y_pred: Predictions, ``(N, D)``, or ``(N,)`` for N samples of one output each.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        ``d loss / d y_pred``, of the shape of ``y_pred``.

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match.
        TypeError: For inputs that do not hold real numbers.
    """
    return apply_kernel(squared_hinge_terms, y_true, y_pred, sample_weight, {}, "grad")


def categorical_hinge(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
    """``mean_i w_i max(max_j (1-t) p - sum_j t p + 1, 0)``.

    Args:
        y_true: Targets (one-hot or probability rows), of the shape of ``y_pred``.
        y_pred: Predictions ``(N, C)``, the classes along the last axis.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        The scalar loss, the weighted mean of the per-sample losses (Keras's
        ``"sum_over_batch_size"``).

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match.
        TypeError: For inputs that do not hold real numbers.
    """
    return apply_kernel(categorical_hinge_terms, y_true, y_pred, sample_weight, {}, "value")


def categorical_hinge_grad(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
    """``w_i [l_i > 0] ((1-t) e_argmax - t) / n`` (the max splits its gradient evenly among ties).

    The hand-written gradient of :func:`categorical_hinge` with respect to ``y_pred`` (``jax.grad``
    of the loss gives the same, at kinks too).

    Args:
        y_true: Targets (one-hot or probability rows), of the shape of ``y_pred``.
        y_pred: Predictions ``(N, C)``, the classes along the last axis.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        ``d loss / d y_pred``, of the shape of ``y_pred``.

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match.
        TypeError: For inputs that do not hold real numbers.
    """
    return apply_kernel(categorical_hinge_terms, y_true, y_pred, sample_weight, {}, "grad")
