"""A loaded file checked against its own metadata, before any of it is used.

The checks raise TypeError / ValueError naming the field; ``load`` adds the file's name
(``save`` reuses the history check on what it is given).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn._validate import integer
from fnn.checkpoint._format import ARRAY, TREES

_SCALAR = (type(None), bool, int, float, str)


def check_history(history: Any) -> None:
    """None, a dict name -> list of values (numbers, strings, None, arrays stored as entries, lists
    of them), or ``fit``'s ``History.to_dict()`` (told apart by its ``history`` dict): its listed
    fields typed, one time per epoch."""
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


def epochs_covered(history: Mapping[str, Any] | None) -> int:
    """The epochs done that a history (checked by :func:`check_history`) covers: a
    :meth:`fnn.History.to_dict` record's last epoch + 1, a plain history's longest list, 0."""
    if not history:
        return 0
    if isinstance(history.get("history"), Mapping):
        return max(history.get("epochs", []), default=-1) + 1
    return max((len(values) for values in history.values()), default=0)


def check_history_fits(history: Mapping[str, Any] | None, epoch: int) -> None:
    """A history (checked by :func:`check_history`) that a checkpoint of ``epoch`` epochs done
    can hold, as ``fit(checkpoint=)`` continues it: a :meth:`fnn.History.to_dict` record's
    epochs increasing and before ``epoch``; a plain ``{name: [value per epoch]}``'s lists of one
    length (they are the same last epochs, so a name with fewer values could not be placed) and
    no longer than ``epoch``. ``save`` refuses what breaks this; ``fit`` names the file too."""
    if not history:
        return
    if isinstance(history.get("history"), Mapping):
        epochs = list(history.get("epochs", []))
        if any(e >= epoch for e in epochs) or epochs != sorted(set(epochs)):
            raise ValueError(
                f"history records epochs {epochs}, which are not increasing epochs before epoch={epoch}, "
                "the epochs the checkpoint holds"
            )
        return
    lengths = {name: len(values) for name, values in history.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(
            f"history lists disagree in length ({', '.join(f'{k!r}: {n}' for k, n in lengths.items())}): a plain "
            "history holds one value per epoch under every name, for the same last epochs (a History, "
            "or its to_dict(), records which epochs each name has)"
        )
    n = max(lengths.values())
    if n > epoch:
        raise ValueError(f"history holds {n} values per name, more than epoch={epoch}, the epochs the checkpoint holds")


def _check_logs(where: str, logs: Mapping[str, Any], epochs: int | None) -> None:
    for name, values in logs.items():
        if not isinstance(values, list):
            raise TypeError(f"{where}[{name!r}] must be a list, got {type(values).__name__}")
        for i, v in enumerate(values):
            if not _logged(v):
                raise TypeError(
                    f"{where}[{name!r}][{i}] must be a number, a string, None, an array, or a list or dict of them "
                    f"(one per epoch), got {type(v).__name__}"
                )
        if epochs is not None and len(values) > epochs:
            raise ValueError(f"{where}[{name!r}] has {len(values)} values for {epochs} epochs")


def _logged(value: Any) -> bool:
    """A value a history holds for one epoch: a number, a string, None, an array a callback
    logged (stored as an entry, marked here by a dict of one key), or a list of them (Keras's
    History keeps whatever a callback logs)."""
    if isinstance(value, list):
        return all(_logged(v) for v in value)
    if isinstance(value, dict) and ARRAY not in value:  # a dict a callback logged (string keys)
        return all(isinstance(k, str) and _logged(v) for k, v in value.items())
    return isinstance(value, _SCALAR) or (isinstance(value, dict) and ARRAY in value)


def _mapping(where: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"{where} must be a dict, got {type(value).__name__}")
    return value


@functools.lru_cache(maxsize=64)
def _key_struct(impl: str, shape: tuple[int, ...], dtype: str) -> jax.ShapeDtypeStruct:
    """What ``wrap_key_data`` makes of such stored data (JAX's own checks; traced, never run)."""
    return jax.eval_shape(lambda d: jax.random.wrap_key_data(d, impl=impl), jax.ShapeDtypeStruct(shape, dtype))


def _check_leaf(where: str, meta: Any, stored: np.ndarray | None) -> None:
    """A leaf's metadata, and the stored array against it (in the encodings of :func:`encode`)."""
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
        declared = np.dtype(jnp.dtype(dtype)).newbyteorder("=")  # as _read made the stored array
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


def _check_markers(value: Any, where: str, field: str, listed: Mapping[str, Any], used: set[str]) -> None:
    """The array markers of ``field``'s JSON (the callbacks' state, the history): each
    ``{"__array__": entry}`` alone, entry listed in ``{field}_arrays``."""
    if isinstance(value, dict) and ARRAY in value:
        entry = value[ARRAY]
        if len(value) != 1 or not isinstance(entry, str):
            raise ValueError(f"{where}: an array marker must be {{{ARRAY!r}: entry name}} alone, got {value!r}")
        if entry not in listed:
            raise ValueError(f"{where}: entry {entry} is not in {field}_arrays")
        used.add(entry)
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_markers(v, f"{where}[{k!r}]", field, listed, used)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_markers(v, f"{where}[{i}]", field, listed, used)


def check_file(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
    """Every field :func:`save` writes (``callbacks`` since the callbacks' state was added)."""
    for field in ("epoch", "history", "extra", "extra_arrays", "trees"):
        if field not in meta:
            raise ValueError(f"{field}: missing from the metadata")
    integer("epoch", meta["epoch"], 0)
    check_history(meta["history"])
    claimed: set[str] = set()

    def claim(entry: str, leaf: Any) -> None:
        if entry in claimed:
            raise ValueError(f"{entry}: listed twice")
        claimed.add(entry)
        _check_leaf(entry, leaf, arrays.get(entry))

    for name, record in _mapping("trees", meta["trees"]).items():
        if name not in TREES:
            raise ValueError(f"trees: unknown tree {name!r} (a checkpoint holds {', '.join(TREES)})")
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
    # the arrays of the callbacks' state, and those callbacks logged in the history
    for field in ("callbacks", "history"):
        listed = _mapping(f"{field}_arrays", meta.get(f"{field}_arrays", {}))
        for entry, leaf in listed.items():
            claim(entry, leaf)
        used: set[str] = set()
        _check_markers(meta.get(field), field, field, listed, used)
        for entry in listed:
            if entry not in used:
                raise ValueError(f"{entry}: listed in {field}_arrays but not used by the {field}")
    unlisted = sorted(set(arrays) - claimed)
    if unlisted:
        raise ValueError(f"{', '.join(unlisted)}: in the file but not described by the metadata")
