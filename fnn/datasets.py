"""Small data sets for examples and tests: ``load(name) -> (x_train, y_train), (x_test, y_test)``.

Nothing is ever downloaded. Three sources:

* scikit-learn's bundled files (``pip install "fnn[datasets]"``): digits, iris, breast_cancer,
  diabetes, wine.
* synthetic generators, deterministic in ``seed`` (or a jax ``key``): spirals, moons, xor, sine.
* local files given ``path=``: mnist, fashion_mnist (IDX files, optionally gzipped, or a Keras
  style ``.npz`` with ``x_train, y_train, x_test, y_test``).

Conventions: x is float32 (N, features); classification labels are int32 (N,); binary labels
are float32 0/1 of shape (N, 1), matching a one-unit output; regression targets are float32
(N, 1). The split is fixed: 80 % train / 20 % test, stratified by class for (binary)
classification, drawn with ``numpy.random.default_rng(0)`` and shuffled within each part
(mnist / fashion_mnist keep their published 60k/10k split). Features are standardised with
the training part's mean and std (``fnn.data.Standardizer``), except digits (pixels / 16),
MNIST-like images (pixels / 255) and the synthetic sets (already of unit scale).
"""

from __future__ import annotations

import gzip
import importlib.util
import inspect
import os
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from fnn._registry import Registry
from fnn._validate import integer, key as check_key, key_data, npz_reason, real
from fnn.data import Standardizer

__all__ = ["load", "names", "info"]

Split = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

_TEST_FRACTION = 0.2
_SPLIT_SEED = 0


def _split(x: np.ndarray, y: np.ndarray, stratify: bool) -> Split:
    """The fixed 80/20 split; per class when ``stratify`` so both parts keep the class mix."""
    rng = np.random.default_rng(_SPLIT_SEED)
    n = x.shape[0]
    n_test = round(_TEST_FRACTION * n)
    if stratify:
        labels = y.reshape(n, -1)[:, 0]
        classes, sizes = np.unique(labels, return_counts=True)
        # Largest-remainder quotas: each class within one sample of its share, n_test in all.
        quota = _TEST_FRACTION * sizes
        take = np.floor(quota).astype(int)
        order = np.argsort(-(quota - take), kind="stable")
        take[order[: n_test - take.sum()]] += 1
        test = np.concatenate(
            [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take, strict=True)]
        )
    else:
        test = rng.permutation(n)[:n_test]
    mask = np.zeros(n, bool)
    mask[test] = True
    # Shuffle each part so that validation_split (the last samples) sees every class.
    train = rng.permutation(np.flatnonzero(~mask))
    test = rng.permutation(np.flatnonzero(mask))
    return (x[train], y[train]), (x[test], y[test])


def _standardized(split: Split) -> Split:
    (x_tr, y_tr), (x_te, y_te) = split
    s = Standardizer.fit(x_tr)
    return (s.transform(x_tr, np.float32), y_tr), (s.transform(x_te, np.float32), y_te)


def _targets(y: np.ndarray, task: str) -> np.ndarray:
    if task == "classification":
        return y.astype(np.int32).reshape(-1)
    return y.astype(np.float32).reshape(-1, 1)


# ----------------------------------------------------------------------------------------------
# scikit-learn's bundled data.


# The files behind load_digits, load_iris, load_breast_cancer and load_wine: read directly, they
# spare importing scikit-learn (~2.4 s on a 2-core machine, most of a warm `fnn compare`'s data
# loading); the values are the loaders' (tests/test_datasets.py compares them).
_BUNDLED_CSV = {
    "load_digits": ("digits.csv.gz", False),  # (file, first line is a header)
    "load_iris": ("iris.csv", True),
    "load_breast_cancer": ("breast_cancer.csv", True),
    "load_wine": ("wine_data.csv", True),
}


