"""Accuracies (binary, categorical, sparse, top-k) as per-element 0/1 scores, with Keras 3's
rules, and the value check of sparse labels (integer class ids in [0, C)), the losses' rule.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from fnn._placement import to_host
from fnn._validate import boolean, integer, is_traced, real
from fnn.losses._checks import check_label_values
from fnn.metrics._base import Entry, as_arrays, float_dtype, same_rank

Array = jax.Array


def _label_shape(y_true_shape: tuple[int, ...], y_pred_shape: tuple[int, ...], metric: str) -> tuple[int, ...]:
    """The labels' shape without a trailing 1, checked against ``y_pred_shape[:-1]``."""
    shape = tuple(y_true_shape)
    if len(shape) == len(y_pred_shape) and shape and shape[-1] == 1:
        shape = shape[:-1]
    if shape != tuple(y_pred_shape[:-1]):
        want = tuple(y_pred_shape[:-1])
        raise ValueError(
            f"{metric}: sparse y_true must hold one integer label per sample, shape {want} or "
            f"{want + (1,)}; got y_true {tuple(y_true_shape)} for y_pred {tuple(y_pred_shape)}"
        )
    return shape


def check_labels(y_true: Any, y_pred_shape: tuple[int, ...], metric: str, ignore_class: Any = None) -> None:
    """Labels against predictions of ``y_pred_shape``: one per sample, integer class ids in
    ``[0, C)`` (or ``ignore_class``), as the sparse losses demand; the values are read in NumPy
    (compiling nothing), a traced array's (under the user's jit) are not: its shape is checked."""
    if is_traced(y_true):
        _label_shape(tuple(y_true.shape), tuple(y_pred_shape), metric)
        return
    host = to_host(y_true)
    shape = _label_shape(host.shape, tuple(y_pred_shape), metric)
    check_label_values(host.reshape(shape), int(y_pred_shape[-1]), ignore_class, metric)


def _sparse_labels(y_true: Array, y_pred: Array, metric: str) -> Array:
    """Integer labels of shape ``y_pred.shape[:-1]`` from (N,) or (N, 1) targets; their values are
    checked when concrete (under jit they are traced: see :func:`fnn.metrics.check_targets`)."""
    shape = _label_shape(y_true.shape, y_pred.shape, metric)
    if not is_traced(y_true):
        check_labels(y_true, y_pred.shape, metric)
    return y_true.reshape(shape).astype(jnp.int32)


def _one_hot_check(y_true: Array, y_pred: Array) -> None:
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"categorical y_true must be one-hot with the shape of y_pred; got y_true "
            f"{y_true.shape} and y_pred {y_pred.shape} (use the sparse_ metric for labels)"
        )


def _binary_matches(y_true: Any, y_pred: Any, threshold: float = 0.5, from_logits: bool = False) -> Array:
    """``[y_true == (y_pred > t)]`` elementwise; with logits the threshold is ``log(t/(1-t))``
    (0 for t = 0.5), the same decision as ``sigmoid(y_pred) > t``."""
    y_true, y_pred = as_arrays(y_true, y_pred)
    dtype = float_dtype(y_pred)
    y_true, y_pred = same_rank(y_true, y_pred)
    if from_logits and not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be a probability in (0, 1) with from_logits=True; got {threshold}")
    cut = math.log(threshold / (1.0 - threshold)) if from_logits else threshold
    predicted = (y_pred > cut).astype(dtype)
    return (y_true.astype(dtype) == predicted).astype(dtype)


def _categorical_matches(y_true: Any, y_pred: Any) -> Array:
    """``[argmax y_true == argmax y_pred]`` per sample (first index wins ties, as argmax)."""
    y_true, y_pred = as_arrays(y_true, y_pred)
    _one_hot_check(y_true, y_pred)
    hit = jnp.argmax(y_true, axis=-1) == jnp.argmax(y_pred, axis=-1)
    return hit.astype(float_dtype(y_pred))


def _sparse_categorical_matches(y_true: Any, y_pred: Any) -> Array:
    """``[y_true == argmax y_pred]`` per sample, labels of shape (N,) or (N, 1)."""
    y_true, y_pred = as_arrays(y_true, y_pred)
    labels = _sparse_labels(y_true, y_pred, "sparse_categorical_accuracy")
    # argmax's indices are int64 under x64: cast, as jax_numpy_dtype_promotion="strict" asks
    return (labels == jnp.argmax(y_pred, axis=-1).astype(labels.dtype)).astype(float_dtype(y_pred))


