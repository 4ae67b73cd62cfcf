"""What ``fnn compare`` prints and writes from the runs' records (``_compare.py``): the table and
the notes that say what its numbers are, ``results.json``, ``results.csv`` and the loss plots.
Everything here reads the records only, so the table, the files and the plots cannot disagree.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import secrets
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from fnn._oserrors import writing
from fnn.cli._common import csv_cell, number

RESULT_FILES = ("results.json", "results.csv")
PLOT_FILES = ("loss_vs_epoch.png", "loss_vs_time.png")


# --------------------------------------------------------------------------------------------
# The table and its notes.
# --------------------------------------------------------------------------------------------


def _seeds(runs: Sequence[dict[str, Any]]) -> int:
    return len(runs[0]["seeds"]) if runs else 0


def _early_stopping(runs: Sequence[dict[str, Any]]) -> int | None:
    return runs[0].get("early_stopping") if runs else None


def _number_pair(mean: float, std: float) -> str:
    """``mean ± std`` with the mean as ``fit`` logs it (:func:`number`: 4 decimals, e-notation
    below 1e-3) and the std in the mean's notation, so that the two read alike."""
    text = number(mean)
    return f"{text} ± {std:.4e}" if "e" in text else f"{text} ± {std:.4f}"


def _float(value: float | None) -> float:
    """A number of a record, NaN for the null that ``results.json`` writes for NaN and ±inf."""
    return math.nan if value is None else value


def _cell(mean_std: Sequence[Any], with_std: bool, seconds: bool = False) -> str:
    mean, std = mean_std
    if not math.isfinite(_float(mean)):
        return "diverged"
    if not with_std or std is None:  # one seed, or a time shared by the seeds
        return f"{mean:.3f}" if seconds else number(mean)
    return f"{mean:.3f} ± {std:.3f}" if seconds else _number_pair(mean, std)


def format_table(runs: Sequence[dict[str, Any]], metric_name: str) -> str:
    """The comparison as a Markdown table, one row per run (mean ± std over seeds when there
    are several); :func:`table_notes` says what its columns hold."""
    with_std = _seeds(runs) > 1
    stopping = _early_stopping(runs) is not None
    head = ["optimizer", "lr", "batch", "it/epoch", "epochs"] + (["best epoch"] if stopping else [])
    head += ["train loss", "val loss", f"test {metric_name}", "time (s)"]
    rows = []
    for r in runs:
        s = r["summary"]
        rows.append(
            [
                r["optimizer"],
                f"{r['learning_rate']:g}",
                r["batch"] if r["batch"] != "full" else f"full ({r['batch_size']})",
                str(r["iterations_per_epoch"]),
                f"{s['epochs'][0]:g}",
                *([f"{s['best_epoch'][0]:g}"] if stopping else []),
                _cell(s["loss"], with_std),
                _cell(s["val_loss"], with_std) if "val_loss" in s else "-",
                _cell(s["test_" + metric_name], with_std),
                _cell(s["train_s"], with_std, seconds=True),
            ]
        )
    widths = [max(len(c) for c in col) for col in zip(head, *rows, strict=True)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows])


def curve_note(runs: Sequence[dict[str, Any]]) -> str:
    """What a plotted line is: the mean over the seeds, and how a seed that stopped early counts."""
    n = _seeds(runs)
    if n <= 1:
        return ""
    if _early_stopping(runs) is None:
        return f"mean over {n} seeds"
    return f"mean over {n} seeds; a seed that stopped early counts with its last epoch's value"


