"""The ``fnn`` command line: compare optimizers and batch sizes, train, gradcheck, list data sets.

``fnn compare`` is the lesson's closing advice turned into one command: no optimizer is best
everywhere, so train the same network from the same initial parameters with each optimizer
(and each batch size: ``full`` is gradient descent, ``1`` is SGD, ``32`` mini-batch GD) and
compare losses, test metric, epochs, iterations per epoch and wall time.

Every bad argument exits with status 2 and one line on stderr, as argparse's own errors do.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import sys
import time
from typing import Any, NamedTuple, Sequence

import jax
import numpy as np

from fnn import activations as _activations
from fnn import callbacks as _callbacks
from fnn import checkpoint as _checkpoint
from fnn import data as _data
from fnn import datasets as _datasets
from fnn import losses as _losses
from fnn import metrics as _metrics
from fnn import optimizers as _optimizers
from fnn.grad import MODES, gradcheck, value_and_grad
from fnn.layers import mlp
from fnn.train import History, fit

__all__ = ["main", "build_parser", "DEFAULT_LEARNING_RATES", "DEFAULT_OPTIMIZERS"]

# Rates that train the default digits network well in a few dozen epochs with batch size 32.
DEFAULT_LEARNING_RATES: dict[str, float] = {
    "sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adagrad": 0.05, "rmsprop": 1e-3,
    "adadelta": 1.0, "adam": 2e-3, "adamw": 2e-3, "adamax": 2e-3, "nadam": 2e-3, "radam": 2e-3,
    "rprop": 1e-2, "lion": 3e-4,
}
DEFAULT_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam",
                      "adamw", "nadam", "radam", "lion")
_FILE_DATASETS = ("mnist", "fashion_mnist")


class UsageError(Exception):
    """A bad argument found after parsing (a data set, checkpoint or loss that does not fit)."""


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
            f"expected comma-separated positive layer sizes such as 64,64 (or 'none'), got {text!r}")
    return tuple(int(p) for p in parts)


def _batch_size(text: str) -> int | None:
    """A batch size; ``full`` (None) means the whole training set: gradient descent."""
    if text.strip().lower() == "full":
        return None
    try:
        return _positive_int(text.strip())
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a positive batch size or 'full', got {text!r}") from None


def _batch_sizes(text: str) -> list[int | None]:
    return [_batch_size(p) for p in text.split(",")]


def _optimizer(text: str) -> str:
    name = text.strip().lower()
    if name not in _optimizers.names():
        raise argparse.ArgumentTypeError(
            f"unknown optimizer {text!r}; known optimizers: {', '.join(_optimizers.names())}")
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
            f"unknown activation {text!r}; known activations: {', '.join(_activations.names())}") from None
    return text


def _loss(text: str) -> str:
    try:
        return _losses.get(text).name
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"unknown loss {text!r}; known losses: {', '.join(_losses.names())}") from None


# --------------------------------------------------------------------------------------------
# The problem: data, targets shaped for the loss, the loss and the test metric.
# --------------------------------------------------------------------------------------------


class Problem(NamedTuple):
    name: str
    task: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    output_size: int
    loss: _losses.Loss
    metric: _metrics.Metric


def _make_loss(name: str) -> _losses.Loss:
    # The network's last layer is linear, so every loss that can take logits is told so.
    try:
        return _losses.get(name, from_logits=True)
    except TypeError:
        return _losses.get(name)


def load_problem(dataset: str, loss_name: str | None = None, path: str | None = None) -> Problem:
    """Loads ``dataset`` and shapes its targets for ``loss_name`` (default: the suggested loss).

    Classification labels stay integers for sparse categorical crossentropy and become one-hot
    rows for every other loss. Raises UsageError when the data cannot be had or do not fit.
    """
    info = _datasets.info(dataset)
    if dataset in _FILE_DATASETS and path is None:
        raise UsageError(f"data set {dataset!r} is read from local files: give --path (a folder "
                         "with the four IDX files, or an .npz with x_train, y_train, x_test, y_test)")
    try:
        (x_tr, y_tr), (x_te, y_te) = _datasets.load(dataset, **({"path": path} if path else {}))
    except (ValueError, FileNotFoundError) as err:
        raise UsageError(str(err)) from None
    loss = _make_loss(loss_name or info["loss"])
    out = info["output_size"]
    if info["task"] == "classification":
        out = int(max(y_tr.max(), y_te.max())) + 1
        if loss.name != "sparse_categorical_crossentropy":
            y_tr, y_te = _data.one_hot(y_tr, out), _data.one_hot(y_te, out)
    try:
        _losses.check_targets(loss, y_tr, (y_tr.shape[0], out), name=f"{dataset} targets")
    except ValueError as err:
        raise UsageError(f"loss {loss.name!r} does not fit data set {dataset!r}: {err}") from None
    metric_name = info["metrics"][0]
    metric = _metrics.get(metric_name, loss=loss, y_true_shape=y_tr.shape, y_pred_shape=(1, out))
    return Problem(dataset, info["task"], x_tr, y_tr, x_te, y_te, out, loss, metric)


def _split(problem: Problem, validation_split: float):
    """(train, validation or None): the LAST fraction held out, as Keras's validation_split."""
    if validation_split == 0:
        return (problem.x_train, problem.y_train), None
    try:
        return _data.train_val_split(problem.x_train, problem.y_train, validation_split)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _describe_net(n_in: int, hidden: Sequence[int], n_out: int, activation: str) -> str:
    return "-".join(map(str, (n_in, *hidden, n_out))) + f" ({activation})"


