"""The checks ``fit``, ``fit_many`` and ``evaluate`` make of their arguments before anything is
compiled: the settings, the loss and the optimizer, the params' dtypes, the optimizer state
against the optimizer and its schedules over the run. Every failure is a ValueError or
TypeError naming the argument. The data's checks are ``fnn.train._data_checks``, the traced ones
against the network ``fnn._network_checks``, fit's callbacks' against the run
``fnn.train._callback_checks``; the order ``fit`` makes them all in, ``fnn.train._fit_checks``.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection
from typing import Any, cast

import jax
import numpy as np

from fnn import losses, optimizers
from fnn._cache import structural_cache, trace_settings
from fnn._dtypes import check_params_dtypes as check_params_dtypes
from fnn._network_checks import abstract, check_64bit_arrays, signature
from fnn._validate import boolean, choice, integer, is_traced, real, unbindable
from fnn._values import bound
from fnn.grad import MODES
from fnn.layers._errors import gradient_dtype_fits
from fnn.optimizers._alias import as_optimizer
from fnn.optimizers._held import held_schedules
from fnn.optimizers._hyperparams import check_value
from fnn.schedules._base import ScheduleFunction, ScheduleRule


def check_grad(grad: Any) -> str:
    return choice("grad", grad, MODES)


def resolve_loss(loss: Any) -> Any:
    """A loss name becomes an :class:`fnn.losses.Loss`; a Loss or a callable passes through."""
    if isinstance(loss, str):
        return losses.get(loss)
    if not callable(loss):
        raise TypeError(
            f"loss must be a loss name or an fnn.losses.Loss, got {type(loss).__name__} "
            "(or a callable (y_true, y_pred) -> loss, trained with grad='autodiff')"
        )
    return loss


def check_settings(
    grad: Any, loss: Any, opt: Any, batch_size: Any, epochs: Any, unroll: Any, validation_split: Any, verbose: Any
) -> tuple[Any, int]:
    """Checks the settings ``fit`` and ``fit_many`` share; returns the resolved loss and batch size."""
    check_grad(grad)
    loss = resolve_loss(loss)
    if grad == "manual" and not isinstance(loss, losses.Loss):
        raise TypeError(
            "loss must be a loss name or an fnn.losses.Loss (which carries its hand-written gradient) "
            f"for grad='manual'; got {type(loss).__name__}. Plain callables train with grad='autodiff'."
        )
    resolve_opt(opt)
    batch_size = integer("batch_size", 32 if batch_size is None else batch_size, 1)
    integer("epochs", epochs, 0)
    if unroll is not None:
        integer("unroll", unroll, 1)
    real("validation_split", validation_split, 0.0, 1.0, hi_open=True, what="a float in [0, 1)")
    choice("verbose", verbose, (0, 1, 2))
    return loss, batch_size


def check_shuffle(shuffle: Any) -> bool:
    return boolean("shuffle", shuffle)


def resolve_opt(opt: Any) -> Any:
    """An optimizer name (``"adam"``, as Keras accepts) becomes ``fnn.optimizers.get(name)``
    with its default hyperparameters; a GradientTransformation passes through, and a plain
    ``(init, update)`` pair of callables (an optimizer is that pair), or an object with ``init``
    and ``update`` methods (``optax.MultiSteps``), is wrapped in one."""
    if isinstance(opt, str):
        return optimizers.get(opt)
    opt = as_optimizer(opt, "opt")  # the rule fnn.optimizers.get keeps
    return opt if isinstance(opt, tuple) else optimizers.GradientTransformation(opt.init, opt.update)


def _shape_dtype(leaf: Any) -> tuple[tuple, np.dtype]:
    """An array's, a ShapeDtypeStruct's or a Python number's shape and dtype."""
    # leaf.dtype as it is: a typed PRNG key's (key<fry>) is no NumPy dtype
    return tuple(np.shape(leaf)), leaf.dtype if hasattr(leaf, "dtype") else np.asarray(leaf).dtype


