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
  update; ``hparams`` holds the value the NEXT update uses. An :mod:`fnn.schedules` schedule's
  numbers (``init_value``, ``alpha``, ``peak_value``...; as its rule uses them, e.g. ``1 - alpha``)
  are data too, held in ``state.schedule_values``: its rule and step structure (step counts,
  boundaries, ``staircase``) are the program, so ``adam(cosine_decay(3e-3, 100))`` and
  ``adam(cosine_decay(1e-2, 100))`` have equal ``update`` functions, and the schedule is
  evaluated from those arrays by the schedule's own rule: the rate the schedule called directly
  gives, to float rounding (the same operations; a compiled update may fuse a multiply-add that
  op-by-op eager calls round twice, a few units in the last place, more where the rule's terms
  cancel, as ``polynomial(3e-4, 0.7, ...)``'s do in float32). A schedule
  that is a plain callable is program structure, compared by identity.

Everything that is not a number or a callable (bools, None, strings, tuples) is passed through
as a static option; ``static_args`` names further arguments to keep static.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn._dtypes import check_number_dtype
from fnn._placement import to_host
from fnn._validate import UNTRACEABLE, is_real_number, is_traced
from fnn._values import bound, freeze
from fnn.optimizers._base import (
    Array,
    GradientTransformation,
    OptState,
    Params,
    Updates,
    check_like,
    count0,
    native_args,
    own_copy,
    scalar_dtype,
    takes_extra_args,
    tree_structure,
)
from fnn.optimizers._hyperparams import RANGES, HeldName
from fnn.optimizers._nested import init_step, marked_own, with_factory_values
from fnn.schedules._base import ScheduleFunction, ScheduleRule


class InjectHyperparamsState(NamedTuple):
    """State of an injected transform (:func:`inject_hyperparams`).

    Attributes:
        count: Updates so far.
        hparams: ``{name: value}``, the values the next update uses (0-d arrays).
        scales: One factor per scheduled hyperparameter (``hparams[h] = schedule_h(count) *
            scales[h]``, so setting ``h`` rescales the rest of its schedule).
        schedule_values: ``{h: {value name: array}}`` for each hyperparameter following an
            :mod:`fnn.schedules` schedule: the numbers its rule computes ``schedule_h(count)``
            from, in the default float dtype (0-d; ``piecewise_constant``'s ``values`` 1-d). A
            schedule that is a plain callable has no entry.
        inner_state: The transform's own state.
    """

    count: Array  # type: ignore[assignment]  # the field shadows tuple.count, as in optax
    hparams: dict[str, Array]
    scales: dict[str, Array]
    schedule_values: dict[str, dict[str, Array]]
    inner_state: OptState


class _StateWithoutScheduleValues(NamedTuple):
    """:class:`InjectHyperparamsState` as fnn wrote it before schedules' values were state (the
    same name, so its tree structure prints as that state's did)."""

    count: Any
    hparams: Any
    scales: Any
    inner_state: Any


_StateWithoutScheduleValues.__name__ = _StateWithoutScheduleValues.__qualname__ = "InjectHyperparamsState"


def without_schedule_values(tree: Any) -> Any:
    """``tree`` with every :class:`InjectHyperparamsState` in the form of the checkpoints written
    before it held ``schedule_values`` (the field left out), for reading those checkpoints."""
    is_state = lambda node: isinstance(node, InjectHyperparamsState)
    return jax.tree.map(
        lambda n: (
            _StateWithoutScheduleValues(n.count, n.hparams, n.scales, without_schedule_values(n.inner_state))
            if is_state(n)
            else n
        ),
        tree,
        is_leaf=is_state,
    )


def _as_array(value: Any, dtype: Any) -> Array:
    """Floats in the hyperparameter dtype (a positive value never rounds to 0), ints as ints; in
    a buffer of the state's own, never the caller's array (a traced one included: :func:`own_copy`)."""
    if is_traced(value):
        return own_copy(value, dtype if jnp.issubdtype(value.dtype, jnp.floating) else None)
    v = to_host(value)
    if not jnp.issubdtype(v.dtype, jnp.floating) and not isinstance(value, float):
        return jax.device_put(v.astype(jax.dtypes.canonicalize_dtype(v.dtype)))
    out = v.astype(dtype)
    if v > 0 and out == 0:  # on the host: no tiny programs compiled for a scalar
        out = np.asarray(np.finfo(dtype).tiny, dtype)
    return jax.device_put(out)


class _Spec(NamedTuple):
    """What an injected transform's program depends on: everything but the numeric values
    (``schedules``: an fnn schedule's :class:`ScheduleRule`, a plain callable as it is)."""

    factory: Callable[..., GradientTransformation]
    static: tuple[tuple[str, Any], ...]
    schedules: tuple[tuple[str, Callable[..., Array]], ...]
    numeric: tuple[str, ...]
    dtype: Any
    # (name, placeholder) of each argument only init reads (:func:`injected`'s ``init_args``):
    # its value is init's, the update builds the factory with the placeholder
    init_only: tuple[tuple[str, Any], ...] = ()

    def build(self, hp: dict[str, Any]) -> GradientTransformation:
        return self.factory(**{**dict(self.static), **dict(self.init_only), **hp})

    def check(self, hp: dict[str, Any]) -> None:
        """The constructor's checks of the values ``hp`` (the factory raises on a bad one)."""
        self.build(hp)


def _scheduled(rule: Callable[..., Array], step: Array, values: dict[str, dict[str, Array]], name: str) -> Array:
    """The schedule of ``name`` at ``step``: an fnn schedule's rule with its values (the state's
    arrays), a plain callable alone."""
    return rule(step, values[name]) if isinstance(rule, ScheduleRule) else rule(step)


def _init_from_arrays(
    spec: _Spec, params: Params, arrays: tuple[dict[str, Array], dict[str, dict[str, Array]]]
) -> InjectHyperparamsState:
    """The state, from the hyperparameters and the schedules' values already as arrays (traced
    when ``init`` is jitted)."""
    dtype = spec.dtype or scalar_dtype()
    hp, values = dict(arrays[0]), arrays[1]
    scales = {}
    for name, rule in spec.schedules:
        # a copy: a plain callable may return the caller's own array
        step = init_step()  # a nested state built afresh for an update: its schedules there
        hp[name] = own_copy(_scheduled(rule, count0() if step is None else step, values, name), dtype)
        scales[name] = jnp.ones((), dtype)
    inner_state = marked_own(spec, hp, spec.build(hp).init(params), params)
    init_only = dict(spec.init_only)  # read by that init, held nowhere
    # the names carry the factory's checks, for values set into the state later
    held: dict[str, Array] = {HeldName(name, spec.check): v for name, v in hp.items() if name not in init_only}
    return InjectHyperparamsState(count0(), held, scales, dict(values), inner_state)


class InjectInit:
    """An injected transform's ``init``: ``init(params) -> state``. Compared by its factory
    AND values (its schedules' included); ``template`` (compared by the factory alone) takes the
    values as an input, :meth:`arrays` gives them as arrays, so a compiled ``template`` serves
    every optimizer of the family (``fnn.fit`` jits it once). ``values`` are the numeric
    hyperparameters it was built with, ``schedules`` the scheduled ones' schedules. A copy or an
    unpickled one rebuilds its key from them."""

    __slots__ = ("__weakref__", "key", "schedules", "spec", "template", "values")

    def __init__(
        self, spec: _Spec, values: tuple[tuple[str, Any], ...], schedules: tuple[tuple[str, Callable[..., Any]], ...]
    ) -> None:
        self.spec, self.values, self.schedules = spec, values, schedules
        self.template = bound(_init_from_arrays, spec)
        self.key = freeze((spec, values, schedules))

    def __reduce__(self) -> tuple[Any, ...]:
        return (InjectInit, (self.spec, self.values, self.schedules))  # a copy keys on its own values

    def arrays(self) -> tuple[dict[str, Array], dict[str, dict[str, Array]]]:
        """The hyperparameters, and the values of each fnn schedule, as arrays."""
        dtype = self.spec.dtype or scalar_dtype()
        hp = {name: _as_array(v, dtype) for name, v in self.values}
        # in the dtype the schedule computes in, cast as it casts a Python float: the same bits
        floats = scalar_dtype()
        values = {
            name: {k: jax.device_put(np.asarray(v, floats)) for k, v in schedule.as_data()[1].items()}
            for name, schedule in self.schedules
            if isinstance(schedule, ScheduleFunction)
        }
        return hp, values

    def __call__(self, params: Params) -> InjectHyperparamsState:
        return _init_from_arrays(self.spec, params, self.arrays())

    def visit_inner(self, visit: Callable[[GradientTransformation], None]) -> None:
        """``visit(transform)`` with the transform this injection builds, from the values it was
        built with; inside an abstract trace where it has schedules (their values at step 0,
        traced), as the constructor builds it, so nothing of it outlives the call."""
        values = dict(self.values)

        def build() -> int:
            visit(self.spec.build({**values, **{n: _traced(n, s) for n, s in self.schedules}}))
            return 0

        if self.schedules:
            jax.eval_shape(build)
        else:
            build()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InjectInit) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"inject_init({getattr(self.spec.factory, '__name__', 'factory')}, {dict(self.values)})"