def table_notes(runs: Sequence[dict[str, Any]], metric_name: str) -> list[str]:
    """The lines printed under the table: which weights its losses and test metric describe,
    what the time is, and what the plots' lines average."""
    if not runs:
        return []
    n, patience = _seeds(runs), _early_stopping(runs)
    spread = f"mean ± std (population std, ddof=0) over {n} seeds, " if n > 1 else ""
    if patience is not None:
        epoch = "at each seed's best epoch by val loss"
        weights = f"the weights EarlyStopping (patience {patience}) restored"
    else:
        epoch, weights = "at the last epoch", "the weights training ended with"
    # The train loss is not of those weights: fit logs, as Keras does, the mean of the epoch's
    # batch losses, each computed before its update.
    val = "val_loss" in runs[0]["summary"]
    notes = [
        f"train loss, val loss, test {metric_name}: {spread}{epoch}",
        f"{'val loss, ' if val else ''}test {metric_name}: of {weights}; train loss: that epoch's mean of its "
        f"batch losses, each before its update (Keras's){', so it can exceed val loss' if val else ''}",
    ]
    shared = max(r.get("runs_together", 1) for r in runs)
    if shared > 1:
        seeds = f", each row's {n} seeds vmapped" if runs[0].get("seeds_together") else ""
        notes.append(
            f"time (s): training time (compilation excluded) of the ONE compiled program that trains up to {shared} "
            f"rows of a batch size together{seeds} (fnn.fit_many's epochs, one after the other); the rows of a "
            "program share its time, so it has no spread, and rows of other programs are not comparable by it "
            f"(--apart: a program per row); the programs: {_programs(runs)}"
        )
    elif runs[0].get("seeds_together"):
        notes.append(
            f"time (s): training time (compilation excluded) of the ONE vmapped program that trains a row's {n} "
            "seeds together (fnn.fit_many); the seeds share it, so it has no spread over seeds"
        )
    elif n > 1:
        notes.append("time (s): each seed's own training time (one fit per seed), compilation excluded, mean ± std")
    else:
        notes.append("time (s): training time, compilation excluded")
    jobs = runs[0].get("train_jobs", 1)
    if jobs > 1:
        what = "programs" if shared > 1 else "runs"
        notes[-1] += f"; {what} trained {jobs} at a time (--jobs), each time includes sharing the machine"
    if n > 1:
        notes.append(f"plots: {curve_note(runs)}")
    return notes


def _programs(runs: Sequence[dict[str, Any]]) -> str:
    """Which rows share a program: ``adam + sgd (32), rmsprop (32)``, in the table's order."""
    groups: dict[Any, list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault(r.get("program", id(r)), []).append(r)
    return ", ".join(" + ".join(r["optimizer"] for r in g) + f" ({g[0]['batch']})" for g in groups.values())


def best_line(runs: Sequence[dict[str, Any]]) -> str | None:
    """The run with the lowest validation loss (training loss without validation), as the
    table reports it; None when every run diverged."""
    if not runs:
        return None
    key = "val_loss" if "val_loss" in runs[0]["summary"] else "loss"
    finite = [r for r in runs if math.isfinite(_float(r["summary"][key][0]))]
    if not finite:
        return None
    best = min(finite, key=lambda r: r["summary"][key][0])
    name = key.replace("_", " ") if key == "val_loss" else "train loss"
    where = f"lowest {name} at the best epoch" if _early_stopping(runs) is not None else f"lowest final {name}"
    return f"{where}: {best['optimizer']} (batch {best['batch']})"


# --------------------------------------------------------------------------------------------
# results.json and results.csv
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _replacing(path: str, newline: str | None = None):
    """A text file that replaces ``path`` only once it is complete (a temporary file in the same
    folder, then ``os.replace``): interrupted half-way, the old file is left as it was. A
    symbolic link is written through (as ``fnn train --save`` writes), not replaced by a file."""
    # (not tempfile.mkstemp: its files are private, 0600, where results are shared like any file)
    path = os.path.realpath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "x", newline=newline) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def strict_json(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, ±inf: a run that diverged) as None, which
    JSON writes as ``null``: RFC 8259 has no NaN, and strict parsers (JavaScript's
    ``JSON.parse``, ``jq``) refuse Python's bare ``NaN`` tokens. The report's functions read a
    None number back as NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


