r"""The protocol every optimizer and transform follows, and the leaf-wise machinery under them.

A transformation is an ``(init, update)`` pair: ``init(params) -> state`` and
``update(updates, state, params=None) -> (updates, state)``, where ``updates`` is the change to
add to the parameters (:func:`apply_updates`). This is optax's ``GradientTransformation``, so
either library's transforms compose with the other's.

Built-in transforms are values: their ``init`` and ``update`` are compared by the function and
configuration they were built from (:func:`fnn._values.bound`), so two optimizers built from the
same description share compiled programs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn._dtypes import at_least_float32, check_params_float
from fnn._native import native, native_tree
from fnn._validate import unbindable
from fnn._values import bound

Array = jax.Array
Params = Any
Updates = Any
OptState = Any
Schedule = Callable[[Array], Array]


class GradientTransformation(NamedTuple):
    """``init(params) -> state`` and ``update(updates, state, params=None) -> (updates, state)``.

    This is optax's protocol: either library's transforms and optimizers compose with the other's.
    The combinators (:func:`chain`, :func:`masked`, :func:`inject_hyperparams`) also take optax's
    extra keyword arguments, ``update(updates, state, params, value=loss)``, and pass them on to
    the transforms that take them (those with a ``**`` parameter, and optax's
    ``GradientTransformationExtraArgs``), as ``optax.chain`` does.

    Attributes:
        init: ``params -> state``.
        update: ``(updates, state, params=None) -> (updates, state)``; ``updates`` is what
            :func:`apply_updates` adds to the params.
    """

    init: Callable[[Params], OptState]
    update: Callable[..., tuple[Updates, OptState]]


class EmptyState(NamedTuple):
    """State of a stateless transform (no fields)."""


def apply_updates(params: Params, updates: Updates) -> Params:
    """``params + updates`` leaf by leaf, each result in its parameter's dtype.

    Args:
        params: The parameter pytree.
        updates: A pytree of the same structure and shapes (from an optimizer's ``update``).

    Returns:
        The new params.

    Raises:
        ValueError: If the structures or shapes differ.

    Examples:
        >>> import fnn, jax.numpy as jnp
        >>> fnn.optimizers.apply_updates({"w": jnp.array([1.0])}, {"w": jnp.array([0.5])})["w"].tolist()
        [1.5]
    """
    check_like(updates, params, "params", what="updates")
    params, updates = native_tree(params, "params"), native_tree(updates, "updates")
    check_params_floats(params)
    return jax.tree.map(updated, params, updates)


def updated(p: Any, u: Any) -> Array:
    """One leaf of :func:`apply_updates`: ``p + u`` rounded to ``p``'s dtype (what an optimizer
    that tracks the parameters it reaches, ASGD's average, must compute bit for bit). Python
    numbers and NumPy arrays give a jax array, as optax's."""
    return jnp.asarray(p + u).astype(p.dtype if isinstance(p, jax.Array) else jnp.asarray(p).dtype)


# ---------------------------------------------------------------------------------------------
# Composition.


def _chain_init(inits: tuple[Callable, ...], params: Params) -> tuple:
    return tuple(init(params) for init in inits)


def takes_extra_args(transform: Any) -> bool:
    """Whether ``transform.update`` takes optax's extra keyword arguments (``value=``...): an
    optax ``GradientTransformationExtraArgs`` (known by its class name: fnn does not import
    optax), or an update with a ``**`` parameter (fnn's combinators, a user's own)."""
    if any(c.__name__ == "GradientTransformationExtraArgs" for c in type(transform).__mro__):
        return True
    update = transform.update
    try:  # a bound's own signature is (*args, **kwargs) whatever it wraps: read the wrapped function's
        parameters = inspect.signature(update.fn if isinstance(update, bound) else update).parameters
    except (TypeError, ValueError):  # no signature to read (a builtin): called without them
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def _chain_update(
    updates_fns: tuple[Callable, ...],
    extra: tuple[bool, ...],
    updates: Updates,
    state: tuple,
    params: Params = None,
    **extra_args: Any,
) -> tuple[Updates, tuple]:
    if not isinstance(state, tuple) or len(state) != len(updates_fns):
        got = len(state) if isinstance(state, tuple) else type(state).__name__
        raise ValueError(f"chain: state has {got} entries for {len(updates_fns)} transforms")
    updates, state, params = native_args(updates, state, params)
    new_state = []
    for update, takes, s in zip(updates_fns, extra, state, strict=True):
        # optax.chain's rule: each transform gets the extra arguments if it takes them
        updates, s = update(updates, s, params, **extra_args) if takes else update(updates, s, params)
        new_state.append(s)
    return updates, tuple(new_state)


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Applies ``transforms`` in order, each to the previous one's updates; the state is the
    tuple of their states. ``chain(scale_by_adam(), scale_by_learning_rate(1e-3))`` is Adam.

    Its ``update(updates, state, params=None, **extra_args)`` passes optax's extra keyword
    arguments (``value=`` for ``optax.contrib.reduce_on_plateau``) to the transforms that take
    them, as ``optax.chain`` does; the others are called without them. (optax's combinators
    pass them only to optax's own ``GradientTransformationExtraArgs``, which fnn's chain is
    not: put a transform that needs them in fnn's chain, not in an optax chain around it.)

    Args:
        *transforms: The transforms, applied in order (fnn's, optax's or a user's).

    Returns:
        The composition, a :class:`GradientTransformation`.

    Raises:
        TypeError: If a transform has no callable ``init`` and ``update``.
        ValueError: At update, if the state does not hold one entry per transform.

    Examples:
        >>> import fnn, jax.numpy as jnp
        >>> O = fnn.optimizers
        >>> opt = O.chain(O.clip_by_value(1.0), O.scale_by_learning_rate(0.5))
        >>> params = {"w": jnp.array([0.0, 0.0])}
        >>> updates, _ = opt.update({"w": jnp.array([4.0, -0.5])}, opt.init(params), params)
        >>> updates["w"].tolist()
        [-0.5, 0.25]
    """
    for i, t in enumerate(transforms):
        check_transform(t, f"chain: transforms[{i}]")
    # The update depends on the parts' updates (and which of them take extra arguments) only:
    # chains of equal structure share programs.
    updates_fns = tuple(t.update for t in transforms)
    extra = tuple(takes_extra_args(t) for t in transforms)
    return GradientTransformation(
        bound(_chain_init, tuple(t.init for t in transforms)), bound(_chain_update, updates_fns, extra)
    )


def check_transform(t: Any, name: str) -> None:
    """That ``t`` is a transform (callable ``init`` and ``update``, as optax's are too); the
    TypeError names it as ``name``."""
    if not (callable(getattr(t, "init", None)) and callable(getattr(t, "update", None))):
        raise TypeError(f"{name} must have init and update, got {t!r}")


def _empty_init(params: Params) -> EmptyState:
    return EmptyState()


def _stateless_update(fn: Callable, updates: Updates, state: Any, params: Params = None) -> tuple[Updates, Any]:
    return fn(updates, params), state


def stateless(fn: Callable[[Updates, Params | None], Updates]) -> GradientTransformation:
    """A transform without state from ``fn(updates, params) -> updates``.

    Args:
        fn: ``(updates, params) -> updates`` (``params`` may be None).

    Returns:
        The transform; its state is an :class:`EmptyState`.

    Raises:
        TypeError: If ``fn`` is not callable, or its signature cannot take ``(updates, params)``
            (a one-argument function): said here, not at its first update.
    """
    if not callable(fn):
        raise TypeError(f"stateless: fn must be callable (updates, params) -> updates, got {fn!r}")
    sig = unbindable(fn, None, None)  # None also where no signature can be read: the call tells
    if sig is not None:
        raise TypeError(
            f"stateless: fn is called as fn(updates, params) -> updates (params may be None), but "
            f"{getattr(fn, '__name__', type(fn).__name__)} takes {sig}"
        )
    return GradientTransformation(_empty_init, bound(_stateless_update, fn))


def _identity(updates: Updates, params: Params) -> Updates:
    return updates


def identity() -> GradientTransformation:
    """Passes the updates through unchanged.

    Returns:
        The transform.
    """
    return stateless(_identity)


def _zeros_fn(updates: Updates, params: Params) -> Updates:
    return jax.tree.map(jnp.zeros_like, updates)


def set_to_zero() -> GradientTransformation:
    """Every update becomes 0 (with :func:`masked`: frozen parameters; see :func:`freeze`).

    Returns:
        The transform.
    """
    return stateless(_zeros_fn)


# ---------------------------------------------------------------------------------------------
# Leaf-wise machinery: dtypes, shapes, per-leaf rules.


def native_args(updates: Updates, state: OptState, params: Params) -> tuple[Updates, OptState, Params]:
    """An ``update``'s arguments with NumPy leaves in native byte order (a jax array times a
    big-endian NumPy buffer reads its bytes unswapped): what a combinator's update, the entry of
    every named optimizer, does first."""
    return native_tree(updates, "updates"), native_tree(state, "state"), native_tree(params, "params")


def as_array(leaf: Any, name: str = "updates") -> Array:
    """A leaf that is no JAX array (a Python number, a NumPy array, in native byte order first:
    JAX refuses ``'>f8'``) as one, as optax computes with them; a JAX array (a tracer under
    ``jit`` included) as it is, so that a compiled update converts and dispatches nothing.

    An integer or bool update (gradient) leaf is computed with, and gives an update, in the
    moments' float dtype, as optax's ``lr * g`` does (cast back to its own dtype, every update
    would round to 0); a complex one is refused (the rules square real gradients: ``g * g``
    where ``|g|^2`` is meant)."""
    a = leaf if isinstance(leaf, jax.Array) else jnp.asarray(native(leaf, name))
    if name != "updates":
        return a
    if jnp.issubdtype(a.dtype, jnp.complexfloating):
        raise TypeError(f"{name} (the gradients) must be real, got a {a.dtype} leaf: fnn's optimizers take real ones")
    if jnp.issubdtype(a.dtype, jnp.integer) or a.dtype == jnp.bool_:
        return a.astype(moment_dtype(a.dtype))
    return a


def scalar_dtype() -> Any:
    """float64 when x64 is enabled: scalar algebra (bias corrections) in the widest dtype available."""
    return jax.dtypes.canonicalize_dtype(np.float64)


def moment_dtype(dtype: Any) -> Any:
    """Optimizer buffers are kept in float32 or wider, whatever the parameters' dtype."""
    return at_least_float32(dtype)


def own_copy(value: Any, dtype: Any = None) -> Array:
    """``value`` (in ``dtype``) in a buffer of its own, also when traced: what a state holds of a
    value given to it. A no-op conversion returns the value itself, and ``vmap`` (eager) hands a
    batched argument returned unchanged back as the caller's own array: a state holding it, then
    donated (:func:`fnn.train_step`), would delete the caller's array, and two leaves holding one
    buffer cannot be donated at all. ``copy=True`` emits XLA's copy, which vmap keeps (a fresh
    buffer) and jit compiles to nothing (its outputs are its own)."""
    return jnp.array(value, dtype, copy=True)


def check_params_floats(params: Params) -> None:
    """A TypeError naming the leaf for params in a float no optimizer computes in (float8: JAX
    has no promotion of it with the moments' float32, and would say only that)."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        dtype = getattr(leaf, "dtype", None)
        if dtype is not None:
            check_params_float(f"params{jax.tree_util.keystr(path)}", dtype)


def zeros_like_moments(tree: Params, fill: Any = 0.0) -> Params:
    """A buffer per leaf of ``tree``, filled with ``fill``, in the leaf's moment dtype; each
    leaf's its own (``jnp.full`` of a 0-d array into a 0-d leaf is that array: :func:`own_copy`)."""

    check_params_floats(tree)

    def filled(p: Any) -> Array:
        out = jnp.full(jnp.shape(p), fill, moment_dtype(jnp.asarray(p).dtype))
        return own_copy(out) if isinstance(fill, jax.Array) and out.ndim == 0 else out

    return jax.tree.map(filled, tree)


def count0() -> Array:
    return jnp.zeros((), jnp.int32)


def cast(dtype: Any, *scalars: Any) -> tuple[Array, ...]:
    return tuple(jnp.asarray(s).astype(dtype) for s in scalars)


def complements(dtype: Any, *scalars: Any) -> tuple[Array, ...]:
    """``1 - s`` for each scalar (a decay rate), computed in the scalar's own dtype (float64 under
    x64) and then cast to ``dtype``, as torch computes ``1 - beta2`` in Python's double before a
    float32 buffer's update: in float32 first, ``1 - float32(0.999)`` is 1.3e-5 off, and Adam's
    first step ``sqrt(1 - b2) / sqrt(1 - b2^t)`` 6.4e-6."""
    return tuple((1 - jnp.asarray(s)).astype(dtype) for s in scalars)


def safe_eps(eps: Any, dtype: Any) -> Array:
    """``eps`` in ``dtype``, never rounded to 0 when it is positive (0/0 would give NaN)."""
    eps = jnp.asarray(eps)
    return jnp.maximum(eps.astype(dtype), jnp.where(eps > 0, jnp.finfo(dtype).tiny, 0).astype(dtype))


def check_like(grads: Params, tree: Params | None, name: str, what: str = "grads") -> None:
    """``tree`` (params, a state buffer, updates) must have ``grads``' structure and shapes."""
    if tree is None:
        return
    if tree_structure(tree) != tree_structure(grads):
        raise ValueError(
            f"{what} and {name} have different tree structures: {what} "
            f"{jax.tree.structure(grads)}, {name} {jax.tree.structure(tree)}"
        )
    for (path, g), t in zip(jax.tree_util.tree_flatten_with_path(grads)[0], jax.tree.leaves(tree), strict=True):
        if jnp.shape(g) != jnp.shape(t):
            raise ValueError(
                f"{what}{jax.tree_util.keystr(path)} has shape {jnp.shape(g)} but "
                f"{name}{jax.tree_util.keystr(path)} has shape {jnp.shape(t)}"
            )


def tree_structure(tree: Any) -> Any:
    """``jax.tree.structure`` typed loosely: jaxlib ships no stubs for ``PyTreeDef``."""
    return jax.tree.structure(tree)


def need_params(params: Params | None, who: str, why: str) -> None:
    if params is None:
        raise ValueError(f"{who}.update needs params (for {why}); call update(updates, state, params)")


def leafwise(
    fn: Callable, n_out: int, updates: Updates, params: Params | None, *buffers: Params, dtypes: bool = False
) -> tuple:
    """Trees ``(updates, *new_buffers)`` from ``fn(u, p, *b) -> (update, *new_b)`` applied per leaf.

    ``u`` and ``p`` arrive in the moments' dtype (float32 or wider); the update goes back to
    the dtype of ``updates``' leaf, the buffers stay in theirs. ``dtypes``: ``fn`` also gets
    ``(u's dtype, p's dtype)``, their own (p's None without params), as its last argument.
    """
    check_like(updates, params, "params", what="updates")
    for b in buffers:
        check_like(updates, b, "state", what="updates")

    def leaf(u, p, *b):
        u = as_array(u)
        dt = moment_dtype(u.dtype)
        p = None if p is None else as_array(p, "params")
        own = ((u.dtype, None if p is None else p.dtype),) if dtypes else ()
        out = fn(u.astype(dt), None if p is None else p.astype(dt), *b, *own)
        return (out[0].astype(u.dtype), *out[1:])

    treedef = tree_structure(updates)
    ps = treedef.flatten_up_to(params) if params is not None else [None] * treedef.num_leaves
    columns = [
        leaf(u, p, *bs)
        for u, p, *bs in zip(
            treedef.flatten_up_to(updates), ps, *(treedef.flatten_up_to(b) for b in buffers), strict=True
        )
    ]
    if not columns:
        return tuple(treedef.unflatten([]) for _ in range(n_out))
    return tuple(treedef.unflatten(list(c)) for c in zip(*columns, strict=True))


def tree_scale(tree: Updates, factor: Any) -> Updates:
    """Every leaf times a scalar ``factor``, computed in the moment dtype, cast back."""

    def leaf(u: Any) -> Array:
        u = as_array(u)
        dt = moment_dtype(u.dtype)
        return (u.astype(dt) * jnp.asarray(factor).astype(dt)).astype(u.dtype)

    return jax.tree.map(leaf, tree)
