"""Metrics with Keras 3 semantics, in a streaming form, and batched evaluation.

Every metric is a pure function ``(y_true, y_pred) -> scalar``: the mean over the batch of a
per-element score. A compiled epoch cannot average per-batch means (``rmse`` of a data set is
not the mean of per-batch ``rmse``s, and the last batch may be smaller), so each metric is also a
:class:`Metric` whose ``update`` returns the partial ``(sum, count)`` of one batch and whose
``result`` turns the totals into the value::

    m = fnn.metrics.get("rmse")
    s, c = m.update(y_true_batch, y_pred_batch)      # jittable; add these up on device
    value = m.result(total_s, total_c)               # sqrt(total_s / total_c)

``"accuracy"`` (or ``"acc"``) is resolved the way Keras resolves it, from the loss and the shapes
of targets and outputs; see :func:`get`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn._registry import Registry
from fnn._validate import integer

__all__ = [
    "Metric",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "mae",
    "mse",
    "rmse",
    "mean_absolute_error",
    "mean_squared_error",
    "root_mean_squared_error",
    "get",
    "resolve",
    "names",
]


# ----------------------------------------------------------------------------------------------
# Per-element scores. Each returns a float array whose mean is the metric.


def _float_dtype(*arrays: jax.Array) -> jnp.dtype:
    # Scores are 0/1 or squared errors: sum them in at least float32 so that a bfloat16 or
    # integer prediction does not round the running totals.
    dtypes = [a.dtype for a in arrays if jnp.issubdtype(a.dtype, jnp.floating)]
    return jnp.result_type(jnp.float32, *dtypes)


def _same_rank(y_true: jax.Array, y_pred: jax.Array) -> tuple[jax.Array, jax.Array]:
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


def _sparse_labels(y_true: jax.Array, y_pred: jax.Array) -> jax.Array:
    """Integer labels of shape ``y_pred.shape[:-1]`` from (N,) or (N, 1) targets."""
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = jnp.squeeze(y_true, -1)
    if y_true.shape != y_pred.shape[:-1]:
        raise ValueError(
            f"sparse y_true must hold one integer label per sample, shape {y_pred.shape[:-1]} "
            f"or {y_pred.shape[:-1] + (1,)}; got y_true {y_true.shape} for y_pred {y_pred.shape}"
        )
    return y_true.astype(jnp.int32)


def _one_hot_check(y_true: jax.Array, y_pred: jax.Array) -> None:
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"categorical y_true must be one-hot with the shape of y_pred; got y_true "
            f"{y_true.shape} and y_pred {y_pred.shape} (use the sparse_ metric for labels)"
        )


def _binary_matches(y_true, y_pred, threshold: float = 0.5, from_logits: bool = False):
    """``[y_true == (y_pred > t)]`` elementwise; with logits the threshold is ``log(t/(1-t))``
    (0 for t = 0.5), the same decision as ``sigmoid(y_pred) > t``."""
    y_true, y_pred = jnp.asarray(y_true), jnp.asarray(y_pred)
    dtype = _float_dtype(y_pred)
    y_true, y_pred = _same_rank(y_true, y_pred)
    if from_logits and not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be a probability in (0, 1) with from_logits=True; got {threshold}")
    cut = math.log(threshold / (1.0 - threshold)) if from_logits else threshold
    predicted = (y_pred > cut).astype(dtype)
    return (y_true.astype(dtype) == predicted).astype(dtype)


def _categorical_matches(y_true, y_pred):
    """``[argmax y_true == argmax y_pred]`` per sample (first index wins ties, as argmax)."""
    y_true, y_pred = jnp.asarray(y_true), jnp.asarray(y_pred)
    _one_hot_check(y_true, y_pred)
    hit = jnp.argmax(y_true, axis=-1) == jnp.argmax(y_pred, axis=-1)
    return hit.astype(_float_dtype(y_pred))


def _sparse_categorical_matches(y_true, y_pred):
    """``[y_true == argmax y_pred]`` per sample, labels of shape (N,) or (N, 1)."""
    y_true, y_pred = jnp.asarray(y_true), jnp.asarray(y_pred)
    labels = _sparse_labels(y_true, y_pred)
    return (labels == jnp.argmax(y_pred, axis=-1)).astype(_float_dtype(y_pred))


def _in_top_k(labels: jax.Array, y_pred: jax.Array, k: int) -> jax.Array:
    # Keras's jax in_top_k: rank = 1 + #(scores strictly above the label's score), so a tie with
    # the label counts in its favour; a NaN score at the label never counts.
    k = integer("k", k, 1)
    at_label = jnp.take_along_axis(y_pred, labels[..., None], axis=-1)
    at_label = jnp.where(jnp.isnan(at_label), -jnp.inf, at_label)
    rank = 1 + jnp.sum(y_pred > at_label, axis=-1)
    return (rank <= k).astype(_float_dtype(y_pred))


def _top_k_matches(y_true, y_pred, k: int = 5):
    """``[argmax y_true among the k largest y_pred]`` per sample."""
    y_true, y_pred = jnp.asarray(y_true), jnp.asarray(y_pred)
    _one_hot_check(y_true, y_pred)
    return _in_top_k(jnp.argmax(y_true, axis=-1), y_pred, k)


def _sparse_top_k_matches(y_true, y_pred, k: int = 5):
    """``[y_true among the k largest y_pred]`` per sample."""
    y_true, y_pred = jnp.asarray(y_true), jnp.asarray(y_pred)
    return _in_top_k(_sparse_labels(y_true, y_pred), y_pred, k)


def _absolute_errors(y_true, y_pred):
    """``|y_pred - y_true|`` elementwise."""
    y_true, y_pred = jnp.asarray(y_true), jnp.asarray(y_pred)
    dtype = _float_dtype(y_pred, y_true)
    y_true, y_pred = _same_rank(y_true.astype(dtype), y_pred.astype(dtype))
    return jnp.abs(y_pred - y_true)


def _squared_errors(y_true, y_pred):
    """``(y_pred - y_true)^2`` elementwise."""
    y_true, y_pred = jnp.asarray(y_true), jnp.asarray(y_pred)
    dtype = _float_dtype(y_pred, y_true)
    y_true, y_pred = _same_rank(y_true.astype(dtype), y_pred.astype(dtype))
    return jnp.square(y_pred - y_true)


# ----------------------------------------------------------------------------------------------
# The streaming form.


@dataclasses.dataclass(frozen=True)
class Metric:
    """A named metric as partial sums: ``value = sum(scores) / count`` (``sqrt`` of it if root).

    Frozen and compared by value, so it is hashable and can be a static argument of ``jax.jit``.

    Attributes:
      name: the key in histories and in :func:`evaluate`'s result.
      scores: ``(y_true, y_pred, **options) -> array`` of per-element (or per-sample) scores; a
        scalar return is read as the batch mean and weighted by the batch size.
      options: keyword options for ``scores`` as a sorted tuple of pairs (hashable).
      root: report ``sqrt(sum / count)`` (rmse) instead of ``sum / count``.
    """

    name: str
    scores: Callable[..., Any]
    options: tuple[tuple[str, Any], ...] = ()
    root: bool = False

    def update(self, y_true: jax.Array, y_pred: jax.Array) -> tuple[jax.Array, jax.Array]:
        """One batch's ``(sum of scores, number of scores)``, both float arrays (jittable)."""
        y_pred = jnp.asarray(y_pred)
        s = jnp.asarray(self.scores(y_true, y_pred, **dict(self.options)))
        dtype = _float_dtype(s, y_pred)
        if s.ndim == 0:
            n = y_pred.shape[0] if y_pred.ndim else 1
            return s.astype(dtype) * n, jnp.asarray(n, dtype)
        return jnp.sum(s, dtype=dtype), jnp.asarray(s.size, dtype)

    def result(self, total: Any, count: Any) -> Any:
        """The metric from accumulated ``(total, count)``; NaN when nothing was counted.

        Jax arrays in, a jax array out (usable inside jit); host numbers stay in NumPy float64.
        """
        xp = jnp if isinstance(total, jax.Array) or isinstance(count, jax.Array) else np
        total, count = xp.asarray(total), xp.asarray(count)
        mean = xp.where(count > 0, total / xp.maximum(count, 1), xp.nan)
        return xp.sqrt(mean) if self.root else mean

    def __call__(self, y_true: jax.Array, y_pred: jax.Array) -> jax.Array:
        """The metric on one batch."""
        return self.result(*self.update(y_true, y_pred))


