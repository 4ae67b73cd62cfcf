"""``fnn compare``'s report tells the truth: the table, ``results.json``, ``results.csv`` and the
plots say the same thing, and each number says which weights and which time it is.

Two runs on iris (4 hidden units), each made once for the module through ``fnn.cli.main`` with
``matplotlib``'s ``Figure.savefig`` watched, so that the tests read what the plots were given:

* ``together``: sgd and adam, batch 16, 3 epochs, 2 seeds: the seeds of a row train together
  in one vmapped program (``fnn.fit_many``), whose time they share;
* ``stopped``: sgd at lr 0.5, batch 16, 2 seeds, ``--early-stopping 2``: one ``fit`` per seed,
  each stopped by EarlyStopping at a later epoch than its best one (whose weights it restores).

The references are independent of the CLI: a ``fnn.fit`` of the same seed with the same
EarlyStopping, evaluated on the held-out and test samples, and NumPy means and cumulative sums
of the histories in ``results.json``.
"""

import contextlib
import csv
import errno
import io
import json

import jax
import matplotlib.figure
import numpy as np
import pytest

import fnn
from fnn.cli import main
from fnn.cli._report import PLOT_FILES

pytestmark = pytest.mark.slow

IRIS = ["compare", "--dataset", "iris", "--hidden", "4", "--batch-sizes", "16", "--seeds", "2", "--jobs", "1"]
RUNS = {
    "together": ["--optimizers", "sgd,adam", "--epochs", "3"],
    "stopped": ["--optimizers", "sgd", "--lr", "0.5", "--epochs", "30", "--early-stopping", "2"],
}


def _keras_pair(mean: float, std: float) -> str:
    """Keras's progress format, written out (4 decimals, e-notation below 1e-3) for the mean,
    and the std in the mean's notation."""
    if abs(mean) > 1e-3 or mean == 0:
        return f"{mean:.4f} ± {std:.4f}"
    return f"{mean:.4e} ± {std:.4e}"


