"""The normalisation layers, each forward beside its hand-written backward: LayerNorm (mean and
variance over the last axis, learned scale and offset) and UnitNormalization (unit L2 norm).
Both compute in float32 at least and act within each sample.
"""

from __future__ import annotations

from typing import cast

import jax
import jax.numpy as jnp
import numpy as np

from fnn._dtypes import at_least_float32, promoted
from fnn._keys import key as check_key
from fnn._validate import boolean, real
from fnn._values import bound
from fnn.layers._base import LAYER_REPRS, Array, Layer, as_shape, check_dy, check_features
from fnn.layers._dense import sum_leading
from fnn.layers._errors import check_no_params

# --------------------------------------------------------------------------------------------
# LayerNorm: y = (x - mean) / sqrt(var + eps) * scale + offset, over the last axis
# --------------------------------------------------------------------------------------------


def _layernorm_init(center, scale, key, input_shape, dtype=jnp.float32):
    check_key("key", key)
    shape = as_shape(input_shape)
    params = {}
    if scale:
        params["scale"] = jnp.ones((shape[-1],), dtype)
    if center:
        params["offset"] = jnp.zeros((shape[-1],), dtype)
    return shape, params


def _layernorm_forward(epsilon, center, scale, params, x, *, key=None, train=False):
    want = [k for k, on in (("scale", scale), ("offset", center)) if on]
    keys = sorted(params.keys(), key=str) if hasattr(params, "keys") else None
    if keys != sorted(want):  # another layer's params (a Dense's w and b): said, not a KeyError
        shown = "{" + ", ".join(f"{k!r}: (features,)" for k in want) + "}"
        got = type(params).__name__ if keys is None else f"entries {keys}"
        raise ValueError(f"LayerNorm's params must be {shown}, got {got}: params of another network?")
    sizes = {k: tuple(np.shape(v)) for k, v in params.items() if k in ("scale", "offset")}
    if len(set(sizes.values())) > 1 or any(len(n) != 1 for n in sizes.values()):  # the params, not x, are off
        raise ValueError(f"LayerNorm's params must be vectors of one entry per feature, got shapes {sizes}")
    if sizes:
        check_features(x, next(iter(sizes.values()))[0])
    # statistics in the output's dtype (the input's promoted with the params', as Dense computes:
    # float32 inputs of float64 params in float64; integer inputs in the params' dtype), and in
    # float32 at least (as Keras): float16's (x - mu)^2 overflows at |x - mu| > 256
    out_dtype = jnp.result_type(x.dtype if jnp.issubdtype(x.dtype, jnp.inexact) else float, *params.values())
    x = x.astype(at_least_float32(out_dtype))
    mu = jnp.mean(x, axis=-1, keepdims=True)
    xc = x - mu
    r = jax.lax.rsqrt(jnp.mean(xc * xc, axis=-1, keepdims=True) + jnp.asarray(epsilon, x.dtype))
    xh = xc * r
    # broadcasts written out (jax_numpy_rank_promotion="raise" refuses (n, d) * (d,), as in Dense)
    y = _times(xh, params["scale"]) if scale else xh
    if center:
        offset = params["offset"]
        t = promoted(y, offset)  # float16 params meet float32 statistics: cast, not promoted
        y = y.astype(t) + jnp.broadcast_to(offset.astype(t), y.shape)
    return y.astype(out_dtype), (xh, r)


def _times(a: Array, v: Array) -> Array:
    """``a * v`` with ``v`` (d,) broadcast to ``a``'s (..., d) and both cast to the dtype standard
    promotion gives (float16 params against float32 statistics: explicit, as
    ``jax_numpy_dtype_promotion="strict"`` asks)."""
    t = promoted(a, v)
    return a.astype(t) * jnp.broadcast_to(v.astype(t), a.shape)


