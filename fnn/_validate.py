"""Argument validation shared by the modules that take numeric hyperparameters."""
from __future__ import annotations

import math
import numbers

import jax
import numpy as np


def real(name: str, value, lo: float = -math.inf, hi: float = math.inf,
          lo_open: bool = False, hi_open: bool = False) -> float:
    """``value`` as a finite float in the interval, else a ValueError/TypeError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.ndarray, np.generic, jax.Array)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, jax.errors.ConcretizationTypeError) as e:
        raise TypeError(f"{name} must be a concrete real number, got {value!r}") from e
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi):
        interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return v
