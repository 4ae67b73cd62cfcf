"""A bounded cache of compiled programs keyed on structure.

The keys are descriptions compared by value (networks, losses, metrics, optimizer ``update``
functions and settings): two objects built from the same description share one entry, and at
most ``maxsize`` entries (and the objects their programs close over) are kept, least recently
used first out. Arguments that cannot be hashed (a user's network compared by identity in an
unhashable container) get a fresh, uncached result. :func:`clear_caches` empties them all.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import jax

F = TypeVar("F", bound=Callable[..., Any])

# Every structural cache's clear, for clear_caches.
_CLEARS: list[Callable[[], None]] = []


def structural_cache(maxsize: int) -> Callable[[F], F]:
    def decorate(fn: F) -> F:
        cached = functools.lru_cache(maxsize=maxsize)(fn)

        @functools.wraps(fn)
        def lookup(*args: Any) -> Any:
            try:
                hash(args)
            except TypeError:
                return fn(*args)
            return cached(*args)

        lookup.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
        lookup.cache_info = cached.cache_info  # type: ignore[attr-defined]
        _CLEARS.append(cached.cache_clear)
        return lookup  # type: ignore[return-value]

    return decorate


# The settings a trace's shapes, dtypes and errors depend on beyond its arguments: a cache of
# traced results keys on them too (JAX's own jit cache does), so a toggled setting retraces.
_TRACE_SETTINGS = ("jax_enable_x64", "jax_default_prng_impl", "jax_numpy_dtype_promotion", "jax_numpy_rank_promotion")


def trace_settings() -> tuple:
    """The values of the JAX settings in force that a traced result depends on (context managers
    included): part of the key of a cache of traced shapes."""
    return tuple(getattr(jax.config, name) for name in _TRACE_SETTINGS)


def clear_caches() -> None:
    """Empties fnn's caches of compiled programs and of the checks it ran, then JAX's
    (``jax.clear_caches()``).

    fnn keeps, per function, the programs of the last 32 to 256 distinct networks, losses,
    optimizers and shapes it ran (least recently used first out), and with them the objects
    they close over: a notebook that fits many architectures, or networks whose layers hold
    large arrays, keeps their memory until they drop out. This frees it now; the next call of
    each compiles again (the persistent compilation cache, where one is set, still serves it).
    """
    for clear in _CLEARS:
        clear()
    jax.clear_caches()
