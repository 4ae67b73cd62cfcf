"""A network's gradients in the form ``jax.grad`` gives them: each in its parameter's dtype
(:func:`in_dtype_of`) and in its params' containers (:func:`in_containers_of`), whatever
containers and dtypes a layer's backward returned them in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax

from fnn.layers._base import Array


def in_dtype_of(g: Array, p: Any) -> Array:
    """Gradient ``g`` in the dtype its parameter ``p`` computes in (``p``'s, canonicalized); a
    float0 one (JAX's zero cotangent of an integer leaf, a mask's) stays float0, as jax.grad
    gives it (no integer holds float0)."""
    if g.dtype == jax.dtypes.float0:
        return g
    dtype = jax.dtypes.canonicalize_dtype(p.dtype)
    return g if g.dtype == dtype else g.astype(dtype)


def in_containers_of(params: Any, grads: Any) -> Any:
    """``grads`` in ``params``' containers where only their types differ, as ``jax.grad`` keeps
    any container: the network's list of gradients for a tuple of params, a layer's plain dict
    for an OrderedDict (or another Mapping) entry with the same keys, nested Mappings alike.
    Anything else comes back as it is, for :func:`fnn.layers._errors.check_dparams` to judge (a
    user layer's real mismatch is still named)."""
    # the container is rebuilt by its pytree node, which knows how (a NamedTuple takes fields,
    # an OrderedDict keeps its order); one JAX does not know as a node stays as the layer gave it
    if not (
        (isinstance(params, Mapping) and isinstance(grads, Mapping) and set(grads) == set(params))
        or (isinstance(params, tuple) and isinstance(grads, list) and len(grads) == len(params))
    ):
        return grads
    # params' own node, its children as leaves
    flat, node = jax.tree_util.tree_flatten_with_path(params, is_leaf=lambda n: n is not params)
    children: list = list(grads)
    if isinstance(params, Mapping):
        keys = [path[0].key for path, _ in flat if isinstance(path[0], jax.tree_util.DictKey)]
        children = [in_containers_of(params[k], grads[k]) for k in keys]
    return jax.tree_util.tree_unflatten(node, children) if len(flat) == len(children) == len(params) else grads
