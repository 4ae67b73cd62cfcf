"""Hand-written backward vs ``jax.grad``: time per gradient and max relative difference.

For MLPs of several widths, depths and batch sizes (ReLU hidden layers, softmax cross-entropy
on logits), ``fnn.value_and_grad(net, loss, mode)`` with ``mode="manual"`` and
``mode="autodiff"`` are each compiled into a loop of ``--steps`` gradient evaluations on
different batches (the gradients summed, so nothing is hoisted out of the loop and dispatch
costs nothing), timed in interleaved rounds, median reported. The difference is
``max |g_manual - g_autodiff| / max |g_autodiff|`` over every leaf, on one batch.

    python -m benchmarks.grad [--quick] [--json out.json] [--widths ...] [--depths ...] [--batches ...]
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np

import fnn
from benchmarks import _common as C

MODES = ("manual", "autodiff")


def grad_loop(net, loss, mode: str, steps: int, batch: int):
    """Jitted ``(params, x, y) -> (summed loss, summed grads)`` over ``steps`` batches."""
    vg = fnn.value_and_grad(net, loss, mode)

    @jax.jit
    def loop(params, x, y):
        def body(carry, i):
            xb = jax.lax.dynamic_slice_in_dim(x, i * batch, batch)
            yb = jax.lax.dynamic_slice_in_dim(y, i * batch, batch)
            value, g = vg(params, xb, yb)
            return jax.tree.map(jnp.add, carry, (value, g)), None

        zero = jax.eval_shape(lambda: vg(params, x[:batch], y[:batch]))
        zero = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), zero)
        return jax.lax.scan(body, zero, jnp.arange(steps))[0]

    return loop


def max_rel_diff(a, b) -> float:
    """``max |a - b| / max |b|`` over all leaves of two pytrees (compared in float64 on the host)."""
    la = [np.asarray(t, np.float64) for t in jax.tree.leaves(a)]
    lb = [np.asarray(t, np.float64) for t in jax.tree.leaves(b)]
    num = max(float(np.max(np.abs(x - y))) for x, y in zip(la, lb, strict=True))
    den = max(float(np.max(np.abs(y))) for y in lb)
    return num / den if den > 0 else num


def measure(width: int, depth: int, batch: int, args, dtype) -> dict:
    sizes = (args.features, *([width] * depth), args.classes)
    net = fnn.mlp(list(sizes[1:]), activation="relu")
    params = C.cast_tree(net.init(jax.random.PRNGKey(args.seed), (args.features,), dtype), dtype)
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    steps = max(1, min(args.steps, args.max_samples // batch))
    x, y = C.synthetic_classification(steps * batch, args.features, args.classes, args.seed)
    x, y = jnp.asarray(x, dtype), jnp.asarray(y)

    loops = {m: grad_loop(net, loss, m, steps, batch) for m in MODES}
    outs = {m: loops[m](params, x, y) for m in MODES}  # compile, and keep for the comparison
    C.block(outs)
    one = {m: jax.jit(fnn.value_and_grad(net, loss, m))(params, x[:batch], y[:batch])[1] for m in MODES}
    times = C.interleaved({m: (lambda m=m: C.block(loops[m](params, x, y))) for m in MODES}, args.n_rounds, warmup=True)
    t = {m: C.median(times[m]) / steps for m in MODES}
    flops = C.mlp_flops_per_sample(sizes) * batch
    return {
        "width": width,
        "depth": depth,
        "batch": batch,
        "steps": steps,
        "manual_s": t["manual"],
        "autodiff_s": t["autodiff"],
        "ratio": t["manual"] / t["autodiff"],
        "manual_gflops": flops / t["manual"] / 1e9,
        "rel_diff": max_rel_diff(one["manual"], one["autodiff"]),
        "times": times,
    }


def build_parser():
    p = C.parser(__doc__.split("\n")[0])
    p.add_argument("--widths", type=int, nargs="+", default=[64, 256, 1024, 2048])
    p.add_argument("--depths", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 32, 256, 2048])
    p.add_argument("--width", type=int, default=256, help="width while depth or batch varies")
    p.add_argument("--depth", type=int, default=2, help="depth while width or batch varies")
    p.add_argument("--batch", type=int, default=128, help="batch while width or depth varies")
    p.add_argument("--grid", action="store_true", help="every (width, depth, batch), not one axis at a time")
    p.add_argument("--features", type=int, default=784)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--steps", type=int, default=64, help="gradients per timed loop")
    p.add_argument("--max-samples", type=int, default=16384, help="cap on steps * batch")
    p.add_argument("--dtype", default="float32", choices=sorted(C.DTYPES))
    return p


def configs(args) -> list[tuple[int, int, int]]:
    if args.grid:
        return [(w, d, b) for w in args.widths for d in args.depths for b in args.batches]
    out = [(w, args.depth, args.batch) for w in args.widths]
    out += [(args.width, d, args.batch) for d in args.depths]
    out += [(args.width, args.depth, b) for b in args.batches]
    seen, uniq = set(), []
    for c in out:
        if c not in seen:
            seen.add(c)
            uniq.append(c)
    return uniq


def main(argv: list[str] | None = None) -> dict:
    p = build_parser()
    args = p.parse_args(argv)
    C.quick_defaults(
        p, args, widths=[16, 32], depths=[1, 2], batches=[1, 8], width=16, depth=1, batch=8, features=32, steps=4
    )
    args.n_rounds = C.rounds(args)
    dtype = C.dtype_of(args.dtype)
    results = []
    for w, d, b in configs(args):
        results.append(measure(w, d, b, args, dtype))
        print(f"width {w} depth {d} batch {b}: done", file=sys.stderr, flush=True)
    return C.finish("grad", args, report, results=results)


def report(payload: dict) -> str:
    a = payload["args"]
    rows = [
        [
            r["width"],
            r["depth"],
            r["batch"],
            r["manual_s"] * 1e6,
            r["autodiff_s"] * 1e6,
            r["ratio"],
            r["manual_gflops"],
            r["rel_diff"],
        ]
        for r in payload["results"]
    ]
    worst = max((r["ratio"] for r in payload["results"]), default=float("nan"))
    return "\n".join(
        [
            f"## grad — hand-written backward vs jax.grad ({a['dtype']}, input {a['features']}, "
            f"{a['classes']} classes, median of {a['n_rounds']} rounds)",
            "",
            C.machine_line(payload["machine"]),
            "",
            C.markdown_table(
                [
                    "width",
                    "depth",
                    "batch",
                    "manual µs",
                    "autodiff µs",
                    "manual / autodiff",
                    "manual GFLOP/s",
                    "max rel diff",
                ],
                rows,
            ),
            "",
            f"Largest manual/autodiff time ratio: {worst:.3f} (target <= 1.0 at every size).",
        ]
    )


if __name__ == "__main__":
    main()
