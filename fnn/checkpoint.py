"""Checkpoints: params, optimizer state, epoch, PRNG key and history in ONE ``.npz`` file.

Layout of the file (plain ``numpy.savez``, readable without fnn):

* one entry per array leaf, named ``<tree><keystr(path)>``, e.g. ``params[0]['w']``,
  ``opt_state[0].mu[1]['b']``, ``key``; ``extra`` arrays as ``extra['name']``;
* ``callbacks``: the callbacks' state (``fit`` saves it so that a resumed run continues them
  exactly): nested dicts and lists whose numbers, strings and ``None`` go to the JSON (floats
  round-trip exactly, ``inf`` and ``nan`` included) and whose arrays are entries
  ``callbacks<path>``, e.g. ``callbacks[0]['best_weights'][1]['w']``;
* ``__fnn_checkpoint__``: a JSON string with the format version, epoch, history, the JSON part
  of ``extra`` and ``callbacks``, and for each tree its treedef string and per-leaf path, dtype
  and shape.

Dtypes NumPy cannot store (bfloat16, float8, ...) are stored as an unsigned-int view of the same
width and viewed back on load; typed PRNG keys are stored as ``jax.random.key_data`` and
rewrapped with their implementation, so every leaf round-trips bit for bit.

Writes go to a temporary file ``.<name>.<random>.tmp`` beside the target, are flushed to disk and
then ``os.replace``d over it: a failure at any point leaves the previous checkpoint intact. The
writer holds an exclusive ``flock`` on its temporary file until the rename; a writer killed mid-save
(``kill -9``, power loss) leaves its file unlocked, and the next save of the same target removes
every such file that nobody holds (only names of that pattern; where files cannot be locked, on
Windows or a file system without locks, those older than an hour). A replaced file keeps
its permission bits, a new one gets ``0o666`` less the umask like ``open``, and a symlink is
written through: its target is replaced (created, when dangling), never the link.

:func:`load` checks the file against its own metadata before using any of it: the metadata's
fields and types, every entry listed exactly once and present, nothing unlisted, and each stored
array's dtype and shape against the declared ones (in the encodings above); any disagreement is a
ValueError naming the file and the field. Fields this version does not know are ignored.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import secrets
import stat
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn._validate import integer, is_typed_key

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["Checkpoint", "save", "load", "resume", "FORMAT_VERSION"]

FORMAT_VERSION = 1
_META = "__fnn_checkpoint__"
_TREES = ("params", "opt_state", "key")


class Checkpoint(NamedTuple):
    """What :func:`load` returns. ``history`` is a dict name -> list; ``extra`` a dict."""

    params: Any
    opt_state: Any
    epoch: int
    key: Any
    history: dict[str, list[Any]] | None
    extra: dict[str, Any]
    callbacks: Any = None


# ----------------------------------------------------------------------------------------------
# Leaves <-> storable NumPy arrays.


def _as_numpy(leaf: Any) -> np.ndarray:
    """A leaf as the NumPy array it stands for (Python scalars take jax's default dtype)."""
    if isinstance(leaf, (np.ndarray, jax.Array, np.generic)):
        return np.asarray(leaf)
    return np.asarray(leaf, dtype=jax.dtypes.canonicalize_dtype(np.asarray(leaf).dtype))


def _leaf_dtype(leaf: Any) -> str:
    """The dtype a leaf is checked and restored with (``key<fry>`` style for typed keys).

    Templates may be arrays, Python scalars or ``jax.ShapeDtypeStruct`` (from ``eval_shape``).
    """
    if is_typed_key(leaf) or isinstance(leaf, jax.ShapeDtypeStruct):
        return str(leaf.dtype)
    return str(_as_numpy(leaf).dtype)


def _leaf_shape(leaf: Any) -> tuple[int, ...]:
    if isinstance(leaf, jax.ShapeDtypeStruct):
        return tuple(leaf.shape)
    return tuple(np.shape(leaf))


def _encode(leaf: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """(array to store, metadata to restore it)."""
    if is_typed_key(leaf):
        data = np.asarray(jax.random.key_data(leaf))
        return data, {"dtype": str(leaf.dtype), "shape": list(leaf.shape), "impl": str(jax.random.key_impl(leaf))}
    arr = _as_numpy(leaf)
    meta = {"dtype": str(arr.dtype), "shape": list(arr.shape)}
    if arr.dtype.kind == "V" or arr.dtype.type.__module__ != "numpy":
        # ml_dtypes (bfloat16, float8_*, int4) would be saved as opaque void bytes.
        arr = arr.view(np.dtype(f"u{arr.dtype.itemsize}"))
    return arr, meta


def _decode(stored: np.ndarray, meta: Mapping[str, Any]) -> Any:
    if "impl" in meta:
        return jax.random.wrap_key_data(jax.device_put(stored), impl=meta["impl"])
    dtype = jnp.dtype(meta["dtype"])
    arr = stored.view(dtype) if stored.dtype != dtype else stored
    if jax.dtypes.canonicalize_dtype(dtype) != dtype:
        return arr  # a 64-bit leaf without jax_enable_x64: keep it exact in NumPy
    return jax.device_put(arr)  # (jnp.asarray would compile a program per shape)


# ----------------------------------------------------------------------------------------------
# JSON.


def _jsonable(value: Any, where: str) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (np.ndarray, jax.Array, np.generic)) and np.ndim(value) == 0:
        return np.asarray(value).item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(
        f"{where} must be JSON-like (numbers, strings, lists, dicts) or an array; got {type(value).__name__}"
    )


def _history_dict(history: Any) -> Any:
    if history is None or isinstance(history, Mapping):
        return history
    for attr in ("history", "_asdict", "to_dict"):
        value = getattr(history, attr, None)
        if isinstance(value, Mapping):
            return value
        if callable(value):
            return value()
    raise TypeError(f"history must be a dict name -> list; got {type(history).__name__}")


_ARRAY = "__array__"  # marks, in the JSON of a state, where an array entry goes back


def _encode_state(value: Any, where: str, arrays: dict[str, np.ndarray], metas: dict[str, Any]) -> Any:
    """A nested state as JSON, its arrays moved to ``arrays`` (entry ``where``) with their
    metadata in ``metas``."""
    if isinstance(value, (np.ndarray, jax.Array)):
        stored, meta = _encode(value)
        arrays[where], metas[where] = stored, meta
        return {_ARRAY: where}
    if isinstance(value, Mapping):
        if any(not isinstance(k, str) for k in value) or _ARRAY in value:
            raise TypeError(f"{where}: a state's dict keys must be strings (and not {_ARRAY!r})")
        return {k: _encode_state(v, f"{where}[{k!r}]", arrays, metas) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode_state(v, f"{where}[{i}]", arrays, metas) for i, v in enumerate(value)]
    return _jsonable(value, where)


def _decode_state(value: Any, arrays: Mapping[str, np.ndarray], metas: Mapping[str, Any]) -> Any:
    if isinstance(value, dict) and _ARRAY in value:
        return _decode(arrays[value[_ARRAY]], metas[value[_ARRAY]])
    if isinstance(value, dict):
        return {k: _decode_state(v, arrays, metas) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_state(v, arrays, metas) for v in value]
    return value


# ----------------------------------------------------------------------------------------------
# A file checked against its own metadata. The checks raise TypeError / ValueError naming the
# field; load adds the file's name (save reuses the history check on what it is given).

_SCALAR = (type(None), bool, int, float, str)


def _check_history(history: Any) -> None:
    """None, a dict name -> list of numbers / strings / None, or ``fit``'s ``History.to_dict()``
    (told apart by its ``history`` dict): its listed fields typed, one time per epoch."""
    if history is None:
        return
    if not isinstance(history, Mapping):
        raise TypeError(f"history must be a dict, got {type(history).__name__}")
    if not isinstance(history.get("history"), Mapping):
        _check_logs("history", history, None)
        return
    epochs = history.get("epochs", [])
    for name in ("epochs", "times"):
        values = history.get(name, [])
        if not isinstance(values, list):
            raise TypeError(f"history[{name!r}] must be a list, got {type(values).__name__}")
        for i, v in enumerate(values):
            if name == "epochs":
                integer(f"history['epochs'][{i}]", v, 0)
            elif isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"history['times'][{i}] must be a number, got {type(v).__name__}")
    if len(history.get("times", epochs)) != len(epochs):
        raise ValueError(f"history['times'] has {len(history['times'])} values for {len(epochs)} epochs")
    integer("history['iterations_per_epoch']", history.get("iterations_per_epoch", 0), 0)
    if not isinstance(history.get("stop_reason", ""), str):
        raise TypeError(f"history['stop_reason'] must be a string, got {history['stop_reason']!r}")
    if history.get("stopped_epoch") is not None:
        integer("history['stopped_epoch']", history["stopped_epoch"], 0)
    _check_logs("history['history']", history["history"], len(epochs))


