"""Callables and containers compared by value, so that caches of compiled programs key on
structure rather than on object identity.

``bound(fn, **config)`` is ``functools.partial`` with value equality and hashing: two layers,
activations or optimizer transforms built from the same description compare equal, so a jit
cache (or ``fit``'s cache of compiled epochs) serves both. ``Static`` carries a Python value
through ``jax.eval_shape`` as pytree metadata, so static results (an output shape) come back
without a side effect.

Equal keys must mean equal programs: numbers are keyed with their type (``1``, ``1.0`` and
``True`` trace differently under x64 or integer inputs), concrete arrays by dtype, shape and
bytes (an array hyperparameter is a constant of the program), a function made anew (a closure,
a lambda, a ``functools.partial``) by its code and the values it holds, and anything else
unhashable by identity through :class:`_Ref`, which holds the object so that its address cannot
be reused while the key lives. Keys are never copied or pickled: ``bound`` rebuilds its key from
its arguments, so a copy holding new arrays is keyed on them. ``by_value(fn)`` gives such a
function value equality where it is a key itself (an optax ``update``, a custom layer's
``forward``).
"""

from __future__ import annotations

import functools
import inspect
import threading
import types
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
    if getattr(_KEYING, "ids", None) and isinstance(value, _MUTABLE):
        # What a function closes over and can be changed in place is keyed by identity as well
        # as by value: jit traces a cached program again (other shapes) through the function it
        # was made with, which reads that object as it is then, so another function holding an
        # equal copy must not share the program (a shared object changed later keys anew).
        return ("mutable", _Ref(value), _freeze_value(value))
    return _freeze_value(value)


# The containers a function can hold and have changed in place (a read-only NumPy view too:
# its base can change).
_MUTABLE = (list, dict, set, bytearray, np.ndarray)


def _freeze_value(value: Any) -> Hashable:
    if isinstance(value, dict):
        return ("dict", tuple(sorted(((k, freeze(v)) for k, v in value.items()), key=lambda kv: repr(kv[0]))))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(freeze(v) for v in value))
    if isinstance(value, (set, frozenset)):
        return ("set", tuple(sorted((freeze(v) for v in value), key=repr)))
    if isinstance(value, (np.ndarray, np.generic, jax.Array)):
        if getattr(_KEYING, "ids", None) and _nbytes(value) > CLOSED_OVER_BYTES:
            return _Ref(value)  # data a function closes over (a loss's class weights, a data set)
        return _array_key(value)
    if isinstance(value, float):  # by bits: NaN equals NaN, -0.0 is not 0.0
        return (type(value), value.hex())
    if isinstance(value, (int, complex)):  # bool is an int
        return (type(value), value)
    if made_anew(value):
        return _function_key(value)
    try:
        hash(value)
    except TypeError:
        return _Ref(value)
    return value


def made_anew(fn: Any) -> bool:
    """Whether ``fn`` is a function made anew where its definition runs again (a closure, a
    lambda or a function defined inside another: ``__qualname__`` ``<lambda>``, ``f.<locals>.g``)
    or a ``functools.partial``: keyed by what it computes (:func:`_function_key`). A function
    defined once at a module's top level is one object, keyed by identity as before (a key that
    costs nothing to hash and compare, as every built-in layer's and optimizer's functions are)."""
    if isinstance(fn, functools.partial):
        return True
    return isinstance(fn, types.FunctionType) and bool(fn.__closure__ or "<" in fn.__qualname__)


# A function's key holds the bytes of the arrays it closes over up to this size; a larger one (data a
# loss closes over) is keyed by identity, as the function was before, not copied into every key.
CLOSED_OVER_BYTES = 1 << 16


def _nbytes(value: Any) -> int:
    """An array's size in bytes; 0 where it has none to read (a typed PRNG key, a tracer: both
    keyed by identity anyway)."""
    if is_traced(value) or jax.dtypes.issubdtype(value.dtype, jax.dtypes.extended):
        return 0
    return int(np.prod(np.shape(value), dtype=np.int64)) * np.dtype(value.dtype).itemsize


# The functions being keyed on this thread (by id): a closure that holds itself (a recursive
# inner function) is keyed by identity where it recurs.
_KEYING = threading.local()
# An empty closure cell (a name assigned later in the enclosing function)
_EMPTY_CELL = ("empty cell",)


