"""The fixed 80/20 train/test split and the target conventions every data set shares."""

from __future__ import annotations

import numpy as np

from fnn.data import Standardizer

Split = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

_TEST_FRACTION = 0.2
_SPLIT_SEED = 0


def fixed_split(x: np.ndarray, y: np.ndarray, stratify: bool) -> Split:
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


def standardized(split: Split) -> Split:
    (x_tr, y_tr), (x_te, y_te) = split
    s = Standardizer.fit(x_tr)
    return (s.transform(x_tr, np.float32), y_tr), (s.transform(x_te, np.float32), y_te)


def targets(y: np.ndarray, task: str) -> np.ndarray:
    if task == "classification":
        return y.astype(np.int32).reshape(-1)
    return y.astype(np.float32).reshape(-1, 1)
