"""The checks ``fit``, ``fit_many`` and ``evaluate`` make before anything is compiled: their
settings, the params and optimizer state against the network and optimizer, and the data
against the network and the loss. Every failure is a ValueError or TypeError naming the
argument.

The traced shape checks are cached: a second ``fit`` with the same shapes costs no tracing.
"""

from __future__ import annotations

from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np

from fnn import losses, metrics, optimizers
from fnn._cache import structural_cache
from fnn._validate import boolean, choice, integer, real
from fnn.data import check_arrays, train_val_split
from fnn.grad import MODES


def check_grad(grad: Any) -> str:
    return choice("grad", grad, MODES)


def resolve_loss(loss: Any) -> Any:
    """A loss name becomes an :class:`fnn.losses.Loss`; a Loss or a callable passes through."""
    if isinstance(loss, str):
        return losses.get(loss)
    if not callable(loss):
        raise TypeError(
            f"loss must be a loss name or an fnn.losses.Loss, got {type(loss).__name__} "
            "(or a callable (y_true, y_pred) -> loss, trained with grad='autodiff')"
        )
    return loss


def check_settings(
    grad: Any, loss: Any, opt: Any, batch_size: Any, epochs: Any, unroll: Any, validation_split: Any, verbose: Any
) -> tuple[Any, int]:
    """Checks the settings ``fit`` and ``fit_many`` share; returns the resolved loss and batch size."""
    check_grad(grad)
    loss = resolve_loss(loss)
    if grad == "manual" and not isinstance(loss, losses.Loss):
        raise TypeError(
            "loss must be a loss name or an fnn.losses.Loss (which carries its hand-written gradient) "
            f"for grad='manual'; got {type(loss).__name__}. Plain callables train with grad='autodiff'."
        )
    resolve_opt(opt)
    batch_size = integer("batch_size", 32 if batch_size is None else batch_size, 1)
    integer("epochs", epochs, 0)
    if unroll is not None:
        integer("unroll", unroll, 1)
    real("validation_split", validation_split, 0.0, 1.0, hi_open=True, what="a float in [0, 1)")
    choice("verbose", verbose, (0, 1, 2))
    return loss, batch_size


def check_shuffle(shuffle: Any) -> bool:
    return boolean("shuffle", shuffle)


@structural_cache(maxsize=256)
def _abstract_init(net: Any, input_shape: tuple) -> Any:
    """The params ``net.init`` builds for inputs of ``input_shape``, as shapes (traced once for
    both checks below)."""
    return jax.eval_shape(lambda k: net.init(k, input_shape), jax.random.PRNGKey(0))


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
    diffs = [
        f"params{jax.tree_util.keystr(p)} has shape {tuple(a.shape)}, the network builds {tuple(w.shape)}"
        for (p, a), (_, w) in zip(got, ref, strict=True)
        if tuple(a.shape) != tuple(w.shape)
    ]
    if diffs:
        raise ValueError(f"params do not fit the network for inputs of shape {tuple(input_shape)}: " + "; ".join(diffs))


def signature(tree: Any) -> tuple:
    """A hashable ``(treedef, ((shape, dtype), ...))`` of a tree of arrays."""
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple(
        (tuple(np.shape(a)), np.dtype(a.dtype if hasattr(a, "dtype") else np.asarray(a).dtype)) for a in leaves
    )


def abstract(params_signature: tuple) -> Any:
    treedef, leaves = params_signature
    return jax.tree.unflatten(treedef, [jax.ShapeDtypeStruct(shape, dtype) for shape, dtype in leaves])


# Both cached: fit checks the same shapes on every call, and tracing a network costs
# milliseconds. A check that raises is not cached, so it raises again on the next call.
@structural_cache(maxsize=256)
def network_output_shape(net: Any, params_signature: tuple, x_shape: tuple, x_dtype: Any = jnp.float32) -> tuple:
    """``net.apply``'s output shape for params of ``params_signature`` and inputs of
    ``x_shape`` (traced, nothing runs)."""
    out = jax.eval_shape(net.apply, abstract(params_signature), jax.ShapeDtypeStruct(x_shape, x_dtype))
    return tuple(out.shape)


@structural_cache(maxsize=256)
def _check_params_fit_network_cached(
    net: Any, params_signature: tuple, input_shape: tuple, shapes: bool = True
) -> None:
    _check_params_fit_network(net, abstract(params_signature), input_shape, shapes)