def _scalar(fn: Callable[..., jax.Array], y_true, y_pred, root: bool = False, **options) -> jax.Array:
    s = fn(y_true, y_pred, **options)
    return jnp.sqrt(jnp.mean(s)) if root else jnp.mean(s)


def binary_accuracy(
    y_true: jax.typing.ArrayLike, y_pred: jax.typing.ArrayLike, threshold: float = 0.5, from_logits: bool = False
) -> jax.Array:
    """``mean(y_true == (y_pred > threshold))`` over all elements.

    Shapes: y_true and y_pred (N,) or (N, k), a trailing 1 on either side is squeezed. With
    ``from_logits=True`` y_pred are logits and the cut is ``log(t / (1 - t))`` (0 for t = 0.5).
    """
    return _scalar(_binary_matches, y_true, y_pred, threshold=threshold, from_logits=from_logits)


def categorical_accuracy(y_true: jax.typing.ArrayLike, y_pred: jax.typing.ArrayLike) -> jax.Array:
    """``mean(argmax(y_true, -1) == argmax(y_pred, -1))``; y_true one-hot (N, C), y_pred (N, C)."""
    return _scalar(_categorical_matches, y_true, y_pred)


def sparse_categorical_accuracy(y_true: jax.typing.ArrayLike, y_pred: jax.typing.ArrayLike) -> jax.Array:
    """``mean(y_true == argmax(y_pred, -1))``; y_true int labels (N,) or (N, 1), y_pred (N, C)."""
    return _scalar(_sparse_categorical_matches, y_true, y_pred)


