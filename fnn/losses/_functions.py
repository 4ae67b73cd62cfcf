"""The loss functions, each beside its hand-written gradient with respect to ``y_pred``
(``name(y_true, y_pred, ...)`` and ``name_grad(y_true, y_pred, ...)``); the numerics are the
kernels of ``_kernels.py``. See :mod:`fnn.losses` for the rules they share.
"""

from __future__ import annotations

import jax

from fnn.losses._kernels import (
    apply_kernel,
    binary_crossentropy_terms,
    binary_focal_crossentropy_terms,
    categorical_crossentropy_terms,
    categorical_hinge_terms,
    cosine_similarity_terms,
    hinge_terms,
    huber_terms,
    kl_divergence_terms,
    log_cosh_terms,
    mae_terms,
    mape_terms,
    mse_terms,
    msle_terms,
    poisson_terms,
    sparse_categorical_crossentropy_terms,
    squared_hinge_terms,
)

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

# ---------------------------------------------------------------------------------------------
# Public loss functions and their gradients with respect to y_pred.
# ---------------------------------------------------------------------------------------------


def mean_squared_error(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
    """``mean_i w_i mean_j (y_pred_ij - y_true_ij)^2``.

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
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).

    Examples:
        >>> import fnn
        >>> float(fnn.losses.mean_squared_error([[0.0, 0.0]], [[1.0, 3.0]]))
        5.0
    """
    return apply_kernel(mse_terms, y_true, y_pred, sample_weight, {}, "value")


def mean_squared_error_grad(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
    """``2 w_i (y_pred - y_true) / (n D)``.

    The hand-written gradient of :func:`mean_squared_error` with respect to ``y_pred`` (``jax.grad``
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
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).

    Examples:
        >>> import fnn
        >>> fnn.losses.mean_squared_error_grad([[0.0, 0.0]], [[1.0, 3.0]]).tolist()
        [[1.0, 3.0]]
    """
    return apply_kernel(mse_terms, y_true, y_pred, sample_weight, {}, "grad")


def mean_absolute_error(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
    """``mean_i w_i mean_j |y_pred_ij - y_true_ij|``.

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
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).
    """
    return apply_kernel(mae_terms, y_true, y_pred, sample_weight, {}, "value")


def mean_absolute_error_grad(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
    """``w_i sign(y_pred - y_true) / (n D)`` (+1 at a tie).

    The hand-written gradient of :func:`mean_absolute_error` with respect to ``y_pred`` (``jax.grad``
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
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).
    """
    return apply_kernel(mae_terms, y_true, y_pred, sample_weight, {}, "grad")


def mean_absolute_percentage_error(
    y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None
) -> Array:
    """``100 mean_i w_i mean_j |y_pred - y_true| / max(|y_true|, 1e-7)``.

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
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).
    """
    return apply_kernel(mape_terms, y_true, y_pred, sample_weight, {}, "value")


def mean_absolute_percentage_error_grad(
    y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None
) -> Array:
    """``100 w_i sign(y_pred - y_true) / (max(|y_true|, 1e-7) n D)``.

    The hand-written gradient of :func:`mean_absolute_percentage_error` with respect to ``y_pred`` (``jax.grad``
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
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).
    """
    return apply_kernel(mape_terms, y_true, y_pred, sample_weight, {}, "grad")


def mean_squared_logarithmic_error(
    y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None
) -> Array:
    """``mean_i w_i mean_j (log(1 + max(y_pred, 1e-7)) - log(1 + max(y_true, 1e-7)))^2``.

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
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).
    """
    return apply_kernel(msle_terms, y_true, y_pred, sample_weight, {}, "value")


def mean_squared_logarithmic_error_grad(
    y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None
) -> Array:
    """``2 w_i r / ((1 + y_pred) n D)`` where ``y_pred >= 1e-7`` (0 below); r the log ratio.

    The hand-written gradient of :func:`mean_squared_logarithmic_error` with respect to ``y_pred`` (``jax.grad``
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
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).
    """
    return apply_kernel(msle_terms, y_true, y_pred, sample_weight, {}, "grad")


def huber(y_true: ArrayLike, y_pred: ArrayLike, delta: float = 1.0, sample_weight: ArrayLike | None = None) -> Array:
    """Huber: quadratic ``e^2/2`` for ``|e| <= delta``, linear ``delta |e| - delta^2/2`` beyond.

    Args:
        y_true: Targets, of the shape of ``y_pred`` (a trailing axis of size 1 may be missing
            on either side: ``(N,)`` pairs with ``(N, 1)``).
        y_pred: Predictions, ``(N, D)``, or ``(N,)`` for N samples of one output each.
        delta: Where the quadratic part ends and the linear part begins (> 0).
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        The scalar loss, the weighted mean of the per-sample losses (Keras's
        ``"sum_over_batch_size"``).

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match.
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).
    """
    return apply_kernel(huber_terms, y_true, y_pred, sample_weight, {"delta": delta}, "value")


def huber_grad(
    y_true: ArrayLike, y_pred: ArrayLike, delta: float = 1.0, sample_weight: ArrayLike | None = None
) -> Array:
    """``w_i clip(y_pred - y_true, -delta, delta) / (n D)``.

    The hand-written gradient of :func:`huber` with respect to ``y_pred`` (``jax.grad``
    of the loss gives the same, at kinks too).

    Args:
        y_true: Targets, of the shape of ``y_pred`` (a trailing axis of size 1 may be missing
            on either side: ``(N,)`` pairs with ``(N, 1)``).
        y_pred: Predictions, ``(N, D)``, or ``(N,)`` for N samples of one output each.
        delta: Where the quadratic part ends and the linear part begins (> 0).
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        ``d loss / d y_pred``, of the shape of ``y_pred``.

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match.
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).
    """
    return apply_kernel(huber_terms, y_true, y_pred, sample_weight, {"delta": delta}, "grad")


def log_cosh(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
    """``mean_i w_i mean_j log cosh(y_pred - y_true)``, overflow-free.

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
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).
    """
    return apply_kernel(log_cosh_terms, y_true, y_pred, sample_weight, {}, "value")


def log_cosh_grad(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
    """``w_i tanh(y_pred - y_true) / (n D)``.

    The hand-written gradient of :func:`log_cosh` with respect to ``y_pred`` (``jax.grad``
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
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).
    """
    return apply_kernel(log_cosh_terms, y_true, y_pred, sample_weight, {}, "grad")


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
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).

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
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).

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
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).
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
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).
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
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).
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
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).
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
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).

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
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).

    Examples:
        >>> import fnn
        >>> fnn.losses.sparse_categorical_crossentropy_grad([0], [[0.0, 0.0]], from_logits=True).tolist()
        [[-0.5, 0.5]]
    """
    opts = {"from_logits": from_logits, "ignore_class": ignore_class, "axis": axis}
    return apply_kernel(sparse_categorical_crossentropy_terms, y_true, y_pred, sample_weight, opts, "grad")


def kl_divergence(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
    """``mean_i w_i sum_j t log(t / p)``, t and p clipped to [1e-7, 1].

    Args:
        y_true: Targets (one-hot or probability rows), of the shape of ``y_pred``.
        y_pred: Predictions ``(N, C)``, the classes along ``axis``.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        The scalar loss, the weighted mean of the per-sample losses (Keras's
        ``"sum_over_batch_size"``).

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match.
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).
    """
    return apply_kernel(kl_divergence_terms, y_true, y_pred, sample_weight, {}, "value")


def kl_divergence_grad(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
    """``-w_i t / (p n)`` where p is not clipped, else 0.

    The hand-written gradient of :func:`kl_divergence` with respect to ``y_pred`` (``jax.grad``
    of the loss gives the same, at kinks too).

    Args:
        y_true: Targets (one-hot or probability rows), of the shape of ``y_pred``.
        y_pred: Predictions ``(N, C)``, the classes along ``axis``.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        ``d loss / d y_pred``, of the shape of ``y_pred``.

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match.
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).
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
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).
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
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).
    """
    return apply_kernel(poisson_terms, y_true, y_pred, sample_weight, {}, "grad")


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
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).
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
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).
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
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).
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
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).
    """
    return apply_kernel(squared_hinge_terms, y_true, y_pred, sample_weight, {}, "grad")


