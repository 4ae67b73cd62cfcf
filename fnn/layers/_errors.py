"""What a network says when one of its layers breaks the Layer protocol: errors marked as
attributed to a layer (an outer network prefixes its own), signatures the protocol's calls
cannot bind, and a backward's ``dparams`` checked against its params."""

from __future__ import annotations

from typing import Any, cast

import jax
import jax.numpy as jnp

from fnn._validate import unbindable


def layer_error(source: type | BaseException, message: str) -> Exception:
    """An error marked as attributed to a layer (an outer network prefixes its own layer, as
    for a FeatureMismatchError). From the layer's own error, of its class where that class is
    rebuilt from a message (a ValueError subclass of the user's stays one), else TypeError or
    ValueError."""
    if isinstance(source, BaseException):
        base = TypeError if isinstance(source, TypeError) else ValueError
        try:
            err: Exception = type(source)(message)  # type: ignore[assignment]
            if not isinstance(err, base) or str(err) != message:
                err = base(message)
        except Exception:  # a class that takes other arguments (JAX's own errors)
            err = base(message)
    else:
        err = source(message)
    setattr(err, "fnn_layer_named", True)  # noqa: B010  (exceptions take attributes; mypy knows none)
    return err


def already_named(err: Exception) -> bool:
    return getattr(err, "fnn_layer_named", False)


def is_shape(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and all(isinstance(d, int) for d in value)


def describe(value: Any) -> str:
    if isinstance(value, tuple):
        return f"a tuple of {len(value)} ({', '.join(type(v).__name__ for v in value)})"
    return f"an object of type {type(value).__name__}"


def leaf_names(tree: Any) -> list[str]:
    return [
        jax.tree_util.keystr(path) or "(the whole tree)" for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]
    ]


def refused_signature(fn: Any, protocol: str, *args: Any, **kwargs: Any) -> str | None:
    """In words, that ``fn`` cannot be called as the protocol calls it (a call that failed on its
    signature, not inside it); None if it can, or if its signature cannot be read."""
    sig = unbindable(fn, *args, **kwargs)
    return None if sig is None else f"{protocol} is the Layer protocol, but the layer's takes {sig}"


def check_dparams(i: int, name: str, params: Any, dparams: Any) -> None:
    """A backward must return one gradient per parameter leaf, in the params' structure."""
    want, got = jax.tree.structure(params), cast(Any, jax.tree.structure(dparams))
    if got != want:
        got_leaves, want_leaves = leaf_names(dparams), leaf_names(params)
        if dparams is None:  # None stands for "no gradients" only when there are no params
            detail = f"None for params with leaves {want_leaves} (None is accepted only for a layer without params)"
        elif got_leaves != want_leaves:
            detail = f"dparams with leaves {got_leaves} for params with leaves {want_leaves}"
        else:  # the same leaves in other containers ((), [] or None for {})
            detail = f"dparams structured {got} for params structured {want}"
        raise ValueError(f"layer {i} ({name}): backward returned {detail}; dparams must have the structure of params")
    for (path, g), p in zip(jax.tree_util.tree_flatten_with_path(dparams)[0], jax.tree.leaves(params), strict=True):
        if jnp.shape(g) != jnp.shape(p):
            raise ValueError(
                f"layer {i} ({name}): backward returned dparams{jax.tree_util.keystr(path)} of shape "
                f"{jnp.shape(g)} for a parameter of shape {jnp.shape(p)}"
            )