def _check_logs(where: str, logs: Mapping[str, Any], epochs: int | None) -> None:
    for name, values in logs.items():
        if not isinstance(values, list):
            raise TypeError(f"{where}[{name!r}] must be a list, got {type(values).__name__}")
        for i, v in enumerate(values):
            if not isinstance(v, _SCALAR):
                raise TypeError(f"{where}[{name!r}][{i}] must be a number, a string or None, got {type(v).__name__}")
        if epochs is not None and len(values) > epochs:
            raise ValueError(f"{where}[{name!r}] has {len(values)} values for {epochs} epochs")


def _mapping(where: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"{where} must be a dict, got {type(value).__name__}")
    return value


@functools.lru_cache(maxsize=64)
def _key_struct(impl: str, shape: tuple[int, ...], dtype: str) -> jax.ShapeDtypeStruct:
    """What ``wrap_key_data`` makes of such stored data (JAX's own checks; traced, never run)."""
    return jax.eval_shape(lambda d: jax.random.wrap_key_data(d, impl=impl), jax.ShapeDtypeStruct(shape, dtype))


def _check_leaf(where: str, meta: Any, stored: np.ndarray | None) -> None:
    """A leaf's metadata, and the stored array against it (in the encodings of :func:`_encode`)."""
    meta = _mapping(f"{where}: its metadata", meta)
    dtype, shape = meta.get("dtype"), meta.get("shape")
    if not isinstance(dtype, str):
        raise TypeError(f"{where}: dtype must be a string, got {dtype!r}")
    if not isinstance(shape, list) or any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in shape):
        raise ValueError(f"{where}: shape must be a list of sizes >= 0, got {shape!r}")
    if stored is None:
        raise ValueError(f"{where}: the entry is listed but missing")
    if "impl" in meta:
        impl = meta["impl"]
        if not isinstance(impl, str):
            raise TypeError(f"{where}: a typed key's impl must be a string, got {impl!r}")
        try:
            made = _key_struct(impl, stored.shape, str(stored.dtype))
        except Exception as err:  # unknown impl (ValueError), data of the wrong shape or dtype (TypeError)
            why = str(err).split(" for impl=")[0]  # (the rest is the implementation's repr)
            raise ValueError(f"{where}: key data {stored.dtype}{list(stored.shape)}, impl {impl!r}: {why}") from None
        if str(made.dtype) != dtype or made.shape != tuple(shape):
            raise ValueError(
                f"{where}: key data with impl {impl!r} makes {made.dtype}{list(made.shape)}, "
                f"but the metadata says {dtype}{shape}"
            )
        return
    try:
        declared = np.dtype(jnp.dtype(dtype))
    except TypeError:
        hint = " (a typed key needs its impl)" if dtype.startswith("key<") else ""
        raise ValueError(f"{where}: unknown dtype {dtype!r}{hint}") from None
    if declared.type.__module__ != "numpy":  # ml_dtypes: its unsigned-int view
        want = np.dtype(f"u{declared.itemsize}")
        if stored.dtype != want:
            raise ValueError(f"{where}: stored as {stored.dtype}, but {dtype} is stored as its {want} view")
    elif declared.kind not in "biufc":
        raise ValueError(f"{where}: dtype {dtype!r} is not an array dtype a checkpoint stores")
    elif stored.dtype != declared:
        raise ValueError(f"{where}: stored as {stored.dtype}, but the metadata says {dtype}")
    if stored.shape != tuple(shape):
        raise ValueError(f"{where}: stored with shape {stored.shape}, but the metadata says {tuple(shape)}")


