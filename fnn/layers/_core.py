"""The built-in layers besides Dense and the normalizations (``_normalization.py``), each
forward beside its hand-written backward: Activation, Dropout, Flatten, Reshape; and
:func:`rows_independent`, whether a network computes each sample from that sample alone.

Each layer's functions are module-level rules bound to the layer's configuration by value
(:func:`fnn._values.bound`), so ``Dropout(0.1) == Dropout(0.1)`` and networks built from the
same description compare equal.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np

from fnn import activations
from fnn._keys import key as check_key
from fnn._per_key import per_key
from fnn._validate import integer, real
from fnn._values import bound
from fnn.activations._registry import activation_repr, acts_per_sample
from fnn.layers._base import LAYER_REPRS, Array, Layer, Shape, as_shape, check_dy
from fnn.layers._dense import DENSE_RULES, activation_output, activation_vjp
from fnn.layers._errors import check_no_params
from fnn.layers._network import Network
from fnn.layers._normalization import NORMALIZATION_ROW_RULES


def _same_shape_init(key: Array, input_shape: Any, dtype: Any = jnp.float32) -> tuple[Shape, dict]:
    check_key("key", key)  # unused here, but a wrong one is the caller's mistake all the same
    return as_shape(input_shape), {}


# --------------------------------------------------------------------------------------------
# Activation: y = act(x)
# --------------------------------------------------------------------------------------------


def _activation_forward(act, params, x, *, key=None, train=False):
    check_no_params(params)
    y = activation_output(act, x)
    return y, (x, y)


def _activation_backward(act, params, cache, dy):
    x, y = cache
    check_dy(dy, y.shape)
    return {}, activation_vjp(act, x, y, dy)


def Activation(activation: str | activations.Activation, *, name: str | None = None) -> Layer:
    """Elementwise (or softmax) activation as a layer of its own; no params. ``dx = act'(x) dy``.

    Args:
        activation: A name or an :class:`fnn.activations.Activation`.
        name: The layer's name (None: the activation's).

    Returns:
        The :class:`Layer`.

    Raises:
        ValueError: For an unknown activation name.
        TypeError: For an activation of the wrong type, or an Activation whose ``fn`` or ``vjp``
            cannot be called as ``fn(x)``, ``vjp(x, y, dy)``.
    """
    act = activations.get(activation)
    return Layer(_same_shape_init, bound(_activation_forward, act), bound(_activation_backward, act), name or act.name)


# --------------------------------------------------------------------------------------------
# Dropout: y = x * m / (1 - rate),  m ~ Bernoulli(1 - rate)
# --------------------------------------------------------------------------------------------


def _dropout_forward(keep, name, params, x, *, key=None, train=False):
    check_no_params(params)
    if not train or keep == 1.0:
        return x, ()
    if key is None:
        raise ValueError(f"{name}: train=True needs a PRNG key (pass key=...)")
    if not isinstance(key, jax.Array | np.ndarray):  # a seed (0), not a key: as Network.forward says it
        raise TypeError(
            f"{name}: key must be a jax PRNG key (jax.random.key(seed) or jax.random.PRNGKey(seed)), got {key!r}"
        )
    if not jnp.issubdtype(x.dtype, jnp.inexact):  # integer data (pixels): scaled, it is real
        x = x.astype(jnp.result_type(float))
    if keep == 0.0:  # rate 1: no unit kept (x / 0 in the unselected branch would make jax.grad NaN)
        return jnp.zeros_like(x), (jnp.zeros(x.shape, bool),)
    # per_key: under fit_many's vmap over models each model's mask is its own key's, as in fit
    mask = per_key(lambda k: jax.random.bernoulli(k, keep, x.shape), key)
    return jnp.where(mask, x / jnp.asarray(keep, x.dtype), jnp.zeros((), x.dtype)), (mask,)


def _dropout_backward(keep, params, cache, dy):
    if not cache:  # evaluation mode: identity
        return {}, dy
    (mask,) = cache
    check_dy(dy, mask.shape)
    if keep == 0.0:
        return {}, jnp.zeros_like(dy)
    return {}, jnp.where(mask, dy / jnp.asarray(keep, dy.dtype), jnp.zeros((), dy.dtype))


def Dropout(rate: float, *, name: str = "dropout") -> Layer:
    """Inverted dropout: in training each unit is zeroed with probability ``rate`` and the
    survivors scaled by ``1/(1-rate)``, so evaluation (``train=False``) is the identity.

    Backward uses the same mask: ``dx = dy * m / (1 - rate)``. Training needs ``key=``. A rate of
    1 zeroes every unit in training, outputs and gradients alike (Keras's and torch's rate 1).

    Args:
        rate: The probability of zeroing a unit, in [0, 1].
        name: The layer's name.

    Returns:
        The :class:`Layer` (``needs_key``).

    Raises:
        ValueError: For a rate outside [0, 1]; at forward, training without ``key``.
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
    keep = 1.0 - real("Dropout rate", rate, 0.0, 1.0)
    return Layer(
        _same_shape_init, bound(_dropout_forward, keep, name), bound(_dropout_backward, keep), name, needs_key=True
    )


