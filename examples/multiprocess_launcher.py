"""Data-parallel training over several processes on one machine, with JAX's own machinery.

JAX runs one Python process per host (here: per pretend host, all on localhost). Every process
calls ``fnn.parallel.initialize`` (``jax.distributed.initialize`` with gloo collectives on
CPU), loads the data, keeps ITS shard of the rows (``fnn.parallel.process_shard``) and calls
the same ``fnn.fit(..., mesh=fnn.parallel.data_mesh())``. fit reassembles the global data set
(``jax.make_array_from_process_local_data``), splits every batch over all devices of all
processes and sums the gradients across them, so every process ends with the same parameters,
equal to what one process training on all the data gets.

This script is both the launcher and the worker: without ``--process-id`` it starts
``--processes`` copies of itself, waits for them, then trains the same model in one process
and prints how far apart the two results are.

Run: python examples/multiprocess_launcher.py [--processes 2] [--devices-per-process 2] [--quick]
"""

from __future__ import annotations

import argparse
import os
import runpy
import socket
import subprocess
import sys
import tempfile

import numpy as np


def problem():
    """The data, network, optimizer and fit settings every process (and the check) uses."""
    import jax

    import fnn

    rng = np.random.default_rng(0)
    x = rng.normal(size=(203, 6))
    y = (np.sin(x[:, 0]) + x[:, 1] * x[:, 2] > 0).astype(np.int32)
    net = fnn.mlp([32, 2], activation="tanh")
    # float64 params (and so float64 training) where x64 is enabled, float32 otherwise
    params = jax.tree.map(lambda a: a.astype(jax.numpy.result_type(float)), net.init(jax.random.PRNGKey(0), (6,)))
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    # batch 20 leaves a remainder batch of 3 (203 * 0.8 = 162 training rows): uneven on purpose
    settings = dict(
        batch_size=20, epochs=3, key=jax.random.PRNGKey(1), validation_split=0.2, metrics=["accuracy"], verbose=0
    )
    return net, params, fnn.optimizers.adam(1e-2), loss, x, y, settings


def worker(args) -> None:
    import jax

    import fnn
    from fnn import parallel

    if args.x64:
        jax.config.update("jax_enable_x64", True)
    parallel.initialize(
        f"127.0.0.1:{args.port}",
        num_processes=args.processes,
        process_id=args.process_id,
        local_device_count=args.devices_per_process,
    )
    net, params, opt, loss, x, y, settings = problem()
    x_mine, y_mine = parallel.process_shard(x), parallel.process_shard(y)
    result = fnn.fit(net, params, opt, loss, x_mine, y_mine, mesh=parallel.data_mesh(), **settings)
    h = result.history
    # The params come back replicated over every process's devices: each process holds them whole
    # and evaluates and predicts on its own devices (fnn uses its local copy), no collective.
    logs = fnn.evaluate(net, result.params, loss, x, y, metrics=settings["metrics"])
    predicted = fnn.predict(net, result.params, x[:5])
    print(
        f"process {jax.process_index()}/{jax.process_count()}: {len(x_mine)} of {len(x)} rows, "
        f"{jax.local_device_count()} of {jax.device_count()} devices, final loss {h['loss'][-1]:.6f}, "
        f"loss on all rows {logs['loss']:.6f}",
        flush=True,
    )
    if args.out and jax.process_index() == 0:
        leaves = jax.tree.leaves(result.params)
        np.savez(
            args.out,
            *[np.asarray(a) for a in leaves],
            **{"history_" + k: np.asarray(v) for k, v in h.history.items()},
            **{"evaluate_" + k: np.asarray(v) for k, v in logs.items()},
            predict=predicted,
        )
    if args.then:
        runpy.run_path(args.then)["in_each_process"](args.out)
    jax.distributed.shutdown()


def launch(args) -> None:
    if args.out:
        run_and_check(args, args.out)
        return
    with tempfile.TemporaryDirectory() as tmp:  # removed, with what the workers wrote there
        run_and_check(args, os.path.join(tmp, "params.npz"))


def run_and_check(args, out: str) -> None:
    """Starts the workers (process 0 saves the trained params to ``out``), waits for them and,
    unless ``--no-check``, compares those params with one process's."""
    with socket.socket() as s:  # a free port for the coordinator
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--port",
        str(port),
        "--processes",
        str(args.processes),
        "--devices-per-process",
        str(args.devices_per_process),
        "--out",
        out,
    ]
    cmd += (["--x64"] if args.x64 else []) + (["--then", args.then] if args.then else [])
    procs = [subprocess.Popen(cmd + ["--process-id", str(i)]) for i in range(args.processes)]
    try:
        codes = [p.wait(timeout=args.timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    if any(codes):
        raise SystemExit(f"worker exit codes {codes}")
    if args.no_check:
        return

    import jax

    import fnn

    if args.x64:
        jax.config.update("jax_enable_x64", True)
    net, params, opt, loss, x, y, settings = problem()
    single = fnn.fit(net, params, opt, loss, x, y, **settings)
    with np.load(out) as saved:
        many = [saved[f"arr_{i}"] for i in range(len(jax.tree.leaves(single.params)))]
    diff = max(
        float(np.max(np.abs(a - np.asarray(b)))) for a, b in zip(many, jax.tree.leaves(single.params), strict=True)
    )
    print(
        f"{args.processes} processes x {args.devices_per_process} devices vs one process: "
        f"max |params difference| {diff:.3g}; final loss {single.history['loss'][-1]:.6f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--devices-per-process", type=int, default=2)
    parser.add_argument("--out", help="where process 0 saves the trained params (npz)")
    parser.add_argument("--x64", action="store_true", help="train in float64 in every process")
    parser.add_argument("--no-check", action="store_true", help="skip the one-process run and comparison")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the workers")
    parser.add_argument("--quick", action="store_true", help="accepted for uniformity; the run is small already")
    parser.add_argument("--process-id", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    # tests: a file whose in_each_process(out) each worker runs after its fit
    parser.add_argument("--then", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.processes < 1 or args.devices_per_process < 1:
        raise SystemExit("--processes and --devices-per-process must be >= 1")
    (worker if args.process_id is not None else launch)(args)


if __name__ == "__main__":
    main()
