"""What a network says when one of its layers breaks the Layer protocol: errors marked as
attributed to a layer (an outer network prefixes its own), signatures the protocol's calls
cannot bind, the layer a failed init, forward or backward is blamed on, a backward's
``dparams`` and ``dx`` checked against its params and its input, and which of params and
inputs that fail in the network is wrong (a later layer's leaf of another width, a first
LayerNorm's offset of another length: named, not the inputs those around it fit)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp

from fnn._validate import unbindable
from fnn.layers._base import Layer, Shape, output_shape_of

# What a layer's own init, forward or backward raises for an ordinary mistake, re-raised as the
# same type with the layer named: a wrong type or value, and a lookup that fails (a params key
# misspelt, a cache shorter than the backward thinks, an attribute of the wrong object).
NAMED_ERRORS = (TypeError, ValueError, KeyError, IndexError, AttributeError)


def message_of(err: BaseException) -> str:
    """An error's message; a KeyError's ``str`` quotes its argument (a key), so its argument."""
    if isinstance(err, KeyError) and len(err.args) == 1 and isinstance(err.args[0], str):
        return err.args[0]
    return str(err)


def said(err: BaseException) -> str:
    """What a layer's own error said, in a message naming the layer: a KeyError's text alone is
    only the key (``'scale'``), so its class comes with it."""
    return f"KeyError {err}" if isinstance(err, KeyError) else str(err)


def layer_error(source: type | BaseException, message: str) -> Exception:
    """An error marked as attributed to a layer (an outer network prefixes its own layer, as
    for a FeatureMismatchError). From the layer's own error, of its class where that class is
    rebuilt from a message (a ValueError subclass of the user's stays one), else the first of
    :data:`NAMED_ERRORS` it is (ValueError for any other)."""
    if isinstance(source, BaseException):
        base = next((t for t in NAMED_ERRORS if isinstance(source, t)), ValueError)
        try:
            err: Exception = type(source)(message)  # type: ignore[assignment]
            if not isinstance(err, base) or message_of(err) != message:
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
        if (
            hasattr(g, "dtype")
            and hasattr(p, "dtype")
            and not jnp.issubdtype(p.dtype, jnp.inexact)
            and jnp.issubdtype(g.dtype, jnp.inexact)
        ):
            raise TypeError(
                f"layer {i} ({name}): backward returned a {g.dtype} gradient dparams{jax.tree_util.keystr(path)} "
                f"for an integer parameter ({p.dtype}), which cannot take it (it was truncated to an integer): a "
                "parameter to train must be a floating array (init returns it in the dtype it is given); an "
                "integer one such as a mask has no gradient: return np.zeros(shape, jax.dtypes.float0) for it, "
                "JAX's zero cotangent of an integer, which fnn.value_and_grad and jax.grad take (fnn.fit and "
                "fnn.gradcheck take floating params only: to train with fit, keep a fixed mask in the layer's "
                "forward, not in its params)"
            )
        if hasattr(g, "dtype") and hasattr(p, "dtype") and not gradient_dtype_fits(g.dtype, p.dtype):
            why = (
                "a complex one for a real parameter keeps a part the parameter cannot take"
                if jnp.issubdtype(g.dtype, jnp.complexfloating)
                else "an integer one has truncated the gradient: compute it without astype(int)"
            )
            raise TypeError(
                f"layer {i} ({name}): backward returned dparams{jax.tree_util.keystr(path)} of dtype {g.dtype} "
                f"for a parameter of dtype {p.dtype}; a gradient must be a {_inexact(p.dtype)} array ({why})"
            )


def _inexact(dtype: Any) -> str:
    return "complex or floating" if jnp.issubdtype(dtype, jnp.complexfloating) else "floating"


def gradient_dtype_fits(dtype: Any, param_dtype: Any) -> bool:
    """Whether a gradient (or an optimizer's update) of ``dtype`` can be one of a parameter of
    ``param_dtype``: floating for a floating parameter, floating or complex for a complex one
    (an integer one was truncated; a complex one of a real parameter would lose its imaginary
    part). A parameter that is not inexact (an integer mask) has no gradient to judge."""
    if jnp.issubdtype(param_dtype, jnp.complexfloating):
        return bool(jnp.issubdtype(dtype, jnp.inexact))
    if jnp.issubdtype(param_dtype, jnp.floating):
        return bool(jnp.issubdtype(dtype, jnp.floating))
    return True


def check_no_params(params: Any) -> None:
    """A layer without params given some (another network's, shifted onto it: Dense(4), Dropout,
    Dense(2) given an mlp([4, 4, 2])'s) refuses them, as Dense refuses a kernel of another shape:
    the layer alone would run without a word, and the gradient of what it ignores is 0."""
    leaves = jax.tree.leaves(params)
    if leaves:
        shapes = jax.tree.map(lambda a: tuple(jnp.shape(a)), params)
        raise ValueError(f"takes no params (init builds {{}}), got {shapes}: params of another network?")


def shape_differences(params: Any, built: Any) -> list[str]:
    """Each leaf of ``params`` whose shape differs from ``built``'s (the same structure), in
    words; then :func:`stacked_note`'s."""
    pairs = zip(jax.tree_util.tree_flatten_with_path(params)[0], jax.tree.leaves(built), strict=True)
    return [
        leaf_difference(path, jnp.shape(p), b.shape) for (path, p), b in pairs if tuple(jnp.shape(p)) != tuple(b.shape)
    ] + stacked_note(params, built)


def stacked_note(params: Any, built: Any) -> list[str]:
    """Where every leaf of ``params`` is ``built``'s shape behind one common leading axis of K,
    the params of K models stacked (what fit_many and sweep return): a note saying so and how to
    take one model's, else nothing."""
    got, want = [tuple(jnp.shape(p)) for p in jax.tree.leaves(params)], [tuple(b.shape) for b in jax.tree.leaves(built)]
    if not got or len(got) != len(want) or any(g[1:] != w for g, w in zip(got, want, strict=True)):
        return []
    k = {g[0] for g in got}
    if len(k) != 1:
        return []
    return [
        f"every leaf has a leading axis of {k.pop()} before the network's shape: these are stacked models' params, "
        "as fit_many and sweep return them; take one model's with result.result(i).params, or jax.vmap over them"
    ]


def leaf_difference(path: Any, got: Sequence[int], builds: Sequence[int]) -> str:
    return f"params{jax.tree_util.keystr(path)} has shape {tuple(got)}, the network builds {tuple(builds)}"


def misfit_message(input_shape: tuple, diffs: list[str]) -> str:
    return f"params do not fit the network for inputs of shape {tuple(input_shape)}: " + "; ".join(diffs)


def misfit_error(message: str, *, params_named: bool, x_said: str | None = None) -> ValueError:
    """The ValueError for params or inputs that do not fit the network, marked for the entry
    points that word it for their own arguments (``fit_many``: the leaves' shapes are per model;
    ``sweep``: the params are built for its ``input_shape``): ``fnn_params_named`` when it
    names params leaves against the shapes the network builds, ``fnn_x_said`` the words that
    open it when it blames the inputs (read with :func:`misfit_marks`)."""
    err = ValueError(message)
    setattr(err, "fnn_misfit", (params_named, x_said))  # noqa: B010  (exceptions take attributes; mypy knows none)
    return err


def misfit_marks(err: BaseException) -> tuple[bool, str | None]:
    """``(params_named, x_said)`` of an error :func:`misfit_error` made; ``(False, None)`` for any other."""
    return getattr(err, "fnn_misfit", (False, None))


class Misfit(NamedTuple):
    """:func:`misfit`'s verdict on params against the network for inputs of one shape."""

    x_at_fault: bool
    """Every axis of the params whose size follows the input disagrees with the inputs' shape
    (and at least one does): the params fit other inputs, the inputs are what is wrong."""
    diffs: list[str]
    """The leaves whose shapes the inputs cannot explain, in words (a later layer's leaf
    replaced, params of another network, a per-feature leaf that disagrees with the ones
    beside it)."""


def misfit(params: Any, build: Callable[[tuple], Any], input_shape: tuple) -> Misfit:
    """Which of ``params`` and inputs of ``input_shape`` (no batch axis) are wrong, where they
    fail in the network: the params are compared with ``build(input_shape)`` (the network's
    init for inputs of that shape, abstract) and with ``build`` of the shape one larger in every
    dimension, which tells the axes whose sizes follow the input. Where every such axis of the
    params disagrees with the inputs, and a leaf differs along those axes only (the first
    kernel's input axis: a transposed kernel, wrong anyway, says nothing of the inputs), the
    inputs are at fault (the params were built for others). The leaves that differ otherwise
    are named: another rank, another size along an axis that does not follow the input, or
    along one that does while other such axes agree with the inputs (a first LayerNorm's offset
    of 4 features where its scale and the next kernel take 5), with the shape the network
    builds (along the axes that follow the input, the params' own size where the inputs are at
    fault). No verdict (not at fault, nothing named) for a network that cannot build params for
    these shapes, or params of another structure."""
    try:
        built = build(tuple(input_shape))
        grown = build(tuple(d + 1 for d in input_shape))
        if cast(Any, jax.tree.structure(params)) != jax.tree.structure(built):
            return Misfit(False, [])
        shapes = [
            (path, tuple(jnp.shape(p)), tuple(b.shape), tuple(g.shape))
            for (path, p), b, g in zip(
                jax.tree_util.tree_flatten_with_path(params)[0], jax.tree.leaves(built), jax.tree.leaves(grown),
                strict=True,
            )
        ]  # fmt: skip
    except Exception:  # an init that needs something unusual: no verdict
        return Misfit(False, [])
    same_rank = [(p, b, g) for _, p, b, g in shapes if len(p) == len(b) == len(g)]
    # x is at fault where no axis that follows the input agrees with it, and a leaf that differs
    # along those axes only says so (a transposed kernel, wrong anyway, says nothing of x)
    agrees = any(pd == bd for p, b, g in same_rank for pd, bd, gd in zip(p, b, g, strict=True) if bd != gd)
    x_at_fault = not agrees and any(
        p != b and all(pd == bd or bd != gd for pd, bd, gd in zip(p, b, g, strict=True)) for p, b, g in same_rank
    )
    diffs = []
    for path, p, b, g in shapes:
        if p == b:
            continue
        if len(p) != len(b) or len(b) != len(g):
            diffs.append(leaf_difference(path, p, b))
            continue
        # along the axes that follow the input, wrong inputs explain the params' own size
        builds = tuple(pd if x_at_fault and bd != gd else bd for pd, bd, gd in zip(p, b, g, strict=True))
        if p != builds:
            diffs.append(leaf_difference(path, p, builds))
    return Misfit(x_at_fault, diffs + stacked_note(params, built) if diffs else diffs)


def init_error(net: Any, i: int, shape: tuple, err: Exception) -> Exception:
    """Layer ``i`` of ``net`` (a Network) failed to init for inputs of ``shape``: a call its
    signature refused (a stax-style ``init(rng, input_shape)``), else its own error, naming it."""
    if already_named(err):
        return layer_error(err, f"layer {i} ({net.names[i]}) {message_of(err)}")
    layer = net.layers[i]
    own = layer.init if isinstance(layer, Layer) else layer.init_with_shape
    refused = refused_signature(own, "init(key, input_shape, dtype)", None, None, None)
    if refused:  # a stax-style init(rng, input_shape): the call failed, not the init
        refused += "; a stax-style init(rng, input_shape) needs the dtype too: (key, input_shape, dtype=jnp.float32)"
        return layer_error(TypeError, f"layer {i} ({net.names[i]}): {refused}")
    return layer_error(err, f"layer {i} ({net.names[i]}): init fails for input shape {shape}: {said(err)}")


def forward_error(net: Any, i: int, shapes: list, err: Exception) -> Exception:
    """Layer ``i``'s forward failed on inputs of shape ``shapes[i]``: the error names an
    earlier layer whose forward disagrees with its init, else layer ``i``."""
    if already_named(err):  # a nested network's layer, named already
        return layer_error(err, f"layer {i} ({net.names[i]}) {message_of(err)}")
    refused = refused_signature(
        net.layers[i].forward, "forward(params, x, *, key=None, train=False)", None, None, key=None, train=False
    )
    if refused:
        return layer_error(TypeError, f"layer {i} ({net.names[i]}): {refused}")
    blame = disagreeing_layer(net, i, shapes, err)
    own = (
        f"layer {i} ({net.names[i]}): forward fails on inputs of shape {shapes[i]}: {said(err)}{_key_hint(net, i, err)}"
    )
    return layer_error(err, blame or own)


def _key_hint(net: Any, i: int, err: Exception) -> str:
    """What to do where a forward drew randomness from ``key=None`` (JAX: "unexpected PRNG key
    type NoneType"): a network hands a key only to the layers marked ``needs_key``, and only in
    training with a key given."""
    if "PRNG key" not in str(err) or "NoneType" not in str(err):
        return ""
    if net.layers[i].needs_key:
        return " (its forward got key=None: training it needs a key, e.g. value_and_grad's f(..., key=key))"
    return (
        " (its forward got key=None: a layer that draws randomness in training must be built with "
        "needs_key=True, fnn.Layer(init, forward, backward, name, needs_key=True), to be handed a key)"
    )


def disagreeing_layer(net: Any, i: int, shapes: list, err: Exception) -> str | None:
    """The first layer before ``i`` whose forward gave another shape than its init declares
    (the params after it were built for the declared one), in words; None if none."""
    for j in range(i):
        try:
            declared = tuple(output_shape_of(net.layers[j].init_with_shape, shapes[j][1:]))
        except Exception:  # an init that does not take this shape: no verdict on that layer
            continue
        if declared != shapes[j + 1][1:]:
            return (
                f"layer {j} ({net.names[j]}): its init declares the output shape {declared} for inputs "
                f"of shape {shapes[j][1:]}, its forward gives {shapes[j + 1][1:]}; layer {i} "
                f"({net.names[i]}), built for the declared shape, fails on it: {said(err)}"
            )
    return None


def backward_error(net: Any, i: int, dy: Any, shapes: Sequence[Shape] | None, err: Exception) -> Exception:
    """Layer ``i``'s backward failed on ``dy``. ``shapes``: the forward's, where the cache
    recorded them (then every ``dy`` was checked against its layer's output, :func:`check_dx`,
    and the error is the layer's own); without them, ``dy`` above the last layer is the dx of
    the layer after it, unchecked, and that layer is named beside it."""
    if already_named(err):
        return layer_error(err, f"layer {i} ({net.names[i]}) {message_of(err)}")
    refused = refused_signature(net.layers[i].backward, "backward(params, cache, dy)", None, None, None)
    if refused:
        return layer_error(TypeError, f"layer {i} ({net.names[i]}): {refused}")
    source = (
        f" (the dx of layer {i + 1} ({net.names[i + 1]}), unchecked: a backward must return dx of its input's shape)"
        if shapes is None and i + 1 < len(net.layers)
        else ""
    )
    return layer_error(
        err, f"layer {i} ({net.names[i]}): backward fails on dy of shape {tuple(jnp.shape(dy))}{source}: {said(err)}"
    )


def dx_problem(dx: Any, shape: Shape | None, dtype: Any = None) -> tuple[type[Exception], str] | None:
    """What makes ``dx`` no gradient for inputs of ``shape`` (None: unknown) and, if given,
    floating ``dtype``, in words and with its kind: a TypeError for a wrong dtype (an integer
    dx, which truncated the gradient), a ValueError otherwise; None if nothing does."""
    if dx is None:
        return ValueError, "dx None" + (f" for inputs of shape {tuple(shape)}" if shape is not None else "")
    if not (hasattr(dx, "shape") and hasattr(dx, "dtype")):
        return ValueError, f"dx of type {type(dx).__name__}, not an array"
    if shape is not None and tuple(dx.shape) != tuple(shape):
        return ValueError, f"dx of shape {tuple(dx.shape)} for inputs of shape {tuple(shape)}"
    if dtype is not None and jnp.issubdtype(dtype, jnp.inexact) and not jnp.issubdtype(dx.dtype, jnp.inexact):
        return TypeError, f"dx of dtype {dx.dtype} for inputs of dtype {jnp.dtype(dtype)}"
    return None


def check_dx(net: Any, i: int, dx: Any, shapes: Sequence[Shape] | None, dtypes: Sequence[Any] | None = None) -> None:
    """Layer ``i``'s ``dx`` (``i > 0``) is the ``dy`` of layer ``i - 1``: None, another shape
    than layer ``i``'s input (where the forward's ``shapes`` are known), or an integer dx for a
    floating input (where its ``dtypes`` are: it truncated the gradient) is layer ``i``'s
    mistake, named here rather than by the layer it would break (or silently corrupt)."""
    found = dx_problem(dx, None if shapes is None else shapes[i], None if dtypes is None else dtypes[i])
    if found:
        kind, problem = found
        dtype = kind is TypeError  # a wrong kind, not a wrong value
        raise layer_error(
            kind,
            f"layer {i} ({net.names[i]}): backward returned {problem}; dx must have its input's "
            f"{'floating dtype (an integer dx has truncated the gradient)' if dtype else 'shape'}: it is the dy "
            f"of layer {i - 1} ({net.names[i - 1]})",
        )


def input_gradient_error(net: Any, dx: Any, x: Any, door: str) -> ValueError | None:
    """The error for a first layer's ``dx`` that is no gradient of ``x`` (None if it is one),
    for ``door``, a function that needs it (gradcheck, with_manual_vjp). The layers after the
    first had their ``dx`` checked by the network's backward (:func:`check_dx`), so the first
    layer is named."""
    found = dx_problem(dx, jnp.shape(x), jnp.result_type(x))
    if found is None:
        return None
    problem = found[1]
    names = getattr(net, "names", None)
    first = f"layer 0 ({names[0]})" if names else "the first layer"
    return ValueError(
        f"{first}: backward returned {problem}; {door} needs it as the gradient with respect to x: an "
        "array of x's shape and a floating dtype (a first layer that cannot give dx, one taking integer "
        "inputs, works where x's gradient is not asked for: fnn.value_and_grad, or with_manual_vjp "
        "differentiated with respect to params alone)"
    )
