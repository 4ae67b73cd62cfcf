"""The params and the data against the network, by tracing (nothing compiles, nothing runs):
the params' structure and shapes against what ``net.init`` builds (params whose layers do not
fit each other named, not inputs that fit the first layer), the inputs against the network, the
targets against its output and the loss; where the network itself is at fault (a layer whose
forward disagrees with its own init), that layer is named instead of the data.

The traced checks are cached: a second ``fit`` with the same shapes costs no tracing.
"""

from __future__ import annotations

from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np

from fnn import losses
from fnn._cache import structural_cache, trace_settings
from fnn._dtypes import abstract_array, check_params_float, held_dtype, input_dtype
from fnn._keys import seed_key
from fnn._validate import eval_shape_or_run
from fnn._values import Static
from fnn.layers._base import check_net
from fnn.layers._errors import misfit, misfit_error, misfit_message, shape_differences
from fnn.losses._custom import check_plain_loss_value
from fnn.losses._targets import check_targets_as_run


@structural_cache(maxsize=256)
def _abstract_init(net: Any, input_shape: tuple) -> Any:
    """The params ``net.init`` builds for inputs of ``input_shape``, as shapes (traced once for
    both checks below); an init that cannot be traced runs eagerly, as ``net.init`` runs it."""
    # the key traced too: an eager PRNGKey(0) would compile (or look up) two small programs
    return eval_shape_or_run(lambda: net.init(jax.random.PRNGKey(0), input_shape))


def _check_params_fit_network(net: Any, params: Any, input_shape: tuple, shapes: bool = True) -> None:
    """Params must have the network's structure (missing or extra leaves are named), and, with
    ``shapes``, its shapes: Dense layers take their sizes from the params, so params of another
    width would silently train another network. A wrong number of layers is left to the
    network's own message."""
    want = _abstract_init(net, tuple(input_shape))
    got, got_def = jax.tree_util.tree_flatten_with_path(params)
    ref, ref_def = jax.tree_util.tree_flatten_with_path(want)
    if cast(Any, got_def) != ref_def:  # (jaxlib ships no stubs for PyTreeDef)
        if isinstance(params, (list, tuple)) and isinstance(want, list) and len(params) != len(want):
            return  # the network names a wrong number of layers itself
        got_paths = {jax.tree_util.keystr(p) for p, _ in got}
        ref_paths = {jax.tree_util.keystr(p) for p, _ in ref}
        missing, extra = sorted(ref_paths - got_paths), sorted(got_paths - ref_paths)
        if missing or extra:
            said = [f"missing params{k}" for k in missing] + [f"unexpected params{k}" for k in extra]
            raise ValueError(
                f"params do not have the network's structure (net.init(key, {tuple(input_shape)}) builds it): "
                + "; ".join(said)
            )
        return
    if not shapes:
        return
    if diffs := shape_differences(params, want):
        raise misfit_error(misfit_message(input_shape, diffs), params_named=True)


def signature(tree: Any) -> tuple:
    """A hashable ``(treedef, ((shape, dtype), ...))`` of a tree of arrays."""
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple(
        (tuple(np.shape(a)), np.dtype(a.dtype if hasattr(a, "dtype") else np.asarray(a).dtype)) for a in leaves
    )


def abstract(params_signature: tuple) -> Any:
    treedef, leaves = params_signature
    return jax.tree.unflatten(treedef, [abstract_array(shape, dtype) for shape, dtype in leaves])


# Both cached: fit checks the same shapes on every call, and tracing a network costs
# milliseconds. A check that raises is not cached, so it raises again on the next call.
@structural_cache(maxsize=256)
def network_output(net: Any, params_signature: tuple, x_shape: tuple, x_dtype: Any) -> tuple[tuple, np.dtype]:
    """``net.apply``'s output shape and dtype for params of ``params_signature`` and inputs of
    ``x_shape`` in ``x_dtype`` (traced, nothing runs)."""
    out = jax.eval_shape(net.apply, abstract(params_signature), abstract_array(x_shape, x_dtype))
    return tuple(out.shape), np.dtype(out.dtype)


@structural_cache(maxsize=256)
def _check_params_fit_network_cached(
    net: Any, params_signature: tuple, input_shape: tuple, shapes: bool = True
) -> None:
    _check_params_fit_network(net, abstract(params_signature), input_shape, shapes)


