"""K small models in one compiled program (``fnn.fit_many``) vs K separate ``fnn.fit`` runs.

    python -m benchmarks.sweep [--ks 1,2,4,8,16,32,64] [--samples 2048] [--epochs 2] [--json PATH]

Every model is the same small MLP (``--features`` -> ``--hidden`` -> 10, tanh, sparse CE from
logits, Adam) on the same synthetic data, each with its own initial weights, learning rate and
shuffling key, as a learning-rate/seed sweep has. The baseline is the best case of a loop over
``fit``: every fit after the first reuses the compiled epoch (the learning rate is set in the
optimizer state, so nothing recompiles), so K separate fits cost K times one fit. The sweep
trains K models in ``fit_many``'s single vmapped program. Both are compiled before timing;
the first-call (compile) time of the K-model program is reported beside.

Per-model time = (time of the K-model call) / K; speedup = (one fit) / (per-model sweep time),
medians over interleaved rounds.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

import fnn
from benchmarks import _common


def main(argv: list[str] | None = None) -> dict:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--ks", default="1,2,4,8,16,32,64", help="comma-separated numbers of models")
    p.add_argument("--samples", type=int, default=2048)
    p.add_argument("--features", type=int, default=32)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args(argv)
    ks = [int(k) for k in args.ks.split(",")]
    if args.quick:
        ks, args.samples, args.epochs = [k for k in ks if k <= 4] or [1], 256, 1
    if min(ks) < 1:
        raise SystemExit("--ks must be positive")
    n_rounds = _common.rounds(args)

    x, y = _common.synthetic_classification(args.samples, args.features, 10, seed=args.seed)
    net = fnn.mlp([args.hidden, 10], activation="tanh")
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    opt = fnn.optimizers.adam(1e-3)
    settings = dict(batch_size=args.batch_size, epochs=args.epochs)
    kmax = max(ks)
    keys = jax.random.split(jax.random.PRNGKey(args.seed), 2 * kmax)
    inits = [net.init(keys[i], (args.features,)) for i in range(kmax)]
    lrs = np.geomspace(1e-4, 1e-2, kmax)
    states = [fnn.optimizers.set_learning_rate(opt.init(q), float(lr)) for q, lr in zip(inits, lrs, strict=True)]
    stack = lambda trees: jax.tree.map(lambda *a: jnp.stack(a), *trees)

    def one_fit():
        r = fnn.fit(net, inits[0], opt, loss, x, y, key=keys[kmax], opt_state=states[0], verbose=0, **settings)
        _common.block(r.params)

    def sweep_of(k):
        params, state, key = stack(inits[:k]), stack(states[:k]), keys[kmax : kmax + k]

        def run():
            r = fnn.fit_many(net, params, opt, loss, x, y, key=key, opt_state=state, **settings)
            _common.block(r.params)

        return run

    runners = {"fit": one_fit}
    compile_s = {}
    t0 = time.perf_counter()
    one_fit()
    compile_s["fit"] = time.perf_counter() - t0
    for k in ks:
        runners[f"K={k}"] = sweep_of(k)
        t0 = time.perf_counter()
        runners[f"K={k}"]()  # compiles
        compile_s[f"K={k}"] = time.perf_counter() - t0
    times = _common.interleaved(runners, n_rounds)
    fit_s = _common.median(times["fit"])

    info = _common.machine_info()
    print(
        f"# Sweep: K models in one program vs K separate fits ({args.samples} x {args.features} -> "
        f"{args.hidden} -> 10, batch {args.batch_size}, {args.epochs} epochs, Adam)\n"
    )
    print(_common.machine_line(info) + "\n")
    rows, records = [], []
    for k in ks:
        total = _common.median(times[f"K={k}"])
        per_model = total / k
        rows.append((k, total, per_model * 1e3, fit_s * 1e3, k * fit_s, fit_s / per_model, compile_s[f"K={k}"]))
        records.append(
            {
                "k": k,
                "sweep_seconds": total,
                "per_model_seconds": per_model,
                "separate_fit_seconds": fit_s,
                "separate_total_seconds": k * fit_s,
                "speedup": fit_s / per_model,
                "first_call_seconds": compile_s[f"K={k}"],
            }
        )
    print(
        _common.markdown_table(
            ["K", "sweep (s)", "per model (ms)", "one fit (ms)", "K fits (s)", "speedup", "sweep 1st call (s)"], rows
        )
    )
    best = max(records, key=lambda r: r["speedup"])
    print(
        f"\nbest: K={best['k']} trains each model {best['speedup']:.1f}x faster than a separate fit "
        f"(one fit {fit_s * 1e3:.1f} ms; its first call, compiling, took {compile_s['fit']:.2f} s)"
    )
    payload = {
        "benchmark": "sweep",
        "machine": info,
        "samples": args.samples,
        "features": args.features,
        "hidden": args.hidden,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "rounds": n_rounds,
        "fit_first_call_seconds": compile_s["fit"],
        "rows": records,
    }
    _common.write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main()
