"""Activations as the layers consume them: :class:`Activation` ``(name, fn, vjp)``, looked up
by name with :func:`get` (equal names and hyperparameters give equal, equally hashed
Activations, because jitted training functions are cached on them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp
from jax import Array

from fnn._registry import Registry
from fnn._validate import boolean, integer, real, unbindable
from fnn._values import bound
from fnn.activations._base import as_float
from fnn.activations._rectifiers import (
    celu,
    celu_grad,
    elu,
    elu_grad,
    hard_sigmoid,
    hard_sigmoid_grad,
    leaky_relu,
    leaky_relu_grad,
    linear,
    linear_grad,
    relu,
    relu6,
    relu6_grad,
    relu_grad,
    selu,
    selu_grad,
)
from fnn.activations._shrink import (
    hard_shrink,
    hard_shrink_grad,
    soft_shrink,
    soft_shrink_grad,
    tanh_shrink,
    tanh_shrink_grad,
    threshold,
    threshold_grad,
)
from fnn.activations._smooth import (
    exponential,
    exponential_grad,
    gelu,
    gelu_grad,
    gelu_tanh,
    gelu_tanh_grad,
    log_sigmoid,
    log_sigmoid_grad,
    mish,
    mish_grad,
    sigmoid,
    sigmoid_grad,
    silu,
    silu_grad,
    softplus,
    softplus_grad,
    softsign,
    softsign_grad,
    tanh,
    tanh_grad,
)
from fnn.activations._softmax import log_softmax, log_softmax_vjp, softmax, softmax_vjp, sparsemax, sparsemax_vjp
from fnn.activations._surrogates import (
    hard_silu,
    hard_silu_grad,
    hard_tanh,
    hard_tanh_grad,
    sparse_plus,
    sparse_plus_grad,
    sparse_sigmoid,
    sparse_sigmoid_grad,
    squareplus,
    squareplus_grad,
)


class Activation(NamedTuple):
    """An activation as the layers consume it: ``y = fn(x)``, ``dx = vjp(x, y, dy)``.

    Build one with :func:`get` (the built-in ones), or directly for your own: ``Dense`` and the
    ``Activation`` layer take it as they take a name. Equal names and hyperparameters give equal,
    equally hashed Activations (compiled training programs are cached on them).

    Attributes:
        name: The display name (the canonical name for a built-in).
        fn: The forward ``x -> y``, any shape to the same shape.
        vjp: ``(x, y, dy) -> dx``, the vector-Jacobian product, written by hand.

    Examples:
        >>> import fnn
        >>> square = fnn.activations.Activation("square", lambda x: x * x, lambda x, y, dy: 2 * x * dy)
        >>> square(3.0), square.vjp(3.0, 9.0, 1.0)
        (9.0, 6.0)
    """

    name: str
    fn: Callable[[Array], Array]
    vjp: Callable[[Array, Array, Array], Array]

    def __call__(self, x: Array) -> Array:
        """``fn(x)``.

        Args:
            x: Input array.

        Returns:
            ``fn(x)``.
        """
        return self.fn(x)


def _elementwise_vjp(grad: Callable, x: Array, y: Array, dy: Array, **params: Any) -> Array:
    return dy * grad(x, y, **params)


class _Spec(NamedTuple):
    fn: Callable
    grad: Callable | None  # elementwise derivative (x, y=None, **params)
    vjp: Callable | None  # along-an-axis (x, y, dy, **params)
    defaults: dict  # a default of None: the option must be given (threshold's, as in Keras)


_REGISTRY: dict[str, _Spec] = {
    "linear": _Spec(linear, linear_grad, None, {}),
    "sigmoid": _Spec(sigmoid, sigmoid_grad, None, {}),
    "tanh": _Spec(tanh, tanh_grad, None, {}),
    "relu": _Spec(relu, relu_grad, None, {}),
    "relu6": _Spec(relu6, relu6_grad, None, {}),
    "leaky_relu": _Spec(leaky_relu, leaky_relu_grad, None, {"negative_slope": 0.2}),
    "elu": _Spec(elu, elu_grad, None, {"alpha": 1.0}),
    "celu": _Spec(celu, celu_grad, None, {"alpha": 1.0}),
    "selu": _Spec(selu, selu_grad, None, {}),
    "gelu": _Spec(gelu, gelu_grad, None, {}),
    "gelu_tanh": _Spec(gelu_tanh, gelu_tanh_grad, None, {}),
    "silu": _Spec(silu, silu_grad, None, {}),
    "softplus": _Spec(softplus, softplus_grad, None, {}),
    "softsign": _Spec(softsign, softsign_grad, None, {}),
    "hard_sigmoid": _Spec(hard_sigmoid, hard_sigmoid_grad, None, {}),
    "mish": _Spec(mish, mish_grad, None, {}),
    "exponential": _Spec(exponential, exponential_grad, None, {}),
    "log_sigmoid": _Spec(log_sigmoid, log_sigmoid_grad, None, {}),
    "hard_tanh": _Spec(hard_tanh, hard_tanh_grad, None, {}),
    "hard_silu": _Spec(hard_silu, hard_silu_grad, None, {}),
    "sparse_sigmoid": _Spec(sparse_sigmoid, sparse_sigmoid_grad, None, {}),
    "sparse_plus": _Spec(sparse_plus, sparse_plus_grad, None, {}),
    "squareplus": _Spec(squareplus, squareplus_grad, None, {"b": 4.0}),
    "hard_shrink": _Spec(hard_shrink, hard_shrink_grad, None, {"threshold": 0.5}),
    "soft_shrink": _Spec(soft_shrink, soft_shrink_grad, None, {"threshold": 0.5}),
    "tanh_shrink": _Spec(tanh_shrink, tanh_shrink_grad, None, {}),
    "threshold": _Spec(threshold, threshold_grad, None, {"threshold": None, "default_value": None}),
    "softmax": _Spec(softmax, None, softmax_vjp, {"axis": -1}),
    "log_softmax": _Spec(log_softmax, None, log_softmax_vjp, {"axis": -1}),
    "sparsemax": _Spec(sparsemax, None, sparsemax_vjp, {"axis": -1}),
}
_NAMES = Registry(
    "activation", _REGISTRY, aliases={"swish": "silu", "gelu_approximate": "gelu_tanh", "hard_swish": "hard_silu"}
)
# The options with a range beyond finiteness: the interval keywords of fnn._validate.real.
_BOUNDS: dict[tuple[str, str], dict[str, Any]] = {
    ("celu", "alpha"): {"lo": 0.0, "lo_open": True},  # divides x; a negative one flips the branch
    ("squareplus", "b"): {"lo": 0.0, "lo_open": True},  # b = 0 is relu, with f'(0) = 0/0
    ("hard_shrink", "threshold"): {"lo": 0.0},
    ("soft_shrink", "threshold"): {"lo": 0.0},
}
# Keyword spellings other libraries use for the same hyperparameter (Keras 2 / tf.nn: alpha).
_KWARG_ALIASES = {"leaky_relu": {"alpha": "negative_slope"}}


def names() -> list[str]:
    """All known activation names, aliases included, sorted.

    Returns:
        The names :func:`get` accepts.
    """
    return _NAMES.names()


def _check_params(name: str, defaults: dict, kwargs: dict) -> dict:
    for old, new in _KWARG_ALIASES.get(name, {}).items():
        if old in kwargs:
            if new in kwargs:
                raise TypeError(f"activation {name!r}: give {new!r} or {old!r}, not both")
            kwargs[new] = kwargs.pop(old)
    unknown = sorted(set(kwargs) - set(defaults))
    if unknown:
        allowed = ", ".join(defaults) or "none"
        raise TypeError(f"activation {name!r} got unexpected keyword(s) {unknown}; allowed: {allowed}")
    missing = [key for key, value in defaults.items() if value is None and key not in kwargs]
    if missing:
        raise TypeError(f"activation {name!r} needs {' and '.join(missing)} (no defaults, as in Keras)")
    params = dict(defaults)
    for key, value in kwargs.items():
        where = f"activation {name!r}: {key}"
        if isinstance(defaults[key], int):
            params[key] = integer(where, value)
        else:
            params[key] = real(where, value, **_BOUNDS.get((name, key), {}))
    return params


def _check_calls(act: Activation) -> None:
    """An Activation of the user's takes the calls the layers make, ``fn(x)`` and
    ``vjp(x, y, dy)``: checked where the layer is built, not in a backward that the layer
    before it would be blamed for."""
    for attr, call, args in (("fn", "fn(x)", (None,)), ("vjp", "vjp(x, y, dy)", (None, None, None))):
        fn = getattr(act, attr)
        if not callable(fn):
            raise TypeError(f"activation {act.name!r}: {attr} must be a function {call}, got {type(fn).__name__}")
        sig = unbindable(fn, *args)
        if sig is not None:
            raise TypeError(f"activation {act.name!r}: the layers call {call}, but its {attr} takes {sig}")


def get(identifier: str | Activation | None = None, **kwargs: Any) -> Activation:
    """Look an activation up by name (aliases and hyperparameters as keywords).

    ``None`` means "linear". An :class:`Activation` passes through unchanged. Names ignore case
    and underscores, so Keras's and PyTorch's class names resolve (``"ReLU"``, ``"LeakyReLU"``)
    to the activation function, with its defaults: ``"LeakyReLU"`` is Keras's ``leaky_relu``
    function (``negative_slope=0.2``), where Keras's LeakyReLU layer defaults to 0.3 and
    PyTorch's to 0.01 (give ``negative_slope`` to match them).

    Args:
        identifier: A name (``"relu"``, ``"leaky_relu"``...), an :class:`Activation`, or None.
        **kwargs: The activation's hyperparameters, with Keras's names and defaults:
            ``negative_slope`` (leaky_relu; Keras 2's ``alpha`` too), ``alpha`` (elu; celu,
            > 0), ``approximate`` (gelu: True gives gelu_tanh), ``b`` (squareplus, > 0),
            ``threshold`` (hard_shrink, soft_shrink, >= 0), ``threshold`` and ``default_value``
            (threshold: both required), ``axis`` (softmax, log_softmax, sparsemax).

    Returns:
        The :class:`Activation`, with its hand-written ``vjp``.

    Raises:
        ValueError: For an unknown name (the message lists the known ones), and for an option
            out of its range (non-finite, or outside the bounds above).
        TypeError: For anything that is not a name, an Activation or None, for unexpected,
            missing or ill-typed keywords, and for an Activation whose ``fn`` cannot be called as
            ``fn(x)`` or ``vjp`` as ``vjp(x, y, dy)``.

    Examples:
        >>> import fnn
        >>> act = fnn.activations.get("leaky_relu", negative_slope=0.5)
        >>> act.name, act.fn([-1.0]).tolist()
        ('leaky_relu', [-0.5])
        >>> fnn.activations.get("gelu", approximate=True).name
        'gelu_tanh'
    """
    if isinstance(identifier, Activation):
        if kwargs:
            raise TypeError("activation: keyword arguments only apply to a name, not an Activation")
        _check_calls(identifier)
        return identifier
    if identifier is None:
        identifier = "linear"
    if not isinstance(identifier, str):
        raise TypeError(
            f"activation must be a name (str), an Activation or None, got "
            f"{type(identifier).__name__}; wrap a custom function as Activation(name, fn, vjp)"
        )
    name = _NAMES.canonical(identifier)
    if name == "gelu" and "approximate" in kwargs:
        name = "gelu_tanh" if boolean("activation 'gelu': approximate", kwargs.pop("approximate")) else "gelu"
    spec = _REGISTRY[name]
    params = _check_params(name, spec.defaults, dict(kwargs))
    if spec.grad is None:
        assert spec.vjp is not None  # along-an-axis activations carry a vjp instead
        return Activation(name, bound(spec.fn, **params), bound(spec.vjp, **params))
    fn = bound(spec.fn, **params) if params else spec.fn
    return Activation(name, fn, bound(_elementwise_vjp, spec.grad, **params))


# The built-in rules: elementwise ones and those along an axis (with their vjps).
_ELEMENTWISE = frozenset(spec.fn for spec in _REGISTRY.values() if spec.grad is not None)
_ALONG_AXIS = {spec.fn: spec.vjp for spec in _REGISTRY.values() if spec.grad is None}


def acts_per_sample(act: Any) -> bool:
    """Whether ``act`` computes each sample's output, and its derivative, from that sample
    alone: the built-in activations do (softmax, log_softmax and sparsemax along the last
    axis, their default); an Activation of your own is not assumed to.

    Args:
        act: An :class:`Activation` (anything else gives False).

    Returns:
        True for a built-in activation acting within each sample.
    """
    if not isinstance(act, Activation):
        return False
    fn, params = (act.fn.fn, act.fn.kwargs) if isinstance(act.fn, bound) else (act.fn, {})
    vjp = act.vjp.fn if isinstance(act.vjp, bound) else act.vjp
    if fn in _ELEMENTWISE:
        return vjp is _elementwise_vjp
    return fn in _ALONG_AXIS and vjp is _ALONG_AXIS[fn] and params.get("axis", -1) == -1


def activation_repr(act: Activation) -> str:
    """``act`` as a layer's repr shows it: its name, with the options of a built-in that differ
    from their defaults (``leaky_relu(negative_slope=0.5)``, ``softmax(axis=0)``).

    Args:
        act: An :class:`Activation`.

    Returns:
        Its name, and its non-default options in parentheses.
    """
    spec = _REGISTRY.get(act.name)
    if spec is None or not isinstance(act.fn, bound) or act.fn.fn is not spec.fn:
        return act.name
    options = [f"{k}={v!r}" for k, v in act.fn.kwargs.items() if k not in spec.defaults or v != spec.defaults[k]]
    return f"{act.name}({', '.join(options)})" if options else act.name


def derivative(identifier: str | Activation | None, x: Array, **kwargs: Any) -> Array:
    """Elementwise derivative ``f'(x)`` of an activation (same shape and dtype as ``x``).

    Args:
        identifier: As in :func:`get`: a name, an :class:`Activation` or None.
        x: Where to take the derivative, any shape.
        **kwargs: The activation's hyperparameters, as in :func:`get`.

    Returns:
        ``f'(x)`` elementwise, of the shape of ``x``.

    Raises:
        ValueError: For softmax, log_softmax and sparsemax, whose Jacobian is not diagonal (use their
            ``vjp``), and for an unknown name.
        TypeError: As :func:`get`.

    Examples:
        >>> import fnn
        >>> fnn.activations.derivative("relu", [-1.0, 3.0]).tolist()
        [0.0, 1.0]
    """
    act = get(identifier, **kwargs)
    if act.name in _REGISTRY and _REGISTRY[act.name].grad is None:
        raise ValueError(f"activation {act.name!r} is not elementwise; use get({act.name!r}).vjp")
    x = as_float(x)
    return act.vjp(x, act.fn(x), jnp.ones_like(x))
