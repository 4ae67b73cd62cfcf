"""fnn.datasets: shapes, dtypes, the fixed split, generators' formulas, local MNIST files."""

import gzip
import os
import re
import struct
import subprocess
import sys

import jax
import numpy as np
import pytest
from sklearn import datasets as skd

from fnn import datasets
from fnn.datasets import _sklearn

SKLEARN = {  # name -> (loader, task, samples, features, classes)
    "digits": (skd.load_digits, "classification", 1797, 64, 10),
    "iris": (skd.load_iris, "classification", 150, 4, 3),
    "breast_cancer": (skd.load_breast_cancer, "binary", 569, 30, 2),
    "diabetes": (skd.load_diabetes, "regression", 442, 10, None),
    "wine": (skd.load_wine, "classification", 178, 13, 3),
}


def _check_layout(split, task, features):
    (x_tr, y_tr), (x_te, y_te) = split
    for x, y in ((x_tr, y_tr), (x_te, y_te)):
        assert x.dtype == np.float32 and x.ndim == 2 and x.shape[1] == features
        assert y.shape[0] == x.shape[0]
        if task == "classification":
            assert y.dtype == np.int32 and y.ndim == 1
        else:
            assert y.dtype == np.float32 and y.shape[1:] == (1,)
        assert np.all(np.isfinite(x))


@pytest.mark.parametrize("name", sorted(SKLEARN))
def test_sklearn_sets(name):
    loader, task, n, features, classes = SKLEARN[name]
    split = datasets.load(name)
    _check_layout(split, task, features)
    (x_tr, y_tr), (x_te, y_te) = split
    assert len(x_te) == round(0.2 * n) and len(x_tr) + len(x_te) == n  # 80/20
    x_raw, y_raw = loader(return_X_y=True)
    x_all = np.concatenate([x_tr, x_te]).astype(np.float64)
    if name == "digits":
        x_all = x_all * 16  # digits: pixels / 16
    else:
        # Each feature is an increasing affine image of the raw one (sorted values lie on a
        # line); undo it, then the TRAINING part alone must have had mean 0 and std 1.
        for j in range(features):
            slope, icept = np.polyfit(np.sort(x_raw[:, j]), np.sort(x_all[:, j]), 1)
            assert slope > 0
            x_all[:, j] = (x_all[:, j] - icept) / slope
            raw_train = x_all[: len(x_tr), j]
            assert 1 / slope == pytest.approx(raw_train.std(), rel=1e-4)
            assert -icept / slope == pytest.approx(raw_train.mean(), rel=1e-4, abs=1e-6)
        np.testing.assert_allclose(x_tr.mean(0), 0, atol=1e-5)
        np.testing.assert_allclose(x_tr.std(0), 1, rtol=1e-4)
    # The two parts are a partition of the original samples (as a multiset of rows).
    sort_rows = lambda a: a[np.lexsort(a.T[::-1])]
    np.testing.assert_allclose(sort_rows(x_all), sort_rows(x_raw), rtol=1e-5, atol=1e-4)
    y_all = np.concatenate([y_tr, y_te]).reshape(-1)
    np.testing.assert_array_equal(np.sort(y_all), np.sort(y_raw.astype(y_all.dtype)))
    if classes:
        assert set(np.unique(y_all)) == set(range(classes))
        # Stratified: each class's share of the test part within one sample of its share.
        for c in range(classes):
            share = np.mean(y_raw == c)
            assert abs(np.sum(y_te.reshape(-1) == c) - share * len(y_te)) <= 1
    # Fixed split: loading again gives identical arrays.
    (x_tr2, _y_tr2), (_x_te2, y_te2) = datasets.load(name)
    np.testing.assert_array_equal(x_tr, x_tr2)
    np.testing.assert_array_equal(y_te, y_te2)


@pytest.mark.parametrize("loader", ["load_digits", "load_iris", "load_breast_cancer", "load_wine", "load_diabetes"])
def test_bundled_files_read_directly_equal_sklearns_loaders(loader):
    """Bit for bit, diabetes's features too (scikit-learn scales them; fnn repeats its steps)."""
    x, y = _sklearn._read_bundled(loader)
    x_ref, y_ref = getattr(skd, loader)(return_X_y=True)
    np.testing.assert_array_equal(x, x_ref)
    np.testing.assert_array_equal(y, y_ref)
    assert x.dtype == np.float64 and y.dtype == y_ref.dtype


