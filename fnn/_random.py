"""Randomness drawn on the host from jax PRNG keys: the one rule by which a key gives a sample
order (:func:`fnn.data.permutation`, and fit's shuffling, which draws each epoch's order from
its permutation key's bits), and the threefry keys of fit's epochs, derived on the host as
jax derives them on a device (no program to compile, nothing to wait for)."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from fnn._keys import is_typed_key

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def _config(name: str) -> Any:
    # an attribute, not jax.config.read: the value in force here, context managers included
    return getattr(jax.config, name)


def permutation_of_bits(bits: np.ndarray, n: int) -> np.ndarray:
    """A permutation of ``range(n)`` (int64) from a key's raw bits (``jax.random.key_data``):
    the bits seed NumPy's PCG64 (``np.random.default_rng(bits).permutation(n)``)."""
    return np.random.default_rng(np.asarray(bits, np.uint32).ravel()).permutation(n)


def threefry2x32(key: np.ndarray, x1: Any, x2: Any) -> tuple[np.ndarray, np.ndarray]:
    """Threefry-2x32 (20 rounds, Salmon et al. 2011) of the counter pairs ``(x1, x2)`` under
    ``key`` = ``(k1, k2)`` (its last axis), as jax's ``threefry2x32`` primitive hashes them:
    with ``ks = (k1, k2, k1 ^ k2 ^ 0x1BD11BDA)``, ``x += (ks[0], ks[1])``, then 5 times 4
    rounds ``x1 += x2; x2 = rotl(x2, r) ^ x1`` (``r`` from 13 15 26 6 and 17 29 16 24 in turn),
    each followed by ``x += (ks[i+1], ks[i+2] + i + 1)`` (indices mod 3). uint32 in, broadcast
    together, uint32 out, wrapping as the device does."""
    key = np.asarray(key, np.uint32)
    k1, k2 = key[..., 0], key[..., 1]
    ks = (k1, k2, k1 ^ k2 ^ _PARITY)
    # 1-d at least: NumPy warns on a wrapping scalar sum, never on an array's
    x1, x2 = (np.atleast_1d(np.asarray(x, np.uint32)) for x in (x1, x2))
    x1, x2 = x1 + ks[0], x2 + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x1 = x1 + x2
            x2 = ((x2 << np.uint32(r)) | (x2 >> np.uint32(32 - r))) ^ x1
        x1 = x1 + ks[(i + 1) % 3]
        x2 = x2 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x1, x2


def fold_in_bits(key: np.ndarray, data: Any) -> np.ndarray:
    """``jax.random.fold_in`` of raw threefry key bits ``(..., 2)`` and uint32 ``data``
    (broadcast against the key's leading axes): the key hashes the counter ``(0, data)``."""
    y1, y2 = threefry2x32(key, np.uint32(0), data)
    return np.stack([y1, y2], axis=-1)


def split_bits(key: np.ndarray, num: int = 2) -> np.ndarray:
    """``jax.random.split(key, num)`` of raw threefry key bits ``(..., 2)``: ``(..., num, 2)``.
    With ``jax_threefry_partitionable`` (jax's default) key ``i`` is the hash of the counter
    ``(0, i)``; without it, the hashes of ``(j, j + num)``, ``j < num``, laid out flat and read
    in pairs."""
    key = np.asarray(key, np.uint32)[..., None, :]
    if _config("jax_threefry_partitionable"):
        y1, y2 = threefry2x32(key, np.uint32(0), np.arange(num, dtype=np.uint32))
        return np.stack([y1, y2], axis=-1)
    y1, y2 = threefry2x32(key, np.arange(num, dtype=np.uint32), np.arange(num, 2 * num, dtype=np.uint32))
    return np.concatenate([y1, y2], axis=-1).reshape(*y1.shape[:-1], num, 2)


def threefry_bits(key: Any) -> np.ndarray | None:
    """The raw bits ``(..., 2)`` of a threefry2x32 key or stacked keys, typed or raw, read to the
    host; None for a key of any other implementation (``rbg``, or raw keys under another
    ``jax_default_prng_impl``)."""
    if is_typed_key(key):
        if str(jax.random.key_impl(key)) != "threefry2x32":
            return None
        key = jax.random.key_data(key)
    elif _config("jax_default_prng_impl") != "threefry2x32":
        return None
    bits = np.asarray(jax.device_get(key))
    return bits if bits.dtype == np.uint32 and bits.shape[-1:] == (2,) else None


def epoch_dropout_bits(key: np.ndarray, epoch: int) -> np.ndarray:
    """fit's dropout key of ``epoch``, the second of ``split(fold_in(key, epoch))``, from
    threefry key bits ``(..., 2)``: ``(..., 2)``."""
    # (the hash takes its counters 1-d at least: one key's comes back (1, 2))
    return split_bits(fold_in_bits(key, np.uint32(epoch)))[..., 1, :].reshape(np.shape(key))


def epoch_perm_bits(key: np.ndarray, epochs: np.ndarray) -> np.ndarray:
    """fit's permutation keys of ``epochs`` (``(E,)``), the first of
    ``split(fold_in(key, epoch))``, from threefry key bits ``(..., 2)``: ``(E, ..., 2)``."""
    epochs = np.asarray(epochs, np.uint32).reshape(-1, *([1] * (np.ndim(key) - 1)))
    return split_bits(fold_in_bits(key, epochs))[..., 0, :]
