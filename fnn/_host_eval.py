"""Programs that only fill constants or draw random bits, evaluated on the host instead of
compiled.

An optimizer's ``init`` (``zeros_like`` per leaf, a step count of 0, the hyperparameter values
copied or broadcast over models) is a program of fills and copies. Compiled, it costs XLA a
whole compilation to write zeros, for every optimizer family (on a 2-core machine ~0.04 s alone,
~0.16 s beside the epochs' compilations of a cold ``fnn compare``; on a warm run an executable
to load). :func:`evaluate_on_host` runs such a program's jaxpr
with NumPy, with rules only for the primitives whose result NumPy computes bit for bit
(broadcasts, reshapes, slices, copies, negation, exact conversions, bit operations, nested
programs, and jax's default threefry keys: seeding, splitting and random bits,
:mod:`fnn._host_keys`), and transfers the leaves: the arrays equal the compiled program's in
shape, dtype, weak type, bits and placement. A network's init draws random bits and then does
arithmetic on them (``bits -> [0, 1) -> [minval, maxval)``), which XLA:CPU rounds otherwise than
NumPy (a multiply and the add after it fused into one FMA): with ``tail=True`` that arithmetic,
and what reads its results, runs in a small compiled program of its own, on the host's values.
Any other program (arithmetic without a tail, other random draws, typed keys, effects, a weakly
typed result, inputs on several devices, results over ``MAX_BYTES``, which a compiled program
fills faster, or JAX's NaN checks on) answers None and is compiled as before.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np
from jax.extend import core as jex_core

from fnn._executables import call, debugging_nonfinite
from fnn._host_keys import KEY_RULES, HostKeys, fits

# Results up to this size are filled on the host. Filling and transferring costs ~1 ms per MiB
# on CPU (an Adam state of 16 MiB: 16-20 ms; of 61 MiB: 31-150 ms), compiling and running the
# fill program ~40 ms whatever its size: somewhere between the two the compiler is the faster.
MAX_BYTES = 1 << 24


def _broadcast_in_dim(x: np.ndarray, *, shape: tuple, broadcast_dimensions: tuple, sharding: Any) -> Any:
    if sharding is not None:
        return None
    aligned = [1] * len(shape)
    for src, dst in enumerate(broadcast_dimensions):
        aligned[dst] = x.shape[src]
    return np.broadcast_to(x.reshape(aligned), shape)


def _reshape(x: np.ndarray, *, new_sizes: tuple, dimensions: Any, sharding: Any = None) -> Any:
    return None if dimensions is not None or sharding is not None else x.reshape(new_sizes)


def _exact_cast(src: np.dtype, dst: np.dtype) -> bool:
    """Whether NumPy's conversion equals XLA's: to a float from a float (both round to nearest
    even), an integer or a bool; between integers and bools (both wrap). A float to an integer
    is left to XLA (NaN and out-of-range values differ)."""
    kind = {"b": "int", "i": "int", "u": "int", "f": "float", "V": "float"}  # V: ml_dtypes' floats
    src_kind, dst_kind = kind.get(src.kind), kind.get(dst.kind)
    if src_kind is None or dst_kind is None:
        return False
    return dst_kind == "float" or src_kind == "int"


def _convert_element_type(x: np.ndarray, *, new_dtype: Any, weak_type: bool, sharding: Any) -> Any:
    dst = np.dtype(new_dtype)
    if sharding is not None or not _exact_cast(x.dtype, dst):
        return None
    return x.astype(dst)


def _shift_right_logical(x: np.ndarray, y: np.ndarray) -> Any:
    if x.dtype.kind not in "iu" or x.dtype != y.dtype:
        return None
    unsigned = np.dtype(f"u{x.dtype.itemsize}")
    shift = y.astype(unsigned)
    wide = shift >= 8 * x.dtype.itemsize  # XLA gives 0; NumPy's shift is undefined there
    out = x.view(unsigned) >> np.where(wide, 0, shift).astype(unsigned)
    return np.where(wide, 0, out).astype(unsigned).view(x.dtype)


def _bitwise(op: Callable[..., Any]) -> Callable[..., Any]:
    def rule(x: np.ndarray, y: np.ndarray) -> Any:
        return op(x, y) if x.dtype == y.dtype and x.dtype.kind in "iub" else None

    return rule


def _bitcast(x: np.ndarray, *, new_dtype: Any) -> Any:
    dst = np.dtype(new_dtype)
    return x.view(dst) if x.ndim and dst.itemsize == x.dtype.itemsize else None


def _slice(x: np.ndarray, *, start_indices: tuple, limit_indices: tuple, strides: tuple | None) -> Any:
    steps = strides or (1,) * x.ndim
    return x[tuple(slice(a, b, c) for a, b, c in zip(start_indices, limit_indices, steps, strict=True))]


# Arithmetic is left to a compiled tail (evaluate_on_host's ``tail``): XLA:CPU fuses a multiply
# and the add after it into one FMA, rounded once, which NumPy's two roundings do not equal.
_ARITHMETIC = frozenset({"add", "sub", "mul", "div", "max", "min"})
# What a tail may hold: arithmetic, and the shape and type changes of values it computed.
_TAIL = _ARITHMETIC | {"neg", "broadcast_in_dim", "reshape", "squeeze", "convert_element_type", "slice", "concatenate"}


class _Deferred(NamedTuple):
    """A value the compiled tail computes: the result of its equation at ``position``."""

    position: int


class _Tail:
    """The equations left to a compiled program, in order: each one's primitive, params and
    inputs: a :class:`_Deferred`; ``("host", k)``, the k-th of ``inputs``, a host array the
    program takes as an argument (a value that depends on the program's inputs, as in the whole
    program); or ``("const", dtype, shape, bytes)``, a value of constants alone (literals, and
    what the host computed from them), a constant of the tail as of the whole program, which
    XLA folds and simplifies around (``x * 1.0`` dropped, ``(x + a) + b`` as ``x + (a + b)``):
    the tail must see what the whole program saw to round as it does."""

    def __init__(self) -> None:
        self.inputs: list[np.ndarray] = []
        self.eqns: list[tuple[Any, tuple, tuple]] = []

    def add(self, primitive: Any, params: dict, values: list, constant: list[bool]) -> _Deferred | None:
        try:
            frozen = tuple(sorted(params.items()))
            hash(frozen)
        except TypeError:
            return None
        refs: list[Any] = []
        for v, fixed in zip(values, constant, strict=True):
            if isinstance(v, _Deferred):
                refs.append(v)
            elif fixed:
                refs.append(("const", v.dtype.str, v.shape, np.ascontiguousarray(v).tobytes()))
            else:
                self.inputs.append(v)
                refs.append(("host", len(self.inputs) - 1))
        self.eqns.append((primitive, frozen, tuple(refs)))
        return _Deferred(len(self.eqns) - 1)


@functools.lru_cache(maxsize=64)
def _tail_program(eqns: tuple, wanted: tuple[int, ...]) -> Callable:
    """The jitted ``(*inputs) -> values of the equations wanted`` replaying ``eqns``."""

    def arg(ref: Any, inputs: tuple, values: list) -> Any:
        if isinstance(ref, _Deferred):
            return values[ref.position]
        if ref[0] == "host":
            return inputs[ref[1]]
        _, dtype, shape, data = ref
        return np.frombuffer(data, np.dtype(dtype)).reshape(shape)  # a constant of the program

    def tail(*inputs: Any) -> tuple:
        values: list = []
        for primitive, params, refs in eqns:
            values.append(primitive.bind(*[arg(r, inputs, values) for r in refs], **dict(params)))
        return tuple(values[i] for i in wanted)

    return jax.jit(tail)


_RULES: dict[str, Callable[..., Any]] = {
    "broadcast_in_dim": _broadcast_in_dim,
    "reshape": _reshape,
    "squeeze": lambda x, *, dimensions: np.squeeze(x, dimensions),
    "convert_element_type": _convert_element_type,
    "copy": lambda x: x,
    "copy_p": lambda x: x,
    "neg": np.negative,
    "slice": _slice,
    "concatenate": lambda *xs, dimension: np.concatenate(xs, axis=dimension),
    "shift_right_logical": _shift_right_logical,
    "or": _bitwise(np.bitwise_or),
    "and": _bitwise(np.bitwise_and),
    "xor": _bitwise(np.bitwise_xor),
    "bitcast_convert_type": _bitcast,
    **KEY_RULES,
}


def _numeric(aval: Any) -> bool:
    dtype = getattr(aval, "dtype", None)
    return dtype is not None and not jax.dtypes.issubdtype(dtype, jax.dtypes.extended)


def _needed(jaxpr: Any) -> set:
    """The variables the outputs depend on (JAX's jit drops the other inputs, and a dead
    equation never runs)."""
    needed: set = {v for v in jaxpr.outvars if isinstance(v, jex_core.Var)}
    for eqn in reversed(jaxpr.eqns):
        if any(v in needed for v in eqn.outvars):
            needed.update(v for v in eqn.invars if isinstance(v, jex_core.Var))
    return needed


def _placement(used: list) -> Any:
    """Where the compiled program would put its results, as ``jax.device_put``'s target: the
    device of the inputs it uses if one of them is committed to it, else None (the default
    device, uncommitted, also where it uses no input); ``False`` for inputs on several devices."""
    devices = set().union(*(leaf.sharding.device_set for leaf in used))
    if len(devices) > 1:
        return False
    committed = any(getattr(leaf, "_committed", True) for leaf in used)
    return next(iter(devices)) if committed else None


def _run(closed: Any, args: list, needed: set, tail: _Tail | None, constant: list[bool] | None = None) -> Any:
    """``(values, constant)``: the values of ``closed``'s outputs, computed on the host (or,
    with a ``tail``, the arithmetic and what reads its results left to it: :class:`_Deferred`
    values), and whether each is of constants alone; None where a rule is missing or declines.
    Only the ``needed`` equations run; ``args`` are device arrays, read in one transfer, or (in
    a nested program) host values, ``constant`` saying which are of constants (None: none)."""
    jaxpr = closed.jaxpr
    fixed = [*([True] * len(jaxpr.constvars)), *(constant or [False] * len(jaxpr.invars))]
    pairs = [*zip(jaxpr.constvars, closed.consts, strict=True), *zip(jaxpr.invars, args, strict=True)]
    used = [(var, value, c) for (var, value), c in zip(pairs, fixed, strict=True) if var in needed]
    # the inputs the results need, read in one explicit transfer (a caller's transfer guard allows it)
    hosts = iter(jax.device_get([value for _, value, _ in used if isinstance(value, jax.Array)]))
    env: dict = {var: np.asarray(next(hosts)) if isinstance(v, jax.Array) else v for var, v, _ in used}
    consts: set = {var for var, _, c in used if c}  # the variables of constants alone

    def read(v: Any) -> Any:
        if isinstance(v, jex_core.Literal):
            aval: Any = v.aval
            return np.asarray(v.val, dtype=aval.dtype)
        return env[v]

    def is_constant(v: Any) -> bool:
        return isinstance(v, jex_core.Literal) or v in consts

    for eqn in jaxpr.eqns:
        if not any(v in needed for v in eqn.outvars):
            continue
        inputs, name = [read(v) for v in eqn.invars], eqn.primitive.name
        flags = [is_constant(v) for v in eqn.invars]
        keys_in = any(isinstance(x, HostKeys) for x in inputs)
        if name in ("jit", "pjit"):  # a nested program: its equations, here
            inner = eqn.params["jaxpr"]
            ran = _run(inner, inputs, set(inner.jaxpr.invars) | _needed(inner.jaxpr), tail, flags)
            outs, out_flags = (None, None) if ran is None else ran
        elif tail is not None and (name in _ARITHMETIC or any(isinstance(x, _Deferred) for x in inputs)):
            ok = name in _TAIL and not keys_in and len(eqn.outvars) == 1
            deferred = tail.add(eqn.primitive, eqn.params, inputs, flags) if ok else None
            outs, out_flags = (None, None) if deferred is None else ([deferred], [all(flags)])
        else:
            rule = _RULES.get(name)
            if rule is None or len(eqn.outvars) != 1 or (keys_in and name not in KEY_RULES):
                return None
            out = rule(*inputs, **eqn.params)
            outs = None if out is None else [out if isinstance(out, HostKeys) else np.asarray(out)]
            out_flags = [all(flags)]
        if outs is None or out_flags is None:
            return None
        for var, out, c in zip(eqn.outvars, outs, out_flags, strict=True):
            # (a ufunc of a 0-d array answers a NumPy scalar: made 0-d above)
            if not isinstance(out, _Deferred) and not fits(out, var.aval):
                return None
            env[var] = out
            if c:
                consts.add(var)
    return [read(v) for v in jaxpr.outvars], [is_constant(v) for v in jaxpr.outvars]


def evaluate_on_host(jitted: Any, *args: Any, tail: bool = False) -> Any:
    """``jitted(*args)`` computed on the host and transferred, without compiling, where the
    program only fills constants (the module's docstring says which); otherwise None.

    ``tail``: also take programs that do arithmetic (a network's init: random bits, then
    ``bits -> [0, 1) -> [minval, maxval)``): everything else on the host, the arithmetic and
    what reads its results in a small compiled program of their own (kept in the open
    executable store), whose results are the full program's bit for bit, as XLA computes them.

    ``jitted``: a ``jax.jit`` function (traced here; the trace is the one its compilation
    would reuse). Every leaf is a fresh device buffer (the results may be donated)."""
    # (under JAX's NaN/inf checks a compiled program's NaN raises, a value of the host's would not)
    if getattr(jax.config, "jax_disable_jit", False) or debugging_nonfinite():
        return None
    leaves = jax.tree.leaves(args)
    if not all(isinstance(leaf, jax.Array) and len(leaf.sharding.device_set) == 1 for leaf in leaves):
        return None
    traced = jitted.trace(*args)
    jaxpr = traced.jaxpr.jaxpr
    if jaxpr.effects or len(jaxpr.invars) != len(leaves):
        return None
    if any(getattr(v.aval, "weak_type", False) for v in jaxpr.outvars):
        return None  # a transferred array is never weakly typed
    needed = _needed(jaxpr)
    variables = [*jaxpr.outvars, *jaxpr.invars, *jaxpr.constvars]
    if not all(_numeric(v.aval) for v in variables if isinstance(v, jex_core.Var) and v in needed):
        return None  # a typed PRNG key (an extended dtype) has no NumPy value
    if sum(v.aval.size * v.aval.dtype.itemsize for v in jaxpr.outvars) > MAX_BYTES:
        return None
    device = _placement([leaf for var, leaf in zip(jaxpr.invars, leaves, strict=True) if var in needed])
    rest = _Tail() if tail else None
    ran = None if device is False else _run(traced.jaxpr, leaves, needed, rest)
    if ran is None:
        return None
    values = ran[0]
    deferred = [v.position for v in values if isinstance(v, _Deferred)]
    computed = iter(())
    if rest is not None and deferred:
        program = _tail_program(tuple(rest.eqns), tuple(deferred))
        # (a constant by its bytes in hex: the store describes a value by its repr, bytes' may not do)
        hexed = lambda r: (*r[:3], r[3].hex()) if isinstance(r, tuple) and r[0] == "const" else r
        described = tuple((p.name, params, tuple(map(hexed, refs))) for p, params, refs in rest.eqns)
        inputs = jax.device_put([np.array(x, order="C") for x in rest.inputs], device)
        computed = iter(call(program, "tail", (described, tuple(deferred)), *inputs, shared=True))
    # C-ordered copies: a broadcast is a view, and no two leaves may share (or alias) a buffer
    host = [None if isinstance(v, _Deferred) else np.array(v, order="C") for v in values]
    placed = jax.device_put([h for h in host if h is not None], device, may_alias=False)
    ordered = iter(placed)
    out = [next(computed) if h is None else next(ordered) for h in host]
    return jax.tree.unflatten(traced.out_tree, out)
