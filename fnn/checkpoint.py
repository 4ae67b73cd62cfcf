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

Writes go to a temporary file in the target directory, are flushed to disk and then
``os.replace``d over the target: a failure at any point leaves the previous checkpoint intact.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn._validate import integer, is_typed_key

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


def _decode_state(value: Any, path: str, arrays: Mapping[str, np.ndarray], metas: Mapping[str, Any]) -> Any:
    if isinstance(value, dict) and _ARRAY in value:
        entry = value[_ARRAY]
        if entry not in arrays or entry not in metas:
            raise ValueError(f"{path}: entry {entry} is listed but missing (corrupt file)")
        return _decode(arrays[entry], metas[entry])
    if isinstance(value, dict):
        return {k: _decode_state(v, path, arrays, metas) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_state(v, path, arrays, metas) for v in value]
    return value


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
    """Write a checkpoint atomically to ``path`` (used exactly as given; parents are created).

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
    meta = {
        "format": "fnn.checkpoint",
        "version": FORMAT_VERSION,
        "epoch": int(epoch),
        "history": _jsonable(_history_dict(history), "history"),
        "extra": extra_json,
        "extra_arrays": extra_arrays,
        "callbacks": callbacks_json,
        "callbacks_arrays": callbacks_meta,
        "trees": trees,
    }
    arrays[_META] = np.asarray(json.dumps(meta))

    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]  # numpy's stub types the first kwarg
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


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
    for p in stored:
        if tree_name + p not in arrays:
            raise ValueError(f"{path}: entry {tree_name + p} is listed but missing (corrupt file)")
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
    file: ValueError naming the path.
    """
    path = os.fspath(path)
    meta, arrays = _read(path)
    trees = meta.get("trees", {})
    out = {
        name: _restore(path, name, trees.get(name), arrays, tmpl)
        for name, tmpl in (("params", params), ("opt_state", opt_state), ("key", None))
    }
    extra = dict(meta.get("extra", {}))
    for name, m in meta.get("extra_arrays", {}).items():
        extra[name] = _decode(arrays[f"extra[{name!r}]"], m)
    callbacks = _decode_state(meta.get("callbacks"), path, arrays, meta.get("callbacks_arrays", {}))
    return Checkpoint(
        out["params"], out["opt_state"], int(meta["epoch"]), out["key"], meta.get("history"), extra, callbacks
    )


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
