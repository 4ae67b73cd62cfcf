r"""Optimizers as ``(init, update)`` pairs, gradient transforms, and ``apply_updates``.

Each optimizer follows the update rule that ``torch.optim`` documents for the same name; its
docstring writes the rule out with :math:`g_t` the gradient, :math:`\theta` the parameters,
:math:`t` the step counting from 1 and :math:`\gamma` the learning rate. ``update(grads, state,
params=None)`` returns ``(updates, state)`` where ``updates`` is the *change* to add to the
parameters (``apply_updates``), exactly as optax does, so either library's transforms compose.

Hyperparameters live in the state as 0-d arrays (``state.hparams``), so a new learning rate
(``set_learning_rate``) never recompiles and states with different hyperparameters can be vmapped.
A term switched off at construction (``momentum=0``, ``weight_decay=0``) is left out of
``hparams``: it costs nothing and cannot be switched on later. Flags (``nesterov``, ``amsgrad``,
``centered``) shape the computation and stay Python values.

Moments are kept in float32 or wider (bfloat16/float16 parameters included) and updates are cast
back to the parameter dtype; ``eps`` is never allowed to round to zero.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax.numpy as jnp

from fnn._adam import (  # noqa: F401 - the Adam family, in its own module; public here
    AdamaxState, AdamState, NadamState, RadamState, adam, adamax, adamw, nadam, radam,
)
from fnn.transforms import (  # noqa: F401 - re-exported: fnn.optimizers is the public namespace
    Array,
    OptState,
    Params,
    Schedule,
    EmptyState,
    GradientTransformation,
    MaskedNode,
    MaskedState,
    ScaleByScheduleState,
    _beta,
    _cast,
    _count0,
    _eps,
    _Hyper,
    _l2,
    _leafwise,
    _need_params,
    _on,
    _real,
    _scalar_dtype,
    _zeros,
    add_decayed_weights,
    apply_updates,
    chain,
    clip_by_global_norm,
    clip_by_value,
    get_learning_rate,
    global_norm,
    masked,
    scale,
    scale_by_schedule,
    set_learning_rate,
)

__all__ = [
    "GradientTransformation", "apply_updates", "set_learning_rate", "get_learning_rate",
    "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam", "adamw", "adamax",
    "nadam", "radam", "rprop", "lion",
    "chain", "clip_by_global_norm", "clip_by_value", "add_decayed_weights", "scale",
    "scale_by_schedule", "masked", "global_norm", "get", "names",
]



# ---------------------------------------------------------------------------------------------
# Optimizers.

class SgdState(NamedTuple):
    count: Array
    momentum_buffer: Params | None
    hparams: dict[str, Array]


def sgd(learning_rate: float | Schedule = 1e-2, momentum: float = 0.0, dampening: float = 0.0,
        nesterov: bool = False, weight_decay: float = 0.0) -> GradientTransformation:
    r"""Stochastic gradient descent, ``torch.optim.SGD``.

    .. math::
        g_t \leftarrow g_t + \lambda\theta_{t-1};\quad
        b_t \leftarrow \mu b_{t-1} + (1-\tau) g_t \;(b_1 = g_1);\quad
        d_t = g_t + \mu b_t \text{ (nesterov) else } b_t \text{ (} g_t \text{ when } \mu = 0);\quad
        \theta_t \leftarrow \theta_{t-1} - \gamma d_t

    with :math:`\mu` = momentum, :math:`\tau` = dampening, :math:`\lambda` = weight_decay.
    """
    mom = _real("momentum", momentum, lo=0.0)
    damp = _real("dampening", dampening, 0.0, 1.0)
    wd = _real("weight_decay", weight_decay, lo=0.0)
    if nesterov and (mom == 0 or damp != 0):
        raise ValueError(f"nesterov=True requires momentum > 0 and dampening == 0, "
                         f"got momentum={momentum!r}, dampening={dampening!r}")
    hyper = _Hyper(learning_rate, **_on(momentum=mom, weight_decay=wd),
                   **({"dampening": damp} if mom else {}))

    def init(params):
        return SgdState(_count0(), _zeros(params) if mom else None, hyper.init())

    def update(grads, state, params=None):
        hp = state.hparams
        if wd:
            _need_params(params, "sgd", "weight_decay")
        # b_1 = g_1 undamped: the first step weighs the gradient by 1 instead of 1 - dampening.
        g_weight = jnp.where(state.count == 0, 1.0, 1.0 - hp["dampening"]) if mom else None

        def leaf(g, p, *buf):
            lr, = _cast(g.dtype, hp["learning_rate"])
            g = _l2(g, p, hp)
            if not mom:
                return (-lr * g,)
            mu, c = _cast(g.dtype, hp["momentum"], g_weight)
            b = mu * buf[0] + c * g
            return -lr * (g + mu * b if nesterov else b), b

        buffers = (state.momentum_buffer,) if mom else ()
        updates, *new = _leafwise(leaf, 1 + len(buffers), grads, params, *buffers)
        count = state.count + 1
        return updates, SgdState(count, new[0] if mom else None, hyper.advance(hp, count))

    return GradientTransformation(init, update)


def momentum(learning_rate: float | Schedule = 1e-2, momentum: float = 0.9, dampening: float = 0.0,
             weight_decay: float = 0.0) -> GradientTransformation:
    """``sgd`` with heavy-ball momentum (default 0.9)."""
    return sgd(learning_rate, momentum=momentum, dampening=dampening, weight_decay=weight_decay)


def nesterov(learning_rate: float | Schedule = 1e-2, momentum: float = 0.9,
             weight_decay: float = 0.0) -> GradientTransformation:
    """``sgd`` with Nesterov momentum (default 0.9), PyTorch's formulation."""
    return sgd(learning_rate, momentum=momentum, nesterov=True, weight_decay=weight_decay)


