"""Losses by name: the registry, :class:`Loss` objects and :func:`get`, and the eager target
checks ``fit`` and ``evaluate`` run before compiling anything. Losses of your own are built in
``_custom.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax

from fnn._registry import Registry
from fnn._validate import boolean, integer, real
from fnn.losses._checks import (
    check_option_range,
    contract_error as contract_error,
    per_class_option,
)
from fnn.losses._circle import check_references, circle_terms
from fnn.losses._ctc import ctc_terms
from fnn.losses._focal import categorical_focal_crossentropy_terms, categorical_generalized_cross_entropy_terms
from fnn.losses._kernels import (
    binary_crossentropy_terms,
    binary_focal_crossentropy_terms,
    categorical_crossentropy_terms,
    categorical_hinge_terms,
    cosine_similarity_terms,
    hinge_terms,
    huber_terms,
    kl_divergence_terms,
    log_cosh_terms,
    mae_terms,
    mape_terms,
    mse_terms,
    msle_terms,
    poisson_terms,
    sparse_categorical_crossentropy_terms,
    squared_hinge_terms,
)
from fnn.losses._overlap import check_axis_option, dice_terms, tversky_terms
from fnn.losses._reduction import Terms, apply_kernel, rows_value_and_grad

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

# ---------------------------------------------------------------------------------------------
# Registry, Loss objects, get().
# ---------------------------------------------------------------------------------------------


class _Spec(NamedTuple):
    kernel: Callable[..., Terms]
    defaults: dict
    check: Callable[[dict], dict] | None = None  # of the options together, after each alone


_REGISTRY: dict[str, _Spec] = {
    "mean_squared_error": _Spec(mse_terms, {}),
    "mean_absolute_error": _Spec(mae_terms, {}),
    "mean_absolute_percentage_error": _Spec(mape_terms, {}),
    "mean_squared_logarithmic_error": _Spec(msle_terms, {}),
    "huber": _Spec(huber_terms, {"delta": 1.0}),
    "log_cosh": _Spec(log_cosh_terms, {}),
    "binary_crossentropy": _Spec(binary_crossentropy_terms, {"from_logits": False, "label_smoothing": 0.0, "axis": -1}),
    "binary_focal_crossentropy": _Spec(
        binary_focal_crossentropy_terms,
        {
            "apply_class_balancing": False,
            "alpha": 0.25,
            "gamma": 2.0,
            "from_logits": False,
            "label_smoothing": 0.0,
            "axis": -1,
        },
    ),
    "categorical_crossentropy": _Spec(
        categorical_crossentropy_terms, {"from_logits": False, "label_smoothing": 0.0, "axis": -1}
    ),
    "sparse_categorical_crossentropy": _Spec(
        sparse_categorical_crossentropy_terms, {"from_logits": False, "ignore_class": None, "axis": -1}
    ),
    "categorical_focal_crossentropy": _Spec(
        categorical_focal_crossentropy_terms,
        {"alpha": 0.25, "gamma": 2.0, "from_logits": False, "label_smoothing": 0.0, "axis": -1},
    ),
    "categorical_generalized_cross_entropy": _Spec(categorical_generalized_cross_entropy_terms, {"q": 0.5}),
    "kl_divergence": _Spec(kl_divergence_terms, {}),
    "poisson": _Spec(poisson_terms, {}),
    "hinge": _Spec(hinge_terms, {}),
    "squared_hinge": _Spec(squared_hinge_terms, {}),
    "categorical_hinge": _Spec(categorical_hinge_terms, {}),
    "cosine_similarity": _Spec(cosine_similarity_terms, {"axis": -1}),
    "dice": _Spec(dice_terms, {"axis": None}),
    "tversky": _Spec(tversky_terms, {"alpha": 0.5, "beta": 0.5, "axis": None}),
    "circle": _Spec(
        circle_terms,
        {"gamma": 80.0, "margin": 0.4, "remove_diagonal": True, "ref_labels": None, "ref_embeddings": None},
        check_references,
    ),
    "ctc": _Spec(ctc_terms, {}),
}
# The losses of integer class labels (shape (N,) or (N, 1)) rather than rows shaped like y_pred.
LABEL_LOSSES = frozenset({"sparse_categorical_crossentropy", "categorical_generalized_cross_entropy"})
# The losses of integer labels that are not indices into y_pred's classes (circle's: any integers,
# compared for equality); held as int32 by fit like LABEL_LOSSES'.
PAIR_LABEL_LOSSES = frozenset({"circle"})
# The losses of padded integer label sequences (N, L) scored against per-step class scores
# (N, T, C) (ctc's: 0, the blank, pads them); held as int32 by fit like LABEL_LOSSES'.
SEQUENCE_LABEL_LOSSES = frozenset({"ctc"})

_NAMES = Registry(
    "loss",
    _REGISTRY,
    aliases={
        "mse": "mean_squared_error",
        "mae": "mean_absolute_error",
        "mape": "mean_absolute_percentage_error",
        "msle": "mean_squared_logarithmic_error",
        "kld": "kl_divergence",
        "bce": "binary_crossentropy",
        "kullback_leibler_divergence": "kl_divergence",
        "huber_loss": "huber",
        "logcosh": "log_cosh",
    },
)


def names() -> list[str]:
    """Every loss name :func:`get` knows, canonical names and aliases, sorted.

    Returns:
        The names, e.g. ``"mse"`` beside ``"mean_squared_error"``.
    """
    return _NAMES.names()


def _check_option(name: str, key: str, value: Any, default: Any) -> Any:
    where = f"loss {name!r}: {key}"
    if isinstance(default, bool):
        return boolean(where, value)
    if key in ("ref_labels", "ref_embeddings"):  # circle's, checked together by its _Spec.check
        return value
    if key == "axis" and default is None:  # dice, tversky: None, an int or a tuple of ints
        return check_axis_option(value, name)
    if (name, key) == ("categorical_focal_crossentropy", "alpha"):  # a float or one per class
        return per_class_option(value, key, name)
    if key == "ignore_class" or isinstance(default, int):
        return None if value is None and key == "ignore_class" else integer(where, value)
    value = real(where, value)
    check_option_range(value, key, name)
    return value


@dataclass(frozen=True)
class Loss:
    """A named loss with its options; hashable and compared by value (jitted code is cached on it).

    Build one with :func:`get` (the built-in losses) or :func:`custom` (your own, with its
    gradient); ``fit``, ``evaluate``, ``value_and_grad`` and ``gradcheck`` take either, or a name.

    Attributes:
        name: The canonical loss name (or a custom loss's own).
        options: Every option of the loss (defaults filled in) as sorted ``(key, value)`` pairs.
        kernel: The per-sample kernel of a custom loss; None for a built-in one.

    Raises:
        ValueError: Built directly with a name that is not canonical (use :func:`get`).

    Examples:
        >>> import fnn
        >>> loss = fnn.losses.get("mse")
        >>> value, grad = loss.value_and_grad([[0.0, 0.0]], [[1.0, 3.0]])
        >>> float(value), grad.tolist()
        (5.0, [[1.0, 3.0]])
        >>> loss.per_sample([[0.0], [0.0]], [[1.0], [2.0]]).tolist()
        [1.0, 4.0]
    """

    name: str
    options: tuple = ()
    kernel: Callable[..., Terms] | None = None

    def __post_init__(self) -> None:
        if self.kernel is None and self.name not in _REGISTRY:
            _NAMES.canonical(self.name)  # ValueError listing the known names
            raise ValueError(f"{self.name!r} is not a canonical loss name; use fnn.losses.get({self.name!r})")

    def _kernel(self) -> Callable[..., Terms]:
        return _REGISTRY[self.name].kernel if self.kernel is None else self.kernel

    def _run(self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None, want: str) -> Any:
        return apply_kernel(self._kernel(), y_true, y_pred, sample_weight, dict(self.options), want)

    def rows_value_and_grad(self, y_true: Any, y_pred: Any, sample_weight: Any, rows: Any) -> tuple[Array, Array]:
        """:meth:`value_and_grad` of the samples where ``rows`` is True only, the others counted
        as absent: the mean is over the selected samples and the others' gradient is exactly 0,
        whatever they hold (fit's padded last batch runs through it).

        Args:
            y_true: Targets, ``(N, ...)``.
            y_pred: Predictions, ``(N, ...)``.
            sample_weight: Per-sample weights or None, as in :meth:`value_and_grad`.
            rows: A bool mask ``(N,)``: the samples that count.

        Returns:
            The scalar loss of the selected samples and its gradient with respect to ``y_pred``.

        Raises:
            TypeError: For a ``rows`` that is not a bool array.
            ValueError: For a ``rows`` whose shape is not ``(N,)``, or shapes that do not match.
        """
        return rows_value_and_grad(self._kernel(), y_true, y_pred, sample_weight, dict(self.options), rows)

    def __call__(self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
        """The scalar loss.

        Args:
            y_true: Targets (see the loss's function in :mod:`fnn.losses` for the shapes).
            y_pred: Predictions.
            sample_weight: Optional per-sample weights (``(N,)``, a scalar, or the per-sample shape).

        Returns:
            The weighted mean of the per-sample losses, a scalar.

        Raises:
            ValueError: If the shapes do not match.
        """
        return self._run(y_true, y_pred, sample_weight, "value")

    def grad(self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
        """``d loss / d y_pred`` (hand-written), shape of ``y_pred``.

        Args:
            y_true: Targets.
            y_pred: Predictions.
            sample_weight: Optional per-sample weights.

        Returns:
            The gradient with respect to ``y_pred``, of its shape.

        Raises:
            ValueError: If the shapes do not match.
        """
        return self._run(y_true, y_pred, sample_weight, "grad")

    def value_and_grad(
        self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> tuple[Array, Array]:
        """``(loss, d loss / d y_pred)`` from one pass (the softmax/sigmoid is shared).

        Args:
            y_true: Targets.
            y_pred: Predictions.
            sample_weight: Optional per-sample weights.

        Returns:
            The scalar loss and its gradient with respect to ``y_pred``.

        Raises:
            ValueError: If the shapes do not match.
        """
        return self._run(y_true, y_pred, sample_weight, "both")

    def per_sample(self, y_true: ArrayLike, y_pred: ArrayLike) -> Array:
        """Unweighted per-sample losses ``l_i`` (shape ``(N,)`` for the usual 2-D ``y_pred``).

        Args:
            y_true: Targets.
            y_pred: Predictions.

        Returns:
            One loss per sample (per element for a rank-1 ``y_pred`` of an elementwise loss).

        Raises:
            ValueError: If the shapes do not match.
        """
        return self._run(y_true, y_pred, None, "per_sample")

    @property
    def whole_batch(self) -> bool:
        """Whether the loss's value is one ratio over its whole batch (dice and tversky with
        ``axis=None``, as Keras's; a mean over the samples whose label is not ``ignore_class``,
        whose count each batch has its own), or a mean of per-sample values that each depend on
        the whole batch (circle without ``ref_embeddings``: the pairs of the batch's rows), not a
        mean of per-sample values of their own rows: its value then depends on how the samples
        are batched (``fit``'s validation batches are then Keras's, ``batch_size``).

        Returns:
            True for a whole-batch loss.
        """
        options = dict(self.options)
        if options.get("ignore_class") is not None:
            return True
        when = getattr(self._kernel(), "whole_batch_if", None)
        return when is not None and bool(when(options))

    @property
    def from_logits(self) -> bool:
        """Whether the loss takes logits (its ``from_logits`` option; False if it has none).

        Returns:
            The ``from_logits`` option.
        """
        return bool(dict(self.options).get("from_logits", False))


def get(identifier: str | Loss, **options: Any) -> Loss:
    """A :class:`Loss` from a name (Keras's function or class name, or an alias) and options.

    A Loss passes through, with ``options`` overriding its own (a custom loss takes none).

    Args:
        identifier: A name (``"mse"``, ``"MeanSquaredError"``, ``"sparse_categorical_crossentropy"``...)
            or a :class:`Loss`.
        **options: The loss's options (``from_logits``, ``label_smoothing``, ``axis``, ``delta``,
            ``ignore_class``, ``gamma``...; :func:`names` lists the losses, each function here its
            options).

    Returns:
        The :class:`Loss`, every option filled in.

    Raises:
        ValueError: For an unknown name (listing the known ones) or a bad option value.
        TypeError: For an option the loss does not take or of the wrong type.

    Examples:
        >>> import fnn
        >>> loss = fnn.losses.get("SparseCategoricalCrossentropy", from_logits=True)
        >>> loss.name, loss.from_logits
        ('sparse_categorical_crossentropy', True)
        >>> fnn.losses.get("huber", delta=0.5).options
        (('delta', 0.5),)
    """
    if isinstance(identifier, Loss) and identifier.kernel is not None:  # a custom loss
        if options:
            raise TypeError(f"custom loss {identifier.name!r} takes no options; build it with them instead")
        return identifier
    if isinstance(identifier, Loss):
        name, merged = identifier.name, {**dict(identifier.options), **options}
    elif isinstance(identifier, str):
        name, merged = _NAMES.canonical(identifier), options
    else:
        raise TypeError(f"loss must be a name (str) or an fnn.losses.Loss, got {type(identifier).__name__}")
    defaults = _REGISTRY[name].defaults
    unknown = sorted(set(merged) - set(defaults))
    if unknown:
        raise TypeError(
            f"loss {name!r} got unexpected option(s) {unknown}; it takes: {', '.join(defaults) or 'no options'}"
        )
    values = {k: _check_option(name, k, merged.get(k, d), d) for k, d in defaults.items()}
    check = _REGISTRY[name].check
    if check is not None:
        values = check(values)
    return Loss(name, tuple(sorted(values.items())))
