"""Dense, the fully-connected layer ``y = act(x @ w + b)`` with its hand-written backward, and
:func:`mlp`, the usual stack of them.

The layer's functions are module-level rules bound to its configuration by value
(:func:`fnn._values.bound`), so ``Dense(64, "relu") == Dense(64, "relu")`` and networks built
from the same description compare equal.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable, Sequence
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np

from fnn import activations, initializers
from fnn._keys import key as check_key
from fnn._validate import boolean, integer
from fnn._values import bound
from fnn.activations._registry import activation_repr
from fnn.initializers._registry import name_of as initializer_name
from fnn.layers._base import LAYER_REPRS, Array, Layer, Shape, as_shape, check_dy, check_features
from fnn.layers._network import Network, serial


def sum_leading(a: Array) -> Array:
    """Sums every axis but the last: the batch (and any other leading) axes."""
    return a.reshape(-1, a.shape[-1]).sum(axis=0)


# --------------------------------------------------------------------------------------------
# Dense: y = act(x @ w + b)
# --------------------------------------------------------------------------------------------


def dense_init(units, kernel_init, bias_init, use_bias, key, input_shape, dtype=jnp.float32):
    key = check_key("key", key)  # its shape and dtype only: a traced key (jit, vmap) passes
    shape = as_shape(input_shape)
    kw, kb = jax.random.split(key)
    w = _draw(kernel_init, "kernel_initializer", kw, (shape[-1], units), dtype)
    params = {"w": w, "b": _draw(bias_init, "bias_initializer", kb, (units,), dtype)} if use_bias else {"w": w}
    return (*shape[:-1], units), params


def _draw(init: Callable, arg: str, key: Array, shape: Shape, dtype: Any) -> Array:
    """``init(key, shape, dtype)``, checked: an initializer of the user's that returns another
    shape (a torch-style ``(out, in)`` kernel) is named here, not by the forward that trips on
    it; one that ignores ``dtype`` is cast to it, as Keras casts a variable's initial value."""
    value = init(key, shape, dtype)
    name = lambda: getattr(init, "__name__", None) or repr(init)
    if not (hasattr(value, "shape") and hasattr(value, "dtype")):
        raise TypeError(f"{arg} {name()} must return an array of shape {shape}, got {type(value).__name__}")
    if tuple(value.shape) != shape:
        raise ValueError(
            f"{arg} {name()} returned an array of shape {tuple(value.shape)}, expected {shape} (a Dense kernel "
            "is (in, out); torch's Linear weight is (out, in))"
        )
    want = jax.dtypes.canonicalize_dtype(dtype)
    return value if value.dtype == want else jnp.asarray(value, want)


@functools.cache
def default_initializers() -> tuple[Callable, Callable]:
    """Keras's (and :func:`Dense`'s) default ``(kernel, bias)`` initializers, as Dense holds them."""
    return _initializer("kernel_initializer", "glorot_uniform"), _initializer("bias_initializer", "zeros")


def _initializer(arg: str, identifier: Any) -> Callable:
    """``initializers.get(identifier)``, its mistakes prefixed by the argument's name."""
    try:
        return initializers.get(identifier)
    except (TypeError, ValueError) as e:
        raise type(e)(f"{arg}: {e}") from None


def _check_dense_params(use_bias: bool, units: int, params: Any) -> None:
    """A Dense's params as its init builds them, ``{"w": (in, units), "b": (units,)}``: another
    width, a bias that would broadcast (``(1,)``, ``(1, units)``) or a stray entry is another
    network's params, which the matmul alone would run without a word."""
    want = {"w": f"(in, {units})", "b": f"({units},)"} if use_bias else {"w": f"(in, {units})"}
    # any dict-like pytree node (a Mapping, or a class of the user's with keys and [], maybe not iterable)
    dict_like = hasattr(params, "keys") and hasattr(params, "__getitem__")
    shapes = {k: tuple(np.shape(params[k])) for k in params.keys()} if dict_like else None  # noqa: SIM118
    if shapes is not None and set(shapes) == set(want):
        w = shapes["w"]
        if len(w) == 2 and w[1] == units and (not use_bias or shapes["b"] == (units,)):
            return
    if shapes is None:
        got = type(params).__name__
    elif set(shapes) != set(want):
        got = f"entries {sorted(shapes, key=str)}"
    else:  # w, then b (a dict under jit has its keys sorted)
        got = "{" + ", ".join(f"{k!r}: {shapes[k]}" for k in want) + "}"
    shown = "{" + ", ".join(f"{k!r}: {v}" for k, v in want.items()) + "}"
    raise ValueError(f"Dense({units})'s params must be {shown}, got {got}")


