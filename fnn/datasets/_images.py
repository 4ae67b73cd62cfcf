"""MNIST-like images from local files: IDX files (optionally gzipped) or a Keras style ``.npz``."""

from __future__ import annotations

import gzip
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from fnn._validate import npz_reason
from fnn.datasets._split import Split

_IDX_DTYPES: dict[int, Any] = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_PARTS = {
    "x_train": ("train-images", "idx3"),
    "y_train": ("train-labels", "idx1"),
    "x_test": ("t10k-images", "idx3"),
    "y_test": ("t10k-labels", "idx1"),
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """One IDX file (the MNIST format; gzipped when the name ends in ``.gz``) as an array.

    Layout: two zero bytes, a dtype code, the rank r, r big-endian uint32 sizes, then the data.
    """
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: cannot read IDX file ({err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    rank = raw[3]
    header = 4 + 4 * rank
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=rank, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: IDX data holds {len(raw) - header} bytes, shape {shape} "
            f"needs {expected} (truncated or corrupt file)"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find_idx(folder: str, stem: str, kind: str) -> str:
    # The files circulate as train-images-idx3-ubyte, train-images.idx3-ubyte, with or without .gz.
    for sep in ("-", "."):
        for ext in ("", ".gz"):
            candidate = os.path.join(folder, f"{stem}{sep}{kind}-ubyte{ext}")
            if os.path.isfile(candidate):
                return candidate
    expected = ", ".join(f"{s}-{k}-ubyte" for s, k in _IDX_PARTS.values())
    raise FileNotFoundError(
        f"{folder}: no {stem}-{kind}-ubyte[.gz] file; expected the four IDX files {expected} (fnn never downloads data)"
    )


def _read_npz(path: str) -> dict[str, np.ndarray]:
    try:
        # Our own handle: np.load(path) leaks its file when the zip directory is unreadable.
        with open(path, "rb") as f:
            z = np.load(f, allow_pickle=False)
            files = z.files  # AttributeError for a bare .npy: reported below
            arrays = {k: z[k] for k in _IDX_PARTS if k in files}
    except Exception as err:  # BadZipFile, OSError, EOFError, "pickled data", a bare .npy, ...
        raise ValueError(f"{path}: not a readable .npz file ({npz_reason(err)})") from None
    missing = [k for k in _IDX_PARTS if k not in arrays]
    if missing:
        raise ValueError(f"{path}: the .npz lacks {missing}; it needs x_train, y_train, x_test, y_test")
    return arrays


# What both data sets hold: 28x28 grey images of 10 classes.
_PIXELS, _CLASSES = 28 * 28, 10


def _pixel_scale(*images: np.ndarray) -> float:
    """What the pixels are divided by: 255 (Keras's and the IDX files' 0-255 grey levels), or 1
    for float images that already lie in [0, 1] (a copy saved after dividing by 255: dividing
    again left every pixel below 0.004, unseen)."""
    floats = all(np.issubdtype(x.dtype, np.floating) for x in images)
    if floats and all(x.size == 0 or (np.nanmin(x) >= 0 and np.nanmax(x) <= 1) for x in images):
        return 1.0
    return 255.0


def image_loader(name: str) -> Callable[..., Split]:
    def load_(path: str | os.PathLike | None = None, *, flatten: bool = True) -> Split:
        if path is None:
            raise ValueError(
                f"data set {name!r} is read from local files: pass path= (a folder "
                f"with the four IDX files, or an .npz with x_train, y_train, x_test,"
                f" y_test); fnn never downloads data"
            )
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{name}: {path} does not exist (fnn never downloads data)")
        if os.path.isdir(path):
            arrays = {k: read_idx(_find_idx(path, *v)) for k, v in _IDX_PARTS.items()}
        else:
            arrays = _read_npz(path)
        if not isinstance(flatten, (bool, np.bool_)):
            raise TypeError(f"flatten must be True or False, got {flatten!r}")
        scale = _pixel_scale(arrays["x_train"], arrays["x_test"])
        out = []
        for part in ("train", "test"):
            x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
            if x.shape[0] != y.shape[0]:
                raise ValueError(f"{path}: x_{part} has {x.shape[0]} images but y_{part} has {y.shape[0]} labels")
            if x.ndim < 2 or math.prod(x.shape[1:]) != _PIXELS:
                size = math.prod(x.shape[1:]) if x.ndim > 1 else 1
                raise ValueError(
                    f"{path}: x_{part} has shape {x.shape} ({size} values an image); {name} images are 28x28 "
                    f"({_PIXELS} values)"
                )
            if y.ndim > 1 and y.shape[1:] != (1,):  # one-hot rows would ravel into 10 labels an image
                raise ValueError(
                    f"{path}: y_{part} has shape {y.shape}; it needs one class index per image, shape "
                    f"({y.shape[0]},) (one-hot rows: take their argmax)"
                )
            labels = np.asarray(y).ravel()
            said = f"{path}: y_{part} must hold class indices (whole numbers 0 to {_CLASSES - 1})"
            if labels.size and not np.issubdtype(labels.dtype, np.number):
                raise ValueError(f"{said}, not {labels.dtype} values")
            with np.errstate(invalid="ignore"):  # NaN compares false: flagged by isfinite
                wrong = ~np.isfinite(labels) | (labels != np.round(labels)) | (labels < 0) | (labels >= _CLASSES)
            if wrong.any():
                i = int(np.flatnonzero(wrong)[0])  # the first wrong one, where it is
                raise ValueError(f"{said}, not {labels[i].item()!r} (sample {i})")
            x = x.astype(np.float32) / scale
            out.append((x.reshape(x.shape[0], -1) if flatten else x, labels.astype(np.int32)))
        return out[0], out[1]

    load_.__name__ = name
    return load_
