r"""Hyperparameters as data: :func:`inject_hyperparams`, the one place where they become state.

``inject_hyperparams(factory)(**hyperparams)`` builds ``factory``'s transform with every numeric
hyperparameter held in the optimizer state (``state.hparams``) as a 0-d array and passed to
``factory`` afresh at each update. So

* a new value (``set_learning_rate``, ``set_hyperparams``, a callback, a sweep) changes an
  array, never the program: nothing recompiles, and states can be vmapped over values;
* two optimizers built from the same factory and options, differing only in hyperparameter
  values, have EQUAL ``update`` functions, so compiled training programs keyed on them are
  shared (``fnn.fit`` keys its cache of compiled epochs on ``opt.update``);
* a hyperparameter given as a schedule (any callable ``step -> value``) is evaluated at each
  update; ``hparams`` holds the value the NEXT update uses.

Everything that is not a number or a callable (bools, None, strings, tuples) is passed through
as a static option; ``static_args`` names further arguments to keep static.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn._validate import UNTRACEABLE, interval, is_traced
from fnn._values import bound, freeze
from fnn.optimizers._base import (
    Array,
    GradientTransformation,
    OptState,
    Params,
    Updates,
    check_like,
    count0,
    scalar_dtype,
)


class InjectHyperparamsState(NamedTuple):
    """State of an injected transform (:func:`inject_hyperparams`).

    Attributes:
        count: Updates so far.
        hparams: ``{name: value}``, the values the next update uses (0-d arrays).
        scales: One factor per scheduled hyperparameter (``hparams[h] = schedule_h(count) *
            scales[h]``, so setting ``h`` rescales the rest of its schedule).
        inner_state: The transform's own state.
    """

    count: Array  # type: ignore[assignment]  # the field shadows tuple.count, as in optax
    hparams: dict[str, Array]
    scales: dict[str, Array]
    inner_state: OptState


def _is_number(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, numbers.Real):
        return True
    return (
        isinstance(value, (np.ndarray, np.generic, jax.Array))
        and np.ndim(value) == 0
        and np.dtype(value.dtype).kind in "iuf"
    )


def _as_array(value: Any, dtype: Any) -> Array:
    """Floats in the hyperparameter dtype (a positive value never rounds to 0), ints as ints."""
    if is_traced(value):
        return value.astype(dtype) if jnp.issubdtype(value.dtype, jnp.floating) else value
    v = np.asarray(value)
    if v.dtype.kind != "f" and not isinstance(value, float):
        return jax.device_put(v.astype(jax.dtypes.canonicalize_dtype(v.dtype)))
    out = v.astype(dtype)
    if v > 0 and out == 0:  # on the host: no tiny programs compiled for a scalar
        out = np.asarray(np.finfo(dtype).tiny, dtype)
    return jax.device_put(out)


class _Spec(NamedTuple):
    """What an injected transform's program depends on: everything but the numeric values."""

    factory: Callable[..., GradientTransformation]
    static: tuple[tuple[str, Any], ...]
    schedules: tuple[tuple[str, Callable[[Array], Array]], ...]
    numeric: tuple[str, ...]
    dtype: Any

    def build(self, hp: dict[str, Any]) -> GradientTransformation:
        return self.factory(**dict(self.static), **hp)


def _init_from_arrays(spec: _Spec, params: Params, hp: dict[str, Array]) -> InjectHyperparamsState:
    """The state, from the hyperparameters already as arrays (traced when ``init`` is jitted)."""
    dtype = spec.dtype or scalar_dtype()
    hp = dict(hp)
    scales = {}
    for name, schedule in spec.schedules:
        hp[name] = jnp.asarray(schedule(count0()), dtype)
        scales[name] = jnp.ones((), dtype)
    return InjectHyperparamsState(count0(), hp, scales, spec.build(hp).init(params))


class InjectInit:
    """An injected transform's ``init``: ``init(params) -> state``. Compared by its factory
    AND values; ``template`` (compared by the factory alone) takes the values as an input,
    ``values`` gives them as arrays, so a compiled ``template`` serves every optimizer of the
    family (``fnn.fit`` jits it once)."""

    __slots__ = ("__weakref__", "key", "spec", "template", "values")

    def __init__(self, spec: _Spec, values: tuple[tuple[str, Any], ...]) -> None:
        self.spec, self.values = spec, values
        self.template = bound(_init_from_arrays, spec)
        self.key = freeze((spec, values))

    def arrays(self) -> dict[str, Array]:
        dtype = self.spec.dtype or scalar_dtype()
        return {name: _as_array(v, dtype) for name, v in self.values}

    def __call__(self, params: Params) -> InjectHyperparamsState:
        return _init_from_arrays(self.spec, params, self.arrays())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InjectInit) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"inject_init({getattr(self.spec.factory, '__name__', 'factory')}, {dict(self.values)})"


