"""The problem ``fnn compare``, ``train`` and ``gradcheck`` work on: a data set loaded and
checked (local files named in every message), its targets shaped for the loss, the loss, the
test metric, and the validation split; the default learning rates; the network's one-line
description and its initial parameters per seed."""

from __future__ import annotations

import itertools
import math
import os
import zipfile
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from fnn import (
    activations as _activations,
    data as _data,
    datasets as _datasets,
    losses as _losses,
    metrics as _metrics,
)
from fnn.cli._common import UsageError
from fnn.layers import mlp
from fnn.losses._loss import LABEL_LOSSES, PAIR_LABEL_LOSSES, SEQUENCE_LABEL_LOSSES
from fnn.train._initial import initial_params as initial_params  # the commands' seeds' params

# Rates that train the default digits network well in a few dozen epochs with batch size 32.
DEFAULT_LEARNING_RATES: dict[str, float] = {
    "sgd": 0.1,
    "momentum": 0.05,
    "nesterov": 0.05,
    "adagrad": 0.05,
    "rmsprop": 1e-3,
    "adadelta": 1.0,
    "adam": 2e-3,
    "adamw": 2e-3,
    "adamax": 2e-3,
    "nadam": 2e-3,
    "radam": 2e-3,
    "rprop": 1e-2,
    "lion": 3e-4,
    "asgd": 0.1,
    "adafactor": 3e-2,
    "muon": 2e-2,
    "lamb": 1e-2,
    "ftrl": 0.3,  # FTRL solves the weights afresh, forgetting their init: slow at first (3 epochs: 0.50)
}
FILE_DATASETS = ("mnist", "fashion_mnist")


# --------------------------------------------------------------------------------------------
# The problem: data, targets shaped for the loss, the loss and the test metric.
# --------------------------------------------------------------------------------------------


class Problem(NamedTuple):
    name: str
    task: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    output_size: int
    loss: _losses.Loss
    metric: _metrics.Metric
    output_activation: str | None = None  # the last layer's (:func:`output_activation`); None: linear


# The losses that read y_pred as probabilities (or, for poisson, a positive rate) and take no
# logits: a linear last layer would feed them values they are not defined on (NaN from the
# log of a negative output, a KL divergence or Dice ratio of clipped scores that never trains).
PROBABILITY_LOSSES = frozenset({"kl_divergence", "poisson", "dice", "tversky", "categorical_generalized_cross_entropy"})


# The losses that compare a row of class scores, one output per class: a binary data set gives
# them its two classes (on its one output column a softmax is 1, its cross-entropy 0, and the
# categorical accuracy 1 whatever the network does).
CLASS_ROW_LOSSES = LABEL_LOSSES | {
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "categorical_hinge",
    "kl_divergence",
    "cosine_similarity",
}
# The losses of classes, masks or directions: real-valued targets of one output (sine,
# diabetes) mean nothing to them.
CLASS_LOSSES = CLASS_ROW_LOSSES | {
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "hinge",
    "squared_hinge",
    "dice",
    "tversky",
}


def output_activation(loss_name: str, task: str, outputs: int) -> str | None:
    """The last layer's activation for ``loss_name`` on a ``task`` ("classification",
    "binary" or "regression") with ``outputs`` units: None (linear) for every loss that takes
    logits or any real output; for :data:`PROBABILITY_LOSSES` a softmax over the classes (the
    one-hot rows they are given), a sigmoid on a single output (a binary data set's 0/1
    targets), and softplus for a Poisson rate on regression targets."""
    if loss_name not in PROBABILITY_LOSSES:
        return None
    if task == "regression":
        return "softplus"  # poisson: the others of PROBABILITY_LOSSES are refused there
    return "sigmoid" if outputs == 1 else "softmax"


