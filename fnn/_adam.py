r"""The Adam family of :mod:`fnn.optimizers`: adam, adamw, adamax, nadam, radam.

Each keeps exponential moving averages of the gradient (``mu``) and of its square or its
magnitude (``nu``) with ``torch.optim``'s bias corrections; the rules are written out in each
docstring. Import them from :mod:`fnn.optimizers` (this module is private).
"""
from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from fnn.transforms import (
    Array, GradientTransformation, Params, Schedule, _beta, _cast, _count0, _eps, _Hyper, _l2,
    _leafwise, _need_params, _on, _real, _scalar_dtype, _zeros,
)

class AdamState(NamedTuple):
    count: Array
    mu: Params
    nu: Params
    nu_max: Params | None
    hparams: dict[str, Array]


def _adam(name: str, decoupled: bool, learning_rate, b1, b2, eps, weight_decay, amsgrad) -> GradientTransformation:
    hyper = _Hyper(learning_rate, b1=_beta("b1", b1), b2=_beta("b2", b2), eps=_real("eps", eps, lo=0.0),
                   **_on(weight_decay=_real("weight_decay", weight_decay, lo=0.0)))
    wd = "weight_decay" in hyper.values

    def init(params):
        return AdamState(_count0(), _zeros(params), _zeros(params), _zeros(params) if amsgrad else None,
                         hyper.init())

    def update(grads, state, params=None):
        hp = state.hparams
        if wd:
            _need_params(params, name, "weight_decay")
        t = (state.count + 1).astype(hp["b1"].dtype)
        step_size = hp["learning_rate"] / (1 - hp["b1"] ** t)
        # sqrt(v_hat) = sqrt(v) / sqrt(1 - b2^t): multiply by the scalar reciprocal, so each
        # element pays one division, not two (XLA keeps IEEE division; it is Adam's hot spot).
        inv_bc2_sqrt = 1 / jnp.sqrt(1 - hp["b2"] ** t)

        def leaf(g, p, m, v, *vmax):
            b1_, b2_, ss, inv_bc = _cast(g.dtype, hp["b1"], hp["b2"], step_size, inv_bc2_sqrt)
            u = 0.0
            if decoupled and wd:
                u = -(hp["learning_rate"] * hp["weight_decay"]).astype(g.dtype) * p
            elif wd:
                g = _l2(g, p, hp)
            m = b1_ * m + (1 - b1_) * g
            v = b2_ * v + (1 - b2_) * g * g
            out = [m, v]
            if amsgrad:
                v = jnp.maximum(vmax[0], v)
                out.append(v)
            return (u - ss * m / (jnp.sqrt(v) * inv_bc + _eps(hp["eps"], g.dtype)), *out)

        buffers = [state.mu, state.nu] + ([state.nu_max] if amsgrad else [])
        updates, mu, nu, *vmax = _leafwise(leaf, 1 + len(buffers), grads, params, *buffers)
        count = state.count + 1
        return updates, AdamState(count, mu, nu, vmax[0] if amsgrad else None, hyper.advance(hp, count))

    return GradientTransformation(init, update)


def adam(learning_rate: float | Schedule = 1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
         weight_decay: float = 0.0, amsgrad: bool = False) -> GradientTransformation:
    r"""Adam, ``torch.optim.Adam`` (L2 weight decay joins the gradient).

    .. math::
        g_t \leftarrow g_t + \lambda\theta_{t-1};\quad
        m_t \leftarrow \beta_1 m_{t-1} + (1-\beta_1) g_t;\quad
        v_t \leftarrow \beta_2 v_{t-1} + (1-\beta_2) g_t^2;\quad
        \hat v_t = \max(\hat v_{t-1}, v_t) \text{ (amsgrad) else } v_t;

        \theta_t \leftarrow \theta_{t-1} - \frac{\gamma}{1-\beta_1^t}\,
        m_t \Big/ \Big(\sqrt{\hat v_t} / \sqrt{1-\beta_2^t} + \epsilon\Big)

    AMSGrad keeps the running maximum of the raw :math:`v_t` and bias-corrects it afterwards, as
    PyTorch does.
    """
    return _adam("adam", False, learning_rate, b1, b2, eps, weight_decay, amsgrad)


