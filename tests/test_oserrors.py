"""fnn._oserrors.writing: an OSError of a write re-raised naming the file, its type and errno kept."""

import errno

import pytest

from fnn._oserrors import writing


def _raised(err):
    with pytest.raises(OSError) as caught, writing("/runs/ck.npz", "the checkpoint"):
        raise err
    assert caught.value.__cause__ is err
    return caught.value


def test_an_error_without_a_file_name_gets_the_written_file():
    got = _raised(OSError(errno.ENOSPC, "No space left on device"))
    assert type(got) is OSError and got.errno == errno.ENOSPC and got.filename == "/runs/ck.npz"
    assert str(got) == "[Errno 28] No space left on device while writing the checkpoint: '/runs/ck.npz'"


def test_the_subclass_is_kept_and_another_named_file_is_said():
    got = _raised(PermissionError(errno.EACCES, "Permission denied", "/runs"))
    assert type(got) is PermissionError and got.errno == errno.EACCES
    assert str(got) == "[Errno 13] Permission denied at '/runs' while writing the checkpoint: '/runs/ck.npz'"
    same = _raised(FileNotFoundError(errno.ENOENT, "No such file or directory", b"/runs/ck.npz"))
    assert str(same) == "[Errno 2] No such file or directory while writing the checkpoint: '/runs/ck.npz'"


def test_an_error_without_errno_is_named_too_and_other_errors_pass_through():
    got = _raised(OSError("the mount went away"))
    assert type(got) is OSError and got.errno is None
    assert str(got) == "the mount went away while writing the checkpoint '/runs/ck.npz'"
    with pytest.raises(ValueError, match="^not an OSError$"), writing("/runs/ck.npz", "the checkpoint"):
        raise ValueError("not an OSError")