def _check_loss_fits_task(loss: _losses.Loss, task: str, where: str, y: np.ndarray) -> None:
    """Refuses (UsageError) a loss that cannot mean anything on the data set's targets: one of
    classes or masks on real values, poisson on negative ones; circle, whose embeddings
    have no accuracy to report; and ctc, whose label sequences no data set here has."""
    if loss.name in PAIR_LABEL_LOSSES:
        raise UsageError(
            f"loss {loss.name!r} does not fit {where}: it trains embeddings (metric learning), and the "
            "command's networks end in class scores whose accuracy it reports; train it from Python, on "
            "a network whose last layer is fnn.UnitNormalization()"
        )
    if loss.name in SEQUENCE_LABEL_LOSSES:
        raise UsageError(
            f"loss {loss.name!r} does not fit {where}: it scores label sequences (N, L) against per-time-step "
            "class scores (N, T, C), and the command's data sets hold one target per sample; train it from "
            "Python, on a network that ends in fnn.Reshape((T, C))"
        )
    if task == "regression" and loss.name in CLASS_LOSSES:
        raise UsageError(
            f"loss {loss.name!r} does not fit {where}: its targets are real values, which a loss of "
            "classes, masks or directions does not take (use a regression loss here, e.g. "
            "mean_squared_error, or this loss on a classification data set)"
        )
    if loss.name == "poisson" and float(np.min(y)) < 0:
        raise UsageError(
            f"loss 'poisson' does not fit {where}: it takes counts or rates >= 0, and the targets go "
            f"down to {float(np.min(y)):g}"
        )


def network(problem: Problem, hidden: Sequence[int], activation: str) -> Any:
    """The command's MLP for ``problem``: ``hidden`` layers of ``activation``, then the output
    layer, linear or with the problem's :attr:`Problem.output_activation`. A network whose
    float32 params alone outgrow the machine's memory is refused (UsageError naming --hidden):
    XLA:CPU waited for such an allocation forever, deaf to Ctrl-C."""
    sizes = [int(np.prod(problem.x_train.shape[1:])), *hidden, problem.output_size]
    count = sum((a + 1) * b for a, b in itertools.pairwise(sizes))
    memory = _memory_bytes()
    if memory and 4 * count > memory:
        raise UsageError(
            f"argument --hidden: a network {'-'.join(map(str, sizes))} holds {count:,} parameters, "
            f"{4 * count / 2**30:,.1f} GiB in float32, more than this machine's memory ({memory / 2**30:,.1f} GiB)"
        )
    return mlp([*hidden, problem.output_size], activation=activation, output_activation=problem.output_activation)


