"""Threefry keys and the uniform draws made from them, computed on the host by
:func:`fnn._host_eval.evaluate_on_host`: what a network's init program does, so that the
initial params of ``fnn compare``, ``fnn train`` and :func:`fnn.sweep` need no program
compiled (on a 2-core machine the seeds' init program took 0.5 s of a cold ``fnn compare``'s
5 s, and as much of the CPU the epochs' compilations beside it needed).

The rules follow jax's threefry2x32 implementation (``jax._src.random.threefry2x32``) with
``jax_threefry_partitionable`` on, jax's default: a seed is the key ``(high 32 bits, low 32
bits)`` of the integer (a 32-bit one's high half 0); ``split(key, shape)`` and ``bits(key,
32, shape)`` hash the flat index ``i`` of every element of ``shape`` as the counter pair
``(0, i)`` (:func:`fnn._random.threefry2x32`), split keeping both words, the bits xor-ing
them. Any other implementation, the setting off, other bit widths or more than 2**32 values
decline (None), and the program is compiled as before. Key arrays are held as
:class:`HostKeys`: their raw ``uint32`` words, a last axis of 2.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np

from fnn._random import threefry2x32


class HostKeys(NamedTuple):
    """A threefry key array on the host: ``bits`` ``(*shape, 2)`` uint32."""

    bits: np.ndarray


_PARTITIONABLE = "jax_threefry_partitionable"


def _threefry(impl: Any) -> bool:
    # an attribute, not jax.config.read: the value in force here, context managers included
    return getattr(impl, "name", None) == "threefry2x32" and bool(getattr(jax.config, _PARTITIONABLE))


def _hashes(keys: HostKeys, shape: tuple) -> tuple[np.ndarray, np.ndarray] | None:
    """Each key's hashes of the counters ``(0, i)``, ``i`` the flat index over ``shape``:
    ``(*keys' shape, *shape)`` twice, or None past 2**32 counters (a high word not 0)."""
    size = int(np.prod(shape, dtype=np.int64))
    if size >= 2**32:
        return None
    lo = np.arange(size, dtype=np.uint32).reshape(shape)
    bits = keys.bits.reshape(keys.bits.shape[:-1] + (1,) * len(shape) + (2,))
    return threefry2x32(bits, np.uint32(0), lo)


def _random_seed(seeds: np.ndarray, *, impl: Any) -> HostKeys | None:
    if not _threefry(impl) or seeds.dtype.kind not in "iu":
        return None
    wide = seeds.astype(np.int64 if seeds.dtype.kind == "i" else np.uint64).view(np.uint64)
    high = (wide >> np.uint64(32)).astype(np.uint32) if seeds.dtype.itemsize == 8 else np.zeros(seeds.shape, np.uint32)
    return HostKeys(np.stack([high, (wide & np.uint64(0xFFFFFFFF)).astype(np.uint32)], axis=-1))


def _random_wrap(bits: np.ndarray, *, impl: Any) -> HostKeys | None:
    ok = _threefry(impl) and bits.dtype == np.uint32 and bits.shape[-1:] == (2,)
    return HostKeys(bits) if ok else None


def _random_unwrap(keys: Any) -> np.ndarray | None:
    return keys.bits if isinstance(keys, HostKeys) else None


def _random_split(keys: Any, *, shape: tuple) -> HostKeys | None:
    hashes = _hashes(keys, shape) if isinstance(keys, HostKeys) else None
    return None if hashes is None else HostKeys(np.stack(hashes, axis=-1))


def _random_bits(keys: Any, *, bit_width: int, shape: tuple) -> np.ndarray | None:
    hashes = _hashes(keys, shape) if isinstance(keys, HostKeys) and bit_width == 32 else None
    return None if hashes is None else hashes[0] ^ hashes[1]


KEY_RULES: dict[str, Callable[..., Any]] = {
    "random_seed": _random_seed,
    "random_wrap": _random_wrap,
    "random_unwrap": _random_unwrap,
    "random_split": _random_split,
    "random_bits": _random_bits,
}


def fits(value: Any, aval: Any) -> bool:
    """Whether a host value has ``aval``'s shape and dtype (a key array: its key shape, and a
    threefry key dtype)."""
    if isinstance(value, HostKeys):
        dtype = getattr(aval, "dtype", None)
        is_key = dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
        return is_key and value.bits.shape[:-1] == aval.shape
    return value.shape == aval.shape and value.dtype == aval.dtype
