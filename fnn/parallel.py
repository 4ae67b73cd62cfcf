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
  gloo). Each process passes its own shard of the data to ``fit`` (of every per-sample
  argument: ``x``, ``y``, ``sample_weight``, ``validation_data``) and everything else the same;
  :func:`gather_process_data` checks that it is (one all-gather of fingerprints) and assembles
  the global data set with ``jax.make_array_from_process_local_data`` (concatenated in
  process order), after which every process runs the same SPMD program on the global mesh.
* **Many models** — :func:`fnn.fit_many` and :func:`fnn.sweep` (``fnn.train._many``,
  ``fnn.train._sweep``): K models in one program, ``fit``'s epoch under ``jax.vmap``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from fnn._keys import is_typed_key
from fnn._process_data import (
    ABSENT,
    DESC,
    LOCAL,
    NO_ROWS,
    NOT_PAIR,
    ROWS,
    allgather_blocks,
    assemble_rows,
    check_rows,
    check_same,
    describe,
    fingerprint,
    process_mesh,
    rows_of,
)
from fnn._validate import integer

Array = jax.Array

__all__ = [
    "BATCH_AXIS",
    "data_mesh",
    "check_mesh",
    "shard_batch",
    "replicate",
    "jit_replicated",
    "initialize",
    "process_shard",
    "gather_process_data",
]

BATCH_AXIS = "batch"
"""The name of the mesh axis that batches are split along."""


# --------------------------------------------------------------------------------------------
# Meshes and placement
# --------------------------------------------------------------------------------------------


