r"""Direction transforms: the per-element rules of the adaptive optimizers, each as
``torch.optim`` writes it, without the learning rate (that is :func:`scale_by_learning_rate`,
the last link of every chain) and without weight decay (:func:`add_decayed_weights`).

In the formulas :math:`u_t` is the incoming update (the gradient, or whatever the previous
link made of it), :math:`t` counts updates from 1 and the output is the direction the
learning rate then scales. Buffers are kept in float32 or wider.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp

from fnn._validate import hyper
from fnn._values import bound
from fnn.optimizers._base import (
    Array,
    GradientTransformation,
    Params,
    cast,
    count0,
    leafwise,
    safe_eps,
    scalar_dtype,
    zeros_like_moments,
)


def _beta(name: str, value: Any) -> Any:
    return hyper(name, value, 0.0, 1.0, hi_open=True)


def _eps(value: Any) -> Any:
    return hyper("eps", value, lo=0.0)


def _step(count: Array) -> Array:
    """``t`` (from 1) in the scalar dtype: bias corrections are computed there."""
    return (count + 1).astype(scalar_dtype())


def _transform(init, update, *config: Any) -> GradientTransformation:
    return GradientTransformation(bound(init, *config), bound(update, *config))


# ---------------------------------------------------------------------------------------------
# Adam and its relatives.


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
        m = b1_ * m + (1 - b1_) * u
        v = b2_ * v + (1 - b2_) * u * u
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
    return _transform(_adam_init, _adam_update, _beta("b1", b1), _beta("b2", b2), _eps(eps), bool(amsgrad))


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
        m = b1_ * m + (1 - b1_) * u
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
    return _transform(_adamax_init, _adamax_update, _beta("b1", b1), _beta("b2", b2), _eps(eps))


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
        m = b1_ * m + (1 - b1_) * u
        v = b2_ * v + (1 - b2_) * u * u
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
    return _transform(_nadam_init, _nadam_update, _beta("b1", b1), _beta("b2", b2), _eps(eps), psi)


class ScaleByRadamState(NamedTuple):
    """State of :func:`scale_by_radam`: ``count``, ``mu`` (m) and ``nu`` (v)."""

    count: Array  # type: ignore[assignment]  # the field shadows tuple.count, as in optax
    mu: Params
    nu: Params


def _radam_init(b1, b2, eps, params) -> ScaleByRadamState:
    return _two_moments(ScaleByRadamState, params)


def _radam_update(b1, b2, eps, updates, state, params=None):
    t = _step(state.count)
    b2s = jnp.asarray(b2, t.dtype)
    bc2 = 1 - b2s**t
    rho_inf = 2 / (1 - b2s) - 1
    rho_t = rho_inf - 2 * t * b2s**t / bc2
    rectify = rho_t > 5
    # The guard keeps the (discarded) unrectified branch free of sqrt of a negative number.
    rho = jnp.where(rectify, rho_t, 5.0)
    r_t = jnp.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
    inv_bc1 = 1 / (1 - jnp.asarray(b1, t.dtype) ** t)

    def leaf(u, _, m, v):
        b1_, b2_, c1, r, c2 = cast(u.dtype, b1, b2, inv_bc1, r_t, jnp.sqrt(bc2))
        m = b1_ * m + (1 - b1_) * u
        v = b2_ * v + (1 - b2_) * u * u
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
    return _transform(_radam_init, _radam_update, _beta("b1", b1), _beta("b2", b2), _eps(eps))


# ---------------------------------------------------------------------------------------------
# Second-moment rules without momentum.


class ScaleByRmsState(NamedTuple):
    """State of :func:`scale_by_rms`: ``nu`` (the mean square) and ``mu`` (the mean, when centered; else None)."""

    nu: Params
    mu: Params | None


def _rms_init(decay, eps, centered, params) -> ScaleByRmsState:
    return ScaleByRmsState(zeros_like_moments(params), zeros_like_moments(params) if centered else None)


def _rms_update(decay, eps, centered, updates, state, params=None):
    def leaf(u, _, v, *gbar):
        (a,) = cast(u.dtype, decay)
        v = a * v + (1 - a) * u * u
        out = [v]
        if centered:
            g = a * gbar[0] + (1 - a) * u
            out.append(g)
            v = v - g * g
        return (u / (jnp.sqrt(v) + safe_eps(eps, u.dtype)), *out)

    buffers = [state.nu] + ([state.mu] if centered else [])
    out, nu, *mu = leafwise(leaf, 1 + len(buffers), updates, None, *buffers)
    return out, ScaleByRmsState(nu, mu[0] if centered else None)


def scale_by_rms(decay: float = 0.99, eps: float = 1e-8, centered: bool = False) -> GradientTransformation:
    r"""RMSprop's direction (``torch.optim.RMSprop``; ``decay`` is torch's ``alpha``).

    .. math::
        v_t = \alpha v_{t-1} + (1-\alpha) u_t^2;\quad
        \tilde v_t = v_t - \bar u_t^2,\; \bar u_t = \alpha \bar u_{t-1} + (1-\alpha) u_t
        \text{ (centered) else } v_t;\quad
        \text{out}_t = u_t / (\sqrt{\tilde v_t} + \epsilon)

    Args:
        decay: α in [0, 1], the decay of the mean square.
        eps: ε >= 0, added to the denominator.
        centered: Subtract the square of the running mean of ``u``.

    Returns:
        The transform, a :class:`GradientTransformation`.

    Raises:
        ValueError: For a hyperparameter out of range.
        TypeError: For a hyperparameter of the wrong type.
    """
    return _transform(_rms_init, _rms_update, hyper("decay", decay, 0.0, 1.0), _eps(eps), bool(centered))


class ScaleByAdagradState(NamedTuple):
    """State of :func:`scale_by_adagrad`: ``count`` and ``sum`` (the sum of squares s)."""

    count: Array  # type: ignore[assignment]  # the field shadows tuple.count, as in optax
    sum: Params


def _adagrad_init(initial_accumulator_value, eps, lr_decay, params) -> ScaleByAdagradState:
    return ScaleByAdagradState(count0(), zeros_like_moments(params, initial_accumulator_value))


def _adagrad_update(initial_accumulator_value, eps, lr_decay, updates, state, params=None):
    decay = 1 / (1 + state.count.astype(scalar_dtype()) * jnp.asarray(lr_decay, scalar_dtype()))

    def leaf(u, _, s):
        (d,) = cast(u.dtype, decay)
        s = s + u * u
        return d * u / (jnp.sqrt(s) + safe_eps(eps, u.dtype)), s

    out, s = leafwise(leaf, 2, updates, None, state.sum)
    return out, ScaleByAdagradState(state.count + 1, s)


def scale_by_adagrad(
    initial_accumulator_value: float = 0.0, eps: float = 1e-10, lr_decay: float = 0.0
) -> GradientTransformation:
    r"""Adagrad's direction (``torch.optim.Adagrad``), its ``lr_decay`` included.

    .. math::
        s_t = s_{t-1} + u_t^2 \;(s_0 = \text{initial\_accumulator\_value});\quad
        \text{out}_t = \frac{u_t}{(1 + (t-1)\eta)(\sqrt{s_t} + \epsilon)}

    with :math:`\eta` = lr_decay.

    Args:
        initial_accumulator_value: s_0 >= 0.
        eps: ε >= 0, added to the denominator.
        lr_decay: η >= 0.

    Returns:
        The transform, a :class:`GradientTransformation`.

    Raises:
        ValueError: For a hyperparameter out of range.
        TypeError: For a hyperparameter of the wrong type.
    """
    return _transform(
        _adagrad_init,
        _adagrad_update,
        hyper("initial_accumulator_value", initial_accumulator_value, lo=0.0),
        _eps(eps),
        hyper("lr_decay", lr_decay, lo=0.0),
    )


class ScaleByAdadeltaState(NamedTuple):
    """State of :func:`scale_by_adadelta`: ``nu`` (v, of the updates) and ``delta`` (d, of the steps)."""

    nu: Params
    delta: Params


def _adadelta_init(rho, eps, params) -> ScaleByAdadeltaState:
    return ScaleByAdadeltaState(zeros_like_moments(params), zeros_like_moments(params))


def _adadelta_update(rho, eps, updates, state, params=None):
    def leaf(u, _, v, d):
        (r,) = cast(u.dtype, rho)
        e = safe_eps(eps, u.dtype)
        v = r * v + (1 - r) * u * u
        dx = jnp.sqrt(d + e) / jnp.sqrt(v + e) * u
        return dx, v, r * d + (1 - r) * dx * dx

    out, nu, delta = leafwise(leaf, 3, updates, None, state.nu, state.delta)
    return out, ScaleByAdadeltaState(nu, delta)


def scale_by_adadelta(rho: float = 0.9, eps: float = 1e-6) -> GradientTransformation:
    r"""Adadelta's direction (``torch.optim.Adadelta``).

    .. math::
        v_t = \rho v_{t-1} + (1-\rho) u_t^2;\quad
        \text{out}_t = \Delta_t = \frac{\sqrt{d_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}} u_t;\quad
        d_t = \rho d_{t-1} + (1-\rho) \Delta_t^2

    Args:
        rho: ρ in [0, 1], the decay of both running averages.
        eps: ε >= 0, added to the denominator.

    Returns:
        The transform, a :class:`GradientTransformation`.

    Raises:
        ValueError: For a hyperparameter out of range.
        TypeError: For a hyperparameter of the wrong type.
    """
    return _transform(_adadelta_init, _adadelta_update, hyper("rho", rho, 0.0, 1.0), _eps(eps))


# ---------------------------------------------------------------------------------------------
# Sign-based rules.


class ScaleByRpropState(NamedTuple):
    """State of :func:`scale_by_rprop`: ``count``, ``prev`` (the previous update) and ``step_size`` (η per element)."""

    count: Array  # type: ignore[assignment]  # the field shadows tuple.count, as in optax
    prev: Params
    step_size: Params


def _rprop_init(learning_rate, eta_minus, eta_plus, step_size_min, step_size_max, params) -> ScaleByRpropState:
    return ScaleByRpropState(count0(), zeros_like_moments(params), zeros_like_moments(params))


def _rprop_update(learning_rate, eta_minus, eta_plus, step_size_min, step_size_max, updates, state, params=None):
    first = state.count == 0

    def leaf(u, _, prev, step):
        lr, em, ep, lo, hi = cast(u.dtype, learning_rate, eta_minus, eta_plus, step_size_min, step_size_max)
        step = jnp.where(first, lr, step)
        agree = u * prev
        step = jnp.clip(jnp.where(agree > 0, step * ep, jnp.where(agree < 0, step * em, step)), lo, hi)
        u = jnp.where(agree < 0, 0.0, u)
        return step * jnp.sign(u), u, step

    out, prev, step = leafwise(leaf, 3, updates, None, state.prev, state.step_size)
    return out, ScaleByRpropState(state.count + 1, prev, step)


def scale_by_rprop(
    learning_rate: float = 1e-2,
    eta_minus: float = 0.5,
    eta_plus: float = 1.2,
    step_size_min: float = 1e-6,
    step_size_max: float = 50.0,
) -> GradientTransformation:
    r"""Rprop's step (``torch.optim.Rprop``): a per-element step size times the sign.

    .. math::
        \eta_t = \mathrm{clip}(\eta_{t-1}\eta_+, \Gamma_{min}, \Gamma_{max}) \text{ if } u_{t-1} u_t > 0;\;
        \mathrm{clip}(\eta_{t-1}\eta_-, \Gamma_{min}, \Gamma_{max}) \text{ and } u_t \leftarrow 0
        \text{ if } u_{t-1} u_t < 0;\; \eta_{t-1} \text{ otherwise};\quad
        \text{out}_t = \eta_t\,\mathrm{sign}(u_t)

    with :math:`\eta_0` = learning_rate (it only seeds the step sizes: it is read at the first
    update, as in PyTorch). The output is a positive step: negate it (``scale(-1)``) to descend.

    Args:
        learning_rate: η_0 >= 0, the initial step size.
        eta_minus: η- in (0, 1), the factor that shrinks a step size on a sign flip.
        eta_plus: η+ > 1, the factor that grows it while the sign holds.
        step_size_min: Γmin >= 0.
        step_size_max: Γmax >= Γmin.

    Returns:
        The transform, a :class:`GradientTransformation`.

    Raises:
        ValueError: For a hyperparameter out of range.
        TypeError: For a hyperparameter of the wrong type.
    """
    lo = hyper("step_size_min", step_size_min, lo=0.0)
    return _transform(
        _rprop_init,
        _rprop_update,
        hyper("learning_rate", learning_rate, lo=0.0),
        hyper("eta_minus", eta_minus, 0.0, 1.0, lo_open=True, hi_open=True),
        hyper("eta_plus", eta_plus, lo=1.0, lo_open=True),
        lo,
        hyper("step_size_max", step_size_max, lo=lo if isinstance(lo, float) else 0.0),
    )


class ScaleByLionState(NamedTuple):
    """State of :func:`scale_by_lion`: ``mu`` (the momentum m)."""

    mu: Params


def _lion_init(b1, b2, params) -> ScaleByLionState:
    return ScaleByLionState(zeros_like_moments(params))


def _lion_update(b1, b2, updates, state, params=None):
    def leaf(u, _, m):
        b1_, b2_ = cast(u.dtype, b1, b2)
        return jnp.sign(b1_ * m + (1 - b1_) * u), b2_ * m + (1 - b2_) * u

    out, mu = leafwise(leaf, 2, updates, None, state.mu)
    return out, ScaleByLionState(mu)


def scale_by_lion(b1: float = 0.9, b2: float = 0.99) -> GradientTransformation:
    r"""Lion's direction (Chen et al. 2023, Algorithm 2).

    .. math::
        \text{out}_t = \mathrm{sign}(\beta_1 m_{t-1} + (1-\beta_1) u_t);\quad
        m_t = \beta_2 m_{t-1} + (1-\beta_2) u_t

    Args:
        b1: β1 in [0, 1), the interpolation whose sign is the update.
        b2: β2 in [0, 1), the decay of the momentum.

    Returns:
        The transform, a :class:`GradientTransformation`.

    Raises:
        ValueError: For a hyperparameter out of range.
        TypeError: For a hyperparameter of the wrong type.
    """
    return _transform(_lion_init, _lion_update, _beta("b1", b1), _beta("b2", b2))