def adamw(learning_rate: float | Schedule = 1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          weight_decay: float = 1e-2, amsgrad: bool = False) -> GradientTransformation:
    r"""AdamW, ``torch.optim.AdamW``: Adam with decoupled weight decay.

    .. math::
        \theta_t \leftarrow \theta_{t-1} - \gamma\lambda\theta_{t-1}
        - \frac{\gamma}{1-\beta_1^t}\, m_t \Big/ \Big(\sqrt{\hat v_t} / \sqrt{1-\beta_2^t} + \epsilon\Big)

    with :math:`m_t, \hat v_t` as in ``adam`` computed from the raw gradient.
    """
    return _adam("adamw", True, learning_rate, b1, b2, eps, weight_decay, amsgrad)


class AdamaxState(NamedTuple):
    count: Array
    mu: Params
    nu: Params
    hparams: dict[str, Array]


def adamax(learning_rate: float | Schedule = 2e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
           weight_decay: float = 0.0) -> GradientTransformation:
    r"""Adamax, ``torch.optim.Adamax`` (``nu`` is the infinity norm :math:`u_t`).

    .. math::
        g_t \leftarrow g_t + \lambda\theta_{t-1};\quad
        m_t \leftarrow \beta_1 m_{t-1} + (1-\beta_1) g_t;\quad
        u_t \leftarrow \max(\beta_2 u_{t-1}, |g_t| + \epsilon);\quad
        \theta_t \leftarrow \theta_{t-1} - \frac{\gamma}{1-\beta_1^t}\, m_t / u_t
    """
    hyper = _Hyper(learning_rate, b1=_beta("b1", b1), b2=_beta("b2", b2), eps=_real("eps", eps, lo=0.0),
                   **_on(weight_decay=_real("weight_decay", weight_decay, lo=0.0)))
    wd = "weight_decay" in hyper.values

    def init(params):
        return AdamaxState(_count0(), _zeros(params), _zeros(params), hyper.init())

    def update(grads, state, params=None):
        hp = state.hparams
        if wd:
            _need_params(params, "adamax", "weight_decay")
        t = (state.count + 1).astype(hp["b1"].dtype)
        step_size = hp["learning_rate"] / (1 - hp["b1"] ** t)

        def leaf(g, p, m, u):
            b1_, b2_, ss = _cast(g.dtype, hp["b1"], hp["b2"], step_size)
            g = _l2(g, p, hp)
            m = b1_ * m + (1 - b1_) * g
            u = jnp.maximum(b2_ * u, jnp.abs(g) + _eps(hp["eps"], g.dtype))
            return -ss * m / u, m, u

        updates, m, u = _leafwise(leaf, 3, grads, params, state.mu, state.nu)
        count = state.count + 1
        return updates, AdamaxState(count, m, u, hyper.advance(hp, count))

    return GradientTransformation(init, update)


class NadamState(NamedTuple):
    count: Array
    mu: Params
    nu: Params
    mu_product: Array
    hparams: dict[str, Array]


def nadam(learning_rate: float | Schedule = 2e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          weight_decay: float = 0.0, momentum_decay: float = 4e-3) -> GradientTransformation:
    r"""NAdam, ``torch.optim.NAdam`` (Dozat's momentum schedule).

    .. math::
        g_t \leftarrow g_t + \lambda\theta_{t-1};\quad
        \mu_t = \beta_1 (1 - \tfrac12 0.96^{t\psi});\quad
        m_t \leftarrow \beta_1 m_{t-1} + (1-\beta_1) g_t;\quad
        v_t \leftarrow \beta_2 v_{t-1} + (1-\beta_2) g_t^2;

        \hat m_t = \frac{\mu_{t+1} m_t}{1 - \prod_{i=1}^{t+1}\mu_i} + \frac{(1-\mu_t) g_t}{1 - \prod_{i=1}^{t}\mu_i};\quad
        \theta_t \leftarrow \theta_{t-1} - \gamma \hat m_t \big/ \big(\sqrt{v_t / (1-\beta_2^t)} + \epsilon\big)

    with :math:`\psi` = momentum_decay; ``mu_product`` holds :math:`\prod_{i\le t}\mu_i`.
    """
    hyper = _Hyper(learning_rate, b1=_beta("b1", b1), b2=_beta("b2", b2), eps=_real("eps", eps, lo=0.0),
                   momentum_decay=_real("momentum_decay", momentum_decay, lo=0.0),
                   **_on(weight_decay=_real("weight_decay", weight_decay, lo=0.0)))
    wd = "weight_decay" in hyper.values

    def init(params):
        return NadamState(_count0(), _zeros(params), _zeros(params), jnp.ones((), _scalar_dtype()), hyper.init())

    def update(grads, state, params=None):
        hp = state.hparams
        if wd:
            _need_params(params, "nadam", "weight_decay")
        b1_, psi = hp["b1"], hp["momentum_decay"]
        t = (state.count + 1).astype(b1_.dtype)
        mu_t = b1_ * (1 - 0.5 * 0.96 ** (t * psi))
        mu_next = b1_ * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
        mu_product = state.mu_product * mu_t
        coef_g = hp["learning_rate"] * (1 - mu_t) / (1 - mu_product)
        coef_m = hp["learning_rate"] * mu_next / (1 - mu_product * mu_next)
        inv_bc2_sqrt = 1 / jnp.sqrt(1 - hp["b2"] ** t)  # one division per element, as in adam

        def leaf(g, p, m, v):
            b1c, b2c, cg, cm, inv_bc = _cast(g.dtype, b1_, hp["b2"], coef_g, coef_m, inv_bc2_sqrt)
            g = _l2(g, p, hp)
            m = b1c * m + (1 - b1c) * g
            v = b2c * v + (1 - b2c) * g * g
            denom = jnp.sqrt(v) * inv_bc + _eps(hp["eps"], g.dtype)
            return -(cg * g + cm * m) / denom, m, v

        updates, m, v = _leafwise(leaf, 3, grads, params, state.mu, state.nu)
        count = state.count + 1
        return updates, NadamState(count, m, v, mu_product.astype(state.mu_product.dtype),
                                   hyper.advance(hp, count))

    return GradientTransformation(init, update)


