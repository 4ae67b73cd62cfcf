"""What every benchmark shares: the command line, interleaved timing, the matmul peak, the
MLP FLOP count, synthetic data, Markdown tables and the JSON record."""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


# --------------------------------------------------------------------------------------------
# Command line and output
# --------------------------------------------------------------------------------------------


def parser(description: str) -> argparse.ArgumentParser:
    """An ArgumentParser with the options every benchmark takes."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    p.add_argument("--quick", action="store_true", help="a fast smoke run: tiny sizes, 1 round")
    p.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="timed rounds (the median is reported); default 3 (train_throughput: 5), 1 with --quick",
    )
    p.add_argument("--seed", type=int, default=0)
    return p


def quick_defaults(p: argparse.ArgumentParser, args: argparse.Namespace, **small) -> None:
    """With ``--quick``, the options the user left at their defaults take the ``small`` values."""
    if args.quick:
        for k, v in small.items():
            if getattr(args, k) == p.get_default(k):
                setattr(args, k, v)


def rounds(args: argparse.Namespace, default: int = 3) -> int:
    r = args.rounds if args.rounds is not None else (1 if args.quick else default)
    if r < 1:
        raise SystemExit("--rounds must be >= 1")
    return r


def dtype_of(name: str):
    try:
        return DTYPES[name]
    except KeyError:
        raise SystemExit(f"--dtype must be one of {sorted(DTYPES)}, got {name!r}") from None


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub Markdown table; floats get a width-appropriate number of digits."""
    rows = [list(r) for r in rows]
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    # Text columns read best left-aligned, numbers right-aligned.
    text = [any(isinstance(r[i], str) for r in rows) for i in range(len(headers))]
    pad = lambda c, w, t: c.ljust(w) if t else c.rjust(w)
    line = lambda r: "| " + " | ".join(pad(c, w, t) for c, w, t in zip(r, widths, text, strict=True)) + " |"
    sep = (
        "|"
        + "|".join((":" + "-" * (w + 1)) if t else ("-" * (w + 1) + ":") for w, t in zip(widths, text, strict=True))
        + "|"
    )
    return "\n".join([line(headers), sep] + [line(r) for r in cells])


def _fmt(c: Any) -> str:
    if c is None:
        return "-"
    if isinstance(c, float):
        if not math.isfinite(c):
            return str(c)
        a = abs(c)
        if a == 0:
            return "0"
        if a >= 1e5:
            return f"{c:,.0f}"
        if a >= 100:
            return f"{c:.0f}"
        if a >= 10:
            return f"{c:.1f}"
        if a >= 0.01:
            return f"{c:.2f}"
        return f"{c:.1e}"
    return str(c)