@pytest.mark.slow
@pytest.mark.parametrize("name", ["digits", "diabetes"])
def test_loading_a_bundled_set_does_not_import_sklearn(name):
    """Nor does it get the KMP_* variables scikit-learn's import puts in os.environ."""
    code = (
        f"import os, sys, fnn; fnn.datasets.load({name!r}); "
        "print('sklearn' in sys.modules, any(k.startswith('KMP_') for k in os.environ))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("KMP_")}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True, env=env
    )
    assert proc.stdout.strip() == "False False"


def test_train_part_is_shuffled_so_validation_split_sees_every_class():
    (_, y_tr), _ = datasets.load("iris")
    assert set(y_tr[-24:]) == {0, 1, 2}  # the last 20 % of training data


def test_missing_sklearn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(ImportError, match=r'pip install "fnn\[datasets\]"'):
        datasets.load("iris")


# ---------------------------------------------------------------- synthetic sets


@pytest.mark.parametrize(
    "name,task,features",
    [("spirals", "classification", 2), ("moons", "binary", 2), ("xor", "binary", 2), ("sine", "regression", 1)],
)
def test_synthetic_sets_are_deterministic(name, task, features):
    split = datasets.load(name, n_samples=100, seed=3)
    _check_layout(split, task, features)
    (x_tr, y_tr), (x_te, _) = split
    assert (len(x_tr), len(x_te)) == (80, 20)
    (x_tr2, y_tr2), _ = datasets.load(name, n_samples=100, seed=3)
    np.testing.assert_array_equal(x_tr, x_tr2)
    np.testing.assert_array_equal(y_tr, y_tr2)
    (x_other, _), _ = datasets.load(name, n_samples=100, seed=4)
    assert not np.array_equal(x_tr, x_other)
    key = jax.random.PRNGKey(7)
    (xk, _), _ = datasets.load(name, n_samples=100, key=key)
    (xk2, _), _ = datasets.load(name, n_samples=100, key=jax.random.key(7))  # typed key
    np.testing.assert_array_equal(xk, xk2)
    if task == "binary":
        assert set(np.unique(y_tr)) == {0.0, 1.0}


def test_generator_formulas_without_noise():
    (x, y), (xt, yt) = datasets.load("moons", n_samples=200, noise=0.0)
    x, y = np.concatenate([x, xt]).astype(float), np.concatenate([y, yt])[:, 0]
    upper, lower = x[y == 0], x[y == 1]
    np.testing.assert_allclose(np.hypot(*upper.T), 1, atol=1e-6)  # unit circle
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1, lower[:, 1] - 0.5), 1, atol=1e-6)
    assert (len(upper), len(lower)) == (100, 100)

    (x, y), _ = datasets.load("xor", n_samples=200)
    np.testing.assert_array_equal(y[:, 0], (x[:, 0] * x[:, 1] < 0).astype(np.float32))
    assert np.abs(x).max() <= 1

    (x, y), _ = datasets.load("sine", n_samples=50, noise=0.0)
    np.testing.assert_allclose(y, np.sin(x.astype(float)), atol=1e-6)
    assert np.abs(x).max() <= np.pi

    (x, y), (xt, yt) = datasets.load("spirals", n_samples=300, n_classes=4, noise=0.0)
    assert np.bincount(np.concatenate([y, yt])).tolist() == [75] * 4
    r = np.hypot(*x.astype(float).T)
    assert r.max() <= 1 + 1e-6
    theta = np.arctan2(x[:, 0], x[:, 1])  # x = r (sin t, cos t)
    t = 4 * (y + r)  # t = 4 (j + r) on arm j
    np.testing.assert_allclose(np.cos(theta[r > 0.05]), np.cos(t[r > 0.05]), atol=1e-4)