def data_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh with axis ``"batch"`` (``AxisType.Auto``) over ``devices`` (default: all
    devices, i.e. every local device, and every process's devices after :func:`initialize`).

    Args:
        devices: The devices (None: ``jax.devices()``).

    Returns:
        The mesh, to pass as ``fit(..., mesh=...)``.

    Raises:
        ValueError: For an empty sequence of devices, or one that names a device twice.
        TypeError: For ``devices`` that is not a sequence of jax devices (an int or a platform's
            name is not one).

    Examples:
        >>> import fnn
        >>> fnn.parallel.data_mesh().axis_names
        ('batch',)
    """
    if isinstance(devices, str):  # a sequence, of characters
        raise TypeError(
            f"devices must be a sequence of jax devices, got str {devices!r} "
            f"(a platform's devices: data_mesh(jax.devices({devices!r})))"
        )
    if devices is not None and not isinstance(devices, (Sequence, np.ndarray)):
        raise TypeError(f"devices must be a sequence of jax devices, got {type(devices).__name__}")
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("devices must name at least one device, got an empty sequence")
    for i, d in enumerate(devices):
        if not isinstance(d, jax.Device):
            raise TypeError(f"devices[{i}] must be a jax device (jax.devices()[k]), got {type(d).__name__} {d!r}")
    if len(set(devices)) != len(devices):
        raise ValueError(f"devices must be distinct; {len(devices) - len(set(devices))} repeat(s) in {devices}")
    return Mesh(np.asarray(devices, dtype=object), (BATCH_AXIS,), axis_types=(AxisType.Auto,))


def check_mesh(mesh: Any) -> Mesh:
    """``mesh`` validated for data parallelism, with every axis turned ``Auto``.

    ``jax.make_mesh`` makes ``Explicit`` axes by default; under them a contraction over the
    sharded batch axis would need an explicit output sharding, which the partitioner infers
    on an ``Auto`` mesh over the same devices.

    Args:
        mesh: A ``jax.sharding.Mesh`` with an axis named ``"batch"``.

    Returns:
        The mesh, its axes ``Auto``.

    Raises:
        TypeError: If ``mesh`` is not a Mesh.
        ValueError: If it has no ``"batch"`` axis, or (many processes) does not hold devices of
            every process.
    """
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh (e.g. fnn.parallel.data_mesh()), got {type(mesh).__name__}")
    if BATCH_AXIS not in mesh.axis_names:
        raise ValueError(
            f"mesh must have an axis named {BATCH_AXIS!r} to split batches along; got axes {tuple(mesh.axis_names)}"
        )
    if jax.process_count() > 1:
        owners = {d.process_index for d in mesh.devices.flat}
        if len(owners) != jax.process_count():
            raise ValueError(
                f"mesh spans processes {sorted(owners)} of {jax.process_count()}; a data mesh must "
                "hold devices of every process (use fnn.parallel.data_mesh())"
            )
    if any(t != AxisType.Auto for t in mesh.axis_types):
        mesh = Mesh(mesh.devices, mesh.axis_names, axis_types=(AxisType.Auto,) * len(mesh.axis_names))
    return mesh


def in_force(mesh: Mesh) -> contextlib.AbstractContextManager:
    """Where another context mesh is in force (``with jax.set_mesh(m)``, ``m`` with JAX's
    default ``Explicit`` axes), ``jax.set_mesh`` of the run's ``Auto`` mesh: a program traced
    under one mesh cannot take arrays placed on another. Else nothing (no context is set)."""
    current = jax.sharding.get_abstract_mesh()
    if current.empty or current == mesh.abstract_mesh:
        return contextlib.nullcontext()
    return jax.set_mesh(mesh)


def shard_batch(*arrays: Array, mesh: Mesh) -> tuple[Array, ...]:
    """Inside jit: each array's leading (sample) axis split along the mesh axis ``"batch"``.

    Works for any length; an uneven split is padded and masked by the partitioner.

    Args:
        *arrays: Arrays with a leading sample axis (traced, inside ``jit``).
        mesh: The data mesh.

    Returns:
        The arrays, each constrained to be split along ``"batch"``.
    """
    sharding = NamedSharding(mesh, P(BATCH_AXIS))
    return tuple(jax.lax.with_sharding_constraint(a, sharding) for a in arrays)


def _put_replicated(a, sharding: NamedSharding):
    if isinstance(a, jax.Array) and is_typed_key(a):
        data = _put_replicated(jax.random.key_data(a), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(a))
    # Kept only on this very mesh: equivalence ignores axis types (an array on jax.make_mesh's
    # Explicit mesh is put again on the run's Auto copy, as a program cannot take both) and the
    # sharding's kind (one device's array is put again as the mesh's, which the epoch returns:
    # the next epoch would otherwise compile a second time)
    if (
        isinstance(a, jax.Array)
        and isinstance(a.sharding, NamedSharding)
        and a.sharding.mesh == sharding.mesh
        and a.sharding.is_equivalent_to(sharding, a.ndim)
    ):
        return a
    if sharding.is_fully_addressable:
        return jax.device_put(a, sharding)
    # Many processes: every process holds the same value; each fills its own devices.
    host = np.asarray(a)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Every leaf of ``tree`` replicated on all devices of ``mesh`` (leaves already there are
    returned as they are). With many processes, each must pass the same values.

    Args:
        tree: A pytree of arrays (params, optimizer state, data).
        mesh: The mesh.

    Returns:
        The tree with every leaf replicated on the mesh's devices (PRNG keys included).
    """
    sharding = NamedSharding(mesh, P())
    return jax.tree.map(lambda a: _put_replicated(a, sharding), tree)


def jit_replicated(fn: Callable, mesh: Mesh, **jit_kwargs: Any) -> Callable:
    """``jax.jit(fn)`` taking and returning arrays replicated on ``mesh`` (the data-parallel epoch:
    only the batches inside it are split).

    Args:
        fn: The function.
        mesh: The mesh.
        **jit_kwargs: Further arguments to ``jax.jit`` (``donate_argnums``...).

    Returns:
        The jitted function.
    """
    sharding = NamedSharding(mesh, P())
    return jax.jit(fn, in_shardings=sharding, out_shardings=sharding, **jit_kwargs)


# --------------------------------------------------------------------------------------------
# Many processes
# --------------------------------------------------------------------------------------------


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    local_device_count: int | None = None,
    cpu_collectives: str = "gloo",
    **kwargs: Any,
) -> None:
    """``jax.distributed.initialize`` for an fnn run over many processes; call it first, before
    any JAX computation.

    ``cpu_collectives`` picks the cross-process collectives on CPU (``"gloo"``, ``"mpi"``);
    ``local_device_count`` splits this process's CPU into that many devices
    (``jax_num_cpu_devices``). Other keywords go to ``jax.distributed.initialize``
    (``local_device_ids``, ``initialization_timeout``...). On GPU/TPU clusters the arguments can
    usually be left out: JAX detects them from the environment (SLURM, Cloud TPU...). What
    ``jax.distributed.initialize`` raises passes through, the two JAX settings put back as they
    were (the device count stays if the backends started on it in the failed call).

    Args:
        coordinator_address: ``host:port`` of process 0 (None: from the environment).
        num_processes: The number of processes (None: from the environment).
        process_id: This process's index in ``[0, num_processes)``.
        local_device_count: Split this process's CPU into that many devices (None: leave it).
        cpu_collectives: ``"gloo"`` or ``"mpi"``.
        **kwargs: Further arguments to ``jax.distributed.initialize``.

    Raises:
        ValueError: For unknown collectives, counts below 1, or a ``process_id`` out of range.
        TypeError: For counts that are not integers.
    """
    if cpu_collectives not in ("gloo", "mpi"):
        raise ValueError(f"cpu_collectives must be one of ('gloo', 'mpi'), got {cpu_collectives!r}")
    if local_device_count is not None:
        integer("local_device_count", local_device_count, 1)
    if num_processes is not None:
        integer("num_processes", num_processes, 1)
    if process_id is not None:
        integer("process_id", process_id, 0)
        if num_processes is not None and process_id >= num_processes:
            raise ValueError(f"process_id must be in [0, num_processes={num_processes}), got {process_id}")
    settings: dict[str, Any] = {"jax_cpu_collectives_implementation": cpu_collectives}
    if local_device_count is not None:
        settings["jax_num_cpu_devices"] = local_device_count
    previous = {name: getattr(jax.config, name) for name in settings}
    try:
        for name, value in settings.items():
            jax.config.update(name, value)
        jax.distributed.initialize(coordinator_address, num_processes, process_id, **kwargs)
    except BaseException:
        # The settings are made first (jax.distributed.initialize reads them), but a call that
        # fails (a keyword it does not take, a coordinator that does not answer) must not leave
        # them behind: the process's next computation would start on another device count. Only
        # those that changed are put back (as the CLI's cache_settings_restored does), and one
        # JAX refuses to set now (the device count, once something in the failed call started
        # the backends: they run on it) stays: the call's own error is the one that comes out.
        for name, value in previous.items():
            if getattr(jax.config, name) != value:
                with contextlib.suppress(RuntimeError):
                    jax.config.update(name, value)
        raise


