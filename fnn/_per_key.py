"""Random draws whose ``vmap`` over keys gives each key's own draw, for every kind of key.

JAX's threefry keys (its default) hash each key alone, so ``vmap(f)(keys)[i] == f(keys[i])``
for any ``f`` of a key. The ``rbg`` and ``unsafe_rbg`` kinds draw with XLA's
``RngBitGenerator``, whose batching rule draws the whole batch from the FIRST key (rbg's random
bits; unsafe_rbg's ``split`` and ``fold_in`` too): under ``vmap`` those keys give other draws
than one key at a time. :func:`fnn.fit_many` vmaps fit's epoch over models (and the key block of
``fnn.train._loop`` over epochs), so its draws go through :func:`per_key`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from fnn._keys import is_typed_key


def default_impl() -> str:
    """The kind of a raw key here (``jax_default_prng_impl``, context managers included)."""
    return str(getattr(jax.config, "jax_default_prng_impl", "threefry2x32"))


def key_impl(key: Any) -> str:
    """The kind of ``key`` (typed or raw, concrete or traced): ``"threefry2x32"``, ``"rbg"``..."""
    return str(jax.random.key_impl(key)) if is_typed_key(key) else default_impl()


def is_threefry(key: Any) -> bool:
    """Whether ``key`` (typed or raw, concrete or traced) is a threefry2x32 key."""
    return key_impl(key) == "threefry2x32"


def per_key(fn: Callable, key: Any, *args: Any) -> Any:
    """``fn(key, *args)`` (arrays in, a pytree of arrays out) such that under ``vmap`` it is
    computed one key at a time (``lax.map``) for keys other than threefry's, so a vmapped call
    equals the calls for each key alone. A threefry key calls ``fn`` directly: its trace, and
    the default path's compiled programs, are unchanged."""
    if is_threefry(key):
        return fn(key, *args)

    @jax.custom_batching.custom_vmap
    def draw(key: Any, *args: Any) -> Any:
        return fn(key, *args)

    @draw.def_vmap
    def _one_at_a_time(axis_size: int, batched: list, key: Any, *args: Any) -> tuple[Any, Any]:
        if not any(batched):
            out = draw(key, *args)
            return out, jax.tree.map(lambda _: False, out)
        full = [
            a if b else jnp.broadcast_to(a, (axis_size, *jnp.shape(a)))
            for a, b in zip((key, *args), batched, strict=True)
        ]
        out = jax.lax.map(lambda one: draw(*one), tuple(full))
        return out, jax.tree.map(lambda _: True, out)

    return draw(key, *args)
