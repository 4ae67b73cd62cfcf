"""Keras's CTC loss (connectionist temporal classification, Graves et al. 2006): the negative log
probability of a label sequence summed over every alignment of it to the time steps of
``y_pred``, the kernel (the forward-backward recursion in log space, ``lax.scan`` over time)
beside its hand-written derivative, and the public functions. See :mod:`fnn.losses` for the
rules it shares with the others.

As Keras 3's ``keras.losses.ctc`` (``keras/src/losses/losses.py``, and ``ctc_loss`` in
``keras/src/backend/jax/nn.py``): ``y_pred`` holds logits ``(N, T, C)`` (a log-softmax over the
classes is taken here), class 0 is the blank (Keras's ``mask_index=0``) and pads the integer
labels ``y_true`` ``(N, L)``: a row's label length is its number of non-zero entries, and every
row uses all ``T`` time steps. The per-sample values are reduced as every loss's are (Keras's
``"sum_over_batch_size"``).

Departures, where Keras gives something that means nothing: labels are refused (when concrete:
by the functions, ``check_targets`` and ``fit``) where a 0 stands before a non-zero label (Keras
would count the row's non-zero entries and read that many from the start, blank included), where
a label is outside ``[0, C)``, and where a row's labels cannot be aligned to ``T`` steps (``n``
labels with ``r`` equal neighbours need ``n + r`` steps): Keras's recursion, which stands
``-1e5`` for ``log 0``, gives a value near ``1e5`` there, and the exact ``-log 0`` is ``inf``,
the value such a row gets here under ``jax.jit`` (where labels cannot be checked), with a
gradient of 0.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn.losses._checks import as_float, check_integer_values, concrete
from fnn.losses._reduction import Terms, apply_kernel

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

_LOSS = "ctc"
BLANK = 0  # Keras's mask_index: the blank class, which also pads the labels


def check_ctc_labels(host: np.ndarray, n_classes: int, n_steps: int, name: str = "y_true") -> None:
    """Padded label sequences ``(N, L)`` that CTC can score against ``n_steps`` time steps of
    ``n_classes`` classes, checked in NumPy: integers in ``[0, n_classes)``, 0 (the blank) only
    as padding after a row's labels, and each row short enough to be aligned."""
    check_integer_values(host, _LOSS, name)
    bad = (host < 0) | (host >= n_classes)
    if np.any(bad):
        raise ValueError(
            f"{_LOSS}: {name} labels must be in [1, {n_classes}) (the classes of y_pred but 0, the blank, which "
            f"pads them); got {np.unique(host[bad])[:5].tolist()}"
        )
    labels = host.astype(np.int64)  # (N, L): the shapes are checked first
    present = labels != BLANK
    # a row's padding is its trailing zeros: a label after a 0 is a blank inside the sequence
    inside = np.flatnonzero(np.any(present[:, 1:] & ~present[:, :-1], axis=1))
    if inside.size:
        i = int(inside[0])
        raise ValueError(
            f"{_LOSS}: {name} holds the blank 0 inside a label sequence (row {i}: {labels[i].tolist()}); 0 is the "
            "blank and may only pad a row after its labels"
        )
    needed = present.sum(axis=1) + np.sum(present[:, 1:] & (labels[:, 1:] == labels[:, :-1]), axis=1)
    over = np.flatnonzero(needed > n_steps)
    if over.size:
        i = int(over[0])
        raise ValueError(
            f"{_LOSS}: {name} row {i} ({labels[i][present[i]].tolist()}) needs at least {int(needed[i])} time "
            f"steps (one per label, and a blank between equal neighbours), but y_pred has {n_steps}: no alignment "
            "exists (its probability is 0)"
        )


def _inputs(y_true: Any, y_pred: Any) -> tuple[Array, Array]:
    """``(labels (N, L) int32, logits (N, T, C))``, shapes checked; the label values when concrete."""
    z = as_float(y_pred)
    if z.ndim != 3 or z.shape[1] == 0:
        raise ValueError(
            f"{_LOSS}: y_pred must be logits of shape (N, T, C) (batch, time steps >= 1, classes), got shape {z.shape}"
        )
    labels = jnp.asarray(y_true)
    if labels.ndim != 2 or labels.shape[0] != z.shape[0]:
        raise ValueError(
            f"{_LOSS}: y_true must be integer labels of shape ({z.shape[0]}, L) (padded with 0, the blank), "
            f"got shape {labels.shape}"
        )
    host = concrete(y_true)
    if host is not None:
        check_ctc_labels(host, z.shape[2], z.shape[1])
    return labels.astype(jnp.int32), z


