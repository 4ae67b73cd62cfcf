"""Custom losses: :func:`custom` (your own per-sample loss, with its gradient or ``jax.vjp``'s),
and what gradient checks ask of one (whether it has its own gradient, its autodiff twin).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import jax
import jax.numpy as jnp

from fnn._values import bound
from fnn.losses._checks import same_rank
from fnn.losses._loss import Loss, contract_error
from fnn.losses._reduction import Terms

Array = jax.Array


def is_custom(loss: Any) -> bool:
    """Whether ``loss`` is a :func:`custom` loss (whose ``fn`` may read targets of any shape)."""
    kernel = getattr(loss, "kernel", None)
    return isinstance(kernel, bound) and kernel.fn is _custom_terms


def has_own_gradient(loss: Any) -> bool:
    """Whether ``loss`` is a :func:`custom` loss given its own ``grad``: ``jax.grad`` of it then
    runs that code, so it is no independent check of it."""
    return is_custom(loss) and cast(Any, loss.kernel).args[2] is not None


def autodiff_twin(loss: Loss) -> Loss:
    """``loss`` with its derivative left to ``jax.grad`` of its own function: for a
    :func:`custom` loss given ``grad``, an independent reference for that ``grad``; any other
    loss is its own twin."""
    if not has_own_gradient(loss):
        return loss
    name, fn, _ = cast(Any, loss.kernel).args
    return Loss(loss.name, loss.options, bound(_custom_terms, name, fn, None))


def _custom_terms(
    name: str,
    fn: Callable[[Array, Array], Array],
    grad: Callable[[Array, Array], Array] | None,
    y_true: Any,
    y_pred: Any,
) -> Terms:
    t, p = jnp.asarray(y_true), jnp.asarray(y_pred)
    if not jnp.issubdtype(p.dtype, jnp.floating):
        p = p.astype(float)
    # as Keras's LossFunctionWrapper calls fn: targets (N,) against outputs (N, 1) are N pairs,
    # not an (N, N) broadcast; the derivative is then given back in y_pred's own shape
    t_fn, p_fn = same_rank(t, p)
    if grad is None:  # the derivative of each sample's loss with respect to its own row
        per, pullback = jax.vjp(lambda q: fn(t_fn, q), p_fn)
        _check_one_array(name, per)  # before the pullback, which would fail on a tuple in jax's words
        dper = pullback(jnp.ones_like(per))[0]
    else:
        per, dper = fn(t_fn, p_fn), grad(t_fn, p_fn)
        _check_one_array(name, per, dper)
    per, dper = jnp.asarray(per), jnp.asarray(dper)
    if p_fn.shape != p.shape and dper.shape == p_fn.shape:
        dper = dper.reshape(p.shape)
    if per.ndim == 0 or dper.shape != p.shape or per.shape not in (p.shape, p.shape[:-1]):
        raise contract_error(
            f"custom loss {name!r}: fn must return one loss per sample, shape {p.shape[:-1]} (or "
            f"{p.shape} for one per element) and grad the shape of y_pred {p.shape}; got fn "
            f"{per.shape} and grad {dper.shape}"
        )
    return Terms(per.astype(p.dtype), dper.astype(p.dtype), None if per.shape == p.shape else p.ndim - 1)


def _check_one_array(name: str, per: Any, *dper: Any) -> None:
    """ValueError unless ``fn`` returned one array (and ``grad``, when given, too)."""
    outputs = {"fn": per, "grad": dper[0]} if dper else {"fn": per}
    if all(jax.tree_util.treedef_is_leaf(jax.tree.structure(v)) and v is not None for v in outputs.values()):
        return
    what = lambda v: "an array" if hasattr(v, "shape") else f"a {type(v).__name__}"
    raise contract_error(
        f"custom loss {name!r}: {' and '.join(outputs)} must {'each ' if dper else ''}return one array; got "
        + " and ".join(f"{k} {what(v)}" for k, v in outputs.items())
    )


def check_plain_loss_value(loss: Any, shape: Any) -> None:
    """A plain callable ``loss`` must return the batch's loss, one number (``shape`` is what it
    returned). One value per sample, Keras's custom-loss form (``mean(square(t - q), axis=-1)``),
    is refused naming ``loss`` and pointing to :func:`custom`, which reduces such values as
    every fnn loss does; left to ``jax.grad`` it would fail in JAX's words inside the compiled step.
    """
    shape = tuple(shape)
    if shape == ():
        return
    name = getattr(loss, "__name__", type(loss).__name__)
    raise ValueError(
        f"loss {name} returned an array of shape {shape}; a plain callable loss (y_true, y_pred) must return "
        "one number, the batch's loss. For one loss per sample (Keras's custom-loss form, e.g. "
        "mean(square(y_true - y_pred), axis=-1)), pass fnn.losses.custom(name, fn): fnn then takes the mean "
        "over samples, weighted by sample_weight, as Keras does"
    )


def custom(
    name: str,
    fn: Callable[[Array, Array], Array],
    grad: Callable[[Array, Array], Array] | None = None,
) -> Loss:
    """Your own loss, usable everywhere a built-in one is (``value_and_grad`` in both modes,
    ``gradcheck``, ``fit``, ``fit_many``, ``evaluate``, the compiled-program caches).

    ``fn(y_true, y_pred)`` returns the loss of each sample, ``l_i`` (shape ``y_pred.shape[:-1]``,
    or ``y_pred.shape`` for one loss per element); ``grad(y_true, y_pred)`` returns its
    hand-written derivative ``dl_i / dy_pred`` (shape of ``y_pred``; when it is omitted it is
    taken from ``jax.vjp`` of ``fn``). fnn adds the reduction every loss shares: the mean over
    samples, with ``sample_weight``. ``jax.grad`` of the loss is ``grad``. As Keras's
    ``LossFunctionWrapper`` does, ``y_true`` and ``y_pred`` whose ranks differ by a trailing axis of
    1 are brought to one rank first (targets (N,) against outputs (N, 1) reach ``fn`` both as
    (N, 1), not broadcast to (N, N)); ``grad``'s result is then taken back to ``y_pred``'s shape.

    The loss compares by ``(name, fn, grad)``: build it once and reuse it, so that compiled
    programs keyed on it are reused too.

    Args:
        name: The loss's name (in reports and histories).
        fn: ``(y_true, y_pred) -> l``, the per-sample losses.
        grad: ``(y_true, y_pred) -> dl/dy_pred``, each sample's derivative with respect to its own
            row of ``y_pred``; None to take it from ``jax.vjp`` of ``fn``.

    Returns:
        A :class:`Loss`.

    Raises:
        TypeError: If ``name`` is not a non-empty string or ``fn`` / ``grad`` is not callable.
        ValueError: When called, if ``fn`` or ``grad`` returns the wrong shape.

    Examples:
        The pinball (quantile) loss with ``tau = 0.75``, whose minimiser is the 75th percentile:

        >>> import fnn, jax.numpy as jnp
        >>> tau = 0.75
        >>> pinball = fnn.losses.custom(
        ...     "pinball",
        ...     lambda t, p: jnp.mean(jnp.maximum(tau * (t - p), (tau - 1) * (t - p)), axis=-1),
        ...     lambda t, p: jnp.where(t - p > 0, -tau, 1 - tau) / p.shape[-1],
        ... )
        >>> float(pinball([[1.0], [0.0]], [[0.0], [1.0]]))  # (0.75 + 0.25) / 2
        0.5
        >>> pinball.grad([[1.0], [0.0]], [[0.0], [1.0]]).tolist()
        [[-0.375], [0.125]]
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"custom loss: name must be a non-empty str, got {name!r}")
    if not callable(fn):
        raise TypeError(f"custom loss {name!r}: fn must be callable (y_true, y_pred) -> per-sample losses")
    if grad is not None and not callable(grad):
        raise TypeError(f"custom loss {name!r}: grad must be callable (y_true, y_pred) -> d loss_i / d y_pred")
    return Loss(name, (), bound(_custom_terms, name, fn, grad))
