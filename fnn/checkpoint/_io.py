"""save, load and resume: pytrees flattened to entries and the metadata that describes them,
written atomically; read back, checked, and matched against the caller's templates.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn._keys import is_typed_key
from fnn._native import native
from fnn._validate import integer, npz_reason, path as check_path
from fnn._values import without_addresses
from fnn.checkpoint._atomic import write
from fnn.checkpoint._checks import check_file, check_history, check_history_fits, epochs_covered
from fnn.checkpoint._format import (
    FORMAT_VERSION,
    META,
    READS,
    decode,
    decode_state,
    encode,
    encode_history,
    encode_state,
    history_dict,
    jsonable,
    leaf_dtype,
    leaf_shape,
    native_dtype,
)


class Checkpoint(NamedTuple):
    """What :func:`load` returns. ``history`` is what was saved: a dict name -> list, or for the
    checkpoints of ``fit`` and ``fnn train`` a :class:`fnn.History`'s ``to_dict()`` record
    (``{"history": {name: list}, "epochs": ..., "times": ..., ...}``, which
    ``fnn.History.from_dict`` reads back); ``extra`` a dict."""

    params: Any
    opt_state: Any
    epoch: int
    key: Any
    history: dict[str, list[Any]] | None
    extra: dict[str, Any]
    callbacks: Any = None


class MissingTree(ValueError):
    """A template given for a tree (``tree``: ``"params"``, ``"opt_state"``) that the checkpoint
    does not hold; a ValueError, which ``fit`` words in its own terms."""

    def __init__(self, path: str, tree: str):
        super().__init__(
            f"{path}: the checkpoint holds no {tree} (it was saved without one), but {tree}= was given to "
            f"restore it into: load it without {tree}="
        )
        self.tree = tree


# ----------------------------------------------------------------------------------------------
# save / load.


def save(
    path: str | os.PathLike,
    *,
    params: Any,
    opt_state: Any = None,
    epoch: int | None = None,
    key: Any = None,
    history: Any = None,
    callbacks: Any = None,
    **extra: Any,
) -> None:
    """Write a checkpoint atomically to ``path``: a failed save leaves the previous file intact.

    Args:
        path: The file to write (a str or ``os.PathLike``), used exactly as given: parents are
            created, a symlink is written through, the mode of a file replaced is kept.
        params: A pytree of arrays, each leaf an array of numbers (a string or object leaf is
            refused before anything is written).
        opt_state: The optimizer state, a pytree of arrays, or None (a params-only checkpoint,
            which ``fit(checkpoint=path)`` cannot resume).
        epoch: The number of epochs done (``fit(checkpoint=path)`` goes on from there), an
            integer ``>= 0``. Left out, it is what ``history`` covers: a History's last recorded
            epoch + 1, a plain history's list length, 0 without one (so ``save(path,
            params=r.params, opt_state=r.opt_state, history=r.history)`` after a ``fit`` from
            epoch 0 can be resumed).
        key: A PRNG key (a raw uint32 key or a typed key), or None.
        history: A dict name -> list of values, one per epoch: a number, a string, None, or an
            array a callback logged (stored as an entry, given back as an array); or a
            :class:`fnn.History` (stored as its ``to_dict()`` record: epochs, times and why it
            stopped with the logs), or such a record; or None (``fit(checkpoint=path)``
            continues any of them).
        callbacks: The callbacks' state, nested (dicts with string keys, lists, numbers,
            strings, None and arrays; what ``fit`` gathers from each callback's ``get_state``),
            or None.
        **extra: Further entries: arrays (stored as entries) or JSON-like values, given back
            by :func:`load` in ``Checkpoint.extra``.

    Raises:
        ValueError: For a ``path`` that is a folder, ends with a separator, has a file as a
            parent or lies where nothing can be written; a negative ``epoch``; a history that
            ``fit(checkpoint=)`` could not continue: a plain one whose lists disagree in length
            or hold more values than ``epoch``, a History (record) with times and epochs of
            different lengths, or that records epochs not increasing or not before ``epoch``; a
            leaf that is a Python int beyond jax's default int dtype, or an array deleted
            (donated to a jitted call). Before anything is written.
        TypeError: For a ``path`` that is not a str or ``os.PathLike``; an ``epoch`` that is not
            an integer; a leaf, history, callbacks' state or extra of a kind that cannot be
            stored (a string or object array, a value that is not JSON-like, a dict key that is
            not a string). Before anything is written.
        OSError: Where writing fails (a full disk, a lost mount), naming ``path``: the previous
            checkpoint, if any, is left as it was.
    """
    path = check_path("path", path)  # its type now; where it may be written, once the payload is checked
    if epoch is not None:
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
            stored, meta = encode(leaf, entry)
            arrays[entry] = stored
            leaves.append({"path": jax.tree_util.keystr(p), **meta})
        trees[tree_name] = {"treedef": str(treedef), "leaves": leaves}
    extra_json: dict[str, Any] = {}
    extra_arrays: dict[str, Any] = {}
    for name, value in extra.items():
        if isinstance(value, (np.ndarray, jax.Array)):
            stored, meta = encode(value, f"extra {name!r}")
            arrays[f"extra[{name!r}]"] = stored
            extra_arrays[name] = meta
        else:
            extra_json[name] = jsonable(value, f"extra {name!r}")
    callbacks_meta: dict[str, Any] = {}
    callbacks_json = encode_state(callbacks, "callbacks", arrays, callbacks_meta)
    history_meta: dict[str, Any] = {}
    history = encode_history(history_dict(history), arrays, history_meta)
    check_history(history)  # what load would refuse is refused now
    if epoch is None:
        epoch = epochs_covered(history)
    # and what fit(checkpoint=) would refuse to continue (load reads such files still: a
    # checkpoint of an older fnn keeps its params readable)
    try:
        check_history_fits(history, epoch)
    except ValueError as err:
        raise ValueError(f"{err} (epoch= is the number of epochs done, which the history covers)") from None
    meta = {
        "format": "fnn.checkpoint",
        # version 1 where nothing needs 2: every fnn reads it
        "version": FORMAT_VERSION if history_meta or _holds_containers(history) else 1,
        "epoch": int(epoch),
        "history": history,
        "history_arrays": history_meta,
        "extra": extra_json,
        "extra_arrays": extra_arrays,
        "callbacks": callbacks_json,
        "callbacks_arrays": callbacks_meta,
        "trees": trees,
    }
    arrays[META] = np.asarray(json.dumps(meta))
    # a folder, a file as a parent, a trailing separator: named before writing (which creates
    # the missing folders), after every check of the payload
    write(check_path("path", path, writable=True), arrays)


def _holds_containers(history: Any) -> bool:
    """Whether a history's logs hold a list or dict for an epoch (arrays are entries, marked by
    dicts): what only version 2 reads."""
    if not isinstance(history, Mapping):
        return False
    logs = history["history"] if isinstance(history.get("history"), Mapping) else history
    return any(isinstance(v, (list, dict)) for values in logs.values() if isinstance(values, list) for v in values)


def _on_host(value: Any) -> Any:
    """``value`` with each jax array as a NumPy one (dicts keep their keys and order)."""
    if isinstance(value, jax.Array) and not is_typed_key(value):  # a key stays a key
        return np.asarray(jax.device_get(value))
    if isinstance(value, dict):
        return {k: _on_host(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_on_host(v) for v in value]
    return value


def _exists(path: str) -> bool:
    """Whether something is at ``path``; a folder on the way that may not be searched is the
    OS's PermissionError (``os.path.exists`` says False there: a file that exists would read as
    a fresh start, or as missing)."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    return True


