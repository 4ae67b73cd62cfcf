"""``value_and_grad`` (the hand-written reverse pass or ``jax.grad`` of the same composition)
and ``with_manual_vjp`` (the hand-written pass as a ``jax.custom_vjp`` rule)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from fnn import losses as _losses
from fnn._native import native, native_tree, natively
from fnn._network_checks import check_params_and_x
from fnn._validate import boolean
from fnn._values import Static
from fnn.data._checks import check_batch, check_sample_counts
from fnn.layers import Network
from fnn.layers._errors import input_gradient_error
from fnn.layers._samples import batch_of_one, one_sample
from fnn.losses._custom import check_plain_loss_value, is_custom

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

_ARGS = ("params", "x", "y")  # how messages name the arguments of value_and_grad's function
MODES = ("manual", "autodiff")
"""The values of ``mode``: the hand-written backward pass, or ``jax.grad`` of the same function."""


def resolve_loss(loss: Any, mode: str, autodiff_hint: str = "") -> Any:
    """``loss`` as a Loss (a name looked up), or with ``mode="autodiff"`` a plain callable.
    ``autodiff_hint``: how the caller runs a plain callable instead (gradcheck has no way)."""
    if isinstance(loss, str):
        return _losses.get(loss)
    if isinstance(loss, _losses.Loss):
        return loss
    if mode == "manual":
        raise TypeError(
            "loss must be a loss name or an fnn.losses.Loss (which carries its hand-written gradient); got "
            f"{type(loss).__name__}. Make a plain callable one with fnn.losses.custom(name, fn), fn returning "
            f"each sample's loss (its gradient is then derived by autodiff){autodiff_hint}."
        )
    if not callable(loss):
        raise TypeError(f"loss must be a loss name, an fnn.losses.Loss or a callable, got {type(loss).__name__}")
    return loss


def takes_one_target_per_sample(net: Any, loss: Any) -> bool:
    """Whether ``x`` and ``y`` must hold as many samples as each other before the forward runs:
    a built-in loss (one target per output row) of an :class:`fnn.Network` (its ``x`` samples
    first). A plain callable or a :func:`fnn.losses.custom` loss may read targets of any shape
    (one vector for every sample), a network of the user's own its ``x`` in any layout."""
    return isinstance(net, Network) and isinstance(loss, _losses.Loss) and not is_custom(loss)


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def value_and_grad(
    net: Network,
    loss: str | _losses.Loss | Callable,
    mode: str = "manual",
    *,
    train: bool = True,
    return_output: bool = False,
) -> Callable:
    """``f(params, x, y, *, key=None, sample_weight=None) -> (loss_value, grads)``.

    ``grads`` has the structure of ``params``. ``mode="manual"`` runs the hand-written chain
    rule ``dL/dparams = net.backward(params, cache, dL/dy_pred)``; ``mode="autodiff"`` is
    ``jax.value_and_grad`` of ``loss(y, net.apply(params, x))``. ``train`` is the layers'
    train switch (Dropout then needs ``key``). With ``return_output=True`` the function
    returns ``(loss_value, grads, y_pred)`` (training metrics reuse the forward pass).
    The function is pure and jittable.

    Args:
        net: The network (:func:`fnn.serial`, :func:`fnn.mlp`), or any object with the
            ``forward``/``backward``/``apply`` of a :class:`fnn.Network`.
        loss: A loss name, an :class:`fnn.losses.Loss`, or (``mode="autodiff"`` only) any
            callable ``(y_true, y_pred) -> scalar``, the batch's loss. A function giving one
            loss per sample (Keras's custom-loss form) is :func:`fnn.losses.custom`'s: wrapped
            so, its values are averaged (weighted by ``sample_weight``), as Keras does.
        mode: ``"manual"`` (the hand-written backward) or ``"autodiff"`` (``jax.grad``).
        train: The layers' train switch (Dropout is active in training and then needs ``key``).
        return_output: Also return the network's output ``y_pred``.

    Returns:
        ``f(params, x, y, *, key=None, sample_weight=None)`` returning ``(loss_value, grads)``, or
        ``(loss_value, grads, y_pred)`` with ``return_output``.

    ``f`` checks what the shapes and dtypes say, under ``jit`` too (while tracing: no value is
    read, nothing waits for the device): ``x`` must hold real numbers and at least one sample,
    samples first, and the params and ``x`` must fit the network as :func:`fnn.fit` checks them
    (the params' structure and each leaf's shape against what ``net.init`` builds for ``x``;
    the leaves or ``x`` named, in fit's words). That check runs once per structure, shapes and
    dtypes: a loop of calls looks its verdict up, and under ``jit`` it runs while tracing only.
    The loss checks concrete sparse labels (integers in ``[0, C)``) when ``f`` runs eagerly;
    under ``jit`` the labels are traced and their values are not checked (:func:`fnn.fit` and
    :func:`fnn.evaluate` check them first).

    Raises:
        ValueError: For an unknown ``mode`` or loss name; when ``f`` is called, for an ``x`` of
            0 samples, params or an ``x`` that do not fit the network (the message names the
            params' leaves or ``x``; an ``x`` of rank 1 is one sample, as under a per-example
            ``jax.vmap``, checked as a batch of one), or a plain callable loss that returns one
            value per sample (not a scalar).
        TypeError: For a loss that is not a name or a Loss with ``mode="manual"`` (it carries no
            hand-written gradient), or not callable with ``mode="autodiff"``; when ``f`` is
            called, for a complex ``x`` (its imaginary part would be dropped unseen).

    Examples:
        >>> import fnn, jax, jax.numpy as jnp
        >>> net = fnn.mlp([3, 2], activation="tanh")
        >>> params = net.init(jax.random.PRNGKey(0), (4,))
        >>> x, y = jnp.ones((5, 4)), jnp.array([0, 1, 0, 1, 1])
        >>> loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
        >>> value, grads = jax.jit(fnn.value_and_grad(net, loss))(params, x, y)
        >>> value2, grads2 = jax.jit(fnn.value_and_grad(net, loss, mode="autodiff"))(params, x, y)
        >>> bool(jnp.allclose(grads[0]["w"], grads2[0]["w"])), grads[1]["b"].shape
        (True, (2,))
    """
    check_mode(mode)
    loss_fn = resolve_loss(loss, mode, ", or use mode='autodiff'")
    per_sample_targets = takes_one_target_per_sample(net, loss_fn)

    if mode == "manual":

        def manual(params, x, y, *, key=None, sample_weight=None):
            check_batch(x)
            check_params_and_x(net, params, x)
            single, (x, y, sample_weight) = _batch_of_one(x, y, sample_weight)
            if per_sample_targets:
                check_sample_counts(x, y)
            y_pred, cache = net.forward(params, x, key=key, train=train)
            value, dy = loss_fn.value_and_grad(y, y_pred, sample_weight=sample_weight)
            grads, _ = net.backward(params, cache, dy)  # the input gradient is dead code under jit
            y_pred = y_pred[0] if single else y_pred
            return (value, grads, y_pred) if return_output else (value, grads)

        return natively(manual, _ARGS)

    def autodiff(params, x, y, *, key=None, sample_weight=None):
        check_batch(x)
        check_params_and_x(net, params, x)
        single, (x, y, sample_weight) = _batch_of_one(x, y, sample_weight)
        if per_sample_targets:
            check_sample_counts(x, y)

        def objective(p):
            y_pred = net.apply(p, x, key=key, train=train)
            if sample_weight is None:
                value = loss_fn(y, y_pred)
            else:
                value = loss_fn(y, y_pred, sample_weight=sample_weight)
            check_plain_loss_value(loss_fn, jnp.shape(value))
            return value, y_pred

        # an integer leaf (a mask) gets JAX's float0 zero cotangent, as the manual mode gives it
        (value, y_pred), grads = jax.value_and_grad(objective, has_aux=True, allow_int=True)(params)
        y_pred = y_pred[0] if single else y_pred
        return (value, grads, y_pred) if return_output else (value, grads)

    return natively(autodiff, _ARGS)


