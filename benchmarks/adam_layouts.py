"""Adam's state laid out other ways: what XLA:CPU makes of them (the layouts fnn did not adopt).

At batch 1 Adam is most of fnn's step (see ``breakdown``). Other layouts promise fewer passes
over the state, or passes that stay in cache, and this script measures them against fnn's own
(one ``p``, ``m``, ``v`` array per
leaf), each compiled on its own and timed in interleaved rounds (median, µs per step):

* the update alone, on one flat buffer of the MLP's parameter count, in a ``lax.scan`` of
  ``--steps`` steps: ``separate`` (``p``, ``m``, ``v`` three arrays, as fnn keeps them),
  ``stacked m,v`` (``p`` and one ``(2, n)`` array, so that one fusion could write both moments)
  and ``stacked p,m,v`` (one ``(3, n)`` array); and a control that is not Adam, ``separate, no
  sqrt/div``: the same passes with the square root and the division replaced by multiplications,
  which measures what the FP divider (IEEE ``sqrt`` and ``/``, one each per element) costs; and
  ``chunked``: fnn's layout updated in place one ``--chunk``-element slice at a time
  (``fori_loop`` of ``dynamic_update_slice``), so that each slice's three passes hit the cache;
* a whole batch-1 training epoch (MLP 784-256-256-10, ``jax.grad``, softmax cross-entropy, unroll
  2) with the state ``per leaf`` against ``flat`` (parameters, ``m`` and ``v`` each one flat
  buffer, the layers sliced out of it and the gradient concatenated into it), the optimizer
  update fused over all leaves at once.

    python -m benchmarks.adam_layouts [--quick] [--json out.json]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import _common as C

B1, B2, LR, EPS = 0.9, 0.999, 1e-3, 1e-8


def _moments(g, m, v):
    return B1 * m + (1 - B1) * g, B2 * v + (1 - B2) * g * g


def adam(g, p, m, v, t):
    """Adam in fnn's arithmetic (one division per element), step ``t`` counted from 1."""
    m, v = _moments(g, m, v)
    inv_bc = 1 / jnp.sqrt(1 - B2**t)
    return p - LR / (1 - B1**t) * m / (jnp.sqrt(v) * inv_bc + EPS), m, v


def adam_without_sqrt_div(g, p, m, v, t):
    """A control, not an optimizer: :func:`adam`'s passes and memory traffic with ``sqrt`` and
    ``/`` replaced by ``*``, so that its time against Adam's is the cost of those two operations."""
    m, v = _moments(g, m, v)
    inv_bc = 1 / jnp.sqrt(1 - B2**t)
    return p - LR / (1 - B1**t) * m * (v * inv_bc + EPS), m, v


def update_layouts(n: int, steps: int, seed: int, chunk: int) -> dict:
    """name -> (jitted donated scan, initial carry) for the update alone on ``n`` elements."""
    G = jax.random.normal(jax.random.PRNGKey(seed), (n,), jnp.float32)
    t_of = lambda i: (i + 1).astype(jnp.float32)

    def separate(c, i):
        return adam(C.step_scaled(G, i), *c, t_of(i)), None

    def control(c, i):
        return adam_without_sqrt_div(C.step_scaled(G, i), *c, t_of(i)), None

    npad = -(-n // chunk) * chunk  # the chunked layout pads its buffers to whole chunks

    def chunked(c, i):
        g = jnp.pad(C.step_scaled(G, i), (0, npad - n))

        def one_chunk(k, c):
            piece = lambda a: jax.lax.dynamic_slice(a, (k * chunk,), (chunk,))
            new = adam(piece(g), *map(piece, c), t_of(i))
            return tuple(jax.lax.dynamic_update_slice(a, u, (k * chunk,)) for a, u in zip(c, new, strict=True))

        return jax.lax.fori_loop(0, npad // chunk, one_chunk, c), None

    def stacked_mv(c, i):
        p, m, v = adam(C.step_scaled(G, i), c[0], c[1][0], c[1][1], t_of(i))
        return (p, jnp.stack([m, v])), None

    def stacked_pmv(c, i):
        return jnp.stack(adam(C.step_scaled(G, i), c[0], c[1], c[2], t_of(i))), None

    # Fresh buffers for every call: the scans donate them.
    z, o = lambda: jnp.zeros(n), lambda: jnp.ones(n)
    bodies = {
        "separate": (separate, lambda: (z(), z(), o())),
        "stacked m,v": (stacked_mv, lambda: (z(), jnp.stack([z(), o()]))),
        "stacked p,m,v": (stacked_pmv, lambda: jnp.stack([z(), z(), o()])),
        "separate, no sqrt/div": (control, lambda: (z(), z(), o())),
        f"chunked ({chunk})": (chunked, lambda: (jnp.zeros(npad), jnp.zeros(npad), jnp.ones(npad))),
    }
    return {
        name: (jax.jit(lambda c, body=body: jax.lax.scan(body, c, jnp.arange(steps))[0], donate_argnums=0), init)
        for name, (body, init) in bodies.items()
    }


def epoch_layouts(sizes, n: int, seed: int) -> dict:
    """name -> (jitted donated batch-1 epoch over ``n`` samples, initial carry)."""
    key = jax.random.PRNGKey(seed)
    x = jax.random.uniform(key, (n, 1, sizes[0]))
    y = jax.nn.one_hot(jax.random.randint(jax.random.fold_in(key, 1), (n, 1), 0, sizes[-1]), sizes[-1])
    params = [
        (0.05 * jax.random.normal(jax.random.fold_in(key, 2 + i), (a, b)), jnp.zeros(b))
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True))
    ]

    def loss(ps, xb, yb):
        for w, b in ps[:-1]:
            xb = jax.nn.relu(xb @ w + b)
        w, b = ps[-1]
        return -jnp.mean(jnp.sum(jax.nn.log_softmax(xb @ w + b) * yb, -1))

    leaves, tdef = jax.tree.flatten(params)
    offsets = np.cumsum([0] + [a.size for a in leaves])

    def unflat(P):
        return jax.tree.unflatten(
            tdef, [P[a:b].reshape(s.shape) for a, b, s in zip(offsets[:-1], offsets[1:], leaves, strict=True)]
        )

    def flat(tree):
        return jnp.concatenate([a.reshape(-1) for a in jax.tree.leaves(tree)])

    def per_leaf(c, xy):
        ps, ms, vs, t = c
        g = jax.grad(loss)(ps, *xy)
        new = [
            adam(*a, t + 1)
            for a in zip(jax.tree.leaves(g), jax.tree.leaves(ps), jax.tree.leaves(ms), jax.tree.leaves(vs), strict=True)
        ]
        ps, ms, vs = (jax.tree.unflatten(tdef, [u[k] for u in new]) for k in range(3))
        return (ps, ms, vs, t + 1), None

    def flat_buffer(c, xy):
        P, M, V, t = c
        P, M, V = adam(flat(jax.grad(loss)(unflat(P), *xy)), P, M, V, t + 1)
        return (P, M, V, t + 1), None

    zeros = lambda tree: jax.tree.map(jnp.zeros_like, tree)
    copy = lambda tree: jax.tree.map(jnp.copy, tree)
    epochs = {
        "per leaf": (per_leaf, lambda: (copy(params), zeros(params), zeros(params), jnp.float32(0))),
        "flat": (flat_buffer, lambda: (flat(params), *zeros((flat(params), flat(params))), jnp.float32(0))),
    }
    return {
        name: (jax.jit(lambda c, body=body: jax.lax.scan(body, c, (x, y), unroll=2)[0], donate_argnums=0), init)
        for name, (body, init) in epochs.items()
    }, unflat


