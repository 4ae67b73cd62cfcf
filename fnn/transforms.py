r"""The machinery under every optimizer: ``GradientTransformation``, ``apply_updates``, the
hyperparameters held in the state (``set_learning_rate``/``get_learning_rate``), leaf-wise
helpers, and the composable transforms (``chain``, clipping, ``masked``...).

A transformation is an ``(init, update)`` pair with ``update(grads, state, params=None) ->
(updates, state)`` — optax's shape, so either library's transforms compose. The optimizers in
:mod:`fnn.optimizers` are built from these pieces and re-export the public names.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn._validate import real as _real

Array = jax.Array
Params = Any
OptState = Any
Schedule = Callable[[Array], Array]

__all__ = [
    "GradientTransformation", "apply_updates", "set_learning_rate", "get_learning_rate",
    "chain", "clip_by_global_norm", "clip_by_value", "add_decayed_weights", "scale",
    "scale_by_schedule", "masked", "global_norm", "EmptyState", "ScaleByScheduleState", "MaskedState",
    "MaskedNode",
]

class GradientTransformation(NamedTuple):
    """``init(params) -> state`` and ``update(grads, state, params=None) -> (updates, state)``."""
    init: Callable[[Params], OptState]
    update: Callable[..., tuple[Params, OptState]]


def apply_updates(params: Params, updates: Params) -> Params:
    """``params + updates`` leaf by leaf, each result in its parameter's dtype."""
    _check_like_grads(updates, params, "params", what="updates")
    return jax.tree.map(lambda p, u: (p + u).astype(jnp.asarray(p).dtype), params, updates)


# ---------------------------------------------------------------------------------------------
# Hyperparameters: validation, arrays in the state, learning-rate access.

def _beta(name: str, value) -> float:
    return _real(name, value, 0.0, 1.0, hi_open=True)


def _scalar_dtype():
    """float64 when x64 is enabled: scalar algebra (bias corrections) in the widest dtype available."""
    return jnp.asarray(0.0).dtype


def _moment_dtype(dtype):
    return jnp.promote_types(dtype, jnp.float32)


class _Hyper:
    """Validated hyperparameters of one optimizer; builds ``hparams`` and advances a schedule.

    ``hparams["learning_rate"]`` is always the rate the *next* update uses. With a schedule it
    holds ``schedule(count) * hparams["lr_scale"]``; ``set_learning_rate`` rescales ``lr_scale``
    so the rest of the schedule follows the new value.
    """

    def __init__(self, learning_rate, **values: float):
        self.schedule = learning_rate if callable(learning_rate) else None
        if self.schedule is None:
            values = {"learning_rate": _real("learning_rate", learning_rate, lo=0.0), **values}
        self.values = values

    def init(self) -> dict[str, Array]:
        dt = _scalar_dtype()
        hp = {k: jnp.asarray(v, dt) for k, v in self.values.items()}
        if "eps" in hp and self.values["eps"] > 0:
            hp["eps"] = jnp.maximum(hp["eps"], jnp.finfo(dt).tiny)
        if self.schedule is not None:
            hp["learning_rate"] = jnp.asarray(self.schedule(jnp.zeros((), jnp.int32)), dt)
            hp["lr_scale"] = jnp.ones((), dt)
        return hp

    def advance(self, hp: dict[str, Array], count: Array) -> dict[str, Array]:
        if self.schedule is None:
            return hp
        scale_ = hp["lr_scale"]
        return {**hp, "learning_rate": jnp.asarray(self.schedule(count), scale_.dtype) * scale_}


def _is_opt_state(x) -> bool:
    return (hasattr(x, "_fields") and "hparams" in x._fields and isinstance(x.hparams, dict)
            and "learning_rate" in x.hparams)


def _check_lr(lr) -> None:
    if not isinstance(lr, jax.core.Tracer):
        a = np.asarray(lr, dtype=float)
        if not np.all(np.isfinite(a)) or np.any(a < 0):
            raise ValueError(f"learning_rate must be finite and >= 0, got {lr!r}")


def set_learning_rate(state: OptState, learning_rate) -> OptState:
    """The state with every optimizer's learning rate set to ``learning_rate`` (nested/chained states too).

    The new value has the old one's dtype and shape (a scalar broadcasts over a vmapped batch of
    states), so jitted updates do not recompile. With a schedule, the next update uses
    ``learning_rate`` and the remaining schedule is multiplied by ``learning_rate / current`` (left
    as it is while the current scheduled value is 0), so ReduceLROnPlateau scales the schedule.
    """
    _check_lr(learning_rate)
    found = []

    def replace(x):
        if not _is_opt_state(x):
            return x
        found.append(True)
        hp = dict(x.hparams)
        old = hp["learning_rate"]
        new = jnp.broadcast_to(jnp.asarray(learning_rate, old.dtype), old.shape)
        if "lr_scale" in hp:
            nonzero = old != 0
            hp["lr_scale"] = jnp.where(nonzero, hp["lr_scale"] * new / jnp.where(nonzero, old, 1), hp["lr_scale"])
        hp["learning_rate"] = new
        return x._replace(hparams=hp)

    new_state = jax.tree.map(replace, state, is_leaf=_is_opt_state)
    if not found:
        raise ValueError("state holds no learning rate (no optimizer state with hparams['learning_rate'])")
    return new_state


