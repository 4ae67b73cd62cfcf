"""Scale on JAX's own machinery: data parallelism over a device mesh, many processes, many models.

* **Many devices** — ``fit(..., mesh=data_mesh())``. Params, optimizer state and the data set
  are replicated on every device of the mesh; inside the compiled epoch each batch is
  constrained to be split along the mesh axis ``"batch"`` (:func:`shard_batch`). The mesh axis
  is ``Auto``, so XLA's SPMD partitioner runs the hand-written forward/backward on each
  device's rows and inserts the all-reduce where the backward contracts over the batch
  (``dW = x^T dz``). Batches of any size work: the partitioner pads uneven splits and masks the
  padding out of every reduction, so no sample weights are needed and the loss stays the mean
  over the real samples.
* **Many processes** — :func:`initialize` wraps ``jax.distributed.initialize`` (CPU collectives:
  gloo). Each process passes its own shard of the data to ``fit``; :func:`gather_process_data`
  assembles the global data set with ``jax.make_array_from_process_local_data`` (concatenated in
  process order), after which every process runs the same SPMD program on the global mesh.
* **Many models** — :func:`fit_many` trains K models stacked along a leading axis (params,
  optimizer states with per-model hyperparameters, per-model shuffling keys) with ``vmap`` of
  fit's own compiled epoch: ONE program for all K. :func:`sweep` builds the K models from a
  grid of seeds and hyperparameters (learning rate, weight decay, any ``hparams`` entry).
"""
from __future__ import annotations

import functools
import itertools
import math
import time
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from fnn import train as _train
from fnn.layers import Network
from fnn.transforms import set_learning_rate

Array = jax.Array

__all__ = [
    "BATCH_AXIS", "data_mesh", "check_mesh", "shard_batch", "replicate", "jit_replicated",
    "initialize", "process_shard", "gather_process_data",
    "fit_many", "sweep", "SweepResult",
]

BATCH_AXIS = "batch"


# --------------------------------------------------------------------------------------------
# Meshes and placement
# --------------------------------------------------------------------------------------------


