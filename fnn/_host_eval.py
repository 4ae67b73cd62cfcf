"""Programs that only fill constants, evaluated on the host instead of compiled.

An optimizer's ``init`` (``zeros_like`` per leaf, a step count of 0, the hyperparameter values
copied or broadcast over models) is a program of fills and copies. Compiled, it costs XLA a
whole compilation to write zeros, for every optimizer family (on a 2-core machine ~0.04 s alone,
~0.16 s beside the epochs' compilations of a cold ``fnn compare``; on a warm run an executable
to load). :func:`evaluate_on_host` runs such a program's jaxpr
with NumPy, with rules only for the primitives whose result NumPy computes bit for bit
(broadcasts, reshapes, copies, negation, exact conversions), and transfers the leaves: the
arrays equal the compiled program's in shape, dtype, weak type, bits and placement. Any
other program (arithmetic, random numbers or typed keys, effects, nested calls, a weakly typed
result, inputs on several devices, or results over ``MAX_BYTES``, which a compiled program
fills faster) answers None and is compiled as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.extend import core as jex_core

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


_RULES: dict[str, Callable[..., Any]] = {
    "broadcast_in_dim": _broadcast_in_dim,
    "reshape": _reshape,
    "squeeze": lambda x, *, dimensions: np.squeeze(x, dimensions),
    "convert_element_type": _convert_element_type,
    "copy": lambda x: x,
    "copy_p": lambda x: x,
    "neg": np.negative,
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


def _run(closed: Any, args: list, needed: set) -> list | None:
    """The values of ``closed``'s outputs, computed on the host, or None where a rule is
    missing or declines. Only the ``needed`` equations run."""
    jaxpr = closed.jaxpr
    pairs = [*zip(jaxpr.constvars, closed.consts, strict=True), *zip(jaxpr.invars, args, strict=True)]
    used = [(var, value) for var, value in pairs if var in needed]
    # the inputs the results need, read in one explicit transfer (a caller's transfer guard allows it)
    hosts = jax.device_get([value for _, value in used])
    env: dict = {var: np.asarray(host) for (var, _), host in zip(used, hosts, strict=True)}

    def read(v: Any) -> np.ndarray:
        if isinstance(v, jex_core.Literal):
            aval: Any = v.aval
            return np.asarray(v.val, dtype=aval.dtype)
        return env[v]

    for eqn in jaxpr.eqns:
        if not any(v in needed for v in eqn.outvars):
            continue
        rule = _RULES.get(eqn.primitive.name)
        if rule is None or len(eqn.outvars) != 1:
            return None
        out = rule(*[read(v) for v in eqn.invars], **eqn.params)
        aval: Any = eqn.outvars[0].aval
        if out is None:
            return None
        out = np.asarray(out)  # a ufunc of a 0-d array answers a NumPy scalar
        if out.shape != aval.shape or out.dtype != aval.dtype:
            return None
        env[eqn.outvars[0]] = out
    return [read(v) for v in jaxpr.outvars]


def evaluate_on_host(jitted: Any, *args: Any) -> Any:
    """``jitted(*args)`` computed on the host and transferred, without compiling, where the
    program only fills constants (the module's docstring says which); otherwise None.

    ``jitted``: a ``jax.jit`` function (traced here; the trace is the one its compilation
    would reuse). Every leaf is a fresh device buffer (the results may be donated)."""
    if getattr(jax.config, "jax_disable_jit", False):
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
    values = None if device is False else _run(traced.jaxpr, leaves, needed)
    if values is None:
        return None
    # C-ordered copies: a broadcast is a view, and no two leaves may share (or alias) a buffer
    host = [np.array(v, order="C") for v in values]
    return jax.tree.unflatten(traced.out_tree, jax.device_put(host, device, may_alias=False))
