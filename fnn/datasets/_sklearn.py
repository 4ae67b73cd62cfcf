"""scikit-learn's bundled data sets, read from its files (scikit-learn itself only as a fallback)."""

from __future__ import annotations

import gzip
import importlib.util
import os
from collections.abc import Callable

import numpy as np

from fnn.datasets._split import Split, fixed_split, targets

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


def sklearn_loader(loader: str, task: str, scale: Callable[[Split], Split]) -> Callable[..., Split]:
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
        split = fixed_split(np.asarray(x, np.float64), targets(np.asarray(y), task), stratify=task != "regression")
        return scale(split)

    load_.__name__ = loader[5:]
    return load_


def divide(by: float) -> Callable[[Split], Split]:
    def scale(split: Split) -> Split:
        (x_tr, y_tr), (x_te, y_te) = split
        return ((x_tr / by).astype(np.float32), y_tr), ((x_te / by).astype(np.float32), y_te)

    return scale