def _in_top_k(labels: Array, y_pred: Array, k: int) -> Array:
    # Keras's jax in_top_k: rank = 1 + #(scores strictly above the label's score), so a tie with
    # the label counts in its favour; a NaN score at the label never counts.
    k = integer("k", k, 1)
    at_label = jnp.take_along_axis(y_pred, labels[..., None], axis=-1)
    at_label = jnp.where(jnp.isnan(at_label), -jnp.inf, at_label)
    rank = 1 + jnp.sum(y_pred > at_label, axis=-1)
    return (rank <= k).astype(float_dtype(y_pred))


def _top_k_matches(y_true: Any, y_pred: Any, k: int = 5) -> Array:
    """``[argmax y_true among the k largest y_pred]`` per sample."""
    y_true, y_pred = as_arrays(y_true, y_pred)
    _one_hot_check(y_true, y_pred)
    return _in_top_k(jnp.argmax(y_true, axis=-1), y_pred, k)


def _sparse_top_k_matches(y_true: Any, y_pred: Any, k: int = 5) -> Array:
    """``[y_true among the k largest y_pred]`` per sample."""
    y_true, y_pred = as_arrays(y_true, y_pred)
    return _in_top_k(_sparse_labels(y_true, y_pred, "sparse_top_k_categorical_accuracy"), y_pred, k)


def _mean(scores: Any, y_true: Any, y_pred: Any, **options: Any) -> Array:
    return jnp.mean(scores(y_true, y_pred, **options))


def binary_accuracy(
    y_true: jax.typing.ArrayLike, y_pred: jax.typing.ArrayLike, threshold: float = 0.5, from_logits: bool = False
) -> Array:
    """``mean(y_true == (y_pred > threshold))`` over all elements.

    Shapes: y_true and y_pred (N,) or (N, k), a trailing 1 on either side is squeezed. With
    ``from_logits=True`` y_pred are logits and the cut is ``log(t / (1 - t))`` (0 for t = 0.5).

    Args:
        y_true: 0/1 targets, the shape of ``y_pred`` (up to a trailing 1).
        y_pred: Probabilities (or logits with ``from_logits=True``), (N,) or (N, k).
        threshold: The cut: a prediction is 1 when ``y_pred > threshold`` (strictly).
        from_logits: ``y_pred`` are logits; ``threshold`` must then be in (0, 1).

    Returns:
        The share of matching elements, a scalar array.

    Raises:
        ValueError: For shapes that differ beyond a trailing 1, or with ``from_logits=True`` a
            ``threshold`` outside (0, 1).

    Examples:
        >>> import fnn
        >>> float(fnn.metrics.binary_accuracy([0, 1, 1, 0], [0.2, 0.8, 0.4, 0.6]))
        0.5
    """
    return _mean(_binary_matches, y_true, y_pred, threshold=threshold, from_logits=from_logits)


def categorical_accuracy(y_true: jax.typing.ArrayLike, y_pred: jax.typing.ArrayLike) -> Array:
    """``mean(argmax(y_true, -1) == argmax(y_pred, -1))``; y_true one-hot (N, C), y_pred (N, C).

    Ties go to the first index, as ``argmax``.

    Args:
        y_true: One-hot (or probability) targets (N, C).
        y_pred: Scores (N, C): probabilities or logits alike.

    Returns:
        The share of samples whose predicted class is the true one, a scalar array.

    Raises:
        ValueError: For ``y_true`` not of ``y_pred``'s shape (integer labels want
            :func:`sparse_categorical_accuracy`).

    Examples:
        >>> import fnn
        >>> float(fnn.metrics.categorical_accuracy([[0, 1], [1, 0]], [[0.3, 0.7], [0.4, 0.6]]))
        0.5
    """
    return _mean(_categorical_matches, y_true, y_pred)


def sparse_categorical_accuracy(y_true: jax.typing.ArrayLike, y_pred: jax.typing.ArrayLike) -> Array:
    """``mean(y_true == argmax(y_pred, -1))``; y_true integer labels (N,) or (N, 1), y_pred (N, C).

    Concrete labels must be integer class ids in [0, C) (a float label such as 1.5 is refused,
    not truncated), the rule of the sparse losses.

    Args:
        y_true: Integer class ids (N,) or (N, 1) (floats holding integers are accepted).
        y_pred: Scores (N, C).

    Returns:
        The share of samples whose predicted class is the label, a scalar array.

    Raises:
        ValueError: For labels not of shape (N,) or (N, 1), or (concrete ones) not integers in
            [0, C).

    Examples:
        >>> import fnn
        >>> scores = [[0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.2, 0.5, 0.3]]
        >>> round(float(fnn.metrics.sparse_categorical_accuracy([1, 0, 2], scores)), 4)
        0.6667
    """
    return _mean(_sparse_categorical_matches, y_true, y_pred)


