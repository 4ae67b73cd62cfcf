"""The initializers that build a matrix rather than draw entries one by one: Keras's Orthogonal
(PyTorch's ``orthogonal_``) and Identity (PyTorch's ``eye_``)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import Array

from fnn._dtypes import promoted
from fnn._validate import real
from fnn.initializers._base import Initializer, canonical_shape, flat, float_dtype


@dataclasses.dataclass(frozen=True)
class _Orthogonal:
    gain: float

    def __call__(self, key: Array, shape: int | Sequence[int], dtype: Any = jnp.float32) -> Array:
        dtype, dims = float_dtype(dtype), canonical_shape(shape)
        if len(dims) < 2:
            raise ValueError(f"orthogonal needs a shape of at least two dimensions, got {dims} of rank {len(dims)}")
        rows, cols = math.prod(dims[:-1]), dims[-1]
        # the QR is computed in float32 at least: XLA has no QR for bfloat16 or float16
        work = promoted(jnp.float32, dtype)
        a = flat(jax.random.normal, key, (max(rows, cols), min(rows, cols)), work)
        q, r = jnp.linalg.qr(a)
        q = q * jnp.sign(jnp.diagonal(r))  # the signs that make q uniform (Haar) over orthogonal matrices
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(dims).astype(dtype)

    def __repr__(self) -> str:
        """The public call that builds an equal initializer: ``orthogonal(gain=1.0)``."""
        return f"orthogonal(gain={self.gain!r})"


@dataclasses.dataclass(frozen=True)
class _Identity:
    gain: float

    def __call__(self, key: Array, shape: int | Sequence[int], dtype: Any = jnp.float32) -> Array:
        # key is unused; taken so every initializer has one signature.
        dims = canonical_shape(shape)
        if len(dims) != 2:
            raise ValueError(f"identity needs a 2-D shape (rows, cols), got {dims} of rank {len(dims)}")
        return jnp.eye(*dims, dtype=dtype) * jnp.asarray(self.gain, dtype)

    def __repr__(self) -> str:
        """The public call that builds an equal initializer: ``identity(gain=1.0)``."""
        return f"identity(gain={self.gain!r})"


def orthogonal(gain: float = 1.0) -> Initializer:
    """A random orthogonal matrix times ``gain`` (Keras's Orthogonal; PyTorch's ``orthogonal_``).

    A kernel of shape ``(*s, cols)`` is the matrix of ``rows = prod(s)`` rows and ``cols``
    columns: a standard normal ``A`` of shape ``(max(rows, cols), min(rows, cols))`` is factored
    as ``A = Q R`` (reduced QR) and ``Q`` times the signs of ``R``'s diagonal (which makes it
    uniformly distributed) is the kernel, transposed when ``rows < cols``, reshaped to
    ``(*s, cols)`` and times ``gain``. So a tall kernel (``rows >= cols``) has orthonormal
    columns, ``W^T W = gain^2 I``, and a wide one orthonormal rows, ``W W^T = gain^2 I``.
    PyTorch flattens its ``(out, in)`` weights the other way round; for a 2-D kernel both give
    an orthogonal matrix of the same distribution (not the same draws).

    Args:
        gain: The factor of the matrix, a finite float.

    Returns:
        An initializer ``init(key, shape, dtype=jnp.float32) -> Array`` (a frozen dataclass:
        equal arguments give equal initializers). Calling it raises ValueError for a shape of
        fewer than two dimensions (as Keras), TypeError for a non-floating ``dtype``; bfloat16
        and float16 kernels are factored in float32 and rounded.

    Raises:
        TypeError: For a ``gain`` that is not a real number.
        ValueError: For a non-finite ``gain``.

    Examples:
        >>> import fnn, jax, jax.numpy as jnp
        >>> w = fnn.initializers.orthogonal(gain=2.0)(jax.random.PRNGKey(0), (5, 3))
        >>> bool(jnp.allclose(w.T @ w, 4 * jnp.eye(3), atol=1e-5))  # orthogonal columns of norm 2
        True
    """
    return _Orthogonal(real("gain", gain))


def identity(gain: float = 1.0) -> Initializer:
    """``gain`` times the identity matrix ``eye(rows, cols)`` (Keras's Identity; with ``gain=1``
    PyTorch's ``eye_``, also named ``"eye"`` in :func:`get`); any dtype.

    A non-square shape gets ones on the main diagonal, zeros elsewhere.

    Args:
        gain: The diagonal's value, a finite float (cast to the requested dtype).

    Returns:
        An initializer ``init(key, shape, dtype=jnp.float32) -> Array`` (``key`` unused); calling
        it raises ValueError for a shape that is not 2-D (as Keras).

    Raises:
        TypeError: For a ``gain`` that is not a real number.
        ValueError: For a non-finite ``gain``.

    Examples:
        >>> import fnn, jax
        >>> fnn.initializers.identity(0.5)(jax.random.PRNGKey(0), (2, 3)).tolist()
        [[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]
    """
    return _Identity(real("gain", gain))
