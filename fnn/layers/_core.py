"""The built-in layers, each forward beside its hand-written backward: Dense, Activation,
Dropout, LayerNorm, Flatten; and :func:`mlp`.

Each layer's functions are module-level rules bound to the layer's configuration by value
(:func:`fnn._values.bound`), so ``Dense(64, "relu") == Dense(64, "relu")`` and networks built
from the same description compare equal.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn import activations, initializers
from fnn._validate import integer, real
from fnn._values import bound
from fnn.activations._registry import acts_per_sample
from fnn.layers._base import FeatureMismatchError, Layer, Network, Shape, as_shape, serial

Array = jax.Array


def _check_features(x: Array, expected: int) -> None:
    if x.ndim < 1 or x.shape[-1] != expected:
        got = x.shape[-1] if x.ndim else "a scalar"
        raise FeatureMismatchError(f"expects {expected} input features, got {got} (input shape {x.shape})")


def _sum_leading(a: Array) -> Array:
    """Sums every axis but the last: the batch (and any other leading) axes."""
    return a.reshape(-1, a.shape[-1]).sum(axis=0)


def _same_shape_init(key: Array, input_shape: Any, dtype: Any = jnp.float32) -> tuple[Shape, dict]:
    return as_shape(input_shape), {}


# --------------------------------------------------------------------------------------------
# Dense: y = act(x @ w + b)
# --------------------------------------------------------------------------------------------


def _dense_init(units, kernel_init, bias_init, use_bias, key, input_shape, dtype=jnp.float32):
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


def _initializer(arg: str, identifier: Any) -> Callable:
    """``initializers.get(identifier)``, its mistakes prefixed by the argument's name."""
    try:
        return initializers.get(identifier)
    except (TypeError, ValueError) as e:
        raise type(e)(f"{arg}: {e}") from None


def _dense_forward(act, use_bias, params, x, *, key=None, train=False):
    _check_features(x, params["w"].shape[0])
    z = x @ params["w"]
    if use_bias:
        z = z + params["b"]
    if act is None:  # linear: nothing to cache but the input
        return z, (x,)
    y = act.fn(z)
    return y, (x, z, y)


def _vjp(act: Any, x: Array, y: Array, dy: Array) -> Array:
    """``act.vjp(x, y, dy)``, refused unless it is one array of ``x``'s shape (an activation of
    the user's own: its mistake named here, not by the layer before it)."""
    dx = act.vjp(x, y, dy)
    if not hasattr(dx, "shape") or tuple(dx.shape) != tuple(x.shape):
        got = f"shape {tuple(dx.shape)}" if hasattr(dx, "shape") else type(dx).__name__
        raise ValueError(
            f"activation {getattr(act, 'name', act)!r}: vjp(x, y, dy) must return one array of x's shape "
            f"{tuple(x.shape)}, got {got}"
        )
    return dx


def _dense_backward(act, use_bias, params, cache, dy):
    if act is None:
        (x,), dz = cache, dy
    else:
        x, z, y = cache
        dz = _vjp(act, z, y, dy)
    x2, dz2 = x.reshape(-1, x.shape[-1]), dz.reshape(-1, dz.shape[-1])
    # Contract over the shared axes in place: ``x.T @ dz`` and ``dz @ w.T`` leave a transposed
    # copy of each kernel in the step (figure: benchmarks/RESULTS.md, "What changed in the library").
    dw = jax.lax.dot_general(x2, dz2, (((0,), (0,)), ((), ())))
    dx = jax.lax.dot_general(dz, params["w"], (((dz.ndim - 1,), (1,)), ((), ())))
    grads = {"w": dw, "b": _sum_leading(dz)} if use_bias else {"w": dw}
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
        TypeError: For a ``units`` that is not an integer, an activation or initializer of
            the wrong type, or an initializer that does not take ``(key, shape, dtype)``.

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
    use_bias = bool(use_bias)
    return Layer(
        bound(_dense_init, units, kernel_init, bias_init, use_bias),
        bound(_dense_forward, fwd_act, use_bias),
        bound(_dense_backward, fwd_act, use_bias),
        name,
    )


def _check_units(units: Any, what: str = "units") -> int:
    return integer(what, units, 1)


# --------------------------------------------------------------------------------------------
# Activation: y = act(x)
# --------------------------------------------------------------------------------------------


def _activation_forward(act, params, x, *, key=None, train=False):
    y = act.fn(x)
    return y, (x, y)


def _activation_backward(act, params, cache, dy):
    x, y = cache
    return {}, _vjp(act, x, y, dy)