def top_k_categorical_accuracy(y_true: jax.typing.ArrayLike, y_pred: jax.typing.ArrayLike, k: int = 5) -> Array:
    """Share of samples whose true class (argmax of one-hot y_true (N, C)) is among the k
    largest of y_pred (N, C); ties with the true class's score count as hits (Keras).

    A NaN score of the true class never counts as a hit.

    Args:
        y_true: One-hot targets (N, C).
        y_pred: Scores (N, C).
        k: How many of the largest scores count, an int >= 1.

    Returns:
        The share of hits, a scalar array.

    Raises:
        TypeError: For a ``k`` that is not an int.
        ValueError: For ``k < 1``, or ``y_true`` not of ``y_pred``'s shape.

    Examples:
        >>> import fnn, jax, numpy as np
        >>> scores = np.array([[0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.2, 0.5, 0.3]])
        >>> one_hot = np.eye(3)[[1, 0, 2]]
        >>> top2 = jax.jit(fnn.metrics.top_k_categorical_accuracy, static_argnames="k")
        >>> float(top2(one_hot, scores, k=2))  # the third sample's class 2 is its second best
        1.0
    """
    return _mean(_top_k_matches, y_true, y_pred, k=k)


def sparse_top_k_categorical_accuracy(y_true: jax.typing.ArrayLike, y_pred: jax.typing.ArrayLike, k: int = 5) -> Array:
    """:func:`top_k_categorical_accuracy` with integer labels (N,) or (N, 1).

    Args:
        y_true: Integer class ids (N,) or (N, 1), checked as in
            :func:`sparse_categorical_accuracy`.
        y_pred: Scores (N, C).
        k: How many of the largest scores count, an int >= 1.

    Returns:
        The share of samples whose label is among the ``k`` largest scores, a scalar array.

    Raises:
        TypeError: For a ``k`` that is not an int.
        ValueError: For ``k < 1``, or labels of the wrong shape or (concrete ones) not integers
            in [0, C).

    Examples:
        >>> import fnn
        >>> scores = [[0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.2, 0.5, 0.3]]
        >>> float(fnn.metrics.sparse_top_k_categorical_accuracy([1, 0, 2], scores, k=2))
        1.0
    """
    return _mean(_sparse_top_k_matches, y_true, y_pred, k=k)


def _binary_options(options: dict[str, Any]) -> dict[str, Any]:
    """binary_accuracy's options checked when it is built (traced, a string threshold failed as
    a comparison of the outputs, named as their shapes'); returned as given."""
    boolean("from_logits", options["from_logits"])
    if options["from_logits"]:
        real("threshold", options["threshold"], 0.0, 1.0, lo_open=True, hi_open=True, what="a probability in (0, 1)")
    else:
        real("threshold", options["threshold"])
    return options


def _top_k_options(options: dict[str, Any]) -> dict[str, Any]:
    integer("k", options["k"], 1)
    return options


ENTRIES = {
    "binary_accuracy": Entry(
        _binary_matches, {"threshold": 0.5, "from_logits": False}, check=_binary_options, direction="up"
    ),
    "categorical_accuracy": Entry(_categorical_matches, {}, direction="up"),
    "sparse_categorical_accuracy": Entry(_sparse_categorical_matches, {}, direction="up"),
    "top_k_categorical_accuracy": Entry(_top_k_matches, {"k": 5}, check=_top_k_options, direction="up"),
    "sparse_top_k_categorical_accuracy": Entry(_sparse_top_k_matches, {"k": 5}, check=_top_k_options, direction="up"),
}
# The scores that read integer labels: their values are checked on the host before fitting.
SPARSE_LABEL_SCORES = {_sparse_categorical_matches, _sparse_top_k_matches}
# What to use instead when targets are of the other kind (labels vs one-hot rows).
_OR_ACCURACY = " (or 'accuracy', resolved from the shapes)"
ALTERNATIVES = {
    _categorical_matches: "for integer labels use 'sparse_categorical_accuracy'" + _OR_ACCURACY,
    _sparse_categorical_matches: "for one-hot targets use 'categorical_accuracy'" + _OR_ACCURACY,
    _top_k_matches: "for integer labels use 'sparse_top_k_categorical_accuracy'",
    _sparse_top_k_matches: "for one-hot targets use 'top_k_categorical_accuracy'",
}
