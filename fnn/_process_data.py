"""The many-process side of ``fit(mesh=...)``, for :func:`fnn.parallel.gather_process_data`:
ONE all-gather of each process's description of its per-sample arguments (form, rows, shape,
dtype) and of 64-bit fingerprints of everything that must be the same on every process, the
checks every process then makes alike (so none is left waiting in a collective), and the
all-gathers that assemble the rows."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from fnn._keys import is_typed_key


def process_mesh() -> Mesh:
    devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    grid = np.asarray(devices, dtype=object).reshape(jax.process_count(), -1)
    return Mesh(grid, ("processes", "local"), axis_types=(AxisType.Auto, AxisType.Auto))


def allgather_blocks(local: np.ndarray, pmesh: Mesh) -> np.ndarray:
    """Stack of every process's ``local`` (same shape everywhere): shape ``(processes, *local.shape)``."""
    sharding = NamedSharding(pmesh, P("processes"))
    global_ = jax.make_array_from_process_local_data(sharding, local[None])
    full = jax.jit(lambda a: a, out_shardings=NamedSharding(pmesh, P()))(global_)
    return np.asarray(full.addressable_data(0))


# The per-sample arguments, in the order of their descriptions in the one all-gather.
ROWS = ("x", "y", "sample_weight", "validation_data[0]", "validation_data[1]", "validation_data[2]")
# (row argument, the one whose rows it must match on every process)
ALIGNED = ((1, 0), (2, 0), (4, 3), (5, 3))
# How a process passed a per-sample argument: the first entry of its description.
ABSENT, LOCAL, GLOBAL, NO_ROWS, NOT_PAIR = range(5)
DESC = 11  # form, rows, ndim, dtype, 7 dims


def rows_of(a: Any) -> tuple[int, Any]:
    """``(form, value)``: this process's rows on the host, a global jax array as it is."""
    if a is None:
        return ABSENT, None
    if isinstance(a, jax.Array) and not a.is_fully_addressable:  # already one global array
        return GLOBAL, a
    try:
        local = np.asarray(jax.device_get(a))
    except Exception:  # refused after the all-gather, by every process alike
        return NO_ROWS, None
    return (LOCAL, local) if local.ndim > 0 else (NO_ROWS, None)


def describe(form: int, a: Any) -> np.ndarray:
    desc = np.zeros(DESC, np.int32)
    desc[0] = form
    if form in (LOCAL, GLOBAL):
        desc[1], desc[2], desc[3] = a.shape[0], a.ndim, ord(np.dtype(a.dtype).char)
        desc[4 : 4 + min(a.ndim - 1, 7)] = a.shape[1:8]
    return desc


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _leaf_bytes(leaf: Any) -> bytes:
    """A leaf as bytes equal across processes for equal values: an array's dtype, shape and
    values (a key's implementation and bits); anything else its repr, without addresses."""
    try:
        if isinstance(leaf, (jax.Array, np.ndarray, np.generic)) and np.dtype(leaf.dtype).kind != "O":
            if isinstance(leaf, jax.Array) and is_typed_key(leaf):
                return str(jax.random.key_impl(leaf)).encode() + _leaf_bytes(jax.random.key_data(leaf))
            if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
                if not leaf.is_fully_replicated:  # one global array, the same one on every process
                    return f"global {leaf.shape} {leaf.dtype}".encode()
                leaf = leaf.addressable_data(0)  # a replica: each process compares its own
            host = np.asarray(jax.device_get(leaf))
            host = host.astype(host.dtype.newbyteorder("="), copy=False)
            return f"{host.dtype.str} {host.shape}".encode() + host.tobytes()
    except Exception:
        pass
    try:
        text = repr(leaf)
    except Exception:
        text = type(leaf).__qualname__
    return _ADDRESS.sub("", text).encode()