def data_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh with axis ``"batch"`` (``AxisType.Auto``) over ``devices`` (default: all
    devices, i.e. every local device, and every process's devices after :func:`initialize`)."""
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("devices must name at least one device, got an empty sequence")
    return Mesh(np.asarray(devices, dtype=object), (BATCH_AXIS,), axis_types=(AxisType.Auto,))


def check_mesh(mesh: Any) -> Mesh:
    """``mesh`` validated for data parallelism, with every axis turned ``Auto``.

    ``jax.make_mesh`` makes ``Explicit`` axes by default; under them a contraction over the
    sharded batch axis would need an explicit output sharding, which the partitioner infers
    on an ``Auto`` mesh over the same devices.
    """
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh (e.g. fnn.parallel.data_mesh()), got {type(mesh).__name__}")
    if BATCH_AXIS not in mesh.axis_names:
        raise ValueError(f"mesh must have an axis named {BATCH_AXIS!r} to split batches along; "
                         f"got axes {tuple(mesh.axis_names)}")
    if jax.process_count() > 1:
        owners = {d.process_index for d in mesh.devices.flat}
        if len(owners) != jax.process_count():
            raise ValueError(f"mesh spans processes {sorted(owners)} of {jax.process_count()}; a data mesh must "
                             "hold devices of every process (use fnn.parallel.data_mesh())")
    if any(t != AxisType.Auto for t in mesh.axis_types):
        mesh = Mesh(mesh.devices, mesh.axis_names, axis_types=(AxisType.Auto,) * len(mesh.axis_names))
    return mesh


def shard_batch(*arrays: Array, mesh: Mesh) -> tuple[Array, ...]:
    """Inside jit: each array's leading (sample) axis split along the mesh axis ``"batch"``.

    Works for any length; an uneven split is padded and masked by the partitioner.
    """
    sharding = NamedSharding(mesh, P(BATCH_AXIS))
    return tuple(jax.lax.with_sharding_constraint(a, sharding) for a in arrays)


def _put_replicated(a, sharding: NamedSharding):
    if isinstance(a, jax.Array) and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
        data = _put_replicated(jax.random.key_data(a), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(a))
    if isinstance(a, jax.Array) and a.sharding.is_equivalent_to(sharding, a.ndim):
        return a
    if sharding.is_fully_addressable:
        return jax.device_put(a, sharding)
    # Many processes: every process holds the same value; each fills its own devices.
    host = np.asarray(a)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Every leaf of ``tree`` replicated on all devices of ``mesh`` (leaves already there are
    returned as they are). With many processes, each must pass the same values."""
    sharding = NamedSharding(mesh, P())
    return jax.tree.map(lambda a: _put_replicated(a, sharding), tree)


def jit_replicated(fn: Callable, mesh: Mesh, **jit_kwargs: Any) -> Callable:
    """``jax.jit(fn)`` taking and returning arrays replicated on ``mesh`` (the data-parallel epoch:
    only the batches inside it are split)."""
    sharding = NamedSharding(mesh, P())
    return jax.jit(fn, in_shardings=sharding, out_shardings=sharding, **jit_kwargs)


# --------------------------------------------------------------------------------------------
# Many processes
# --------------------------------------------------------------------------------------------


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, local_device_count: int | None = None,
               cpu_collectives: str = "gloo", **kwargs: Any) -> None:
    """``jax.distributed.initialize`` for an fnn run over many processes; call it first, before
    any JAX computation.

    ``cpu_collectives`` picks the cross-process collectives on CPU (``"gloo"``, ``"mpi"``);
    ``local_device_count`` splits this process's CPU into that many devices
    (``jax_num_cpu_devices``). Other keywords go to ``jax.distributed.initialize``
    (``local_device_ids``, ``initialization_timeout``...). On GPU/TPU clusters the arguments can
    usually be left out: JAX detects them from the environment (SLURM, Cloud TPU...).
    """
    if cpu_collectives not in ("gloo", "mpi"):
        raise ValueError(f"cpu_collectives must be one of ('gloo', 'mpi'), got {cpu_collectives!r}")
    if local_device_count is not None:
        _train._check_int("local_device_count", local_device_count, 1)
    if num_processes is not None:
        _train._check_int("num_processes", num_processes, 1)
    if process_id is not None:
        _train._check_int("process_id", process_id, 0)
        if num_processes is not None and process_id >= num_processes:
            raise ValueError(f"process_id must be in [0, num_processes={num_processes}), got {process_id}")
    jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    if local_device_count is not None:
        jax.config.update("jax_num_cpu_devices", local_device_count)
    jax.distributed.initialize(coordinator_address, num_processes, process_id, **kwargs)


def process_shard(a: Any, *, index: int | None = None, count: int | None = None) -> Any:
    """This process's contiguous block of the rows of ``a`` (``np.array_split`` order: the first
    ``N % count`` blocks have one row more). Concatenating the blocks of processes
    ``0..count-1`` gives ``a`` back, which is how ``fit(mesh=...)`` reassembles them."""
    index = jax.process_index() if index is None else index
    count = jax.process_count() if count is None else count
    _train._check_int("count", count, 1)
    _train._check_int("index", index, 0)
    if index >= count:
        raise ValueError(f"index must be in [0, count={count}), got {index}")
    n = len(a)
    bounds = [i * (n // count) + min(i, n % count) for i in range(count + 1)]
    return a[bounds[index]:bounds[index + 1]]


def _process_mesh() -> Mesh:
    devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    grid = np.asarray(devices, dtype=object).reshape(jax.process_count(), -1)
    return Mesh(grid, ("processes", "local"), axis_types=(AxisType.Auto, AxisType.Auto))


def _allgather_blocks(local: np.ndarray, pmesh: Mesh) -> np.ndarray:
    """Stack of every process's ``local`` (same shape everywhere): shape ``(processes, *local.shape)``."""
    sharding = NamedSharding(pmesh, P("processes"))
    global_ = jax.make_array_from_process_local_data(sharding, local[None])
    full = jax.jit(lambda a: a, out_shardings=NamedSharding(pmesh, P()))(global_)
    return np.asarray(full.addressable_data(0))