def _read_bundled_csv(loader: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``(x, y)`` from scikit-learn's data file for ``loader``, or None where the file is not found."""
    try:
        spec = importlib.util.find_spec("sklearn") if loader in _BUNDLED_CSV else None
    except (ImportError, ValueError, AttributeError):  # sklearn blocked or half-imported
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    name, header = _BUNDLED_CSV[loader]
    path = os.path.join(next(iter(spec.submodule_search_locations)), "datasets", "data", name)
    if not os.path.isfile(path):
        return None
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", skiprows=1 if header else 0, dtype=np.float64, ndmin=2)
    return table[:, :-1], table[:, -1].astype(np.int64)


def _sklearn(loader: str, task: str, scale: Callable[[Split], Split]) -> Callable[..., Split]:
    def load_() -> Split:
        found = _read_bundled_csv(loader)
        if found is None:
            try:
                from sklearn import datasets as skd
            except ImportError as err:
                raise ImportError(
                    f"data set {loader[5:]!r} is read from scikit-learn's bundled "
                    f'files; install it with: pip install "fnn[datasets]"'
                ) from err
            found = getattr(skd, loader)(return_X_y=True)
        x, y = found
        split = _split(np.asarray(x, np.float64), _targets(np.asarray(y), task), stratify=task != "regression")
        return scale(split)

    load_.__name__ = loader[5:]
    return load_


def _divide(by: float) -> Callable[[Split], Split]:
    def scale(split: Split) -> Split:
        (x_tr, y_tr), (x_te, y_te) = split
        return ((x_tr / by).astype(np.float32), y_tr), ((x_te / by).astype(np.float32), y_te)

    return scale


# ----------------------------------------------------------------------------------------------
# Synthetic sets.


def _rng(seed: int | None, key: jax.Array | None) -> np.random.Generator:
    """A NumPy generator from an int seed or a jax key (raw or typed); NumPy's streams do not
    depend on jax's x64 mode, so a seed gives the same data in float32 and float64 sessions."""
    if key is not None:
        if seed is not None:
            raise ValueError("give seed= or key=, not both")
        bits = key_data(check_key("key", key))
        return np.random.default_rng(np.asarray(bits, dtype=np.uint32).ravel().tolist())
    return np.random.default_rng(integer("seed", 0 if seed is None else seed, 0))


def _check_n(n_samples: Any, minimum: int) -> int:
    return integer("n_samples", n_samples, minimum)


def _check_noise(noise: Any) -> float:
    return real("noise", noise, lo=0.0)


def spirals(
    n_samples: int = 900,
    *,
    n_classes: int = 3,
    noise: float = 0.2,
    seed: int | None = None,
    key: jax.Array | None = None,
) -> Split:
    """``n_classes`` interleaved spiral arms in 2-D (CS231n): for arm j and r in [0, 1],
    ``t = 4 (j + r) + noise * N(0, 1)``, ``x = r (sin t, cos t)``; labels j (int32)."""
    n = _check_n(n_samples, 10)
    n_classes = integer("n_classes", n_classes, 2)
    noise, rng = _check_noise(noise), _rng(seed, key)
    sizes = [n // n_classes + (j < n % n_classes) for j in range(n_classes)]
    xs, ys = [], []
    for j, m in enumerate(sizes):
        r = np.linspace(0.0, 1.0, m)
        t = np.linspace(4.0 * j, 4.0 * (j + 1), m) + noise * rng.standard_normal(m)
        xs.append(np.stack([r * np.sin(t), r * np.cos(t)], axis=1))
        ys.append(np.full(m, j))
    x, y = np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.int32)
    return _split(x, y, stratify=True)


def moons(n_samples: int = 1000, *, noise: float = 0.1, seed: int | None = None, key: jax.Array | None = None) -> Split:
    """Two interleaving half circles (scikit-learn's ``make_moons`` formula): upper
    ``(cos a, sin a)`` label 0, lower ``(1 - cos a, 0.5 - sin a)`` label 1, a in [0, pi], plus
    ``noise * N(0, 1)`` on each coordinate. y float32 (N, 1)."""
    n = _check_n(n_samples, 10)
    noise, rng = _check_noise(noise), _rng(seed, key)
    n_out = n // 2
    n_in = n - n_out
    a_out, a_in = np.linspace(0.0, np.pi, n_out), np.linspace(0.0, np.pi, n_in)
    x = np.concatenate(
        [np.stack([np.cos(a_out), np.sin(a_out)], 1), np.stack([1.0 - np.cos(a_in), 0.5 - np.sin(a_in)], 1)]
    )
    x = x + noise * rng.standard_normal(x.shape)
    y = np.concatenate([np.zeros(n_out), np.ones(n_in)])
    return _split(x.astype(np.float32), _targets(y, "binary"), stratify=True)


def xor(n_samples: int = 1000, *, noise: float = 0.0, seed: int | None = None, key: jax.Array | None = None) -> Split:
    """Points uniform in [-1, 1]^2 labelled 1 where the signs differ (``x0 * x1 < 0``); the
    label is taken before ``noise * N(0, 1)`` is added to the points. y float32 (N, 1)."""
    n = _check_n(n_samples, 10)
    noise, rng = _check_noise(noise), _rng(seed, key)
    x = rng.uniform(-1.0, 1.0, size=(n, 2))
    y = (x[:, 0] * x[:, 1] < 0).astype(np.float64)
    x = x + noise * rng.standard_normal(x.shape)
    return _split(x.astype(np.float32), _targets(y, "binary"), stratify=True)


def sine(n_samples: int = 1000, *, noise: float = 0.1, seed: int | None = None, key: jax.Array | None = None) -> Split:
    """Regression ``y = sin(x) + noise * N(0, 1)`` with x uniform in [-pi, pi]; x and y (N, 1)."""
    n = _check_n(n_samples, 5)
    noise, rng = _check_noise(noise), _rng(seed, key)
    x = rng.uniform(-np.pi, np.pi, size=(n, 1))
    y = np.sin(x) + noise * rng.standard_normal(x.shape)
    return _split(x.astype(np.float32), _targets(y, "regression"), stratify=False)


# ----------------------------------------------------------------------------------------------
# MNIST-like images from local files.

_IDX_DTYPES: dict[int, Any] = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_PARTS = {
    "x_train": ("train-images", "idx3"),
    "y_train": ("train-labels", "idx1"),
    "x_test": ("t10k-images", "idx3"),
    "y_test": ("t10k-labels", "idx1"),
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """One IDX file (the MNIST format; gzipped when the name ends in ``.gz``) as an array.

    Layout: two zero bytes, a dtype code, the rank r, r big-endian uint32 sizes, then the data.
    """
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: cannot read IDX file ({err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    rank = raw[3]
    header = 4 + 4 * rank
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=rank, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: IDX data holds {len(raw) - header} bytes, shape {shape} "
            f"needs {expected} (truncated or corrupt file)"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find_idx(folder: str, stem: str, kind: str) -> str:
    # The files circulate as train-images-idx3-ubyte, train-images.idx3-ubyte, with or without .gz.
    for sep in ("-", "."):
        for ext in ("", ".gz"):
            candidate = os.path.join(folder, f"{stem}{sep}{kind}-ubyte{ext}")
            if os.path.isfile(candidate):
                return candidate
    expected = ", ".join(f"{s}-{k}-ubyte" for s, k in _IDX_PARTS.values())
    raise FileNotFoundError(
        f"{folder}: no {stem}-{kind}-ubyte[.gz] file; expected the four IDX files {expected} (fnn never downloads data)"
    )


def _read_npz(path: str) -> dict[str, np.ndarray]:
    try:
        # Our own handle: np.load(path) leaks its file when the zip directory is unreadable.
        with open(path, "rb") as f:
            z = np.load(f, allow_pickle=False)
            files = z.files  # AttributeError for a bare .npy: reported below
            arrays = {k: z[k] for k in _IDX_PARTS if k in files}
    except Exception as err:  # BadZipFile, OSError, EOFError, "pickled data", a bare .npy, ...
        raise ValueError(f"{path}: not a readable .npz file ({npz_reason(err)})") from None
    missing = [k for k in _IDX_PARTS if k not in arrays]
    if missing:
        raise ValueError(f"{path}: the .npz lacks {missing}; it needs x_train, y_train, x_test, y_test")
    return arrays


def _images(name: str) -> Callable[..., Split]:
    def load_(path: str | os.PathLike | None = None, *, flatten: bool = True) -> Split:
        if path is None:
            raise ValueError(
                f"data set {name!r} is read from local files: pass path= (a folder "
                f"with the four IDX files, or an .npz with x_train, y_train, x_test,"
                f" y_test); fnn never downloads data"
            )
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{name}: {path} does not exist (fnn never downloads data)")
        if os.path.isdir(path):
            arrays = {k: read_idx(_find_idx(path, *v)) for k, v in _IDX_PARTS.items()}
        else:
            arrays = _read_npz(path)
        out = []
        for part in ("train", "test"):
            x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
            if x.shape[0] != y.shape[0]:
                raise ValueError(f"{path}: x_{part} has {x.shape[0]} images but y_{part} has {y.shape[0]} labels")
            labels = np.asarray(y).ravel()
            if labels.size and (
                not np.issubdtype(labels.dtype, np.number)
                or not np.all(np.isfinite(labels))
                or np.any(labels != np.round(labels))
                or np.any(labels < 0)
            ):
                raise ValueError(f"{path}: y_{part} must hold class indices (whole numbers >= 0), not {labels[:3]}...")
            x = x.astype(np.float32) / 255.0
            out.append((x.reshape(x.shape[0], -1) if flatten else x, labels.astype(np.int32)))
        return out[0], out[1]

    load_.__name__ = name
    return load_


# ----------------------------------------------------------------------------------------------
# Registry.

_LOADERS: dict[str, Callable[..., Split]] = {
    "digits": _sklearn("load_digits", "classification", _divide(16.0)),
    "iris": _sklearn("load_iris", "classification", _standardized),
    "breast_cancer": _sklearn("load_breast_cancer", "binary", _standardized),
    "diabetes": _sklearn("load_diabetes", "regression", _standardized),
    "wine": _sklearn("load_wine", "classification", _standardized),
    "spirals": spirals,
    "moons": moons,
    "xor": xor,
    "sine": sine,
    "mnist": _images("mnist"),
    "fashion_mnist": _images("fashion_mnist"),
}

# task, num_classes, features, source
_INFO: dict[str, tuple[str, int | None, int, str]] = {
    "digits": ("classification", 10, 64, "sklearn"),
    "iris": ("classification", 3, 4, "sklearn"),
    "breast_cancer": ("binary", 2, 30, "sklearn"),
    "diabetes": ("regression", None, 10, "sklearn"),
    "wine": ("classification", 3, 13, "sklearn"),
    "spirals": ("classification", 3, 2, "synthetic"),
    "moons": ("binary", 2, 2, "synthetic"),
    "xor": ("binary", 2, 2, "synthetic"),
    "sine": ("regression", None, 1, "synthetic"),
    "mnist": ("classification", 10, 784, "file"),
    "fashion_mnist": ("classification", 10, 784, "file"),
}

_SUGGESTED = {
    "classification": ("sparse_categorical_crossentropy", "accuracy"),
    "binary": ("binary_crossentropy", "accuracy"),
    "regression": ("mse", "mae"),
}


_NAMES = Registry("data set", _LOADERS, known="data sets")


def names() -> list[str]:
    """The names :func:`load` accepts.

    Returns:
        The data set names, sorted.
    """
    return _NAMES.names()


def _check_name(name: Any) -> str:
    return _NAMES.canonical(name)


def info(name: str) -> dict[str, Any]:
    """What a trainer needs to know before loading: task ("classification", "binary" or
    "regression"), num_classes (None for regression), num_features, output_size (units of the
    last layer), loss and metric suggestions (the loss expects logits: build it with
    ``from_logits=True`` when the last layer is linear), and source ("sklearn", "synthetic",
    "file"). spirals' num_classes is for the default ``n_classes=3``.

    Args:
        name: A data set name (:func:`names`).

    Returns:
        ``{"name", "task", "num_classes", "num_features", "output_size", "loss", "metrics",
        "source"}``.

    Raises:
        ValueError: For an unknown name (listing the known ones).

    Examples:
        >>> import fnn
        >>> d = fnn.datasets.info("iris")
        >>> d["task"], d["num_features"], d["output_size"], d["loss"]
        ('classification', 4, 3, 'sparse_categorical_crossentropy')
    """
    name = _check_name(name)
    task, num_classes, features, source = _INFO[name]
    loss, metric = _SUGGESTED[task]
    return {
        "name": name,
        "task": task,
        "num_classes": num_classes,
        "num_features": features,
        "output_size": num_classes if task == "classification" else 1,
        "loss": loss,
        "metrics": [metric],
        "source": source,
    }


def load(name: str, **kwargs: Any) -> Split:
    """``(x_train, y_train), (x_test, y_test)`` as NumPy arrays (see the module docstring).

    Keywords: synthetic sets take ``n_samples``, ``noise``, ``seed`` or ``key`` (spirals also
    ``n_classes``); mnist / fashion_mnist need ``path`` and take ``flatten`` (default True:
    (N, 784)); the scikit-learn sets take none.

    Args:
        name: A data set name (:func:`names`).
        **kwargs: The data set's keywords (above).

    Returns:
        ``(x_train, y_train), (x_test, y_test)``.

    Raises:
        ValueError: For an unknown name, a bad keyword value, or an unreadable file.
        TypeError: For a keyword the data set does not take.
        FileNotFoundError: For a ``path`` that does not exist or lacks the IDX files.
        ImportError: For a scikit-learn set when scikit-learn is not installed.

    Examples:
        >>> import fnn
        >>> (x_tr, y_tr), (x_te, y_te) = fnn.datasets.load("xor", n_samples=100, seed=0)
        >>> x_tr.shape, y_tr.shape, x_te.shape, str(x_tr.dtype)
        ((80, 2), (80, 1), (20, 2), 'float32')
    """
    loader = _LOADERS[_check_name(name)]
    accepted = list(inspect.signature(loader).parameters)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(f"data set {name!r} does not take {unknown}; it accepts {accepted or 'no keywords'}")
    return loader(**kwargs)


def __dir__() -> list[str]:
    """The public API only (implementation imports stay out of ``dir``)."""
    return sorted(__all__)