def _dense_forward(act, use_bias, units, params, x, *, key=None, train=False):
    _check_dense_params(use_bias, units, params)
    check_features(x, params["w"].shape[0])
    z = x @ params["w"]
    if use_bias:
        # broadcast written out: under jax_numpy_rank_promotion="raise" an implicit (n, u) + (u,)
        # is an error, which the user would read as their network's
        z = z + jnp.broadcast_to(params["b"], z.shape)
    if act is None:  # linear: nothing to cache but the input
        return z, (x,)
    y = activation_output(act, z)
    return y, (x, z, y)


def activation_output(act: Any, x: Array) -> Array:
    """``act.fn(x)``, refused unless it is one array of ``x``'s shape: an activation of the
    user's own that changes the shape is named here, not the layer whose init declared the
    output shape (the layers after it are built for that shape)."""
    y = act.fn(x)
    if not hasattr(y, "shape") or tuple(y.shape) != tuple(x.shape):
        got = f"shape {tuple(y.shape)}" if hasattr(y, "shape") else type(y).__name__
        raise ValueError(
            f"activation {getattr(act, 'name', act)!r}: fn(x) must return one array of x's shape {tuple(x.shape)} "
            f"(an activation keeps the shape: the layer's init declares it), got {got}"
        )
    return y


def activation_vjp(act: Any, x: Array, y: Array, dy: Array) -> Array:
    """``act.vjp(x, y, dy)``, refused unless it is one array of ``x``'s shape and, for a floating
    ``x``, a floating dtype (an activation of the user's own: its mistake named here, not by the
    layer before it; an integer one has truncated the gradient)."""
    dx = act.vjp(x, y, dy)
    if not hasattr(dx, "shape") or tuple(dx.shape) != tuple(x.shape):
        got = f"shape {tuple(dx.shape)}" if hasattr(dx, "shape") else type(dx).__name__
        raise ValueError(
            f"activation {getattr(act, 'name', act)!r}: vjp(x, y, dy) must return one array of x's shape "
            f"{tuple(x.shape)}, got {got}"
        )
    if hasattr(dx, "dtype") and jnp.issubdtype(x.dtype, jnp.floating) and not jnp.issubdtype(dx.dtype, jnp.floating):
        raise TypeError(
            f"activation {getattr(act, 'name', act)!r}: vjp(x, y, dy) must return a floating array for x of dtype "
            f"{x.dtype}, got {dx.dtype} (an integer one has truncated the gradient)"
        )
    return dx


def _dense_backward(act, use_bias, params, cache, dy):
    check_dy(dy, (*cache[0].shape[:-1], params["w"].shape[1]))  # the activation would broadcast a wrong one
    if act is None:
        (x,), dz = cache, dy
    else:
        x, z, y = cache
        dz = activation_vjp(act, z, y, dy)
    x2, dz2 = x.reshape(-1, x.shape[-1]), dz.reshape(-1, dz.shape[-1])
    # Contract over the shared axes in place: ``x.T @ dz`` and ``dz @ w.T`` leave a transposed
    # copy of each kernel in the step (figure: benchmarks/RESULTS.md, "What changed in the library").
    dw = jax.lax.dot_general(x2, dz2, (((0,), (0,)), ((), ())))
    dx = jax.lax.dot_general(dz, params["w"], (((dz.ndim - 1,), (1,)), ((), ())))
    grads = {"w": dw, "b": sum_leading(dz)} if use_bias else {"w": dw}
    return grads, dx


def Dense(
    units: int,
    activation: str | activations.Activation | None = None,
    *,
    use_bias: bool = True,
    kernel_initializer: str | Callable = "glorot_uniform",
    bias_initializer: str | Callable = "zeros",
    name: str = "dense",
) -> Layer:
    """Fully-connected layer ``y = act(x @ w + b)``; params ``{"w": (in, out), "b": (out,)}``.

    Backward, with ``z = x @ w + b`` and ``dz = act'(z) * dy`` (a VJP for softmax)::

        dw = x^T dz      (in, out)      db = sum_batch dz      (out,)      dx = dz w^T   (..., in)

    Defaults follow Keras: glorot_uniform kernel, zero bias, no activation.

    Args:
        units: The output size (>= 1).
        activation: A name, an :class:`fnn.activations.Activation`, or None (linear).
        use_bias: Add the bias ``b``.
        kernel_initializer: A name (:mod:`fnn.initializers`) or an initializer
            ``(key, shape, dtype) -> array``. Its array must have ``shape``, ``(in, out)`` (the
            layer's init raises ValueError otherwise); one in another dtype is cast to ``dtype``.
        bias_initializer: As ``kernel_initializer``.
        name: The layer's name.

    Returns:
        The :class:`Layer`.

    Raises:
        ValueError: For ``units < 1`` or an unknown activation or initializer name.
        TypeError: For a ``units`` that is not an integer, a ``use_bias`` that is not a bool,
            an activation or initializer of
            the wrong type, an initializer that does not take ``(key, shape, dtype)``, or an
            Activation whose ``fn`` or ``vjp`` cannot be called as ``fn(x)``, ``vjp(x, y, dy)``.

    Examples:
        >>> import fnn, jax, jax.numpy as jnp
        >>> layer = fnn.Dense(3, activation="relu")
        >>> shape, params = layer.init(jax.random.PRNGKey(0), (2,))
        >>> shape, params["w"].shape, params["b"].tolist()
        ((3,), (2, 3), [0.0, 0.0, 0.0])
    """
    units = _check_units(units)
    act = activations.get(activation)
    # The identity is skipped by what it computes, not by its name: a custom Activation
    # called "linear" still runs.
    fwd_act = None if act == activations.get("linear") else act
    kernel_init = _initializer("kernel_initializer", kernel_initializer)
    bias_init = _initializer("bias_initializer", bias_initializer)
    use_bias = boolean("use_bias", use_bias)  # (bool("no") is True: a word would add the bias)
    return Layer(
        bound(dense_init, units, kernel_init, bias_init, use_bias),
        bound(_dense_forward, fwd_act, use_bias, units),
        bound(_dense_backward, fwd_act, use_bias),
        name,
    )