def Activation(activation: str | activations.Activation, *, name: str | None = None) -> Layer:
    """Elementwise (or softmax) activation as a layer of its own; no params. ``dx = act'(x) dy``.

    Args:
        activation: A name or an :class:`fnn.activations.Activation`.
        name: The layer's name (None: the activation's).

    Returns:
        The :class:`Layer`.

    Raises:
        ValueError: For an unknown activation name.
        TypeError: For an activation of the wrong type.
    """
    act = activations.get(activation)
    return Layer(_same_shape_init, bound(_activation_forward, act), bound(_activation_backward, act), name or act.name)


# --------------------------------------------------------------------------------------------
# Dropout: y = x * m / (1 - rate),  m ~ Bernoulli(1 - rate)
# --------------------------------------------------------------------------------------------


def _dropout_forward(keep, name, params, x, *, key=None, train=False):
    if not train or keep == 1.0:
        return x, ()
    if key is None:
        raise ValueError(f"{name}: train=True needs a PRNG key (pass key=...)")
    if not jnp.issubdtype(x.dtype, jnp.inexact):  # integer data (pixels): scaled, it is real
        x = x.astype(jnp.result_type(float))
    mask = jax.random.bernoulli(key, keep, x.shape)
    return jnp.where(mask, x / jnp.asarray(keep, x.dtype), jnp.zeros((), x.dtype)), (mask,)


def _dropout_backward(keep, params, cache, dy):
    if not cache:  # evaluation mode: identity
        return {}, dy
    (mask,) = cache
    return {}, jnp.where(mask, dy / jnp.asarray(keep, dy.dtype), jnp.zeros((), dy.dtype))


def Dropout(rate: float, *, name: str = "dropout") -> Layer:
    """Inverted dropout: in training each unit is zeroed with probability ``rate`` and the
    survivors scaled by ``1/(1-rate)``, so evaluation (``train=False``) is the identity.

    Backward uses the same mask: ``dx = dy * m / (1 - rate)``. Training needs ``key=``.

    Args:
        rate: The probability of zeroing a unit, in [0, 1).
        name: The layer's name.

    Returns:
        The :class:`Layer` (``needs_key``).

    Raises:
        ValueError: For a rate outside [0, 1); at forward, training without ``key``.
        TypeError: For a rate that is not a number.

    Examples:
        >>> import fnn, jax, jax.numpy as jnp
        >>> net = fnn.serial(fnn.Dropout(0.5))
        >>> x = jnp.ones((1, 4))
        >>> net.apply([{}], x).tolist()  # evaluation: the identity
        [[1.0, 1.0, 1.0, 1.0]]
        >>> y = net.apply([{}], x, key=jax.random.PRNGKey(0), train=True)  # zeros, or 1 / (1 - 0.5)
        >>> set(y[0].tolist()) <= {0.0, 2.0}
        True
    """
    keep = 1.0 - real("Dropout rate", rate, 0.0, 1.0, hi_open=True)
    return Layer(
        _same_shape_init, bound(_dropout_forward, keep, name), bound(_dropout_backward, keep), name, needs_key=True
    )


# --------------------------------------------------------------------------------------------
# LayerNorm: y = (x - mean) / sqrt(var + eps) * scale + offset, over the last axis
# --------------------------------------------------------------------------------------------


def _layernorm_init(center, scale, key, input_shape, dtype=jnp.float32):
    shape = as_shape(input_shape)
    params = {}
    if scale:
        params["scale"] = jnp.ones((shape[-1],), dtype)
    if center:
        params["offset"] = jnp.zeros((shape[-1],), dtype)
    return shape, params


def _layernorm_forward(epsilon, center, scale, params, x, *, key=None, train=False):
    if "scale" in params or "offset" in params:
        _check_features(x, (params.get("scale", params.get("offset"))).shape[0])
    # statistics in float32 at least (as Keras): float16's (x - mu)^2 overflows at |x - mu| > 256
    out_dtype = jnp.result_type(x.dtype if jnp.issubdtype(x.dtype, jnp.inexact) else float, *params.values())
    x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    mu = jnp.mean(x, axis=-1, keepdims=True)
    xc = x - mu
    r = jax.lax.rsqrt(jnp.mean(xc * xc, axis=-1, keepdims=True) + jnp.asarray(epsilon, x.dtype))
    xh = xc * r
    y = xh * params["scale"] if scale else xh
    if center:
        y = y + params["offset"]
    return y.astype(out_dtype), (xh, r)


