"""What a checkpoint of ``fnn train`` records of its run, and how ``--resume`` uses it.

The run's settings (the flags' values, their defaults filled in) and its target ``epochs`` are
saved as the checkpoint's ``extra`` entries. ``--resume`` reads the file once, before the data
set is loaded; takes each saved setting the command line does not give, read by the flag's own
type; refuses one it gives with another value; and, without ``--save``, checks that the resumed
run can be written back to the file it came from. The resumed run's history is the
checkpoint's epochs followed by those run now.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import stat
from typing import Any

from fnn import activations as _activations, checkpoint as _checkpoint, datasets as _datasets
from fnn.cli._args import (
    activation_name,
    batch_size,
    dataset_name,
    fraction,
    hidden_sizes,
    learning_rate,
    loss_name,
    non_negative_int,
    optimizer_name,
    positive_int,
    seed,
)
from fnn.cli._common import UsageError, output_path
from fnn.cli._problem import default_learning_rate
from fnn.train import History

# What a checkpoint of fnn train records of its run (and --resume compares), by flag.
_RESUME_SETTINGS = {
    "dataset": "--dataset",
    "loss": "--loss",
    "hidden": "--hidden",
    "activation": "--activation",
    "optimizer": "--optimizer",
    "learning_rate": "--lr",
    "batch_size": "--batch-size",
    "validation_split": "--validation-split",
    "seed": "--seed",
    "early_stopping": "--early-stopping",
}


# Each flag's type, which reads a saved value back (as its text) the way the flag's text is read:
# a file's values are checked as the command line's are. --epochs, the run's target, is saved
# and taken too, but never compared: a resumed run may go on further.
_FLAG_TYPES = {
    "dataset": dataset_name,
    "loss": loss_name,
    "hidden": hidden_sizes,
    "activation": activation_name,
    "optimizer": optimizer_name,
    "learning_rate": learning_rate,
    "batch_size": batch_size,
    "validation_split": fraction,
    "seed": seed,
    "early_stopping": non_negative_int,
    "epochs": positive_int,
}
_TAKEN = {**_RESUME_SETTINGS, "epochs": "--epochs"}


def train_settings(args) -> dict[str, Any]:
    """The settings that define a run of fnn train, as its checkpoint stores them (JSON): the
    flags' values, the defaults they stand for filled in (the data set's suggested loss, the
    optimizer's learning rate) without loading the data set, so that ``--resume`` compares
    them before anything can fail for a setting that is not the saved one."""
    return {
        "dataset": args.dataset,
        "loss": loss_name(args.loss or _datasets.info(args.dataset)["loss"]),  # the loss's own name
        "hidden": list(args.hidden),
        "activation": _activations.get(args.activation).name,
        "optimizer": args.optimizer,
        "learning_rate": default_learning_rate(args.optimizer, args.lr),
        "batch_size": "full" if args.batch_size is None else args.batch_size,
        "validation_split": args.validation_split,
        "seed": args.seed,
        "early_stopping": args.early_stopping,  # the patience, or None
    }


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "none"
    if isinstance(value, float):  # 6 digits where they say it all, else as many as tell it apart
        return f"{value:g}" if float(f"{value:g}") == value else repr(value)
    return str(value)


def _same(name: str, given: Any, saved: Any) -> bool:
    if name == "activation" and isinstance(saved, str):
        with contextlib.suppress(ValueError):
            saved = _activations.get(saved).name  # older files: the name as typed
    if isinstance(given, float) or isinstance(saved, float):
        return isinstance(saved, (int, float)) and math.isclose(given, saved, rel_tol=1e-9, abs_tol=0.0)
    if isinstance(given, list):
        return isinstance(saved, (list, tuple)) and list(saved) == given
    return bool(given == saved)


def resume_error(err: Exception) -> UsageError:
    """--resume's usage error for a checkpoint that does not load (the OS's own words for a
    folder or a file we may not read)."""
    if isinstance(err, OSError) and err.strerror and err.filename:
        return UsageError(f"--resume: {err.filename}: {err.strerror}")
    return UsageError(f"--resume: {err}")


def read_resume(path: str) -> _checkpoint.Checkpoint:
    """The checkpoint ``--resume`` names, read once, before the data set (which it may name) is
    loaded. Refuses (UsageError) one that does not load, one not written by fnn train, and one
    without its PRNG key (the batch order would change)."""
    try:
        saved = _checkpoint.load(path)
    except (OSError, ValueError) as err:  # a folder, a file we may not read: usage errors too
        raise resume_error(err) from None
    if not any(name in saved.extra for name in _RESUME_SETTINGS):
        raise UsageError(
            f"--resume {path}: not a checkpoint of fnn train (it records none of the run's settings "
            f"{', '.join(_RESUME_SETTINGS.values())})"
        )
    if saved.key is None:
        raise UsageError(
            f"--resume {path}: the checkpoint holds no PRNG key, so the batches could not come in the "
            "order the run would have seen them"
        )
    return saved


def _as_flag_text(value: Any) -> str:
    """A saved value as it would be written after its flag (JSON gives lists, numbers, text)."""
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "none"
    return repr(value) if isinstance(value, float) else str(value)  # repr: the float itself


def take_saved(args, path: str, saved: _checkpoint.Checkpoint) -> None:
    """Sets each setting that the checkpoint records and the command line does not give (and
    ``--epochs``) to its saved value, read by the flag's own type. ``args.given`` holds the
    options given (``given_options``); without it every option counts as given. Older files
    record fewer settings (none has ``epochs``): the others keep their defaults."""
    given = getattr(args, "given", None)
    if given is None:
        return
    for name, flag in _TAKEN.items():
        dest = flag[2:].replace("-", "_")  # argparse's dest: --batch-size -> batch_size
        if name not in saved.extra or dest in given:
            continue
        value = saved.extra[name]
        if name == "early_stopping" and value is None:
            args.early_stopping = None  # saved without early stopping
            continue
        try:
            setattr(args, dest, _FLAG_TYPES[name](_as_flag_text(value)))
        except argparse.ArgumentTypeError as err:
            raise UsageError(f"--resume {path}: its saved {flag} {value!r} is not one fnn train takes: {err}") from None


def check_resume(path: str, saved: _checkpoint.Checkpoint, settings: dict[str, Any]) -> None:
    """Refuses (UsageError) a checkpoint whose recorded settings differ from this run's (older
    files record fewer: only those are compared). The ones not given were taken from it, so
    what can differ is a value given on the command line."""
    recorded = [name for name in _RESUME_SETTINGS if name in saved.extra]
    differ = [
        f"{_RESUME_SETTINGS[name]} {_shown(settings[name])} (saved: {_shown(saved.extra[name])})"
        for name in recorded
        if not _same(name, settings[name], saved.extra[name])
    ]
    if differ:
        raise UsageError(
            f"--resume {path} was saved with other settings: {', '.join(differ)}; give the saved values to continue it"
        )


def write_back_path(path: str) -> str:
    """The checkpoint ``--resume`` names, as the path the resumed run saves to when no
    ``--save`` is given; refused (UsageError) if it could not be written back there: its folder
    cannot be written, or the file is read-only (whose owner meant it to stay as it is)."""
    try:
        output_path("--resume", path, replaced=True)
        read_only = not os.stat(path).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    except (UsageError, OSError) as err:
        problem = str(err).removeprefix(f"--resume {path!r}: ")
    else:
        if not read_only:
            return path
        problem = "the file is read-only"
    raise UsageError(
        f"--resume {path}: the resumed run could not be saved back there ({problem}); nothing was "
        f"trained and {path} is unchanged: give --save PATH to keep the resumed run elsewhere"
    )


def merge_histories(old: History, new: History) -> History:
    """The resumed run's history: the checkpoint's epochs, then those run now. A run that ran
    no epoch keeps the checkpoint's reason for stopping."""
    merged = History(new.iterations_per_epoch or old.iterations_per_epoch)
    for h in (old, new):
        for epoch, t, i in zip(h.epochs, h.times, range(len(h.epochs)), strict=True):
            merged.append(epoch, {k: v[i] for k, v in h.history.items()}, t)
    last = new if new.epochs else old
    merged.stop_reason, merged.stopped_epoch = last.stop_reason, last.stopped_epoch
    return merged