# --------------------------------------------------------------------------------------------
# Flatten: (N, d1, d2, ...) -> (N, d1*d2*...)
# --------------------------------------------------------------------------------------------


def _flatten_init(key, input_shape, dtype=jnp.float32):
    check_key("key", key)
    return (math.prod(as_shape(input_shape)),), {}


def _flatten_forward(params, x, *, key=None, train=False):
    check_no_params(params)
    # A zero-size array remembers the input's shape inside the cache pytree without holding any
    # data, so the cache stays a pytree of arrays (jit/scan friendly).
    # the size, not -1: an empty batch has no size to infer it from
    return x.reshape(x.shape[0], math.prod(x.shape[1:])), (jnp.zeros((0, *x.shape), x.dtype),)


def _flatten_backward(params, cache, dy):
    (like,) = cache  # (0, *input shape)
    check_dy(dy, (like.shape[1], math.prod(like.shape[2:])))
    return {}, dy.reshape(like.shape[1:])


def Flatten(*, name: str = "flatten") -> Layer:
    """Flattens every axis but the batch axis; backward reshapes ``dy`` back.

    Args:
        name: The layer's name.

    Returns:
        The :class:`Layer`.
    """
    return Layer(_flatten_init, _flatten_forward, _flatten_backward, name)


# --------------------------------------------------------------------------------------------
# Reshape: (N, *input_shape) -> (N, *target_shape), the same elements in the same (C) order
# --------------------------------------------------------------------------------------------


def _target_shape(target_shape: Any) -> Shape:
    """Reshape's ``target_shape`` checked: ints >= 1 and at most one -1 (inferred)."""
    dims: Any = target_shape
    if isinstance(dims, (numbers.Integral, np.integer)) and not isinstance(dims, (bool, np.bool_)):
        dims = (dims,)
    if not isinstance(dims, Sequence) or isinstance(dims, (str, bytes)):
        raise TypeError(f"Reshape: target_shape must be a tuple of ints (without the batch axis), got {dims!r}")
    if not dims:
        raise ValueError("Reshape: target_shape must name at least one axis (without the batch axis), got ()")
    shape = tuple(integer(f"Reshape: target_shape[{i}]", d) for i, d in enumerate(dims))
    bad = [d for d in shape if d < 1 and d != -1]
    if bad:
        raise ValueError(f"Reshape: target_shape's sizes must be >= 1 (or one -1, inferred), got {shape}")
    if shape.count(-1) > 1:
        raise ValueError(f"Reshape: target_shape may have one -1 (the size inferred), got {shape}")
    return shape


