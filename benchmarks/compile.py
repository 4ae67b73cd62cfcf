"""First-call latency of a ``fnn.fit`` epoch and of ``fnn.train_step``.

For the MLP 784-256-256-10 with Adam at several batch sizes: a ``fit(epochs=1)`` with new
network, loss and optimizer objects (so nothing is cached) is timed on its first call and on
its second; the difference is what compiling the epoch costs. JAX's own compile events split
it into tracing + lowering and XLA compilation. A warm-up fit with other objects of the same
shapes runs first (not with ``--quick``), so one-time process costs (JAX's start-up, the permutation's kernels) are
not counted. The same for ``train_step`` (one batch), and for the hand-written ``lax.scan``
epoch of ``benchmarks.train_throughput`` when optax is installed, as a reference. The fit target
(< 2 s) is checked on the compile events' total.

    python -m benchmarks.compile [--quick] [--json out.json] [--batch-sizes 1 32 128 1024]
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import time

import jax
import jax.numpy as jnp

import fnn
from benchmarks import _common as C

TRACE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration")
XLA_EVENT = "/jax/core/compile/backend_compile_duration"
FIT_TARGET_S = 2.0


@contextlib.contextmanager
def compile_events():
    """Collects JAX's compile-duration events inside the block: ``{"trace": s, "xla": s}``."""
    acc = {"trace": 0.0, "xla": 0.0}

    def listener(event: str, duration: float, **_):
        if event in TRACE_EVENTS:
            acc["trace"] += duration
        elif event == XLA_EVENT:
            acc["xla"] += duration

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield acc
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def first_and_second(fn) -> dict:
    """Wall time of ``fn``'s first and second call, and the compile events of the first."""
    with compile_events() as ev:
        t0 = time.perf_counter()
        fn()
        first = time.perf_counter() - t0
    t0 = time.perf_counter()
    fn()
    second = time.perf_counter() - t0
    return {
        "first_s": first,
        "second_s": second,
        "extra_s": first - second,
        "trace_s": ev["trace"],
        "xla_s": ev["xla"],
        "compile_s": ev["trace"] + ev["xla"],
    }


def problem(sizes, n, seed, dtype):
    x, y = C.synthetic_classification(n, sizes[0], sizes[-1], seed)
    return jnp.asarray(x, dtype), jnp.asarray(y)


_FRESH = [0]


def fresh(sizes, dtype, seed):
    """New network, loss and optimizer objects: nothing compiled for them yet. fnn caches
    compiled programs on structure (an equal network reuses them), so each call names its layers
    anew: a network never seen before, with the same shapes."""
    _FRESH[0] += 1
    net = fnn.mlp(list(sizes[1:]), activation="relu", name=f"dense{_FRESH[0]}")
    params = net.init(jax.random.PRNGKey(seed), (sizes[0],), dtype)
    return net, params, fnn.optimizers.adam(1e-3), fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)


def fit_latency(sizes, x, y, batch: int, grad: str, unroll, dtype, seed, warmup: bool = True) -> dict:
    def once():
        net, params, opt, loss = fresh(sizes, dtype, seed)
        return lambda: C.block(
            fnn.fit(
                net,
                params,
                opt,
                loss,
                x,
                y,
                batch_size=batch,
                epochs=1,
                key=jax.random.PRNGKey(seed),
                verbose=0,
                grad=grad,
                unroll=unroll,
            ).params
        )

    if warmup:
        once()()  # warm-up: same shapes, other objects
    return first_and_second(once())


def step_latency(sizes, x, y, batch: int, grad: str, dtype, seed, warmup: bool = True) -> dict:
    xb, yb = x[:batch], y[:batch]

    def once():
        net, params, opt, loss = fresh(sizes, dtype, seed)
        step = fnn.train_step(net, loss, opt, grad)
        state = {"p": params, "s": opt.init(params)}

        def call():
            state["p"], state["s"], value = step(state["p"], state["s"], xb, yb)
            C.block(value)

        return call

    if warmup:
        once()()
    return first_and_second(once())


