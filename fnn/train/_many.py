"""Many models at once: K networks trained in ONE compiled program.

:func:`fit_many` trains K models stacked along a leading axis (params, optimizer states with
per-model hyperparameters, per-model shuffling keys) with ``vmap`` of fit's own epoch, prepared
and looped exactly as :func:`fnn.fit` does, so every model follows ``fit``'s semantics.
:func:`sweep` builds the K models from a grid of seeds and hyperparameters (learning rate,
weight decay, any ``hparams`` entry of the optimizer state): the comparison work fnn exists for.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn._validate import floating_dtype, is_typed_key
from fnn.optimizers import set_hyperparams, set_learning_rate
from fnn.train._checks import check_opt_state, check_params_dtypes, resolve_opt
from fnn.train._epoch import epoch_keys, logs
from fnn.train._fit import FitResult, History
from fnn.train._loop import copy_tree, epoch_inputs, init_state, prepare, run_epochs_queued

Array = jax.Array


class SweepResult(NamedTuple):
    """What :func:`fit_many` / :func:`sweep` return for K models.

    ``params`` and ``opt_state`` are stacked: every leaf has a leading axis of length K.
    ``histories[i]`` is model i's :class:`fnn.History` (same entries as ``fit``'s);
    ``configs[i]`` the settings that made model i (``seed``, swept hyperparameters).

    Attributes:
        params: The trained parameters of the K models, each leaf ``(K, ...)``.
        opt_state: Their optimizer states, each leaf ``(K, ...)`` (per-model hyperparameters
            included).
        histories: K :class:`fnn.History` objects, model i's at index i.
        configs: K dicts: the grid point of each model (:func:`sweep`: ``{"seed": s,
            "learning_rate": lr, ...}``), or the ``configs`` given to :func:`fit_many` (empty
            dicts by default).

    Examples:
        >>> import fnn
        >>> h0, h1 = fnn.History(), fnn.History()
        >>> h0.append(0, {"loss": 0.5}, seconds=0.0)
        >>> h1.append(0, {"loss": 0.25}, seconds=0.0)
        >>> result = fnn.SweepResult(None, None, [h0, h1], [{"seed": 0}, {"seed": 1}])
        >>> i = result.best()  # the lowest last-epoch loss (no val_loss was recorded)
        >>> i, result.configs[i]
        (1, {'seed': 1})
    """

    params: Any
    opt_state: Any
    histories: list
    configs: list

    def result(self, i: int) -> FitResult:
        """Model ``i`` as a ``FitResult``, as ``fit`` would have returned it.

        Args:
            i: The model's index, an int in ``[-K, K)`` (negative counts from the end).

        Returns:
            ``FitResult(params, opt_state, history)`` of model ``i``, its arrays sliced off the
            stacked ones.

        Raises:
            IndexError: For an index out of range or not an int.
        """
        k = len(self.histories)
        if not isinstance(i, (int, np.integer)) or isinstance(i, bool):
            raise IndexError(f"model index must be an int, got {type(i).__name__} {i!r}")
        if not -k <= i < k:
            raise IndexError(f"model index {i!r} out of range for {k} models")
        params, opt_state = _take_model((self.params, self.opt_state), int(i) % k)
        return FitResult(params, opt_state, self.histories[i])

    def best(self, monitor: str | None = None, mode: str = "min") -> int:
        """Index of the model with the best last-epoch ``monitor`` (default ``val_loss`` when
        recorded, else ``loss``); non-finite values rank last.

        Args:
            monitor: A logged name (``"val_accuracy"``...), or None for ``val_loss`` when
                recorded, else ``loss``.
            mode: ``"min"`` (lowest is best) or ``"max"`` (highest is best).

        Returns:
            The index of the best model (the first one on ties).

        Raises:
            ValueError: For a ``mode`` other than ``"min"``/``"max"``, or a ``monitor`` that was
                not recorded (the message lists those that were).
        """
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
def _take_leaf(a, i):
    return a[i]


def _take_model(tree, i):
    """Model ``i``'s slice of a stacked tree: one small program per leaf shape and dtype, which
    every optimizer's state shares (a program per tree would compile again for each optimizer
    family; ``a[i]`` eagerly, several per leaf)."""
    i = np.int32(i)
    return jax.tree.map(lambda a: _take_leaf(a, i), tree)


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
    ...)`` with the same settings (no callbacks) up to float rounding. ``verbose=1`` prints one
    line per epoch (the spread of the models' losses).

    Every model trains for all ``epochs`` (there are no callbacks, checkpoints, sample weights
    or meshes here: use :func:`fit` for those); a model whose loss turns non-finite keeps
    training without a warning, and :meth:`SweepResult.best` ranks it last. The data is checked
    once, as :func:`fit` checks it, before anything is compiled.

    Args:
        net: The network, shared by the K models.
        params: The K models' initial parameters, stacked: each leaf of one model's params
            with a leading axis of K (``jax.tree.map(lambda *a: jnp.stack(a), *trees)``).
        opt: An optimizer (GradientTransformation) or an optimizer name, as in :func:`fit`.
        loss: A loss name, an :class:`fnn.losses.Loss`, or with ``grad="autodiff"`` a callable.
        x: Inputs ``(N, features)``, shared by the K models.
        y: Targets with ``N`` rows.
        key: One PRNG key (every model gets the same shuffles and Dropout masks), K stacked
            keys ``(K, ...)``, or None (``PRNGKey(0)`` for all).
        opt_state: The K optimizer states, stacked, each what ``opt.init`` builds for one
            model (None: ``vmap(opt.init)(params)``, every model with ``opt``'s values).
        batch_size: As in :func:`fit` (None: 32).
        epochs: The number of epochs, an int >= 0.
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
            ``loss``, non-floating params, non-int sizes, non-numeric data...).
        ValueError: For the bad values :func:`fit` refuses; params that are not stacked (a
            leaf without the common leading axis, or no arrays at all); an ``opt_state`` not
            stacked over the same K models or not matching ``opt.init``; a ``key`` that is
            neither one key nor K keys; ``configs`` not of length K.

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
        validation_batch_size=validation_batch_size, metrics=metrics, weighted_metrics=weighted_metrics, models=True,
    )  # fmt: skip
    keys = _stacked_keys(key, k_models)
    if configs is None:
        configs = [{} for _ in range(k_models)]
    elif len(configs) != k_models:
        raise ValueError(f"configs must have one entry per model ({k_models}), got {len(configs)}")

    params = copy_tree(params)
    opt_state = init_state(opt, params, models=True) if opt_state is None else copy_tree(opt_state)
    histories = [History(run.iterations_per_epoch) for _ in range(k_models)]

    # fit's per-epoch (perm, dropout key) for each model: the (K, n) orders drawn on the host as
    # fit draws them, and the (K,) dropout keys
    inputs = epoch_inputs(_split_keys, keys, n=run.n, shuffle=run.spec.shuffle, needs_key=net.needs_key, epochs=epochs)

    def end(epoch, bad, sums, val, seconds):
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

    # nothing between epochs reads or changes the state (no callbacks): each epoch is queued
    # before the previous one is recorded
    params, opt_state = run_epochs_queued(run, params, opt_state, epochs=epochs, inputs=inputs, end=end)
    return SweepResult(params, opt_state, histories, [dict(c) for c in configs])


def _set_hparam(state: Any, name: str, values: Any) -> Any:
    """``state`` with hyperparameter ``name`` set to ``values`` (shape (K,)) in every optimizer
    state that holds it (the learning rate through ``set_learning_rate``: schedules rescale)."""
    if name == "learning_rate":
        return set_learning_rate(state, values)
    return set_hyperparams(state, **{name: values})


def _finite_number(v: Any) -> bool:
    """A finite real number: Python's, NumPy's or a 0-d jax array's (not a bool)."""
    if isinstance(v, (bool, np.bool_)):
        return False
    if isinstance(v, (np.ndarray, jax.Array)) and np.ndim(v) == 0 and np.dtype(v.dtype).kind in "iuf":
        v = v.item()
    return isinstance(v, (numbers.Real, np.integer, np.floating)) and math.isfinite(float(v))


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
    (``batch_size``, ``epochs``, ``validation_split``, ``metrics``, ``weighted_metrics``,
    ``grad``...).
    ``result.configs[i]`` says which grid point model i is.

    The grid is the product over the seeds, then the ``hparams`` entries in their order, then
    the learning rates and the weight decays: model ``i`` is the ``i``-th point of
    ``itertools.product`` over them (the last axis varies fastest). Every
    hyperparameter name is checked against the optimizer state (traced, nothing compiled)
    before anything runs.

    Args:
        net: The network (it must have ``init``).
        opt: An optimizer or an optimizer name, built with every term to sweep (a nonzero
            ``weight_decay`` to sweep weight decays).
        loss: A loss name, an :class:`fnn.losses.Loss`, or with ``grad="autodiff"`` a callable.
        x: Inputs ``(N, features)``.
        y: Targets with ``N`` rows.
        seeds: The seeds, ints: each gives a model's initial params and its training key.
        learning_rates: The learning rates to try (finite, >= 0), or None to keep ``opt``'s.
        weight_decays: The weight decays to try (finite), or None.
        hparams: ``{name: values}`` for further hyperparameters held in the optimizer state
            (``{"momentum": [0.0, 0.9]}``); ``learning_rate``/``weight_decay`` may be given here
            instead of by keyword, not both.
        input_shape: The shape of one sample for ``net.init`` (None: ``x.shape[1:]``).
        dtype: A floating dtype to cast the initial params to (None: ``net.init``'s).
        **fit_kwargs: Further :func:`fit_many` arguments (``batch_size``, ``epochs``,
            ``validation_split``, ``validation_data``, ``metrics``, ``grad``, ``verbose``...);
            not ``key``, ``opt_state`` or ``configs``, which the sweep sets.

    Returns:
        A :class:`SweepResult` whose ``configs[i]`` is model i's grid point, ``{"seed": s,
        "learning_rate": lr, ...}``.

    Raises:
        TypeError: For ``key``, ``opt_state`` or ``configs`` in ``fit_kwargs``; a seed that is
            not an int; a grid that is not a sequence (a string, a number); a ``dtype`` that is
            not a floating dtype; and the type errors of :func:`fit_many`.
        ValueError: For an empty grid; a hyperparameter given both by keyword and in
            ``hparams``; values that are not finite numbers, or a negative learning rate; a
            hyperparameter the optimizer state does not hold (a term switched off in ``opt``);
            and the value errors of :func:`fit_many`.

    Examples:
        >>> import fnn, numpy as np
        >>> x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(8, 3)
        >>> y = x.sum(axis=1, keepdims=True)
        >>> result = fnn.sweep(fnn.mlp([1]), "sgd", "mse", x, y, learning_rates=[0.01, 0.1], batch_size=4, epochs=1)
        >>> result.configs
        [{'seed': 0, 'learning_rate': 0.01}, {'seed': 0, 'learning_rate': 0.1}]
        >>> best = result.best()
        >>> result.configs[best], result.result(best).params[0]["w"].shape
        ({'seed': 0, 'learning_rate': 0.1}, (3, 1))
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
        if not all(_finite_number(v) for v in vals):
            raise ValueError(f"{name} values must be finite numbers, got {vals}")
        # the configs hold Python numbers, whatever scalars the grid was given in
        vals = [v.item() if isinstance(v, (np.generic, np.ndarray, jax.Array)) else v for v in vals]
        if name == "learning_rate" and min(vals) < 0:
            raise ValueError(f"learning_rates must be >= 0, got {vals}")
        axes[name] = vals
    configs = [dict(zip(axes, point, strict=True)) for point in itertools.product(*axes.values())]

    if input_shape is None:
        input_shape = tuple(np.shape(x)[1:])
    if dtype is not None:
        dtype = floating_dtype("dtype", dtype)
    # Fail on a hyperparameter the state lacks, or a value out of its range, before anything runs
    # (traced: nothing compiles).
    params_shape = jax.eval_shape(lambda k: net.init(k, input_shape), jax.random.PRNGKey(0))
    state_shape = jax.eval_shape(opt.init, params_shape)
    jax.eval_shape(lambda s: [_set_hparam(s, n, v) for n in axes if n != "seed" for v in axes[n]], state_shape)
    inits, fit_keys = {}, {}
    for s in dict.fromkeys(axes["seed"]):
        init_key, fit_keys[s] = jax.random.split(jax.random.PRNGKey(s))
        inits[s] = net.init(init_key, input_shape)
        if dtype is not None:
            inits[s] = jax.tree.map(lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, inits[s])
    params = jax.tree.map(lambda *a: jnp.stack(a), *[inits[c["seed"]] for c in configs])
    key = jnp.stack([fit_keys[c["seed"]] for c in configs])
    opt_state = init_state(opt, params, models=True)
    for name in axes:
        if name != "seed":
            opt_state = _set_hparam(opt_state, name, np.array([c[name] for c in configs]))
    return fit_many(net, params, opt, loss, x, y, key=key, opt_state=opt_state, configs=configs, **fit_kwargs)