def _lr(name: str, override: float | None) -> float:
    return override if override is not None else DEFAULT_LEARNING_RATES.get(name, 1e-3)


# --------------------------------------------------------------------------------------------
# fnn compare
# --------------------------------------------------------------------------------------------


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    vals = [float(v) for v in values]
    return float(np.mean(vals)), float(np.std(vals)) if len(vals) > 1 else 0.0


def _mean_curve(curves: Sequence[Sequence[float]]) -> list[float]:
    """Per-epoch mean over the seeds that reached that epoch (early stopping may cut some)."""
    longest = max(len(c) for c in curves)
    return [float(np.mean([c[i] for c in curves if len(c) > i])) for i in range(longest)]


def run_comparison(problem: Problem, *, optimizers: Sequence[str], batch_sizes: Sequence[int | None],
                   epochs: int, hidden: Sequence[int], activation: str = "relu", seeds: int = 3,
                   learning_rate: float | None = None, grad: str = "manual",
                   validation_split: float = 0.2, early_stopping: int | None = None,
                   log=None) -> list[dict[str, Any]]:
    """Trains one network per (optimizer, batch size, seed) and returns one dict per run.

    For a given seed every run starts from the same initial parameters and sees the batches in
    the same order. The first fit of each run only compiles (it is timed as ``compile_s``), so
    ``train_s`` is the training time proper.
    """
    (x_tr, y_tr), val = _split(problem, validation_split)
    net = mlp([*hidden, problem.output_size], activation=activation)
    n_in = x_tr.shape[1]
    keys = [jax.random.split(jax.random.PRNGKey(s)) for s in range(seeds)]
    inits = [net.init(k[0], (n_in,)) for k in keys]
    runs = []
    for name in optimizers:
        lr = _lr(name, learning_rate)
        opt = _optimizers.get(name, learning_rate=lr)  # one object: fit reuses its compiled epoch
        for bs in batch_sizes:
            batch = x_tr.shape[0] if bs is None else bs

            def train(seed: int, n_epochs: int):
                cbs = [] if early_stopping is None or val is None else [
                    _callbacks.EarlyStopping(patience=early_stopping, restore_best_weights=True)]
                return fit(net, inits[seed], opt, problem.loss, x_tr, y_tr, batch_size=batch,
                           epochs=n_epochs, shuffle=True, key=keys[seed][1], validation_data=val,
                           metrics=[problem.metric], callbacks=cbs, grad=grad, verbose=0)

            t0 = time.perf_counter()
            train(0, 1)
            compile_s = time.perf_counter() - t0
            per_seed = []
            for seed in range(seeds):
                result = train(seed, epochs)
                h = result.history
                test = _metrics.evaluate(net, result.params, problem.loss, problem.x_test,
                                         problem.y_test, metrics=[problem.metric], batch_size=1024)
                per_seed.append({"seed": seed, "epochs_run": h.epochs_run, "history": h.history,
                                 "epoch_times": h.times, "train_s": float(sum(h.times)),
                                 "stop_reason": h.stop_reason, "test": test})
            runs.append(_summarise(name, lr, bs, batch, h.iterations_per_epoch, compile_s, per_seed,
                                   problem.metric.name))
            if log is not None:
                r = runs[-1]
                log(f"{name:>9} batch {r['batch']:>5}: compiled in {compile_s:5.1f} s, {seeds} seed(s) "
                    f"trained in {sum(s['train_s'] for s in per_seed):6.2f} s, "
                    f"final loss {r['summary']['loss'][0]:.4g}")
    return runs


