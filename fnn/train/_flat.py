"""An optimizer's update run on all of a model's parameters as ONE vector, where that provably
computes what it computes leaf by leaf.

XLA:CPU compiles a kernel per fusion and leaf shape: Adam's update of the 64-64-64-10 ``mlp``'s
six leaves (four shapes, 3 models vmapped) compiles to 22 fused kernels, of one vector to 7. The
11 updates of ``fnn compare``'s default job, each compiled alone that way, took 1.87 s over the
leaves and 0.79 s over one vector; its programs of five and six optimizers' epochs (106 kernels
against 85 for six) compile in a fifth less time, to the same bits there, and train as fast
(benchmarks/RESULTS.md, session 39).
Where it does not pay (small batches, large networks): :func:`flat_pays`.

:func:`flat_plan` decides from the update's jaxpr, traced on the parameters' leaves and on one
vector of them all, and takes the vector only where both say the same thing:

* every operation that reads a leaf (its gradient, its value, or its part of the state: a
  subtree of the state shaped as the params, such as Adam's ``mu``) is elementwise (an
  arithmetic, comparison, select or conversion primitive, nested calls followed inside) and
  reads no other leaf, its other operands scalars: values computed from scalars only (the step
  count, the hyperparameters, literals, constants);
* each leaf's results (its update and its part of the new state) are the same expression of its
  own inputs and of the same scalars, for every leaf and in the vector's trace; and the scalar
  parts of the new state (the count) are the same expressions in both.

So the vector's update is, element by element, the arithmetic each leaf gets: a per-leaf norm
or reduction, a leaf's size or shape read as a number, a mask or a branch that treats leaves
differently (by rank, by shape, by position), a leaf reading another leaf, control flow,
effects or custom derivative rules over leaves, mixed dtypes, dtypes other than float32 and
float64: any of them and the leaves are updated as they are. XLA may still round that
arithmetic otherwise in the vector's program, as it may in any two programs: a multiply and an
add in one kernel of one program can become an FMA that the other's two kernels do not (a
probe: Adam with Dropout in float32, some elements one bit apart; the default job and every
float64 case tried, bit for bit), which ``fit_together``'s "up to float rounding" allows.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jex_core

from fnn._cache import structural_cache, trace_settings

# Primitives whose every output element is a function of the same element of each array operand
# (rank-0 operands broadcast): the vector's result is the leaves' results concatenated.
# fmt: off
_ELEMENTWISE = frozenset({
    "abs", "acos", "acosh", "add", "and", "asin", "asinh", "atan", "atan2", "atanh", "cbrt", "ceil",
    "clamp", "convert_element_type", "copy", "copy_p", "cos", "cosh", "digamma", "div", "eq", "erf",
    "erf_inv", "erfc", "exp", "exp2", "expm1", "floor", "ge", "gt", "integer_pow", "is_finite", "le",
    "lgamma", "log", "log1p", "logistic", "lt", "max", "min", "mul", "ne", "neg", "nextafter", "not",
    "or", "pow", "reduce_precision", "rem", "round", "rsqrt", "select_n", "sign", "sin", "sinh", "sqrt",
    "square", "sub", "tan", "tanh", "xor",
})
# fmt: on
# Calls whose body is followed: their result is their jaxpr's.
# (Not a custom_jvp_call: its derivative rule may read a leaf whole, and a plan promises the
# update's derivatives too.)
_CALLS = {"jit": "jaxpr", "pjit": "jaxpr", "closed_call": "call_jaxpr"}


_EXACT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class _NotFlat(Exception):
    """The update reads its leaves otherwise than elementwise and alike."""


class _Value(NamedTuple):
    """What the analysis knows of a variable: the leaf it reads (None: scalars only), the
    expression it holds (an interned id, the same for the same expression of the same inputs),
    and whether it is a scalar broadcast to an array (``zeros_like(leaf)``: a scalar still)."""

    leaf: int | None
    expr: int
    splat: bool = False


class _Interner:
    def __init__(self) -> None:
        self.ids: dict[Any, int] = {}

    def __call__(self, key: Any) -> int:
        return self.ids.setdefault(key, len(self.ids))


def _param_key(value: Any) -> Any:
    if isinstance(value, jex_core.ClosedJaxpr | jex_core.Jaxpr):
        return str(value)
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def _array_key(kind: str, value: Any) -> tuple:
    if isinstance(value, jax.core.Tracer):  # an outer trace's value, closed over: no plan holds it
        raise _NotFlat("the update closes over a traced value")
    if jnp.issubdtype(getattr(value, "dtype", np.float32), jax.dtypes.prng_key):
        return _array_key(f"{kind} {value.dtype}", jax.random.key_data(value))
    a = np.asarray(value)
    return kind, str(a.dtype), a.shape, hashlib.sha256(a.tobytes()).hexdigest()


def _walk(jaxpr: Any, consts: Any, inputs: list[_Value], intern: _Interner) -> list[_Value]:
    """The outputs of ``jaxpr`` given what its inputs hold; _NotFlat where a leaf is read
    otherwise than elementwise, or two leaves together."""
    env: dict[Any, _Value] = {}
    for v, c in zip(jaxpr.constvars, consts, strict=True):
        env[v] = _Value(None, intern(_array_key("const", c)))
    for v, value in zip(jaxpr.invars, inputs, strict=True):
        env[v] = value

    def read(v: Any) -> _Value:
        if isinstance(v, jex_core.Literal):
            return _Value(None, intern(_array_key("literal", v.val)))
        return env[v]

    for eqn in jaxpr.eqns:
        ins = [read(v) for v in eqn.invars]
        name = eqn.primitive.name
        leaves = {x.leaf for x in ins if x.leaf is not None}
        if len(leaves) > 1:
            raise _NotFlat(f"{name} reads two leaves")
        leaf = next(iter(leaves), None)
        ranks = [len(getattr(v.aval, "shape", ())) for v in eqn.invars]
        if name in _CALLS and eqn.params.get(_CALLS[name]) is not None:
            inner = eqn.params[_CALLS[name]]
            outs = _walk(inner.jaxpr, inner.consts, ins, intern)
        elif name == "broadcast_in_dim" and leaf is None and ranks[0] == 0 and len(ins) == 1:
            outs = [_Value(None, ins[0].expr, splat=True)]  # a scalar, however wide
        elif name in _ELEMENTWISE and len(eqn.outvars) == 1:
            scalar = all(r == 0 or x.splat or x.leaf is not None for x, r in zip(ins, ranks, strict=True))
            if leaf is not None and not scalar:
                raise _NotFlat(f"{name} reads a leaf with an array of other values")
            aval = eqn.outvars[0].aval
            # no shapes in the key: the leaves' expressions and the vector's are compared
            params = tuple(sorted((k, _param_key(p)) for k, p in eqn.params.items() if k != "sharding"))
            dtype = (str(aval.dtype), bool(getattr(aval, "weak_type", False)))
            splat = leaf is None and scalar and any(x.splat for x in ins)  # scalars broadcast, still scalars
            shape = tuple(getattr(aval, "shape", ())) if leaf is None and not splat else ()  # values read by no leaf
            outs = [_Value(leaf, intern((name, params, dtype, tuple(x.expr for x in ins), shape)), splat=splat)]
        else:
            if leaf is not None or any(x.splat for x in ins) or eqn.effects:
                raise _NotFlat(f"{name} is not elementwise")
            params = tuple(sorted((k, _param_key(p)) for k, p in eqn.params.items()))
            avals = tuple((tuple(getattr(v.aval, "shape", ())), str(getattr(v.aval, "dtype", ""))) for v in eqn.outvars)
            base = intern((name, params, avals, tuple(x.expr for x in ins)))
            outs = [_Value(None, intern((base, i))) for i in range(len(eqn.outvars))]
        for v, out in zip(eqn.outvars, outs, strict=True):
            env[v] = out
    return [read(v) for v in jaxpr.outvars]


def _aval(x: Any) -> tuple:
    weak = x.weak_type if isinstance(x, jax.ShapeDtypeStruct) else getattr(jax.typeof(x), "weak_type", False)
    return tuple(x.shape), np.dtype(x.dtype), bool(weak)


def _struct(aval: tuple) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(aval[0], aval[1], weak_type=aval[2])


class FlatPlan(NamedTuple):
    """How an update runs on one vector: the state's params-shaped subtrees (its groups) held as
    vectors too (:meth:`collapse`, :meth:`expand`), and the update traced on them (``jaxpr``,
    ``out_tree``) run by :meth:`update`."""

    update_fn: Callable
    params_tree: Any
    shapes: tuple[tuple[int, ...], ...]
    grad_avals: tuple
    state_outer: Any  # the state's structure with each group a leaf
    groups: tuple[bool, ...]  # which of state_outer's leaves are groups
    jaxpr: Any
    out_tree: Any

    def _split(self, vector: Any) -> Any:
        leaves, start = [], 0
        for shape in self.shapes:
            size = int(np.prod(shape))
            leaves.append(vector[start : start + size].reshape(shape))
            start += size
        return jax.tree.unflatten(self.params_tree, leaves)

    def collapse(self, state: Any) -> Any:
        """The state with each group one vector."""
        items = self.state_outer.flatten_up_to(state)
        items = [_concat(x) if g else x for x, g in zip(items, self.groups, strict=True)]
        return jax.tree.unflatten(self.state_outer, items)

    def expand(self, flat_state: Any) -> Any:
        """The state as the update gives it, from :meth:`collapse`'s."""
        items = self.state_outer.flatten_up_to(flat_state)
        items = [self._split(x) if g else x for x, g in zip(items, self.groups, strict=True)]
        return jax.tree.unflatten(self.state_outer, items)

    def update(self, grads: Any, flat_state: Any, params: Any) -> tuple[Any, Any]:
        """``(updates, new flat state)``: the update of the leaves as one vector, split back into
        leaves; gradients or params of other shapes or dtypes than planned (no params) are
        updated as leaves."""
        planned = self.grad_avals
        given = [tuple(_aval(x) for x in jax.tree.leaves(tree)) for tree in (grads, params)]
        if given != [planned, planned]:
            updates, state = self.update_fn(grads, self.expand(flat_state), params)
            return updates, self.collapse(state)
        args = jax.tree.leaves((_concat(grads), flat_state, _concat(params)))
        updates, state = jax.tree.unflatten(self.out_tree, jex_core.jaxpr_as_fun(self.jaxpr)(*args))
        return self._split(updates), state


