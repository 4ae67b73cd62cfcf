"""Argument checks shared by every public function, with one rule: a wrong *type* raises
``TypeError``, a bad *value* of the right type raises ``ValueError``, and the message names the
argument and says what was expected.

NumPy scalars and 0-d arrays, and concrete 0-d jax arrays, are welcome wherever Python numbers
are (``np.float32(0.2)``, ``np.int64(3)``, ``jnp.float32(0.2)``); ``bool`` is never a number,
nor is a value held in an 8-bit float (already rounded: 0.9 in float8_e4m3fn is 0.875).
``hyper`` lets traced values through unchecked, so that functions which take hyperparameters
also run inside ``jit``/``vmap`` (hyperparameters held in an optimizer state arrive as tracers).
The dtypes' rules are in ``_dtypes.py``, PRNG keys' in ``_keys.py``.
"""

from __future__ import annotations

import errno
import inspect
import math
import numbers
import os
import stat
import struct
import sys
import tempfile
from collections.abc import Iterable
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from fnn._dtypes import check_number_dtype, is_real_dtype
from fnn._placement import to_host

T = TypeVar("T")


def is_traced(value: Any) -> bool:
    """True for an abstract value (inside ``jit``, ``vmap``, ``grad``): it cannot be checked."""
    return isinstance(value, jax.core.Tracer)


def any_traced(tree: Any) -> bool:
    """True where a leaf of ``tree`` is traced (:func:`is_traced`): a call under the user's jit."""
    return any(map(is_traced, jax.tree.leaves(tree)))


# What a function raises under jit that it would not raise eagerly (concrete values used as
# Python numbers or bools): a layer's init that raises it runs eagerly; a schedule may not.
UNTRACEABLE = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerArrayConversionError,
    jax.errors.TracerBoolConversionError,
    jax.errors.TracerIntegerConversionError,
)


def eval_shape_or_run(fn: Any, *args: Any) -> Any:
    """``jax.eval_shape(fn, *args)``; where ``fn`` cannot be traced (a user layer's init that
    seeds NumPy from the key), ``fn`` runs eagerly instead, as ``Network.init`` runs it, and its
    arrays come back as the same ``ShapeDtypeStruct``s (so an eager result is not held on to)."""
    try:
        return jax.eval_shape(fn, *args)
    except UNTRACEABLE:
        return jax.eval_shape(lambda out: out, fn(*args))


def unbindable(fn: Any, *args: Any, **kwargs: Any) -> inspect.Signature | None:
    """``fn``'s signature if it cannot take ``args``/``kwargs`` (a call that would fail on its
    signature, not inside it); None if it can, or if its signature cannot be read (a builtin).
    A decorator's wrapper is judged, not the function it wraps: the wrapper is what is called."""
    try:
        sig = inspect.signature(fn, follow_wrapped=False)
    except (TypeError, ValueError):
        return None
    try:
        sig.bind(*args, **kwargs)
    except TypeError:
        return sig
    return None


def interval(lo: float, hi: float, lo_open: bool, hi_open: bool) -> str:
    """``in [lo, hi)``, ``> lo``, ``<= hi``...: what a value must be, in words."""
    if math.isfinite(lo) and math.isfinite(hi):
        return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if math.isfinite(lo):
        return f"{'>' if lo_open else '>='} {lo:g}"
    return f"{'<' if hi_open else '<='} {hi:g}"


def is_real_scalar(value: Any, arrays: tuple[type, ...] = (np.ndarray, np.generic)) -> bool:
    """A 0-d instance of ``arrays`` of a real dtype (:func:`is_real_dtype`): ``np.float16(0.1)``,
    ``ml_dtypes.bfloat16(0.1)``, ``np.array(3)``; not a bool."""
    if not isinstance(value, arrays):
        return False
    held: Any = value  # an array or scalar of one of ``arrays``
    return np.ndim(held) == 0 and is_real_dtype(held.dtype)


def is_real_number(value: Any) -> bool:
    """A real number: Python's, NumPy's or a 0-d (NumPy or jax) array of a real dtype, bfloat16
    too; not a bool."""
    if isinstance(value, (bool, np.bool_)):
        return False
    return isinstance(value, numbers.Real) or is_real_scalar(value, (np.ndarray, np.generic, jax.Array))


