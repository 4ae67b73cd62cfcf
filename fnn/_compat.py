"""The differences between the JAX versions fnn runs on (the floor is in pyproject.toml)."""

from __future__ import annotations

import importlib
from contextlib import AbstractContextManager
from typing import Any

import jax


def float64() -> AbstractContextManager:
    """A context in which float64 arrays are float64 (``jax.enable_x64(True)``; older JAX has it
    as ``jax.experimental.enable_x64``)."""
    ctx: Any = getattr(jax, "enable_x64", None)
    if ctx is None:  # JAX < 0.7
        ctx = importlib.import_module("jax.experimental").enable_x64
    return ctx(True)
