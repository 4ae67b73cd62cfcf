"""The cross-entropies: binary (and binary focal), categorical and sparse categorical, from
probabilities or logits, each beside its hand-written gradient with respect to ``y_pred``; the
numerics are the kernels of ``_kernels.py``. See :mod:`fnn.losses` for the rules they share.
"""

from __future__ import annotations

import jax

from fnn.losses._kernels import (
    binary_crossentropy_terms,
    binary_focal_crossentropy_terms,
    categorical_crossentropy_terms,
    sparse_categorical_crossentropy_terms,
)
from fnn.losses._reduction import apply_kernel

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


def binary_crossentropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
    sample_weight: ArrayLike | None = None,
) -> Array:
    """``mean_i w_i mean_j -(t log p + (1-t) log(1-p))``, p clipped to [1e-7, 1-1e-7] (or
    ``p = sigmoid(y_pred)`` computed stably), ``t = y_true (1 - ls) + ls/2``.

    Args:
        y_true: Targets, of the shape of ``y_pred`` (a trailing axis of size 1 may be missing
            on either side: ``(N,)`` pairs with ``(N, 1)``).
        y_pred: Predictions, ``(N, D)``, or ``(N,)`` for N samples of one output each.
        from_logits: True if ``y_pred`` holds logits, False if it holds probabilities.
        label_smoothing: ``ls`` in [0, 1]: targets are smoothed as in the formula above.
        axis: The class (feature) axis of ``y_pred``.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        The scalar loss, the weighted mean of the per-sample losses (Keras's
        ``"sum_over_batch_size"``).

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match; if ``label_smoothing`` is outside [0, 1].
        TypeError: For inputs that do not hold real numbers, or an option of the wrong type (e.g.
            a non-integer ``axis``).

    Examples:
        >>> import fnn
        >>> round(float(fnn.losses.binary_crossentropy([[1.0]], [[0.0]], from_logits=True)), 6)  # log 2
        0.693147
    """
    opts = {"from_logits": from_logits, "label_smoothing": label_smoothing, "axis": axis}
    return apply_kernel(binary_crossentropy_terms, y_true, y_pred, sample_weight, opts, "value")


def binary_crossentropy_grad(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
    sample_weight: ArrayLike | None = None,
) -> Array:
    """Logits: ``w_i (sigmoid(z) - t) / (n D)``; probabilities: ``w_i (p - t) / (p (1-p) n D)``
    where p is not clipped, else 0.

    The hand-written gradient of :func:`binary_crossentropy` with respect to ``y_pred`` (``jax.grad``
    of the loss gives the same, at kinks too).

    Args:
        y_true: Targets, of the shape of ``y_pred`` (a trailing axis of size 1 may be missing
            on either side: ``(N,)`` pairs with ``(N, 1)``).
        y_pred: Predictions, ``(N, D)``, or ``(N,)`` for N samples of one output each.
        from_logits: True if ``y_pred`` holds logits, False if it holds probabilities.
        label_smoothing: ``ls`` in [0, 1]: targets are smoothed as in the formula above.
        axis: The class (feature) axis of ``y_pred``.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        ``d loss / d y_pred``, of the shape of ``y_pred``.

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match; if ``label_smoothing`` is outside [0, 1].
        TypeError: For inputs that do not hold real numbers, or an option of the wrong type (e.g.
            a non-integer ``axis``).

    Examples:
        >>> import fnn
        >>> fnn.losses.binary_crossentropy_grad([[1.0]], [[0.0]], from_logits=True).tolist()
        [[-0.5]]
    """
    opts = {"from_logits": from_logits, "label_smoothing": label_smoothing, "axis": axis}
    return apply_kernel(binary_crossentropy_terms, y_true, y_pred, sample_weight, opts, "grad")


