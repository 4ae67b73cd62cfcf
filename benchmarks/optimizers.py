"""Update-step time of each fnn optimizer against optax's on a ~10M-parameter pytree.

The pytree is the parameter list of an MLP 784-2048-2048-2048-10 (10.0M parameters, float32,
7 leaves). One step is ``updates, state = opt.update(grads, state, params);
params = apply_updates(params, updates)`` jitted with ``params`` and ``state`` donated, as a
training loop runs it. Each pair (fnn, optax with the same hyperparameters) is timed in
interleaved rounds of ``--calls`` steps; the median step time is reported. The two libraries
follow different conventions for some rules (fnn follows torch.optim), so the work per
element differs slightly, as the table notes.

    python -m benchmarks.optimizers [--quick] [--json out.json] [--only adam,sgd]
"""

from __future__ import annotations

import functools
import sys

import jax
import jax.numpy as jnp
import numpy as np

import fnn
from benchmarks import _common as C


def pairs():
    """name -> (fnn optimizer, optax optimizer or None, note)."""
    import optax

    return {
        "sgd": (fnn.optimizers.sgd(1e-2), optax.sgd(1e-2), ""),
        "momentum": (fnn.optimizers.momentum(1e-2, 0.9), optax.sgd(1e-2, momentum=0.9), ""),
        "nesterov": (fnn.optimizers.nesterov(1e-2, 0.9), optax.sgd(1e-2, momentum=0.9, nesterov=True), ""),
        "adagrad": (fnn.optimizers.adagrad(1e-2), optax.adagrad(1e-2, eps=1e-10), ""),
        "rmsprop": (fnn.optimizers.rmsprop(1e-2), optax.rmsprop(1e-2, decay=0.99, eps=1e-8), ""),
        "adadelta": (fnn.optimizers.adadelta(1.0), optax.adadelta(1.0, rho=0.9, eps=1e-6), ""),
        "adam": (fnn.optimizers.adam(1e-3), optax.adam(1e-3), ""),
        "adamw": (fnn.optimizers.adamw(1e-3), optax.adamw(1e-3, weight_decay=1e-2), ""),
        "adamax": (fnn.optimizers.adamax(2e-3), optax.adamax(2e-3), ""),
        "nadam": (
            fnn.optimizers.nadam(2e-3),
            optax.nadam(2e-3),
            "fnn: torch's momentum-decay schedule; optax: Dozat's rule",
        ),
        "radam": (fnn.optimizers.radam(1e-3), optax.radam(1e-3), ""),
        "rprop": (fnn.optimizers.rprop(1e-2), optax.rprop(1e-2), ""),
        "lion": (fnn.optimizers.lion(1e-4), optax.lion(1e-4), ""),
    }


def param_tree(sizes, dtype, seed):
    keys = jax.random.split(jax.random.PRNGKey(seed), 2 * (len(sizes) - 1))
    tree = []
    for i, (fi, fo) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        tree.append(
            {
                "w": (0.02 * jax.random.normal(keys[2 * i], (fi, fo), jnp.float32)).astype(dtype),
                "b": (0.02 * jax.random.normal(keys[2 * i + 1], (fo,), jnp.float32)).astype(dtype),
            }
        )
    return tree


def stepper(opt, apply_updates, params, grads, calls: int):
    """A runner doing ``calls`` donated update steps from its own copy of params and state."""

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(p, s, g):
        updates, s = opt.update(g, s, p)
        return apply_updates(p, updates), s

    state = {"p": jax.tree.map(jnp.copy, params)}
    state["s"] = opt.init(state["p"])

    def run():
        p, s = state["p"], state["s"]
        for _ in range(calls):
            p, s = step(p, s, grads)
        state["p"], state["s"] = p, s
        C.block(p)

    run()  # compile
    return run


def build_parser():
    p = C.parser(__doc__.split("\n")[0])
    p.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[784, 2048, 2048, 2048, 10],
        help="layer sizes of the MLP whose parameter tree is updated",
    )
    p.add_argument("--calls", type=int, default=5, help="steps per timed round")
    p.add_argument("--only", default="", help="comma-separated optimizer names (default: all)")
    p.add_argument("--dtype", default="float32", choices=sorted(C.DTYPES))
    return p


def main(argv: list[str] | None = None) -> dict:
    p = build_parser()
    args = p.parse_args(argv)
    C.quick_defaults(p, args, sizes=[32, 64, 10], calls=2)
    n_rounds = C.rounds(args)
    dtype = C.dtype_of(args.dtype)
    try:
        table = pairs()
    except ImportError as e:
        raise SystemExit(f"optimizers benchmark needs optax (pip install optax): {e}") from None
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(table))
    if unknown:
        raise SystemExit(f"--only: unknown {unknown}; known: {sorted(table)}")
    names = only or list(table)

    import optax

    def setup():
        params = param_tree(args.sizes, dtype, args.seed)
        grads = jax.tree.map(
            lambda p: (1e-3 * jax.random.normal(jax.random.PRNGKey(1), p.shape)).astype(p.dtype), params
        )
        return params, grads

    # --quick: the set-up as one compiled program, not one per random draw and leaf shape (most of
    # a quick run's time); its numbers may differ from the eager draws' in the last bits
    params, grads = (jax.jit(setup) if args.quick else setup)()
    n_params = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))
    results = []
    for name in names:
        f_opt, o_opt, note = table[name]
        runners = {
            "fnn": stepper(f_opt, fnn.optimizers.apply_updates, params, grads, args.calls),
            "optax": stepper(o_opt, optax.apply_updates, params, grads, args.calls),
        }
        times = C.interleaved(runners, n_rounds)
        t = {k: C.median(v) / args.calls for k, v in times.items()}
        results.append(
            {
                "optimizer": name,
                "fnn_s": t["fnn"],
                "optax_s": t["optax"],
                "speedup": t["optax"] / t["fnn"],
                "note": note,
                "times": times,
            }
        )
        del runners
        print(f"{name}: done", file=sys.stderr, flush=True)
    return C.finish(
        "optimizers",
        args,
        report,
        n_params=n_params,
        leaves=len(jax.tree.leaves(params)),
        rounds=n_rounds,
        results=results,
    )


def report(payload: dict) -> str:
    a = payload["args"]
    rows = [
        [r["optimizer"], r["fnn_s"] * 1e3, r["optax_s"] * 1e3, r["speedup"], r["note"] or None]
        for r in payload["results"]
    ]
    return "\n".join(
        [
            f"## optimizers — one update step on {payload['n_params']:,} parameters in {payload['leaves']} leaves "
            f"(MLP {'-'.join(map(str, a['sizes']))}, {a['dtype']}), median of {payload['rounds']} rounds "
            f"of {a['calls']} steps",
            "",
            C.machine_line(payload["machine"]),
            "",
            C.markdown_table(["optimizer", "fnn ms", "optax ms", "optax / fnn", "note"], rows),
        ]
    )


if __name__ == "__main__":
    main()