def categorical_hinge(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
    """``mean_i w_i max(max_j (1-t) p - sum_j t p + 1, 0)``.

    Args:
        y_true: Targets (one-hot or probability rows), of the shape of ``y_pred``.
        y_pred: Predictions ``(N, C)``, the classes along ``axis``.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        The scalar loss, the weighted mean of the per-sample losses (Keras's
        ``"sum_over_batch_size"``).

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match.
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).
    """
    return apply_kernel(categorical_hinge_terms, y_true, y_pred, sample_weight, {}, "value")


def categorical_hinge_grad(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
    """``w_i [l_i > 0] ((1-t) e_argmax - t) / n`` (the max splits its gradient evenly among ties).

    The hand-written gradient of :func:`categorical_hinge` with respect to ``y_pred`` (``jax.grad``
    of the loss gives the same, at kinks too).

    Args:
        y_true: Targets (one-hot or probability rows), of the shape of ``y_pred``.
        y_pred: Predictions ``(N, C)``, the classes along ``axis``.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        ``d loss / d y_pred``, of the shape of ``y_pred``.

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match.
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).
    """
    return apply_kernel(categorical_hinge_terms, y_true, y_pred, sample_weight, {}, "grad")


def cosine_similarity(
    y_true: ArrayLike, y_pred: ArrayLike, axis: int = -1, sample_weight: ArrayLike | None = None
) -> Array:
    """``-mean_i w_i cos(y_true_i, y_pred_i)`` (NEGATIVE cosine, as Keras; norms floored at 1e-7).

    Args:
        y_true: Targets (vectors along ``axis``), of the shape of ``y_pred``.
        y_pred: Predictions ``(N, C)``, the vectors along ``axis``.
        axis: The class (feature) axis of ``y_pred``.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        The scalar loss, the weighted mean of the per-sample losses (Keras's
        ``"sum_over_batch_size"``).

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match.
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).
    """
    return apply_kernel(cosine_similarity_terms, y_true, y_pred, sample_weight, {"axis": axis}, "value")


def cosine_similarity_grad(
    y_true: ArrayLike, y_pred: ArrayLike, axis: int = -1, sample_weight: ArrayLike | None = None
) -> Array:
    """``-w_i (t^ - cos p^) / (|p| n)`` with ``t^``, ``p^`` the unit vectors.

    The hand-written gradient of :func:`cosine_similarity` with respect to ``y_pred`` (``jax.grad``
    of the loss gives the same, at kinks too).

    Args:
        y_true: Targets (vectors along ``axis``), of the shape of ``y_pred``.
        y_pred: Predictions ``(N, C)``, the vectors along ``axis``.
        axis: The class (feature) axis of ``y_pred``.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        ``d loss / d y_pred``, of the shape of ``y_pred``.

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match.
        TypeError: For an option of the wrong type (e.g. a non-integer ``axis``).
    """
    return apply_kernel(cosine_similarity_terms, y_true, y_pred, sample_weight, {"axis": axis}, "grad")
