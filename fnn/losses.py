"""Losses with Keras 3's names, argument order ``(y_true, y_pred)``, numerics and defaults.

Every loss ``name(y_true, y_pred, ..., sample_weight=None) -> scalar`` sits beside its
hand-written gradient ``name_grad(...)`` with respect to ``y_pred`` (same shape as ``y_pred``).
No gradient here uses jax's autodiff. The kernels that compute both (each per-sample loss
beside its derivative) and the shared reduction are in ``fnn/_loss_kernels.py``.

Reduction (Keras's ``"sum_over_batch_size"``): the elementwise loss is first reduced over the
feature/class axis to per-sample values ``l_i`` (shape ``y_pred.shape`` without that axis), then
``loss = sum_i w_i l_i / n`` with ``n`` the number of per-sample values and ``w`` the optional
``sample_weight`` (default 1; shape ``(N,)``, scalar, or the per-sample shape). A rank-1
``y_pred`` of shape ``(N,)`` is N samples of one output each for the elementwise losses (the
value equals Keras's); for the class-axis losses (categorical CE, sparse CE, KL divergence,
categorical hinge, cosine similarity) it is one sample. ``y_true`` of shape ``(N,)`` pairs with
``y_pred`` of shape ``(N, 1)`` and vice versa (Keras's ``squeeze_or_expand_to_same_rank``).
(Keras reduces a rank-1 batch to one scalar first, so it would scale a weighted one by mean(w).)

Numerics follow Keras 3 (``keras/src/losses/losses.py`` and the JAX backend's ``nn.py``):
``EPSILON = 1e-7``; probabilities are clipped to ``[EPSILON, 1 - EPSILON]``; categorical CE
renormalises ``y_pred`` to sum 1 along the class axis before clipping; logits go through
log-sigmoid / log-softmax. Two documented departures: binary focal CE with ``from_logits=True``
takes the log-sigmoid form (Keras clips ``sigmoid(z)``, so the two differ only for |z| > ~16,
where Keras's gradient vanishes); sparse CE's ignored samples get their label replaced by 0
instead of Keras's ``y_pred * mask`` (same value, but no NaN in the gradient). MSLE uses
``log1p(x)`` for Keras's ``log(x + 1)`` (equal up to rounding, exact for small x).

Kinks and clips: a gradient equals ``jax.grad`` of the forward formula as written here. Clips
pass the gradient on the closed interval (``x == bound`` counts as inside) and give 0 outside;
``|y_pred - y_true|`` has derivative +1 at 0; hinge terms ``max(m, 0)`` have derivative 0 at
``m = 0``; the max in categorical hinge splits its gradient evenly among ties.
"""
from __future__ import annotations

import functools
import math
import numbers
import operator
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn._loss_kernels import (  # the numerics; this module is the public face
    EPSILON, _apply, _binary_crossentropy, _binary_focal_crossentropy, _categorical_crossentropy,
    _categorical_hinge, _check_label_values, _check_smoothing, _cosine_similarity, _hinge, _huber,
    _kl_divergence, _log_cosh, _mae, _mape, _mse, _msle, _norm_axis, _poisson,
    _sparse_categorical_crossentropy, _squared_hinge, _Terms,
)

Array = jax.Array

# ---------------------------------------------------------------------------------------------
# Public loss functions and their gradients with respect to y_pred.
# ---------------------------------------------------------------------------------------------

def mean_squared_error(y_true, y_pred, sample_weight=None) -> Array:
    """``mean_i w_i mean_j (y_pred_ij - y_true_ij)^2``."""
    return _apply(_mse, y_true, y_pred, sample_weight, {}, "value")


def mean_squared_error_grad(y_true, y_pred, sample_weight=None) -> Array:
    """``2 w_i (y_pred - y_true) / (n D)``."""
    return _apply(_mse, y_true, y_pred, sample_weight, {}, "grad")


def mean_absolute_error(y_true, y_pred, sample_weight=None) -> Array:
    """``mean_i w_i mean_j |y_pred_ij - y_true_ij|``."""
    return _apply(_mae, y_true, y_pred, sample_weight, {}, "value")


def mean_absolute_error_grad(y_true, y_pred, sample_weight=None) -> Array:
    """``w_i sign(y_pred - y_true) / (n D)`` (+1 at a tie)."""
    return _apply(_mae, y_true, y_pred, sample_weight, {}, "grad")


