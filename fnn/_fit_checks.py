"""fit's checks, made before anything is compiled (SPEC §5): its settings, the key, the params
and optimizer state against the network and optimizer, and the data against the network and
the loss. Every failure is a ValueError or TypeError that names the argument.

The traced shape checks are cached: a second ``fit`` with the same shapes costs no tracing.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from fnn import data as _data
from fnn import losses as _losses
from fnn import metrics as _metrics
from fnn._validate import integer as _integer
from fnn.grad import MODES


def check_grad(grad: str) -> None:
    if grad not in MODES:
        raise ValueError(f"grad must be one of {MODES}, got {grad!r}")


def check_settings(grad, loss, opt, batch_size, epochs, unroll, validation_split):
    """Checks fit's (and fit_many's) settings; returns the resolved loss and batch size."""
    check_grad(grad)
    loss = _losses.get(loss) if isinstance(loss, str) else loss
    if not isinstance(loss, _losses.Loss):
        raise TypeError(f"loss must be a loss name or an fnn.losses.Loss, got {type(loss).__name__}")
    if not isinstance(opt, tuple) or not hasattr(opt, "init") or not hasattr(opt, "update"):
        raise TypeError(f"opt must be an (init, update) GradientTransformation, got {type(opt).__name__}")
    batch_size = 32 if batch_size is None else batch_size
    _integer("batch_size", batch_size, 1)
    _integer("epochs", epochs, 0)
    if unroll is not None:
        _integer("unroll", unroll, 1)
    if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float, np.integer, np.floating)):
        raise TypeError(f"validation_split must be a float in [0, 1), got {validation_split!r}")
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
    return loss, batch_size


def check_key(key) -> None:
    ok = isinstance(key, (jax.Array, np.ndarray)) and (
        jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) or (key.dtype == np.uint32 and key.ndim == 1))
    if not ok:
        raise TypeError("key must be a jax PRNG key (jax.random.PRNGKey(seed) or jax.random.key(seed)), "
                        f"got {key!r}")


def _check_params_fit_network(net, params, input_shape) -> None:
    """Dense layers take their sizes from the params: params of another width would silently
    train another network. A structural mismatch is left to net.apply's message."""
    want = jax.eval_shape(lambda k: net.init(k, input_shape), jax.random.PRNGKey(0))
    got, got_def = jax.tree_util.tree_flatten_with_path(params)
    ref, ref_def = jax.tree_util.tree_flatten_with_path(want)
    if got_def != ref_def:
        return
    diffs = [f"params{jax.tree_util.keystr(p)} has shape {tuple(a.shape)}, the network builds {tuple(w.shape)}"
             for (p, a), (_, w) in zip(got, ref) if tuple(a.shape) != tuple(w.shape)]
    if diffs:
        raise ValueError(f"params do not fit the network for inputs of shape {tuple(input_shape)}: "
                         + "; ".join(diffs))


def _signature(tree) -> tuple:
    """A hashable ``(treedef, ((shape, dtype), ...))`` of a tree of arrays."""
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple((tuple(np.shape(a)), np.dtype(a.dtype if hasattr(a, "dtype") else np.asarray(a).dtype))
                          for a in leaves)


def _abstract(params_signature: tuple):
    treedef, leaves = params_signature
    return jax.tree.unflatten(treedef, [jax.ShapeDtypeStruct(shape, dtype) for shape, dtype in leaves])


# Both cached: fit checks the same shapes on every call, and tracing a network costs
# milliseconds. A check that raises is not cached, so it raises again on the next call.
@functools.lru_cache(maxsize=256)
def _network_output_shape(net, params_signature: tuple, x_shape: tuple) -> tuple:
    """``net.apply``'s output shape for params of ``params_signature`` and inputs of
    ``x_shape`` (traced, nothing runs)."""
    out = jax.eval_shape(net.apply, _abstract(params_signature), jax.ShapeDtypeStruct(x_shape, jnp.float32))
    return tuple(out.shape)


@functools.lru_cache(maxsize=256)
def _check_params_fit_network_cached(net, params_signature: tuple, input_shape: tuple) -> None:
    _check_params_fit_network(net, _abstract(params_signature), input_shape)


def check_opt_state(opt, params, opt_state) -> None:
    want = jax.eval_shape(opt.init, params)
    same = jax.tree.structure(opt_state) == jax.tree.structure(want) and all(
        tuple(np.shape(a)) == tuple(w.shape) for a, w in zip(jax.tree.leaves(opt_state), jax.tree.leaves(want)))
    if not same:
        raise ValueError("opt_state does not match opt.init(params) (another optimizer's state, or one "
                         f"initialised with other params): got {jax.tree.structure(opt_state)}, "
                         f"expected {jax.tree.structure(want)} with shapes "
                         f"{[tuple(w.shape) for w in jax.tree.leaves(want)]}")


def prepare_data(net, params, loss, x, y, validation_split, validation_data, metrics):
    """Checked ``(x_tr, y_tr, x_val, y_val, metrics)``: the validation split, shapes against the
    network, and the resolved metrics (``x_val`` is None without validation)."""
    x, y = _data.check_arrays(x, y)
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("validation_data must be a pair (x_val, y_val)")
        x_val, y_val = _data.check_arrays(*validation_data, names=("validation_data[0]", "validation_data[1]"))
        x_tr, y_tr = x, y
    elif validation_split > 0:
        (x_tr, y_tr), (x_val, y_val) = _data.train_val_split(x, y, validation_split)
    else:
        x_tr, y_tr, x_val, y_val = x, y, None, None
    if x_tr.shape[0] == 0:
        raise ValueError("no training samples left after validation_split")
    out_shape = check_against_network(net, params, loss, x_tr, y_tr, "x", "y")
    if x_val is not None:
        check_against_network(net, params, loss, x_val, y_val, "validation x", "validation y")
    ms = _metrics.resolve(metrics, loss=loss, y_true_shape=y_tr.shape, y_pred_shape=out_shape)
    return x_tr, y_tr, x_val, y_val, ms


def check_against_network(net, params, loss, x, y, xname, yname) -> None:
    """Shape-checks ``loss(y, net(params, x))`` by tracing (no compilation, no FLOPs); returns
    the output shape."""
    signature = _signature(params)
    try:
        out_shape = _network_output_shape(net, signature, tuple(x.shape))
    except ValueError as e:
        raise ValueError(f"{xname} of shape {x.shape} does not fit the network: {e}") from None
    _check_params_fit_network_cached(net, signature, tuple(x.shape[1:]))
    if y.shape[0] != out_shape[0]:
        raise ValueError(f"{xname} and {yname} have different numbers of samples: {x.shape[0]} vs {y.shape[0]}")
    _losses.check_targets(loss, y, out_shape, name=yname)
    return out_shape