def _strict_json(text):
    """``json.loads`` refusing what RFC 8259 has not: the bare NaN / Infinity tokens."""

    def refuse(token):
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def _table(text):
    """(head, rows) of the Markdown table in ``text``, cells stripped."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    cells = lambda line: [c.strip() for c in line.strip("|").split("|")]
    return cells(lines[0]), [cells(line) for line in lines[2:]]


def _compare(name, tmp_path_factory):
    """One ``fnn compare``: its exit status, stdout, results.json, results.csv rows, and every
    figure it saved as ``{file name: {"lines", "legends", "axes_legends", "title"}}``."""
    out = tmp_path_factory.mktemp(name)
    figures = {}
    save = matplotlib.figure.Figure.savefig

    def watched(fig, path, *args, **kwargs):
        figures[str(path).rsplit("/", 1)[-1]] = {
            "axes_legends": [ax.get_legend() for ax in fig.axes],
            "legends": [[t.get_text() for t in legend.get_texts()] for legend in fig.legends],
            "title": fig.get_suptitle(),
            "xlabels": [ax.get_xlabel() for ax in fig.axes],
            "lines": [
                [(line.get_label(), np.asarray(line.get_xdata()), np.asarray(line.get_ydata())) for line in ax.lines]
                for ax in fig.axes
            ],
        }
        return save(fig, path, *args, **kwargs)

    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        mp.setattr(matplotlib.figure.Figure, "savefig", watched)
        rc = main([*IRIS, *RUNS[name], "--out", str(out)])
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {
        "name": name,
        "rc": rc,
        "out": stdout.getvalue(),
        "err": stderr.getvalue(),
        "results": _strict_json((out / "results.json").read_text()),
        "csv": rows,
        "figures": figures,
    }


@pytest.fixture(scope="module")
def together(tmp_path_factory):
    return _compare("together", tmp_path_factory)


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    return _compare("stopped", tmp_path_factory)


@pytest.fixture(params=list(RUNS))
def run(request):
    return request.getfixturevalue(request.param)


def test_the_table_reports_the_records(run):
    assert run["rc"] == 0, run["err"]
    head, rows = _table(run["out"])
    runs = run["results"]["runs"]
    stopped = run["name"] == "stopped"
    assert head == [
        "optimizer",
        "lr",
        "batch",
        "it/epoch",
        "epochs",
        *(["best epoch"] if stopped else []),
        "train loss",
        "val loss",
        "test accuracy",
        "time (s)",
    ]
    col = {name: i for i, name in enumerate(head)}
    assert len(rows) == len(runs)
    for row, r in zip(rows, runs, strict=True):
        seeds = r["seeds"]
        # the losses at each seed's reported epoch, and the test metric: mean ± std over seeds
        for name, key in (("train loss", "loss"), ("val loss", "val_loss")):
            values = [s["history"][key][s["reported_epoch"]] for s in seeds]
            np.testing.assert_allclose(r["summary"][key], [np.mean(values), np.std(values)], rtol=1e-12)
            assert row[col[name]] == _keras_pair(np.mean(values), np.std(values))
        accs = [s["test"]["accuracy"] for s in seeds]
        assert row[col["test accuracy"]] == _keras_pair(np.mean(accs), np.std(accs))
        if stopped:
            best = [s["reported_epoch"] + 1 for s in seeds]
            assert row[col["best epoch"]] == f"{np.mean(best):g}"
        else:  # without early stopping the reported epoch is the last one
            assert all(s["reported_epoch"] == s["epochs_run"] - 1 for s in seeds)
    # the std is the population one (np.std, ddof=0: checked above), and the note says so
    assert "train loss, val loss, test accuracy: mean ± std (population std, ddof=0) over 2 seeds, at " in run["out"]
    # val loss and test accuracy are of the reported weights; the train loss is not (Keras's running mean)
    weights = "the weights EarlyStopping (patience 2) restored" if stopped else "the weights training ended with"
    assert (
        f"val loss, test accuracy: of {weights}; train loss: that epoch's mean of its batch losses, each before "
        "its update (Keras's), so it can exceed val loss" in run["out"]
    )
    assert "same weights" not in run["out"]


def test_early_stopping_reports_val_loss_and_test_metric_of_the_same_weights(stopped):
    """The reported val loss of each seed is evaluate() on the held-out samples of the weights
    whose test accuracy is reported: the restored best epoch's, not the last epoch's."""
    run = stopped
    assert run["rc"] == 0, run["err"]
    (x, y), (x_test, y_test) = fnn.datasets.load("iris")
    x_tr, y_tr, x_val, y_val = x[:96], y[:96], x[96:], y[96:]  # the last 20 % held out
    net = fnn.mlp([4, 3])
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    (record,) = run["results"]["runs"]
    later = 0
    val_losses = []
    for s in record["seeds"]:
        init_key, key = jax.random.split(jax.random.PRNGKey(s["seed"]))
        stop = fnn.callbacks.EarlyStopping(patience=2, restore_best_weights=True)
        result = fnn.fit(
            net,
            net.init(init_key, (4,)),
            fnn.optimizers.get("sgd", learning_rate=0.5),
            loss,
            x_tr,
            y_tr,
            batch_size=16,
            epochs=30,
            key=key,
            validation_data=(x_val, y_val),
            metrics=["accuracy"],
            callbacks=[stop],
            verbose=0,
        )
        assert s["epochs_run"] == result.history.epochs_run and s["stop_reason"] == "early_stopping"
        assert s["reported_epoch"] == stop.best_epoch
        later += stop.best_epoch < s["epochs_run"] - 1
        on_val = fnn.evaluate(net, result.params, loss, x_val, y_val, metrics=["accuracy"])
        on_test = fnn.evaluate(net, result.params, loss, x_test, y_test, metrics=["accuracy"])
        reported = s["history"]["val_loss"][s["reported_epoch"]]
        np.testing.assert_allclose(reported, on_val["loss"], rtol=1e-5)
        np.testing.assert_allclose(s["test"]["accuracy"], on_test["accuracy"], rtol=1e-12)
        np.testing.assert_allclose(s["test"]["loss"], on_test["loss"], rtol=1e-5)
        assert not np.isclose(reported, s["history"]["val_loss"][-1], rtol=1e-6)  # the last epoch is another
        val_losses.append(on_val["loss"])
    assert later == len(record["seeds"])  # every seed went on past its best epoch before stopping
    np.testing.assert_allclose(record["summary"]["val_loss"][0], np.mean(val_losses), rtol=1e-5)
    out = run["out"]
    assert "over 2 seeds, at each seed's best epoch by val loss\n" in out
    assert "lowest val loss at the best epoch: sgd (batch 16)" in out and "lowest final" not in out


def test_the_time_column_is_the_time_in_results_and_in_the_plot(run):
    head, rows = _table(run["out"])
    time_col = head.index("time (s)")
    runs = run["results"]["runs"]
    time_plot = run["figures"]["loss_vs_time.png"]
    for row, r, csv_row in zip(rows, runs, run["csv"], strict=True):
        per_seed = [float(np.cumsum(s["epoch_times"])[-1]) for s in r["seeds"]]
        curve = r["curves"]["time_s"]
        if r["seeds_together"]:
            # one program trained both seeds: both record its epoch times, and its time is the row's
            assert r["seeds"][0]["epoch_times"] == r["seeds"][1]["epoch_times"]
            assert r["summary"]["train_s"] == [per_seed[0], None]
            assert row[time_col] == f"{per_seed[0]:.3f}" and "±" not in row[time_col]
            assert csv_row["train_s_std"] == "" and csv_row["seeds_together"] == "True"
            np.testing.assert_array_equal(curve, np.cumsum(r["seeds"][0]["epoch_times"]))
        else:
            mean, std = np.mean(per_seed), np.std(per_seed)
            np.testing.assert_allclose(r["summary"]["train_s"], [mean, std], rtol=1e-12)
            assert row[time_col] == f"{mean:.3f} ± {std:.3f}"
            assert float(csv_row["train_s_std"]) == pytest.approx(std, rel=1e-6, abs=1e-9)
        assert curve[-1] == r["summary"]["train_s"][0]  # the plot ends at the table's time
        assert float(csv_row["train_s_mean"]) == pytest.approx(r["summary"]["train_s"][0], rel=1e-6)
        # how many runs shared the machine while this one trained, which its time includes
        assert int(csv_row["train_jobs"]) == r["train_jobs"] >= 1
        # what the time plot drew: each panel's line of this run is the record's curve
        label = r["optimizer"]
        for panel, key in zip(time_plot["lines"], ("loss", "val_loss"), strict=True):
            (x, y) = next((x, y) for name, x, y in panel if name == label)
            np.testing.assert_array_equal(x, curve)
            np.testing.assert_array_equal(y, r["curves"][key])
        assert int(csv_row["runs_together"]) == r["runs_together"] >= 1
    # the rows of one program (a batch size's runs, as many programs as train at a time) share its
    # compile and training times
    for program in {r["program"] for r in runs}:
        sharing = [r for r in runs if r["program"] == program]
        assert len(sharing) == sharing[0]["runs_together"] and len({r["summary"]["train_s"][0] for r in sharing}) == 1
        assert len({(r["batch"], r["compile_s"]) for r in sharing}) == 1
    note = next(line for line in run["out"].splitlines() if line.startswith("time (s):"))
    if run["name"] == "together":
        # the time axis says whose time it is: the program each row shares with the others in it
        axis = "training time (of each row's program, shared by the rows in it; compilation excluded), s"
        assert time_plot["xlabels"] == [axis, axis]
        assert max(r["runs_together"] for r in runs) > 1
        assert "ONE compiled program" in note and "2 seeds vmapped" in note and "no spread" in note
        assert note.endswith("not comparable by it (--apart: a program per row); the programs: sgd + adam (16)")
    else:
        assert "each seed's own training time" in note


def test_the_plotted_curves_are_means_over_all_seeds_and_say_so(run):
    epoch_plot = run["figures"]["loss_vs_epoch.png"]
    for r in run["results"]["runs"]:
        seeds = r["seeds"]
        longest = max(s["epochs_run"] for s in seeds)
        for key in ("loss", "val_loss"):
            # NumPy reference: a seed that stopped early holds its last epoch's value
            held = np.array([[s["history"][key][min(i, s["epochs_run"] - 1)] for i in range(longest)] for s in seeds])
            np.testing.assert_allclose(r["curves"][key], held.mean(axis=0), rtol=1e-12)
        assert r["curves"]["epoch"] == list(range(1, longest + 1))
        for panel in epoch_plot["lines"]:
            (x,) = [x for name, x, _ in panel if name == r["optimizer"]]
            np.testing.assert_array_equal(x, np.arange(1, longest + 1))
    if run["name"] == "stopped":
        assert len({s["epochs_run"] for s in r["seeds"]}) == 2  # the seeds stopped at different epochs
        words = "mean over 2 seeds; a seed that stopped early counts with its last epoch's value"
    else:
        words = "mean over 2 seeds"
    for figure in run["figures"].values():
        assert words in figure["title"]
        # one legend for the figure, naming every run; none inside a panel over the curves
        assert figure["legends"] == [[r["optimizer"] for r in run["results"]["runs"]]]
        assert figure["axes_legends"] == [None, None]
    assert f"plots: {words}" in run["out"]


def test_results_csv_writes_floats_as_their_shortest_float32_text(run):
    floats = 0
    for row in run["csv"]:
        assert row["learning_rate"] in ("0.1", "0.002", "0.5")
        for name, cell in row.items():
            if name in ("optimizer", "batch", "seeds_together") or cell in ("", "nan"):
                continue
            # the shorter of the two shortest forms (a timing's spread of 3.8e-05 s is scientific)
            single = np.float32(float(cell))
            forms = (
                np.format_float_positional(single, unique=True, trim="-"),
                np.format_float_scientific(single, unique=True, trim="-"),
            )
            assert cell == min(forms, key=len) or cell.isdigit(), (name, cell)
            floats += "." in cell
    assert floats >= 10 * len(run["csv"])


def _records(names, batches, seeds=3, stopping=None, val=True):
    """Synthetic run records with what plot_runs reads: decreasing curves, 5 epochs."""
    runs = []
    for i, name in enumerate(names):
        for b in batches:
            epochs = np.arange(1, 6)
            curves = {"epoch": epochs, "time_s": 0.01 * epochs * (1 + i), "loss": 2.0 / (epochs + i)}
            if val:
                curves["val_loss"] = 3.0 / (epochs + i)
            runs.append(
                {
                    "optimizer": name,
                    "batch": b,
                    "curves": curves,
                    "seeds": [{}] * seeds,
                    "seeds_together": stopping is None,
                    "early_stopping": stopping,
                }
            )
    return runs


def test_a_plot_that_cannot_be_written_names_its_file(tmp_path, monkeypatch):
    """A full disk while the PNG is written: the error names the file, as the results' writes
    do (it said "[Errno 28] No space left on device" alone)."""
    from fnn.cli._report import plot_runs

    def full(fig, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full)
    with pytest.raises(OSError) as caught:
        plot_runs(_records(["sgd"], [16]), str(tmp_path), "iris")
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(tmp_path / "loss_vs_epoch.png")
    assert str(caught.value).endswith(
        f"No space left on device while writing the plot: {str(tmp_path / 'loss_vs_epoch.png')!r}"
    )


@pytest.mark.parametrize(
    "names,batches,stopping,val",
    [
        (["sgd", "adam"], [16], None, True),  # compare's usual figure
        (["sgd"], [32], 3, False),  # one panel, the long early-stopping note in the title
        (
            [
                "momentum",
                "nesterov",
                "adagrad",
                "rmsprop",
                "adadelta",
                "adamw",
                "radam",
                "lion",
                "nadam",
                "adam",
                "sgd",
            ],
            [1, 128, "full"],
            None,
            True,
        ),  # 33 runs: a legend of 3 columns, long labels
    ],
)
def test_the_plots_lay_out_title_panels_and_legend_without_overlap(names, batches, stopping, val, tmp_path):
    """The fixed layout (no constrained layout) keeps everything inside the figure: the title
    above the panels, each panel's ticks and axis labels clear of the other's, and the legend
    beside the panels, hiding no curve."""
    from fnn.cli._report import plot_runs

    boxes = {}
    save = matplotlib.figure.Figure.savefig

    def watched(fig, path, *args, **kwargs):
        renderer = fig.canvas.get_renderer()
        fig.draw(renderer)
        fig_box = fig.bbox
        boxes[str(path).rsplit("/", 1)[-1]] = {
            "figure": fig_box,
            "axes": [ax.get_tightbbox(renderer) for ax in fig.axes],
            "frames": [ax.get_window_extent(renderer) for ax in fig.axes],
            "legend": fig.legends[0].get_window_extent(renderer),
            "title": fig._suptitle.get_window_extent(renderer),
        }
        return save(fig, path, *args, **kwargs)

    runs = _records(names, batches, stopping=stopping, val=val)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(matplotlib.figure.Figure, "savefig", watched)
        paths = plot_runs(runs, str(tmp_path), "digits: 64-64-10 relu, 3 seed(s)")
    assert len(paths) == 2 and set(boxes) == {"loss_vs_epoch.png", "loss_vs_time.png"}

    def inside(box, outer):
        return (
            box.x0 >= outer.x0 - 0.5
            and box.y0 >= outer.y0 - 0.5
            and box.x1 <= outer.x1 + 0.5
            and box.y1 <= outer.y1 + 0.5
        )

    def apart(a, b):
        return a.x1 <= b.x0 or b.x1 <= a.x0 or a.y1 <= b.y0 or b.y1 <= a.y0

    for name, b in boxes.items():
        panels = b["axes"]
        assert len(panels) == (2 if val else 1), name
        for box in [*panels, b["legend"], b["title"]]:
            assert inside(box, b["figure"]), (name, box, b["figure"])
        for i, box in enumerate(panels):
            assert apart(box, b["legend"]), (name, "a panel under the legend")
            assert b["title"].y0 >= box.y1, (name, "the title overlaps a panel")
            for other in panels[i + 1 :]:
                assert apart(box, other), (name, "panels overlap")
        # the panels use the figure: together at least half its width, each 60 % of its height
        assert sum(f.width for f in b["frames"]) > 0.5 * b["figure"].width
        assert all(f.height > 0.6 * b["figure"].height for f in b["frames"])


def _record(name, loss):
    """A two-seed record as compare makes it, whose last epoch's losses are ``loss`` (NaN or inf:
    a run that diverged)."""
    seed = {"seed": 0, "reported_epoch": 1, "history": {"loss": [1.0, loss]}, "test": {"accuracy": 0.5, "loss": loss}}
    return {
        "optimizer": name,
        "learning_rate": 0.1,
        "batch": "16",
        "batch_size": 16,
        "iterations_per_epoch": 6,
        "compile_s": 0.5,
        "seeds_together": True,
        "early_stopping": None,
        "train_jobs": 1,
        "summary": {
            "epochs": [2.0, 0.0],
            "loss": [loss, loss],
            "val_loss": [loss, 0.0],
            "train_s": [0.01, None],
            "test_accuracy": [0.5, 0.0],
            "test_loss": [loss, loss],
        },
        "curves": {"epoch": [1, 2], "time_s": [0.005, 0.01], "loss": [loss, loss], "val_loss": [loss, loss]},
        "seeds": [seed, {**seed, "seed": 1}],
    }


def test_results_written_through_symbolic_links_keep_the_links(tmp_path):
    """results.json and results.csv that are links (to a shared folder) are written through, as
    ``fnn train --save`` writes a checkpoint; the rename replaced each link with a file."""
    from fnn.cli._report import write_results

    out, shared = tmp_path / "out", tmp_path / "shared"
    out.mkdir()
    shared.mkdir()
    for name in ("results.json", "results.csv"):
        (shared / name).write_text("old")
        (out / name).symlink_to(shared / name)
    write_results(str(out), {"lr": None, "seed": 0}, [_record("adam", 0.25)], "accuracy")
    for name in ("results.json", "results.csv"):
        assert (out / name).is_symlink() and (out / name).resolve() == shared / name
        assert (shared / name).read_text() != "old"
    assert _strict_json((shared / "results.json").read_text())["runs"][0]["optimizer"] == "adam"
    assert sorted(p.name for p in shared.iterdir()) == ["results.csv", "results.json"]  # no temporary left


def test_a_diverged_run_is_strict_json_null_and_reads_back_as_nan(tmp_path):
    """results.json is RFC 8259 JSON (null for NaN and inf: Python's bare NaN tokens break strict
    parsers); results.csv keeps writing nan / inf; the report's functions read null as NaN."""
    from fnn.cli._report import best_line, format_table, plot_runs, write_results

    runs = [_record("sgd", float("nan")), _record("adam", 0.25), _record("lion", float("inf"))]
    write_results(str(tmp_path), {"lr": None, "seed": 0}, runs, "accuracy")
    text = (tmp_path / "results.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    back = _strict_json(text)
    sgd, adam, lion = back["runs"]
    for diverged in (sgd, lion):
        assert diverged["summary"]["loss"] == [None, None] and diverged["summary"]["val_loss"] == [None, 0.0]
        assert diverged["curves"]["loss"] == [None, None] and diverged["seeds"][1]["history"]["loss"] == [1.0, None]
    assert adam["summary"]["loss"] == [0.25, 0.25] and adam["summary"]["train_s"] == [0.01, None]
    assert back["config"] == {"lr": None, "seed": 0} and back["partial"] is False
    with open(tmp_path / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["loss_mean"] for r in rows] == ["nan", "0.25", "inf"]  # as Python's float and pandas read them
    assert [r["train_s_std"] for r in rows] == ["", "", ""]  # not measured: an empty cell
    # read back, the records report what the runs did
    head, table = _table(format_table(back["runs"], "accuracy"))
    assert format_table(back["runs"], "accuracy") == format_table(runs, "accuracy")
    assert [row[head.index("train loss")] for row in table] == ["diverged", "0.2500 ± 0.2500", "diverged"]
    assert best_line(back["runs"]) == best_line(runs) == "lowest final val loss: adam (batch 16)"
    assert best_line([sgd, lion]) is None
    # a plot of runs that all diverged: nothing to draw on a log scale, yet both files are written
    assert plot_runs([sgd, lion], str(tmp_path), "t") == [str(tmp_path / name) for name in PLOT_FILES]
    assert all((tmp_path / name).stat().st_size > 0 for name in PLOT_FILES)


def test_every_batch_size_has_a_line_style_of_its_own(tmp_path):
    from fnn.cli._report import line_style, plot_runs

    styles = [line_style(i) for i in range(12)]
    assert styles[:4] == ["-", "--", ":", "-."] and len(set(styles)) == 12
    batches = ["full", 1, 4, 16, 32, 64]  # more batch sizes than matplotlib has named styles
    drawn = []

    def watched(fig, path, *args, **kwargs):  # what was drawn, not the file (no rendering)
        # (Line2D keeps the dash pattern of a custom style only in this attribute: its
        # get_linestyle() says "--" for every one of them)
        drawn.extend(
            [(line.get_color(), line.get_linestyle(), line._unscaled_dash_pattern) for line in ax.lines]
            for ax in fig.axes
        )

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(matplotlib.figure.Figure, "savefig", watched)
        plot_runs(_records(["sgd", "adam"], batches, seeds=1), str(tmp_path), "t")
    assert len(drawn) == 4  # two figures, two panels each
    for panel in drawn:
        assert len(panel) == 12 and len(set(panel)) == 12  # no two lines look alike
        assert len({(style, dashes) for _, style, dashes in panel}) == len(batches)  # a style per batch size