class AdagradState(NamedTuple):
    count: Array
    sum: Params
    hparams: dict[str, Array]


def adagrad(learning_rate: float | Schedule = 1e-2, lr_decay: float = 0.0,
            initial_accumulator_value: float = 0.0, eps: float = 1e-10,
            weight_decay: float = 0.0) -> GradientTransformation:
    r"""Adagrad, ``torch.optim.Adagrad``.

    .. math::
        g_t \leftarrow g_t + \lambda\theta_{t-1};\quad
        \tilde\gamma = \gamma / (1 + (t-1)\eta);\quad
        s_t \leftarrow s_{t-1} + g_t^2 \;(s_0 = \text{initial\_accumulator\_value});\quad
        \theta_t \leftarrow \theta_{t-1} - \tilde\gamma\, g_t / (\sqrt{s_t} + \epsilon)

    with :math:`\eta` = lr_decay.
    """
    decay = _real("lr_decay", lr_decay, lo=0.0)
    acc0 = _real("initial_accumulator_value", initial_accumulator_value, lo=0.0)
    e = _real("eps", eps, lo=0.0)
    wd = _real("weight_decay", weight_decay, lo=0.0)
    hyper = _Hyper(learning_rate, lr_decay=decay, eps=e, **_on(weight_decay=wd))

    def init(params):
        return AdagradState(_count0(), _zeros(params, acc0), hyper.init())

    def update(grads, state, params=None):
        hp = state.hparams
        if wd:
            _need_params(params, "adagrad", "weight_decay")
        clr = hp["learning_rate"] / (1.0 + state.count * hp["lr_decay"])

        def leaf(g, p, s):
            lr, = _cast(g.dtype, clr)
            g = _l2(g, p, hp)
            s = s + g * g
            return -lr * g / (jnp.sqrt(s) + _eps(hp["eps"], g.dtype)), s

        updates, s = _leafwise(leaf, 2, grads, params, state.sum)
        count = state.count + 1
        return updates, AdagradState(count, s, hyper.advance(hp, count))

    return GradientTransformation(init, update)


class RmspropState(NamedTuple):
    count: Array
    nu: Params
    mu: Params | None
    momentum_buffer: Params | None
    hparams: dict[str, Array]


