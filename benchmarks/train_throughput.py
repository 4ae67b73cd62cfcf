"""Samples/s of one ``fnn.fit`` epoch against the same training done other ways.

An MLP 784-256-256-10 with Adam (lr 1e-3) and softmax cross-entropy on synthetic MNIST-shaped
data (N = 12800, shuffled every epoch, the last partial batch kept), at several batch sizes:

* ``fnn manual`` / ``fnn autodiff``: ``fnn.fit(..., epochs=1, grad=...)``, the whole call timed
  (input checks, the permutation, the compiled epoch and the loss read-back included);
* ``hand scan``: what a skilled JAX user writes by hand — one jitted, donated epoch: a
  ``lax.scan`` over the full batches of ``jax.value_and_grad`` + ``optax.adam``, then the last
  partial batch;
* ``optax step``: a Python loop over batches calling one jitted, donated step (the data stays
  on the device; the step slices its batch itself);
* ``torch eager``: ``torch.nn`` + ``torch.optim.Adam`` (fused or foreach, ``--torch-adam``);
* ``keras fit``: Keras 3 ``Model.fit`` on the JAX backend (``jit_compile=True``).

Every runner is set up and compiled first, then timed in interleaved rounds (each runner one
epoch per round) and the median reported. PyTorch and Keras at small batch sizes run only
``--slow-iters`` iterations per round (marked in the table) and report the same samples/s.
The fp32 matmul peak is measured between rounds (best seen) and each runner's FLOP/s is
given as % of it, counting ``6W - 2W1`` FLOP per sample.

    python -m benchmarks.train_throughput [--quick] [--json out.json]
"""
from __future__ import annotations

import functools
import math
import os
import sys
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import fnn
from benchmarks import _common as C

ALL_RUNNERS = ("fnn_manual", "fnn_autodiff", "hand_scan", "optax_step", "torch_eager", "keras_fit")
LABELS = {"fnn_manual": "fnn manual", "fnn_autodiff": "fnn autodiff", "hand_scan": "hand scan",
          "optax_step": "optax step", "torch_eager": "torch eager", "keras_fit": "keras fit"}
BASELINES = ("hand_scan", "optax_step", "torch_eager", "keras_fit")

# (batch size, baseline, minimum speed-up of fnn manual) from the issue.
TARGETS = [
    (1, "torch_eager", 10.0), (1, "keras_fit", 5.0), (1, "optax_step", 3.0),
    (32, "optax_step", 1.5), (32, "torch_eager", 2.0), (32, "keras_fit", 2.0),
]
BEST_BASELINE_BATCHES = (128, 1024)
PEAK_TARGET = {1024: 80.0}


class Runner(NamedTuple):
    """``run()`` trains for one epoch (or ``samples`` samples) and returns when it is done."""
    run: Callable[[], Any]
    samples: int
    iterations: int
    note: str = ""     # set when only part of an epoch is timed
    detail: str = ""   # shown beside the runner's name (its settings)


class Problem(NamedTuple):
    sizes: tuple[int, ...]          # input, hidden..., classes
    x: np.ndarray
    y: np.ndarray
    dtype: Any
    lr: float
    seed: int


# --------------------------------------------------------------------------------------------
# Runners
# --------------------------------------------------------------------------------------------


def fnn_runner(pb: Problem, batch_size: int, grad: str, unroll: int | None) -> Runner:
    net = fnn.mlp(list(pb.sizes[1:]), activation="relu")
    params = net.init(jax.random.PRNGKey(pb.seed), (pb.sizes[0],), pb.dtype)
    opt = fnn.optimizers.adam(pb.lr)
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    x, y = jnp.asarray(pb.x, pb.dtype), jnp.asarray(pb.y)
    key = jax.random.PRNGKey(pb.seed + 1)
    state = {"params": params, "opt_state": None, "epoch": 0}

    def run():
        # Epoch e of a resumed run: a fresh permutation every call, as in a multi-epoch fit.
        e = state["epoch"]
        r = fnn.fit(net, state["params"], opt, loss, x, y, batch_size=batch_size, epochs=e + 1,
                    initial_epoch=e, shuffle=True, key=key, verbose=0, grad=grad, unroll=unroll,
                    opt_state=state["opt_state"])
        state.update(params=r.params, opt_state=r.opt_state, epoch=e + 1)
        C.block(r.params)

    n = pb.x.shape[0]
    return Runner(run, n, math.ceil(n / batch_size))


