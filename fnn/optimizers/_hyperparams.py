"""Hyperparameters read and set in any optimizer state: :func:`get_hyperparams`,
:func:`set_hyperparams` (the learning rate's own, per parameter group: ``_learning_rates.py``).

They find every state node holding hyperparameters, nested, chained, masked or vmapped: fnn's
(``inject_hyperparams``, in ``_inject.py``) and optax's ``inject_hyperparams`` states. A new
value is checked against the range fnn's constructors take (``RANGES``) and takes the old one's
dtype and shape, so jitted updates do not recompile; in fnn's states the values are then
checked by the constructor that holds them (:class:`HeldName`), combinations included.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn._cache import structural_cache
from fnn._dtypes import check_number_dtype
from fnn._placement import to_host
from fnn._validate import interval, is_traced
from fnn._values import Static
from fnn.optimizers._base import Array, OptState, own_copy


class HeldName(str):
    """A hyperparameter's name as a key of an injected state's ``hparams``, carrying ``check``:
    the constructor's own check of a full set of values (:func:`inject_hyperparams` builds its
    factory with them), so that :func:`set_hyperparams`, which sees the state alone, refuses
    what the optimizer's constructor refuses (its ranges and combinations: rmsprop's ``decay``
    in [0, 1], Nesterov's ``momentum > 0`` and ``dampening == 0``). It equals, hashes and prints
    as the plain name, so the state's structure (jit caches, checkpoints) is unchanged. A copy or
    a pickle keeps the check where the check pickles (every named optimizer's does; a factory of
    your own defined in a function does not, and is then the plain name).

    ``follows``, in a state nested in an injected one (None elsewhere): the names of the
    enclosing values the enclosing factory computes it from at each update (``("lr",)`` for
    ``sgd(lr)`` inside ``lambda lr: chain(...)``), so it follows them; ``()`` where the value is
    the nested state's own (the factory gives it as a constant: ``sgd(0.01)`` there), its
    learning rate then a parameter group of its own (``get_learning_rates``)."""

    check: Callable[[dict[str, Any]], None] | None
    follows: tuple[str, ...] | None

    def __new__(
        cls, name: str, check: Callable[[dict[str, Any]], None] | None, follows: tuple[str, ...] | None = None
    ) -> HeldName:
        held = super().__new__(cls, name)
        held.check, held.follows = check, follows
        return held

    def __reduce__(self) -> tuple[Any, ...]:
        check = self.check
        if check is not None:
            try:
                pickle.dumps(check)
            except Exception:  # pickle raises several kinds for a local function or a lambda
                check = None
        if check is None and self.follows is None:
            return (str, (str(self),))
        return (HeldName, (str(self), check, self.follows))


def is_own(name: str) -> bool:
    """Whether a nested state's hyperparameter ``name`` (a key of its ``hparams``) is its own
    value (:class:`HeldName`'s ``follows`` empty), not computed from the enclosing injection's."""
    return getattr(name, "follows", None) == ()


def followed(name: str) -> tuple[str, ...]:
    """The enclosing injection's values a nested state's hyperparameter ``name`` is computed
    from at each update (empty: none, or not a nested state's)."""
    return getattr(name, "follows", None) or ()


def _constructor_check(hp: dict[str, Any]) -> None:
    """``hp`` (a node's hyperparameters, new values in) checked by the constructor that holds
    them, once per distinct model of a vmapped state; traced values are passed as they are (the
    constructors let them through). Abstractly evaluated: a factory's array code compiles nothing."""
    check = next((k.check for k in hp if isinstance(k, HeldName) and k.check is not None), None)
    if check is None:
        return
    names = list(hp)
    given = list(hp.values())
    # the concrete values read in one explicit transfer (a caller's transfer guard allows it)
    fetched = iter(jax.device_get([v for v in given if not is_traced(v)]))
    host = [v if is_traced(v) else np.asarray(next(fetched)) for v in given]
    models = max([np.shape(h)[0] for h in host if np.ndim(h) > 0], default=0)
    seen = set()
    for k in range(max(models, 1)):
        row = [h[k] if np.ndim(h) > 0 else h for h in host]
        row = [v if is_traced(v) else v.item() for v in row]
        concrete = tuple(None if is_traced(v) else v for v in row)
        if concrete not in seen:
            seen.add(concrete)
            values = {str(n): v for n, v in zip(names, row, strict=True)}
            if any(is_traced(v) for v in row):
                jax.eval_shape(lambda values=values: (check(values), 0)[1])
            else:  # by value (floats by their bits): setting the same values again traces nothing
                _check_values(check, Static(values))


@structural_cache(maxsize=256)  # a check that raises is not cached: it raises again
def _check_values(check: Callable[[dict[str, Any]], Any], values: Static) -> None:
    jax.eval_shape(lambda: (check(values.value), 0)[1])


def hparams_field(node: Any) -> str | None:
    """The field of a state node that holds its hyperparameters, or None: ``hparams`` in fnn's
    states; ``hyperparams`` in optax's ``inject_hyperparams`` states (``count``, ``hyperparams``,
    [``hyperparams_states``,] ``inner_state``), recognised by their fields: fnn does not import
    optax, and SPEC section 1 has optax optimizers work in fit, ReduceLROnPlateau's included."""
    fields = getattr(node, "_fields", None)
    if not isinstance(fields, tuple):
        return None
    if "hparams" in fields and isinstance(node.hparams, dict):
        return "hparams"
    if {"count", "hyperparams", "inner_state"} <= set(fields) and isinstance(node.hyperparams, dict):
        return "hyperparams"
    return None


def holds_hparams(node: Any) -> bool:
    """Whether ``node`` is a state node holding hyperparameters (fnn's or optax's)."""
    return hparams_field(node) is not None


def hparams_of(node: Any) -> dict[str, Any]:
    """The hyperparameters ``node`` holds, ``{name: value}``."""
    return getattr(node, hparams_field(node) or "hparams")


def map_hparam_nodes(
    fn: Callable[[Any], Any], state: OptState, *, where: Callable[[Any], bool] | None = None
) -> OptState:
    """``fn`` applied to every state node holding hyperparameters, nested ones included, in the
    order of the state's leaves. With ``where``, only to the outermost nodes it accepts: what
    ``fn`` returns is not looked into, and a node it refuses is looked into, left as it is."""

    def visit(node: Any) -> Any:
        if not holds_hparams(node):
            return node
        if where is None:
            node = fn(node)
        elif where(node):
            return fn(node)
        own = hparams_field(node)
        rest = {f: jax.tree.map(visit, getattr(node, f), is_leaf=holds_hparams) for f in node._fields if f != own}
        return node._replace(**rest)

    return jax.tree.map(visit, state, is_leaf=holds_hparams)


def held_nodes(state: OptState) -> list[Any]:
    """The state nodes holding hyperparameters, nested ones included, in :func:`map_hparam_nodes`'s order."""
    found: list[Any] = []

    def keep(node: Any) -> Any:
        found.append(node)
        return node

    map_hparam_nodes(keep, state)
    return found


def _nested(node: Any) -> list[Any]:
    """The state nodes holding hyperparameters nested in ``node`` (not ``node`` itself)."""
    own = hparams_field(node)
    return [n for f in node._fields if f != own for n in held_nodes(getattr(node, f))]


def get_hyperparams(state: OptState) -> dict[str, Array]:
    """The hyperparameters the next update uses (of the first injected state found: fnn's
    :func:`inject_hyperparams` or optax's ``inject_hyperparams``).

    Args:
        state: An optimizer state (nested, chained, masked or vmapped).

    Returns:
        ``{name: value}``, each value an array (0-d, or batched in a vmapped state).

    Raises:
        ValueError: If the state holds no hyperparameters (no state built by
            :func:`inject_hyperparams`).

    Examples:
        >>> import fnn
        >>> state = fnn.optimizers.sgd(0.5, momentum=0.25).init([0.0])
        >>> {k: float(v) for k, v in fnn.optimizers.get_hyperparams(state).items()}
        {'learning_rate': 0.5, 'momentum': 0.25, 'dampening': 0.0}
    """
    for node in jax.tree.leaves(state, is_leaf=holds_hparams):
        if holds_hparams(node):
            return dict(hparams_of(node))
    raise ValueError(
        "the optimizer state holds no hyperparameters (no state built by fnn.optimizers.inject_hyperparams "
        "or optax.inject_hyperparams)"
    )


def set_hyperparams(state: OptState, **values: Any) -> OptState:
    """``state`` with each named hyperparameter set in every injected state that holds it
    (fnn's :func:`inject_hyperparams` states, and optax's ``inject_hyperparams`` states: their
    ``hyperparams`` entry is replaced, as optax's documentation does by hand).

    A new value takes the old one's dtype and shape (a scalar broadcasts over a vmapped batch
    of states), so jitted updates do not recompile. In a state nested in an injected one that is
    set too, a value the enclosing factory computes from the enclosing values is left to it: the
    next update computes it from the values set (a schedule it builds from them included).

    A scheduled hyperparameter (an optimizer built with ``learning_rate=schedule``) is set for
    the next update and the whole schedule is scaled by the same factor, ``new / current``:
    ReduceLROnPlateau's ``lr * factor`` scales the schedule by ``factor``, and 0 stops it. Where
    the schedule gives 0 at the current step (a warmup from 0 before the first update) 0 is the
    value already held and changes nothing (the schedule keeps its scale), and no factor gives a
    nonzero value: that raises ``ValueError`` (under ``jit``, where nothing can raise, the
    factor becomes NaN, and so does training).

    Args:
        state: An optimizer state (nested, chained, masked or vmapped).
        **values: ``name=value`` for each hyperparameter to set.

    Returns:
        The new state (the one given is not changed), holding its own copy of each value (also
        under ``vmap``: donating the state never deletes the array you set from).

    Raises:
        ValueError: If the state holds no hyperparameter of a given name (the message lists the
            ones it holds; a term switched off at construction, e.g. ``weight_decay=0``, cannot be
            set later), or for a value that is not finite or out of the range the optimizers'
            constructors take (``learning_rate``, ``eps``, ``weight_decay``, ``momentum`` >= 0;
            ``b1``, ``b2`` in [0, 1); ``dampening``, ``rho`` in [0, 1]; ...), and in a state built
            by :func:`inject_hyperparams` (every named optimizer) for what that optimizer's
            constructor refuses, by its own check: its ranges (rmsprop's ``decay`` in [0, 1]) and
            combinations (``nesterov=True`` with ``momentum=0`` or ``dampening > 0``). A traced
            value is not checked. For a nonzero value of a scheduled hyperparameter whose schedule gives 0
            at the current step. For a hyperparameter that optax's state computes from a schedule
            (optax recomputes it at every update).
        TypeError: For a value that is not a number, or one held in an 8-bit float.

    Examples:
        >>> import fnn
        >>> state = fnn.optimizers.sgd(0.5, momentum=0.5).init([0.0])
        >>> state = fnn.optimizers.set_hyperparams(state, momentum=0.75)
        >>> float(fnn.optimizers.get_hyperparams(state)["momentum"])
        0.75
    """
    return set_values(state, values)


def set_values(state: OptState, values: dict[str, Any], *, leave: Callable[[Any], bool] | None = None) -> OptState:
    """:func:`set_hyperparams`'s work: ``values`` set in ``state``; a node nested in another
    that ``leave`` accepts (a parameter group of its own, set by itself) is left as it is."""
    for name, value in values.items():
        check_value(name, value)
    found = dict.fromkeys(values, False)
    known: set[str] = set()

    def replace(node: Any, changed: frozenset[str]) -> tuple[Any, frozenset[str]]:
        own = hparams_field(node) or "hparams"
        hp = dict(getattr(node, own))
        known.update(hp)
        scales = dict(getattr(node, "scales", None) or {})
        # optax's state: a scheduled value is recomputed from its schedule at every update
        scheduled = getattr(node, "hyperparams_states", None) if own == "hyperparams" else None
        keys = {str(k): k for k in hp}
        for name, value in values.items():
            if name not in hp:
                continue
            if source := followed(keys[name]):
                if not changed & set(source):
                    raise ValueError(
                        f"{name} is held in an optimizer state nested in an inject_hyperparams state, whose "
                        f"factory computes it at every update from its own {', '.join(source)}: a value set "
                        f"here would not hold. Set {' or '.join(source)} (set_hyperparams), or name the "
                        f"factory's argument {name}"
                    )
                # the enclosing factory computes it from the values just set there, at the next
                # update (a scheduled one's schedule anew): set here too, it would scale twice
                found[name] = True
                continue
            if isinstance(scheduled, dict) and name in scheduled:
                raise ValueError(
                    f"{name} follows a schedule in this optax.inject_hyperparams state (optax recomputes it "
                    f"at every update, so a value set here would not hold): build the optimizer with a number "
                    f"for {name}, or with fnn.optimizers.inject_hyperparams, whose schedules can be rescaled"
                )
            found[name] = True
            old = hp[name]
            if is_traced(value) or is_traced(old) or (name in scales and is_traced(scales[name])):
                # the state's own copy: a traced value is often the caller's array (vmap over rates)
                shape = jnp.shape(_shaped(name, value, old))
                new = own_copy(jnp.broadcast_to(_held(jnp.asarray(value), old.dtype), shape))
                if name in scales:
                    # no factor turns a 0 into a nonzero rate; a traced value cannot raise, so
                    # the factor is NaN there and training says so (TerminateOnNaN stops it)
                    nonzero = old != 0
                    ratio = new / jnp.where(nonzero, old, 1)
                    # 0 onto a held 0 is the value already held: the schedule keeps its factor
                    scales[name] = jnp.where(nonzero, ratio, jnp.where(new == 0, 1.0, jnp.nan)) * scales[name]
            else:  # between epochs, on the host: no device program for a scalar
                old_h = to_host(old)
                if old_h.dtype.kind in "iu" and not np.all(np.mod(np.asarray(to_host(value), float), 1) == 0):
                    raise ValueError(
                        f"{name}={value!r}: the state holds {name} as {old_h.dtype} (the optimizer was built "
                        f"with an integer {name}); build it with a float, e.g. {name}={float(old_h.flat[0])}"
                    )
                with np.errstate(over="ignore"):
                    new_h = np.broadcast_to(_held(np.asarray(value), old_h.dtype), _shaped(name, value, old_h).shape)
                if jnp.issubdtype(new_h.dtype, jnp.floating) and not np.all(np.isfinite(new_h)):
                    raise ValueError(
                        f"{name}={value!r} is not finite in {old_h.dtype}, the dtype the state holds it in "
                        f"(largest: {jnp.finfo(old_h.dtype).max:.3g})"
                    )
                if name in scales:
                    scales[name] = _rescaled(name, np.asarray(scales[name]), old_h, new_h, node)
                new = jax.device_put(np.array(new_h))
            hp[name] = new
        _check_step_sizes(hp, values)
        if any(name in hp for name in values):
            # a concrete value set into a traced state (sweep's check) is checked as given
            _constructor_check({k: v if is_traced(values.get(k, v)) else values.get(k, v) for k, v in hp.items()})
        changes = {own: hp, **({"scales": scales} if "scales" in node._fields else {})}
        # what the states nested here follow that changes: the values set, and those computed
        # from changed enclosing ones (at the next update)
        return node._replace(**changes), frozenset(str(k) for k in hp if k in values or changed & set(followed(k)))

    def visit(node: Any, changed: frozenset[str], nested: bool) -> Any:
        if not holds_hparams(node) or (nested and leave is not None and leave(node)):
            return node
        if hparams_field(node) == "hyperparams" and any(hparams_field(n) == "hparams" for n in _nested(node)):
            raise ValueError(
                "the optimizer state holds fnn optimizers built by an optax.inject_hyperparams factory: they hold "
                "their own values and ignore optax's, so values set there would not reach them (nor could each "
                "be set alone). Build the outer injection with fnn.optimizers.inject_hyperparams, which passes "
                "its values to the fnn optimizers its factory builds"
            )
        node, now = replace(node, changed)
        own = hparams_field(node)
        inner = lambda n: visit(n, now, True)
        rest = {f: jax.tree.map(inner, getattr(node, f), is_leaf=holds_hparams) for f in node._fields if f != own}
        return node._replace(**rest)

    new_state = jax.tree.map(lambda n: visit(n, frozenset(), False), state, is_leaf=holds_hparams)
    missing = [name for name, ok in found.items() if not ok]
    if missing:
        name = missing[0]
        shown = bool(values[name]) if isinstance(values[name], np.bool_) else values[name]
        why = (
            # nesterov=True, amsgrad=True: an option that is the program's, not a number it holds
            f"{name}={shown!r} is an option of the optimizer's program, fixed when it is built: build it "
            f"again with {name}={shown!r}"
            if isinstance(values[name], (bool, np.bool_, str)) or values[name] is None
            else "a term switched off at construction, e.g. weight_decay=0, cannot be set later: build the "
            "optimizer with a nonzero value"
        )
        raise ValueError(
            f"the optimizer state holds no hyperparameter {name!r}; it holds: {', '.join(sorted(known)) or 'none'} "
            f"({why})"
        )
    return new_state


def _held(value: Any, dtype: Any) -> Any:
    """``value`` in the state's ``dtype``, where a positive float never rounds to 0 (it becomes
    the dtype's smallest normal, as the constructors hold it: an ``eps`` of 1e-46 in float32
    made 0 / 0 of a zero gradient)."""
    xp = jnp if is_traced(value) else np
    out = value.astype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        return out
    return xp.where((value > 0) & (out == 0), xp.asarray(jnp.finfo(dtype).tiny, dtype), out)


def _shaped(name: str, value: Any, old: Any) -> Any:
    """``old``, after checking that ``value`` fits its shape: a scalar, or (a vmapped state) one
    value per model; the message names the hyperparameter (NumPy's says "broadcast")."""
    shape, held = np.shape(value), np.shape(old)
    if shape and shape != held[len(held) - len(shape) :]:
        models = f"one per model of this vmapped state, shape {held}" if held else "this state is not vmapped"
        raise ValueError(f"{name} must be a scalar or hold one value per model ({models}), got shape {shape}")
    return old


def _rescaled(name: str, scale: np.ndarray, old: np.ndarray, new: np.ndarray, node: Any) -> Array:
    """The scheduled ``name``'s new factor: ``scale * new / old``, so that the next update uses
    ``new`` and the whole schedule is scaled alike. Where the schedule gives 0 at this step no
    factor gives a nonzero ``new``: refused; a 0 there is the value already held, so the factor
    stays (a warmup from 0 written back as it is still warms up)."""
    stuck = (old == 0) & (new != 0)
    if np.any(stuck):
        value, step = float(new[stuck].flat[0]), int(np.asarray(getattr(node, "count", 0)).max())
        raise ValueError(
            f"{name}={value:g}: {name} follows a schedule that gives 0 at this step (after {step} updates: "
            f"a warmup from 0 before its first update, a decay that has reached 0, or a schedule set to 0 "
            f"before). Setting it scales the whole schedule so that the next update uses the value set, "
            f"and no factor turns 0 into {value:g}: set it where the schedule is nonzero, or build the "
            f"schedule with the rates you want (e.g. warmup_cosine_decay(0.0, peak_value={value:g}, ...))"
        )
    ratio = np.where(old != 0, new / np.where(old != 0, old, 1), 1.0)
    return jax.device_put((scale * ratio).astype(scale.dtype))


# The ranges fnn's constructors take for the hyperparameters its optimizers hold, as
# ``(low, high, low excluded, high excluded)``; a name that two transforms use with different
# ranges gets the wider (``decay``: rmsprop's [0, 1], trace's >= 0), and the constructor's own
# check (``HeldName``) then narrows it in fnn's states. Names not here (your own factories') are
# only checked to be finite here.
RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "learning_rate": (0.0, math.inf, False, False),
    "eps": (0.0, math.inf, False, False),
    "weight_decay": (0.0, math.inf, False, False),
    "b1": (0.0, 1.0, False, True),
    "b2": (0.0, 1.0, False, True),
    "momentum": (0.0, math.inf, False, False),
    "dampening": (0.0, 1.0, False, False),
    "decay": (0.0, math.inf, False, False),
    "rho": (0.0, 1.0, False, False),
    "lr_decay": (0.0, math.inf, False, False),
    "momentum_decay": (0.0, math.inf, False, False),
    "eta_minus": (0.0, 1.0, True, True),
    "eta_plus": (1.0, math.inf, True, False),
    "step_size_min": (0.0, math.inf, False, False),
    "step_size_max": (0.0, math.inf, False, False),
    "lambd": (0.0, math.inf, False, False),
    "t0": (0.0, math.inf, False, False),
    "beta2_decay": (-math.inf, 0.0, False, False),
    "eps1": (0.0, math.inf, False, False),
    "eps2": (0.0, math.inf, False, False),
    "learning_rate_power": (-math.inf, 0.0, False, False),
    "l1_regularization_strength": (0.0, math.inf, False, False),
    "l2_regularization_strength": (0.0, math.inf, False, False),
    "l2_shrinkage_regularization_strength": (0.0, math.inf, False, False),
    "beta": (0.0, math.inf, False, False),
}


def _check_step_sizes(hp: dict[str, Any], values: dict[str, Any]) -> None:
    """rprop's limits, as its constructor has them: ``step_size_max >= step_size_min``."""
    names = ("step_size_min", "step_size_max")
    if not (set(names) <= set(hp) and set(names) & set(values)) or any(is_traced(hp[n]) for n in names):
        return
    lo, hi = (np.asarray(hp[n]) for n in names)
    if np.any(hi < lo):
        raise ValueError(f"step_size_max must be >= step_size_min ({lo.tolist()}), got {hi.tolist()}")


def check_value(name: str, value: Any) -> None:
    """A concrete new value (a scalar, or one per vmapped state) is finite and in its range; a
    traced one is the caller's to check."""
    if is_traced(value):
        return
    check_number_dtype(name, value)
    not_a_number = TypeError(f"{name} must be a real number (or an array of them), got {value!r}")
    try:
        raw = np.asarray(value)
        if raw.dtype.kind in "USO":  # text ("0.1" would convert, and fail later in NumPy's words), None
            raise not_a_number
        a = raw.astype(float)
    except (TypeError, ValueError):
        raise not_a_number from None
    lo, hi, lo_open, hi_open = RANGES.get(name, (-math.inf, math.inf, False, False))
    low_ok = a > lo if lo_open else a >= lo
    high_ok = a < hi if hi_open else a <= hi
    if not np.all(np.isfinite(a) & low_ok & high_ok):
        expected = f"finite and {interval(lo, hi, lo_open, hi_open)}" if name in RANGES else "finite"
        raise ValueError(f"{name} must be {expected}, got {value!r}")
