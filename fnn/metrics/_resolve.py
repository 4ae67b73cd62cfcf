"""Metrics resolved for a fit: :func:`resolve` for a list (distinct names, and a shape check that
compiles nothing), ``resolve_both`` for ``metrics`` beside ``weighted_metrics``, and
:func:`check_targets`, the check of concrete label values before anything is compiled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from fnn._cache import structural_cache
from fnn.metrics._accuracy import ALTERNATIVES, ENTRIES as ACCURACY, SPARSE_LABEL_SCORES, check_labels
from fnn.metrics._base import Metric
from fnn.metrics._from_loss import ALTERNATIVES as LOSS_ALTERNATIVES, SPARSE_SCORES
from fnn.metrics._registry import NAMES, get, is_builtin, loss_option


@structural_cache(maxsize=256)  # an unhashable metric is traced afresh each time
def _trace(metric: Metric, y_true_shape: tuple, y_pred_shape: tuple) -> None:
    # Traces one update on abstract arrays: shape errors surface, nothing is compiled or run.
    jax.eval_shape(
        metric.update, jax.ShapeDtypeStruct(y_true_shape, jnp.float32), jax.ShapeDtypeStruct(y_pred_shape, jnp.float32)
    )


# The registry name an "accuracy" resolved to, from its scores (each accuracy has its own).
_ACCURACY_KEY = {e.scores: k for k, e in ACCURACY.items()}


@structural_cache(maxsize=256)
def _result_shape(metric: Metric, y_true: jax.ShapeDtypeStruct, y_pred_shape: tuple) -> tuple:
    """The shape of a metric's value on abstract batches (traced, nothing compiled)."""
    out = jax.eval_shape(
        lambda t, p: metric.result(*metric.update(t, p)), y_true, jax.ShapeDtypeStruct(y_pred_shape, jnp.float32)
    )
    return tuple(getattr(out, "shape", ()))


def _check_shapes(
    where: str, identifier: Any, m: Metric, y_true_shape: tuple, y_pred_shape: tuple, y_true_dtype: Any
) -> None:
    if not is_builtin(m):
        # A user's function, traced on the targets' dtype (None: not known, nothing traced): one
        # that fails here is left to meet its data when compiled; one that gives several numbers
        # is named now, before the epoch is compiled and run (a history holds one number per
        # epoch, as Keras's).
        if y_true_dtype is None:
            return
        try:
            shape = _result_shape(m, jax.ShapeDtypeStruct(y_true_shape, y_true_dtype), y_pred_shape)
        except Exception:
            return
        if shape != ():
            raise TypeError(
                f"{where} = {m.name!r} gives an array of shape {shape} on targets of shape {y_true_shape} and "
                f"outputs of shape {y_pred_shape}; a metric gives one number (reduce it, e.g. its mean, or log "
                "each value as a metric of its own)"
            )
        return
    try:
        _trace(m, y_true_shape, y_pred_shape)
    except (ValueError, TypeError) as e:
        what = repr(m.name)
        if isinstance(identifier, str):  # the metric the name stands for, where it says another
            key = NAMES.canonical(identifier)
            key = _ACCURACY_KEY.get(m.scores, key) if key == "accuracy" else key
            what = what if key == identifier else f"{identifier!r} ({key!r})"
        message = (
            f"{where} = {what} does not fit targets y of shape {y_true_shape} and outputs of shape {y_pred_shape}: {e}"
        )
        instead = ALTERNATIVES.get(m.scores) or LOSS_ALTERNATIVES.get(m.scores)
        if instead:
            message += f"; {instead}"
        raise type(e)(message) from None


def _each(
    metrics: Any,
    argument: str,
    loss: Any,
    y_true_shape: Sequence[int] | None,
    y_pred_shape: Sequence[int] | None,
    y_true_dtype: Any = None,
) -> list[Metric]:
    """:func:`get` over ``metrics`` (None or one identifier allowed), each checked against the
    shapes when both are given; ``argument`` names the list in messages."""
    if metrics is None:
        return []
    if isinstance(metrics, (str, Metric)) or callable(metrics):
        metrics = [metrics]
    if isinstance(metrics, Mapping):  # its keys were taken for metric names ("unknown metric 'out'")
        raise TypeError(
            f"{argument} must be a list of names, Metrics or callables; got a dict {metrics!r} (Keras's form for "
            "a model with several named outputs: an fnn network has one output, so list its metrics)"
        )
    if not isinstance(metrics, Iterable):
        raise TypeError(f"{argument} must be a list of names, Metrics or callables; got {metrics!r}")
    out: list[Metric] = []
    for i, identifier in enumerate(metrics):
        m = get(identifier, loss=loss, y_true_shape=y_true_shape, y_pred_shape=y_pred_shape)
        if m.name == "loss" or m.name.startswith("val_"):
            raise ValueError(
                f"{argument}[{i}]: metric name {m.name!r} is reserved (it would clash with the loss or "
                "validation entries)"
            )
        if y_true_shape is not None and y_pred_shape is not None:
            _check_shapes(f"{argument}[{i}]", identifier, m, tuple(y_true_shape), tuple(y_pred_shape), y_true_dtype)
        out.append(m)
    return out


def _unique(name: str, taken: dict[str, int]) -> str:
    """``name``, or Keras's ``name_1``, ``name_2``... once it is taken (a suffixed name that is
    itself taken is skipped: Keras would overwrite that entry)."""
    if name not in taken:
        taken[name] = 1
        return name
    while True:
        candidate = f"{name}_{taken[name]}"
        taken[name] += 1
        if candidate not in taken:
            taken[candidate] = 1
            return candidate


def _named(m: Metric, name: str) -> Metric:
    return m if name == m.name else dataclasses.replace(m, name=name)