def mean_absolute_percentage_error(y_true, y_pred, sample_weight=None) -> Array:
    """``100 mean_i w_i mean_j |y_pred - y_true| / max(|y_true|, 1e-7)``."""
    return _apply(_mape, y_true, y_pred, sample_weight, {}, "value")


def mean_absolute_percentage_error_grad(y_true, y_pred, sample_weight=None) -> Array:
    """``100 w_i sign(y_pred - y_true) / (max(|y_true|, 1e-7) n D)``."""
    return _apply(_mape, y_true, y_pred, sample_weight, {}, "grad")


def mean_squared_logarithmic_error(y_true, y_pred, sample_weight=None) -> Array:
    """``mean_i w_i mean_j (log(1 + max(y_pred, 1e-7)) - log(1 + max(y_true, 1e-7)))^2``."""
    return _apply(_msle, y_true, y_pred, sample_weight, {}, "value")


def mean_squared_logarithmic_error_grad(y_true, y_pred, sample_weight=None) -> Array:
    """``2 w_i r / ((1 + y_pred) n D)`` where ``y_pred >= 1e-7`` (0 below); r the log ratio."""
    return _apply(_msle, y_true, y_pred, sample_weight, {}, "grad")


def huber(y_true, y_pred, delta=1.0, sample_weight=None) -> Array:
    """Huber: quadratic ``e^2/2`` for ``|e| <= delta``, linear ``delta |e| - delta^2/2`` beyond."""
    return _apply(_huber, y_true, y_pred, sample_weight, {"delta": delta}, "value")


def huber_grad(y_true, y_pred, delta=1.0, sample_weight=None) -> Array:
    """``w_i clip(y_pred - y_true, -delta, delta) / (n D)``."""
    return _apply(_huber, y_true, y_pred, sample_weight, {"delta": delta}, "grad")


def log_cosh(y_true, y_pred, sample_weight=None) -> Array:
    """``mean_i w_i mean_j log cosh(y_pred - y_true)``, overflow-free."""
    return _apply(_log_cosh, y_true, y_pred, sample_weight, {}, "value")


def log_cosh_grad(y_true, y_pred, sample_weight=None) -> Array:
    """``w_i tanh(y_pred - y_true) / (n D)``."""
    return _apply(_log_cosh, y_true, y_pred, sample_weight, {}, "grad")


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1,
                        sample_weight=None) -> Array:
    """``mean_i w_i mean_j -(t log p + (1-t) log(1-p))``, p clipped to [1e-7, 1-1e-7] (or
    ``p = sigmoid(y_pred)`` computed stably), ``t = y_true (1 - ls) + ls/2``."""
    opts = {"from_logits": from_logits, "label_smoothing": label_smoothing, "axis": axis}
    return _apply(_binary_crossentropy, y_true, y_pred, sample_weight, opts, "value")


def binary_crossentropy_grad(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1,
                             sample_weight=None) -> Array:
    """Logits: ``w_i (sigmoid(z) - t) / (n D)``; probabilities: ``w_i (p - t) / (p (1-p) n D)``
    where p is not clipped, else 0."""
    opts = {"from_logits": from_logits, "label_smoothing": label_smoothing, "axis": axis}
    return _apply(_binary_crossentropy, y_true, y_pred, sample_weight, opts, "grad")


def binary_focal_crossentropy(y_true, y_pred, apply_class_balancing=False, alpha=0.25, gamma=2.0,
                              from_logits=False, label_smoothing=0.0, axis=-1, sample_weight=None) -> Array:
    """Focal BCE (Lin et al. 2018): ``mean_i w_i mean_j a (1 - p_t)^gamma bce`` with
    ``p_t = t p + (1-t)(1-p)`` and ``a = t alpha + (1-t)(1-alpha)`` if ``apply_class_balancing``."""
    opts = {"apply_class_balancing": apply_class_balancing, "alpha": alpha, "gamma": gamma,
            "from_logits": from_logits, "label_smoothing": label_smoothing, "axis": axis}
    return _apply(_binary_focal_crossentropy, y_true, y_pred, sample_weight, opts, "value")


