"""The one reduction every loss shares: a kernel's :class:`Terms` ``(l_i, dl_i/dy_pred, axis,
valid)`` become Keras's ``"sum_over_batch_size"`` scalar and its gradient, with the optional
``sample_weight`` (:func:`apply_kernel`), or those of some rows of a batch alone
(:func:`rows_value_and_grad`). ``jax.grad`` of a loss value is the kernel's hand-written
derivative (a ``custom_jvp``). The kernels are in ``_kernels.py``; the rules (weights, ignore
masks, half precision) are in :mod:`fnn.losses`'s docstring.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from fnn._dtypes import real_dtype
from fnn._native import native
from fnn._validate import boolean

Array = jax.Array


class Terms(NamedTuple):
    per: Array  # per-sample losses l_i; shape (): one value for the whole batch (see whole_batch)
    # d l_i / d y_pred, shape of y_pred (l_i depends on its row only); or, where each l_i depends
    # on every row (circle's pairs, see whole_batch), the map c -> d(sum_i c_i l_i)/d y_pred
    dper: Array | Callable[[Array], Array]
    axis: int | tuple[int, ...] | None  # the axes of y_pred reduced into l_i; None: elementwise
    valid: Array | None = None  # the samples that count (sparse CE's ignore_class, circle's l_i > 0)


def whole_batch(when: Callable[[dict], bool]) -> Callable[[Callable[..., Terms]], Callable[..., Terms]]:
    """Marks a kernel whose value may depend on the whole batch when its options pass ``when``
    (:attr:`fnn.losses.Loss.whole_batch`): dice and tversky with ``axis=None``, as Keras's, whose
    ``Terms.per`` is then one value of shape () that sample weights scale by their mean (Keras
    multiplies the value by each weight and takes the mean), and circle, whose per-sample values
    ``l_i`` each depend on the other rows (its pairs): its ``Terms.dper`` is the function
    ``c -> d(sum_i c_i l_i)/d y_pred`` of the reduction's coefficients ``c_i = d loss / d l_i``
    (shape of ``per``), as no derivative of one row times ``c_i`` can be the gradient. It takes
    ``rows=``, the mask of the samples that count (fit's padded last batch), and leaves the others
    out of its sums (and circle's pairs)."""

    def mark(kernel: Callable[..., Terms]) -> Callable[..., Terms]:
        setattr(kernel, "whole_batch_if", when)  # noqa: B010  (mypy knows no attributes of a Callable)
        return kernel

    return mark


def _sample_weight(sample_weight: Any, shape: tuple, dtype) -> Array:
    w = jnp.asarray(sample_weight, dtype=dtype)
    if w.shape == shape + (1,):
        w = w.reshape(shape)
    elif w.ndim <= len(shape) and w.shape == shape[: w.ndim]:
        w = w.reshape(w.shape + (1,) * (len(shape) - w.ndim))
    elif (
        w.ndim == len(shape)
        and w.shape[:1] == shape[:1]
        and all(a in (1, b) for a, b in zip(w.shape, shape, strict=True))
    ):
        pass  # broadcast over the per-sample axes, as Keras does ((N, 1) weights for (N, T) losses)
    else:
        raise ValueError(
            f"sample_weight shape {w.shape} does not match the per-sample loss shape {shape} "
            f"(expected {', '.join(str(s) for s in dict.fromkeys((shape[:1], shape, shape + (1,))))} or a scalar)"
        )
    return jnp.broadcast_to(w, shape)


def _coefficients(terms: Terms, sample_weight: Any):
    """``d loss / d l_i``: ``w_i / n``; with an ignore mask, Keras's ``w_i m_i / sum(m)`` (0 if none valid)."""
    per = terms.per
    if sample_weight is None and terms.valid is None:
        return 1.0 / max(per.size, 1)
    w = 1.0 if sample_weight is None else _sample_weight(sample_weight, per.shape, per.dtype)
    if terms.valid is None:
        return w / max(per.size, 1)
    m = terms.valid.astype(per.dtype)
    # Keras scales by total/valid then divides by total; valid is a count, so max(., 1) is its
    # divide_no_nan (every m_i is 0 when valid is 0).
    return jnp.broadcast_to(w * m / jnp.maximum(jnp.sum(m), 1.0), per.shape)


def _reduce(
    kernel: Callable[..., Terms], y_true: Any, y_pred: Any, sample_weight: Any, options: dict, want: str, rows=None
):
    # float16 / bfloat16 predictions are computed in float32, as Keras's losses compute in their
    # float32 dtype: 1 - 1e-7 rounds to 1 in half precision, and a saturated sigmoid's clip would
    # give log(0). The gradient comes back in the predictions' dtype (a cotangent of y_pred).
    y_pred, grad_dtype = _at_least_float32(y_pred)
    y_true = _at_least_float32(y_true)[0]
    if rows is not None:
        # The left-out samples become copies of a counted one, so that what a kernel reads off
        # the whole batch (hinge's "labels all 0/1?") is what the counted samples alone give.
        j = jnp.argmax(rows)
        y_true, y_pred = jnp.asarray(y_true), jnp.asarray(y_pred)
        y_true, y_pred = (jnp.where(row_mask(rows, a.ndim), a, a[j]) for a in (y_true, y_pred))
    if rows is not None and hasattr(kernel, "whole_batch_if"):
        options = {**options, "rows": rows}
    terms = kernel(y_true, y_pred, **options)
    if want == "per_sample":
        return terms.per
    whole = terms.per.ndim == 0  # one value for the whole batch
    if rows is not None and not whole:
        # Only the samples in ``rows`` count, as if the batch held them alone: they join the
        # valid mask, whose mean is over the valid samples (ignore_class's rule).
        inside = jnp.broadcast_to(row_mask(rows, terms.per.ndim), terms.per.shape)
        inside = inside if terms.valid is None else inside & terms.valid
        terms = terms._replace(valid=inside, per=jnp.where(inside, terms.per, 0))  # 0 * inf is NaN
    if whole:
        coef = _batch_coefficient(sample_weight, jnp.shape(y_pred)[:1], terms.per.dtype, rows)
    else:
        coef = _coefficients(terms, sample_weight)
    value = jnp.sum(coef * terms.per)
    if want == "value":
        return value
    coupled = callable(terms.dper)
    if callable(terms.dper):  # not `if coupled`: mypy narrows dper's type on callable() only
        grad = terms.dper(jnp.broadcast_to(jnp.asarray(coef, terms.per.dtype), terms.per.shape))
    else:
        if not isinstance(coef, float) and terms.axis is not None:  # (None for a whole-batch value)
            coef = jnp.expand_dims(coef, terms.axis)
        grad = terms.dper * coef
    if rows is not None:
        # a coupled row of weight 0 still moves the others' losses: only the rows left out get 0
        grad = jnp.where(row_mask(rows, grad.ndim) if whole or coupled else coef != 0, grad, 0)
    if grad_dtype is not None:
        grad = grad.astype(grad_dtype)
    return grad if want == "grad" else (value, grad)


def _batch_coefficient(sample_weight: Any, batch: tuple, dtype, rows: Any):
    """``d loss / d l`` of a whole-batch value ``l``: the mean of the weights (Keras's scalar
    loss times each weight, then the mean), over the ``rows`` that count; 1 without weights."""
    if sample_weight is None and rows is None:
        return 1.0
    w = jnp.ones(batch, dtype) if sample_weight is None else _sample_weight(sample_weight, batch, dtype)
    if rows is None:
        return jnp.mean(w)
    return jnp.sum(jnp.where(rows, w, 0)) / jnp.maximum(jnp.sum(rows), 1).astype(dtype)


def _at_least_float32(a: Any) -> tuple[Any, Any]:
    """``(a in float32, its own dtype)`` for a half-precision float array, else ``(a, None)``."""
    dtype = getattr(a, "dtype", None)
    if dtype is not None and jnp.issubdtype(dtype, jnp.floating) and jnp.finfo(dtype).bits < 32:
        return jnp.asarray(a, jnp.float32), dtype
    return a, None


def row_mask(rows: Any, ndim: int) -> Array:
    """A per-sample mask ``(N,)`` shaped ``(N, 1, ...)`` to broadcast over an array of ``ndim`` axes."""
    return jnp.reshape(rows, rows.shape + (1,) * (ndim - rows.ndim))


def rows_value_and_grad(kernel: Callable[..., Terms], y_true, y_pred, sample_weight, options: dict, rows):
    """``(loss, d loss / d y_pred)`` of the samples where ``rows`` (bool, ``(N,)``) is True, the
    others left out as if absent (their gradient 0): how an epoch runs its last partial batch
    padded to the full batch size, in the same compiled step as the others."""
    rows = jnp.asarray(rows)
    if rows.dtype != jnp.bool_:
        raise TypeError(f"rows must be a bool mask, got dtype {rows.dtype}")
    if rows.shape != jnp.shape(y_pred)[:1]:
        raise ValueError(f"rows must have shape {jnp.shape(y_pred)[:1]} (one flag per sample), got {rows.shape}")
    return _reduce(kernel, y_true, y_pred, sample_weight, options, "both", rows)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1))