def _inject_update(
    spec: _Spec, updates: Updates, state: InjectHyperparamsState, params: Params = None
) -> tuple[Updates, InjectHyperparamsState]:
    check_like(updates, params, "params")  # the optimizer's entry: name the user's grads
    # A factory that injects its own (a named optimizer) keeps values in its own state: ours rule.
    inner_state = _map_hparam_nodes(lambda node: _override(node, state.hparams), state.inner_state)
    updates, inner_state = spec.build(state.hparams).update(updates, inner_state, params)
    count = state.count + 1
    hp = dict(state.hparams)
    for name, schedule in spec.schedules:
        hp[name] = jnp.asarray(schedule(count), hp[name].dtype) * state.scales[name]
    return updates, InjectHyperparamsState(count, hp, state.scales, inner_state)


def _traced(name: str, schedule: Callable) -> Any:
    """``schedule`` at step 0, traced: each update evaluates it under jit with the step count an
    abstract array, so Python control flow on the step cannot run there."""
    try:
        return schedule(count0())
    except UNTRACEABLE as e:
        raise TypeError(
            f"{name}: the schedule {getattr(schedule, '__name__', schedule)!r} must be traceable (it runs under "
            "jit with the step count a traced array): write its branches with jnp.where(step < n, a, b) "
            "instead of a Python if, or use fnn.schedules (piecewise_constant for steps)"
        ) from e


def inject_hyperparams(
    factory: Callable[..., GradientTransformation],
    *,
    static_args: Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., GradientTransformation]:
    """``factory``'s transform with its numeric hyperparameters held in the state (see the
    module docstring). Returns a function taking ``factory``'s own arguments.

    ``hyperparam_dtype`` defaults to float64 when x64 is enabled at ``init``, else float32.
    The factory is called once at construction (so bad values fail there) and once per update
    with the state's arrays.

    Args:
        factory: A function of hyperparameters returning a :class:`GradientTransformation`
            (any optimizer or transform factory, your own included).
        static_args: Names of ``factory``'s arguments to keep static (out of the state) even
            when they are numbers, e.g. one that fixes the state's shape.
        hyperparam_dtype: The dtype of the floating hyperparameters in the state (None: the
            widest float enabled).

    Returns:
        A function with ``factory``'s signature returning the injected transform, whose state is
        an :class:`InjectHyperparamsState`.

    Raises:
        TypeError: If ``factory`` is not callable; when building, for arguments ``factory``
            does not take, or a schedule that cannot be traced (Python control flow on the step).
        ValueError: When building, for a bad hyperparameter value (``factory`` runs once there).

    Examples:
        >>> import fnn.optimizers as O
        >>> opt = O.inject_hyperparams(O.scale_by_learning_rate)(learning_rate=0.5)
        >>> float(O.get_learning_rate(opt.init([0.0])))
        0.5
        >>> O.adam(1e-3).update == O.adam(0.5).update  # the named optimizers are injected
        True
    """
    if not callable(factory):
        raise TypeError(f"inject_hyperparams: factory must be callable, got {factory!r}")
    signature = inspect.signature(factory)
    keep_static = frozenset(static_args)

    def build(*args: Any, **kwargs: Any) -> GradientTransformation:
        try:
            arguments = signature.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{getattr(factory, '__name__', 'factory')}: {e}") from None
        arguments.apply_defaults()
        numeric, schedules, static = {}, {}, {}
        for name, value in arguments.arguments.items():
            if name in keep_static:
                static[name] = value
            elif _is_number(value):
                # fnn's own hyperparameters are real numbers: learning_rate=1 (or jnp.array(1))
                # is held as a float, so that a rate set later (0.5) is not truncated to 0
                real = name in _RANGES and not is_traced(value) and np.dtype(np.asarray(value).dtype).kind in "iu"
                numeric[name] = float(value) if real else value
            elif callable(value):
                schedules[name] = value
            else:
                static[name] = value
        # Built once with the given values, so that a bad hyperparameter fails here rather than at
        # the first update (with schedules abstractly, so that no schedule runs eagerly).
        if schedules:
            jax.eval_shape(
                lambda: (factory(**static, **numeric, **{n: _traced(n, s) for n, s in schedules.items()}), 0)[1]
            )
        else:
            factory(**static, **numeric)
        spec = _Spec(factory, tuple(static.items()), tuple(schedules.items()), tuple(numeric), hyperparam_dtype)
        return GradientTransformation(InjectInit(spec, tuple(numeric.items())), bound(_inject_update, spec))

    build.__name__ = f"inject_hyperparams({getattr(factory, '__name__', 'factory')})"
    build.__doc__ = factory.__doc__
    return build


# ---------------------------------------------------------------------------------------------
# Reading and setting hyperparameters in any state (nested, chained, masked, vmapped).


