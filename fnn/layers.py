"""Layers as ``(init, forward, backward)`` triples, and networks built from them.

A :class:`Layer` is three pure functions, in the spirit of ``jax.example_libraries.stax``
with the reverse pass written out by hand beside each forward:

* ``init(key, input_shape, dtype) -> (output_shape, params)``; shapes exclude the batch axis.
* ``forward(params, x, *, key=None, train=False) -> (y, cache)``; ``cache`` is a pytree of
  arrays holding exactly what ``backward`` needs.
* ``backward(params, cache, dy) -> (dparams, dx)``; the vector-Jacobian product of
  ``forward`` at the point it cached, with ``dparams`` shaped like ``params``.

:func:`serial` composes layers into a :class:`Network` whose backward runs the layers in
reverse (the chain rule, layer by layer); :func:`mlp` builds the usual stack of Dense layers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from fnn import activations as _activations
from fnn import initializers as _initializers

Array = jax.Array
Params = Any
Shape = tuple[int, ...]

__all__ = [
    "Layer", "Network", "Dense", "Activation", "Dropout", "LayerNorm", "Flatten", "serial", "mlp",
]


class Layer(NamedTuple):
    """A layer: pure ``init``/``forward``/``backward`` functions plus a display name.

    ``needs_key`` marks layers that draw randomness in training (Dropout); ``serial`` hands
    those, and only those, a fresh subkey.
    """

    init: Callable[..., tuple[Shape, Params]]
    forward: Callable[..., tuple[Array, Any]]
    backward: Callable[[Params, Any, Array], tuple[Params, Array]]
    name: str
    needs_key: bool = False


class FeatureMismatchError(ValueError):
    """An input whose trailing size differs from what a layer was built for."""


def _as_shape(input_shape: int | Sequence[int]) -> Shape:
    if isinstance(input_shape, int):
        input_shape = (input_shape,)
    try:
        shape = tuple(int(d) for d in input_shape)
    except TypeError:
        raise TypeError(
            f"input_shape must be an int or a tuple of ints (without the batch axis), got {input_shape!r}"
        ) from None
    if not shape or any(d < 1 for d in shape):
        raise ValueError(f"input_shape must be non-empty with positive sizes, got {shape}")
    return shape


def _check_units(units: int, what: str = "units") -> int:
    if isinstance(units, bool) or not isinstance(units, int) or units < 1:
        raise ValueError(f"{what} must be a positive int, got {units!r}")
    return units


def _check_features(x: Array, expected: int) -> None:
    if x.ndim < 1 or x.shape[-1] != expected:
        got = x.shape[-1] if x.ndim else "a scalar"
        raise FeatureMismatchError(f"expects {expected} input features, got {got} (input shape {x.shape})")


def _sum_leading(a: Array) -> Array:
    """Sums every axis but the last: the batch (and any other leading) axes."""
    return a.reshape(-1, a.shape[-1]).sum(axis=0)


# --------------------------------------------------------------------------------------------
# Dense: y = act(x @ w + b)
# --------------------------------------------------------------------------------------------


def Dense(
    units: int,
    activation: str | _activations.Activation | None = None,
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
    """
    _check_units(units)
    act = _activations.get(activation)
    kernel_init = _initializers.get(kernel_initializer)
    bias_init = _initializers.get(bias_initializer)
    linear = act.name == "linear"

    def init(key, input_shape, dtype=jnp.float32):
        shape = _as_shape(input_shape)
        kw, kb = jax.random.split(key)
        w = kernel_init(kw, (shape[-1], units), dtype)
        params = {"w": w, "b": bias_init(kb, (units,), dtype)} if use_bias else {"w": w}
        return shape[:-1] + (units,), params

    def forward(params, x, *, key=None, train=False):
        _check_features(x, params["w"].shape[0])
        z = x @ params["w"]
        if use_bias:
            z = z + params["b"]
        if linear:
            return z, (x,)
        y = act.fn(z)
        return y, (x, z, y)

    def backward(params, cache, dy):
        if linear:
            (x,), dz = cache, dy
        else:
            x, z, y = cache
            dz = act.vjp(z, y, dy)
        x2, dz2 = x.reshape(-1, x.shape[-1]), dz.reshape(-1, dz.shape[-1])
        # Contract over the shared axes in place: ``x.T @ dz`` and ``dz @ w.T`` leave a
        # transposed copy of each kernel in the step (measured: 15 % of a batch-1 step on CPU).
        dw = jax.lax.dot_general(x2, dz2, (((0,), (0,)), ((), ())))
        dx = jax.lax.dot_general(dz, params["w"], (((dz.ndim - 1,), (1,)), ((), ())))
        grads = {"w": dw, "b": _sum_leading(dz)} if use_bias else {"w": dw}
        return grads, dx

    return Layer(init, forward, backward, name)