def rmsprop(learning_rate: float | Schedule = 1e-2, decay: float = 0.99, eps: float = 1e-8,
            momentum: float = 0.0, centered: bool = False, weight_decay: float = 0.0) -> GradientTransformation:
    r"""RMSprop, ``torch.optim.RMSprop`` (``decay`` is torch's ``alpha``).

    .. math::
        g_t \leftarrow g_t + \lambda\theta_{t-1};\quad
        v_t \leftarrow \alpha v_{t-1} + (1-\alpha) g_t^2;\quad
        \tilde v_t = v_t - \bar g_t^2,\; \bar g_t \leftarrow \alpha \bar g_{t-1} + (1-\alpha) g_t
        \text{ (centered) else } v_t;

        b_t \leftarrow \mu b_{t-1} + g_t / (\sqrt{\tilde v_t} + \epsilon),\;
        \theta_t \leftarrow \theta_{t-1} - \gamma b_t \text{ (momentum } \mu > 0 \text{) else }
        \theta_t \leftarrow \theta_{t-1} - \gamma g_t / (\sqrt{\tilde v_t} + \epsilon)
    """
    a = _real("decay", decay, 0.0, 1.0)
    e = _real("eps", eps, lo=0.0)
    mom = _real("momentum", momentum, lo=0.0)
    wd = _real("weight_decay", weight_decay, lo=0.0)
    hyper = _Hyper(learning_rate, decay=a, eps=e, **_on(momentum=mom, weight_decay=wd))

    def init(params):
        return RmspropState(_count0(), _zeros(params), _zeros(params) if centered else None,
                            _zeros(params) if mom else None, hyper.init())

    def update(grads, state, params=None):
        hp = state.hparams
        if wd:
            _need_params(params, "rmsprop", "weight_decay")

        def leaf(g, p, v, *rest):
            lr, alpha = _cast(g.dtype, hp["learning_rate"], hp["decay"])
            g = _l2(g, p, hp)
            v = alpha * v + (1 - alpha) * g * g
            out = [v]
            if centered:
                gbar = alpha * rest[0] + (1 - alpha) * g
                out.append(gbar)
                v = v - gbar * gbar
            step = g / (jnp.sqrt(v) + _eps(hp["eps"], g.dtype))
            if mom:
                mu, = _cast(g.dtype, hp["momentum"])
                step = mu * rest[-1] + step
                out.append(step)
            return (-lr * step, *out)

        buffers = [state.nu] + ([state.mu] if centered else []) + ([state.momentum_buffer] if mom else [])
        updates, nu, *rest = _leafwise(leaf, 1 + len(buffers), grads, params, *buffers)
        mu = rest.pop(0) if centered else None
        buf = rest.pop(0) if mom else None
        count = state.count + 1
        return updates, RmspropState(count, nu, mu, buf, hyper.advance(hp, count))

    return GradientTransformation(init, update)


class AdadeltaState(NamedTuple):
    count: Array
    nu: Params
    delta: Params
    hparams: dict[str, Array]


def adadelta(learning_rate: float | Schedule = 1.0, rho: float = 0.9, eps: float = 1e-6,
             weight_decay: float = 0.0) -> GradientTransformation:
    r"""Adadelta, ``torch.optim.Adadelta``.

    .. math::
        g_t \leftarrow g_t + \lambda\theta_{t-1};\quad
        v_t \leftarrow \rho v_{t-1} + (1-\rho) g_t^2;\quad
        \Delta x_t = \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}} g_t;\quad
        u_t \leftarrow \rho u_{t-1} + (1-\rho) \Delta x_t^2;\quad
        \theta_t \leftarrow \theta_{t-1} - \gamma \Delta x_t
    """
    r = _real("rho", rho, 0.0, 1.0)
    e = _real("eps", eps, lo=0.0)
    wd = _real("weight_decay", weight_decay, lo=0.0)
    hyper = _Hyper(learning_rate, rho=r, eps=e, **_on(weight_decay=wd))

    def init(params):
        return AdadeltaState(_count0(), _zeros(params), _zeros(params), hyper.init())

    def update(grads, state, params=None):
        hp = state.hparams
        if wd:
            _need_params(params, "adadelta", "weight_decay")

        def leaf(g, p, v, u):
            lr, rho_ = _cast(g.dtype, hp["learning_rate"], hp["rho"])
            eps_ = _eps(hp["eps"], g.dtype)
            g = _l2(g, p, hp)
            v = rho_ * v + (1 - rho_) * g * g
            dx = jnp.sqrt(u + eps_) / jnp.sqrt(v + eps_) * g
            return -lr * dx, v, rho_ * u + (1 - rho_) * dx * dx

        updates, v, u = _leafwise(leaf, 3, grads, params, state.nu, state.delta)
        count = state.count + 1
        return updates, AdadeltaState(count, v, u, hyper.advance(hp, count))

    return GradientTransformation(init, update)


class RpropState(NamedTuple):
    count: Array
    prev: Params
    step_size: Params
    hparams: dict[str, Array]


