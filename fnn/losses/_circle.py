"""Circle loss (Sun et al. 2020, Keras's ``circle``): a metric-learning loss of integer labels
and embeddings whose per-sample values each depend on the whole batch (the pairs of its rows),
the kernel beside its hand-written derivative and the public functions. See :mod:`fnn.losses`
for the rules it shares with the others.

The reduction is Keras's ``Circle`` class's: the mean over the samples whose loss is > 0 (Keras
masks the others: a row with no positive or no negative pair has a loss of 0 and is left out of
the count), each weighted by ``sample_weight``. Since each ``l_i`` depends on every row, the
kernel's derivative is the map ``c -> d(sum_i c_i l_i)/d y_pred`` of the reduction's
coefficients (``Terms.dper``, see :func:`fnn.losses._reduction.whole_batch`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn.losses._checks import as_float, check_option_range, check_pair_labels, concrete, contract_error
from fnn.losses._reduction import Terms, apply_kernel, whole_batch

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

_LOSS = "circle"


def _labels(y_true: Any, n: int, name: str = "y_true") -> Array:
    """Integer labels of shape ``(n,)`` (``(n, 1)`` taken as it); their values checked when concrete."""
    labels = jnp.asarray(y_true)
    if labels.shape == (n, 1):
        labels = labels.reshape(n)
    if labels.shape != (n,):
        raise ValueError(f"{_LOSS}: {name} must be integer labels of shape ({n},) or ({n}, 1), got {np.shape(y_true)}")
    host = concrete(y_true)
    if host is not None:
        check_pair_labels(host, _LOSS, name)
        # from the host copy: float labels past 2**24 would round together in float32 first
        return jnp.asarray(host.reshape(n).astype(np.int32))
    return labels.astype(jnp.int32)


def _masked_logsumexp(x: Array, mask: Array) -> tuple[Array, Array]:
    """``log sum_{j in mask} exp(x_ij)`` per row (-inf for a row with an empty mask) and its
    derivatives ``softmax`` over the mask (0 off it, and in an empty row)."""
    top = jnp.max(jnp.where(mask, x, -jnp.inf), axis=1, keepdims=True, initial=-jnp.inf)  # an empty batch too
    top = jnp.where(jnp.isfinite(top), top, 0.0)
    e = jnp.where(mask, jnp.exp(jnp.where(mask, x, top) - top), 0.0)
    total = jnp.sum(e, axis=1, keepdims=True)
    return jnp.log(total[:, 0]) + top[:, 0], e / jnp.where(total > 0, total, 1.0)


def _positive_part(x: Array) -> tuple[Array, Array]:
    """``(max(x, 0), [x > 0])``."""
    return jnp.maximum(x, 0.0), (x > 0).astype(x.dtype)


@whole_batch(lambda options: options["ref_embeddings"] is None)
def circle_terms(y_true, y_pred, gamma, margin, remove_diagonal, ref_labels, ref_embeddings, rows=None) -> Terms:
    """With ``s = y_pred @ ref^T`` (ref: the batch itself, or ``ref_embeddings``),
    ``d = max(1 - s, 0)``, ``m = margin``, the positive pairs P (same label, the diagonal removed
    if ``remove_diagonal``) and negative ones N (other labels):
    ``a_ij = -gamma max(m + d, 0) (m - d)`` on P, ``b_ij = gamma max(1 + m - d, 0) (1 - m - d)``
    on N; ``z_i = logsumexp_{j in P} a_ij + logsumexp_{j in N} b_ij``; ``l_i = softplus(z_i)``
    (0 for a row with no positive or no negative pair: z = -inf).

    The derivative of ``L = sum_i c_i l_i``: ``G_ij = dL/ds_ij = -c_i sigmoid(z_i) [1 - s_ij >= 0]
    (pi_ij da_ij/dd + nu_ij db_ij/dd)`` with ``pi``, ``nu`` the softmax of ``a`` over P and of
    ``b`` over N, ``da/dd = gamma (max(m + d, 0) - [m + d > 0] (m - d))`` (``2 gamma d`` for
    ``m + d > 0``), ``db/dd = -gamma (max(1 + m - d, 0) + [1 + m - d > 0] (1 - m - d))``;
    ``dL/dy_pred = G ref + G^T y_pred`` (the second term only when ref is the batch itself).
    Rows outside ``rows`` are in no pair."""
    check_option_range(gamma, "gamma", _LOSS)
    check_option_range(margin, "margin", _LOSS)
    p = as_float(y_pred)
    if p.ndim != 2:
        raise ValueError(f"{_LOSS}: y_pred must be embeddings of shape (N, D), got shape {p.shape}")
    labels = _labels(y_true, p.shape[0])
    coupled = ref_embeddings is None
    ref = p if coupled else jnp.asarray(ref_embeddings, p.dtype)
    ref_ids = labels if coupled else jnp.asarray(ref_labels, jnp.int32)
    if ref.shape[1] != p.shape[1]:
        raise contract_error(
            f"{_LOSS}: ref_embeddings have {ref.shape[1]} features, but y_pred has {p.shape[1]} (shape {p.shape})"
        )
    s = p @ ref.T
    pos = labels[:, None] == ref_ids[None, :]
    neg = ~pos
    if remove_diagonal:
        pos = pos & ~jnp.eye(s.shape[0], s.shape[1], dtype=bool)
    if rows is not None:
        pairs = rows[:, None] & rows[None, :] if coupled else rows[:, None]
        pos, neg = pos & pairs, neg & pairs
    d = jnp.maximum(1 - s, 0.0)
    inside = (1 - s >= 0).astype(p.dtype)  # the clip passes the gradient on the closed interval
    wp, on_p = _positive_part(margin + d)
    wn, on_n = _positive_part(1 + margin - d)
    lse_p, pi = _masked_logsumexp(-gamma * wp * (margin - d), pos)
    lse_n, nu = _masked_logsumexp(gamma * wn * (1 - margin - d), neg)
    z = lse_p + lse_n
    per = jax.nn.softplus(z)

    def dper(c: Array) -> Array:
        da = gamma * (wp - on_p * (margin - d))
        db = -gamma * (wn + on_n * (1 - margin - d))
        g = -(c * jax.nn.sigmoid(z))[:, None] * inside * (pi * da + nu * db)
        return g @ ref + g.T @ p if coupled else g @ ref

    return Terms(per, dper, 1, per > 0)


def check_references(options: dict) -> dict:
    """``options`` with ``ref_labels`` and ``ref_embeddings`` checked together and held as tuples
    (hashable, so that a :class:`~fnn.losses.Loss` holding them keeps its equality and the
    caches keyed on it): both or neither, ``(M,)`` integer labels and ``(M, D)`` finite
    embeddings given as values (a NumPy array or a list: they are constants of the loss), and
    ``remove_diagonal=False`` with them (Keras's diagonal would pair the batch's i-th row with
    the reference's i-th, whatever the batching)."""
    labels, embeddings = options["ref_labels"], options["ref_embeddings"]
    if labels is None and embeddings is None:
        return options
    if labels is None or embeddings is None:
        raise ValueError(
            f"{_LOSS}: give ref_labels and ref_embeddings together (got only "
            f"{'ref_labels' if embeddings is None else 'ref_embeddings'}); without them the batch is its own reference"
        )
    for name, value in (("ref_labels", labels), ("ref_embeddings", embeddings)):
        if isinstance(value, jax.core.Tracer):
            raise TypeError(f"{_LOSS}: {name} must be a value (a NumPy array or a list), not a traced array")
    emb, ids = np.asarray(embeddings), np.asarray(labels)
    if not np.issubdtype(emb.dtype, np.number) or np.issubdtype(emb.dtype, np.complexfloating):
        raise TypeError(f"{_LOSS}: ref_embeddings must hold real numbers, got dtype {emb.dtype}")
    if emb.ndim != 2 or emb.shape[0] == 0 or not np.all(np.isfinite(emb)):
        raise ValueError(
            f"{_LOSS}: ref_embeddings must be finite embeddings of shape (M, D), M >= 1; got shape {emb.shape}"
        )
    if ids.shape not in ((emb.shape[0],), (emb.shape[0], 1)):
        raise ValueError(f"{_LOSS}: ref_labels must have shape ({emb.shape[0]},) (one per reference), got {ids.shape}")
    check_pair_labels(ids, _LOSS, "ref_labels")
    if options["remove_diagonal"]:
        raise ValueError(
            f"{_LOSS}: remove_diagonal=True with ref_embeddings would leave out the pair of the batch's i-th row "
            "and the reference's i-th, which depends on how the batch is cut; pass remove_diagonal=False"
        )
    return {
        **options,
        "ref_labels": tuple(int(i) for i in ids.reshape(-1).tolist()),
        "ref_embeddings": tuple(tuple(float(v) for v in row) for row in emb.tolist()),
    }


def _options(ref_labels, ref_embeddings, remove_diagonal, gamma, margin) -> dict:
    opts = {"ref_labels": ref_labels, "ref_embeddings": ref_embeddings, "remove_diagonal": remove_diagonal}
    return check_references({**opts, "gamma": gamma, "margin": margin})


def circle(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    ref_labels: ArrayLike | None = None,
    ref_embeddings: ArrayLike | None = None,
    remove_diagonal: bool = True,
    gamma: float = 80.0,
    margin: float = 0.4,
    sample_weight: ArrayLike | None = None,
) -> Array:
    """Circle loss (Sun et al. 2020), as Keras's ``Circle``: each sample's ``softplus`` of the
    log-sum-exp of its positive pairs' and its negative pairs' weighted similarities, then the
    mean over the samples of a loss > 0.

    With ``s = y_pred @ ref^T`` (cosine similarities: ``y_pred`` holds L2-normalised rows, a
    last :func:`fnn.UnitNormalization` layer's, as Keras's expects: it does not normalise them
    either), ``d = max(1 - s, 0)``, ``m = margin``:
    ``l_i = softplus(logsumexp_{j in P_i} -gamma max(m + d_ij, 0) (m - d_ij) +
    logsumexp_{j in N_i} gamma max(1 + m - d_ij, 0) (1 - m - d_ij))``, where ``P_i`` are the
    reference rows of ``y_true[i]``'s label (but ``j = i`` if ``remove_diagonal``) and ``N_i``
    the others; a row with no positive or no negative pair has ``l_i = 0``. Each ``l_i`` depends
    on the whole batch (the reference is the batch itself unless ``ref_embeddings`` are given),
    so ``fit`` validates in batches of ``batch_size`` (:attr:`~fnn.losses.Loss.whole_batch`) and
    leaves the padding of its last partial batch out of every pair.

    Args:
        y_true: Integer labels, ``(N,)`` or ``(N, 1)`` (any integers: only equality counts).
        y_pred: L2-normalised embeddings, ``(N, D)``.
        ref_labels: Optional fixed integer labels ``(M,)`` of ``ref_embeddings``.
        ref_embeddings: Optional fixed L2-normalised embeddings ``(M, D)`` to pair each row with
            instead of the batch (given with ``ref_labels``, and ``remove_diagonal=False``).
        remove_diagonal: Whether a row is left out of its own positive pairs.
        gamma: The scale of the similarities, > 0 (Keras's 80).
        margin: The relaxation margin, finite (Keras's 0.4).
        sample_weight: Optional weights, ``(N,)`` or a scalar.

    Returns:
        ``sum_i w_i l_i / #{i: l_i > 0}`` (0 if no sample has a loss > 0), as Keras's ``Circle``
        reduces (it masks the zero losses out of ``"sum_over_batch_size"``).

    Raises:
        ValueError: If ``y_pred`` is not ``(N, D)``, ``y_true`` not ``N`` integer labels (checked
            when concrete), ``gamma`` <= 0 or a non-finite option, ``ref_embeddings`` of another
            ``D`` or not given with ``ref_labels`` (or with ``remove_diagonal=True``).
        TypeError: For inputs that do not hold real numbers, or options of the wrong type.

    Examples:
        >>> import numpy as np, fnn
        >>> y_pred = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-0.6, 0.8]])
        >>> round(float(fnn.losses.circle([0, 0, 1, 1], y_pred, gamma=2.0)), 6)
        1.171092
    """
    opts = _options(ref_labels, ref_embeddings, remove_diagonal, gamma, margin)
    return apply_kernel(circle_terms, y_true, y_pred, sample_weight, opts, "value")


def circle_grad(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    ref_labels: ArrayLike | None = None,
    ref_embeddings: ArrayLike | None = None,
    remove_diagonal: bool = True,
    gamma: float = 80.0,
    margin: float = 0.4,
    sample_weight: ArrayLike | None = None,
) -> Array:
    """``G ref + G^T y_pred`` (``G ref`` with ``ref_embeddings``), ``G_ij = dL/ds_ij =
    -c_i sigmoid(z_i) [s_ij <= 1] (pi_ij da_ij/dd + nu_ij db_ij/dd)``: ``c_i`` the weight of
    ``l_i`` in :func:`circle`'s mean, ``z_i`` the softplus's argument, ``pi``/``nu`` the softmax
    of the positive/negative terms over their pairs, ``da/dd = gamma (max(m + d, 0) - [m + d > 0]
    (m - d))``, ``db/dd = -gamma (max(1 + m - d, 0) + [1 + m - d > 0] (1 - m - d))``.

    The hand-written gradient of :func:`circle` with respect to ``y_pred``
    (``jax.grad`` of the loss gives the same); it takes that function's arguments and raises
    its errors.

    Returns:
        ``d loss / d y_pred``, of the shape of ``y_pred``.
    """
    opts = _options(ref_labels, ref_embeddings, remove_diagonal, gamma, margin)
    return apply_kernel(circle_terms, y_true, y_pred, sample_weight, opts, "grad")