def _max_abs_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def runner(fn, init):
    carry = [fn(init())]  # compiled here
    C.block(carry)

    def run():
        carry[0] = fn(carry[0])
        C.block(carry)

    return run


def build_parser():
    p = C.parser(__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[784, 256, 256, 10])
    p.add_argument("--steps", type=int, default=2000, help="update steps per call (update alone)")
    p.add_argument("--n", type=int, default=2560, help="samples (= steps) of the batch-1 epoch")
    p.add_argument("--chunk", type=int, default=65536, help="elements per slice of the chunked update")
    return p


def main(argv: list[str] | None = None) -> dict:
    p = build_parser()
    args = p.parse_args(argv)
    C.quick_defaults(p, args, sizes=[16, 8, 4], steps=8, n=16, chunk=64)
    n_rounds = C.rounds(args, default=5)
    sizes = tuple(args.sizes)
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    info = C.machine_info()
    results = []
    epochs, unflat = epoch_layouts(sizes, args.n, args.seed)
    # The two epochs train the same network: their parameters after one epoch agree. (Compared
    # on the host: the same numbers, without an eager program compiled per leaf shape.)
    a = epochs["per leaf"][0](epochs["per leaf"][1]())[0]
    b = unflat(np.asarray(epochs["flat"][0](epochs["flat"][1]())[0]))
    max_diff = max(_max_abs_diff(u, w) for u, w in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))
    updates = update_layouts(n_params, args.steps, args.seed, args.chunk)
    # The chunked update is the separate one, slice by slice: the same parameters after a call.
    a = updates["separate"][0](updates["separate"][1]())[0]
    b = np.asarray(updates[f"chunked ({args.chunk})"][0](updates[f"chunked ({args.chunk})"][1]())[0])[:n_params]
    chunked_diff = _max_abs_diff(a, b)
    for what, layouts, steps in [("update alone", updates, args.steps), ("batch-1 epoch", epochs, args.n)]:
        times = C.interleaved({k: runner(*v) for k, v in layouts.items()}, n_rounds)
        base = C.median(times[next(iter(layouts))])
        for name in layouts:
            t = C.median(times[name])
            results.append(
                {
                    "what": what,
                    "layout": name,
                    "steps": steps,
                    "seconds": times[name],
                    "us_per_step": 1e6 * t / steps,
                    "vs_fnn_layout": t / base,
                }
            )
    return C.finish(
        "adam_layouts",
        args,
        report,
        machine=info,
        sizes=sizes,
        parameters=n_params,
        rounds=n_rounds,
        results=results,
        epoch_max_abs_diff=max_diff,
        chunked_max_abs_diff=chunked_diff,
    )


def report(payload: dict) -> str:
    lines = [
        f"## adam_layouts — Adam over {payload['parameters']:,} float32 parameters "
        f"(MLP {'-'.join(map(str, payload['sizes']))}), median of {payload['rounds']} rounds",
        "",
        C.machine_line(payload["machine"]),
        "",
        C.markdown_table(
            ["what", "layout", "µs/step", "time × fnn's layout"],
            [[r["what"], r["layout"], r["us_per_step"], r["vs_fnn_layout"]] for r in payload["results"]],
        ),
        "",
        f"Per-leaf and flat epochs agree to {payload['epoch_max_abs_diff']:.1e} (max |Δparam| after one epoch); "
        f"separate and chunked updates to {payload['chunked_max_abs_diff']:.1e} (after one call).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