def tree_differences(
    got: Any, want: Any, name: str, builds: str, models: int | None = None, dtypes: bool = True
) -> tuple[bool, list[str]]:
    """How the tree ``got`` (called ``name``) differs from ``want`` (which ``builds`` names):
    ``(True, the missing and unexpected paths)`` where the structures differ, else ``(False,
    the leaves of another shape, or with ``dtypes`` another dtype)``; no differences: ``(False,
    [])``. ``models``: ``got`` is stacked over that many models (its leading axis is skipped)."""
    got_leaves, got_def = jax.tree_util.tree_flatten_with_path(got)
    want_leaves, want_def = jax.tree_util.tree_flatten_with_path(want)
    if cast(Any, got_def) != want_def:
        got_paths = {jax.tree_util.keystr(p) for p, _ in got_leaves}
        want_paths = {jax.tree_util.keystr(p) for p, _ in want_leaves}
        detail = [f"missing {name}{p}" for p in sorted(want_paths - got_paths)][:4]
        detail += [f"unexpected {name}{p}" for p in sorted(got_paths - want_paths)][:4]
        return True, detail or [f"structure {got_def} vs {want_def}"]
    diffs = []
    for (path, a), (_, w) in zip(got_leaves, want_leaves, strict=True):
        (shape, dtype), (w_shape, w_dtype) = _shape_dtype(a), _shape_dtype(w)
        shape = shape[0 if models is None else 1 :]
        if shape != w_shape:
            diffs.append(f"{name}{jax.tree_util.keystr(path)} has shape {shape}, {builds} {w_shape}")
        elif dtypes and dtype != w_dtype and not getattr(w, "weak_type", False):  # a Python number's: any float
            diffs.append(f"{name}{jax.tree_util.keystr(path)} has dtype {dtype}, {builds} {w_dtype}")
    return False, diffs


def listed(diffs: list[str]) -> str:
    return "; ".join(diffs[:4]) + (f"; and {len(diffs) - 4} more" if len(diffs) > 4 else "")


def check_opt_state(opt: Any, params: Any, opt_state: Any, name: str = "opt_state", models: int | None = None) -> None:
    """``opt_state`` must be what ``opt.init(params)`` builds: the same structure (another
    optimizer's state is named as such), shapes and dtypes. ``models``: stacked over that many
    models (fit_many)."""
    want = opt_state_shape(opt, params)
    structure, diffs = tree_differences(opt_state, want, name, "opt.init(params) builds", models)
    if structure:
        raise ValueError(
            f"{name} does not match opt.init(params): another optimizer's state, or one initialised with other "
            f"params ({'; '.join(diffs)}); pass opt_state=None to start afresh"
        )
    check_64bit_arrays(opt_state, name)  # its dtypes differ for that reason: said so
    if diffs:
        raise ValueError(
            f"{name} does not match opt.init(params) (a state built for params of other shapes or dtypes): "
            + listed(diffs)
        )


def opt_state_shape(opt: Any, params: Any) -> Any:
    """``jax.eval_shape(opt.init, params)``, cached on ``opt.init``, the params' abstract values
    and the settings a trace reads: a second fit or sweep of the same shapes traces nothing."""
    leaves, treedef = jax.tree.flatten(params)
    try:
        avals = tuple(jax.typeof(leaf) for leaf in leaves)
    except TypeError:  # a leaf JAX holds no abstract value of: traced as given, to fail as it fails
        return jax.eval_shape(opt.init, params)
    return _opt_state_shape(opt.init, treedef, avals, trace_settings())


@structural_cache(maxsize=64)
def _opt_state_shape(init: Any, treedef: Any, avals: tuple, settings: tuple) -> Any:
    like = [jax.ShapeDtypeStruct(a.shape, a.dtype, weak_type=a.weak_type) for a in avals]
    return jax.eval_shape(init, jax.tree.unflatten(treedef, like))


def _fnn_own(value: Any) -> bool:
    """Whether ``value`` (an optimizer's ``init`` or ``update``, or what it was built from) is
    fnn's code all the way down: no callable of the user's, optax's or another library's."""
    if isinstance(value, bound):
        return _fnn_own(value.fn) and all(_fnn_own(v) for v in (*value.args, *value.kwargs.values()))
    if isinstance(value, dict):
        return all(_fnn_own(v) for v in value.values())
    if isinstance(value, (tuple, list)):
        return all(_fnn_own(v) for v in value)
    if not callable(value) or isinstance(value, type):  # numbers, arrays, dtypes, classes: configuration
        return True
    return (getattr(value, "__module__", None) or "").startswith("fnn.")


