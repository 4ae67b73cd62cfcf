"""PRNG keys as arguments: typed (``jax.random.key``) and raw (``jax.random.PRNGKey``,
``uint32[2]``) alike; a wrong one is a TypeError (not a key) or ValueError (several keys, or a
raw key of another shape) naming the argument, as in ``_validate.py``.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import numpy as np

from fnn._native import native


def is_typed_key(value: Any) -> bool:
    return jax.dtypes.issubdtype(getattr(value, "dtype", None), jax.dtypes.prng_key)


def is_key(value: Any) -> bool:
    """A single PRNG key, typed (``jax.random.key``) or raw (``jax.random.PRNGKey``)."""
    if not isinstance(value, (jax.Array, np.ndarray)):
        return False
    if is_typed_key(value):
        return value.ndim == 0
    return value.dtype == np.uint32 and value.ndim == 1 and value.shape[0] >= 2


def raw_key_shape() -> tuple[int, ...]:
    """The shape of a raw key of the default PRNG implementation ((2,) for threefry)."""
    return _raw_key_shape_of(str(getattr(jax.config, "jax_default_prng_impl", "threefry2x32")))


@functools.cache
def _raw_key_shape_of(impl: str) -> tuple[int, ...]:
    return tuple(jax.eval_shape(lambda: jax.random.key_data(jax.random.key(0))).shape)


def key(name: str, value: Any) -> Any:
    """``value`` if it is one PRNG key (typed or raw; a NumPy raw key of the other byte order,
    ``'>u4'``, as its native copy: use what this returns); TypeError otherwise."""
    value = native(value, name) if isinstance(value, np.ndarray) else value
    if is_key(value):
        if not is_typed_key(value) and tuple(value.shape) != raw_key_shape():
            raise ValueError(
                f"{name} must be a PRNG key: a raw key is uint32 of shape {raw_key_shape()} "
                f"(jax.random.PRNGKey(seed)), got shape {tuple(value.shape)}"
            )
        return value
    if isinstance(value, (jax.Array, np.ndarray)) and (is_typed_key(value) or value.dtype == np.uint32):
        raise ValueError(
            f"{name} must be ONE PRNG key, got an array of keys of shape {value.shape} (take one, e.g. {name}[0])"
        )
    raise TypeError(f"{name} must be a jax PRNG key (jax.random.key(seed) or jax.random.PRNGKey(seed)), got {value!r}")


def seed_key(seed: int) -> Any:
    """``jax.random.PRNGKey(seed)``, the same bits, its seed put on the device by
    ``jax.device_put``: an explicit transfer, which a caller's ``jax.transfer_guard("disallow")``
    allows (``PRNGKey`` of a Python int transfers it implicitly)."""
    return jax.random.PRNGKey(jax.device_put(np.int64(seed)))  # PRNGKey's own conversion of an int


def key_data(value: Any) -> Any:
    """The raw uint32 bits of a key or of stacked keys (typed keys unwrapped, raw ones as they are)."""
    return jax.random.key_data(value) if is_typed_key(value) else value