def _resolved(target: Shape, sample_shape: Shape) -> Shape:
    """``target`` with its -1 inferred for samples of ``sample_shape``; a ValueError where the
    sizes cannot match (Keras's ``compute_reshape_output_shape``)."""
    size, known = math.prod(sample_shape), math.prod(d for d in target if d != -1)
    if -1 in target:
        if size % known:
            raise ValueError(
                f"Reshape({target}): samples of shape {sample_shape} ({size} values) do not divide into "
                f"{target} ({known} values besides the -1)"
            )
        return tuple(size // known if d == -1 else d for d in target)
    if size != known:
        raise ValueError(
            f"Reshape({target}): samples of shape {sample_shape} have {size} values, target_shape {target} has {known}"
        )
    return target


def _reshape_init(target, key, input_shape, dtype=jnp.float32):
    check_key("key", key)
    return _resolved(target, as_shape(input_shape)), {}


def _reshape_forward(target, params, x, *, key=None, train=False):
    check_no_params(params)
    if x.ndim < 2:
        raise ValueError(f"Reshape({target}): expects a batch of samples (at least 2 axes), got shape {x.shape}")
    # sizes, not -1 for the batch: an empty batch has no size to infer it from; the input's shape
    # kept in a zero-size array, as Flatten keeps it
    return x.reshape(x.shape[0], *_resolved(target, x.shape[1:])), (jnp.zeros((0, *x.shape), x.dtype),)


def _reshape_backward(target, params, cache, dy):
    (like,) = cache  # (0, *input shape)
    check_dy(dy, (like.shape[1], *_resolved(target, like.shape[2:])))
    return {}, dy.reshape(like.shape[1:])


def Reshape(target_shape: int | Sequence[int], *, name: str = "reshape") -> Layer:
    """Keras's ``Reshape``: each sample reshaped to ``target_shape`` (the batch axis excluded),
    its values in the same (row-major) order; one size may be -1, inferred from the sample's.

    The forward moves no value (``y`` is ``x``'s values under another shape), so the backward
    reshapes ``dy`` back: ``dx = reshape(dy, x.shape)``.

    Args:
        target_shape: The shape of each output sample, a tuple of ints >= 1 with at most one
            -1 (an int for a single axis).
        name: The layer's name.

    Returns:
        The :class:`Layer`.

    Raises:
        TypeError: For a ``target_shape`` that is not an int or a tuple of ints.
        ValueError: For a size 0 or below -1, two -1s, or (at init or forward) samples whose
            size does not match ``target_shape``'s.

    Examples:
        >>> import fnn, jax, jax.numpy as jnp
        >>> net = fnn.serial(fnn.Dense(12), fnn.Reshape((3, -1)))
        >>> params = net.init(jax.random.PRNGKey(0), (5,))
        >>> net.apply(params, jnp.ones((2, 5))).shape, net.layers[1]
        ((2, 3, 4), Reshape((3, -1)))
    """
    target = _target_shape(target_shape)
    return Layer(bound(_reshape_init, target), bound(_reshape_forward, target), bound(_reshape_backward, target), name)


def _bound_first(layer: Layer) -> Any:
    """The first argument the layer's forward binds (the Activation layer's activation, Dropout's keep)."""
    return cast(bound, layer.forward).args[0]


LAYER_REPRS.update({
    _activation_forward: (
        lambda layer: f"Activation({activation_repr(_bound_first(layer))})",
        lambda layer: _bound_first(layer).name,
    ),
    # the rate as given (the layer keeps 1 - rate, which 0.1 does not survive exactly)
    _dropout_forward: (lambda layer: f"Dropout({round(1.0 - _bound_first(layer), 12)})", lambda layer: "dropout"),
    _flatten_forward: (lambda layer: "Flatten()", lambda layer: "flatten"),
    _reshape_forward: (lambda layer: f"Reshape({_bound_first(layer)})", lambda layer: "reshape"),
})  # fmt: skip

# The built-in layers whose output row i depends on input row i alone, given a per-sample
# activation (the first bound argument of Dense's and Activation's rules).
_ROW_RULES = {_dropout_forward: _dropout_backward, _reshape_forward: _reshape_backward, **NORMALIZATION_ROW_RULES}
_ACT_RULES: dict[Callable, Callable] = {**DENSE_RULES, _activation_forward: _activation_backward}


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
        Dropout, LayerNorm, UnitNormalization, Flatten or Reshape, with activations acting within
        each sample.
    """
    if not isinstance(net, Network):
        return False
    return all(
        rows_independent(layer) if isinstance(layer, Network) else _layer_rows_independent(layer)
        for layer in net.layers
    )
