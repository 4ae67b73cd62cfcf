"""What a resumed ``fit`` compares with its checkpoint: the settings that decide the batches
(the key, the batch size, shuffling), recorded in every checkpoint ``fit`` writes. One that
differs is named in a warning (a changed batch size may be meant); a key not given is the
file's, so the run goes on as the one that wrote it did."""

from __future__ import annotations

import warnings
from typing import Any

import jax
import numpy as np

from fnn._per_key import key_impl
from fnn._validate import key as check_key, key_data

# The checkpoint's ``extra`` entry fit records its run's settings in.
SETTINGS = "fit_settings"


def run_settings(spec: Any) -> dict[str, Any]:
    """The settings of the compiled epoch ``spec`` that a resumed run must repeat: the batch
    size in effect (at most the number of samples) and shuffling."""
    return {"batch_size": int(spec.batch_size), "shuffle": bool(spec.shuffle)}


def _key_text(key: Any) -> tuple[str, str]:
    """A key's kind and bits, as compared and shown (a raw key is of the default kind)."""
    return key_impl(key), str(np.asarray(key_data(key)).tolist())


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
    not repeat the uninterrupted one."""
    usable = _usable(stored_key)
    if key is None:
        key = stored_key if usable else jax.random.PRNGKey(0)
    if not runs:
        return key
    differ = []
    # a key the file holds (a pytree saved by hand is not one) that is not this run's
    if isinstance(stored_key, (jax.Array, np.ndarray)) and _key_text(key) != _key_text(stored_key):
        (kind, bits), (stored_kind, stored_bits) = _key_text(key), _key_text(stored_key)
        if kind != stored_kind:
            bits, stored_bits = f"{bits} ({kind})", f"{stored_bits} ({stored_kind})"
        differ.append(f"key {bits} (the checkpoint's: {stored_bits})")
    saved = stored_extra.get(SETTINGS) if isinstance(stored_extra, dict) else None
    if isinstance(saved, dict):
        for name, value in run_settings(spec).items():
            if name in saved and saved[name] != value:
                differ.append(f"{name} {value} (the checkpoint's: {saved[name]})")
    if differ:
        warnings.warn(
            f"fit: resuming {path!r} with other settings than the run that wrote it: {', '.join(differ)}; "
            "the batches differ, so the resumed run will not match an uninterrupted one (pass the "
            "checkpoint's values to continue it exactly)",
            UserWarning,
            stacklevel=3,
        )
    return key