def _memory_bytes() -> int:
    """The machine's physical memory in bytes (0 where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX, or a name the system lacks
        return 0


def _make_loss(name: str) -> _losses.Loss:
    # The network's last layer is linear (but for PROBABILITY_LOSSES), so every loss that can
    # take logits is told so.
    try:
        return _losses.get(name, from_logits=True)
    except TypeError:
        return _losses.get(name)


def _npz_header(z: Any, name: str) -> tuple[tuple[int, ...], np.dtype] | None:
    """(shape, dtype) of entry ``name`` of an open .npz, read from its header alone (the images
    need not be read twice); None where the entry cannot be read that way."""
    member = name + ".npy" if name + ".npy" in z.zip.namelist() else name
    try:
        with z.zip.open(member) as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
    except (KeyError, ValueError, OSError, zipfile.BadZipFile):
        return None
    return tuple(shape), np.dtype(dtype)


def _first(mask: np.ndarray, values: np.ndarray) -> str:
    """The first flagged value and its sample, e.g. ``0.5 at sample 3``."""
    rows, flags = values.reshape(values.shape[0], -1), mask.reshape(mask.shape[0], -1)
    i = int(np.flatnonzero(flags.any(axis=1))[0])
    bad = rows[i][flags[i]][0].item()
    return f"{bad:g} at sample {i}" if isinstance(bad, float) else f"{bad} at sample {i}"


def _check_label_file(path: str) -> None:
    """What the image loader cannot see once it has cast the labels to integers: labels that
    are not one whole number >= 0 per image, or images of no samples or of other sizes. Reads
    the labels and the images' headers; unreadable files are left to the loader's message."""
    try:
        with open(path, "rb") as f:
            z = np.load(f, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                return
            heads: dict[str, Any] = {k: _npz_header(z, k) for k in ("x_train", "x_test") if k in z.files}
            labels: dict[str, np.ndarray] = {k: z[k] for k in ("y_train", "y_test") if k in z.files}
    except Exception:  # not an .npz, truncated, pickled: _datasets.load says so
        return
    for part in ("train", "test"):
        head, y = heads.get(f"x_{part}"), labels.get(f"y_{part}")
        if head is not None:
            shape, dtype = head
            problem = (
                "images are (N, height, width) or (N, features)"
                if len(shape) < 2
                else "no samples"
                if shape[0] == 0
                else "no pixels per sample"
                if math.prod(shape[1:]) == 0
                else None
            )
            if problem:
                raise UsageError(f"{path}: x_{part} has shape {shape}: {problem}")
            if dtype.kind not in "biuf":
                raise UsageError(f"{path}: x_{part} holds {dtype} values, not numbers")
        if y is None:
            continue
        n = y.shape[0] if y.ndim else 0
        if y.ndim not in (1, 2) or (y.ndim == 2 and y.shape[1] != 1):
            raise UsageError(f"{path}: y_{part} has shape {y.shape}; the labels are one class index per sample, (N,)")
        if y.dtype.kind not in "biuf":
            raise UsageError(f"{path}: y_{part} holds {y.dtype} values, not class indices")
        if head is not None and head[0][0] != n:
            raise UsageError(f"{path}: x_{part} has {head[0][0]} samples but y_{part} has {n} labels")
        if y.dtype.kind == "f":
            if not np.isfinite(y).all():
                raise UsageError(f"{path}: y_{part} holds NaN or infinite labels ({_first(~np.isfinite(y), y)})")
            fractional = y != np.round(y)
            if fractional.any():
                raise UsageError(
                    f"{path}: y_{part} holds labels that are not whole numbers ({_first(fractional, y)}); "
                    "class labels must be 0, 1, 2, ..."
                )


def _check_arrays(where: str, task: str, x_tr, y_tr, x_te, y_te) -> None:
    """Data a network can be trained on: samples in both parts, the same features, finite
    numbers, class labels >= 0. ``where`` names the data in the message."""
    for part, x, y in (("train", x_tr, y_tr), ("test", x_te, y_te)):
        if x.shape[0] == 0:
            raise UsageError(f"{where}: x_{part} has no samples")
        if x.shape[0] != y.shape[0]:
            raise UsageError(f"{where}: x_{part} has {x.shape[0]} samples but y_{part} has {y.shape[0]}")
        bad = ~np.isfinite(x)
        if bad.any():
            kind = "NaN" if np.isnan(x).any() else "infinite values"
            raise UsageError(f"{where}: x_{part} holds {kind} ({_first(bad, x)})")
        if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
            raise UsageError(f"{where}: y_{part} holds NaN or infinite targets ({_first(~np.isfinite(y), y)})")
        if task == "classification" and (y < 0).any():
            raise UsageError(f"{where}: y_{part} holds negative labels ({_first(y < 0, y)}); classes are 0, 1, 2, ...")
    if x_te.shape[1:] != x_tr.shape[1:]:
        raise UsageError(
            f"{where}: x_test has {math.prod(x_te.shape[1:])} features per sample but x_train "
            f"{math.prod(x_tr.shape[1:])} (shapes {x_te.shape} and {x_tr.shape})"
        )


def load_problem(dataset: str, loss_name: str | None = None, path: str | None = None) -> Problem:
    """Loads ``dataset`` and shapes its targets for ``loss_name`` (default: the suggested loss).

    Classification labels stay integers for the losses of labels (sparse categorical and
    generalized cross-entropy) and become one-hot rows for every other loss; a binary data set's
    0/1 column is two classes for the losses that compare class rows (:data:`CLASS_ROW_LOSSES`).
    Raises UsageError, naming the file for local data, when the data cannot be had or cannot be
    trained on (no samples, NaN, labels that are not whole numbers >= 0, parts of other shapes)
    or do not fit the loss (a loss of classes on real-valued targets, poisson on negative ones).
    """
    info = _datasets.info(dataset)
    if path is not None and dataset not in FILE_DATASETS:
        raise UsageError(
            f"--path is for the data sets read from local files ({', '.join(FILE_DATASETS)}); "
            f"{dataset!r} comes with fnn"
        )
    if path is not None and not os.fspath(path):
        raise UsageError("--path must be a non-empty path")
    if dataset in FILE_DATASETS and path is None:
        raise UsageError(
            f"data set {dataset!r} is read from local files: give --path (a folder "
            "with the four IDX files, or an .npz with x_train, y_train, x_test, y_test)"
        )
    where = f"data set {dataset!r}"
    if path is not None and dataset in FILE_DATASETS:
        where = os.fspath(path)
        if os.path.isfile(where):
            _check_label_file(where)
    try:
        (x_tr, y_tr), (x_te, y_te) = _datasets.load(dataset, **({"path": path} if path else {}))
    except (ValueError, FileNotFoundError) as err:
        message = str(err)
        raise UsageError(message if where in message else f"{where}: {message}") from None
    _check_arrays(where, info["task"], x_tr, y_tr, x_te, y_te)
    loss = _make_loss(loss_name or info["loss"])
    _check_loss_fits_task(loss, info["task"], where, y_tr)
    out = info["output_size"]
    if info["task"] == "classification" or (info["task"] == "binary" and loss.name in CLASS_ROW_LOSSES):
        out = int(max(y_tr.max(), y_te.max())) + 1
        if info["task"] == "binary":  # 0/1 in one column: the two classes' labels
            out = 2
            y_tr, y_te = (np.rint(y).astype(np.int32).reshape(-1) for y in (y_tr, y_te))
        if loss.name not in LABEL_LOSSES:  # the losses of integer labels take them as they are
            y_tr, y_te = _data.one_hot(y_tr, out), _data.one_hot(y_te, out)
    try:
        _losses.check_targets(loss, y_tr, (y_tr.shape[0], out), name=f"{dataset} targets")
    except ValueError as err:
        raise UsageError(f"loss {loss.name!r} does not fit {where}: {err}") from None
    metric_name = info["metrics"][0]
    try:
        metric = _metrics.get(metric_name, loss=loss, y_true_shape=y_tr.shape, y_pred_shape=(1, out))
    except ValueError as err:
        if metric_name != "accuracy":
            raise UsageError(f"loss {loss.name!r} does not fit {where}: {err}") from None
        # "accuracy" is read off the loss; a regression loss on classes (mse on one-hot rows, the
        # lesson's example) needs the accuracy named
        metric_name = "binary_accuracy" if out == 1 else "categorical_accuracy"
        metric = _metrics.get(metric_name, loss=loss, y_true_shape=y_tr.shape, y_pred_shape=(1, out))
    return Problem(
        dataset,
        info["task"],
        x_tr,
        y_tr,
        x_te,
        y_te,
        out,
        loss,
        metric,
        output_activation(loss.name, info["task"], out),
    )


def split_problem(problem: Problem, validation_split: float):
    """(train, validation or None): the LAST fraction held out, as Keras's validation_split."""
    if validation_split == 0:
        return (problem.x_train, problem.y_train), None
    try:  # named as the command line takes it, not as the library does
        return _data.train_val_split(problem.x_train, problem.y_train, validation_split, name="--validation-split")
    except ValueError as err:
        raise UsageError(str(err)) from None


def describe_net(n_in: int, hidden: Sequence[int], n_out: int, activation: str, output: str | None = None) -> str:
    """The layer sizes and the hidden layers' activation, e.g. ``64-64-64-10 (relu)``; a network
    without a hidden layer is a linear model, whose activation is never used: ``2-1 (linear)``;
    an ``output`` activation is said after it: ``64-64-64-10 (relu; softmax output)``."""
    kind = _activations.get(activation).name if hidden else "linear"
    return "-".join(map(str, (n_in, *hidden, n_out))) + f" ({kind}{f'; {output} output' if output else ''})"


def default_learning_rate(name: str, override: float | None) -> float:
    """``override`` when given, else the optimizer's rate in :data:`DEFAULT_LEARNING_RATES`
    (1e-3 for one not listed)."""
    return override if override is not None else DEFAULT_LEARNING_RATES.get(name, 1e-3)