def binary_focal_crossentropy_grad(y_true, y_pred, apply_class_balancing=False, alpha=0.25, gamma=2.0,
                                   from_logits=False, label_smoothing=0.0, axis=-1,
                                   sample_weight=None) -> Array:
    """Product rule on ``(1 - p_t)^gamma bce`` (see ``_binary_focal_crossentropy``)."""
    opts = {"apply_class_balancing": apply_class_balancing, "alpha": alpha, "gamma": gamma,
            "from_logits": from_logits, "label_smoothing": label_smoothing, "axis": axis}
    return _apply(_binary_focal_crossentropy, y_true, y_pred, sample_weight, opts, "grad")


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1,
                             sample_weight=None) -> Array:
    """``mean_i w_i (-sum_j t_j log q_j)``, ``q = clip(p / sum p, 1e-7, 1-1e-7)`` or
    ``log q = log_softmax(y_pred)``, ``t = y_true (1 - ls) + ls / C``."""
    opts = {"from_logits": from_logits, "label_smoothing": label_smoothing, "axis": axis}
    return _apply(_categorical_crossentropy, y_true, y_pred, sample_weight, opts, "value")


def categorical_crossentropy_grad(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1,
                                  sample_weight=None) -> Array:
    """Logits: ``w_i (softmax(z) - t) / n`` (times ``sum t``); probabilities: through the
    renormalisation and the clip (see ``_cross_entropy``)."""
    opts = {"from_logits": from_logits, "label_smoothing": label_smoothing, "axis": axis}
    return _apply(_categorical_crossentropy, y_true, y_pred, sample_weight, opts, "grad")


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1,
                                    sample_weight=None) -> Array:
    """Categorical CE with integer labels ``y_true`` of shape ``(N,)`` or ``(N, 1)``. Samples
    whose label is ``ignore_class`` count 0 and the mean is over the others (Keras's mask rule:
    ``sum_i w_i m_i l_i / sum_i m_i``, 0 when every sample is ignored)."""
    opts = {"from_logits": from_logits, "ignore_class": ignore_class, "axis": axis}
    return _apply(_sparse_categorical_crossentropy, y_true, y_pred, sample_weight, opts, "value")


def sparse_categorical_crossentropy_grad(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1,
                                         sample_weight=None) -> Array:
    """Logits: ``w_i (softmax(z) - onehot(y)) / n``; ignored samples get 0."""
    opts = {"from_logits": from_logits, "ignore_class": ignore_class, "axis": axis}
    return _apply(_sparse_categorical_crossentropy, y_true, y_pred, sample_weight, opts, "grad")


def kl_divergence(y_true, y_pred, sample_weight=None) -> Array:
    """``mean_i w_i sum_j t log(t / p)``, t and p clipped to [1e-7, 1]."""
    return _apply(_kl_divergence, y_true, y_pred, sample_weight, {}, "value")


def kl_divergence_grad(y_true, y_pred, sample_weight=None) -> Array:
    """``-w_i t / (p n)`` where p is not clipped, else 0."""
    return _apply(_kl_divergence, y_true, y_pred, sample_weight, {}, "grad")


def poisson(y_true, y_pred, sample_weight=None) -> Array:
    """``mean_i w_i mean_j (p - t log(p + 1e-7))``."""
    return _apply(_poisson, y_true, y_pred, sample_weight, {}, "value")


def poisson_grad(y_true, y_pred, sample_weight=None) -> Array:
    """``w_i (1 - t / (p + 1e-7)) / (n D)``."""
    return _apply(_poisson, y_true, y_pred, sample_weight, {}, "grad")


def hinge(y_true, y_pred, sample_weight=None) -> Array:
    """``mean_i w_i mean_j max(1 - t p, 0)``; {0, 1} labels become {-1, 1} as in Keras."""
    return _apply(_hinge, y_true, y_pred, sample_weight, {}, "value")


def hinge_grad(y_true, y_pred, sample_weight=None) -> Array:
    """``-w_i t [1 - t p > 0] / (n D)``."""
    return _apply(_hinge, y_true, y_pred, sample_weight, {}, "grad")


def squared_hinge(y_true, y_pred, sample_weight=None) -> Array:
    """``mean_i w_i mean_j max(1 - t p, 0)^2``; {0, 1} labels become {-1, 1}."""
    return _apply(_squared_hinge, y_true, y_pred, sample_weight, {}, "value")


def squared_hinge_grad(y_true, y_pred, sample_weight=None) -> Array:
    """``-2 w_i t max(1 - t p, 0) / (n D)``."""
    return _apply(_squared_hinge, y_true, y_pred, sample_weight, {}, "grad")


