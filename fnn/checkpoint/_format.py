"""The file format: leaves as storable NumPy arrays (and back), and the JSON of the metadata,
the history and the callbacks' state (its arrays moved out to entries of their own).

The layout itself is described in :mod:`fnn.checkpoint`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn._keys import is_typed_key
from fnn._native import native
from fnn._placement import to_host

# 2: a history may hold what callbacks log beside numbers (arrays as entries, lists, dicts); a
# file without them is written as version 1, which every fnn reads
FORMAT_VERSION = 2
READS = (1, 2)
META = "__fnn_checkpoint__"  # the entry holding the JSON metadata
TREES = ("params", "opt_state", "key")


# ----------------------------------------------------------------------------------------------
# Leaves <-> storable NumPy arrays.


def _as_numpy(leaf: Any) -> np.ndarray:
    """A leaf as the NumPy array it stands for (Python scalars take jax's default dtype)."""
    if isinstance(leaf, (np.ndarray, jax.Array, np.generic)):
        return to_host(leaf)  # a jax array's read explicitly: a caller's transfer guard allows it
    return np.asarray(leaf, dtype=jax.dtypes.canonicalize_dtype(np.asarray(leaf).dtype))


def _storable(leaf: Any, where: str) -> np.ndarray:
    """:func:`_as_numpy`, its failures named by ``where``: an int beyond jax's default int dtype,
    an array deleted (donated to a jitted call, which consumed its buffer)."""
    if isinstance(leaf, jax.Array) and leaf.is_deleted():
        raise ValueError(
            f"{where}: the array has been deleted (donated to a jitted call, e.g. fnn.train_step's params "
            "and opt_state): save the arrays that call returned"
        )
    try:
        return _as_numpy(leaf)
    except OverflowError as err:
        raise ValueError(f"{where}: {err} (jax's default int dtype; jax_enable_x64 makes it int64)") from None


def leaf_dtype(leaf: Any) -> str:
    """The dtype a leaf is checked and restored with (``key<fry>`` style for typed keys).

    Templates may be arrays, Python scalars or ``jax.ShapeDtypeStruct`` (from ``eval_shape``).
    """
    if is_typed_key(leaf) or isinstance(leaf, jax.ShapeDtypeStruct):
        return str(leaf.dtype)
    if isinstance(leaf, (np.ndarray, jax.Array, np.generic)):  # its dtype, not a copy of its values
        return native_dtype(str(np.dtype(leaf.dtype)))
    return native_dtype(str(_as_numpy(leaf).dtype))


def native_dtype(name: str) -> str:
    """A dtype's name in native byte order (``'>f4'`` -> ``'float32'``; a typed key's as it is):
    what a checkpoint stores and compares, whatever the order of the array it came from."""
    try:
        return str(jnp.dtype(name).newbyteorder("="))
    except TypeError:  # key<fry>
        return name


def leaf_shape(leaf: Any) -> tuple[int, ...]:
    if isinstance(leaf, jax.ShapeDtypeStruct):
        return tuple(leaf.shape)
    return tuple(np.shape(leaf))


def encode(leaf: Any, where: str) -> tuple[np.ndarray, dict[str, Any]]:
    """(array to store, metadata to restore it); a leaf that is not numbers (a string, an object
    array) is a TypeError naming ``where``: load could not read it back."""
    if is_typed_key(leaf):
        data = to_host(jax.random.key_data(leaf))
        return data, {"dtype": str(leaf.dtype), "shape": list(leaf.shape), "impl": str(jax.random.key_impl(leaf))}
    arr = _storable(leaf, where)
    if arr.dtype.kind not in "biufc" and arr.dtype.type.__module__ == "numpy":
        raise TypeError(
            f"{where}: a checkpoint stores arrays of numbers (bool, int, float, complex, bfloat16...); "
            f"got {type(leaf).__name__} of dtype {arr.dtype}"
        )
    arr = native(arr, where)  # stored in native order: load hands it to jax, which takes no other
    meta = {"dtype": str(arr.dtype), "shape": list(arr.shape)}
    if arr.dtype.kind == "V" or arr.dtype.type.__module__ != "numpy":
        # ml_dtypes (bfloat16, float8_*, int4) would be saved as opaque void bytes.
        arr = arr.view(np.dtype(f"u{arr.dtype.itemsize}"))
    return arr, meta


def decode(stored: np.ndarray, meta: Mapping[str, Any]) -> Any:
    """A stored array back as the leaf ``meta`` describes; ``stored`` in native byte order (as
    ``_read`` hands it), ``meta``'s dtype of either order (a file written by hand or by an fnn
    that kept a big-endian array's order)."""
    if "impl" in meta:
        return jax.random.wrap_key_data(jax.device_put(stored), impl=meta["impl"])
    dtype = jnp.dtype(native_dtype(meta["dtype"]))
    arr = stored.view(dtype) if stored.dtype != dtype else stored
    if jax.dtypes.canonicalize_dtype(dtype) != dtype:
        return arr  # a 64-bit leaf without jax_enable_x64: keep it exact in NumPy
    return jax.device_put(arr)  # (jnp.asarray would compile a program per shape)


# ----------------------------------------------------------------------------------------------
# JSON.


def jsonable(value: Any, where: str) -> Any:
    if isinstance(value, Mapping):
        # JSON's keys are strings: 1 would come back as '1', and {1: a, '1': b} as one of them
        _check_keys(value, where)
        return {k: jsonable(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (np.ndarray, jax.Array, np.generic)) and np.ndim(value) == 0:
        return np.asarray(value).item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.ndarray, jax.Array)):  # inside an extra's dict or list
        got = (
            f"an array of shape {tuple(np.shape(value))} (an array is stored as an entry where it is an extra's "
            "whole value: save(..., name=array))"
        )
    else:
        got = type(value).__name__
    raise TypeError(f"{where} must be JSON-like (numbers, strings, lists, dicts) or a 0-d array (a scalar); got {got}")