def _gather_rows(a: Any, name: str, pmesh: Mesh) -> np.ndarray:
    if isinstance(a, jax.Array) and not a.is_fully_addressable:  # already one global array
        rep = jax.jit(lambda v: v, out_shardings=NamedSharding(a.sharding.mesh, P()))(a)
        return np.asarray(rep.addressable_data(0))
    local = np.asarray(a)
    if local.ndim == 0:
        raise ValueError(f"{name} must have a leading samples axis; got a scalar")
    # Shapes and dtypes first, so that a mismatch is the same clear error on every process.
    desc = np.zeros(10, np.int32)
    desc[0], desc[1], desc[2] = local.shape[0], local.ndim, ord(local.dtype.char)
    desc[3:3 + min(local.ndim - 1, 7)] = local.shape[1:8]
    descs = _allgather_blocks(desc, pmesh)
    if len({tuple(d[1:]) for d in descs}) > 1:
        got = [f"{tuple(int(s) for s in d[3:2 + d[1]])} {np.dtype(chr(d[2]))}" for d in descs]
        raise ValueError(f"{name}: every process must pass rows of the same shape and dtype; "
                         f"got per-row shape and dtype {got} (process 0, 1, ...)")
    counts = descs[:, 0]
    padded = np.zeros((int(counts.max()),) + local.shape[1:], local.dtype)
    padded[:len(local)] = local
    blocks = _allgather_blocks(padded, pmesh)
    return np.concatenate([blocks[p, :counts[p]] for p in range(len(counts))])


def gather_process_data(x: Any, y: Any, validation_data: tuple | None = None, *,
                        mesh: Mesh) -> tuple[Any, Any, tuple | None]:
    """With a mesh over many processes: the global ``(x, y, validation_data)``, each the
    concatenation (in process order) of the shards the processes passed; unchanged otherwise.

    Built with ``jax.make_array_from_process_local_data`` and one all-gather, so every process
    ends with the same host arrays (fit then replicates them and splits each batch).
    """
    if {d.process_index for d in mesh.devices.flat} == {jax.process_index()}:
        return x, y, validation_data
    pmesh = _process_mesh()
    x, y = _gather_rows(x, "x", pmesh), _gather_rows(y, "y", pmesh)
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("validation_data must be a pair (x_val, y_val)")
        validation_data = (_gather_rows(validation_data[0], "validation_data[0]", pmesh),
                           _gather_rows(validation_data[1], "validation_data[1]", pmesh))
    return x, y, validation_data


# --------------------------------------------------------------------------------------------
# Many models: fit's epoch under vmap
# --------------------------------------------------------------------------------------------


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

    def result(self, i: int) -> _train.FitResult:
        """Model ``i`` as a ``FitResult``, as ``fit`` would have returned it."""
        take = lambda tree: jax.tree.map(lambda a: a[i], tree)  # noqa: E731
        return _train.FitResult(take(self.params), take(self.opt_state), self.histories[i])

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


@functools.lru_cache(maxsize=16)
def _compiled_many(spec: _train._EpochSpec):
    """fit's epoch for ``spec`` vmapped over models: params, state, permutation and dropout key
    on axis 0, the data shared."""
    epoch = _train._epoch_fn(spec)
    in_axes = (0, 0, None, None, 0 if spec.shuffle else None, 0 if spec.net.needs_key else None, None, None)
    return jax.jit(jax.vmap(epoch, in_axes=in_axes), donate_argnums=(0, 1))