def categorical_hinge(y_true, y_pred, sample_weight=None) -> Array:
    """``mean_i w_i max(max_j (1-t) p - sum_j t p + 1, 0)``."""
    return _apply(_categorical_hinge, y_true, y_pred, sample_weight, {}, "value")


def categorical_hinge_grad(y_true, y_pred, sample_weight=None) -> Array:
    """``w_i [l_i > 0] ((1-t) e_argmax - t) / n``."""
    return _apply(_categorical_hinge, y_true, y_pred, sample_weight, {}, "grad")


def cosine_similarity(y_true, y_pred, axis=-1, sample_weight=None) -> Array:
    """``-mean_i w_i cos(y_true_i, y_pred_i)`` (NEGATIVE cosine, as Keras; norms floored at 1e-7)."""
    return _apply(_cosine_similarity, y_true, y_pred, sample_weight, {"axis": axis}, "value")


def cosine_similarity_grad(y_true, y_pred, axis=-1, sample_weight=None) -> Array:
    """``-w_i (t^ - cos p^) / (|p| n)``."""
    return _apply(_cosine_similarity, y_true, y_pred, sample_weight, {"axis": axis}, "grad")


# ---------------------------------------------------------------------------------------------
# Registry, Loss objects, get().
# ---------------------------------------------------------------------------------------------

class _Spec(NamedTuple):
    kernel: Callable[..., _Terms]
    defaults: dict


_REGISTRY: dict[str, _Spec] = {
    "mean_squared_error": _Spec(_mse, {}),
    "mean_absolute_error": _Spec(_mae, {}),
    "mean_absolute_percentage_error": _Spec(_mape, {}),
    "mean_squared_logarithmic_error": _Spec(_msle, {}),
    "huber": _Spec(_huber, {"delta": 1.0}),
    "log_cosh": _Spec(_log_cosh, {}),
    "binary_crossentropy": _Spec(_binary_crossentropy,
                                 {"from_logits": False, "label_smoothing": 0.0, "axis": -1}),
    "binary_focal_crossentropy": _Spec(_binary_focal_crossentropy, {
        "apply_class_balancing": False, "alpha": 0.25, "gamma": 2.0, "from_logits": False,
        "label_smoothing": 0.0, "axis": -1}),
    "categorical_crossentropy": _Spec(_categorical_crossentropy,
                                      {"from_logits": False, "label_smoothing": 0.0, "axis": -1}),
    "sparse_categorical_crossentropy": _Spec(_sparse_categorical_crossentropy,
                                             {"from_logits": False, "ignore_class": None, "axis": -1}),
    "kl_divergence": _Spec(_kl_divergence, {}),
    "poisson": _Spec(_poisson, {}),
    "hinge": _Spec(_hinge, {}),
    "squared_hinge": _Spec(_squared_hinge, {}),
    "categorical_hinge": _Spec(_categorical_hinge, {}),
    "cosine_similarity": _Spec(_cosine_similarity, {"axis": -1}),
}

_ALIASES = {
    "mse": "mean_squared_error", "mae": "mean_absolute_error",
    "mape": "mean_absolute_percentage_error", "msle": "mean_squared_logarithmic_error",
    "kld": "kl_divergence", "kullback_leibler_divergence": "kl_divergence",
    "huber_loss": "huber", "logcosh": "log_cosh",
}


def _key(name: str) -> str:
    # Case and underscores are ignored, so Keras's class names (MeanSquaredError, KLDivergence) work too.
    return name.lower().replace("_", "")


_LOOKUP = {_key(n): n for n in _REGISTRY} | {_key(a): n for a, n in _ALIASES.items()}


def names() -> list[str]:
    """Every loss name :func:`get` knows, canonical names and aliases, sorted."""
    return sorted([*_REGISTRY, *_ALIASES])


def _check_option(name: str, key: str, value: Any, default: Any) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"loss {name!r}: {key} must be a bool, got {value!r}")
        return bool(value)
    if key == "ignore_class" or isinstance(default, int):
        if value is None and key == "ignore_class":
            return None
        try:
            if isinstance(value, bool):
                raise TypeError
            return operator.index(value)
        except TypeError:
            raise TypeError(f"loss {name!r}: {key} must be an int, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"loss {name!r}: {key} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"loss {name!r}: {key} must be finite, got {value!r}")
    if key == "label_smoothing":
        _check_smoothing(value, name)
    return value


