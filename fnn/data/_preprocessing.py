"""Preparing targets and features: one-hot rows from class ids, and scaling with statistics of
the training data only (:class:`~fnn.data.Standardizer`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp
import numpy as np

from fnn._dtypes import is_real_dtype
from fnn._placement import to_host
from fnn._validate import integer


def one_hot(labels: Any, num_classes: int | None = None, dtype: Any = np.float32) -> np.ndarray:
    """One-hot rows ``out[i, labels[i]] = 1`` of shape (N, C) from int labels (N,) or (N, 1).

    ``num_classes`` defaults to ``max(labels) + 1`` (Keras's ``to_categorical``). Labels must be
    integers (integral floats are accepted) in ``[0, num_classes)``. Labels of another shape
    ``S`` (a trailing 1 dropped) give ``S + (C,)``, as ``to_categorical`` gives them: ``(N, 2)``
    labels, ``(N, 2, C)``.

    Args:
        labels: Integer class ids, shape ``(N,)`` or ``(N, 1)`` (or any shape, above).
        num_classes: C (None: ``max(labels) + 1``).
        dtype: The dtype of the result.

    Returns:
        The one-hot rows, shape ``(N, C)`` (``S + (C,)`` for labels of shape ``S``).

    Raises:
        ValueError: For labels that are not integers (the message names the first that is not
            a whole number) or lie outside ``[0, num_classes)``; empty labels without
            ``num_classes``; ``num_classes < 1``.

    Examples:
        >>> import fnn
        >>> fnn.data.one_hot([0, 2], 3).tolist()
        [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    labels = to_host(labels)
    if labels.ndim > 1 and labels.shape[-1] == 1:
        labels = labels.reshape(labels.shape[:-1])
    if labels.size and not is_real_dtype(labels.dtype):
        raise ValueError(f"labels must be integer class indices; got dtype {labels.dtype}")
    if labels.size and jnp.issubdtype(labels.dtype, jnp.floating):  # bfloat16 too
        # whole-number floats are welcome (labels read from a float column): the value is at fault
        fractional = ~np.isfinite(labels) | (labels != np.round(labels))
        if fractional.any():
            at = tuple(int(i) for i in np.argwhere(fractional)[0])
            raise ValueError(
                f"labels must be integer class indices; labels[{', '.join(map(str, at))}] is "
                f"{labels[at].item()!r}, not a whole number"
            )
    if num_classes is None and not labels.size:
        raise ValueError("labels are empty, so num_classes (max(labels) + 1) cannot be inferred: pass num_classes")
    # the range is read before the cast to int64, which would wrap a float label past its range
    # (1e20 became -2**63) and name a value the labels do not hold
    lo, hi = (int(labels.min()), int(labels.max())) if labels.size else (0, 0)
    if lo < 0:  # before num_classes is inferred: max(labels) + 1 would blame an argument not given
        raise ValueError(f"labels must be class indices >= 0; got values from {lo} to {hi}")
    num_classes = integer("num_classes", hi + 1 if num_classes is None else num_classes, 1)
    if hi >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes}); got values from {lo} to {hi}")
    return (labels.astype(np.int64)[..., None] == np.arange(num_classes)).astype(dtype)


