"""Many models at once: K networks trained in ONE compiled program.

:func:`fit_many` trains K models stacked along a leading axis (params, optimizer states with
per-model hyperparameters, per-model shuffling keys) with ``vmap`` of fit's own epoch, prepared
and looped exactly as :func:`fnn.fit` does, so every model follows ``fit``'s semantics.
:func:`sweep` builds the K models from a grid of seeds and hyperparameters (learning rate,
weight decay, any ``hparams`` entry of the optimizer state): the comparison work fnn exists for.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn._validate import is_typed_key, key_data
from fnn.optimizers import set_hyperparams, set_learning_rate
from fnn.train._checks import check_opt_state, check_params_dtypes, resolve_opt
from fnn.train._epoch import epoch_keys, epoch_permutation, logs
from fnn.train._fit import FitResult, History
from fnn.train._loop import copy_tree, init_state, prepare, run_epochs

Array = jax.Array


class SweepResult(NamedTuple):
    """What :func:`fit_many` / :func:`sweep` return for K models.

    ``params`` and ``opt_state`` are stacked: every leaf has a leading axis of length K.
    ``histories[i]`` is model i's :class:`fnn.History` (same entries as ``fit``'s);
    ``configs[i]`` the settings that made model i (``seed``, swept hyperparameters).
    """

    params: Any
    opt_state: Any
    histories: list
    configs: list

    def result(self, i: int) -> FitResult:
        """Model ``i`` as a ``FitResult``, as ``fit`` would have returned it."""
        k = len(self.histories)
        if not isinstance(i, (int, np.integer)) or isinstance(i, bool) or not -k <= i < k:
            raise IndexError(f"model index {i!r} out of range for {k} models")
        params, opt_state = _take_model((self.params, self.opt_state), int(i) % k)
        return FitResult(params, opt_state, self.histories[i])

    def best(self, monitor: str | None = None, mode: str = "min") -> int:
        """Index of the model with the best last-epoch ``monitor`` (default ``val_loss`` when
        recorded, else ``loss``); non-finite values rank last."""
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        h0 = self.histories[0]
        monitor = monitor or ("val_loss" if "val_loss" in h0 else "loss")
        if monitor not in h0:
            raise ValueError(f"monitor {monitor!r} was not recorded; recorded: {sorted(h0.keys())}")
        last = np.array([h[monitor][-1] if h[monitor] else np.nan for h in self.histories], float)
        last = np.where(np.isfinite(last), last if mode == "min" else -last, np.inf)
        return int(np.argmin(last))


@jax.jit
def _split_keys(keys, epoch):
    """fit's per-epoch ``(permutation key, dropout key)`` for each of the K stacked ``keys``."""
    return jax.vmap(epoch_keys, in_axes=(0, None))(keys, epoch)


@jax.jit
def _take_model(tree, i):
    """Model ``i``'s slice of a stacked tree in one compiled call (indexed eagerly, each leaf's
    shape compiles programs of its own)."""
    return jax.tree.map(lambda a: a[i], tree)


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
    return int(size)


def _init_states(opt: Any, params: Any) -> Any:
    """``vmap(opt.init)(params)`` for stacked params, through fit's compiled init."""
    return jax.vmap(functools.partial(init_state, opt))(params)


