r"""Muon's rule (Jordan et al. 2024, as ``keras.optimizers.Muon`` has it) as a transform:
:func:`scale_by_muon`, momentum orthogonalised by Newton-Schulz for the weight matrices and
Keras's Adam step for every other leaf.

The notation of the formulas is ``_direction.py``'s: :math:`u_t` the incoming update (the
gradient), :math:`t` the step counting from 1. Which leaves take the Muon step is decided by
shape (2-D leaves, as Keras decides it) and an optional ``mask`` (fnn's stand-in for Keras's
``exclude_layers``, which matches layer paths fnn's params do not have): :func:`muon_leaves`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp

from fnn._validate import boolean, hyper, integer
from fnn._values import bound
from fnn.optimizers._base import (
    Array,
    GradientTransformation,
    Params,
    as_array,
    cast,
    check_like,
    complements,
    count0,
    moment_dtype,
    safe_eps,
    scalar_dtype,
    tree_structure,
)
from fnn.optimizers._direction import check_beta, nonnegative
from fnn.optimizers._masking import own_mask, resolve_mask

# Keras's (and torch's) constants: the quintic's coefficients, and the floor of the norm the
# iteration starts by dividing by (hard-coded in Keras; torch's ``eps``).
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
NS_EPS = 1e-7


class ScaleByMuonState(NamedTuple):
    """State of :func:`scale_by_muon` (Keras's buffers), each a tree like the params:

    Attributes:
        count: Updates so far (Keras's ``iterations``).
        momentum: The momentum of every leaf: Muon's :math:`B_t` for the matrices, Adam's
            :math:`m_t` for the others (Keras's ``momentums``).
        velocity: Adam's :math:`v_t` for the leaves that take the Adam step; None for the
            matrices that take the Muon step (Keras's ``adam_velocities``).
    """

    count: Array  # type: ignore[assignment]  # the field shadows tuple.count, as in optax
    momentum: Params
    velocity: Params


def _is_muon(mask: Any, params: Params) -> Params:
    """True where a leaf takes the Muon step: 2-D, and not masked out."""
    allowed = resolve_mask(True if mask is None else mask, params)
    treedef = tree_structure(params)
    leaves = zip(treedef.flatten_up_to(params), treedef.flatten_up_to(allowed), strict=True)
    return treedef.unflatten([jnp.ndim(p) == 2 and bool(m) for p, m in leaves])


def _is_adam(mask: Any, params: Params) -> Params:
    treedef = tree_structure(params)
    return treedef.unflatten([not m for m in treedef.flatten_up_to(_is_muon(mask, params))])


def muon_leaves(mask: Any = None) -> tuple[Any, Any]:
    """The masks (functions ``params -> tree of bools``) of the leaves that take the Muon step
    and of those that take the Adam step, as values (equal for equal ``mask``): a leaf takes the
    Muon step where it is 2-D and ``mask`` (None: every leaf) is True."""
    mask = own_mask(mask)
    return bound(_is_muon, mask), bound(_is_adam, mask)


def newton_schulz(x: Array, steps: int, a: Any, b: Any, c: Any) -> Array:
    """Keras's ``zeropower_via_newtonschulz5`` of a matrix, in ``x``'s dtype (the formula:
    :func:`scale_by_muon`)."""
    tall = x.shape[-2] > x.shape[-1]
    if tall:  # X X^T of the smaller side
        x = x.T
    x = x / (jnp.linalg.norm(x) + jnp.asarray(NS_EPS, x.dtype))
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


def _muon_init(momentum, nesterov, ns_steps, a, b, c, rms_rate, beta1, beta2, epsilon, ratio, mask, params):
    is_muon = _is_muon(mask, params)
    treedef = tree_structure(params)
    flat = treedef.flatten_up_to(params)

    def zeros(p: Any) -> Array:
        p = as_array(p, "params")
        return jnp.zeros(p.shape, moment_dtype(p.dtype))

    velocity = [None if m else zeros(p) for p, m in zip(flat, treedef.flatten_up_to(is_muon), strict=True)]
    return ScaleByMuonState(count0(), treedef.unflatten([zeros(p) for p in flat]), treedef.unflatten(velocity))


def _muon_update(
    momentum, nesterov, ns_steps, a, b, c, rms_rate, beta1, beta2, epsilon, ratio, mask, updates, state, params=None
):
    check_like(updates, params, "params", what="updates")
    t = (state.count + 1).astype(scalar_dtype())
    # Keras's Adam: alpha = ratio * sqrt(1 - b2^t) / (1 - b1^t), epsilon outside the correction
    alpha = jnp.asarray(ratio, t.dtype) * jnp.sqrt(1 - jnp.asarray(beta2, t.dtype) ** t)
    alpha = alpha / (1 - jnp.asarray(beta1, t.dtype) ** t)

    def leaf(u, is_muon, m, v):
        u = as_array(u)
        dt = moment_dtype(u.dtype)
        g = u.astype(dt)
        if is_muon:
            mu, a_, b_, c_ = cast(dt, momentum, a, b, c)
            m = mu * m + g
            out = newton_schulz(g + mu * m if nesterov else m, ns_steps, a_, b_, c_)
            if rms_rate is not None:  # Moonlight's rule: the update's RMS near Adam's
                out = out * jnp.sqrt(jnp.asarray(max(g.shape), dt)) * jnp.asarray(rms_rate).astype(dt)
            return out.astype(u.dtype), m, v
        (al,) = cast(dt, alpha)
        d1, d2 = complements(dt, beta1, beta2)
        m = m + (g - m) * d1
        v = v + (g * g - v) * d2
        return (m * al / (jnp.sqrt(v) + safe_eps(epsilon, dt))).astype(u.dtype), m, v

    treedef = tree_structure(updates)
    is_muon = _is_muon(mask, params if params is not None else updates)
    flat = [treedef.flatten_up_to(x) for x in (updates, is_muon, state.momentum, state.velocity)]
    columns = [leaf(*args) for args in zip(*flat, strict=True)]
    out, m, v = (treedef.unflatten([col[i] for col in columns]) for i in range(3))
    return out, ScaleByMuonState(state.count + 1, m, v)


def check_muon(
    momentum, nesterov, ns_steps, muon_a, muon_b, muon_c, rms_rate, adam_beta_1, adam_beta_2, epsilon, adam_lr_ratio
) -> tuple[Any, ...]:
    """Muon's options checked, in :func:`scale_by_muon`'s order: ``momentum``, ``epsilon``,
    ``adam_lr_ratio`` and ``rms_rate`` (None: off) ``>= 0``, the betas in [0, 1), the
    coefficients real, ``ns_steps`` an int in [0, 100) (torch's bound: each step is unrolled
    into the program), ``nesterov`` a bool."""
    mom, eps, ratio = nonnegative(momentum=momentum, epsilon=epsilon, adam_lr_ratio=adam_lr_ratio)
    a, b, c = (hyper(name, v) for name, v in (("muon_a", muon_a), ("muon_b", muon_b), ("muon_c", muon_c)))
    rate = None if rms_rate is None else hyper("rms_rate", rms_rate, lo=0.0)
    b1, b2 = check_beta("adam_beta_1", adam_beta_1), check_beta("adam_beta_2", adam_beta_2)
    steps = integer("ns_steps", ns_steps, 0, 99)
    return mom, boolean("nesterov", nesterov), steps, a, b, c, rate, b1, b2, eps, ratio


def scale_by_muon(
    momentum: float = 0.95,
    nesterov: bool = True,
    ns_steps: int = 5,
    muon_a: float = NS_COEFFICIENTS[0],
    muon_b: float = NS_COEFFICIENTS[1],
    muon_c: float = NS_COEFFICIENTS[2],
    rms_rate: float | None = 0.2,
    adam_beta_1: float = 0.9,
    adam_beta_2: float = 0.999,
    epsilon: float = 1e-7,
    adam_lr_ratio: float = 1.0,
    mask: Any = None,
) -> GradientTransformation:
    r"""Muon's direction (``keras.optimizers.Muon``, without the learning rate and weight decay):
    for each weight matrix, its momentum orthogonalised by a few Newton-Schulz iterations; for
    every other leaf, Keras's Adam step.

    A 2-D leaf of shape :math:`(n, m)` where ``mask`` is True (a Muon leaf):

    .. math::
        B_t = \mu B_{t-1} + u_t;\quad
        \tilde B_t = u_t + \mu B_t \text{ (nesterov) else } B_t;

        X_0 = Y / (\lVert Y\rVert_F + 10^{-7}),\; Y = \tilde B_t^\top \text{ if } n > m
        \text{ else } \tilde B_t;\quad
        A_k = X_k X_k^\top,\;
        X_{k+1} = a X_k + (b A_k + c A_k^2) X_k \;(k < K);

        O_t = X_K^\top \text{ if } n > m \text{ else } X_K;\quad
        \text{out}_t = r \sqrt{\max(n, m)}\; O_t \text{ (} r \text{ = rms\_rate; } O_t
        \text{ when None)}

    Every other leaf (not 2-D, whatever the mask says, or masked out):

    .. math::
        m_t = m_{t-1} + (u_t - m_{t-1})(1-\beta_1);\quad
        v_t = v_{t-1} + (u_t^2 - v_{t-1})(1-\beta_2);\quad
        \text{out}_t = \rho \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\, \frac{m_t}{\sqrt{v_t} + \epsilon}

    with :math:`\mu` = momentum, :math:`K` = ns_steps, :math:`(a, b, c)` = (muon_a, muon_b,
    muon_c), :math:`\rho` = adam_lr_ratio, :math:`\beta_1, \beta_2` = adam_beta_1, adam_beta_2.
    The quintic's coefficients (3.4445, -4.7750, 2.0315) push every singular value of
    :math:`X_0` (at most 1) towards 1 in a few steps, to within about [0.7, 1.2]: :math:`O_t`
    is close to :math:`UV^\top` of :math:`\tilde B_t = USV^\top`.

    Keras's choices, kept: :math:`B_t` is the sum :math:`\mu B_{t-1} + u_t` (torch keeps
    :math:`(1-\mu)` times it, an average, which the normalisation of :math:`X_0` cancels up to
    the :math:`10^{-7}`); the iteration runs in the moments' dtype (float32 or wider), as
    Keras runs it in the variables' (torch's in bfloat16, faster on accelerators: its steps
    drift 1-2.5 % from these over five steps, and agree to ~1e-5 with its iteration in
    float32); :math:`\epsilon` is Keras's "epsilon hat", added to :math:`\sqrt{v_t}` before
    the bias correction (torch's Adam adds it after). The output is a
    positive step: :func:`scale_by_learning_rate` turns it into a descent.

    Args:
        momentum: μ >= 0, the momentum of the Muon leaves.
        nesterov: Orthogonalise :math:`u_t + \mu B_t` (Nesterov) rather than :math:`B_t`.
        ns_steps: K, the Newton-Schulz iterations, an int in [0, 100) (each is unrolled into
            the program: a static option, not held in the state).
        muon_a: a, the quintic's linear coefficient.
        muon_b: b, its cubic coefficient.
        muon_c: c, its quintic coefficient.
        rms_rate: r >= 0, the Muon update scaled by r·sqrt(max(n, m)) (Liu et al. 2025, so
            that Muon's updates have about Adam's RMS and take Adam's learning rate), or None:
            not scaled.
        adam_beta_1: β1 in [0, 1), the decay of the Adam leaves' first moment.
        adam_beta_2: β2 in [0, 1), the decay of their second moment.
        epsilon: ε >= 0, added to :math:`\sqrt{v_t}`.
        adam_lr_ratio: ρ >= 0, the Adam step's factor (its learning rate's ratio to Muon's).
        mask: None (every 2-D leaf takes the Muon step), or a pytree of Python bools with the
            structure of params (or a prefix of it), or a function ``params -> mask``: the 2-D
            leaves marked False take the Adam step (Keras advises it for the output layer).

    Returns:
        The transform, a :class:`GradientTransformation`; its state is a
        :class:`ScaleByMuonState`.

    Raises:
        ValueError: For a hyperparameter out of range; at init/update, for a mask whose
            structure does not fit the params.
        TypeError: For a hyperparameter of the wrong type; at init/update, for mask leaves that
            are not Python bools.
    """
    config = (
        *check_muon(
            momentum, nesterov, ns_steps, muon_a, muon_b, muon_c, rms_rate, adam_beta_1, adam_beta_2, epsilon,
            adam_lr_ratio,
        ),
        mask,
    )  # fmt: skip
    return GradientTransformation(bound(_muon_init, *config), bound(_muon_update, *config))
