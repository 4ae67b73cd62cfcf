"""The ``fnn`` command line: compare optimizers and batch sizes, train, gradcheck, list data sets.

``fnn compare`` is the lesson's closing advice turned into one command: no optimizer is best
everywhere, so train the same network from the same initial parameters with each optimizer
(and each batch size: ``full`` is gradient descent, ``1`` is SGD, ``32`` mini-batch GD) and
compare losses, test metric, epochs, iterations per epoch and wall time.

Every bad argument exits with status 2 and one line on stderr, as argparse's own errors do.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence

import jax
import numpy as np

from fnn import (
    activations as _activations,
    callbacks as _callbacks,
    checkpoint as _checkpoint,
    datasets as _datasets,
    losses as _losses,
    optimizers as _optimizers,
)
from fnn._compat import float64
from fnn._validate import path as check_path
from fnn.cli._compare import (
    DEFAULT_LEARNING_RATES,
    FILE_DATASETS,
    UsageError,
    default_learning_rate,
    describe_net,
    format_table,
    load_problem,
    plot_runs,
    run_comparison,
    split_problem,
    write_results,
)
from fnn.grad import MODES, gradcheck, value_and_grad
from fnn.layers import mlp
from fnn.train import History, evaluate, fit

DEFAULT_OPTIMIZERS = (
    "sgd",
    "momentum",
    "nesterov",
    "adagrad",
    "rmsprop",
    "adadelta",
    "adam",
    "adamw",
    "nadam",
    "radam",
    "lion",
)


# --------------------------------------------------------------------------------------------
# Argument types: each raises ArgumentTypeError, which argparse turns into a one-line error.
# --------------------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return int(text)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}")
    return value


def _hidden(text: str) -> tuple[int, ...]:
    """``"64,64"`` -> (64, 64); ``""`` or ``"none"`` -> () (no hidden layer: a linear model)."""
    if text.strip().lower() in ("", "none"):
        return ()
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive layer sizes such as 64,64 (or 'none'), got {text!r}"
        )
    return tuple(int(p) for p in parts)


def _batch_size(text: str) -> int | None:
    """A batch size; ``full`` (None) means the whole training set: gradient descent."""
    if text.strip().lower() == "full":
        return None
    try:
        return _positive_int(text.strip())
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a positive batch size or 'full', got {text!r}") from None


def _batch_sizes(text: str) -> list[int | None]:
    return [_batch_size(p) for p in text.split(",")]


def _optimizer(text: str) -> str:
    name = text.strip().lower()
    if name not in _optimizers.names():
        raise argparse.ArgumentTypeError(
            f"unknown optimizer {text!r}; known optimizers: {', '.join(_optimizers.names())}"
        )
    return name


def _optimizer_list(text: str) -> list[str]:
    if text.strip().lower() == "all":
        return list(_optimizers.names())
    names = [_optimizer(p) for p in text.split(",")]
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"an optimizer is listed twice in {text!r}")
    return names


def _activation(text: str) -> str:
    try:
        _activations.get(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"unknown activation {text!r}; known activations: {', '.join(_activations.names())}"
        ) from None
    return text


def _loss(text: str) -> str:
    try:
        return _losses.get(text).name
    except ValueError:
        raise argparse.ArgumentTypeError(f"unknown loss {text!r}; known losses: {', '.join(_losses.names())}") from None


def _output_path(option: str, value: str, *, folder: bool = False) -> str:
    """``value`` checked before any work: the run writes there at its end."""
    try:
        return check_path(option, value, writable=True, folder=folder)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _cmd_compare(args) -> int:
    args.out = _output_path("--out", args.out, folder=True)
    problem = load_problem(args.dataset, args.loss, args.path)
    if args.validation_split == 0 and args.early_stopping is not None:
        raise UsageError("--early-stopping watches the validation loss: give --validation-split > 0")
    n_val = 0 if args.validation_split == 0 else len(split_problem(problem, args.validation_split)[1][0])
    n_tr = len(problem.x_train) - n_val
    net_text = describe_net(problem.x_train.shape[1], args.hidden, problem.output_size, args.activation)
    print(
        f"fnn compare: {problem.name}, {n_tr} train / {n_val} validation / {len(problem.x_test)} test "
        f"samples; network {net_text}; loss {problem.loss.name}; {args.epochs} epochs; "
        f"{args.seeds} seed(s); grad {args.grad}",
        flush=True,
    )
    t0 = time.perf_counter()
    runs = run_comparison(
        problem,
        optimizers=args.optimizers,
        batch_sizes=args.batch_sizes,
        epochs=args.epochs,
        hidden=args.hidden,
        activation=args.activation,
        seeds=args.seeds,
        learning_rate=args.lr,
        grad=args.grad,
        validation_split=args.validation_split,
        early_stopping=args.early_stopping,
        compile_threads=args.jobs,
        log=lambda m: print(m, file=sys.stderr, flush=True),
    )
    wall = time.perf_counter() - t0
    metric_name = problem.metric.name
    print()
    print(format_table(runs, metric_name))
    key = "val_loss" if "val_loss" in runs[0]["summary"] else "loss"
    finite = [r for r in runs if math.isfinite(r["summary"][key][0])]
    if finite:
        best = min(finite, key=lambda r: r["summary"][key][0])
        print(f"\nlowest final {key.replace('_', ' ')}: {best['optimizer']} (batch {best['batch']})")
    config = {k: v for k, v in vars(args).items() if k != "func"}
    config.update(
        n_train=n_tr,
        n_validation=n_val,
        n_test=len(problem.x_test),
        network=net_text,
        loss_name=problem.loss.name,
        metric=metric_name,
        wall_s=wall,
    )
    write_results(args.out, config, runs, metric_name)
    title = f"{problem.name}: {net_text}, {args.seeds} seed(s)"
    plots = [] if args.no_plots else plot_runs(runs, args.out, title)
    print(
        f"wrote {os.path.join(args.out, 'results.json')}, results.csv"
        + (", " + ", ".join(os.path.basename(p) for p in plots) if plots else "")
    )
    if not plots and not args.no_plots:
        print('plots skipped: matplotlib is not installed (pip install "fnn[examples]")', file=sys.stderr)
    print(f"total wall time {wall:.1f} s (including compilation)")
    return 0


# --------------------------------------------------------------------------------------------
# fnn train
# --------------------------------------------------------------------------------------------


def _merge_histories(old: History, new: History) -> History:
    merged = History(new.iterations_per_epoch)
    for h in (old, new):
        for epoch, t, i in zip(h.epochs, h.times, range(len(h.epochs)), strict=True):
            merged.append(epoch, {k: v[i] for k, v in h.history.items()}, t)
    merged.stop_reason, merged.stopped_epoch = new.stop_reason, new.stopped_epoch
    return merged


def _cmd_train(args) -> int:
    if args.save:
        args.save = _output_path("--save", args.save)
    problem = load_problem(args.dataset, args.loss, args.path)
    if args.early_stopping is not None and args.validation_split == 0:
        raise UsageError("--early-stopping watches the validation loss: give --validation-split > 0")
    (x_tr, y_tr), val = split_problem(problem, args.validation_split)
    net = mlp([*args.hidden, problem.output_size], activation=args.activation)
    lr = default_learning_rate(args.optimizer, args.lr)
    opt = _optimizers.get(args.optimizer, learning_rate=lr)
    init_key, key = jax.random.split(jax.random.PRNGKey(args.seed))
    params = net.init(init_key, (x_tr.shape[1],))
    opt_state, initial_epoch, old_history = None, 0, History()
    if args.resume:
        try:
            ckpt = _checkpoint.load(args.resume, params=params, opt_state=opt.init(params))
        except FileNotFoundError as err:
            raise UsageError(f"--resume: {err}") from None
        except ValueError as err:
            raise UsageError(
                f"--resume: {err} (--hidden, --activation and --optimizer must match the run that wrote it)"
            ) from None
        params, opt_state, initial_epoch = ckpt.params, ckpt.opt_state, ckpt.epoch
        key = ckpt.key if ckpt.key is not None else key
        old_history = History.from_dict(ckpt.history or {})
        print(f"resumed from {args.resume} at epoch {initial_epoch}", flush=True)
    batch = x_tr.shape[0] if args.batch_size is None else args.batch_size
    net_text = describe_net(x_tr.shape[1], args.hidden, problem.output_size, args.activation)
    print(
        f"fnn train: {problem.name}, network {net_text}, "
        f"{args.optimizer}(lr={lr:g}), batch {batch} ({math.ceil(len(x_tr) / batch)} it/epoch), "
        f"loss {problem.loss.name}",
        flush=True,
    )
    cbs = (
        []
        if args.early_stopping is None
        else [_callbacks.EarlyStopping(patience=args.early_stopping, restore_best_weights=True)]
    )
    result = fit(
        net,
        params,
        opt,
        problem.loss,
        x_tr,
        y_tr,
        batch_size=batch,
        epochs=args.epochs,
        key=key,
        validation_data=val,
        metrics=[problem.metric],
        callbacks=cbs,
        grad=args.grad,
        verbose=args.verbose,
        initial_epoch=initial_epoch,
        opt_state=opt_state,
    )
    history = _merge_histories(old_history, result.history)
    if history.stop_reason == "early_stopping" and history.stopped_epoch is not None:
        print(f"early stopping after epoch {history.stopped_epoch + 1} (best weights restored)")
    last = {k: v[-1] for k, v in history.history.items() if v}
    if last:
        print("final epoch: " + ", ".join(f"{k} {v:.4f}" for k, v in last.items()))
    test = evaluate(
        net, result.params, problem.loss, problem.x_test, problem.y_test, metrics=[problem.metric], batch_size=1024
    )
    print("test: " + ", ".join(f"{k} {v:.4f}" for k, v in test.items()))
    if args.save:
        epoch = initial_epoch + result.history.epochs_run
        _checkpoint.save(
            args.save,
            params=result.params,
            opt_state=result.opt_state,
            epoch=epoch,
            key=key,
            history=history.to_dict(),
            dataset=problem.name,
            hidden=list(args.hidden),
            activation=args.activation,
            optimizer=args.optimizer,
            learning_rate=lr,
        )
        print(f"saved checkpoint (epoch {epoch}) to {args.save}")
    return 0


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


def _cmd_gradcheck(args) -> int:
    problem = load_problem(args.dataset, args.loss, args.path)
    net = mlp([*args.hidden, problem.output_size], activation=args.activation)
    n_in = problem.x_train.shape[1]
    x, y = problem.x_train[: args.samples], problem.y_train[: args.samples]
    with float64():
        params64 = net.init(jax.random.PRNGKey(args.seed), (n_in,), dtype=np.float64)
        report = gradcheck(net, problem.loss, params64, x.astype(np.float64), y)
    net_text = describe_net(n_in, args.hidden, problem.output_size, args.activation)
    print(f"fnn gradcheck: {problem.name}, network {net_text}, loss {problem.loss.name}, {len(x)} samples, float64\n")
    print(report)
    # Speed: both gradients jitted, float32, on the whole training set.
    params = net.init(jax.random.PRNGKey(args.seed), (n_in,))
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


def _cmd_datasets(args) -> int:
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


# --------------------------------------------------------------------------------------------
# Parser and entry point
# --------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (exit status 2, as before)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _lr_help() -> str:
    rates = ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LEARNING_RATES.items())
    return f"learning rate for every optimizer (default per optimizer: {rates})"


def _add_model_args(p: argparse.ArgumentParser, hidden: str) -> None:
    p.add_argument(
        "--dataset",
        default="digits",
        choices=_datasets.names(),
        metavar="NAME",
        help=f"data set (default digits; one of {', '.join(_datasets.names())})",
    )
    p.add_argument("--path", default=None, help="folder or .npz with the files of mnist / fashion_mnist")
    p.add_argument(
        "--hidden",
        type=_hidden,
        default=_hidden(hidden),
        metavar="SIZES",
        help=f"hidden layer sizes, comma-separated (default {hidden}; 'none' for a linear model)",
    )
    p.add_argument("--activation", type=_activation, default="relu", help="hidden-layer activation (default relu)")
    p.add_argument(
        "--loss",
        type=_loss,
        default=None,
        help="loss name (default: the data set's suggestion, e.g. sparse_categorical_crossentropy for digits)",
    )
    p.add_argument("--seed", type=_non_negative_int, default=0, help="initialisation seed (default 0)")


def _add_training_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=_positive_int, default=None, help="epochs (default %(default)s)")
    p.add_argument("--lr", type=_positive_float, default=None, metavar="LR", help=_lr_help())
    p.add_argument(
        "--grad", choices=MODES, default="manual", help="hand-written backprop (manual, default) or jax.grad (autodiff)"
    )
    p.add_argument(
        "--validation-split",
        type=_fraction,
        default=0.2,
        help="last fraction of the training set held out for validation (default 0.2)",
    )
    p.add_argument(
        "--early-stopping",
        type=_non_negative_int,
        default=None,
        metavar="PATIENCE",
        help="stop when the validation loss has not improved for PATIENCE epochs",
    )


def default_cache_dir() -> str:
    """Where the CLI keeps JAX's persistent compilation cache: ``$FNN_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/fnn/jax``, else ``~/.cache/fnn/jax``."""
    if os.environ.get("FNN_CACHE_DIR"):
        return os.environ["FNN_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "fnn", "jax")


def _add_cache_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cache-dir",
        default=None,
        metavar="DIR",
        help="JAX's persistent compilation cache: a second run compiles nothing the first compiled "
        f"(default {default_cache_dir()}; $FNN_CACHE_DIR sets it, FNN_COMPILATION_CACHE=0 turns the "
        "default off)",
    )
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the compilation cache")