def _layernorm_backward(center, scale, params, cache, dy):
    xh, r = cache  # in the forward's statistics dtype (float32 at least)
    check_dy(dy, xh.shape)
    g = _times(dy.astype(xh.dtype), params["scale"]) if scale else dy.astype(xh.dtype)
    dx = r * (g - jnp.mean(g, axis=-1, keepdims=True) - xh * jnp.mean(g * xh, axis=-1, keepdims=True))
    grads = {}
    if scale:
        grads["scale"] = sum_leading(dy.astype(xh.dtype) * xh).astype(params["scale"].dtype)
    if center:
        grads["offset"] = sum_leading(dy).astype(params["offset"].dtype)
    return grads, dx.astype(dy.dtype)


def LayerNorm(*, epsilon: float = 1e-3, center: bool = True, scale: bool = True, name: str = "layer_norm") -> Layer:
    """Layer normalisation over the last axis (Keras defaults: ``epsilon=1e-3``, learned
    ``scale`` (ones) and ``offset`` (zeros)).

    With ``xh = (x - mu) * r``, ``r = 1/sqrt(var + eps)`` and ``g = dy * scale``, the backward is::

        dx = r * (g - mean(g) - xh * mean(g * xh))        dscale = sum_batch dy * xh
        doffset = sum_batch dy

    Args:
        epsilon: Added to the variance (> 0).
        center: Learn the offset.
        scale: Learn the scale.
        name: The layer's name.

    Returns:
        The :class:`Layer`.

    Raises:
        ValueError: For ``epsilon <= 0``.
        TypeError: For an ``epsilon`` that is not a number, a ``center`` or ``scale`` that is not
            a bool (``"False"`` would switch it on).
    """
    epsilon = real("LayerNorm epsilon", epsilon, lo=0.0, lo_open=True)
    center, scale = boolean("LayerNorm center", center), boolean("LayerNorm scale", scale)
    return Layer(
        bound(_layernorm_init, center, scale),
        bound(_layernorm_forward, epsilon, center, scale),
        bound(_layernorm_backward, center, scale),
        name,
    )


# --------------------------------------------------------------------------------------------
# UnitNormalization: y = x min(1 / ||x||, 1 / eps), the L2 norm over the sample's axes
# --------------------------------------------------------------------------------------------

_UNIT_EPSILON = 1e-12  # Keras's UnitNormalization: ops.normalize(x, order=2, epsilon=1e-12)


def _unit_axes(axis: tuple[int, ...], ndim: int) -> tuple[int, ...]:
    """``axis`` as non-negative axes of an input of ``ndim`` axes (the batch axis included),
    refusing the batch axis and axes out of range at trace time."""
    axes = tuple(a + ndim if a < 0 else a for a in axis)
    if ndim < 2:
        raise ValueError(f"UnitNormalization needs inputs (N, ...) with a sample's axis, got {ndim} axis")
    if any(not 1 <= a < ndim for a in axes) or len(set(axes)) != len(axes):
        raise ValueError(
            f"UnitNormalization axis {axis}: each must name one of the sample's axes 1..{ndim - 1} "
            f"(or -1..-{ndim - 1}) once, not the batch axis 0, for inputs of {ndim} axes"
        )
    return axes


def _unitnorm_init(axis, key, input_shape, dtype=jnp.float32):
    check_key("key", key)
    shape = as_shape(input_shape)
    _unit_axes(axis, len(shape) + 1)
    return shape, {}


def _unitnorm_forward(axis, params, x, *, key=None, train=False):
    check_no_params(params)
    axes = _unit_axes(axis, x.ndim)
    # in float32 at least (float16's sum of squares overflows past |x| ~ 256, and 1e12 does too);
    # integer inputs in the default float dtype, as LayerNorm's without params
    out_dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.inexact) else jnp.result_type(float)
    x = x.astype(at_least_float32(out_dtype))
    # min(1/||x||, 1/eps) as 1/sqrt(max(||x||^2, eps^2)): the same r, and jax.vjp of this
    # forward is finite at a zero sample (rsqrt's derivative at 0 is not), so autodiff agrees
    # with the backward below
    s = jnp.sum(x * x, axis=axes, keepdims=True)
    r = jax.lax.rsqrt(jnp.maximum(s, jnp.asarray(_UNIT_EPSILON**2, x.dtype)))
    y = x * r
    return y.astype(out_dtype), (y, r, s >= _UNIT_EPSILON**2)


