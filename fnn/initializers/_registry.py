"""Initializers by name: :func:`get` and :func:`names` over every factory (Keras's aliases
included), and the check that an initializer of the user's takes ``(key, shape, dtype)``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from fnn._registry import Registry
from fnn.initializers._base import Initializer
from fnn.initializers._fixed import constant, ones, random_normal, random_uniform, truncated_normal, zeros
from fnn.initializers._matrix import identity, orthogonal
from fnn.initializers._variance_scaling import (
    glorot_normal,
    glorot_uniform,
    he_normal,
    he_uniform,
    kaiming_normal,
    kaiming_uniform,
    lecun_normal,
    lecun_uniform,
    variance_scaling,
    xavier_normal,
    xavier_uniform,
)

_FACTORIES: dict[str, Callable[..., Initializer]] = {
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "he_uniform": he_uniform,
    "he_normal": he_normal,
    "lecun_uniform": lecun_uniform,
    "lecun_normal": lecun_normal,
    "xavier_uniform": xavier_uniform,
    "xavier_normal": xavier_normal,
    "kaiming_uniform": kaiming_uniform,
    "kaiming_normal": kaiming_normal,
    "random_normal": random_normal,
    "truncated_normal": truncated_normal,
    "random_uniform": random_uniform,
    "variance_scaling": variance_scaling,
    "orthogonal": orthogonal,
    "identity": identity,
    "constant": constant,
    "zeros": zeros,
    "ones": ones,
}
# PyTorch's in-place names whose plain form is Keras's: the trailing underscore asks for torch's
# defaults (N(0, 1), U(0, 1)) and keywords (std; a, b), where "normal" and "uniform" are Keras's
# 0.05-scaled ones. (The other torch names draw alike with or without it.)
_TORCH_IN_PLACE: dict[str, tuple[Callable[..., Initializer], dict[str, float], dict[str, str]]] = {
    "normal_": (random_normal, {"mean": 0.0, "stddev": 1.0}, {"std": "stddev"}),
    "uniform_": (random_uniform, {"minval": 0.0, "maxval": 1.0}, {"a": "minval", "b": "maxval"}),
}


# Keras's aliases, and torch's eye_. The PyTorch names are factories of their own: torch's normals
# are untruncated (its orthogonal_ is Keras's orthogonal, under the same name).
_NAMES = Registry(
    "initializer",
    _FACTORIES,
    aliases={
        "normal": "random_normal",
        "uniform": "random_uniform",
        "zero": "zeros",
        "one": "ones",
        "orthogonal_initializer": "orthogonal",
        "identity_initializer": "identity",
        "eye": "identity",
    },
    listed=tuple(_TORCH_IN_PLACE),
)


def _torch_in_place(name: str, kwargs: dict[str, Any]) -> Initializer | None:
    found = _TORCH_IN_PLACE.get(name.strip().lower())
    if found is None:
        return None
    factory, defaults, keywords = found
    given = {keywords.get(k, k): v for k, v in kwargs.items()}
    if len(given) < len(kwargs):
        raise TypeError(f"initializer {name!r}: {sorted(kwargs)} name the same argument twice")
    try:
        return factory(**{**defaults, **given})
    except TypeError as e:
        raise TypeError(f"initializer {name!r}: {e}") from None


def name_of(init: Any) -> str | None:
    """The name that gives ``init`` (``get(name) == init``: ``"he_normal"``), or None for an
    initializer no name gives without arguments (``random_normal(stddev=0.1)``, a function of
    the user's). Keras's name comes first where a torch one gives the same initializer
    (``glorot_uniform``, not ``xavier_uniform``); ``zeros`` and ``lecun_normal`` name
    ``constant()`` and ``variance_scaling()``."""
    for name, factory in _FACTORIES.items():
        if factory in (constant, variance_scaling):  # their defaults have names of their own
            continue
        try:
            if bool(factory() == init):
                return name
        except Exception:  # an object of the user's whose == does not give a truth value
            return None
    return None


def names() -> list[str]:
    """All known initializer names, aliases included, sorted.

    Returns:
        The names :func:`get` accepts (also in any case, without underscores: Keras's class
        names such as ``"GlorotUniform"`` resolve).

    Examples:
        >>> import fnn
        >>> "glorot_uniform" in fnn.initializers.names(), "zero" in fnn.initializers.names()
        (True, True)
    """
    return _NAMES.names()


def get(identifier: str | Initializer, **kwargs: Any) -> Initializer:
    """An initializer by name (keywords go to its factory), or a callable passed through.

    ``get("he_normal")``, ``get("random_normal", stddev=0.1)``. ValueError for an unknown name
    (listing the known ones); TypeError for anything that is neither a name nor a callable.

    Args:
        identifier: An initializer name (:func:`names`; case and underscores ignored, except
            in PyTorch's ``"normal_"`` and ``"uniform_"``, which take torch's defaults, ``N(0, 1)``
            and ``U(0, 1)``, and its keywords ``std``, ``a`` and ``b``, where Keras's ``"normal"``
            and ``"uniform"`` draw ``N(0, 0.05^2)`` and ``U(-0.05, 0.05)``), or an initializer (any
            callable), returned as it is.
        **kwargs: The named initializer's arguments (``stddev``, ``gain``...).

    Returns:
        The initializer.

    Raises:
        ValueError: For an unknown name, or a bad argument value.
        TypeError: For an ``identifier`` that is neither a name nor a callable, a callable that
            does not take ``(key, shape, dtype)``, keywords given with a callable, or a keyword
            the named initializer does not take.

    Examples:
        >>> import fnn
        >>> fnn.initializers.get("GlorotUniform") == fnn.initializers.glorot_uniform()
        True
        >>> fnn.initializers.get("random_normal", stddev=0.1) == fnn.initializers.random_normal(stddev=0.1)
        True
    """
    if isinstance(identifier, str):
        torch_init = _torch_in_place(identifier, kwargs)
        if torch_init is not None:
            return torch_init
        factory = _NAMES.lookup(identifier)
        try:
            return factory(**kwargs)
        except TypeError as e:  # e.g. an unexpected keyword: say which initializer got it
            raise TypeError(f"initializer {identifier!r}: {e}") from None
    if callable(identifier):
        if kwargs:
            raise TypeError("initializer: keyword arguments only apply to a name, not a callable")
        _check_signature(identifier)
        return identifier
    raise TypeError(f"initializer must be a name (str) or a callable, got {type(identifier).__name__}")


def _check_signature(init: Callable) -> None:
    """An initializer of the user's must take ``(key, shape, dtype)``: a layer passes all three."""
    try:
        sig = inspect.signature(init)
    except (TypeError, ValueError):  # a builtin or C callable: no verdict
        return
    try:
        sig.bind(None, None, None)
    except TypeError:
        name = getattr(init, "__name__", None) or repr(init)
        raise TypeError(
            f"initializer {name} must take (key, shape, dtype) (the jax.nn.initializers signature; dtype may "
            f"default to jnp.float32), but it takes {sig}"
        ) from None
