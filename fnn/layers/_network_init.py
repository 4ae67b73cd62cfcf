"""How a network initializes its params: every layer's init in one compiled program, shared by
equal networks (:func:`init_program`), and one layer's init with its result checked against the
Layer protocol, a mistake naming the layer (:func:`init_layer`)."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from fnn._cache import structural_cache
from fnn._validate import UNTRACEABLE
from fnn.layers._base import Array, Params, Shape
from fnn.layers._errors import NAMED_ERRORS, describe, init_error, is_shape, layer_error


@structural_cache(maxsize=64)
def init_program(net: Any, shape: Shape, dtype: Any) -> Callable[[Array], list]:
    """``net``'s params for inputs of ``shape`` in ``dtype`` from a key, jitted (one program per
    equal network, shape and dtype)."""
    return jax.jit(lambda key: net.init_with_shape(key, shape, dtype)[1])


def init_layer(net: Any, i: int, key: Array, shape: Shape, dtype: Any) -> tuple[Shape, Params]:
    """Layer ``i`` of ``net``'s ``(output_shape, params)``; a mistake in its init names the layer."""
    layer = net.layers[i]
    try:
        out = layer.init_with_shape(key, shape, dtype)
    except NAMED_ERRORS as err:
        if isinstance(err, UNTRACEABLE):  # Network.init then runs the inits eagerly
            raise
        raise init_error(net, i, shape, err) from err
    if not (isinstance(out, tuple) and len(out) == 2 and is_shape(out[0])):
        raise layer_error(
            TypeError,
            f"layer {i} ({net.names[i]}): init(key, input_shape, dtype) must return (output_shape, "
            f"params) with output_shape a tuple of ints (the Layer protocol); got {describe(out)}",
        )
    for path, leaf in jax.tree_util.tree_flatten_with_path(out[1])[0]:
        if not isinstance(leaf, (jax.Array, np.ndarray, np.generic, numbers.Number)):
            raise layer_error(
                TypeError,
                f"layer {i} ({net.names[i]}): init(key, input_shape, dtype) must return params of arrays "
                f"(the Layer protocol); got params{jax.tree_util.keystr(path)} of type {type(leaf).__name__} "
                "(a setting such as a name belongs in the layer's functions, not in its params)",
            )
    return tuple(out[0]), out[1]