def _concat(tree: Any) -> Any:
    return jnp.concatenate([jnp.reshape(leaf, (-1,)) for leaf in jax.tree.leaves(tree)])


# Where the vector pays (fit_together's programs of 3 optimizers x 3 models on a 2-core EPYC,
# 2026-12-05, benchmarks/RESULTS.md session 39): it compiles 15-25 % faster at every size and
# batch, and trains as fast or faster from batch 32 up to 85,002 parameters a model (width 256 on
# 64 inputs: 1,855 against 1,960 us a step), but 2.2x slower at batch 1 and 1.25x at batch 8
# (its concatenated gradient is one kernel on one core, the leaves' updates are split over the
# cores) and 1.05-1.16x at 269,322 parameters (784-256-256-10), where the copies cost more than
# the kernels saved.
MIN_BATCH = 32
MAX_SIZE = 1 << 16


def flat_pays(batch_size: int, params: Any) -> bool:
    """Whether an epoch of ``batch_size`` over ``params`` (one model's: shapes will do) should
    take the vector where :func:`flat_plan` allows it: from :data:`MIN_BATCH` up, up to
    :data:`MAX_SIZE` parameters."""
    size = sum(int(np.prod(np.shape(leaf))) for leaf in jax.tree.leaves(params))
    return batch_size >= MIN_BATCH and size <= MAX_SIZE