def _dense_repr(layer: Layer) -> str:
    units, kernel_init, bias_init, use_bias = cast(bound, layer.init).args
    act = cast(bound, layer.forward).args[0]
    parts = (
        [str(units)] + ([activation_repr(act)] if act is not None else []) + ([] if use_bias else ["use_bias=False"])
    )
    # the initializers that are not Keras's defaults: networks that draw differently print differently
    for arg, init, default in (("kernel", kernel_init, "glorot_uniform"), ("bias", bias_init, "zeros")):
        shown = initializer_name(init) or getattr(init, "__name__", None) or repr(init)
        if shown != default and (use_bias or arg == "kernel"):
            parts.append(f"{arg}_initializer={shown}")
    return f"Dense({', '.join(parts)})"


LAYER_REPRS[_dense_forward] = (_dense_repr, lambda layer: "dense")

# Dense's rules, forward -> backward: rows_independent (fnn.layers._core) knows a built-in layer
# by its rules.
DENSE_RULES: dict[Callable, Callable] = {_dense_forward: _dense_backward}


def _check_units(units: Any, what: str = "units") -> int:
    return integer(what, units, 1)


# --------------------------------------------------------------------------------------------
# mlp
# --------------------------------------------------------------------------------------------


def mlp(
    sizes: int | Sequence[int],
    activation: str | activations.Activation = "relu",
    output_activation: str | activations.Activation | None = None,
    **dense_kwargs: Any,
) -> Network:
    """A multi-layer perceptron: ``Dense(s, activation)`` for each hidden size, then a Dense
    output layer with ``output_activation`` (linear by default, so losses take logits).

    ``mlp([256, 256, 10], activation="relu")`` is 784 -> 256 -> 256 -> 10 once initialised
    with ``input_shape=(784,)``.

    Args:
        sizes: The hidden sizes then the output size (an int: a single Dense layer).
        activation: The hidden layers' activation.
        output_activation: The output layer's activation (None: linear).
        **dense_kwargs: Further :func:`Dense` arguments for every layer (``kernel_initializer``,
            ``use_bias``...).

    Returns:
        The :class:`Network`.

    Raises:
        ValueError: For no sizes, a size below 1, or an unknown activation name.
        TypeError: For ``sizes`` that is neither an int nor a sequence of them, or a size that
            is not an integer.

    Examples:
        >>> import fnn
        >>> net = fnn.mlp([16, 16, 3], activation="relu")  # 4 -> 16 -> 16 -> 3 for 4 features
        >>> net.names, net.output_shape((4,))
        (('dense_0', 'dense_1', 'dense_2'), (3,))
    """
    if isinstance(sizes, (numbers.Integral, np.integer)) and not isinstance(sizes, (bool, np.bool_)):
        sizes = [int(sizes)]
    elif isinstance(sizes, np.ndarray) and sizes.ndim == 1:
        sizes = sizes.tolist()
    elif isinstance(sizes, Sequence) and not isinstance(sizes, (str, bytes)):
        sizes = list(sizes)
    else:
        raise TypeError(
            f"mlp: sizes must be an int or a sequence of ints (hidden sizes, then the output's), got {sizes!r}"
        )
    if not sizes:
        raise ValueError("mlp: sizes must name at least the output size")
    for s in sizes:
        _check_units(s, "mlp sizes")
    activations.get(activation)  # an unknown name fails here, hidden layers or not
    hidden = [Dense(s, activation, **dense_kwargs) for s in sizes[:-1]]
    return serial(*hidden, Dense(sizes[-1], output_activation, **dense_kwargs))