def _summarise(name, lr, bs, batch, iterations, compile_s, per_seed, metric_name) -> dict[str, Any]:
    summary = {
        "epochs": _mean_std([s["epochs_run"] for s in per_seed]),
        "loss": _mean_std([s["history"]["loss"][-1] for s in per_seed]),
        "train_s": _mean_std([s["train_s"] for s in per_seed]),
        "test_" + metric_name: _mean_std([s["test"][metric_name] for s in per_seed]),
        "test_loss": _mean_std([s["test"]["loss"] for s in per_seed]),
    }
    if "val_loss" in per_seed[0]["history"]:
        summary["val_loss"] = _mean_std([s["history"]["val_loss"][-1] for s in per_seed])
    return {"optimizer": name, "learning_rate": lr, "batch": "full" if bs is None else str(bs),
            "batch_size": batch, "iterations_per_epoch": iterations, "compile_s": compile_s,
            "summary": summary, "seeds": per_seed}


def _cell(mean: float, std: float, fmt: str, with_std: bool) -> str:
    if not math.isfinite(mean):
        return "diverged"
    return f"{mean:{fmt}} ± {std:{fmt}}" if with_std else f"{mean:{fmt}}"


def format_table(runs: Sequence[dict[str, Any]], metric_name: str) -> str:
    """The comparison as a Markdown table (mean ± std over seeds when there are several)."""
    with_std = len(runs[0]["seeds"]) > 1
    head = ["optimizer", "lr", "batch", "it/epoch", "epochs", "train loss", "val loss",
            f"test {metric_name}", "time (s)"]
    rows = []
    for r in runs:
        s = r["summary"]
        epochs = s["epochs"][0]
        rows.append([
            r["optimizer"], f"{r['learning_rate']:g}",
            r["batch"] if r["batch"] != "full" else f"full ({r['batch_size']})",
            str(r["iterations_per_epoch"]), f"{epochs:g}",
            _cell(*s["loss"], ".4f", with_std),
            _cell(*s["val_loss"], ".4f", with_std) if "val_loss" in s else "-",
            _cell(*s["test_" + metric_name], ".4f", with_std),
            _cell(*s["train_s"], ".2f", with_std),
        ])
    widths = [max(len(c) for c in col) for col in zip(head, *rows)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                     + [line(r) for r in rows])