def rprop(learning_rate: float | Schedule = 1e-2, etas: tuple[float, float] = (0.5, 1.2),
          step_sizes: tuple[float, float] = (1e-6, 50.0)) -> GradientTransformation:
    r"""Rprop, ``torch.optim.Rprop``; the update returned is *this* step's.

    .. math::
        \eta_t = \mathrm{clip}(\eta_{t-1}\eta_+, \Gamma_{min}, \Gamma_{max}) \text{ if } g_{t-1} g_t > 0;\;
        \mathrm{clip}(\eta_{t-1}\eta_-, \Gamma_{min}, \Gamma_{max}) \text{ and } g_t \leftarrow 0
        \text{ if } g_{t-1} g_t < 0;\; \eta_{t-1} \text{ otherwise};

        \theta_t \leftarrow \theta_{t-1} - \eta_t\,\mathrm{sign}(g_t);\quad g_{t-1} \leftarrow g_t

    with :math:`\eta_0` = learning_rate (it only seeds the step sizes: changing it after the first
    update has no effect, as in PyTorch), :math:`(\eta_-, \eta_+)` = etas and
    :math:`(\Gamma_{min}, \Gamma_{max})` = step_sizes.
    """
    if len(etas) != 2 or len(step_sizes) != 2:
        raise ValueError(f"etas and step_sizes must be pairs, got etas={etas!r}, step_sizes={step_sizes!r}")
    eta_minus = _real("etas[0]", etas[0], 0.0, 1.0, lo_open=True, hi_open=True)
    eta_plus = _real("etas[1]", etas[1], lo=1.0, lo_open=True)
    smin = _real("step_sizes[0]", step_sizes[0], lo=0.0)
    smax = _real("step_sizes[1]", step_sizes[1], lo=smin)
    hyper = _Hyper(learning_rate, eta_minus=eta_minus, eta_plus=eta_plus, step_size_min=smin, step_size_max=smax)

    def init(params):
        return RpropState(_count0(), _zeros(params), _zeros(params), hyper.init())

    def update(grads, state, params=None):
        hp = state.hparams
        first = state.count == 0

        def leaf(g, p, prev, step):
            lr, em, ep, lo, hi = _cast(g.dtype, hp["learning_rate"], hp["eta_minus"], hp["eta_plus"],
                                       hp["step_size_min"], hp["step_size_max"])
            step = jnp.where(first, lr, step)
            agree = g * prev
            step = jnp.clip(jnp.where(agree > 0, step * ep, jnp.where(agree < 0, step * em, step)), lo, hi)
            g = jnp.where(agree < 0, 0.0, g)
            return -step * jnp.sign(g), g, step

        updates, prev, step = _leafwise(leaf, 3, grads, params, state.prev, state.step_size)
        count = state.count + 1
        return updates, RpropState(count, prev, step, hyper.advance(hp, count))

    return GradientTransformation(init, update)


class LionState(NamedTuple):
    count: Array
    mu: Params
    hparams: dict[str, Array]


def lion(learning_rate: float | Schedule = 1e-4, b1: float = 0.9, b2: float = 0.99,
         weight_decay: float = 0.0) -> GradientTransformation:
    r"""Lion (Chen et al. 2023, Algorithm 2; ``torch.optim`` has none), decoupled weight decay.

    .. math::
        c_t = \beta_1 m_{t-1} + (1-\beta_1) g_t;\quad
        \theta_t \leftarrow \theta_{t-1} - \gamma\,(\mathrm{sign}(c_t) + \lambda\theta_{t-1});\quad
        m_t \leftarrow \beta_2 m_{t-1} + (1-\beta_2) g_t
    """
    hyper = _Hyper(learning_rate, b1=_beta("b1", b1), b2=_beta("b2", b2),
                   **_on(weight_decay=_real("weight_decay", weight_decay, lo=0.0)))
    wd = "weight_decay" in hyper.values

    def init(params):
        return LionState(_count0(), _zeros(params), hyper.init())

    def update(grads, state, params=None):
        hp = state.hparams
        if wd:
            _need_params(params, "lion", "weight_decay")

        def leaf(g, p, m):
            lr, b1_, b2_ = _cast(g.dtype, hp["learning_rate"], hp["b1"], hp["b2"])
            d = jnp.sign(b1_ * m + (1 - b1_) * g)
            if wd:
                d = d + hp["weight_decay"].astype(g.dtype) * p
            return -lr * d, b2_ * m + (1 - b2_) * g

        updates, m = _leafwise(leaf, 2, grads, params, state.mu)
        count = state.count + 1
        return updates, LionState(count, m, hyper.advance(hp, count))

    return GradientTransformation(init, update)


# ---------------------------------------------------------------------------------------------
# Registry (the CLI's names).

_OPTIMIZERS: dict[str, Callable[..., GradientTransformation]] = {
    "sgd": sgd, "momentum": momentum, "nesterov": nesterov, "adagrad": adagrad, "rmsprop": rmsprop,
    "adadelta": adadelta, "adam": adam, "adamw": adamw, "adamax": adamax, "nadam": nadam,
    "radam": radam, "rprop": rprop, "lion": lion,
}


def names() -> list[str]:
    """The optimizer names ``get`` knows."""
    return sorted(_OPTIMIZERS)


def get(name: str | GradientTransformation, **kwargs) -> GradientTransformation:
    """The optimizer called ``name`` (case-insensitive) built with ``kwargs``; a transformation passes through."""
    if isinstance(name, GradientTransformation):
        if kwargs:
            raise TypeError("keyword arguments cannot be applied to an already built optimizer")
        return name
    if not isinstance(name, str):
        raise TypeError(f"name must be an optimizer name (str), got {name!r}")
    key = name.lower()
    if key not in _OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; known optimizers: {', '.join(names())}")
    return _OPTIMIZERS[key](**kwargs)