def _batch_of_one(x: Any, y: Any, sample_weight: Any) -> tuple[bool, tuple[Any, Any, Any]]:
    """``(single, (x, y, sample_weight))``: a rank-1 ``x`` (:func:`one_sample`) as a batch of
    one, its target and weight with it (the loss then sees one sample's row, as in a batch)."""
    if not one_sample(x):
        return False, (x, y, sample_weight)
    one = lambda a: None if a is None else batch_of_one(a)
    return True, (batch_of_one(x), one(y), one(sample_weight))


_FORWARD_MODE = (
    "fnn.with_manual_vjp: forward-mode differentiation (jax.jvp, jax.jacfwd of the function itself, "
    "the linear function jax.linearize returns) cannot run a hand-written backward pass, which is reverse mode. "
    "What works: "
    "jax.grad, jax.vjp, jax.jacrev, forward-over-reverse such as jax.jvp(jax.grad(f)) for "
    "Hessian-vector products, and jax.hessian. For forward mode differentiate net.apply instead."
)


def _static_leaves(cache: Any) -> Any:
    """``cache`` with each leaf that is no array (a string, a Python number, as a layer's forward
    may keep for its backward) made a :class:`fnn._values.Static`: carried in the residuals'
    structure, not as a residual (which must be an array), so the backward gets it as the
    forward made it, as ``net.backward`` does anywhere."""
    array = lambda a: isinstance(a, (jax.Array, np.ndarray, np.generic))
    return jax.tree.map(lambda a: a if array(a) else Static(a), cache)


