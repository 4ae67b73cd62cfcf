r"""Adam and its relatives as direction transforms (what they are, and the notation of their
formulas: ``_direction.py``): :func:`scale_by_adam` (AMSGrad included), :func:`scale_by_adamax`,
:func:`scale_by_nadam` and :func:`scale_by_radam`, all bias-corrected.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp

from fnn._validate import hyper
from fnn.optimizers._base import (
    Array,
    GradientTransformation,
    Params,
    cast,
    complements,
    count0,
    leafwise,
    safe_eps,
    scalar_dtype,
    zeros_like_moments,
)
from fnn.optimizers._direction import bound_transform, check_beta, check_eps


def _step(count: Array) -> Array:
    """``t`` (from 1) in the scalar dtype: bias corrections are computed there."""
    return (count + 1).astype(scalar_dtype())


class ScaleByAdamState(NamedTuple):
    """State of :func:`scale_by_adam`: ``count`` updates so far, moments ``mu`` (m) and ``nu`` (v),
    and ``nu_max`` (the running maximum of v with ``amsgrad``, else None); buffers shaped like the
    params, in float32 or wider.
    """

    count: Array  # type: ignore[assignment]  # the field shadows tuple.count, as in optax
    mu: Params
    nu: Params
    nu_max: Params | None


def _adam_init(b1, b2, eps, amsgrad, params) -> ScaleByAdamState:
    z = zeros_like_moments
    return ScaleByAdamState(count0(), z(params), z(params), z(params) if amsgrad else None)


def _adam_update(b1, b2, eps, amsgrad, updates, state, params=None):
    t = _step(state.count)
    inv_bc1 = 1 / (1 - jnp.asarray(b1, t.dtype) ** t)
    # sqrt(v_hat) = sqrt(v) / sqrt(1 - b2^t): multiply by the scalar reciprocal, so each
    # element pays one division, not two (XLA keeps IEEE division; it is Adam's hot spot).
    inv_bc2_sqrt = 1 / jnp.sqrt(1 - jnp.asarray(b2, t.dtype) ** t)

    def leaf(u, _, m, v, *vmax):
        b1_, b2_, c1, c2 = cast(u.dtype, b1, b2, inv_bc1, inv_bc2_sqrt)
        d1, d2 = complements(u.dtype, b1, b2)
        m = b1_ * m + d1 * u
        v = b2_ * v + d2 * u * u
        out = [m, v]
        if amsgrad:
            v = jnp.maximum(vmax[0], v)
            out.append(v)
        return (c1 * m / (jnp.sqrt(v) * c2 + safe_eps(eps, u.dtype)), *out)

    buffers = [state.mu, state.nu] + ([state.nu_max] if amsgrad else [])
    out, mu, nu, *vmax = leafwise(leaf, 1 + len(buffers), updates, None, *buffers)
    return out, ScaleByAdamState(state.count + 1, mu, nu, vmax[0] if amsgrad else None)


def scale_by_adam(
    b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, amsgrad: bool = False
) -> GradientTransformation:
    r"""Adam's direction (``torch.optim.Adam``), bias-corrected.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) u_t;\quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) u_t^2;\quad
        \hat v_t = \max(\hat v_{t-1}, v_t) \text{ (amsgrad) else } v_t;

        \text{out}_t = \frac{m_t}{1-\beta_1^t} \Big/ \Big(\sqrt{\hat v_t} / \sqrt{1-\beta_2^t} + \epsilon\Big)

    AMSGrad keeps the running maximum of the raw :math:`v_t` and bias-corrects it afterwards,
    as PyTorch does.

    Args:
        b1: β1 in [0, 1), the decay of the first moment.
        b2: β2 in [0, 1), the decay of the second moment.
        eps: ε >= 0, added to the denominator.
        amsgrad: Keep the running maximum of the second moment.

    Returns:
        The transform, a :class:`GradientTransformation`.

    Raises:
        ValueError: For a hyperparameter out of range.
        TypeError: For a hyperparameter of the wrong type.
    """
    return bound_transform(
        _adam_init, _adam_update, check_beta("b1", b1), check_beta("b2", b2), check_eps(eps), bool(amsgrad)
    )


class ScaleByAdamaxState(NamedTuple):
    """State of :func:`scale_by_adamax`: ``count``, ``mu`` (m) and ``nu`` (the infinity norm n)."""

    count: Array  # type: ignore[assignment]  # the field shadows tuple.count, as in optax
    mu: Params
    nu: Params


def _two_moments(state: Any, params: Params) -> Any:
    """``state(count=0, mu=0, nu=0)`` for the rules that keep two moment buffers."""
    return state(count0(), zeros_like_moments(params), zeros_like_moments(params))


def _adamax_init(b1, b2, eps, params) -> ScaleByAdamaxState:
    return _two_moments(ScaleByAdamaxState, params)


def _adamax_update(b1, b2, eps, updates, state, params=None):
    t = _step(state.count)
    inv_bc1 = 1 / (1 - jnp.asarray(b1, t.dtype) ** t)

    def leaf(u, _, m, n):
        b1_, b2_, c1 = cast(u.dtype, b1, b2, inv_bc1)
        (d1,) = complements(u.dtype, b1)
        m = b1_ * m + d1 * u
        n = jnp.maximum(b2_ * n, jnp.abs(u) + safe_eps(eps, u.dtype))
        return c1 * m / n, m, n

    out, mu, nu = leafwise(leaf, 3, updates, None, state.mu, state.nu)
    return out, ScaleByAdamaxState(state.count + 1, mu, nu)


def scale_by_adamax(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> GradientTransformation:
    r"""Adamax's direction (``torch.optim.Adamax``; ``nu`` is the infinity norm :math:`n_t`).

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) u_t;\quad
        n_t = \max(\beta_2 n_{t-1}, |u_t| + \epsilon);\quad
        \text{out}_t = \frac{m_t}{(1-\beta_1^t)\, n_t}

    Args:
        b1: β1 in [0, 1), the decay of the first moment.
        b2: β2 in [0, 1), the decay of the infinity norm.
        eps: ε >= 0, added to the denominator.

    Returns:
        The transform, a :class:`GradientTransformation`.

    Raises:
        ValueError: For a hyperparameter out of range.
        TypeError: For a hyperparameter of the wrong type.
    """
    return bound_transform(_adamax_init, _adamax_update, check_beta("b1", b1), check_beta("b2", b2), check_eps(eps))


class ScaleByNadamState(NamedTuple):
    """State of :func:`scale_by_nadam`: ``count``, ``mu`` (m), ``nu`` (v) and ``mu_product``
    (the product of the momentum schedule so far).
    """

    count: Array  # type: ignore[assignment]  # the field shadows tuple.count, as in optax
    mu: Params
    nu: Params
    mu_product: Array


def _nadam_init(b1, b2, eps, momentum_decay, params) -> ScaleByNadamState:
    z = zeros_like_moments
    return ScaleByNadamState(count0(), z(params), z(params), jnp.ones((), scalar_dtype()))


def _nadam_update(b1, b2, eps, momentum_decay, updates, state, params=None):
    t = _step(state.count)
    b1s, psi = jnp.asarray(b1, t.dtype), jnp.asarray(momentum_decay, t.dtype)
    mu_t = b1s * (1 - 0.5 * 0.96 ** (t * psi))
    mu_next = b1s * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
    mu_product = state.mu_product * mu_t
    coef_u = (1 - mu_t) / (1 - mu_product)
    coef_m = mu_next / (1 - mu_product * mu_next)
    inv_bc2_sqrt = 1 / jnp.sqrt(1 - jnp.asarray(b2, t.dtype) ** t)  # one division per element, as in adam

    def leaf(u, _, m, v):
        b1_, b2_, cu, cm, c2 = cast(u.dtype, b1, b2, coef_u, coef_m, inv_bc2_sqrt)
        d1, d2 = complements(u.dtype, b1, b2)
        m = b1_ * m + d1 * u
        v = b2_ * v + d2 * u * u
        return (cu * u + cm * m) / (jnp.sqrt(v) * c2 + safe_eps(eps, u.dtype)), m, v

    out, mu, nu = leafwise(leaf, 3, updates, None, state.mu, state.nu)
    return out, ScaleByNadamState(state.count + 1, mu, nu, mu_product.astype(state.mu_product.dtype))


def scale_by_nadam(
    b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, momentum_decay: float = 4e-3
) -> GradientTransformation:
    r"""NAdam's direction (``torch.optim.NAdam``, Dozat's momentum schedule).

    .. math::
        \mu_t = \beta_1 (1 - \tfrac12 0.96^{t\psi});\quad
        m_t = \beta_1 m_{t-1} + (1-\beta_1) u_t;\quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) u_t^2;

        \text{out}_t = \Big(\frac{\mu_{t+1} m_t}{1 - \prod_{i=1}^{t+1}\mu_i}
        + \frac{(1-\mu_t) u_t}{1 - \prod_{i=1}^{t}\mu_i}\Big) \Big/ \big(\sqrt{v_t / (1-\beta_2^t)} + \epsilon\big)

    with :math:`\psi` = momentum_decay; ``mu_product`` holds :math:`\prod_{i\le t}\mu_i`.

    Args:
        b1: β1 in [0, 1), the decay of the first moment.
        b2: β2 in [0, 1), the decay of the second moment.
        eps: ε >= 0, added to the denominator.
        momentum_decay: ψ >= 0.

    Returns:
        The transform, a :class:`GradientTransformation`.

    Raises:
        ValueError: For a hyperparameter out of range.
        TypeError: For a hyperparameter of the wrong type.
    """
    psi = hyper("momentum_decay", momentum_decay, lo=0.0)
    return bound_transform(_nadam_init, _nadam_update, check_beta("b1", b1), check_beta("b2", b2), check_eps(eps), psi)


class ScaleByRadamState(NamedTuple):
    """State of :func:`scale_by_radam`: ``count``, ``mu`` (m) and ``nu`` (v)."""

    count: Array  # type: ignore[assignment]  # the field shadows tuple.count, as in optax
    mu: Params
    nu: Params


def _radam_init(b1, b2, eps, params) -> ScaleByRadamState:
    return _two_moments(ScaleByRadamState, params)


# The Taylor coefficients of 2/d - 1 + 2/log(1 - d) = d/6 + d^2/12 + 19 d^3/360 + ... (d = 1 - β2).
_RHO_GAP = (
    0.16666666666666667, 0.083333333333333333, 0.052777777777777778, 0.0375, 0.028538359788359788,
    0.02273478835978836, 0.018713073192239859, 0.015785108024691358, 0.013571699969269414, 0.011848112824675325,
)  # fmt: skip


def _radam_rho(t: Array, b2: Array) -> tuple[Array, Array, Array]:
    r"""RAdam's :math:`\rho_\infty`, :math:`\rho_t` and :math:`1 - \beta_2^t`, in ``t``'s dtype.

    In float64 they are torch's expressions, which torch evaluates in double. In float32 the two
    terms of :math:`\rho_t`, each about :math:`2/(1-\beta_2)`, cancel: at :math:`\beta_2` = 0.9999
    the difference would keep no correct digit and flip the rectification on and off at the wrong
    steps. There, with :math:`d = 1-\beta_2`, :math:`\nu = -\log\beta_2` and :math:`x = t\nu`,

    .. math::
        \rho_t = \Big(\frac{2}{d} - 1 - \frac{2}{\nu}\Big) + \frac{2}{\nu}\Big(1 - \frac{x}{e^x - 1}\Big),

    the first term by its Taylor series for :math:`d < 1/4`, the second by its own for
    :math:`x < 1/2` (:math:`t(1 - x/6 + x^3/360 - \dots)`, from the Bernoulli numbers), and
    :math:`1 - \beta_2^t = -\mathrm{expm1}(-x)`: a few ulps from the exact values, where the
    plain expressions lose up to all of their digits.
    """
    rho_inf = 2 / (1 - b2) - 1
    if t.dtype == jnp.float64:
        return rho_inf, rho_inf - 2 * t * b2**t / (1 - b2**t), 1 - b2**t
    d = 1 - b2
    nu = -jnp.log1p(-d)  # inf at β2 = 0, where ρ_t = ρ_∞ = 1
    x = t * nu
    series = jnp.zeros_like(d)
    for c in reversed(_RHO_GAP):
        series = (series + c) * d
    gap = jnp.where(d < 0.25, series, rho_inf - 2 / nu)
    xs = jnp.minimum(x, 0.5)
    x2 = xs * xs
    near = t * (1 - xs / 6 * (1 - x2 / 60 * (1 - x2 / 42 * (1 - x2 / 40 * (1 - x2 / 39.6)))))
    xf = jnp.where(jnp.isinf(x) | (x < 0.5), 1.0, x)  # keeps the discarded branches finite
    far = jnp.where(jnp.isinf(x), 0.0, 2 / nu * (1 - xf / jnp.expm1(xf)))
    return rho_inf, gap + jnp.where(x < 0.5, near, far), -jnp.expm1(-x)


def _radam_update(b1, b2, eps, updates, state, params=None):
    t = _step(state.count)
    rho_inf, rho_t, bc2 = _radam_rho(t, jnp.asarray(b2, t.dtype))
    rectify = rho_t > 5
    # The guard keeps the (discarded) unrectified branch free of sqrt of a negative number.
    rho = jnp.where(rectify, rho_t, 5.0)
    r_t = jnp.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
    inv_bc1 = 1 / (1 - jnp.asarray(b1, t.dtype) ** t)

    def leaf(u, _, m, v):
        b1_, b2_, c1, r, c2 = cast(u.dtype, b1, b2, inv_bc1, r_t, jnp.sqrt(bc2))
        d1, d2 = complements(u.dtype, b1, b2)
        m = b1_ * m + d1 * u
        v = b2_ * v + d2 * u * u
        adaptive = jnp.where(rectify, r * c2 / (jnp.sqrt(v) + safe_eps(eps, u.dtype)), 1.0)
        return c1 * m * adaptive, m, v

    out, mu, nu = leafwise(leaf, 3, updates, None, state.mu, state.nu)
    return out, ScaleByRadamState(state.count + 1, mu, nu)


def scale_by_radam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> GradientTransformation:
    r"""RAdam's direction (``torch.optim.RAdam``: variance rectification, threshold 5).

    .. math::
        m_t, v_t \text{ as in Adam};\quad \hat m_t = m_t / (1-\beta_1^t);\quad
        \rho_\infty = \frac{2}{1-\beta_2} - 1;\quad
        \rho_t = \rho_\infty - \frac{2t\beta_2^t}{1-\beta_2^t};

        \text{out}_t = \hat m_t\, r_t\, \frac{\sqrt{1-\beta_2^t}}{\sqrt{v_t} + \epsilon} \text{ if } \rho_t > 5,
        \; r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}};
        \quad \hat m_t \text{ otherwise}

    Args:
        b1: β1 in [0, 1), the decay of the first moment.
        b2: β2 in [0, 1), the decay of the second moment.
        eps: ε >= 0, added to the denominator.

    Returns:
        The transform, a :class:`GradientTransformation`.

    Raises:
        ValueError: For a hyperparameter out of range.
        TypeError: For a hyperparameter of the wrong type.
    """
    return bound_transform(_radam_init, _radam_update, check_beta("b1", b1), check_beta("b2", b2), check_eps(eps))
