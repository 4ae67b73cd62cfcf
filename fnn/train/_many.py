"""Many models at once: :func:`fit_many` trains K networks in ONE compiled program.

The K models are stacked along a leading axis (params, optimizer states with per-model
hyperparameters, per-model shuffling keys) and trained with ``vmap`` of fit's own epoch,
prepared and looped exactly as :func:`fnn.fit` does, so every model follows ``fit``'s
semantics. :func:`fnn.sweep` (``fnn.train._sweep``) builds them from a grid of seeds and
hyperparameters.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from fnn._dtypes import abstract_array
from fnn._interrupts import ctrl_c_recorded
from fnn._keys import is_typed_key, key_data, raw_key_shape, seed_key
from fnn._native import native, native_tree
from fnn._network_checks import check_64bit_arrays
from fnn._validate import integer
from fnn.layers._errors import misfit_error, misfit_marks
from fnn.metrics._registry import direction as metric_direction
from fnn.train._checks import (
    check_held_hyperparams,
    check_opt_state,
    check_opt_update,
    check_params_dtypes,
    check_schedules,
    resolve_opt,
)
from fnn.train._epoch import epoch_keys
from fnn.train._loop import copy_tree, epoch_inputs, init_state, prepare, run_epochs_queued
from fnn.train._results import History, SweepResult
from fnn.train._sums import logs

Array = jax.Array


@jax.jit
def _split_keys(keys, epoch):
    """fit's per-epoch ``(permutation key, dropout key)`` for each of the K stacked ``keys``."""
    return jax.vmap(epoch_keys, in_axes=(0, None))(keys, epoch)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def unexpected_keyword(function: str, name: str, who: str) -> TypeError:
    """Python's error for a keyword ``function`` does not take; for a mesh, where one goes
    (``who``, as the message names the caller, trains on one device)."""
    hint = f" ({who} trains on one device: fit takes a mesh)" if name in ("mesh", "data_mesh") else ""
    return TypeError(f"{function}() got an unexpected keyword argument {name!r}{hint}")


