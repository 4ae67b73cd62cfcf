"""The ``fnn`` commands' arguments: the types that check each one (an ArgumentTypeError becomes
argparse's one-line error) and the options the commands share (the cache's: ``_compile_cache.py``).
"""

from __future__ import annotations

import argparse
import math

import jax
import numpy as np

from fnn import (
    activations as _activations,
    datasets as _datasets,
    losses as _losses,
    optimizers as _optimizers,
)
from fnn.cli._problem import DEFAULT_LEARNING_RATES, PROBABILITY_LOSSES
from fnn.grad import MODES

# --------------------------------------------------------------------------------------------
# Argument types: each raises ArgumentTypeError, which argparse turns into a one-line error.
# --------------------------------------------------------------------------------------------


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return int(text)


SEED_MAX = 2**32 - 1  # a PRNG key holds a 32-bit seed: larger ones would wrap onto smaller ones


def seed(text: str) -> int:
    value = non_negative_int(text)
    if value > SEED_MAX:
        raise argparse.ArgumentTypeError(f"expected a seed in [0, {SEED_MAX}] (2**32 - 1), got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def learning_rate(text: str) -> float:
    """A positive rate that the optimizer state's dtype holds (float32 unless x64 is on): 1e39
    passed :func:`positive_float` and failed later with a traceback."""
    value = positive_float(text)
    held = np.finfo(jax.dtypes.canonicalize_dtype(np.float64))
    if value > float(held.max):
        raise argparse.ArgumentTypeError(
            f"expected a positive number that {held.dtype} (the optimizer's state) holds, at most {held.max:.4g}; "
            f"got {text!r}"
        )
    return value


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}")
    return value


def hidden_sizes(text: str) -> tuple[int, ...]:
    """``"64,64"`` -> (64, 64); ``"none"`` -> () (no hidden layer: a linear model). An empty
    text is refused, as every other flag's: an unset ``"$HIDDEN"`` must not train a linear model."""
    if text.strip().lower() == "none":
        return ()
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive layer sizes such as 64,64 (or 'none'), got {text!r}"
        )
    return tuple(int(p) for p in parts)


def batch_size(text: str) -> int | None:
    """A batch size; ``full`` (None) means the whole training set: gradient descent."""
    if text.strip().lower() == "full":
        return None
    try:
        return positive_int(text.strip())
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a positive batch size or 'full', got {text!r}") from None


def batch_sizes(text: str) -> list[int | None]:
    sizes = [batch_size(p) for p in text.split(",")]
    if len(set(sizes)) != len(sizes):
        raise argparse.ArgumentTypeError(f"a batch size is listed twice in {text!r}")
    return sizes


def dataset_name(text: str) -> str:
    """A data set's name (``--dataset`` itself takes ``choices``; this reads a saved one back)."""
    if text not in _datasets.names():
        raise argparse.ArgumentTypeError(f"unknown data set {text!r}; known data sets: {', '.join(_datasets.names())}")
    return text


def optimizer_name(text: str) -> str:
    name = text.strip().lower()
    if name not in _optimizers.names():
        raise argparse.ArgumentTypeError(
            f"unknown optimizer {text!r}; known optimizers: {', '.join(_optimizers.names())}"
        )
    return name


def optimizer_list(text: str) -> list[str]:
    if text.strip().lower() == "all":
        return list(_optimizers.names())
    names = [optimizer_name(p) for p in text.split(",")]
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"an optimizer is listed twice in {text!r}")
    return names


def flag_activations() -> list[str]:
    """The activations --activation takes: every name but those whose options have no defaults."""
    names = []
    for name in _activations.names():
        try:
            _activations.get(name)
        except TypeError:
            continue
        names.append(name)
    return names


def activation_name(text: str) -> str:
    try:
        _activations.get(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"unknown activation {text!r}; known activations: {', '.join(flag_activations())}"
        ) from None
    except TypeError as err:  # threshold: its options have no defaults, and no flag gives them
        raise argparse.ArgumentTypeError(f"{err}, which --activation cannot give") from None
    return text


def loss_name(text: str) -> str:
    try:
        return _losses.get(text).name
    except ValueError:
        raise argparse.ArgumentTypeError(f"unknown loss {text!r}; known losses: {', '.join(_losses.names())}") from None


# --------------------------------------------------------------------------------------------
# The options the commands share
# --------------------------------------------------------------------------------------------


def lr_help(command: str) -> str:
    """``--lr``'s help: ``compare`` trains every optimizer at the one rate given, ``train`` its one
    optimizer; the default is each optimizer's own rate."""
    rates = ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LEARNING_RATES.items())
    if command == "compare":
        return f"one learning rate for every optimizer (default: each optimizer's own: {rates})"
    return f"learning rate of --optimizer (default: the optimizer's own: {rates})"


def add_model_args(p: argparse.ArgumentParser, hidden: str, seed_help: str = "initialisation seed") -> None:
    p.add_argument(
        "--dataset",
        default="digits",
        choices=_datasets.names(),
        metavar="NAME",
        help=f"data set (default digits; one of {', '.join(_datasets.names())})",
    )
    p.add_argument("--path", default=None, help="folder or .npz with the files of mnist / fashion_mnist")
    p.add_argument(
        "--hidden",
        type=hidden_sizes,
        default=hidden_sizes(hidden),
        metavar="SIZES",
        help=f"hidden layer sizes, comma-separated (default {hidden}; 'none' for a linear model)",
    )
    p.add_argument(
        "--activation",
        type=activation_name,
        default="relu",
        help=f"hidden-layer activation (default relu; one of {', '.join(flag_activations())})",
    )
    p.add_argument(
        "--loss",
        type=loss_name,
        default=None,
        help="loss name (default: the data set's suggestion, e.g. sparse_categorical_crossentropy for digits); "
        "the output layer is linear (losses that can take logits are given them), but a softmax on "
        f"classes for {', '.join(sorted(PROBABILITY_LOSSES))} (a sigmoid on a binary data set's one "
        "output, softplus for poisson on regression targets); the categorical losses see a binary "
        "data set as two classes",
    )
    p.add_argument("--seed", type=seed, default=0, help=f"{seed_help} (default 0)")


def add_training_args(p: argparse.ArgumentParser, command: str) -> None:
    p.add_argument("--epochs", type=positive_int, default=None, help="epochs (default %(default)s)")
    p.add_argument("--lr", type=learning_rate, default=None, metavar="LR", help=lr_help(command))
    p.add_argument(
        "--grad", choices=MODES, default="manual", help="hand-written backprop (manual, default) or jax.grad (autodiff)"
    )
    p.add_argument(
        "--validation-split",
        type=fraction,
        default=0.2,
        help="last fraction of the training set held out for validation (default 0.2)",
    )
    p.add_argument(
        "--early-stopping",
        type=non_negative_int,
        default=None,
        metavar="PATIENCE",
        help="stop when the validation loss has not improved for PATIENCE epochs; the best epoch's "
        "weights are restored (Keras's EarlyStopping(patience=PATIENCE, restore_best_weights=True))",
    )