def _inject_update(
    spec: _Spec, updates: Updates, state: InjectHyperparamsState, params: Params = None, **extra_args: Any
) -> tuple[Updates, InjectHyperparamsState]:
    check_like(updates, params, "params")  # the optimizer's entry: name the user's grads
    updates, state, params = native_args(updates, state, params)
    _check_state(spec, state)
    if not all(isinstance(v, jax.Array) for v in state.hparams.values()):
        # NumPy values (a state read back with jax.device_get) as jax arrays: a factory given
        # them builds what it builds from the arrays of init's state (a nested injection's tree)
        state = state._replace(
            hparams={k: v if isinstance(v, jax.Array) else jnp.asarray(v) for k, v in state.hparams.items()}
        )
    inner = spec.build(state.hparams)
    like = updates if params is None else params
    inner_state = with_factory_values(spec, state.hparams, state.inner_state, like, state.count)
    # optax's rule: extra arguments (value=...) reach the transform if it takes them
    extra = extra_args if extra_args and takes_extra_args(inner) else {}
    try:
        updates, inner_state = inner.update(updates, inner_state, params, **extra)
    except (TypeError, AttributeError) as e:
        # another optimizer's state of the same hyperparameters (adamw's for adam), which fails
        # deep inside: named as such (a state of the right structure fails as it fails; fnn's
        # own ValueErrors, updates of another structure than the state's, name what they found)
        if _same_structure(inner, like, inner_state):
            raise
        raise ValueError(
            "update: the state's inner_state is not the one this optimizer's init builds"
            f"{'' if params is not None else ' for updates of this structure'}: {_REBUILD}"
        ) from e
    count = state.count + 1
    hp = dict(state.hparams)
    for name, rule in spec.schedules:
        value = _scheduled(rule, count, state.schedule_values, name)
        hp[name] = jnp.asarray(value, hp[name].dtype) * state.scales[name]
    return updates, state._replace(count=count, hparams=hp, inner_state=inner_state)


