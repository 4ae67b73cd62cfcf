"""The engine behind ``fnn compare``: train every optimizer x batch size x seed from the same
initial parameters and make one record per run (optimizer x batch size): its seeds' histories
and test metrics, the summary the table shows, and the curves the plots draw. The table, the
results files and the plots are written by ``_report.py``; the argument handling lives in
:mod:`fnn.cli`; what a record holds, and the summary and log line made of it, in
:mod:`fnn.cli._records`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import enum
import functools
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from fnn import callbacks as _callbacks, optimizers as _optimizers
from fnn._executables import ExecutableStore, using
from fnn.cli._problem import (  # load_problem: scripts and notes import it from here
    Problem,
    default_learning_rate,
    initial_params,
    load_problem as load_problem,
    network,
    split_problem,
)
from fnn.cli._records import log_line, summarise
from fnn.train import evaluate, fit, fit_many
from fnn.train._initial import initial_zeros
from fnn.train._loop import cancelled_by
from fnn.train._together import compile_validation, fit_together

# JAX's settings that a context manager sets for its own thread only (the caller's `with
# jax.enable_x64(True):` around fnn.cli.main): each pool thread runs under the caller's values, so
# that --jobs never changes what is computed (x64 silently off, debug_nans skipped in a worker).
_THREAD_SETTINGS = (
    ("jax_enable_x64", "enable_x64"),
    ("jax_debug_nans", "debug_nans"),
    ("jax_debug_infs", "debug_infs"),
    ("jax_disable_jit", "disable_jit"),
    ("jax_default_matmul_precision", "default_matmul_precision"),
    ("jax_numpy_rank_promotion", "numpy_rank_promotion"),
    ("jax_numpy_dtype_promotion", "numpy_dtype_promotion"),
    ("jax_default_prng_impl", "default_prng_impl"),
    ("jax_default_device", "default_device"),
    ("jax_transfer_guard_host_to_device", "transfer_guard_host_to_device"),
    ("jax_transfer_guard_device_to_host", "transfer_guard_device_to_host"),
    ("jax_transfer_guard_device_to_device", "transfer_guard_device_to_device"),
    ("jax_log_compiles", "log_compiles"),
)


def in_callers_settings(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` run, in whatever thread calls it, under the JAX settings in force in the thread that
    wraps it (:data:`_THREAD_SETTINGS`: those a context manager sets per thread)."""
    entered = []
    for name, manager in _THREAD_SETTINGS:
        if hasattr(jax, manager) and hasattr(jax.config, name):
            value = getattr(jax.config, name)
            entered.append((getattr(jax, manager), value.value if isinstance(value, enum.Enum) else value))

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        with contextlib.ExitStack() as stack:
            for manager, value in entered:
                stack.enter_context(manager(value))
            return fn(*args, **kwargs)

    return run


def _workers(threads: int | None, jobs: int) -> int:
    """Threads for ``jobs`` jobs: ``threads``, or one per core when None, at most one per job."""
    return max(1, min(jobs, threads or os.cpu_count() or 1))


def compile_concurrently(
    warm_up: Callable[[Any], None], jobs: Sequence[Any], threads: int | None = None, *, wait: bool = True
) -> list[float]:
    """Runs ``warm_up(job)`` for every job in a pool of ``threads`` threads (default one per
    core) and returns each one's wall seconds. XLA compiles with Python's GIL released, so the
    runs' programs compile side by side (tracing them still takes turns); each time includes
    waiting for the others.

    On the way out of a Ctrl-C (or a job that raised) the jobs not started are dropped. With
    ``wait`` (the default) it waits for those running, so that no compilation outlives the
    call: ``main`` run in-process puts the caller's JAX cache settings back as it returns, and
    a compilation still running then could write its program into the caller's folder. That
    wait is one compilation's at most, seconds for the CLI's (1.6-5.2 s cold for ``fnn compare
    --dataset digits``, two at a time on a 2-core machine), so the console script, whose
    process ends with the command and puts nothing back, passes ``wait=False``: its Ctrl-C line
    comes at once, and the exit waits for the compilations."""

    def timed(job: Any) -> float:
        t0 = time.perf_counter()
        warm_up(job)
        return time.perf_counter() - t0

    workers = _workers(threads, len(jobs))
    if workers == 1:
        return [timed(job) for job in jobs]
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers)
    try:
        return list(pool.map(in_callers_settings(timed), jobs))
    finally:
        # On Ctrl-C the compilations not yet started are dropped, not waited for (a `with`
        # block would run every one of them before letting the interrupt through); those
        # running are waited for if asked (see above).
        pool.shutdown(wait=wait, cancel_futures=True)


