"""The baselines ``train_throughput`` races fnn against, each a :class:`Runner` that trains the
same MLP (ReLU hidden layers, Adam, softmax cross-entropy on logits) for one epoch per call.

* ``hand_scan_runner``: one jitted, donated ``lax.scan`` epoch of ``jax.value_and_grad`` +
  ``optax.adam`` (the permutation drawn inside), the last partial batch as one more step;
* ``optax_step_runner``: a Python loop over one jitted, donated step per batch;
* ``torch_runner``: PyTorch eager, ``torch.optim.Adam`` (fused / foreach / default);
* ``keras_runner``: Keras 3 ``Model.fit`` on the JAX backend.

Every runner keeps its own parameters and optimizer state between calls (training goes on, as
in a multi-epoch run) and returns only when its work is done.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import _common as C


class Runner(NamedTuple):
    """``run()`` trains for one epoch (or ``samples`` samples) and returns when it is done."""

    run: Callable[[], Any]
    samples: int
    iterations: int
    note: str = ""  # set when only part of an epoch is timed
    detail: str = ""  # shown beside the runner's name (its settings)
    epoch_times: list | None = None  # fit's own per-epoch times (History.times), one per run


class Problem(NamedTuple):
    sizes: tuple[int, ...]  # input, hidden..., classes
    x: np.ndarray
    y: np.ndarray
    dtype: Any
    lr: float
    seed: int


def _jax_mlp(sizes, dtype, seed):
    """Plain-JAX MLP with Keras's initialisation (glorot uniform, zero bias)."""
    keys = jax.random.split(jax.random.PRNGKey(seed), len(sizes) - 1)
    params = []
    for k, fi, fo in zip(keys, sizes[:-1], sizes[1:], strict=True):
        lim = math.sqrt(6.0 / (fi + fo))
        params.append(
            {"w": jax.random.uniform(k, (fi, fo), jnp.float32, -lim, lim).astype(dtype), "b": jnp.zeros((fo,), dtype)}
        )

    def apply(p, x):
        for layer in p[:-1]:
            x = jax.nn.relu(x @ layer["w"] + layer["b"])
        return x @ p[-1]["w"] + p[-1]["b"]

    return params, apply


def _optax_problem(pb: Problem):
    import optax

    params, apply = _jax_mlp(pb.sizes, pb.dtype, pb.seed)
    tx = optax.adam(pb.lr)

    def loss_fn(p, xb, yb):
        logits = apply(p, xb).astype(jnp.float32)
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    def step(p, s, xb, yb):
        value, g = jax.value_and_grad(loss_fn)(p, xb, yb)
        updates, s = tx.update(g, s, p)
        return optax.apply_updates(p, updates), s, value

    return params, tx, step


def hand_scan_runner(pb: Problem, batch_size: int, unroll: int) -> Runner:
    params, tx, step = _optax_problem(pb)
    x, y = jnp.asarray(pb.x, pb.dtype), jnp.asarray(pb.y)
    n = x.shape[0]
    B = min(batch_size, n)
    nb, rem = divmod(n, B)

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def epoch(p, s, x, y, key):
        perm = jax.random.permutation(key, n)

        def batch(start, size):
            idx = jax.lax.dynamic_slice_in_dim(perm, start, size)
            return jnp.take(x, idx, axis=0), jnp.take(y, idx, axis=0)

        def body(carry, i):
            p, s, total = carry
            p, s, value = step(p, s, *batch(i * B, B))
            return (p, s, total + value * B), None

        (p, s, total), _ = jax.lax.scan(
            body, (p, s, jnp.zeros((), jnp.float32)), jnp.arange(nb), unroll=min(unroll, nb)
        )
        if rem:
            p, s, value = step(p, s, *batch(nb * B, rem))
            total = total + value * rem
        return p, s, total / n

    state = {"p": params, "s": tx.init(params), "key": jax.random.PRNGKey(pb.seed + 1)}

    def run():
        state["key"], k = jax.random.split(state["key"])
        state["p"], state["s"], mean_loss = epoch(state["p"], state["s"], x, y, k)
        float(mean_loss)  # the epoch's loss reaches the host, as fit's does

    return Runner(run, n, math.ceil(n / B), detail=f"unroll {min(unroll, max(nb, 1))}")


