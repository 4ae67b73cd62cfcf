"""Where the time of one fit step goes: the gradient, the optimizer update, and the memory floor.

``train_throughput`` times whole epochs; this script splits fnn's step (MLP 784-256-256-10,
softmax cross-entropy, N = 12800 by default) into parts, each compiled on its own and timed in
the same interleaved rounds (median, µs per step):

* ``fit, adam`` / ``fit, sgd``: one ``fnn.fit`` epoch (manual gradient) per call, divided by its
  iterations, as ``train_throughput`` times it. SGD's update is the cheapest there is (one pass
  over the parameters), so this is about the gradient's own cost;
* ``adam alone`` / ``sgd alone``: ``opt.update`` + ``apply_updates`` in a jitted, donated
  ``lax.scan`` of as many steps (at least ``--min-steps``, so that one dispatch costs nothing)
  over a fixed gradient tree (the network's gradient on the first batch, scaled per step so
  nothing is hoisted) — the update without the network;
* ``memory floor``: the same scan rewriting three parameter-sized buffers in place
  (``p, m, v <- s * (p, m, v)``: 3 reads + 3 writes per element), the least memory traffic of any
  update rule with two state buffers, such as Adam's.

The derived lines give the gradient (``fit, sgd`` minus ``sgd alone``) and Adam's share of the
``fit, adam`` step, which bounds what any gradient, however fast, can gain at that batch size.

    python -m benchmarks.breakdown [--quick] [--json out.json] [--batch-sizes 1 32 1024]
"""

from __future__ import annotations

import functools
import math
import sys

import jax
import jax.numpy as jnp

import fnn
from benchmarks import _common as C
from benchmarks._baselines import Problem
from benchmarks.train_throughput import fnn_model, fnn_runner

PARTS = ("fit, adam", "fit, sgd", "adam alone", "sgd alone", "memory floor")


def update_scan(opt, params, grads, steps: int):
    """A runner doing ``steps`` donated updates of ``opt`` over ``grads`` scaled by
    ``1 + 1e-7 i`` (i = 0, 1, ... within a call), and its ``[params, state]``, updated by each run."""

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def scan(params, state, grads):
        def body(carry, i):
            p, s = carry
            u, s = opt.update(C.step_scaled(grads, i), s, p)
            return (fnn.optimizers.apply_updates(p, u), s), None

        return jax.lax.scan(body, (params, state), jnp.arange(steps))[0]

    carry = [jax.tree.map(jnp.copy, params), opt.init(params)]

    def run():
        carry[:] = scan(*carry, grads)
        C.block(carry)

    return run, carry


def floor_scan(params, steps: int):
    """A runner: ``steps`` in-place rescalings of three copies of ``params`` (3 R + 3 W each)."""

    @functools.partial(jax.jit, donate_argnums=0)
    def scan(bufs):
        def body(bufs, i):
            return C.step_scaled(bufs, i), None

        return jax.lax.scan(body, bufs, jnp.arange(steps))[0]

    carry = [tuple(jax.tree.map(jnp.copy, params) for _ in range(3))]

    def run():
        carry[0] = scan(carry[0])
        C.block(carry)

    return run


def first_batch_grads(pb: Problem, batch_size: int):
    net, params, loss = fnn_model(pb)
    # jitted: one compilation, not one per operation (this is set-up, never timed)
    _, g = jax.jit(fnn.value_and_grad(net, loss, "manual"))(
        params, jnp.asarray(pb.x[:batch_size], pb.dtype), jnp.asarray(pb.y[:batch_size])
    )
    return params, g


def build_parser():
    p = C.parser(__doc__.split("\n")[0])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32, 1024])
    p.add_argument("--n", type=int, default=12800, help="training samples per epoch")
    p.add_argument("--features", type=int, default=784)
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--dtype", default="float32", choices=sorted(C.DTYPES))
    p.add_argument("--min-steps", type=int, default=1000, help="least steps per call of the scans without a network")
    return p


