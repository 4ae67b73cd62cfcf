"""One device for what fnn computes without a mesh (``fit`` without ``mesh=``, ``predict``,
``evaluate``, ``gradcheck``): the params' device, the data following them.

JAX refuses a program whose committed arguments sit on different devices ("incompatible
devices"), on different meshes ("Mesh for all inputs should be equal"), or span processes
(``device_put`` of a global array); and a batch sliced out of data sharded along its rows fails
unless the split divides it. So every jax array goes to one device before the program runs:

* a fully replicated array (the params ``fit(mesh=...)`` returns, global over many processes
  or not) is its copy on one of this process's devices: that copy is the whole value, and
  nothing is transferred;
* the device is the first committed params leaf's (that copy's device for a replicated one),
  else the data's first committed one's; a committed array elsewhere, or sharded over several
  devices, is copied there (``jax.device_put``, as fit places NumPy data). Uncommitted arrays
  stay: a program takes them where its committed arguments are.

A part of an array split over processes holds only some of the values: a ValueError says how
to gather it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import SingleDeviceSharding


def to_host(a: Any) -> np.ndarray:
    """``a``'s values as a NumPy array, a jax array's read with ``jax.device_get``: an explicit
    transfer, which a caller's ``jax.transfer_guard("disallow")`` allows (``np.asarray`` of an
    array on a GPU is an implicit one, which it refuses). Anything else goes to ``np.asarray``
    as it is: ``jax.device_get`` walks a list element by element (40x slower for 1e6 labels)."""
    return np.asarray(jax.device_get(a) if isinstance(a, jax.Array) else a)


def cpu_view(a: jax.Array) -> np.ndarray | None:
    """A read-only NumPy view of the buffer of a jax array held by one CPU device (None for any
    other array, a traced or a deleted one), read without a transfer or a compile. Through DLPack:
    ``np.asarray`` would cache the view on ``a`` for good."""
    if isinstance(a, jax.core.Tracer):  # under the caller's jit or vmap: no buffer
        return None
    try:
        devices = a.devices()
    except RuntimeError:  # deleted (donated): the caller's own use of it says so
        return None
    if not a.is_fully_addressable or len(devices) != 1 or next(iter(devices)).platform != "cpu":
        return None
    exporter: Any = a  # (numpy's stubs type __dlpack__'s stream keyword narrower than jax's)
    try:
        return np.from_dlpack(exporter)
    except (BufferError, TypeError, ValueError, RuntimeError, AttributeError):  # bfloat16; a typed key
        return None


def _local(a: jax.Array, name: str) -> jax.Array:
    """``a`` readable in this process: a global replicated array's local copy."""
    if a.is_fully_addressable:
        return a
    if a.is_fully_replicated and a.addressable_shards:
        return a.addressable_data(0)
    raise ValueError(
        f"{name} is split over processes ({a.sharding}): this process holds only part of its values. "
        "Gather it first: jax.experimental.multihost_utils.process_allgather(a, tiled=True) gives every "
        "process the whole value"
    )


def _on(a: jax.Array, device: jax.Device) -> jax.Array:
    if a.sharding.device_set == {device}:
        return a
    for shard in a.addressable_shards if a.is_fully_replicated else ():
        if shard.device == device:
            return shard.data  # the copy already there
    # (to a Device, JAX 0.10 keeps an Explicit mesh's split in the result's type: programs then refuse it)
    return jax.device_put(a, SingleDeviceSharding(device))


def _committed(a: Any) -> bool:
    return isinstance(a, jax.Array) and not isinstance(a, jax.core.Tracer) and a.committed


def on_one_device(trees: Sequence[Any], names: Sequence[str]) -> tuple:
    """``trees`` (params first, then the data: each a pytree, array or anything else) with every
    committed jax array on one device, as the module describes; other leaves as they are.

    Args:
        trees: The arguments, in the order their placement counts.
        names: How messages name each (``"params"``, ``"x"``).

    Returns:
        The trees, in order (the very ``trees`` where every committed array is on one device).

    Raises:
        ValueError: For an array split over processes.
    """
    committed = [a for tree in trees for a in jax.tree.leaves(tree) if _committed(a)]
    devices = {d for a in committed for d in a.sharding.device_set}
    if len(devices) <= 1:  # the usual case: a look at each leaf, nothing rebuilt
        return tuple(trees)
    out = []
    for tree, name in zip(trees, names, strict=True):
        leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
        out.append((treedef, [_local(a, name + jax.tree_util.keystr(p)) if _committed(a) else a for p, a in leaves]))
    first = next(a for _, leaves in out for a in leaves if _committed(a))
    device = first.addressable_shards[0].device
    return tuple(
        jax.tree.unflatten(treedef, [_on(a, device) if _committed(a) else a for a in leaves]) for treedef, leaves in out
    )
