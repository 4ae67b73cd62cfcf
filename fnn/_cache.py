"""A bounded cache of compiled programs keyed on structure.

The keys are descriptions compared by value (networks, losses, metrics, optimizer ``update``
functions and settings): two objects built from the same description share one entry, and at
most ``maxsize`` entries (and the objects their programs close over) are kept, least recently
used first out. Arguments that cannot be hashed (a user's network compared by identity in an
unhashable container) get a fresh, uncached result.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


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
        return lookup  # type: ignore[return-value]

    return decorate