def _cache_dir(args) -> str | None:
    """The cache folder this run uses, or None: ``--no-cache`` wins, then ``--cache-dir``, then
    ``FNN_COMPILATION_CACHE=0``, then the default."""
    if getattr(args, "no_cache", True):
        return None
    if args.cache_dir is not None:
        return args.cache_dir
    if os.environ.get("FNN_COMPILATION_CACHE", "").strip().lower() in ("0", "false", "no", "off"):
        return None
    return default_cache_dir()


def _use_compilation_cache(path: str) -> None:
    """JAX's persistent compilation cache in ``path`` for the rest of this process, for every
    program however small or quick to compile (the CLI compiles many small ones). It takes
    effect only where nothing has been compiled yet in the process, as at the CLI's start."""
    try:
        path = check_path("--cache-dir", path, writable=True, folder=True)
    except ValueError as err:
        raise UsageError(f"{err}; give another or --no-cache") from None
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def build_parser() -> argparse.ArgumentParser:
    """The ``fnn`` argument parser (sub-commands compare, train, gradcheck, datasets)."""
    parser = _Parser(
        prog="fnn",
        description="Fully-connected neural networks in JAX with hand-written "
        "backpropagation: compare optimizers and batch sizes, train, check gradients.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser(
        "compare",
        help="train one network with several optimizers and batch sizes, "
        "print a table, write results.json/csv and plots",
        description="Trains the same network from the same initial parameters (per seed) with "
        "each optimizer and each batch size, then prints final losses, test metric, epochs, "
        "iterations per epoch and wall time (mean ± std over seeds).",
    )
    _add_model_args(p, "64,64")
    _add_training_args(p)
    p.set_defaults(epochs=30)
    p.add_argument(
        "--optimizers",
        type=_optimizer_list,
        default=list(DEFAULT_OPTIMIZERS),
        metavar="NAMES",
        help=f"comma-separated optimizers or 'all' (default {','.join(DEFAULT_OPTIMIZERS)})",
    )
    p.add_argument(
        "--batch-sizes",
        type=_batch_sizes,
        default=[32],
        metavar="SIZES",
        help="comma-separated batch sizes; 'full' = the whole training set (gradient descent), 1 = SGD (default 32)",
    )
    p.add_argument("--seeds", type=_positive_int, default=3, help="seeds per run (default 3)")
    p.add_argument("--out", default="fnn-compare", metavar="DIR", help="output folder (default fnn-compare)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument(
        "--jobs",
        type=_positive_int,
        default=None,
        metavar="N",
        help=f"runs compiled side by side (default: one per core, here {os.cpu_count() or 1})",
    )
    _add_cache_args(p)
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("train", help="train one network with a progress bar; checkpoint save/resume")
    _add_model_args(p, "64,64")
    _add_training_args(p)
    p.set_defaults(epochs=20)
    p.add_argument("--optimizer", type=_optimizer, default="adam", help="optimizer (default adam)")
    p.add_argument("--batch-size", type=_batch_size, default=32, help="batch size or 'full' (default 32)")
    p.add_argument("--save", default=None, metavar="PATH", help="write a checkpoint (.npz) at the end")
    p.add_argument("--resume", default=None, metavar="PATH", help="continue from a checkpoint up to --epochs")
    p.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=1,
        help="1: progress bar (default), 2: one line per epoch, 0: quiet",
    )
    _add_cache_args(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("gradcheck", help="hand-written vs autodiff vs finite-difference gradients, per layer")
    _add_model_args(p, "32")
    p.add_argument("--samples", type=_positive_int, default=32, help="batch used for the check (default 32)")
    p.add_argument("--repeats", type=_positive_int, default=20, help="timed calls per mode (default 20)")
    _add_cache_args(p)
    p.set_defaults(func=_cmd_gradcheck)

    p = sub.add_parser("datasets", help="list the data sets with their task and shapes")
    p.add_argument("--path", default=None, help="folder or .npz of mnist / fashion_mnist, to show their shapes")
    p.set_defaults(func=_cmd_datasets)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fnn`` console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0) or a bad argument (2): a status, also in-process
        return int(stop.code or 0)
    try:
        cache = _cache_dir(args)
        if cache is not None:
            _use_compilation_cache(cache)
        return args.func(args)
    except UsageError as err:
        print(f"fnn {args.command}: error: {err}", file=sys.stderr)
        return 2
    except ImportError as err:
        print(f"fnn {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