def _jax_mlp(sizes, dtype, seed):
    """Plain-JAX MLP with Keras's initialisation (glorot uniform, zero bias)."""
    keys = jax.random.split(jax.random.PRNGKey(seed), len(sizes) - 1)
    params = []
    for k, fi, fo in zip(keys, sizes[:-1], sizes[1:]):
        lim = math.sqrt(6.0 / (fi + fo))
        params.append({"w": jax.random.uniform(k, (fi, fo), jnp.float32, -lim, lim).astype(dtype),
                       "b": jnp.zeros((fo,), dtype)})

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

        (p, s, total), _ = jax.lax.scan(body, (p, s, jnp.zeros((), jnp.float32)), jnp.arange(nb),
                                        unroll=min(unroll, nb))
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
    layers = []
    for i, (fi, fo) in enumerate(zip(pb.sizes[:-1], pb.sizes[1:])):
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
            idx = perm[i * B:(i + 1) * B]
            opt.zero_grad(set_to_none=True)
            value = F.cross_entropy(model(x[idx]).float(), y[idx])
            value.backward()
            opt.step()
        value.item()  # synchronises (CUDA) like the other runners' loss read-back

    note = f"{iters} of {math.ceil(n / B)} iterations" if iters < math.ceil(n / B) else ""
    return Runner(run, samples, iters, note, detail=f"{adam_impl} Adam, {torch.get_num_threads()} threads")


def keras_runner(pb: Problem, batch_size: int, max_iters: int) -> Runner:
    import keras

    if keras.backend.backend() != "jax":
        raise RuntimeError(f"keras uses the {keras.backend.backend()!r} backend, not 'jax' "
                           "(set KERAS_BACKEND=jax before anything imports keras)")
    dtype_name = {jnp.float32: "float32", jnp.bfloat16: "bfloat16", jnp.float16: "float16"}[pb.dtype]
    keras.utils.set_random_seed(pb.seed)
    layers = [keras.Input((pb.sizes[0],))]
    layers += [keras.layers.Dense(s, activation="relu", dtype=dtype_name) for s in pb.sizes[1:-1]]
    layers += [keras.layers.Dense(pb.sizes[-1], dtype=dtype_name)]
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(pb.lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True)
    n = pb.x.shape[0]
    B = min(batch_size, n)
    iters = min(math.ceil(n / B), max_iters)
    samples = min(n, iters * B)
    x, y = pb.x[:samples], pb.y[:samples]

    def run():
        model.fit(x, y, batch_size=B, epochs=1, shuffle=True, verbose=0)

    note = f"{iters} of {math.ceil(n / B)} iterations" if iters < math.ceil(n / B) else ""
    return Runner(run, samples, iters, note)


def _make_runner(name: str, pb: Problem, B: int, args) -> Runner:
    if name == "fnn_manual":
        return fnn_runner(pb, B, "manual", args.unroll)
    if name == "fnn_autodiff":
        return fnn_runner(pb, B, "autodiff", args.unroll)
    if name == "hand_scan":
        return hand_scan_runner(pb, B, scan_unroll(args, B, pb.x.shape[0]))
    if name == "optax_step":
        return optax_step_runner(pb, B)
    if name == "torch_eager":
        return torch_runner(pb, B, args.slow_iters, args.torch_adam, args.torch_threads)
    if name == "keras_fit":
        return keras_runner(pb, B, args.slow_iters)
    raise ValueError(name)


def scan_unroll(args, batch_size: int, n: int) -> int:
    """The hand-written scan's unroll: ``--scan-unroll``, else the one fit uses, so the two
    compiled loops differ only by what fit adds."""
    if args.scan_unroll is not None:
        return args.scan_unroll
    if args.unroll is not None:
        return args.unroll
    default = getattr(fnn.train, "_default_unroll", None)
    return int(default(batch_size, n)) if callable(default) else 1