def get_learning_rate(state: OptState) -> Array:
    """The learning rate the next update uses (the first one found in a nested/chained state)."""
    for node in jax.tree.leaves(state, is_leaf=_is_opt_state):
        if _is_opt_state(node):
            return node.hparams["learning_rate"]
    raise ValueError("state holds no learning rate (no optimizer state with hparams['learning_rate'])")


# ---------------------------------------------------------------------------------------------
# Leaf-wise machinery shared by the optimizers.

def _zeros(params: Params, fill: float = 0.0) -> Params:
    return jax.tree.map(lambda p: jnp.full(jnp.shape(p), fill, _moment_dtype(jnp.asarray(p).dtype)), params)


def _cast(dtype, *scalars: Array) -> tuple[Array, ...]:
    return tuple(jnp.asarray(s).astype(dtype) for s in scalars)


def _eps(eps: Array, dtype) -> Array:
    # A tiny positive eps that underflows in `dtype` would turn 0/0 into NaN.
    return jnp.maximum(eps.astype(dtype), jnp.where(eps > 0, jnp.finfo(dtype).tiny, 0).astype(dtype))


def _check_like_grads(grads: Params, tree: Params | None, name: str, what: str = "grads") -> None:
    """``tree`` (params, a state buffer, updates) must have ``grads``' structure and shapes."""
    if tree is None:
        return
    if jax.tree.structure(tree) != jax.tree.structure(grads):
        raise ValueError(f"{what} and {name} have different tree structures: {what} "
                         f"{jax.tree.structure(grads)}, {name} {jax.tree.structure(tree)}")
    for (path, g), t in zip(jax.tree_util.tree_flatten_with_path(grads)[0], jax.tree.leaves(tree)):
        if jnp.shape(g) != jnp.shape(t):
            raise ValueError(f"{what}{jax.tree_util.keystr(path)} has shape {jnp.shape(g)} but "
                             f"{name}{jax.tree_util.keystr(path)} has shape {jnp.shape(t)}")


def _leafwise(fn: Callable, n_out: int, grads: Params, params: Params | None, *buffers: Params):
    """Trees ``(updates, *new_buffers)`` from ``fn(g, p, *b) -> (update, *new_b)`` applied per leaf.

    ``g`` and ``p`` arrive in the moments' dtype (float32 or wider); the update goes back to the
    parameter dtype (the gradient's when ``params`` is None).
    """
    _check_like_grads(grads, params, "params")
    for b in buffers:
        _check_like_grads(grads, b, "state")
    ref = grads if params is None else params

    def leaf(g, r, *b):
        dt = _moment_dtype(r.dtype)
        out = fn(g.astype(dt), None if params is None else r.astype(dt), *b)
        return (out[0].astype(r.dtype),) + tuple(out[1:])

    treedef = jax.tree.structure(grads)
    columns = treedef.flatten_up_to(jax.tree.map(leaf, grads, ref, *buffers))
    if not columns:
        return tuple(treedef.unflatten([]) for _ in range(n_out))
    return tuple(treedef.unflatten(list(c)) for c in zip(*columns))


def _need_params(params, name: str, why: str) -> None:
    if params is None:
        raise ValueError(f"{name}.update needs params (for {why}); call update(grads, state, params)")


def _l2(g: Array, p: Array | None, hp: dict[str, Array]) -> Array:
    """PyTorch's coupled weight decay: the L2 term ``weight_decay * theta`` joins the gradient."""
    return g + hp["weight_decay"].astype(g.dtype) * p if "weight_decay" in hp else g


def _on(**values: float) -> dict[str, float]:
    """Only the terms that are switched on (non-zero)."""
    return {k: v for k, v in values.items() if v != 0}


def _count0() -> Array:
    return jnp.zeros((), jnp.int32)



# ---------------------------------------------------------------------------------------------
# Transforms.

class EmptyState(NamedTuple):
    """State of a stateless transform."""


class ScaleByScheduleState(NamedTuple):
    count: Array


class MaskedState(NamedTuple):
    inner_state: OptState


class MaskedNode(NamedTuple):
    """Stands in for a masked-out leaf inside ``masked``'s inner transform: a node with no leaves."""


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Apply ``transforms`` in order, each to the previous one's updates; the state is their tuple."""
    for i, t in enumerate(transforms):
        if not (callable(getattr(t, "init", None)) and callable(getattr(t, "update", None))):
            raise TypeError(f"transforms[{i}] must have init and update, got {t!r}")

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(updates, state, params=None):
        if len(state) != len(transforms):
            raise ValueError(f"state has {len(state)} entries for {len(transforms)} transforms")
        new_state = []
        for t, s in zip(transforms, state):
            updates, s = t.update(updates, s, params)
            new_state.append(s)
        return updates, tuple(new_state)

    return GradientTransformation(init, update)