def _nan_mean_std(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.nanmean(x, axis)`` and ``np.nanstd(x, axis)``, bit for bit, without their warnings.

    With ``n`` the count of values that are not NaN, ``mean = sum(x) / n`` and
    ``std = sqrt(sum((x - mean)^2) / n)`` over those values; a feature with ``n = 0`` gets NaN
    for both. NumPy's functions warn ("Mean of empty slice") for such a feature, and silencing
    that with ``warnings.catch_warnings`` is not thread-safe: two threads standardizing at once
    could leave the process an "ignore RuntimeWarning" filter for good. So the empty features
    are handled here, and nothing divides by zero. The sums run as NumPy's run (NaN replaced by
    0 in a copy of ``x`` that keeps its memory layout), so the numbers are NumPy's.
    """
    missing = np.isnan(x)
    filled = np.array(x, copy=True)  # x's layout kept: a reduction adds in the order it gives
    np.copyto(filled, 0.0, where=missing)
    count = np.sum(~missing, axis=axis, keepdims=True)
    present = count > 0
    per = np.maximum(count, 1)  # 0/0 would warn; the empty features are NaN below
    mean = np.where(present, np.sum(filled, axis=axis, keepdims=True) / per, np.nan)
    deviation = np.subtract(filled, mean, out=filled)
    np.copyto(deviation, 0.0, where=missing)
    with np.errstate(over="ignore"):  # an inf variance is named by Standardizer.fit (errstate: per thread)
        var = np.where(present, np.sum(deviation * deviation, axis=axis, keepdims=True) / per, np.nan)
    return np.squeeze(mean, axis), np.squeeze(np.sqrt(var), axis)


def _not_complex(name: str, a: np.ndarray) -> np.ndarray:
    """A complex ``a`` is a TypeError (NumPy's conversion would drop the imaginary part with a
    warning only; scikit-learn's StandardScaler refuses it too)."""
    if jnp.issubdtype(a.dtype, jnp.complexfloating):
        raise TypeError(f"{name} must hold real numbers; got dtype {a.dtype}")
    return a


@dataclasses.dataclass(frozen=True)
class Standardizer:
    """Feature scaling ``(x - mean) / std`` with statistics of the training data only.

    ``std`` is the population standard deviation (ddof=0, like scikit-learn's StandardScaler);
    a constant feature (std 0, or within rounding of 0) gets std 1 so it maps to 0, not NaN.
    NaN are missing values, as StandardScaler takes them: the statistics leave them out
    (``nanmean``/``nanstd``) and they stay NaN where they were, every other value scaled; a
    feature that is NaN in every sample gets NaN statistics and stays NaN.

    Attributes:
        mean: The per-feature mean of the training data (float64; its shape without the
            samples axis).
        std: The per-feature standard deviation (float64; 1 for a constant feature).
        axis: The samples axis of the data it was fit on (``fit``'s ``axis``); transform
            takes data of that rank (samples along ``axis``) or one sample of ``mean``'s shape.

    Examples:
        >>> import fnn
        >>> s = fnn.data.Standardizer.fit([[0.0, 5.0], [2.0, 5.0]])
        >>> s.transform([[1.0, 5.0], [4.0, 5.0]]).tolist()
        [[0.0, 0.0], [3.0, 0.0]]
        >>> s.inverse_transform([[3.0, 0.0]]).tolist()
        [[4.0, 5.0]]
    """

    mean: np.ndarray
    std: np.ndarray
    axis: int = 0

    @classmethod
    def fit(cls, x: Any, axis: int = 0) -> Standardizer:
        """Statistics of ``x`` along ``axis`` (the samples), computed in float64, NaN left out
        (a feature without any other value gets NaN statistics).

        Args:
            x: Training data, samples along ``axis``.
            axis: The samples axis.

        Returns:
            The fitted Standardizer.

        Raises:
            TypeError: For an ``axis`` that is not an int, or complex ``x``.
            ValueError: If ``x`` holds no sample, or an infinite value (scikit-learn's
                StandardScaler refuses it too: it would make its feature's mean infinite and
                every other value of it 0 or NaN), or finite values whose variance overflows
                float64 (~1e154: every value would scale to 0); for an ``axis`` out of range.
        """
        x = np.asarray(_not_complex("x", to_host(x)), dtype=np.float64)
        axis = integer("axis", axis)
        if x.ndim and not -x.ndim <= axis < x.ndim:
            raise ValueError(f"axis {axis} is out of range for x of shape {x.shape} (rank {x.ndim})")
        if x.ndim == 0 or x.shape[axis] == 0:
            raise ValueError(f"x must hold at least one sample to fit; got shape {x.shape}")
        if np.isinf(x).any():
            where = tuple(int(i) for i in np.argwhere(np.isinf(x))[0])
            raise ValueError(
                f"x holds {int(np.isinf(x).sum())} infinite value(s), the first at index {where}: "
                "the statistics would be infinite (NaN is taken as missing; inf is not)"
            )
        axis = axis % x.ndim
        # NaN is a missing value, left out of the statistics (StandardScaler's rule): with plain
        # means one NaN would turn its whole feature NaN, and fit would then report every row of
        # it instead of the one the data has. A feature with no value at all keeps NaN
        # statistics, so its NaN stay where they are.
        mean, std = _nan_mean_std(x, axis)
        if np.isinf(std).any():  # finite data whose squares overflow: every value would scale to 0
            where = tuple(int(i) for i in np.argwhere(np.isinf(std))[0])
            raise ValueError(
                f"the variance of x's feature {where} overflows float64 (values of ~1e154 or more): "
                "scale x down first (divide it by a power of ten)"
            )
        # Rounding leaves std ~ eps * |mean| for a constant column; treat that as zero.
        tiny = 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
        std = np.where(std <= tiny, 1.0, std)
        return cls(mean, std, axis)

    def transform(self, x: Any, dtype: Any = None) -> np.ndarray:
        """``(x - mean) / std`` in ``dtype`` (default: x's float dtype, else float32).

        Args:
            x: Data with the features the Standardizer was fit on: samples along its ``axis``,
                or one sample; fit with samples first, also more leading axes before the
                features (``(batch, time, features)``), and for one feature a flat ``(m,)``.
            dtype: The result's dtype (None: x's float dtype, else float32).

        Returns:
            The scaled data.

        Raises:
            ValueError: For data whose features differ from the fit's.
            TypeError: For complex data.
        """
        x, dtype, mean, std = self._features("x", x, dtype)
        return ((x - mean) / std).astype(dtype)

    def inverse_transform(self, z: Any, dtype: Any = None) -> np.ndarray:
        """``z * std + mean``, undoing :meth:`transform`.

        Args:
            z: Scaled data.
            dtype: The result's dtype (None: z's float dtype, else float32).

        Returns:
            The data in its original units.

        Raises:
            ValueError: For data whose features differ from the fit's.
        """
        z, dtype, mean, std = self._features("z", z, dtype)
        return (z * std + mean).astype(dtype)

    def _features(self, name: str, a: Any, dtype: Any) -> tuple[np.ndarray, Any, np.ndarray, np.ndarray]:
        """``a`` as an array, the result dtype (None: a's float dtype, else float32), and the
        mean and std shaped to broadcast against it: samples along ``axis`` as in the fit, or
        one sample of ``mean``'s shape."""
        a = _not_complex(name, to_host(a))
        if dtype is None:
            dtype = a.dtype if jnp.issubdtype(a.dtype, jnp.floating) else np.float32
        if a.ndim == self.mean.ndim + 1 and np.delete(a.shape, self.axis).tolist() == list(self.mean.shape):
            return a, dtype, np.expand_dims(self.mean, self.axis), np.expand_dims(self.std, self.axis)
        # one sample; or, samples first, more leading axes before the features (a batch of
        # sequences), or one feature's samples given flat (predictions (m,) undone by a scaler
        # fit on (n, 1) targets). The features themselves are never broadcast: 5 columns scaled
        # by statistics of 1 is a mistake (scikit-learn refuses it too).
        k = self.mean.ndim
        fits = a.shape == self.mean.shape or (
            self.axis == 0
            and ((a.ndim > k and a.shape[a.ndim - k :] == self.mean.shape) or (self.mean.shape == (1,) and a.ndim == 1))
        )
        if not fits:
            raise ValueError(
                f"{name} of shape {a.shape} does not fit the Standardizer: it was fit on features of "
                f"shape {self.mean.shape} with the samples along axis {self.axis}"
            )
        return a, dtype, self.mean, self.std


def standardize(x_train: Any, *others: Any) -> tuple[np.ndarray, ...]:
    """Scale ``x_train`` and each of ``others`` with statistics of ``x_train`` (see Standardizer).

    Returns the scaled arrays in the order given; keep ``Standardizer.fit(x_train)`` if you need
    the statistics afterwards. NaN are missing values (scikit-learn's StandardScaler): left out
    of the statistics, and NaN where they were in the results.

    Args:
        x_train: The training inputs, samples first (the statistics come from them).
        *others: Further arrays to scale the same way (validation, test).

    Returns:
        The scaled ``x_train`` and ``others``, in order.

    Raises:
        ValueError: If ``x_train`` holds no sample or an infinite value, or an array's feature
            count differs.
        TypeError: For complex data.

    Examples:
        >>> import fnn
        >>> x_tr, x_te = fnn.data.standardize([[0.0], [2.0]], [[4.0]])
        >>> x_tr.tolist(), x_te.tolist()
        ([[-1.0], [1.0]], [[3.0]])
    """
    s = Standardizer.fit(x_train)
    return tuple(s.transform(a) for a in (x_train, *others))