def scan_latency(sizes, x, y, batch: int, unroll: int, dtype, seed, warmup: bool = True) -> dict:
    from benchmarks._baselines import Problem, hand_scan_runner

    pb = Problem(tuple(sizes), jax.device_get(x), jax.device_get(y), dtype, 1e-3, seed)
    if warmup:
        hand_scan_runner(pb, batch, unroll).run()
    return first_and_second(hand_scan_runner(pb, batch, unroll).run)


def build_parser():
    p = C.parser(__doc__.split("\n")[0])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32, 128, 1024])
    p.add_argument("--sizes", type=int, nargs="+", default=[784, 256, 256, 10], help="MLP layer sizes")
    p.add_argument("--n", type=int, default=12800)
    p.add_argument("--grads", nargs="+", default=["manual", "autodiff"], choices=["manual", "autodiff"])
    p.add_argument("--unroll", type=int, default=None, help="fit's unroll (default: fit's own choice)")
    p.add_argument("--dtype", default="float32", choices=sorted(C.DTYPES))
    return p


def main(argv: list[str] | None = None) -> dict:
    p = build_parser()
    args = p.parse_args(argv)
    C.quick_defaults(p, args, sizes=[32, 16, 10], n=256, batch_sizes=[1, 32], grads=["manual"])
    dtype = C.dtype_of(args.dtype)
    x, y = problem(args.sizes, args.n, args.seed, dtype)
    have_optax = importlib.util.find_spec("optax") is not None
    # --quick: no warm-up compilations (their one-time costs land in the first calls, whose
    # numbers mean nothing at these sizes anyway)
    warmup = not args.quick
    from benchmarks.train_throughput import scan_unroll

    results = []
    for B in args.batch_sizes:
        for grad in args.grads:
            results.append(
                {
                    "what": "fit epoch",
                    "batch": B,
                    "grad": grad,
                    **fit_latency(args.sizes, x, y, B, grad, args.unroll, dtype, args.seed, warmup),
                }
            )
            results.append(
                {
                    "what": "train_step",
                    "batch": B,
                    "grad": grad,
                    **step_latency(args.sizes, x, y, B, grad, dtype, args.seed, warmup),
                }
            )
        if have_optax:
            u = scan_unroll(B, args.n, args.unroll)
            results.append(
                {
                    "what": f"hand scan epoch (unroll {u})",
                    "batch": B,
                    "grad": "jax.grad",
                    **scan_latency(args.sizes, x, y, B, u, dtype, args.seed, warmup),
                }
            )
        print(f"batch {B}: done", file=sys.stderr, flush=True)
    return C.finish("compile", args, report, results=results, fit_target_s=FIT_TARGET_S)


def report(payload: dict) -> str:
    a = payload["args"]
    rows = []
    for r in payload["results"]:
        met = None
        if r["what"] == "fit epoch":
            met = "yes" if r["compile_s"] < payload["fit_target_s"] else "**NO**"
        rows.append(
            [
                r["what"],
                r["batch"],
                r["grad"],
                r["first_s"],
                r["second_s"],
                r["extra_s"],
                r["trace_s"],
                r["xla_s"],
                r["compile_s"],
                met,
            ]
        )
    return "\n".join(
        [
            f"## compile — first-call latency, MLP {'-'.join(map(str, a['sizes']))}, Adam, N={a['n']}, {a['dtype']}",
            "",
            C.machine_line(payload["machine"]),
            "",
            C.markdown_table(
                [
                    "what",
                    "batch",
                    "grad",
                    "first call s",
                    "second call s",
                    "first - second s",
                    "trace+lower s",
                    "XLA compile s",
                    "compile s",
                    f"< {payload['fit_target_s']:g} s",
                ],
                rows,
            ),
            "",
            "compile s = trace+lower + XLA compile, from JAX's compile events during the first call; "
            "first - second also holds the run-to-run noise of one epoch.",
        ]
    )


if __name__ == "__main__":
    main()
