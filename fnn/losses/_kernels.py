"""The numerics of :mod:`fnn.losses`: each loss's per-sample value beside its hand-written
derivative with respect to ``y_pred`` (a "kernel"); the checks of their inputs are in ``_checks.py``.

A kernel returns ``Terms`` ``(l_i, dl_i/dy_pred, axis, valid)``; the one reduction they all
share (``apply_kernel``, in ``_reduction.py``) turns them into Keras's
``"sum_over_batch_size"`` scalar and its gradient. The rules (clipping at ``EPSILON``, kinks,
Keras departures) are in :mod:`fnn.losses`'s docstring; the public functions, ``Loss`` and
``get`` live there.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from fnn.losses._checks import (
    check_option_range,
    elementwise,
    label_inputs,
    norm_axis,
    pair,
)
from fnn.losses._reduction import Terms

Array = jax.Array

EPSILON = 1e-7  # keras.backend.epsilon()
"""The clip of probabilities, ``[EPSILON, 1 - EPSILON]``, and the floor of norms and divisors
(``keras.backend.epsilon()``)."""
_LOG2 = math.log(2.0)


# ---------------------------------------------------------------------------------------------
# Shared helpers: clipping, the per-sample mean.
# ---------------------------------------------------------------------------------------------


def _clip(x: Array, lo: float, hi: float) -> tuple[Array, Array]:
    """``(clip(x, lo, hi), lo <= x <= hi)``; as a select, so jax.grad passes 1 on the closed interval."""
    return jnp.where(x < lo, lo, jnp.where(x > hi, hi, x)), (x >= lo) & (x <= hi)


def _mean_terms(e: Array, de: Array, axis: int | None) -> Terms:
    """Per-sample mean of an elementwise loss ``e`` over ``axis`` (d/dp: ``de / D``)."""
    if axis is None:
        return Terms(e, de, None)
    return Terms(jnp.mean(e, axis=axis), de / e.shape[axis], axis)


# ---------------------------------------------------------------------------------------------
# Kernels: per-sample loss l_i and its derivative d l_i / d y_pred, side by side.
# ---------------------------------------------------------------------------------------------


def mse_terms(y_true, y_pred) -> Terms:
    """``l = mean_j (p - t)^2``;  ``dl/dp = 2 (p - t) / D``."""
    t, p, axis = elementwise(y_true, y_pred, "mean_squared_error")
    d = p - t
    return _mean_terms(d * d, 2 * d, axis)


def mae_terms(y_true, y_pred) -> Terms:
    """``l = mean_j |p - t|``;  ``dl/dp = sign(p - t) / D`` (+1 at p == t)."""
    t, p, axis = elementwise(y_true, y_pred, "mean_absolute_error")
    d = p - t
    return _mean_terms(jnp.abs(d), jnp.where(d >= 0, 1.0, -1.0).astype(p.dtype), axis)


def mape_terms(y_true, y_pred) -> Terms:
    """``l = 100 mean_j |p - t| / max(|t|, eps)``;  ``dl/dp = 100 sign(p - t) / (max(|t|, eps) D)``."""
    t, p, axis = elementwise(y_true, y_pred, "mean_absolute_percentage_error")
    d, scale = p - t, 100.0 / jnp.maximum(jnp.abs(t), EPSILON)
    return _mean_terms(scale * jnp.abs(d), scale * jnp.where(d >= 0, 1.0, -1.0), axis)


def msle_terms(y_true, y_pred) -> Terms:
    """``l = mean_j (log(1 + max(p, eps)) - log(1 + max(t, eps)))^2``;
    ``dl/dp = 2 r / ((1 + p) D)`` where p >= eps, else 0 (r is the log ratio)."""
    t, p, axis = elementwise(y_true, y_pred, "mean_squared_logarithmic_error")
    pc, inside = _clip(p, EPSILON, jnp.inf)
    r = jnp.log1p(pc) - jnp.log1p(jnp.maximum(t, EPSILON))
    return _mean_terms(r * r, jnp.where(inside, 2 * r / (1 + pc), 0.0), axis)


def huber_terms(y_true, y_pred, delta) -> Terms:
    """``e = p - t``; ``l = mean_j (e^2/2 if |e| <= delta else delta |e| - delta^2/2)``;
    ``dl/dp = (e if |e| <= delta else delta sign(e)) / D``."""
    check_option_range(delta, "delta", "huber")
    t, p, axis = elementwise(y_true, y_pred, "huber")
    e = p - t
    a = jnp.abs(e)
    quad = a <= delta
    loss = jnp.where(quad, 0.5 * e * e, delta * a - 0.5 * delta * delta)
    return _mean_terms(loss, jnp.where(quad, e, delta * jnp.sign(e)), axis)


def log_cosh_terms(y_true, y_pred) -> Terms:
    """``l = mean_j log cosh(e)``, ``e = p - t``, as ``|e| + softplus(-2|e|) - log 2`` (Keras's
    ``e + softplus(-2e) - log 2`` overflows for e < 0 once -2e does, and is NaN at -inf);
    ``dl/dp = tanh(e) / D``."""
    t, p, axis = elementwise(y_true, y_pred, "log_cosh")
    e = p - t
    a = jnp.abs(e)
    return _mean_terms(a + jax.nn.softplus(-2.0 * a) - _LOG2, jnp.tanh(e), axis)


def poisson_terms(y_true, y_pred) -> Terms:
    """``l = mean_j (p - t log(p + eps))``;  ``dl/dp = (1 - t / (p + eps)) / D``."""
    t, p, axis = elementwise(y_true, y_pred, "poisson")
    return _mean_terms(p - t * jnp.log(p + EPSILON), 1 - t / (p + EPSILON), axis)


def _hinge_labels(t: Array) -> Array:
    # Keras converts {0, 1} labels to {-1, 1} when every label of the batch is 0 or 1.
    binary = jnp.all((t == 0) | (t == 1))
    return jnp.where(binary, 2 * t - 1, t)


def _positive_part(m: Array, d: Array) -> tuple[Array, Array]:
    """``max(m, 0)`` and ``d [m > 0]`` (0 at the kink), a NaN ``m`` kept NaN in both: a diverged
    prediction must not read as a loss of 0 (Keras's ``maximum`` keeps it; ``TerminateOnNaN`` and
    fit's warning look for it)."""
    return jnp.maximum(m, 0.0), jnp.where(m > 0, d, jnp.where(jnp.isnan(m), m, 0.0))


def hinge_terms(y_true, y_pred) -> Terms:
    """``m = 1 - t p``; ``l = mean_j max(m, 0)``;  ``dl/dp = -t [m > 0] / D`` (t in {-1, 1})."""
    t, p, axis = elementwise(y_true, y_pred, "hinge")
    t = _hinge_labels(t)
    return _mean_terms(*_positive_part(1 - t * p, -t), axis)


def squared_hinge_terms(y_true, y_pred) -> Terms:
    """``l = mean_j max(1 - t p, 0)^2``;  ``dl/dp = -2 t max(1 - t p, 0) / D`` (t in {-1, 1})."""
    t, p, axis = elementwise(y_true, y_pred, "squared_hinge")
    t = _hinge_labels(t)
    h = jnp.maximum(1 - t * p, 0.0)  # NaN kept (see _positive_part)
    return _mean_terms(h * h, -2 * t * h, axis)


def _bce_probs(t: Array, p: Array) -> tuple[Array, Array]:
    """``c = clip(p, eps, 1-eps)``; ``e = -(t log c + (1-t) log(1-c))``; ``de/dp = (c-t)/(c(1-c))`` inside."""
    c, inside = _clip(p, EPSILON, 1.0 - EPSILON)
    e = -(t * jnp.log(c) + (1 - t) * jnp.log(1 - c))
    return e, jnp.where(inside, (c - t) / (c * (1 - c)), 0.0)


def _bce_logits(t: Array, z: Array) -> tuple[Array, Array, Array]:
    """``e = -t log sig(z) - (1-t) log sig(-z) = max(z, 0) - t z + log1p(exp(-|z|))``;
    ``de/dz = sig(z) - t``. One exp and one log1p serve the value, sigmoid and gradient."""
    u = jnp.exp(-jnp.abs(z))
    e = jnp.maximum(z, 0.0) - t * z + jnp.log1p(u)
    s = jnp.where(z >= 0, 1.0, u) / (1 + u)
    return e, s - t, s


def binary_crossentropy_terms(y_true, y_pred, from_logits, label_smoothing, axis) -> Terms:
    """``t' = t (1 - ls) + ls / 2``; ``l = mean_j e(t', p)`` with ``e`` from ``_bce_probs``
    or ``_bce_logits`` (then ``dl/dz = (sigmoid(z) - t') / D``)."""
    check_option_range(label_smoothing, "label_smoothing", "binary_crossentropy")
    t, p, ax = elementwise(y_true, y_pred, "binary_crossentropy", axis)
    t = t * (1 - label_smoothing) + 0.5 * label_smoothing
    e, de = _bce_logits(t, p)[:2] if from_logits else _bce_probs(t, p)
    return _mean_terms(e, de, ax)


def focal_factor(q: Array, gamma) -> tuple[Array, Array]:
    """``(q^gamma, gamma q^(gamma-1))``; at q = 0 the derivative is 1 for gamma = 1, else 0
    (q = 0 only where sigmoid has saturated, so for gamma < 1 this is the limit, not inf)."""
    nonzero = q != 0
    q_safe = jnp.where(nonzero, q, 1.0)
    dq = jnp.where(nonzero, gamma * q_safe ** (gamma - 1), jnp.where(gamma == 1, 1.0, 0.0))
    return q**gamma, dq


def binary_focal_crossentropy_terms(
    y_true, y_pred, apply_class_balancing, alpha, gamma, from_logits, label_smoothing, axis
) -> Terms:
    """``t' = t (1 - ls) + ls / 2``; ``s = p`` (or ``sigmoid(z)``); ``p_t = t' s + (1-t')(1-s)``;
    ``l = mean_j w (1 - p_t)^gamma bce(t', s)``, ``w = t' alpha + (1-t')(1-alpha)`` if balancing else 1;
    ``dl/dp = w (-gamma (1-p_t)^(gamma-1) (2t'-1) s' bce + (1-p_t)^gamma dbce) / D``,
    with ``s' = 1`` (probabilities) or ``s (1 - s)`` (logits)."""
    for option, value in (("label_smoothing", label_smoothing), ("alpha", alpha), ("gamma", gamma)):
        check_option_range(value, option, "binary_focal_crossentropy")
    t, p, ax = elementwise(y_true, y_pred, "binary_focal_crossentropy", axis)
    t = t * (1 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        bce, dbce, s = _bce_logits(t, p)
        ds = s * (1 - s)
    else:
        (bce, dbce), s, ds = _bce_probs(t, p), p, jnp.ones((), p.dtype)
    q = 1 - (t * s + (1 - t) * (1 - s))
    f, df = focal_factor(q, gamma)
    e, de = f * bce, f * dbce - df * (2 * t - 1) * ds * bce
    if apply_class_balancing:
        # alpha may be one per output, (C,) against (N, C): broadcast written out, as
        # jax_numpy_rank_promotion="raise" requires (a Python number keeps its weak type)
        alpha = jnp.broadcast_to(alpha, t.shape)
        w = t * alpha + (1 - t) * (1 - alpha)
        e, de = w * e, w * de
    return _mean_terms(e, de, ax)


def _cross_entropy(t: Array, p: Array, from_logits: bool, axis: int) -> tuple[Array, Array]:
    """Per-sample ``-sum_j t_j log q_j`` and its derivative.

    Logits: ``log q = log_softmax(z)``; ``dl/dz = sum(t) softmax(z) - t`` (``softmax(z) - t``
    for targets summing to 1), from the one log_softmax. Probabilities: ``q = clip(p / S, eps,
    1-eps)``, ``S = sum_j p_j``; with ``u = -t / q`` (0 where clipped), ``dl/dp = (u - sum(u p / S)) / S``.
    """
    if from_logits:
        logq = jax.nn.log_softmax(p, axis=axis)
        # a class of target 0 adds nothing, even at a logit of -inf (0 * -inf would be NaN; torch
        # and optax give the finite value too)
        per = -jnp.sum(jnp.where(t == 0, 0.0, t * logq), axis=axis)
        return per, jnp.sum(t, axis=axis, keepdims=True) * jnp.exp(logq) - t
    total, r, q, inside = renormalised(p, axis)
    per = -jnp.sum(t * jnp.log(q), axis=axis)
    return per, through_renormalisation(jnp.where(inside, -t / q, 0.0), total, r, axis)


def renormalised(p: Array, axis: int) -> tuple[Array, Array, Array, Array]:
    """Keras's probabilities of a categorical loss: ``(S, r, q, inside)`` with ``S = sum_j p_j``,
    ``r = p / S`` and ``q = clip(r, eps, 1-eps)`` (``inside``: where r is not clipped)."""
    total = jnp.sum(p, axis=axis, keepdims=True)
    r = p / total
    return (total, r, *_clip(r, EPSILON, 1.0 - EPSILON))


def through_renormalisation(u: Array, total: Array, r: Array, axis: int) -> Array:
    """``dl/dp`` from ``u = dl/dq`` (0 where clipped) through ``q = p / S``: ``(u - sum_j u_j r_j) / S``."""
    return (u - jnp.sum(u * r, axis=axis, keepdims=True)) / total


def categorical_crossentropy_terms(y_true, y_pred, from_logits, label_smoothing, axis) -> Terms:
    """``t' = t (1 - ls) + ls / C``; ``l = -sum_j t'_j log q_j`` (see ``_cross_entropy``)."""
    t, p, ax = smoothed_classes(y_true, y_pred, label_smoothing, axis, "categorical_crossentropy")
    per, dper = _cross_entropy(t, p, from_logits, ax)
    return Terms(per, dper, ax)


def smoothed_classes(y_true, y_pred, label_smoothing, axis, loss: str) -> tuple[Array, Array, int]:
    """``(t', p, class axis)`` of a categorical loss, ``t' = t (1 - ls) + ls / C``."""
    check_option_range(label_smoothing, "label_smoothing", loss)
    t, p, ax = _class_axis(y_true, y_pred, loss, axis)
    return t * (1 - label_smoothing) + label_smoothing / p.shape[ax], p, ax


def sparse_categorical_crossentropy_terms(y_true, y_pred, from_logits, ignore_class, axis) -> Terms:
    """``l_i = -log q_{i, y_i}`` (``q`` as in ``_cross_entropy``); with ``ignore_class``, samples
    labelled so give ``l_i = 0``, zero gradient, and the mean runs over the other samples."""
    labels, p, ax = label_inputs(y_true, y_pred, axis, ignore_class, "sparse_categorical_crossentropy")
    valid = None if ignore_class is None else labels != ignore_class
    if valid is not None:
        labels = jnp.where(valid, labels, 0)
    t = jax.nn.one_hot(labels, p.shape[ax], dtype=p.dtype, axis=ax)
    per, dper = _cross_entropy(t, p, from_logits, ax)
    if valid is not None:
        per = jnp.where(valid, per, 0.0)
        dper = jnp.where(jnp.expand_dims(valid, ax), dper, 0.0)
    return Terms(per, dper, ax, valid)


def _class_axis(y_true, y_pred, loss: str, axis: int = -1):
    t, p = pair(y_true, y_pred, loss)
    return t, p, norm_axis(axis, p.ndim, loss)


def kl_divergence_terms(y_true, y_pred) -> Terms:
    """``t' = clip(t, eps, 1)``, ``q = clip(p, eps, 1)``; ``l = sum_j t' log(t' / q)``;
    ``dl/dp = -t' / q`` where eps <= p <= 1, else 0."""
    t, p, ax = _class_axis(y_true, y_pred, "kl_divergence")
    t = jnp.clip(t, EPSILON, 1.0)
    q, inside = _clip(p, EPSILON, 1.0)
    return Terms(jnp.sum(t * jnp.log(t / q), axis=ax), jnp.where(inside, -t / q, 0.0), ax)


def categorical_hinge_terms(y_true, y_pred) -> Terms:
    """``pos = sum_j t p``, ``neg = max_j (1 - t) p``; ``l = max(neg - pos + 1, 0)``;
    ``dl/dp = [l > 0] ((1 - t) 1[argmax] / #ties - t)``."""
    t, p, ax = _class_axis(y_true, y_pred, "categorical_hinge")
    r = (1 - t) * p
    neg = jnp.max(r, axis=ax, keepdims=True)
    m = jnp.squeeze(neg, ax) - jnp.sum(t * p, axis=ax) + 1
    at_max = (r == neg).astype(p.dtype)
    d = (1 - t) * at_max / jnp.sum(at_max, axis=ax, keepdims=True) - t
    value, _ = _positive_part(m, m)
    return Terms(value, _positive_part(jnp.expand_dims(m, ax), d)[1], ax)


def cosine_similarity_terms(y_true, y_pred, axis) -> Terms:
    """``t^ = t / max(|t|, eps)``, ``n = max(|p|, eps)``, ``p^ = p / n``; ``l = -sum_j t^ p^``
    (Keras returns the negative cosine); ``dl/dp = -(t^ - [|p| > eps] (t^ . p^) p^) / n``."""
    t, p, ax = _class_axis(y_true, y_pred, "cosine_similarity", axis)
    eps2 = EPSILON * EPSILON
    t_sq = jnp.sum(t * t, axis=ax, keepdims=True)
    t_hat = t / jnp.sqrt(jnp.where(t_sq > eps2, t_sq, eps2))
    p_sq = jnp.sum(p * p, axis=ax, keepdims=True)
    active = p_sq > eps2
    n = jnp.sqrt(jnp.where(active, p_sq, eps2))
    p_hat = p / n
    cos = jnp.sum(t_hat * p_hat, axis=ax, keepdims=True)
    dper = -(t_hat - jnp.where(active, cos, 0.0) * p_hat) / n
    return Terms(-jnp.squeeze(cos, ax), dper, ax)