def _layer_at_fault(net: Any, x_shape: tuple, dtype: Any = jnp.float32) -> str | None:
    """The first layer of ``net`` whose forward disagrees with its own init (fails on the params
    that init builds, or gives another output shape than init declares), in words; None when
    every layer agrees with itself (traced: nothing runs). ``dtype``: the inputs' and params'
    (a float64 input against float32 params would be a mix of the walk's own)."""
    layers_, names = getattr(net, "layers", None), getattr(net, "names", None)
    if layers_ is None or names is None:
        return None

    def walk(key: Any) -> Static:
        x = jnp.zeros(x_shape, dtype)
        for i, (layer, name) in enumerate(zip(layers_, names, strict=True)):
            declared, p = layer.init_with_shape(key, tuple(x.shape[1:]), dtype)
            try:
                y = layer.forward(p, x)[0]
            except Exception as err:  # whatever the layer raises: it is the layer's
                return Static(f"layer {i} ({name}): its forward fails on inputs of shape {x.shape} "
                              f"with the params its init builds: {err}")  # fmt: skip
            if tuple(y.shape[1:]) != tuple(declared):
                return Static(f"layer {i} ({name}): its init declares the output shape {tuple(declared)}, "
                              f"its forward gives {tuple(y.shape[1:])}")  # fmt: skip
            x = y
        return Static(None)

    try:
        return eval_shape_or_run(walk, seed_key(0)).value
    except Exception:  # the walk's own failure: no verdict
        return None


def check_64bit_arrays(tree: Any, name: str = "params") -> None:
    """A ValueError naming the first leaf of ``tree`` (params, an optimizer state) that is a jax
    array of a 64-bit dtype JAX no longer computes in: made while ``jax_enable_x64`` was on,
    passed after it was turned off (the compiled epoch would mix it with the 32-bit values JAX
    computes, and refuse it in its own words). NumPy arrays are cast to 32 bits as JAX casts
    them: left alone; so are typed PRNG keys (an optimizer state's noise key), whose dtype x64
    does not change."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if not isinstance(leaf, jax.Array) or jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.extended):
            continue
        if (held := jax.dtypes.canonicalize_dtype(leaf.dtype)) != leaf.dtype:
            raise ValueError(
                f"{name}{jax.tree_util.keystr(path)} is a {leaf.dtype} jax array, but jax_enable_x64 is off "
                f"(it was on when the array was made): JAX computes in {held} now. Enable x64 again "
                "(jax.config.update('jax_enable_x64', True), best at startup) or cast its 64-bit leaves to "
                f"32 bits (jax.tree.map(lambda a: a.astype(jnp.{held}), {name}) where all are {leaf.dtype})"
            )


def _kinds(params: Any) -> tuple | None:
    """What the checks of params against the network read of them: the structure, and each
    leaf's kind (a jax array or not), shape and dtype; None where a leaf is no array."""
    leaves, treedef = jax.tree.flatten(params)
    if not all(isinstance(leaf, (jax.Array, np.ndarray)) for leaf in leaves):
        return None
    return treedef, tuple((isinstance(leaf, jax.Array), leaf.shape, leaf.dtype) for leaf in leaves)


@structural_cache(maxsize=256)
def _passed(net: Any, kinds: tuple, x_shape: tuple, x_dtype: Any, settings: tuple) -> list:
    """A record, empty until the checks of params of ``kinds`` and inputs of ``x_shape`` and
    ``x_dtype`` against ``net`` pass, then holding their ``(output shape, output dtype)``."""
    return []


def check_against_network(net: Any, params: Any, loss: Any, x: Any, y: Any, xname: str, yname: str) -> tuple:
    """Shape-checks ``loss(y, net(params, x))`` by tracing (no compilation, no FLOPs); returns
    the output shape."""
    check_net(net)
    out_shape, out_dtype = _params_and_x(net, params, x, xname)
    if y.shape[0] != out_shape[0]:
        raise ValueError(f"{xname} and {yname} have different numbers of samples: {x.shape[0]} vs {y.shape[0]}")
    # the loss traced in the dtypes the run computes in (y moved as fit and evaluate move it)
    y_dtype = held_dtype(params, y.dtype)
    if isinstance(loss, losses.Loss):
        check_targets_as_run(loss, y, out_shape, yname, y_dtype, out_dtype)
    elif loss is not None:
        shape = _plain_loss_shape(loss, tuple(y.shape), y_dtype, tuple(out_shape), out_dtype)
        if shape is not None:
            check_plain_loss_value(loss, shape)
    return out_shape


def rank_error(name: str, shape: tuple) -> ValueError:
    """Inputs of rank 1: no samples axis beside the features."""
    return ValueError(
        f"{name} must be (samples, *input_shape), samples first; got shape {tuple(shape)} "
        f"(rank 1: one feature per sample is {name}[:, None], one sample {name}[None])"
    )