def top_k_categorical_accuracy(y_true: jax.typing.ArrayLike, y_pred: jax.typing.ArrayLike, k: int = 5) -> jax.Array:
    """Share of samples whose true class (argmax of one-hot y_true (N, C)) is among the k
    largest of y_pred (N, C); ties with the true class's score count as hits (Keras)."""
    return _scalar(_top_k_matches, y_true, y_pred, k=k)


def sparse_top_k_categorical_accuracy(
    y_true: jax.typing.ArrayLike, y_pred: jax.typing.ArrayLike, k: int = 5
) -> jax.Array:
    """:func:`top_k_categorical_accuracy` with integer labels (N,) or (N, 1)."""
    return _scalar(_sparse_top_k_matches, y_true, y_pred, k=k)


def mae(y_true: jax.typing.ArrayLike, y_pred: jax.typing.ArrayLike) -> jax.Array:
    """Mean absolute error ``mean(|y_pred - y_true|)`` over all elements."""
    return _scalar(_absolute_errors, y_true, y_pred)


def mse(y_true: jax.typing.ArrayLike, y_pred: jax.typing.ArrayLike) -> jax.Array:
    """Mean squared error ``mean((y_pred - y_true)^2)`` over all elements."""
    return _scalar(_squared_errors, y_true, y_pred)


def rmse(y_true: jax.typing.ArrayLike, y_pred: jax.typing.ArrayLike) -> jax.Array:
    """Root mean squared error ``sqrt(mean((y_pred - y_true)^2))``; streamed, the mean runs over
    all samples of the data set before the root is taken."""
    return _scalar(_squared_errors, y_true, y_pred, root=True)


mean_absolute_error = mae
mean_squared_error = mse
root_mean_squared_error = rmse


# ----------------------------------------------------------------------------------------------
# Registry: name -> (scores, allowed options with defaults, root).

