"""Injected states nested in an injected state (:func:`fnn.optimizers.inject_hyperparams`'s
factory building a named optimizer, or optax's ``inject_hyperparams``): which of their values
the enclosing factory computes from its own, and those values at each update.

``inject_hyperparams(lambda learning_rate: chain(masked(sgd(learning_rate), m1),
masked(sgd(0.01), m2)))(0.1)``: the first nested ``sgd`` state's rate FOLLOWS the enclosing one
(the factory computes it at each update, as optax passes its values), the second's is its OWN
(the factory's constant; a parameter group of its own for ``get_learning_rates``). Which values
follow is read from the data flow of a trace of the factory's ``init``, at the enclosing init
(marked on the keys: :class:`HeldName`'s ``own``) and at each update (the values taken).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any, Protocol

import jax
import jax.numpy as jnp

from fnn.optimizers._base import Array, GradientTransformation, OptState, Params, own_copy
from fnn.optimizers._hyperparams import HeldName, held_nodes, hparams_field, hparams_of, map_hparam_nodes


class Factory(Protocol):
    """What an injection builds its transform from (``_inject._Spec``)."""

    @property
    def factory(self) -> Callable[..., GradientTransformation]: ...

    def build(self, hp: dict[str, Any]) -> GradientTransformation: ...


# The step at which an init evaluates its schedules (None: 0): :func:`with_factory_values`
# builds the nested states afresh at the enclosing state's step, for the scheduled values that
# follow the enclosing ones.
_AT_STEP: contextvars.ContextVar[Array | None] = contextvars.ContextVar("fnn_inject_at_step", default=None)


def init_step() -> Array | None:
    """The step at which an injected ``init`` evaluates its schedules now (None: step 0)."""
    return _AT_STEP.get()


def with_factory_values(
    spec: Factory, hparams: dict[str, Array], inner_state: OptState, like: Params, step: Array
) -> OptState:
    """``inner_state`` with each injected state nested in it (a named optimizer the factory
    builds is one; optax's too) holding the values the factory computes from ``hparams`` now, as
    optax passes its values: ``lambda lr: O.sgd(lr)``, ``lr * 0.1`` for one group. A value the
    factory gives as a constant (``O.sgd(0.5)``, a default) stays the nested state's own, so a
    value set there holds; a nested value that follows the nested state's own schedule keeps its
    place in it. The values are read from a fresh ``init`` of the factory's transform (XLA keeps
    only them under ``jit``), which ones ``hparams`` reach from its trace."""
    if not held_nodes(inner_state):  # plain transforms (every named optimizer's factory builds those)
        return inner_state
    fresh, reached = _factory_values(spec, hparams, like, step)
    nodes = iter(zip(fresh, reached, strict=True))

    def take(node: Any) -> Any:
        ((hp_new, values_new), (hp_reached, values_reached)), field = next(nodes), hparams_field(node) or "hparams"
        # optax recomputes its scheduled values at each update; fnn's nested state holds the value
        # for this step, from its schedule built afresh (at this step) times its own scale
        scales = getattr(node, "scales", None) or {}
        recomputed = getattr(node, "hyperparams_states", None) or {} if field == "hyperparams" else {}
        hp = {
            k: v
            if not hp_reached.get(k) or k in recomputed
            else own_copy(hp_new[k] * scales[k] if k in scales else hp_new[k], jnp.asarray(v).dtype)
            for k, v in hparams_of(node).items()
        }
        changes: dict[str, Any] = {field: hp}
        if field == "hparams" and "schedule_values" in node._fields:
            changes["schedule_values"] = jax.tree.map(
                lambda old, v, r: own_copy(v, jnp.asarray(old).dtype) if r else old,
                node.schedule_values,
                values_new,
                values_reached,
            )
        return node._replace(**changes)

    return map_hparam_nodes(take, inner_state)


def _factory_values(
    spec: Factory, hparams: dict[str, Array], like: Params, step: Array | None = None
) -> tuple[list[tuple[dict, dict]], list[tuple[dict, dict]]]:
    """For each injected state nested in a fresh ``init`` of the factory's transform built from
    ``hparams`` (in :func:`held_nodes`'s order): its ``(hparams, schedule_values)``, its
    schedules evaluated at ``step`` (None: 0), and the same tree of the names of ``hparams``
    each is computed from (empty where none reach it)."""

    def given(hp: dict[str, Array], like: Params) -> list[tuple[dict, dict]]:
        token = _AT_STEP.set(step)
        try:
            nodes = held_nodes(spec.build(hp).init(like))
        finally:
            _AT_STEP.reset(token)
        return [(dict(hparams_of(n)), dict(getattr(n, "schedule_values", None) or {})) for n in nodes]

    try:
        traced = jax.make_jaxpr(given)(hparams, like)
    except TypeError as e:  # the factory refuses traced values (an fnn schedule of an outer value)
        raise TypeError(
            f"inject_hyperparams({getattr(spec.factory, '__name__', 'factory')}): the factory is built again at each "
            f"update with its hyperparameters as traced arrays, and refused them: {e}. An fnn.schedules schedule "
            "takes Python numbers: pass the schedule itself as the hyperparameter, or a callable of the step"
        ) from e
    fresh = given(hparams, like)
    return fresh, jax.tree.unflatten(jax.tree.structure(fresh), _reached(traced, hparams))


def marked_own(spec: Factory, hparams: dict[str, Array], inner_state: OptState, like: Params) -> OptState:
    """``inner_state`` with each nested injected state's hyperparameters marked with the names of
    ``hparams`` they are computed from (:class:`HeldName`'s ``follows``; none: the factory gives
    them as constants): a nested learning rate of its own is a parameter group
    (``get_learning_rates``); one that follows is not set with the values it follows
    (``set_hyperparams``), but computed from them at the next update."""
    if not held_nodes(inner_state):
        return inner_state
    marks = iter(_factory_values(spec, hparams, like)[1])

    def mark(node: Any) -> Any:
        reached, field = next(marks)[0], hparams_field(node) or "hparams"
        for _ in held_nodes(node)[1:]:
            next(marks)  # deeper ones are the nested injection's to mark (at its own init)
        hp = {
            HeldName(str(k), getattr(k, "check", None), follows=tuple(sorted(reached.get(k, ())))): v
            for k, v in hparams_of(node).items()
        }
        return node._replace(**{field: hp})

    return map_hparam_nodes(mark, inner_state, where=lambda node: True)


def _reached(closed: Any, hparams: dict[str, Array]) -> list[frozenset[str]]:
    """For each output of the traced ``closed`` (a ClosedJaxpr of ``(hparams, ...)``), the names
    of the ``hparams`` (the first inputs) it is computed from (empty: none): their data flow,
    every output of an equation reached from each of its inputs' names."""
    jaxpr = closed.jaxpr
    paths = jax.tree_util.tree_flatten_with_path(hparams)[0]
    names = [str(getattr(path[0], "key", "")) if path else "" for path, _ in paths]
    reached: dict[int, frozenset[str]] = {id(v): frozenset([n]) for v, n in zip(jaxpr.invars, names, strict=False)}
    none: frozenset[str] = frozenset()
    for eqn in jaxpr.eqns:
        sources = none.union(*(reached.get(id(v), none) for v in eqn.invars))
        if sources:
            reached.update((id(v), sources) for v in eqn.outvars)
    return [reached.get(id(v), none) for v in jaxpr.outvars]