def _hparams_field(node: Any) -> str | None:
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


def _holds_hparams(node: Any) -> bool:
    return _hparams_field(node) is not None


def _hparams_of(node: Any) -> dict[str, Any]:
    return getattr(node, _hparams_field(node) or "hparams")


def _map_hparam_nodes(fn: Callable[[Any], Any], state: OptState) -> OptState:
    """``fn`` applied to every state node holding ``hparams``, nested ones included."""

    def visit(node: Any) -> Any:
        if not _holds_hparams(node):
            return node
        node = fn(node)
        own = _hparams_field(node)
        rest = {f: jax.tree.map(visit, getattr(node, f), is_leaf=_holds_hparams) for f in node._fields if f != own}
        return node._replace(**rest)

    return jax.tree.map(visit, state, is_leaf=_holds_hparams)


def _override(node: Any, values: dict[str, Array]) -> Any:
    hp = {k: (jnp.asarray(values[k], jnp.asarray(v).dtype) if k in values else v) for k, v in _hparams_of(node).items()}
    return node._replace(**{_hparams_field(node) or "hparams": hp})


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
    for node in jax.tree.leaves(state, is_leaf=_holds_hparams):
        if _holds_hparams(node):
            return dict(_hparams_of(node))
    raise ValueError(
        "the optimizer state holds no hyperparameters (no state built by fnn.optimizers.inject_hyperparams "
        "or optax.inject_hyperparams)"
    )


def set_hyperparams(state: OptState, **values: Any) -> OptState:
    """``state`` with each named hyperparameter set in every injected state that holds it
    (fnn's :func:`inject_hyperparams` states, and optax's ``inject_hyperparams`` states: their
    ``hyperparams`` entry is replaced, as optax's documentation does by hand).

    A new value takes the old one's dtype and shape (a scalar broadcasts over a vmapped batch
    of states), so jitted updates do not recompile. A scheduled hyperparameter is set for the
    next update and the rest of its schedule is multiplied by ``new / current`` (left alone
    while the current value is 0), so ReduceLROnPlateau scales a schedule.

    Args:
        state: An optimizer state (nested, chained, masked or vmapped).
        **values: ``name=value`` for each hyperparameter to set.

    Returns:
        The new state (the one given is not changed).

    Raises:
        ValueError: If the state holds no hyperparameter of a given name (the message lists the
            ones it holds; a term switched off at construction, e.g. ``weight_decay=0``, cannot be
            set later), or for a value that is not finite or out of the range the optimizers'
            constructors take (``learning_rate``, ``eps``, ``weight_decay``, ``momentum`` >= 0;
            ``b1``, ``b2`` in [0, 1); ``dampening``, ``rho`` in [0, 1]; ...). A traced value is
            not checked. For a hyperparameter that optax's state computes from a schedule
            (optax recomputes it at every update).
        TypeError: For a value that is not a number.

    Examples:
        >>> import fnn
        >>> state = fnn.optimizers.sgd(0.5, momentum=0.5).init([0.0])
        >>> state = fnn.optimizers.set_hyperparams(state, momentum=0.75)
        >>> float(fnn.optimizers.get_hyperparams(state)["momentum"])
        0.75
    """
    for name, value in values.items():
        _check_value(name, value)
    found = dict.fromkeys(values, False)
    known: set[str] = set()

    def replace(node: Any) -> Any:
        own = _hparams_field(node) or "hparams"
        hp = dict(getattr(node, own))
        known.update(hp)
        scales = dict(getattr(node, "scales", None) or {})
        # optax's state: a scheduled value is recomputed from its schedule at every update
        scheduled = getattr(node, "hyperparams_states", None) if own == "hyperparams" else None
        for name, value in values.items():
            if name not in hp:
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
                new = jnp.broadcast_to(jnp.asarray(value, old.dtype), jnp.shape(old))
                if name in scales:
                    nonzero = old != 0
                    scales[name] = jnp.where(nonzero, scales[name] * new / jnp.where(nonzero, old, 1), scales[name])
            else:  # between epochs, on the host: no device program for a scalar
                old_h = np.asarray(old)
                if old_h.dtype.kind in "iu" and not np.all(np.mod(np.asarray(value, float), 1) == 0):
                    raise ValueError(
                        f"{name}={value!r}: the state holds {name} as {old_h.dtype} (the optimizer was built "
                        f"with an integer {name}); build it with a float, e.g. {name}={float(old_h.flat[0])}"
                    )
                with np.errstate(over="ignore"):
                    new_h = np.broadcast_to(np.asarray(value, old_h.dtype), old_h.shape)
                if np.issubdtype(new_h.dtype, np.floating) and not np.all(np.isfinite(new_h)):
                    raise ValueError(
                        f"{name}={value!r} is not finite in {old_h.dtype}, the dtype the state holds it in "
                        f"(largest: {np.finfo(old_h.dtype).max:.3g})"
                    )
                if name in scales:
                    scale = np.asarray(scales[name])
                    ratio = new_h / np.where(old_h != 0, old_h, 1)
                    scales[name] = jax.device_put(np.where(old_h != 0, scale * ratio, scale).astype(scale.dtype))
                new = jax.device_put(np.array(new_h))
            hp[name] = new
        _check_step_sizes(hp, values)
        changes = {own: hp, **({"scales": scales} if "scales" in node._fields else {})}
        return node._replace(**changes)

    new_state = _map_hparam_nodes(replace, state)
    missing = [name for name, ok in found.items() if not ok]
    if missing:
        raise ValueError(
            f"the optimizer state holds no hyperparameter {missing[0]!r}; it holds: "
            f"{', '.join(sorted(known)) or 'none'} (a term switched off at construction, e.g. "
            "weight_decay=0, cannot be set later: build the optimizer with a nonzero value)"
        )
    return new_state