def main(argv: list[str] | None = None) -> dict:
    p = build_parser()
    args = p.parse_args(argv)
    C.quick_defaults(p, args, n=256, hidden=[32], features=64, batch_sizes=[1, 32], min_steps=4)
    n_rounds = C.rounds(args, default=5)
    dtype = C.dtype_of(args.dtype)
    x, y = C.synthetic_classification(args.n, args.features, args.classes, args.seed)
    sizes = (args.features, *args.hidden, args.classes)
    pb = Problem(sizes, x, y, dtype, 1e-3, args.seed)
    info = C.machine_info()
    results: list[dict] = []
    for B in args.batch_sizes:
        iterations = math.ceil(args.n / B)
        alone = max(iterations, args.min_steps)
        params, grads = first_batch_grads(pb, B)
        runners = {
            "fit, adam": fnn_runner(pb, B, "manual", None).run,
            "fit, sgd": fnn_runner(pb, B, "manual", None, fnn.optimizers.sgd(1e-2)).run,
            "adam alone": update_scan(fnn.optimizers.adam(pb.lr), params, grads, alone)[0],
            "sgd alone": update_scan(fnn.optimizers.sgd(1e-2), params, grads, alone)[0],
            "memory floor": floor_scan(params, alone),
        }
        times = C.interleaved(runners, n_rounds, warmup=True)
        for part in PARTS:
            t = C.median(times[part])
            steps = iterations if part.startswith("fit") else alone
            results.append(
                {
                    "batch_size": B,
                    "part": part,
                    "steps": steps,
                    "seconds": times[part],
                    "median_s": t,
                    "us_per_step": 1e6 * t / steps,
                }
            )
        print(f"batch {B}: done", file=sys.stderr, flush=True)
    return C.finish(
        "breakdown",
        args,
        report,
        machine=info,
        sizes=sizes,
        rounds=n_rounds,
        parameters=sum(int(a.size) for a in jax.tree.leaves(params)),
        results=results,
        derived=derive(results),
    )


def _us(results, B, part):
    return next(r["us_per_step"] for r in results if r["batch_size"] == B and r["part"] == part)


def derive(results: list[dict]) -> list[dict]:
    """Per batch size: the gradient's cost and Adam's share of the fit step."""
    out = []
    for B in sorted({r["batch_size"] for r in results}):
        step = _us(results, B, "fit, adam")
        out.append(
            {
                "batch_size": B,
                "step_us": step,
                "gradient_us": _us(results, B, "fit, sgd") - _us(results, B, "sgd alone"),
                "adam_us": _us(results, B, "adam alone"),
                "adam_share": _us(results, B, "adam alone") / step,
                "floor_us": _us(results, B, "memory floor"),
            }
        )
    return out


def report(payload: dict) -> str:
    results = payload["results"]
    lines = [
        f"## breakdown — MLP {'-'.join(map(str, payload['sizes']))} ({payload['parameters']:,} "
        f"parameters), {payload['args']['dtype']}, N={payload['args']['n']}, median of "
        f"{payload['rounds']} rounds",
        "",
        C.machine_line(payload["machine"]),
        "",
    ]
    rows = [
        [
            r["batch_size"],
            r["part"],
            r["us_per_step"],
            100.0 * r["us_per_step"] / _us(results, r["batch_size"], "fit, adam"),
        ]
        for r in results
    ]
    lines.append(C.markdown_table(["batch", "part", "µs/step", "% of fit, adam"], rows))
    lines += [
        "",
        C.markdown_table(
            [
                "batch",
                "fit, adam µs",
                "gradient µs (fit, sgd − sgd alone)",
                "adam alone µs",
                "adam share",
                "memory floor µs",
            ],
            [
                [d["batch_size"], d["step_us"], d["gradient_us"], d["adam_us"], d["adam_share"], d["floor_us"]]
                for d in payload["derived"]
            ],
        ),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