def _named(fn: Any, part: str) -> str:
    """``opt.update`` with the function's own name where it has one (a user's ``update``)."""
    if isinstance(fn, bound):  # one of fnn's transforms (a chain) holding another's: no name of the user's
        return f"opt.{part}"
    name = getattr(fn, "__qualname__", None) or getattr(getattr(fn, "func", None), "__qualname__", None)
    return f"opt.{part} ({name or type(fn).__name__})"


def _described(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of length {len(value)}"
    if isinstance(value, jax.ShapeDtypeStruct):
        return f"one array of shape {tuple(value.shape)}"
    return "None" if value is None else f"a {type(value).__name__}"


def _check_callable_as(fn: Any, who: str, call: str, n: int, example: str) -> None:
    sig = unbindable(fn, *range(n))  # None also where no signature can be read: the call tells
    if sig is not None:
        required = [p for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY and p.default is p.empty]
        raise TypeError(
            f"{who} must be callable as {call} (the optax protocol fit calls), but its signature is {sig}; "
            f"e.g. {example}" + (f" ({_NO_EXTRA_ARGS})" if required else "")
        )


def check_opt_update(opt: Any, params: Any) -> None:
    """``opt`` must keep the optimizer protocol that training compiles:
    ``update(grads, state, params) -> (updates, new_state)``, ``updates`` shaped like params and
    ``new_state`` like ``opt.init(params)`` (structure, shapes and dtypes: the state is carried
    through a compiled loop). Traced once, nothing runs. fnn's own transforms keep it by
    construction and are not traced (a fit of a named optimizer costs nothing more); the
    others' checks are cached on the optimizer and the params' shapes."""
    if not (_fnn_own(opt.init) and _fnn_own(opt.update)):
        _check_opt_update(opt, signature(params))


_NO_EXTRA_ARGS = (
    "fit passes no extra arguments such as optax's value=; to lower the learning rate when the loss stalls, "
    "use fnn.callbacks.ReduceLROnPlateau"
)


@structural_cache(maxsize=64)  # a check that raises is not cached: it raises again
def _check_opt_update(opt: Any, params_signature: tuple) -> None:
    params = abstract(params_signature)
    init, update = _named(opt.init, "init"), _named(opt.update, "update")
    _check_callable_as(opt.init, init, "init(params)", 1, "def init(params): ...; return state")
    _check_callable_as(
        opt.update,
        update,
        "update(grads, state, params)",
        3,
        "def update(grads, state, params=None): ...; return updates, state",
    )
    state = jax.eval_shape(opt.init, params)
    try:
        out = jax.eval_shape(opt.update, params, state, params)
    except (TypeError, ValueError) as e:  # raised in the optimizer's own code, while traced
        kind = TypeError if isinstance(e, TypeError) else ValueError
        # optax's reduce_on_plateau needs update(..., value=loss): say what fit offers instead
        hint = f" ({_NO_EXTRA_ARGS})" if "keyword-only argument" in str(e) else ""
        raise kind(
            f"{update} fails on grads shaped like params (called as update(grads, state, params)): {e}{hint}"
        ) from e
    returns = "update(grads, state, params) must return the pair (updates, new_state)"
    if cast(Any, jax.tree.structure(out)) == jax.tree.structure(params):
        raise TypeError(f"{update} returned one tree shaped like params: {returns}; return the state too")
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise TypeError(f"{update} returned {_described(out)}: {returns}")
    _, diffs = tree_differences(out[0], params, "updates", "params have", dtypes=False)
    if diffs:
        raise ValueError(
            f"{update} returned updates (its first result) that do not match params: {listed(diffs)} "
            f"({returns}, updates shaped like params)"
        )
    for (path, u), p in zip(jax.tree_util.tree_flatten_with_path(out[0])[0], jax.tree.leaves(params), strict=True):
        if not gradient_dtype_fits(u.dtype, p.dtype):
            raise TypeError(
                f"{update} returned updates{jax.tree_util.keystr(path)} of dtype {u.dtype} for params of dtype "
                f"{p.dtype}: updates must be floating arrays (an integer update has truncated the step)"
            )
    _, diffs = tree_differences(out[1], state, "new_state", "opt.init(params) builds")
    if diffs:
        raise ValueError(
            f"{update} returned a new state (its second result) that does not match the state it was given: "
            f"{listed(diffs)} (the state keeps the structure, shapes and dtypes of opt.init(params) from step "
            "to step: training carries it through a compiled loop)"
        )


def check_schedules(opt: Any, opt_state: Any, updates: int) -> None:
    """The schedules ``opt`` holds (injected hyperparameters', and those of fnn's transforms
    however nested: :func:`held_schedules`) at the steps this run's ``updates`` use: finite,
    and a learning rate >= 0 (a negative one ascends the loss; a NaN one ruins the params).
    The steps count on from the update counts ``opt_state`` holds (None: a fresh state, from 0),
    so a resumed run is checked where it goes on. A schedule is a function of the step, so its
    values are known before training; one that cannot take an array of steps is left to run."""
    schedules = held_schedules(opt) if updates > 0 else []
    if not schedules:
        return
    counts = [np.asarray(jax.device_get(n.count)).reshape(-1) for n in _count_nodes(opt_state)]
    counts_at = np.concatenate(counts) if counts else np.zeros(1, np.int32)
    # several counts (a vmapped state's, or parts' of a chain): every step from the least to the greatest's last
    first, steps = int(counts_at.min()), int(counts_at.max()) - int(counts_at.min()) + updates
    for name, fn, rate in schedules:
        try:
            with np.errstate(all="ignore"):
                values = np.asarray(jax.device_get(_over_steps(fn, first, steps)), dtype=float)
        except Exception:  # a schedule of scalars only (Python control flow on the step)
            continue
        values = np.broadcast_to(values, (steps,)) if values.ndim == 0 else values.reshape(-1)[:steps]
        bad = ~np.isfinite(values) | ((values < 0) if rate else False)
        if bad.any():
            at = first + int(np.argmax(bad))
            raise ValueError(
                f"opt: the {name} schedule gives {float(values[at - first])!r} at step {at} (this run's {updates} "
                f"updates use steps {first}..{first + steps - 1}); {name} must be finite{' and >= 0' if rate else ''}"
            )


def _count_nodes(opt_state: Any) -> list[Any]:
    """The state's nodes that count the updates a schedule's step is: injected hyperparameters'
    and :func:`fnn.optimizers.scale_by_schedule`'s."""
    kinds = (optimizers.InjectHyperparamsState, optimizers.ScaleByScheduleState)
    return [n for n in jax.tree.leaves(opt_state, is_leaf=lambda n: isinstance(n, kinds)) if isinstance(n, kinds)]


def _over_steps(schedule: Any, first: int, steps: int) -> Any:
    """``schedule`` at the steps ``first .. first + steps - 1`` (or more: the caller keeps the
    first ``steps``). An fnn schedule runs as one program per rule and power-of-two count of
    steps, its values and steps inputs (a rule's few operations run eagerly would compile one
    small program each, again for every count of steps); any other callable runs eagerly."""
    if isinstance(schedule, ScheduleFunction):
        rule, values = schedule.as_data()
        at = first + np.arange(1 << max(steps - 1, 0).bit_length(), dtype=np.int64)
        return _rule_over_steps(rule)(np.minimum(at, np.iinfo(np.int32).max).astype(np.int32), values)
    with jax.ensure_compile_time_eval():
        return schedule(np.arange(first, first + steps, dtype=np.int32))


@structural_cache(maxsize=32)
def _rule_over_steps(rule: ScheduleRule) -> Any:
    def schedule_over_steps(steps: Any, values: dict[str, Any]) -> Any:
        return rule(steps, values)

    return jax.jit(schedule_over_steps)


def check_held_hyperparams(opt_state: Any, holder: str) -> dict[str, Any] | None:
    """The hyperparameters ``opt_state`` holds (``holder``: fit's ``opt_state``, a checkpoint)
    are values the optimizers take, as :func:`fnn.optimizers.set_hyperparams` checks a new one:
    a state put together by hand, or a file edited outside fnn, could hold a negative or NaN
    learning rate, which ascends the loss or turns the params into NaN. Returns the values read
    (one transfer), for :func:`warn_if_hyperparams_differ`; None where the state holds none."""
    try:
        held = optimizers.get_hyperparams(opt_state)
    except ValueError:  # (a state of no named optimizer: nothing held to check)
        return None
    host = jax.device_get({k: v for k, v in held.items() if not is_traced(v) and not isinstance(v, bool)})
    for name, value in host.items():
        try:
            check_value(name, value)
        except TypeError:  # not a number: a value of the optimizer's own, not ours to range-check
            continue
        except ValueError as err:
            raise ValueError(
                f"{holder} holds a {name} no optimizer takes ({err}): set it with "
                "fnn.optimizers.set_hyperparams(opt_state, ...), or start from opt_state=None"
            ) from None
    return host


def warn_if_hyperparams_differ(
    opt: Any,
    opt_state: Any,
    holder: str,
    whose: str,
    remedy: str,
    ignore: Collection[str] = (),
    read: dict[str, Any] | None = None,
) -> None:
    """A RuntimeWarning (at fit's caller) naming the hyperparameters ``opt`` was built with that
    ``opt_state`` (what ``holder`` holds: fit's ``opt_state``, a checkpoint, ``whose`` values
    are used) holds other values of, but those in ``ignore``; ``remedy`` says how to change
    them. ``read``: the held values already on the host (:func:`check_held_hyperparams`'s)."""
    differ = hyperparams_differ(opt, opt_state, ignore, read)
    if differ:
        warnings.warn(
            f"fit: {holder} holds {', '.join(differ)}; training continues with {whose} values ({remedy})",
            RuntimeWarning,
            stacklevel=3,
        )


def hyperparams_differ(
    opt: Any, opt_state: Any, ignore: Collection[str] = (), read: dict[str, Any] | None = None
) -> list[str]:
    """The hyperparameters ``opt`` was built with that ``opt_state`` holds other values of, and
    its schedules whose values it holds others of (the state's win: they are the run's,
    ReduceLROnPlateau's reductions included), but those named in ``ignore``."""
    built = dict(getattr(opt.init, "values", ()) or ())
    try:
        held = optimizers.get_hyperparams(opt_state)
    except ValueError:
        return []
    # the scalars held of those opt was built with (a bool, e.g. nesterov, is structure: not held as a value)
    names = [k for k, v in built.items() if k in held and k not in ignore and np.ndim(held[k]) == 0]
    names = [k for k in names if not isinstance(built[k], bool)]
    # read in one transfer: on an accelerator each value read alone is a round trip to the device
    if read is not None and all(k in read for k in names):
        host = read  # read already, by the range check
    else:
        host = jax.device_get({k: held[k] for k in names})
    out = []
    for k in names:
        value = np.asarray(host[k])
        mine = np.asarray(built[k], value.dtype)
        # a checkpoint saved with x64 off holds float32 values, read into float64 with it on
        # (and back): the same value, rounded once in float32
        if float(value) != float(mine) and np.float32(value) != np.float32(built[k]):
            out.append(f"{k}={float(value):.6g} (opt says {float(built[k]):.6g})")
    return out + _schedule_values_differ(opt, opt_state, ignore)


def _schedule_values_differ(opt: Any, opt_state: Any, ignore: Collection[str] = ()) -> list[str]:
    """The fnn schedules of ``opt`` whose values ``opt_state`` holds others of (the state's
    win, as its hyperparameters do: a schedule's numbers are state, its rule alone the program)."""
    node = next((n for n in jax.tree.leaves(opt_state, is_leaf=_is_injected) if _is_injected(n)), None)
    out = []
    for name, schedule in getattr(opt.init, "schedules", ()) or ():
        held = node.schedule_values.get(name) if node is not None else None
        if held is None or name in ignore or not hasattr(schedule, "as_data"):
            continue
        host = jax.device_get(held)  # one transfer (its dict sorted: the schedule's order kept below)
        held = {k: np.asarray(host[k]) for k in held}
        given = schedule.as_data()[1]
        built = {k: np.asarray(v, held[k].dtype) for k, v in given.items()}
        same_shapes = all(held[k].shape == v.shape for k, v in built.items())  # not a vmapped state's
        # the same value rounded once in float32 (a checkpoint saved with x64 off), as for scalars
        same = all(
            np.array_equal(held[k], v) or np.array_equal(held[k].astype(np.float32), np.asarray(given[k], np.float32))
            for k, v in built.items()
        )
        if same_shapes and not same:
            shown = ", ".join(f"{k}={np.array2string(v, precision=6, separator=', ')}" for k, v in held.items())
            out.append(f"{name} schedule values {shown} (opt says {schedule!r})")
    return out


def _is_injected(node: Any) -> bool:
    return isinstance(node, optimizers.InjectHyperparamsState)
