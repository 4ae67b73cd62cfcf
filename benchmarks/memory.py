"""Peak resident memory of ``fnn.fit`` + ``fnn.evaluate`` on a large in-memory data set.

    python -m benchmarks.memory [--samples 1000000] [--input numpy|device] [--json PATH]

Trains a small MLP (784 -> 128 -> 10, sparse CE from logits, Adam) for one epoch on
``--samples`` x 784 float32 samples with int32 labels, then evaluates the same data in batches.
The figure of merit is the process's peak resident set size (``VmHWM``, the same number as
``resource.getrusage(...).ru_maxrss``) divided by the size of the data (x and y); the target is
below 2.5x. It is not a timed benchmark: one run is enough.

Peak memory is attributed to phases by resetting the high-water mark between them (writing "5"
to ``/proc/self/clear_refs``, Linux only; elsewhere only the whole-run peak is reported):

* ``baseline``     the interpreter, jax and fnn, before any data exists;
* ``data``         creating the arrays (float32 directly, no float64 temporary);
* ``check_arrays`` fnn's input validation alone (what fit and evaluate run first);
* ``fit``          one epoch;
* ``evaluate``     loss and accuracy over all samples in batches.

``--input device`` moves the arrays to the default device once (``jax.device_put``) and frees
the NumPy copy before training, as a user who "keeps the data on device" would; ``numpy``
(default) passes NumPy arrays, so fit and evaluate each make their own device copy.
"""

from __future__ import annotations

import gc
import resource
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import fnn
from benchmarks import _common

_MIB = 2.0**20


def _status_kib(field: str) -> int | None:
    """A ``/proc/self/status`` field in KiB (VmRSS, VmHWM), or None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_mib() -> float:
    """Resident set size now."""
    kib = _status_kib("VmRSS")
    return float("nan") if kib is None else kib / 1024


def peak_mib() -> float:
    """Peak resident set size since start or the last :func:`reset_peak`."""
    kib = _status_kib("VmHWM")
    if kib is None:  # ru_maxrss: KiB on Linux, bytes on macOS
        r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return r / (_MIB if sys.platform == "darwin" else 1024)
    return kib / 1024


def reset_peak() -> bool:
    """Reset the high-water mark to the current RSS (Linux >= 4.0); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Phases:
    """Records, per phase, the RSS before and the peak RSS during it."""

    def __init__(self):
        self.rows: list[tuple[str, float, float, float]] = []
        self.resettable = reset_peak()

    def run(self, name: str, fn):
        gc.collect()
        before = rss_mib()
        if self.resettable:
            reset_peak()
        t0 = time.perf_counter()
        out = fn()
        jax.block_until_ready(out) if out is not None and not isinstance(out, dict) else None
        seconds = time.perf_counter() - t0
        self.rows.append((name, before, peak_mib(), seconds))
        return out


def main(argv: list[str] | None = None) -> dict:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--samples", type=float, default=1e6, help="number of samples (1e6 = 1,000,000)")
    p.add_argument("--features", type=int, default=784)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument(
        "--input",
        choices=("numpy", "device"),
        default="numpy",
        help="pass NumPy arrays, or move the data to the device once beforehand",
    )
    p.add_argument("--target", type=float, default=2.5, help="allowed peak RSS / data size")
    args = p.parse_args(argv)
    n = int(20_000 if args.quick else args.samples)
    if n < 1:
        raise SystemExit("--samples must be >= 1")

    net = fnn.mlp([args.hidden, args.classes], activation="relu")
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    opt = fnn.optimizers.adam(1e-3)
    key = jax.random.PRNGKey(args.seed)
    params = net.init(key, (args.features,), jnp.float32)

    phases = Phases()
    phases.run("baseline", lambda: None)
    baseline = rss_mib()

    def make_data():
        rng = np.random.default_rng(args.seed)
        x = rng.standard_normal((n, args.features), dtype=np.float32)
        y = rng.integers(0, args.classes, size=n, dtype=np.int32)
        return x, y

    x, y = phases.run("data", make_data)
    data_mib = (x.nbytes + y.nbytes) / _MIB
    if args.input == "device":
        x, y = phases.run("device_put", lambda: (jax.device_put(x), jax.device_put(y)))
        gc.collect()
    phases.run("check_arrays", lambda: (fnn.data.check_arrays(x, y), None)[1])
    result = phases.run(
        "fit",
        lambda: (
            fnn.fit(
                net, params, opt, loss, x, y, batch_size=args.batch_size, epochs=1, shuffle=True, key=key, verbose=0
            ).params
        ),
    )
    scores = phases.run(
        "evaluate", lambda: fnn.evaluate(net, result, loss, x, y, metrics=["accuracy"], batch_size=args.batch_size)
    )

    whole_peak = max(peak_mib(), max(r[2] for r in phases.rows))
    if not phases.resettable:  # only the whole-run peak is meaningful
        whole_peak = peak_mib()
    ratio = whole_peak / data_mib
    net_ratio = (whole_peak - baseline) / data_mib
    # What fnn itself costs: the peak while its functions run (the user's own device_put, which
    # briefly holds both copies, is not fnn's doing).
    fnn_peak = max(r[2] for r in phases.rows if r[0] in ("check_arrays", "fit", "evaluate"))

    info = _common.machine_info()
    print(f"# Peak resident memory: fit + evaluate on {n:,} x {args.features} float32 ({args.input} input)\n")
    print(_common.machine_line(info) + "\n")
    rows = [
        (name, before, peak, peak / data_mib, (peak - baseline) / data_mib, secs)
        for name, before, peak, secs in phases.rows
    ]
    print(
        _common.markdown_table(
            ["phase", "RSS before (MiB)", "peak RSS (MiB)", "peak / data", "(peak - baseline) / data", "seconds"], rows
        )
    )
    verdict = "meets" if ratio < args.target else "MISSES"
    print(
        f"\ndata (x + y): {data_mib:,.0f} MiB; baseline RSS {baseline:,.0f} MiB; whole-run peak "
        f"{whole_peak:,.0f} MiB = {ratio:.2f}x the data ({net_ratio:.2f}x above baseline); "
        f"{verdict} the < {args.target}x target. Peak while fnn runs: {fnn_peak:,.0f} MiB = "
        f"{fnn_peak / data_mib:.2f}x. evaluate: {scores}"
    )
    if not phases.resettable:
        print("(this platform cannot reset the high-water mark: per-phase peaks are cumulative)")
    payload = {
        "benchmark": "memory",
        "machine": info,
        "samples": n,
        "features": args.features,
        "input": args.input,
        "data_mib": data_mib,
        "baseline_mib": baseline,
        "peak_mib": whole_peak,
        "peak_over_data": ratio,
        "peak_above_baseline_over_data": net_ratio,
        "fnn_peak_mib": fnn_peak,
        "fnn_peak_over_data": fnn_peak / data_mib,
        "target": args.target,
        "meets_target": ratio < args.target,
        "evaluate": scores,
        "phases": [dict(zip(("phase", "rss_before_mib", "peak_mib", "seconds"), r, strict=True)) for r in phases.rows],
    }
    _common.write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main()