def _value(kernel: Callable[..., Terms], options: tuple, y_true: Any, y_pred: Any, sample_weight: Any) -> Array:
    return _reduce(kernel, y_true, y_pred, sample_weight, dict(options), "value")


def _value_jvp(kernel: Callable[..., Terms], options: tuple, primals: tuple, tangents: tuple) -> tuple[Array, Array]:
    """jax's derivative of a loss value IS the hand-written one (for ``y_pred``), so autodiff,
    gradcheck's reference and users' own ``jax.grad`` agree with it at every point, kinks and
    clip edges included; ``y_true`` and ``sample_weight`` are differentiated through the formula."""
    y_true, y_pred, sample_weight = primals
    t_true, t_pred, t_weight = tangents
    opts = dict(options)
    value, grad = _reduce(kernel, y_true, y_pred, sample_weight, opts, "both")
    tangent = jnp.zeros_like(value) if isinstance(t_pred, SymbolicZero) else jnp.sum(grad * t_pred).astype(value.dtype)
    if not (_is_zero(t_true) and _is_zero(t_weight)):
        f = lambda yt, w: _reduce(kernel, yt, y_pred, w, opts, "value")
        dense = (_dense(y_true, t_true), _dense(sample_weight, t_weight))
        tangent = tangent + jax.jvp(f, (y_true, sample_weight), dense)[1]
    return value, tangent


