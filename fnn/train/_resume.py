"""What a resumed ``fit`` takes from its checkpoint and compares with it: the file read against
the run's templates before any work (:func:`read_checkpoint`), the history it continues and the
epoch it starts at (:func:`continued_history`), its optimizer state (:func:`resumed_opt_state`),
and the settings that decide the batches (the key, the batch size, shuffling) and the
optimizer's program, recorded in every checkpoint ``fit`` writes. One that differs is named in a
warning (a changed batch size may be meant); a key not given is the file's, so the run goes on
as the one that wrote it did."""

from __future__ import annotations

import warnings
from typing import Any

import jax
import numpy as np

from fnn import checkpoint as checkpoint_
from fnn._keys import key as check_key, key_data, seed_key
from fnn._per_key import key_impl
from fnn._placement import to_host
from fnn._values import without_addresses
from fnn.checkpoint._io import MissingTree
from fnn.train._results import History, resumed_history

# The checkpoint's ``extra`` entry fit records its run's settings in.
SETTINGS = "fit_settings"


def run_settings(spec: Any) -> dict[str, Any]:
    """The settings of the compiled epoch ``spec`` that a resumed run must repeat: the batch
    size in effect (at most the number of samples), shuffling, and the optimizer's program
    (:func:`_program`)."""
    return {"batch_size": int(spec.batch_size), "shuffle": bool(spec.shuffle), "optimizer": _program(spec.update)}


def _program(update: Any) -> str:
    """What an optimizer's update computes beyond the values its state holds, as text that is
    the same in every process: fnn's transforms print their structure (a schedule's step counts
    and rule, a clipping norm, the options), the functions in it without their addresses (an
    optax optimizer's closures print alike whatever they close over, so they are never told
    apart)."""
    return without_addresses(repr(update))


def _key_text(key: Any) -> tuple[str, str]:
    """A key's kind and bits, as compared and shown (a raw key is of the default kind)."""
    return key_impl(key), str(to_host(key_data(key)).tolist())


def _usable(stored: Any) -> bool:
    try:
        check_key("key", stored)
    except (TypeError, ValueError):  # a pytree saved by hand, a raw key of another kind's shape
        return False
    return True


def resumed_key(path: str, stored_key: Any, stored_extra: Any, key: Any, spec: Any, runs: bool) -> Any:
    """The key a run resuming the checkpoint at ``path`` trains with: ``key``, or when it is
    None the file's (``stored_key``; ``PRNGKey(0)`` if it holds no usable one). When epochs
    remain to run (``runs``), a key, batch size or shuffling other than the file's (its key,
    and the settings ``stored_extra`` records, if any) is named in a UserWarning: the run will
    not repeat the uninterrupted one. The key only where it decides something: with shuffling,
    or a network that draws randomness in training (``needs_key``, Dropout); otherwise the run is
    the same with any key."""
    usable = _usable(stored_key)
    if key is None:
        key = stored_key if usable else seed_key(0)
    if not runs:
        return key
    differ = []
    # a key the file holds (a pytree saved by hand is not one) that is not this run's, where
    # the run draws from it (a user's network without needs_key: assumed to)
    drawn = spec.shuffle or getattr(spec.net, "needs_key", True)
    if drawn and isinstance(stored_key, (jax.Array, np.ndarray)) and _key_text(key) != _key_text(stored_key):
        (kind, bits), (stored_kind, stored_bits) = _key_text(key), _key_text(stored_key)
        if kind != stored_kind:
            bits, stored_bits = f"{bits} ({kind})", f"{stored_bits} ({stored_kind})"
        differ.append(f"key {bits} (the checkpoint's: {stored_bits})")
    saved = stored_extra.get(SETTINGS) if isinstance(stored_extra, dict) else None
    settings = run_settings(spec)  # the optimizer's program printed once
    if isinstance(saved, dict):
        for name, value in settings.items():
            if name in saved and saved[name] != value and name != "optimizer":
                differ.append(f"{name} {value} (the checkpoint's: {saved[name]})")
    if differ:
        warnings.warn(
            f"fit: resuming {path!r} with other settings than the run that wrote it: {', '.join(differ)}; "
            "the batches differ, so the resumed run will not match an uninterrupted one (pass the "
            "checkpoint's values to continue it exactly)",
            UserWarning,
            stacklevel=3,
        )
    if (
        isinstance(saved, dict)
        and isinstance(old := saved.get("optimizer"), str)
        and _sorted_dicts(old) != _sorted_dicts(settings["optimizer"])
    ):
        # the checkpoint's values win over opt's, but its program is opt's: a schedule of other
        # step counts took the file's values (a decay's rate rose again mid-run), silently
        mine, theirs = _where_differ(settings["optimizer"], old)
        warnings.warn(
            f"fit: resuming {path!r} with an optimizer built otherwise than the run that wrote it (its "
            "schedules' step counts or rules, a clipping norm, or another option that is not a value held "
            f"in its state): this run's has {mine} where the checkpoint's had {theirs}; the run goes on "
            "with this one's (build opt as that run did to continue it exactly)",
            UserWarning,
            stacklevel=3,
        )

    return key