def _shift(a: Array, k: int, fill: Any) -> Array:
    """``a[..., s - k]`` along the last axis (``k < 0``: ``s + |k|``), ``fill`` where off the end."""
    size = a.shape[-1]
    pad = [(0, 0)] * (a.ndim - 1) + [(k, 0) if k > 0 else (0, -k)]
    padded = jnp.pad(a, pad, constant_values=fill)
    return padded[..., :size] if k > 0 else padded[..., -k : size - k]


def _logadd3(a: Array, b: Array, c: Array) -> Array:
    return jnp.logaddexp(jnp.logaddexp(a, b), c)


def ctc_terms(y_true, y_pred) -> Terms:
    """With ``q = log_softmax(z)`` over the classes, a row's ``n`` labels ``l`` (its non-zero
    entries) extended with blanks to ``l' = (0, l_1, 0, ..., l_n, 0)`` (``S = 2L + 1`` states,
    those past ``2n`` unreachable at the end), ``e_t(s) = q_{t, l'_s}`` and the skip
    ``k_s = [s odd, s >= 3, l'_s != l'_{s-2}]``, in log space (``+`` is ``logaddexp``):
    ``alpha_0(s) = e_0(s)`` for ``s < 2`` (else ``-inf``), ``alpha_t(s) = e_t(s) + alpha_{t-1}(s)
    + alpha_{t-1}(s-1) + k_s alpha_{t-1}(s-2)``; ``log p = alpha_{T-1}(2n) + alpha_{T-1}(2n-1)``,
    ``l = -log p``. The backward variables leave the step's own emission out:
    ``beta_{T-1}(s) = 0`` at ``s in {2n, 2n-1}`` (else ``-inf``), ``beta_t(s) = (beta_{t+1} +
    e_{t+1})(s) + (...)(s+1) + k_{s+2} (...)(s+2)``, so that ``alpha_t(s) beta_t(s) / p`` is the
    probability that an alignment is in state ``s`` at step ``t``, and
    ``dl/dz_{t,c} = softmax(z_t)_c - (1/p) sum_{s: l'_s = c} alpha_t(s) beta_t(s)``
    (0 for a row of ``p = 0``, whose loss is ``inf``)."""
    labels, z = _inputs(y_true, y_pred)
    per, dper = _forward_backward(labels, z)
    return Terms(per, dper, (1, 2))


@jax.jit  # one program even when called eagerly (op by op, each step's shapes would compile apart)
def _forward_backward(labels: Array, z: Array) -> tuple[Array, Array]:
    """``(l, dl/dz)`` per sample, as :func:`ctc_terms` writes them."""
    n, steps, classes = z.shape
    q = jax.nn.log_softmax(z, axis=-1)
    length = jnp.sum(labels != BLANK, axis=1)  # Keras's label_length
    states = 2 * labels.shape[1] + 1
    ext = jnp.zeros((n, states), jnp.int32).at[:, 1::2].set(labels)
    skip = jnp.zeros((n, states), bool).at[:, 3::2].set(labels[:, 1:] != labels[:, :-1])
    skip_ahead = _shift(skip, -2, False)  # k_{s+2}
    s = jnp.arange(states)
    end = (s == 2 * length[:, None]) | (s == 2 * length[:, None] - 1)
    # e_t(s), time first for the scans: (T, N, S); labels out of range (unchecked under jit) clipped into [0, C)
    emit = jnp.take_along_axis(
        q, jnp.broadcast_to(jnp.clip(ext, 0, classes - 1)[:, None, :], (n, steps, states)), axis=2
    )
    emit = jnp.moveaxis(emit, 1, 0)
    neg = jnp.asarray(-jnp.inf, q.dtype)

    def rescaled(a: Array) -> tuple[Array, Array]:
        """``a`` less its largest finite entry per row, and that entry (0 where none is finite):
        the recursions carry values near 0, so float32 keeps the small differences between
        states that the occupancies are made of (log p itself reaches -1e4 for confident wrong
        logits, where float32's spacing is 1e-3)."""
        top = jnp.max(a, axis=-1, keepdims=True)
        top = jnp.where(jnp.isfinite(top), top, jnp.zeros((), a.dtype))
        return a - top, top[..., 0]

    def forward(carry: tuple[Array, Array], e: Array) -> tuple[tuple[Array, Array], Array]:
        prev, scale = carry
        a, top = rescaled(
            _logadd3(prev, _shift(prev, 1, -jnp.inf), jnp.where(skip, _shift(prev, 2, -jnp.inf), neg)) + e
        )
        return (a, scale + top), a

    alpha0, scale0 = rescaled(jnp.where(s < 2, emit[0], neg))
    (alpha_last, scale), alphas = jax.lax.scan(forward, (alpha0, scale0), emit[1:])
    alpha = jnp.concatenate([alpha0[None], alphas])  # (T, N, S), each step's rescaled

    def backward(nxt: Array, e: Array) -> tuple[Array, Array]:
        b = nxt + e  # beta_{t+1} + e_{t+1}
        beta = _logadd3(b, _shift(b, -1, -jnp.inf), jnp.where(skip_ahead, _shift(b, -2, -jnp.inf), neg))
        beta = rescaled(beta)[0]
        return beta, beta

    beta_last = jnp.where(end, jnp.zeros((), q.dtype), neg)
    _, betas = jax.lax.scan(backward, beta_last, emit[1:], reverse=True)
    beta = jnp.concatenate([betas, beta_last[None]])  # (T, N, S), each step's rescaled

    log_p = scale + jax.nn.logsumexp(jnp.where(end, alpha_last, neg), axis=-1)  # (N,)
    possible = jnp.isfinite(log_p)
    # sum_s alpha_t(s) beta_t(s) = p at every t: normalising each step's products by their own
    # sum divides by p without the scales the rescaling took out
    joint = alpha + beta
    total = jax.nn.logsumexp(joint, axis=-1, keepdims=True)
    occupancy = jnp.exp(joint - jnp.where(jnp.isfinite(total), total, jnp.zeros((), q.dtype)))  # (T, N, S)
    per_class = jnp.einsum("tns,nsc->ntc", occupancy, jax.nn.one_hot(ext, classes, dtype=q.dtype))
    # 0 - log p: a certain alignment's loss is 0, not -0
    return 0 - log_p, jnp.where(possible[:, None, None], jnp.exp(q) - per_class, 0.0)


