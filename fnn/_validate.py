"""Argument validation shared by the modules that take numbers: hyperparameters, counts, sizes."""
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


def integer(name: str, value, minimum: int) -> int:
    """``value`` as an int >= ``minimum`` (bools refused), else a TypeError/ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)