def _as_real(name: str, value: Any, what: str = "a real number") -> float:
    """Python and NumPy real numbers (0-d NumPy arrays, bfloat16 too) and concrete 0-d jax arrays
    of a real dtype (``jnp.float32(0.5)``), read on the host; not bools, not 8-bit floats
    (:func:`check_number_dtype`)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be {what}, got {value!r}")
    if isinstance(value, numbers.Real):
        return float(value)
    if is_traced(value):  # a setting fixed when its object is built: jit/vmap/grad cannot reach it
        raise TypeError(
            f"{name} must be {what} known when it is set, got a traced value (inside jit, vmap or grad): "
            "give it as a Python number, outside the transform or as a static argument (functools.partial, "
            "jax.jit's static_argnames); to try several optimizer settings at once, fnn.sweep vmaps over "
            "them: learning_rates=, weight_decays=, hparams="
        )
    if is_real_scalar(value, (np.ndarray, np.generic, jax.Array)):
        check_number_dtype(name, value)
        return float(to_host(value))  # a jax array's read explicitly: a caller's transfer guard allows it
    raise TypeError(f"{name} must be {what}, got {value!r}")


def real(
    name: str,
    value: Any,
    lo: float = -math.inf,
    hi: float = math.inf,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    what: str = "a real number",
) -> float:
    """``value`` as a finite float in the interval ``lo..hi`` (closed unless ``*_open``);
    ``what`` describes the expected type in the TypeError."""
    v = _as_real(name, value, what)
    bounded = math.isfinite(lo) and math.isfinite(hi)
    if not math.isfinite(v) and not bounded:
        raise ValueError(f"{name} must be finite, got {value!r}")
    if not math.isfinite(v) or v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi):
        raise ValueError(f"{name} must be {interval(lo, hi, lo_open, hi_open)}, got {value!r}")
    return v


def hyper(
    name: str,
    value: Any,
    lo: float = -math.inf,
    hi: float = math.inf,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> Any:
    """:func:`real` for a hyperparameter, which may also be a scalar jax array (a value held in
    an optimizer state): a concrete one is checked and returned as it is, a traced one passes
    unchecked. Numbers come back as floats."""
    if isinstance(value, jax.Array):
        if np.ndim(value) != 0 or not jnp.issubdtype(value.dtype, jnp.number):
            kind = "a scalar" if np.ndim(value) != 0 else "a real number"  # a bool: a schedule's step < n
            raise TypeError(f"{name} must be {kind}, got an array of shape {np.shape(value)} and dtype {value.dtype}")
        if not is_traced(value):  # real() refuses an 8-bit float too
            real(name, to_host(value), lo, hi, lo_open=lo_open, hi_open=hi_open)
        return value
    v = real(name, value, lo, hi, lo_open=lo_open, hi_open=hi_open)
    # Held in the state as the default float (float32 without x64): 1e39 would be stored as inf.
    dtype = jax.dtypes.canonicalize_dtype(np.float64)
    if abs(v) > float(np.finfo(dtype).max):
        raise ValueError(
            f"{name}={value!r} overflows {np.dtype(dtype).name}, the dtype optimizer states hold it in "
            f"(largest: {np.finfo(dtype).max:.3g}; enable jax_enable_x64 for float64)"
        )
    return v


def integer(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int in ``[minimum, maximum]`` (NumPy integers welcome, floats and bools not)."""
    if is_traced(value):  # a count sets shapes: it must be known while tracing
        raise TypeError(
            f"{name} must be an int, got a traced {value.dtype} (under jax.jit, pass it as a static argument)"
        )
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    v = int(value)
    if minimum is not None and v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {v}")
    return v


def npz_reason(err: BaseException) -> str:
    """Why ``np.load(..., allow_pickle=False)`` refused a file, in words fit for a user: numpy's
    own text for a file that is not an archive suggests loading it with pickles allowed."""
    return "not an .npz archive" if "pickled" in str(err) else str(err)