def _write_results(out_dir: str, config: dict, runs: Sequence[dict], metric_name: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump({"config": config, "runs": runs}, f, indent=1, allow_nan=True)
    stats = ["loss", "val_loss", "test_" + metric_name, "test_loss", "epochs", "train_s"]
    with open(os.path.join(out_dir, "results.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["optimizer", "learning_rate", "batch", "batch_size", "iterations_per_epoch",
                    "seeds", "compile_s"] + [f"{k}_{m}" for k in stats for m in ("mean", "std")])
        for r in runs:
            s = r["summary"]
            w.writerow([r["optimizer"], r["learning_rate"], r["batch"], r["batch_size"],
                        r["iterations_per_epoch"], len(r["seeds"]), f"{r['compile_s']:.3f}"]
                       + [f"{v:.6g}" for k in stats for v in s.get(k, (math.nan, math.nan))])


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")  # files only: works without a display
    import matplotlib.pyplot as plt
    return plt


def plot_runs(runs: Sequence[dict[str, Any]], out_dir: str, title: str) -> list[str]:
    """Writes loss_vs_epoch.png and loss_vs_time.png (train and validation panels, one line per
    run, mean over seeds); returns the paths, or [] when matplotlib is missing."""
    plt = _pyplot()
    if plt is None:
        return []
    names = sorted({r["optimizer"] for r in runs}, key=[r["optimizer"] for r in runs].index)
    batches = sorted({r["batch"] for r in runs}, key=[r["batch"] for r in runs].index)
    cmap = plt.get_cmap("tab20" if len(names) > 10 else "tab10")
    styles = ["-", "--", ":", "-."]
    panels = ["loss"] + (["val_loss"] if "val_loss" in runs[0]["seeds"][0]["history"] else [])
    paths = []
    for x_name in ("epoch", "time"):
        fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.8), squeeze=False)
        for ax, key in zip(axes[0], panels):
            for r in runs:
                y = _mean_curve([s["history"][key] for s in r["seeds"]])
                if x_name == "epoch":
                    x = np.arange(1, len(y) + 1)
                else:
                    x = np.cumsum(_mean_curve([s["epoch_times"] for s in r["seeds"]]))
                label = r["optimizer"] + (f" (B={r['batch']})" if len(batches) > 1 else "")
                ax.plot(x, y, styles[batches.index(r["batch"]) % len(styles)],
                        color=cmap(names.index(r["optimizer"]) % cmap.N), label=label, linewidth=1.5)
            ax.set_yscale("log")
            if x_name == "time":
                ax.set_xscale("log")
            else:
                ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
            ax.set_xlabel("epoch" if x_name == "epoch" else "wall time, compilation excluded (s)")
            ax.set_ylabel("training loss" if key == "loss" else "validation loss")
            ax.grid(True, which="both", alpha=0.3)
        axes[0][-1].legend(fontsize="small", ncol=1 + len(runs) // 12, loc="upper right")
        fig.suptitle(title, fontsize="medium")
        fig.tight_layout()
        path = os.path.join(out_dir, f"loss_vs_{x_name}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def _cmd_compare(args) -> int:
    problem = load_problem(args.dataset, args.loss, args.path)
    if args.validation_split == 0 and args.early_stopping is not None:
        raise UsageError("--early-stopping watches the validation loss: give --validation-split > 0")
    n_val = 0 if args.validation_split == 0 else len(_split(problem, args.validation_split)[1][0])
    n_tr = len(problem.x_train) - n_val
    net_text = _describe_net(problem.x_train.shape[1], args.hidden, problem.output_size, args.activation)
    print(f"fnn compare: {problem.name}, {n_tr} train / {n_val} validation / {len(problem.x_test)} test "
          f"samples; network {net_text}; loss {problem.loss.name}; {args.epochs} epochs; "
          f"{args.seeds} seed(s); grad {args.grad}", flush=True)
    t0 = time.perf_counter()
    runs = run_comparison(problem, optimizers=args.optimizers, batch_sizes=args.batch_sizes,
                          epochs=args.epochs, hidden=args.hidden, activation=args.activation,
                          seeds=args.seeds, learning_rate=args.lr, grad=args.grad,
                          validation_split=args.validation_split, early_stopping=args.early_stopping,
                          log=lambda m: print(m, file=sys.stderr, flush=True))
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
    config.update(n_train=n_tr, n_validation=n_val, n_test=len(problem.x_test), network=net_text,
                  loss_name=problem.loss.name, metric=metric_name, wall_s=wall)
    _write_results(args.out, config, runs, metric_name)
    plots = [] if args.no_plots else plot_runs(runs, args.out, f"{problem.name}: {net_text}, {args.seeds} seed(s)")
    print(f"wrote {os.path.join(args.out, 'results.json')}, results.csv"
          + (", " + ", ".join(os.path.basename(p) for p in plots) if plots else ""))
    if not plots and not args.no_plots:
        print("plots skipped: matplotlib is not installed (pip install \"fnn[examples]\")", file=sys.stderr)
    print(f"total wall time {wall:.1f} s (including compilation)")
    return 0


# --------------------------------------------------------------------------------------------
# fnn train
# --------------------------------------------------------------------------------------------


def _merge_histories(old: History, new: History) -> History:
    merged = History(new.iterations_per_epoch)
    for h in (old, new):
        for epoch, t, i in zip(h.epochs, h.times, range(len(h.epochs))):
            merged.append(epoch, {k: v[i] for k, v in h.history.items()}, t)
    merged.stop_reason, merged.stopped_epoch = new.stop_reason, new.stopped_epoch
    return merged


def _cmd_train(args) -> int:
    problem = load_problem(args.dataset, args.loss, args.path)
    if args.early_stopping is not None and args.validation_split == 0:
        raise UsageError("--early-stopping watches the validation loss: give --validation-split > 0")
    (x_tr, y_tr), val = _split(problem, args.validation_split)
    net = mlp([*args.hidden, problem.output_size], activation=args.activation)
    lr = _lr(args.optimizer, args.lr)
    opt = _optimizers.get(args.optimizer, learning_rate=lr)
    init_key, key = jax.random.split(jax.random.PRNGKey(args.seed))
    params = net.init(init_key, (x_tr.shape[1],))
    opt_state, initial_epoch, old_history = None, 0, History()
    if args.resume:
        try:
            ckpt = _checkpoint.load(args.resume, params=params, opt_state=opt.init(params))
        except (ValueError, FileNotFoundError) as err:
            raise UsageError(f"--resume: {err} (the network and optimizer options must match "
                             "the run that wrote it)") from None
        params, opt_state, initial_epoch = ckpt.params, ckpt.opt_state, ckpt.epoch
        key = ckpt.key if ckpt.key is not None else key
        old_history = History.from_dict(ckpt.history or {})
        print(f"resumed from {args.resume} at epoch {initial_epoch}", flush=True)
    batch = x_tr.shape[0] if args.batch_size is None else args.batch_size
    print(f"fnn train: {problem.name}, network {_describe_net(x_tr.shape[1], args.hidden, problem.output_size, args.activation)}, "
          f"{args.optimizer}(lr={lr:g}), batch {batch} ({math.ceil(len(x_tr) / batch)} it/epoch), "
          f"loss {problem.loss.name}", flush=True)
    cbs = [] if args.early_stopping is None else [
        _callbacks.EarlyStopping(patience=args.early_stopping, restore_best_weights=True)]
    result = fit(net, params, opt, problem.loss, x_tr, y_tr, batch_size=batch, epochs=args.epochs,
                 key=key, validation_data=val, metrics=[problem.metric], callbacks=cbs, grad=args.grad,
                 verbose=args.verbose, initial_epoch=initial_epoch, opt_state=opt_state)
    history = _merge_histories(old_history, result.history)
    if history.stop_reason == "early_stopping":
        print(f"early stopping after epoch {history.stopped_epoch + 1} (best weights restored)")
    last = {k: v[-1] for k, v in history.history.items() if v}
    if last:
        print("final epoch: " + ", ".join(f"{k} {v:.4f}" for k, v in last.items()))
    test = _metrics.evaluate(net, result.params, problem.loss, problem.x_test, problem.y_test,
                             metrics=[problem.metric], batch_size=1024)
    print("test: " + ", ".join(f"{k} {v:.4f}" for k, v in test.items()))
    if args.save:
        epoch = initial_epoch + result.history.epochs_run
        _checkpoint.save(args.save, params=result.params, opt_state=result.opt_state, epoch=epoch,
                         key=key, history=history.to_dict(), dataset=problem.name,
                         hidden=list(args.hidden), activation=args.activation,
                         optimizer=args.optimizer, learning_rate=lr)
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
    x, y = problem.x_train[:args.samples], problem.y_train[:args.samples]
    with jax.enable_x64(True):
        params64 = net.init(jax.random.PRNGKey(args.seed), (n_in,), dtype=np.float64)
        report = gradcheck(net, problem.loss, params64, x.astype(np.float64), y)
    print(f"fnn gradcheck: {problem.name}, network {_describe_net(n_in, args.hidden, problem.output_size, args.activation)}, "
          f"loss {problem.loss.name}, {len(x)} samples, float64\n")
    print(report)
    # Speed: both gradients jitted, float32, on the whole training set.
    params = net.init(jax.random.PRNGKey(args.seed), (n_in,))
    xs, ys = jax.device_put(problem.x_train), jax.device_put(problem.y_train)
    seconds = {m: _median_seconds(jax.jit(value_and_grad(net, problem.loss, m)), params, xs, ys,
                                  repeats=args.repeats) for m in MODES}
    print(f"\ntime per value_and_grad on {len(xs)} samples (float32, jitted, median of {args.repeats}): "
          f"manual {seconds['manual'] * 1e3:.3f} ms, autodiff {seconds['autodiff'] * 1e3:.3f} ms, "
          f"manual/autodiff ratio {seconds['manual'] / seconds['autodiff']:.2f}")
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
        if name not in _FILE_DATASETS or args.path:
            try:
                (x_tr, y_tr), (x_te, _) = _datasets.load(name, **({"path": args.path} if name in _FILE_DATASETS else {}))
                shapes = [str(x_tr.shape), str(y_tr.shape), str(x_te.shape)]
            except (ImportError, ValueError, FileNotFoundError) as err:
                shapes = [f"unavailable: {str(err).splitlines()[0][:60]}", "", ""]
        rows.append([name, info["task"], str(info["num_classes"] or "-"), info["source"], info["loss"], *shapes])
    widths = [max(len(c) for c in col) for col in zip(head, *rows)]
    for r in [head, ["-" * w for w in widths], *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
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
    p.add_argument("--dataset", default="digits", choices=_datasets.names(), metavar="NAME",
                   help=f"data set (default digits; one of {', '.join(_datasets.names())})")
    p.add_argument("--path", default=None, help="folder or .npz with the files of mnist / fashion_mnist")
    p.add_argument("--hidden", type=_hidden, default=_hidden(hidden), metavar="SIZES",
                   help=f"hidden layer sizes, comma-separated (default {hidden}; 'none' for a linear model)")
    p.add_argument("--activation", type=_activation, default="relu", help="hidden-layer activation (default relu)")
    p.add_argument("--loss", type=_loss, default=None,
                   help="loss name (default: the data set's suggestion, e.g. sparse_categorical_crossentropy for digits)")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="initialisation seed (default 0)")


def _add_training_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=_positive_int, default=None, help="epochs (default %(default)s)")
    p.add_argument("--lr", type=_positive_float, default=None, metavar="LR", help=_lr_help())
    p.add_argument("--grad", choices=MODES, default="manual",
                   help="hand-written backprop (manual, default) or jax.grad (autodiff)")
    p.add_argument("--validation-split", type=_fraction, default=0.2,
                   help="last fraction of the training set held out for validation (default 0.2)")
    p.add_argument("--early-stopping", type=_non_negative_int, default=None, metavar="PATIENCE",
                   help="stop when the validation loss has not improved for PATIENCE epochs")


def build_parser() -> argparse.ArgumentParser:
    """The ``fnn`` argument parser (sub-commands compare, train, gradcheck, datasets)."""
    parser = _Parser(prog="fnn", description="Fully-connected neural networks in JAX with hand-written "
                     "backpropagation: compare optimizers and batch sizes, train, check gradients.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("compare", help="train one network with several optimizers and batch sizes, "
                       "print a table, write results.json/csv and plots",
                       description="Trains the same network from the same initial parameters (per seed) with "
                       "each optimizer and each batch size, then prints final losses, test metric, epochs, "
                       "iterations per epoch and wall time (mean ± std over seeds).")
    _add_model_args(p, "64,64")
    _add_training_args(p)
    p.set_defaults(epochs=30)
    p.add_argument("--optimizers", type=_optimizer_list, default=list(DEFAULT_OPTIMIZERS), metavar="NAMES",
                   help=f"comma-separated optimizers or 'all' (default {','.join(DEFAULT_OPTIMIZERS)})")
    p.add_argument("--batch-sizes", type=_batch_sizes, default=[32], metavar="SIZES",
                   help="comma-separated batch sizes; 'full' = the whole training set (gradient descent), "
                        "1 = SGD (default 32)")
    p.add_argument("--seeds", type=_positive_int, default=3, help="seeds per run (default 3)")
    p.add_argument("--out", default="fnn-compare", metavar="DIR", help="output folder (default fnn-compare)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("train", help="train one network with a progress bar; checkpoint save/resume")
    _add_model_args(p, "64,64")
    _add_training_args(p)
    p.set_defaults(epochs=20)
    p.add_argument("--optimizer", type=_optimizer, default="adam", help="optimizer (default adam)")
    p.add_argument("--batch-size", type=_batch_size, default=32, help="batch size or 'full' (default 32)")
    p.add_argument("--save", default=None, metavar="PATH", help="write a checkpoint (.npz) at the end")
    p.add_argument("--resume", default=None, metavar="PATH", help="continue from a checkpoint up to --epochs")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                   help="1: progress bar (default), 2: one line per epoch, 0: quiet")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("gradcheck", help="hand-written vs autodiff vs finite-difference gradients, per layer")
    _add_model_args(p, "32")
    p.add_argument("--samples", type=_positive_int, default=32, help="batch used for the check (default 32)")
    p.add_argument("--repeats", type=_positive_int, default=20, help="timed calls per mode (default 20)")
    p.set_defaults(func=_cmd_gradcheck)

    p = sub.add_parser("datasets", help="list the data sets with their task and shapes")
    p.add_argument("--path", default=None, help="folder or .npz of mnist / fashion_mnist, to show their shapes")
    p.set_defaults(func=_cmd_datasets)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fnn`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as err:
        print(f"fnn {args.command}: error: {err}", file=sys.stderr)
        return 2
    except ImportError as err:
        print(f"fnn {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
