"""Many models' initial params and training keys, drawn by ONE compiled program: what
:func:`fnn.sweep` and the commands (``fnn compare``, ``fnn train``) start from.

Seed ``s`` gives ``init_key, fit_key = jax.random.split(jax.random.PRNGKey(s))``, the params
``net.init(init_key, input_shape)`` and the training key ``fit_key``. Drawn seed by seed, the
keys' seeding and splitting and the stacking of each leaf would each run (and, for a new shape,
compile) a program of its own: ~0.4 s of small programs before a sweep's first epoch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn._cache import structural_cache
from fnn._executables import call
from fnn._host_eval import evaluate_on_host
from fnn._keys import seed_key
from fnn._validate import UNTRACEABLE
from fnn.layers._base import as_shape


def _cast(params: Any, dtype: Any) -> Any:
    """The floating leaves in ``dtype`` (None: as they are)."""
    if dtype is None:
        return params
    return jax.tree.map(lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, params)


def _one(net: Any, input_shape: tuple, dtype: Any, key: Any) -> tuple[Any, Any]:
    """One seed's ``(params, training key)`` from its ``PRNGKey``."""
    init_key, fit_key = jax.random.split(key)
    return _cast(net.init(init_key, input_shape), dtype), fit_key


@structural_cache(maxsize=8)
def _program(net: Any, input_shape: tuple, dtype: Any) -> Any:
    """``seeds (S,) -> (params stacked (S, ...), training keys (S, ...))``."""
    return jax.jit(jax.vmap(lambda seed: _one(net, input_shape, dtype, jax.random.PRNGKey(seed))))


def _seed_values(seeds: Sequence[int]) -> np.ndarray:
    """The seeds as ``PRNGKey`` takes a Python int: with ``jax_enable_x64`` an int64, else its
    low 32 bits."""
    # x64 as in force here (an enable_x64 context's included), as PRNGKey reads it
    if jax.dtypes.canonicalize_dtype(np.int64) == np.int64:
        return np.asarray([np.int64(s) for s in seeds], np.int64)  # a NumPy uint64 wraps, as seed_key's
    return np.asarray([int(s) % 2**32 for s in seeds], np.uint32)


def initial_params(
    net: Any, input_shape: int | Sequence[int], seeds: Sequence[int], dtype: Any = None
) -> tuple[Any, Any]:
    """Each seed's initial params and training key, stacked over the seeds in their order (a
    sweep's grid repeats a seed for each other value): seed ``s``'s are
    ``net.init(split(PRNGKey(s))[0], input_shape)`` (cast to ``dtype`` unless None) and
    ``split(PRNGKey(s))[1]``, bit for bit, from one program for the distinct seeds (read back
    from the open executable store on a warm run), compiled once for a number of them: a grid
    of other values over the same seeds compiles nothing here. A network whose init cannot be
    traced draws seed by seed, as ``net.init`` then does, and so do keys of another
    implementation than threefry (``jax_default_prng_impl="rbg"``), whose draws under ``vmap``
    differ from one key's."""
    shape, seeds = as_shape(input_shape), list(seeds)
    distinct = list(dict.fromkeys(seeds))
    drawn = None
    if getattr(jax.config, "jax_default_prng_impl", "threefry2x32") == "threefry2x32":
        # put on the device explicitly: a JAX_TRANSFER_GUARD=disallow refuses an implicit transfer
        values = jax.device_put(_seed_values(distinct))
        with contextlib.suppress(*UNTRACEABLE):
            program = _program(net, shape, dtype)
            # drawn on the host where the init only draws uniform values and fills constants
            # (fnn._host_keys): no program to compile
            drawn = evaluate_on_host(program, values, tail=True)
            if drawn is None:
                drawn = call(program, "initial", (shape, dtype), values)
    if drawn is None:
        each = [_one(net, shape, dtype, seed_key(s)) for s in distinct]
        drawn = jax.tree.map(lambda *a: jnp.stack(a), *each)
    if distinct == seeds:
        return drawn
    # each grid point's copy, taken on the host: a program for it would compile per grid size
    at = [distinct.index(s) for s in seeds]
    return jax.device_put(jax.tree.map(lambda a: np.take(a, at, axis=0), jax.device_get(drawn)))


def initial_zeros(net: Any, input_shape: int | Sequence[int], count: int) -> tuple[Any, Any] | None:
    """Zeros shaped as :func:`initial_params` of ``count`` seeds returns them (params and raw
    training keys), made on the host and traced, not compiled: what a program can be compiled
    on while the initial params' own program compiles beside it. None where the shapes cannot
    be traced (an init that reads values), or the keys are typed."""
    shape = as_shape(input_shape)
    try:
        one = jax.eval_shape(lambda: _one(net, shape, None, jax.random.PRNGKey(0)))
    except UNTRACEABLE:
        return None
    leaves = jax.tree.leaves(one)
    if any(not isinstance(a.dtype, np.dtype) for a in leaves):
        return None
    return jax.tree.map(lambda a: jax.device_put(np.zeros((count, *a.shape), a.dtype)), one)
