"""The record ``fnn compare`` makes of one run (optimizer x batch size): its settings, the
summary over seeds the table shows, the curves the plots draw, and the line printed as it ends.

What a record reports, and from which weights:

* ``reported_epoch`` (per seed, counted from 0): the epoch whose weights the test metrics use,
  and whose training and validation losses the summary reports. Without early stopping it is
  the last epoch; with it, the best one by validation loss, whose weights
  ``EarlyStopping(restore_best_weights=True)`` restored. The validation loss and the test
  metrics are therefore of the same weights; the training loss is that epoch's mean of its
  batch losses, each computed before its update (Keras's ``loss``), not of those weights.
* ``train_s``: training time, compilation excluded. The seeds of a run train together in ONE
  vmapped program (``fnn.fit_many``) unless early stopping needs a ``fit`` per seed
  (``seeds_together``): the time is then that program's, shared by its seeds, and has no
  spread over seeds (``summary["train_s"] == [time, None]``); with a ``fit`` per seed it is
  each seed's own, summarised as mean and standard deviation. By default (not ``apart``, no
  early stopping) a batch size's runs share one program too (``fnn.train._together``: each
  run's fit_many epoch, one after the other; ``runs_together`` says how many), whose
  ``compile_s`` and ``train_s`` they share: a program per run compiled the network's kernels
  once per run, ~3x the compile time of the default job. Programs that train side by side
  (``train_threads``; the record's ``train_jobs`` says how many at a time) share the machine,
  and each one's time includes that sharing; ``program`` numbers the program that trained the
  run, the same for the runs that share one.
* ``curves``: what the plots draw, per epoch (counted from 1): the mean over seeds of the
  training and validation losses and of the cumulative training time. A seed that early
  stopping ended counts with its last epoch's value for the epochs after it stopped, so every
  point is a mean over all the seeds; the last time point is ``summary["train_s"][0]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    # the population std (ddof=0, NumPy's default), as the table's note says
    vals = [float(v) for v in values]
    return float(np.mean(vals)), float(np.std(vals)) if len(vals) > 1 else 0.0


def _held_mean(series: Sequence[Sequence[float]]) -> list[float]:
    """Per-epoch mean over the seeds; a seed whose series ended (early stopping) counts with
    its last value, so that every point averages all the seeds."""
    longest = max(len(s) for s in series)
    return [float(np.mean([s[min(i, len(s) - 1)] for s in series])) for i in range(longest)]


def log_line(run: dict[str, Any], seeds: int) -> str:
    """The line printed as a run finishes: its compile and training times, its final loss."""
    shared, together = run["runs_together"], run["seeds_together"]
    trained = run["summary"]["train_s"][0] * (1 if together or shared > 1 else seeds)
    if shared > 1:
        compiled = f"compiled in {run['compile_s']:5.1f} s (one program, {shared} runs)"
        how = f" (in that program, {shared} runs together)"
    else:
        compiled = f"compiled in {run['compile_s']:5.1f} s"
        how = " (together, one vmapped program)" if together else ""
    return (
        f"{run['optimizer']:>9} batch {run['batch']:>5}: {compiled}, {seeds} seed(s) trained in {trained:6.2f} s"
        f"{how}, final loss {run['summary']['loss'][0]:.4g}"
    )


def summarise(
    name: str,
    lr: float,
    bs: int | None,
    batch: int,
    iterations: int,
    compile_s: float,
    per_seed: list[dict[str, Any]],
    metric_name: str,
    *,
    together: bool,
    runs_together: int = 1,
    one_program: bool = False,
    early_stopping: int | None,
) -> dict[str, Any]:
    """The run's record: its settings, the summary over seeds (each value ``[mean, std]``,
    the losses at each seed's ``reported_epoch``) and the curves the plots draw."""

    def at_reported(key: str) -> list[float]:
        return [s["history"][key][s["reported_epoch"]] for s in per_seed]

    # one program trained all the seeds (a fit_many's, or fit_together's with maybe other runs):
    # its time is the run's, and no spread was measured
    shared = together or one_program
    summary: dict[str, Any] = {
        "epochs": _mean_std([s["epochs_run"] for s in per_seed]),
        "loss": _mean_std(at_reported("loss")),
        "train_s": (per_seed[0]["train_s"], None) if shared else _mean_std([s["train_s"] for s in per_seed]),
        "test_" + metric_name: _mean_std([s["test"][metric_name] for s in per_seed]),
        "test_loss": _mean_std([s["test"]["loss"] for s in per_seed]),
    }
    has_val = "val_loss" in per_seed[0]["history"]
    if has_val:
        summary["val_loss"] = _mean_std(at_reported("val_loss"))
    if early_stopping is not None:
        summary["best_epoch"] = _mean_std([s["reported_epoch"] + 1 for s in per_seed])  # counted from 1
    cumulative = [np.cumsum(s["epoch_times"]).tolist() or [0.0] for s in per_seed]
    curves = {
        "epoch": list(range(1, max(s["epochs_run"] for s in per_seed) + 1)),
        # (shared: the seeds' times are the one program's, the same list for each)
        "time_s": cumulative[0] if shared else _held_mean(cumulative),
        "loss": _held_mean([s["history"]["loss"] for s in per_seed]),
    }
    if has_val:
        curves["val_loss"] = _held_mean([s["history"]["val_loss"] for s in per_seed])
    return {
        "optimizer": name,
        "learning_rate": lr,
        "batch": "full" if bs is None else str(bs),
        "batch_size": batch,
        "iterations_per_epoch": iterations,
        "compile_s": compile_s,
        "seeds_together": together,
        "runs_together": runs_together,
        "early_stopping": early_stopping,
        "summary": summary,
        "curves": curves,
        "seeds": per_seed,
    }