def _unitnorm_backward(axis, params, cache, dy):
    y, r, normalised = cache  # float32 at least
    check_dy(dy, y.shape)
    axes = _unit_axes(axis, y.ndim)
    g = dy.astype(y.dtype)
    # where the norm is below eps, r is the constant 1/eps and only dx = r dy is left
    dx = r * (g - jnp.where(normalised, y, 0) * jnp.sum(g * y, axis=axes, keepdims=True))
    return {}, dx.astype(dy.dtype)


def UnitNormalization(axis: int | tuple[int, ...] = -1, *, name: str = "unit_normalization") -> Layer:
    """Scales each sample to unit L2 norm over ``axis``, as Keras's ``UnitNormalization``:
    ``y = x r`` with ``r = min(1 / ||x||, 1e12)`` (so a zero sample stays zero); no params. The
    embeddings layer for :func:`fnn.losses.circle` and :func:`fnn.losses.cosine_similarity`.

    The backward, with the sums over ``axis``::

        dx = r (dy - y sum(y dy))        (dx = r dy where ||x|| < 1e-12: r is then constant;
                                          jax.grad of the forward gives the same, where that
                                          of Keras's formula is NaN)

    Computed in float32 at least (float16 / bfloat16 inputs come back in their dtype); integer
    inputs give floats of the default dtype.

    Args:
        axis: The axis, or a tuple of axes, of the input ``(N, ...)`` to normalise over: the
            sample's axes (``-1``: the last), never the batch axis 0.
        name: The layer's name.

    Returns:
        The :class:`Layer`.

    Raises:
        TypeError: For an ``axis`` that is not an int or a tuple of ints.
        ValueError: For an empty ``axis`` or one naming axis 0 (at once), or an axis the input
            does not have or named twice (at ``init`` or the first call).

    Examples:
        >>> import fnn, jax, numpy as np
        >>> net = fnn.serial(fnn.Dense(3), fnn.UnitNormalization())
        >>> params = net.init(jax.random.PRNGKey(0), (2,))
        >>> y = net.apply(params, np.array([[1.0, 2.0], [3.0, -1.0]]))
        >>> np.round(np.linalg.norm(np.asarray(y), axis=1), 6).tolist()
        [1.0, 1.0]
    """
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise TypeError(f"UnitNormalization axis must be an int or a tuple of ints, got {axis!r}")
    axes = tuple(int(a) for a in axes)
    if not axes or 0 in axes or len(set(axes)) != len(axes):
        raise ValueError(
            f"UnitNormalization axis {axis!r}: give the sample's axes (e.g. -1) once each, not the batch axis 0"
        )
    return Layer(bound(_unitnorm_init, axes), bound(_unitnorm_forward, axes), bound(_unitnorm_backward, axes), name)


def _layernorm_repr(layer: Layer) -> str:
    epsilon, center, scale = cast(bound, layer.forward).args
    options = {"epsilon": (epsilon, 1e-3), "center": (center, True), "scale": (scale, True)}
    return f"LayerNorm({', '.join(f'{k}={v}' for k, (v, default) in options.items() if v != default)})"


def _unitnorm_repr(layer: Layer) -> str:
    (axes,) = cast(bound, layer.forward).args
    return "UnitNormalization()" if axes == (-1,) else f"UnitNormalization(axis={axes[0] if len(axes) == 1 else axes})"


LAYER_REPRS.update({
    _layernorm_forward: (_layernorm_repr, lambda layer: "layer_norm"),
    _unitnorm_forward: (_unitnorm_repr, lambda layer: "unit_normalization"),
})  # fmt: skip

# Each output row from its input row alone (see fnn.layers._core.rows_independent).
NORMALIZATION_ROW_RULES = {_layernorm_forward: _layernorm_backward, _unitnorm_forward: _unitnorm_backward}