def check_params_and_x(net: Any, params: Any, x: Any, xname: str = "x") -> None:
    """``params`` and inputs ``x`` (an array or a tracer: under ``jit`` too) against ``net`` as
    ``fit`` checks them (:func:`_check_params_and_x`), for the entry points that run the network
    on them (``value_and_grad``'s function, ``train_step``, ``eval_step``...): a rank-1 ``x``
    checked as one sample (a batch of 1), x that is no array (a pytree for a network of the
    user's) or a scalar left to the network. A second call with params and x of the same
    structure, shapes and dtypes (a hot loop) only looks the verdict up."""
    if not hasattr(x, "shape") or not hasattr(x, "dtype") or not x.shape:
        return
    if len(x.shape) == 1:  # one sample without its batch axis: these functions are vmapped per example
        x, xname = jax.ShapeDtypeStruct((1, *x.shape), x.dtype), f"{xname} (one sample of shape {tuple(x.shape)})"
    _params_and_x(net, params, x, xname)


def _params_and_x(net: Any, params: Any, x: Any, xname: str) -> tuple[tuple, np.dtype]:
    """:func:`_check_params_and_x`, run once for params of one structure, shapes, dtypes and
    kinds and x of one shape and dtype (the checks read only those: a predict of one sample was
    mostly these checks); ``net``'s output shape and dtype."""
    kinds = _kinds(params)
    passed = [] if kinds is None else _passed(net, kinds, tuple(x.shape), x.dtype, trace_settings())
    if not passed:
        passed.append(_check_params_and_x(net, params, x, xname))
    return passed[0]


def _check_params_and_x(net: Any, params: Any, x: Any, xname: str) -> tuple[tuple, np.dtype]:
    """The params against the network (64-bit jax arrays, float dtypes, structure and shapes)
    and ``x`` against both, by tracing; ``net``'s output shape and dtype."""
    check_64bit_arrays(params)  # a float64 jax array made before x64 was turned off
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if hasattr(leaf, "dtype"):  # float8 params: before jax's promotion error in the trace
            check_params_float(f"params{jax.tree_util.keystr(path)}", leaf.dtype)
    sig = signature(params)
    input_shape = tuple(x.shape[1:])
    if hasattr(net, "init"):  # missing or extra leaves named before the network trips over them
        _check_params_fit_network_cached(net, sig, input_shape, False)
    x_dtype = input_dtype(params, x.dtype)
    try:
        out_shape, out_dtype = network_output(net, sig, tuple(x.shape), x_dtype)
    except (ValueError, TypeError) as e:
        if isinstance(e, ValueError) and str(e).startswith("params"):  # the params' own structure
            raise ValueError(str(e)) from None
        # the params' fault whatever x is (a later layer's leaf replaced, params still stacked
        # by fit_many...), or x's (every params axis that follows the input disagrees with it)
        verdict = (
            misfit(params, lambda shape: _abstract_init(net, shape), input_shape) if hasattr(net, "init") else None
        )
        if verdict and verdict.diffs and not verdict.x_at_fault:
            raise misfit_error(misfit_message(input_shape, verdict.diffs), params_named=True) from None
        # a TypeError (a layer of the user's: dot_general on shapes) is x's only where the
        # params say so; otherwise it is the layer's own error, as it raised it
        if isinstance(e, TypeError) and not (verdict and verdict.x_at_fault):
            raise
        floating = jnp.issubdtype(x_dtype, jnp.floating)
        blame = isinstance(e, ValueError) and _layer_at_fault(net, tuple(x.shape), x_dtype if floating else jnp.float32)
        if blame:  # a layer of the user's whose init and forward disagree: x is not at fault
            raise ValueError(blame) from None
        if isinstance(e, jax.dtypes.TypePromotionError):  # dtypes, not x's shape (a layer of the user's)
            raise type(e)(
                f"{xname} held in {x_dtype} (the params' dtype, as fit, evaluate and predict move it) fails in "
                f"the network on a dtype, not its shape: {e}"
            ) from None
        also = ""
        if verdict and verdict.diffs:  # x is wrong, and so are params that no inputs explain
            also = "; and params do not fit the network whatever its inputs: " + "; ".join(verdict.diffs)
        said = f"{xname} of shape {x.shape} does not fit the network"
        raise misfit_error(f"{said}: {e}{also}", params_named=bool(also), x_said=said) from None
    if hasattr(net, "init"):
        _check_params_fit_network_cached(net, sig, input_shape)
    return out_shape, out_dtype


@structural_cache(maxsize=256)
def _plain_loss_shape(loss: Any, y_shape: tuple, y_dtype: Any, out_shape: tuple, out_dtype: Any) -> tuple | None:
    """The shape a plain callable ``loss`` returns for targets of ``y_shape`` and ``y_dtype`` and
    predictions of ``out_shape`` and ``out_dtype`` (traced, nothing runs); None where it cannot
    be traced so (one that needs its ``sample_weight=``): the run then says what it says."""
    try:
        out = jax.eval_shape(loss, abstract_array(y_shape, y_dtype), abstract_array(out_shape, out_dtype))
    except Exception:
        return None
    return tuple(out.shape) if hasattr(out, "shape") else None