# --------------------------------------------------------------------------------------------
# Activation: y = act(x)
# --------------------------------------------------------------------------------------------


def Activation(activation: str | _activations.Activation, *, name: str | None = None) -> Layer:
    """Elementwise (or softmax) activation as a layer of its own; no params. ``dx = act'(x) dy``."""
    act = _activations.get(activation)

    def init(key, input_shape, dtype=jnp.float32):
        return _as_shape(input_shape), {}

    def forward(params, x, *, key=None, train=False):
        y = act.fn(x)
        return y, (x, y)

    def backward(params, cache, dy):
        x, y = cache
        return {}, act.vjp(x, y, dy)

    return Layer(init, forward, backward, name or act.name)


# --------------------------------------------------------------------------------------------
# Dropout: y = x * m / (1 - rate),  m ~ Bernoulli(1 - rate)
# --------------------------------------------------------------------------------------------


def Dropout(rate: float, *, name: str = "dropout") -> Layer:
    """Inverted dropout: in training each unit is zeroed with probability ``rate`` and the
    survivors scaled by ``1/(1-rate)``, so evaluation (``train=False``) is the identity.

    Backward uses the same mask: ``dx = dy * m / (1 - rate)``. Training needs ``key=``.
    """
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0.0 <= rate < 1.0:
        raise ValueError(f"Dropout rate must be a float in [0, 1), got {rate!r}")
    keep = 1.0 - float(rate)

    def init(key, input_shape, dtype=jnp.float32):
        return _as_shape(input_shape), {}

    def forward(params, x, *, key=None, train=False):
        if not train or rate == 0.0:
            return x, ()
        if key is None:
            raise ValueError(f"{name}: train=True needs a PRNG key (pass key=...)")
        mask = jax.random.bernoulli(key, keep, x.shape)
        return jnp.where(mask, x / jnp.asarray(keep, x.dtype), jnp.zeros((), x.dtype)), (mask,)

    def backward(params, cache, dy):
        if not cache:  # evaluation mode: identity
            return {}, dy
        (mask,) = cache
        return {}, jnp.where(mask, dy / jnp.asarray(keep, dy.dtype), jnp.zeros((), dy.dtype))

    return Layer(init, forward, backward, name, needs_key=True)


# --------------------------------------------------------------------------------------------
# LayerNorm: y = (x - mean) / sqrt(var + eps) * scale + offset, over the last axis
# --------------------------------------------------------------------------------------------