# The ranges fnn's constructors take for the hyperparameters its optimizers hold, as
# ``(low, high, low excluded, high excluded)``; a name that two transforms use with different
# ranges gets the wider (``decay``: rmsprop's [0, 1], trace's >= 0). Names not here (your own
# factories') are only checked to be finite.
_RANGES: dict[str, tuple[float, float, bool, bool]] = {
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
}


def _check_step_sizes(hp: dict[str, Any], values: dict[str, Any]) -> None:
    """rprop's limits, as its constructor has them: ``step_size_max >= step_size_min``."""
    names = ("step_size_min", "step_size_max")
    if not (set(names) <= set(hp) and set(names) & set(values)) or any(is_traced(hp[n]) for n in names):
        return
    lo, hi = (np.asarray(hp[n]) for n in names)
    if np.any(hi < lo):
        raise ValueError(f"step_size_max must be >= step_size_min ({lo.tolist()}), got {hi.tolist()}")


def _check_value(name: str, value: Any) -> None:
    """A concrete new value (a scalar, or one per vmapped state) is finite and in its range; a
    traced one is the caller's to check."""
    if is_traced(value):
        return
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number (or an array of them), got {value!r}") from None
    lo, hi, lo_open, hi_open = _RANGES.get(name, (-math.inf, math.inf, False, False))
    low_ok = a > lo if lo_open else a >= lo
    high_ok = a < hi if hi_open else a <= hi
    if not np.all(np.isfinite(a) & low_ok & high_ok):
        expected = f"finite and {interval(lo, hi, lo_open, hi_open)}" if name in _RANGES else "finite"
        raise ValueError(f"{name} must be {expected}, got {value!r}")


def set_learning_rate(state: OptState, learning_rate: Any) -> OptState:
    """The state with every optimizer's learning rate set to ``learning_rate`` (nested and
    chained states too): :func:`set_hyperparams` for ``learning_rate``, checked ``>= 0``.

    Args:
        state: An optimizer state (nested, chained, masked or vmapped).
        learning_rate: The new rate, ``>= 0`` (a scalar, or an array of the batch's shape in a
            vmapped state).

    Returns:
        The new state; jitted updates do not recompile.

    Raises:
        ValueError: If the rate is negative or not finite, or the state holds no learning rate
            (see :func:`get_learning_rate`) or an optax schedule of it.

    Examples:
        >>> import fnn
        >>> state = fnn.optimizers.adam(1e-3).init({"w": [0.0]})
        >>> state = fnn.optimizers.set_learning_rate(state, 0.25)
        >>> float(fnn.optimizers.get_learning_rate(state))
        0.25
    """
    get_learning_rate(state)  # a state without one gets that said plainly
    return set_hyperparams(state, learning_rate=learning_rate)  # which checks the value


def get_learning_rate(state: OptState) -> Array:
    """The learning rate the next update uses (the first one found in a nested/chained state).

    The rate is held by the states of :func:`inject_hyperparams` (every named optimizer is
    built with it) and of optax's ``inject_hyperparams``: ``optax.adam(1e-3)`` or
    ``fnn.optimizers.chain(scale_by_adam(), scale_by_learning_rate(1e-3))`` hold none.

    Args:
        state: An optimizer state (nested, chained, masked or vmapped).

    Returns:
        The learning rate, an array.

    Raises:
        ValueError: If the state holds no learning rate.
    """
    for node in jax.tree.leaves(state, is_leaf=_holds_hparams):
        if _holds_hparams(node) and "learning_rate" in _hparams_of(node):
            return _hparams_of(node)["learning_rate"]
    raise ValueError(
        "the optimizer state holds no learning rate (no state built by fnn.optimizers.inject_hyperparams, "
        "as the named optimizers are, or by optax.inject_hyperparams, with a learning_rate)"
    )
