"""The probabilistic losses besides the cross-entropies (``_crossentropy.py``): KL divergence
and Poisson, each beside its hand-written gradient with respect to ``y_pred``; the numerics are
the kernels of ``_kernels.py``. See :mod:`fnn.losses` for the rules they share.
"""

from __future__ import annotations

import jax

from fnn.losses._kernels import (
    kl_divergence_terms,
    poisson_terms,
)
from fnn.losses._reduction import apply_kernel

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


def kl_divergence(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
    """``mean_i w_i sum_j t log(t / p)``, t and p clipped to [1e-7, 1].

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
    """
    return apply_kernel(kl_divergence_terms, y_true, y_pred, sample_weight, {}, "value")


def kl_divergence_grad(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
    """``-w_i t / (p n)`` where p is not clipped, else 0.

    The hand-written gradient of :func:`kl_divergence` with respect to ``y_pred`` (``jax.grad``
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
    """
    return apply_kernel(kl_divergence_terms, y_true, y_pred, sample_weight, {}, "grad")


def poisson(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
    """``mean_i w_i mean_j (p - t log(p + 1e-7))``.

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
    return apply_kernel(poisson_terms, y_true, y_pred, sample_weight, {}, "value")


def poisson_grad(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
    """``w_i (1 - t / (p + 1e-7)) / (n D)``.

    The hand-written gradient of :func:`poisson` with respect to ``y_pred`` (``jax.grad``
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
    return apply_kernel(poisson_terms, y_true, y_pred, sample_weight, {}, "grad")
