"""The learning rate in any optimizer state, per parameter group: :func:`get_learning_rate`,
:func:`set_learning_rate`, :func:`get_learning_rates`, :func:`set_learning_rates`,
:func:`scale_learning_rates`.

A group is an outermost state node holding a learning rate (fnn's or optax's
``inject_hyperparams`` state): ``chain(masked(sgd(0.1), w_mask), masked(sgd(0.01), b_mask))``
has two, in the order of the state's leaves. A node nested inside a group (a named optimizer
built by the factory of another injection) whose rate the factory computes from the group's
values (``lambda learning_rate: sgd(learning_rate)``) takes the group's value at every update,
so it is set with it; one whose rate the factory gives as a constant (``sgd(0.01)`` there) is a
group of its own, after the enclosing one.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn._placement import to_host
from fnn._validate import is_traced, real
from fnn.optimizers._base import Array, OptState
from fnn.optimizers._hyperparams import hparams_field, hparams_of, is_own, map_hparam_nodes, set_hyperparams, set_values

_NO_RATE = (
    "the optimizer state holds no learning rate (no state built by fnn.optimizers.inject_hyperparams, "
    "as the named optimizers are, or by optax.inject_hyperparams, with a learning_rate)"
)


def _own_rate(node: Any) -> bool:
    """Whether ``node``, nested in a group, holds a learning rate of its own (a group too)."""
    return any(k == "learning_rate" and is_own(k) for k in hparams_of(node))


def _in_group(fn: Callable[[Any], Any], node: Any) -> Any:
    """``node`` with ``fn`` applied to the outermost groups nested in it (not to ``node``)."""
    own = hparams_field(node)
    return node._replace(
        **{f: map_hparam_nodes(fn, getattr(node, f), where=_own_rate) for f in node._fields if f != own}
    )


def _map_groups(fn: Callable[[int, Any], Any], state: OptState) -> OptState:
    """``fn(index, node)`` for each group's node, in the order of the state's leaves; a node
    holding other hyperparameters only is looked into. A group nested in another is given to
    ``fn`` after the enclosing one, which ``fn`` sets alone (:func:`_set`)."""
    index = itertools.count()

    def group(node: Any) -> Any:
        return _in_group(group, fn(next(index), node))

    return map_hparam_nodes(group, state, where=lambda node: "learning_rate" in hparams_of(node))


def get_learning_rates(state: OptState) -> list[Array]:
    """The learning rate each parameter group's next update uses, in the order of the state's
    leaves (the first is :func:`get_learning_rate`'s). A group is an outermost state holding a
    learning rate (each ``masked(sgd(...))`` of a chain), or a state nested in an
    :func:`inject_hyperparams` factory whose rate the factory gives as a constant (``sgd(0.01)``
    in ``lambda learning_rate: chain(masked(sgd(learning_rate), m1), masked(sgd(0.01), m2))``:
    the groups ``[learning_rate, 0.01]``), listed after the state it is nested in.

    Args:
        state: An optimizer state (nested, chained, masked or vmapped).

    Returns:
        One array per group (0-d, or batched in a vmapped state).

    Raises:
        ValueError: If the state holds no learning rate (see :func:`get_learning_rate`).

    Examples:
        >>> import fnn.optimizers as O
        >>> params = {"b": [0.0], "w": [0.0]}
        >>> opt = O.chain(O.masked(O.sgd(0.1), {"b": False, "w": True}), O.masked(O.sgd(0.01), {"b": True, "w": False}))
        >>> [round(float(lr), 6) for lr in O.get_learning_rates(opt.init(params))]
        [0.1, 0.01]
    """
    found: list[Array] = []

    def collect(i: int, node: Any) -> Any:
        found.append(hparams_of(node)["learning_rate"])
        return node

    _map_groups(collect, state)
    if not found:
        raise ValueError(_NO_RATE)
    return found


def get_learning_rate(state: OptState) -> Array:
    """The learning rate the next update uses (the first parameter group's in a state holding
    several: :func:`get_learning_rates` gives each).

    The rate is held by the states of :func:`inject_hyperparams` (every named optimizer is
    built with it) and of optax's ``inject_hyperparams``: ``optax.adam(1e-3)`` or
    ``fnn.optimizers.chain(scale_by_adam(), scale_by_learning_rate(1e-3))`` hold none. One
    exception: where optax's ``inject_hyperparams`` is given a *schedule* for the rate, its
    state holds the rate its last update used (optax computes each update's rate from the
    schedule as the update runs, and the schedule is not in the state), so after the first
    update this is one step behind; the next update's is ``schedule(count)``. fnn's
    :func:`inject_hyperparams` (and every named optimizer given a schedule) holds the next one.

    Args:
        state: An optimizer state (nested, chained, masked or vmapped).

    Returns:
        The learning rate, an array.

    Raises:
        ValueError: If the state holds no learning rate.
    """
    return get_learning_rates(state)[0]


def set_learning_rate(state: OptState, learning_rate: Any) -> OptState:
    """The state with every learning rate set to ``learning_rate``: every parameter group's
    (all get the same value; :func:`set_learning_rates` sets each its own,
    :func:`scale_learning_rates` keeps their proportions), nested and chained states too.
    :func:`set_hyperparams` for ``learning_rate``, checked ``>= 0``.

    A scheduled rate is set for the next update and the whole schedule is scaled by the same
    factor, ``learning_rate / current`` (:func:`set_hyperparams`); the value already held
    changes nothing (0 where a warmup from 0 starts included).

    Args:
        state: An optimizer state (nested, chained, masked or vmapped).
        learning_rate: The new rate, ``>= 0`` (a scalar, or an array of the batch's shape in a
            vmapped state).

    Returns:
        The new state; jitted updates do not recompile.

    Raises:
        ValueError: If the rate is negative or not finite, or the state holds no learning rate
            (see :func:`get_learning_rate`) or an optax schedule of it; a nonzero rate for a
            schedule that gives 0 at the current step (a warmup from 0 before its first update).

    Examples:
        >>> import fnn
        >>> state = fnn.optimizers.adam(1e-3).init({"w": [0.0]})
        >>> state = fnn.optimizers.set_learning_rate(state, 0.25)
        >>> float(fnn.optimizers.get_learning_rate(state))
        0.25
    """
    get_learning_rate(state)  # a state without one gets that said plainly
    return set_hyperparams(state, learning_rate=learning_rate)  # which checks the value


def set_learning_rates(state: OptState, learning_rates: Sequence[Any]) -> OptState:
    """The state with each parameter group's learning rate set to its own value (the groups in
    :func:`get_learning_rates`'s order), as :func:`set_learning_rate` sets one: a schedule is
    scaled so that its next update uses the value; a group given the value it holds is left as
    it is. ReduceLROnPlateau sets each group's ``max(lr * factor, min_lr)`` with it.

    Args:
        state: An optimizer state (nested, chained, masked or vmapped).
        learning_rates: One rate ``>= 0`` per group (a list, or a 1-d NumPy or jax array).

    Returns:
        The new state; jitted updates do not recompile.

    Raises:
        ValueError: If the state holds no learning rate, for a count of rates other than the
            groups', and for what :func:`set_learning_rate` refuses.
        TypeError: For ``learning_rates`` that is not a sequence, or a rate that is not a number.

    Examples:
        >>> import fnn.optimizers as O
        >>> params = {"b": [0.0], "w": [0.0]}
        >>> opt = O.chain(O.masked(O.sgd(0.1), {"b": False, "w": True}), O.masked(O.sgd(0.01), {"b": True, "w": False}))
        >>> state = O.set_learning_rates(opt.init(params), [0.05, 0.02])
        >>> [round(float(lr), 6) for lr in O.get_learning_rates(state)]
        [0.05, 0.02]
    """
    held = get_learning_rates(state)
    arrays = (np.ndarray, jax.Array)
    if (
        not isinstance(learning_rates, (Sequence, *arrays))
        or isinstance(learning_rates, (str, bytes))
        or (isinstance(learning_rates, arrays) and np.ndim(learning_rates) == 0)
    ):
        raise TypeError(f"learning_rates must be a sequence of rates, one per group, got {learning_rates!r}")
    if len(learning_rates) != len(held):
        raise ValueError(
            f"learning_rates has {len(learning_rates)} rate(s); the optimizer state holds {len(held)} "
            "(one per parameter group, in the order of fnn.optimizers.get_learning_rates)"
        )

    def set_group(i: int, node: Any) -> Any:
        new, old = learning_rates[i], held[i]
        if not (is_traced(new) or is_traced(old)) and _same(new, old):
            return node  # nothing to write: no array, no check, no rescaling
        return _set(node, new)

    return _map_groups(set_group, state)


def _same(new: Any, old: Any) -> bool:
    """Whether ``new`` is the value held (``old``), compared in the dtype it is held in (the
    literal 0.1 is the float32 0.1 held, as LearningRateScheduler compares them)."""
    try:
        held = to_host(old)
        return bool(np.all(np.asarray(to_host(new), np.float64).astype(held.dtype) == held))
    except (TypeError, ValueError):
        return False  # not a number: set_hyperparams says so


def scale_learning_rates(state: OptState, factor: float) -> OptState:
    """The state with every parameter group's learning rate multiplied by ``factor``, so the
    groups keep their proportions; a scheduled rate's whole schedule is scaled by ``factor``,
    also where it gives 0 at the current step (a warmup from 0 then peaks ``factor`` times as
    high). A group whose constant rate is 0 stays 0. (LearningRateScheduler and sweep scale the groups
    this way, through the ratio of their new rate to the first group's.)

    Args:
        state: An optimizer state (nested, chained, masked or vmapped).
        factor: The factor, finite and ``>= 0``.

    Returns:
        The new state; jitted updates do not recompile.

    Raises:
        ValueError: If the state holds no learning rate, for a ``factor`` out of range, and for
            a rate that would not be finite in the dtype the state holds it in.
        TypeError: For a ``factor`` that is not a real number.

    Examples:
        >>> import fnn.optimizers as O
        >>> params = {"b": [0.0], "w": [0.0]}
        >>> opt = O.chain(O.masked(O.sgd(0.1), {"b": False, "w": True}), O.masked(O.sgd(0.01), {"b": True, "w": False}))
        >>> state = O.scale_learning_rates(opt.init(params), 0.5)
        >>> [round(float(lr), 6) for lr in O.get_learning_rates(state)]
        [0.05, 0.005]
    """
    get_learning_rate(state)
    factor = real("factor", factor, lo=0.0)
    if factor == 1.0:
        return state
    return _map_groups(lambda i, node: _scaled(node, factor), state)


def set_learning_rate_in_proportion(state: OptState, learning_rate: Any) -> OptState:
    """The state with the first group's learning rate set to ``learning_rate`` and every other
    group's scaled by the same factor, ``learning_rate / first``, as :func:`scale_learning_rates`
    scales them (they keep their proportions); where the first group's rate is 0 there is no
    ratio, and every group gets ``learning_rate`` (:func:`set_learning_rate`). LearningRateScheduler
    and :func:`fnn.sweep` set rates so. ``learning_rate``: a scalar, or one per model of a
    vmapped state; a traced state or rate (sweep's abstract check) is set as
    :func:`set_learning_rate` sets it."""
    first = get_learning_rate(state)
    if is_traced(first) or is_traced(learning_rate) or np.any(to_host(first) == 0):
        return set_learning_rate(state, learning_rate)
    factor = np.asarray(to_host(learning_rate), np.float64) / np.asarray(to_host(first), np.float64)
    # the first group gets the rate itself, not first * factor rounded in its dtype
    return _map_groups(lambda i, node: _set(node, learning_rate) if i == 0 else _scaled(node, factor), state)


def _set(group: Any, learning_rate: Any) -> Any:
    """``group``'s node with its learning rate set (:func:`set_hyperparams`), and those of the
    states nested in it that follow it, but not those of the groups nested in it."""
    return set_values(group, {"learning_rate": learning_rate}, leave=_own_rate)


def _scaled(node: Any, factor: Any) -> Any:
    """A group's node with its learning rate multiplied by ``factor`` (a float, or one per model
    of a vmapped state); a schedule giving 0 now is scaled as a whole too."""
    old = hparams_of(node)["learning_rate"]
    # in float64 on the host: the next update uses lr * factor rounded once, in the state's dtype
    node = _set(node, (old if is_traced(old) else np.asarray(old, np.float64)) * factor)
    scales = dict(getattr(node, "scales", None) or {})
    if "learning_rate" in scales:  # a schedule at 0 (kept as it was by set_hyperparams) is scaled too
        scale = scales["learning_rate"]
        if is_traced(old) or is_traced(scale):
            scales["learning_rate"] = jnp.where(old == 0, scale * factor, scale).astype(scale.dtype)
        else:
            held = np.asarray(scale)
            scaled = np.where(np.asarray(old) == 0, held * factor, held).astype(held.dtype)
            scales["learning_rate"] = jax.device_put(scaled)
        node = node._replace(scales=scales)
    return node
