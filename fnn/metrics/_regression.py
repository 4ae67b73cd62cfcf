"""Regression metrics: mean absolute / squared errors and their root, and R^2 streamed exactly
from the sums of ``y``, ``y^2``, the squared residuals and the count.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn._validate import choice
from fnn.metrics._base import Entry, as_arrays, float_dtype, namespace, same_rank, sample_weights

Array = jax.Array

R2_AGGREGATIONS = ("uniform_average", "variance_weighted_average")


def _errors(y_true: Any, y_pred: Any) -> Array:
    y_true, y_pred = as_arrays(y_true, y_pred)
    dtype = float_dtype(y_pred, y_true)
    y_true, y_pred = same_rank(y_true.astype(dtype), y_pred.astype(dtype))
    return y_pred - y_true


def _absolute_errors(y_true: Any, y_pred: Any) -> Array:
    """``|y_pred - y_true|`` elementwise."""
    return jnp.abs(_errors(y_true, y_pred))


def _squared_errors(y_true: Any, y_pred: Any) -> Array:
    """``(y_pred - y_true)^2`` elementwise."""
    return jnp.square(_errors(y_true, y_pred))


def mae(y_true: jax.typing.ArrayLike, y_pred: jax.typing.ArrayLike) -> Array:
    """Mean absolute error ``mean(|y_pred - y_true|)`` over all elements.

    Args:
        y_true: Targets, (N,) or (N, k) (a trailing 1 on either side is squeezed).
        y_pred: Predictions of the same shape.

    Returns:
        A scalar array, in the wider of float32 and the inputs' float dtype.

    Raises:
        ValueError: For shapes that differ beyond a trailing 1.

    Examples:
        >>> import fnn
        >>> float(fnn.metrics.mae([0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 3.0, 4.0]))
        1.75
    """
    return jnp.mean(_absolute_errors(y_true, y_pred))


def mse(y_true: jax.typing.ArrayLike, y_pred: jax.typing.ArrayLike) -> Array:
    """Mean squared error ``mean((y_pred - y_true)^2)`` over all elements.

    Args:
        y_true: Targets, (N,) or (N, k) (a trailing 1 on either side is squeezed).
        y_pred: Predictions of the same shape.

    Returns:
        A scalar array, in the wider of float32 and the inputs' float dtype.

    Raises:
        ValueError: For shapes that differ beyond a trailing 1.

    Examples:
        >>> import fnn
        >>> float(fnn.metrics.mse([0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 3.0, 4.0]))
        6.25
    """
    return jnp.mean(_squared_errors(y_true, y_pred))


def rmse(y_true: jax.typing.ArrayLike, y_pred: jax.typing.ArrayLike) -> Array:
    """Root mean squared error ``sqrt(mean((y_pred - y_true)^2))``; streamed, the mean runs over
    all samples of the data set before the root is taken.

    Args:
        y_true: Targets, (N,) or (N, k) (a trailing 1 on either side is squeezed).
        y_pred: Predictions of the same shape.

    Returns:
        A scalar array, in the wider of float32 and the inputs' float dtype.

    Raises:
        ValueError: For shapes that differ beyond a trailing 1.

    Examples:
        >>> import fnn
        >>> float(fnn.metrics.rmse([0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 3.0, 4.0]))
        2.5
    """
    return jnp.sqrt(jnp.mean(_squared_errors(y_true, y_pred)))


def _value_bits(t: Array) -> Array:
    """Each value's bits as a uint32 (a float64's two words folded, with an odd multiplier), -0.0
    taken as 0.0: equal values, equal bits."""
    t = jnp.where(t == 0, jnp.zeros((), t.dtype), t)
    if t.dtype.itemsize == 2:
        return jax.lax.bitcast_convert_type(t, jnp.uint16).astype(jnp.uint32)
    words = jax.lax.bitcast_convert_type(t, jnp.uint32)
    return words if t.dtype.itemsize == 4 else words[..., 0] * jnp.uint32(0x9E3779B1) + words[..., 1]


# Two bijective mixers of uint32 (MurmurHash3's finalizer and Wellons's lowbias32): values whose
# bits differ by a multiple of 2^16 (small integers in float32: 200 and 201) differ in every bit
# once mixed.
_MIXERS = ((16, 0x85EBCA6B, 13, 0xC2B2AE35, 16), (16, 0x7FEB352D, 15, 0x846CA68B, 16))

# Two tests of "one value", each blind where the other sees. For two values of counts c_a, c_b,
# ``n sum h^2 - (sum h)^2 = c_a c_b (h_a - h_b)^2``: modulo 2^32 (wrapping uint32 sums of two
# hashes) it vanishes when c_a c_b is a multiple of 2^32 (65,536 zeros and 65,536 ones), modulo a
# prime p when p divides a count (229 and 233 of two values). The primes' product exceeds 2^32,
# so two distinct hashes differ modulo one of them at least; small enough that a batch's
# residues, and the batches' sums of them, stay exact in uint32 (up to 2^32 / 251, ~17 million
# batches). Both fooled takes counts that are multiples of 2^16 and of the primes at once.
_PRIMES = (251, 241, 239, 233, 229)
_BATCH_CHUNK = 1 << 24  # samples summed in uint32 at once: 2^24 residues below 256 stay below 2^32


def _mixed(h: Array, mixer: tuple[int, ...]) -> Array:
    s1, k1, s2, k2, s3 = mixer
    h = (h ^ (h >> s1)) * jnp.uint32(k1)
    h = (h ^ (h >> s2)) * jnp.uint32(k2)
    return h ^ (h >> s3)


def _sum_mod(r: Array, p: int) -> Array:
    """``sum(r, axis=0) mod p`` for residues ``r`` below ``p``, exact in uint32 for any number of
    rows (summed in chunks of ``_BATCH_CHUNK`` rows, each chunk's sum reduced first)."""
    n = r.shape[0]
    if n > _BATCH_CHUNK:
        chunks = -(-n // _BATCH_CHUNK)
        r = jnp.pad(r, ((0, chunks * _BATCH_CHUNK - n), (0, 0))).reshape(chunks, _BATCH_CHUNK, -1)
        r = jnp.sum(r, axis=1, dtype=jnp.uint32) % jnp.uint32(p)
    return jnp.sum(r, axis=0, dtype=jnp.uint32) % jnp.uint32(p)  # (a plain sum is uint64 under x64)


def _r2_sums(y_true: Any, y_pred: Any, sample_weight: Any, class_aggregation: str) -> tuple[Array, ...]:
    """Per output column: ``(sum w y, sum w y^2, sum w (y - y_pred)^2, sum w, n, sum h, sum h^2,
    sum g, sum g^2, s_1, q_1, ..., s_5, q_5)``: ``n`` the weighted samples' count, ``h`` and ``g``
    two hashes of each value's bits summed in wrapping uint32, and for each prime ``p`` of
    ``_PRIMES`` the sums of ``r = h mod p`` and of ``r^2 mod p``, each reduced modulo ``p``:
    ``n sum h^2 - (sum h)^2 = sum_{i<j} (h_i - h_j)^2`` is 0 modulo 2^32, and its residues' 0
    modulo each ``p``, for one value, however its sums round, and summed over batches they stay
    exact."""
    del class_aggregation  # used by the result only
    t, p = as_arrays(y_true, y_pred)
    dtype = float_dtype(p, t)
    t, p = same_rank(t.astype(dtype), p.astype(dtype))
    if t.ndim == 1:
        t, p = t[:, None], p[:, None]
    if t.ndim != 2:
        raise ValueError(
            f"r2_score expects y_true and y_pred of shape (N,) or (N, k); got {jnp.shape(y_true)} "
            f"and {jnp.shape(y_pred)}"
        )
    if sample_weight is None:
        w = jnp.ones((), dtype)
        count = jnp.full(t.shape[1:], t.shape[0], dtype)
        present = jnp.ones(t.shape, bool)
    else:
        w = sample_weights(sample_weight, t.shape, dtype)
        count = jnp.sum(w, axis=0)
        present = w != 0
    wt = w * t
    bits = _value_bits(t)
    residues = [jnp.sum(present, axis=0, dtype=jnp.uint32)]
    h, g = (jnp.where(present, _mixed(bits, mixer), jnp.uint32(0)) for mixer in _MIXERS)
    for k in (h, g):  # (a plain sum of uint32 is uint64 under x64)
        residues += [jnp.sum(k, axis=0, dtype=jnp.uint32), jnp.sum(k * k, axis=0, dtype=jnp.uint32)]
    for prime in _PRIMES:  # (h is 0 where no sample is weighted: its residue too)
        r = h % jnp.uint32(prime)
        residues += [_sum_mod(r, prime), _sum_mod(r * r % jnp.uint32(prime), prime)]
    return jnp.sum(wt, axis=0), jnp.sum(wt * t, axis=0), jnp.sum(w * jnp.square(t - p), axis=0), count, *residues


def _r2_value(
    total: Any, squares: Any, residual: Any, count: Any, n: Any, *residues: Any, class_aggregation: str
) -> Any:
    """``1 - SS_res / SS_tot`` per column with ``SS_tot = sum w y^2 - (sum w y)^2 / sum w``;
    constant targets give 0, or 1 if predicted exactly (scikit-learn's ``force_finite``).

    Constant targets whose sums round (0.1 six times) leave ``SS_tot`` a rounding residue of
    either sign, which grows with the batches streamed (R2 -307 for 0.1 a thousand times, one
    per batch): a column counts as constant where its values' hashes say one value (``n sum
    h^2 - (sum h)^2`` 0 modulo 2^32 for both hashes and modulo every prime: exact for one value;
    for several, by chance ~2^-32, or for counts that are multiples of 2^16 and of the primes at
    once, tens of millions of samples of two values). Any other spread, however small, and
    however batched (one value per batch), is scored by the formula; NaN and inf targets give
    NaN."""
    xp = namespace(total, squares, residual, count)
    counted = count != 0
    ss_tot = squares - total * (total / xp.where(counted, count, 1))
    n = xp.asarray(n, xp.uint32)
    one_value = xp.ones(xp.shape(n), bool)
    hashes, primes = residues[:4], residues[4:]
    with np.errstate(over="ignore"):  # uint32 arithmetic wraps, on the host as on a device
        for i in range(2):
            h, h2 = (xp.asarray(a, xp.uint32) for a in hashes[2 * i : 2 * i + 2])
            one_value = one_value & (n * h2 - h * h == 0)
    for i, prime in enumerate(_PRIMES):
        # the batches' sums of residues below p, each reduced modulo p again: products below p^2
        q = xp.uint32(prime)
        s, sq = (xp.asarray(a, xp.uint32) % q for a in primes[2 * i : 2 * i + 2])
        one_value = one_value & ((n % q) * sq % q == s * s % q)
    varies = ~(one_value & xp.isfinite(ss_tot))  # NaN or inf targets: a NaN SS_tot, NaN out
    raw = xp.where(varies, 1 - residual / xp.where(varies, ss_tot, 1), xp.where(residual == 0, 1.0, 0.0))
    value = xp.mean(raw)
    if class_aggregation == "variance_weighted_average":
        ss_tot = xp.where(varies, ss_tot, 0)
        weight = xp.sum(ss_tot)
        value = xp.where(weight != 0, xp.sum(ss_tot * raw) / xp.where(weight != 0, weight, 1), value)
    return xp.where(xp.all(counted), value, xp.nan)


def _r2_options(options: dict[str, Any]) -> dict[str, Any]:
    choice("class_aggregation", options["class_aggregation"], R2_AGGREGATIONS)
    return options


def r2_score(
    y_true: jax.typing.ArrayLike, y_pred: jax.typing.ArrayLike, class_aggregation: str = "uniform_average"
) -> Array:
    """Coefficient of determination (Keras's ``R2Score``, scikit-learn's ``r2_score``).

    Per output column ``R2 = 1 - SS_res / SS_tot`` with ``SS_res = sum (y - y_pred)^2`` and
    ``SS_tot = sum (y - mean(y))^2``; streamed, the sums run over the whole data set (kept as
    ``sum y``, ``sum y^2``, ``SS_res`` and the count), so the value equals the one-batch value.
    Constant targets give 0 (1 if predicted exactly), also where their sums round (0.1, not
    only 2.0, and however the data is batched): where the values' bits say one value (two
    hashes of them summed and squared in wrapping uint32, and one's residues modulo five small
    primes, kept with the count; exact up to ~17 million batches streamed). With float32
    targets whose mean is large against their spread, ``sum y^2 - (sum y)^2 / n`` loses
    digits: use float64 there.

    Args:
        y_true: Targets of shape (N,) or (N, k) (a trailing 1 on either side is squeezed).
        y_pred: Predictions of the same shape.
        class_aggregation: ``"uniform_average"`` (mean over the k columns) or
            ``"variance_weighted_average"`` (weighted by each column's ``SS_tot``).

    Returns:
        The scalar R^2 (NaN for no samples).

    Raises:
        ValueError: For mismatched shapes, a rank above 2, or an unknown
            ``class_aggregation``.
        TypeError: For a ``class_aggregation`` that is not a string.

    Examples:
        >>> import fnn, jax, numpy as np
        >>> y, p = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 5.0])
        >>> round(float(jax.jit(fnn.metrics.r2_score)(y, p)), 4)  # 1 - SS_res / SS_tot = 1 - 1/5
        0.8
    """
    _r2_options({"class_aggregation": class_aggregation})
    return _r2_value(*_r2_sums(y_true, y_pred, None, class_aggregation), class_aggregation=class_aggregation)


ENTRIES = {
    "mae": Entry(_absolute_errors, {}),
    "mse": Entry(_squared_errors, {}),
    "rmse": Entry(_squared_errors, {}, root=True),
    "r2_score": Entry(
        _r2_sums, {"class_aggregation": "uniform_average"}, finish=_r2_value, check=_r2_options, direction="up"
    ),
}