def _stateless(fn: Callable[[Params, Params | None], Params]) -> GradientTransformation:
    return GradientTransformation(lambda params: EmptyState(),
                                  lambda updates, state, params=None: (fn(updates, params), state))


def global_norm(tree: Params) -> Array:
    """``sqrt(sum of squares of every leaf)``, accumulated in float32 or wider."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.zeros((), jnp.float32)
    dt = _moment_dtype(jnp.result_type(*leaves))
    return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(dt))) for x in leaves))


def clip_by_global_norm(max_norm: float) -> GradientTransformation:
    """Scale all updates by ``min(1, max_norm / global_norm(updates))`` (Keras's global_clipnorm)."""
    limit = _real("max_norm", max_norm, lo=0.0, lo_open=True)

    def fn(updates, params):
        norm = global_norm(updates)
        factor = jnp.minimum(1.0, limit / norm)  # norm == 0 gives inf -> 1, no NaN
        return jax.tree.map(lambda u: (u * factor.astype(_moment_dtype(u.dtype))).astype(u.dtype), updates)
    return _stateless(fn)


def clip_by_value(clip_value: float) -> GradientTransformation:
    """Clip every update element to ``[-clip_value, clip_value]`` (Keras's clipvalue)."""
    c = _real("clip_value", clip_value, lo=0.0)
    return _stateless(lambda updates, params: jax.tree.map(lambda u: jnp.clip(u, -c, c).astype(u.dtype), updates))


def add_decayed_weights(weight_decay: float) -> GradientTransformation:
    """``updates + weight_decay * params`` (L2 into the gradient when placed before an optimizer)."""
    wd = _real("weight_decay", weight_decay, lo=0.0)

    def fn(updates, params):
        _need_params(params, "add_decayed_weights", "weight_decay")
        return jax.tree.map(lambda u, p: (u + wd * p).astype(u.dtype), updates, params)
    return _stateless(fn)


def scale(step_size: float) -> GradientTransformation:
    """``step_size * updates`` (``scale(-lr)`` turns a gradient into a descent step)."""
    s = _real("step_size", step_size)
    return _stateless(lambda updates, params: jax.tree.map(lambda u: (u * s).astype(u.dtype), updates))


def scale_by_schedule(schedule: Schedule) -> GradientTransformation:
    """``schedule(count) * updates`` with ``count`` the number of earlier updates (from 0)."""
    if not callable(schedule):
        raise TypeError(f"schedule must be callable step -> value, got {schedule!r}")

    def update(updates, state, params=None):
        factor = schedule(state.count)
        updates = jax.tree.map(lambda u: (u * jnp.asarray(factor).astype(_moment_dtype(u.dtype))).astype(u.dtype),
                               updates)
        return updates, ScaleByScheduleState(state.count + 1)

    return GradientTransformation(lambda params: ScaleByScheduleState(_count0()), update)


def _static_bool(value, where: str) -> bool:
    if isinstance(value, jax.core.Tracer) or not (isinstance(value, (bool, np.bool_))
                                                 or (hasattr(value, "dtype") and value.shape == ()
                                                     and value.dtype == bool)):
        raise TypeError(f"mask leaves must be Python bools, got {value!r} at {where}")
    return bool(value)


def masked(inner: GradientTransformation, mask: Params | Callable[[Params], Params]) -> GradientTransformation:
    """Apply ``inner`` to the leaves where ``mask`` is True; every other leaf gets a ZERO update.

    ``mask`` is a pytree of bools with the structure of params (or a prefix of it), or a function
    ``params -> mask``. Masked-out leaves get no optimizer state at all (frozen layers cost nothing).
    """
    def resolve(tree):
        m = mask(tree) if callable(mask) else mask
        try:
            return jax.tree.map(lambda mk, sub: jax.tree.map(lambda _: _static_bool(mk, "mask"), sub), m, tree)
        except ValueError as e:
            raise ValueError(f"mask must have the structure of params (or a prefix of it): {e}") from e

    def keep(tree, m):
        return jax.tree.map(lambda x, keep_: x if keep_ else MaskedNode(), tree, m)

    def init(params):
        return MaskedState(inner.init(keep(params, resolve(params))))

    def update(updates, state, params=None):
        m = resolve(params if params is not None else updates)
        inner_updates, inner_state = inner.update(
            keep(updates, m), state.inner_state, None if params is None else keep(params, m))
        flat, treedef = jax.tree.flatten(updates)
        kept = iter(jax.tree.leaves(inner_updates))
        out = [next(kept) if k else jnp.zeros_like(u) for u, k in zip(flat, treedef.flatten_up_to(m))]
        return treedef.unflatten(out), MaskedState(inner_state)

    return GradientTransformation(init, update)
