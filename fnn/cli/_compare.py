"""The engine behind ``fnn compare``: load a problem, train every optimizer x batch size x seed
from the same initial parameters, summarise (mean ± std over seeds), and write the table,
``results.json``, ``results.csv`` and the loss plots. The argument handling lives in
:mod:`fnn.cli`."""

from __future__ import annotations

import concurrent.futures
import csv
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn import (
    callbacks as _callbacks,
    data as _data,
    datasets as _datasets,
    losses as _losses,
    metrics as _metrics,
    optimizers as _optimizers,
)
from fnn.layers import mlp
from fnn.train import evaluate, fit, fit_many

# Rates that train the default digits network well in a few dozen epochs with batch size 32.
DEFAULT_LEARNING_RATES: dict[str, float] = {
    "sgd": 0.1,
    "momentum": 0.05,
    "nesterov": 0.05,
    "adagrad": 0.05,
    "rmsprop": 1e-3,
    "adadelta": 1.0,
    "adam": 2e-3,
    "adamw": 2e-3,
    "adamax": 2e-3,
    "nadam": 2e-3,
    "radam": 2e-3,
    "rprop": 1e-2,
    "lion": 3e-4,
}
FILE_DATASETS = ("mnist", "fashion_mnist")


class UsageError(Exception):
    """A bad argument found after parsing (a data set, checkpoint or loss that does not fit)."""


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
    if dataset in FILE_DATASETS and path is None:
        raise UsageError(
            f"data set {dataset!r} is read from local files: give --path (a folder "
            "with the four IDX files, or an .npz with x_train, y_train, x_test, y_test)"
        )
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


def split_problem(problem: Problem, validation_split: float):
    """(train, validation or None): the LAST fraction held out, as Keras's validation_split."""
    if validation_split == 0:
        return (problem.x_train, problem.y_train), None
    try:
        return _data.train_val_split(problem.x_train, problem.y_train, validation_split)
    except ValueError as err:
        raise UsageError(str(err)) from None


def describe_net(n_in: int, hidden: Sequence[int], n_out: int, activation: str) -> str:
    return "-".join(map(str, (n_in, *hidden, n_out))) + f" ({activation})"


def default_learning_rate(name: str, override: float | None) -> float:
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


def compile_concurrently(
    warm_up: Callable[[Any], None], jobs: Sequence[Any], threads: int | None = None
) -> list[float]:
    """Runs ``warm_up(job)`` for every job in a pool of ``threads`` threads (default one per
    core) and returns each one's wall seconds. XLA compiles with Python's GIL released, so the
    runs' programs compile side by side (tracing them still takes turns); each time includes
    waiting for the others."""

    def timed(job: Any) -> float:
        t0 = time.perf_counter()
        warm_up(job)
        return time.perf_counter() - t0

    workers = max(1, min(len(jobs), threads or os.cpu_count() or 1))
    if workers == 1:
        return [timed(job) for job in jobs]
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(timed, jobs))


def run_comparison(
    problem: Problem,
    *,
    optimizers: Sequence[str],
    batch_sizes: Sequence[int | None],
    epochs: int,
    hidden: Sequence[int],
    activation: str = "relu",
    seeds: int = 3,
    learning_rate: float | None = None,
    grad: str = "manual",
    validation_split: float = 0.2,
    early_stopping: int | None = None,
    log=None,
    compile_threads: int | None = None,
) -> list[dict[str, Any]]:
    """Trains one network per (optimizer, batch size, seed) and returns one dict per run.

    For a given seed every run starts from the same initial parameters and sees the batches in
    the same order. The seeds of a run train together, vmapped in one program (``fnn.fit_many``);
    each seed's ``train_s`` is then the shared wall time divided by the number of seeds. Every
    run is first warmed up for one epoch, which compiles its programs, the runs side by side in
    threads (``compile_threads``, default one per core; :func:`compile_concurrently`; each run's
    ``compile_s``), so ``train_s`` is the
    training time proper.
    """
    (x_tr, y_tr), val = split_problem(problem, validation_split)
    net = mlp([*hidden, problem.output_size], activation=activation)
    n_in = x_tr.shape[1]
    keys = [jax.random.split(jax.random.PRNGKey(s)) for s in range(seeds)]
    inits = [net.init(k[0], (n_in,)) for k in keys]
    # Seeds train together in one compiled program unless per-seed early stopping needs fit's callbacks.
    together = seeds > 1 and (early_stopping is None or val is None)
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *inits)
    stacked_keys = jnp.stack([k[1] for k in keys])
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

    def warm_up(config) -> None:
        # One epoch compiles every program the run needs (and the runs of equal settings share them).
        _, _, opt, _, _, same = config
        if together:
            fit_many(net, stacked, opt, problem.loss, x_tr, y_tr, epochs=1, key=stacked_keys, **same)
        else:
            fit(net, inits[0], opt, problem.loss, x_tr, y_tr, epochs=1, key=keys[0][1], **same)

    compile_times = compile_concurrently(warm_up, configs, compile_threads)
    runs = []
    for (name, lr, opt, bs, batch, same), compile_s in zip(configs, compile_times, strict=True):
        if together:
            # All seeds in one vmapped program (fnn.fit_many); each equals its own fit.
            many = fit_many(net, stacked, opt, problem.loss, x_tr, y_tr, epochs=epochs, key=stacked_keys, **same)
            results = [many.result(i) for i in range(seeds)]
        else:
            results = []
        per_seed: list[dict[str, Any]] = []
        for seed in range(seeds):
            if together:
                result = results[seed]
            else:
                cbs = (
                    []
                    if early_stopping is None or val is None
                    else [_callbacks.EarlyStopping(patience=early_stopping, restore_best_weights=True)]
                )
                result = fit(
                    net,
                    inits[seed],
                    opt,
                    problem.loss,
                    x_tr,
                    y_tr,
                    epochs=epochs,
                    key=keys[seed][1],
                    callbacks=cbs,
                    **same,
                )
            h = result.history
            test = evaluate(
                net,
                result.params,
                problem.loss,
                problem.x_test,
                problem.y_test,
                metrics=[problem.metric],
                batch_size=1024,
            )
            per_seed.append(
                {
                    "seed": seed,
                    "epochs_run": h.epochs_run,
                    "history": h.history,
                    "epoch_times": h.times,
                    "train_s": float(sum(h.times)) / (seeds if together else 1),
                    "stop_reason": h.stop_reason,
                    "test": test,
                }
            )
        runs.append(_summarise(name, lr, bs, batch, h.iterations_per_epoch, compile_s, per_seed, problem.metric.name))
        if log is not None:
            r = runs[-1]
            log(
                f"{name:>9} batch {r['batch']:>5}: compiled in {compile_s:5.1f} s, {seeds} seed(s) "
                f"trained in {sum(s['train_s'] for s in per_seed):6.2f} s, "
                f"final loss {r['summary']['loss'][0]:.4g}"
            )
    return runs


