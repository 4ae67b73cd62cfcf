"""The ``fnn`` command line, run in-process through ``fnn.cli.main`` (one subprocess for ``python -m fnn``).

Tiny settings (iris, one small hidden layer, two epochs) keep the compilations few and cheap.
The runs that train (``compare``, ``train``, ``gradcheck``) and the subprocess are marked
``slow`` (``pytest -m "not slow"`` leaves them out); the argument checks stay in the fast tier.
"""

import concurrent.futures
import csv
import errno
import gc
import importlib.metadata
import json
import math
import os
import pathlib
import shlex
import signal
import subprocess
import sys
import threading
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run_python_json

import fnn
from fnn.cli import DEFAULT_LEARNING_RATES, main
from fnn.cli._common import PROCESS_ENDS
from fnn.cli._compare import compile_concurrently, load_problem, run_comparison  # the engine behind fnn compare
from fnn.cli._main import given_options
from fnn.cli._problem import default_learning_rate, describe_net, network, split_problem

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _table_rows(text):
    """The data rows of the Markdown table in ``text`` as lists of stripped cells."""
    lines = [l for l in text.splitlines() if l.startswith("|")]
    assert set(lines[1].replace("|", "")) == {"-"}, "second table line must be the separator"
    return [[c.strip() for c in l.strip("|").split("|")] for l in lines[2:]], [
        c.strip() for c in lines[0].strip("|").split("|")
    ]


def _numpy_mlp_loss_and_grads(params, x, labels):
    """float64 NumPy reference: 1 hidden relu layer, linear output, mean sparse CE, and its gradient."""
    w1, b1 = (np.asarray(params[0][k], np.float64) for k in ("w", "b"))
    w2, b2 = (np.asarray(params[1][k], np.float64) for k in ("w", "b"))
    a = x @ w1 + b1
    h = np.maximum(a, 0.0)
    z = h @ w2 + b2
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    n = x.shape[0]
    loss = -np.mean(np.log(p[np.arange(n), labels]))
    dz = p.copy()
    dz[np.arange(n), labels] -= 1.0
    dz /= n
    dh = (dz @ w2.T) * (a > 0)
    grads = [{"w": x.T @ dh, "b": dh.sum(0)}, {"w": h.T @ dz, "b": dz.sum(0)}]
    return loss, grads