def binary_focal_crossentropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    apply_class_balancing: bool = False,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
    sample_weight: ArrayLike | None = None,
) -> Array:
    """Focal BCE (Lin et al. 2018): ``mean_i w_i mean_j a (1 - p_t)^gamma bce`` with
    ``p_t = t p + (1-t)(1-p)`` and ``a = t alpha + (1-t)(1-alpha)`` if ``apply_class_balancing``.

    Args:
        y_true: Targets, of the shape of ``y_pred`` (a trailing axis of size 1 may be missing
            on either side: ``(N,)`` pairs with ``(N, 1)``).
        y_pred: Predictions, ``(N, D)``, or ``(N,)`` for N samples of one output each.
        apply_class_balancing: Weigh by ``alpha`` (positives) and ``1 - alpha`` (negatives).
        alpha: The class-balancing weight of the positives, in [0, 1].
        gamma: The focusing parameter (>= 0); 0 gives binary cross-entropy.
        from_logits: True if ``y_pred`` holds logits, False if it holds probabilities.
        label_smoothing: ``ls`` in [0, 1]: targets are smoothed as in the formula above.
        axis: The class (feature) axis of ``y_pred``.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        The scalar loss, the weighted mean of the per-sample losses (Keras's
        ``"sum_over_batch_size"``).

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match; if ``label_smoothing`` is outside [0, 1].
        TypeError: For inputs that do not hold real numbers, or an option of the wrong type (e.g.
            a non-integer ``axis``).
    """
    opts = {
        "apply_class_balancing": apply_class_balancing,
        "alpha": alpha,
        "gamma": gamma,
        "from_logits": from_logits,
        "label_smoothing": label_smoothing,
        "axis": axis,
    }
    return apply_kernel(binary_focal_crossentropy_terms, y_true, y_pred, sample_weight, opts, "value")


def binary_focal_crossentropy_grad(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    apply_class_balancing: bool = False,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
    sample_weight: ArrayLike | None = None,
) -> Array:
    """Product rule on ``(1 - p_t)^gamma bce`` (see :func:`binary_focal_crossentropy`).

    The hand-written gradient of :func:`binary_focal_crossentropy` with respect to ``y_pred`` (``jax.grad``
    of the loss gives the same, at kinks too).

    Args:
        y_true: Targets, of the shape of ``y_pred`` (a trailing axis of size 1 may be missing
            on either side: ``(N,)`` pairs with ``(N, 1)``).
        y_pred: Predictions, ``(N, D)``, or ``(N,)`` for N samples of one output each.
        apply_class_balancing: Weigh by ``alpha`` (positives) and ``1 - alpha`` (negatives).
        alpha: The class-balancing weight of the positives, in [0, 1].
        gamma: The focusing parameter (>= 0); 0 gives binary cross-entropy.
        from_logits: True if ``y_pred`` holds logits, False if it holds probabilities.
        label_smoothing: ``ls`` in [0, 1]: targets are smoothed as in the formula above.
        axis: The class (feature) axis of ``y_pred``.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        ``d loss / d y_pred``, of the shape of ``y_pred``.

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match; if ``label_smoothing`` is outside [0, 1].
        TypeError: For inputs that do not hold real numbers, or an option of the wrong type (e.g.
            a non-integer ``axis``).
    """
    opts = {
        "apply_class_balancing": apply_class_balancing,
        "alpha": alpha,
        "gamma": gamma,
        "from_logits": from_logits,
        "label_smoothing": label_smoothing,
        "axis": axis,
    }
    return apply_kernel(binary_focal_crossentropy_terms, y_true, y_pred, sample_weight, opts, "grad")


def categorical_crossentropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
    sample_weight: ArrayLike | None = None,
) -> Array:
    """``mean_i w_i (-sum_j t_j log q_j)``, ``q = clip(p / sum p, 1e-7, 1-1e-7)`` or
    ``log q = log_softmax(y_pred)``, ``t = y_true (1 - ls) + ls / C``.

    Args:
        y_true: Targets (one-hot or probability rows), of the shape of ``y_pred``.
        y_pred: Predictions ``(N, C)``, the classes along ``axis``.
        from_logits: True if ``y_pred`` holds logits, False if it holds probabilities.
        label_smoothing: ``ls`` in [0, 1]: targets are smoothed as in the formula above.
        axis: The class (feature) axis of ``y_pred``.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        The scalar loss, the weighted mean of the per-sample losses (Keras's
        ``"sum_over_batch_size"``).

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match; if ``label_smoothing`` is outside [0, 1].
        TypeError: For inputs that do not hold real numbers, or an option of the wrong type (e.g.
            a non-integer ``axis``).
    """
    opts = {"from_logits": from_logits, "label_smoothing": label_smoothing, "axis": axis}
    return apply_kernel(categorical_crossentropy_terms, y_true, y_pred, sample_weight, opts, "value")