_REGISTRY: dict[str, tuple[Callable[..., Any], dict[str, Any], bool]] = {
    "binary_accuracy": (_binary_matches, {"threshold": 0.5, "from_logits": False}, False),
    "categorical_accuracy": (_categorical_matches, {}, False),
    "sparse_categorical_accuracy": (_sparse_categorical_matches, {}, False),
    "top_k_categorical_accuracy": (_top_k_matches, {"k": 5}, False),
    "sparse_top_k_categorical_accuracy": (_sparse_top_k_matches, {"k": 5}, False),
    "mae": (_absolute_errors, {}, False),
    "mse": (_squared_errors, {}, False),
    "rmse": (_squared_errors, {}, True),
}
_NAMES = Registry(
    "metric",
    {**_REGISTRY, "accuracy": None},
    aliases={
        "mean_absolute_error": "mae",
        "mean_squared_error": "mse",
        "root_mean_squared_error": "rmse",
        "acc": "accuracy",
    },
    known="metrics",
)

# Losses that decide what "accuracy" means, whatever the shapes (Keras 2's rule); any other loss
# leaves the decision to the shapes (Keras 3's rule).
_BINARY_LOSSES = {"binary_crossentropy", "binary_focal_crossentropy", "bce"}
_SPARSE_LOSSES = {"sparse_categorical_crossentropy"}
_CATEGORICAL_LOSSES = {"categorical_crossentropy", "cce"}
# Losses of regression targets, for which "accuracy" would silently compare real values for equality.
_REGRESSION_LOSSES = {
    "mean_squared_error", "mse", "mean_absolute_error", "mae", "mean_absolute_percentage_error", "mape",
    "mean_squared_logarithmic_error", "msle", "huber", "huber_loss", "log_cosh", "logcosh", "poisson",
    "cosine_similarity",
}  # fmt: skip


def names() -> list[str]:
    """Every name :func:`get` accepts, aliases included."""
    return _NAMES.names()


def _loss_name(loss: Any) -> str | None:
    if loss is None:
        return None
    if isinstance(loss, str):
        return loss.lower()
    for attr in ("name", "__name__"):
        value = getattr(loss, attr, None)
        if isinstance(value, str):
            return value.lower()
    func = getattr(loss, "func", None)  # functools.partial of a loss function
    return _loss_name(func) if func is not None else None


def _loss_from_logits(loss: Any) -> bool:
    value = getattr(loss, "from_logits", None)
    if value is None:
        for attr in ("keywords", "kwargs", "options", "config"):
            mapping = getattr(loss, attr, None)
            if isinstance(mapping, dict) and "from_logits" in mapping:
                value = mapping["from_logits"]
                break
    return bool(value)


def _resolve_accuracy(loss: Any, y_true_shape: Sequence[int] | None, y_pred_shape: Sequence[int] | None) -> str:
    loss_name = _loss_name(loss)
    if loss_name in _REGRESSION_LOSSES:
        raise ValueError(
            f"metric 'accuracy' means nothing for the regression loss {loss_name!r} (it would count exact "
            "equalities of real numbers): use 'mae', 'mse' or 'rmse', or name the accuracy you mean "
            "(binary_accuracy, categorical_accuracy, sparse_categorical_accuracy)"
        )
    if loss_name in _BINARY_LOSSES:
        return "binary_accuracy"
    if loss_name in _SPARSE_LOSSES:
        return "sparse_categorical_accuracy"
    if loss_name in _CATEGORICAL_LOSSES:
        return "categorical_accuracy"
    if y_pred_shape is None:
        raise ValueError(
            "metric 'accuracy' is resolved from the loss or the shapes: pass loss= (a "
            "crossentropy) or y_true_shape= and y_pred_shape=, or name the accuracy you mean "
            "(binary_accuracy, categorical_accuracy, sparse_categorical_accuracy)"
        )
    y_pred_shape = tuple(y_pred_shape)
    if len(y_pred_shape) < 2 or y_pred_shape[-1] == 1:
        return "binary_accuracy"
    if y_true_shape is None:
        raise ValueError(
            "metric 'accuracy' needs y_true_shape= to tell labels from one-hot "
            "targets when the loss is not a crossentropy"
        )
    y_true_shape = tuple(y_true_shape)
    if len(y_true_shape) < len(y_pred_shape) or (y_true_shape and y_true_shape[-1] == 1):
        return "sparse_categorical_accuracy"
    return "categorical_accuracy"


