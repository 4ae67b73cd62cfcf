"""The differences between the JAX versions fnn runs on (the floor is in pyproject.toml)."""

from __future__ import annotations

from contextlib import AbstractContextManager

import jax


def float64() -> AbstractContextManager:
    """A context in which float64 arrays are float64 (``jax.enable_x64(True)``, a context since
    JAX 0.7; one place to change should it move again)."""
    return jax.enable_x64(True)