_REBUILD = "another optimizer's state, or one of other options? build it with opt.init(params)"


def _same_structure(inner: GradientTransformation, like: Any, inner_state: Any) -> bool:
    try:
        return bool(tree_structure(jax.eval_shape(inner.init, like)) == tree_structure(inner_state))
    except Exception:  # no structure to compare with: the update's own error stands
        return True


def _check_state(spec: _Spec, state: Any) -> None:
    """``state`` must be this optimizer's (another one's fails deep inside the factory): an
    :class:`InjectHyperparamsState` holding its hyperparameters, no more, no fewer, and its
    schedules' factors and values."""
    if not isinstance(state, InjectHyperparamsState):
        raise ValueError(
            f"update: the state must be what this optimizer's init builds (an InjectHyperparamsState), got "
            f"{type(state).__name__}: {_REBUILD}"
        )
    init_only = {n for n, _ in spec.init_only}
    want = (set(spec.numeric) | {n for n, _ in spec.schedules}) - init_only
    got = set(map(str, state.hparams))
    if got != want:
        raise ValueError(
            f"update: the state holds the hyperparameters {sorted(got)}, this optimizer {sorted(want)}: {_REBUILD}"
        )
    for name, rule in spec.schedules:
        if name not in state.scales or (isinstance(rule, ScheduleRule) and name not in state.schedule_values):
            raise ValueError(f"update: {name} follows a schedule here, and the state holds none for it: {_REBUILD}")


