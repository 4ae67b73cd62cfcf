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
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

_SEEN = (np.ndarray, jax.ShapeDtypeStruct)  # the leaves native may convert or refuse


def _foreign(a: Any) -> bool:
    """Whether ``a`` is an array :func:`native` converts or refuses."""
    if isinstance(a, np.ndarray):
        return not a.dtype.isnative or a.dtype.kind == "O"
    return isinstance(a, jax.ShapeDtypeStruct)


def _any_foreign(tree: Any) -> bool:
    # one isinstance per leaf where nothing is foreign: a jitted step's arguments are checked on
    # every call (a few microseconds for a few dozen leaves)
    return any(isinstance(leaf, _SEEN) and _foreign(leaf) for leaf in jax.tree.leaves(tree))


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


def natively(fn: Callable, names: Sequence[str]) -> Callable:
    """``fn`` with its arguments through :func:`native_tree` first, each positional one named by
    ``names`` in order, a keyword one by its keyword: how fnn hands out a function that users
    call on pytrees of their own (:func:`fnn.train_step` and :func:`fnn.eval_step`, jitted, whose
    fast path would read a big-endian array unswapped; :func:`fnn.value_and_grad`'s)."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        if _any_foreign((args, kwargs)):  # one pass over the leaves in the usual case
            args = tuple(native_tree(a, names[i] if i < len(names) else f"argument {i}") for i, a in enumerate(args))
            kwargs = {k: native_tree(v, k) for k, v in kwargs.items()}
        return fn(*args, **kwargs)

    return call
