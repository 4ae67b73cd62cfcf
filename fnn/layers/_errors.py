"""What a network says when one of its layers breaks the Layer protocol: errors marked as
attributed to a layer (an outer network prefixes its own), signatures the protocol's calls
cannot bind, the layer a failed init, forward or backward is blamed on, and a backward's
``dparams`` checked against its params."""

from __future__ import annotations

from typing import Any, cast

import jax
import jax.numpy as jnp

from fnn._validate import unbindable
from fnn.layers._base import Layer, output_shape_of


def layer_error(source: type | BaseException, message: str) -> Exception:
    """An error marked as attributed to a layer (an outer network prefixes its own layer, as
    for a FeatureMismatchError). From the layer's own error, of its class where that class is
    rebuilt from a message (a ValueError subclass of the user's stays one), else TypeError or
    ValueError."""
    if isinstance(source, BaseException):
        base = TypeError if isinstance(source, TypeError) else ValueError
        try:
            err: Exception = type(source)(message)  # type: ignore[assignment]
            if not isinstance(err, base) or str(err) != message:
                err = base(message)
        except Exception:  # a class that takes other arguments (JAX's own errors)
            err = base(message)
    else:
        err = source(message)
    setattr(err, "fnn_layer_named", True)  # noqa: B010  (exceptions take attributes; mypy knows none)
    return err


def already_named(err: Exception) -> bool:
    return getattr(err, "fnn_layer_named", False)


def is_shape(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and all(isinstance(d, int) for d in value)


def describe(value: Any) -> str:
    if isinstance(value, tuple):
        return f"a tuple of {len(value)} ({', '.join(type(v).__name__ for v in value)})"
    return f"an object of type {type(value).__name__}"


def leaf_names(tree: Any) -> list[str]:
    return [
        jax.tree_util.keystr(path) or "(the whole tree)" for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]
    ]


def refused_signature(fn: Any, protocol: str, *args: Any, **kwargs: Any) -> str | None:
    """In words, that ``fn`` cannot be called as the protocol calls it (a call that failed on its
    signature, not inside it); None if it can, or if its signature cannot be read."""
    sig = unbindable(fn, *args, **kwargs)
    return None if sig is None else f"{protocol} is the Layer protocol, but the layer's takes {sig}"


def check_dparams(i: int, name: str, params: Any, dparams: Any) -> None:
    """A backward must return one gradient per parameter leaf, in the params' structure."""
    want, got = jax.tree.structure(params), cast(Any, jax.tree.structure(dparams))
    if got != want:
        got_leaves, want_leaves = leaf_names(dparams), leaf_names(params)
        if dparams is None:  # None stands for "no gradients" only when there are no params
            detail = f"None for params with leaves {want_leaves} (None is accepted only for a layer without params)"
        elif got_leaves != want_leaves:
            detail = f"dparams with leaves {got_leaves} for params with leaves {want_leaves}"
        else:  # the same leaves in other containers ((), [] or None for {})
            detail = f"dparams structured {got} for params structured {want}"
        raise ValueError(f"layer {i} ({name}): backward returned {detail}; dparams must have the structure of params")
    for (path, g), p in zip(jax.tree_util.tree_flatten_with_path(dparams)[0], jax.tree.leaves(params), strict=True):
        if jnp.shape(g) != jnp.shape(p):
            raise ValueError(
                f"layer {i} ({name}): backward returned dparams{jax.tree_util.keystr(path)} of shape "
                f"{jnp.shape(g)} for a parameter of shape {jnp.shape(p)}"
            )


def init_error(net: Any, i: int, shape: tuple, err: Exception) -> Exception:
    """Layer ``i`` of ``net`` (a Network) failed to init for inputs of ``shape``: a call its
    signature refused (a stax-style ``init(rng, input_shape)``), else its own error, naming it."""
    if already_named(err):
        return layer_error(err, f"layer {i} ({net.names[i]}) {err}")
    layer = net.layers[i]
    own = layer.init if isinstance(layer, Layer) else layer.init_with_shape
    refused = refused_signature(own, "init(key, input_shape, dtype)", None, None, None)
    if refused:  # a stax-style init(rng, input_shape): the call failed, not the init
        refused += "; a stax-style init(rng, input_shape) needs the dtype too: (key, input_shape, dtype=jnp.float32)"
        return layer_error(TypeError, f"layer {i} ({net.names[i]}): {refused}")
    return layer_error(err, f"layer {i} ({net.names[i]}): init fails for input shape {shape}: {err}")


def forward_error(net: Any, i: int, shapes: list, err: Exception) -> Exception:
    """Layer ``i``'s forward failed on inputs of shape ``shapes[i]``: the error names an
    earlier layer whose forward disagrees with its init, else layer ``i``."""
    if already_named(err):  # a nested network's layer, named already
        return layer_error(err, f"layer {i} ({net.names[i]}) {err}")
    refused = refused_signature(
        net.layers[i].forward, "forward(params, x, *, key=None, train=False)", None, None, key=None, train=False
    )
    if refused:
        return layer_error(TypeError, f"layer {i} ({net.names[i]}): {refused}")
    blame = disagreeing_layer(net, i, shapes, err)
    own = f"layer {i} ({net.names[i]}): forward fails on inputs of shape {shapes[i]}: {err}"
    return layer_error(err, blame or own)


def disagreeing_layer(net: Any, i: int, shapes: list, err: Exception) -> str | None:
    """The first layer before ``i`` whose forward gave another shape than its init declares
    (the params after it were built for the declared one), in words; None if none."""
    for j in range(i):
        try:
            declared = tuple(output_shape_of(net.layers[j].init_with_shape, shapes[j][1:]))
        except Exception:  # an init that does not take this shape: no verdict on that layer
            continue
        if declared != shapes[j + 1][1:]:
            return (
                f"layer {j} ({net.names[j]}): its init declares the output shape {declared} for inputs "
                f"of shape {shapes[j][1:]}, its forward gives {shapes[j + 1][1:]}; layer {i} "
                f"({net.names[i]}), built for the declared shape, fails on it: {err}"
            )
    return None


def backward_error(net: Any, i: int, dy: Any, err: Exception) -> Exception:
    """Layer ``i``'s backward failed on ``dy``; above the last layer, ``dy`` is the dx of
    the layer after it, so that layer is named too."""
    if already_named(err):
        return layer_error(err, f"layer {i} ({net.names[i]}) {err}")
    refused = refused_signature(net.layers[i].backward, "backward(params, cache, dy)", None, None, None)
    if refused:
        return layer_error(TypeError, f"layer {i} ({net.names[i]}): {refused}")
    source = (
        f", the dx of layer {i + 1} ({net.names[i + 1]}) (a backward must return dx of its input's shape)"
        if i + 1 < len(net.layers)
        else ""
    )
    return layer_error(
        err, f"layer {i} ({net.names[i]}): backward fails on dy of shape {tuple(jnp.shape(dy))}{source}: {err}"
    )