def fingerprint(value: Any) -> np.ndarray:
    """64 bits of ``value`` (a pytree; its leaves by :func:`_leaf_bytes`) as 2 int32: equal on
    every process for equal values (Python's ``hash`` of a str is salted per process)."""
    leaves, treedef = jax.tree.flatten(value)
    digest = hashlib.blake2b(_ADDRESS.sub("", str(treedef)).encode(), digest_size=8)
    for leaf in leaves:
        data = _leaf_bytes(leaf)
        digest.update(len(data).to_bytes(8, "little") + data)
    return np.frombuffer(digest.digest(), np.int32)


def _processes(ps: Any) -> str:
    ps = [int(p) for p in ps]
    return f"process {ps[0]}" if len(ps) == 1 else f"processes {ps}"


def check_same(names: Sequence[str], prints: np.ndarray) -> None:
    """``prints``: ``(processes, names, 2)``; a ValueError naming each argument some process
    passed otherwise than process 0."""
    differ = [
        f"{name} (on {_processes(np.flatnonzero((prints[:, i] != prints[0, i]).any(axis=1)))})"
        for i, name in enumerate(names)
        if (prints[:, i] != prints[0, i]).any()
    ]
    if differ:
        raise ValueError(
            "every process must pass the same arguments but for its own shard of the data; "
            f"these differ from process 0's: {', '.join(differ)}"
        )


def _dtype_name(char: Any) -> str:
    try:
        return str(np.dtype(chr(char)))
    except TypeError:  # ml_dtypes' (bfloat16 is 'E') are not NumPy's by their character
        return f"dtype {chr(char)!r}"


def check_rows(descs: np.ndarray) -> None:
    """``descs``: ``(processes, len(ROWS), DESC)``; the same ValueError on every process for
    per-sample arguments that some process passes otherwise than the others."""
    if (descs[:, 3, 0] == NOT_PAIR).any():
        raise ValueError(
            "validation_data must be a pair (x_val, y_val) or a triple (x_val, y_val, sample_weight_val) "
            f"on every process; not on {_processes(np.flatnonzero(descs[:, 3, 0] == NOT_PAIR))}"
        )
    for i, name in enumerate(ROWS):
        forms = descs[:, i, 0]
        if (forms == NO_ROWS).any():
            raise ValueError(
                f"{name} must be an array with a leading samples axis on every process; "
                f"not on {_processes(np.flatnonzero(forms == NO_ROWS))}"
            )
        if len(set(forms.tolist())) > 1:
            how = {ABSENT: "None", LOCAL: "its rows", GLOBAL: "one global jax.Array"}
            passed = [how[int(f)] for f in forms]
            raise ValueError(
                f"{name}: every process must pass it alike (its own rows, or None); got {passed} (process 0, 1, ...)"
            )
        if len({tuple(d[2:]) for d in descs[:, i]}) > 1:
            got = [f"{tuple(int(s) for s in d[4 : 3 + d[2]])} {_dtype_name(d[3])}" for d in descs[:, i]]
            raise ValueError(
                f"{name}: every process must pass rows of the same shape and dtype; "
                f"got per-row shape and dtype {got} (process 0, 1, ...)"
            )
    for i, of in ALIGNED:
        if descs[0, i, 0] == descs[0, of, 0] == LOCAL and (descs[:, i, 1] != descs[:, of, 1]).any():
            counts = ", ".join(f"{int(d[i, 1])} rows for {int(d[of, 1])}" for d in descs)
            raise ValueError(
                f"{ROWS[i]}: each process must pass its own shard, one row per row of its {ROWS[of]} "
                f"(fnn.parallel.process_shard({ROWS[i]}), as for {ROWS[of]}); got {counts} (process 0, 1, ...)"
            )


def assemble_rows(form: int, a: Any, counts: np.ndarray, pmesh: Mesh) -> Any:
    if form == ABSENT:
        return None
    if form == GLOBAL:
        return np.asarray(multihost_utils.process_allgather(a, tiled=True))
    padded = np.zeros((int(counts.max()),) + a.shape[1:], a.dtype)
    padded[: len(a)] = a
    blocks = allgather_blocks(padded, pmesh)
    return np.concatenate([blocks[p, : counts[p]] for p in range(len(counts))])