def get(
    identifier: str | Metric | Callable[..., Any],
    *,
    loss: Any = None,
    y_true_shape: Sequence[int] | None = None,
    y_pred_shape: Sequence[int] | None = None,
    **options: Any,
) -> Metric:
    """A :class:`Metric` from a name, a Metric, or a function ``(y_true, y_pred) -> scores``.

    ``"accuracy"``/``"acc"`` resolves as in Keras: binary_accuracy for a binary (focal)
    crossentropy loss or an output of size 1, sparse_categorical_accuracy for sparse categorical
    crossentropy or integer targets (rank one less than the output, or a last dimension of 1),
    categorical_accuracy otherwise. The metric keeps the name it was asked for (``"acc"`` stays
    ``"acc"``, as Keras names history entries). A loss with ``from_logits=True`` makes binary
    accuracy threshold the logits at 0 unless ``from_logits`` is given here.

    Options: binary_accuracy takes ``threshold``, ``from_logits``; the top-k metrics take ``k``.
    """
    if isinstance(identifier, Metric):
        if options:
            raise TypeError(
                f"options {sorted(options)} cannot be applied to a Metric instance "
                f"({identifier.name!r}); build it with them instead"
            )
        return identifier
    if isinstance(identifier, str):
        key = _NAMES.canonical(identifier)
        # Keras keeps the name asked for ("acc" stays "acc"); a class name is logged in snake case.
        name = identifier if identifier in _NAMES.names() else key
        if key == "accuracy":
            key = _resolve_accuracy(loss, y_true_shape, y_pred_shape)
            if key != "binary_accuracy":
                options.pop("from_logits", None)  # argmax does not care about logits
        scores, defaults, root = _REGISTRY[key]
        unknown = set(options) - set(defaults)
        if unknown:
            raise TypeError(
                f"metric {identifier!r} got unknown option(s) {sorted(unknown)}; "
                f"it accepts {sorted(defaults) or 'none'}"
            )
        if "from_logits" in defaults and "from_logits" not in options and loss is not None:
            options["from_logits"] = _loss_from_logits(loss)
        settings = {**defaults, **options}
        return Metric(name, scores, tuple(sorted(settings.items())), root)
    if callable(identifier):
        name = getattr(identifier, "__name__", None) or type(identifier).__name__
        return Metric(name, identifier, tuple(sorted(options.items())))
    raise TypeError(f"metric must be a name, a Metric or a callable; got {identifier!r}")


def resolve(
    metrics: Any,
    *,
    loss: Any = None,
    y_true_shape: Sequence[int] | None = None,
    y_pred_shape: Sequence[int] | None = None,
) -> tuple[Metric, ...]:
    """:func:`get` over a list of identifiers (None or one identifier allowed).

    Repeated names get Keras's suffixes ``_1``, ``_2``; a metric called ``loss`` is refused since
    it would overwrite the loss entry.
    """
    if metrics is None:
        return ()
    if isinstance(metrics, (str, Metric)) or callable(metrics):
        metrics = [metrics]
    if not isinstance(metrics, Iterable):
        raise TypeError(f"metrics must be a list of names, Metrics or callables; got {metrics!r}")
    out: list[Metric] = []
    seen: dict[str, int] = {}
    for identifier in metrics:
        m = get(identifier, loss=loss, y_true_shape=y_true_shape, y_pred_shape=y_pred_shape)
        if m.name == "loss" or m.name.startswith("val_"):
            raise ValueError(f"metric name {m.name!r} is reserved (it would clash with the loss or validation entries)")
        if m.name in seen:
            seen[m.name] += 1
            m = dataclasses.replace(m, name=f"{m.name}_{seen[m.name] - 1}")
        else:
            seen[m.name] = 1
        out.append(m)
    return tuple(out)


def __dir__() -> list[str]:
    """The public API only (implementation imports stay out of ``dir``)."""
    return sorted(__all__)