def write_results(
    out_dir: str,
    config: dict,
    runs: Sequence[dict],
    metric_name: str,
    *,
    planned: int | None = None,
) -> None:
    """``results.json`` (configuration and every run's record) and ``results.csv`` (one row per
    run: the table's numbers, mean and std columns, a std not measured an empty cell; and
    ``train_jobs``, how many runs trained at once, which the times include), each written
    whole or not at all. A NaN or infinite number is ``null`` in ``results.json``
    (:func:`strict_json`) and ``nan`` / ``inf`` / ``-inf`` in ``results.csv``. ``planned``
    runs, when more than ``runs`` holds, mark the results ``"partial": true`` (a comparison
    interrupted before its end). An OSError says which file it stopped (:func:`writing`)."""
    json_path, csv_path = (os.path.join(out_dir, name) for name in RESULT_FILES)
    planned = len(runs) if planned is None else planned
    results = {"partial": len(runs) < planned, "runs_planned": planned, "config": config, "runs": runs}
    # an OSError (a full disk, a folder where the file goes) names the file, not only the system's words
    with writing(json_path, "the results"):
        os.makedirs(out_dir, exist_ok=True)
        with _replacing(json_path) as f:
            json.dump(strict_json(results), f, indent=1, allow_nan=False)
    stats = ["loss", "val_loss", "test_" + metric_name, "test_loss", "epochs"]
    stats += ["best_epoch"] if _early_stopping(runs) is not None else []
    stats += ["train_s"]
    with writing(csv_path, "the results"), _replacing(csv_path, newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "optimizer",
                "learning_rate",
                "batch",
                "batch_size",
                "iterations_per_epoch",
                "seeds",
                "seeds_together",
                "runs_together",
                "compile_s",
                "train_jobs",
            ]
            + [f"{k}_{m}" for k in stats for m in ("mean", "std")]
        )
        for r in runs:
            s = r["summary"]
            w.writerow(
                [
                    r["optimizer"],
                    csv_cell(r["learning_rate"]),
                    r["batch"],
                    r["batch_size"],
                    r["iterations_per_epoch"],
                    len(r["seeds"]),
                    r["seeds_together"],
                    r.get("runs_together", 1),
                    csv_cell(r["compile_s"]),
                    r.get("train_jobs", 1),
                ]
                + [csv_cell(v) for k in stats for v in s.get(k, (math.nan, math.nan))]
            )


# --------------------------------------------------------------------------------------------
# The plots
# --------------------------------------------------------------------------------------------