def LayerNorm(
    *, epsilon: float = 1e-3, center: bool = True, scale: bool = True, name: str = "layer_norm"
) -> Layer:
    """Layer normalisation over the last axis (Keras defaults: ``epsilon=1e-3``, learned
    ``scale`` (ones) and ``offset`` (zeros)).

    With ``xh = (x - mu) * r``, ``r = 1/sqrt(var + eps)`` and ``g = dy * scale``, the backward is::

        dx = r * (g - mean(g) - xh * mean(g * xh))        dscale = sum_batch dy * xh
        doffset = sum_batch dy
    """
    if not epsilon > 0:
        raise ValueError(f"LayerNorm epsilon must be > 0, got {epsilon!r}")

    def init(key, input_shape, dtype=jnp.float32):
        shape = _as_shape(input_shape)
        params = {}
        if scale:
            params["scale"] = jnp.ones((shape[-1],), dtype)
        if center:
            params["offset"] = jnp.zeros((shape[-1],), dtype)
        return shape, params

    def forward(params, x, *, key=None, train=False):
        if "scale" in params or "offset" in params:
            _check_features(x, (params.get("scale", params.get("offset"))).shape[0])
        mu = jnp.mean(x, axis=-1, keepdims=True)
        xc = x - mu
        r = jax.lax.rsqrt(jnp.mean(xc * xc, axis=-1, keepdims=True) + jnp.asarray(epsilon, x.dtype))
        xh = xc * r
        y = xh * params["scale"] if scale else xh
        if center:
            y = y + params["offset"]
        return y, (xh, r)

    def backward(params, cache, dy):
        xh, r = cache
        g = dy * params["scale"] if scale else dy
        dx = r * (g - jnp.mean(g, axis=-1, keepdims=True) - xh * jnp.mean(g * xh, axis=-1, keepdims=True))
        grads = {}
        if scale:
            grads["scale"] = _sum_leading(dy * xh)
        if center:
            grads["offset"] = _sum_leading(dy)
        return grads, dx

    return Layer(init, forward, backward, name)


# --------------------------------------------------------------------------------------------
# Flatten: (N, d1, d2, ...) -> (N, d1*d2*...)
# --------------------------------------------------------------------------------------------


def Flatten(*, name: str = "flatten") -> Layer:
    """Flattens every axis but the batch axis; backward reshapes ``dy`` back."""

    def init(key, input_shape, dtype=jnp.float32):
        shape = _as_shape(input_shape)
        return (math.prod(shape),), {}

    def forward(params, x, *, key=None, train=False):
        # A zero-size array remembers the input's shape inside the cache pytree without
        # holding any data, so the cache stays a pytree of arrays (jit/scan friendly).
        return x.reshape(x.shape[0], -1), (jnp.zeros((0,) + x.shape[1:], x.dtype),)

    def backward(params, cache, dy):
        (like,) = cache
        return {}, dy.reshape((dy.shape[0],) + like.shape[1:])

    return Layer(init, forward, backward, name)


