"""The commands ``fnn compare``, ``fnn gradcheck`` and ``fnn datasets``: what each does with its
parsed arguments, returning the exit status (``fnn train``'s is in ``_train.py``)."""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
from typing import Any

import jax
import numpy as np

from fnn import datasets as _datasets
from fnn._keys import seed_key
from fnn.cli._args import SEED_MAX
from fnn.cli._common import (
    EXIT_BROKEN_PIPE,
    PROCESS_ENDS,
    UsageError,
    interrupted,
    log_line,
    nonfinite_loss_unwarned,
    output_path,
    silence_broken_streams,
    stopped,
)
from fnn.cli._compare import run_comparison
from fnn.cli._compile_cache import executable_store
from fnn.cli._problem import FILE_DATASETS, describe_net, load_problem, network, split_problem
from fnn.cli._report import (
    PLOT_FILES,
    RESULT_FILES,
    best_line,
    format_table,
    import_matplotlib_in_background,
    plot_runs,
    table_notes,
    write_results,
)
from fnn.grad import MODES, gradcheck, value_and_grad

# --------------------------------------------------------------------------------------------
# fnn compare
# --------------------------------------------------------------------------------------------


def _remove_stale_plots(out: str) -> None:
    for name in PLOT_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(out, name))


def _check_out_files(out: str) -> None:
    """A folder where ``--out``'s files go would stop the writing after the runs: refused first."""
    for name in (*RESULT_FILES, *PLOT_FILES):  # the plots too: an earlier run's are removed, and a folder cannot be
        if os.path.isdir(os.path.join(out, name)):
            raise UsageError(f"--out {out!r} holds a folder {name!r}, where fnn compare writes a file: remove it")


def cmd_compare(args) -> int:
    args.out = output_path("--out", args.out, folder=True)
    _check_out_files(args.out)
    if args.seed + args.seeds - 1 > SEED_MAX:
        raise UsageError(f"--seed {args.seed} with --seeds {args.seeds} goes past the largest seed, {SEED_MAX}")
    problem = load_problem(args.dataset, args.loss, args.path)
    if args.validation_split == 0 and args.early_stopping is not None:
        raise UsageError("--early-stopping watches the validation loss: give --validation-split > 0")
    n_val = 0 if args.validation_split == 0 else len(split_problem(problem, args.validation_split)[1][0])
    n_tr = len(problem.x_train) - n_val
    net_text = describe_net(
        problem.x_train.shape[1], args.hidden, problem.output_size, args.activation, problem.output_activation
    )
    metric_name = problem.metric.name
    config = {k: v for k, v in vars(args).items() if k != "func"}
    config.update(
        n_train=n_tr,
        n_validation=n_val,
        n_test=len(problem.x_test),
        network=net_text,
        loss_name=problem.loss.name,
        metric=metric_name,
    )
    # matplotlib imports beside the compilations and is waited for before the timed training
    importing = None if args.no_plots else import_matplotlib_in_background()
    planned = len(args.optimizers) * len(args.batch_sizes)
    runs: list[dict[str, Any]] = []  # the finished runs, also when interrupted
    written = plotted = False
    t0 = time.perf_counter()
    try:
        print(
            f"fnn compare: {problem.name}, {n_tr} train / {n_val} validation / {len(problem.x_test)} test "
            f"samples; network {net_text}; loss {problem.loss.name}; {args.epochs} epochs; "
            f"{args.seeds} seed(s){f' from {args.seed}' if args.seed else ''}; grad {args.grad}"
            + (f"; early stopping (patience {args.early_stopping})" if args.early_stopping is not None else ""),
            flush=True,
        )
        with nonfinite_loss_unwarned():
            run_comparison(
                problem,
                optimizers=args.optimizers,
                batch_sizes=args.batch_sizes,
                epochs=args.epochs,
                hidden=args.hidden,
                activation=args.activation,
                seeds=args.seeds,
                seed=args.seed,
                learning_rate=args.lr,
                grad=args.grad,
                validation_split=args.validation_split,
                early_stopping=args.early_stopping,
                apart=args.apart,
                compile_threads=args.jobs,
                train_threads=args.jobs,
                log=log_line,
                finished=runs,
                store=executable_store(args),
                after_compiling=None if importing is None else importing.join,
                wait_for_compiling=not PROCESS_ENDS[0],  # in-process: the cache settings are put back after
            )
        config["wall_s"] = wall = time.perf_counter() - t0
        print()
        print(format_table(runs, metric_name))
        print()
        for line in table_notes(runs, metric_name):
            print(line)
        best = best_line(runs)
        if best:
            print(f"\n{best}")
        write_results(args.out, config, runs, metric_name)
        written = True
        title = f"{problem.name}: {net_text}, {args.seeds} seed(s)"
        plots = [] if args.no_plots else plot_runs(runs, args.out, title)
        if not plots:  # no plot of another run stays beside these results
            _remove_stale_plots(args.out)
        plotted = True
        print(
            f"wrote {os.path.join(args.out, 'results.json')}, results.csv"
            + (", " + ", ".join(os.path.basename(p) for p in plots) if plots else "")
        )
        if not plots and not args.no_plots:
            print('plots skipped: matplotlib is not installed (pip install "fnn[examples]")', file=sys.stderr)
        print(f"total wall time {wall:.1f} s (including compilation)")
        return 0
    except (KeyboardInterrupt, BrokenPipeError) as err:
        stop = stopped(err)
    except Exception:
        # A run that raised (jax.debug_nans' FloatingPointError, memory): the runs finished
        # before it are written, marked partial, and then the error is reported as any is.
        if runs and not written:
            config.setdefault("wall_s", time.perf_counter() - t0)
            with contextlib.suppress(Exception):  # the error being raised is the one to report
                write_results(args.out, config, runs, metric_name, planned=planned)
                path = os.path.join(args.out, "results.json")
                print(
                    f"fnn compare: a run failed after {len(runs)} of {planned} runs; wrote the finished ones "
                    f"to {path} and results.csv, marked partial",
                    file=sys.stderr,
                )
        raise
    # Stopped half-way: the finished runs replace the results of any earlier run in --out,
    # marked partial when some are missing; no plot of another run stays beside them.
    if stop == "pipe":
        silence_broken_streams()
    if not written:
        config.setdefault("wall_s", time.perf_counter() - t0)
        write_results(args.out, config, runs, metric_name, planned=planned)
    if not plotted:
        _remove_stale_plots(args.out)
    if stop == "pipe":
        return EXIT_BROKEN_PIPE
    path = os.path.join(args.out, "results.json")
    wrote = (
        f"an empty {path}, marked partial"
        if not runs
        else f"them to {path} and results.csv, marked partial"
        if len(runs) < planned
        else f"{path} and results.csv" + ("" if plotted or args.no_plots else " (no plots)")
    )
    words, status = interrupted(stop)
    print(f"fnn compare: {words} after {len(runs)} of {planned} runs; wrote {wrote}", file=sys.stderr)
    return status