def _stacked_keys(key: Any, k_models: int) -> Array:
    """K keys: one shared key broadcast (the same shuffles and masks), or K stacked keys."""
    if key is None:
        key = jax.random.PRNGKey(0)
    key = key if isinstance(key, jax.Array) else jax.device_put(np.asarray(key))
    single = 0 if is_typed_key(key) else 1
    if key.ndim not in (single, single + 1) or (not is_typed_key(key) and key.dtype != np.uint32):
        raise ValueError(f"key must be one PRNG key or K={k_models} stacked keys, got shape {key.shape}")
    if key.ndim == single + 1 and key.shape[0] != k_models:
        raise ValueError(f"key holds {key.shape[0]} keys for {k_models} models")
    # One key for all: K copies of it, so that both cases run the same compiled program.
    return jnp.broadcast_to(key, (k_models,) + key.shape[key.ndim - single :])


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
    shuffle: bool = True,
    validation_split: float = 0.0,
    validation_data: tuple | None = None,
    validation_batch_size: int | None = None,
    metrics: Sequence = (),
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
    ...)`` with the same settings (no callbacks) up to float rounding. ``verbose=1`` prints one
    line per epoch (the spread of the models' losses).
    """
    opt = resolve_opt(opt)
    check_params_dtypes(params)
    k_models = _num_models(params)
    one_model = jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a)[1:], a.dtype), params)  # shapes only
    if opt_state is not None:
        if _num_models(opt_state, "opt_state") != k_models:
            raise ValueError(f"opt_state must be stacked over the same {k_models} models as params")
        check_opt_state(opt, one_model, opt_state, models=k_models)
    run = prepare(
        net, one_model, opt, loss, x, y, grad=grad, batch_size=batch_size, epochs=epochs, unroll=unroll,
        shuffle=shuffle, verbose=verbose, validation_split=validation_split, validation_data=validation_data,
        validation_batch_size=validation_batch_size, metrics=metrics, models=True,
    )  # fmt: skip
    keys = _stacked_keys(key, k_models)
    if configs is None:
        configs = [{} for _ in range(k_models)]
    elif len(configs) != k_models:
        raise ValueError(f"configs must have one entry per model ({k_models}), got {len(configs)}")

    params = copy_tree(params)
    opt_state = _init_states(opt, params) if opt_state is None else copy_tree(opt_state)
    histories = [History(run.iterations_per_epoch) for _ in range(k_models)]

    def inputs(epoch):
        """fit's per-epoch ``(perm, dropout key)`` for each model: the (K, n) orders drawn on the
        host as fit draws them, and the (K,) dropout keys."""
        perm_keys, drop_keys = _split_keys(keys, epoch)
        perm = None
        if run.spec.shuffle:
            perm = np.stack([epoch_permutation(k, run.n) for k in np.asarray(key_data(perm_keys))])
        return perm, drop_keys if net.needs_key else None

    def end(epoch, params, opt_state, bad, sums, val, seconds):
        for i, h in enumerate(histories):
            h.append(epoch, logs(run.metrics, _model(sums, i), _model(val, i)), seconds)
        if verbose:
            last = np.array([h["loss"][-1] for h in histories])
            ok = last[np.isfinite(last)]
            spread = f"min {ok.min():.4g} / median {np.median(ok):.4g} / max {ok.max():.4g}" if ok.size else "-"
            print(
                f"Epoch {epoch + 1}/{epochs} - {k_models} models - {seconds:.2f}s - loss {spread}"
                + (f" ({last.size - ok.size} non-finite)" if ok.size < last.size else ""),
                flush=True,
            )
        return params, opt_state, False

    params, opt_state = run_epochs(
        run, params, opt_state, epochs=epochs, initial_epoch=0, inputs=inputs,
        begin=lambda epoch, p, s: (p, s), end=end,
    )  # fmt: skip
    return SweepResult(params, opt_state, histories, [dict(c) for c in configs])


def _set_hparam(state: Any, name: str, values: Any) -> Any:
    """``state`` with hyperparameter ``name`` set to ``values`` (shape (K,)) in every optimizer
    state that holds it (the learning rate through ``set_learning_rate``: schedules rescale)."""
    if name == "learning_rate":
        return set_learning_rate(state, values)
    return set_hyperparams(state, **{name: values})


def _values(name: str, values: Any) -> list:
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray, jax.Array)):
        raise TypeError(f"{name} must be a sequence of values, got {type(values).__name__}")
    values = list(np.asarray(values).tolist()) if not isinstance(values, list) else list(values)
    if not values:
        raise ValueError(f"{name} must hold at least one value, got an empty sequence")
    return values


def sweep(
    net: Any,
    opt: Any,
    loss: Any,
    x: Any,
    y: Any,
    *,
    seeds: Sequence[int] = (0,),
    learning_rates: Sequence[float] | None = None,
    weight_decays: Sequence[float] | None = None,
    hparams: dict[str, Sequence[float]] | None = None,
    input_shape: tuple[int, ...] | None = None,
    dtype: Any = None,
    **fit_kwargs: Any,
) -> SweepResult:
    """Trains one model per point of the grid ``seeds x learning_rates x weight_decays x
    hparams`` in one compiled program (:func:`fit_many`).

    Model with seed ``s`` starts from ``net.init(init_key, input_shape)`` and trains with
    ``key=fit_key`` where ``init_key, fit_key = jax.random.split(jax.random.PRNGKey(s))``; its
    optimizer state is ``opt.init(params)`` with the swept hyperparameters set (``learning_rate``
    through ``set_learning_rate``, so schedules are rescaled). ``hparams`` names any other entry
    of the state's ``hparams`` (``momentum``, ``b1``...). A term must exist to be swept: build
    ``opt`` with a nonzero ``weight_decay`` to sweep weight decays (0 is then a valid value).
    ``input_shape`` defaults to ``x.shape[1:]``; ``dtype`` (e.g. ``jnp.float64``) casts the
    initial params, and so the training, to that dtype; ``fit_kwargs`` go to :func:`fit_many`
    (``batch_size``, ``epochs``, ``validation_split``, ``metrics``, ``grad``...).
    ``result.configs[i]`` says which grid point model i is.
    """
    for bad in ("key", "opt_state", "configs"):
        if bad in fit_kwargs:
            raise TypeError(f"sweep() sets {bad!r} itself from the seeds and hyperparameters; use fit_many to pass it")
    opt = resolve_opt(opt)
    axes = {"seed": _values("seeds", seeds)}
    for s in axes["seed"]:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"seeds must be ints, got {s!r}")
    swept = dict(hparams or {})
    for name, vals in (("learning_rate", learning_rates), ("weight_decay", weight_decays)):
        if vals is not None:
            if name in swept:
                raise ValueError(f"{name} given twice (keyword and hparams)")
            swept[name] = vals
    for name, vals in swept.items():
        vals = _values(name if name not in ("learning_rate", "weight_decay") else name + "s", vals)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in vals):
            raise ValueError(f"{name} values must be finite numbers, got {vals}")
        if name == "learning_rate" and min(vals) < 0:
            raise ValueError(f"learning_rates must be >= 0, got {vals}")
        axes[name] = vals
    configs = [dict(zip(axes, point, strict=True)) for point in itertools.product(*axes.values())]

    if input_shape is None:
        input_shape = tuple(np.shape(x)[1:])
    dtype = None if dtype is None else jnp.dtype(dtype)
    # Fail on a hyperparameter the state lacks before anything runs (traced: nothing compiles).
    params_shape = jax.eval_shape(lambda k: net.init(k, input_shape), jax.random.PRNGKey(0))
    jax.eval_shape(lambda p: [_set_hparam(opt.init(p), name, 0.0) for name in axes if name != "seed"], params_shape)
    inits, fit_keys = {}, {}
    for s in dict.fromkeys(axes["seed"]):
        init_key, fit_keys[s] = jax.random.split(jax.random.PRNGKey(s))
        inits[s] = net.init(init_key, input_shape)
        if dtype is not None:
            inits[s] = jax.tree.map(lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, inits[s])
    params = jax.tree.map(lambda *a: jnp.stack(a), *[inits[c["seed"]] for c in configs])
    key = jnp.stack([fit_keys[c["seed"]] for c in configs])
    opt_state = _init_states(opt, params)
    for name in axes:
        if name != "seed":
            opt_state = _set_hparam(opt_state, name, np.array([c[name] for c in configs]))
    return fit_many(net, params, opt, loss, x, y, key=key, opt_state=opt_state, configs=configs, **fit_kwargs)
