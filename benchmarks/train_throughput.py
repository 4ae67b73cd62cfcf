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

import math
import os
import sys

import jax
import jax.numpy as jnp

import fnn
from benchmarks import _common as C
from benchmarks._baselines import Problem, Runner, hand_scan_runner, keras_runner, optax_step_runner, torch_runner

ALL_RUNNERS = ("fnn_manual", "fnn_autodiff", "hand_scan", "optax_step", "torch_eager", "keras_fit")
LABELS = {
    "fnn_manual": "fnn manual",
    "fnn_autodiff": "fnn autodiff",
    "hand_scan": "hand scan",
    "optax_step": "optax step",
    "torch_eager": "torch eager",
    "keras_fit": "keras fit",
}
BASELINES = ("hand_scan", "optax_step", "torch_eager", "keras_fit")

# (batch size, baseline, minimum speed-up of fnn manual) from the issue.
TARGETS = [
    (1, "torch_eager", 10.0),
    (1, "keras_fit", 5.0),
    (1, "optax_step", 3.0),
    (32, "optax_step", 1.5),
    (32, "torch_eager", 2.0),
    (32, "keras_fit", 2.0),
]
BEST_BASELINE_BATCHES = (128, 1024)
PEAK_TARGET = {1024: 80.0}


# --------------------------------------------------------------------------------------------
# Runners
# --------------------------------------------------------------------------------------------


def fnn_model(pb: Problem):
    """The problem's network (ReLU MLP of ``pb.sizes``), its initial params and its loss."""
    net = fnn.mlp(list(pb.sizes[1:]), activation="relu")
    params = net.init(jax.random.PRNGKey(pb.seed), (pb.sizes[0],), pb.dtype)
    return net, params, fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)


def fnn_runner(pb: Problem, batch_size: int, grad: str, unroll: int | None, opt=None) -> Runner:
    """One ``fnn.fit`` epoch per call (Adam with the problem's learning rate unless ``opt``)."""
    net, params, loss = fnn_model(pb)
    opt = fnn.optimizers.adam(pb.lr) if opt is None else opt
    x, y = jnp.asarray(pb.x, pb.dtype), jnp.asarray(pb.y)
    key = jax.random.PRNGKey(pb.seed + 1)
    state = {"params": params, "opt_state": None, "epoch": 0}
    epoch_times: list[float] = []

    def run():
        # Epoch e of a resumed run: a fresh permutation every call, as in a multi-epoch fit.
        e = state["epoch"]
        r = fnn.fit(
            net,
            state["params"],
            opt,
            loss,
            x,
            y,
            batch_size=batch_size,
            epochs=e + 1,
            initial_epoch=e,
            shuffle=True,
            key=key,
            verbose=0,
            grad=grad,
            unroll=unroll,
            opt_state=state["opt_state"],
        )
        state.update(params=r.params, opt_state=r.opt_state, epoch=e + 1)
        C.block(r.params)
        epoch_times.append(r.history.times[-1])
        if e == 0:
            # The set-up call: also run fit's resume path (a given opt_state) for zero epochs, so
            # its small eager kernels are compiled before timing starts.
            fnn.fit(
                net,
                r.params,
                opt,
                loss,
                x,
                y,
                batch_size=batch_size,
                epochs=1,
                initial_epoch=1,
                key=key,
                verbose=0,
                grad=grad,
                unroll=unroll,
                opt_state=r.opt_state,
            )

    n = pb.x.shape[0]
    return Runner(run, n, math.ceil(n / batch_size), epoch_times=epoch_times)


def _make_runner(name: str, pb: Problem, B: int, args) -> Runner:
    if name == "fnn_manual":
        return fnn_runner(pb, B, "manual", args.unroll)
    if name == "fnn_autodiff":
        return fnn_runner(pb, B, "autodiff", args.unroll)
    if name == "hand_scan":
        return hand_scan_runner(pb, B, scan_unroll(B, pb.x.shape[0], args.unroll, args.scan_unroll))
    if name == "optax_step":
        return optax_step_runner(pb, B)
    if name == "torch_eager":
        return torch_runner(pb, B, args.slow_iters, args.torch_adam, args.torch_threads)
    if name == "keras_fit":
        return keras_runner(pb, B, args.slow_iters)
    raise ValueError(name)


def scan_unroll(batch_size: int, n: int, unroll: int | None = None, scan_unroll: int | None = None) -> int:
    """The hand-written scan's unroll: ``scan_unroll`` if given, else the one fit uses (``unroll``
    or fit's default), so the two compiled loops differ only by what fit adds."""
    if scan_unroll is not None:
        return scan_unroll
    if unroll is not None:
        return unroll
    from fnn.train._epoch import default_unroll  # fit's own rule (internal: benchmarks mirror it)

    return default_unroll(batch_size, n)


def _available(name: str) -> str | None:
    """Why runner ``name`` cannot run here (a missing package), or None."""
    pkg = {"hand_scan": "optax", "optax_step": "optax", "torch_eager": "torch", "keras_fit": "keras"}.get(name)
    if pkg is None:
        return None
    if pkg == "keras":
        os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        __import__(pkg)
    except Exception as e:
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
    p.add_argument(
        "--runners", default=",".join(ALL_RUNNERS), help="comma-separated subset of " + ",".join(ALL_RUNNERS)
    )
    p.add_argument("--unroll", type=int, default=None, help="fit's unroll (default: fit's own choice)")
    p.add_argument(
        "--scan-unroll", type=int, default=None, help="unroll of the hand-written scan (default: the same as fit's)"
    )
    p.add_argument(
        "--slow-iters", type=int, default=1000, help="iterations per round for PyTorch and Keras when an epoch has more"
    )
    p.add_argument("--torch-adam", default="fused", choices=["fused", "foreach", "default"])
    p.add_argument(
        "--torch-threads", type=int, default=0, help="torch.set_num_threads (0: PyTorch's default, one per core)"
    )
    p.add_argument("--peak-size", type=int, default=2048, help="matmul size of the peak measurement")
    return p