def _read(path: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    if not _exists(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    # Our own handle: np.load(path) leaks its file when the zip directory is unreadable. Opening
    # it is outside the try: a folder or a file we may not read is the OS's error, not "corrupt".
    handle = open(path, "rb")  # noqa: SIM115  # closed by the with below
    try:
        with handle as f:
            z = np.load(f, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ValueError("a single .npy array, not an .npz archive")
            if META not in z.files:
                raise ValueError("no fnn metadata entry; not an fnn checkpoint")
            # reads (and CRC-checks) every entry now; one of the other byte order (a file written
            # on a big-endian machine or by hand) by its values, as jax takes no other
            arrays = {k: native(z[k], repr(k)) for k in z.files}
        meta = json.loads(str(arrays.pop(META)))
        if not isinstance(meta, dict) or meta.get("format") != "fnn.checkpoint":
            raise ValueError("metadata is not an fnn checkpoint's")
    except FileNotFoundError:
        raise
    except Exception as err:  # BadZipFile, EOFError, zlib.error, ValueError, OSError, ...
        raise ValueError(
            f"{path}: not a readable fnn checkpoint (corrupt, truncated or foreign file): {npz_reason(err)}"
        ) from None
    if meta.get("version") not in READS or isinstance(meta.get("version"), bool):
        raise ValueError(
            f"{path}: checkpoint format version {meta.get('version')!r} is not "
            f"supported (this fnn reads versions {', '.join(map(str, READS))}; a newer fnn wrote it?)"
        )
    return meta, arrays


def _restore(
    path: str, tree_name: str, record: Mapping[str, Any] | None, arrays: Mapping[str, np.ndarray], template: Any
) -> Any:
    if record is None:
        if template is not None:
            raise MissingTree(path, tree_name)
        return None
    # dtypes as the template's are named: '>f4' in a file written by hand is float32
    stored = {leaf["path"]: {**leaf, "dtype": native_dtype(leaf["dtype"])} for leaf in record["leaves"]}
    if template is None:
        values = {p: decode(arrays[tree_name + p], m) for p, m in stored.items()}
        # Without a template a single-leaf tree comes back as the leaf, otherwise as a flat
        # dict keyed by path strings.
        return values[""] if list(values) == [""] else values
    flat, treedef = jax.tree_util.tree_flatten_with_path(template)
    want = {jax.tree_util.keystr(p): leaf for p, leaf in flat}
    missing = [p for p in want if p not in stored]
    unexpected = [p for p in stored if p not in want]
    from_template = _older_injected_state(record["treedef"], treedef, template, missing, unexpected)
    taken = from_template or set()
    missing = [p for p in missing if p not in taken]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing from the file: {', '.join(tree_name + p for p in missing)}")
        if unexpected:
            parts.append(f"in the file but not in the template: {', '.join(tree_name + p for p in unexpected)}")
        raise ValueError(f"{path}: {tree_name} structure differs from the template; " + "; ".join(parts))
    if not same_structure(str(treedef), record["treedef"]) and from_template is None:
        raise ValueError(
            f"{path}: {tree_name} tree structure differs from the template: file "
            f"{record['treedef']} vs template {treedef}"
        )
    diffs = []
    recast = {}  # path -> the template's dtype, for a 0-d float held at another width
    for p, leaf in want.items():
        if p in taken:
            continue
        m = stored[p]
        shape = leaf_shape(leaf)
        if tuple(m["shape"]) != shape:
            diffs.append(f"{tree_name}{p}: shape {tuple(m['shape'])} in the file vs {shape} in the template")
        dtype = leaf_dtype(leaf)
        if m["dtype"] != dtype:
            if shape == () and {m["dtype"], dtype} == _HYPERPARAM_DTYPES:
                recast[p] = dtype
            else:
                diffs.append(f"{tree_name}{p}: dtype {m['dtype']} in the file vs {dtype} in the template")
    if diffs:
        raise ValueError(f"{path}: checkpoint does not match the template: " + "; ".join(diffs))
    leaves = []
    for p in want:
        if p in taken:
            leaves.append(want[p])
            continue
        m = stored[p]
        if p in recast:
            # An injected hyperparameter (learning rate, b1, ...) is float64 in a state made with
            # jax_enable_x64 on and float32 with it off, while params and moments are the same
            # in both: a run saved in one mode resumes in the other, the scalar cast to the
            # template's width (float32 is what that mode would have held anyway).
            stored_value = arrays[tree_name + p].view(jnp.dtype(m["dtype"]))
            with np.errstate(over="ignore"):
                held = stored_value.astype(jnp.dtype(recast[p]))
            if np.isfinite(stored_value) and not np.isfinite(held):
                raise ValueError(
                    f"{path}: {tree_name}{p} is {stored_value.item()!r} in the file, beyond the range of the "
                    f"template's {recast[p]}"
                )
            m = {**m, "dtype": recast[p]}
            leaves.append(decode(held, m))
        else:
            leaves.append(decode(arrays[tree_name + p], m))
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _older_injected_state(
    file_treedef: str, treedef: Any, template: Any, missing: list, unexpected: list
) -> set | None:
    """The paths to take from the template (possibly none) when the file holds an optimizer
    state written before injected states held their schedules' values (``schedule_values``: the
    field, and its leaves, missing; nothing else different): the values then came from the
    optimizer, as the template's do. None for any other file."""
    if same_structure(str(treedef), file_treedef) or unexpected or not all(".schedule_values" in p for p in missing):
        return None
    # imported here: fnn.optimizers is not needed to read a checkpoint, only to recognise this
    from fnn.optimizers._inject import without_schedule_values

    if not same_structure(str(jax.tree.structure(without_schedule_values(template))), file_treedef):
        return None
    return set(missing)


# An injected hyperparameter's dtypes with jax_enable_x64 on and off: the only recast on load.
_HYPERPARAM_DTYPES = {"float32", "float64"}


def same_structure(treedef: str, file_treedef: str) -> bool:
    """Whether two treedef strings describe the same structure, the addresses in them aside (a
    function held as a pytree node's static data prints ``<function f at 0x7f...>``, at another
    address in every process)."""
    return treedef == file_treedef or without_addresses(treedef) == without_addresses(file_treedef)


def load(path: str | os.PathLike, *, params: Any = None, opt_state: Any = None) -> Checkpoint:
    """Read a checkpoint written by :func:`save`, checked against its own metadata first.

    A 0-d float64 where the template has a float32, or the other way round (an injected
    hyperparameter: float64 in a state made with ``jax_enable_x64`` on, float32 with it off), is
    cast to the template's dtype, so a run saved in one mode resumes in the other (a value beyond
    float32's range is a ValueError); any other difference of dtype is one too. It resumes, but not as it
    would have gone on in the mode it was saved in where it has Dropout: ``jax.random.bernoulli``
    draws other masks from the same key with x64 on (float64 uniforms) than off, as Keras on
    JAX does.

    Args:
        path: The checkpoint file (a str or ``os.PathLike``).
        params: A template (e.g. freshly initialised params) giving the tree structure to
            restore the params into; the file must match it in paths, tree structure, shapes
            and dtypes. None: the params come back as a flat dict ``{keystr path: array}``.
        opt_state: A template for the optimizer state (e.g. ``opt.init(params)``), as
            ``params``; None: a flat dict, as for ``params``.

    Returns:
        A :class:`Checkpoint`: ``params``, ``opt_state``, ``epoch``, ``key``, ``history``,
        ``extra`` and ``callbacks`` as saved (a tree the file does not hold is None).

    Raises:
        FileNotFoundError: If there is no file at ``path``.
        IsADirectoryError: If ``path`` is a folder (as ``np.load`` raises).
        PermissionError: If the file may not be read (as ``np.load`` raises), or a folder on
            its way may not be searched.
        ValueError: For a corrupt, truncated or foreign file, or one whose arrays or metadata
            disagree with each other (naming the path and the field); for a file that does not
            match a template given (saying exactly what differs), or holds no tree for one.
        TypeError: For a ``path`` that is not a str or ``os.PathLike``.
    """
    path = os.fspath(path)
    meta, arrays = _read(path)
    try:
        check_file(meta, arrays)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: corrupt checkpoint (disagrees with its own metadata): {err}") from None
    trees = meta["trees"]
    out = {
        name: _restore(path, name, trees.get(name), arrays, tmpl)
        for name, tmpl in (("params", params), ("opt_state", opt_state), ("key", None))
    }
    extra = dict(meta["extra"])
    for name, m in meta["extra_arrays"].items():
        extra[name] = decode(arrays[f"extra[{name!r}]"], m)
    callbacks = decode_state(meta.get("callbacks"), arrays, meta.get("callbacks_arrays", {}))
    # a callback's arrays as the NumPy arrays a History holds (the later epochs' logs are NumPy)
    history = _on_host(decode_state(meta["history"], arrays, meta.get("history_arrays", {})))
    return Checkpoint(out["params"], out["opt_state"], meta["epoch"], out["key"], history, extra, callbacks)


def resume(path: str | os.PathLike, *, params: Any = None, opt_state: Any = None) -> Checkpoint | None:
    """:func:`load` if a checkpoint exists at ``path``, else None (a fresh start).

    A file that exists but does not load (corrupt, or another model's) is an error, never
    silently ignored.

    Args:
        path: The checkpoint file (a str or ``os.PathLike``); it need not exist.
        params: A template for the params, as :func:`load` takes it, or None.
        opt_state: A template for the optimizer state, as :func:`load` takes it, or None.

    Returns:
        The :class:`Checkpoint` :func:`load` reads, or None where nothing exists at ``path``.

    Raises:
        ValueError: As :func:`load` raises them, for a file that exists but does not load.
        IsADirectoryError: If ``path`` is a folder.
        PermissionError: If the file may not be read, or a folder on its way may not be searched
            (whether it exists cannot be told: never taken as a fresh start).
        TypeError: For a ``path`` that is not a str or ``os.PathLike``.
    """
    if not _exists(os.fspath(path)):
        return None
    return load(path, params=params, opt_state=opt_state)
