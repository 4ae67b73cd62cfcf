"""Callables and containers compared by value, so that caches of compiled programs key on
structure rather than on object identity.

``bound(fn, **config)`` is ``functools.partial`` with value equality and hashing: two layers,
activations or optimizer transforms built from the same description compare equal, so a jit
cache (or ``fit``'s cache of compiled epochs) serves both. ``Static`` carries a Python value
through ``jax.eval_shape`` as pytree metadata, so static results (an output shape) come back
without a side effect.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import jax


def freeze(value: Any) -> Hashable:
    """A hashable stand-in for ``value``: dicts, lists and sets become sorted tuples; anything
    unhashable that remains is compared by identity."""
    if isinstance(value, dict):
        return ("dict", tuple(sorted(((k, freeze(v)) for k, v in value.items()), key=lambda kv: repr(kv[0]))))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(freeze(v) for v in value))
    if isinstance(value, (set, frozenset)):
        return ("set", tuple(sorted((freeze(v) for v in value), key=repr)))
    try:
        hash(value)
    except TypeError:
        return ("id", id(value))
    return value


class bound:
    """``fn(*args, *more, **kwargs, **more_kwargs)`` with equality and hashing by
    ``(fn, args, kwargs)``; ``functools.partial`` compares by identity."""

    __slots__ = ("__weakref__", "args", "fn", "key", "kwargs")

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.key = (fn, freeze(args), freeze(kwargs))

    def __call__(self, *more: Any, **more_kwargs: Any) -> Any:
        return self.fn(*self.args, *more, **self.kwargs, **more_kwargs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, bound) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        parts = [getattr(a, "__name__", repr(a)) for a in self.args]
        parts += [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{getattr(self.fn, '__name__', repr(self.fn))}({', '.join(parts)})"


@jax.tree_util.register_static
class Static:
    """A Python value carried as pytree metadata (no leaves): ``jax.eval_shape`` returns it as is."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Static) and freeze(self.value) == freeze(other.value)

    def __hash__(self) -> int:
        return hash(freeze(self.value))