def _summarise(name, lr, bs, batch, iterations, compile_s, per_seed, metric_name) -> dict[str, Any]:
    summary: dict[str, tuple[float, float]] = {
        "epochs": _mean_std([s["epochs_run"] for s in per_seed]),
        "loss": _mean_std([s["history"]["loss"][-1] for s in per_seed]),
        "train_s": _mean_std([s["train_s"] for s in per_seed]),
        "test_" + metric_name: _mean_std([s["test"][metric_name] for s in per_seed]),
        "test_loss": _mean_std([s["test"]["loss"] for s in per_seed]),
    }
    if "val_loss" in per_seed[0]["history"]:
        summary["val_loss"] = _mean_std([s["history"]["val_loss"][-1] for s in per_seed])
    return {
        "optimizer": name,
        "learning_rate": lr,
        "batch": "full" if bs is None else str(bs),
        "batch_size": batch,
        "iterations_per_epoch": iterations,
        "compile_s": compile_s,
        "summary": summary,
        "seeds": per_seed,
    }


def _cell(mean_std: tuple[float, float], fmt: str, with_std: bool) -> str:
    mean, std = mean_std
    if not math.isfinite(mean):
        return "diverged"
    return f"{mean:{fmt}} ± {std:{fmt}}" if with_std else f"{mean:{fmt}}"


def format_table(runs: Sequence[dict[str, Any]], metric_name: str) -> str:
    """The comparison as a Markdown table (mean ± std over seeds when there are several)."""
    with_std = len(runs[0]["seeds"]) > 1
    head = [
        "optimizer",
        "lr",
        "batch",
        "it/epoch",
        "epochs",
        "train loss",
        "val loss",
        f"test {metric_name}",
        "time (s)",
    ]
    rows = []
    for r in runs:
        s = r["summary"]
        epochs = s["epochs"][0]
        rows.append(
            [
                r["optimizer"],
                f"{r['learning_rate']:g}",
                r["batch"] if r["batch"] != "full" else f"full ({r['batch_size']})",
                str(r["iterations_per_epoch"]),
                f"{epochs:g}",
                _cell(s["loss"], ".4f", with_std),
                _cell(s["val_loss"], ".4f", with_std) if "val_loss" in s else "-",
                _cell(s["test_" + metric_name], ".4f", with_std),
                _cell(s["train_s"], ".3f", with_std),
            ]
        )
    widths = [max(len(c) for c in col) for col in zip(head, *rows, strict=True)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows])


def write_results(out_dir: str, config: dict, runs: Sequence[dict], metric_name: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump({"config": config, "runs": runs}, f, indent=1, allow_nan=True)
    stats = ["loss", "val_loss", "test_" + metric_name, "test_loss", "epochs", "train_s"]
    with open(os.path.join(out_dir, "results.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["optimizer", "learning_rate", "batch", "batch_size", "iterations_per_epoch", "seeds", "compile_s"]
            + [f"{k}_{m}" for k in stats for m in ("mean", "std")]
        )
        for r in runs:
            s = r["summary"]
            w.writerow(
                [
                    r["optimizer"],
                    r["learning_rate"],
                    r["batch"],
                    r["batch_size"],
                    r["iterations_per_epoch"],
                    len(r["seeds"]),
                    f"{r['compile_s']:.3f}",
                ]
                + [f"{v:.6g}" for k in stats for v in s.get(k, (math.nan, math.nan))]
            )


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
    # tab20's dark shades first: ten well-separated colours before any light twin is needed.
    palette = [plt.get_cmap("tab20")(2 * i + j) for j in (0, 1) for i in range(10)]
    styles = ["-", "--", ":", "-."]
    panels = ["loss"] + (["val_loss"] if "val_loss" in runs[0]["seeds"][0]["history"] else [])
    paths = []
    for x_name in ("epoch", "time"):
        fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.8), squeeze=False)
        for ax, key in zip(axes[0], panels, strict=True):
            for r in runs:
                y = _mean_curve([s["history"][key] for s in r["seeds"]])
                if x_name == "epoch":
                    x = np.arange(1, len(y) + 1)
                else:
                    x = np.cumsum(_mean_curve([s["epoch_times"] for s in r["seeds"]]))
                label = r["optimizer"] + (f" (B={r['batch']})" if len(batches) > 1 else "")
                ax.plot(
                    x,
                    y,
                    styles[batches.index(r["batch"]) % len(styles)],
                    color=palette[names.index(r["optimizer"]) % len(palette)],
                    label=label,
                    linewidth=1.5,
                )
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
