"""What a network's forward hands its backward: the layers' caches in a list that also records
the shapes and dtypes the forward saw (:class:`Caches`), and those shapes read back where they
describe the backward's call (:func:`forward_shapes`), so each layer's ``dx`` is checked
against its input."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jax
import jax.numpy as jnp

from fnn.layers._base import Shape


class Caches(list):
    """What :meth:`Network.forward` returns as ``cache``: the list of the layers' caches, which
    also records the shapes and dtypes the forward saw (the input's, then each layer's
    output's), so that :meth:`Network.backward` can check each layer's ``dx`` against its input
    and tell a layer's own error from a wrong ``dy``. A pytree whose static part is the shapes
    and dtypes (they survive ``jit``, ``custom_vjp`` residuals and ``tree.map``); a plain list
    of caches works as well, unchecked."""

    def __init__(self, caches: Iterable[Any], shapes: tuple[Shape, ...], dtypes: tuple[Any, ...]) -> None:
        super().__init__(caches)
        self.shapes, self.dtypes = shapes, dtypes


jax.tree_util.register_pytree_with_keys(
    Caches,
    lambda c: ([(jax.tree_util.SequenceKey(i), v) for i, v in enumerate(c)], (c.shapes, c.dtypes)),
    lambda aux, children: Caches(children, *aux),
    lambda c: (list(c), (c.shapes, c.dtypes)),
)


def forward_shapes(cache: Any, n_layers: int, dy: Any) -> tuple[Shape, ...] | None:
    """The shapes the forward of a network of ``n_layers`` layers recorded in ``cache``, if they
    describe this call (a cache sliced or batched after the forward, or a wrong ``dy``, leaves
    them unused)."""
    if not isinstance(cache, Caches) or len(cache.shapes) != n_layers + 1:
        return None
    return cache.shapes if tuple(jnp.shape(dy)) == tuple(cache.shapes[-1]) else None
