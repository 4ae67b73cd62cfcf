"""Smoke tests of examples/: each script runs in-process with --quick and prints what it teaches.

The runs that train are marked ``slow`` (``pytest -m "not slow"`` leaves them out). They share
this process, so programs compiled by one example (the same network, loss and optimizer on the
same data) are reused by the next: the quick settings keep such shapes alike where they can.
"""

import math
import pathlib
import re
import runpy
import sys

import numpy as np
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def run_example(name, monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / name), "--quick", *args])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return capsys.readouterr().out


def _floats_after(text, label):
    return [float(m) for m in re.findall(re.escape(label) + r"\s*([-+0-9.e]+)", text)]


def test_the_lesson_examples_exist():
    tested = {
        "regression.py",
        "binary.py",
        "multiclass_onehot.py",
        "sparse_labels.py",
        "gd_sgd_minibatch.py",
        "compare_optimizers.py",
        "manual_vs_autodiff.py",
        "mnist_local.py",
    }
    assert tested <= {p.name for p in EXAMPLES.glob("*.py")}


@pytest.mark.slow
def test_regression(monkeypatch, capsys):
    out = run_example("regression.py", monkeypatch, capsys)
    # The printed gradients are the formulas 2 (p - t) / N and sign(p - t) / N for t = 0, N = 4.
    errors = np.array([0.1, -0.2, 0.3, 5.0])
    mse = [float(v) for v in out.split("d MSE / d y_pred")[1].split("]")[0].strip(" [").split()]
    mae = [float(v) for v in out.split("d MAE / d y_pred")[1].split("]")[0].strip(" [").split()]
    np.testing.assert_allclose(mse, 2 * errors / 4, rtol=1e-6)
    np.testing.assert_allclose(mae, np.sign(errors) / 4, rtol=1e-6)
    rows = [l.split("|") for l in out.splitlines() if l.strip().startswith(("mse |", "mae |"))]
    assert [(r[0].strip(), r[1].strip()) for r in rows] == [
        ("mse", "clean"),
        ("mse", "5% wrong"),
        ("mae", "clean"),
        ("mae", "5% wrong"),
    ]
    assert all(0 < float(r[2]) <= float(r[3]) for r in rows)  # MAE <= RMSE always


@pytest.mark.slow
def test_binary(monkeypatch, capsys):
    out = run_example("binary.py", monkeypatch, capsys)
    lines = [l for l in out.splitlines() if l.startswith("logit")]
    assert len(lines) == 5
    for l in lines:  # p = sigmoid(z), and the decision is p > 0.5
        z, p, pred = re.match(r"logit\s+(\S+) -> p\(class 1\) (\S+) -> predicted (\d)", l).groups()
        z, p, pred = float(z), float(p), int(pred)
        assert abs(p - 1 / (1 + math.exp(-z))) < 1e-3 and pred == int(p > 0.5)
    assert 0 <= _floats_after(out, "test accuracy")[0] <= 1


@pytest.mark.slow
def test_multiclass_onehot(monkeypatch, capsys):
    out = run_example("multiclass_onehot.py", monkeypatch, capsys)
    losses = _floats_after(out, "training loss")
    assert len(losses) >= 2 and losses[-1] < losses[0]  # gradient descent went downhill
    assert "8 iterations/epoch" in out  # ceil(120 / 16)
    assert all(0 <= a <= 1 for a in _floats_after(out, "test accuracy"))


@pytest.mark.slow
def test_sparse_labels(monkeypatch, capsys):
    out = run_example("sparse_labels.py", monkeypatch, capsys)
    pattern = r"sparse CE on labels ([0-9.]+) = categorical CE on one-hot rows ([0-9.]+)"
    a, b = re.search(pattern, out).groups()
    assert abs(float(a) - float(b)) < 1e-5
    assert _floats_after(out, "largest difference between their gradients:")[0] < 1e-6
    rows = [l for l in out.splitlines() if re.match(r"\s+\d: ", l)]
    confusion = np.array([[int(v) for v in r.split(":")[1].split()] for r in rows])
    assert confusion.shape == (10, 10) and confusion.sum() == 359  # every digits test image counted once
    np.testing.assert_allclose(np.trace(confusion) / 359, _floats_after(out, "test accuracy")[0], atol=1e-3)


@pytest.mark.slow
def test_gd_sgd_minibatch(monkeypatch, capsys, tmp_path):
    png = tmp_path / "curves.png"
    out = run_example("gd_sgd_minibatch.py", monkeypatch, capsys, "--plot", str(png))
    n = 1438
    for b in (n, 1, 32):
        assert f"ceil({n}/{b}) = {math.ceil(n / b)} iterations per epoch" in out
    updates = [int(v) for v in out.split("updates |")[1].splitlines()[0].split("|")]
    assert updates == [2 * math.ceil(n / b) for b in (n, 1, 32)]  # 2 epochs in quick mode
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_compare_optimizers(monkeypatch, capsys):
    out = run_example("compare_optimizers.py", monkeypatch, capsys)
    rows = [l.split("|") for l in out.splitlines() if l.strip().startswith(("sgd |", "adam |"))]
    assert sorted(r[0].strip() for r in rows) == ["adam", "sgd"]
    val = [float(r[3]) for r in rows]
    assert val == sorted(val)  # sorted by validation loss, as it says


@pytest.mark.slow
def test_manual_vs_autodiff(monkeypatch, capsys):
    out = run_example("manual_vs_autodiff.py", monkeypatch, capsys)
    first = out.splitlines()[1]
    assert all(float(v) < 1e-12 for v in re.findall(r"\d\.\de[-+]\d+", first))  # float64, same chain rule
    # the whole network against jax.grad of fnn's forward and of a plain jax.numpy one: float32
    # rounding at most, in the gradients and in the losses
    (autodiff,) = _floats_after(out, "manual vs autodiff")
    (plain,) = _floats_after(out, "manual vs jax.grad of plain jax.numpy")
    assert autodiff == 0 and 0 <= plain < 1e-6  # the shared derivatives agree exactly, as the example says
    losses = re.findall(r"loss (\d\.\d+) \(manual\), (\d\.\d+) \(autodiff\), (\d\.\d+) \(plain jax.numpy\)", out)
    assert len(losses) == 1 and np.ptp([float(v) for v in losses[0]]) <= 2e-6, losses
    assert "gradcheck PASSED" in out
    assert _floats_after(out, "ratio")[0] > 0


def test_mnist_local_without_files_exits_cleanly(monkeypatch, capsys):
    out = run_example("mnist_local.py", monkeypatch, capsys)
    assert "--path" in out and "Nothing to do" in out


@pytest.mark.slow
def test_mnist_local_with_an_npz(monkeypatch, capsys, tmp_path):
    rng = np.random.default_rng(0)
    npz = tmp_path / "mnist.npz"
    np.savez(
        npz,
        x_train=rng.integers(0, 256, (64, 28, 28), dtype=np.uint8),
        y_train=rng.integers(0, 10, 64),
        x_test=rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        y_test=rng.integers(0, 10, 20),
    )
    out = run_example("mnist_local.py", monkeypatch, capsys, "--path", str(npz))
    assert "x_train (64, 784), x_test (20, 784)" in out
    assert 0 <= _floats_after(out, "test accuracy")[0] <= 1


def test_mnist_local_with_a_bad_path(monkeypatch, capsys, tmp_path):
    with pytest.raises(SystemExit, match="does not exist"):
        run_example("mnist_local.py", monkeypatch, capsys, "--path", str(tmp_path / "missing"))