def machine_info() -> dict[str, Any]:
    """The machine and software a result was measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    dev = jax.devices()[0]
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "jax": jax.__version__,
        # ml_dtypes' import time moves every JAX process's start by up to ~1 s (pyproject.toml)
        "ml_dtypes": ml_dtypes.__version__,
        "backend": jax.default_backend(),
        "device": getattr(dev, "device_kind", str(dev)),
        "python": platform.python_version(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def machine_line(info: dict[str, Any]) -> str:
    load = info.get("loadavg")
    load = f", load average {load[0]:.2f} at start" if load else ""
    return (
        f"{info['date']} · {info['cpu']} · nproc {info['nproc']} · JAX {info['jax']}, "
        f"ml_dtypes {info.get('ml_dtypes', '?')} ({info['backend']}: {info['device']}){load}"
    )


def finish(
    name: str, args: argparse.Namespace, report: Callable[[dict], str], *, machine: dict | None = None, **fields: Any
) -> dict[str, Any]:
    """Every benchmark's ending: the payload (name, machine, arguments and ``fields``), its
    Markdown ``report`` printed, and the JSON written when ``--json`` asked for it."""
    payload = {
        "benchmark": name,
        "machine": machine_info() if machine is None else machine,
        "args": vars(args),
        **fields,
    }
    print(report(payload))
    write_json(args.json, payload)
    return payload


def write_json(path: str | None, payload: dict[str, Any]) -> None:
    if path:
        d = os.path.dirname(os.path.abspath(path))
        os.makedirs(d, exist_ok=True)
        with open(path, "w") as f:
            json.dump(payload, f, indent=1, default=_json_default)


def _json_default(o):
    if isinstance(o, (np.generic,)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------


def block(tree) -> None:
    """Waits for every array in ``tree`` (asynchronous dispatch would otherwise hide the work)."""
    jax.block_until_ready(tree)


def interleaved(
    runners: dict[str, Callable[[], Any]],
    n_rounds: int,
    between: Callable[[], None] | None = None,
    warmup: bool = False,
) -> dict[str, list[float]]:
    """Seconds per call of each runner over ``n_rounds`` rounds; in each round every runner runs
    once, starting one runner later than the round before (so none always follows the same
    neighbour), and ``between`` runs after each round (e.g. the peak measurement).

    A runner does its own blocking: it returns only when its work is done. ``warmup`` runs
    every runner once, untimed, first. The garbage collector runs before each timed call, not
    during it.
    """
    names = list(runners)
    if warmup:
        for n in names:
            runners[n]()
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(n_rounds):
        order = names[r % len(names) :] + names[: r % len(names)] if names else []
        for n in order:
            times[n].append(_timed(runners[n]))
        if between is not None:
            between()
    return times


def _timed(fn: Callable[[], Any]) -> float:
    """Seconds of one call, garbage collected before and not during it (as ``timeit`` does), so
    one runner's garbage never pauses another's timing."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    finally:
        if enabled:
            gc.enable()


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


# --------------------------------------------------------------------------------------------
# Hardware peak and FLOPs
# --------------------------------------------------------------------------------------------


class MatmulPeak:
    """The best FLOP/s seen for an ``n x n @ n x n`` matmul of random operands in ``dtype``.

    ``measure()`` is cheap (a few matmuls) and is meant to run between timing rounds: the best
    of all measurements is the machine's peak as far as this process can tell.
    """

    def __init__(self, n: int = 2048, dtype=jnp.float32, reps: int = 3, seed: int = 0):
        self.n, self.reps, self.dtype = n, reps, dtype
        ka, kb = jax.random.split(jax.random.PRNGKey(seed))
        self.a = jax.random.normal(ka, (n, n), jnp.float32).astype(dtype)
        self.b = jax.random.normal(kb, (n, n), jnp.float32).astype(dtype)
        self.fn = jax.jit(lambda a, b: a @ b)
        block(self.fn(self.a, self.b))
        self.best = 0.0

    def measure(self) -> float:
        flops = 2.0 * self.n**3
        for _ in range(self.reps):
            t0 = time.perf_counter()
            block(self.fn(self.a, self.b))
            self.best = max(self.best, flops / (time.perf_counter() - t0))
        return self.best


def mlp_flops_per_sample(sizes: Sequence[int]) -> float:
    """Training FLOPs per sample of a dense MLP with layer sizes ``sizes`` (input first):
    ``6 W - 2 W1`` — forward 2W, weight gradients 2W, input gradients 2W except the first
    layer's, which nothing needs. Biases and activations are left out (they are O(units))."""
    ws = [a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    return 6.0 * sum(ws) - 2.0 * ws[0]


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def synthetic_classification(
    n: int, features: int = 784, classes: int = 10, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-shaped synthetic data: float32 pixels in [0, 1) and int32 labels that depend on
    them (a random linear teacher), so the loss actually falls."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, features), dtype=np.float32)
    teacher = rng.standard_normal((features, classes)).astype(np.float32)
    y = np.argmax((x - 0.5) @ teacher, axis=1).astype(np.int32)
    return x, y


def step_scaled(tree, i):
    """``tree`` times ``1 + 1e-7 i``: a scan step's input that differs per step ``i``, so that XLA
    cannot hoist the work out of the loop, while the numbers stay those of step 0."""
    scale = (1 + 1e-7 * i).astype(jnp.float32)
    return jax.tree.map(lambda a: a * scale.astype(a.dtype), tree)


def cast_tree(tree, dtype):
    """Floating leaves of ``tree`` as ``dtype`` (other leaves untouched)."""
    return jax.tree.map(lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)