def _check_keys(value: Mapping, where: str) -> None:
    bad = [k for k in value if not isinstance(k, str)]
    if bad:
        raise TypeError(
            f"{where}: a checkpoint's dict keys must be strings (JSON's); got {bad[0]!r} "
            f"({type(bad[0]).__name__}), which would come back as {str(bad[0])!r}"
        )


def history_dict(history: Any) -> Any:
    """What a checkpoint stores of ``history``: a dict as it is, but everything a History-like
    object recorded (its ``to_dict()``: epochs, times, why it stopped), not only its logs (a
    :class:`fnn.History` is a dict of its logs too), so that a resumed run continues it."""
    to_dict = getattr(history, "to_dict", None)
    if type(history) is not dict and callable(to_dict) and isinstance(record := to_dict(), Mapping):
        return record
    if history is None or isinstance(history, Mapping):
        return history
    for attr in ("history", "_asdict", "to_dict"):
        value = getattr(history, attr, None)
        if isinstance(value, Mapping):
            return value
        if callable(value):
            return value()
    raise TypeError(f"history must be a dict name -> list; got {type(history).__name__}")


ARRAY = "__array__"  # marks, in the JSON of a state, where an array entry goes back


def encode_state(value: Any, where: str, arrays: dict[str, np.ndarray], metas: dict[str, Any]) -> Any:
    """A nested state as JSON, its arrays moved to ``arrays`` (entry ``where``) with their
    metadata in ``metas``."""
    if isinstance(value, (np.ndarray, jax.Array)):
        stored, meta = encode(value, where)
        arrays[where], metas[where] = stored, meta
        return {ARRAY: where}
    if isinstance(value, Mapping):
        _check_keys(value, where)
        if ARRAY in value:
            raise TypeError(f"{where}: a state's dict keys must not be {ARRAY!r} (it marks an array entry)")
        return {k: encode_state(v, f"{where}[{k!r}]", arrays, metas) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_state(v, f"{where}[{i}]", arrays, metas) for i, v in enumerate(value)]
    return jsonable(value, where)


def encode_history(history: Any, arrays: dict[str, np.ndarray], metas: dict[str, Any]) -> Any:
    """A history (a dict, or :func:`history_dict`'s record) as JSON: what a callback logged as an
    array of several values (Keras's History keeps those) stored as an entry, as a state's
    arrays are; a 0-d one as its number, what a History records of it."""
    return encode_state(_scalars_as_numbers(history), "history", arrays, metas)


def _scalars_as_numbers(value: Any) -> Any:
    """``value`` with each 0-d array as its Python number (dicts keep their keys and order; a
    PRNG key stays a key)."""
    if is_typed_key(value):
        return value
    if isinstance(value, (np.ndarray, np.generic, jax.Array)) and np.ndim(value) == 0:
        return np.asarray(value).item()
    if isinstance(value, Mapping):
        return {k: _scalars_as_numbers(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scalars_as_numbers(v) for v in value]
    return value


def decode_state(value: Any, arrays: Mapping[str, np.ndarray], metas: Mapping[str, Any]) -> Any:
    if isinstance(value, dict) and ARRAY in value:
        return decode(arrays[value[ARRAY]], metas[value[ARRAY]])
    if isinstance(value, dict):
        return {k: decode_state(v, arrays, metas) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_state(v, arrays, metas) for v in value]
    return value