def _unwrapped(cache: Any) -> Any:
    """:func:`_static_leaves` undone: the cache as the forward made it."""
    static = lambda a: isinstance(a, Static)
    return jax.tree.map(lambda a: a.value if static(a) else a, cache, is_leaf=static)


def with_manual_vjp(net: Network, *, train: bool = False) -> Callable:
    """``apply(params, x, *, key=None, train=train) -> y``, as ``net.apply``, whose derivative under
    ``jax.grad``/``jax.vjp`` (reverse mode) is the network's hand-written backward, registered
    with ``jax.custom_vjp``.

    ``train`` (default: the value given here) switches the layers' training mode and ``key``
    feeds Dropout, per call, exactly as in ``net.apply``. Reverse mode, ``jax.jacrev``,
    forward-over-reverse (``jax.jvp(jax.grad(f))``) and ``jax.hessian`` work; plain forward mode
    (``jax.jvp``, ``jax.jacfwd`` of the function itself) does not and says so.

    ``jax.linearize`` of the function succeeds: it returns the output and a linear function
    ``f`` that ``jax.linear_transpose`` turns into the hand-written backward (reverse mode
    linearizes so too, which is why fnn cannot refuse it there). Evaluating ``f(tangent)`` is
    forward mode: JAX's linear function raises its own ``TypeError: can't apply forward-mode
    autodiff (jvp) to a custom_vjp function.``, from outside fnn, so it cannot name what works
    instead (the answer is the same as for ``jax.jvp``).

    Args:
        net: The network.
        train: The default of the returned function's ``train`` keyword.

    Returns:
        ``apply(params, x, *, key=None, train=train) -> y``.

    Raises:
        TypeError: When called with a ``train`` that is not a bool; under forward-mode
            differentiation, ``jax.jvp`` and ``jax.jacfwd`` (the message says what works
            instead). Not from ``jax.linearize``: its linear function raises JAX's own
            ``TypeError`` when evaluated (above).
        ValueError: When called, for params or an ``x`` (an array; of rank 1: one sample, checked
            as a batch of one) that do not fit the network, as :func:`fnn.fit` names them
            (checked once per structure, shapes and dtypes; under ``jit`` while tracing only).
            When differentiated with respect to ``x``, if the first layer's backward returns a
            ``dx`` that is None or not of ``x``'s shape (the message names the layer).

    Examples:
        >>> import fnn, jax, jax.numpy as jnp
        >>> net = fnn.mlp([2], activation="relu")
        >>> params = net.init(jax.random.PRNGKey(0), (3,))
        >>> apply = fnn.with_manual_vjp(net)
        >>> x = jnp.ones((4, 3))
        >>> g = jax.jit(jax.grad(lambda p: jnp.sum(apply(p, x))))(params)  # runs net.backward
        >>> g[0]["w"].shape
        (3, 2)
    """
    default_train = boolean("train", train)

    @functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
    def run(params, x, key, train):
        return net.forward(params, x, key=key, train=train)[0]

    def fwd(params, x, key, train):
        # symbolic zeros: each leaf comes as (value, perturbed), which says whether x's gradient
        # is asked for; x rides in the residuals only then (the structure carries the answer)
        params, key = jax.tree.map(lambda a: a.value, (params, key))
        y, cache = net.forward(params, x.value, key=key, train=train)
        return y, (params, _static_leaves(cache), x.value if x.perturbed else None)

    def bwd(train, res, dy):
        params, cache, x = res
        cache = _unwrapped(cache)
        if isinstance(dy, SymbolicZero):
            dy = jnp.zeros(dy.shape, dy.dtype)
        dparams, dx = net.backward(params, cache, dy)
        if x is None:  # only params are differentiated: dx is not asked for (None: a zero)
            return dparams, None, None
        err = input_gradient_error(net, dx, x, "fnn.with_manual_vjp")
        if err is not None:
            raise err
        # the input's gradient takes its dtype, as jax.grad's does (float16 data, float32 params)
        return dparams, dx.astype(x.dtype), None

    run.defvjp(fwd, bwd, symbolic_zeros=True)

    def apply(params: Any, x: Any, *, key: Array | None = None, train: bool = default_train) -> Array:
        params = native_tree(params, "params")  # run's custom_vjp refuses other byte orders, naming nothing
        if not isinstance(x, jax.Array):  # tracers are jax Arrays: nothing changes under jit
            x = jnp.asarray(native(x, "x"))
        check_params_and_x(net, params, x)
        try:
            if one_sample(x):  # one sample (a per-example vmap): run as a batch of one
                return run(params, batch_of_one(x), key, boolean("train", train))[0]
            return run(params, x, key, boolean("train", train))
        except TypeError as e:
            if "custom_vjp" in str(e) and "forward-mode" in str(e):
                raise TypeError(_FORWARD_MODE) from None
            raise

    return apply