def run_comparison(
    problem: Problem,
    *,
    optimizers: Sequence[str],
    batch_sizes: Sequence[int | None],
    epochs: int,
    hidden: Sequence[int],
    activation: str = "relu",
    seeds: int = 3,
    seed: int = 0,
    learning_rate: float | None = None,
    grad: str = "manual",
    validation_split: float = 0.2,
    early_stopping: int | None = None,
    apart: bool = False,
    log=None,
    compile_threads: int | None = None,
    train_threads: int | None = 1,
    finished: list[dict[str, Any]] | None = None,
    store: ExecutableStore | None = None,
    after_compiling: Callable[[], Any] | None = None,
    wait_for_compiling: bool = True,
) -> list[dict[str, Any]]:
    """Trains one network per (optimizer, batch size, seed) and returns one record per run
    (optimizer x batch size; the module's docstring says what it holds).

    Each run is appended to ``finished`` (a new list when None) as soon as it has finished, so
    a caller interrupted half-way (Ctrl-C) still holds the runs done; the list is returned.

    The seeds are ``seed, seed + 1, ..., seed + seeds - 1``. For a given seed every run starts
    from the same initial parameters and sees the batches in the same order. The seeds of a run
    train together, vmapped in one program (``fnn.fit_many``), unless early stopping
    (``early_stopping`` = its patience, on the validation loss, best weights restored) needs a
    ``fit`` per seed. Unless ``apart`` (or early stopping), a batch size's runs train in ONE
    program (:func:`fnn.train._together.fit_together`), split into as many parts as train at a
    time, each part's runs in the order of their names (one program whatever order they were
    asked in), each run equal to its own fit_many up to float rounding. Every program is first
    warmed up for one epoch, which compiles it, the programs side by side in threads
    (``compile_threads``, default one per core; :func:`compile_concurrently`; ``compile_s``),
    so ``train_s`` is the training time proper; in one-program mode they compile on zeros of
    the params' shapes, all at once, beside the seeds' initial params, the validation pass and
    the test pass. The
    programs then train ``train_threads`` at a time (None: one per core; default 1, each
    alone), in threads, XLA's programs running with Python's GIL released; ``finished`` keeps
    the order asked for, and on Ctrl-C the runs still training stop before their next epoch
    (a program's runs finish together). ``store``: where the runs' compiled epochs are kept and read
    back (``fnn._executables.ExecutableStore``, its namespace the command's settings), or
    None. ``after_compiling``: called once every run is compiled, before the first timed training
    (the CLI waits there for work it started beside the compilations, which would otherwise
    compete with the timed runs for Python's lock). ``wait_for_compiling``: on Ctrl-C, wait for
    the compilations running (:func:`compile_concurrently`'s ``wait``; False for the console
    script, whose process ends with the command).
    """
    (x_tr, y_tr), val = split_problem(problem, validation_split)
    net = network(problem, hidden, activation)
    n_in = x_tr.shape[1]
    stopping = early_stopping is not None and val is not None
    # Seeds train together in one compiled program unless per-seed early stopping needs fit's callbacks.
    together = seeds > 1 and not stopping
    # Every optimizer of a batch size in ONE program (fnn.train._together), which compiles the
    # network's kernels once for all of them, unless asked apart or early stopping needs a fit per seed.
    one_program = not stopping and not apart
    drawn = []

    def draw() -> None:
        # every seed's initial params and shuffling key in one program (read back from the store
        # on a warm run): init with split(PRNGKey(seed))[0], shuffle with [1], as fit would be given
        with using(store):
            drawn.append(initial_params(net, n_in, range(seed, seed + seeds)))

    # one_program: the programs compile (and warm up) on zeros of the params' shapes, so the
    # initial params' own program compiles beside them, not before them
    zeros = initial_zeros(net, n_in, seeds) if one_program else None
    if zeros is None:
        draw()
        stacked, stacked_keys = drawn[0]
    inits, keys = [], []  # each seed's own, for a fit per seed
    if not together and not one_program:
        host = jax.device_get(stacked)
        inits = [jax.device_put(jax.tree.map(lambda a, i=i: a[i], host)) for i in range(seeds)]
        keys = [jax.device_put(k) for k in np.asarray(stacked_keys)]
    configs = []
    for name in optimizers:
        lr = default_learning_rate(name, learning_rate)
        opt = _optimizers.get(name, learning_rate=lr)  # one object: fit reuses its compiled epoch
        for bs in batch_sizes:
            batch = x_tr.shape[0] if bs is None else bs
            same = {
                "batch_size": batch,
                "shuffle": True,
                "validation_data": val,
                "metrics": [problem.metric],
                "grad": grad,
                "verbose": 0,
            }
            configs.append((name, lr, opt, bs, batch, same))

    # A job is what one program trains: a share of a batch size's runs (one_program), or one
    # run. A batch size's runs are split into as many programs as runs train at a time: a
    # program runs its epochs one after the other, and two programs train side by side.
    if one_program:
        by_batch: dict[int | None, list[int]] = {}
        for i, config in enumerate(configs):
            by_batch.setdefault(config[3], []).append(i)
        jobs = []
        for group in by_batch.values():
            # the runs in the order of their names: one program whatever order they were asked in;
            # dealt out in turn, which mixes cheap and costly updates in each part (digits' default
            # job: cold 4.8-5.0 s against 5.0-5.4 s in contiguous halves, 2026-12-05)
            group = sorted(group, key=lambda i: configs[i][0])
            parts = _workers(train_threads, len(group))
            jobs += [group[k::parts] for k in range(parts)]
    else:
        jobs = [[i] for i in range(len(configs))]

    def job_store(job: list[int]) -> Any:
        name, bs = configs[job[0]][0], configs[job[0]][3]
        if one_program:  # the program holds every optimizer of the job: the namespace names them all
            name = "together:" + ",".join(configs[i][0] for i in job)
        return using(None if store is None else store.child(f"{name}|{bs}"))

    def train_job(job: list[int], epochs: int, start: tuple[Any, Any]) -> list[Any]:
        """The job's runs trained for ``epochs`` from ``start`` (stacked params and keys): their
        fit_many results (one_program, in the job's order), or None for a run that trains as
        train_run says."""
        if not one_program:
            return [None]
        same = {k: v for k, v in configs[job[0]][5].items() if k != "verbose"}
        opts = [configs[i][2] for i in job]
        return fit_together(net, start[0], opts, problem.loss, x_tr, y_tr, epochs=epochs, key=start[1], **same)

    def warm_up(job: list[int] | str) -> None:
        if job == "initial":
            draw()
        elif job == "validation":  # the runs' validation pass, compiled on zeros beside their programs
            assert zeros is not None
            _, _, opt, _, _, same = configs[0]
            same = {k: v for k, v in same.items() if k != "verbose"}
            with using(store):
                compile_validation(net, zeros[0], opt, problem.loss, x_tr, y_tr, **same)
        elif job == "test":  # the test pass's program, compiled on zeros
            assert zeros is not None
            one = jax.tree.map(lambda a: np.zeros(a.shape[1:], a.dtype), zeros[0])
            with using(store):
                evaluate(
                    net, one, problem.loss, problem.x_test, problem.y_test, metrics=[problem.metric], batch_size=1024
                )
        elif not isinstance(job, str):
            # One epoch compiles every program the job needs (and the runs of equal settings share them).
            with job_store(job):
                if one_program:
                    train_job(job, 1, zeros if zeros is not None else drawn[0])
                else:
                    _, _, opt, _, _, same = configs[job[0]]
                    warm_up_run(opt, same)

    def warm_up_run(opt, same) -> None:
        if together:
            fit_many(net, stacked, opt, problem.loss, x_tr, y_tr, epochs=1, key=stacked_keys, **same)
        else:
            fit(net, inits[0], opt, problem.loss, x_tr, y_tr, epochs=1, key=keys[0], **same)

    # (the validation pass would otherwise compile after the first program, beside the others)
    extra = ["validation"] if val is not None else []
    tasks: list[Any] = list(jobs) if zeros is None else ["initial", *extra, *jobs, "test"]
    threads = compile_threads if zeros is None else compile_threads or len(tasks)
    times = compile_concurrently(warm_up, tasks, threads, wait=wait_for_compiling)
    compile_times = times if zeros is None else times[1 + len(extra) : -1]
    stacked, stacked_keys = drawn[0]
    if after_compiling is not None:
        after_compiling()

    def train_run(name, lr, opt, bs, batch, same, compile_s, many=None, runs_together=1) -> dict[str, Any]:
        if together and many is None:
            # All seeds in one vmapped program (fnn.fit_many); each equals its own fit.
            many = fit_many(net, stacked, opt, problem.loss, x_tr, y_tr, epochs=epochs, key=stacked_keys, **same)
        if many is not None:
            # each seed's params sliced on the host, in one transfer: a slice on the device is a
            # small program per leaf shape, and only the test pass needs them
            host = jax.device_get(many.params)
            results = [(jax.tree.map(lambda a, i=i: a[i], host), many.histories[i]) for i in range(seeds)]
        per_seed: list[dict[str, Any]] = []
        for i in range(seeds):
            stopper = None
            if many is not None:
                result = results[i]
            else:
                if early_stopping is not None and val is not None:
                    stopper = _callbacks.EarlyStopping(patience=early_stopping, restore_best_weights=True)
                fitted = fit(
                    net,
                    inits[i],
                    opt,
                    problem.loss,
                    x_tr,
                    y_tr,
                    epochs=epochs,
                    key=keys[i],
                    callbacks=[] if stopper is None else [stopper],
                    **same,
                )
                result = fitted.params, fitted.history
            params, h = result
            with using(store):  # one test program for every run: the command's settings describe it
                test = evaluate(
                    net,
                    params,
                    problem.loss,
                    problem.x_test,
                    problem.y_test,
                    metrics=[problem.metric],
                    batch_size=1024,
                )
            # params are the best epoch's weights when early stopping restored them:
            # the losses reported are that epoch's too
            reported = h.epochs.index(stopper.best_epoch) if stopper is not None else h.epochs_run - 1
            per_seed.append(
                {
                    "seed": seed + i,
                    "epochs_run": h.epochs_run,
                    "reported_epoch": reported,
                    "history": h.history,
                    "epoch_times": h.times,
                    "train_s": float(np.cumsum(h.times)[-1]) if h.times else 0.0,
                    "stop_reason": h.stop_reason,
                    "test": test,
                }
            )
        return summarise(
            name,
            lr,
            bs,
            batch,
            h.iterations_per_epoch,
            compile_s,
            per_seed,
            problem.metric.name,
            together=together,
            runs_together=runs_together,
            one_program=many is not None,
            early_stopping=early_stopping if stopping else None,
        )

    workers = _workers(train_threads, len(jobs))
    stop = threading.Event()

    def train_one(j: int) -> list[dict[str, Any]]:
        job = jobs[j]
        with job_store(job), cancelled_by(stop):
            manies = train_job(job, epochs, (stacked, stacked_keys))
            shared = len(job) if one_program else 1
            runs = []
            for i, many in zip(job, manies, strict=True):
                name, lr, opt, bs, batch, same = configs[i]
                runs.append(train_run(name, lr, opt, bs, batch, same, compile_times[j], many, shared))
        for run in runs:
            run["train_jobs"] = workers
            run["program"] = j  # which rows share a program (and its times): the same number
        return runs

    runs = [] if finished is None else finished
    first, done = len(runs), {}  # index asked for -> finished run

    def record(j: int, job_runs: list[dict[str, Any]]) -> None:
        # the finished runs in the order asked for, also while others still train
        for i, run in zip(jobs[j], job_runs, strict=True):
            done[i] = run
        runs[first:] = [done[i] for i in sorted(done)]
        if log is not None:
            for run in job_runs:
                log(log_line(run, seeds))

    if workers == 1:
        for j in range(len(jobs)):
            record(j, train_one(j))
        return runs
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers)
    train_in_pool = in_callers_settings(train_one)
    futures = {pool.submit(train_in_pool, j): j for j in range(len(jobs))}
    try:
        for future in concurrent.futures.as_completed(futures):
            record(futures[future], future.result())
    finally:
        # Ctrl-C (main thread only) or a failed run: the runs not started are dropped and those
        # training stop before their next epoch (their Cancelled is not reported).
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
    return runs