def process_shard(a: Any, *, index: int | None = None, count: int | None = None) -> Any:
    """This process's contiguous block of the rows of ``a`` (``np.array_split`` order: the first
    ``N % count`` blocks have one row more). Concatenating the blocks of processes
    ``0..count-1`` gives ``a`` back, which is how ``fit(mesh=...)`` reassembles them.

    Args:
        a: The full array (or anything with ``len`` and slicing), samples first.
        index: This process's index (None: ``jax.process_index()``).
        count: The number of processes (None: ``jax.process_count()``).

    Returns:
        The rows of block ``index``.

    Raises:
        ValueError: For ``count < 1`` or ``index`` outside ``[0, count)``.
        TypeError: For an index or count that is not an integer.

    Examples:
        >>> import fnn, numpy as np
        >>> [fnn.parallel.process_shard(np.arange(5), index=i, count=2).tolist() for i in range(2)]
        [[0, 1, 2], [3, 4]]
    """
    index = jax.process_index() if index is None else index
    count = jax.process_count() if count is None else count
    integer("count", count, 1)
    integer("index", index, 0)
    if index >= count:
        raise ValueError(f"index must be in [0, count={count}), got {index}")
    n = len(a)
    bounds = [i * (n // count) + min(i, n % count) for i in range(count + 1)]
    return a[bounds[index] : bounds[index + 1]]


def gather_process_data(
    x: Any,
    y: Any,
    validation_data: tuple | None = None,
    *,
    mesh: Mesh,
    sample_weight: Any = None,
    same: Mapping[str, Any] | None = None,
) -> tuple[Any, Any, tuple | None, Any]:
    """With a mesh over many processes: the global ``(x, y, validation_data, sample_weight)``,
    each the concatenation (in process order) of the shards the processes passed; unchanged
    otherwise.

    Every per-sample argument is sharded alike: each process passes the rows of ITS shard of
    ``x``, ``y``, ``sample_weight`` and each part of ``validation_data`` (a pair ``(x_val,
    y_val)`` or a triple with ``sample_weight_val``), its weights one per row of its ``x``
    (``x_val``); a scalar weight weighs the rows of the process that passes it. Everything else
    must be the same on every process: ``same`` names the values to compare (the same names,
    in the same order, on every process); a pytree's arrays are compared by their bytes, other
    leaves by their ``repr``, as 64-bit fingerprints gathered with the rows' shapes in ONE
    all-gather. Then one all-gather per argument (``jax.make_array_from_process_local_data``)
    assembles the rows, so every process ends with the same host arrays (fit then replicates
    them and splits each batch).

    Args:
        x: This process's inputs, samples first.
        y: This process's targets.
        validation_data: This process's ``(x_val, y_val)`` or ``(x_val, y_val,
            sample_weight_val)``, or None.
        mesh: The data mesh (:func:`data_mesh`).
        sample_weight: This process's per-sample weights (one per row of its ``x``), or None.
        same: ``{name: value}`` that every process must pass equal (fit's params, opt_state,
            key and settings), or None.

    Returns:
        ``(x, y, validation_data, sample_weight)``, global.

    Raises:
        ValueError: The same message on every process (none is left waiting): a value of
            ``same`` that differs from process 0's (naming it and the processes), rows that
            differ in shape or dtype between processes, an argument given on some processes
            and not on others, weights not one per row, or ``validation_data`` not a pair or
            triple.
    """
    if {d.process_index for d in mesh.devices.flat} == {jax.process_index()}:
        return x, y, validation_data, sample_weight
    pmesh = process_mesh()
    pair = isinstance(validation_data, (tuple, list)) and len(validation_data) in (2, 3)
    val = (*(validation_data or ()), None)[:3] if pair else (None, None, None)
    rows = [rows_of(a) for a in (x, y, sample_weight, *val)]
    if validation_data is not None and not pair:
        rows[3] = (NOT_PAIR, None)
    # A scalar weight weighs its process's rows; with one global array of rows it is kept
    # as it is, the same on every process (a fingerprint of None where there is none).
    kept: list[Any] = [None, None]
    for k, (i, of) in enumerate(((2, 0), (5, 3))):
        w = (sample_weight, val[2])[k]
        if w is not None and rows[i][0] == NO_ROWS and np.ndim(w) == 0:
            if rows[of][0] == LOCAL:
                rows[i] = (LOCAL, np.broadcast_to(np.asarray(jax.device_get(w)), rows[of][1].shape[:1]))
            else:
                rows[i], kept[k] = (ABSENT, None), w
    values = {**(same or {}), "scalar sample_weight": kept[0], "scalar validation_data[2]": kept[1]}
    head = np.concatenate([describe(*r) for r in rows] + [fingerprint(v) for v in values.values()])
    heads = allgather_blocks(head, pmesh)
    split = len(ROWS) * DESC
    check_same(list(values), heads[:, split:].reshape(len(heads), len(values), 2))
    descs = heads[:, :split].reshape(len(heads), len(ROWS), DESC)
    check_rows(descs)
    x, y, w, *gathered = (assemble_rows(*r, descs[:, i, 1], pmesh) for i, r in enumerate(rows))
    if validation_data is not None:
        validation_data = tuple(gathered[: len(validation_data)])
        if len(validation_data) == 3 and kept[1] is not None:
            validation_data = (*validation_data[:2], kept[1])
    return x, y, validation_data, (kept[0] if kept[0] is not None else w)


def __dir__() -> list[str]:
    """The public API only (implementation imports stay out of ``dir``)."""
    return sorted(__all__)