def _traced(name: str, schedule: Callable) -> Any:
    """``schedule`` at step 0, traced: each update evaluates it under jit with the step count an
    abstract array, so Python control flow on the step cannot run there."""
    shown = getattr(schedule, "__name__", schedule)
    if inspect.isfunction(schedule) and schedule.__module__.startswith("fnn.schedules"):
        # the factory itself (adam(fnn.schedules.cosine_decay)): it would fail on its own arguments
        raise TypeError(
            f"{name}: fnn.schedules.{shown} builds a schedule; call it with its arguments "
            f"({name}=fnn.schedules.{shown}(...)) and give the schedule it returns"
        )
    try:
        inspect.signature(schedule).bind(0)
    except TypeError:
        raise TypeError(
            f"{name}: a schedule is called with the step count alone, schedule(step); {shown!r} takes "
            f"{inspect.signature(schedule)}"
        ) from None
    except ValueError:  # no signature to read (a builtin): its call says
        pass
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
    with the state's arrays. The ``update`` passes optax's extra keyword arguments
    (``value=``...) to the transform if it takes them.

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
    return injected(factory, static_args=static_args, hyperparam_dtype=hyperparam_dtype)


def injected(
    factory: Callable[..., GradientTransformation],
    *,
    static_args: Iterable[str] = (),
    init_args: Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., GradientTransformation]:
    """:func:`inject_hyperparams`, and ``init_args``: names of ``factory``'s arguments that only
    its ``init`` reads (a value a state buffer starts from, as adagrad's
    ``initial_accumulator_value``). Their values are ``init``'s, inputs of its compiled template
    like the hyperparameters', and held nowhere in the state (setting one later could not change
    the buffer it filled); the update builds ``factory`` with their defaults, so optimizers that
    differ only in them share ``update`` and every program compiled on it."""
    if not callable(factory):
        raise TypeError(f"inject_hyperparams: factory must be callable, got {factory!r}")
    signature = inspect.signature(factory)
    keep_static = frozenset(static_args)
    init_only = tuple((name, signature.parameters[name].default) for name in init_args)

    def build(*args: Any, **kwargs: Any) -> GradientTransformation:
        try:
            arguments = signature.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{getattr(factory, '__name__', 'factory')}: {e}") from None
        arguments.apply_defaults()
        numeric, schedules, static = {}, {}, {}
        for name, value in arguments.arguments.items():
            if name in keep_static or (name in dict(init_only) and not is_real_number(value)):
                static[name] = value
            elif is_real_number(value):
                if not is_traced(value):  # an 8-bit float: already rounded, refused by name
                    check_number_dtype(name, value)
                # fnn's own hyperparameters are real numbers: learning_rate=1 (or jnp.array(1))
                # is held as a float, so that a rate set later (0.5) is not truncated to 0
                dtype = value.dtype if hasattr(value, "dtype") else np.asarray(value).dtype  # not a jax array's values
                real = name in RANGES and not is_traced(value) and np.dtype(dtype).kind in "iu"
                numeric[name] = float(to_host(value)) if real else value
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
        # an fnn schedule's values are the state's: its rule alone is the program's
        rules = {n: s.as_data()[0] if isinstance(s, ScheduleFunction) else s for n, s in schedules.items()}
        spec = _Spec(factory, tuple(static.items()), tuple(rules.items()), tuple(numeric), hyperparam_dtype, init_only)
        init = InjectInit(spec, tuple(numeric.items()), tuple(schedules.items()))
        return GradientTransformation(init, bound(_inject_update, spec))

    build.__name__ = f"inject_hyperparams({getattr(factory, '__name__', 'factory')})"
    build.__doc__ = factory.__doc__
    # factory's own arguments, as help() and an injection of this injection read them (optax's
    # inject_hyperparams(inject_hyperparams(adam)) builds; (*args, **kwargs) bound none)
    setattr(build, "__signature__", signature)  # noqa: B010  (mypy knows no __signature__ on functions)
    return build
