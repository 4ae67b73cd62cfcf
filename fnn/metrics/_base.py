"""The streaming form every metric shares: :class:`Metric`, its registry entry, and the helpers
the scores use (dtypes, Keras's same-rank rule, sample weights, safe division on host or device).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import ModuleType
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn._dtypes import promoted
from fnn._native import native

Array = jax.Array


def float_dtype(*arrays: Any) -> Any:
    """At least float32, wider if an input is: running totals of 0/1 scores or squared errors
    must not be rounded by a bfloat16 or integer prediction."""
    dtypes = [a.dtype for a in arrays if jnp.issubdtype(a.dtype, jnp.floating)]
    return promoted(jnp.float32, *dtypes)


def as_arrays(y_true: Any, y_pred: Any) -> tuple[Array, Array]:
    """``(y_true, y_pred)`` as jax arrays, NumPy ones in native byte order first (JAX refuses
    ``'>f8'``; :func:`fnn._native.native`)."""
    return jnp.asarray(native(y_true, "y_true")), jnp.asarray(native(y_pred, "y_pred"))


def same_rank(y_true: Array, y_pred: Array) -> tuple[Array, Array]:
    """Keras's ``squeeze_or_expand_to_same_rank``: (N,) against (N, 1) compares elementwise.

    Without it ``y_true - y_pred`` would broadcast (N,) - (N, 1) to an (N, N) matrix.
    """
    if y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        y_true = jnp.squeeze(y_true, -1)
    elif y_pred.ndim == y_true.ndim + 1 and y_pred.shape[-1] == 1:
        y_pred = jnp.squeeze(y_pred, -1)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred must have the same shape (up to a trailing 1); "
            f"got y_true {y_true.shape} and y_pred {y_pred.shape}"
        )
    return y_true, y_pred


def sample_weights(sample_weight: Any, shape: tuple[int, ...], dtype: Any) -> Array:
    """``sample_weight`` broadcast to scores of ``shape`` (Keras): a scalar, one weight per
    sample ``(N,)`` or ``(N, 1)``, or one per element (any shape that broadcasts from the left)."""
    w = jnp.asarray(native(sample_weight, "sample_weight"), dtype=dtype)
    while w.ndim > len(shape) and w.shape[-1] == 1:
        w = jnp.squeeze(w, -1)
    fits = w.ndim <= len(shape) and all(a in (1, b) for a, b in zip(w.shape, shape, strict=False))
    if not fits:
        n = f"{shape[0]} samples" if shape else "one sample"
        raise ValueError(
            f"sample_weight of shape {w.shape} does not fit {n} (scores of shape {shape}): pass a "
            f"scalar, one weight per sample {shape[:1]}, or one per element {shape}"
        )
    return jnp.broadcast_to(w.reshape(w.shape + (1,) * (len(shape) - w.ndim)), shape)


def namespace(*totals: Any) -> ModuleType:
    """``jax.numpy`` for jax arrays (usable inside jit), NumPy for totals already on the host."""
    return jnp if any(isinstance(t, jax.Array) for t in totals) else np


def divide_no_nan(xp: ModuleType, num: Any, den: Any) -> Any:
    """``num / den``, 0 where ``den == 0`` (Keras's ``divide_no_nan``; NumPy never warns)."""
    nonzero = den != 0
    return xp.where(nonzero, num / xp.where(nonzero, den, 1), 0)


class Entry(NamedTuple):
    """A registry entry: what :func:`fnn.metrics.get` builds a :class:`Metric` from.

    ``check`` validates the options (naming the bad one) and returns them normalised, so equal
    configurations give equal (hashable) metrics. ``direction`` is Keras's ``_direction`` of the
    same metric: ``"up"`` where a higher value is better, ``"down"`` where a lower one is (what
    callbacks with ``mode="auto"`` read); None where Keras's metric declares none (the
    confusion counts), which ``mode="auto"`` refuses as Keras 3 does.
    """

    scores: Callable[..., Any]
    defaults: dict[str, Any]
    root: bool = False
    finish: Callable[..., Any] | None = None
    check: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    direction: str | None = "down"


@dataclasses.dataclass(frozen=True)
class Metric:
    """A named metric in streaming form: ``update`` gives one batch's partial sums (jittable),
    the caller adds them up on the device, and ``result`` turns the totals into the value.

    Frozen and compared by value, so it is hashable and can be a static argument of ``jax.jit``
    (a compiled epoch is cached on its metrics).

    Two kinds:

    * a mean (``finish`` is None): ``scores(y_true, y_pred, **options)`` gives per-element (or
      per-sample) scores ``s``; ``update`` returns ``(sum w*s, sum w)`` with ``w`` the broadcast
      ``sample_weight`` (1 by default, so the count of scores) and ``result`` is
      ``total / count`` (``sqrt`` of it if ``root``; 0 for a count of 0, as in Keras). A scalar
      score is read as the batch mean and weighted by the batch size (by ``sum(sample_weight)``
      with weights), so it streams to the mean over the samples. Keras 3 takes the plain mean
      of such per-batch values instead (its ``Mean`` counts a scalar as one value), so a
      function of yours returning one number per batch (a maximum, a median) differs from
      Keras's where the batches differ in size (the last partial one): return per-sample scores
      to get the same value in both.
    * sums of statistics (``finish`` given): ``scores(y_true, y_pred, sample_weight, **options)``
      returns a tuple of arrays (confusion counts, sums of ``y`` and ``y^2``...) and
      ``result(*totals)`` is ``finish(*totals, **options)``.

    Build one with :func:`fnn.metrics.get` (by name, with options) rather than directly.

    Attributes:
        name: The key in histories and in :func:`fnn.evaluate`'s result.
        scores: The per-batch function described above.
        options: Keyword options of ``scores`` (and ``finish``) as a sorted tuple of pairs.
        root: Report ``sqrt(total / count)`` (rmse) instead of ``total / count``.
        finish: ``(*totals, **options) -> value`` for the statistics kind; None for a mean.

    Examples:
        Streamed over two batches, rmse is the root of the mean over all samples:

        >>> import fnn
        >>> m = fnn.metrics.get("rmse")
        >>> first = m.update([0.0, 0.0], [3.0, 4.0])  # (sum of squared errors, count)
        >>> second = m.update([0.0], [0.0])
        >>> totals = [a + b for a, b in zip(first, second)]
        >>> round(float(m.result(*totals)), 4)  # sqrt(25 / 3)
        2.8868
    """

    name: str
    scores: Callable[..., Any]
    options: tuple[tuple[str, Any], ...] = ()
    root: bool = False
    finish: Callable[..., Any] | None = None
    # The options get() left at their defaults for want of a loss (from_logits, ignore_class):
    # fit and evaluate settle them from the run's loss, as for a metric given by name. Compared
    # too: such a metric is not yet the one whose from_logits=False was given.
    follows_loss: tuple[str, ...] = dataclasses.field(default=(), repr=False)

    def update(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> tuple[Any, ...]:
        """One batch's partial sums, a tuple of float arrays (jittable); add them up across
        batches and pass the totals to :meth:`result`.

        ``sample_weight`` (Keras's semantics): a scalar, one weight per sample ``(N,)``, or one
        per element; weighted sums over weighted counts. None is the unweighted metric.

        Args:
            y_true: The batch's targets.
            y_pred: The batch's predictions.
            sample_weight: A scalar, ``(N,)``/``(N, 1)`` per-sample weights, or one weight per
                element; None for none.

        Returns:
            The partial sums: ``(sum w*s, sum w)`` for a mean, the statistics' tuple
            otherwise.

        Raises:
            ValueError: For targets and predictions of mismatched shapes, or a
                ``sample_weight`` that does not broadcast to the scores.
        """
        if self.finish is not None:
            # a Python number among the statistics (a count, y.shape[0]) as the array it stands for
            return tuple(jnp.asarray(t) for t in self.scores(y_true, y_pred, sample_weight, **dict(self.options)))
        y_true, y_pred = native(y_true, "y_true"), jnp.asarray(native(y_pred, "y_pred"))
        raw = self.scores(y_true, y_pred, **dict(self.options))
        try:
            s = jnp.asarray(raw)
        except (TypeError, ValueError) as e:  # a tuple of a score and a count, a dict...
            got = f"a {type(raw).__name__}" + (f" of {len(raw)}" if isinstance(raw, (tuple, list, dict)) else "")
            raise TypeError(
                f"metric {self.name!r} must return its scores as one array (one per element or per sample) or one "
                f"number; got {got}"
            ) from e
        dtype = float_dtype(s, y_pred)
        if s.ndim == 0:
            n = y_pred.shape[0] if y_pred.ndim else 1
            if sample_weight is None:
                return s.astype(dtype) * n, jnp.asarray(n, dtype)
            total = jnp.sum(sample_weights(sample_weight, (n,), dtype))
            return s.astype(dtype) * total, total
        if sample_weight is None:
            return jnp.sum(s, dtype=dtype), jnp.asarray(s.size, dtype)
        w = sample_weights(sample_weight, s.shape, dtype)
        return jnp.sum(s.astype(dtype) * w), jnp.sum(w)

    def result(self, *totals: Any) -> Any:
        """The metric from the summed partials of :meth:`update`; a mean is 0 when nothing was
        counted (no samples, or sample weights that are all 0), as Keras's ``Mean`` with its
        ``divide_no_nan``.

        Jax arrays in, a jax array out (usable inside jit); host arrays stay in NumPy.

        Args:
            *totals: The partial sums of :meth:`update`, each summed over the batches.

        Returns:
            The metric's value, a scalar (array).
        """
        if self.finish is not None:
            return self.finish(*totals, **dict(self.options))
        total, count = totals
        xp = namespace(total, count)
        # weighted counts can lie in (0, 1): divide by the count itself wherever it is not 0
        mean = divide_no_nan(xp, xp.asarray(total), xp.asarray(count))
        return xp.sqrt(mean) if self.root else mean

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        """The metric on one batch: ``result(*update(y_true, y_pred, sample_weight))``.

        Args:
            y_true: The targets.
            y_pred: The predictions.
            sample_weight: As in :meth:`update`.

        Returns:
            The metric's value, a scalar array.
        """
        return self.result(*self.update(y_true, y_pred, sample_weight))