# --------------------------------------------------------------------------------------------
# fnn gradcheck
# --------------------------------------------------------------------------------------------


def _median_seconds(fn, *args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))  # compile outside the timing
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cmd_gradcheck(args) -> int:
    problem = load_problem(args.dataset, args.loss, args.path)
    net = network(problem, args.hidden, args.activation)
    n_in = problem.x_train.shape[1]
    x, y = problem.x_train[: args.samples], problem.y_train[: args.samples]
    with jax.enable_x64(True):
        params64 = net.init(seed_key(args.seed), (n_in,), dtype=np.float64)
        report = gradcheck(net, problem.loss, params64, x.astype(np.float64), y)
    net_text = describe_net(n_in, args.hidden, problem.output_size, args.activation, problem.output_activation)
    print(f"fnn gradcheck: {problem.name}, network {net_text}, loss {problem.loss.name}, {len(x)} samples, float64\n")
    print(report)
    # Speed: both gradients jitted, float32, on the whole training set.
    params = net.init(seed_key(args.seed), (n_in,))
    xs, ys = jax.device_put(problem.x_train), jax.device_put(problem.y_train)
    seconds = {
        m: _median_seconds(jax.jit(value_and_grad(net, problem.loss, m)), params, xs, ys, repeats=args.repeats)
        for m in MODES
    }
    print(
        f"\ntime per value_and_grad on {len(xs)} samples (float32, jitted, median of {args.repeats}): "
        f"manual {seconds['manual'] * 1e3:.3f} ms, autodiff {seconds['autodiff'] * 1e3:.3f} ms, "
        f"manual/autodiff ratio {seconds['manual'] / seconds['autodiff']:.2f}"
    )
    return 0 if report.passed else 1


# --------------------------------------------------------------------------------------------
# fnn datasets
# --------------------------------------------------------------------------------------------


def cmd_datasets(args) -> int:
    head = ["name", "task", "classes", "source", "suggested loss", "train x", "train y", "test x"]
    rows = []
    for name in _datasets.names():
        info = _datasets.info(name)
        shapes = ["needs --path"] * 3
        if name not in FILE_DATASETS or args.path:
            try:
                kwargs = {"path": args.path} if name in FILE_DATASETS else {}
                (x_tr, y_tr), (x_te, _) = _datasets.load(name, **kwargs)
                shapes = [str(x_tr.shape), str(y_tr.shape), str(x_te.shape)]
            except (ImportError, ValueError, FileNotFoundError) as err:
                shapes = [f"unavailable: {str(err).splitlines()[0][:60]}", "", ""]
        rows.append([name, info["task"], str(info["num_classes"] or "-"), info["source"], info["loss"], *shapes])
    widths = [max(len(c) for c in col) for col in zip(head, *rows, strict=True)]
    for r in [head, ["-" * w for w in widths], *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0
