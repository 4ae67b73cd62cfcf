"""Categorical cross-entropy reshaped for hard or noisy samples: the focal one (Lin et al. 2018),
``-(1 - q)^gamma log q`` per class, and the generalized one (Zhang and Sabuncu 2018),
``(1 - p^q) / q`` of the true class's probability; each kernel beside its hand-written derivative
with respect to ``y_pred``, and their public functions. See :mod:`fnn.losses` for the rules they
share.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from fnn.losses._checks import check_class_count, check_option_range, label_inputs, per_class_option
from fnn.losses._kernels import (
    focal_factor,
    renormalised,
    smoothed_classes,
    through_renormalisation,
)
from fnn.losses._reduction import Terms, apply_kernel

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


def categorical_focal_crossentropy_terms(y_true, y_pred, alpha, gamma, from_logits, label_smoothing, axis) -> Terms:
    """``t' = t (1 - ls) + ls / C``, ``a = alpha t'``; ``l = sum_j a_j (1 - q_j)^gamma (-log q_j)``.

    Probabilities: ``q = clip(p / S, eps, 1-eps)`` as in categorical CE, ``u_j = dl/dq_j =
    a_j (gamma (1-q_j)^(gamma-1) log q_j - (1-q_j)^gamma / q_j)`` (0 where clipped), through the
    renormalisation. Logits: ``log q = log_softmax(z)`` (no clip), ``h_j = q_j dl/dq_j =
    a_j (gamma (1-q_j)^(gamma-1) q_j log q_j - (1-q_j)^gamma)`` and ``dl/dz = h - q sum_j h_j``,
    finite at saturated logits for every gamma (``-h`` is ``t' - q``'s focal form: gamma = 0,
    alpha = 1 gives categorical CE's ``sum(t') q - t'``)."""
    loss = "categorical_focal_crossentropy"
    alpha = per_class_option(alpha, "alpha", loss)
    check_option_range(gamma, "gamma", loss)
    t, p, ax = smoothed_classes(y_true, y_pred, label_smoothing, axis, loss)
    check_class_count(alpha, "alpha", loss, p.shape[-1], ax == p.ndim - 1)
    # alpha may be one per class, (C,) against (N, C) (Keras broadcasts it against the last axis):
    # written out, as jax_numpy_rank_promotion="raise" requires
    a = t * jnp.broadcast_to(jnp.asarray(alpha, t.dtype) if isinstance(alpha, tuple) else alpha, t.shape)
    if from_logits:
        logq = jax.nn.log_softmax(p, axis=ax)
        q = jnp.exp(logq)
        f, df = focal_factor(-jnp.expm1(logq), gamma)
        # a class of target 0 adds nothing, even at a logit of -inf (as categorical CE's)
        e = jnp.where(a == 0, 0.0, a * f * -logq)
        h = jnp.where(a == 0, 0.0, a * (df * q * logq - f))
        return Terms(jnp.sum(e, axis=ax), h - q * jnp.sum(h, axis=ax, keepdims=True), ax)
    total, r, c, inside = renormalised(p, ax)
    f, df = focal_factor(1 - c, gamma)
    logc = jnp.log(c)
    u = jnp.where(inside, a * (df * logc - f / c), 0.0)
    return Terms(-jnp.sum(a * f * logc, axis=ax), through_renormalisation(u, total, r, ax), ax)


def categorical_generalized_cross_entropy_terms(y_true, y_pred, q) -> Terms:
    """``p_y`` = the prediction of the true class; ``l = (1 - p_y^q) / q``; ``dl/dp = -p_y^(q-1)``
    at the true class, 0 elsewhere (no clip, as Keras's: infinite at ``p_y = 0``)."""
    loss = "categorical_generalized_cross_entropy"
    check_option_range(q, "q", loss)
    labels, p, ax = label_inputs(y_true, y_pred, -1, None, loss)
    p_y = jnp.take_along_axis(p, labels[..., None], axis=ax)
    true_class = jax.nn.one_hot(labels, p.shape[ax], dtype=jnp.bool_)
    dper = jnp.where(true_class, -(p_y ** (q - 1)), 0.0)
    return Terms((1 - jnp.squeeze(p_y, ax) ** q) / q, dper, ax)