def resolve_opt(opt: Any) -> Any:
    """An optimizer name (``"adam"``, as Keras accepts) becomes ``fnn.optimizers.get(name)``
    with its default hyperparameters; a GradientTransformation passes through."""
    if isinstance(opt, str):
        return optimizers.get(opt)
    if (
        not isinstance(opt, tuple)
        or not callable(getattr(opt, "init", None))
        or not callable(getattr(opt, "update", None))
    ):
        raise TypeError(
            f"opt must be an (init, update) GradientTransformation or an optimizer name, got {type(opt).__name__} "
            '(e.g. opt=fnn.optimizers.adam(learning_rate=1e-3), opt="adam"; names: fnn.optimizers.names())'
        )
    return opt


def check_params_dtypes(params: Any, name: str = "params") -> None:
    """Every params leaf a floating array: integer params would train as a silent no-op."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        dtype = np.dtype(leaf.dtype) if hasattr(leaf, "dtype") else np.asarray(leaf).dtype
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(
                f"{name}{jax.tree_util.keystr(path)} has dtype {dtype}: params must be floating arrays "
                "(integer params cannot move by a fractional step; initialise them with net.init)"
            )


def check_opt_state(opt: Any, params: Any, opt_state: Any, name: str = "opt_state", models: int | None = None) -> None:
    """``opt_state`` must be what ``opt.init(params)`` builds: the same structure (another
    optimizer's state is named as such), shapes and dtypes. ``models``: stacked over that many
    models (fit_many)."""
    want = jax.eval_shape(opt.init, params)
    got_leaves, got_def = jax.tree_util.tree_flatten_with_path(opt_state)
    want_leaves, want_def = jax.tree_util.tree_flatten_with_path(want)
    if cast(Any, got_def) != want_def:
        got_paths = {jax.tree_util.keystr(p) for p, _ in got_leaves}
        want_paths = {jax.tree_util.keystr(p) for p, _ in want_leaves}
        detail = "; ".join(
            [f"missing {name}{p}" for p in sorted(want_paths - got_paths)][:4]
            + [f"unexpected {name}{p}" for p in sorted(got_paths - want_paths)][:4]
        )
        raise ValueError(
            f"{name} does not match opt.init(params): another optimizer's state, or one initialised with other "
            f"params ({detail or f'structure {got_def} vs {want_def}'}); pass opt_state=None to start afresh"
        )
    diffs = []
    for (path, a), (_, w) in zip(got_leaves, want_leaves, strict=True):
        shape = tuple(np.shape(a))[0 if models is None else 1 :]
        dtype = np.dtype(a.dtype) if hasattr(a, "dtype") else np.asarray(a).dtype
        if shape != tuple(w.shape):
            diffs.append(f"{name}{jax.tree_util.keystr(path)} has shape {shape}, opt.init(params) builds {w.shape}")
        elif dtype != w.dtype:
            diffs.append(f"{name}{jax.tree_util.keystr(path)} has dtype {dtype}, opt.init(params) builds {w.dtype}")
    if diffs:
        raise ValueError(
            f"{name} does not match opt.init(params) (a state built for params of other shapes or dtypes): "
            + "; ".join(diffs[:4])
            + (f"; and {len(diffs) - 4} more" if len(diffs) > 4 else "")
        )


def check_schedules(opt: Any, steps: int) -> None:
    """The scheduled hyperparameters of ``opt`` over the ``steps`` updates a run makes: finite,
    and a learning rate >= 0 (a negative one ascends the loss; a NaN one ruins the params).
    A schedule is a function of the step, so its values are known before training; one that
    cannot take an array of steps is left to run."""
    schedules = getattr(getattr(opt.init, "spec", None), "schedules", ()) or ()
    for name, fn in schedules:
        try:
            with jax.ensure_compile_time_eval(), np.errstate(all="ignore"):
                values = np.asarray(jax.device_get(fn(np.arange(steps, dtype=np.int32))), dtype=float)
        except Exception:  # a schedule of scalars only (Python control flow on the step)
            continue
        values = np.broadcast_to(values, (steps,)) if values.ndim == 0 else values.reshape(-1)[:steps]
        bad = ~np.isfinite(values) | ((values < 0) if name == "learning_rate" else False)
        if bad.any():
            first = int(np.argmax(bad))
            raise ValueError(
                f"opt: the {name} schedule gives {float(values[first])!r} at step {first} (of the {steps} updates this "
                f"run makes); {name} must be finite{' and >= 0' if name == 'learning_rate' else ''}"
            )


def hyperparams_differ(opt: Any, opt_state: Any) -> list[str]:
    """The hyperparameters ``opt`` was built with that ``opt_state`` holds other values of
    (the state's win: they are the run's, ReduceLROnPlateau's reductions included)."""
    built = dict(getattr(opt.init, "values", ()) or ())
    try:
        held = optimizers.get_hyperparams(opt_state)
    except ValueError:
        return []
    out = []
    for k, v in built.items():
        if k in held and np.ndim(held[k]) == 0 and not isinstance(v, bool):
            mine = np.asarray(v, np.asarray(held[k]).dtype)
            if float(held[k]) != float(mine):
                out.append(f"{k}={float(held[k]):.6g} (opt says {float(mine):.6g})")
    return out


def split_data(x: Any, y: Any, validation_split: float, validation_data: Any) -> tuple[Any, Any, Any, Any]:
    """``(x_tr, y_tr, x_val, y_val)`` checked (``x_val`` is None without validation)."""
    if y is None:
        raise ValueError("y is required; got None")
    x, y = check_arrays(x, y)
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("validation_data must be a pair (x_val, y_val)")
        x_val, y_val = check_arrays(*validation_data, names=("validation_data[0]", "validation_data[1]"))
        return x, y, x_val, y_val
    if validation_split > 0:
        (x_tr, y_tr), (x_val, y_val) = train_val_split(x, y, validation_split)
        return x_tr, y_tr, x_val, y_val
    return x, y, None, None


def prepare_data(
    net: Any, params: Any, loss: Any, x: Any, y: Any, validation_split: float, validation_data: Any, metric_ids: Any
) -> tuple[Any, Any, Any, Any, tuple]:
    """Checked ``(x_tr, y_tr, x_val, y_val, metrics)``: the validation split, shapes against the
    network, and the resolved metrics (``x_val`` is None without validation)."""
    x_tr, y_tr, x_val, y_val = split_data(x, y, validation_split, validation_data)
    if x_tr.shape[0] == 0:
        raise ValueError("no training samples left after validation_split")
    out_shape = check_against_network(net, params, loss, x_tr, y_tr, "x", "y")
    if x_val is not None:
        check_against_network(net, params, loss, x_val, y_val, "validation x", "validation y")
    ms = metrics.resolve(metric_ids, loss=loss, y_true_shape=y_tr.shape, y_pred_shape=out_shape)
    return x_tr, sparse_labels(loss, y_tr), x_val, sparse_labels(loss, y_val), ms


def sparse_labels(loss: Any, y: Any) -> Any:
    """Class indices held as floats become int32 (already checked to be integers): the data is
    moved in the params' float dtype, and bfloat16 or float16 would round labels above 256 or
    2048 to other classes. Labels are never cast to a lower-precision float."""
    if (
        y is None
        or not isinstance(loss, losses.Loss)
        or loss.name != "sparse_categorical_crossentropy"
        or not jnp.issubdtype(y.dtype, jnp.floating)
    ):
        return y
    return y.astype(jnp.int32) if isinstance(y, jax.Array) else np.asarray(y).astype(np.int32)


def check_against_network(net: Any, params: Any, loss: Any, x: Any, y: Any, xname: str, yname: str) -> tuple:
    """Shape-checks ``loss(y, net(params, x))`` by tracing (no compilation, no FLOPs); returns
    the output shape."""
    sig = signature(params)
    if hasattr(net, "init"):  # missing or extra leaves named before the network trips over them
        _check_params_fit_network_cached(net, sig, tuple(x.shape[1:]), False)
    try:
        out_shape = network_output_shape(net, sig, tuple(x.shape))
    except ValueError as e:
        raise ValueError(f"{xname} of shape {x.shape} does not fit the network: {e}") from None
    if hasattr(net, "init"):
        _check_params_fit_network_cached(net, sig, tuple(x.shape[1:]))
    if y.shape[0] != out_shape[0]:
        raise ValueError(f"{xname} and {yname} have different numbers of samples: {x.shape[0]} vs {y.shape[0]}")
    if isinstance(loss, losses.Loss):
        losses.check_targets(loss, y, out_shape, name=yname)
    return out_shape