def _available(name: str) -> str | None:
    """Why runner ``name`` cannot run here (a missing package), or None."""
    pkg = {"hand_scan": "optax", "optax_step": "optax", "torch_eager": "torch", "keras_fit": "keras"}.get(name)
    if pkg is None:
        return None
    if pkg == "keras":
        os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        __import__(pkg)
    except Exception as e:  # noqa: BLE001 - any import failure means "skip, and say why"
        return f"{pkg} not importable ({type(e).__name__}: {e})"
    return None


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def build_parser():
    p = C.parser(__doc__.split("\n")[0])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32, 128, 1024])
    p.add_argument("--n", type=int, default=12800, help="training samples per epoch")
    p.add_argument("--features", type=int, default=784)
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--dtype", default="float32", choices=sorted(C.DTYPES))
    p.add_argument("--runners", default=",".join(ALL_RUNNERS),
                   help="comma-separated subset of " + ",".join(ALL_RUNNERS))
    p.add_argument("--unroll", type=int, default=None, help="fit's unroll (default: fit's own choice)")
    p.add_argument("--scan-unroll", type=int, default=None,
                   help="unroll of the hand-written scan (default: the same as fit's)")
    p.add_argument("--slow-iters", type=int, default=1000,
                   help="iterations per round for PyTorch and Keras when an epoch has more")
    p.add_argument("--torch-adam", default="fused", choices=["fused", "foreach", "default"])
    p.add_argument("--torch-threads", type=int, default=0,
                   help="torch.set_num_threads (0: PyTorch's default, one per core)")
    p.add_argument("--peak-size", type=int, default=2048, help="matmul size of the peak measurement")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.n, args.hidden, args.features = min(args.n, 512), [32], min(args.features, 64)
        args.batch_sizes = [b for b in args.batch_sizes if b <= 32] or [32]
        args.slow_iters, args.peak_size = min(args.slow_iters, 32), min(args.peak_size, 256)
    n_rounds = C.rounds(args)
    dtype = C.dtype_of(args.dtype)
    wanted = [r.strip() for r in args.runners.split(",") if r.strip()]
    unknown = sorted(set(wanted) - set(ALL_RUNNERS))
    if unknown:
        raise SystemExit(f"--runners: unknown {unknown}; known: {list(ALL_RUNNERS)}")
    skipped = {name: why for name in wanted if (why := _available(name))}
    names = [n for n in wanted if n not in skipped]

    x, y = C.synthetic_classification(args.n, args.features, args.classes, args.seed)
    sizes = (args.features, *args.hidden, args.classes)
    pb = Problem(sizes, x, y, dtype, 1e-3, args.seed)
    flops = C.mlp_flops_per_sample(sizes)
    peak = C.MatmulPeak(args.peak_size, dtype)
    peak.measure()

    info = C.machine_info()
    results: list[dict] = []
    for B in args.batch_sizes:
        runners: dict[str, Runner] = {}
        for name in names:
            try:
                r = _make_runner(name, pb, B, args)
                r.run()  # compile / warm up
                runners[name] = r
            except Exception as e:  # noqa: BLE001 - a broken baseline is reported, not fatal
                skipped[f"{name}@{B}"] = f"{type(e).__name__}: {e}"
        times = C.interleaved({k: r.run for k, r in runners.items()}, n_rounds, peak.measure)
        for name, r in runners.items():
            t = C.median(times[name])
            sps = r.samples / t
            results.append({"batch_size": B, "runner": name, "detail": r.detail, "samples": r.samples,
                            "iterations": r.iterations, "seconds": times[name], "median_s": t,
                            "samples_per_s": sps, "us_per_iter": 1e6 * t / r.iterations,
                            "flops_per_s": sps * flops, "note": r.note})
        print(f"batch {B}: done", file=sys.stderr, flush=True)
    for row in results:
        row["pct_peak"] = 100.0 * row["flops_per_s"] / peak.best

    targets = evaluate_targets(results)
    payload = {"benchmark": "train_throughput", "machine": info, "args": vars(args),
               "sizes": sizes, "flops_per_sample": flops, "peak_flops": peak.best,
               "peak_matmul": f"{args.peak_size}x{args.peak_size} {args.dtype}", "rounds": n_rounds,
               "results": results, "targets": targets, "skipped": skipped}
    print(report(payload))
    C.write_json(args.json, payload)
    return payload