class RadamState(NamedTuple):
    count: Array
    mu: Params
    nu: Params
    hparams: dict[str, Array]


def radam(learning_rate: float | Schedule = 1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          weight_decay: float = 0.0) -> GradientTransformation:
    r"""RAdam, ``torch.optim.RAdam`` (variance rectification, threshold 5).

    .. math::
        g_t \leftarrow g_t + \lambda\theta_{t-1};\quad
        m_t, v_t \text{ as in Adam};\quad \hat m_t = m_t / (1-\beta_1^t);\quad
        \rho_\infty = \frac{2}{1-\beta_2} - 1;\quad
        \rho_t = \rho_\infty - \frac{2t\beta_2^t}{1-\beta_2^t};

        \text{if } \rho_t > 5:\;
        r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}},\;
        l_t = \frac{\sqrt{1-\beta_2^t}}{\sqrt{v_t} + \epsilon},\;
        \theta_t \leftarrow \theta_{t-1} - \gamma \hat m_t r_t l_t;\quad
        \text{else } \theta_t \leftarrow \theta_{t-1} - \gamma \hat m_t
    """
    hyper = _Hyper(learning_rate, b1=_beta("b1", b1), b2=_beta("b2", b2), eps=_real("eps", eps, lo=0.0),
                   **_on(weight_decay=_real("weight_decay", weight_decay, lo=0.0)))
    wd = "weight_decay" in hyper.values

    def init(params):
        return RadamState(_count0(), _zeros(params), _zeros(params), hyper.init())

    def update(grads, state, params=None):
        hp = state.hparams
        if wd:
            _need_params(params, "radam", "weight_decay")
        b2_ = hp["b2"]
        t = (state.count + 1).astype(b2_.dtype)
        bc2 = 1 - b2_ ** t
        rho_inf = 2 / (1 - b2_) - 1
        rho_t = rho_inf - 2 * t * b2_ ** t / bc2
        rectify = rho_t > 5
        # The guard keeps the (discarded) unrectified branch free of sqrt of a negative number.
        rho_safe = jnp.where(rectify, rho_t, 5.0)
        r_t = jnp.sqrt((rho_safe - 4) * (rho_safe - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_safe))
        step_size = hp["learning_rate"] / (1 - hp["b1"] ** t)

        def leaf(g, p, m, v):
            b1c, b2c, ss, r, bc = _cast(g.dtype, hp["b1"], b2_, step_size, r_t, jnp.sqrt(bc2))
            g = _l2(g, p, hp)
            m = b1c * m + (1 - b1c) * g
            v = b2c * v + (1 - b2c) * g * g
            adaptive = jnp.where(rectify, r * bc / (jnp.sqrt(v) + _eps(hp["eps"], g.dtype)), 1.0)
            return -ss * m * adaptive, m, v

        updates, m, v = _leafwise(leaf, 3, grads, params, state.mu, state.nu)
        count = state.count + 1
        return updates, RadamState(count, m, v, hyper.advance(hp, count))

    return GradientTransformation(init, update)