def _layernorm_backward(center, scale, params, cache, dy):
    xh, r = cache  # in the forward's statistics dtype (float32 at least)
    g = dy.astype(xh.dtype) * params["scale"] if scale else dy.astype(xh.dtype)
    dx = r * (g - jnp.mean(g, axis=-1, keepdims=True) - xh * jnp.mean(g * xh, axis=-1, keepdims=True))
    grads = {}
    if scale:
        grads["scale"] = _sum_leading(dy.astype(xh.dtype) * xh).astype(params["scale"].dtype)
    if center:
        grads["offset"] = _sum_leading(dy).astype(params["offset"].dtype)
    return grads, dx.astype(dy.dtype)


def LayerNorm(*, epsilon: float = 1e-3, center: bool = True, scale: bool = True, name: str = "layer_norm") -> Layer:
    """Layer normalisation over the last axis (Keras defaults: ``epsilon=1e-3``, learned
    ``scale`` (ones) and ``offset`` (zeros)).

    With ``xh = (x - mu) * r``, ``r = 1/sqrt(var + eps)`` and ``g = dy * scale``, the backward is::

        dx = r * (g - mean(g) - xh * mean(g * xh))        dscale = sum_batch dy * xh
        doffset = sum_batch dy

    Args:
        epsilon: Added to the variance (> 0).
        center: Learn the offset.
        scale: Learn the scale.
        name: The layer's name.

    Returns:
        The :class:`Layer`.

    Raises:
        ValueError: For ``epsilon <= 0``.
        TypeError: For an ``epsilon`` that is not a number.
    """
    epsilon = real("LayerNorm epsilon", epsilon, lo=0.0, lo_open=True)
    center, scale = bool(center), bool(scale)
    return Layer(
        bound(_layernorm_init, center, scale),
        bound(_layernorm_forward, epsilon, center, scale),
        bound(_layernorm_backward, center, scale),
        name,
    )


# --------------------------------------------------------------------------------------------
# Flatten: (N, d1, d2, ...) -> (N, d1*d2*...)
# --------------------------------------------------------------------------------------------


def _flatten_init(key, input_shape, dtype=jnp.float32):
    return (math.prod(as_shape(input_shape)),), {}


def _flatten_forward(params, x, *, key=None, train=False):
    # A zero-size array remembers the input's shape inside the cache pytree without holding any
    # data, so the cache stays a pytree of arrays (jit/scan friendly).
    # the size, not -1: an empty batch has no size to infer it from
    return x.reshape(x.shape[0], math.prod(x.shape[1:])), (jnp.zeros((0, *x.shape[1:]), x.dtype),)


def _flatten_backward(params, cache, dy):
    (like,) = cache
    return {}, dy.reshape((dy.shape[0], *like.shape[1:]))


def Flatten(*, name: str = "flatten") -> Layer:
    """Flattens every axis but the batch axis; backward reshapes ``dy`` back.

    Args:
        name: The layer's name.

    Returns:
        The :class:`Layer`.
    """
    return Layer(_flatten_init, _flatten_forward, _flatten_backward, name)


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


# The built-in layers whose output row i depends on input row i alone, given a per-sample
# activation (the first bound argument of Dense's and Activation's rules).
_ROW_RULES = {
    _dropout_forward: _dropout_backward,
    _layernorm_forward: _layernorm_backward,
}
_ACT_RULES = {_dense_forward: _dense_backward, _activation_forward: _activation_backward}


def _layer_rows_independent(layer: Layer) -> bool:
    fwd, bwd = layer.forward, layer.backward
    if fwd is _flatten_forward:
        return bwd is _flatten_backward
    if not (isinstance(fwd, bound) and isinstance(bwd, bound)):
        return False
    if _ROW_RULES.get(fwd.fn) is bwd.fn:
        return True
    act = fwd.args[0] if fwd.args else None
    return _ACT_RULES.get(fwd.fn) is bwd.fn and (act is None or acts_per_sample(act))


def rows_independent(net: Any) -> bool:
    """Whether ``net`` computes each sample from that sample alone (so a batch padded with
    extra rows gives the real rows what they would get alone, gradients included): true of
    networks of the built-in layers with built-in activations; a layer or activation of your
    own (or a network that is not an :class:`fnn.Network`) is not assumed to be so.

    Args:
        net: A network.

    Returns:
        True if every layer (nested networks included) is a built-in Dense, Activation,
        Dropout, LayerNorm or Flatten, with activations acting within each sample.
    """
    if not isinstance(net, Network):
        return False
    return all(
        rows_independent(layer) if isinstance(layer, Network) else _layer_rows_independent(layer)
        for layer in net.layers
    )
