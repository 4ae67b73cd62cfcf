"""scikit-learn's bundled data sets, read from its files (scikit-learn itself only as a fallback)."""

from __future__ import annotations

import gzip
import importlib.util
import os
from collections.abc import Callable
from typing import Literal

import numpy as np

from fnn.datasets._split import Split, fixed_split, targets

# The files behind load_digits, load_iris, load_breast_cancer, load_wine and load_diabetes: read
# directly, they spare importing scikit-learn (~2.4 s on a 2-core machine, most of a warm `fnn
# compare`'s data loading; and the import sets KMP_* variables in os.environ and warning filters
# of its own); the values are the loaders' (tests/test_datasets.py compares them bit for bit).
_BUNDLED_CSV = {
    "load_digits": ("digits.csv.gz", False),  # (file, first line is a header)
    "load_iris": ("iris.csv", True),
    "load_breast_cancer": ("breast_cancer.csv", True),
    "load_wine": ("wine_data.csv", True),
}
_DIABETES = ("diabetes_data_raw.csv.gz", "diabetes_target.csv.gz")  # space-separated, no header


def _data_file(name: str) -> str | None:
    """The path of scikit-learn's bundled data file ``name``, found without importing it; None
    where scikit-learn or the file is not found."""
    try:
        spec = importlib.util.find_spec("sklearn")
    except (ImportError, ValueError, AttributeError):  # sklearn blocked or half-imported
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(next(iter(spec.submodule_search_locations)), "datasets", "data", name)
    return path if os.path.isfile(path) else None


def _table(path: str, delimiter: str | None = None, header: bool = False, ndmin: Literal[0, 2] = 0) -> np.ndarray:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        return np.loadtxt(f, delimiter=delimiter, skiprows=1 if header else 0, dtype=np.float64, ndmin=ndmin)


def _read_bundled(loader: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``(x, y)`` as scikit-learn's ``loader`` returns them, from its data files, or None where
    they are not found."""
    if loader == "load_diabetes":
        paths = [_data_file(name) for name in _DIABETES]
        if paths[0] is None or paths[1] is None:
            return None
        return _diabetes_scaled(_table(paths[0])), _table(paths[1])
    if loader not in _BUNDLED_CSV:
        return None
    name, header = _BUNDLED_CSV[loader]
    path = _data_file(name)
    if path is None:
        return None
    table = _table(path, ",", header, ndmin=2)
    return table[:, :-1], table[:, -1].astype(np.int64)


def _diabetes_scaled(data: np.ndarray) -> np.ndarray:
    """load_diabetes's features (``scaled=True``): ``sklearn.preprocessing.scale(data)``, each
    feature ``(x - mean) / std``, then divided by ``sqrt(n)`` (every feature's sum of squares
    is 1), step for step as scikit-learn computes it, so the float64 values are its own."""
    data = np.array(data, dtype=np.float64)  # the data hold no NaN: nanmean is mean
    mean, std = data.mean(axis=0), data.std(axis=0)
    data -= mean
    centred = data.mean(axis=0)
    if not np.allclose(centred, 0):  # scale() centres a second time where rounding left a mean
        data -= centred
    data /= np.where(std < 10 * np.finfo(np.float64).eps, 1.0, std)  # a constant feature: 1
    rest = data.mean(axis=0)
    if not np.allclose(rest, 0):
        data -= rest
    data /= data.shape[0] ** 0.5
    return data


def sklearn_loader(loader: str, task: str, scale: Callable[[Split], Split]) -> Callable[..., Split]:
    def load_() -> Split:
        found = _read_bundled(loader)
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
        split = fixed_split(np.asarray(x, np.float64), targets(np.asarray(y), task), stratify=task != "regression")
        return scale(split)

    load_.__name__ = loader[5:]
    return load_


def divide(by: float) -> Callable[[Split], Split]:
    def scale(split: Split) -> Split:
        (x_tr, y_tr), (x_te, y_te) = split
        return ((x_tr / by).astype(np.float32), y_tr), ((x_te / by).astype(np.float32), y_te)

    return scale