def flat_plan(update: Callable, params: Any, state: Any) -> FlatPlan | None:
    """The plan to run ``update(grads, state, params)`` (grads shaped as the params) on one
    vector of all the leaves, or None where that could compute anything else, or would not pay
    (one leaf). ``params``, ``state``: arrays or tracers (only their shapes and dtypes are read)."""
    p_leaves, p_tree = jax.tree.flatten(params)
    s_leaves, s_tree = jax.tree.flatten(state)
    if len(p_leaves) < 2:
        return None
    try:
        avals = (tuple(_aval(x) for x in p_leaves), tuple(_aval(x) for x in s_leaves))
    except (AttributeError, TypeError):  # a leaf that is no array
        return None
    return _plan(update, p_tree, s_tree, avals, trace_settings())


@structural_cache(maxsize=64)
def _plan(update: Callable, p_tree: Any, s_tree: Any, avals: tuple, _settings: tuple) -> FlatPlan | None:
    p_avals, s_avals = avals
    dtype = p_avals[0][1]
    # Only float32 and float64: XLA:CPU computes a bfloat16 or float16 elementwise chain in
    # float32 inside a kernel and rounds where kernels end, so the vector's other kernels round
    # otherwise, at the first bit of a bfloat16 (a probe: Adam's params 0.4 % apart after an epoch).
    if any(a[1] != dtype or a[2] or a[1] not in _EXACT_DTYPES for a in p_avals):
        return None
    params = jax.tree.unflatten(p_tree, [_struct(a) for a in p_avals])
    state = jax.tree.unflatten(s_tree, [_struct(a) for a in s_avals])
    shapes = tuple(a[0] for a in p_avals)

    def is_group(node: Any) -> bool:
        if jax.tree.structure(node) != p_tree:
            return False
        leaves = jax.tree.leaves(node)
        return [x.shape for x in leaves] == list(shapes) and len({(x.dtype, x.weak_type) for x in leaves}) == 1

    items, outer = jax.tree.flatten(state, is_leaf=is_group)
    groups = tuple(is_group(x) for x in items)
    if any(g and jax.tree.leaves(x)[0].dtype not in _EXACT_DTYPES for x, g in zip(items, groups, strict=True)):
        return None
    size = sum(int(np.prod(s)) for s in shapes)
    flat_items = [
        jax.ShapeDtypeStruct((size,), jax.tree.leaves(x)[0].dtype) if g else x
        for x, g in zip(items, groups, strict=True)
    ]
    flat_state = jax.tree.unflatten(outer, flat_items)
    vector = jax.ShapeDtypeStruct((size,), dtype)
    try:
        tree_jaxpr, tree_out = jax.make_jaxpr(update, return_shape=True)(params, state, params)
    except Exception:  # the update fails on its own arguments: the step reports it as before
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            flat_jaxpr, flat_out = jax.make_jaxpr(update, return_shape=True)(vector, flat_state, vector)
    except Exception:  # an update that does not take one vector
        return None
    if cast(Any, jax.tree.structure(tree_out)) != jax.tree.structure((params, state)):
        return None
    if cast(Any, jax.tree.structure(flat_out)) != jax.tree.structure((vector, flat_state)):
        return None
    if tree_jaxpr.effects or flat_jaxpr.effects:
        return None
    intern = _Interner()
    try:
        tree_res = _walk(tree_jaxpr.jaxpr, tree_jaxpr.consts, _inputs(len(p_avals), groups, True, intern), intern)
        flat_res = _walk(flat_jaxpr.jaxpr, flat_jaxpr.consts, _inputs(1, groups, False, intern), intern)
    except _NotFlat:
        return None
    if not _same(tree_res, flat_res, len(p_avals), groups):
        return None
    return FlatPlan(update, p_tree, shapes, p_avals, outer, groups, flat_jaxpr, jax.tree.structure(flat_out))


