"""Throughput of ``fnn.fit`` as the MLP's width, depth and the batch size grow.

One axis varies at a time around a base configuration (width 256, depth 2, batch 128; ReLU,
Adam, softmax cross-entropy, 784 inputs, 10 classes): samples/s of one fit epoch (after
compilation, median of the rounds), GFLOP/s at ``6W - 2W1`` FLOP per sample, and % of the
matmul peak measured between rounds. Each configuration trains on enough synthetic samples
for about ``--epoch-gflop`` GFLOP per epoch (between one batch and ``--max-n`` samples).

The default sizes are trimmed to run in a few minutes on a small CPU; ``--full`` sweeps
width 64..4096 and depth 1..8 and batch 1..4096 in full (powers of two).

    python -m benchmarks.scaling [--quick | --full] [--json out.json] [--dtype bfloat16]
"""

from __future__ import annotations

import math
import sys

import jax
import jax.numpy as jnp

import fnn
from benchmarks import _common as C

FULL = {
    "widths": [64, 128, 256, 512, 1024, 2048, 4096],
    "depths": [1, 2, 3, 4, 5, 6, 7, 8],
    "batch_sizes": [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096],
}


def samples_for(flops_per_sample: float, batch: int, args) -> int:
    """Training samples for one epoch of about ``args.epoch_gflop`` GFLOP: a whole number of
    batches, at least ``args.min_iters`` of them (so the step, not fit's set-up, is what is
    timed) and at most ``args.max_n`` samples and ``args.max_iters`` iterations."""
    n = int(args.epoch_gflop * 1e9 / flops_per_sample)
    n = min(n, args.max_n, args.max_iters * batch)
    return max(args.min_iters * batch, (n // batch) * batch)


def runner(width: int, depth: int, batch: int, args, dtype):
    sizes = (args.features, *([width] * depth), args.classes)
    flops = C.mlp_flops_per_sample(sizes)
    n = samples_for(flops, batch, args)
    x, y = C.synthetic_classification(n, args.features, args.classes, args.seed)
    x, y = jnp.asarray(x, dtype), jnp.asarray(y)
    net = fnn.mlp(list(sizes[1:]), activation="relu")
    opt = fnn.optimizers.adam(1e-3)
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    state = {
        "params": C.cast_tree(net.init(jax.random.PRNGKey(args.seed), (args.features,), dtype), dtype),
        "opt_state": None,
        "epoch": 0,
    }
    key = jax.random.PRNGKey(args.seed + 1)

    def run():
        e = state["epoch"]
        r = fnn.fit(
            net,
            state["params"],
            opt,
            loss,
            x,
            y,
            batch_size=batch,
            epochs=e + 1,
            initial_epoch=e,
            shuffle=True,
            key=key,
            verbose=0,
            grad=args.grad,
            opt_state=state["opt_state"],
        )
        state.update(params=r.params, opt_state=r.opt_state, epoch=e + 1)
        C.block(r.params)

    run()  # compile; then fit's resume path (a given opt_state) for zero epochs, so nothing
    # compiles inside the timed calls
    fnn.fit(
        net,
        state["params"],
        opt,
        loss,
        x,
        y,
        batch_size=batch,
        epochs=state["epoch"],
        initial_epoch=state["epoch"],
        key=key,
        verbose=0,
        grad=args.grad,
        opt_state=state["opt_state"],
    )
    return run, n, flops


def configs(args) -> list[tuple[str, int, int, int]]:
    out = [("width", w, args.depth, args.batch) for w in args.widths]
    out += [("depth", args.width, d, args.batch) for d in args.depths]
    out += [("batch", args.width, args.depth, b) for b in args.batch_sizes]
    return out


def build_parser():
    p = C.parser(__doc__.split("\n")[0])
    p.add_argument("--widths", type=int, nargs="+", default=[64, 256, 1024, 4096])
    p.add_argument("--depths", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32, 128, 1024, 4096])
    p.add_argument(
        "--full",
        action="store_true",
        help="the full sweeps (" + "; ".join(f"{k} {v[0]}..{v[-1]}" for k, v in FULL.items()) + ")",
    )
    p.add_argument("--width", type=int, default=256, help="width while depth or batch varies")
    p.add_argument("--depth", type=int, default=2, help="depth while width or batch varies")
    p.add_argument("--batch", type=int, default=128, help="batch while width or depth varies")
    p.add_argument("--features", type=int, default=784)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--epoch-gflop", type=float, default=15.0, help="work per timed epoch")
    p.add_argument("--max-n", type=int, default=12800, help="most samples per epoch")
    p.add_argument("--max-iters", type=int, default=4000, help="most iterations per epoch")
    p.add_argument("--min-iters", type=int, default=4, help="fewest iterations per epoch")
    p.add_argument("--grad", default="manual", choices=["manual", "autodiff"])
    p.add_argument("--dtype", default="float32", choices=sorted(C.DTYPES))
    p.add_argument("--peak-size", type=int, default=2048, help="matmul size of the peak measurement")
    return p


def main(argv: list[str] | None = None) -> dict:
    p = build_parser()
    args = p.parse_args(argv)
    if args.full:
        args.widths, args.depths, args.batch_sizes = FULL["widths"], FULL["depths"], FULL["batch_sizes"]
    C.quick_defaults(
        p,
        args,
        widths=[16, 32],
        depths=[1, 2],
        batch_sizes=[1, 16],
        width=16,
        depth=1,
        batch=16,
        features=32,
        epoch_gflop=0.001,
        max_n=256,
        min_iters=1,
        peak_size=256,
    )
    n_rounds = C.rounds(args)
    dtype = C.dtype_of(args.dtype)
    peak = C.MatmulPeak(args.peak_size, dtype)
    peak.measure()
    results, measured = [], {}
    for axis, w, d, b in configs(args):
        if (w, d, b) not in measured:  # the base configuration sits on every axis: measure it once
            run, n, flops = runner(w, d, b, args, dtype)
            times = C.interleaved({"fit": run}, n_rounds, peak.measure)["fit"]
            t = C.median(times)
            measured[w, d, b] = {
                "n": n,
                "iterations": math.ceil(n / b),
                "median_s": t,
                "samples_per_s": n / t,
                "flops_per_s": n * flops / t,
                "times": times,
            }
            print(f"width {w} depth {d} batch {b}: done", file=sys.stderr, flush=True)
        results.append({"axis": axis, "width": w, "depth": d, "batch": b, **measured[w, d, b]})
    for r in results:
        r["pct_peak"] = 100.0 * r["flops_per_s"] / peak.best
    return C.finish(
        "scaling",
        args,
        report,
        rounds=n_rounds,
        peak_flops=peak.best,
        peak_matmul=f"{args.peak_size}x{args.peak_size} {args.dtype}",
        results=results,
    )


def report(payload: dict) -> str:
    a = payload["args"]
    lines = [
        f"## scaling — fnn.fit ({a['grad']} gradients, Adam, {a['dtype']}), median of {payload['rounds']} rounds",
        "",
        C.machine_line(payload["machine"]),
        f"matmul peak ({payload['peak_matmul']}, best seen): {payload['peak_flops'] / 1e9:.1f} GFLOP/s; "
        f"base: width {a['width']}, depth {a['depth']}, batch {a['batch']}; {a['features']} inputs, "
        f"{a['classes']} classes",
    ]
    for axis in ("width", "depth", "batch"):
        rows = [
            [r[axis], r["n"], r["samples_per_s"], r["flops_per_s"] / 1e9, r["pct_peak"]]
            for r in payload["results"]
            if r["axis"] == axis
        ]
        if rows:
            lines += [
                "",
                f"By {axis}:",
                "",
                C.markdown_table([axis, "samples/epoch", "samples/s", "GFLOP/s", "% peak"], rows),
            ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