def test_generator_argument_errors():
    with pytest.raises(ValueError, match="n_samples must be >= 10"):
        datasets.load("moons", n_samples=3)
    with pytest.raises(ValueError, match="noise must be >= 0"):
        datasets.load("xor", noise=-1.0)
    with pytest.raises(ValueError, match="seed= or key="):
        datasets.load("sine", seed=1, key=jax.random.PRNGKey(1))
    for name in ("moons", "spirals", "xor", "sine"):
        with pytest.raises(ValueError, match="^seed must be >= 0, got -1$"):
            datasets.load(name, seed=-1)
    with pytest.raises(ValueError, match="n_classes"):
        datasets.load("spirals", n_classes=1)
    # an arm of one point is the origin alone, and classes past n_samples are empty
    with pytest.raises(ValueError, match=r"n_samples=10 gives the 20 arms fewer than 5 points each: .* >= 100 for"):
        datasets.load("spirals", n_samples=10, n_classes=20)
    (_, y), (_, yt) = datasets.load("spirals", n_samples=15, n_classes=3)  # 5 per arm: every arm in both parts
    assert set(y.tolist()) == set(yt.tolist()) == {0, 1, 2}
    with pytest.raises(TypeError, match=r"'moons' does not take \['n_classes'\]; it accepts"):
        datasets.load("moons", n_classes=3)
    with pytest.raises(TypeError, match="does not take"):
        datasets.load("iris", seed=1)


# ---------------------------------------------------------------- local MNIST-like files


def _idx(array, code):
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def _write_idx_folder(folder, compress, sep="-"):
    rng = np.random.default_rng(0)
    parts = {
        "train-images": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "train-labels": rng.integers(0, 10, 5, dtype=np.uint8),
        "t10k-images": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "t10k-labels": rng.integers(0, 10, 3, dtype=np.uint8),
    }
    for stem, arr in parts.items():
        kind = "idx3" if arr.ndim == 3 else "idx1"
        raw = _idx(arr, 0x08)
        name = folder / f"{stem}{sep}{kind}-ubyte{'.gz' if compress else ''}"
        name.write_bytes(gzip.compress(raw) if compress else raw)
    return parts


@pytest.mark.parametrize("compress,sep", [(False, "-"), (True, "-"), (False, ".")])
def test_mnist_from_idx_files(tmp_path, compress, sep):
    parts = _write_idx_folder(tmp_path, compress, sep)
    (x_tr, y_tr), (x_te, y_te) = datasets.load("mnist", path=tmp_path)
    assert x_tr.shape == (5, 784) and x_te.shape == (3, 784) and x_tr.dtype == np.float32
    np.testing.assert_array_equal(x_tr, parts["train-images"].reshape(5, -1) / np.float32(255))
    np.testing.assert_array_equal(y_te, parts["t10k-labels"])
    assert y_tr.dtype == np.int32
    (x_img, _), _ = datasets.load("fashion_mnist", path=str(tmp_path), flatten=False)
    assert x_img.shape == (5, 28, 28)