def _matplotlib() -> tuple[Any, Any] | None:
    """matplotlib's ``Figure`` and its Agg canvas (PNG files, no display needed), or None when
    matplotlib is missing. Never pyplot: ``matplotlib.use("Agg")`` would switch the backend of
    a program that runs ``main`` in-process (and close its open figures), and pyplot's figures
    are registered in its global state; a figure drawn on its own canvas touches neither."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    return Figure, FigureCanvasAgg


def import_matplotlib_in_background() -> threading.Thread:
    """Starts importing matplotlib's figure and Agg canvas in a daemon thread and returns it. The
    import takes ~1 s of Python; started before the runs, it overlaps their compilation (XLA
    works with the GIL released), and :func:`plot_runs` finds the modules loaded (or waits for
    the same import). Join it before timing anything: it competes for the GIL while it runs."""
    thread = threading.Thread(target=_matplotlib, name="fnn-import-matplotlib", daemon=True)
    thread.start()
    return thread


# The plots' margins in inches, fixed rather than laid out by matplotlib's constrained layout,
# which measures every tick label of the log axes several times (compare's two figures took
# 1.75-1.96 s with it, 1.04-1.36 s without): room for the tick labels and axis labels, the
# title's lines and the legend.
_LEFT, _BETWEEN, _BOTTOM, _TITLE_LINE, _LEGEND_COLUMN = 1.0, 1.1, 0.65, 0.22, 1.8


def line_style(index: int) -> str | tuple[int, tuple[int, ...]]:
    """The line style of the ``index``-th batch size (from 0), a different one for every index:
    solid, dashed, dotted, dash-dot, then a dash followed by 2, 3, ... dots."""
    named = ("-", "--", ":", "-.")
    if index < len(named):
        return named[index]
    return (0, (6, 2) + (1, 2) * (index - 2))


def plot_runs(runs: Sequence[dict[str, Any]], out_dir: str, title: str) -> list[str]:
    """Writes loss_vs_epoch.png and loss_vs_time.png: a training and a validation panel, one
    line per run drawn from its record's ``curves`` (the mean over seeds, :func:`curve_note`),
    one legend for both panels beside them. Returns the paths, or [] when matplotlib is
    missing."""
    drawing = _matplotlib()
    if drawing is None or not runs:
        return []
    figure, canvas = drawing
    from matplotlib import colormaps
    from matplotlib.ticker import MaxNLocator

    names = sorted({r["optimizer"] for r in runs}, key=[r["optimizer"] for r in runs].index)
    batches = sorted({r["batch"] for r in runs}, key=[r["batch"] for r in runs].index)
    # tab20's dark shades first: ten well-separated colours before any light twin is needed.
    palette = [colormaps["tab20"](2 * i + j) for j in (0, 1) for i in range(10)]
    panels = ["loss"] + (["val_loss"] if "val_loss" in runs[0]["curves"] else [])
    note = curve_note(runs)
    together = bool(runs[0].get("seeds_together"))
    shared = max(r.get("runs_together", 1) for r in runs) > 1
    title += f"\n{note}" if note else ""
    columns = 1 + len(runs) // 16
    width, height = 6.5 * len(panels) + _LEGEND_COLUMN * columns, 4.8
    top = 0.3 + _TITLE_LINE * (title.count("\n") + 1)
    legend_left = width - _LEGEND_COLUMN * columns + 0.1
    axes_right = legend_left - 0.2
    axes_width = (axes_right - _LEFT - _BETWEEN * (len(panels) - 1)) / len(panels)
    paths = []
    for x_name in ("epoch", "time"):
        fig = figure(figsize=(width, height))
        canvas(fig)  # the figure's own canvas: Agg draws the PNG
        axes = fig.subplots(1, len(panels), squeeze=False)
        fig.subplots_adjust(
            left=_LEFT / width,
            right=axes_right / width,
            bottom=_BOTTOM / height,
            top=1 - top / height,
            wspace=_BETWEEN / axes_width,
        )
        for ax, key in zip(axes[0], panels, strict=True):
            for r in runs:
                curves = r["curves"]
                ax.plot(
                    # (floats: a record read back from results.json has None where a loss was NaN)
                    np.asarray(curves["epoch" if x_name == "epoch" else "time_s"], dtype=float),
                    np.asarray(curves[key], dtype=float),
                    linestyle=line_style(batches.index(r["batch"])),
                    color=palette[names.index(r["optimizer"]) % len(palette)],
                    label=r["optimizer"] + (f" (B={r['batch']})" if len(batches) > 1 else ""),
                    linewidth=1.5,
                )
            # log scale, unless nothing in the panel can be drawn on it (every run diverged:
            # matplotlib refuses a log axis without a positive value)
            values = np.concatenate([np.asarray(r["curves"][key], dtype=float) for r in runs])
            ax.set_yscale("log" if np.any(np.isfinite(values) & (values > 0)) else "linear")
            if x_name == "time":
                ax.set_xscale("log")
                program = "the seeds' one vmapped program, " if together else ""
                program = "of each row's program, shared by the rows in it; " if shared else program
                ax.set_xlabel(f"training time ({program}compilation excluded), s")
            else:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                ax.set_xlabel("epoch")
            ax.set_ylabel("training loss" if key == "loss" else "validation loss")
            ax.grid(True, which="both", alpha=0.3)
        # one legend for both panels, outside them: it hides no curve of either
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(
            handles,
            labels,
            loc="upper left",
            bbox_to_anchor=(legend_left / width, 1 - top / height),
            fontsize="small",
            ncol=columns,
        )
        fig.suptitle(title, fontsize="medium", y=1 - 0.12 / height, va="top")
        path = os.path.join(out_dir, PLOT_FILES[0 if x_name == "epoch" else 1])
        with writing(path, "the plot"):  # a full disk names the file, as the results' writes do
            fig.savefig(path, dpi=110)  # (no pyplot, no figure to close: it goes with its last reference)
        paths.append(path)
    return paths