def _inputs(n_leaves: int, groups: tuple, per_leaf: bool, intern: _Interner) -> list[_Value]:
    """What the update's inputs ``(grads, state, params)`` hold, flattened as its jaxpr takes
    them: per leaf (``per_leaf``) or as one vector (leaf 0)."""

    def leaf_values(role: Any) -> list[_Value]:
        return [_Value(i if per_leaf else 0, intern(("input", role))) for i in range(n_leaves)]

    values = leaf_values("grads")
    for k, group in enumerate(groups):  # a group: an input per leaf (one, the vector); else one shared array
        values += leaf_values(("state", k)) if group else [_Value(None, intern(("input", "state", k)))]
    return values + leaf_values("params")


def _same(tree_res: list[_Value], flat_res: list[_Value], n: int, groups: tuple) -> bool:
    """Whether each leaf's results are the vector's, and the scalar results the same."""

    def per_leaf(res: list[_Value], flat: _Value) -> bool:
        return (
            flat.leaf == 0
            and not flat.splat
            and all(r.leaf == i and not r.splat and r.expr == flat.expr for i, r in enumerate(res))
        )

    if not per_leaf(tree_res[:n], flat_res[0]):
        return False
    t, f = n, 1
    for group in groups:
        if group:
            if not per_leaf(tree_res[t : t + n], flat_res[f]):
                return False
            t += n
        else:
            a, b = tree_res[t], flat_res[f]
            if a.leaf is not None or b.leaf is not None or a.splat or b.splat or a.expr != b.expr:
                return False
            t += 1
        f += 1
    return t == len(tree_res) and f == len(flat_res)