def categorical_focal_crossentropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    alpha: ArrayLike | Sequence[float] = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
    sample_weight: ArrayLike | None = None,
) -> Array:
    """Focal categorical CE (Lin et al. 2018): ``mean_i w_i sum_j alpha t_j (1 - q_j)^gamma (-log q_j)``
    with ``q = clip(p / sum p, 1e-7, 1-1e-7)`` (or ``log q = log_softmax(y_pred)``, unclipped),
    ``t = y_true (1 - ls) + ls / C``.

    Args:
        y_true: Targets (one-hot or probability rows), of the shape of ``y_pred``.
        y_pred: Predictions ``(N, C)``, the classes along ``axis``.
        alpha: The weight of every class, >= 0: a float, or one per class (a list, tuple or 1-D
            array of ``C`` values, against the last axis, as Keras broadcasts it).
        gamma: The focusing parameter (>= 0); 0 with ``alpha=1`` gives categorical cross-entropy.
        from_logits: True if ``y_pred`` holds logits, False if it holds probabilities.
        label_smoothing: ``ls`` in [0, 1]: targets are smoothed as in the formula above.
        axis: The class axis of ``y_pred``.
        sample_weight: Optional per-sample weights ``w_i``: ``(N,)``, a scalar or the per-sample
            shape (default 1).

    Returns:
        The scalar loss: Keras's ``"sum_over_batch_size"`` mean of the weighted per-sample losses.

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match; if ``alpha`` or ``gamma`` is negative or ``label_smoothing`` outside [0, 1]; if
            ``alpha`` is not 1-D or holds neither one value nor one per class.
        TypeError: For inputs that do not hold real numbers, or an option of the wrong type (e.g.
            a non-integer ``axis``).

    Examples:
        >>> import fnn
        >>> t, p = [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]]
        >>> round(float(fnn.losses.categorical_focal_crossentropy(t, p)), 6)  # Keras: 0.23315276
        0.233153
    """
    alpha = per_class_option(alpha, "alpha", "categorical_focal_crossentropy")  # a list: hashable
    opts = {"alpha": alpha, "gamma": gamma, "from_logits": from_logits, "label_smoothing": label_smoothing}
    return apply_kernel(
        categorical_focal_crossentropy_terms, y_true, y_pred, sample_weight, {**opts, "axis": axis}, "value"
    )


def categorical_focal_crossentropy_grad(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    alpha: ArrayLike | Sequence[float] = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
    sample_weight: ArrayLike | None = None,
) -> Array:
    """Logits: ``w_i (h - q sum_j h_j) / n`` with ``h_j = alpha t_j (gamma (1-q_j)^(gamma-1) q_j
    log q_j - (1-q_j)^gamma)``; probabilities: the product rule through the renormalisation and
    the clip (0 where clipped).

    The hand-written gradient of :func:`categorical_focal_crossentropy` with respect to ``y_pred``
    (``jax.grad`` of the loss gives the same); it takes that function's arguments and raises
    its errors.

    Returns:
        ``d loss / d y_pred``, of the shape of ``y_pred``.
    """
    alpha = per_class_option(alpha, "alpha", "categorical_focal_crossentropy")  # a list: hashable
    opts = {"alpha": alpha, "gamma": gamma, "from_logits": from_logits, "label_smoothing": label_smoothing}
    return apply_kernel(
        categorical_focal_crossentropy_terms, y_true, y_pred, sample_weight, {**opts, "axis": axis}, "grad"
    )


def categorical_generalized_cross_entropy(
    y_true: ArrayLike, y_pred: ArrayLike, q: float = 0.5, sample_weight: ArrayLike | None = None
) -> Array:
    """Generalized CE (Zhang and Sabuncu 2018): ``mean_i w_i (1 - p_i^q) / q``, ``p_i`` the
    prediction of sample i's true class (integer labels): cross-entropy as ``q -> 0``, MAE-like
    (robust to noisy labels) as ``q -> 1``.

    Args:
        y_true: Integer class ids, shape ``(N,)`` or ``(N, 1)``, in ``[0, C)``.
        y_pred: Probabilities ``(N, C)`` (a softmax output; not renormalised or clipped, as in
            Keras: a true class's probability of 0 has an infinite gradient).
        q: The noise parameter, in (0, 1).
        sample_weight: Optional per-sample weights ``w_i``: ``(N,)``, a scalar or the per-sample
            shape (default 1).

    Returns:
        The scalar loss: Keras's ``"sum_over_batch_size"`` mean of the weighted per-sample losses.

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match; if a concrete label is not an integer in ``[0, C)``; if ``q`` is outside (0, 1).
        TypeError: For inputs that do not hold real numbers, or a ``q`` that is not a number.

    Examples:
        >>> import fnn
        >>> p = [[0.7, 0.3], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6]]
        >>> round(float(fnn.losses.categorical_generalized_cross_entropy([0, 1, 0, 1], p)), 6)  # as Keras's
        0.35986
    """
    return apply_kernel(categorical_generalized_cross_entropy_terms, y_true, y_pred, sample_weight, {"q": q}, "value")


def categorical_generalized_cross_entropy_grad(
    y_true: ArrayLike, y_pred: ArrayLike, q: float = 0.5, sample_weight: ArrayLike | None = None
) -> Array:
    """``-w_i p_i^(q-1) / n`` at each sample's true class, 0 elsewhere.

    The hand-written gradient of :func:`categorical_generalized_cross_entropy` with respect to ``y_pred``
    (``jax.grad`` of the loss gives the same); it takes that function's arguments and raises
    its errors.

    Returns:
        ``d loss / d y_pred``, of the shape of ``y_pred``.
    """
    return apply_kernel(categorical_generalized_cross_entropy_terms, y_true, y_pred, sample_weight, {"q": q}, "grad")
