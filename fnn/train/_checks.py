"""The checks ``fit``, ``fit_many`` and ``evaluate`` make before anything is compiled: their
settings, the params and optimizer state against the network and optimizer, and the data
against the network and the loss. Every failure is a ValueError or TypeError naming the
argument.

The traced shape checks are cached: a second ``fit`` with the same shapes costs no tracing.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping, Sequence
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np

from fnn import callbacks as callbacks_, losses, metrics, optimizers
from fnn._cache import structural_cache
from fnn._validate import boolean, choice, integer, real
from fnn._values import Static
from fnn.data import check_arrays, train_val_split
from fnn.grad import MODES
from fnn.layers._base import check_net
from fnn.metrics._resolve import resolve_both


def _takes_sample_weight(fn: Any) -> bool:
    """Whether ``fn`` can be called with a ``sample_weight=`` keyword (True when its signature
    cannot be read: the call then says for itself)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(
        p.kind is p.VAR_KEYWORD or (p.name == "sample_weight" and p.kind is not p.POSITIONAL_ONLY) for p in params
    )


def check_loss_weighs(loss: Any, **weights: Any) -> None:
    """A plain callable loss must take ``sample_weight=`` for the weights given (named by their
    argument); an :class:`fnn.losses.Loss` always does."""
    given = [name for name, w in weights.items() if w is not None]
    if not given or isinstance(loss, losses.Loss) or _takes_sample_weight(loss):
        return
    name = getattr(loss, "__name__", type(loss).__name__)
    raise TypeError(
        f"{' and '.join(given)} given, but the loss {name} is a plain callable (y_true, y_pred) without "
        "a sample_weight= keyword, so it cannot weigh samples: add that keyword to it, or make it a "
        "Loss of per-sample values with fnn.losses.custom(name, fn), which weighs them as the "
        "built-in losses do"
    )


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
    # the key traced too: an eager PRNGKey(0) would compile (or look up) two small programs
    return jax.eval_shape(lambda: net.init(jax.random.PRNGKey(0), input_shape))


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
    with its default hyperparameters; a GradientTransformation passes through, and a plain
    ``(init, update)`` pair of callables (an optimizer is that pair) is wrapped in one."""
    if isinstance(opt, str):
        return optimizers.get(opt)
    if isinstance(opt, tuple) and callable(getattr(opt, "init", None)) and callable(getattr(opt, "update", None)):
        return opt
    if isinstance(opt, (tuple, list)) and len(opt) == 2 and all(callable(f) for f in opt):
        return optimizers.GradientTransformation(*opt)
    got = f"a {type(opt).__name__} of length {len(opt)}" if isinstance(opt, (tuple, list)) else type(opt).__name__
    raise TypeError(
        f"opt must be an optimizer (a GradientTransformation, or a pair (init, update) of callables) or an "
        f'optimizer name, got {got} (e.g. opt=fnn.optimizers.adam(learning_rate=1e-3), opt="adam"; '
        "names: fnn.optimizers.names())"
    )


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


def check_learning_rate_held(who: str, template: Any) -> None:
    """A callback that sets the learning rate (``who``) needs an optimizer state that holds
    one, settable: checked on the abstract state before training, where it would fail after
    the first epoch."""
    try:
        held = jax.eval_shape(optimizers.get_learning_rate, template)
    except ValueError as e:
        raise ValueError(
            f"{who} sets the learning rate, but {e}: use a named optimizer ('adam', fnn.optimizers.adam(1e-3)), "
            "build yours with fnn.optimizers.inject_hyperparams (e.g. inject_hyperparams(lambda learning_rate: "
            "fnn.optimizers.chain(fnn.optimizers.scale_by_adam(), fnn.optimizers.scale_by_learning_rate("
            "learning_rate)))(learning_rate=1e-3)), or an optax one with optax.inject_hyperparams(optax.adam)"
            "(learning_rate=1e-3)"
        ) from None
    if not jnp.issubdtype(held.dtype, jnp.floating):  # a rate set later (0.5) could not be held
        raise ValueError(
            f"{who} sets the learning rate, but the optimizer state holds it as {held.dtype} (built with an "
            "integer learning_rate): build the optimizer with a float, e.g. learning_rate=1.0"
        )
    try:  # traced: the value is the state's own, only where it can be set is checked
        jax.eval_shape(lambda s: optimizers.set_learning_rate(s, optimizers.get_learning_rate(s)), template)
    except ValueError as e:
        raise ValueError(f"{who} sets the learning rate, but {e}") from None


def check_not_a_best_file(checkpoint: str, callbacks: Sequence[Any]) -> None:
    """fit writes its ``checkpoint`` after every epoch: a ModelCheckpoint's ``save_best_only``
    file as that path would lose its best epoch to the last one."""
    for cb in callbacks:
        if (
            isinstance(cb, callbacks_.ModelCheckpoint)
            and cb.save_best_only
            and not cb.fields
            and os.path.realpath(cb.filepath) == os.path.realpath(checkpoint)
        ):
            raise ValueError(
                f"checkpoint {checkpoint!r} is ModelCheckpoint's save_best_only file: fit writes its "
                "checkpoint there after every epoch, over the best one; resume from a copy of it "
                "(shutil.copy(best, 'run.npz'); fit(..., checkpoint='run.npz'))"
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


def check_sample_weight(sample_weight: Any, n: int, name: str = "sample_weight") -> np.ndarray:
    """Per-sample weights as a float64 NumPy ``(n,)`` array: real, finite and >= 0 (``(n, 1)``
    is squeezed, a scalar broadcast)."""
    try:
        w = np.asarray(jax.device_get(sample_weight))
    except Exception as err:
        raise TypeError(f"{name} must be an array of per-sample weights, got {type(sample_weight).__name__}") from err
    if w.dtype == object or not (np.issubdtype(w.dtype, np.integer) or np.issubdtype(w.dtype, np.floating)):
        raise TypeError(f"{name} must hold real numbers, got dtype {w.dtype}")
    if w.ndim == 0:
        w = np.broadcast_to(w, (n,))
    elif w.ndim == 2 and w.shape[1] == 1:
        w = w[:, 0]
    if w.shape != (n,):
        raise ValueError(f"{name} must have one weight per sample, shape ({n},); got shape {w.shape}")
    w = w.astype(np.float64)
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        bad = int(np.argmax(~np.isfinite(w) | (w < 0)))
        raise ValueError(f"{name} must be finite and >= 0; {name}[{bad}] is {w[bad]}")
    return w


def class_weights(class_weight: Any, y: Any) -> np.ndarray:
    """Keras's ``class_weight``: the sample weight of each sample is its class's weight (1 for a
    class not named). The class is ``argmax`` of one-hot or probability rows, else the rounded
    label."""
    if not isinstance(class_weight, Mapping):
        raise TypeError(f"class_weight must be a dict {{class index: weight}}, got {type(class_weight).__name__}")
    table = {}
    for k, v in class_weight.items():
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k < 0:
            raise ValueError(f"class_weight keys must be class indices (ints >= 0), got {k!r}")
        table[int(k)] = real(f"class_weight[{k}]", v, lo=0.0)
    labels = np.asarray(jax.device_get(y))
    if labels.ndim > 1:
        labels = np.argmax(labels, axis=-1) if labels.shape[-1] != 1 else labels[..., 0]
    classes = np.round(labels.reshape(labels.shape[0], -1)[:, 0]).astype(np.int64)
    weights = np.ones(classes.shape[0], np.float64)
    for c, v in table.items():  # one vectorised pass per named class, not a Python loop per sample
        weights[classes == c] = v
    return weights


def split_data(
    x: Any, y: Any, validation_split: float, validation_data: Any, sample_weight: Any = None, class_weight: Any = None
) -> tuple[Any, Any, Any, Any, Any, Any]:
    """``(x_tr, y_tr, w_tr, x_val, y_val, w_val)`` checked (``x_val`` is None without
    validation; the ``w``'s are float64 NumPy sample weights or None). ``validation_data`` is
    ``(x_val, y_val)`` or ``(x_val, y_val, sample_weight_val)``; ``validation_split`` splits
    ``sample_weight`` with the samples; ``class_weight`` weighs the training samples only."""
    if y is None:
        raise ValueError("y is required; got None")
    x, y = check_arrays(x, y)
    if sample_weight is not None and class_weight is not None:
        raise ValueError("pass sample_weight or class_weight, not both (Keras refuses both too)")
    w = None
    if sample_weight is not None:
        w = check_sample_weight(sample_weight, x.shape[0])
    elif class_weight is not None:
        w = class_weights(class_weight, y)
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError(
                "validation_data must be a pair (x_val, y_val) or a triple (x_val, y_val, sample_weight_val)"
            )
        x_val, y_val = check_arrays(*validation_data[:2], names=("validation_data[0]", "validation_data[1]"))
        w_val = None
        if len(validation_data) == 3 and validation_data[2] is not None:
            w_val = check_sample_weight(validation_data[2], x_val.shape[0], "validation_data[2]")
        return x, y, w, x_val, y_val, w_val
    if validation_split > 0:
        (x_tr, y_tr), (x_val, y_val) = train_val_split(x, y, validation_split)
        cut = x_tr.shape[0]
        w_tr, w_val = (None, None) if w is None else (w[:cut], w[cut:] if sample_weight is not None else None)
        return x_tr, y_tr, w_tr, x_val, y_val, w_val
    return x, y, w, None, None, None


def prepare_data(
    net: Any,
    params: Any,
    loss: Any,
    x: Any,
    y: Any,
    validation_split: float,
    validation_data: Any,
    metric_ids: Any,
    sample_weight: Any = None,
    class_weight: Any = None,
    weighted_ids: Any = None,
) -> tuple[Any, Any, Any, Any, Any, Any, tuple, tuple]:
    """Checked ``(x_tr, y_tr, w_tr, x_val, y_val, w_val, metrics, weighted_metrics)``: the
    validation split, shapes against the network, sample weights, and the resolved metrics
    (``x_val`` is None without validation, a ``w`` None without weights)."""
    check_loss_weighs(loss, sample_weight=sample_weight, class_weight=class_weight)
    x_tr, y_tr, w_tr, x_val, y_val, w_val = split_data(
        x, y, validation_split, validation_data, sample_weight, class_weight
    )
    if validation_data is not None:
        check_loss_weighs(loss, **{"validation_data[2]": w_val})
    if x_tr.shape[0] == 0:
        raise ValueError("no training samples left after validation_split")
    out_shape = check_against_network(net, params, loss, x_tr, y_tr, "x", "y")
    if x_val is not None:
        val_shape = check_against_network(net, params, loss, x_val, y_val, "validation x", "validation y")
    ms, wms = resolve_both(metric_ids, weighted_ids, loss=loss, y_true_shape=y_tr.shape, y_pred_shape=out_shape)
    # the metrics' label values, concretely (under jit a float label would be truncated)
    metrics.check_targets((*ms, *wms), y_tr, out_shape, name="y", loss=loss)
    if x_val is not None:
        metrics.check_targets((*ms, *wms), y_val, val_shape, name="validation y", loss=loss)
    return x_tr, sparse_labels(loss, y_tr), w_tr, x_val, sparse_labels(loss, y_val), w_val, ms, wms


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


def _layer_at_fault(net: Any, x_shape: tuple) -> str | None:
    """The first layer of ``net`` whose forward disagrees with its own init (fails on the params
    that init builds, or gives another output shape than init declares), in words; None when
    every layer agrees with itself (traced: nothing runs)."""
    layers_, names = getattr(net, "layers", None), getattr(net, "names", None)
    if layers_ is None or names is None:
        return None

    def walk(key: Any) -> Static:
        x = jnp.zeros(x_shape, jnp.float32)
        for i, (layer, name) in enumerate(zip(layers_, names, strict=True)):
            declared, p = layer.init_with_shape(key, tuple(x.shape[1:]))
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
        return jax.eval_shape(walk, jax.random.PRNGKey(0)).value
    except Exception:  # an init that cannot be traced, or the walk's own failure: no verdict
        return None


def _ranks_differ(net: Any, params: Any, input_shape: tuple) -> bool:
    """Whether a params leaf has another rank than the network builds for ``input_shape``."""
    try:
        built = jax.eval_shape(lambda k: net.init(k, input_shape), jax.random.PRNGKey(0))
        pairs = zip(jax.tree.leaves(params), jax.tree.leaves(built), strict=True)
        return any(np.ndim(p) != len(b.shape) for p, b in pairs)
    except (TypeError, ValueError):
        return False  # structures that differ are named by the check that follows


def check_against_network(net: Any, params: Any, loss: Any, x: Any, y: Any, xname: str, yname: str) -> tuple:
    """Shape-checks ``loss(y, net(params, x))`` by tracing (no compilation, no FLOPs); returns
    the output shape."""
    check_net(net)
    sig = signature(params)
    if hasattr(net, "init"):  # missing or extra leaves named before the network trips over them
        _check_params_fit_network_cached(net, sig, tuple(x.shape[1:]), False)
    try:
        out_shape = network_output_shape(net, sig, tuple(x.shape))
    except ValueError as e:
        if str(e).startswith("params"):  # the params' own structure, whatever x is
            raise ValueError(str(e)) from None
        if hasattr(net, "init") and _ranks_differ(net, params, tuple(x.shape[1:])):
            # a leaf of another rank (params still stacked by fit_many...): the params are at fault
            _check_params_fit_network_cached(net, sig, tuple(x.shape[1:]))
        blame = _layer_at_fault(net, tuple(x.shape))
        if blame:  # a layer of the user's whose init and forward disagree: x is not at fault
            raise ValueError(blame) from None
        raise ValueError(f"{xname} of shape {x.shape} does not fit the network: {e}") from None
    if hasattr(net, "init"):
        _check_params_fit_network_cached(net, sig, tuple(x.shape[1:]))
    if y.shape[0] != out_shape[0]:
        raise ValueError(f"{xname} and {yname} have different numbers of samples: {x.shape[0]} vs {y.shape[0]}")
    if isinstance(loss, losses.Loss):
        losses.check_targets(loss, y, out_shape, name=yname)
    return out_shape