# --------------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Network:
    """A stack of layers; the object SPEC §2 calls ``net``.

    ``params`` is a list with one entry per layer. Equality and hashing are by identity, so
    compiled training functions cached on a network are reused for that same object.
    """

    layers: tuple[Layer, ...]
    names: tuple[str, ...] = field(default=())

    def __post_init__(self):
        if not self.names:
            object.__setattr__(self, "names", _unique_names(self.layers))

    @property
    def needs_key(self) -> bool:
        return any(layer.needs_key for layer in self.layers)

    def init(self, key: Array, input_shape: int | Sequence[int], dtype=jnp.float32) -> list:
        """Initial params (a list, one entry per layer) for inputs of ``input_shape`` (no batch axis)."""
        return self.init_with_shape(key, input_shape, dtype)[1]

    def output_shape(self, input_shape: int | Sequence[int]) -> Shape:
        """The output shape (without the batch axis) for inputs of ``input_shape``."""
        out = []  # shapes are static: capture them while tracing, allocate nothing
        jax.eval_shape(lambda k: out.append(self.init_with_shape(k, input_shape)[0]), jax.random.PRNGKey(0))
        return tuple(out[0])

    def init_with_shape(self, key, input_shape, dtype=jnp.float32) -> tuple[Shape, list]:
        shape = _as_shape(input_shape)
        params = []
        for layer, k in zip(self.layers, jax.random.split(key, len(self.layers))):
            shape, p = layer.init(k, shape, dtype)
            params.append(p)
        return shape, params

    def forward(self, params: list, x: Array, *, key: Array | None = None, train: bool = False):
        """``(y, cache)``: the output and what :meth:`backward` needs. ``x``: (batch, *input_shape)."""
        self._check_params(params)
        keys = self._layer_keys(key, train)
        caches = []
        for i, (layer, p) in enumerate(zip(self.layers, params)):
            try:
                x, c = layer.forward(p, x, key=keys[i], train=train)
            except FeatureMismatchError as e:
                raise FeatureMismatchError(f"layer {i} ({self.names[i]}) {e}") from None
            caches.append(c)
        return x, caches

    def apply(self, params: list, x: Array, *, key: Array | None = None, train: bool = False) -> Array:
        """The network's output ``y`` for a batch ``x``; pure, jittable and vmappable."""
        return self.forward(params, x, key=key, train=train)[0]

    __call__ = apply

    def backward(self, params: list, cache: list, dy: Array) -> tuple[list, Array]:
        """Reverse pass: ``(dparams, dx)`` for the output cotangent ``dy`` (chain rule, last layer first)."""
        self._check_params(params)
        grads = [None] * len(self.layers)
        for i in reversed(range(len(self.layers))):
            grads[i], dy = self.layers[i].backward(params[i], cache[i], dy)
        return grads, dy

    def as_layer(self, name: str = "serial") -> Layer:
        """This network as a single layer, for nesting inside :func:`serial`."""

        def init(key, input_shape, dtype=jnp.float32):
            return self.init_with_shape(key, input_shape, dtype)

        return Layer(init, self.forward, self.backward, name, self.needs_key)

    def _layer_keys(self, key, train):
        if key is None or not train:
            return [None] * len(self.layers)
        n = sum(layer.needs_key for layer in self.layers)
        sub = iter(jax.random.split(key, n)) if n else iter(())
        return [next(sub) if layer.needs_key else None for layer in self.layers]

    def _check_params(self, params):
        if not isinstance(params, (list, tuple)) or len(params) != len(self.layers):
            got = f"a {type(params).__name__} of length {len(params)}" if isinstance(params, (list, tuple)) else type(params).__name__
            raise ValueError(f"params must be a list with one entry per layer ({len(self.layers)}), got {got}")

    def __repr__(self) -> str:
        return f"Network({', '.join(self.names)})"


def _unique_names(layers: Sequence[Layer]) -> tuple[str, ...]:
    counts: dict[str, int] = {}
    names = []
    for layer in layers:
        n = counts.get(layer.name, 0)
        counts[layer.name] = n + 1
        names.append(f"{layer.name}_{n}")
    return tuple(names)


def serial(*layers: Layer | Network) -> Network:
    """Composes layers in order: ``serial(Dense(64, "relu"), Dropout(0.1), Dense(10))``."""
    if not layers:
        raise ValueError("serial needs at least one layer")
    resolved = []
    for i, layer in enumerate(layers):
        if isinstance(layer, Network):
            layer = layer.as_layer()
        if not isinstance(layer, Layer):
            raise TypeError(f"serial: argument {i} must be a Layer or Network, got {type(layer).__name__}")
        resolved.append(layer)
    return Network(tuple(resolved))


def mlp(
    sizes: Sequence[int],
    activation: str | _activations.Activation = "relu",
    output_activation: str | _activations.Activation | None = None,
    **dense_kwargs,
) -> Network:
    """A multi-layer perceptron: ``Dense(s, activation)`` for each hidden size, then a Dense
    output layer with ``output_activation`` (linear by default, so losses take logits).

    ``mlp([256, 256, 10], activation="relu")`` is 784 -> 256 -> 256 -> 10 once initialised
    with ``input_shape=(784,)``.
    """
    sizes = list(sizes) if not isinstance(sizes, int) else [sizes]
    if not sizes:
        raise ValueError("mlp: sizes must name at least the output size")
    for s in sizes:
        _check_units(s, "mlp sizes")
    _activations.get(activation)  # an unknown name fails here, hidden layers or not
    hidden = [Dense(s, activation, **dense_kwargs) for s in sizes[:-1]]
    return serial(*hidden, Dense(sizes[-1], output_activation, **dense_kwargs))