def _check_markers(value: Any, where: str, listed: Mapping[str, Any], used: set[str]) -> None:
    """The array markers of a state's JSON: each ``{"__array__": entry}`` alone, entry listed."""
    if isinstance(value, dict) and _ARRAY in value:
        entry = value[_ARRAY]
        if len(value) != 1 or not isinstance(entry, str):
            raise ValueError(f"{where}: an array marker must be {{{_ARRAY!r}: entry name}} alone, got {value!r}")
        if entry not in listed:
            raise ValueError(f"{where}: entry {entry} is not in callbacks_arrays")
        used.add(entry)
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_markers(v, f"{where}[{k!r}]", listed, used)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_markers(v, f"{where}[{i}]", listed, used)


def _check(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
    """Every field :func:`save` writes (``callbacks`` since the callbacks' state was added)."""
    for field in ("epoch", "history", "extra", "extra_arrays", "trees"):
        if field not in meta:
            raise ValueError(f"{field}: missing from the metadata")
    integer("epoch", meta["epoch"], 0)
    _check_history(meta["history"])
    claimed: set[str] = set()

    def claim(entry: str, leaf: Any) -> None:
        if entry in claimed:
            raise ValueError(f"{entry}: listed twice")
        claimed.add(entry)
        _check_leaf(entry, leaf, arrays.get(entry))

    for name, record in _mapping("trees", meta["trees"]).items():
        if name not in _TREES:
            raise ValueError(f"trees: unknown tree {name!r} (a checkpoint holds {', '.join(_TREES)})")
        record = _mapping(f"trees[{name!r}]", record)
        if not isinstance(record.get("treedef"), str):
            raise TypeError(f"trees[{name!r}]: treedef must be a string, got {record.get('treedef')!r}")
        if not isinstance(record.get("leaves"), list):
            raise TypeError(f"trees[{name!r}]: leaves must be a list, got {record.get('leaves')!r}")
        for i, leaf in enumerate(record["leaves"]):
            leaf = _mapping(f"trees[{name!r}]['leaves'][{i}]", leaf)
            if not isinstance(leaf.get("path"), str):
                raise TypeError(f"trees[{name!r}]['leaves'][{i}]: path must be a string, got {leaf.get('path')!r}")
            claim(name + leaf["path"], leaf)
    extra = _mapping("extra", meta["extra"])
    for name, leaf in _mapping("extra_arrays", meta["extra_arrays"]).items():
        if name in extra:
            raise ValueError(f"extra: {name!r} listed twice (as a JSON value and as an array)")
        claim(f"extra[{name!r}]", leaf)
    listed = _mapping("callbacks_arrays", meta.get("callbacks_arrays", {}))
    for entry, leaf in listed.items():
        claim(entry, leaf)
    used: set[str] = set()
    _check_markers(meta.get("callbacks"), "callbacks", listed, used)
    for entry in listed:
        if entry not in used:
            raise ValueError(f"{entry}: listed in callbacks_arrays but not used by the callbacks' state")
    unlisted = sorted(set(arrays) - claimed)
    if unlisted:
        raise ValueError(f"{', '.join(unlisted)}: in the file but not described by the metadata")


# ----------------------------------------------------------------------------------------------
# save / load.


def save(
    path: str | os.PathLike,
    *,
    params: Any,
    opt_state: Any = None,
    epoch: int = 0,
    key: Any = None,
    history: Any = None,
    callbacks: Any = None,
    **extra: Any,
) -> None:
    """Write a checkpoint atomically to ``path`` (used exactly as given; parents are created; a
    symlink is written through, the mode of a file replaced is kept).

    ``params``/``opt_state``/``key`` are pytrees of arrays (key: a raw uint32 key or a typed
    key); ``history`` a dict name -> list of numbers; ``callbacks`` a nested state (dicts with
    string keys, lists, numbers, strings, None and arrays; what ``fit`` gathers from each
    callback's ``get_state``); ``extra`` keywords are arrays (stored as entries) or JSON-like
    values.
    """
    path = os.fspath(path)
    epoch = integer("epoch", epoch, 0)
    arrays: dict[str, np.ndarray] = {}
    trees: dict[str, Any] = {}
    for tree_name, tree in (("params", params), ("opt_state", opt_state), ("key", key)):
        if tree is None:
            continue
        flat, treedef = jax.tree_util.tree_flatten_with_path(tree)
        leaves = []
        for p, leaf in flat:
            entry = tree_name + jax.tree_util.keystr(p)
            stored, meta = _encode(leaf)
            arrays[entry] = stored
            leaves.append({"path": jax.tree_util.keystr(p), **meta})
        trees[tree_name] = {"treedef": str(treedef), "leaves": leaves}
    extra_json: dict[str, Any] = {}
    extra_arrays: dict[str, Any] = {}
    for name, value in extra.items():
        if isinstance(value, (np.ndarray, jax.Array)):
            stored, meta = _encode(value)
            arrays[f"extra[{name!r}]"] = stored
            extra_arrays[name] = meta
        else:
            extra_json[name] = _jsonable(value, f"extra {name!r}")
    callbacks_meta: dict[str, Any] = {}
    callbacks_json = _encode_state(callbacks, "callbacks", arrays, callbacks_meta)
    history = _jsonable(_history_dict(history), "history")
    _check_history(history)  # what load would refuse is refused now
    meta = {
        "format": "fnn.checkpoint",
        "version": FORMAT_VERSION,
        "epoch": int(epoch),
        "history": history,
        "extra": extra_json,
        "extra_arrays": extra_arrays,
        "callbacks": callbacks_json,
        "callbacks_arrays": callbacks_meta,
        "trees": trees,
    }
    arrays[_META] = np.asarray(json.dumps(meta))
    _write(path, arrays)


# ----------------------------------------------------------------------------------------------
# Writing: atomic, locked, cleaning up after writers that were killed.

_STALE_AFTER = 3600.0  # seconds; only where files cannot be locked


def _write(path: str, arrays: Mapping[str, np.ndarray]) -> None:
    target = os.path.realpath(path)  # through a symlink: os.replace would replace the link itself
    directory, name = os.path.split(target)
    os.makedirs(directory, exist_ok=True)
    _remove_stale(directory, name)
    try:
        mode: int | None = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = None  # the temporary file already has open()'s mode: 0o666 less the umask
    fd, tmp = _create_temp(directory, name)
    try:
        with os.fdopen(fd, "wb") as f:  # closed (and unlocked) only after the rename
            np.savez(f, **arrays)  # type: ignore[arg-type]  # numpy's stub types the first kwarg
            f.flush()
            os.fsync(f.fileno())
            if mode is not None:
                os.chmod(tmp, mode)
            if fcntl is None:
                f.close()  # Windows cannot rename an open file
            os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _create_temp(directory: str, name: str) -> tuple[int, str]:
    """A new empty ``.<name>.<random>.tmp`` beside the target, exclusively locked."""
    while True:
        tmp = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        if fcntl is None:
            return fd, tmp
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a file system without locks: unlocked, as on Windows
            return fd, tmp
        # A cleaner may have taken the file for stale between its creation and this lock: it
        # removes only while holding the lock, so once locked the name is still ours, or gone.
        with contextlib.suppress(FileNotFoundError):
            if os.path.samestat(os.stat(tmp), os.fstat(fd)):
                return fd, tmp
        os.close(fd)


def _remove_stale(directory: str, name: str) -> None:
    """Removes the temporary files of this target that no live writer holds (best effort)."""
    pattern = re.compile(re.escape(f".{name}.") + r"[a-z0-9_]+\.tmp")  # also tempfile.mkstemp's names
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for entry in names:
        if pattern.fullmatch(entry):
            with contextlib.suppress(OSError):
                _remove_if_unheld(os.path.join(directory, entry))


def _remove_if_unheld(candidate: str) -> None:
    if fcntl is not None:
        flags = os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(candidate, os.O_RDWR | flags)  # NFS emulates flock with locks needing write access
        except PermissionError:
            fd = os.open(candidate, os.O_RDONLY | flags)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return  # a writer is at work on it
        except OSError:
            os.close(fd)  # a file system without locks: judged by age, below
        else:
            try:
                held = os.fstat(fd)
                if stat.S_ISREG(held.st_mode) and os.path.samestat(held, os.lstat(candidate)):
                    os.unlink(candidate)  # while holding the lock (see _create_temp)
            finally:
                os.close(fd)
            return
    if time.time() - os.lstat(candidate).st_mtime > _STALE_AFTER:
        os.unlink(candidate)


def _fsync_dir(directory: str) -> None:
    # Makes the rename itself durable; not every platform can open a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read(path: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        # Our own handle: np.load(path) leaks its file when the zip directory is unreadable.
        with open(path, "rb") as f:
            z = np.load(f, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ValueError("a single .npy array, not an .npz archive")
            if _META not in z.files:
                raise ValueError("no fnn metadata entry; not an fnn checkpoint")
            arrays = {k: z[k] for k in z.files}  # reads (and CRC-checks) every entry now
        meta = json.loads(str(arrays.pop(_META)))
        if not isinstance(meta, dict) or meta.get("format") != "fnn.checkpoint":
            raise ValueError("metadata is not an fnn checkpoint's")
    except FileNotFoundError:
        raise
    except Exception as err:  # BadZipFile, EOFError, zlib.error, ValueError, OSError, ...
        raise ValueError(f"{path}: not a readable fnn checkpoint (corrupt, truncated or foreign file): {err}") from None
    if meta.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: checkpoint format version {meta.get('version')} is not "
            f"supported (this fnn reads version {FORMAT_VERSION})"
        )
    return meta, arrays


def _restore(
    path: str, tree_name: str, record: Mapping[str, Any] | None, arrays: Mapping[str, np.ndarray], template: Any
) -> Any:
    if record is None:
        if template is not None:
            raise ValueError(f"{path}: the checkpoint holds no {tree_name}, but a {tree_name} template was given")
        return None
    stored = {leaf["path"]: leaf for leaf in record["leaves"]}
    if template is None:
        values = {p: _decode(arrays[tree_name + p], m) for p, m in stored.items()}
        # Without a template a single-leaf tree comes back as the leaf, otherwise as a flat
        # dict keyed by path strings.
        return values[""] if list(values) == [""] else values
    flat, treedef = jax.tree_util.tree_flatten_with_path(template)
    want = {jax.tree_util.keystr(p): leaf for p, leaf in flat}
    missing = [p for p in want if p not in stored]
    unexpected = [p for p in stored if p not in want]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing from the file: {', '.join(tree_name + p for p in missing)}")
        if unexpected:
            parts.append(f"in the file but not in the template: {', '.join(tree_name + p for p in unexpected)}")
        raise ValueError(f"{path}: {tree_name} structure differs from the template; " + "; ".join(parts))
    if str(treedef) != record["treedef"]:
        raise ValueError(
            f"{path}: {tree_name} tree structure differs from the template: file "
            f"{record['treedef']} vs template {treedef}"
        )
    diffs = []
    for p, leaf in want.items():
        m = stored[p]
        shape = _leaf_shape(leaf)
        if tuple(m["shape"]) != shape:
            diffs.append(f"{tree_name}{p}: shape {tuple(m['shape'])} in the file vs {shape} in the template")
        dtype = _leaf_dtype(leaf)
        if m["dtype"] != dtype:
            diffs.append(f"{tree_name}{p}: dtype {m['dtype']} in the file vs {dtype} in the template")
    if diffs:
        raise ValueError(f"{path}: checkpoint does not match the template: " + "; ".join(diffs))
    return jax.tree_util.tree_unflatten(treedef, [_decode(arrays[tree_name + p], stored[p]) for p in want])


def load(path: str | os.PathLike, *, params: Any = None, opt_state: Any = None) -> Checkpoint:
    """Read a checkpoint written by :func:`save`.

    ``params``/``opt_state`` are templates (e.g. freshly initialised ones) that give the tree
    structure; the file must match them in paths, tree structure, shapes and dtypes, or a
    ValueError says exactly what differs. Without a template a tree comes back as a flat dict
    ``{keystr path: array}``. Missing file: FileNotFoundError; corrupt, truncated or foreign
    file, or one whose arrays or metadata disagree with each other: ValueError naming the path
    and the field.
    """
    path = os.fspath(path)
    meta, arrays = _read(path)
    try:
        _check(meta, arrays)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: corrupt checkpoint (disagrees with its own metadata): {err}") from None
    trees = meta["trees"]
    out = {
        name: _restore(path, name, trees.get(name), arrays, tmpl)
        for name, tmpl in (("params", params), ("opt_state", opt_state), ("key", None))
    }
    extra = dict(meta["extra"])
    for name, m in meta["extra_arrays"].items():
        extra[name] = _decode(arrays[f"extra[{name!r}]"], m)
    callbacks = _decode_state(meta.get("callbacks"), arrays, meta.get("callbacks_arrays", {}))
    return Checkpoint(out["params"], out["opt_state"], meta["epoch"], out["key"], meta["history"], extra, callbacks)


def resume(path: str | os.PathLike, *, params: Any = None, opt_state: Any = None) -> Checkpoint | None:
    """:func:`load` if a checkpoint exists at ``path``, else None (a fresh start).

    A file that exists but does not load (corrupt, or another model's) is an error, never
    silently ignored.
    """
    if not os.path.exists(os.fspath(path)):
        return None
    return load(path, params=params, opt_state=opt_state)


def __dir__() -> list[str]:
    """The public API only (implementation imports stay out of ``dir``)."""
    return sorted(__all__)