def resolve_both(
    metrics: Any,
    weighted_metrics: Any,
    *,
    loss: Any = None,
    y_true_shape: Sequence[int] | None = None,
    y_pred_shape: Sequence[int] | None = None,
    y_true_dtype: Any = None,
) -> tuple[tuple[Metric, ...], tuple[Metric, ...]]:
    """``(metrics, weighted_metrics)`` resolved as :func:`resolve` resolves one list, with
    distinct names across both, as Keras 3's ``CompileMetrics`` names its results: ``metrics``
    first (repeats get ``_1``, ``_2``), then each weighted metric keeps its name unless it is
    taken, in which case it becomes ``weighted_<name>`` (then ``weighted_<name>_1``...).
    Messages name ``metrics[i]`` or ``weighted_metrics[i]``. With ``y_true_dtype`` (the targets'
    dtype as the metrics get them), a metric of your own is traced too: one whose value is not a
    single number is refused."""
    taken: dict[str, int] = {}
    shapes = (loss, y_true_shape, y_pred_shape, y_true_dtype)
    plain = tuple(_named(m, _unique(m.name, taken)) for m in _each(metrics, "metrics", *shapes))
    weighted = tuple(
        _named(m, _unique(m.name if m.name not in taken else f"weighted_{m.name}", taken))
        for m in _each(weighted_metrics, "weighted_metrics", *shapes)
    )
    return plain, weighted


def resolve(
    metrics: Any,
    *,
    loss: Any = None,
    y_true_shape: Sequence[int] | None = None,
    y_pred_shape: Sequence[int] | None = None,
) -> tuple[Metric, ...]:
    """:func:`get` over a list of identifiers (None or one identifier allowed).

    Repeated names get Keras's suffixes ``_1``, ``_2``; a metric called ``loss`` is refused since
    it would overwrite the loss entry. With both shapes given, each built-in metric is traced
    once on abstract arrays of those shapes (nothing compiles): a metric that does not fit the
    targets (``categorical_accuracy`` with integer labels...) raises a ValueError naming
    ``metrics[i]``, the shapes, and what to use instead.

    Args:
        metrics: A list of identifiers (names, Metrics, callables), one identifier, or None.
        loss: The loss, as in :func:`get`.
        y_true_shape: The targets' shape (with the samples axis).
        y_pred_shape: The outputs' shape (with the samples axis).

    Returns:
        A tuple of :class:`Metric` with distinct names (empty for None).

    Raises:
        TypeError: For ``metrics`` that is not a list of identifiers, and :func:`get`'s.
        ValueError: For a metric named ``loss`` or ``val_*``, a metric that does not fit the
            shapes, and :func:`get`'s.

    Examples:
        >>> import fnn
        >>> [m.name for m in fnn.metrics.resolve(["mae", "mae", "rmse"])]
        ['mae', 'mae_1', 'rmse']
        >>> [m.name for m in fnn.metrics.resolve(["AUC", "ACC"], loss="binary_crossentropy")]
        ['AUC', 'ACC']
        >>> fnn.metrics.resolve(["categorical_accuracy"], y_true_shape=(8,), y_pred_shape=(8, 3))
        Traceback (most recent call last):
        ...
        ValueError: metrics[0] = 'categorical_accuracy' does not fit targets y of shape (8,) and outputs ...
    """
    return resolve_both(metrics, None, loss=loss, y_true_shape=y_true_shape, y_pred_shape=y_pred_shape)[0]


def check_targets(
    metrics: Sequence[Metric], y_true: Any, y_pred_shape: Sequence[int], name: str = "y_true", *, loss: Any = None
) -> None:
    """Eager check of concrete target values against resolved metrics, before anything compiles
    (under jit the labels are traced, so the metrics cannot look at them there; traced
    targets given here are checked for their shape only).

    The sparse metrics (sparse_categorical_accuracy, sparse_top_k_categorical_accuracy,
    sparse_categorical_crossentropy) need one integer class id in ``[0, C)`` per sample, the rule
    of the sparse losses: float labels such as 1.5 are refused rather than truncated. The
    ``ignore_class`` of a sparse loss (of the sparse crossentropy metric, for that metric) is
    allowed too.

    Args:
        metrics: Resolved metrics (:func:`resolve`'s result); only the sparse ones look.
        y_true: The targets (NumPy or jax array; a traced one: its shape only).
        y_pred_shape: The shape of the outputs, ``(N, C)``.
        name: How the message names the targets (``"y"``, ``"validation y"``).
        loss: The loss, for its ``ignore_class``.

    Raises:
        ValueError: Naming ``name`` and the metric, for a non-integer or out-of-range label or
            targets of the wrong shape.

    Examples:
        >>> import fnn
        >>> ms = fnn.metrics.resolve(["sparse_categorical_accuracy"])
        >>> fnn.metrics.check_targets(ms, [0, 2], (2, 3))  # fine: nothing returned
        >>> fnn.metrics.check_targets(ms, [0.0, 1.5], (2, 3), name="y")
        Traceback (most recent call last):
        ...
        ValueError: y: metric 'sparse_categorical_accuracy': y_true must hold integer class ids, got non-integer values
    """
    sparse = [m for m in metrics if m.scores in SPARSE_LABEL_SCORES or m.scores in SPARSE_SCORES]
    if not sparse:
        return
    ignore_class = None if loss is None else loss_option(loss, "ignore_class")
    for m in sparse:
        own = dict(m.options)  # the sparse crossentropy metric has its own ignore_class
        try:
            check_labels(y_true, tuple(y_pred_shape), f"metric {m.name!r}", own.get("ignore_class", ignore_class))
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