def _sps(results, B, name):
    for r in results:
        if r["batch_size"] == B and r["runner"] == name:
            return r["samples_per_s"]
    return None


def evaluate_targets(results: list[dict]) -> list[dict]:
    """The issue's targets that this run can check: measured ratio, target, verdict."""
    out = []

    def add(what, B, ratio, target, higher_is_better=True):
        if ratio is None:
            return
        ok = ratio >= target if higher_is_better else ratio <= target
        out.append({"batch_size": B, "target": what, "measured": ratio, "goal": target, "met": ok})

    batches = sorted({r["batch_size"] for r in results})
    for B in batches:
        fm = _sps(results, B, "fnn_manual")
        if fm is None:
            continue
        for tb, base, goal in TARGETS:
            if tb == B and (b := _sps(results, B, base)):
                add(f"fnn / {LABELS[base]} >= {goal:g}x", B, fm / b, goal)
        if B in BEST_BASELINE_BATCHES:
            bases = [(_sps(results, B, b), b) for b in BASELINES if _sps(results, B, b)]
            if bases:
                best, bname = max(bases)
                add(f"fnn / best baseline ({LABELS[bname]}) >= 1x", B, fm / best, 1.0)
        if (hs := _sps(results, B, "hand_scan")):
            add("fnn / hand scan >= 1x", B, fm / hs, 1.0)
        if (ad := _sps(results, B, "fnn_autodiff")):
            add("manual time / autodiff time <= 1", B, ad / fm, 1.0, higher_is_better=False)
        if B in PEAK_TARGET:
            pct = next(r["pct_peak"] for r in results if r["batch_size"] == B and r["runner"] == "fnn_manual")
            add(f"fnn % of matmul peak >= {PEAK_TARGET[B]:g}", B, pct, PEAK_TARGET[B])
    return out


def report(payload: dict) -> str:
    results = payload["results"]
    lines = [f"## train_throughput — MLP {'-'.join(map(str, payload['sizes']))}, Adam, "
             f"N={payload['args']['n']}, {payload['args']['dtype']}, median of {payload['rounds']} rounds",
             "", C.machine_line(payload["machine"]),
             f"matmul peak ({payload['peak_matmul']}, best seen): {payload['peak_flops'] / 1e9:.1f} GFLOP/s; "
             f"{payload['flops_per_sample'] / 1e6:.3f} MFLOP per sample (6W - 2W1)", ""]
    rows = []
    for r in results:
        fm = _sps(results, r["batch_size"], "fnn_manual")
        label = LABELS[r["runner"]] + (f" ({r['detail']})" if r.get("detail") else "")
        rows.append([r["batch_size"], label + (" †" if r["note"] else ""),
                     r["samples_per_s"], r["us_per_iter"], r["flops_per_s"] / 1e9, r["pct_peak"],
                     None if fm is None else fm / r["samples_per_s"]])
    lines.append(C.markdown_table(
        ["batch", "runner", "samples/s", "µs/iter", "GFLOP/s", "% peak", "fnn manual ×"], rows))
    notes = sorted({f"{LABELS[r['runner']]} @ {r['batch_size']}: {r['note']}" for r in results if r["note"]})
    if notes:
        lines += ["", "† timed on a fixed subset of the epoch: " + "; ".join(notes)]
    if payload["targets"]:
        lines += ["", C.markdown_table(
            ["batch", "target", "measured", "met"],
            [[t["batch_size"], t["target"], t["measured"], "yes" if t["met"] else "**NO**"]
             for t in payload["targets"]])]
    if payload["skipped"]:
        lines += ["", "Skipped: " + "; ".join(f"{k} ({v})" for k, v in payload["skipped"].items())]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
