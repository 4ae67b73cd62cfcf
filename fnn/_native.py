"""Host arrays as fnn computes with them: a NumPy array of non-native byte order (``'>f8'`` on a
little-endian machine, as read from a big-endian file) converted to native order, its values
kept; what holds no numbers (an object array, a ``jax.ShapeDtypeStruct``) a TypeError naming
the argument.

JAX refuses a non-native array where it converts one (``jnp.asarray``, ``device_put``), and a
jitted function that already ran on a native array of the same shape reads a non-native one's
bytes unswapped, silently (JAX 0.10's C++ fast path: ``f(np.array([1., 2.], '>f8'))`` gives
``[0., 0.]``). So every entry point of fnn that takes NumPy data passes it through
:func:`native` (one array) or :func:`native_tree` (a pytree) before JAX sees it: a check of
the dtype per leaf on the host, and a copy only of the arrays that need one.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

# Leaf types never foreign: Python scalars, and the types of jax arrays and tracers and of NumPy
# scalars, learned as leaves of them are seen (no private jax import). A leaf of one of these costs
# a set lookup: a jitted step's arguments are checked on every call.
_SAFE: set[type] = {bool, int, float, complex}
_LEARNED = (jax.Array, np.generic)  # never a pytree node, so a type learned stays a leaf


def _foreign(a: Any) -> bool:
    """Whether ``a`` is an array :func:`native` converts or refuses."""
    if isinstance(a, np.ndarray):
        return not a.dtype.isnative or a.dtype.kind == "O"
    return isinstance(a, jax.ShapeDtypeStruct)


def _foreign_leaf(leaf: Any) -> bool:
    if type(leaf) in _SAFE:
        return False
    if isinstance(leaf, _LEARNED):
        _SAFE.add(type(leaf))
        return False
    return _foreign(leaf)


def _any_foreign(tree: Any) -> bool:
    # A set lookup for a jax array, one dtype check for a NumPy one, else one flatten and a set
    # lookup per leaf type: a few microseconds for an optimizer state of a few dozen leaves
    if type(tree) in _SAFE:
        return False
    if isinstance(tree, np.ndarray):
        return _foreign(tree)
    leaves = jax.tree.leaves(tree)
    return not _SAFE.issuperset(map(type, leaves)) and any(map(_foreign_leaf, leaves))


def native(a: Any, name: str) -> Any:
    """``a`` in native byte order where it is a NumPy array of another (a copy, values kept);
    anything else as it is.

    Args:
        a: An array, a scalar, nested lists, None...
        name: How a message names ``a`` (``"x"``, ``"params[0]['w']"``).

    Returns:
        ``a``, or its native-order copy.

    Raises:
        TypeError: For a NumPy object array or a ``jax.ShapeDtypeStruct`` (a shape and dtype
            without values).
    """
    if not _foreign(a):
        return a
    if isinstance(a, jax.ShapeDtypeStruct):
        raise TypeError(
            f"{name} is a jax.ShapeDtypeStruct {a.dtype}{list(a.shape)}: a shape and dtype without values. "
            "To compute shapes only, call the function through jax.eval_shape (e.g. "
            "jax.eval_shape(net.apply, params, x) with x a ShapeDtypeStruct); to compute values, pass an array"
        )
    if a.dtype.kind == "O":
        raise TypeError(
            f"{name} must hold numbers; got dtype object (a NumPy array of Python objects: "
            "convert one that holds numbers with .astype(float))"
        )
    return a.astype(a.dtype.newbyteorder("="))


def native_tree(tree: Any, name: str) -> Any:
    """``tree`` with every leaf through :func:`native` (named ``name`` and its path); the very
    ``tree`` where no leaf needs it (the usual case: one dtype check per leaf, no rebuild)."""
    if not _any_foreign(tree):
        return tree
    leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
    return jax.tree.unflatten(treedef, [native(a, name + jax.tree_util.keystr(p)) for p, a in leaves])


def _as_array_if_numbers(a: Any, name: str) -> Any:
    """The data (``x``, ``y``) given as nested lists (or tuples) of numbers as the NumPy array they
    spell, as :func:`fnn.predict` and :func:`fnn.evaluate` take them: under ``jit`` a list is a
    pytree of scalars, which the network cannot read as a batch. Anything else as it is (a
    list of arrays: a pytree of the user's)."""
    if name not in ("x", "y") or type(a) not in (list, tuple):
        return a
    leaves = jax.tree.leaves(a)
    if not leaves or not all(type(v) in (int, float, bool) or isinstance(v, np.generic) for v in leaves):
        return a
    try:
        return np.asarray(a)
    except ValueError as e:  # ragged: as the checks of fit and evaluate name it
        raise TypeError(f"{name} must be an array of numbers; got {type(a).__name__} ({e})") from None


class Natively:
    """``fn`` with its arguments through :func:`native_tree` first, each positional one named by
    ``names`` in order, a keyword one by its keyword: how fnn hands out a function that users
    call on pytrees of their own (:func:`fnn.train_step` and :func:`fnn.eval_step`, jitted, whose
    fast path would read a big-endian array unswapped; :func:`fnn.value_and_grad`'s).

    Otherwise it is ``fn``: its attributes are read through (a jitted one's ``lower``,
    ``trace``, ``eval_shape``, ``clear_cache``; ``__name__``, ``__doc__``, ``__wrapped__`` and
    the signature), and it can be jitted, vmapped and differentiated in the user's code.
    """

    def __init__(self, fn: Callable, names: Sequence[str]) -> None:
        functools.update_wrapper(self, fn)
        self._fn = fn
        self._names = tuple(names)
        self._structure = jax.tree.structure([])  # of the last call's pytree arguments

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if any(type(a) in (list, tuple) for a in (*args, *kwargs.values())):
            names = self._names
            args = tuple(_as_array_if_numbers(a, names[i] if i < len(names) else "") for i, a in enumerate(args))
            kwargs = {k: _as_array_if_numbers(v, k) for k, v in kwargs.items()}
        if self._foreign_args(args) or (kwargs and _any_foreign(kwargs)):
            names = self._names
            args = tuple(native_tree(a, names[i] if i < len(names) else f"argument {i}") for i, a in enumerate(args))
            kwargs = {k: native_tree(v, k) for k, v in kwargs.items()}
        return self._fn(*args, **kwargs)

    def _foreign_args(self, args: tuple) -> bool:
        # An array argument (x, y) by its type and dtype; the pytrees (params, opt_state) flattened
        # up to the structure of the last call's, which a loop keeps: half the time of a flatten (a
        # few microseconds for params and an optimizer state); where it ended early, a part is a
        # subtree, checked whole.
        trees = []
        for a in args:
            if type(a) in _SAFE:
                continue
            if isinstance(a, np.ndarray):
                if _foreign(a):
                    return True
                continue
            trees.append(a)
        try:
            parts = self._structure.flatten_up_to(trees)  # type: ignore[attr-defined]  # (not in jaxlib's stubs)
        except Exception:  # another structure (any mismatch): the full flatten says what is real
            parts, self._structure = jax.tree.flatten(trees)
        return not _SAFE.issuperset(map(type, parts)) and any(_any_foreign(p) for p in parts if type(p) not in _SAFE)

    def __getattr__(self, name: str) -> Any:
        if name == "_fn":  # not yet set (a copy being built): no recursion
            raise AttributeError(name)
        return getattr(self._fn, name)

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        # a class attribute binds as a function (or a jitted one) would
        return self if obj is None else types.MethodType(self, obj)

    def __repr__(self) -> str:
        return f"natively({self._fn!r})"


def natively(fn: Callable, names: Sequence[str]) -> Callable:
    """``fn`` as a :class:`Natively`: its arguments made native first, everything else its own."""
    return Natively(fn, names)
