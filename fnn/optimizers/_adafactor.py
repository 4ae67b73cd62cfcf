r"""Adafactor's rule (``torch.optim.Adafactor``) as a transform: :func:`scale_by_adafactor`, with
the second moment of a leaf of 2 or more dimensions kept factored, as a row and a column mean.

The notation of the formulas is ``_direction.py``'s: :math:`u_t` the incoming update (the
gradient), :math:`\theta_{t-1}` the parameters it was taken at, :math:`t` the step counting
from 1. Shapes: a leaf of shape ``(..., n, m)`` has its row factor :math:`R` of shape
``(..., n, 1)`` and its column factor :math:`C` of shape ``(..., 1, m)``; the leading axes are
a batch of independent matrices, as in torch.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp

from fnn._validate import hyper
from fnn.optimizers._base import (
    Array,
    GradientTransformation,
    Params,
    as_array,
    cast,
    check_like,
    count0,
    moment_dtype,
    need_params,
    scalar_dtype,
    tree_structure,
)
from fnn.optimizers._direction import bound_transform, nonnegative


class ScaleByAdafactorState(NamedTuple):
    """State of :func:`scale_by_adafactor` (torch's names), each a tree like the params:

    Attributes:
        count: Updates so far (torch's ``step``).
        row_var: R, of shape ``(..., n, 1)`` for a leaf of shape ``(..., n, m)``; None for a leaf
            of fewer than 2 dimensions.
        col_var: C, of shape ``(..., 1, m)``; None for a leaf of fewer than 2 dimensions.
        variance: V, the leaf's shape for a leaf of fewer than 2 dimensions; None for the others.
    """

    count: Array  # type: ignore[assignment]  # the field shadows tuple.count, as in optax
    row_var: Params
    col_var: Params
    variance: Params


def check_adafactor(beta2_decay: Any, eps1: Any, eps2: Any, d: Any) -> tuple[Any, Any, Any, Any]:
    """Adafactor's options checked as torch checks them: ``beta2_decay <= 0``, ``eps1`` None or
    ``>= 0``, ``eps2 >= 0``, ``d >= 1``."""
    e1 = None if eps1 is None else hyper("eps1", eps1, lo=0.0)
    return hyper("beta2_decay", beta2_decay, hi=0.0), e1, hyper("eps2", eps2, lo=0.0), hyper("d", d, lo=1.0)


def _factored(p: Array) -> bool:
    return jnp.ndim(p) >= 2


def _adafactor_init(learning_rate, beta2_decay, eps1, eps2, d, params) -> ScaleByAdafactorState:
    def buffers(p):
        p = as_array(p, "params")
        dt, shape = moment_dtype(p.dtype), p.shape
        if not _factored(p):
            return None, None, jnp.zeros(shape, dt)
        return jnp.zeros((*shape[:-1], 1), dt), jnp.zeros((*shape[:-2], 1, shape[-1]), dt), None

    treedef = tree_structure(params)
    columns = [buffers(p) for p in treedef.flatten_up_to(params)]
    row, col, var = (treedef.unflatten([c[i] for c in columns]) for i in range(3))
    return ScaleByAdafactorState(count0(), row, col, var)


def _lerp(start: Array, end: Array, weight: Array) -> Array:
    """``start + weight (end - start)`` as torch's ``lerp`` evaluates it: from ``end``'s side for a
    weight of 1/2 or more, so a weight of 1 gives ``end`` exactly (``beta2_decay=0``), where the
    other form cancels a large ``start`` against itself and loses ``end``."""
    diff = end - start
    return jnp.where(jnp.abs(weight) < 0.5, start + weight * diff, end - diff * (1 - weight))


def _rms(x: Array) -> Array:
    return jnp.sqrt(jnp.mean(x * x))


def _adafactor_update(learning_rate, beta2_decay, eps1, eps2, d, updates, state, params=None):
    need_params(params, "scale_by_adafactor", "the relative step, which scales by the parameters' RMS")
    check_like(updates, params, "params", what="updates")
    t = (state.count + 1).astype(scalar_dtype())
    lr, tau = cast(scalar_dtype(), learning_rate, beta2_decay)
    weight = t**tau  # 1 - beta2_t
    rho = jnp.minimum(lr, 1 / jnp.sqrt(t))

    def leaf(u, p, row, col, var):
        u, p = as_array(u), as_array(p, "params")
        dt = moment_dtype(u.dtype)
        g, theta = u.astype(dt), p.astype(dt)
        # torch's default eps1 is the parameters' own dtype's machine epsilon
        e1 = jnp.asarray(jnp.finfo(p.dtype).eps if eps1 is None else eps1).astype(dt)
        w, r, e2, d_ = cast(dt, weight, rho, eps2, d)
        if g.size == 0:
            return u, row, col, var
        alpha = jnp.maximum(e2, _rms(theta)) * r
        if _factored(g):
            row = _lerp(row, jnp.mean(g * g, axis=-1, keepdims=True), w)
            col = _lerp(col, jnp.mean(g * g, axis=-2, keepdims=True), w)
            v = row * col / jnp.maximum(jnp.mean(row, axis=-2, keepdims=True), e1)
        else:
            var = v = _lerp(var, g * g, w)
        step = g / jnp.sqrt(jnp.maximum(v, e1 * e1))
        out = alpha / jnp.maximum(1, _rms(step) / d_) * step
        return out.astype(u.dtype), row, col, var

    treedef = tree_structure(updates)
    flat = [treedef.flatten_up_to(x) for x in (updates, params, state.row_var, state.col_var, state.variance)]
    columns = [leaf(*args) for args in zip(*flat, strict=True)]
    out, row, col, var = (treedef.unflatten([c[i] for c in columns]) for i in range(4))
    return out, ScaleByAdafactorState(state.count + 1, row, col, var)


def scale_by_adafactor(
    learning_rate: float = 1e-2,
    beta2_decay: float = -0.8,
    eps1: float | None = None,
    eps2: float = 1e-3,
    d: float = 1.0,
) -> GradientTransformation:
    r"""Adafactor's step (``torch.optim.Adafactor``), second moments factored for matrices.

    .. math::
        \hat\beta_{2,t} = 1 - t^{\tau};\quad
        \rho_t = \min(\gamma, 1/\sqrt t);\quad
        \alpha_t = \max(\epsilon_2, \mathrm{RMS}(\theta_{t-1}))\,\rho_t;

        \text{for a leaf } (\ldots, n, m):\;
        R_t = \hat\beta_{2,t} R_{t-1} + (1-\hat\beta_{2,t})\,\mathrm{mean}_{m}(u_t^2),\;
        C_t = \hat\beta_{2,t} C_{t-1} + (1-\hat\beta_{2,t})\,\mathrm{mean}_{n}(u_t^2),\;
        \hat V_t = \frac{R_t C_t}{\max(\mathrm{mean}_n(R_t), \epsilon_1)};

        \text{for a vector or scalar:}\;
        \hat V_t = \hat\beta_{2,t}\hat V_{t-1} + (1-\hat\beta_{2,t})\,u_t^2;

        U_t = u_t / \max(\sqrt{\hat V_t}, \epsilon_1);\quad
        \text{out}_t = \alpha_t\, U_t / \max(1, \mathrm{RMS}(U_t)/d)

    with :math:`\tau` = beta2_decay, :math:`\mathrm{mean}_m` the mean over the last axis (shape
    ``(..., n, 1)``), :math:`\mathrm{mean}_n` over the one before it (``(..., 1, m)``), and
    :math:`\mathrm{RMS}` over the whole leaf. :math:`\gamma` = learning_rate only caps the relative
    step :math:`\rho_t` (the paper's 0.01; torch's reading). The output is a positive step:
    negate it (``scale(-1)``) to descend.

    Args:
        learning_rate: γ >= 0, the largest relative step.
        beta2_decay: τ <= 0, the power of the second moments' decay.
        eps1: ε1 >= 0, the floor of the denominators; None: the machine epsilon of each
            parameter's dtype (torch's default).
        eps2: ε2 >= 0, the floor of the parameters' RMS in the relative step.
        d: d >= 1, the clipping threshold of the update's RMS.

    Returns:
        The transform, a :class:`GradientTransformation`; its state is a
        :class:`ScaleByAdafactorState`.

    Raises:
        ValueError: For a hyperparameter out of range; at update, without params.
        TypeError: For a hyperparameter of the wrong type.
    """
    (rate,) = nonnegative(learning_rate=learning_rate)
    return bound_transform(_adafactor_init, _adafactor_update, rate, *check_adafactor(beta2_decay, eps1, eps2, d))
