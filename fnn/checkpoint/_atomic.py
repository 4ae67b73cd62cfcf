"""The atomic writer: a temporary file beside the target, locked while it is written, flushed
and renamed over the target; temporary files that killed writers left behind are removed.

A replaced file keeps its permission bits, a new one gets ``0o666`` less the umask, and a
symlink is written through (its target is replaced, never the link).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
import time
from collections.abc import Mapping

import numpy as np

from fnn._oserrors import writing

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

_STALE_AFTER = 3600.0  # seconds; only where files cannot be locked
_TEMP_BYTES = 6  # a temporary file's random part: 12 hex digits


def write(path: str, arrays: Mapping[str, np.ndarray]) -> None:
    """``arrays`` as an ``.npz`` at ``path``, atomically (the previous file survives any failure);
    an OSError names ``path``."""
    with writing(path, "the checkpoint"):
        _write(path, arrays)


def _write(path: str, arrays: Mapping[str, np.ndarray]) -> None:
    target = os.path.realpath(path)  # through a symlink: os.replace would replace the link itself
    if os.path.exists(target) and not os.path.isfile(target):
        # the rename would replace a device or a pipe (/dev/null, as root) with a regular file
        raise ValueError(f"{path!r} is not a regular file (a device, pipe or socket): a checkpoint replaces it")
    directory, name = os.path.split(target)
    os.makedirs(directory, exist_ok=True)
    _remove_stale(directory, name)
    try:
        mode: int | None = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = None  # the temporary file already has open()'s mode: 0o666 less the umask
    fd, tmp = _create_temp(directory, name)
    try:
        with os.fdopen(fd, "wb") as f:  # closed (and unlocked) only after the rename
            np.savez(f, **arrays)  # type: ignore[arg-type]  # numpy's stub types the first kwarg
            f.flush()
            os.fsync(f.fileno())
            if mode is not None:
                os.chmod(tmp, mode)
            if fcntl is None:
                f.close()  # Windows cannot rename an open file
            try:
                os.replace(tmp, target)
            except OSError as err:  # the rename's error names the temporary file: say what failed
                raise type(err)(err.errno, f"{err.strerror} (replacing the file with the new one)", target) from err
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _create_temp(directory: str, name: str) -> tuple[int, str]:
    """A new empty ``.<name>.<12 hex digits>.tmp`` beside the target, exclusively locked."""
    while True:
        tmp = os.path.join(directory, f".{name}.{secrets.token_hex(_TEMP_BYTES)}.tmp")
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        if fcntl is None:
            return fd, tmp
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a file system without locks: unlocked, as on Windows
            return fd, tmp
        # A cleaner may have taken the file for stale between its creation and this lock: it
        # removes only while holding the lock, so once locked the name is still ours, or gone.
        with contextlib.suppress(FileNotFoundError):
            if os.path.samestat(os.stat(tmp), os.fstat(fd)):
                return fd, tmp
        os.close(fd)


def _remove_stale(directory: str, name: str) -> None:
    """Removes the temporary files of this target that no live writer holds (best effort):
    only the names :func:`_create_temp` makes, so a file of the user's that merely looks like
    one (``.<name>.backup.tmp``) is never touched."""
    pattern = re.compile(re.escape(f".{name}.") + f"[0-9a-f]{{{2 * _TEMP_BYTES}}}" + r"\.tmp")
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for entry in names:
        if pattern.fullmatch(entry):
            with contextlib.suppress(OSError):
                _remove_if_unheld(os.path.join(directory, entry))


def _remove_if_unheld(candidate: str) -> None:
    if fcntl is not None:
        flags = os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(candidate, os.O_RDWR | flags)  # NFS emulates flock with locks needing write access
        except PermissionError:
            fd = os.open(candidate, os.O_RDONLY | flags)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return  # a writer is at work on it
        except OSError:
            os.close(fd)  # a file system without locks: judged by age, below
        else:
            try:
                held = os.fstat(fd)
                if stat.S_ISREG(held.st_mode) and os.path.samestat(held, os.lstat(candidate)):
                    os.unlink(candidate)  # while holding the lock (see _create_temp)
            finally:
                os.close(fd)
            return
    if time.time() - os.lstat(candidate).st_mtime > _STALE_AFTER:
        os.unlink(candidate)


def _fsync_dir(directory: str) -> None:
    # Makes the rename itself durable; not every platform can open a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