def ctc(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
    """Keras's CTC loss: each sample's negative log probability of its label sequence, summed
    over every alignment of it to the time steps (blanks between and around the labels, each
    label repeated over consecutive steps), then the mean over the batch.

    ``y_pred`` holds logits (not softmax outputs: the log-softmax is taken here, as Keras's
    does), and class 0 is the blank, which also pads ``y_true``: a network's output
    ``fnn.serial(..., fnn.Dense(T * C), fnn.Reshape((T, C)))``. With ``p_i`` the probability of
    row i's labels (the forward recursion: ``ctc_terms`` in ``fnn/losses/_ctc.py``),
    ``l_i = -log p_i``.

    Args:
        y_true: Integer labels ``(N, L)``, each row its labels in ``[1, C)`` then zeros (its
            padding; a row of zeros is the empty sequence). Floats of integer values are taken
            as those integers.
        y_pred: Logits ``(N, T, C)``: batch, time steps, classes (the blank, 0, among them).
        sample_weight: Optional weights, ``(N,)`` or a scalar.

    Returns:
        ``sum_i w_i l_i / N``.

    Raises:
        ValueError: If ``y_pred`` is not ``(N, T, C)`` with ``T >= 1``, or ``y_true`` not
            ``(N, L)``; when ``y_true`` is concrete, for labels that are not integers in
            ``[0, C)``, a 0 before a label (the blank inside a sequence), or a row that needs
            more time steps than ``T`` (one per label and a blank between equal neighbours).
        TypeError: For inputs that do not hold real numbers.

    Examples:
        >>> import numpy as np, fnn
        >>> y_pred = np.zeros((1, 3, 3))  # uniform over the blank and two classes
        >>> # [1, 2] in 3 steps: 5 alignments (-12, 1-2, 12-, 112, 122), each of probability 1/27
        >>> round(float(fnn.losses.ctc([[1, 2, 0]], y_pred)), 6), round(float(np.log(27 / 5)), 6)
        (1.686399, 1.686399)
    """
    return apply_kernel(ctc_terms, y_true, y_pred, sample_weight, {}, "value")


def ctc_grad(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
    """``c_i (softmax(z_i) - gamma_i)``: ``c_i`` the weight of ``l_i`` in :func:`ctc`'s mean
    (``w_i / N``) and ``gamma_i[t, c] = (1/p_i) sum_{s: l'_s = c} alpha_t(s) beta_t(s)`` the
    probability that an alignment of row i's labels emits class ``c`` at step ``t`` (the
    forward-backward recursion of ``ctc_terms`` in ``fnn/losses/_ctc.py``, in log space; 0 for
    a row of ``p_i = 0``).

    The hand-written gradient of :func:`ctc` with respect to ``y_pred`` (the logits;
    ``jax.grad`` of the loss gives the same); it takes that function's arguments and raises
    its errors.

    Returns:
        ``d loss / d y_pred``, of the shape of ``y_pred``.
    """
    return apply_kernel(ctc_terms, y_true, y_pred, sample_weight, {}, "grad")