def categorical_crossentropy_grad(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
    sample_weight: ArrayLike | None = None,
) -> Array:
    """Logits: ``w_i (softmax(z) - t) / n`` (times ``sum t``); probabilities: through the
    renormalisation and the clip.

    The hand-written gradient of :func:`categorical_crossentropy` with respect to ``y_pred`` (``jax.grad``
    of the loss gives the same, at kinks too).

    Args:
        y_true: Targets (one-hot or probability rows), of the shape of ``y_pred``.
        y_pred: Predictions ``(N, C)``, the classes along ``axis``.
        from_logits: True if ``y_pred`` holds logits, False if it holds probabilities.
        label_smoothing: ``ls`` in [0, 1]: targets are smoothed as in the formula above.
        axis: The class (feature) axis of ``y_pred``.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        ``d loss / d y_pred``, of the shape of ``y_pred``.

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match; if ``label_smoothing`` is outside [0, 1].
        TypeError: For inputs that do not hold real numbers, or an option of the wrong type (e.g.
            a non-integer ``axis``).
    """
    opts = {"from_logits": from_logits, "label_smoothing": label_smoothing, "axis": axis}
    return apply_kernel(categorical_crossentropy_terms, y_true, y_pred, sample_weight, opts, "grad")


def sparse_categorical_crossentropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    from_logits: bool = False,
    ignore_class: int | None = None,
    axis: int = -1,
    sample_weight: ArrayLike | None = None,
) -> Array:
    """Categorical CE with integer labels ``y_true`` of shape ``(N,)`` or ``(N, 1)``. Samples
    whose label is ``ignore_class`` count 0 and the mean is over the others (Keras's mask rule:
    ``sum_i w_i m_i l_i / sum_i m_i``, 0 when every sample is ignored).

    Args:
        y_true: Integer class ids, shape ``(N,)`` or ``(N, 1)``, in ``[0, C)`` (or equal to
            ``ignore_class``).
        y_pred: Predictions ``(N, C)``, the classes along ``axis``.
        from_logits: True if ``y_pred`` holds logits, False if it holds probabilities.
        ignore_class: A label whose samples count 0 (None: every sample counts).
        axis: The class (feature) axis of ``y_pred``.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        The scalar loss, the weighted mean of the per-sample losses (Keras's
        ``"sum_over_batch_size"``).

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match; if a concrete label is not an integer in ``[0, C)``.
        TypeError: For inputs that do not hold real numbers, or an option of the wrong type (e.g.
            a non-integer ``axis``).

    Examples:
        >>> import fnn
        >>> loss = fnn.losses.sparse_categorical_crossentropy([0, 1], [[0.0, 0.0], [0.0, 0.0]], from_logits=True)
        >>> round(float(loss), 6)  # log 2: two classes, equal logits
        0.693147
    """
    opts = {"from_logits": from_logits, "ignore_class": ignore_class, "axis": axis}
    return apply_kernel(sparse_categorical_crossentropy_terms, y_true, y_pred, sample_weight, opts, "value")


def sparse_categorical_crossentropy_grad(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    from_logits: bool = False,
    ignore_class: int | None = None,
    axis: int = -1,
    sample_weight: ArrayLike | None = None,
) -> Array:
    """Logits: ``w_i (softmax(z) - onehot(y)) / n``; ignored samples get 0.

    The hand-written gradient of :func:`sparse_categorical_crossentropy` with respect to ``y_pred`` (``jax.grad``
    of the loss gives the same, at kinks too).

    Args:
        y_true: Integer class ids, shape ``(N,)`` or ``(N, 1)``, in ``[0, C)`` (or equal to
            ``ignore_class``).
        y_pred: Predictions ``(N, C)``, the classes along ``axis``.
        from_logits: True if ``y_pred`` holds logits, False if it holds probabilities.
        ignore_class: A label whose samples count 0 (None: every sample counts).
        axis: The class (feature) axis of ``y_pred``.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        ``d loss / d y_pred``, of the shape of ``y_pred``.

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match; if a concrete label is not an integer in ``[0, C)``.
        TypeError: For inputs that do not hold real numbers, or an option of the wrong type (e.g.
            a non-integer ``axis``).

    Examples:
        >>> import fnn
        >>> fnn.losses.sparse_categorical_crossentropy_grad([0], [[0.0, 0.0]], from_logits=True).tolist()
        [[-0.5, 0.5]]
    """
    opts = {"from_logits": from_logits, "ignore_class": ignore_class, "axis": axis}
    return apply_kernel(sparse_categorical_crossentropy_terms, y_true, y_pred, sample_weight, opts, "grad")