def optax_step_runner(pb: Problem, batch_size: int) -> Runner:
    params, tx, step = _optax_problem(pb)
    x, y = jnp.asarray(pb.x, pb.dtype), jnp.asarray(pb.y)
    n = x.shape[0]
    B = min(batch_size, n)
    nb, rem = divmod(n, B)

    @functools.partial(jax.jit, donate_argnums=(0, 1), static_argnums=(6,))
    def jstep(p, s, x, y, perm, start, size):
        idx = jax.lax.dynamic_slice_in_dim(perm, start, size)
        return step(p, s, jnp.take(x, idx, axis=0), jnp.take(y, idx, axis=0))

    permute = jax.jit(jax.random.permutation, static_argnums=(1,))
    state = {"p": params, "s": tx.init(params), "key": jax.random.PRNGKey(pb.seed + 1)}

    def run():
        state["key"], k = jax.random.split(state["key"])
        perm = permute(k, n)
        p, s, losses = state["p"], state["s"], []
        for i in range(nb):
            p, s, value = jstep(p, s, x, y, perm, i * B, B)
            losses.append(value)
        if rem:
            p, s, value = jstep(p, s, x, y, perm, nb * B, rem)
            losses.append(value)
        state["p"], state["s"] = p, s
        float(losses[-1])  # the last step is done, so every step is
        C.block(p)

    return Runner(run, n, math.ceil(n / B))


def torch_runner(pb: Problem, batch_size: int, max_iters: int, adam_impl: str, threads: int = 0) -> Runner:
    import torch
    import torch.nn.functional as F

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(pb.seed)
    dt = {jnp.float32: torch.float32, jnp.bfloat16: torch.bfloat16, jnp.float16: torch.float16}[pb.dtype]
    dev = "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"
    tf32 = dev == "cuda" and dt == torch.float32
    if tf32:
        # XLA's default precision lets float32 matmuls use TF32 on the GPU (in fnn's runs and in
        # the peak measurement alike); PyTorch's default does not. Same arithmetic for both.
        torch.backends.cuda.matmul.allow_tf32 = True
    layers = []
    for i, (fi, fo) in enumerate(zip(pb.sizes[:-1], pb.sizes[1:], strict=True)):
        layers.append(torch.nn.Linear(fi, fo))
        if i < len(pb.sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).to(device=dev, dtype=dt)
    kw = {"fused": True} if adam_impl == "fused" else ({"foreach": True} if adam_impl == "foreach" else {})
    opt = torch.optim.Adam(model.parameters(), lr=pb.lr, **kw)
    x = torch.from_numpy(pb.x).to(device=dev, dtype=dt)
    y = torch.from_numpy(pb.y).long().to(dev)
    n = x.shape[0]
    B = min(batch_size, n)
    iters = min(math.ceil(n / B), max_iters)
    samples = min(n, iters * B)

    def run():
        perm = torch.randperm(n, device=dev)
        for i in range(iters):
            idx = perm[i * B : (i + 1) * B]
            opt.zero_grad(set_to_none=True)
            value = F.cross_entropy(model(x[idx]).float(), y[idx])
            value.backward()
            opt.step()
        value.item()  # synchronises (CUDA) like the other runners' loss read-back

    note = f"{iters} of {math.ceil(n / B)} iterations" if iters < math.ceil(n / B) else ""
    where = ("cuda, TF32" if tf32 else "cuda") if dev == "cuda" else f"{torch.get_num_threads()} threads"
    detail = f"{adam_impl} Adam, {where}"
    return Runner(run, samples, iters, note, detail=detail)


def keras_runner(pb: Problem, batch_size: int, max_iters: int) -> Runner:
    import keras

    if keras.backend.backend() != "jax":
        raise RuntimeError(
            f"keras uses the {keras.backend.backend()!r} backend, not 'jax' "
            "(set KERAS_BACKEND=jax before anything imports keras)"
        )
    dtype_name = {jnp.float32: "float32", jnp.bfloat16: "bfloat16", jnp.float16: "float16"}[pb.dtype]
    keras.utils.set_random_seed(pb.seed)
    layers = [keras.Input((pb.sizes[0],))]
    layers += [keras.layers.Dense(s, activation="relu", dtype=dtype_name) for s in pb.sizes[1:-1]]
    layers += [keras.layers.Dense(pb.sizes[-1], dtype=dtype_name)]
    model = keras.Sequential(layers)
    model.compile(
        optimizer=keras.optimizers.Adam(pb.lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    n = pb.x.shape[0]
    B = min(batch_size, n)
    iters = min(math.ceil(n / B), max_iters)
    samples = min(n, iters * B)
    x, y = pb.x[:samples], pb.y[:samples]

    def run():
        model.fit(x, y, batch_size=B, epochs=1, shuffle=True, verbose=0)

    note = f"{iters} of {math.ceil(n / B)} iterations" if iters < math.ceil(n / B) else ""
    return Runner(run, samples, iters, note)
