"""Keras's metrics that are losses (``"mape"``, ``"binary_crossentropy"``, ``"CosineSimilarity"``...):
the streamed, optionally weighted, mean of the fnn loss's per-sample values, as Keras's
``MeanMetricWrapper`` averages its loss function.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from fnn import losses
from fnn._values import bound
from fnn.metrics._base import Entry, as_arrays, divide_no_nan, float_dtype, namespace, sample_weights

Array = jax.Array


def _loss_sums(
    loss_name: str, sign: float, y_true: Any, y_pred: Any, sample_weight: Any, **options: Any
) -> tuple[Array, Array]:
    """``(sum w * sign * l, sum w)`` over the loss's per-sample values ``l`` (``w``: 1 without
    weights); samples of ``ignore_class`` weigh 0."""
    return loss_object_sums(losses.get(loss_name, **options), y_true, y_pred, sample_weight, sign=sign)


def loss_object_sums(
    loss: losses.Loss, y_true: Any, y_pred: Any, sample_weight: Any = None, *, sign: float = 1.0
) -> tuple[Array, Array]:
    """:func:`_loss_sums` of a :class:`fnn.losses.Loss` (a built-in one with its options, or a
    custom one) given as a metric: the streamed, weighted mean of its per-sample values."""
    options = dict(loss.options)
    y_true, y_pred = as_arrays(y_true, y_pred)
    per = jnp.asarray(loss.per_sample(y_true, y_pred))
    dtype = float_dtype(per, y_pred)
    per = sign * per.astype(dtype)
    w = jnp.ones(per.shape, dtype) if sample_weight is None else sample_weights(sample_weight, per.shape, dtype)
    ignore_class = options.get("ignore_class")
    if ignore_class is not None:
        # the loss gives those samples 0 and leaves them out of its mean; so does the metric
        # (Keras's metric counts them as zeros unless sample weights are given)
        w = jnp.where(y_true.reshape(per.shape) != ignore_class, w, 0)
    # a sample of weight 0 adds nothing, even where its loss is not finite (fit's padding rows)
    return jnp.sum(jnp.where(w != 0, w * per, 0)), jnp.sum(w)


def mean(total: Any, count: Any, **_: Any) -> Any:
    """``total / count``, 0 for a count of 0 (Keras's ``Mean``)."""
    xp = namespace(total, count)
    return divide_no_nan(xp, xp.asarray(total), xp.asarray(count))


def _loss_options(loss_name: str, keys: tuple[str, ...], options: dict[str, Any]) -> dict[str, Any]:
    """The options validated (and normalised) as the loss validates them."""
    checked = dict(losses.get(loss_name, **options).options)
    return {k: checked[k] for k in keys}


def _entry(loss_name: str, keys: tuple[str, ...] = (), sign: float = 1.0) -> Entry:
    """A metric of the loss ``loss_name`` with the options ``keys`` (Keras's metric class's), at
    the loss's defaults."""
    defaults = dict(losses.get(loss_name).options)
    return Entry(
        bound(_loss_sums, loss_name, sign),
        {k: defaults[k] for k in keys},
        finish=mean,
        check=bound(_loss_options, loss_name, keys),
        direction="up" if sign < 0 else "down",  # a loss falls as predictions improve, its negative grows
    )


ENTRIES = {
    "mape": _entry("mean_absolute_percentage_error"),
    "msle": _entry("mean_squared_logarithmic_error"),
    "log_cosh_error": _entry("log_cosh"),
    "poisson": _entry("poisson"),
    "kl_divergence": _entry("kl_divergence"),
    "binary_crossentropy": _entry("binary_crossentropy", ("from_logits", "label_smoothing")),
    "categorical_crossentropy": _entry("categorical_crossentropy", ("from_logits", "label_smoothing", "axis")),
    "sparse_categorical_crossentropy": _entry(
        "sparse_categorical_crossentropy", ("from_logits", "ignore_class", "axis")
    ),
    "hinge": _entry("hinge"),
    "squared_hinge": _entry("squared_hinge"),
    "categorical_hinge": _entry("categorical_hinge"),
    # Keras's CosineSimilarity metric is the cosine itself (+1 for equal directions); the loss
    # is its negative
    "cosine_similarity": _entry("cosine_similarity", ("axis",), sign=-1.0),
}
ALIASES = {
    "mean_absolute_percentage_error": "mape",
    "mean_squared_logarithmic_error": "msle",
    "log_cosh": "log_cosh_error",
    "bce": "binary_crossentropy",
    "kld": "kl_divergence",
    "kullback_leibler_divergence": "kl_divergence",
}
SPARSE_SCORES = {ENTRIES["sparse_categorical_crossentropy"].scores}
# What to use instead when targets are of the other kind (labels vs one-hot rows).
ALTERNATIVES = {
    ENTRIES["categorical_crossentropy"].scores: "for integer labels use 'sparse_categorical_crossentropy'",
    ENTRIES["sparse_categorical_crossentropy"].scores: "for one-hot targets use 'categorical_crossentropy'",
}