def main(argv: list[str] | None = None) -> dict:
    p = build_parser()
    args = p.parse_args(argv)
    C.quick_defaults(p, args, n=512, hidden=[32], features=64, batch_sizes=[1, 32], slow_iters=32, peak_size=256)
    n_rounds = C.rounds(args, default=5)
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
            except Exception as e:
                skipped[f"{name}@{B}"] = f"{type(e).__name__}: {e}"
        times = C.interleaved({k: r.run for k, r in runners.items()}, n_rounds, peak.measure)
        for name, r in runners.items():
            t = C.median(times[name])
            sps = r.samples / t
            row = {
                "batch_size": B,
                "runner": name,
                "detail": r.detail,
                "samples": r.samples,
                "iterations": r.iterations,
                "seconds": times[name],
                "median_s": t,
                "samples_per_s": sps,
                "us_per_iter": 1e6 * t / r.iterations,
                "flops_per_s": sps * flops,
                "note": r.note,
            }
            if r.epoch_times is not None:
                # What one more epoch costs inside a multi-epoch fit: fit's own per-call set-up
                # (input checks, optimizer init) left out.
                row["epoch_only_s"] = C.median(r.epoch_times[-n_rounds:])
                row["epoch_only_samples_per_s"] = r.samples / row["epoch_only_s"]
            results.append(row)
        print(f"batch {B}: done", file=sys.stderr, flush=True)
    for row in results:
        row["pct_peak"] = 100.0 * row["flops_per_s"] / peak.best

    targets = evaluate_targets(results)
    return C.finish(
        "train_throughput",
        args,
        report,
        machine=info,
        sizes=sizes,
        flops_per_sample=flops,
        peak_flops=peak.best,
        peak_matmul=f"{args.peak_size}x{args.peak_size} {args.dtype}",
        rounds=n_rounds,
        results=results,
        targets=targets,
        skipped=skipped,
    )


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
        if hs := _sps(results, B, "hand_scan"):
            add("fnn / hand scan >= 1x", B, fm / hs, 1.0)
        if ad := _sps(results, B, "fnn_autodiff"):
            add("manual time / autodiff time <= 1", B, ad / fm, 1.0, higher_is_better=False)
        if B in PEAK_TARGET:
            pct = next(r["pct_peak"] for r in results if r["batch_size"] == B and r["runner"] == "fnn_manual")
            add(f"fnn % of matmul peak >= {PEAK_TARGET[B]:g}", B, pct, PEAK_TARGET[B])
    return out


def report(payload: dict) -> str:
    results = payload["results"]
    lines = [
        f"## train_throughput — MLP {'-'.join(map(str, payload['sizes']))}, Adam, "
        f"N={payload['args']['n']}, {payload['args']['dtype']}, median of {payload['rounds']} rounds",
        "",
        C.machine_line(payload["machine"]),
        f"matmul peak ({payload['peak_matmul']}, best seen): {payload['peak_flops'] / 1e9:.1f} GFLOP/s; "
        f"{payload['flops_per_sample'] / 1e6:.3f} MFLOP per sample (6W - 2W1)",
        "",
    ]
    rows = []
    for r in results:
        fm = _sps(results, r["batch_size"], "fnn_manual")
        label = LABELS[r["runner"]] + (f" ({r['detail']})" if r.get("detail") else "")
        rows.append(
            [
                r["batch_size"],
                label + (" †" if r["note"] else ""),
                r["samples_per_s"],
                r["us_per_iter"],
                r["flops_per_s"] / 1e9,
                r["pct_peak"],
                None if fm is None else fm / r["samples_per_s"],
            ]
        )
    lines.append(
        C.markdown_table(["batch", "runner", "samples/s", "µs/iter", "GFLOP/s", "% peak", "fnn manual ×"], rows)
    )
    inner = [
        f"{r['batch_size']}: {r['epoch_only_samples_per_s']:,.0f}"
        for r in results
        if r["runner"] == "fnn_manual" and "epoch_only_samples_per_s" in r
    ]
    if inner:
        lines += [
            "",
            "fnn manual, the epoch alone (fit's History.times: without fit's per-call set-up, "
            "as each further epoch of a multi-epoch fit costs), samples/s at batch " + "; ".join(inner),
        ]
    notes = sorted({f"{LABELS[r['runner']]} @ {r['batch_size']}: {r['note']}" for r in results if r["note"]})
    if notes:
        lines += ["", "† timed on a fixed subset of the epoch: " + "; ".join(notes)]
    if payload["targets"]:
        lines += [
            "",
            C.markdown_table(
                ["batch", "target", "measured", "met"],
                [
                    [t["batch_size"], t["target"], t["measured"], "yes" if t["met"] else "**NO**"]
                    for t in payload["targets"]
                ],
            ),
        ]
    if payload["skipped"]:
        lines += ["", "Skipped: " + "; ".join(f"{k} ({v})" for k, v in payload["skipped"].items())]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
