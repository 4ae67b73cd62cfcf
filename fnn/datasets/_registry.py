"""The data sets by name: names, info (task, sizes, suggested loss and metric) and load."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from fnn._registry import Registry
from fnn.datasets._images import image_loader
from fnn.datasets._sklearn import divide, sklearn_loader
from fnn.datasets._split import Split, standardized
from fnn.datasets._synthetic import moons, sine, spirals, xor

_LOADERS: dict[str, Callable[..., Split]] = {
    "digits": sklearn_loader("load_digits", "classification", divide(16.0)),
    "iris": sklearn_loader("load_iris", "classification", standardized),
    "breast_cancer": sklearn_loader("load_breast_cancer", "binary", standardized),
    "diabetes": sklearn_loader("load_diabetes", "regression", standardized),
    "wine": sklearn_loader("load_wine", "classification", standardized),
    "spirals": spirals,
    "moons": moons,
    "xor": xor,
    "sine": sine,
    "mnist": image_loader("mnist"),
    "fashion_mnist": image_loader("fashion_mnist"),
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