@dataclass(frozen=True)
class Loss:
    """A named loss with its options; hashable and compared by value (jitted code is cached on it).

    Build one with :func:`get`. ``options`` holds every option of the loss (defaults filled
    in) as sorted ``(key, value)`` pairs.
    """

    name: str
    options: tuple = ()

    def __post_init__(self):
        if self.name not in _REGISTRY:
            raise ValueError(f"unknown loss {self.name!r}; known names: {', '.join(names())}")

    def _run(self, y_true, y_pred, sample_weight, want):
        return _apply(_REGISTRY[self.name].kernel, y_true, y_pred, sample_weight, dict(self.options), want)

    def __call__(self, y_true, y_pred, sample_weight=None) -> Array:
        """The scalar loss."""
        return self._run(y_true, y_pred, sample_weight, "value")

    def grad(self, y_true, y_pred, sample_weight=None) -> Array:
        """``d loss / d y_pred`` (hand-written), shape of ``y_pred``."""
        return self._run(y_true, y_pred, sample_weight, "grad")

    def value_and_grad(self, y_true, y_pred, sample_weight=None) -> tuple[Array, Array]:
        """``(loss, d loss / d y_pred)`` from one pass (the softmax/sigmoid is shared)."""
        return self._run(y_true, y_pred, sample_weight, "both")

    def per_sample(self, y_true, y_pred) -> Array:
        """Unweighted per-sample losses ``l_i`` (shape ``(N,)`` for the usual 2-D ``y_pred``)."""
        return self._run(y_true, y_pred, None, "per_sample")

    @property
    def from_logits(self) -> bool:
        return bool(dict(self.options).get("from_logits", False))


def get(identifier: str | Loss, **options: Any) -> Loss:
    """A :class:`Loss` from a name (Keras's function or class name, or an alias) and options.

    ``get("sparse_categorical_crossentropy", from_logits=True)``, ``get("mse")``,
    ``get("huber", delta=0.5)``. A Loss passes through, with ``options`` overriding its own.
    Raises ValueError for an unknown name (listing the known ones) or a bad option value,
    TypeError for an option the loss does not take or of the wrong type.
    """
    if isinstance(identifier, Loss):
        name, merged = identifier.name, {**dict(identifier.options), **options}
    elif isinstance(identifier, str):
        name = _LOOKUP.get(_key(identifier))
        if name is None:
            raise ValueError(f"unknown loss {identifier!r}; known names: {', '.join(names())}")
        merged = options
    else:
        raise TypeError(f"loss must be a name (str) or an fnn.losses.Loss, got {type(identifier).__name__}")
    defaults = _REGISTRY[name].defaults
    unknown = sorted(set(merged) - set(defaults))
    if unknown:
        raise TypeError(f"loss {name!r} got unexpected option(s) {unknown}; "
                        f"it takes: {', '.join(defaults) or 'no options'}")
    values = {k: _check_option(name, k, merged.get(k, d), d) for k, d in defaults.items()}
    return Loss(name, tuple(sorted(values.items())))


def check_targets(loss: str | Loss, y_true: Any, y_pred_shape: tuple, name: str = "y_true") -> None:
    """Eager check (before any compiled code runs) that ``y_true`` fits ``loss`` and predictions
    of shape ``y_pred_shape``: matching shapes, and for sparse CE integer labels in [0, C)."""
    loss = get(loss)
    shape = tuple(y_pred_shape)
    try:
        dtype = y_true.dtype if hasattr(y_true, "dtype") else np.asarray(y_true).dtype
        _check_target_shapes(loss, tuple(np.shape(y_true)), np.dtype(dtype), shape)
        if loss.name == "sparse_categorical_crossentropy":
            opts = dict(loss.options)
            # the shapes were checked by eval_shape above; the values in NumPy, compiling nothing
            _check_label_values(np.asarray(y_true), shape[_norm_axis(opts["axis"], len(shape), loss.name)],
                                opts["ignore_class"], loss.name)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None


@functools.lru_cache(maxsize=256)
def _check_target_shapes(loss: Loss, y_shape: tuple, y_dtype: np.dtype, y_pred_shape: tuple) -> None:
    # Traces the loss (nothing runs); cached because fit checks the same shapes on every call.
    jax.eval_shape(lambda t: loss(t, jnp.zeros(y_pred_shape)), jax.ShapeDtypeStruct(y_shape, y_dtype))


__all__ = [
    "EPSILON", "Loss", "get", "names", "check_targets",
    *[f for n in _REGISTRY for f in (n, f"{n}_grad")],
]