def test_read_idx_other_dtypes_and_corruption(tmp_path):
    arr = np.arange(6, dtype=">i4").reshape(2, 3)
    (tmp_path / "a").write_bytes(_idx(arr, 0x0C))
    got = datasets.read_idx(tmp_path / "a")
    np.testing.assert_array_equal(got, arr)
    assert got.dtype == np.int32
    (tmp_path / "short").write_bytes(_idx(arr, 0x0C)[:-3])
    with pytest.raises(ValueError, match=r"short: IDX data holds 21 bytes, shape \(2, 3\) needs 24"):
        datasets.read_idx(tmp_path / "short")
    (tmp_path / "junk").write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(ValueError, match="junk: not an IDX file"):
        datasets.read_idx(tmp_path / "junk")
    (tmp_path / "bad.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="bad.gz: cannot read IDX file"):
        datasets.read_idx(tmp_path / "bad.gz")


def test_mnist_from_npz(tmp_path):
    rng = np.random.default_rng(1)
    arrays = {
        "x_train": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        "y_train": np.array([0, 1, 2, 3], np.uint8),
        "x_test": rng.integers(0, 256, (2, 28, 28), dtype=np.uint8),
        "y_test": np.array([9, 8], np.uint8),
    }
    np.savez(tmp_path / "mnist.npz", **arrays)
    (_x_tr, _y_tr), (x_te, y_te) = datasets.load("mnist", path=tmp_path / "mnist.npz")
    np.testing.assert_array_equal(x_te, arrays["x_test"].reshape(2, -1) / np.float32(255))
    # float images saved already in [0, 1] are taken as they are (divided again, every pixel was
    # below 0.004); float grey levels 0-255 are divided as the integers are
    for scale in (1.0, 255.0):
        scaled = {**arrays, **{k: arrays[k] / np.float32(255) * scale for k in ("x_train", "x_test")}}
        np.savez(tmp_path / "scaled.npz", **scaled)
        got = datasets.load("mnist", path=tmp_path / "scaled.npz")[1][0]
        np.testing.assert_allclose(got, arrays["x_test"].reshape(2, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y_te, [9, 8])
    np.savez(tmp_path / "partial.npz", x_train=arrays["x_train"])
    with pytest.raises(ValueError, match=r"lacks \['y_train', 'x_test', 'y_test'\]"):
        datasets.load("mnist", path=tmp_path / "partial.npz")
    (tmp_path / "broken.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="broken.npz: not a readable .npz"):
        datasets.load("mnist", path=tmp_path / "broken.npz")
    # float labels that are class indices load; fractional ones are refused, never truncated
    np.savez(tmp_path / "floats.npz", **{**arrays, "y_test": np.array([9.0, 8.0])})
    np.testing.assert_array_equal(datasets.load("mnist", path=tmp_path / "floats.npz")[1][1], [9, 8])
    # the first wrong label and its sample are named (the first three labels were, right or not)
    for bad, named in (
        ([9.5, 8.0], "9.5 (sample 0)"),
        ([1.0, np.nan], "nan (sample 1)"),
        ([2.0, -1.0], "-1.0 (sample 1)"),
        ([2, 10], "10 (sample 1)"),
        ([42, 0], "42 (sample 0)"),
    ):
        np.savez(tmp_path / "bad.npz", **{**arrays, "y_test": np.array(bad)})
        said = r"bad.npz: y_test must hold class indices \(whole numbers 0 to 9\), not "
        with pytest.raises(ValueError, match=said + re.escape(named) + "$"):
            datasets.load("mnist", path=tmp_path / "bad.npz")
    np.savez(tmp_path / "bad.npz", **{**arrays, "y_test": np.array(["9", "8"])})
    with pytest.raises(ValueError, match=r"class indices \(whole numbers 0 to 9\), not <U1 values$"):
        datasets.load("mnist", path=tmp_path / "bad.npz")
    # labels (N, 1) load; one-hot rows (Keras's to_categorical) would ravel into 10 labels an image
    np.savez(tmp_path / "column.npz", **{**arrays, "y_test": np.array([[9], [8]])})
    np.testing.assert_array_equal(datasets.load("mnist", path=tmp_path / "column.npz")[1][1], [9, 8])
    np.savez(tmp_path / "onehot.npz", **{**arrays, "y_train": np.eye(10)[arrays["y_train"]]})
    with pytest.raises(
        ValueError, match=r"onehot.npz: y_train has shape \(4, 10\); it needs one class index per image"
    ):
        datasets.load("mnist", path=tmp_path / "onehot.npz")
    # images of another size than 28x28, train or test
    np.savez(tmp_path / "small.npz", **{**arrays, "x_train": arrays["x_train"][:, :5, :5]})
    small = r"small.npz: x_train has shape \(4, 5, 5\) \(25 values an image\); mnist images are 28x28"
    with pytest.raises(ValueError, match=small):
        datasets.load("mnist", path=tmp_path / "small.npz")
    with pytest.raises(TypeError, match="flatten must be True or False, got 'no'"):
        datasets.load("mnist", path=tmp_path / "mnist.npz", flatten="no")


def test_mnist_missing_files_never_download(tmp_path):
    with pytest.raises(ValueError, match="pass path=.*never downloads"):
        datasets.load("mnist")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        datasets.load("fashion_mnist", path=tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no train-images-idx3-ubyte"):
        datasets.load("mnist", path=tmp_path)  # an empty folder


# ---------------------------------------------------------------- names and info


def test_names_info_and_unknown():
    assert datasets.names() == sorted(
        [
            "digits",
            "iris",
            "breast_cancer",
            "diabetes",
            "wine",
            "spirals",
            "moons",
            "xor",
            "sine",
            "mnist",
            "fashion_mnist",
        ]
    )
    for name in datasets.names():
        info = datasets.info(name)
        assert info["task"] in ("classification", "binary", "regression")
        assert info["loss"] in ("sparse_categorical_crossentropy", "binary_crossentropy", "mse")
    assert datasets.info("digits") | {} == {
        "name": "digits",
        "task": "classification",
        "num_classes": 10,
        "num_features": 64,
        "output_size": 10,
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"],
        "source": "sklearn",
    }
    assert datasets.info("breast_cancer")["output_size"] == 1
    assert datasets.info("diabetes")["num_classes"] is None
    with pytest.raises(ValueError, match="unknown data set 'cifar10'; known data sets: .*digits"):
        datasets.load("cifar10")
    with pytest.raises(ValueError, match="unknown data set"):
        datasets.info("nope")
