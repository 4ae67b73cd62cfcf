"""What ``fit`` checks of its callbacks before training, where a mistake would otherwise
surface after the first epoch: the log names they watch or write against the logs the run
will have, a learning rate they set against the optimizer state (held, settable, and read by
the optimizer's update after its first step), and a best-only file against
fit's own checkpoint; and, while training, the params and optimizer state a callback puts
into the run's context. An auto-mode callback also learns here which way its metric improves
(Keras 3 learns it at the first epoch's end), or fails."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn import callbacks as callbacks_, optimizers
from fnn._cache import structural_cache, trace_settings
from fnn._dtypes import abstract_array, check_params_dtypes
from fnn._network_checks import signature
from fnn.callbacks._monitor import auto_mode
from fnn.train._checks import listed, tree_differences


def check_against_logs(callbacks: Sequence[Any], metrics: Sequence[Any], validation: bool) -> None:
    """Each callback's log names (ModelCheckpoint's filepath fields, a monitored value) against
    the logs the run will have at its place in the list (``metrics``: the run's, ``validation``:
    whether ``val_*`` entries are logged); an auto-mode monitor takes the direction of its
    metric, or is a ValueError where none is known (``auto_mode``).
    A callback of the user's, or a LambdaCallback, may log anything: the names after it are not
    checked."""
    log_names = {"loss", *(m.name for m in metrics)}
    if validation:
        log_names |= {"val_" + name for name in log_names}
    known = True  # whether log_names is all the logs can hold at this point of the list
    for cb in callbacks:  # a checkpoint name the logs cannot fill fails now, not after an epoch
        if isinstance(cb, callbacks_.ModelCheckpoint) and known:
            cb.check_logs(log_names)
        elif isinstance(cb, callbacks_.ModelCheckpoint):  # the formats of the names known, at least
            cb.check_formats(log_names)
        monitoring = (callbacks_.EarlyStopping, callbacks_.ReduceLROnPlateau, callbacks_.ModelCheckpoint)
        if isinstance(cb, monitoring) and known:  # a metric renamed since (val_auc for "AUC") fails now
            cb.check_monitor(log_names | {"learning_rate"})
        # the metric itself says which way is better; a ModelCheckpoint saving every epoch never
        # compares (Keras 3 would still refuse its monitor)
        reads = not isinstance(cb, callbacks_.ModelCheckpoint) or cb.save_best_only
        if isinstance(cb, (*monitoring, callbacks_.StopAtThreshold)) and cb.auto_mode and reads:
            cb.mode = auto_mode(type(cb).__name__, cb.monitor, metrics)
        if isinstance(cb, (callbacks_.ReduceLROnPlateau, callbacks_.LearningRateScheduler)):
            log_names = log_names | {"learning_rate"}  # logged from here on, for the callbacks after it
        elif _may_log(cb):
            known = False  # a callback of the user's may log anything: its names show at the epoch's end


def _may_log(cb: Any) -> bool:
    """Whether ``cb`` may add names to an epoch's logs: a callback of the user's, or a
    LambdaCallback with a function for the epoch's end (the names it adds are logged)."""
    if isinstance(cb, callbacks_.LambdaCallback):
        return cb.fn is not None or "on_epoch_end" in cb.hooks
    return not type(cb).__module__.startswith("fnn.")


def check_learning_rate_held(who: str, template: Any) -> None:
    """A callback that sets the learning rate (``who``) needs an optimizer state that holds
    one, settable: checked on the abstract state before training, where it would fail after
    the first epoch."""
    try:
        held = jax.eval_shape(optimizers.get_learning_rate, template)
    except ValueError as e:
        raise ValueError(
            f"{who} sets the learning rate, but {e}: use a named optimizer ('adam', fnn.optimizers.adam(1e-3)), "
            "build yours with fnn.optimizers.inject_hyperparams (e.g. inject_hyperparams(lambda learning_rate: "
            "fnn.optimizers.chain(fnn.optimizers.scale_by_adam(), fnn.optimizers.scale_by_learning_rate("
            "learning_rate)))(learning_rate=1e-3)), or an optax one with optax.inject_hyperparams(optax.adam)"
            "(learning_rate=1e-3)"
        ) from None
    if not jnp.issubdtype(held.dtype, jnp.floating):  # a rate set later (0.5) could not be held
        raise ValueError(
            f"{who} sets the learning rate, but the optimizer state holds it as {held.dtype} (built with an "
            "integer learning_rate): build the optimizer with a float, e.g. learning_rate=1.0"
        )
    try:  # traced: the value is the state's own, only where it can be set is checked
        jax.eval_shape(lambda s: optimizers.set_learning_rate(s, optimizers.get_learning_rate(s)), template)
    except ValueError as e:
        raise ValueError(f"{who} sets the learning rate, but {e}") from None