def _takes_no_mesh(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """``fn`` (its signature kept), a mesh keyword refused saying where one goes: Python's own
    message names no remedy."""

    @functools.wraps(fn)
    def wrapped(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        for name in ("mesh", "data_mesh"):
            if name in kwargs:
                raise unexpected_keyword(fn.__name__, name, fn.__name__)
        return fn(*args, **kwargs)

    return wrapped


def _model(tree, i: int):
    """Model ``i``'s slice of a tree stacked over models (None stays None)."""
    return None if tree is None else jax.tree.map(lambda a: a[i], tree)


def _num_models(tree, name: str = "params") -> int:
    leaves = jax.tree.leaves(tree)
    if not leaves:
        raise ValueError(f"{name} has no arrays")
    sizes = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in leaves}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(
            f"{name} must be stacked: every leaf with the same leading axis of K models "
            f"(e.g. jax.tree.map(lambda *a: jnp.stack(a), *trees)); got leading sizes {sizes}"
        )
    size = sizes.pop()
    assert size is not None
    if size == 0:
        raise ValueError(f"{name} stacks no model: its leaves' leading axis (K, the models) is 0; K >= 1 is needed")
    return int(size)


def stacked_keys(key: Any, k_models: int) -> Array:
    """K keys: one shared key broadcast (the same shuffles and masks), or K stacked keys."""
    if key is None:
        key = seed_key(0)
    key = key if isinstance(key, jax.Array) else jax.device_put(native(np.asarray(key), "key"))
    single = 0 if is_typed_key(key) else 1
    if key.ndim not in (single, single + 1) or (not is_typed_key(key) and key.dtype != np.uint32):
        raise ValueError(f"key must be one PRNG key or K={k_models} stacked keys, got shape {key.shape}")
    if key.ndim == single + 1 and key.shape[0] != k_models:
        raise ValueError(f"key holds {key.shape[0]} keys for {k_models} models")
    if not is_typed_key(key) and key.shape[-1:] != raw_key_shape():
        raise ValueError(
            f"key must be one PRNG key or K={k_models} stacked keys: a raw key is uint32 of shape "
            f"{raw_key_shape()} (jax.random.PRNGKey(seed)), got shape {key.shape}"
        )
    if key.ndim == single + 1:
        return key
    # One key for all: K copies of it, so that both cases run the same compiled program; copied
    # on the host (an eager broadcast compiles a program), put where the key was.
    bits = key_data(key)
    if bits.committed and len(bits.devices()) > 1:  # spread over devices: jax places the copies
        return jnp.broadcast_to(key, (k_models,) + key.shape)
    impl = jax.random.key_impl(key) if single == 0 else None
    copies = np.broadcast_to(np.asarray(jax.device_get(bits)), (k_models,) + bits.shape)
    copies = jax.device_put(copies, next(iter(bits.devices())) if bits.committed else None)
    return copies if impl is None else jax.random.wrap_key_data(copies, impl=impl)


def _checked_configs(configs: Any, k_models: int) -> list[dict]:
    """K copies of the ``configs`` dicts (K empty ones for None), refused before anything
    trains: the result would be lost to a mistake found when it is returned."""
    if configs is None:
        return [{} for _ in range(k_models)]
    if not isinstance(configs, Sequence) or isinstance(configs, (str, bytes)):
        raise TypeError(f"configs must be a list of K={k_models} dicts, got {type(configs).__name__}")
    if len(configs) != k_models:
        raise ValueError(f"configs must have one entry per model ({k_models}), got {len(configs)}")
    for i, c in enumerate(configs):
        if not isinstance(c, Mapping):
            raise TypeError(f"configs[{i}] must be a dict (model {i}'s settings), got {type(c).__name__}")
    return [dict(c) for c in configs]


@_takes_no_mesh
def fit_many(
    net: Any,
    params: Any,
    opt: Any,
    loss: Any,
    x: Any,
    y: Any,
    *,
    key: Array | None = None,
    opt_state: Any = None,
    batch_size: int | None = 32,
    epochs: int = 1,
    initial_epoch: int = 0,
    shuffle: bool = True,
    validation_split: float = 0.0,
    validation_data: tuple | None = None,
    validation_batch_size: int | None = None,
    metrics: Sequence = (),
    weighted_metrics: Sequence = (),
    grad: str = "manual",
    verbose: int = 0,
    unroll: int | None = None,
    configs: Sequence[dict] | None = None,
) -> SweepResult:
    """Trains K models at once on the same data: ``fit``'s compiled epoch under ``jax.vmap``, one
    program for all K.

    ``params`` is stacked (each leaf has a leading axis of K models); ``opt_state`` (default
    ``vmap(opt.init)(params)``) carries each model's hyperparameters as arrays, so models may
    differ in learning rate, weight decay... (see :func:`sweep`). ``key`` is one PRNG key shared
    by all models (the same shuffles and dropout masks) or K stacked keys. Model i's params and
    history equal ``fit(net, params[i], opt, loss, x, y, key=key[i], opt_state=opt_state[i],
    ...)`` with the same settings (no callbacks; ``initial_epoch`` too) up to float rounding,
    for every kind of JAX key (threefry, JAX's default, and ``rbg`` / ``unsafe_rbg``, typed or
    raw): fnn's own draws (shuffles, Dropout, the epochs' and layers' keys) take each model's
    from its own key. A layer of your own that draws with ``jax.random`` follows JAX's ``vmap``
    there: per key for threefry keys, but for rbg and unsafe_rbg keys JAX draws all K models'
    values from the first model's key, so such a model differs from its fit. ``verbose=1`` prints one line per epoch
    (the spread of the models' losses).

    To continue a run (a :func:`sweep`'s too), pass its result's ``params`` and ``opt_state``,
    the same keys, and ``initial_epoch`` = the epochs done: epoch ``e`` draws its sample order
    and Dropout keys from ``fold_in(key, e)``, so the continued models equal those trained
    without a stop (a second call without ``initial_epoch`` would draw epoch 0's orders again).

    Every model trains for all ``epochs`` (there are no callbacks, checkpoints, sample weights
    or meshes here: use :func:`fit` for those); a model whose loss turns non-finite keeps
    training without a warning, and :meth:`SweepResult.best` ranks it last. The data is checked
    once, as :func:`fit` checks it, before anything is compiled.

    Args:
        net: The network, shared by the K models.
        params: The K models' initial parameters, stacked: each leaf of one model's params
            with a leading axis of K (``jax.tree.map(lambda *a: jnp.stack(a), *trees)``).
        opt: An optimizer (GradientTransformation) or an optimizer name, as in :func:`fit`.
        loss: A loss name, an :class:`fnn.losses.Loss`, or with ``grad="autodiff"`` a callable
            returning the batch's loss, a scalar, as in :func:`fit`.
        x: Inputs ``(N, *input_shape)``, shared by the K models.
        y: Targets with ``N`` rows.
        key: One PRNG key (every model gets the same shuffles and Dropout masks), K stacked
            keys ``(K, ...)``, or None (``PRNGKey(0)`` for all).
        opt_state: The K optimizer states, stacked, each what ``opt.init`` builds for one
            model (None: ``vmap(opt.init)(params)``, every model with ``opt``'s values).
        batch_size: As in :func:`fit` (None: 32).
        epochs: The epoch to end at, an int >= 0 (as in :func:`fit`: the epochs run are
            ``initial_epoch`` to ``epochs - 1``).
        initial_epoch: The epoch to start at, an int >= 0 (epochs before it are not run; the
            histories count from it).
        shuffle: Draw a new sample order each epoch (per model, from its key).
        validation_split: As in :func:`fit`: the last fraction of the samples held out.
        validation_data: ``(x_val, y_val)`` (or with ``sample_weight_val``), as in :func:`fit`.
        validation_batch_size: As in :func:`fit`.
        metrics: As in :func:`fit`; every model logs them.
        weighted_metrics: As in :func:`fit`: weighted by the validation data's weights (its
            third element), the only sample weights here.
        grad: ``"manual"`` or ``"autodiff"``.
        verbose: 0 silent; 1 or 2 one line per epoch with the min / median / max of the
            models' losses.
        unroll: As in :func:`fit`.
        configs: K dicts describing the models, returned in :attr:`SweepResult.configs`
            (None: K empty dicts).

    Returns:
        A :class:`SweepResult`: the stacked params and optimizer states, K histories, and the
        configs.

    Raises:
        TypeError: For an argument of the wrong type, as :func:`fit` names it (``opt``,
            ``loss``, non-floating params, non-int sizes, non-numeric data...); a ``mesh``
            (the K models train on one device: :func:`fit` takes a mesh); ``configs`` that are
            not a list of dicts.
        ValueError: For the bad values :func:`fit` refuses; params that are not stacked (a
            leaf without the common leading axis, or no arrays at all); an ``opt_state`` not
            stacked over the same K models or not matching ``opt.init``; a ``key`` that is
            neither one key nor K keys (a raw key of another shape than the default kind's);
            ``configs`` not of length K. Each before anything trains.

    Examples:
        >>> import fnn, jax, jax.numpy as jnp, numpy as np
        >>> net = fnn.mlp([1])
        >>> k0, k1 = jax.random.split(jax.random.PRNGKey(0))
        >>> stacked = jax.tree.map(lambda *a: jnp.stack(a), net.init(k0, (3,)), net.init(k1, (3,)))
        >>> x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(8, 3)
        >>> y = x.sum(axis=1, keepdims=True)
        >>> result = fnn.fit_many(net, stacked, "sgd", "mse", x, y, batch_size=4, epochs=1)
        >>> result.params[0]["w"].shape, len(result.histories), result.histories[1].epochs
        ((2, 3, 1), 2, [0])
    """
    # a Ctrl-C that Python drops (in JAX's gc callback) still ends the run, as in fit
    with ctrl_c_recorded():
        settings = dict(
            grad=grad, batch_size=batch_size, unroll=unroll, shuffle=shuffle, validation_split=validation_split,
            validation_data=validation_data, validation_batch_size=validation_batch_size, metrics=metrics,
            weighted_metrics=weighted_metrics,
        )  # fmt: skip
        initial_epoch = integer("initial_epoch", initial_epoch, 0)
        run, opt, params, opt_state, k_models = prepare_models(
            net, params, opt, loss, x, y, opt_state, epochs, initial_epoch, verbose, settings
        )
        keys = stacked_keys(key, k_models)
        configs = _checked_configs(configs, k_models)

        params = copy_tree(params)
        opt_state = init_state(opt, params, models=True) if opt_state is None else copy_tree(opt_state)
        histories = new_histories(run, k_models)
        inputs = models_inputs(run, net, keys, epochs)

        def end(epoch, bad, sums, val, seconds):
            record(histories, run, epoch, sums, val, seconds)
            if verbose:
                last = np.array([h["loss"][-1] for h in histories])
                ok = last[np.isfinite(last)]
                spread = f"min {ok.min():.4g} / median {np.median(ok):.4g} / max {ok.max():.4g}" if ok.size else "-"
                print(
                    f"Epoch {epoch + 1}/{epochs} - {k_models} models - {seconds:.2f}s - loss {spread}"
                    + (f" ({last.size - ok.size} non-finite)" if ok.size < last.size else ""),
                    flush=True,
                )

        # nothing between epochs reads or changes the state (no callbacks): each epoch is queued
        # before the previous one is recorded
        params, opt_state = run_epochs_queued(
            run, params, opt_state, epochs=epochs, initial_epoch=initial_epoch, inputs=inputs, end=end
        )
        return SweepResult(params, opt_state, histories, configs)


def prepare_models(
    net: Any,
    params: Any,
    opt: Any,
    loss: Any,
    x: Any,
    y: Any,
    opt_state: Any,
    epochs: Any,
    initial_epoch: int,
    verbose: Any,
    settings: dict,
) -> tuple[Any, Any, Any, Any, int]:
    """fit_many's checks and preparation, everything refused before anything compiles: ``(run,
    opt, params, opt_state, K)``, ``run`` the prepared epoch vmapped over the K stacked models,
    ``opt`` resolved, params and state as native arrays."""
    opt = resolve_opt(opt)
    params, opt_state = native_tree(params, "params"), native_tree(opt_state, "opt_state")
    check_params_dtypes(params)
    check_64bit_arrays(params)  # the stacked arrays: the checks on the network see one model's shapes
    k_models = _num_models(params)
    one_model = jax.tree.map(lambda a: abstract_array(np.shape(a)[1:], a.dtype), params)  # shapes only
    if opt_state is not None:
        if _num_models(opt_state, "opt_state") != k_models:
            raise ValueError(f"opt_state must be stacked over the same {k_models} models as params")
        check_opt_state(opt, one_model, opt_state, models=k_models)
        check_held_hyperparams(opt_state, "fit_many: opt_state")
    check_opt_update(opt, one_model)
    try:
        run = prepare(net, one_model, opt, loss, x, y, epochs=epochs, verbose=verbose, models=True, **settings)
    except ValueError as e:
        params_named, x_said = misfit_marks(e)
        if not params_named:
            raise
        # the checks saw one model's slice: the user's leaves have the models' axis too
        raise misfit_error(
            f"{e} (shapes per model: each stacked leaf holds the {k_models} models along its first axis)",
            params_named=True,
            x_said=x_said,
        ) from None
    # every model's steps, as fit's
    check_schedules(opt, opt_state, max(epochs - initial_epoch, 0) * run.iterations_per_epoch)
    return run, opt, params, opt_state, k_models


def new_histories(run: Any, k_models: int) -> list[History]:
    """K empty histories of ``run``'s iterations, knowing its metrics' directions."""
    histories = [History(run.iterations_per_epoch) for _ in range(k_models)]
    for h in histories:  # what best(mode="auto") reads: the metrics' own ways, not their names
        h.directions = {m.name: metric_direction(m) for m in run.metrics}
    return histories


def models_inputs(run: Any, net: Any, keys: Array, epochs: int) -> Callable:
    """fit's per-epoch (perm, dropout key) for each of K models: the (K, n) orders drawn on the
    host as fit draws them, and the (K,) dropout keys."""
    return epoch_inputs(_split_keys, keys, n=run.n, shuffle=run.spec.shuffle, needs_key=net.needs_key, epochs=epochs)


def record(histories: list[History], run: Any, epoch: int, sums: Any, val: Any, seconds: float) -> None:
    """An epoch's entries in each model's history, from the K models' sums on the host."""
    for i, h in enumerate(histories):
        h.append(epoch, logs(run.metrics, _model(sums, i), _model(val, i)), seconds)