@functools.partial(jax.jit, static_argnums=(2, 3))
def _epoch_keys(keys, epoch, n: int, shuffle: bool):
    """fit's per-epoch ``(perm, dropout key)`` for each of the K stacked ``keys``."""
    def one(k):
        perm_key, drop_key = jax.random.split(jax.random.fold_in(k, epoch))
        return (jax.random.permutation(perm_key, n) if shuffle else None), drop_key

    return jax.vmap(one)(keys)


def _is_key(a) -> bool:
    return jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)


def _num_models(params) -> int:
    leaves = jax.tree.leaves(params)
    if not leaves:
        raise ValueError("params has no arrays to train")
    sizes = {np.shape(l)[0] if np.ndim(l) else None for l in leaves}
    if len(sizes) != 1 or None in sizes:
        raise ValueError("params must be stacked: every leaf with the same leading axis of K models "
                         f"(e.g. jax.tree.map(lambda *a: jnp.stack(a), *trees)); got leading sizes {sizes}")
    return sizes.pop()


def fit_many(
    net: Network,
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
    loss, batch_size = _train._check_settings(grad, loss, opt, batch_size, epochs, unroll, validation_split)
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
    k_models = _num_models(params)
    first = jax.tree.map(lambda a: a[0], params)
    x_tr, y_tr, x_val, y_val, ms = _train._prepare_data(net, first, loss, x, y, validation_split,
                                                        validation_data, metrics)
    n = x_tr.shape[0]
    key = jax.random.PRNGKey(0) if key is None else jnp.asarray(key) if not isinstance(key, jax.Array) else key
    single = 0 if _is_key(key) else 1
    if key.ndim not in (single, single + 1):
        raise ValueError(f"key must be one PRNG key or K={k_models} stacked keys, got shape {key.shape}")
    if key.ndim == single + 1 and key.shape[0] != k_models:
        raise ValueError(f"key holds {key.shape[0]} keys for {k_models} models")
    # One key for all: K copies of it, so that both cases run the same compiled program.
    keys = jnp.broadcast_to(key, (k_models,) + key.shape[key.ndim - single:])
    if configs is None:
        configs = [{} for _ in range(k_models)]
    elif len(configs) != k_models:
        raise ValueError(f"configs must have one entry per model ({k_models}), got {len(configs)}")

    x_tr, y_tr, x_val, y_val = _train._to_device(_train._param_dtype(params), x_tr, y_tr, x_val, y_val)
    params = _train._copy_tree(params)
    opt_state = jax.vmap(opt.init)(params) if opt_state is None else _train._copy_tree(opt_state)
    if _num_models(opt_state) != k_models:
        raise ValueError(f"opt_state must be stacked over the same {k_models} models as params")
    spec = _train._epoch_spec(net, loss, opt, grad, ms, batch_size, n, shuffle, False, x_val,
                              validation_batch_size, unroll)
    epoch_fn = _compiled_many(spec)

    histories = [_train.History(math.ceil(n / batch_size)) for _ in range(k_models)]
    for epoch in range(epochs):
        perm, drop_key = _epoch_keys(keys, epoch, n, bool(shuffle))
        t0 = time.perf_counter()
        params, opt_state, _, sums, val = epoch_fn(
            params, opt_state, x_tr, y_tr, perm, drop_key if net.needs_key else None, x_val, y_val)
        sums, val = jax.device_get((sums, val))  # the one host sync of the epoch
        seconds = time.perf_counter() - t0
        for i, h in enumerate(histories):
            pick = lambda tree: jax.tree.map(lambda a: a[i], tree)  # noqa: E731
            h.append(epoch, _train._logs(ms, pick(sums), None if val is None else pick(val)), seconds)
        if verbose:
            last = np.array([h["loss"][-1] for h in histories])
            print(f"Epoch {epoch + 1}/{epochs} - {k_models} models - {seconds:.2f}s - loss min "
                  f"{np.nanmin(last) if np.isfinite(last).any() else np.nan:.4g} / median "
                  f"{np.nanmedian(last):.4g} / max {np.nanmax(last):.4g}", flush=True)
    return SweepResult(params, opt_state, histories, [dict(c) for c in configs])


def _set_hparam(state: Any, name: str, values: Array) -> Any:
    """``state`` with hyperparameter ``name`` set to ``values`` (shape (K,)) in every optimizer
    state that holds it."""
    if name == "learning_rate":
        return set_learning_rate(state, values)
    has = lambda node: hasattr(node, "_fields") and "hparams" in node._fields and isinstance(node.hparams, dict)  # noqa: E731
    known: set[str] = set()
    found = []

    def replace(node):
        if not has(node):
            return node
        known.update(node.hparams)
        if name not in node.hparams:
            return node
        found.append(True)
        old = node.hparams[name]
        return node._replace(hparams={**node.hparams, name: jnp.broadcast_to(jnp.asarray(values, old.dtype), old.shape)})

    new = jax.tree.map(replace, state, is_leaf=has)
    if not found:
        raise ValueError(f"the optimizer state holds no hyperparameter {name!r}; it holds: "
                         f"{', '.join(sorted(known)) or 'none'} (a term switched off at construction, "
                         f"e.g. weight_decay=0, cannot be swept: build the optimizer with a nonzero value)")
    return new


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _init_models(net, opt, input_shape, dtype, init_keys, which, values):
    """Params ``net.init(init_keys[which[i]])`` (cast to ``dtype``) and states ``opt.init`` with
    the swept hyperparameters, stacked over models, in one program (vmapped init draws what
    separate inits draw)."""
    def init(k):
        p = net.init(k, input_shape)
        if dtype is None:
            return p
        return jax.tree.map(lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, p)

    params = jax.tree.map(lambda a: a[which], jax.vmap(init)(init_keys))
    state = jax.vmap(opt.init)(params)
    for name, v in values.items():
        state = _set_hparam(state, name, v)
    return params, state


def _values(name: str, values: Any) -> list:
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray, jax.Array)):
        raise TypeError(f"{name} must be a sequence of values, got {type(values).__name__}")
    values = list(np.asarray(values).tolist()) if not isinstance(values, list) else list(values)
    if not values:
        raise ValueError(f"{name} must hold at least one value, got an empty sequence")
    return values


