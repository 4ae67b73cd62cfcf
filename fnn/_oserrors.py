"""OSErrors of a write that name the file being written: a full disk or a lost mount raises from
``write`` or ``fsync`` with no file name (``[Errno 28] No space left on device``), which says
nothing of which of a run's files (its checkpoint, a CSV log) could not be written."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def writing(path: str, what: str) -> Iterator[None]:
    """Re-raises an OSError of the block as the same type with the same ``errno``, naming
    ``what`` and ``path`` (and the file the error named, where that is another), chained to it."""
    try:
        yield
    except OSError as err:
        detail, named_file = err.strerror or str(err), err.filename
        if isinstance(named_file, (str, bytes)):
            named_file = os.fsdecode(named_file)
        if named_file is not None and named_file != path:
            detail += f" at {named_file!r}"
        try:
            if err.errno is None:  # no errno, so no (errno, strerror, filename) form
                named = type(err)(f"{err} while writing {what} {path!r}")
            else:
                named = type(err)(err.errno, f"{detail} while writing {what}", path)
        except Exception:  # a subclass with another constructor: left as it was
            named = None
        if named is None:
            raise
        raise named from err