@pytest.mark.slow
def test_compare_table_results_and_plots(tmp_path, capsys):
    out = tmp_path / "cmp"
    rc = main(
        [
            "compare",
            "--dataset",
            "iris",
            "--optimizers",
            "sgd,adam",
            "--batch-sizes",
            "full,16",
            "--epochs",
            "2",
            "--seeds",
            "2",
            "--hidden",
            "4",  # the networks of the comparisons below: their programs are compiled once
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    stdout = capsys.readouterr().out
    rows, head = _table_rows(stdout)
    assert head == [
        "optimizer",
        "lr",
        "batch",
        "it/epoch",
        "epochs",
        "train loss",
        "val loss",
        "test accuracy",
        "time (s)",
    ]
    # iris: 120 training samples, the last 20 % (24) held out -> 96; ceil(96 / 16) = 6.
    assert [r[:5] for r in rows] == [
        ["sgd", "0.1", "full (96)", "1", "2"],
        ["sgd", "0.1", "16", str(math.ceil(96 / 16)), "2"],
        ["adam", "0.002", "full (96)", "1", "2"],
        ["adam", "0.002", "16", "6", "2"],
    ]

    results = json.loads((out / "results.json").read_text())
    runs = results["runs"]
    assert [(r["optimizer"], r["batch"], r["batch_size"]) for r in runs] == [
        ("sgd", "full", 96),
        ("sgd", "16", 16),
        ("adam", "full", 96),
        ("adam", "16", 16),
    ]
    for run, row in zip(runs, rows, strict=True):
        assert len(run["seeds"]) == 2
        finals = [s["history"]["loss"][-1] for s in run["seeds"]]
        mean, std = run["summary"]["loss"]
        np.testing.assert_allclose([mean, std], [np.mean(finals), np.std(finals)], rtol=1e-12)
        assert row[5] == f"{mean:.4f} ± {std:.4f}"
        accs = [s["test"]["accuracy"] for s in run["seeds"]]
        assert all(0.0 <= a <= 1.0 for a in accs)
        assert row[7] == f"{np.mean(accs):.4f} ± {np.std(accs):.4f}"
        for s in run["seeds"]:
            assert s["epochs_run"] == 2 and len(s["history"]["val_loss"]) == 2 and len(s["epoch_times"]) == 2

    # Independent check of a full-batch SGD run: same initial parameters for every optimizer
    # (seed s initialises with split(PRNGKey(s))[0]); epoch 1's loss is the loss at those
    # parameters, epoch 2's the loss after ONE gradient-descent step w <- w - 0.1 dL/dw.
    (x, y), _ = fnn.datasets.load("iris")
    x_tr, y_tr, x_val, y_val = x[:96].astype(np.float64), y[:96], x[96:].astype(np.float64), y[96:]
    net = fnn.mlp([4, 3])
    for seed in range(2):
        params = net.init(jax.random.split(jax.random.PRNGKey(seed))[0], (4,))
        loss0, grads = _numpy_mlp_loss_and_grads(params, x_tr, y_tr)
        stepped = jax.tree.map(lambda p, g: np.asarray(p, np.float64) - 0.1 * g, params, grads)
        loss1, _ = _numpy_mlp_loss_and_grads(stepped, x_tr, y_tr)
        val0, _ = _numpy_mlp_loss_and_grads(stepped, x_val, y_val)
        sgd_full, adam_full = runs[0]["seeds"][seed]["history"], runs[2]["seeds"][seed]["history"]
        np.testing.assert_allclose(sgd_full["loss"], [loss0, loss1], rtol=2e-5)
        np.testing.assert_allclose(sgd_full["val_loss"][0], val0, rtol=2e-5)
        np.testing.assert_allclose(adam_full["loss"][0], loss0, rtol=2e-5)

    with open(out / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [(r["optimizer"], r["batch"], r["iterations_per_epoch"]) for r in table] == [
        ("sgd", "full", "1"),
        ("sgd", "16", "6"),
        ("adam", "full", "1"),
        ("adam", "16", "6"),
    ]
    for r, run in zip(table, runs, strict=True):
        np.testing.assert_allclose(float(r["loss_mean"]), run["summary"]["loss"][0], rtol=1e-5)
        np.testing.assert_allclose(float(r["val_loss_mean"]), run["summary"]["val_loss"][0], rtol=1e-5)
        assert r["seeds"] == "2"

    import matplotlib.image

    for name in ("loss_vs_epoch.png", "loss_vs_time.png"):
        data = (out / name).read_bytes()
        assert data[:8] == PNG_SIGNATURE
        image = matplotlib.image.imread(out / name)
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 400
        assert image.std() > 0.01  # something was drawn


@pytest.mark.slow
def test_compare_in_process_draws_its_plots_without_touching_the_user_s_matplotlib(tmp_path, capsys):
    """compare's plots are drawn on figures of their own (Agg canvas, no pyplot): a program that
    runs main in-process keeps its backend, its rcParams (matplotlib.use would also turn off
    backend_fallback) and its open figures (a backend switch closes them)."""
    import matplotlib
    import matplotlib.image
    import matplotlib.pyplot as plt

    backend = matplotlib.get_backend()
    original = matplotlib.rcParams.copy()  # backend and backend_fallback included: put back after
    matplotlib.use("svg")
    mine = plt.figure()
    rc_before = matplotlib.rcParams.copy()
    out = tmp_path / "cmp"
    try:
        args = ["compare", "--dataset", "iris", "--hidden", "4", "--epochs", "2", "--seeds", "1"]
        assert main([*args, "--optimizers", "sgd", "--out", str(out)]) == 0
        assert "loss_vs_epoch.png, loss_vs_time.png" in capsys.readouterr().out
        assert matplotlib.get_backend() == "svg" and plt.fignum_exists(mine.number)
        changed = [k for k in rc_before if dict.__getitem__(rc_before, k) != dict.__getitem__(matplotlib.rcParams, k)]
        assert changed == []
    finally:
        plt.close(mine)
        matplotlib.use(backend)
        matplotlib.rcParams.update(original)
    # the layout of plot_runs in pixels at 110 dpi: two 6.5-inch panels (loss, val loss) and a
    # legend column of 1.8 inches, 4.8 inches high
    for name in ("loss_vs_epoch.png", "loss_vs_time.png"):
        assert (out / name).read_bytes()[:8] == PNG_SIGNATURE
        image = matplotlib.image.imread(out / name)
        assert image.shape == (round(4.8 * 110), round((2 * 6.5 + 1.8) * 110), 4)
        assert image.std() > 0.01  # something was drawn


@pytest.mark.slow
def test_train_save_resume_continues_exactly(tmp_path, capsys, monkeypatch):
    common = [
        "train",
        "--dataset",
        "iris",
        "--hidden",
        "4",  # the network of the other runs of fnn train on iris: their programs are compiled once
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
        "--batch-size",
        "16",
        "--verbose",
        "0",
    ]
    a, b, c = (str(tmp_path / n) for n in ("a.npz", "b.npz", "c.npz"))
    assert main(common + ["--epochs", "2", "--save", a]) == 0
    first = capsys.readouterr().out
    assert "saved checkpoint (epoch 2)" in first and "test: loss" in first and "accuracy" in first
    assert main(common + ["--epochs", "4", "--resume", a, "--save", b, "--verbose", "1"]) == 0
    assert "resumed from" in capsys.readouterr().out
    assert main(common + ["--epochs", "4", "--save", c]) == 0
    resumed, straight = fnn.checkpoint.load(b), fnn.checkpoint.load(c)
    assert resumed.epoch == straight.epoch == 4
    # 2 epochs + resume for 2 more = 4 epochs in one go: same shuffles, same optimizer state.
    for k, v in straight.params.items():
        np.testing.assert_allclose(resumed.params[k], v, rtol=1e-6, atol=1e-7)
    for name in ("loss", "val_loss", "accuracy"):
        assert len(resumed.history["history"][name]) == 4
        np.testing.assert_allclose(resumed.history["history"][name], straight.history["history"][name], rtol=1e-6)
    assert resumed.extra["hidden"] == [4] and resumed.extra["optimizer"] == "adam"

    # A checkpoint of another network is refused with one line, before any training.
    rc = main(["train", "--dataset", "iris", "--hidden", "8", "--resume", a, "--verbose", "0"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--resume" in err and "Traceback" not in err

    # A save the system refuses (a full disk) is one line and status 1; the last checkpoint stays.
    def full_disk(directory, name):
        raise OSError(errno.ENOSPC, "No space left on device", directory)

    before = (tmp_path / "c.npz").read_bytes()
    monkeypatch.setattr("fnn.checkpoint._atomic._create_temp", full_disk)
    assert main(common + ["--epochs", "4", "--save", c]) == 1
    err = capsys.readouterr().err
    full = f"[Errno 28] No space left on device at '{tmp_path}' while writing the checkpoint: {c!r}"
    assert err == f"fnn train: error: the checkpoint (epoch 4) was not saved: {full}\n"
    assert (tmp_path / "c.npz").read_bytes() == before
    monkeypatch.undo()

    # A Ctrl-C (a real SIGINT) that lands while the last checkpoint is written waits for the file,
    # then ends the run: status 130, the trained epochs saved and said so; the test pass, which
    # comes after the checkpoint, is not run.
    save = fnn.checkpoint.save

    def save_under_ctrl_c(*args, **kwargs):
        signal.raise_signal(signal.SIGINT)
        save(*args, **kwargs)

    monkeypatch.setattr(fnn.checkpoint, "save", save_under_ctrl_c)
    d = str(tmp_path / "d.npz")
    assert main(common + ["--epochs", "4", "--save", d]) == 130
    captured = capsys.readouterr()
    assert "test: loss" not in captured.out and "saved checkpoint" not in captured.out
    assert (
        captured.err
        == f"fnn train: interrupted after training; saved checkpoint (epoch 4) to {d}; continue with --resume {d}\n"
    )
    saved = fnn.checkpoint.load(d)
    assert saved.epoch == 4 and saved.history["history"] == straight.history["history"]
    for k, v in straight.params.items():
        np.testing.assert_array_equal(saved.params[k], v)
    monkeypatch.undo()

    # The checkpoint is written before the test pass: a test pass that fails (it crashed on a
    # damaged cached program, after the epochs) loses no epoch.
    def test_pass_fails(*args, **kwargs):
        raise RuntimeError("the test pass failed")

    monkeypatch.setattr("fnn.cli._train.evaluate", test_pass_fails)
    e = str(tmp_path / "e.npz")
    with pytest.raises(RuntimeError, match="the test pass failed"):
        main(common + ["--epochs", "4", "--save", e])
    capsys.readouterr()
    assert fnn.checkpoint.load(e).epoch == 4
    monkeypatch.undo()

    # The default cache folder is only a speed-up: where it cannot be written (here under a
    # file) the run warns and goes on without it; a folder the user chose is refused instead.
    (tmp_path / "file").write_text("")
    monkeypatch.delenv("FNN_COMPILATION_CACHE")
    monkeypatch.delenv("FNN_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file" / "cache"))
    cache_before = jax.config.jax_compilation_cache_dir
    assert main(common + ["--epochs", "2"]) == 0
    captured = capsys.readouterr()
    assert "test: loss" in captured.out and jax.config.jax_compilation_cache_dir == cache_before
    where = tmp_path / "file" / "cache" / "fnn" / "jax"
    assert captured.err.startswith(f"fnn train: warning: the default cache folder '{where}': ")
    assert captured.err.endswith(
        "; running without the compilation cache (--cache-dir DIR or $FNN_CACHE_DIR choose another folder, "
        "--no-cache silences this)\n"
    )
    assert captured.err.count("\n") == 1 and not (tmp_path / "file").read_text()
    monkeypatch.setenv("FNN_CACHE_DIR", str(where))
    assert main(common + ["--epochs", "2"]) == 2
    assert "give another or --no-cache" in capsys.readouterr().err


@pytest.mark.slow
def test_a_ctrl_c_python_drops_in_a_gc_callback_still_stops_train(tmp_path, capsys, monkeypatch):
    """JAX registers a garbage-collector callback, run at every collection, and Python reports a
    KeyboardInterrupt raised inside such a callback as "Exception ignored" and goes on: a Ctrl-C
    landing there was lost and the run trained to its end. fnn train records a Ctrl-C Python
    drops (its unraisable hook, wrapped, sees it; the hook in place before gets nothing to print)
    and stops at the next epoch's end all the same, saving the finished epochs."""
    from fnn.cli import _train

    armed, dropped = [], []

    def ctrl_c_in_gc(phase, info):
        if armed and phase == "start":
            armed.clear()
            signal.raise_signal(signal.SIGINT)  # its handler raises here, inside the callback

    begin = _train._LastEpoch.on_epoch_begin

    def on_epoch_begin(self, epoch, ctx):
        begin(self, epoch, ctx)
        if epoch == 1:  # the second epoch, outside the section that holds Ctrl-C
            armed.append(True)
            gc.collect()

    monkeypatch.setattr(_train._LastEpoch, "on_epoch_begin", on_epoch_begin)
    monkeypatch.setattr(sys, "unraisablehook", lambda u: dropped.append(u.exc_type))
    path = str(tmp_path / "a.npz")
    argv = ["train", "--dataset", "iris", "--hidden", "4", "--optimizer", "adam", "--lr", "0.01"]
    gc.callbacks.append(ctrl_c_in_gc)
    try:
        rc = main([*argv, "--batch-size", "16", "--verbose", "0", "--epochs", "50", "--save", path])
    finally:
        gc.callbacks.remove(ctrl_c_in_gc)
    err = capsys.readouterr().err
    assert dropped == [] and rc == 130, (dropped, rc, err)
    saved = f"saved checkpoint (epoch 2) to {path}; continue with --resume {path}"
    assert err == f"fnn train: interrupted after epoch 2/50; {saved}\n"
    assert fnn.checkpoint.load(path).epoch == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.slow
def test_gradcheck_prints_layer_table_and_time_ratio(capsys):
    rc = main(["gradcheck", "--dataset", "iris", "--hidden", "4", "--samples", "8", "--repeats", "3"])
    out = capsys.readouterr().out
    assert rc == 0
    for layer, leaf, shape in (("dense_0", "w", "4x4"), ("dense_0", "b", "4"), ("dense_1", "w", "4x3")):
        assert any(l.split()[:3] == [layer, leaf, shape] and l.rstrip().endswith("ok") for l in out.splitlines())
    assert "gradcheck PASSED" in out
    ratio = float(out.split("manual/autodiff ratio")[1].split()[0])
    assert 0 < ratio < 100


def test_datasets_lists_names_tasks_and_shapes(tmp_path, capsys):
    assert main(["datasets"]) == 0
    lines = {l.split()[0]: l for l in capsys.readouterr().out.splitlines()[2:]}
    assert sorted(lines) == fnn.datasets.names()
    # scikit-learn's digits: 1797 images of 8x8 pixels, split 80/20.
    digits = lines["digits"]
    assert "classification" in digits and "(1438, 64)" in digits and "(359, 64)" in digits
    assert "regression" in lines["diabetes"] and "needs --path" in lines["mnist"]

    rng = np.random.default_rng(0)
    npz = tmp_path / "mnist.npz"
    np.savez(
        npz,
        x_train=rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        y_train=np.arange(12) % 10,
        x_test=rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        y_test=np.arange(5),
    )
    assert main(["datasets", "--path", str(npz)]) == 0
    lines = {l.split()[0]: l for l in capsys.readouterr().out.splitlines()[2:]}
    assert "(12, 784)" in lines["mnist"] and "(5, 784)" in lines["mnist"]


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["compare", "--optimizers", "sgd,adamz"], ["adamz", "known optimizers", "adam", "lion"]),
        (["train", "--optimizer", "nope"], ["nope", "known optimizers"]),
        (["train", "--dataset", "cifar"], ["cifar", "digits", "iris"]),
        (["gradcheck", "--loss", "l3"], ["l3", "known losses", "mean_squared_error"]),
        (["compare", "--epochs", "0"], ["--epochs", "positive integer"]),
        (["train", "--epochs", "-2"], ["--epochs", "positive integer"]),
        (["train", "--batch-size", "0"], ["--batch-size", "'full'"]),
        (["compare", "--batch-sizes", "32,x"], ["--batch-sizes", "'full'"]),
        (["compare", "--hidden", "64,,8"], ["--hidden", "64,64"]),
        (["train", "--hidden", "-4"], ["--hidden", "positive"]),
        (["train", "--lr", "0"], ["--lr", "positive"]),
        (["compare", "--seeds", "two"], ["--seeds", "positive integer"]),
        (["compare", "--validation-split", "1.5"], ["--validation-split", "[0, 1)"]),
        (["train", "--activation", "rellu"], ["rellu", "relu", "tanh"]),
        (["train", "--activation", "threshold"], ["'threshold' needs threshold and default_value", "cannot give"]),
        (["compare", "--grad", "numeric"], ["--grad", "manual", "autodiff"]),
        (["train", "--dataset", "mnist"], ["mnist", "--path"]),
        (["train", "--dataset", "diabetes", "--loss", "sparse_categorical_crossentropy"], ["does not fit", "diabetes"]),
        # (train builds the network before it reads the checkpoint: iris and 4 units keep that small)
        (
            ["train", "--dataset", "iris", "--hidden", "4", "--resume", "/nonexistent/ck.npz"],
            ["--resume", "no checkpoint"],
        ),
        (["frobnicate"], ["frobnicate", "compare", "train"]),
        ([], ["COMMAND"]),
        (["train", "--dataset", "iris", "--path", "x.npz"], ["--path", "mnist, fashion_mnist", "'iris'"]),
        (["compare", "--dataset", "iris", "--path", "x.npz"], ["--path", "'iris' comes with fnn"]),
        (["train", "--dataset", "mnist", "--path", ""], ["--path must be a non-empty path"]),
        (["train", "--dataset", "iris", "--hidden", "4", "--save", ""], ["--save must be a non-empty path"]),
        (["train", "--dataset", "iris", "--hidden", "4", "--resume", ""], ["--resume must be a non-empty path"]),
        (["train", "--seed", str(2**32)], ["--seed", "[0, 4294967295]", "4294967296"]),
        (["compare", "--seed", str(2**32 - 2), "--seeds", "3"], ["--seed 4294967294 with --seeds 3", "4294967295"]),
        (["compare", "--batch-sizes", "16,full,16"], ["--batch-sizes", "listed twice"]),
        # an empty --hidden (an unset "$HIDDEN") trained a linear model; 'none' still asks for one
        (["train", "--hidden", ""], ["--hidden", "(or 'none')", "got ''"]),
        # a command's unknown option is the command's error (it was "fnn: error:")
        (
            ["train", "--dataset", "iris", "--bogus"],
            ["fnn train: error: unrecognized arguments: --bogus", "fnn train --help"],
        ),
        # params that outgrow any machine: XLA waited for the allocation forever, deaf to Ctrl-C
        (
            ["train", "--dataset", "iris", "--hidden", "99999999999"],
            ["argument --hidden: a network 4-99999999999-3 holds 799,999,999,995 parameters", "machine's memory"],
        ),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, expected, capsys):
    rc = main(argv)
    captured = capsys.readouterr()
    assert rc == 2
    assert captured.out == ""
    assert captured.err.endswith("\n") and captured.err.count("\n") == 1, captured.err
    assert "error:" in captured.err and "Traceback" not in captured.err
    for fragment in expected:
        assert fragment in captured.err, (fragment, captured.err)


def test_a_learning_rate_the_state_cannot_hold_exits_2_with_one_line(capsys):
    """--lr 1e39 passed the flag's check and ended in a traceback when the optimizer was built:
    float32 (x64 off, JAX's default) cannot hold it."""
    with jax.enable_x64(False):
        for command in ("train", "compare"):
            assert main([command, "--dataset", "iris", "--lr", "1e39"]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and "Traceback" not in err
            assert f"fnn {command}: error: argument --lr: expected a positive number that float32" in err
            assert "at most 3.403e+38; got '1e39'" in err


def test_help_documents_default_learning_rates(capsys):
    assert main(["compare", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for name, lr in DEFAULT_LEARNING_RATES.items():
        assert f"{name} {lr:g}" in out


def test_out_of_memory_is_one_line_naming_the_flags_that_size_it_and_other_runtime_errors_are_raised(
    monkeypatch, capsys
):
    """A --hidden too large for the device ended in JAX's traceback."""
    from fnn.cli import _main

    def failing(message):
        def run(args):
            raise jax.errors.JaxRuntimeError(message)

        return run

    monkeypatch.setattr(_main, "_run", failing("RESOURCE_EXHAUSTED: Out of memory allocating 39600001832 bytes.\nat"))
    assert main(["train", "--dataset", "iris"]) == 1
    assert capsys.readouterr().err == (
        "fnn train: error: out of memory (RESOURCE_EXHAUSTED: Out of memory allocating 39600001832 bytes.); a "
        "smaller --hidden or --batch-size may fit\n"
    )
    monkeypatch.setattr(_main, "_run", failing("INTERNAL: something else"))
    with pytest.raises(jax.errors.JaxRuntimeError, match="INTERNAL: something else"):
        main(["train", "--dataset", "iris"])


def test_version_prints_fnn_s_version_as_the_package_has_it(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"fnn {fnn.__version__}\n"


@pytest.mark.slow
def test_python_dash_m_fnn_reports_errors_as_a_process():
    proc = subprocess.run(
        [sys.executable, "-m", "fnn", "compare", "--batch-sizes", "0"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("fnn compare: error: argument --batch-sizes")


_COUNTING_RUN = """
import collections, json, sys
import jax
counts = collections.Counter()
COMPILE = "/jax/core/compile/backend_compile_duration"
jax.monitoring.register_event_duration_secs_listener(
    lambda event, duration, **kw: counts.update([event]) if event == COMPILE else None
)
jax.monitoring.register_event_listener(lambda event, **kw: counts.update([event]))
from fnn.cli import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "compiles": counts[COMPILE],  # XLA compilations or cache reads
                  "requests": counts["/jax/compilation_cache/compile_requests_use_cache"],
                  "misses": counts["/jax/compilation_cache/cache_misses"],
                  "hits": counts["/jax/compilation_cache/cache_hits"],
                  "store_hits": counts["/fnn/executable_store/hits"],
                  "store_misses": counts["/fnn/executable_store/misses"]}))
"""


COMPARE_CACHED = ["compare", "--dataset", "iris", "--hidden", "4", "--seeds", "2"]
COMPARE_CACHED += ["--optimizers", "sgd,adam", "--batch-sizes", "16,full", "--no-plots"]
COMPARE_CACHED += ["--jobs", "1"]  # one compilation at a time: no two threads racing for the same entry
OTHER_VALUES = ["--epochs", "3", "--seed", "4", "--lr", "0.05"]
OTHER_VALUES += ["--optimizers", "adam,sgd", "--batch-sizes", "full,16"]  # the same runs, in another order


@pytest.fixture(scope="module")
def compare_cached(tmp_path_factory):
    """Four fresh processes of ``fnn compare`` on one --cache-dir (the cache is set up once per
    process), whose outputs the two tests below read: ``first`` (an empty cache), ``second`` (the
    same command again, into an --out holding an earlier run's plots), ``other`` (other epochs,
    first seed and learning rate, the runs in another order) and ``fresh`` (``other``'s values
    with --no-cache). What the cache folder held along the way."""
    tmp_path = tmp_path_factory.mktemp("compare-cached")
    cache = tmp_path / "cache"
    args = [*COMPARE_CACHED, "--cache-dir", str(cache)]

    def compare(*extra, out):
        counts = run_python_json(_COUNTING_RUN, *args, *extra, "--out", str(tmp_path / out))
        return counts, counts["stdout"]

    seen = {"tmp_path": tmp_path}
    seen["first"] = compare("--epochs", "2", out="out0")
    store = cache / "executables"
    seen["after_first"] = {
        "store": sorted(store.iterdir()),
        "exe": sorted(store.glob("*.exe")),
        "others": {p: sorted(p.iterdir()) for p in cache.iterdir() if p != store},
    }
    # plots of an earlier run in --out go, as the new results come without any
    (tmp_path / "out1").mkdir()
    stale = [tmp_path / "out1" / name for name in ("loss_vs_epoch.png", "loss_vs_time.png")]
    for path in stale:
        path.write_bytes(PNG_SIGNATURE)
    seen["second"] = compare("--epochs", "2", out="out1")
    seen["stale_left"] = [path.exists() for path in stale]
    seen["after_second"] = sorted(store.iterdir())
    seen["other"] = compare(*OTHER_VALUES, out="other")
    seen["before_fresh"] = sorted(cache.rglob("*"))
    seen["fresh"] = compare(*OTHER_VALUES, "--no-cache", out="fresh")
    seen["after_fresh"] = sorted(cache.rglob("*"))
    return seen


@pytest.mark.slow
def test_compare_twice_with_the_persistent_cache_compiles_nothing_the_second_time(compare_cached):
    """Two fresh processes of the same ``fnn compare``: the first compiles every program and
    writes each to the executable store (``cache/executables``) and to JAX's cache; the second
    compiles nothing and traces nothing (every program loaded from the store, JAX's cache not
    even asked) and prints the same table."""
    tmp_path = compare_cached["tmp_path"]
    n_optimizers = 2
    n_runs = n_optimizers * 2  # optimizers x batch sizes
    # one epoch program per batch size, holding both optimizers' epochs (--jobs 1: one program
    # trains at a time); the arithmetic of the seeds' params (their random bits are drawn on the
    # host); and one program for every run: the params' copy, the validation pass (the runs
    # differ only in what it does not hold: optimizer, batch size), the test pass (the epochs'
    # keys come from the host, and the optimizers' states, zeros and hyperparameter values, are
    # filled on the host)
    n_programs, shared = 2, 3
    stored = through_store = n_programs + 1 + shared

    (first, out1), (second, out2) = compare_cached["first"], compare_cached["second"]
    assert first["rc"] == second["rc"] == 0
    assert not any(compare_cached["stale_left"]) and (tmp_path / "out1" / "results.json").exists()
    # first: every program compiled and written to JAX's cache, and each through the store
    assert first["requests"] == first["misses"] == first["compiles"] == through_store and first["hits"] == 0
    assert (first["store_hits"], first["store_misses"]) == (0, stored)
    after_first = compare_cached["after_first"]
    assert len(after_first["exe"]) == stored == len(after_first["store"])
    # JAX's cache in a folder of this version of fnn's source (jax-<digest>), beside the store
    ((jax_cache, entries),) = after_first["others"].items()
    assert jax_cache.name.startswith("jax-") and len(entries) == first["misses"]
    # second: everything read from the store, nothing asked of JAX's cache or compiled
    assert (second["store_hits"], second["store_misses"]) == (stored, 0)
    assert second["requests"] == second["misses"] == second["hits"] == second["compiles"] == 0
    assert len(compare_cached["after_second"]) == stored
    table = lambda out: [line for line in out.splitlines() if line.startswith("|") and "time" not in line]
    strip_times = lambda rows: [row.rsplit("|", 3)[0] for row in rows]  # the time column differs
    assert strip_times(table(out1)) == strip_times(table(out2)) and len(table(out1)) == 1 + n_runs  # separator, runs
    # --no-cache reads nothing from either (a process of its own, so everything is compiled
    # again): the same table as the process of the same values that loaded every program
    third, out3 = compare_cached["fresh"]
    assert third["rc"] == 0
    assert third["hits"] == third["misses"] == 0 and compare_cached["after_fresh"] == compare_cached["before_fresh"]
    assert third["store_hits"] == third["store_misses"] == 0
    assert third["compiles"] == first["compiles"]
    _, out_other = compare_cached["other"]
    assert strip_times(table(out3)) == strip_times(table(out_other)) and len(table(out3)) == 1 + n_runs


@pytest.mark.slow
def test_compare_with_other_epochs_seed_and_rate_reuses_every_stored_program(compare_cached):
    """The epochs (a bound of the host's loop), the first seed and the learning rate (values the
    programs take as inputs) are left out of the store's namespace, and so is the order of the
    optimizers and batch sizes (each run's programs are keyed on its own): a second process with
    other values of all three and the runs in another order loads every program the first
    stored, compiles nothing and traces nothing, and trains what those values ask for."""
    tmp_path = compare_cached["tmp_path"]
    (first, _), (second, _) = compare_cached["first"], compare_cached["other"]
    assert first["rc"] == second["rc"] == 0
    stored = first["store_misses"]
    assert stored >= 3 and first["store_hits"] == 0
    assert (second["store_hits"], second["store_misses"]) == (stored, 0)
    assert second["requests"] == second["compiles"] == 0
    runs = json.loads((tmp_path / "other" / "results.json").read_text())["runs"]
    assert [r["learning_rate"] for r in runs] == [0.05] * 4
    assert all([s["seed"] for s in r["seeds"]] == [4, 5] and r["summary"]["epochs"][0] == 3 for r in runs)
    # what the loaded programs trained is what programs compiled for these values train
    fresh, _ = compare_cached["fresh"]
    assert fresh["rc"] == 0 and fresh["compiles"] > 0
    again = json.loads((tmp_path / "fresh" / "results.json").read_text())["runs"]
    histories = lambda rs: [[s["history"] for s in r["seeds"]] for r in rs]
    assert histories(runs) == histories(again)


def test_settings_that_shape_no_program_stay_out_of_the_store_namespace(tmp_path):
    """--verbose, --save and --resume (train), and compare's --optimizers and --batch-sizes as
    whole lists, leave the store's namespace: each compare run's programs are kept under a child
    that names its optimizer and batch size, so a subset or another order of an earlier compare,
    and another verbosity or checkpoint path, find every program stored; a setting that shapes
    one (the network, the optimizer, the batch size, the seeds trained together) still keys it."""
    from fnn.cli._compile_cache import executable_store
    from fnn.cli._main import build_parser

    store = lambda *argv: executable_store(build_parser().parse_args([*argv, "--cache-dir", str(tmp_path)]))
    prefix = lambda *argv: store(*argv).prefix
    train = ["train", "--dataset", "iris"]
    base = prefix(*train)
    assert prefix(*train, "--verbose", "2") == base
    assert prefix(*train, "--verbose", "0", "--save", "a.npz", "--resume", "b.npz") == base
    # which options were typed (main records them for --resume) neither: only their values count
    typed = build_parser().parse_args([*train, "--hidden", "64,64", "--cache-dir", str(tmp_path)])
    typed.given = given_options([*train, "--hidden", "64,64"])
    assert executable_store(typed).prefix == base
    assert len({base, prefix(*train, "--optimizer", "sgd"), prefix(*train, "--batch-size", "16")}) == 3
    compare = ["compare", "--dataset", "iris"]
    root = store(*compare, "--optimizers", "sgd,adam", "--batch-sizes", "16,full")
    args = (jax.ShapeDtypeStruct((4, 3), np.float32),)
    epoch_key = lambda s, run: s.child(run).key("epoch", (), args)
    for other in (["--optimizers", "adam"], ["--optimizers", "adam,sgd", "--batch-sizes", "full,16"]):
        again = store(*compare, *other)
        assert again.prefix == root.prefix
        assert epoch_key(again, "adam|None") == epoch_key(root, "adam|None")
        assert again.key("validation", (1024,), args, common=True) == root.key("validation", (1024,), args, common=True)
    runs = ("adam|None", "sgd|None", "adam|16")
    assert len({epoch_key(root, run) for run in runs}) == 3
    assert len({root.prefix, prefix(*compare, "--hidden", "4"), prefix(*compare, "--seeds", "2")}) == 3


@pytest.fixture(scope="module")
def train_twice(tmp_path_factory):
    """``fnn train`` twice, in fresh processes (the cache is set up once per process), on one
    --cache-dir that holds another version's JAX folder unused for a year; between the runs the
    executables the first stored are dated 10 days back. What each run saw and left."""
    cache = tmp_path_factory.mktemp("train-twice") / "cache"
    old = cache / "jax-0000000000000000"
    old.mkdir(parents=True)
    long_ago = os.stat(old).st_mtime - 365 * 24 * 3600
    os.utime(old, (long_ago, long_ago))
    args = ["train", "--dataset", "iris", "--hidden", "4", "--epochs", "2", "--verbose", "0"]
    args += ["--cache-dir", str(cache)]
    first = run_python_json(_COUNTING_RUN, *args)
    jax_mtimes = [os.stat(p).st_mtime for p in cache.iterdir() if p.name.startswith("jax-")]
    stored = sorted((cache / "executables").iterdir())
    after_first = {"old_left": old.exists(), "jax_mtimes": jax_mtimes, "stored": stored}
    days_ago = max(jax_mtimes) - 10 * 24 * 3600  # used, but not lately
    for p in stored:
        os.utime(p, (days_ago, days_ago))
    second = run_python_json(_COUNTING_RUN, *args)
    after_second = {"stored": sorted((cache / "executables").iterdir())}
    after_second["stored_mtimes"] = [os.stat(p).st_mtime for p in after_second["stored"]]
    return {
        "first": first,
        "second": second,
        "long_ago": long_ago,
        "days_ago": days_ago,
        "after_first": after_first,
        "after_second": after_second,
    }


@pytest.mark.slow
def test_train_twice_with_the_cache_traces_and_compiles_nothing_the_second_time(train_twice):
    """``fnn train``'s programs all go through the executable store: the seed's initial params
    and key, the params' copy, the epoch, the validation pass and the test pass (the epochs' keys
    and the optimizer state come from the host). The second process loads each and asks JAX's
    cache for nothing; same output."""
    programs = 5
    first, second = train_twice["first"], train_twice["second"]
    assert first["rc"] == second["rc"] == 0
    assert (first["store_hits"], first["store_misses"]) == (0, programs)
    assert first["requests"] == first["misses"] == first["compiles"] == programs
    assert (second["store_hits"], second["store_misses"]) == (programs, 0)
    assert second["requests"] == second["compiles"] == 0
    lines = lambda out: [line for line in out.splitlines() if line.startswith(("final epoch", "test:"))]
    assert len(lines(first["stdout"])) == 2 and lines(first["stdout"]) == lines(second["stdout"])


def test_the_cache_drops_what_no_run_used_for_30_days(tmp_path):
    """Other versions' JAX folders and executables unused for CACHE_KEPT_DAYS go; the current
    version's folder, recent files and anything that is not the cache's stay; an interrupted
    write's temporary file goes after a day."""
    from fnn.cli._compile_cache import CACHE_KEPT_DAYS, prune_cache

    now = 1_800_000_000.0
    day = 24 * 3600.0
    cache, store = tmp_path / "cache", tmp_path / "cache" / "executables"
    store.mkdir(parents=True)
    old_exe, used_exe = "ab" * 32 + ".exe", "cd" * 32 + ".exe"
    ages = {  # path -> days since its last use
        "jax-00000000000000c0": 400,  # this version's: never dropped here (JAX's own)
        "jax-0123456789abcdef": CACHE_KEPT_DAYS + 1,
        "jax-fedcba9876543210": CACHE_KEPT_DAYS - 1,
        f"executables/{old_exe}": CACHE_KEPT_DAYS + 0.5,
        f"executables/{used_exe}": 2,
        "executables/.tmp-a1b2_c3d.exe": 1.5,
        "executables/.tmp-x9y8z7w6.exe": 0.5,
        "executables/notes.txt": 400,  # not the cache's
        "jax-0000000000000abc": 400,  # a file, not a folder
    }
    for name, days in ages.items():
        p = cache / name
        if name.startswith("jax-") and name != "jax-0000000000000abc":
            p.mkdir()
            (p / ("jit_epoch-" + "0f" * 32 + "-cache")).write_bytes(b"x")
            (p / ("jit_epoch-" + "0f" * 32 + "-atime")).write_bytes(b"x")
            (p / ".lockfile").write_bytes(b"")
        else:
            p.write_bytes(b"x")
        os.utime(p, (now - days * day, now - days * day))
    removed = prune_cache(str(cache), str(cache / "jax-00000000000000c0"), now=now)
    gone = {"jax-0123456789abcdef", f"executables/{old_exe}", "executables/.tmp-a1b2_c3d.exe"}
    assert sorted(removed) == sorted(str(cache / name) for name in gone)
    for name in ages:
        assert (cache / name).exists() == (name not in gone), name
    assert prune_cache(str(tmp_path / "nowhere"), str(tmp_path / "nowhere" / "jax-x"), now=now) == []


def test_the_cache_prune_never_removes_a_file_fnn_or_jax_did_not_write(tmp_path):
    """--cache-dir may be a folder of the user's: a ``jax-...`` folder or ``.exe`` file of theirs,
    however old, stays, and so does anything of theirs inside a JAX folder fnn made (which then
    stays too, less JAX's own entries)."""
    from fnn.cli._compile_cache import prune_cache

    now, long_ago = 1_800_000_000.0, 1_800_000_000.0 - 400 * 24 * 3600.0
    cache = tmp_path / "mine"
    theirs = [
        "jax-experiments/sub/notes.txt",
        "jax-0123456789ABCDEF/notes.txt",  # not lowercase hex: not fnn's name
        "jax-0123456789abcde/notes.txt",  # 15 digits
        "jax-0123456789abcdef0/notes.txt",  # 17 digits
        "jax-0123456789abcdef/my-notes.txt",  # fnn's folder name, a file of the user's in it
        "jax-0123456789abcdef/jit_f-" + "0" * 63 + "-cache",  # 63 digits: not JAX's
        "executables/my-model.exe",
        "executables/" + "a" * 63 + ".exe",
        "executables/" + "A" * 64 + ".exe",
        "executables/.tmp-abc.exe",  # not tempfile's 8 characters
        "executables/.tmp-abcdefgh.exe.bak",
    ]
    ours = "jax-0123456789abcdef/jit_f-" + "0" * 64 + "-cache"
    for name in [*theirs, ours]:
        (cache / name).parent.mkdir(parents=True, exist_ok=True)
        (cache / name).write_bytes(b"x")
    for p in sorted(cache.rglob("*"), reverse=True):
        os.utime(p, (long_ago, long_ago))
    os.utime(cache / "jax-0123456789abcdef", (long_ago, long_ago))
    assert prune_cache(str(cache), str(cache / "jax-1111111111111111"), now=now) == []
    for name in theirs:
        assert (cache / name).read_bytes() == b"x", name
    assert not (cache / ours).exists()  # JAX's own entry goes; the folder stays, not empty


def test_the_cache_prune_removes_the_empty_entries_a_full_disk_left_in_the_current_folder(tmp_path):
    """A full disk cut JAX's writes short, leaving empty ``-cache`` entries that JAX warned of
    (8 lines) at every later run: they go at the next command's start; a written entry, an empty
    file of another name and a link stay."""
    from fnn.cli._compile_cache import prune_cache

    current = tmp_path / "cache" / "jax-0123456789abcdef"
    current.mkdir(parents=True)
    empty, full = ("jit_f-" + d * 64 + "-cache" for d in "01")
    (current / empty).write_bytes(b"")
    (current / full).write_bytes(b"x")
    (current / "notes-cache").write_bytes(b"")  # not JAX's name
    (current / ("jit_g-" + "2" * 64 + "-atime")).write_bytes(b"")  # JAX's, not an executable
    (current / ("jit_h-" + "3" * 64 + "-cache")).symlink_to(current / "notes-cache")
    assert prune_cache(str(tmp_path / "cache"), str(current)) == [str(current / empty)]
    assert sorted(p.name for p in current.iterdir()) == sorted(
        [full, "notes-cache", "jit_g-" + "2" * 64 + "-atime", "jit_h-" + "3" * 64 + "-cache"]
    )


def test_jax_s_cache_warnings_are_one_line_of_the_command_s_and_an_unreadable_entry_goes(tmp_path, capsys):
    """On a full disk JAX warned of every entry it could not write or read, two lines each with
    its own source line, at every run (a truncated entry is never replaced): one line per kind
    now, and the unreadable entry is removed for a later run to store again. Other warnings
    are shown as before."""
    from fnn.cli._compile_cache import cache_settings_restored, cache_warnings_in_one_line

    keys = ["jit_f-" + d * 64 for d in "012"]
    for key in keys:
        (tmp_path / (key + "-cache")).write_bytes(b"cut short")
    full, entry = "OSError: [Errno 28] No space left on device", "persistent compilation cache entry for"
    # JAX's own setting, as the commands set it (reading it with jax.config.read raised in the
    # handler: a garbled entry ended `fnn train` with an AttributeError)
    with (
        cache_settings_restored(),
        warnings.catch_warnings(record=True) as shown,
        cache_warnings_in_one_line("train"),
    ):
        jax.config.update("jax_compilation_cache_dir", str(tmp_path))
        warnings.simplefilter("always")
        for key in keys[:2]:
            warnings.warn(f"Error writing {entry} '{key}': {full}", stacklevel=1)
            warnings.warn(f"Error reading {entry} '{key}': error: truncated", stacklevel=1)
        warnings.warn("something else", UserWarning, stacklevel=1)
    said = "fnn train: warning: could not {} the compilation cache ({}); the run {}"
    assert capsys.readouterr().err.splitlines() == [
        said.format("store a program in", full, "goes on without storing it"),
        said.format("read a program from", "error: truncated", "compiles it"),
    ]
    assert [str(w.message) for w in shown] == ["something else"]  # as Python shows it
    assert sorted(p.name for p in tmp_path.iterdir()) == [keys[2] + "-cache"]


def test_the_cache_prune_removes_xla_s_autotune_results_in_an_old_jax_folder(tmp_path):
    """On a GPU, JAX has XLA keep its per-fusion autotune results in the JAX folder's
    ``xla_gpu_per_fusion_autotune_cache_dir`` (``<base64 sha256>.textproto``, written through
    ``tmp/``): in an old folder of another version they go too, old ones only, and the folders
    once empty; anything else in that subfolder stays, and so does the folder around it."""
    from fnn.cli._compile_cache import CACHE_KEPT_DAYS, prune_cache

    now, day = 1_800_000_000.0, 24 * 3600.0
    cache, entry = tmp_path / "cache", "Ab9_-" * 8 + "xyz.textproto"  # 43 base64url characters
    temp = "tmp/tmp_per_fusion_cache_" + entry.replace(".textproto", "_1234567890.textproto")
    names = {  # path -> days since written
        "jax-0123456789abcdef/jit_f-" + "0" * 64 + "-cache": 400,
        f"jax-0123456789abcdef/xla_gpu_per_fusion_autotune_cache_dir/{entry}": 400,
        f"jax-0123456789abcdef/xla_gpu_per_fusion_autotune_cache_dir/{temp}": 400,
        f"jax-fedcba9876543210/xla_gpu_per_fusion_autotune_cache_dir/{entry}": 400,
        "jax-fedcba9876543210/xla_gpu_per_fusion_autotune_cache_dir/notes.textproto": 400,  # not XLA's name
        f"jax-0000000000000abc/xla_gpu_per_fusion_autotune_cache_dir/{entry}": CACHE_KEPT_DAYS - 1,  # recent
        f"jax-0000000000000abc/other_dir/{entry}": 400,  # not that subfolder
    }
    for name in names:
        (cache / name).parent.mkdir(parents=True, exist_ok=True)
        (cache / name).write_bytes(b"x")
    for p in sorted(cache.rglob("*"), reverse=True):
        days = names.get(str(p.relative_to(cache)), 400)
        os.utime(p, (now - days * day, now - days * day))
    removed = prune_cache(str(cache), str(cache / "jax-1111111111111111"), now=now)
    assert removed == [str(cache / "jax-0123456789abcdef")] and not (cache / "jax-0123456789abcdef").exists()
    kept = [name for name in names if not name.startswith("jax-0123456789abcdef")]
    assert sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file()) == sorted(kept[1:])
    assert not (cache / kept[0]).exists()  # XLA's own result goes; its folder stays, not empty


@pytest.mark.slow
def test_a_command_marks_its_cache_folders_used_and_prunes_the_rest(train_twice):
    """``fnn train`` with --cache-dir (fresh processes: the cache is set up once per process):
    its version's JAX folder dated now, another version's unused one removed, each executable
    it loads dated now (kept for 30 more days)."""
    first, second = train_twice["first"], train_twice["second"]
    after_first, after_second = train_twice["after_first"], train_twice["after_second"]
    assert first["rc"] == 0
    assert not after_first["old_left"]
    (current_mtime,) = after_first["jax_mtimes"]
    stored = after_first["stored"]
    assert stored and current_mtime > train_twice["long_ago"]
    assert second["rc"] == 0 and second["store_hits"] == len(stored)  # each one loaded, which dates it
    assert after_second["stored"] == stored
    assert all(t > train_twice["days_ago"] for t in after_second["stored_mtimes"])


def test_a_cache_dir_that_cannot_be_written_is_refused_in_one_line_naming_who_chose_it(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    rc = main(["compare", "--dataset", "iris", "--cache-dir", str(blocker / "cache")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--cache-dir" in err and "--no-cache" in err
    # $FNN_CACHE_DIR's folder is named as the variable was set: no --cache-dir was given
    env = str(blocker / "env")
    monkeypatch.setenv("FNN_CACHE_DIR", env)
    monkeypatch.delenv("FNN_COMPILATION_CACHE", raising=False)  # (the suite's: no default cache)
    assert main(["compare", "--dataset", "iris"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"fnn compare: error: FNN_CACHE_DIR={env!r}: {str(blocker)!r} is a file, not a folder; "
        "give another or --no-cache\n"
    )
    assert main(["compare", "--dataset", "iris", "--cache-dir", str(blocker / "cache")]) == 2  # the option wins
    assert "--cache-dir '" in capsys.readouterr().err


def test_help_names_the_cache_folder_and_the_switches(capsys, monkeypatch):
    monkeypatch.setenv("FNN_CACHE_DIR", "/somewhere/fnn-cache")
    monkeypatch.delenv("FNN_COMPILATION_CACHE", raising=False)  # (the suite's: no default cache)
    for command in ("compare", "train"):
        assert main([command, "--help"]) == 0
        out = " ".join(capsys.readouterr().out.split())
        assert "(default /somewhere/fnn-cache;" in out and "--no-cache" in out, command
        assert "FNN_COMPILATION_CACHE=0 turns the default off" in out and "the cache is off" not in out, command


@pytest.mark.parametrize("value", ["0", "off"])
def test_help_says_the_cache_is_off_when_the_environment_turns_it_off(capsys, monkeypatch, value):
    """``FNN_COMPILATION_CACHE=0`` turns the default folder off: --help says so and why, not
    the folder as if it were in use."""
    monkeypatch.setenv("FNN_COMPILATION_CACHE", value)
    monkeypatch.setenv("FNN_CACHE_DIR", "/somewhere/fnn-cache")
    for command in ("compare", "train"):
        assert main([command, "--help"]) == 0
        out = " ".join(capsys.readouterr().out.split())
        cache = out.split("--cache-dir DIR ", 1)[1].split(" --no-cache ", 1)[0]
        assert cache.startswith("the compilation cache"), command
        assert (
            f"(default none: the cache is off, as FNN_COMPILATION_CACHE={value} in the environment says "
            "(unset, the folder would be /somewhere/fnn-cache); --cache-dir DIR still uses DIR;"
        ) in cache, command
        assert "(default /somewhere/fnn-cache" not in cache, command


@pytest.mark.parametrize(
    "argv,words",
    [
        (["compare", "--out", "{file}"], ["--out", "is a file; it must name a folder"]),
        (["compare", "--out", "{file}/sub"], ["--out", "is a file, not a folder"]),
        (["train", "--save", "{folder}"], ["--save", "is a folder; it must name a file"]),
        (["train", "--save", "{file}/ck.npz"], ["--save", "is a file, not a folder"]),
        # a device: the checkpoint's rename would replace it (it trained, then failed to save)
        (["train", "--save", "/dev/full"], ["--save '/dev/full' is not a regular file", "a checkpoint replaces it"]),
    ],
)
def test_bad_output_paths_exit_2_before_anything_is_compiled(tmp_path, capsys, compiles, argv, words):
    (tmp_path / "f").write_text("")
    argv = [a.format(file=tmp_path / "f", folder=tmp_path) for a in argv]
    with compiles() as c:
        rc = main([*argv, "--dataset", "iris", "--hidden", "4", "--epochs", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and all(w in err for w in words) and c.count == 0


@pytest.mark.parametrize("name", ["results.json", "results.csv", "loss_vs_time.png"])
def test_a_folder_where_compare_writes_a_file_exits_2_before_anything_is_compiled(tmp_path, capsys, compiles, name):
    (tmp_path / name).mkdir()
    with compiles() as c:
        rc = main(["compare", "--dataset", "iris", "--hidden", "4", "--epochs", "1", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and c.count == 0
    words = f"--out {str(tmp_path)!r} holds a folder {name!r}, where fnn compare writes a file: remove it"
    assert err == f"fnn compare: error: {words}\n"


@pytest.mark.parametrize("fault", ["folder", "full disk"])
def test_results_that_cannot_be_written_after_the_runs_end_in_one_line_naming_the_file(
    tmp_path, capsys, monkeypatch, fault
):
    """What the check before the runs cannot see (a folder made during them, a disk that fills):
    one line naming the file, exit status 1, no traceback."""
    out = tmp_path / "out"

    def no_runs(*args, **kwargs):  # the runs' end, without training any
        if fault == "folder":
            (out / "results.csv").mkdir(parents=True)
        else:
            monkeypatch.setattr(json, "dump", lambda *a, **k: _raise(OSError(errno.ENOSPC, "No space left on device")))

    monkeypatch.setattr("fnn.cli._commands.run_comparison", no_runs)
    rc = main(["compare", "--dataset", "iris", "--no-plots", "--out", str(out)])
    err = capsys.readouterr().err
    name = "results.csv" if fault == "folder" else "results.json"
    assert rc == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("fnn compare: error: [Errno ") and err.endswith(
        f" while writing the results: {str(out / name)!r}\n"
    )
    assert ("Is a directory" if fault == "folder" else "No space left on device") in err


def _raise(err):
    raise err


@pytest.mark.parametrize(
    "argv,words",
    [
        # the default --out, fnn-compare, in the current folder
        (["compare", "--dataset", "mnist"], ["--path"]),
        (
            ["compare", "--dataset", "iris", "--validation-split", "0.999", "--out", "new/a/b"],
            ["fnn compare: error: --validation-split=0.999 leaves no training or no validation sample out of 120;"],
        ),
        (
            ["train", "--dataset", "iris", "--validation-split", "0", "--early-stopping", "2", "--save", "ck/x/y.npz"],
            ["--early-stopping", "--validation-split > 0"],
        ),
    ],
)
def test_a_usage_error_creates_no_output_folder(tmp_path, monkeypatch, capsys, compiles, argv, words):
    """--out and --save are checked first, yet their folders are made only when written."""
    monkeypatch.chdir(tmp_path)
    with compiles() as c:
        rc = main([*argv, "--hidden", "4", "--epochs", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and all(w in err for w in words) and c.count == 0, err
    assert "validation_split" not in err  # the option's name, not the library's argument
    assert list(tmp_path.iterdir()) == []


def test_setting_up_the_cache_creates_no_folder(tmp_path, monkeypatch):
    """The cache is set up before a command's own checks, so it must create nothing: JAX's
    cache makes its folder when it first writes (a usage error compiles and writes nothing)."""
    from fnn.cli._compile_cache import use_compilation_cache

    settings = {}
    monkeypatch.setattr(jax.config, "update", lambda name, value: settings.__setitem__(name, value))
    use_compilation_cache(str(tmp_path / "new" / "cache"), "--cache-dir")
    assert list(tmp_path.iterdir()) == []
    assert settings["jax_compilation_cache_dir"].startswith(str(tmp_path / "new" / "cache" / "jax-"))


def _entries(folder, word=""):
    """The files under ``folder`` whose names hold ``word`` (JAX's cache names each entry after
    its program: ``jit_<function>-<sha256>-cache``; the ``-atime`` files JAX keeps beside them when
    its cache has a size limit are not entries)."""
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and word in p.name and not p.name.endswith("-atime"))


_CACHE_SETTINGS = (
    "jax_compilation_cache_dir",
    "jax_persistent_cache_min_compile_time_secs",
    "jax_persistent_cache_min_entry_size_bytes",
)


@pytest.mark.slow
def test_main_in_process_puts_the_user_s_cache_settings_back_and_jax_s_cache_in_their_folder(
    tmp_path, capsys, monkeypatch
):
    """main(["train", ...]) points JAX's persistent cache at fnn's folder for the run (its
    programs land there, though this process compiled before), then puts the caller's three
    settings back and resets JAX's cache, whether the command returns, fails (a usage error
    found after the cache is set up) or raises: the caller's next program lands in its own
    folder, none in fnn's."""
    from jax.experimental.compilation_cache.compilation_cache import reset_cache

    mine, theirs = tmp_path / "mine", tmp_path / "fnn-cache"
    mine.mkdir()
    original = {name: getattr(jax.config, name) for name in _CACHE_SETTINGS}
    user = {_CACHE_SETTINGS[0]: str(mine), _CACHE_SETTINGS[1]: 5.0, _CACHE_SETTINGS[2]: 7}
    settings = lambda: {name: getattr(jax.config, name) for name in _CACHE_SETTINGS}
    # a network of its own (3 units): its programs are compiled here, whatever ran before
    train = ["train", "--dataset", "iris", "--hidden", "3", "--epochs", "1", "--verbose", "0"]
    try:
        for name, value in user.items():
            jax.config.update(name, value)
        jax.config.update(_CACHE_SETTINGS[1], 0.0)  # a first program of the user's, in its folder:
        jax.config.update(_CACHE_SETTINGS[2], 0)  # JAX's cache opened there before main runs
        jax.jit(lambda a: a * 5.0 - 2.0)(np.arange(3.0)).block_until_ready()
        assert len(_entries(mine, "-cache")) == 1
        for name, value in user.items():
            jax.config.update(name, value)

        assert main([*train, "--cache-dir", str(theirs)]) == 0
        assert "test: loss" in capsys.readouterr().out
        assert settings() == user
        (folder,) = theirs.glob("jax-*")  # fnn's programs went to fnn's folder, not the user's
        assert len(_entries(folder, "-cache")) >= 1 and len(_entries(mine, "-cache")) == 1

        # the user's next program, written whatever its size and time: in the user's folder
        jax.config.update(_CACHE_SETTINGS[1], 0.0)

        @jax.jit
        def users_program_after_main(a):
            return jnp.sin(a) * 3.0 + 1.0

        users_program_after_main(jnp.arange(7.0)).block_until_ready()
        assert len(_entries(mine, "users_program_after_main")) == 1
        assert _entries(theirs, "users_program_after_main") == []
        jax.config.update(_CACHE_SETTINGS[1], user[_CACHE_SETTINGS[1]])

        # the same when the command fails after setting the cache up, and when it raises
        assert main([*train, "--cache-dir", str(theirs), "--resume", str(tmp_path / "none.npz")]) == 2
        assert "none.npz" in capsys.readouterr().err and settings() == user

        def boom(args):
            assert jax.config.jax_compilation_cache_dir == str(folder)
            raise RuntimeError("boom")

        monkeypatch.setattr("fnn.cli._main.cmd_train", boom)
        with pytest.raises(RuntimeError, match="boom"):
            main([*train, "--cache-dir", str(theirs)])
        assert settings() == user
        monkeypatch.undo()

    finally:
        for name, value in original.items():
            jax.config.update(name, value)
        reset_cache()  # the rest of the tests compile without a persistent cache, as before


@pytest.mark.parametrize("on_accelerator", [False, True], ids=["cpu", "as-on-a-gpu"])
def test_the_commands_run_under_a_disallowing_transfer_guard_as_unguarded(on_accelerator, request, tmp_path, capsys):
    """JAX_TRANSFER_GUARD=disallow (here its context manager, in-process) refuses implicit
    transfers only: the commands put what they make on the host (the seeds, the params of a
    run read back for the test pass) on the device explicitly, and print the same numbers; on a
    GPU (the accelerator fixture makes the CPU behave so) they also read what they check so."""
    if on_accelerator:
        request.getfixturevalue("accelerator")
    compare = ["compare", "--dataset", "iris", "--epochs", "1", "--optimizers", "sgd", "--seeds", "2"]
    compare += ["--no-cache", "--no-plots"]
    gradcheck = ["gradcheck", "--dataset", "iris", "--hidden", "3", "--no-cache"]
    train = ["train", "--dataset", "iris", "--hidden", "4", "--no-cache"]
    rows = lambda out: [line.rsplit("|", 2)[0] for line in out.splitlines() if line.startswith("| sgd")]
    # a checkpoint written, then a run resumed from it: their numbers (not their paths)
    numbers = lambda out: [line for line in out.splitlines() if line.startswith(("final epoch", "test:"))]
    seen = {}
    for guard in ("allow", "disallow"):
        with jax.transfer_guard(guard):
            assert main([*compare, "--out", str(tmp_path / guard)]) == 0
            table = capsys.readouterr().out
            assert main(gradcheck) == 0
            report = [line for line in capsys.readouterr().out.splitlines() if line.startswith("gradcheck ")]
            saved = str(tmp_path / f"{guard}.ckpt")
            assert main([*train, "--epochs", "2", "--save", saved]) == 0
            assert main([*train, "--epochs", "3", "--resume", saved]) == 0
            seen[guard] = (rows(table), report, numbers(capsys.readouterr().out))
    assert seen["disallow"] == seen["allow"] and len(seen["allow"][0]) == 1 and len(seen["allow"][2]) == 4
    assert seen["allow"][1][0].startswith("gradcheck PASSED")


def test_no_cache_turns_off_a_jax_cache_the_caller_set_up_for_the_run_only(tmp_path, capsys, compiles):
    """``--no-cache`` neither reads nor writes a compilation cache, also JAX's own that the
    caller (or ``$JAX_COMPILATION_CACHE_DIR``) set up: the run compiles and asks JAX's cache
    nothing; afterwards the caller's cache is on again, in its folder."""
    from jax.experimental.compilation_cache.compilation_cache import reset_cache

    mine = tmp_path / "mine"
    original = {name: getattr(jax.config, name) for name in _CACHE_SETTINGS}
    asked, listening = [], [True]  # (a listener stays registered: it stops recording at the end)
    jax.monitoring.register_event_listener(
        lambda event, **_: asked.append(event) if listening[0] and event.startswith("/jax/compilation_cache/") else None
    )
    # a network of its own (2 units, tanh): its programs are compiled here, whatever ran before
    train = ["train", "--dataset", "iris", "--hidden", "2", "--activation", "tanh", "--epochs", "1", "--verbose", "0"]
    try:
        for name, value in zip(_CACHE_SETTINGS, (str(mine), 0.0, 0), strict=True):
            jax.config.update(name, value)
        reset_cache()
        with compiles() as c:
            assert main([*train, "--no-cache"]) == 0
        assert "test: loss" in capsys.readouterr().out
        assert c.count > 0 and [e for e in asked if e.endswith(("requests_use_cache", "hits", "misses"))] == []
        assert jax.config.jax_enable_compilation_cache and _entries(mine) == []

        @jax.jit
        def users_program_after_no_cache(a):
            return jnp.cos(a) * 2.0 - 1.0

        users_program_after_no_cache(jnp.arange(5.0)).block_until_ready()
        assert len(_entries(mine, "users_program_after_no_cache")) == 1
    finally:
        listening[0] = False
        for name, value in original.items():
            jax.config.update(name, value)
        reset_cache()


# --------------------------------------------------------------------------------------------
# Bad data files: exit 2 and one line naming the file and the problem, before anything compiles.
# --------------------------------------------------------------------------------------------


def _mnist_like(path, **change):
    """An .npz shaped like Keras's mnist.npz (12 train / 5 test images of 28x28), with
    ``change`` replacing (or, given None, dropping) entries."""
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        "y_train": np.arange(12) % 10,
        "x_test": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "y_test": np.arange(5),
    }
    arrays.update(change)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})


_NAN_IMAGES = np.where(np.arange(12 * 784).reshape(12, 28, 28) == 100, np.nan, 1.0)

BAD_DATA_FILES = {
    "missing": (None, ["does not exist"]),
    "not-an-npz": ("text", ["not a readable .npz"]),
    "wrong-keys": ({"x_test": None}, ["x_test"]),
    "count-mismatch": ({"y_train": np.arange(11) % 10}, ["x_train", "12", "11"]),
    "one-hot-labels": ({"y_train": np.eye(10)[np.arange(12) % 10]}, ["y_train", "shape (12, 10)"]),
    "features-differ": ({"x_test": np.zeros((5, 10, 10), np.uint8)}, ["x_test", "100", "784"]),
    "nan-pixels": ({"x_train": _NAN_IMAGES}, ["x_train", "NaN"]),
    "empty-train": ({"x_train": np.zeros((0, 28, 28)), "y_train": np.zeros(0, int)}, ["x_train", "no samples"]),
    "empty-test": ({"x_test": np.zeros((0, 28, 28)), "y_test": np.zeros(0, int)}, ["x_test", "no samples"]),
    "fractional-labels": ({"y_train": np.arange(12) % 10 + 0.5}, ["y_train", "whole numbers", "0.5"]),
    "nan-labels": ({"y_test": np.array([0.0, 1.0, np.nan, 3.0, 4.0])}, ["y_test", "NaN"]),
    "negative-labels": ({"y_train": np.arange(12) % 10 - 3}, ["y_train", "negative", "-3"]),
}


@pytest.mark.parametrize("case", list(BAD_DATA_FILES))
def test_bad_data_files_exit_2_with_one_line_naming_the_file(tmp_path, capsys, compiles, case):
    change, words = BAD_DATA_FILES[case]
    path = tmp_path / f"{case}.npz"
    if change == "text":
        path.write_text("not numbers\n")
    elif change is not None:
        _mnist_like(path, **change)
    with compiles() as c:
        rc = main(["train", "--dataset", "mnist", "--path", str(path), "--hidden", "4", "--epochs", "1"])
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == "", captured
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err, captured.err
    assert captured.err.startswith("fnn train: error: ") and str(path) in captured.err, captured.err
    for word in words:
        assert word in captured.err, (word, captured.err)
    assert c.count == 0


@pytest.mark.parametrize("command", ["compare", "gradcheck"])
def test_every_command_refuses_bad_data_the_same_way(tmp_path, capsys, compiles, command):
    path = tmp_path / "frac.npz"
    _mnist_like(path, y_test=np.array([0.0, 1.0, 2.25, 3.0, 4.0]))
    with compiles() as c:
        rc = main([command, "--dataset", "mnist", "--path", str(path), "--hidden", "4"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and str(path) in err and "y_test" in err and "2.25" in err
    assert c.count == 0


def test_good_mnist_like_file_still_loads_and_reports_its_shapes(tmp_path, capsys):
    path = tmp_path / "ok.npz"
    # float labels holding whole numbers are labels; a column of them too
    _mnist_like(path, y_train=(np.arange(12) % 10).astype(np.float64)[:, None])
    assert main(["datasets", "--path", str(path)]) == 0
    assert "(12, 784)" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# --resume: a setting not given is the saved one; a given one must be the saved one.
# --------------------------------------------------------------------------------------------


def test_given_options_are_the_flags_written_however_abbreviated():
    """What --resume takes from the checkpoint is decided by argparse's own matching: no
    default counts as given, and ``--lr=0.1``, ``--hid 8``, ``--early 3`` are the flags."""
    for command in ("train", "compare", "gradcheck", "datasets"):
        assert given_options([command]) == frozenset(), command
    argv = ["train", "--hid", "8", "--lr=0.1", "--early", "3", "--batch-size=full", "--res", "a.npz", "--verbose", "0"]
    assert given_options(argv) == {"hidden", "lr", "early_stopping", "batch_size", "resume", "verbose"}
    assert given_options(["train", "--hidden", "64,64", "--epochs", "20"]) == {
        "hidden",
        "epochs",
    }  # the defaults, given


RESUME_BASE = ["train", "--dataset", "moons", "--hidden", "4", "--batch-size", "full", "--verbose", "0"]


@pytest.fixture(scope="module")
def moons_checkpoint(tmp_path_factory):
    """One epoch of adam at lr 0.01 on moons (2 features, 1 output: xor has the same shapes)."""
    path = str(tmp_path_factory.mktemp("resume") / "moons.npz")
    assert main([*RESUME_BASE, "--lr", "0.01", "--epochs", "1", "--save", path]) == 0
    return path


@pytest.mark.slow
@pytest.mark.parametrize(
    "change, words",
    [
        (["--lr", "0.5"], ["--lr 0.5 (saved: 0.01)"]),
        (["--lr=0.5"], ["--lr 0.5 (saved: 0.01)"]),  # given in any form argparse takes
        (["--lr", "0.002"], ["--lr 0.002 (saved: 0.01)"]),  # adam's default rate, given, is not the saved one
        (["--lr", "0.0100000001"], ["--lr 0.0100000001 (saved: 0.01)"]),  # the digits that tell them apart
        (["--hid", "8"], ["--hidden 8 (saved: 4)"]),  # an abbreviation is the flag given
        (["--lr", "0.01", "--activation", "tanh"], ["--activation tanh (saved: relu)"]),
        (["--lr", "0.01", "--optimizer", "adamw"], ["--optimizer adamw (saved: adam)"]),
        (["--lr", "0.01", "--dataset", "xor"], ["--dataset xor (saved: moons)"]),
        (["--lr", "0.01", "--loss", "mse"], ["--loss mean_squared_error (saved: binary_crossentropy)"]),
        (["--lr", "0.01", "--seed", "1"], ["--seed 1 (saved: 0)"]),
        (["--lr", "0.01", "--batch-size", "16"], ["--batch-size 16 (saved: full)"]),
        (["--lr", "0.01", "--validation-split", "0.1"], ["--validation-split 0.1 (saved: 0.2)"]),
        (["--lr", "0.01", "--early-stopping", "3"], ["--early-stopping 3 (saved: none)"]),
        (
            ["--lr", "0.5", "--activation", "tanh", "--seed", "3"],
            ["--lr 0.5 (saved: 0.01)", "--activation tanh (saved: relu)", "--seed 3 (saved: 0)"],
        ),
    ],
)
def test_resume_refuses_settings_that_differ_from_the_saved_ones(moons_checkpoint, capsys, compiles, change, words):
    argv = [*RESUME_BASE, "--epochs", "2", "--resume", moons_checkpoint]
    with compiles() as c:
        rc = main([*argv[:-4], *change, *argv[-4:]] if change else argv)
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == "", captured
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err, captured.err
    assert f"--resume {moons_checkpoint}" in captured.err
    for word in words:
        assert word in captured.err, (word, captured.err)
    assert c.count == 0  # refused before anything is compiled


def _load_moons(path):
    """The checkpoint with its trees as the CLI builds them (2-4-1 network, adam): templates of
    their shapes and dtypes (eval_shape: traced, nothing compiled)."""

    def trees():
        params = fnn.mlp([4, 1]).init(jax.random.PRNGKey(0), (2,))
        return params, fnn.optimizers.get("adam", learning_rate=0.01).init(params)

    params, opt_state = jax.eval_shape(trees)
    return fnn.checkpoint.load(path, params=params, opt_state=opt_state)


def _resaved(path, saved, extra):
    """``saved`` (a moons checkpoint) written again to ``path``, recording ``extra`` as its
    run's settings: the checkpoint of another run, as far as --resume reads it."""
    fnn.checkpoint.save(
        path, params=saved.params, opt_state=saved.opt_state, epoch=1, key=saved.key, history=saved.history, **extra
    )
    return path


@pytest.mark.slow
def test_resume_refuses_a_checkpoint_without_key_or_settings(moons_checkpoint, tmp_path, capsys):
    saved = _load_moons(moons_checkpoint)
    argv = [*RESUME_BASE, "--lr", "0.01", "--epochs", "2", "--resume"]
    no_key = str(tmp_path / "no_key.npz")
    fnn.checkpoint.save(
        no_key, params=saved.params, opt_state=saved.opt_state, epoch=1, history=saved.history, **saved.extra
    )
    assert main([*argv, no_key]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and no_key in err and "PRNG key" in err

    bare = str(tmp_path / "bare.npz")  # what fit(checkpoint=...) or checkpoint.save alone writes
    fnn.checkpoint.save(bare, params=saved.params, opt_state=saved.opt_state, epoch=1, key=saved.key)
    assert main([*argv, bare]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and bare in err and "fnn train" in err

    # a folder: the OS's words, as a usage error naming --resume (status 2, not a crash's 1)
    assert main([*argv, str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--resume: {tmp_path}: Is a directory" in err


def test_a_diverged_train_run_says_so_in_one_line_and_its_checkpoint_is_not_resumed(tmp_path, capsys):
    """A loss that turns NaN: one line of the command's (fit's RuntimeWarning named fnn's own
    source line and a Python callback no flag gives), and a checkpoint of NaN params is refused
    by --resume (it trained on and saved NaN back)."""
    ck = str(tmp_path / "nan.npz")
    argv = ["train", "--dataset", "iris", "--hidden", "4", "--optimizer", "sgd", "--verbose", "0"]
    assert main([*argv, "--lr", "1e30", "--epochs", "2", "--save", ck]) == 0
    err = capsys.readouterr().err
    assert (
        err == "fnn train: warning: the loss is not finite from epoch 1: the run diverged (a smaller --lr may train)\n"
    )
    assert main([*argv, "--epochs", "3", "--resume", ck]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--resume {ck}: its params hold NaN or inf" in err


def test_a_diverged_compare_run_is_diverged_in_the_table_without_fit_s_warning(tmp_path, capsys):
    """One seed trains by fit (several by fit_many, which does not warn): its RuntimeWarning named
    fnn's source line and a callback no flag gives, twice per run; the table says "diverged"."""
    argv = ["compare", "--dataset", "iris", "--hidden", "4", "--optimizers", "sgd", "--seeds", "1", "--epochs", "1"]
    assert main([*argv, "--lr", "1e30", "--no-plots", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.endswith(", final loss nan\n")  # the run's line alone
    assert "| sgd       | 1e+30 | 32    | 3        | 1      | diverged   |" in captured.out


@pytest.mark.slow
def test_resume_takes_each_setting_not_given_from_the_checkpoint(moons_checkpoint, tmp_path, capsys):
    """An omitted --lr is the saved rate (not the optimizer's default), whichever it was; a
    given setting is still compared; a saved value no flag takes is refused with one line."""
    bare = ["train", "--verbose", "0"]
    # saved at lr 0.01 (adam's default is 0.002): every setting, and the target epoch (1), from the file
    assert main([*bare, "--resume", moons_checkpoint]) == 0
    out = capsys.readouterr().out
    assert f"resumed from {moons_checkpoint} at epoch 1" in out
    assert "fnn train: moons, network 2-4-1 (relu), adam(lr=0.01), batch 640 (1 it/epoch)" in out
    assert "final epoch 1: " in out  # the saved run had reached its target: no epoch ran

    default_lr = str(tmp_path / "default_lr.npz")  # saved without --lr: adam's own rate
    assert main([*RESUME_BASE, "--epochs", "1", "--save", default_lr]) == 0
    assert fnn.checkpoint.load(default_lr).extra["learning_rate"] == DEFAULT_LEARNING_RATES["adam"]
    capsys.readouterr()
    longer = str(tmp_path / "longer.npz")
    assert main([*bare, "--epochs", "2", "--resume", default_lr, "--save", longer]) == 0
    assert "adam(lr=0.002)" in capsys.readouterr().out
    assert fnn.checkpoint.load(longer).extra == {**fnn.checkpoint.load(default_lr).extra, "epochs": 2}

    # a given setting that differs is named alone: the lr not given is the saved one
    assert main([*bare, "--optimizer", "sgd", "--resume", moons_checkpoint]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == (
        f"fnn train: error: --resume {moons_checkpoint} was saved with other settings: --optimizer sgd "
        "(saved: adam); give the saved values to continue it\n"
    )

    saved = _load_moons(moons_checkpoint)
    odd = _resaved(str(tmp_path / "odd.npz"), saved, {**saved.extra, "learning_rate": -1.0})  # no --lr takes it
    assert main([*bare, "--resume", odd]) == 2
    assert capsys.readouterr().err == (
        f"fnn train: error: --resume {odd}: its saved --lr -1.0 is not one fnn train takes: "
        "expected a positive number, got '-1.0'\n"
    )
    assert main([*bare, "--lr", "0.01", "--resume", odd]) == 2  # given, it is compared instead
    assert "--lr 0.01 (saved: -1)" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize(
    "saved_as, flags, named",
    [
        # digits' saved loss does not fit diabetes' targets: the flag given is what differs
        (
            {"dataset": "digits", "loss": "sparse_categorical_crossentropy"},
            ["--dataset", "diabetes"],
            "--dataset diabetes (saved: digits)",
        ),
        # without a validation split early stopping is refused: the split given is what differs
        ({"early_stopping": 3}, ["--validation-split", "0"], "--validation-split 0 (saved: 0.2)"),
    ],
)
def test_resume_names_the_given_flag_that_differs_before_what_its_value_would_break(
    moons_checkpoint, tmp_path, capsys, saved_as, flags, named
):
    """A flag given with another value than the saved one is refused as such, before the data
    set is loaded or the settings are checked against each other (which would blame the saved
    loss, or --early-stopping, for the user's typo)."""
    saved = _load_moons(moons_checkpoint)
    path = _resaved(str(tmp_path / "other.npz"), saved, {**saved.extra, **saved_as})
    assert main(["train", "--verbose", "0", "--resume", path, *flags]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == (
        f"fnn train: error: --resume {path} was saved with other settings: {named}; "
        "give the saved values to continue it\n"
    )


@pytest.mark.slow
def test_resume_of_a_checkpoint_without_its_target_epochs_runs_to_the_default(moons_checkpoint, tmp_path, capsys):
    """Checkpoints written before the target was saved: an omitted --epochs is the default (20)."""
    saved = _load_moons(moons_checkpoint)
    assert saved.extra["epochs"] == 1
    old, out = str(tmp_path / "old.npz"), str(tmp_path / "out.npz")
    kept = {k: v for k, v in saved.extra.items() if k != "epochs"}
    _resaved(old, saved, kept)
    assert main(["train", "--verbose", "0", "--resume", old, "--save", out]) == 0
    assert "final epoch 20: " in capsys.readouterr().out
    again = fnn.checkpoint.load(out)
    assert again.epoch == 20 and again.extra["epochs"] == 20 and again.history["epochs"] == list(range(20))
    assert again.history["history"]["loss"][0] == saved.history["history"]["loss"][0]


def _ctrl_c_when_epoch_begins(monkeypatch, epoch: int) -> None:
    """fnn train gets a Ctrl-C as epoch ``epoch`` (0-based) begins (undo: ``monkeypatch.undo()``)."""
    from fnn.cli import _train

    begin = _train._LastEpoch.on_epoch_begin

    def ctrl_c(self, e, ctx):
        begin(self, e, ctx)
        if e == epoch:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(_train._LastEpoch, "on_epoch_begin", ctrl_c)


@pytest.mark.slow
def test_the_line_printed_after_ctrl_c_continues_the_run_as_typed(tmp_path, capsys, monkeypatch):
    """``fnn train`` with settings other than the defaults, stopped by Ctrl-C after 3 of its 6
    epochs, prints ``continue with --resume PATH``; ``fnn train --resume PATH`` and nothing
    else ends with the history and weights of the run never stopped, EarlyStopping included."""

    settings = ["--dataset", "iris", "--hidden", "8", "--optimizer", "sgd", "--lr", "0.3", "--batch-size", "16"]
    settings += ["--early-stopping", "3", "--epochs", "6", "--verbose", "0", "--seed", "2"]
    settings += ["--validation-split", "0.3", "--activation", "tanh", "--loss", "categorical_crossentropy"]
    straight, cut, resumed = (str(tmp_path / n) for n in ("straight.npz", "cut path.npz", "resumed.npz"))
    assert main(["train", *settings, "--save", straight]) == 0
    whole = fnn.checkpoint.load(straight)
    assert whole.epoch == 6 and whole.history["stop_reason"] == "epochs"  # early stopping never stops it

    _ctrl_c_when_epoch_begins(monkeypatch, 3)
    capsys.readouterr()
    assert main(["train", *settings, "--save", cut]) == 130
    err = capsys.readouterr().err
    hint = f"; continue with --resume '{cut}'\n"  # quoted as a shell reads it: the name holds a space
    assert err == f"fnn train: interrupted during epoch 4/6; saved checkpoint (epoch 3) to {cut}{hint}"
    monkeypatch.undo()

    continued = shlex.split(err.split("; continue with ")[1])
    assert main(["train", *continued, "--save", resumed]) == 0
    assert f"resumed from {cut} at epoch 3" in capsys.readouterr().out
    again = fnn.checkpoint.load(resumed)
    untimed = lambda h: {k: v for k, v in h.items() if k != "times"}
    assert again.epoch == 6 and untimed(again.history) == untimed(whole.history)
    assert again.extra == whole.extra and again.extra["learning_rate"] == 0.3 and again.extra["hidden"] == [8]
    for name, value in whole.params.items():
        np.testing.assert_array_equal(again.params[name], value)
    for got, want in zip(
        again.callbacks[0]["state"]["best_weights"], whole.callbacks[0]["state"]["best_weights"], strict=True
    ):
        np.testing.assert_array_equal(got, want)


@pytest.mark.slow
def test_the_line_printed_after_ctrl_c_names_the_data_file_a_file_data_set_needs(tmp_path, capsys, monkeypatch):
    """A checkpoint does not keep ``--path`` (a place on this machine, not a setting of the run):
    the line printed after Ctrl-C adds it, quoted, so that it still continues the run as typed."""

    data = tmp_path / "my data" / "mnist.npz"
    data.parent.mkdir()
    _mnist_like(data)
    cut, resumed = str(tmp_path / "cut.npz"), str(tmp_path / "resumed.npz")
    settings = ["--dataset", "mnist", "--path", str(data), "--hidden", "4", "--epochs", "2", "--verbose", "0"]
    _ctrl_c_when_epoch_begins(monkeypatch, 1)
    assert main(["train", *settings, "--save", cut]) == 130
    err = capsys.readouterr().err
    assert err.endswith(f"; continue with --resume {cut} --path '{data}'\n")
    monkeypatch.undo()
    continued = shlex.split(err.split("; continue with ")[1])
    assert main(["train", *continued, "--save", resumed]) == 0
    assert f"resumed from {cut} at epoch 1" in capsys.readouterr().out
    again = fnn.checkpoint.load(resumed)
    assert again.epoch == 2 and again.extra["dataset"] == "mnist" and again.extra["hidden"] == [4]


@pytest.mark.slow
def test_resume_without_save_keeps_checkpointing_where_it_came_from(moons_checkpoint, tmp_path, capsys, monkeypatch):
    """``--resume PATH`` alone (what the line printed after Ctrl-C says) saves the run back to
    PATH, at its end and when stopped, with the write ``--save`` makes (atomic: a failed save
    leaves PATH whole); a run that runs no epoch leaves PATH untouched; ``--save`` elsewhere
    leaves it as it was; a PATH that could not be written back is refused before training."""
    path = str(tmp_path / "run.npz")
    read = lambda: pathlib.Path(path).read_bytes()
    pathlib.Path(path).write_bytes(pathlib.Path(moons_checkpoint).read_bytes())

    # run to the end: the file advances to the epochs run, its target and history with it
    assert main([*RESUME_BASE, "--epochs", "3", "--resume", path]) == 0
    assert capsys.readouterr().out.endswith(f"saved checkpoint (epoch 3) to {path}\n")
    again = fnn.checkpoint.load(path)
    assert again.epoch == 3 and again.extra["epochs"] == 3 and again.history["epochs"] == [0, 1, 2]

    # --epochs not beyond the checkpoint's epoch: nothing runs, the file (its target too) stays
    before = read()
    assert main([*RESUME_BASE, "--epochs", "2", "--resume", path]) == 0
    assert capsys.readouterr().out.endswith(f"no epoch ran: {path} is unchanged (epoch 3)\n")
    assert read() == before

    # --save elsewhere: that file gets the run, PATH stays as it was
    other = str(tmp_path / "other.npz")
    assert main([*RESUME_BASE, "--epochs", "4", "--resume", path, "--save", other]) == 0
    assert read() == before and fnn.checkpoint.load(other).epoch == 4

    # Ctrl-C: the finished epochs are saved back, and the line printed continues from there
    _ctrl_c_when_epoch_begins(monkeypatch, 4)
    capsys.readouterr()
    assert main([*RESUME_BASE, "--epochs", "6", "--resume", path]) == 130
    assert capsys.readouterr().err == (
        f"fnn train: interrupted during epoch 5/6; saved checkpoint (epoch 4) to {path}; "
        f"continue with --resume {path}\n"
    )
    again = fnn.checkpoint.load(path)
    assert again.epoch == 4 and again.extra["epochs"] == 6 and again.history["epochs"] == [0, 1, 2, 3]
    # ... and one before the resumed run's first epoch finishes leaves the file untouched
    before = read()
    assert main([*RESUME_BASE, "--resume", path]) == 130
    assert capsys.readouterr().err == (
        f"fnn train: interrupted during epoch 5/6; no epoch finished, {path} is unchanged (epoch 4); "
        f"continue with --resume {path}\n"
    )
    assert read() == before
    # ... also with a new target, which the untouched file does not hold: the line carries it
    assert main([*RESUME_BASE, "--epochs", "8", "--resume", path]) == 130
    assert capsys.readouterr().err == (
        f"fnn train: interrupted during epoch 5/8; no epoch finished, {path} is unchanged (epoch 4); "
        f"continue with --resume {path} --epochs 8\n"
    )
    assert read() == before
    monkeypatch.undo()

    # a save that fails says that nothing was lost: the file holds the checkpoint resumed
    from fnn.cli import _train

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_train._checkpoint, "save", no_space)
    assert main([*RESUME_BASE, "--resume", path]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("fnn train: error: the checkpoint (epoch 6) was not saved: ")
    assert err.endswith(f"; {path} still holds the checkpoint it was resumed from (epoch 4)\n")
    assert read() == before
    monkeypatch.undo()

    # a read-only checkpoint is refused before anything is trained, and stays as it is
    os.chmod(path, 0o444)
    assert main([*RESUME_BASE, "--resume", path]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == (
        f"fnn train: error: --resume {path}: the resumed run could not be saved back there (the file is "
        f"read-only); nothing was trained and {path} is unchanged: give --save PATH to keep the resumed run "
        "elsewhere\n"
    )
    assert read() == before
    assert main([*RESUME_BASE, "--resume", path, "--save", other]) == 0  # elsewhere, it continues
    assert read() == before and fnn.checkpoint.load(other).epoch == 6

    # a file a rename cannot replace (chattr +i; another user's in a sticky folder): refused
    # before anything is trained too, as --resume's write-back and as --save (it trained, then failed)
    from fnn import _validate

    os.chmod(path, 0o644)
    monkeypatch.setattr(_validate, "_unreplaceable", lambda file: "it is immutable (chattr +i)")
    assert main([*RESUME_BASE, "--resume", path]) == 2
    assert (
        f"--resume {path}: the resumed run could not be saved back there (the file cannot be replaced, it is "
        "immutable (chattr +i)); nothing was trained"
    ) in capsys.readouterr().err
    assert main([*RESUME_BASE, "--epochs", "1", "--save", path]) == 2
    assert capsys.readouterr().err == (
        f"fnn train: error: --save {path!r}: the file cannot be replaced, it is immutable (chattr +i)\n"
    )
    assert read() == before


def test_resume_compares_only_what_an_older_checkpoint_records(moons_checkpoint, tmp_path, capsys):
    """Checkpoints of earlier versions record dataset, hidden, activation, optimizer and rate."""
    saved = _load_moons(moons_checkpoint)
    old = str(tmp_path / "old.npz")
    kept = {k: saved.extra[k] for k in ("dataset", "hidden", "activation", "optimizer", "learning_rate")}
    _resaved(old, saved, kept)
    # a seed the old file does not record is not compared: the saved key carries the run on
    assert main([*RESUME_BASE, "--lr", "0.01", "--seed", "5", "--epochs", "2", "--resume", old]) == 0
    assert f"resumed from {old} at epoch 1" in capsys.readouterr().out
    assert main([*RESUME_BASE, "--lr", "0.02", "--epochs", "2", "--resume", old]) == 2
    assert "--lr 0.02 (saved: 0.01)" in capsys.readouterr().err


@pytest.mark.slow
def test_a_regression_loss_on_classes_reports_the_accuracy_it_means(capsys):
    """mse on one-hot rows (or on 0/1 targets) cannot say which accuracy "accuracy" is: the CLI
    names it instead of failing."""
    rc = main(["train", "--dataset", "iris", "--loss", "mse", "--hidden", "4", "--epochs", "1", "--verbose", "0"])
    out = capsys.readouterr().out
    assert rc == 0 and "loss mean_squared_error" in out and "test: loss" in out
    test = dict(part.split() for part in out.split("test: ")[1].splitlines()[0].split(", "))
    assert 0.0 <= float(test["categorical_accuracy"]) <= 1.0


@pytest.mark.parametrize(
    ("dataset", "loss", "output"),
    [
        ("iris", "kl_divergence", "softmax"),
        ("iris", "poisson", "softmax"),
        ("iris", "dice", "softmax"),
        ("iris", "tversky", "softmax"),
        ("iris", "categorical_generalized_cross_entropy", "softmax"),
        ("diabetes", "poisson", "softplus"),
        ("moons", "dice", "sigmoid"),
        ("moons", "poisson", "sigmoid"),
        ("moons", "kl_divergence", "softmax"),
        ("moons", "categorical_generalized_cross_entropy", "softmax"),
        ("iris", "categorical_crossentropy", None),
        ("moons", "categorical_crossentropy", None),
        ("moons", "binary_crossentropy", None),
        ("iris", "mse", None),
    ],
)
def test_a_loss_of_probabilities_gets_an_output_layer_that_gives_them(dataset, loss, output):
    """The commands' last layer is linear for every loss that takes logits or any real output;
    the losses that read probabilities (or a Poisson rate) and take no logits get a softmax over
    the classes, a sigmoid on a binary data set's one output, softplus for a rate on regression
    targets: on a linear output they trained to NaN (poisson, generalized CE: the log or power of
    a negative output) or to chance level (and a softmax of one output is always 1)."""
    problem = load_problem(dataset, loss)
    assert problem.output_activation == output
    net = network(problem, [4], "relu")
    x = problem.x_train[:5].astype(np.float32)
    params = net.init(jax.random.PRNGKey(0), x.shape[1:])
    y_pred = np.asarray(net.apply(params, x))
    if output == "softmax":
        np.testing.assert_allclose(y_pred.sum(axis=1), 1.0, rtol=1e-6)
    elif output in ("softplus", "sigmoid"):
        assert (y_pred > 0).all() and (output == "softplus" or (y_pred < 1).all())
    shown = describe_net(x.shape[1], [4], problem.output_size, "relu", problem.output_activation)
    assert shown.endswith(f"(relu; {output} output)" if output else "(relu)")


@pytest.mark.parametrize("dataset", ["moons", "breast_cancer"])
@pytest.mark.parametrize("loss", ["categorical_crossentropy", "sparse_categorical_crossentropy", "kl_divergence"])
def test_the_categorical_losses_see_a_binary_data_set_as_two_classes(dataset, loss):
    """On a binary data set's one 0/1 output a softmax is 1 and a categorical cross-entropy 0
    (the run reported accuracy 1.0 and learned nothing; sparse CE was refused): the losses that
    compare class rows get its two classes, as labels or one-hot rows, and their accuracy."""
    problem = load_problem(dataset, loss)
    (_, y), _ = fnn.datasets.load(dataset)
    labels = np.rint(y).astype(int).reshape(-1)
    assert problem.output_size == 2
    if loss == "sparse_categorical_crossentropy":
        np.testing.assert_array_equal(problem.y_train, labels)
    else:
        np.testing.assert_array_equal(problem.y_train, np.eye(2)[labels])
    assert problem.metric.name in ("accuracy", "categorical_accuracy", "sparse_categorical_accuracy")
    rows = np.eye(2, dtype=np.float32)[[1, 0, 0]]
    picked = np.asarray(problem.metric(problem.y_train[:3], rows))
    assert picked == pytest.approx(np.mean(labels[:3] == [1, 0, 0]))  # the class row's argmax


@pytest.mark.parametrize(
    ("dataset", "loss", "said"),
    [
        ("sine", "dice", "its targets are real values, which a loss of classes, masks or directions does not take"),
        ("diabetes", "kl_divergence", "its targets are real values"),
        ("diabetes", "categorical_crossentropy", "its targets are real values"),
        ("sine", "binary_crossentropy", "its targets are real values"),
        ("diabetes", "binary_focal_crossentropy", "its targets are real values"),
        ("sine", "hinge", "its targets are real values"),
        ("sine", "cosine_similarity", "its targets are real values"),
        ("sine", "poisson", "it takes counts or rates >= 0, and the targets go down to -1.2"),
        ("digits", "circle", "it trains embeddings (metric learning)"),
        ("iris", "ctc", "it scores label sequences (N, L) against per-time-step class scores (N, T, C)"),
        ("sine", "ctc", "the command's data sets hold one target per sample"),
    ],
)
def test_a_loss_that_cannot_mean_anything_on_the_targets_is_refused(dataset, loss, said, capsys):
    assert main(["train", "--dataset", dataset, "--loss", loss, "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"fnn train: error: loss {loss!r} does not fit data set {dataset!r}: ") and said in err


@pytest.mark.slow
def test_fnn_train_learns_with_a_loss_of_probabilities(capsys):
    rc = main(["train", "--dataset", "iris", "--loss", "kl_divergence", "--epochs", "60", "--verbose", "0"])
    out = capsys.readouterr().out
    assert rc == 0 and "(relu; softmax output)" in out
    test = dict(part.split() for part in out.split("test: ")[1].splitlines()[0].split(", "))
    assert math.isfinite(float(test["loss"])) and float(test["accuracy"]) > 0.8  # chance is 1/3


@pytest.mark.parametrize("command", ["train", "compare", "gradcheck"])
def test_help_lists_the_activations_the_flag_takes(command, capsys):
    assert main([command, "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    said = out.split("hidden-layer activation (default relu; one of ")[1].split(")")[0]
    names = [n.strip() for n in said.replace("- ", "-").split(",")]
    assert "relu" in names and "sparsemax" in names and "threshold" not in names  # threshold needs options
    for name in names:  # each one the flag takes
        assert main([command, "--activation", name, "--help"]) == 0
    capsys.readouterr()


def test_help_says_what_resume_compares_and_what_ctrl_c_does(capsys):
    assert main(["train", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for flag in ("--dataset", "--loss", "--hidden", "--activation", "--optimizer", "--lr", "--batch-size", "--seed"):
        assert flag in out.split("--resume PATH", 1)[1], flag
    assert "exit 2" in out and "Ctrl-C" in out and "130" in out


def test_every_command_has_a_description_and_train_lr_is_its_optimizers(capsys):
    descriptions = {}
    for command in ("compare", "train", "gradcheck", "datasets"):
        assert main([command, "--help"]) == 0
        text = capsys.readouterr().out
        # argparse: the usage, a blank line, the description, a blank line, the options
        descriptions[command] = " ".join(text.split("\n\n")[1].split())
        assert not descriptions[command].startswith("options:") and len(descriptions[command]) > 100, command
    assert "early stopping included" in descriptions["train"] and "best epoch" in descriptions["train"]
    assert "ONE compiled program" in descriptions["compare"] and "--apart" in descriptions["compare"]
    assert "seeds vmapped" in descriptions["compare"] and "restored best" in descriptions["compare"]
    assert main(["train", "--help"]) == 0
    train = " ".join(capsys.readouterr().out.split())
    lr = train.split("--lr LR ", 1)[1].split(" --grad ", 1)[0]
    assert lr.startswith("learning rate of --optimizer") and "every optimizer" not in lr
    assert "adam 0.002" in lr
    assert main(["compare", "--help"]) == 0
    assert "one learning rate for every optimizer" in " ".join(capsys.readouterr().out.split())


@pytest.mark.slow
def test_a_network_without_hidden_layer_is_described_as_linear(capsys):
    """No hidden layer, no activation: the 'tanh' asked for is never used."""
    argv = ["train", "--dataset", "xor", "--hidden", "none", "--activation", "tanh", "--epochs", "1", "--verbose", "0"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "network 2-1 (linear)" in out and "tanh" not in out


def _keras_number(v):
    """Keras's progress format, written out: 4 decimals, e-notation below 1e-3."""
    return f"{v:.4f}" if abs(v) > 1e-3 or v == 0 else f"{v:.4e}"


def _logged(out, prefix):
    """``{name: text}`` of the line of ``out`` starting with ``prefix`` (``name value, ...``)."""
    line = next(line for line in out.splitlines() if line.startswith(prefix))
    return dict(part.split() for part in line.split(": ", 1)[1].split(", "))


ES_TRAIN = ["train", "--dataset", "iris", "--hidden", "4", "--optimizer", "sgd", "--lr", "0.5", "--batch-size", "16"]
ES_TRAIN += ["--early-stopping", "2", "--verbose", "0"]


@pytest.mark.slow
def test_train_early_stopping_resumed_equals_the_uninterrupted_run(tmp_path, capsys):
    """EarlyStopping's wait, best value and best weights travel with the checkpoint: a run cut
    short by a smaller --epochs while EarlyStopping waits, then resumed, stops at the same epoch
    with the same history and weights as the run never interrupted."""
    cut, resumed, straight = (str(tmp_path / n) for n in ("cut.npz", "resumed.npz", "straight.npz"))
    assert main([*ES_TRAIN, "--epochs", "40", "--save", straight]) == 0
    straight_out = capsys.readouterr().out
    whole = fnn.checkpoint.load(straight)
    stop = whole.history["stopped_epoch"]  # counted from 0
    assert whole.history["stop_reason"] == "early_stopping" and 3 <= stop < 39 and whole.epoch == stop + 1
    assert f"early stopping after epoch {stop + 1}" in straight_out

    # cut one epoch before the stop: EarlyStopping has waited one epoch of its patience of 2,
    # so a fresh one (no best value, no wait) would not stop at the same epoch
    assert main([*ES_TRAIN, "--epochs", str(stop), "--save", cut]) == 0
    capsys.readouterr()
    ((entry,),) = [fnn.checkpoint.load(cut).callbacks]
    assert entry["class"] == "EarlyStopping" and entry["state"]["wait"] == 1
    assert entry["state"]["best_epoch"] == stop - 2

    assert main([*ES_TRAIN, "--epochs", "40", "--resume", cut, "--save", resumed, "--verbose", "1"]) == 0
    out, err = capsys.readouterr()
    assert f"resumed from {cut} at epoch {stop}" in out
    # the progress bar starts at the epoch that runs (counted from 1), not at 0 or 1
    assert f"Epoch {stop + 1}/40" in err and f"Epoch {stop}/40" not in err and "Epoch 1/40" not in err
    again = fnn.checkpoint.load(resumed)
    untimed = lambda h: {k: v for k, v in h.items() if k != "times"}  # (the epochs' seconds differ)
    assert again.epoch == whole.epoch and untimed(again.history) == untimed(whole.history)  # bit for bit
    assert again.history["history"]["val_loss"] == whole.history["history"]["val_loss"]
    for name, value in whole.params.items():
        np.testing.assert_array_equal(again.params[name], value)
    for got, want in zip(again.callbacks, whole.callbacks, strict=True):
        assert got["state"]["best"] == want["state"]["best"] and got["state"]["stopped_epoch"] == stop
        for g, w in zip(got["state"]["best_weights"], want["state"]["best_weights"], strict=True):
            np.testing.assert_array_equal(g, w)
    # the same report: stop, final epoch, best epoch (restored weights) and their test metrics
    lines = lambda text: [line for line in text.splitlines() if line.startswith(("early", "final", "best", "test"))]
    assert lines(out) == lines(straight_out) and len(lines(out)) == 4

    # The CLI's own lines use fit's number format (Keras's), on the saved values.
    history = whole.history["history"]
    best = whole.callbacks[0]["state"]["best_epoch"]
    assert _logged(straight_out, "final epoch") == {k: _keras_number(v[-1]) for k, v in history.items()}
    assert _logged(straight_out, f"best epoch {best + 1} by val_loss") == {
        k: _keras_number(v[best]) for k, v in history.items()
    }

    # A run that early stopping ended stays ended when resumed with more epochs; its checkpoint,
    # which a resumed run without --save writes back to, stays as it was (its target too).
    before = pathlib.Path(resumed).read_bytes()
    assert main([*ES_TRAIN, "--epochs", "60", "--resume", resumed]) == 0
    out = capsys.readouterr().out
    assert "it had stopped (early stopping): no epoch to run" in out and lines(out) == lines(straight_out)
    assert f"no epoch ran: {resumed} is unchanged (epoch {whole.epoch})" in out
    assert pathlib.Path(resumed).read_bytes() == before

    # Resumed without --save from the cut, the run is saved back there, stopped as the whole one.
    assert main([*ES_TRAIN, "--epochs", "40", "--resume", cut]) == 0
    out = capsys.readouterr().out
    assert f"early stopping after epoch {stop + 1}" in out and f"saved checkpoint (epoch {whole.epoch}) to {cut}" in out
    again = fnn.checkpoint.load(cut)
    assert again.epoch == whole.epoch and untimed(again.history) == untimed(whole.history)


def test_compare_trains_runs_side_by_side_with_the_numbers_of_one_at_a_time():
    """``train_threads`` (the CLI's --jobs) changes when runs train, not what they compute: the
    same records in the order asked for, bit for bit, but for the times, ``train_jobs`` and
    ``runs_together``; and so does ``apart`` (a program per run, fit_many's, where by default a
    batch size's runs share ONE program, in as many parts as train at a time)."""
    problem = load_problem("iris")
    kw = dict(optimizers=["sgd", "adam", "rmsprop"], batch_sizes=[16, None], epochs=3, hidden=[4], seeds=2)
    logged: list[str] = []
    alone = run_comparison(problem, compile_threads=1, train_threads=1, **kw)
    side = run_comparison(problem, compile_threads=1, train_threads=3, log=logged.append, **kw)
    apart = run_comparison(problem, compile_threads=1, train_threads=2, apart=True, **kw)

    def numbers(record):
        timed = ("compile_s", "train_jobs", "runs_together", "program", "summary", "curves", "seeds")
        untimed = {k: v for k, v in record.items() if k not in timed}
        summary = {k: v for k, v in record["summary"].items() if k != "train_s"}
        seeds = [{k: v for k, v in s.items() if k not in ("epoch_times", "train_s")} for s in record["seeds"]]
        return untimed, summary, seeds, record["curves"]["loss"], record["curves"]["val_loss"]

    assert [(r["optimizer"], r["batch"]) for r in side] == [(o, b) for o in kw["optimizers"] for b in ("16", "full")]
    assert [numbers(r) for r in side] == [numbers(r) for r in alone] == [numbers(r) for r in apart]
    assert {r["train_jobs"] for r in alone} == {1} and {r["train_jobs"] for r in side} == {3}
    # one program per batch size of all three runs; one per run when three train at a time, or apart
    assert {r["runs_together"] for r in alone} == {3} and {r["runs_together"] for r in side + apart} == {1}
    assert len({r["compile_s"] for r in alone}) == 2  # a batch size's runs share their program's time
    assert len(logged) == 6 and all("trained in" in line for line in logged)  # one line per run, as it ends


def test_compare_s_one_seed_rows_all_report_a_program_s_time_without_spread():
    """With one seed, the rows of a shared program and a row alone in its program alike report
    the program's time, no spread measured (``[time, None]``, an empty CSV cell); with --apart
    (a fit per seed) a row's one seed's time, std 0."""
    problem = load_problem("iris")
    kw = dict(optimizers=["adam", "sgd", "rmsprop"], batch_sizes=[16], epochs=2, hidden=[4], seeds=1)
    runs = run_comparison(problem, train_threads=2, **kw)
    assert sorted(r["runs_together"] for r in runs) == [1, 2, 2] and len({r["program"] for r in runs}) == 2
    assert all(r["summary"]["train_s"][1] is None and not r["seeds_together"] for r in runs)
    assert all(r["summary"]["train_s"][1] == 0.0 for r in run_comparison(problem, apart=True, **kw))


def test_a_compare_whose_run_raises_writes_the_finished_runs_marked_partial(tmp_path, monkeypatch, capsys):
    """A run that raises (here the second's summary; in use ``jax.debug_nans``' error): the run
    finished before it is written to results.json and results.csv, marked partial, and the
    error reaches the caller as it was."""
    import fnn.cli._compare as compare_module

    made = compare_module.summarise

    def summarise(name, *args, **kwargs):
        if name == "adam":
            raise FloatingPointError("invalid value (nan) encountered")
        return made(name, *args, **kwargs)

    monkeypatch.setattr(compare_module, "summarise", summarise)
    out = tmp_path / "cmp"
    args = ["compare", "--dataset", "iris", "--hidden", "4", "--epochs", "2", "--seeds", "2", "--no-plots"]
    with pytest.raises(FloatingPointError, match="nan"):
        main([*args, "--optimizers", "sgd,adam", "--apart", "--jobs", "1", "--out", str(out)])
    results = json.loads((out / "results.json").read_text())
    assert results["partial"] is True and [r["optimizer"] for r in results["runs"]] == ["sgd"]
    assert len((out / "results.csv").read_text().splitlines()) == 2
    assert "a run failed after 1 of 2 runs" in capsys.readouterr().err


def test_compare_s_threads_compute_under_the_caller_s_jax_settings():
    """JAX's context managers set a setting for their own thread: a caller's ``with
    jax.enable_x64(False):`` around an in-process compare held in the main thread only, and the
    runs compiled and trained two at a time in the pool's threads computed in x64 (conftest's
    global setting) while one at a time they did not. Every thread now runs under the caller's."""
    problem = load_problem("iris")
    kw = dict(optimizers=["sgd", "adam"], batch_sizes=[16], epochs=2, hidden=[4], seeds=1)
    with jax.enable_x64(False):
        alone = run_comparison(problem, compile_threads=1, train_threads=1, **kw)
        side = run_comparison(problem, compile_threads=2, train_threads=2, **kw)
    losses = lambda runs: [r["seeds"][0]["history"]["loss"] for r in runs]
    assert losses(side) == losses(alone)
    # float32 numbers, as the caller asked: a float64 run's losses are other numbers
    assert all(float(np.float32(v)) == v for run in losses(side) for v in run)


def test_compare_seed_is_the_first_of_the_runs_seeds():
    """``--seed S`` (run_comparison's ``seed``): a run trains seeds S, S+1, ...; each seed's
    record is the fit from ``split(PRNGKey(seed))`` (init with [0], shuffle with [1]), and
    another first seed trains other networks."""
    problem = load_problem("iris")
    kw = dict(optimizers=["adam"], batch_sizes=[16], epochs=2, hidden=[4], seeds=2)
    (run,) = run_comparison(problem, seed=5, **kw)
    (first,) = run_comparison(problem, **kw)
    assert [s["seed"] for s in run["seeds"]] == [5, 6] and [s["seed"] for s in first["seeds"]] == [0, 1]
    (x_tr, y_tr), val = split_problem(problem, 0.2)
    net = fnn.mlp([4, problem.output_size])
    for record in run["seeds"]:
        init_key, key = jax.random.split(jax.random.PRNGKey(record["seed"]))
        alone = fnn.fit(
            net,
            net.init(init_key, (x_tr.shape[1],)),
            fnn.optimizers.get("adam", learning_rate=default_learning_rate("adam", None)),
            problem.loss,
            x_tr,
            y_tr,
            batch_size=16,
            epochs=2,
            key=key,
            validation_data=val,
            metrics=[problem.metric],
            verbose=0,
        )
        for name, values in alone.history.history.items():
            np.testing.assert_allclose(record["history"][name], values, rtol=1e-5)
    assert run["seeds"][0]["history"]["loss"] != first["seeds"][0]["history"]["loss"]


def test_compare_interrupted_stops_the_runs_training_beside_it(monkeypatch):
    """Ctrl-C reaches the main thread only: the runs training in the others stop before their
    next epoch (Cancelled), the ones not started never start, and the finished run is kept
    (``apart``: a program per run, so that one finishes before the others)."""
    import fnn.train._fit as fit_module  # one seed: a fit per run

    cancelled = []
    Cancelled = fnn.train._loop.Cancelled

    def watched(loop):
        def run(*args, **kwargs):
            try:
                return loop(*args, **kwargs)
            except Cancelled:
                cancelled.append(1)
                raise

        return run

    # fit's two loops: with callbacks, and each epoch queued before the last is recorded
    monkeypatch.setattr(fit_module, "run_epochs", watched(fit_module.run_epochs))
    monkeypatch.setattr(fit_module, "run_epochs_queued", watched(fit_module.run_epochs_queued))

    def interrupt(line):
        raise KeyboardInterrupt

    finished: list = []
    # (batch 16: sgd's and adam's programs are fnn train's above, compiled already)
    kw = dict(optimizers=["sgd", "adam", "rmsprop", "adagrad"], batch_sizes=[16], hidden=[4], seeds=1)
    with pytest.raises(KeyboardInterrupt):
        run_comparison(
            load_problem("iris"), epochs=2000, train_threads=2, log=interrupt, finished=finished, apart=True, **kw
        )
    assert len(finished) == 1 and finished[0]["seeds"][0]["epochs_run"] == 2000
    assert 1 <= len(cancelled) <= 2  # the run beside it, and the next one if its thread had taken it


def test_the_console_script_freezes_the_imports_objects_before_running(monkeypatch):
    """console() freezes what the imports made (Python's full collections then skip it) before
    main runs; the command's own objects are collected as usual."""
    import gc

    import fnn.cli._main as cli_main

    seen = {}

    def fake_main():
        seen["frozen"] = gc.get_freeze_count()
        seen["process_ends"] = PROCESS_ENDS[0]  # the command knows it ends the process
        garbage = []
        garbage.append(garbage)  # a cycle the command makes: still collectable
        del garbage
        seen["collected"] = gc.collect()
        return 0

    def fake_exit(status):
        raise SystemExit(status)

    monkeypatch.setattr(cli_main, "main", fake_main)
    monkeypatch.setattr(cli_main, "exit_fast", fake_exit)
    gc.unfreeze()
    try:
        with pytest.raises(SystemExit) as stop:
            cli_main.console()
    finally:
        gc.unfreeze()
    assert stop.value.code == 0
    assert seen["frozen"] > 10_000 and seen["collected"] >= 1
    assert seen["process_ends"] and not PROCESS_ENDS[0]  # a main called later is in-process


@pytest.mark.parametrize("wait", [True, False])
def test_compile_concurrently_on_its_way_out_waits_for_the_compilations_running_if_asked(monkeypatch, wait):
    """A job that raises (as Ctrl-C does) ends the call; with ``wait`` (main in-process, whose
    cache settings are put back next) the job still running has finished when it returns, so
    nothing compiles after the settings are restored; without (the console script) it returns
    at once, the job still running. The running job is released when the pool's shutdown
    begins, so neither case depends on timing."""
    started, released, done = threading.Event(), threading.Event(), []
    shutdown = concurrent.futures.ThreadPoolExecutor.shutdown

    def shut_down(pool, *args, **kwargs):
        if wait:  # the job can finish only once the way out has begun
            released.set()
        shutdown(pool, *args, **kwargs)
        done.append("shut down")

    def warm_up(job):
        if job == "fails":
            assert started.wait(timeout=60)  # the other job is running
            raise ValueError("a compilation failed")
        started.set()
        assert released.wait(timeout=60)
        done.append(job)

    monkeypatch.setattr(concurrent.futures.ThreadPoolExecutor, "shutdown", shut_down)
    with pytest.raises(ValueError, match="a compilation failed"):
        compile_concurrently(warm_up, ["fails", "running"], threads=2, wait=wait)
    assert done == (["running", "shut down"] if wait else ["shut down"])
    released.set()  # (without wait: let the job end)


def test_fnn_compare_in_process_waits_for_its_compilations_and_the_console_script_does_not(monkeypatch, tmp_path):
    """What cmd_compare asks of run_comparison: to wait for the compilations running on Ctrl-C
    when main runs in-process (its caller's cache settings are put back next), not in the
    console script's process, which ends with the command."""
    asked = []

    def interrupted_run(problem, **kw):
        asked.append(kw["wait_for_compiling"])
        raise KeyboardInterrupt

    monkeypatch.setattr("fnn.cli._commands.run_comparison", interrupted_run)
    argv = ["compare", "--dataset", "xor", "--no-plots", "--no-cache", "--out", str(tmp_path)]
    assert main(argv) == 130
    PROCESS_ENDS[0] = True  # as console() sets it
    try:
        assert main(argv) == 130
    finally:
        PROCESS_ENDS[0] = False
    assert asked == [True, False]


_EXITING = """
import atexit, concurrent.futures, signal, sys, threading
from fnn.cli._main import exit_fast
idle = concurrent.futures.ThreadPoolExecutor(1)
idle.submit(int).result()  # its worker now waits for work that never comes; exit ends it
go = threading.Event()
worker = threading.Thread(target=lambda: go.wait() and print("thread ended"))
worker.start()
def late_signals():  # a second Ctrl-C, a SIGTERM, once the command has decided to exit: ignored
    signal.raise_signal(signal.SIGINT)
    signal.raise_signal(signal.SIGTERM)
    print("atexit ran")
atexit.register(late_signals)
sys.stdout.write("buffered, no newline; ")
go.set()
exit_fast(3)
"""


@pytest.mark.slow
def test_the_console_script_skips_the_teardown_but_not_threads_atexit_or_buffers(tmp_path):
    """``python -m fnn`` and ``fnn`` end through exit_fast: the status, threads joined, atexit
    handlers run, buffered output written, and a Ctrl-C or SIGTERM landing in an atexit handler
    (JAX's) ignored, neither a traceback nor another status; under a profiler it exits the usual
    way, so that the profile is written (cProfile writes it after the program returns)."""
    run = lambda *args: subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=120, env={**os.environ, "JAX_PLATFORMS": "cpu"}
    )
    proc = run("-c", _EXITING)
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, "buffered, no newline; thread ended\natexit ran\n", "")
    script = tmp_path / "exiting.py"
    script.write_text(_EXITING)
    profiled = run("-m", "cProfile", "-o", str(tmp_path / "run.prof"), str(script))
    assert profiled.stdout.startswith("buffered, no newline; thread ended\n") and (tmp_path / "run.prof").stat().st_size
    scripts = importlib.metadata.entry_points(group="console_scripts")
    assert [e.value for e in scripts if e.name == "fnn"] == ["fnn.cli._main:console"]