def _sorted_dicts(text: str) -> str:
    """``text`` (a repr) with the entries of every ``{...}`` in it sorted: a dict's order is no
    part of a program (JAX flattens a dict by its sorted keys), and a mask printed in its
    caller's order (this version) or sorted (session 31's copies) is the same optimizer."""
    out, i = [], 0
    while i < len(text):
        end = _end_of(text, i) if text[i] in "{'\"" else -1
        if end < 0:  # a plain character (or an unbalanced opener: as it is)
            out.append(text[i])
            i += 1
            continue
        if text[i] == "{":
            entries = [_sorted_dicts(e) for e in _top_level_parts(text[i + 1 : end])]
            out.append("{" + ", ".join(sorted(entries)) + "}")
        else:  # a quoted string, whose braces are text
            out.append(text[i : end + 1])
        i = end + 1
    return "".join(out)


def _end_of(text: str, start: int) -> int:
    """The index of the quote or bracket closing the one opened at ``start`` (quoted text skipped
    inside brackets), or -1."""
    opener = text[start]
    i = start + 1
    while i < len(text):
        c = text[i]
        if opener in "'\"":
            if c == "\\":
                i += 1
            elif c == opener:
                return i
        elif c in "'\"([{":
            i = _end_of(text, i)
            if i < 0:
                return -1
        elif c in ")]}":
            return i
        i += 1
    return -1


def _top_level_parts(body: str) -> list[str]:
    """``body`` split at its top-level ``", "`` (not inside brackets or quotes)."""
    parts, start, i = [], 0, 0
    while i < len(body):
        if body[i] in "([{'\"":
            end = _end_of(body, i)
            i = len(body) if end < 0 else end + 1
        elif body.startswith(", ", i):
            parts.append(body[start:i])
            start = i = i + 2
        else:
            i += 1
    parts.append(body[start:])
    return [p for p in parts if p]


def _where_differ(a: str, b: str, width: int = 40) -> tuple[str, str]:
    """The parts of ``a`` and ``b`` around where they first differ, ``width`` characters each side."""
    i = next((k for k, (p, q) in enumerate(zip(a, b, strict=False)) if p != q), min(len(a), len(b)))

    def part(s: str) -> str:
        return ("..." if i > width else "") + s[max(0, i - width) : i + width] + ("..." if len(s) > i + width else "")

    return part(a), part(b)


def read_checkpoint(path: str, params: Any, opt_state: Any) -> Any:
    """The checkpoint at ``path`` as ``fit`` resumes it (:func:`fnn.checkpoint.resume`'s result,
    None where there is no file), read against abstract templates: ``params`` the run's params,
    ``opt_state`` its optimizer state or that state's shapes. A file saved with params only is a
    ValueError saying how to start a new run from them."""
    # against the arrays training will hold (NumPy float64 becomes float32 without x64)
    params_template = jax.eval_shape(lambda tree: tree, params)
    try:
        return checkpoint_.resume(path, params=params_template, opt_state=opt_state)
    except MissingTree as err:  # the template is fit's own: say what the file lacks for a run
        if err.tree != "opt_state":
            raise
        raise ValueError(
            f"checkpoint {path!r} holds no optimizer state (it was saved with params only, as "
            "ModelCheckpoint(save_weights_only=True) writes), so "
            "training cannot resume from it. To start a new run from its params, load them with "
            "fnn.checkpoint.load(path, params=params).params (your params as the template) and pass "
            "them to fit as params, with another checkpoint path or none (this one would be resumed)"
        ) from None


def continued_history(resumed: Any, path: str, iterations_per_epoch: int, epochs: int) -> tuple[History, int]:
    """The history a run resuming ``resumed`` (the checkpoint at ``path``) continues, and the
    epoch it starts at: the epochs the file holds, or ``epochs`` where the run that wrote it had
    stopped. A History saved by hand, or its logs alone, is continued too."""
    history = resumed_history(resumed.history, int(resumed.epoch), f"checkpoint {path!r}")
    # the epochs from here on take this run's steps (a run resumed with another batch size)
    history.iterations_per_epoch = iterations_per_epoch
    initial_epoch = int(resumed.epoch)
    if history.stop_reason != "epochs":
        # The interrupted run had stopped (early stopping, NaN, a callback): so does this one.
        initial_epoch = max(initial_epoch, epochs)
    return history, initial_epoch


def resumed_opt_state(stored: Any, own: Any) -> Any:
    """The optimizer state a run resumes from: the checkpoint's (``stored``), ``own`` (the run's
    fresh state) where the file held none of a leaf."""
    # A state written before schedules' values were optimizer state comes back with those
    # values as the abstract template's (they came from the optimizer then): this one's.
    return jax.tree.map(lambda got, own: own if isinstance(got, jax.ShapeDtypeStruct) else got, stored, own)