_value.defjvp(_value_jvp, symbolic_zeros=True)


def _is_zero(tangent: Any) -> bool:
    return tangent is None or isinstance(tangent, SymbolicZero)


def _dense(primal: Any, tangent: Any) -> Any:
    """A tangent as an array (zeros of the right kind where it is a symbolic zero)."""
    if primal is None or not isinstance(tangent, SymbolicZero):
        return tangent
    primal = jnp.asarray(primal)
    if jnp.issubdtype(primal.dtype, jnp.inexact):
        return jnp.zeros_like(primal)
    return np.zeros(primal.shape, jax.dtypes.float0)


def _as_array(name: str, a: Any) -> Any:
    """``a`` as one array: a nested list (or tuple) of numbers becomes an array, a NumPy array
    goes through :func:`fnn._native.native` (native byte order), anything else jax takes as one
    value (a jax array, a scalar, None) is returned as it is. ``custom_jvp`` would take
    each number of a list as an argument of its own, and hand the rule a list of tangents.

    A list of numbers becomes a NumPy array on the host (no device dispatch per call; the loss's
    first operation moves it, or the trace embeds it); a list holding jax arrays (tracers among
    them) is stacked by jax, inside the trace when there is one."""
    if isinstance(a, (np.ndarray, jax.ShapeDtypeStruct)):
        return native(a, name)
    if a is None or isinstance(a, (jax.Array, np.generic, int, float, complex)):
        return a
    try:
        if any(isinstance(leaf, jax.Array) for leaf in jax.tree.leaves(a)):
            return jnp.asarray(a)
        return np.asarray(a)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be an array or a nested list of numbers of one shape; {e}") from None


def apply_kernel(kernel: Callable[..., Terms], y_true, y_pred, sample_weight, options: dict, want: str):
    """A loss's ``"value"``, ``"grad"``, ``"both"`` or ``"per_sample"`` from its kernel."""
    y_true, y_pred = _as_array("y_true", y_true), _as_array("y_pred", y_pred)
    sample_weight = _as_array("sample_weight", sample_weight)
    for name, a in (("y_true", y_true), ("y_pred", y_pred), ("sample_weight", sample_weight)):
        if a is not None:  # strings would fail deep in jax, a complex y_pred's part be dropped
            real_dtype(name, a.dtype if hasattr(a, "dtype") else np.result_type(a))
    loss = getattr(kernel, "__name__", "loss").removesuffix("_terms")
    for option in ("from_logits", "apply_class_balancing"):
        if option in options:  # "yes" would be taken as True
            boolean(f"{loss}: {option}", options[option])
    traced = any(isinstance(a, jax.core.Tracer) for a in jax.tree.leaves((y_true, y_pred, sample_weight)))
    if want == "value" and traced:  # only a traced value can be differentiated
        return _value(kernel, tuple(sorted(options.items())), y_true, y_pred, sample_weight)
    # Concrete inputs: computed as they are, so the value checks (label ranges) run eagerly.
    return _reduce(kernel, y_true, y_pred, sample_weight, options, want)
