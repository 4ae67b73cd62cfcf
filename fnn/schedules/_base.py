"""The Schedule type and what every schedule shares: its arguments' checks and the float step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn._validate import real

Array = jax.Array
Schedule = Callable[[Array], Array]
"""The type of a schedule: a function ``step -> learning rate`` (``step`` counts updates from 0)."""


def check_steps(name: str, value, minimum: int) -> int:
    """A whole number of steps >= ``minimum``."""
    v = real(name, value, lo=minimum)
    if v != int(v):
        raise ValueError(f"{name} must be a whole number of steps, got {value!r}")
    return int(v)


def check_rate(name: str, value: Any) -> float:
    """A rate a schedule gives: finite and >= 0 (a negative learning rate ascends the loss)."""
    return real(name, value, lo=0.0)


def float_dtype() -> Any:
    """The default float dtype: float64 when x64 is enabled, else float32."""
    return jax.dtypes.canonicalize_dtype(np.float64)


def float_step(step) -> Array:
    return jnp.asarray(step).astype(float_dtype())
