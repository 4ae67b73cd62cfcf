"""The layer protocol.

A :class:`Layer` is three pure functions, in the spirit of ``jax.example_libraries.stax``
with the reverse pass written out by hand beside each forward:

* ``init(key, input_shape, dtype) -> (output_shape, params)``; shapes exclude the batch axis.
* ``forward(params, x, *, key=None, train=False) -> (y, cache)``; ``cache`` is a pytree of
  arrays holding exactly what ``backward`` needs.
* ``backward(params, cache, dy) -> (dparams, dx)``; the vector-Jacobian product of
  ``forward`` at the point it cached, with ``dparams`` shaped like ``params``.

Beside it, what every layer checks: an input shape (:func:`as_shape`), an input's width
(:class:`FeatureMismatchError`), a network's layers and names (:func:`network_args`), and a
network where a single layer was given.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn._keys import seed_key
from fnn._validate import eval_shape_or_run, integer
from fnn._values import Static

Array = jax.Array
ArrayLike = Any  # a jax or NumPy array, nested lists, a scalar: what jnp.asarray takes
Params = Any
Shape = tuple[int, ...]


class FeatureMismatchError(ValueError):
    """An input whose trailing size differs from what a layer was built for."""


def check_features(x: Array, expected: int) -> None:
    if x.ndim < 1 or x.shape[-1] != expected:
        got = x.shape[-1] if x.ndim else "a scalar"
        raise FeatureMismatchError(f"expects {expected} input features, got {got} (input shape {x.shape})")


def check_dy(dy: Array, shape: Shape) -> None:
    """A backward's ``dy`` has its output's shape: elementwise backwards would broadcast a
    wrong one (a user layer's ``(1, n)`` dx) into a right-looking, wrong gradient."""
    if tuple(jnp.shape(dy)) != tuple(shape):
        raise ValueError(f"dy of shape {tuple(jnp.shape(dy))} for outputs of shape {tuple(shape)}")


def as_shape(input_shape: int | Sequence[int]) -> Shape:
    """``input_shape`` (an int, or a sequence of them, without the batch axis) as a tuple of
    positive ints; anything else is a TypeError or ValueError naming it (no silent ``int()``)."""
    dims: Any = input_shape
    if isinstance(dims, (numbers.Integral, np.integer)) and not isinstance(dims, (bool, np.bool_)):
        dims = (dims,)
    elif isinstance(dims, np.ndarray) and dims.ndim == 1:
        dims = dims.tolist()
    if not isinstance(dims, Sequence) or isinstance(dims, (str, bytes)):
        raise TypeError(f"input_shape must be an int or a tuple of ints (without the batch axis), got {dims!r}")
    if not dims:
        raise ValueError("input_shape must name at least one axis (without the batch axis), got ()")
    return tuple(integer(f"input_shape[{i}]", d, 1) for i, d in enumerate(dims))


def output_shape_of(init: Callable[..., tuple[Shape, Params]], input_shape: int | Sequence[int]) -> Shape:
    """The output shape ``init`` gives for ``input_shape``, traced: nothing is allocated (an init
    that cannot be traced runs eagerly, as ``Network.init`` runs it)."""
    shape = as_shape(input_shape)
    return eval_shape_or_run(lambda k: Static(tuple(init(k, shape)[0])), seed_key(0)).value


class Layer(NamedTuple):
    """A layer: pure ``init``/``forward``/``backward`` functions plus a display name.

    ``needs_key`` marks layers that draw randomness in training (Dropout); ``serial`` hands
    those, and only those, a fresh subkey.

    Write your own as three functions with the derivative beside the forward; it then works
    everywhere a built-in layer does (``serial``, ``value_and_grad``, ``gradcheck``, ``fit``).

    Attributes:
        init: ``(key, input_shape, dtype) -> (output_shape, params)``; shapes exclude the batch axis.
        forward: ``(params, x, *, key=None, train=False) -> (y, cache)``.
        backward: ``(params, cache, dy) -> (dparams, dx)``, ``dparams`` shaped like ``params``.
        name: The display name (networks number repeats: ``dense_0``, ``dense_1``).
        needs_key: True if the layer draws randomness in training.

    Examples:
        ``y = x * s``, one learned scale per feature:

        >>> import fnn, jax, jax.numpy as jnp
        >>> def init(key, input_shape, dtype=jnp.float32):
        ...     return tuple(input_shape), {"s": jnp.ones(input_shape[-1:], dtype)}
        >>> def forward(params, x, *, key=None, train=False):
        ...     return x * params["s"], (x,)
        >>> def backward(params, cache, dy):
        ...     (x,) = cache
        ...     return {"s": jnp.sum(dy * x, axis=0)}, dy * params["s"]
        >>> scale = fnn.Layer(init, forward, backward, "scale")
        >>> net = fnn.serial(scale, fnn.Dense(1))
        >>> params = net.init(jax.random.PRNGKey(0), (3,))
        >>> params[0]["s"].tolist(), net.apply(params, jnp.ones((2, 3))).shape
        ([1.0, 1.0, 1.0], (2, 1))
    """

    init: Callable[..., tuple[Shape, Params]]
    forward: Callable[..., tuple[Array, Any]]
    backward: Callable[[Params, Any, Array], tuple[Params, Array]]
    name: str
    needs_key: bool = False

    def init_with_shape(
        self, key: Array, input_shape: int | Sequence[int], dtype: Any = jnp.float32
    ) -> tuple[Shape, Params]:
        """``(output_shape, params)``: the layer's ``init`` (the name networks share).

        Args:
            key: A PRNG key.
            input_shape: The input's shape without the batch axis (an int for one axis).
            dtype: The params' dtype.

        Returns:
            ``(output_shape, params)``.
        """
        return self.init(key, input_shape, dtype)

    def output_shape(self, input_shape: int | Sequence[int]) -> Shape:
        """The output shape (without the batch axis) for inputs of ``input_shape``.

        Args:
            input_shape: The input's shape without the batch axis (an int for one axis).

        Returns:
            The output shape; nothing is allocated (the init is traced).
        """
        return output_shape_of(self.init, input_shape)

    def __repr__(self) -> str:
        """A built-in layer as its constructor's call (``Dense(4, relu)``, with ``name=`` where
        not the default); a layer of your own as the tuple of its functions."""
        if _shown(self) is None:
            fields = ", ".join(f"{k}={v!r}" for k, v in zip(self._fields, self, strict=True))
            return f"Layer({fields})"
        return layer_repr(self, with_name=True)


# How each built-in layer shows (``Dense(4, relu)``), by the rule its forward binds: a Layer
# carries only a display name, which the user may choose. Each entry is ``(show, default_name)``:
# the layer in a few words, and the name its constructor gives by default (a single layer's repr
# adds ``name=`` where it differs; in a network the name is the key). The modules defining the
# layers fill it in.
LAYER_REPRS: dict[Callable, tuple[Callable[[Layer], str], Callable[[Layer], str]]] = {}


def _shown(layer: Layer) -> tuple[Callable[[Layer], str], Callable[[Layer], str]] | None:
    rule = getattr(layer.forward, "fn", layer.forward)
    try:
        return LAYER_REPRS.get(rule)
    except TypeError:  # an unhashable forward: a layer of the user's
        return None


def layer_repr(layer: Layer, *, with_name: bool = False) -> str:
    """``layer`` in a few words: its kind and what sets it apart (``Dense(4, relu)``,
    ``Dropout(0.1)``), with ``name=`` where ``with_name`` and not the default; ``Layer`` for a
    layer of the user's own."""
    shown = _shown(layer)
    if shown is None:
        return "Layer"
    text = shown[0](layer)
    if with_name and layer.name != shown[1](layer):
        text = f"{text[:-1]}{'' if text.endswith('()') else ', '}name={layer.name!r})"
    return text


# fnn.summary's rows name each layer by its path, the names of the networks above it and its
# own joined by "/" (as Keras's, which refuses the character in names too)
SEPARATOR = "/"
_NO_SEPARATOR = f"must not contain {SEPARATOR!r} (fnn.summary joins the names of nested layers with it)"


def check_layers(who: str, layers: Sequence[Any], argument: str, name: Any, network: type) -> None:
    """At least one layer, each a Layer or a ``network``, and a str ``name``; ``who`` (the
    function) and ``argument`` (a layer's argument, ``{}`` its index) name them in errors."""
    if not layers:
        raise ValueError(f"{who} needs at least one layer")
    for i, layer in enumerate(layers):
        if not isinstance(layer, (Layer, network)):
            raise TypeError(f"{who}: {argument.format(i)} must be a Layer or Network, got {type(layer).__name__}")
        own = getattr(layer, "name", None)
        if isinstance(own, str) and SEPARATOR in own:
            raise ValueError(f"{who}: {argument.format(i)}'s name {own!r} {_NO_SEPARATOR}")
    if not isinstance(name, str):
        raise TypeError(f"{who}: name must be a str, got {type(name).__name__}")
    if SEPARATOR in name:
        raise ValueError(f"{who}: name {name!r} {_NO_SEPARATOR}")


def network_args(layers: Any, names: Any, name: Any, network: type) -> tuple[tuple, tuple[str, ...] | None]:
    """A network's ``layers`` (Layers and ``network`` objects, at least one; a list taken as a tuple,
    so the network hashes) and ``names`` (None when not given: one unique str per layer), checked
    as ``serial`` checks them; ``name`` a str."""
    if isinstance(layers, Layer) or not isinstance(layers, (tuple, list)):
        what = "a single Layer" if isinstance(layers, Layer) else type(layers).__name__
        raise TypeError(f"Network: layers must be a tuple of Layers and Networks (or fnn.serial(*layers)), got {what}")
    check_layers("Network", layers, "layers[{}]", name, network)
    if isinstance(names, (tuple, list)) and not names:
        return tuple(layers), None
    if not isinstance(names, (tuple, list)):
        raise TypeError(f"Network: names must be a tuple of str, one per layer, got {type(names).__name__}")
    if len(names) != len(layers):
        raise ValueError(f"Network: names must name each of the {len(layers)} layers, got {len(names)} names")
    for i, n in enumerate(names):
        if not isinstance(n, str):
            raise TypeError(f"Network: names[{i}] must be a str, got {type(n).__name__}")
        if not n or SEPARATOR in n:
            problem = "must not be empty" if not n else _NO_SEPARATOR
            raise ValueError(f"Network: names[{i}] {n!r} {problem}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(
            f"Network: names must be unique (they key the layers' params and reports), repeated: {repeated}"
        )
    return tuple(layers), tuple(names)


def check_net(net: Any) -> None:
    """``net`` a network (anything with ``apply(params, x)``); a single Layer is named as one."""
    if isinstance(net, Layer):
        raise TypeError(f"net is a single fnn.Layer ({net.name!r}), not a network: wrap it, fnn.serial(layer)")
    if not callable(getattr(net, "apply", None)):
        raise TypeError(f"net must be a network with apply(params, x) (fnn.serial, fnn.mlp), got {type(net).__name__}")
