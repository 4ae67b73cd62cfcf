"""Synthetic data sets, deterministic in ``seed`` (or a jax ``key``): spirals, moons, xor, sine."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from fnn._keys import key as check_key, key_data
from fnn._validate import integer, real
from fnn.datasets._split import Split, fixed_split, targets


def _rng(seed: int | None, key: jax.Array | None) -> np.random.Generator:
    """A NumPy generator from an int seed or a jax key (raw or typed); NumPy's streams do not
    depend on jax's x64 mode, so a seed gives the same data in float32 and float64 sessions."""
    if key is not None:
        if seed is not None:
            raise ValueError("give seed= or key=, not both")
        bits = key_data(check_key("key", key))
        return np.random.default_rng(np.asarray(bits, dtype=np.uint32).ravel().tolist())
    return np.random.default_rng(integer("seed", 0 if seed is None else seed, 0))


def _check_n(n_samples: Any, minimum: int) -> int:
    return integer("n_samples", n_samples, minimum)


def _check_noise(noise: Any) -> float:
    return real("noise", noise, lo=0.0)


_PER_ARM = 5  # the stratified 80/20 split gives each arm one test point from 5 on


def spirals(
    n_samples: int = 900,
    *,
    n_classes: int = 3,
    noise: float = 0.2,
    seed: int | None = None,
    key: jax.Array | None = None,
) -> Split:
    """``n_classes`` interleaved spiral arms in 2-D (CS231n): for arm j and r in [0, 1],
    ``t = 4 (j + r) + noise * N(0, 1)``, ``x = r (sin t, cos t)``; labels j (int32). At least 5
    points per arm (``n_samples >= 5 n_classes``), so that every arm is in both parts."""
    n = _check_n(n_samples, 10)
    n_classes = integer("n_classes", n_classes, 2)
    if n < _PER_ARM * n_classes:  # fewer, and an arm would miss the test part, or be one point at the origin
        raise ValueError(
            f"n_samples={n} gives the {n_classes} arms fewer than {_PER_ARM} points each: "
            f"n_samples must be >= {_PER_ARM * n_classes} for n_classes={n_classes}"
        )
    noise, rng = _check_noise(noise), _rng(seed, key)
    sizes = [n // n_classes + (j < n % n_classes) for j in range(n_classes)]
    xs, ys = [], []
    for j, m in enumerate(sizes):
        r = np.linspace(0.0, 1.0, m)
        t = np.linspace(4.0 * j, 4.0 * (j + 1), m) + noise * rng.standard_normal(m)
        xs.append(np.stack([r * np.sin(t), r * np.cos(t)], axis=1))
        ys.append(np.full(m, j))
    x, y = np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.int32)
    return fixed_split(x, y, stratify=True)


def moons(n_samples: int = 1000, *, noise: float = 0.1, seed: int | None = None, key: jax.Array | None = None) -> Split:
    """Two interleaving half circles (scikit-learn's ``make_moons`` formula): upper
    ``(cos a, sin a)`` label 0, lower ``(1 - cos a, 0.5 - sin a)`` label 1, a in [0, pi], plus
    ``noise * N(0, 1)`` on each coordinate. y float32 (N, 1)."""
    n = _check_n(n_samples, 10)
    noise, rng = _check_noise(noise), _rng(seed, key)
    n_out = n // 2
    n_in = n - n_out
    a_out, a_in = np.linspace(0.0, np.pi, n_out), np.linspace(0.0, np.pi, n_in)
    x = np.concatenate(
        [np.stack([np.cos(a_out), np.sin(a_out)], 1), np.stack([1.0 - np.cos(a_in), 0.5 - np.sin(a_in)], 1)]
    )
    x = x + noise * rng.standard_normal(x.shape)
    y = np.concatenate([np.zeros(n_out), np.ones(n_in)])
    return fixed_split(x.astype(np.float32), targets(y, "binary"), stratify=True)


def xor(n_samples: int = 1000, *, noise: float = 0.0, seed: int | None = None, key: jax.Array | None = None) -> Split:
    """Points uniform in [-1, 1]^2 labelled 1 where the signs differ (``x0 * x1 < 0``); the
    label is taken before ``noise * N(0, 1)`` is added to the points. y float32 (N, 1)."""
    n = _check_n(n_samples, 10)
    noise, rng = _check_noise(noise), _rng(seed, key)
    x = rng.uniform(-1.0, 1.0, size=(n, 2))
    y = (x[:, 0] * x[:, 1] < 0).astype(np.float64)
    x = x + noise * rng.standard_normal(x.shape)
    return fixed_split(x.astype(np.float32), targets(y, "binary"), stratify=True)


def sine(n_samples: int = 1000, *, noise: float = 0.1, seed: int | None = None, key: jax.Array | None = None) -> Split:
    """Regression ``y = sin(x) + noise * N(0, 1)`` with x uniform in [-pi, pi]; x and y (N, 1)."""
    n = _check_n(n_samples, 5)
    noise, rng = _check_noise(noise), _rng(seed, key)
    x = rng.uniform(-np.pi, np.pi, size=(n, 1))
    y = np.sin(x) + noise * rng.standard_normal(x.shape)
    return fixed_split(x.astype(np.float32), targets(y, "regression"), stratify=False)
