"""Applying a transform to some leaves only: :func:`masked` (optax's semantics) and :func:`freeze`.

``masked(inner, mask)`` runs ``inner`` on the leaves where the mask is True and passes every
other leaf's update through UNTOUCHED, exactly as ``optax.masked``: so optax's recipe
``chain(masked(add_decayed_weights(0.1), {"w": True, "b": False}), sgd(1.0))`` decays the
weights and still trains the biases. To hold parameters constant, use :func:`freeze` (which is
``masked(set_to_zero(), mask)``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np

from fnn._values import bound
from fnn.optimizers._base import (
    GradientTransformation,
    OptState,
    Params,
    Updates,
    check_transform,
    set_to_zero,
    takes_extra_args,
    tree_structure,
)

Mask = Any  # a pytree of bools with the structure of params (or a prefix of it), or params -> such a tree


class MaskedState(NamedTuple):
    """State of :func:`masked`: ``inner_state``, the inner transform's state over the selected leaves."""

    inner_state: OptState


class MaskedNode(NamedTuple):
    """Stands in for a masked-out leaf inside ``masked``'s inner transform: a node with no leaves."""


def _static_bool(value: Any, where: str) -> bool:
    ok = isinstance(value, (bool, np.bool_)) or (
        hasattr(value, "dtype")
        and np.shape(value) == ()
        and value.dtype == bool
        and not isinstance(value, jax.core.Tracer)
    )
    if not ok:
        raise TypeError(f"mask leaves must be Python bools (the mask is static), got {value!r} at {where}")
    return bool(value)


def own_mask(mask: Any) -> Any:
    """A mask tree in containers of the transform's own (a function as it is): the transform is
    compared by the mask's contents when built, and the caller's dict edited afterwards would
    train with other contents under that key (a program compiled for them served to an
    optimizer built from the first contents)."""
    return mask if callable(mask) else _copied(mask)


def _copied(mask: Any) -> Any:
    """``mask`` in new containers, a dict's keys in the caller's order (``jax.tree.map`` sorts
    them, and the transform's repr, which a checkpoint records, would change); the containers of
    other kinds (namedtuples, pytree nodes of the user's) rebuilt by ``jax.tree.map``."""
    if type(mask) is dict:
        return {k: _copied(v) for k, v in mask.items()}
    if type(mask) in (list, tuple):
        return type(mask)(_copied(v) for v in mask)
    return jax.tree.map(lambda m: m, mask)


def resolve_mask(mask: Mask | Callable[[Params], Mask], tree: Params) -> Params:
    """The mask as a full tree of Python bools with ``tree``'s structure."""
    m = mask(tree) if callable(mask) else mask
    try:
        return jax.tree.map(lambda mk, sub: jax.tree.map(lambda _: _static_bool(mk, "mask"), sub), m, tree)
    except ValueError as e:
        raise ValueError(f"mask must have the structure of params (or a prefix of it): {e}") from e


def _keep(tree: Params, m: Params) -> Params:
    return jax.tree.map(lambda x, keep: x if keep else MaskedNode(), tree, m)


def _masked_init(init: Callable, mask: Mask, params: Params) -> MaskedState:
    return MaskedState(init(_keep(params, resolve_mask(mask, params))))


def _masked_update(
    update: Callable,
    extra: bool,
    mask: Mask,
    updates: Updates,
    state: MaskedState,
    params: Params = None,
    **extra_args: Any,
) -> tuple[Updates, MaskedState]:
    if not isinstance(state, MaskedState):
        raise ValueError(
            f"masked: the state must be what masked(...).init builds (a MaskedState), got {type(state).__name__}: "
            "another optimizer's state? build it with opt.init(params)"
        )
    m = resolve_mask(mask, params if params is not None else updates)
    # optax.masked's rule: the extra arguments go to the inner transform, unmasked, if it takes them
    inner_updates, inner_state = update(
        _keep(updates, m),
        state.inner_state,
        None if params is None else _keep(params, m),
        **(extra_args if extra else {}),
    )
    flat, treedef = jax.tree.leaves(updates), tree_structure(updates)
    done = iter(jax.tree.leaves(inner_updates))
    out = [next(done) if k else u for u, k in zip(flat, treedef.flatten_up_to(m), strict=True)]
    return treedef.unflatten(out), MaskedState(inner_state)


def masked(inner: GradientTransformation, mask: Mask | Callable[[Params], Mask]) -> GradientTransformation:
    """Applies ``inner`` to the leaves where ``mask`` is True; every other leaf's update passes
    through unchanged (``optax.masked``).

    ``mask`` is a pytree of bools with the structure of params (or a prefix of it), or a
    function ``params -> mask``. Masked-out leaves get no inner state at all. Its ``update``
    passes optax's extra keyword arguments (``value=``...) to ``inner`` if it takes them.

    Args:
        inner: The transform for the selected leaves.
        mask: A pytree of Python bools with the structure of params (or a prefix of it), or a
            function ``params -> mask``. A tree is read when the transform is built (it keeps
            a copy: your dict edited afterwards changes nothing; build another transform).

    Returns:
        The masked transform; its state is a :class:`MaskedState`.

    Raises:
        TypeError: For an ``inner`` without ``init`` and ``update``; at init/update, for mask
            leaves that are not Python bools.
        ValueError: At init/update, for a mask whose structure does not fit the params.

    Examples:
        Decay the weights, not the biases, and still train both:

        >>> import fnn, jax.numpy as jnp
        >>> O = fnn.optimizers
        >>> opt = O.chain(O.masked(O.add_decayed_weights(0.5), {"w": True, "b": False}), O.sgd(1.0))
        >>> params = {"w": jnp.array([2.0]), "b": jnp.array([2.0])}
        >>> grads = {"w": jnp.array([1.0]), "b": jnp.array([1.0])}
        >>> updates, _ = opt.update(grads, opt.init(params), params)
        >>> updates["w"].tolist(), updates["b"].tolist()
        ([-2.0], [-1.0])
    """
    check_transform(inner, "masked: inner")
    mask = own_mask(mask)
    return GradientTransformation(
        bound(_masked_init, inner.init, mask), bound(_masked_update, inner.update, takes_extra_args(inner), mask)
    )


def freeze(mask: Mask | Callable[[Params], Mask]) -> GradientTransformation:
    """Zero updates where ``mask`` is True (those parameters stay as they are); the other leaves
    pass through. Put it last: ``chain(adamw(1e-3), freeze({"w": False, "b": True}))`` trains
    only ``w``. To also spare the frozen leaves any optimizer state, run the optimizer masked:
    ``chain(masked(adam(1e-3), trainable), freeze(frozen))``.

    Args:
        mask: A pytree of Python bools (True: frozen) with the structure of params (or a prefix
            of it), or a function ``params -> mask``.

    Returns:
        The transform.

    Raises:
        TypeError: At init/update, for mask leaves that are not Python bools.
        ValueError: At init/update, for a mask whose structure does not fit the params.

    Examples:
        >>> import fnn, jax.numpy as jnp
        >>> O = fnn.optimizers
        >>> opt = O.chain(O.sgd(1.0), O.freeze({"w": False, "b": True}))
        >>> params = {"w": jnp.array([2.0]), "b": jnp.array([2.0])}
        >>> updates, _ = opt.update({"w": jnp.array([1.0]), "b": jnp.array([1.0])}, opt.init(params), params)
        >>> updates["w"].tolist(), updates["b"].tolist()
        ([-1.0], [0.0])
    """
    return masked(set_to_zero(), mask)