def warn_if_learning_rate_unread(who: str, opt: Any, params: Any) -> None:
    """A UserWarning (at fit's caller) where a callback that sets the learning rate (``who``)
    would change nothing: ``opt``'s update reads the rate only at its first step or not at all
    (rprop's seeds its step sizes, as in PyTorch; a chain of the user's may not read it). The
    history would log the rate set while the params stay those of a run without the callback.
    Probed, not named: one compiled program on one-element arrays of the params' structure and
    dtypes, cached on the optimizer's update and state structure (an optimizer of the same
    family with other values reads the rate as this one does); only fits with such a callback
    pay it."""
    treedef, leaves = signature(params)
    kinds = tuple((len(shape), dtype) for shape, dtype in leaves)
    shapes = _one_element_arrays(treedef, kinds)
    try:
        state = signature(jax.eval_shape(opt.init, shapes))
    except (TypeError, ValueError):  # as the probe's own failure below: the rate counts as read
        return
    if _reads_learning_rate(_ByUpdate(opt), state, treedef, kinds, trace_settings()):
        return
    shown = repr(opt)
    name = shown if len(shown) <= 120 and "<" not in shown else "the optimizer"
    warnings.warn(
        f"fit: {who} sets the learning rate, but the update of {name} reads it only at its first step or "
        "not at all (rprop's learning_rate only seeds its step sizes, read once after init, as in PyTorch): "
        "setting it later changes nothing but the learning_rate logged in the history; give the optimizer "
        "the rate it should use when building it, and drop the callback",
        UserWarning,
        stacklevel=4,
    )


def _one_element_arrays(treedef: Any, kinds: tuple) -> Any:
    """The params' structure as abstract arrays of one element, of each leaf's rank and dtype."""
    return jax.tree.unflatten(treedef, [abstract_array((1,) * ndim, dtype) for ndim, dtype in kinds])


class _ByUpdate:
    """An optimizer compared by its ``update`` alone: whether the update reads the rate it is
    set is the update's (and its state structure's) doing, not its values' (an ``adam(2e-3)``
    answers as ``adam(1e-3)`` does, and is not probed again)."""

    __slots__ = ("opt",)

    def __init__(self, opt: Any) -> None:
        self.opt = opt

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ByUpdate) and self.opt.update == other.opt.update

    def __hash__(self) -> int:
        return hash(self.opt.update)


# Cached: the probe compiles one small program (~0.2 s on 2 cores) per update and structure.
@structural_cache(maxsize=64)
def _reads_learning_rate(probed: _ByUpdate, state: Any, treedef: Any, kinds: tuple, settings: tuple) -> bool:
    """Whether ``opt``'s updates after its first step change with the learning rate set in its
    state: two more steps at each of two rates, from params and gradients of ones (nonzero:
    every rule moves them). Where the probe cannot run, or its results are not finite (a
    schedule warming up from 0 cannot be set), the rate counts as read: no warning. ``state``:
    the structure of the state ``opt.init`` builds, part of the key only."""
    opt = probed.opt
    shapes = _one_element_arrays(treedef, kinds)
    try:
        a, b = jax.jit(functools.partial(_probe, opt, shapes))()
    except (TypeError, ValueError):  # (under jit nothing of set_learning_rate's checks raises)
        return True
    a, b = jax.device_get((a, b))  # one explicit transfer: a caller's transfer guard allows it
    a, b = (np.concatenate([np.ravel(u) for u in jax.tree.leaves(t)]) for t in (a, b))
    return not (np.isfinite(a).all() and np.array_equal(a, b))


def _probe(opt: Any, shapes: Any) -> tuple[Any, Any]:
    params = jax.tree.map(lambda s: jnp.ones(s.shape, s.dtype), shapes)
    _, state = opt.update(params, opt.init(params), params)  # the first step, which may read the rate

    def after(rate: float) -> Any:
        u1, s = opt.update(params, optimizers.set_learning_rate(state, rate), params)
        u2, _ = opt.update(params, s, params)  # a rate held in the state only for the next step, read
        return u1, u2

    return after(1e-3), after(2e-3)