def sweep(
    net: Network,
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
    if not isinstance(opt, tuple) or not hasattr(opt, "init"):
        raise TypeError(f"opt must be an (init, update) GradientTransformation, got {type(opt).__name__}")
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
    configs = [dict(zip(axes, point)) for point in itertools.product(*axes.values())]

    if input_shape is None:
        input_shape = tuple(np.shape(x)[1:])
    dtype = None if dtype is None else jnp.dtype(dtype)
    # Fail on a hyperparameter the state lacks before anything runs (shapes only, no compile).
    state_shape = jax.eval_shape(opt.init, jax.eval_shape(lambda k: net.init(k, input_shape), jax.random.PRNGKey(0)))
    for name in axes:
        if name != "seed":
            _set_hparam(state_shape, name, np.zeros((), np.float32))
    seed_index = {s: i for i, s in enumerate(dict.fromkeys(axes["seed"]))}
    seed_keys = jax.vmap(lambda s: jax.random.split(jax.random.PRNGKey(s)))(
        jnp.asarray(list(seed_index), jnp.uint32))
    which = np.array([seed_index[c["seed"]] for c in configs])
    values = {name: np.array([c[name] for c in configs]) for name in axes if name != "seed"}
    params, opt_state = _init_models(net, opt, tuple(input_shape), dtype, seed_keys[:, 0], which, values)
    key = seed_keys[which, 1]
    return fit_many(net, params, opt, loss, x, y, key=key, opt_state=opt_state, configs=configs, **fit_kwargs)