def boolean(name: str, value: Any) -> bool:
    """``value`` as a bool (``np.bool_`` welcome; 0/1 and strings are not bools)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def choice(name: str, value: T, options: Iterable[T]) -> T:
    """``value`` if it is one of ``options`` (compared with ``==``); the message lists them."""
    options = tuple(options)
    types = {type(o) for o in options}
    if types and not any(isinstance(value, t) for t in types):
        raise TypeError(f"{name} must be one of {options}, got {type(value).__name__} {value!r}")
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


# ---------------------------------------------------------------------------------------------
# Paths.


# Linux's FS_IOC_GETFLAGS (the flags chattr sets) and the two that refuse a rename over the file.
_FS_IOC_GETFLAGS, _IMMUTABLE, _APPEND_ONLY = 0x80086601, 0x10, 0x20
_CAP_FOWNER = 3  # the capability that lets a process remove another user's file from a sticky folder


def _has_capability(bit: int) -> bool:
    """Whether this process holds capability ``bit`` (Linux's ``CapEff``); elsewhere, whether it
    runs as root."""
    try:
        with open("/proc/self/status") as f:
            effective = next(line.split()[1] for line in f if line.startswith("CapEff:"))
        return bool(int(effective, 16) >> bit & 1)
    except (OSError, StopIteration, ValueError, IndexError):
        return hasattr(os, "geteuid") and os.geteuid() == 0


def _unreplaceable(file: str) -> str | None:
    """Why a file written elsewhere and renamed over ``file`` (an existing regular file, symlinks
    resolved) would fail where its folder takes new files, or None: the file is immutable or
    append-only (``chattr +i``, ``+a``), or belongs to another user in a sticky folder (as
    ``/tmp`` is), from which only its owner, the folder's or a privileged process removes it."""
    if sys.platform.startswith("linux"):
        import fcntl  # (POSIX only)

        try:
            fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            fd = None
        if fd is not None:
            try:
                flags = struct.unpack("l", fcntl.ioctl(fd, _FS_IOC_GETFLAGS, struct.pack("l", 0)))[0]
            except OSError:  # a file system without these flags
                flags = 0
            finally:
                os.close(fd)
            if flags & _IMMUTABLE:
                return "it is immutable (chattr +i)"
            if flags & _APPEND_ONLY:
                return "it is append-only (chattr +a)"
    if not hasattr(os, "geteuid"):
        return None
    folder = os.stat(os.path.dirname(file))
    owners = (os.stat(file).st_uid, folder.st_uid)
    if folder.st_mode & stat.S_ISVTX and os.geteuid() not in owners and not _has_capability(_CAP_FOWNER):
        return "it is another user's, in a folder with the sticky bit (as /tmp has): only its owner may replace it"
    return None


def path(name: str, value: Any, *, writable: bool = False, folder: bool = False, replaced: bool = False) -> str:
    """``value`` as a path string (str or ``os.PathLike``).

    With ``writable``, a run that will write there fails now rather than after training: the
    path must not be a folder (or, with ``folder``, must be one or not exist yet), and the
    nearest part of it that exists must be a folder, in which a file can be written now. The
    check creates nothing (a call refused later, for another argument, leaves no folder behind):
    the missing folders are the writer's to create when it writes. With ``replaced`` (a
    checkpoint, written to a temporary file renamed over it) it must not be a device, pipe or
    socket either, which the rename would replace (``/dev/full`` trained, then failed to save)."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike), got {type(value).__name__} {value!r}")
    p = os.fspath(value)
    if isinstance(p, bytes):
        p = os.fsdecode(p)
    if not p:
        raise ValueError(f"{name} must be a non-empty path")
    if writable and not folder and p.endswith(tuple(filter(None, (os.sep, os.altsep)))):
        # realpath would drop the separator and write a file where the caller meant a folder
        raise ValueError(f"{name} {p!r} ends with a path separator, so it names a folder; it must name a file")
    if writable:
        full = os.path.abspath(p)
        try:
            os.stat(full)
        except OSError as err:  # a loop of symlinks (in any part) can never be written
            if err.errno == errno.ELOOP:
                raise ValueError(f"{name} {p!r} is a loop of symbolic links: nothing can be written there") from None
        if folder and os.path.exists(full) and not os.path.isdir(full):
            raise ValueError(f"{name} {p!r} is a file; it must name a folder")
        if not folder and os.path.isdir(full):
            raise ValueError(f"{name} {p!r} is a folder; it must name a file")
        if replaced and os.path.exists(full) and not os.path.isfile(full):
            raise ValueError(f"{name} {p!r} is not a regular file (a device, pipe or socket): a checkpoint replaces it")
        if replaced and os.path.isfile(full) and (why := _unreplaceable(os.path.realpath(full))):
            raise ValueError(f"{name} {p!r}: the file cannot be replaced, {why}")
        existing = full if folder else os.path.dirname(full)
        while not os.path.lexists(existing):
            existing = os.path.dirname(existing)
        if os.path.islink(existing) and not os.path.exists(existing):
            raise ValueError(
                f"{name} {p!r}: {existing!r} is a broken symbolic link (to {os.readlink(existing)!r}, which does not "
                "exist): create what it points to, or give another path"
            )
        if not os.path.isdir(existing):
            raise ValueError(f"{name} {p!r}: {existing!r} is a file, not a folder")
        where = full if folder else os.path.dirname(full)
        # The only sure test of writing is to write (permissions, read-only or virtual file
        # systems): a temporary file in the nearest folder that exists, where the writer will
        # create the missing ones, removed at once.
        try:
            with tempfile.NamedTemporaryFile(dir=existing, prefix=".fnn-write-check-"):
                pass
        except OSError as err:
            raise ValueError(f"{name} {p!r}: cannot write in {where!r} ({err.strerror})") from None
    return p