def _function_key(fn: Any) -> Hashable:
    """A function by what it computes: its code, the module globals it reads names from, its
    defaults, attributes and the values its closure holds (each frozen: numbers by value, arrays
    by bytes, functions again); a ``functools.partial`` by its function and arguments. Two
    closures made by one ``def`` or ``lambda`` from equal values (``optax.adam(1e-3)`` twice, a
    factory written inline in a loop) then key alike, as two ``bound`` of equal arguments do;
    identity decided it before, so each new closure compiled its programs anew."""
    keying = getattr(_KEYING, "ids", None)
    if keying is None:
        keying = _KEYING.ids = set()
    if id(fn) in keying:
        return _Ref(fn)
    keying.add(id(fn))
    try:
        if isinstance(fn, functools.partial):
            return ("partial", freeze(fn.func), freeze(fn.args), _own_dict(fn.keywords))
        cells = tuple(_cell_key(c) for c in fn.__closure__ or ())
        return (
            "function",
            fn.__code__,
            _Ref(fn.__globals__),
            freeze(fn.__defaults__),
            _own_dict(fn.__kwdefaults__),
            _own_dict(fn.__dict__),
            cells,
        )
    finally:
        keying.discard(id(fn))


def _own_dict(d: dict | None) -> Hashable:
    """A dict the function itself holds (its keyword defaults, its attributes; a partial's
    keywords), by its items: a new one comes with every new function, so it is no mutable
    object shared with another."""
    return None if d is None else tuple(sorted(((k, freeze(v)) for k, v in d.items()), key=lambda kv: kv[0]))


def _cell_key(cell: Any) -> Hashable:
    try:
        contents = cell.cell_contents
    except ValueError:
        return _EMPTY_CELL
    return freeze(contents)


def _rebuild(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> bound:
    return bound(fn, *args, **kwargs)


class _Keyed:
    """Equality and hashing by ``self.key``, among objects of one class."""

    __slots__ = ("__weakref__", "hashed", "key")
    key: Any
    hashed: int

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.key == other.key

    def __hash__(self) -> int:
        # kept: the key never changes, and a network's hash (every cache lookup) hashes every
        # layer's bound functions, nested ones again for each that holds them
        try:
            return self.hashed
        except AttributeError:
            self.hashed = hash(self.key)
            return self.hashed


class bound(_Keyed):
    """``fn(*args, *more, **kwargs, **more_kwargs)`` with equality and hashing by
    ``(fn, args, kwargs)``; ``functools.partial`` compares by identity. A copy or an unpickled
    one keys on its own arguments (its key is rebuilt, never copied)."""

    __slots__ = ("args", "fn", "kwargs")

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.key = (freeze(fn), freeze(args), freeze(kwargs))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.fn, self.args, self.kwargs))

    def __call__(self, *more: Any, **more_kwargs: Any) -> Any:
        return self.fn(*self.args, *more, **self.kwargs, **more_kwargs)

    def __repr__(self) -> str:
        parts = [getattr(a, "__name__", repr(a)) for a in self.args]
        parts += [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{getattr(self.fn, '__name__', repr(self.fn))}({', '.join(parts)})"


class by_value(_Keyed):
    """``fn`` called as itself, compared and hashed by what it computes (:func:`freeze`: a
    closure by its code and the values it holds, a partial by its function and arguments) where
    ``fn`` itself compares by identity: a cache of programs keyed on it serves every equal one."""

    __slots__ = ("__wrapped__", "fn")

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = self.__wrapped__ = fn  # __wrapped__: inspect.signature reads fn's
        self.key = freeze(fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    @property
    def __signature__(self) -> inspect.Signature | None:
        """``fn``'s own (a protocol check reads it without following ``__wrapped__``)."""
        try:
            return inspect.signature(self.fn, follow_wrapped=False)
        except (TypeError, ValueError):  # unreadable (a builtin): the wrapper's, which binds anything
            return None

    def __repr__(self) -> str:
        return repr(self.fn)


def keyed(fn: Any) -> Any:
    """``fn`` as a key of compiled programs: a function made anew (:func:`made_anew`: an optax
    ``update``, a custom layer's ``forward`` made by a factory) wrapped in :class:`by_value`,
    anything else as it is (fnn's own compare by value already, a module-level function is one
    object)."""
    return by_value(fn) if made_anew(fn) and not isinstance(fn, by_value) else fn


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