def check_not_a_best_file(checkpoint: str, callbacks: Sequence[Any]) -> None:
    """fit writes its ``checkpoint`` after every epoch: a ModelCheckpoint's ``save_best_only``
    file as that path would lose its best epoch to the last one, a ``save_weights_only`` file
    its params-only form to a whole checkpoint. A filepath with fields is matched as a
    template (``best-{epoch:02d}.npz`` refuses ``best-02.npz``: see ``could_write``)."""
    for cb in callbacks:
        if (
            isinstance(cb, callbacks_.ModelCheckpoint)
            and (cb.save_best_only or cb.save_weights_only)
            and cb.could_write(checkpoint)
        ):
            what = f"checkpoint {checkpoint!r} is ModelCheckpoint's"
            shown = f" (its filepath {cb.filepath!r} can write that name)" if cb.fields else ""
            if cb.save_best_only:
                raise ValueError(
                    f"{what} save_best_only file{shown}: fit writes its "
                    "checkpoint there after every epoch, over the best one; resume from a copy of it "
                    "(shutil.copy(best, 'run.npz'); fit(..., checkpoint='run.npz'))"
                )
            raise ValueError(
                f"{what} save_weights_only file{shown}: fit writes its whole "
                "checkpoint there after every epoch, over the params-only one; give fit's checkpoint another path"
            )


def set_by_callbacks(callbacks: Sequence[Any], saved: Any) -> tuple[str, ...]:
    """The hyperparameters a run's callbacks set (``callbacks``: this run's; ``saved``: those a
    checkpoint holds the state of, by class name): a checkpoint's values of them are the
    callbacks' doing (ReduceLROnPlateau's reductions), not a setting to warn of."""
    setters = (callbacks_.ReduceLROnPlateau, callbacks_.LearningRateScheduler)
    names = {entry.get("class") for entry in saved if isinstance(entry, dict)} if isinstance(saved, list) else set()
    if any(isinstance(cb, setters) for cb in callbacks) or names & {c.__name__ for c in setters}:
        return ("learning_rate",)
    return ()


def replaced_state_check(stop_on_nan: bool) -> Callable[[Any, tuple, str], None]:
    """fit's check of what a callback's hook (``who``) put into ``ctx.params`` or
    ``ctx.opt_state``, run only where one was replaced (:class:`fnn.callbacks.CallbackList`
    compares identities): params of floating dtypes, and with the structure, shapes and dtypes
    of those they replace (the run's, which the epoch is compiled for); finite too with
    ``stop_on_nan`` (TerminateOnNaN: fit keeps only finite params); a state with the structure,
    shapes and dtypes of the one it replaces (``opt.init(params)``'s, as a given ``opt_state``
    is checked), not another optimizer's or None."""

    def check(ctx: Any, held: tuple, who: str) -> None:
        params, opt_state = held
        keeps = "a callback may change {0} values, not {0} structure, shapes or dtypes (the epoch is compiled for {1})"
        if ctx.params is not params:
            try:
                check_params_dtypes(ctx.params, "ctx.params")
            except TypeError as e:
                raise TypeError(f"{who} set {e}") from None
            _, diffs = tree_differences(ctx.params, params, "ctx.params", "the run's params have")
            if diffs:
                mismatch = f"ctx.params that do not match the run's params ({listed(diffs)})"
                raise ValueError(f"{who} set {mismatch}: {keeps.format('their', 'them')}")
            if stop_on_nan:
                for path, leaf in jax.tree_util.tree_flatten_with_path(ctx.params)[0]:
                    if not np.isfinite(np.asarray(leaf)).all():
                        raise ValueError(
                            f"{who} set ctx.params holding NaN or inf (ctx.params{jax.tree_util.keystr(path)}): "
                            "with TerminateOnNaN fit keeps and returns only finite params"
                        )
        if ctx.opt_state is not opt_state:
            structure, diffs = tree_differences(ctx.opt_state, opt_state, "ctx.opt_state", "opt.init(params) builds")
            if structure or diffs:
                what = "another optimizer's state" if structure else "a state"
                differs = f"{what}, which does not match opt.init(params) ({listed(diffs)})"
                raise ValueError(
                    f"{who} set ctx.opt_state to {'None' if ctx.opt_state is None else differs}: "
                    f"{keeps.format('its', 'it')}; set a learning rate with fnn.optimizers.set_learning_rate"
                )

    return check
