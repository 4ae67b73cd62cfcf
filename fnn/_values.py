"""Callables and containers compared by value, so that caches of compiled programs key on
structure rather than on object identity.

``bound(fn, **config)`` is ``functools.partial`` with value equality and hashing: two layers,
activations or optimizer transforms built from the same description compare equal, so a jit
cache (or ``fit``'s cache of compiled epochs) serves both. ``Static`` carries a Python value
through ``jax.eval_shape`` as pytree metadata, so static results (an output shape) come back
without a side effect.

Equal keys must mean equal programs: numbers are keyed with their type (``1``, ``1.0`` and
``True`` trace differently under x64 or integer inputs), concrete arrays by dtype, shape and
bytes (an array hyperparameter is a constant of the program), and anything else unhashable by
identity through :class:`_Ref`, which holds the object so that its address cannot be reused
while the key lives. Keys are never copied or pickled: ``bound`` rebuilds its key from its
arguments, so a copy holding new arrays is keyed on them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable
from typing import Any

import jax
import numpy as np

from fnn._validate import is_traced


class _Ref:
    """An unhashable object keyed by identity: equal only to a ``_Ref`` of the same object, which
    it keeps alive (an id alone could be reused by another object once this one is freed)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Ref) and self.value is other.value

    def __hash__(self) -> int:
        return id(self.value)

    def __repr__(self) -> str:
        return f"_Ref({type(self.value).__name__} at {id(self.value):#x})"


def _array_key(value: Any) -> Hashable:
    """A concrete array or NumPy scalar by value; a traced, opaque (PRNG key, object) or
    unreadable array by identity."""
    if is_traced(value):
        return _Ref(value)
    dtype = value.dtype
    if jax.dtypes.issubdtype(dtype, jax.dtypes.extended) or np.dtype(dtype).kind == "O":
        return _Ref(value)
    try:
        host = np.asarray(value)
    except Exception:  # an array not on this process (sharded across hosts) or deleted
        return _Ref(value)
    kind = "jax" if isinstance(value, jax.Array) else type(value).__name__
    return (kind, host.dtype.str, host.shape, bool(getattr(value, "weak_type", False)), host.tobytes())


def freeze(value: Any) -> Hashable:
    """A hashable stand-in for ``value``, equal for values that trace to the same program: dicts,
    lists and sets become sorted tuples, numbers carry their type, arrays their bytes; anything
    unhashable that remains is compared by identity."""
    if isinstance(value, dict):
        return ("dict", tuple(sorted(((k, freeze(v)) for k, v in value.items()), key=lambda kv: repr(kv[0]))))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(freeze(v) for v in value))
    if isinstance(value, (set, frozenset)):
        return ("set", tuple(sorted((freeze(v) for v in value), key=repr)))
    if isinstance(value, (np.ndarray, np.generic, jax.Array)):
        return _array_key(value)
    if isinstance(value, float):  # by bits: NaN equals NaN, -0.0 is not 0.0
        return (type(value), value.hex())
    if isinstance(value, complex):  # by each part's bits, as a float: the sign of a zero part counts
        return (complex, value.real.hex(), value.imag.hex())
    if isinstance(value, int):  # bool is an int
        return (type(value), value)
    try:
        hash(value)
    except TypeError:
        return _Ref(value)
    return value


def _rebuild(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> bound:
    return bound(fn, *args, **kwargs)


class bound:
    """``fn(*args, *more, **kwargs, **more_kwargs)`` with equality and hashing by
    ``(fn, args, kwargs)``; ``functools.partial`` compares by identity. A copy or an unpickled
    one keys on its own arguments (its key is rebuilt, never copied)."""

    __slots__ = ("__weakref__", "args", "fn", "hashed", "key", "kwargs")

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.key = (freeze(fn), freeze(args), freeze(kwargs))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.fn, self.args, self.kwargs))

    def __call__(self, *more: Any, **more_kwargs: Any) -> Any:
        return self.fn(*self.args, *more, **self.kwargs, **more_kwargs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, bound) and self.key == other.key

    def __hash__(self) -> int:
        # kept: the key never changes, and a network's hash (every cache lookup) hashes every
        # layer's bound functions, nested ones again for each that holds them
        try:
            return self.hashed
        except AttributeError:
            self.hashed: int = hash(self.key)
            return self.hashed

    def __repr__(self) -> str:
        parts = [getattr(a, "__name__", repr(a)) for a in self.args]
        parts += [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{getattr(self.fn, '__name__', repr(self.fn))}({', '.join(parts)})"


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def without_addresses(text: str) -> str:
    """``text`` (a repr, a treedef's string) without the objects' addresses in it (``<function f
    at 0x7f...>``), which differ in every process: what is compared across processes."""
    return _ADDRESS.sub("", text)


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
