"""Optimizers and transforms against independent float64 NumPy references of torch.optim's rules."""

from __future__ import annotations

import copy
import functools
import gc
import inspect
import math
import pickle
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import swapped

import fnn
import fnn.optimizers as O
import fnn.schedules as S
from fnn.optimizers._learning_rates import set_learning_rate_in_proportion

GOLDEN_RTOL = 1e-11  # float64; an H200 differs from the CPU by up to 2.4e-12 (its pow and sqrt)

# ------------------------------------------------------------------------------------------------
# Independent references, written from the pseudo-code in torch.optim's documentation. They work on
# one flat float64 vector (every rule is elementwise) and return theta after each step; `lr` may be
# a function of the 0-based step index.


def _lr(lr, t):
    return lr(t - 1) if callable(lr) else lr


def ref_sgd(theta, grads, lr=1e-2, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
    out, b = [], None
    for t, g in enumerate(grads, 1):
        if weight_decay != 0:
            g = g + weight_decay * theta
        if momentum != 0:
            b = g.copy() if t == 1 else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        theta = theta - _lr(lr, t) * g
        out.append(theta)
    return out


def ref_adagrad(theta, grads, lr=1e-2, lr_decay=0.0, initial_accumulator_value=0.0, eps=1e-10, weight_decay=0.0):
    out, state_sum = [], np.full_like(theta, initial_accumulator_value)
    for t, g in enumerate(grads, 1):
        clr = _lr(lr, t) / (1 + (t - 1) * lr_decay)
        if weight_decay != 0:
            g = g + weight_decay * theta
        state_sum = state_sum + g**2
        theta = theta - clr * g / (np.sqrt(state_sum) + eps)
        out.append(theta)
    return out


def ref_rmsprop(theta, grads, lr=1e-2, alpha=0.99, eps=1e-8, momentum=0.0, centered=False, weight_decay=0.0):
    out = []
    v, g_ave, b = np.zeros_like(theta), np.zeros_like(theta), np.zeros_like(theta)
    for t, g in enumerate(grads, 1):
        if weight_decay != 0:
            g = g + weight_decay * theta
        v = alpha * v + (1 - alpha) * g**2
        v_tilde = v
        if centered:
            g_ave = alpha * g_ave + (1 - alpha) * g
            v_tilde = v_tilde - g_ave**2
        if momentum > 0:
            b = momentum * b + g / (np.sqrt(v_tilde) + eps)
            theta = theta - _lr(lr, t) * b
        else:
            theta = theta - _lr(lr, t) * g / (np.sqrt(v_tilde) + eps)
        out.append(theta)
    return out


def ref_adadelta(theta, grads, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0):
    out, v, u = [], np.zeros_like(theta), np.zeros_like(theta)
    for t, g in enumerate(grads, 1):
        if weight_decay != 0:
            g = g + weight_decay * theta
        v = v * rho + g**2 * (1 - rho)
        dx = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u = u * rho + dx**2 * (1 - rho)
        theta = theta - _lr(lr, t) * dx
        out.append(theta)
    return out


def ref_adam(theta, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False):
    b1, b2 = betas
    out, m, v, v_max = [], np.zeros_like(theta), np.zeros_like(theta), np.zeros_like(theta)
    for t, g in enumerate(grads, 1):
        if decoupled:
            theta = theta - _lr(lr, t) * weight_decay * theta
        elif weight_decay != 0:
            g = g + weight_decay * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat = m / (1 - b1**t)
        if amsgrad:
            v_max = np.maximum(v_max, v)
            v_hat = v_max / (1 - b2**t)
        else:
            v_hat = v / (1 - b2**t)
        theta = theta - _lr(lr, t) * m_hat / (np.sqrt(v_hat) + eps)
        out.append(theta)
    return out


def ref_adamw(theta, grads, weight_decay=1e-2, **kw):
    return ref_adam(theta, grads, weight_decay=weight_decay, decoupled=True, **kw)


def ref_adamax(theta, grads, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    b1, b2 = betas
    out, m, u = [], np.zeros_like(theta), np.zeros_like(theta)
    for t, g in enumerate(grads, 1):
        if weight_decay != 0:
            g = g + weight_decay * theta
        m = b1 * m + (1 - b1) * g
        u = np.maximum(b2 * u, np.abs(g) + eps)
        theta = theta - _lr(lr, t) * m / ((1 - b1**t) * u)
        out.append(theta)
    return out


def ref_nadam(theta, grads, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, momentum_decay=4e-3):
    b1, b2 = betas
    out, m, v = [], np.zeros_like(theta), np.zeros_like(theta)
    mus = {}

    def mu(i):
        return mus.setdefault(i, b1 * (1 - 0.5 * 0.96 ** (i * momentum_decay)))

    for t, g in enumerate(grads, 1):
        if weight_decay != 0:
            g = g + weight_decay * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        prod_t = math.prod(mu(i) for i in range(1, t + 1))
        prod_next = prod_t * mu(t + 1)
        m_hat = mu(t + 1) * m / (1 - prod_next) + (1 - mu(t)) * g / (1 - prod_t)
        v_hat = v / (1 - b2**t)
        theta = theta - _lr(lr, t) * m_hat / (np.sqrt(v_hat) + eps)
        out.append(theta)
    return out


def ref_radam(theta, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    b1, b2 = betas
    out, m, v = [], np.zeros_like(theta), np.zeros_like(theta)
    rho_inf = 2 / (1 - b2) - 1
    for t, g in enumerate(grads, 1):
        if weight_decay != 0:
            g = g + weight_decay * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat = m / (1 - b1**t)
        rho_t = rho_inf - 2 * t * b2**t / (1 - b2**t)
        if rho_t > 5:
            l_t = math.sqrt(1 - b2**t) / (np.sqrt(v) + eps)
            r_t = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            theta = theta - _lr(lr, t) * m_hat * r_t * l_t
        else:
            theta = theta - _lr(lr, t) * m_hat
        out.append(theta)
    return out


def ref_rprop(theta, grads, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0)):
    eta_minus, eta_plus = etas
    smin, smax = step_sizes
    out, g_prev, eta = [], np.zeros_like(theta), np.full_like(theta, lr)
    for g in grads:
        g = g.copy()
        for i in range(len(g)):  # element by element, as the pseudo-code reads
            if g_prev[i] * g[i] > 0:
                eta[i] = min(eta[i] * eta_plus, smax)
            elif g_prev[i] * g[i] < 0:
                eta[i] = max(eta[i] * eta_minus, smin)
                g[i] = 0.0
        theta = theta - eta * np.sign(g)
        g_prev = g
        out.append(theta)
    return out


def ref_lion(theta, grads, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
    b1, b2 = betas
    out, m = [], np.zeros_like(theta)
    for t, g in enumerate(grads, 1):
        c = b1 * m + (1 - b1) * g
        theta = theta - _lr(lr, t) * (np.sign(c) + weight_decay * theta)
        m = b2 * m + (1 - b2) * g
        out.append(theta)
    return out


def ref_asgd(theta, grads, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0.0, averages=None):
    """torch.optim.ASGD (its documentation has no pseudo-code: the rule its docstring cites,
    as torch's step writes it); the averaged parameters ``ax`` of each step go to ``averages``."""
    out, eta, mu, ax = [], _lr(lr, 1), 1.0, np.zeros_like(theta)
    for t, g in enumerate(grads, 1):
        g = g + weight_decay * theta
        theta = theta * (1 - lambd * eta) - eta * g
        ax = theta.copy() if mu == 1 else ax + mu * (theta - ax)
        eta = _lr(lr, t) / (1 + lambd * _lr(lr, t) * t) ** alpha
        mu = 1 / max(1, t - t0)
        out.append(theta)
        if averages is not None:
            averages.append(ax)
    return out


_SHAPES = [(4,), (3, 4)]  # the fixed problem's leaves, flattened in this order


def _cut(v, shapes=None):
    """The flat vector ``v`` as leaves of ``shapes`` (the fixed problem's by default)."""
    shapes = shapes or _SHAPES
    ends = np.cumsum([int(np.prod(s)) for s in shapes])[:-1]
    return [x.reshape(s) for x, s in zip(np.split(v, ends), shapes, strict=True)]


def ref_keras_lamb(theta, grads, lr=1e-3, b1=0.9, b2=0.999, eps=1e-7, weight_decay=0.0, shapes=None):
    """keras.optimizers.Lamb's update_step (Keras 3), leaf by leaf (the trust ratio is per
    variable), after the base class's decay of the weights theta <- theta - theta * wd * lr."""
    leaves = _cut(theta, shapes)
    m, v = [np.zeros_like(x) for x in leaves], [np.zeros_like(x) for x in leaves]
    out = []
    for t, g in enumerate(grads, 1):
        for i, G in enumerate(_cut(g, shapes)):
            w = leaves[i] - leaves[i] * weight_decay * _lr(lr, t)
            m[i] = m[i] + (G - m[i]) * (1 - b1)
            v[i] = v[i] + (G**2 - v[i]) * (1 - b2)
            update = (m[i] / (1 - b1**t)) / (np.sqrt(v[i] / (1 - b2**t)) + eps)
            w_norm, g_norm = np.sqrt(np.sum(w**2)), np.sqrt(np.sum(update**2))
            ratio = w_norm / g_norm if w_norm > 0 and g_norm > 0 else 1.0
            leaves[i] = w - ratio * _lr(lr, t) * update
        out.append(np.concatenate([x.ravel() for x in leaves]))
    return out


def ref_ftrl(theta, grads, lr=1e-3, power=-0.5, acc0=0.1, l1=0.0, l2=0.0, shrinkage=0.0, beta=0.0, weight_decay=0.0):
    """keras.optimizers.Ftrl's update_step (Keras 3), after the base class's weight decay."""
    n, z, out = np.full_like(theta, acc0), np.zeros_like(theta), []
    for t, g in enumerate(grads, 1):
        gamma = _lr(lr, t)
        theta = theta - theta * weight_decay * gamma
        new_n = n + g**2
        z = z + (g + 2 * shrinkage * theta) - (new_n**-power - n**-power) / gamma * theta
        quadratic = new_n**-power / gamma + 2 * (l2 + beta / (2 * gamma))
        theta, n = (np.clip(z, -l1, l1) - z) / quadratic, new_n
        out.append(theta)
    return out


def ref_adafactor(
    theta, grads, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0, maximize=False, shapes=None
):
    """torch.optim.Adafactor's pseudo-code, leaf by leaf: the flat vectors are cut into leaves of
    ``shapes`` (the fixed problem's by default); leaves of 2 or more dimensions are factored."""
    shapes = shapes or _SHAPES
    cut = functools.partial(_cut, shapes=shapes)
    eps1 = np.finfo(np.float64).eps if eps[0] is None else eps[0]
    leaves = cut(theta)
    row = [np.zeros((*s[:-1], 1)) for s in shapes]  # used for the factored leaves only
    col = [np.zeros((*s[:-2], 1, s[-1])) if len(s) > 1 else None for s in shapes]
    var = [np.zeros(s) for s in shapes]
    rms = lambda x: np.sqrt(np.mean(x**2))
    out = []
    for t, g in enumerate(grads, 1):
        gamma, beta2 = _lr(lr, t), 1 - t**beta2_decay
        rho = min(gamma, 1 / np.sqrt(t))
        for i, (th, G) in enumerate(zip(leaves, cut(g), strict=True)):
            G = -G if maximize else G
            alpha = max(eps[1], rms(th)) * rho
            if G.ndim > 1:
                row[i] = beta2 * row[i] + (1 - beta2) * np.mean(G**2, axis=-1, keepdims=True)
                col[i] = beta2 * col[i] + (1 - beta2) * np.mean(G**2, axis=-2, keepdims=True)
                v = row[i] * col[i] / np.maximum(np.mean(row[i], axis=-2, keepdims=True), eps1)
            else:
                v = var[i] = beta2 * var[i] + (1 - beta2) * G**2
            U = G / np.maximum(np.sqrt(v), eps1)
            leaves[i] = th - gamma * weight_decay * th - alpha * U / max(1.0, rms(U) / d)
        out.append(np.concatenate([x.ravel() for x in leaves]))
    return out


# ------------------------------------------------------------------------------------------------
# Fixed problem: a two-leaf pytree and a fixed sequence of gradients. "b" always has a positive
# gradient (Rprop's step sizes grow), "w" changes sign at random, and a few entries are exactly 0.


def _problem(steps: int):
    rng = np.random.default_rng(1234)
    params = {"b": rng.normal(size=(4,)), "w": rng.normal(size=(3, 4))}
    grads = []
    for k in range(steps):
        g = {"b": np.abs(rng.normal(size=(4,))) * 0.5 + 0.1, "w": rng.normal(size=(3, 4)) * (1 + k % 3)}
        g["w"][k % 3, k % 4] = 0.0
        grads.append(g)
    return params, grads


def _flat(tree) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(tree)])


def _trajectory(opt, params, grads):
    # Op by op on purpose: every optimizer here runs on the same two leaf shapes, so each
    # elementwise operation compiles once for all of them. A jitted step per update function
    # (about 30 distinct ones) compiles more: XLA on CPU pays per fused kernel, and a program of
    # its own per optimizer shares none of them.
    params = jax.tree.map(jax.device_put, params)
    state, out = opt.init(params), []
    for g in grads:
        updates, state = opt.update(jax.tree.map(jax.device_put, g), state, params)
        params = O.apply_updates(params, updates)
        out.append(_flat(params))
    return out


def _scanned_trajectory(opt, params, grads):
    """:func:`_trajectory` as ONE compiled program (a scan over the steps): for leaf shapes that
    no other test runs op by op, where every operation would compile a program of its own."""

    @jax.jit
    def run(params, grads):
        def step(carry, g):
            params, state = carry
            updates, state = opt.update(g, state, params)
            params = O.apply_updates(params, updates)
            return (params, state), params

        return jax.lax.scan(step, (params, opt.init(params)), grads)[1]

    out = run(params, jax.tree.map(lambda *g: np.stack(g), *grads))
    return [_flat(jax.tree.map(lambda x, t=t: np.asarray(x)[t], out)) for t in range(len(grads))]


def _decay_lr(k):
    return 0.1 * 0.5 ** (k / 2)


def _piecewise_lr(k):
    return 0.1 if k <= 1 else (0.05 if k <= 3 else 0.01)


GOLDEN = [
    # (id, optimizer, reference, steps)
    ("sgd", O.sgd(), ref_sgd, 6),
    ("sgd-momentum", O.sgd(0.1, momentum=0.9), lambda th, g: ref_sgd(th, g, 0.1, momentum=0.9), 6),
    (
        "sgd-dampening",
        O.sgd(0.1, momentum=0.9, dampening=0.3),
        lambda th, g: ref_sgd(th, g, 0.1, momentum=0.9, dampening=0.3),
        6,
    ),
    (
        "sgd-nesterov",
        O.sgd(0.1, momentum=0.9, nesterov=True),
        lambda th, g: ref_sgd(th, g, 0.1, momentum=0.9, nesterov=True),
        6,
    ),
    ("sgd-weight_decay", O.sgd(0.1, weight_decay=0.1), lambda th, g: ref_sgd(th, g, 0.1, weight_decay=0.1), 6),
    (
        "sgd-all",
        O.sgd(0.05, momentum=0.8, dampening=0.5, weight_decay=0.2),
        lambda th, g: ref_sgd(th, g, 0.05, momentum=0.8, dampening=0.5, weight_decay=0.2),
        6,
    ),
    (
        "sgd-nesterov-wd",
        O.sgd(0.05, momentum=0.8, nesterov=True, weight_decay=0.2),
        lambda th, g: ref_sgd(th, g, 0.05, momentum=0.8, nesterov=True, weight_decay=0.2),
        6,
    ),
    ("momentum", O.momentum(0.1), lambda th, g: ref_sgd(th, g, 0.1, momentum=0.9), 6),
    ("nesterov", O.nesterov(0.1), lambda th, g: ref_sgd(th, g, 0.1, momentum=0.9, nesterov=True), 6),
    (
        "sgd-momentum-schedule",
        O.sgd(S.piecewise_constant([1, 3], [0.1, 0.05, 0.01]), momentum=0.9),
        lambda th, g: ref_sgd(th, g, _piecewise_lr, momentum=0.9),
        6,
    ),
    ("adagrad", O.adagrad(), ref_adagrad, 6),
    ("adagrad-lr_decay", O.adagrad(0.1, lr_decay=0.3), lambda th, g: ref_adagrad(th, g, 0.1, lr_decay=0.3), 6),
    (
        "adagrad-initial_accumulator",
        O.adagrad(0.1, initial_accumulator_value=0.5),
        lambda th, g: ref_adagrad(th, g, 0.1, initial_accumulator_value=0.5),
        6,
    ),
    (
        "adagrad-wd-eps",
        O.adagrad(0.1, eps=1e-3, weight_decay=0.1),
        lambda th, g: ref_adagrad(th, g, 0.1, eps=1e-3, weight_decay=0.1),
        6,
    ),
    ("rmsprop", O.rmsprop(), ref_rmsprop, 6),
    ("rmsprop-centered", O.rmsprop(centered=True), lambda th, g: ref_rmsprop(th, g, centered=True), 6),
    ("rmsprop-momentum", O.rmsprop(momentum=0.9), lambda th, g: ref_rmsprop(th, g, momentum=0.9), 6),
    (
        "rmsprop-all",
        O.rmsprop(0.05, decay=0.9, momentum=0.5, centered=True, weight_decay=0.1),
        lambda th, g: ref_rmsprop(th, g, 0.05, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.1),
        6,
    ),
    ("adadelta", O.adadelta(), ref_adadelta, 6),
    (
        "adadelta-all",
        O.adadelta(0.5, rho=0.5, eps=1e-3, weight_decay=0.1),
        lambda th, g: ref_adadelta(th, g, 0.5, rho=0.5, eps=1e-3, weight_decay=0.1),
        6,
    ),
    ("adam", O.adam(), ref_adam, 6),
    ("adam-amsgrad", O.adam(amsgrad=True), lambda th, g: ref_adam(th, g, amsgrad=True), 6),
    ("adam-weight_decay", O.adam(weight_decay=0.1), lambda th, g: ref_adam(th, g, weight_decay=0.1), 6),
    (
        "adam-amsgrad-all",
        O.adam(0.1, b1=0.5, b2=0.6, eps=1e-4, weight_decay=0.1, amsgrad=True),
        lambda th, g: ref_adam(th, g, 0.1, betas=(0.5, 0.6), eps=1e-4, weight_decay=0.1, amsgrad=True),
        6,
    ),
    ("adam-schedule", O.adam(S.exponential_decay(0.1, 2, 0.5)), lambda th, g: ref_adam(th, g, _decay_lr), 6),
    ("adamw", O.adamw(), ref_adamw, 6),
    (
        "adamw-amsgrad",
        O.adamw(0.1, b2=0.6, weight_decay=0.5, amsgrad=True),
        lambda th, g: ref_adamw(th, g, lr=0.1, betas=(0.9, 0.6), weight_decay=0.5, amsgrad=True),
        6,
    ),
    ("adamax", O.adamax(), ref_adamax, 6),
    (
        "adamax-all",
        O.adamax(0.1, b1=0.5, b2=0.6, eps=1e-3, weight_decay=0.1),
        lambda th, g: ref_adamax(th, g, 0.1, betas=(0.5, 0.6), eps=1e-3, weight_decay=0.1),
        6,
    ),
    ("nadam", O.nadam(), ref_nadam, 6),
    ("nadam-weight_decay", O.nadam(0.1, weight_decay=0.1), lambda th, g: ref_nadam(th, g, 0.1, weight_decay=0.1), 6),
    (
        "nadam-momentum_decay",
        O.nadam(b1=0.8, momentum_decay=0.1),
        lambda th, g: ref_nadam(th, g, betas=(0.8, 0.999), momentum_decay=0.1),
        6,
    ),
    # 10 steps so that RAdam's rectified branch (rho_t > 5 from t = 6) runs several times.
    ("radam", O.radam(), ref_radam, 10),
    (
        "radam-all",
        O.radam(0.1, b2=0.9, weight_decay=0.1),
        lambda th, g: ref_radam(th, g, 0.1, betas=(0.9, 0.9), weight_decay=0.1),
        10,
    ),
    ("rprop", O.rprop(), ref_rprop, 6),
    (
        "rprop-all",
        O.rprop(0.1, etas=(0.3, 1.5), step_sizes=(1e-2, 0.2)),
        lambda th, g: ref_rprop(th, g, 0.1, etas=(0.3, 1.5), step_sizes=(1e-2, 0.2)),
        6,
    ),
    ("lion", O.lion(), ref_lion, 6),
    (
        "lion-all",
        O.lion(0.1, b1=0.5, b2=0.7, weight_decay=0.3),
        lambda th, g: ref_lion(th, g, 0.1, betas=(0.5, 0.7), weight_decay=0.3),
        6,
    ),
    ("asgd", O.asgd(), ref_asgd, 6),
    (  # averaging from the start, and a step size that decays fast
        "asgd-all",
        O.asgd(0.05, lambd=0.5, alpha=0.6, t0=0, weight_decay=0.1),
        lambda th, g: ref_asgd(th, g, 0.05, lambd=0.5, alpha=0.6, t0=0, weight_decay=0.1),
        6,
    ),
    (
        "asgd-schedule",
        O.asgd(S.exponential_decay(0.1, 2, 0.5), lambd=0.5),
        lambda th, g: ref_asgd(th, g, _decay_lr, lambd=0.5),
        6,
    ),
    ("adafactor", O.adafactor(), ref_adafactor, 6),
    (
        "adafactor-all",
        O.adafactor(0.05, beta2_decay=-0.5, eps=(1e-3, 1.5), d=1.05, weight_decay=0.1, maximize=True),
        lambda th, g: ref_adafactor(th, g, 0.05, -0.5, (1e-3, 1.5), 1.05, weight_decay=0.1, maximize=True),
        6,
    ),
    (
        "adafactor-schedule",
        O.adafactor(S.exponential_decay(0.1, 2, 0.5), weight_decay=0.2),
        lambda th, g: ref_adafactor(th, g, _decay_lr, weight_decay=0.2),
        6,
    ),
    # Keras's Lamb and Ftrl (torch.optim has neither): their update_step, as keras/src/optimizers has it
    ("lamb", O.lamb(), ref_keras_lamb, 6),
    (
        "lamb-all",
        O.lamb(0.05, b1=0.8, b2=0.99, eps=1e-3, weight_decay=0.1),
        lambda th, g: ref_keras_lamb(th, g, 0.05, 0.8, 0.99, 1e-3, weight_decay=0.1),
        6,
    ),
    (
        "lamb-schedule",
        O.lamb(S.exponential_decay(0.1, 2, 0.5), weight_decay=0.2),
        lambda th, g: ref_keras_lamb(th, g, _decay_lr, weight_decay=0.2),
        6,
    ),
    ("ftrl", O.ftrl(), ref_ftrl, 6),
    (
        "ftrl-all",
        O.ftrl(0.1, -0.7, 0.5, 0.5, 0.1, 0.2, 0.3, weight_decay=0.1),
        lambda th, g: ref_ftrl(th, g, 0.1, -0.7, 0.5, 0.5, 0.1, 0.2, 0.3, weight_decay=0.1),
        6,
    ),
    (  # a fixed rate: sigma is 0, the initial weights are forgotten at once
        "ftrl-power0",
        O.ftrl(0.1, learning_rate_power=0.0, l1_regularization_strength=0.3),
        lambda th, g: ref_ftrl(th, g, 0.1, power=0.0, l1=0.3),
        6,
    ),
    (
        "ftrl-schedule",
        O.ftrl(S.exponential_decay(0.1, 2, 0.5), initial_accumulator_value=0.2, weight_decay=0.2),
        lambda th, g: ref_ftrl(th, g, _decay_lr, acc0=0.2, weight_decay=0.2),
        6,
    ),
]


@pytest.mark.parametrize("name,opt,ref,steps", GOLDEN, ids=[c[0] for c in GOLDEN])
def test_golden_trajectory_matches_torch_rule(name, opt, ref, steps):
    params, grads = _problem(steps)
    ours = _trajectory(opt, params, grads)
    expected = ref(_flat(params), [_flat(g) for g in grads])
    for t, (a, b) in enumerate(zip(ours, expected, strict=True), 1):
        np.testing.assert_allclose(a, b, rtol=GOLDEN_RTOL, atol=0, err_msg=f"{name}, step {t}")


def test_golden_options_are_exercised():
    """The option configs really take their own paths on the fixed problem (else they test nothing)."""
    params, grads = _problem(10)
    th, gs = _flat(params), [_flat(g) for g in grads]
    diff = lambda a, b: np.max(np.abs(a[-1] - b[-1])) > 1e-6
    assert diff(ref_adam(th, gs[:6], 0.1, betas=(0.5, 0.6), amsgrad=True), ref_adam(th, gs[:6], 0.1, betas=(0.5, 0.6)))
    # RAdam's configs (b2 = 0.999 and 0.9, 10 steps) run both the plain and the rectified branch.
    for b2 in (0.999, 0.9):
        rho = [(2 / (1 - b2) - 1) - 2 * t * b2**t / (1 - b2**t) for t in range(1, 11)]
        assert rho[0] <= 5 < rho[-1]
    # Rprop: some step sizes hit each bound, and some gradient signs flip.
    rp = ref_rprop(th, gs[:6], 0.1, etas=(0.3, 1.5), step_sizes=(1e-2, 0.2))
    moves = np.abs(np.diff(np.stack([th] + rp), axis=0))
    assert np.any(np.isclose(moves, 0.2)) and np.any(np.isclose(moves, 1e-2)) and np.any(moves == 0)
    # ASGD's averaged parameters part from the parameters (asgd-all averages from the start)
    averages = []
    asgd_all = ref_asgd(th, gs[:6], 0.05, lambd=0.5, alpha=0.6, t0=0, weight_decay=0.1, averages=averages)
    assert np.max(np.abs(averages[-1] - asgd_all[-1])) > 1e-3
    # Adafactor's clipping (d = 1.05) and its floor of the parameters' RMS (eps2 = 1.5) bind
    b, w = th[:4], th[4:]
    assert max(np.sqrt(np.mean(b**2)), np.sqrt(np.mean(w**2))) < 1.5
    clipped, unclipped = (ref_adafactor(th, gs[:6], 0.05, -0.5, (1e-3, 1.5), d) for d in (1.05, 1e9))
    assert diff(clipped, unclipped)
    # LAMB's decay changes the trust ratio; the L1 of ftrl-all and ftrl-power0 zeroes some
    # parameters (only some) at some steps; a fixed rate forgets the initial weights at once
    assert diff(ref_keras_lamb(th, gs[:6], 0.05, weight_decay=0.1), ref_keras_lamb(th, gs[:6], 0.05))
    for ftrl in (ref_ftrl(th, gs[:6], 0.1, -0.7, 0.5, 0.5, 0.1, 0.2, 0.3, 0.1), ref_ftrl(th, gs[:6], 0.1, 0.0, l1=0.3)):
        zeros = [np.mean(x == 0) for x in ftrl]
        assert max(zeros) < 1 and sum(z > 0 for z in zeros) >= 2
    assert np.all(ref_ftrl(th, gs[:1], 0.1, power=0.0)[0][gs[0] == 0] == 0) and np.any(gs[0] == 0)


# Keras 3.15.1's own trajectories (KERAS_BACKEND=jax, float32), pasted: the keras.optimizers call
# in each comment, then opt.apply(grads, variables) with _keras_grads(k) for k = 1..5 on
# variables b, w, x, y (below); the variables after the 5th call, in that order. x starts at 0
# (LAMB's trust ratio of a zero-norm leaf is 1) and y never gets a gradient (a zero direction:
# ratio 1 again, not 0/0; FTRL solves it to 0 or, with shrinkage and decay, to a clipped z).
_KERAS_PARAMS = {
    "b": np.array([0.5, -1.0, 2.0, 0.25]),
    "w": np.array([[0.3, -0.2, 0.1, 0.8], [1.5, -0.7, 0.0, -1.2], [0.05, 0.6, -0.4, 1.0]]),
    "x": np.zeros(4),
    "y": np.array([1.0, -2.0, 0.5, 3.0]),
}
_KERAS_SHAPES = [*_SHAPES, (4,), (4,)]  # the fixed problem's shapes: its kernels serve
_FTRL_ALL = dict(
    learning_rate_power=-0.7,
    initial_accumulator_value=0.5,
    l1_regularization_strength=0.5,
    l2_regularization_strength=0.1,
    l2_shrinkage_regularization_strength=0.2,
    beta=0.3,
    weight_decay=0.1,
)
KERAS = {
    "lamb": (  # Lamb(learning_rate=0.05)
        O.lamb(0.05),
        lambda th, g: ref_keras_lamb(th, g, 0.05, shapes=_KERAS_SHAPES),
        [0.629985213, -0.683170617, 2.15138268, 0.15848203, 0.107020549, -0.328652591, 0.155901313, 1.0414387,
         1.6484766, -0.726884961, -0.246428117, -1.36649084, 0.0486273021, 0.847453535, -0.217152148, 1.02916622,
         -0.0607748963, 0.0607748888, -0.0607749037, 0, 1, -2, 0.5, 3],
    ),
    "lamb-all": (  # Lamb(learning_rate=0.05, beta_1=0.8, beta_2=0.99, epsilon=1e-3, weight_decay=0.1)
        O.lamb(0.05, b1=0.8, b2=0.99, eps=1e-3, weight_decay=0.1),
        lambda th, g: ref_keras_lamb(th, g, 0.05, 0.8, 0.99, 1e-3, 0.1, shapes=_KERAS_SHAPES),
        [0.620375037, -0.702369273, 2.05789137, 0.141943678, 0.113990307, -0.299620837, 0.167614579, 1.00780392,
         1.58755243, -0.7265715, -0.235474348, -1.31354833, 0.0668163598, 0.825007319, -0.229684845, 0.983070493,
         -0.0594480038, 0.0593414754, -0.0595014133, 0, 0.975248754, -1.95049751, 0.487624377, 2.92574596],
    ),
    "ftrl": (  # Ftrl(learning_rate=0.1)
        O.ftrl(0.1),
        lambda th, g: ref_ftrl(th, g, 0.1),
        [0.322877049, -0.256491214, 1.41385019, 0.0750671104, 0.0672207847, -0.209030464, 0.186796233, 0.812541962,
         1.33079648, -0.606991112, -0.26734665, -1.09980202, 0.117896743, 0.588118911, -0.221177623, 0.739063621,
         -0.389362454, 0.353439718, -0.404068351, 0, 0, 0, 0, 0],
    ),
    "ftrl-all": (  # Ftrl(learning_rate=0.1, **_FTRL_ALL), Keras's names
        O.ftrl(0.1, **_FTRL_ALL),
        lambda th, g: ref_ftrl(th, g, 0.1, -0.7, 0.5, 0.5, 0.1, 0.2, 0.3, weight_decay=0.1),
        [0.0910121724, 0, 0.719068766, 0, 0.0236479733, -0.140988708, 0.0967854559, 0.445569336, 1.00949252,
         -0.330076396, -0.127782136, -0.823117793, 0.0633217171, 0.221191749, -0.17078732, 0.49815014, -0.183178559,
         0.154149041, -0.191340134, 0, 0, 0.0262527261, 0, -0.0618557334],
    ),
    "ftrl-power0": (  # Ftrl(learning_rate=0.1, learning_rate_power=0.0, l1_regularization_strength=0.3)
        O.ftrl(0.1, learning_rate_power=0.0, l1_regularization_strength=0.3),
        lambda th, g: ref_ftrl(th, g, 0.1, power=0.0, l1=0.3),
        [0.0935818478, 0.0515950508, -0.00540986052, -0.0898591131, -0.234827563, 0, 0.314458072, 0.359726578,
         0.0466822572, -0.276863396, -0.378280222, -0.104326151, 0.233126804, 0.388662159, 0.159281448, -0.184123725,
         -0.719999969, 0.344999999, -1.47000003, 0, 0, 0, 0, 0],
    ),
}  # fmt: skip


def _keras_grads(k):
    w = np.sin(0.7 * k + np.arange(12.0)).reshape(3, 4) * (1 + k % 2)
    if k == 2:
        w[0, 0] = 0.0
    return {"b": np.cos(k + np.arange(4.0)), "w": w, "x": np.array([0.5, -0.25, 1.0, 0.0]) * k, "y": np.zeros(4)}


@pytest.mark.parametrize("name", KERAS)
def test_lamb_and_ftrl_match_keras(name):
    """fnn against Keras's float32 trajectory, to float32 tolerance: Keras takes 1 - beta_2 in
    float64 for its second moment but beta_2**t in float32 for the bias correction, which moves
    its LAMB steps by 6.6e-6 relative each (1.3e-5 after 5 steps of the zero-norm leaf, the
    largest difference), where fnn's corrections are consistent. The NumPy
    references of the golden tests (rtol 1e-12) are Keras's rule: they give its numbers too."""
    opt, ref, want = KERAS[name]
    # Keras's float32 inputs, computed on in float64 (the golden tests' kernels serve)
    as32 = lambda tree: jax.tree.map(lambda x: np.asarray(x, np.float32).astype(np.float64), tree)
    params, grads = as32(_KERAS_PARAMS), [as32(_keras_grads(k)) for k in range(1, 6)]
    ours = _trajectory(opt, params, grads)[-1]
    np.testing.assert_allclose(ours, want, rtol=2e-5, atol=1e-7)
    np.testing.assert_array_equal(ours[np.equal(want, 0)], 0.0)  # FTRL's L1 zeros are exact, as Keras's
    mine = ref(_flat(params), [_flat(g) for g in grads])[-1]
    np.testing.assert_allclose(mine, want, rtol=2e-5, atol=1e-7)
    # Keras's default weight_decay=None is no decay, as 0 is: the same optimizer
    family = getattr(O, name.split("-")[0])
    assert family(weight_decay=None) == family() != family(weight_decay=0.1)


def test_adafactor_factors_the_last_two_axes_of_a_3d_leaf_and_keeps_scalars_whole():
    """A (2, 3, 4) leaf is a batch of two 3x4 matrices, each with its own row (2, 3, 1) and column
    (2, 1, 4) factors; a 0-d leaf keeps a full second moment, as torch's."""
    rng = np.random.default_rng(5)
    params = {"k": rng.normal(size=(2, 3, 4)), "s": np.float64(0.7)}
    grads = [{"k": rng.normal(size=(2, 3, 4)) * (1 + t), "s": np.float64(rng.normal())} for t in range(8)]
    shapes = [(2, 3, 4), ()]
    flat = _flat(params), [_flat(g) for g in grads]
    options = [({}, {}), (dict(learning_rate=0.3, d=1.1, weight_decay=0.1), dict(lr=0.3, d=1.1, weight_decay=0.1))]
    for ours, kw in options:
        opt = O.adafactor(**ours)
        want = ref_adafactor(*flat, shapes=shapes, **kw)
        for t, (a, b) in enumerate(zip(_scanned_trajectory(opt, params, grads), want, strict=True), 1):
            np.testing.assert_allclose(a, b, rtol=GOLDEN_RTOL, atol=0, err_msg=f"{kw}, step {t}")
    inner = jax.eval_shape(O.adafactor().init, params).inner_state[0]  # its structure and shapes
    assert isinstance(inner, O.ScaleByAdafactorState)
    shapes = {k: [None if x[k] is None else x[k].shape for x in inner[1:]] for k in params}
    assert shapes == {"k": [(2, 3, 1), (2, 1, 4), None], "s": [None, None, ()]}  # row_var, col_var, variance


def test_adafactor_with_beta2_decay_0_keeps_the_last_squared_gradient_exactly():
    """``beta2_decay=0`` weighs the new squared gradient by ``t**0 = 1``: the second moment is the
    last step's, as torch's ``lerp`` gives it, however large the one before. ``v + 1 * (g^2 - v)``
    lost a small ``g^2`` against a large ``v`` (0, then the floor eps1^2: a step 10x too big)."""
    params = {"b": np.ones(2), "k": np.ones((2, 3))}
    big, tiny = ({"b": np.array([1e3, s]), "k": np.full((2, 3), 1e3) * s} for s in (1e-3, 1e-6))
    grads = [big, tiny, tiny]
    opt = O.adafactor(0.1, beta2_decay=0.0)
    want = ref_adafactor(_flat(params), [_flat(g) for g in grads], 0.1, 0.0, shapes=[(2,), (2, 3)])
    for t, (a, b) in enumerate(zip(_scanned_trajectory(opt, params, grads), want, strict=True), 1):
        np.testing.assert_allclose(a, b, rtol=GOLDEN_RTOL, atol=0, err_msg=f"step {t}")
    state = opt.init(params)
    for g in grads[:2]:
        _, state = opt.update(g, state, params)
    inner = state.inner_state[0]
    assert np.array_equal(inner.variance["b"], tiny["b"] ** 2)  # 1e-6^2 and 1e-12^2, not 0
    assert np.array_equal(inner.row_var["k"], np.mean(tiny["k"] ** 2, axis=-1, keepdims=True))


def test_radam_rectifies_at_torchs_steps_in_float32():
    """In float32 (x64 off) RAdam's rho_t, the difference of two terms of about 2 / (1 - b2),
    computed as written lost its digits: at b2 = 0.99992 the 3rd step rectified (torch's does not:
    rho_3 is 3) and at 0.999 the 6th step's r_t was 2e-3 off. With a gradient of 1 every step the
    update is -lr r_t once rho_t > 5 and -lr before; the reference is float64, with b2 as float32
    holds it (torch, in double, agrees to that rounding of b2)."""
    betas, steps, lr = (0.999, 0.9986, 0.9999, 0.99992, 0.99999), 48, 1e-3
    with jax.enable_x64(False):

        @jax.jit
        def run():
            out = []
            for b2 in betas:
                opt, p = O.radam(lr, b2=b2, eps=0.0), jnp.zeros(1, jnp.float32)

                def step(carry, _, opt=opt):
                    u, state = opt.update(jnp.ones(1, jnp.float32), carry, p)
                    return state, u[0]

                out.append(jax.lax.scan(step, opt.init(p), None, length=steps)[1])
            return jnp.stack(out)

        ours = np.asarray(run(), np.float64)
    t = np.arange(1, steps + 1, dtype=np.float64)
    for b2, row in zip(betas, ours, strict=True):
        b2 = float(np.float32(b2))
        rho_inf = 2 / (1 - b2) - 1
        rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
        r = np.sqrt(np.abs((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho)))
        want = -lr * np.where(rho > 5, r, 1.0)
        assert np.array_equal(rho > 5, t > 5), b2  # the threshold is crossed inside the run
        np.testing.assert_allclose(row, want, rtol=2e-5, atol=0, err_msg=f"b2={b2}")


def test_asgd_averaged_params_are_torchs_ax():
    """``averaged_params`` reads ASGD's ``ax`` from the state: the parameters until step t0 + 1,
    then their running mean (t0 = 2.5: weights 1/1.5, 1/2.5, ...)."""
    params, grads = _problem(8)
    opt = O.asgd(0.05, lambd=0.1, t0=2.5, weight_decay=0.1)
    averages = []
    flat = _flat(params), [_flat(g) for g in grads]
    want = ref_asgd(*flat, 0.05, lambd=0.1, t0=2.5, weight_decay=0.1, averages=averages)
    p = jax.tree.map(jax.device_put, params)
    state = opt.init(p)
    np.testing.assert_array_equal(_flat(O.averaged_params(state)), _flat(params))  # before a step: the params
    for t, g in enumerate(grads):
        updates, state = opt.update(g, state, p)
        p = O.apply_updates(p, updates)
        np.testing.assert_allclose(_flat(p), want[t], rtol=GOLDEN_RTOL, atol=0)
        np.testing.assert_allclose(_flat(O.averaged_params(state)), averages[t], rtol=GOLDEN_RTOL, atol=0)
    assert not np.allclose(averages[-1], want[-1])  # the average has started
    batched = jax.vmap(opt.init)(jax.tree.map(lambda x: np.stack([x, x]), params))
    assert O.averaged_params(batched)["w"].shape == (2, 3, 4)
    for other in (O.adam().init(p), O.chain(O.asgd(), O.asgd()).init(p)):
        with pytest.raises(ValueError, match="averaged_params: the optimizer state holds (no|2) ASGD state"):
            O.averaged_params(other)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_asgd_averages_half_precision_params_as_apply_updates_rounds_them(dtype):
    """``ax`` averages the parameters the steps reach (apply_updates rounds them to their dtype),
    bit for bit, not the unrounded ``p - step``: bfloat16 [1, 2] that steps of 1e-3 leave
    unchanged keep an ``ax`` of [1, 2], as torch's."""
    opt = O.asgd(0.001, lambd=0.0)
    p = jnp.array([1.0, 2.0], dtype)
    state = opt.init(p)
    for _ in range(100):
        updates, state = opt.update(jnp.ones(2, dtype), state, p)
        p = O.apply_updates(p, updates)
    if dtype == jnp.bfloat16:
        assert p.tolist() == [1.0, 2.0]
    np.testing.assert_array_equal(O.averaged_params(state), np.asarray(p, np.float32))
    # varied steps, float32 gradients too, and the average from t0 on: the mean of the rounded params
    rng = np.random.default_rng(0)
    for grad_dtype in (dtype, jnp.float32):
        for t0 in (1e6, 0):
            opt = O.asgd(0.03, lambd=0.1, t0=t0, weight_decay=0.01)
            p = jnp.asarray(rng.normal(size=(3, 5)), dtype)
            state, reached = opt.init(p), []
            for _ in range(12):
                updates, state = opt.update(jnp.asarray(rng.normal(size=(3, 5)), grad_dtype), state, p)
                p = O.apply_updates(p, updates)
                reached.append(np.asarray(p, np.float64))
                if t0 == 1e6:  # the params themselves
                    np.testing.assert_array_equal(O.averaged_params(state), np.asarray(p, np.float32))
            if t0 == 0:  # the mean of the params since step t0 + 2
                np.testing.assert_allclose(O.averaged_params(state), np.mean(reached[1:], 0), rtol=1e-5, atol=1e-6)


_FTRL_SET = dict(
    learning_rate=0.2,
    learning_rate_power=0.0,
    l1_regularization_strength=1e-3,
    l2_regularization_strength=1e-2,
    l2_shrinkage_regularization_strength=1e-3,
    beta=0.1,
)


@pytest.mark.parametrize(
    "name,first,second,changes,built",
    [
        (
            "asgd",
            dict(learning_rate=0.1, t0=20, weight_decay=1e-4),
            dict(learning_rate=0.05, lambd=0.01, alpha=0.5, t0=3, weight_decay=1e-3),
            dict(learning_rate=0.02, lambd=0.1, alpha=1.0, t0=0.0, weight_decay=0.01),
            dict(learning_rate=0.02, lambd=0.1, alpha=1.0, t0=0.0, weight_decay=0.01),
        ),
        (
            "adafactor",
            dict(learning_rate=0.1),
            dict(learning_rate=0.05, beta2_decay=-0.5, eps=(None, 1e-2), d=2.0),
            dict(learning_rate=0.02, beta2_decay=-1.0, eps2=0.1, d=1.5),
            dict(learning_rate=0.02, beta2_decay=-1.0, eps=(None, 0.1), d=1.5),  # the same, as built
        ),
        (
            "muon",
            dict(learning_rate=0.05),
            dict(learning_rate=0.02, momentum=0.9, adam_beta_1=0.8, muon_a=3.0, rms_rate=0.3, adam_lr_ratio=0.5),
            dict(learning_rate=0.01, momentum=0.5, epsilon=1e-6, weight_decay=0.01, muon_c=2.0),
            dict(
                learning_rate=0.01,
                momentum=0.5,
                epsilon=1e-6,
                weight_decay=0.01,
                muon_c=2.0,
                adam_beta_1=0.8,
                muon_a=3.0,
                rms_rate=0.3,
                adam_lr_ratio=0.5,
            ),  # the same, as built
        ),
        (
            "lamb",
            dict(learning_rate=0.02, weight_decay=1e-4),
            dict(learning_rate=0.01, b1=0.8, b2=0.99, eps=1e-6, weight_decay=1e-3),
            dict(learning_rate=0.005, b1=0.5, b2=0.9, eps=1e-5, weight_decay=0.01),
            dict(learning_rate=0.005, b1=0.5, b2=0.9, eps=1e-5, weight_decay=0.01),
        ),
        (  # initial_accumulator_value is init's alone: another one shares the programs too
            "ftrl",
            dict(learning_rate=0.5),
            dict(learning_rate=0.3, learning_rate_power=-0.7, initial_accumulator_value=0.5, beta=0.2),
            _FTRL_SET,
            _FTRL_SET,  # Keras's names, as built
        ),
    ],
)
def test_recent_families_train_in_fit_and_new_values_compile_nothing(name, first, second, changes, built, compiles):
    """Each trains a small regression; an optimizer of other values, and values set into a
    state (for an optimizer built with them), reuse fit's compiled programs."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3))
    y = x @ np.array([[1.0], [-2.0], [0.5]]) + 0.5
    net = fnn.mlp([8, 1])
    params = net.init(jax.random.PRNGKey(0), (3,), jnp.float64)
    fit = lambda opt, **kw: fnn.fit(net, params, opt, "mse", x, y, batch_size=8, verbose=0, **kw)
    trained = fit(O.get(name, **first), epochs=40)
    losses = trained.history["loss"]
    assert losses[-1] < 0.02 * losses[0], losses
    fit(O.get(name, **first), epochs=1, opt_state=trained.opt_state)  # fit's copy of a state given compiles once
    with compiles() as c:
        other = fit(O.get(name, **second), epochs=2)
        state = O.set_hyperparams(other.opt_state, **changes)
        fit(O.get(name, **built), epochs=1, opt_state=state)
    assert c.count == 0
    assert {k: float(v) for k, v in O.get_hyperparams(state).items() if k in changes} == changes
    if name == "asgd":
        chex.assert_trees_all_equal_shapes(O.averaged_params(trained.opt_state), params)


def ref_newton_schulz(x, steps=5, abc=(3.4445, -4.7750, 2.0315)):
    """Keras's zeropower_via_newtonschulz5 in float64."""
    a, b, c = abc
    tall = x.shape[0] > x.shape[1]
    x = x.T if tall else x
    x = x / (np.linalg.norm(x) + 1e-7)
    for _ in range(steps):
        A = x @ x.T
        x = a * x + (b * A + c * A @ A) @ x
    return x.T if tall else x


def ref_muon(leaves, grads, learning_rate=1e-3, adam_beta_1=0.9, adam_beta_2=0.999, adam_weight_decay=0.004,
             epsilon=1e-7, weight_decay=0.004, adam_lr_ratio=1.0, momentum=0.95, ns_steps=5, nesterov=True,
             rms_rate=0.2):  # fmt: skip
    """keras.optimizers.Muon's update_step and _apply_weight_decay (Keras 3.15.1), in float64, on a
    list of leaves: 2-D ones take the Muon step, the others Adam's."""
    theta, m = [np.array(x, np.float64) for x in leaves], [np.zeros(np.shape(x)) for x in leaves]
    v, out = [np.zeros(np.shape(x)) for x in leaves], []
    for t, gs in enumerate(grads, 1):
        for i, g in enumerate(gs):
            matrix = theta[i].ndim == 2
            theta[i] = theta[i] - theta[i] * (weight_decay if matrix else adam_weight_decay) * learning_rate
            if matrix:
                m[i] = momentum * m[i] + g
                o = ref_newton_schulz(g + momentum * m[i] if nesterov else m[i], ns_steps)
                scale = 1.0 if rms_rate is None else np.sqrt(max(g.shape)) * rms_rate
                theta[i] = theta[i] - learning_rate * scale * o
            else:
                m[i] = m[i] + (g - m[i]) * (1 - adam_beta_1)
                v[i] = v[i] + (g * g - v[i]) * (1 - adam_beta_2)
                alpha = learning_rate * adam_lr_ratio * np.sqrt(1 - adam_beta_2**t) / (1 - adam_beta_1**t)
                theta[i] = theta[i] - m[i] * alpha / (np.sqrt(v[i]) + epsilon)
        out.append(np.concatenate([x.ravel() for x in theta]))
    return out


def _muon_problem():
    """A 3-4-2 MLP's params ([{"w", "b"}] per Dense; w1 wide, w2 tall) and 3 steps' gradients, from
    formulas (the Keras script that made the numbers below computes the same ones)."""
    leaves = [0.5 * np.sin(np.arange(12.0) + 1).reshape(3, 4), 0.1 * np.cos(np.arange(4.0)),
              0.5 * np.sin(0.7 * np.arange(8.0) + 2).reshape(4, 2), np.array([0.05, -0.05])]  # fmt: skip
    grads = [
        [0.2 * np.sin(1.3 * np.arange(x.size) + 0.9 * t + k).reshape(x.shape) for k, x in enumerate(leaves)]
        for t in range(3)
    ]
    return leaves, grads


@functools.cache
def _muon_trajectories():
    """Each _KERAS_MUON case's muon over _muon_problem, in float32 and float64: params after each
    step, flat as (w1, b1, w2, b2); all in ONE compiled program."""
    leaves, grads = _muon_problem()
    tree = lambda xs: [{"w": xs[0], "b": xs[1]}, {"w": xs[2], "b": xs[3]}]
    runs = [(case, dtype) for case in sorted(_KERAS_MUON) for dtype in (np.float32, np.float64)]
    cast = lambda dtype, xs: [jax.device_put(np.asarray(x, dtype)) for x in xs]
    inputs = [(cast(dtype, leaves), cast(dtype, [np.stack(g) for g in zip(*grads, strict=True)])) for _, dtype in runs]

    @jax.jit
    def run(inputs):
        out = []
        for (case, _), (xs, gs) in zip(runs, inputs, strict=True):
            opt = O.muon(**_KERAS_MUON[case][0])

            def step(carry, g, opt=opt):  # the steps scanned: a program a third the size
                params, state = carry
                updates, state = opt.update(tree(g), state, params)
                params = O.apply_updates(params, updates)
                flat = jnp.concatenate([jnp.ravel(params[i][k]) for i in (0, 1) for k in ("w", "b")])
                return (params, state), flat

            out.append(jax.lax.scan(step, (tree(xs), opt.init(tree(xs))), gs)[1])
        return out

    return {run: np.asarray(steps, np.float64) for run, steps in zip(runs, run(inputs), strict=True)}


# Keras 3.15.1, KERAS_BACKEND=jax, float32: the params after the 3 steps of _muon_problem by
# opt = keras.optimizers.Muon(**kw); opt.build(vs); opt.apply(grads_t, vs) for t = 0, 1, 2, with vs
# the four keras.Variable leaves (w1, b1, w2, b2) and kw each case's options.
_KERAS_MUON = {
    "defaults-nesterov": (
        dict(learning_rate=0.1),
        [0.38455653, 0.39976948, 0.077080406, -0.32007858, -0.45389193, -0.17924318, 0.2818638, 0.50905174,
         0.26490736, -0.25455192, -0.5493256, -0.31180835, -0.19130152, -0.09153672, 0.25091517, 0.13799326,
         0.41975483, 0.28287593, -0.073055275, -0.439623, -0.5566435, -0.36870474, 0.005327797, 0.34788162,
         0.0881228, 0.23531464],
    ),
    "all-options-no-nesterov": (
        dict(learning_rate=0.02, nesterov=False, momentum=0.9, rms_rate=None, adam_lr_ratio=0.5, weight_decay=0.01,
             adam_weight_decay=0.02, epsilon=1e-6, adam_beta_1=0.8, adam_beta_2=0.99, ns_steps=3),
        [0.40579838, 0.4241591, 0.06903647, -0.34874985, -0.46170643, -0.15901253, 0.3004553, 0.49887612,
         0.23698854, -0.2597983, -0.52430177, -0.29333913, 0.07099646, 0.040790923, -0.011989622, -0.07618133,
         0.43175355, 0.24428384, -0.097544886, -0.41942042, -0.5268298, -0.36523914, -0.021889936, 0.3213054,
         0.054819636, -0.021808952],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(_KERAS_MUON))
def test_muon_follows_keras_trajectory_and_a_float64_reference(case):
    """fnn's muon in float32 reaches Keras's params (float32 rounding: 5 iterations of a quintic
    with coefficients near 5 grow it to about 2e-6 here); in float64 it follows the NumPy
    reference of Keras's rule step by step, and that reference reaches Keras's numbers too."""
    kw, keras_final = _KERAS_MUON[case]
    leaves, grads = _muon_problem()
    want = ref_muon(leaves, grads, **kw)
    np.testing.assert_allclose(want[-1], keras_final, rtol=0, atol=1e-5)
    np.testing.assert_allclose(_muon_trajectories()[case, np.float32][-1], keras_final, rtol=0, atol=1e-5)
    for t, (a, b) in enumerate(zip(_muon_trajectories()[case, np.float64], want, strict=True)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15, err_msg=f"step {t + 1}")


def test_muon_newton_schulz_against_numpy_and_near_the_polar_factor():
    """One step of scale_by_muon without momentum or scaling is the Newton-Schulz iteration of
    the gradient (wide, tall and square, in float64), close to U V^T; a 1-D or masked-out leaf
    takes Adam's step, whose first is sign(g) at ε = 0 (a velocity kept for it alone)."""
    rng = np.random.default_rng(3)
    grads = {"wide": rng.normal(size=(3, 5)), "tall": rng.normal(size=(6, 2)), "sq": rng.normal(size=(4, 4)),
             "b": rng.normal(size=(4,)), "out": rng.normal(size=(2, 3))}  # fmt: skip
    mask = {"wide": True, "tall": True, "sq": True, "b": True, "out": False}
    transforms = [
        O.scale_by_muon(momentum=0.0, nesterov=False, ns_steps=steps, rms_rate=None, epsilon=0.0, mask=mask)
        for steps in (0, 5)
    ]
    # both in one program
    runs = jax.jit(lambda g: [t.update(g, t.init(g)) for t in transforms])(jax.device_put(grads))
    for steps, (out, _) in zip((0, 5), runs, strict=True):
        for k in ("wide", "tall", "sq"):
            np.testing.assert_allclose(out[k], ref_newton_schulz(grads[k], steps), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(out["b"], np.sign(grads["b"]), rtol=1e-6)
        np.testing.assert_allclose(out["out"], np.sign(grads["out"]), rtol=1e-6)
    adam_leaves = {k for k, v in runs[-1][1].velocity.items() if v is not None}
    assert adam_leaves == {"b", "out"}
    for k in ("wide", "tall", "sq"):  # singular values pushed from (0, 1] into about [0.7, 1.2]
        s = np.linalg.svd(np.asarray(out[k]), compute_uv=False)
        assert np.all((s > 0.6) & (s < 1.25)), (k, s)


def test_rprop_returns_this_steps_update():
    """optax's rprop returns the previous step's update; ours (like torch) moves on the first step."""
    opt = O.rprop(0.1)
    params = {"x": np.array([1.0, -1.0, 2.0])}
    g = {"x": np.array([3.0, -0.5, 0.0])}

    @jax.jit
    def two_steps(g, params):
        first, state = opt.update(g, opt.init(params), params)
        second, _ = opt.update(g, state, params)  # same signs: step grows by eta_plus at once
        return first, second

    first, second = two_steps(g, params)
    np.testing.assert_array_equal(first["x"], [-0.1, 0.1, 0.0])
    np.testing.assert_allclose(second["x"], [-0.12, 0.12, 0.0], rtol=1e-15)


# ------------------------------------------------------------------------------------------------
# Convergence under jit (float32): a quadratic plus Rosenbrock, separable, so one run checks both.

_A = np.array([[3.0, 0.5], [0.5, 1.0]])
_B = np.array([1.0, -2.0])


def _objective(p):
    x, y = p["quad"], p["rosen"]
    quad = 0.5 * x @ jnp.asarray(_A, x.dtype) @ x - jnp.asarray(_B, x.dtype) @ x
    return quad + (1 - y[0]) ** 2 + 100 * (y[1] - y[0] ** 2) ** 2


CONVERGENCE = [
    ("sgd", dict(learning_rate=2e-3), 5e-3),
    ("momentum", dict(learning_rate=1e-3), 5e-3),
    ("nesterov", dict(learning_rate=1e-3), 5e-3),
    ("adagrad", dict(learning_rate=0.5), 5e-3),
    ("rmsprop", dict(learning_rate=1e-3), 5e-3),
    # Adadelta's effective step does not shrink near the optimum, so it circles in the valley.
    ("adadelta", dict(learning_rate=0.1), 6e-2),
    ("adam", dict(learning_rate=2e-2), 5e-3),
    ("adamw", dict(learning_rate=2e-2, weight_decay=0.0), 5e-3),
    ("adamax", dict(learning_rate=2e-2), 5e-3),
    ("nadam", dict(learning_rate=1e-2), 5e-3),
    ("radam", dict(learning_rate=3e-3), 5e-3),
    ("rprop", dict(learning_rate=1e-2), 5e-3),
    ("lion", dict(learning_rate=1e-3), 5e-3),
    ("asgd", dict(learning_rate=2e-3), 5e-3),
    # Adafactor's step is relative to the parameters' RMS and never below it times γ: it circles too.
    ("adafactor", dict(learning_rate=3e-3), 2e-2),
]


CONVERGENCE_P0 = {"quad": np.zeros(2, np.float32), "rosen": np.array([-1.0, 1.0], np.float32)}


@functools.cache
def _converged():
    """Every optimizer's 10,000 steps from CONVERGENCE_P0, all in ONE compiled program (the family
    compiles once; a program per optimizer costs the same kernels plus a compilation each)."""
    optimizers = {name: O.get(name, **kwargs) for name, kwargs, _ in CONVERGENCE}

    @jax.jit
    def run(p):
        out = {}
        for name, opt in optimizers.items():

            def step(carry, _, opt=opt):
                p, s = carry
                u, s = opt.update(jax.grad(_objective)(p), s, p)
                return (O.apply_updates(p, u), s), None

            out[name] = jax.lax.scan(step, (p, opt.init(p)), None, length=10_000)[0][0]
        return out

    return run(CONVERGENCE_P0)


@pytest.mark.parametrize("name,kwargs,rosen_tol", CONVERGENCE, ids=[c[0] for c in CONVERGENCE])
def test_converges_under_jit_on_quadratic_and_rosenbrock(name, kwargs, rosen_tol):
    p = _converged()[name]  # O.get(name, **kwargs), run by the family's one program
    chex.assert_trees_all_equal_dtypes(p, CONVERGENCE_P0)
    np.testing.assert_allclose(p["quad"], np.linalg.solve(_A, _B), atol=2e-3)
    np.testing.assert_allclose(p["rosen"], [1.0, 1.0], atol=rosen_tol)


# ------------------------------------------------------------------------------------------------
# Structure, dtypes, low precision.


def _all_optimizers():
    return [(n, O.get(n)) for n in O.names()]


def test_structure_dtype_and_low_precision_zero_gradients():
    params = {
        "dense": [{"w": np.full((2, 3), 0.5, jnp.bfloat16), "b": np.zeros(3, jnp.float16)}],
        "scale": (np.ones((), np.float32),),
    }
    zeros = jax.tree.map(np.zeros_like, params)
    ones = jax.tree.map(np.ones_like, params)
    optimizers = _all_optimizers()

    @jax.jit  # every optimizer in one compiled program, its three steps one scanned step
    def run(params, zeros, ones):
        out = {}
        for name, opt in optimizers:

            def step(state, g, opt=opt):
                updates, state = opt.update(g, state, params)
                return state, (updates, state)

            grads = jax.tree.map(lambda *g: jnp.stack(g), zeros, ones, zeros)
            _, (updates, states) = jax.lax.scan(step, opt.init(params), grads)
            last = jax.tree.map(lambda u: u[-1], updates)
            out[name] = updates, states, O.apply_updates(params, last)
        return out

    for name, (updates_per_step, states, new) in run(params, zeros, ones).items():
        for k in range(3):
            updates, state = jax.tree.map(lambda x, k=k: np.asarray(np.asarray(x)[k]), (updates_per_step, states))
            chex.assert_trees_all_equal_shapes_and_dtypes(updates, params)
            chex.assert_tree_all_finite(updates)
            chex.assert_tree_all_finite(state)
        moments = [x for x in jax.tree.leaves(state) if x.ndim == 2]  # buffers of the (2, 3) leaf
        assert all(m.dtype == jnp.float32 for m in moments) and (moments or name == "sgd"), name
        chex.assert_trees_all_equal_shapes_and_dtypes(new, params)
        # their default decays (adamw's, asgd's λ, muon's) move params at g = 0; ftrl solves them from z = 0: to 0
        if name not in ("adamw", "asgd", "ftrl", "muon"):
            # the first step is update(zeros, init(params), params): a fresh state's update at g = 0
            fresh = jax.tree.map(lambda x: np.asarray(np.asarray(x)[0]), updates_per_step)
            chex.assert_trees_all_equal(fresh, zeros)


# Python-number leaves, as in the docstrings' opt.init({"w": [0.0]}) and as optax takes them.
_FLOAT_PARAMS = {"w": [0.5, -1.0], "b": 2.0}
_FLOAT_GRADS = [{"w": [1.0, -2.0], "b": 0.5}, {"w": [0.25, 3.0], "b": -1.5}]


def _updates(opt, params, grads):
    state, out = opt.init(params), []
    for g in grads:
        u, state = opt.update(g, state, params)
        out.append(u)
    return out


def _optax_twins(optax):
    """optax's optimizer with the same rule as each of fnn's at learning rate 0.1 (nadam follows
    torch's momentum-decay schedule and optax has no rprop: they have none)."""
    return {
        "sgd": optax.sgd(0.1),
        "momentum": optax.sgd(0.1, momentum=0.9),
        "nesterov": optax.sgd(0.1, 0.9, nesterov=True),
        "adagrad": optax.adagrad(0.1, initial_accumulator_value=0.0, eps=1e-10),
        "rmsprop": optax.rmsprop(0.1, decay=0.99, eps=1e-8, eps_in_sqrt=False),
        "adadelta": optax.adadelta(0.1, rho=0.9, eps=1e-6),
        "adam": optax.adam(0.1),
        "adamw": optax.adamw(0.1, weight_decay=1e-2),
        "adamax": optax.adamax(0.1),
        "radam": optax.radam(0.1),
        "lion": optax.lion(0.1, weight_decay=0.0),
        "lamb": optax.lamb(0.1, eps=1e-7),  # Keras's lamb without weight decay is optax's
    }


def test_python_number_leaves_update_as_optax_computes():
    optax = pytest.importorskip("optax")
    twins = _optax_twins(optax)
    as_arrays = jax.tree.map(jnp.asarray, (_FLOAT_PARAMS, _FLOAT_GRADS))

    @jax.jit  # every optimizer's two steps in one program; the Python numbers stay Python numbers in it
    def run(single):
        out = {}
        for name in O.names():
            opt = O.get(name, learning_rate=0.1)
            # optax's numbers on the same values (optax.adagrad refuses Python numbers: arrays), or
            # fnn's own on arrays where optax has no such rule (checked against torch's above)
            ref = twins.get(name, opt)
            out[name] = _updates(opt, _FLOAT_PARAMS, _FLOAT_GRADS), _updates(ref, *as_arrays)
        return out, _updates(O.adam(0.1), single, [single])[0]

    results, float32 = run({"w": np.ones(2, np.float32)})
    assert sorted(results) == O.names() and len(twins) == len(O.names()) - 6
    for name, (numbers, ref) in results.items():
        if name not in twins:
            chex.assert_trees_all_equal(numbers, ref)
        else:  # adagrad: optax adds eps inside the square root
            chex.assert_trees_all_close(numbers, ref, rtol=1e-9, atol=0.0)
    assert float32["w"].dtype == np.float32  # a NumPy leaf keeps its dtype
    # eagerly, as in the docstrings: the updates are arrays, as optax.adam's
    opt = O.sgd(0.1)
    updates, _ = opt.update({"w": [1.0]}, opt.init({"w": [0.0]}), {"w": [0.0]})
    assert isinstance(updates["w"][0], jax.Array) and updates["w"][0].tolist() == -0.1


def test_python_number_leaves_through_every_transform():
    direction = [
        O.scale_by_adam(amsgrad=True), O.scale_by_adamax(), O.scale_by_nadam(), O.scale_by_radam(),
        O.scale_by_rms(centered=True), O.scale_by_adagrad(), O.scale_by_adadelta(), O.scale_by_rprop(),
        O.scale_by_lion(), O.trace(0.9, nesterov=True), O.scale_by_asgd(), O.scale_by_adafactor(),
        O.scale_by_ftrl(0.1),
    ]  # fmt: skip
    generic = [
        O.add_decayed_weights(0.1), O.add_decayed_weights(0.1, mask={"w": True, "b": False}), O.scale(-0.5),
        O.scale_by_learning_rate(0.1), O.scale_by_learning_rate(S.exponential_decay(0.1, 2, 0.5)),
        O.scale_by_schedule(lambda c: 2.0**-c), O.scale_by_trust_ratio(), O.clip_by_global_norm(1.0),
        O.clip_by_value(0.7), O.set_to_zero(), O.masked(O.scale_by_adam(), {"w": True, "b": False}),
        O.freeze({"w": False, "b": True}), O.inject_hyperparams(O.clip_by_value)(clip_value=0.3),
        O.chain(O.clip_by_value(1.0), O.scale_by_trust_ratio(), O.scale(-0.1)),
    ]  # fmt: skip
    as_arrays = jax.tree.map(jnp.asarray, (_FLOAT_PARAMS, _FLOAT_GRADS))

    @jax.jit
    def run():
        both = [(_updates(t, _FLOAT_PARAMS, _FLOAT_GRADS), _updates(t, *as_arrays)) for t in direction + generic]
        return both, O.global_norm(_FLOAT_GRADS[0])

    both, norm = run()
    for numbers, arrays in both:
        chex.assert_trees_all_equal(numbers, arrays)
    np.testing.assert_allclose(norm, math.sqrt(1.0 + 4.0 + 0.25), rtol=1e-15)
    clipped = [u["w"] for u in both[len(direction) + 8][0]]  # clip_by_value(0.7) of the raw numbers
    np.testing.assert_array_equal(clipped, [[0.7, -0.7], [0.25, 0.7]])


def test_eps_never_rounds_to_zero():
    params = {"x": np.ones(3, np.float32)}
    g = {"x": np.zeros(3, np.float32)}
    optimizers = (
        O.adam(eps=1e-50),
        O.rmsprop(eps=1e-50),
        O.adagrad(eps=1e-60),
        O.nadam(eps=1e-50),
        O.adadelta(eps=1e-50),
        O.radam(eps=1e-50),
    )

    @jax.jit  # the six optimizers' seven steps in one compiled program
    def run(g, params):
        out = []
        for opt in optimizers:
            state = opt.init(params)
            for _ in range(7):
                updates, state = opt.update(g, state, params)
            out.append(updates)
        return out

    for updates in run(g, params):
        chex.assert_trees_all_equal(updates, g)


def test_apply_updates_keeps_each_leaf_dtype():
    params = {"a": np.ones(2, jnp.bfloat16), "b": np.ones(2, np.float32)}
    updates = {"a": np.full(2, 0.25, np.float32), "b": np.full(2, 0.5, np.float64)}
    new = jax.jit(O.apply_updates)(params, updates)
    chex.assert_trees_all_equal_dtypes(new, params)
    np.testing.assert_array_equal(np.asarray(new["a"], np.float32), [1.25, 1.25])
    np.testing.assert_array_equal(new["b"], [1.5, 1.5])


def test_apply_updates_of_python_numbers_gives_arrays_as_optax_s():
    import optax

    numpy = ([np.float32(1)], [np.float32(0.5)]), ([np.ones(2, np.float32)], [np.full(2, 0.5, np.float32)])
    for params, updates in [({"w": 1.0}, {"w": 0.5}), ([1.0, 2.0], [0.5, 0.5]), ({"w": 1}, {"w": 0.5}), *numpy]:
        got, want = O.apply_updates(params, updates), optax.apply_updates(params, updates)
        chex.assert_trees_all_equal(got, want)
        chex.assert_trees_all_equal_dtypes(got, want)
        assert all(isinstance(leaf, jax.Array) for leaf in jax.tree.leaves(got))


def test_integer_gradients_update_as_their_float_values_do_and_complex_ones_are_refused():
    """optax computes lr * g in float for an integer g; an update cast back to the gradient's
    integer dtype would round to 0 (a silent no-op)."""
    import optax

    params = {"w": np.array([1.0, 2.0], np.float32)}
    opts = {"sgd": O.sgd(0.1, momentum=0.9), "adam": O.adam(0.1), "rmsprop": O.rmsprop(0.1), "lion": O.lion(0.1)}
    opts |= {"rprop": O.rprop(0.1), "adafactor": O.adafactor(0.1), "clip": O.clip_by_value(1.5), "scale": O.scale(-0.1)}
    refs = {"sgd": optax.sgd(0.1, momentum=0.9), "adam": optax.adam(0.1)}

    def run(grads):
        out = {n: o.update(grads, o.init(params), params)[0]["w"] for n, o in opts.items()}
        return out | {f"optax {n}": o.update(grads, o.init(params), params)[0]["w"] for n, o in refs.items()}

    ints, floats = jax.jit(
        lambda: (run({"w": jnp.array([1, -2], jnp.int32)}), run({"w": jnp.array([1, -2], jnp.float32)}))
    )()
    for name, got in ints.items():
        assert got.dtype == np.float32, name
        np.testing.assert_array_equal(got, floats[name], err_msg=name)
        assert np.all(got != 0), name
    np.testing.assert_allclose(ints["sgd"], ints["optax sgd"], rtol=1e-6)
    np.testing.assert_allclose(ints["adam"], ints["optax adam"], rtol=1e-6)
    with pytest.raises(TypeError, match=r"updates \(the gradients\) must be real, got a complex64 leaf"):
        jax.eval_shape(lambda: O.adam().update({"w": jnp.ones(2, jnp.complex64)}, O.adam().init(params), params))


def test_float32_params_under_x64_follow_the_float64_trajectory_to_float32_rounding():
    """Under x64 the hyperparameters are float64 and the moments float32: ``1 - b2`` is taken in
    float64 and then rounded, as torch takes it in Python's double (taken in float32, 1 -
    float32(0.999) was 1.3e-5 off, and Adam's, NAdam's and RAdam's steps 6.6e-6 off)."""
    assert jax.config.jax_enable_x64  # conftest's
    grads = np.random.RandomState(0).randn(10, 2, 3)
    opts = {"adam": O.adam(0.1), "nadam": O.nadam(0.1), "radam": O.radam(0.1), "adamax": O.adamax(0.1)}
    opts |= {"rmsprop": O.rmsprop(0.1, centered=True), "adadelta": O.adadelta(1.0), "lion": O.lion(0.1)}

    def steps(dtype):
        def run(opt):
            p = {"w": jnp.ones((2, 3), dtype)}

            def step(state, g):
                u, state = opt.update({"w": g.astype(dtype)}, state, p)
                return state, u["w"].astype(jnp.float64)

            return jax.lax.scan(step, opt.init(p), jnp.asarray(grads))[1]

        return {name: run(opt) for name, opt in opts.items()}

    low, high = jax.jit(lambda: (steps(jnp.float32), steps(jnp.float64)))()
    for name in opts:
        err = np.abs(low[name] - high[name]).max(axis=(1, 2)) / np.abs(high[name]).max(axis=(1, 2))
        assert err.max() < 1e-6, (name, err.max())


@pytest.mark.parametrize(
    "opt,other,match",
    [
        (O.sgd(0.1, momentum=0.9), O.sgd(0.1), r"state holds the hyperparameters \['learning_rate'\], this optimizer "),
        (O.adam(0.1), O.adamw(0.1), r"hyperparameters \['b1', 'b2', 'eps', 'learning_rate', 'weight_decay'\], th"),
        (O.adam(0.1, weight_decay=0.1), O.adamw(0.1), "the state's inner_state is not the one this optimizer's init"),
        (
            O.adam(S.cosine_decay(0.1, 10)),
            O.adam(0.1),
            "learning_rate follows a schedule here, and the state holds none",
        ),
        (O.adam(0.1), "optax", r"must be what this optimizer's init builds \(an InjectHyperparamsState\), got tuple"),
        (O.masked(O.adam(0.1), {"w": True}), O.adam(0.1), r"masked: the state must be .* got InjectHyperparamsState"),
    ],
)
def test_another_optimizer_s_state_is_named_as_such(opt, other, match):
    """Options changed (momentum added, adamw for adam) and the old state kept: a ValueError
    saying so, not a TypeError from deep inside the factory."""
    import optax

    params = {"w": np.ones(3, np.float32)}
    other = optax.adam(0.1) if other == "optax" else other
    with pytest.raises(ValueError, match=match):
        jax.eval_shape(lambda: opt.update(params, other.init(params), params))


def test_updates_of_another_structure_without_params_are_named_not_the_state():
    params = [np.ones((2, 2), np.float32), np.ones(2, np.float32)]
    opt = O.adam(1e-2)
    with pytest.raises(ValueError, match=r"updates and state have different tree structures"):
        jax.eval_shape(lambda: opt.update([jnp.ones((2, 2))], opt.init(params)))


def test_a_nested_injection_s_state_read_back_to_numpy_updates_as_its_jax_arrays_do():
    """jax.device_get of a state is a state: inject_hyperparams(adam) built its factory from the
    NumPy values into another tree ("Too many leaves for PyTreeDef")."""
    params = [jnp.ones(2)]
    opt = O.inject_hyperparams(O.adam)(learning_rate=1e-2)
    state = opt.init(params)
    run = jax.jit(lambda s: opt.update([jnp.ones(2)], s, params))
    chex.assert_trees_all_equal(opt.update([jnp.ones(2)], jax.device_get(state), params), run(state))


def test_a_mask_edited_after_the_transform_is_built_changes_nothing_not_even_an_equal_one_s_program():
    """The transform is compared by the mask's contents when built: trained with the caller's
    dict edited since, its program was cached under the first contents and served to a fresh,
    equal transform (which then trained the leaf it freezes)."""
    x = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    net = fnn.mlp([1])
    p0 = net.init(jax.random.PRNGKey(0), (3,))

    def moved(opt):
        r = fnn.fit(net, p0, opt, "mse", x, x.sum(1, keepdims=True), batch_size=16, epochs=1, verbose=0)
        return float(np.abs(np.asarray(r.params[0]["w"]) - np.asarray(p0[0]["w"])).max())

    mask = [{"w": True, "b": False}]  # w frozen
    first = O.chain(O.sgd(0.1), O.freeze(mask))
    mask[0]["w"] = False
    again = O.chain(O.sgd(0.1), O.freeze([{"w": True, "b": False}]))
    assert again.update == first.update
    assert moved(first) == 0.0 and moved(again) == 0.0
    from fnn.optimizers._muon import muon_leaves  # muon's masks are copied alike

    mask = [{"w": True, "b": False}]
    is_muon = muon_leaves(mask)[0]
    mask[0]["w"] = False
    assert is_muon(p0) == [{"w": True, "b": False}]  # the 2-D w, as the mask said when built
    # the copy keeps the caller's key order: the transform's repr (what a checkpoint records of
    # the optimizer, compared on resume) is the one an uncopied mask printed
    for build in (O.freeze, lambda m: O.masked(O.adam(), m), lambda m: O.muon(mask=m)):
        text = repr(build([{"w": True, "b": False}, ({"z": True, "a": False},)]).update)
        assert "[{'w': True, 'b': False}, ({'z': True, 'a': False},)]" in text, text


def test_float8_params_are_named_by_init_and_apply_updates_as_by_fit():
    """JAX refuses to promote float8 with the moments' float32 (a TypePromotionError that names
    no argument): the optimizers name the leaf as every other entry point does."""
    params = {"w": jnp.ones((2, 2), jnp.float8_e4m3fn)}
    match = r"params\['w'\] has dtype float8_e4m3fn; params must be float16, bfloat16, float32 or float64"
    for opt in (O.adam(), O.rmsprop(), O.lion()):
        with pytest.raises(TypeError, match=match):
            jax.eval_shape(opt.init, params)
    with pytest.raises(TypeError, match=match):
        O.apply_updates(params, {"w": jnp.ones((2, 2), jnp.float32)})


def test_weight_decay_needs_params():
    params = {"x": np.ones(2)}
    decaying = (O.sgd(weight_decay=0.1), O.adamw(), O.lion(weight_decay=0.1), O.add_decayed_weights(0.1))
    # asgd's λθ, adafactor's RMS(θ), lamb's trust ratio, ftrl's σθ
    for opt in (*decaying, O.asgd(), O.adafactor(), O.lamb(), O.ftrl(), O.lamb(weight_decay=0.1)):
        with pytest.raises(ValueError, match="params"):
            jax.jit(lambda p: opt.update(p, opt.init(p)))(params)  # raised while tracing: nothing compiles


# ------------------------------------------------------------------------------------------------
# Hyperparameters in the state: no recompilation, vmap over learning rates, set/get.


def test_no_recompilation_on_second_call_or_new_learning_rate():
    traces = []
    params = {"w": jax.device_put(np.ones((2, 2), jnp.float32))}
    g = {"w": jax.device_put(np.full((2, 2), 0.5, jnp.float32))}
    for opt in (O.sgd(0.1, momentum=0.9), O.adam(S.cosine_decay(1e-2, 10))):
        traces.clear()

        @jax.jit
        def step(state):
            traces.append(1)  # runs only while tracing
            return opt.update(g, state, params)

        state = opt.init(params)
        _, state = step(state)
        _, state = step(state)
        for lr in (0.5, np.float32(0.25), jax.device_put(np.float32(0.125))):
            state = O.set_learning_rate(state, lr)
            _, state = step(state)
        assert len(traces) == 1


def test_set_learning_rate_takes_effect():
    params, g = {"w": jax.device_put(np.ones(3))}, {"w": jax.device_put(np.array([1.0, -2.0, 0.5]))}
    opt = O.sgd(0.1)
    state = O.set_learning_rate(opt.init(params), 0.5)
    updates, state = opt.update(g, state, params)
    np.testing.assert_allclose(updates["w"], -0.5 * g["w"], rtol=1e-15)
    assert float(O.get_learning_rate(state)) == 0.5


def test_learning_rate_found_in_nested_states():
    params = {"w": jax.device_put(np.ones(3)), "b": jax.device_put(np.ones(2))}
    opt = O.chain(O.clip_by_global_norm(1.0), O.masked(O.adam(3e-3), {"w": True, "b": False}))
    state = opt.init(params)
    assert float(O.get_learning_rate(state)) == pytest.approx(3e-3, rel=1e-15)
    state = O.set_learning_rate(state, 1e-4)
    assert float(O.get_learning_rate(state)) == pytest.approx(1e-4, rel=1e-15)
    assert float(state[1].inner_state.hparams["learning_rate"]) == pytest.approx(1e-4, rel=1e-15)
    stateless = O.chain(O.clip_by_value(1.0)).init(params)
    for call in (lambda: O.get_learning_rate(stateless), lambda: O.set_learning_rate(stateless, 0.1)):
        with pytest.raises(ValueError, match="learning rate"):
            call()
    with pytest.raises(ValueError, match="learning_rate"):
        O.set_learning_rate(state, -1.0)


def test_schedule_learning_rate_reports_and_rescales():
    sched = S.exponential_decay(0.1, 1, 0.5)  # 0.1 * 0.5**k
    opt = O.sgd(sched)
    params, g = {"w": jax.device_put(np.ones(2))}, {"w": jax.device_put(np.ones(2))}
    state = opt.init(params)
    for k in range(3):
        assert float(O.get_learning_rate(state)) == pytest.approx(0.1 * 0.5**k, rel=1e-14)
        updates, state = opt.update(g, state, params)
        np.testing.assert_allclose(updates["w"], -0.1 * 0.5**k, rtol=1e-14)
    # ReduceLROnPlateau-style: scale the current rate by 0.1; the schedule keeps decaying from there.
    state = O.set_learning_rate(state, 0.1 * O.get_learning_rate(state))
    for k in range(3, 6):
        updates, state = opt.update(g, state, params)
        np.testing.assert_allclose(updates["w"], -0.01 * 0.5**k, rtol=1e-14)
    # A warmup from 0 before its first update: no factor of the schedule makes the next rate 0.3.
    # Refused (it used to set the first update alone and leave the rest of the schedule as it was).
    warm = O.sgd(S.linear(0.0, 1.0, 4))
    fresh = warm.init(params)
    with pytest.raises(ValueError, match=r"learning_rate=0.3: learning_rate follows a schedule that gives 0 at this"):
        O.set_learning_rate(fresh, 0.3)
    # one step in, the rule applies: the rate 0.25 set to 0.5 doubles the whole schedule
    _, state = warm.update(g, fresh, params)
    state = O.set_learning_rate(state, 0.5)
    for k in range(1, 6):
        updates, state = warm.update(g, state, params)
        np.testing.assert_allclose(updates["w"], -2 * min(k / 4, 1.0), rtol=1e-15)
    # 0 scales the schedule by 0 (it stays 0), so setting a rate afterwards is refused too
    stopped = O.set_learning_rate(state, 0.0)
    updates, stopped = warm.update(g, stopped, params)
    np.testing.assert_array_equal(updates["w"], 0.0)
    with pytest.raises(ValueError, match="a schedule set to 0 before"):
        O.set_learning_rate(stopped, 0.1)
    # traced, where nothing can raise, the factor is NaN (and so is training); 0, the value held,
    # keeps the factor as it is, as on the host
    batched = jax.vmap(O.set_learning_rate, in_axes=(None, 0))(fresh, jax.device_put(np.array([0.0, 0.3])))
    np.testing.assert_array_equal(np.asarray(batched.scales["learning_rate"]), [1.0, np.nan])


def test_setting_the_0_a_warmup_holds_changes_nothing():
    """Before its first update a warmup from 0 holds 0: setting 0 (the value held, as a
    callback writing back the rate it read does) keeps the schedule's scale, so it warms up:
    lr(k) = 0.1 k / 6 through step 6, then 0.1 * 0.5 (1 + cos(pi (k - 6) / 54)). It used to
    scale the schedule by 0 for good."""
    opt = O.sgd(S.warmup_cosine_decay(0.0, 0.1, 6, 60))
    params, g = {"w": jax.device_put(np.ones(2))}, {"w": jax.device_put(np.ones(2))}
    fresh = opt.init(params)
    for state in (
        O.set_learning_rate(fresh, O.get_learning_rate(fresh)),
        O.set_hyperparams(fresh, learning_rate=0.0),
        O.set_learning_rates(fresh, [0.0]),
    ):
        assert float(state.scales["learning_rate"]) == 1.0
    want = [0.1 * k / 6 for k in range(6)] + [0.1 * 0.5 * (1 + math.cos(math.pi * (k - 6) / 54)) for k in (6, 7)]
    for rate in want:
        updates, state = opt.update(g, state, params)
        np.testing.assert_allclose(updates["w"], -rate, rtol=1e-14, atol=1e-300)


def test_learning_rates_per_parameter_group_are_read_set_and_scaled_each_its_own():
    """Two groups (torch's param_groups): w by sgd(0.1), b by a warmup 0 -> 0.02 over 4 steps."""
    params = {"b": jax.device_put(np.ones(2)), "w": jax.device_put(np.ones(3))}
    g = jax.tree.map(jnp.ones_like, params)
    warm = S.linear(0.0, 0.02, 4)
    opt = O.chain(O.masked(O.sgd(0.1), {"b": False, "w": True}), O.masked(O.sgd(warm), {"b": True, "w": False}))
    state = opt.init(params)
    rates = lambda s: [float(lr) for lr in O.get_learning_rates(s)]
    assert rates(state) == [0.1, 0.0] and float(O.get_learning_rate(state)) == 0.1
    # scaled by 0.5: w's rate, and b's whole warmup (it holds 0 now): 0.5 * 0.02 k / 4
    half = O.scale_learning_rates(state, 0.5)
    assert rates(half) == [0.05, 0.0]
    for k in range(3):
        updates, half = opt.update(g, half, params)
        np.testing.assert_allclose(updates["w"], -0.05, rtol=1e-15)
        np.testing.assert_allclose(updates["b"], -0.5 * 0.02 * k / 4, rtol=1e-14)
    # each its own: b's 0.0075 set to 0.015 doubles its (halved) schedule; w's value, as held, stays
    both = O.set_learning_rates(half, [0.05, 0.015])
    assert rates(both) == [0.05, pytest.approx(0.015, rel=1e-15)]
    held = lambda s: s[0].inner_state.hparams["learning_rate"]
    assert held(both) is held(half)  # the value held: nothing written
    updates, _ = opt.update(g, both, params)
    np.testing.assert_allclose(updates["b"], -0.015, rtol=1e-14)
    # set_learning_rate: every group one value (refused at step 0, where b's warmup holds 0)
    assert rates(O.set_learning_rate(half, 0.3)) == [0.3, 0.3]
    with pytest.raises(ValueError, match="learning_rate=0.3: learning_rate follows a schedule that gives 0"):
        O.set_learning_rate(state, 0.3)
    # a named optimizer injected again is one group (its inner rate follows the outer one)
    assert len(O.get_learning_rates(O.inject_hyperparams(O.adam)(learning_rate=0.1).init(params))) == 1
    with pytest.raises(ValueError, match=r"learning_rates has 1 rate\(s\); the optimizer state holds 2"):
        O.set_learning_rates(state, [0.1])
    with pytest.raises(TypeError, match="learning_rates must be a sequence of rates, one per group, got 0.1"):
        O.set_learning_rates(state, 0.1)
    with pytest.raises(ValueError, match="learning_rate must be finite and >= 0, got -1.0"):
        O.set_learning_rates(state, [0.1, -1.0])
    with pytest.raises(ValueError, match="factor must be >= 0, got -0.5"):
        O.scale_learning_rates(state, -0.5)
    with pytest.raises(TypeError, match="factor must be a real number, got '2'"):
        O.scale_learning_rates(state, "2")
    # jax's scalars are numbers as NumPy's are (bfloat16 too), 1-d jax arrays rates as NumPy's
    for factor in (jnp.float32(0.5), jax.device_put(np.asarray(0.5, jnp.bfloat16))):
        assert rates(O.scale_learning_rates(state, factor)) == [0.05, 0.0]
    assert rates(O.set_learning_rates(half, jax.device_put(np.array([0.05, 0.015])))) == rates(both)
    with pytest.raises(TypeError, match="learning_rates must be a sequence of rates, one per group"):
        O.set_learning_rates(state, jax.device_put(np.asarray(0.1)))
    # LearningRateScheduler's and sweep's rule: the first group's rate set, the others scaled by
    # the same factor (b's warmup, at 0 now, too), as scale_learning_rates scales them
    led = set_learning_rate_in_proportion(state, 0.05)
    assert rates(led) == [0.05, 0.0] and float(led[1].inner_state.scales["learning_rate"]) == 0.5
    # from a first rate of 0 there is no ratio: every group gets the rate (b's warmup at 0 cannot)
    masks = {"b": False, "w": True}, {"b": True, "w": False}
    zero = O.chain(O.masked(O.sgd(0.0), masks[0]), O.masked(O.sgd(0.01), masks[1])).init(params)
    assert rates(set_learning_rate_in_proportion(zero, 0.3)) == [0.3, 0.3]
    with pytest.raises(ValueError, match="learning_rate=0.3: learning_rate follows a schedule that gives 0"):
        set_learning_rate_in_proportion(O.set_learning_rates(state, [0.0, 0.0]), 0.3)
    stateless = O.chain(O.clip_by_value(1.0)).init(params)
    for call in (O.get_learning_rates, O.set_learning_rates, O.scale_learning_rates):
        with pytest.raises(ValueError, match="the optimizer state holds no learning rate"):
            call(stateless, *([] if call is O.get_learning_rates else [[0.1] if call is O.set_learning_rates else 0.5]))


def test_a_nested_constant_learning_rate_is_a_group_of_its_own_scaled_by_its_own_value():
    """inject_hyperparams(lambda lr: chain(masked(sgd(lr), w), masked(sgd(0.01), b))): b's rate
    is the factory's constant, not the outer one's; scaled by 0.5 (ReduceLROnPlateau) it halves
    to 0.005 (it became 0.05, the outer rate halved: a fivefold rise). A nested rate computed
    from the outer one follows it, deeper ones their own enclosing injection."""
    params = {"b": jax.device_put(np.ones(2)), "w": jax.device_put(np.ones(3))}
    g = jax.tree.map(jnp.ones_like, params)
    w, b = {"b": False, "w": True}, {"b": True, "w": False}
    opt = O.inject_hyperparams(
        lambda learning_rate: O.chain(O.masked(O.sgd(learning_rate), w), O.masked(O.sgd(0.01), b))
    )
    opt = opt(learning_rate=0.1)
    rates = lambda s: [float(lr) for lr in O.get_learning_rates(s)]

    def step(state: Any) -> dict:
        return opt.update(g, state, params)[0]

    for init in (opt.init, jax.jit(opt.init)):
        state = init(params)
        assert rates(state) == [0.1, 0.01]
        assert rates(jax.jit(opt.update)(g, state, params)[1]) == [0.1, 0.01]  # kept through a compiled update
        assert rates(pickle.loads(pickle.dumps(state))) == [0.1, 0.01]
    half = O.scale_learning_rates(state, 0.5)
    assert rates(half) == [0.05, 0.005]
    chex.assert_trees_all_close(step(half), {"b": -0.005 * np.ones(2), "w": -0.05 * np.ones(3)}, rtol=1e-15)
    both = O.set_learning_rates(state, [0.2, 0.04])
    chex.assert_trees_all_close(step(both), {"b": -0.04 * np.ones(2), "w": -0.2 * np.ones(3)}, rtol=1e-15)
    led = set_learning_rate_in_proportion(state, 0.3)  # LearningRateScheduler's and sweep's rule
    assert rates(led) == [0.3, pytest.approx(0.03, rel=1e-15)]
    assert rates(O.set_learning_rate(state, 0.3)) == [0.3, 0.3]  # every group one value, as documented
    # deeper: the middle injection's rate is the outer factory's constant 0.01; the innermost sgd
    # follows the middle one (2x it), so scaling the middle scales it, once
    inner = O.inject_hyperparams(lambda learning_rate: O.sgd(2 * learning_rate))
    deep = O.inject_hyperparams(
        lambda learning_rate: O.chain(O.masked(O.sgd(learning_rate), w), O.masked(inner(learning_rate=0.01), b))
    )(learning_rate=0.1)
    state = O.scale_learning_rates(deep.init(params), 0.5)
    assert rates(state) == [0.05, 0.005]
    chex.assert_trees_all_close(deep.update(g, state, params)[0], {"b": -0.01 * np.ones(2), "w": -0.05 * np.ones(3)})
    # an outer injection holding no learning rate: its nested rates are the groups
    outer = O.inject_hyperparams(
        lambda momentum: O.chain(O.masked(O.sgd(0.1, momentum=momentum), w), O.masked(O.sgd(0.01), b))
    )
    assert rates(O.scale_learning_rates(outer(momentum=0.5).init(params), 0.5)) == [0.05, 0.005]
    # a nested group is set alone, as a flat one is: a warmup from 0 there takes no outer value
    warm = O.inject_hyperparams(
        lambda learning_rate: O.chain(O.masked(O.sgd(learning_rate), w), O.masked(O.sgd(S.linear(0.0, 0.04, 4)), b))
    )(learning_rate=0.1)
    state = warm.init(params)
    assert rates(O.set_learning_rates(state, [0.2, 0.0])) == [pytest.approx(0.2), 0.0]
    assert rates(O.scale_learning_rates(state, 0.5)) == [0.05, 0.0]
    assert rates(set_learning_rate_in_proportion(state, 0.2)) == [pytest.approx(0.2), 0.0]
    # a rate the factory computes from an argument of another name cannot be set there: said
    # (it was set, and computed again from lr at the next update: ReduceLROnPlateau did nothing)
    named = O.inject_hyperparams(lambda lr: O.chain(O.masked(O.sgd(lr), w), O.masked(O.sgd(0.01), b)))(lr=0.1)
    state = named.init(params)
    assert rates(state) == [0.1, 0.01]
    for call in (lambda s: O.scale_learning_rates(s, 0.5), lambda s: O.set_learning_rate(s, 0.05)):
        with pytest.raises(
            ValueError, match=r"factory computes it at every update from its own lr: .* Set lr \(set_hyperparams\)"
        ):
            call(state)
    assert rates(named.update(g, O.set_hyperparams(state, lr=0.05), params)[1]) == [0.05, 0.01]
    for bad in ("0.1", None, b"0.1"):
        with pytest.raises(TypeError, match="learning_rate must be a real number"):
            O.set_learning_rate(state, bad)
    assert O.set_learning_rates(state, [0.1, 0.01]) is not None  # the values held (float32's 0.1): nothing set
    # ...also where the outer state holds the name set: sgd(lr) follows lr, not the learning_rate set
    mixed = O.inject_hyperparams(
        lambda learning_rate, lr: O.chain(O.masked(O.sgd(learning_rate), w), O.masked(O.sgd(lr), b))
    )(learning_rate=0.1, lr=0.01)
    with pytest.raises(
        ValueError, match="computes it at every update from its own lr: a value set here would not hold"
    ):
        O.scale_learning_rates(mixed.init(params), 0.5)
    # a middle injection renaming the value follows the outer one: the innermost follows it in turn
    renamed = O.inject_hyperparams(lambda learning_rate: O.inject_hyperparams(lambda lr: O.sgd(lr))(lr=learning_rate))
    state = O.set_learning_rate(renamed(learning_rate=0.1).init(params), 0.5)
    chex.assert_trees_all_close(
        renamed(learning_rate=0.1).update(g, state, params)[0], jax.tree.map(lambda a: -0.5 * a, g)
    )


def test_a_schedule_the_factory_builds_from_the_outer_rate_follows_a_rate_set_there_at_once_and_once():
    """lambda learning_rate: sgd(lambda c: learning_rate * 0.5**c): the outer rate set (or scaled)
    to 0.2 after 2 updates gives 0.2 * 0.5**c from the next update on, as optax's
    inject_hyperparams does. The nested schedule was rescaled too (0.2 / 0.1 times the outer's
    doubling: 0.2, 0.2, 0.1) and, without that, took the new rate one update late (0.025, 0.025)."""
    optax = pytest.importorskip("optax")
    params, g = {"w": jax.device_put(np.zeros(2))}, {"w": jax.device_put(np.ones(2))}
    mine = O.inject_hyperparams(lambda learning_rate: O.sgd(lambda c: learning_rate * 0.5**c))(learning_rate=0.1)
    ref = optax.inject_hyperparams(lambda learning_rate: optax.sgd(lambda c: learning_rate * 0.5**c))(learning_rate=0.1)
    for change in (
        lambda s: O.set_learning_rate(s, 0.2),
        lambda s: O.scale_learning_rates(s, 2.0),
        lambda s: O.set_hyperparams(s, learning_rate=0.2),
    ):
        for run in (lambda f: f, jax.jit):
            state, want = mine.init(params), ref.init(params)
            for step in range(5):
                if step == 2:
                    state = change(state)
                    want.hyperparams["learning_rate"] = jnp.asarray(0.2, want.hyperparams["learning_rate"].dtype)
                u, state = run(mine.update)(g, state, params)
                v, want = ref.update(g, want, params)
                chex.assert_trees_all_close(u, v, rtol=1e-15, custom_message=f"step {step}")
            np.testing.assert_allclose(u["w"], -0.2 * 0.5**4, rtol=1e-15)


def test_fnn_optimizers_built_by_an_optax_injection_are_refused_when_set():
    """optax.inject_hyperparams(lambda learning_rate: chain(masked(sgd(learning_rate)), masked(sgd(0.01)))):
    the fnn sgd states ignore optax's values; set through optax's node, both were set to the outer
    rate (scaled by 0.5, the 0.01 group trained at 0.05). Refused, saying why."""
    optax = pytest.importorskip("optax")
    params = {"b": jax.device_put(np.ones(2)), "w": jax.device_put(np.ones(3))}
    w, b = {"b": False, "w": True}, {"b": True, "w": False}
    opt = optax.inject_hyperparams(
        lambda learning_rate: optax.chain(O.masked(O.sgd(learning_rate), w), O.masked(O.sgd(0.01), b))
    )
    state = opt(learning_rate=0.1).init(params)
    for call in (
        lambda s: O.scale_learning_rates(s, 0.5),
        lambda s: O.set_learning_rate(s, 0.05),
        lambda s: O.set_hyperparams(s, learning_rate=0.05),
    ):
        with pytest.raises(ValueError, match="fnn optimizers built by an optax.inject_hyperparams factory"):
            call(state)
    # optax's own optimizers there are set as optax's documentation sets them
    plain = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1).init(params)
    assert float(O.get_learning_rate(O.set_learning_rate(plain, 0.05))) == pytest.approx(0.05)


def test_optax_inject_hyperparams_state_read_and_set_as_optax_users_do_by_hand():
    """optax's own recipe for a mutable rate, optax.inject_hyperparams(optax.adam)(...), holds it in
    state.hyperparams: found and set there (same dtype and shape, no recompile), chained too."""
    optax = pytest.importorskip("optax")
    params = {"w": jax.device_put(np.ones(3, jnp.float32))}
    g = {"w": jax.device_put(np.array([1.0, -2.0, 0.5], jnp.float32))}
    opt = optax.chain(optax.clip(10.0), optax.inject_hyperparams(optax.adam)(learning_rate=1e-3, b1=0.8))
    state = opt.init(params)
    assert float(O.get_learning_rate(state)) == pytest.approx(1e-3)
    assert sorted(O.get_hyperparams(state)) == ["b1", "b2", "eps", "eps_root", "learning_rate"]
    traces = []

    @jax.jit
    def step(state):
        traces.append(1)  # runs only while tracing
        return opt.update(g, state, params)

    _, state = step(state)
    state = O.set_hyperparams(O.set_learning_rate(state, 0.5), b1=0.25)
    held = state[1].hyperparams
    assert held["learning_rate"].dtype == jnp.float32 and held["learning_rate"].shape == ()
    by_hand = opt.init(params)  # optax's documented way: replace the entry of the dict
    _, by_hand = step(by_hand)
    by_hand[1].hyperparams.update(learning_rate=jnp.float32(0.5), b1=jnp.float32(0.25))
    ours, _ = step(state)
    theirs, _ = step(by_hand)
    np.testing.assert_allclose(ours["w"], theirs["w"], rtol=1e-7)
    assert np.all(np.abs(ours["w"]) > 0.1)  # a step of the set rate 0.5, not of 1e-3
    assert len(traces) == 1
    # jitted and vmapped settings take the traced path
    lrs = jax.device_put(np.array([0.1, 0.2]))
    batched = jax.vmap(lambda lr: O.set_learning_rate(opt.init(params), lr))(lrs)
    np.testing.assert_array_equal(O.get_learning_rate(batched), np.float32(lrs))
    # a scheduled rate is recomputed by optax at every update: setting it would not hold
    scheduled = optax.inject_hyperparams(optax.sgd)(learning_rate=optax.linear_schedule(1.0, 0.0, 4))
    sstate = scheduled.init(params)
    assert float(O.get_learning_rate(sstate)) == 1.0
    with pytest.raises(ValueError, match="learning_rate follows a schedule in this optax"):
        O.set_learning_rate(sstate, 0.1)
    with pytest.raises(ValueError, match="holds no learning rate .*optax.inject_hyperparams"):
        O.get_learning_rate(optax.adam(1e-3).init(params))


def test_vmap_over_states_with_different_learning_rates():
    lrs = np.array([1e-3, 1e-2, 1e-1])
    params, grads = _problem(2)
    params, grads = jax.tree.map(jax.device_put, params), [jax.tree.map(jax.device_put, g) for g in grads]
    for opt in (O.adam(), O.sgd(momentum=0.9, nesterov=True)):
        states = jax.jit(jax.vmap(lambda lr: O.set_learning_rate(opt.init(params), lr)))(lrs)
        step = jax.jit(jax.vmap(opt.update, in_axes=(None, 0, None)))
        batched = []
        for g in grads:
            updates, states = step(g, states, params)
            batched.append(updates)
        np.testing.assert_array_equal(O.get_learning_rate(states), lrs)
        for i, lr in enumerate(lrs):
            state = O.set_learning_rate(opt.init(params), lr)
            for g, b in zip(grads, batched, strict=True):
                updates, state = opt.update(g, state, params)  # op by op, as the golden tests
                chex.assert_trees_all_close(updates, jax.tree.map(lambda x: np.asarray(x)[i], b), rtol=1e-13)


def _buffers(tree) -> list[int]:
    return [leaf.unsafe_buffer_pointer() for leaf in jax.tree.leaves(tree) if isinstance(leaf, jax.Array)]


def test_donating_a_state_vmapped_over_learning_rates_leaves_the_callers_rates():
    """The README's sweep by hand: states vmapped over an array of rates, trained by a vmapped
    ``fnn.train_step``, which donates them. Eager vmap hands a batched argument returned
    unchanged back as the caller's own array, so the state held ``lrs`` itself and the first step
    deleted it ("Array has been deleted"). Each state holds its own copy now (jitted building
    always did), and each model trains as it does alone."""
    net = fnn.mlp([4, 3])
    p = net.init(jax.random.PRNGKey(0), (5,))
    # no gradient entry near 0: Adam scales each to about +-lr, so an entry that is rounding
    # noise (1e-8, as inputs symmetric about 0 gave) would compare noise, not the update
    x = jax.device_put(np.linspace(-1, 1.5, 40, dtype=np.float32).reshape(8, 5))
    y = jax.device_put(np.arange(8, dtype=np.int32) % 3)
    # in the dtype the state holds rates in (a value of another dtype was converted, so copied)
    values = np.array([1e-3, 1e-2, 1e-1], jax.dtypes.canonicalize_dtype(np.float64))
    step = fnn.train_step(net, "sparse_categorical_crossentropy", O.adam(1e-3))
    fresh = lambda tree: jax.tree.map(lambda a: jax.device_put(np.array(a)), tree)
    alone = []
    for lr in values:
        q, s = fresh(p), O.adam(lr).init(p)
        for _ in range(2):
            q, s, _ = step(q, s, x, y)
        alone.append(q)
    set_rate = lambda lr: O.set_learning_rate(O.adam(1e-3).init(p), lr)
    builds = {
        "vmap(set_learning_rate)": jax.vmap(set_rate),
        "jit(vmap(set_learning_rate))": jax.jit(jax.vmap(set_rate)),
        "vmap(set_hyperparams)": jax.vmap(lambda lr: O.set_hyperparams(O.adam(1e-3).init(p), learning_rate=lr)),
        "vmap(adam(lr).init)": jax.vmap(lambda lr: O.adam(lr).init(p)),
    }
    batched_step = jax.vmap(step, in_axes=(0, 0, None, None))
    for name, build in builds.items():
        lrs = jax.device_put(values)
        states = build(lrs)
        assert not set(_buffers(states)) & set(_buffers(lrs)), name
        stacked = jax.tree.map(lambda a: jax.device_put(np.stack([a] * 3)), p)
        for _ in range(2):
            stacked, states, _ = batched_step(stacked, states, x, y)
        np.testing.assert_array_equal(lrs, values, err_msg=name)  # readable: not donated
        for i, q in enumerate(alone):
            chex.assert_trees_all_close(jax.tree.map(lambda a, i=i: np.asarray(a)[i], stacked), q, rtol=1e-6, atol=1e-7)


def test_inject_hyperparams_passes_its_values_to_the_named_optimizers_its_factory_builds():
    """A factory that builds named (themselves injected) optimizers gets the outer values at
    every update, as optax's ``inject_hyperparams`` passes them to its factory: a schedule
    under another name, a rate derived per group, a constant of the factory's own, a value set
    into the outer state, a schedule's peak. The nested states held their first values (or took
    the outer ones raw, by name) before."""
    optax = pytest.importorskip("optax")
    params = {"w": jax.device_put(np.array([1.0, 2.0])), "b": jax.device_put(np.array([3.0]))}
    grads = {"w": jax.device_put(np.array([1.0, -2.0])), "b": jax.device_put(np.array([0.5]))}
    m1, m2 = {"w": True, "b": False}, {"w": False, "b": True}
    decay = lambda c: 0.1 / (c + 1.0)

    def groups(lib, sgd, rate, other):
        return lib.chain(lib.masked(sgd(rate), m1), lib.masked(sgd(other), m2))

    cases = {  # name: (fnn's optimizer, optax's, a value set into both states before the first step)
        "schedule, another name": (
            O.inject_hyperparams(lambda lr: O.sgd(lr))(decay),
            optax.inject_hyperparams(lambda lr: optax.sgd(lr))(decay),
            None,
        ),
        "a rate per group": (
            O.inject_hyperparams(lambda learning_rate: groups(O, O.sgd, learning_rate, learning_rate * 0.1))(1.0),
            optax.inject_hyperparams(lambda lr: groups(optax, optax.sgd, lr, lr * 0.1))(1.0),
            None,
        ),
        "a constant of the factory": (
            O.inject_hyperparams(lambda learning_rate: groups(O, O.sgd, learning_rate, 0.5))(0.01),
            optax.inject_hyperparams(lambda learning_rate: groups(optax, optax.sgd, learning_rate, 0.5))(0.01),
            None,
        ),
        "set into the outer state": (
            O.inject_hyperparams(lambda lr, mu: O.sgd(lr, momentum=mu))(0.1, 0.5),
            optax.inject_hyperparams(lambda lr, mu: optax.sgd(lr, momentum=mu))(0.1, 0.5),
            {"lr": 0.25, "mu": 0.75},
        ),
        "a schedule's peak": (
            O.inject_hyperparams(lambda peak: O.sgd(lambda c: peak / (c + 1.0)))(0.2),
            optax.inject_hyperparams(lambda peak: optax.sgd(lambda c: peak / (c + 1.0)))(0.2),
            None,
        ),
        # an injection of an injection takes the inner factory's arguments (its signature was
        # (*args, **kwargs): "adam: got an unexpected keyword argument 'args'")
        "an injection of an injection": (
            O.inject_hyperparams(O.inject_hyperparams(O.adam))(learning_rate=0.1, b1=0.8),
            optax.inject_hyperparams(optax.inject_hyperparams(optax.adam))(learning_rate=0.1, b1=0.8),
            None,
        ),
    }
    for name, (mine, ref, values) in cases.items():
        for run in (lambda f: f, jax.jit):
            got, want = mine.init(params), ref.init(params)
            if values:
                got = O.set_hyperparams(got, **values)
                want.hyperparams.update({k: jnp.asarray(v, want.hyperparams[k].dtype) for k, v in values.items()})
            for step in range(4):
                u, got = run(mine.update)(grads, got, params)
                v, want = ref.update(grads, want, params)
                chex.assert_trees_all_close(u, v, rtol=1e-6, atol=1e-12, custom_message=f"{name}, step {step}")
    assert inspect.signature(O.inject_hyperparams(O.adam)) == inspect.signature(O.adam)  # what help() shows
    # a value the factory gives as a constant (a default, a literal) stays the nested state's own:
    # set there, it holds (optax's has no state to set it in); one computed from the outer follows it
    mine = O.inject_hyperparams(lambda lr: groups(O, O.adam, lr, 0.5))(0.1)
    state = O.set_hyperparams(mine.init(params), b1=0.0)  # both nested adams' (the outer has lr alone)
    ref = groups(optax, lambda rate: optax.adam(rate, b1=0.0), 0.1, 0.5)
    want = ref.init(params)
    for step in range(3):
        g = jax.tree.map(lambda a, step=step: a * (1.0 - step), grads)  # (a constant gradient hides b1)
        u, state = jax.jit(mine.update)(g, state, params)
        v, want = ref.update(g, want, params)
        chex.assert_trees_all_close(u, v, rtol=1e-6, atol=1e-12, custom_message=f"b1 set, step {step}")
    assert [float(r) for r in O.get_learning_rates(state)] == pytest.approx([0.1, 0.5])
    # an fnn schedule takes Python numbers: built from an outer value it is refused at the first
    # update, saying why (it said "inside jit, vmap or grad" of an update that ran eagerly)
    bad = O.inject_hyperparams(lambda lr: O.sgd(S.cosine_decay(lr, 4)))(0.1)
    with pytest.raises(TypeError, match=r"built again at each update with its hyperparameters as traced arrays"):
        bad.update(grads, bad.init(params), params)


def test_a_state_holds_a_buffer_of_its_own_for_every_leaf_so_it_can_be_donated():
    """No state leaf is an array the caller holds, nor two leaves one buffer (XLA refuses to
    donate a buffer twice): vmapped hyperparameters of any injected transform and an ``init``-only
    value (adagrad's initial accumulator, filled into two 0-d leaves), a plain callable schedule
    returning the caller's array, and a nested injection after an eager update (the outer values
    written into the inner state)."""
    params = {"s": jax.device_put(np.float32(1.0)), "t": jax.device_put(np.float32(2.0))}
    grads = jax.tree.map(jnp.ones_like, params)
    held_dtype = jax.dtypes.canonicalize_dtype(np.float64)  # the hyperparameters' (no conversion)
    rates = jax.device_put(np.array([0.1, 0.2], held_dtype))
    rate = jax.device_put(held_dtype.type(0.1))
    nested = O.inject_hyperparams(O.adam)(learning_rate=0.1)
    cases = {
        "adagrad init": (O.adagrad(0.1), O.adagrad(0.1).init(params), ()),
        "vmap initial_accumulator_value": (
            O.adagrad(0.1),
            jax.vmap(lambda v: O.adagrad(0.1, initial_accumulator_value=v).init(params))(rates),
            rates,
        ),
        "vmap inject_hyperparams": (
            O.scale_by_learning_rate(0.1),
            jax.vmap(lambda v: O.inject_hyperparams(O.scale_by_learning_rate)(learning_rate=v).init(params))(rates),
            rates,
        ),
        "vmap set_hyperparams(b1=)": (
            O.adam(),
            jax.vmap(lambda v: O.set_hyperparams(O.adam().init(params), b1=v))(rates),
            rates,
        ),
        "callable schedule": (O.sgd(lambda step: rate), O.sgd(lambda step: rate).init(params), rate),
        "nested, eagerly updated": (nested, nested.update(grads, nested.init(params), params)[1], ()),
    }
    for name, (opt, state, given) in cases.items():
        held = _buffers(state)
        assert len(set(held)) == len(held), name
        assert not set(held) & set(_buffers(given)), name
        batched = jnp.ndim(jax.tree.leaves(state)[0]) > 0
        update = jax.vmap(opt.update, in_axes=(None, 0, None)) if batched else opt.update
        jax.jit(update, donate_argnums=1)(grads, state, params)  # raised for a buffer held twice
        np.testing.assert_array_equal(given, np.asarray(given))  # readable: not donated


# ------------------------------------------------------------------------------------------------
# Transforms.


def test_masked_passes_other_leaves_through_as_optax_does():
    """optax.masked: the inner transform runs on the leaves marked True; every other leaf's update
    passes through UNTOUCHED (not zeroed), and masked-out leaves get no inner state."""
    params = {"w": np.array([1.0, 2.0]), "b": np.array([3.0]), "frozen": {"k": np.ones((2, 2))}}
    g = {"w": np.array([0.5, -1.0]), "b": np.array([2.0]), "frozen": {"k": np.full((2, 2), 0.25)}}
    masks = (
        {"w": True, "b": True, "frozen": False},  # a prefix of params
        lambda p: jax.tree.map(lambda x: x.ndim == 1, p),  # a function of params
    )
    # optax's documented recipe: decay the weights only, and still train the biases.
    recipe = O.chain(O.masked(O.add_decayed_weights(0.1), {"w": True, "b": False}), O.sgd(1.0))
    p2, g2 = {"w": np.array([1.0, -2.0]), "b": np.array([3.0])}, {"w": np.array([0.5, 0.5]), "b": np.array([2.0])}

    @jax.jit  # the whole test's numbers in one compiled program
    def run(params, g, p2, g2):
        out = []
        for mask in masks:
            opt = O.masked(O.adam(0.1), mask)
            state = opt.init(params)
            updates, _ = opt.update(g, state, params)
            plain = O.adam(0.1)
            expected, _ = plain.update({"w": g["w"], "b": g["b"]}, plain.init({"w": params["w"], "b": params["b"]}))
            out.append((state, updates, expected))
        return out, recipe.update(g2, recipe.init(p2), p2)[0]

    per_mask, u = run(params, g, p2, g2)
    for state, updates, expected in per_mask:
        assert all(x.ndim <= 1 for x in jax.tree.leaves(state))  # no moments for the masked-out leaf
        np.testing.assert_array_equal(updates["frozen"]["k"], g["frozen"]["k"])  # untouched
        np.testing.assert_allclose(updates["w"], expected["w"], rtol=1e-15)
        np.testing.assert_allclose(updates["b"], expected["b"], rtol=1e-15)
    np.testing.assert_allclose(u["w"], [-(0.5 + 0.1), -(0.5 - 0.2)], rtol=1e-15)
    np.testing.assert_array_equal(u["b"], [-2.0])  # the bias trains: its update is -lr * g
    with pytest.raises(ValueError, match="mask"):
        O.masked(O.sgd(), {"w": True}).init(params)
    with pytest.raises(TypeError, match="mask"):
        jax.jit(lambda m: O.masked(O.sgd(), {"w": m, "b": True, "frozen": True}).init(params))(True)


def test_masked_equals_optax_masked():
    optax = pytest.importorskip("optax")
    params, grads = _problem(3)
    mask = {"b": False, "w": True}
    ours = O.chain(O.masked(O.add_decayed_weights(0.3), mask), O.masked(O.scale_by_adam(), mask), O.scale(-0.1))
    theirs = optax.chain(
        optax.masked(optax.add_decayed_weights(0.3), mask),
        optax.masked(optax.scale_by_adam(eps_root=0.0), mask),
        optax.scale(-0.1),
    )

    @jax.jit  # both libraries' three steps in one compiled program
    def run(params, grads):
        s1, s2 = ours.init(params), theirs.init(params)
        out = []
        for g in grads:
            u1, s1 = ours.update(g, s1, params)
            u2, s2 = theirs.update(g, s2, params)
            out.append((u1, u2))
        return out

    for u1, u2 in run(params, grads):
        np.testing.assert_array_equal(u1["b"], u2["b"])  # passed through by both: -0.1 * g
        np.testing.assert_allclose(u1["w"], u2["w"], rtol=1e-6)  # optax's adam puts eps differently


def _times_value_init(params):
    return O.EmptyState()


def _times_value(updates, state, params=None, *, value, **extra_args):
    """A user's transform that needs an extra argument, as optax's ``value=``: updates * value."""
    return jax.tree.map(lambda u: u * value, updates), state


def test_extra_arguments_reach_the_transforms_that_take_them_as_optax_chain_passes_them():
    times_value = O.GradientTransformation(_times_value_init, _times_value)
    params, g = {"w": np.array([1.0, -2.0])}, {"w": np.array([0.5, 4.0])}
    # each combinator passes value= on to times_value; clip_by_value and sgd take none and get none
    ours = [
        O.chain(O.clip_by_value(1.0), times_value, O.sgd(0.1)),
        O.chain(O.chain(times_value), O.masked(times_value, {"w": True})),
        O.inject_hyperparams(lambda clip_value: O.chain(O.clip_by_value(clip_value), times_value))(clip_value=1.0),
    ]

    @jax.jit
    def run(g, params, value):
        return [t.update(g, t.init(params), params, value=value)[0]["w"] for t in ours]

    chained, nested, injected = run(g, params, 3.0)
    np.testing.assert_allclose(chained, [-0.15, -0.3], rtol=1e-15)
    np.testing.assert_array_equal(nested, [4.5, 36.0])
    np.testing.assert_array_equal(injected, [1.5, 3.0])
    with pytest.raises(TypeError, match="value"):  # a transform that needs it, called without it (traced only)
        jax.eval_shape(lambda: ours[0].update(g, ours[0].init(params), params))

    optax = pytest.importorskip("optax")
    # optax's reduce_on_plateau reads value= (the loss) at each update; it does not fall: the rate halves
    plateau = optax.contrib.reduce_on_plateau(patience=1, factor=0.5)
    theirs = optax.chain(optax.sgd(0.1), plateau)
    cases = [  # fnn's chain of fnn's sgd, of optax's sgd (itself an optax chain), fnn's masked
        O.chain(O.sgd(0.1), plateau),
        O.chain(optax.sgd(0.1), plateau),
        O.masked(O.chain(O.sgd(0.1), plateau), {"w": True}),
    ]

    @jax.jit
    def trajectories(g, params):
        out = []
        for t in (theirs, *cases):
            state, steps = t.init(params), []
            for value in (1.0, 2.0, 3.0):
                u, state = t.update(g, state, params, value=jnp.asarray(value))
                steps.append(u["w"])
            out.append(steps)
        return out

    reference, *results = trajectories(g, params)
    np.testing.assert_allclose([u[0] for u in reference], [-0.05, -0.025, -0.0125], rtol=1e-15)
    for steps in results:
        np.testing.assert_array_equal(steps, reference)


def test_freeze_zeroes_marked_leaves_and_masked_spares_their_state():
    params = {"w": np.array([1.0, 2.0]), "b": np.array([3.0]), "frozen": {"k": np.ones((2, 2))}}
    g = {"w": np.array([0.5, -1.0]), "b": np.array([2.0]), "frozen": {"k": np.ones((2, 2))}}
    frozen = {"w": False, "b": False, "frozen": True}
    trainable = jax.tree.map(lambda f: not f, frozen)
    # Train w and b with Adam, hold "frozen" constant and keep no moments for it.
    opt = O.chain(O.masked(O.adam(0.1), trainable), O.freeze(frozen))
    plain = O.adam(0.1)

    @jax.jit  # the whole test's numbers in one compiled program
    def run(params, g):
        u, _ = O.freeze(frozen).update(g, O.freeze(frozen).init(params))
        state = opt.init(params)
        updates, _ = opt.update(g, state, params)
        expected, _ = plain.update({"w": g["w"], "b": g["b"]}, plain.init({"w": params["w"], "b": params["b"]}))
        return u, state, updates, expected

    u, state, updates, expected = run(params, g)
    np.testing.assert_array_equal(u["frozen"]["k"], np.zeros((2, 2)))
    np.testing.assert_array_equal(u["w"], g["w"])
    assert all(x.ndim <= 1 for x in jax.tree.leaves(state))
    np.testing.assert_array_equal(updates["frozen"]["k"], np.zeros((2, 2)))
    np.testing.assert_allclose(updates["w"], expected["w"], rtol=1e-15)
    np.testing.assert_allclose(updates["b"], expected["b"], rtol=1e-15)


# ------------------------------------------------------------------------------------------------
# Optimizers are chains of public transforms; new ones are built from them.

# Each named optimizer and the chain of public pieces it is documented to be.
AS_CHAINS = [
    (
        O.sgd(0.1, momentum=0.9, dampening=0.3, weight_decay=0.2),
        O.chain(O.add_decayed_weights(0.2), O.trace(0.9, 0.3), O.scale_by_learning_rate(0.1)),
    ),
    (O.nesterov(0.05), O.chain(O.trace(0.9, nesterov=True), O.scale_by_learning_rate(0.05))),
    (
        O.adagrad(0.1, lr_decay=0.1, initial_accumulator_value=0.2),
        O.chain(O.scale_by_adagrad(0.2, 1e-10, 0.1), O.scale_by_learning_rate(0.1)),
    ),
    (
        O.rmsprop(0.01, momentum=0.5, centered=True, weight_decay=0.1),
        O.chain(
            O.add_decayed_weights(0.1),
            O.scale_by_rms(0.99, 1e-8, centered=True),
            O.trace(0.5),
            O.scale_by_learning_rate(0.01),
        ),
    ),
    (O.adadelta(0.5), O.chain(O.scale_by_adadelta(0.9, 1e-6), O.scale_by_learning_rate(0.5))),
    (
        O.adam(0.1, amsgrad=True, weight_decay=0.1),
        O.chain(O.add_decayed_weights(0.1), O.scale_by_adam(amsgrad=True), O.scale_by_learning_rate(0.1)),
    ),
    (O.adamw(0.1), O.chain(O.scale_by_adam(), O.add_decayed_weights(1e-2), O.scale_by_learning_rate(0.1))),
    (O.adamax(0.1), O.chain(O.scale_by_adamax(), O.scale_by_learning_rate(0.1))),
    (O.nadam(0.1), O.chain(O.scale_by_nadam(), O.scale_by_learning_rate(0.1))),
    (O.radam(0.1), O.chain(O.scale_by_radam(), O.scale_by_learning_rate(0.1))),
    (O.rprop(0.1), O.chain(O.scale_by_rprop(0.1), O.scale(-1.0))),
    (
        O.lion(0.1, weight_decay=0.5),
        O.chain(O.scale_by_lion(), O.add_decayed_weights(0.5), O.scale_by_learning_rate(0.1)),
    ),
    (
        O.asgd(0.1, t0=2, weight_decay=0.2),
        O.chain(O.add_decayed_weights(0.2), O.scale_by_asgd(0.1, t0=2), O.scale(-1.0)),
    ),
    (
        O.adafactor(0.1, weight_decay=0.5, maximize=True),
        O.chain(O.scale(-1.0), O.scale_by_adafactor(0.1), O.add_decayed_weights(0.05), O.scale(-1.0)),
    ),
    (O.lamb(0.1), O.chain(O.scale_by_adam(eps=1e-7), O.scale_by_trust_ratio(), O.scale_by_learning_rate(0.1))),
    (O.ftrl(0.1, -0.7, 0.5, 0.2, 0.1, 0.3, 0.4), O.scale_by_ftrl(0.1, -0.7, 0.5, 0.2, 0.1, 0.3, 0.4)),
]


@pytest.mark.parametrize("named,chained", AS_CHAINS, ids=lambda c: "")
def test_named_optimizers_are_their_documented_chains(named, chained):
    params, grads = _problem(8)
    a, b = _trajectory(named, params, grads), _trajectory(chained, params, grads)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-13, atol=1e-15)
    # the named one is the chain with its hyperparameters held in the state
    state = named.init(jax.tree.map(jax.device_put, params))
    assert isinstance(state, O.InjectHyperparamsState) and isinstance(state.inner_state, tuple)
    assert jax.tree.structure(state.inner_state) == jax.tree.structure(
        chained.init(jax.tree.map(jax.device_put, params))
    )


def ref_lamb(params, grads, lr, b1=0.9, b2=0.999, eps=1e-6, weight_decay=0.01):
    """LAMB (You et al. 2020, Algorithm 2 with phi = identity), per leaf, NumPy float64."""
    theta = {k: np.asarray(v, np.float64) for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in theta.items()}
    v_ = {k: np.zeros_like(v) for k, v in theta.items()}
    out = []
    for t, g in enumerate(grads, 1):
        for k in theta:
            m[k] = b1 * m[k] + (1 - b1) * g[k]
            v_[k] = b2 * v_[k] + (1 - b2) * g[k] ** 2
            r = (m[k] / (1 - b1**t)) / (np.sqrt(v_[k] / (1 - b2**t)) + eps) + weight_decay * theta[k]
            pn, rn = np.linalg.norm(theta[k]), np.linalg.norm(r)
            ratio = pn / rn if pn > 0 and rn > 0 else 1.0
            theta[k] = theta[k] - lr * ratio * r
        out.append(_flat(theta))
    return out


def test_lamb_built_from_public_pieces_matches_numpy_reference():
    def lamb(learning_rate, weight_decay=0.01):
        return O.chain(
            O.scale_by_adam(eps=1e-6),
            O.add_decayed_weights(weight_decay),
            O.scale_by_trust_ratio(),
            O.scale_by_learning_rate(learning_rate),
        )

    params, grads = _problem(6)
    params["z"] = np.zeros(3)  # a zero-norm leaf: ratio 1, not 0/0
    for g in grads:
        g["z"] = np.linspace(-1.0, 1.0, 3)
    want = ref_lamb(params, grads, 0.05)
    for opt in (lamb(0.05), O.inject_hyperparams(lamb)(learning_rate=0.05)):
        got = _trajectory(opt, params, grads)
        for t, (a, b) in enumerate(zip(got, want, strict=True), 1):
            np.testing.assert_allclose(a, b, rtol=GOLDEN_RTOL, atol=0, err_msg=f"step {t}")
    # injected: the learning rate lives in the state and can be set without rebuilding
    state = O.inject_hyperparams(lamb)(learning_rate=0.05).init(jax.tree.map(jax.device_put, params))
    assert O.get_hyperparams(state).keys() == {"learning_rate", "weight_decay"}
    assert float(O.get_learning_rate(O.set_learning_rate(state, 0.5))) == 0.5


def test_same_family_other_values_share_the_update_function(compiles):
    """Hyperparameter values are data: equal update functions, one compiled program."""
    assert O.adam(1e-3).update == O.adam(0.5, b1=0.8, eps=1e-6).update
    assert hash(O.adam(1e-3).update) == hash(O.adam(0.5).update)
    assert O.adam(1e-3).update != O.adam(1e-3, amsgrad=True).update  # an option changes the program
    assert O.adam(1e-3).update != O.adam(1e-3, weight_decay=0.1).update  # a term switched on too
    assert O.adam(1e-3).update != O.adamw(1e-3).update
    assert O.sgd(0.1, momentum=0.9).update == O.sgd(0.2, momentum=0.5).update
    params = {"w": jax.device_put(np.ones((2, 2), jnp.float32))}
    g = {"w": jax.device_put(np.full((2, 2), 0.5, jnp.float32))}
    step = jax.jit(lambda update, s: update(g, s, params), static_argnums=0)
    first = O.adam(1e-3)
    step(first.update, first.init(params))
    with compiles() as c:
        second = O.adam(0.25, b2=0.99)
        u, _ = step(second.update, second.init(params))
    assert c.count == 0
    np.testing.assert_allclose(u["w"], -0.25, rtol=1e-5)


# The transforms that take an array hyperparameter, built with the value v.
ARRAY_HYPERPARAMETERS = {
    "scale": lambda v: O.scale(v),
    "add_decayed_weights": lambda v: O.add_decayed_weights(v),
    "clip_by_global_norm": lambda v: O.clip_by_global_norm(v),
    "clip_by_value": lambda v: O.clip_by_value(v),
    "trace": lambda v: O.trace(v),
    "scale_by_rms": lambda v: O.scale_by_rms(v),
    "scale_by_adam": lambda v: O.scale_by_adam(b1=v),
    "adam": lambda v: O.adam(b1=v),  # the value held in the state: its init keyed on it
}


@pytest.mark.parametrize("name", ARRAY_HYPERPARAMETERS)
def test_a_copied_or_unpickled_array_hyperparameter_compares_by_its_value(name):
    """The issue: an array hyperparameter was keyed by its id, which a copy or a pickle carried
    while holding a new array; with the original freed, a transform of another value could
    take the address and compare equal (fit then reused its compiled epoch). Concrete arrays
    are keyed by value: equal values compare equal, other values never."""
    build = ARRAY_HYPERPARAMETERS[name]
    j = lambda v: jnp.asarray(v, jnp.float32)
    assert build(j(0.3)) == build(j(0.3)) and hash(build(j(0.3))) == hash(build(j(0.3)))
    for copy_of in (copy.deepcopy, lambda t: pickle.loads(pickle.dumps(t))):
        original = build(j(0.3))
        restored = copy_of(original)
        del original
        gc.collect()
        others = [build(j(0.1)) for _ in range(50)]  # fresh arrays where the freed one was
        assert all(restored != other for other in others)
        assert restored == build(j(0.3)) and hash(restored) == hash(build(j(0.3)))


def test_a_restored_scale_by_adam_updates_with_its_own_b1():
    """The probe's case: scale_by_adam(b1=0.9) copied, the original freed, updates as b1=0.9
    (Adam's first step is the gradient's sign; its second tells b1 apart), not as a b1=0.5 one."""
    g = {"w": jnp.asarray([0.5, -2.0], jnp.float32)}
    g2 = {"w": jnp.asarray([-1.0, 3.0], jnp.float32)}

    def second_step(t):
        s = t.init(g)
        _, s = t.update(g, s)
        return np.asarray(t.update(g2, s)[0]["w"], np.float64)

    restored = copy.deepcopy(O.scale_by_adam(b1=jnp.asarray(0.9, jnp.float32)))
    gc.collect()
    other = O.scale_by_adam(b1=jnp.asarray(0.5, jnp.float32))
    want = {b1: second_step(O.scale_by_adam(b1=b1)) for b1 in (0.9, 0.5)}
    assert not np.allclose(want[0.9], want[0.5])
    np.testing.assert_allclose(second_step(restored), want[0.9], rtol=1e-6)
    np.testing.assert_allclose(second_step(other), want[0.5], rtol=1e-6)


def test_a_named_optimizer_shows_the_call_that_built_it():
    """A named optimizer's repr is its call with every argument (defaults included), not the
    tuple of its functions; it stays equal to, and hashed as, that tuple, through copies too."""
    opt = O.adam(1e-3)
    assert repr(opt) == "adam(learning_rate=0.001, b1=0.9, b2=0.999, eps=1e-08, weight_decay=0.0, amsgrad=False)"
    assert repr(O.get("SGD", learning_rate=0.1, momentum=0.9)) == (
        "sgd(learning_rate=0.1, momentum=0.9, dampening=0.0, nesterov=False, weight_decay=0.0)"
    )
    assert repr(O.adamw(S.constant(0.3))).startswith("adamw(learning_rate=fnn.schedules.constant(value=0.3), b1=")
    plain = O.GradientTransformation(opt.init, opt.update)
    assert isinstance(opt, O.GradientTransformation) and opt == plain and hash(opt) == hash(plain)
    for back in (copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))):
        assert back == opt and repr(back) == repr(opt)


# Every fnn schedule twice: the same rule and step structure, other values (a floor, then a
# ceiling for the bounded exponential; a warmup from 0).
SCHEDULE_PAIRS = [
    (S.constant(0.3), S.constant(0.07)),
    (S.exponential_decay(0.1, 3, 0.7), S.exponential_decay(0.37, 3, 0.45)),
    (
        S.exponential_decay(0.1, 3, 0.7, transition_begin=2, staircase=True, end_value=0.05),
        S.exponential_decay(0.2, 3, 1.3, transition_begin=2, staircase=True, end_value=0.29),
    ),
    (S.piecewise_constant([2, 5], [0.1, 0.05, 0.01]), S.piecewise_constant([2, 5], [0.3, 0.2, 0.7])),
    (S.cosine_decay(0.1, 7, 0.13), S.cosine_decay(0.03, 7, 0.5)),
    (S.warmup_cosine_decay(0.01, 0.3, 3, 9, 0.017), S.warmup_cosine_decay(0.0, 0.2, 3, 9, 0.001)),
    (S.linear(0.3, 0.011, 6, 2), S.linear(0.1, 0.2, 6, 2)),
    (S.polynomial(0.3, 0.011, 1.7, 6), S.polynomial(0.5, 0.1, 1.7, 6)),
    (S.one_cycle(10, 0.3, 0.37, 11.0, 300.0), S.one_cycle(10, 0.1, 0.55, 4.0, 20.0)),
]
STEPS = 12  # past every schedule's last transition


def _scheduled_rates(updates, states, params):
    """Each optimizer's learning rate before each of ``STEPS`` updates, all in one program."""

    def rates(update, state):
        def body(s, _):
            return update(params, s, params)[1], O.get_learning_rate(s)

        return jax.lax.scan(body, state, None, length=STEPS)[1]

    return [rates(u, s) for u, s in zip(updates, states, strict=True)]


@pytest.mark.parametrize("x64", [True, False], ids=["float64", "float32"])
def test_a_schedule_s_values_are_state_so_other_values_share_the_program(x64, compiles):
    """Issue: an fnn schedule's numbers are data held in the optimizer state, not program
    structure. For every schedule, optimizers built with other values have equal ``update``
    functions and a compiled program serves them; each update evaluates the schedule from the
    state's arrays, giving the rates of the schedule called directly bit for bit (float64 and,
    x64 off, float32)."""
    with jax.enable_x64(x64):
        params = {"w": jax.device_put(np.ones(2, np.float32))}
        run = jax.jit(_scheduled_rates, static_argnums=0)
        first, second = ([O.sgd(s) for s in built] for built in zip(*SCHEDULE_PAIRS, strict=True))
        assert [o.update for o in first] == [o.update for o in second]
        for k, opts in enumerate((first, second)):
            states = jax.jit(lambda p, opts=opts: [o.init(p) for o in opts])(params)  # eagerly: a program per op
            with compiles() as c:
                got = run(tuple(o.update for o in opts), states, params)
            assert k == 0 or c.count == 0
            schedules = [s[k] for s in SCHEDULE_PAIRS]
            # called directly on each step, as the update does (one step at a time)
            want = jax.jit(lambda steps, ss=schedules: [jax.lax.map(s, steps) for s in ss])(
                np.arange(STEPS, dtype=np.int32)
            )
            for schedule, rates, direct in zip(schedules, got, want, strict=True):
                assert rates.dtype == (np.float64 if x64 else np.float32)
                np.testing.assert_array_equal(np.asarray(rates), np.asarray(direct), err_msg=repr(schedule))
            # the values are the state's: the schedule's own numbers, as the rule uses them
            held = states[4].schedule_values["learning_rate"]
            assert {n: float(v) for n, v in held.items()} == pytest.approx(schedules[4].as_data()[1], rel=1e-7)


def test_schedule_structure_stays_program_and_plain_callables_compare_by_identity():
    same = O.adam(S.cosine_decay(1e-2, 100, alpha=0.1)).update
    assert O.adam(S.cosine_decay(3e-3, 100)).update == same
    assert O.adam(S.cosine_decay(3e-3, 101)).update != same  # a step count is program
    assert O.adam(S.cosine_decay(3e-3, 100), amsgrad=True).update != same
    assert (
        O.adam(S.exponential_decay(0.1, 5, 0.5)).update
        != O.adam(S.exponential_decay(0.1, 5, 0.5, staircase=True)).update
    )
    assert O.adam(S.polynomial(0.1, 0.0, 2.0, 5)).update != O.adam(S.polynomial(0.1, 0.0, 3.0, 5)).update
    plain = S.cosine_decay(3e-3, 100)

    def mine(step):
        return plain(step)

    assert O.adam(mine).update == O.adam(mine).update != O.adam(lambda step: plain(step)).update
    state = O.adam(mine).init({"w": jax.device_put(np.ones(2))})
    assert state.schedule_values == {}  # a plain callable holds no values: it is its own program
    assert float(O.get_learning_rate(state)) == 3e-3


def test_scheduled_states_vmap_over_schedule_values_and_rescale():
    """States of the same schedule with other values stack and vmap (fit_many, sweep): each
    model follows its own schedule; set_learning_rate on such a state still scales the rest of
    that schedule, from the values held."""
    params, g = {"w": jax.device_put(np.ones(2))}, {"w": jax.device_put(np.ones(2))}
    a, b = O.sgd(S.cosine_decay(3e-3, 10)), O.sgd(S.cosine_decay(1e-2, 10, alpha=0.2))
    stacked = jax.tree.map(lambda *x: np.stack(x), a.init(params), b.init(params))
    update = jax.jit(jax.vmap(b.update, in_axes=(None, 0, None)))
    ref_a, ref_b = S.cosine_decay(3e-3, 10), S.cosine_decay(1e-2, 10, alpha=0.2)
    for k in range(3):
        u, stacked = update(g, stacked, params)
        np.testing.assert_allclose(np.asarray(u["w"])[:, 0], [-float(ref_a(k)), -float(ref_b(k))], rtol=1e-14)
    # one model alone, its rate halved: the rest of ITS schedule (1e-2, alpha=0.2) is halved
    state = jax.tree.map(lambda x: jax.device_put(np.asarray(x)[1]), stacked)  # sliced on the host: no program
    state = O.set_learning_rate(state, 0.5 * O.get_learning_rate(state))
    for k in range(3, 6):
        u, state = b.update(g, state, params)
        np.testing.assert_allclose(u["w"], -0.5 * float(ref_b(k)), rtol=1e-14)
    np.testing.assert_allclose(float(O.get_learning_rate(state)), 0.5 * float(ref_b(6)), rtol=1e-14)


def test_inject_hyperparams_schedules_and_set_hyperparams():
    params, g = {"w": jax.device_put(np.ones(2))}, {"w": jax.device_put(np.ones(2))}
    opt = O.inject_hyperparams(O.sgd)(learning_rate=S.exponential_decay(0.1, 1, 0.5), momentum=0.9)
    state = opt.init(params)
    assert set(O.get_hyperparams(state)) == {"learning_rate", "momentum", "dampening", "weight_decay"}
    state = O.set_hyperparams(state, momentum=0.0)  # plain SGD from now on
    update = jax.jit(opt.update)  # the factory now sees tracers
    for k in range(3):
        assert float(O.get_learning_rate(state)) == pytest.approx(0.1 * 0.5**k, rel=1e-14)
        u, state = update(g, state, params)
        np.testing.assert_allclose(u["w"], -0.1 * 0.5**k, rtol=1e-14)
    with pytest.raises(ValueError, match="no hyperparameter 'nope'.*learning_rate"):
        O.set_hyperparams(state, nope=1.0)
    with pytest.raises(ValueError, match="momentum"):
        O.inject_hyperparams(O.sgd)(learning_rate=0.1, momentum=-1.0)  # checked when built
    with pytest.raises(TypeError, match="unexpected keyword|got an unexpected"):
        O.inject_hyperparams(O.sgd)(learning_rate=0.1, betas=0.9)


def test_a_schedule_with_python_control_flow_is_named_at_construction(compiles):
    def step_lr(step):  # torch's LambdaLR habit: a Python if on the step
        return 0.1 if step < 5 else 0.01

    with compiles() as c:
        for build in (lambda: O.sgd(step_lr), lambda: O.adam(learning_rate=step_lr)):
            with pytest.raises(
                TypeError, match=r"^learning_rate: the schedule 'step_lr' must be traceable.*jnp\.where"
            ) as e:
                build()
            assert isinstance(e.value.__cause__, jax.errors.TracerBoolConversionError)
        with pytest.raises(TypeError, match=r"^learning_rate: the schedule '<lambda>' must be traceable"):
            O.inject_hyperparams(O.scale_by_learning_rate)(learning_rate=lambda step: 0.9 if step else 0.5)
    assert c.count == 0
    # written with jnp.where, the same schedule runs
    opt = O.sgd(lambda step: jnp.where(step < 5, 0.1, 0.01))
    assert float(O.get_learning_rate(opt.init({"w": np.ones(2)}))) == pytest.approx(0.1)


def test_a_schedule_factory_a_wrong_signature_or_a_bool_rate_is_named_at_construction(compiles):
    """``adam(fnn.schedules.cosine_decay)`` said "cosine_decay() missing 1 required positional
    argument", ``adam(fnn.schedules.constant)`` spoke of a traced value, a function of no step a
    bare Python TypeError, ``step < 3`` "must be a scalar" (it is one): each now says what it is."""
    with compiles() as c:
        for factory in ("cosine_decay", "constant", "piecewise_constant"):
            message = rf"^learning_rate: fnn.schedules.{factory} builds a schedule; call it with its arguments"
            with pytest.raises(TypeError, match=message):
                O.adam(getattr(fnn.schedules, factory))
        for fn, takes in ((lambda: 0.1, r"\(\)"), (lambda step, scale: 0.1 * scale, r"\(step, scale\)")):
            with pytest.raises(TypeError, match=rf"^learning_rate: a schedule is called with the step.*takes {takes}"):
                O.sgd(fn)
        with pytest.raises(
            TypeError, match=r"^learning_rate must be a real number, got an array of shape \(\) .* bool"
        ):
            O.sgd(lambda step: step < 3)
    assert c.count == 0
    # a step with defaults after it, or a partial, is called with the step alone and runs
    assert float(O.get_learning_rate(O.sgd(lambda step, scale=0.5: 0.2 * scale).init({"w": np.ones(2)}))) == 0.1


def test_setting_an_option_of_the_program_says_so_and_a_switched_off_term_says_its_own():
    """``set_hyperparams(state, nesterov=True)`` said "a term switched off at construction, e.g.
    weight_decay=0", which is not what nesterov is."""
    state = O.sgd(0.1, momentum=0.9).init({"w": np.ones(2)})
    for name, value in (("nesterov", True), ("amsgrad", np.True_)):
        with pytest.raises(ValueError, match=rf"'{name}'.*\({name}=True is an option of the optimizer"):
            O.set_hyperparams(state, **{name: value})
    with pytest.raises(ValueError, match=r"no hyperparameter 'weight_decay'.*\(a term switched off at construction"):
        O.set_hyperparams(state, weight_decay=0.1)


# Every hyperparameter each named optimizer holds (all switched on), and how its constructor takes it.
_HELD = {
    "sgd": dict(momentum=0.9, dampening=0.1, weight_decay=0.1),
    "adagrad": dict(lr_decay=0.1, weight_decay=0.1),
    "rmsprop": dict(momentum=0.9, weight_decay=0.1),
    "adadelta": dict(weight_decay=0.1),
    "adam": dict(weight_decay=0.1),
    "adamw": dict(),
    "adamax": dict(weight_decay=0.1),
    "nadam": dict(weight_decay=0.1),
    "radam": dict(weight_decay=0.1),
    "rprop": dict(step_sizes=(0.0, 50.0)),
    "lion": dict(weight_decay=0.1),
    "asgd": dict(weight_decay=0.1),
    "adafactor": dict(eps=(1e-30, 1e-3), weight_decay=0.1),
    "muon": dict(),
    "lamb": dict(weight_decay=0.1),
    "ftrl": dict(weight_decay=0.1),
}
_AS_ARGUMENT = {  # rprop and adafactor take pairs
    "eta_minus": lambda v: {"etas": (v, 1.2)},
    "eta_plus": lambda v: {"etas": (0.5, v)},
    "step_size_min": lambda v: {"step_sizes": (v, 50.0)},
    "step_size_max": lambda v: {"step_sizes": (0.0, v)},
    "eps1": lambda v: {"eps": (v, 1e-3)},
    "eps2": lambda v: {"eps": (1e-30, v)},
}


def _accepts(call):
    try:
        call()
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("name", sorted(_HELD))
def test_set_hyperparams_takes_the_values_the_constructor_takes(name):
    """A value set into a state is checked as the optimizer's constructor checks it (SPEC: a
    negative learning rate is refused before any compiled code runs): no silent ascent or NaN."""
    factory = getattr(O, name)
    state = factory(**_HELD[name]).init({"w": jax.device_put(np.ones(2))})
    held = O.get_hyperparams(state)
    for hp in held:
        for v in (-1.0, 0.0, 0.5, 1.0, 1.5, np.nan, np.inf):
            as_arg = _AS_ARGUMENT.get(hp, lambda v, hp=hp: {hp: v})(v)
            built = _accepts(lambda: factory(**{**_HELD[name], **as_arg}))
            set_ = _accepts(lambda: O.set_hyperparams(state, **{hp: v}))
            # each optimizer's own range (rmsprop's decay in [0, 1], though trace's decay is >= 0)
            assert set_ == built, (name, hp, v, built, set_)
    with pytest.raises(ValueError, match=r"learning_rate must be finite and >= 0, got -0.1"):
        O.set_hyperparams(state, learning_rate=-0.1)
    with pytest.raises(TypeError, match="learning_rate must be a real number"):
        O.set_hyperparams(state, learning_rate="fast")


def test_hyperparameters_held_in_8_bit_floats_are_refused_by_name():
    """0.9 in float8_e4m3fn is 0.875: a constructor, set_hyperparams, inject_hyperparams and the
    learning-rate functions refuse it (params_dtype's rule), where bfloat16 is taken."""
    eight = np.asarray(0.9, jnp.float8_e4m3fn)
    state = O.sgd(0.1, momentum=0.5).init({"w": jax.device_put(np.ones(2))})
    said = r"is held in float8_e4m3fn \(as 0.875\); a number must be a Python number or of float16, bfloat16"
    for value in (eight[()], jax.device_put(eight)):
        with pytest.raises(TypeError, match="^b1 " + said):
            O.adam(b1=value)
        with pytest.raises(TypeError, match="^momentum " + said):
            O.set_hyperparams(state, momentum=value)
        with pytest.raises(TypeError, match="^learning_rate " + said):
            O.inject_hyperparams(lambda learning_rate: O.sgd(learning_rate))(learning_rate=value)
        with pytest.raises(TypeError, match="^factor " + said):
            O.scale_learning_rates(state, value)
    assert float(O.get_hyperparams(O.adam(b1=jax.device_put(np.asarray(0.5, jnp.bfloat16))).init({}))["b1"]) == 0.5


def test_adagrads_that_differ_only_in_initial_accumulator_value_share_their_programs(compiles):
    """s_0 is read by init alone: it fills the sum but is held nowhere in the state (setting it
    later could not refill the sum), so the update is the same function whatever s_0, and a fit
    with another s_0 compiles nothing, training torch's rule from that s_0."""
    import fnn

    a, b = O.adagrad(0.1, initial_accumulator_value=0.2), O.adagrad(0.1, initial_accumulator_value=0.3)
    assert a.update == b.update and a.init != b.init
    state = b.init({"w": jax.device_put(np.ones(2))})
    np.testing.assert_array_equal(np.asarray(state.inner_state[0].sum["w"]), [0.3, 0.3])
    assert sorted(O.get_hyperparams(state)) == ["eps", "learning_rate", "lr_decay"]
    with pytest.raises(ValueError, match="holds no hyperparameter 'initial_accumulator_value'"):
        O.set_hyperparams(state, initial_accumulator_value=1.0)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 1))
    net = fnn.mlp([1])
    params = net.init(jax.random.PRNGKey(0), (3,), jnp.float64)
    fit = lambda opt: fnn.fit(net, params, opt, "mse", x, y, batch_size=8, epochs=2, verbose=0)
    fit(a)
    with compiles() as c:
        result = fit(b)
    assert c.count == 0
    # two full-batch steps of torch's Adagrad from s_0 = 0.3, in NumPy
    w, bias = np.asarray(params[0]["w"]), np.asarray(params[0]["b"])
    theta, s = np.concatenate([w.ravel(), bias]), np.full(4, 0.3)
    for _ in range(2):
        r = x @ theta[:3, None] + theta[3] - y
        g = np.concatenate([(2 * x.T @ r / r.size).ravel(), [2 * r.sum() / r.size]])
        s = s + g**2
        theta = theta - 0.1 * g / (np.sqrt(s) + 1e-10)
    got = np.concatenate([np.asarray(result.params[0]["w"]).ravel(), np.asarray(result.params[0]["b"])])
    np.testing.assert_allclose(got, theta, rtol=1e-12)


def test_momentum_set_to_0_in_a_state_built_with_dampening_is_torchs_plain_sgd():
    """torch.optim.SGD(momentum=0, dampening=0.5) steps by the gradient, undamped (no buffer);
    a sweep sets momentum 0 into a state built with momentum and dampening: the same steps, bit
    for bit those of sgd(momentum=0, dampening=0.5), weight decay and nesterov-free."""
    params = {"w": jax.device_put(np.array([1.0, -2.0]))}
    grads = [{"w": jax.device_put(np.array([1.0, 0.5]) * (k + 1))} for k in range(4)]
    ref = ref_sgd(np.array([1.0, -2.0]), [np.asarray(g["w"]) for g in grads], lr=0.1, dampening=0.5, weight_decay=0.1)

    def run(opt, state):
        p, out = params, []
        for g in grads:
            u, state = opt.update(g, state, p)
            p = O.apply_updates(p, u)
            out.append(np.asarray(p["w"]))
        return out

    built = O.sgd(0.1, momentum=0.0, dampening=0.5, weight_decay=0.1)
    swept = O.sgd(0.1, momentum=0.9, dampening=0.5, weight_decay=0.1)
    expected = run(built, built.init(params))
    np.testing.assert_allclose(expected, ref, rtol=1e-15)
    np.testing.assert_array_equal(run(swept, O.set_hyperparams(swept.init(params), momentum=0.0)), expected)
    # and momentum set back on is torch's damped rule again
    state = O.set_hyperparams(swept.init(params), momentum=0.8)
    ref_m = ref_sgd(np.array([1.0, -2.0]), [np.asarray(g["w"]) for g in grads], 0.1, 0.8, 0.5, weight_decay=0.1)
    np.testing.assert_allclose(run(swept, state), ref_m, rtol=1e-14)


def ref_momentum_toggled(theta, grads, lr, momenta, dampening=0.0, rms_alpha=None, eps=1e-8):
    """torch.optim.SGD / RMSprop with ``param_groups[0]["momentum"]`` set to ``momenta[t]`` before
    step t: while it is 0 the buffer is neither read nor written; SGD's buffer starts as the
    step's gradient on its first use, RMSprop's as zeros."""
    out, b, v = [], None if rms_alpha is None else np.zeros_like(theta), np.zeros_like(theta)
    for g, mu in zip(grads, momenta, strict=True):
        if rms_alpha is not None:
            v = rms_alpha * v + (1 - rms_alpha) * g**2
            g = g / (np.sqrt(v) + eps)
        if mu != 0:
            b = g.copy() if b is None else mu * b + (1 - dampening) * g
            g = b
        theta = theta - lr * g
        out.append(theta)
    return out


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("sgd", {"dampening": 0.0}), ("sgd", {"dampening": 0.5}), ("rmsprop", {})],
)
def test_momentum_set_to_0_mid_run_and_back_keeps_the_buffer_as_torch_does(name, kwargs):
    """torch steps by the (scaled) gradient while the momentum is 0 and leaves the buffer as it
    was: set back, the momentum carries on from the buffer of step 5 (figures of torch 2.14:
    SGD ends at -8.453279, -11.7079511 after gradients 1..12 with momentum 0.9, 0 from step 6,
    0.9 from step 11)."""
    momenta = [0.9] * 5 + [0.0] * 5 + [0.9] * 2
    grads = [np.array([1.0 + t]) for t in range(12)]
    lr = 0.1 if name == "sgd" else 0.01
    opt = getattr(O, name)(lr, momentum=0.9, **kwargs)
    params = jax.device_put(np.array([1.0]))
    state, got = opt.init(params), []
    for g, mu in zip(grads, momenta, strict=True):
        state = O.set_hyperparams(state, momentum=mu)
        u, state = opt.update(jax.device_put(g), state, params)
        params = O.apply_updates(params, u)
        got.append(np.asarray(params))
    ref = ref_momentum_toggled(
        np.array([1.0]), grads, lr, momenta, kwargs.get("dampening", 0.0), 0.99 if name == "rmsprop" else None
    )
    np.testing.assert_allclose(got, ref, rtol=1e-13)
    if kwargs == {"dampening": 0.0}:
        np.testing.assert_allclose(np.ravel(got[-2:]), [-8.453279, -11.7079511], rtol=1e-12)


def test_set_hyperparams_refuses_the_combinations_the_constructor_refuses():
    """Nesterov needs momentum > 0 and dampening 0 (torch raises the same): set into a state, vmapped
    or jitted, as when built; refused before any update could run them with another rule."""
    params = {"w": jax.device_put(np.ones(2))}
    state = O.sgd(0.1, momentum=0.9, nesterov=True).init(params)
    batched = jax.tree.map(lambda a: np.stack([a, a]), state)  # two models' states, as vmap stacks them
    unpickled = pickle.loads(pickle.dumps(state))  # kept the names, lost the checks before
    cases = [(state, {"dampening": 0.5}), (state, {"momentum": 0.0}), (batched, {"momentum": [0.5, 0.0]})]
    for s, values in [*cases, (unpickled, {"momentum": 0.0}), (copy.deepcopy(state), {"dampening": 0.5})]:
        with pytest.raises(ValueError, match="nesterov=True requires momentum > 0 and dampening == 0"):
            O.set_hyperparams(s, **values)
    assert float(O.get_hyperparams(O.set_hyperparams(state, momentum=0.5))["momentum"]) == 0.5
    for s in (O.rmsprop(0.1).init(params), pickle.loads(pickle.dumps(O.rmsprop(0.1).init(params)))):
        with pytest.raises(ValueError, match=r"decay must be in \[0, 1\], got 1.5"):
            O.set_hyperparams(s, decay=1.5)
    # a factory of your own that cannot be pickled: its state still pickles (the names plain)
    local = O.inject_hyperparams(lambda decay: O.trace(decay))(decay=0.5).init(params)
    assert float(O.get_hyperparams(O.set_hyperparams(pickle.loads(pickle.dumps(local)), decay=0.75))["decay"]) == 0.75
    # a directly injected momentum trace takes its own range (decay >= 0), not rmsprop's
    mine = O.inject_hyperparams(O.trace)(decay=0.9).init(params)
    assert float(O.get_hyperparams(O.set_hyperparams(mine, decay=1.5))["decay"]) == 1.5
    # traced values pass through (a constructor lets them), so set_hyperparams still runs under jit
    jitted = jax.jit(lambda s, m: O.get_hyperparams(O.set_hyperparams(s, momentum=m))["momentum"])
    assert float(jitted(state, 0.25)) == 0.25


def test_set_hyperparams_keeps_a_positive_value_positive_and_names_a_value_of_the_wrong_shape():
    """A positive value below the held dtype's range is held as its smallest normal, as the
    constructor holds it (set, ``eps=1e-46`` became 0 in float32 and a zero gradient gave 0/0 =
    NaN); a value that is neither a scalar nor one per model is refused by name (NumPy's
    "cannot broadcast" before)."""
    params = {"w": jax.device_put(np.zeros(2, np.float32))}
    zero = jax.tree.map(jnp.zeros_like, params)
    tiny = np.finfo(np.float32).tiny  # held in float32 (the default without x64): 1e-46 rounds to 0
    adam = O.inject_hyperparams(O.scale_by_adam, hyperparam_dtype=jnp.float32)
    assert np.asarray(O.get_hyperparams(adam(eps=1e-46).init(params))["eps"]) == tiny  # as built
    adam = adam()
    for run in (lambda f: f, jax.jit):
        state = run(lambda s, v: O.set_hyperparams(s, eps=v))(adam.init(params), 1e-46)
        assert np.asarray(O.get_hyperparams(state)["eps"]) == tiny
        np.testing.assert_array_equal(adam.update(zero, state, params)[0]["w"], np.zeros(2))
    rate = O.inject_hyperparams(O.scale_by_learning_rate, hyperparam_dtype=jnp.float32)(0.1).init(params)
    assert np.asarray(O.get_learning_rate(O.set_learning_rate(rate, 1e-46))) == tiny
    opt = O.adam(0.1)
    batched = jax.vmap(lambda lr: O.set_learning_rate(opt.init(params), lr))(jnp.array([0.1, 0.2, 0.3]))
    scalar = r"learning_rate must be a scalar or hold one value per model"
    for s, value, match in (
        (opt.init(params), [0.2], scalar + r" \(this state is not vmapped\), got shape \(1,\)"),
        (batched, np.array([0.1, 0.2]), scalar + r" \(one per model .* shape \(3,\)\), got shape \(2,\)"),
    ):  # fmt: skip
        with pytest.raises(ValueError, match=match):
            O.set_learning_rate(s, value)
    np.testing.assert_allclose(O.get_learning_rate(O.set_learning_rate(batched, np.array([1.0, 2.0, 3.0]))), [1, 2, 3])


def test_set_hyperparams_traces_the_constructor_s_check_once_per_set_of_values():
    """The constructor's check of the values set is cached on them (floats by their bits):
    setting the same ones again, as a callback or a sweep does, traces nothing; a new value is
    checked, and a refused one is refused again."""
    state = O.sgd(0.1, momentum=0.9, nesterov=True).init({"w": jax.device_put(np.ones(2))})
    traced: list = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/jaxpr_trace_duration":
            traced.append(kwargs.get("fun_name"))

    O.set_hyperparams(state, momentum=0.5)
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        assert float(O.get_hyperparams(O.set_hyperparams(state, momentum=0.5))["momentum"]) == 0.5
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert traced == []
    for _ in range(2):
        with pytest.raises(ValueError, match="nesterov=True requires momentum > 0"):
            O.set_hyperparams(state, momentum=0.0)
    with pytest.raises(ValueError, match="nesterov=True requires momentum > 0"):
        O.set_hyperparams(state, momentum=-0.0)


def test_a_rate_given_as_an_int_is_held_as_a_float_and_an_int_is_never_truncated():
    """sgd(jnp.array(1)) or a recipe's learning_rate=1 held the rate as int32: set_learning_rate(0.5),
    as ReduceLROnPlateau does, truncated it to 0 and training stopped without a word."""
    params, grads = {"w": jnp.array([1.0, 2.0])}, {"w": jnp.array([1.0, -1.0])}
    recipe = lambda learning_rate, k: O.chain(O.scale(k), O.scale_by_learning_rate(learning_rate))
    for opt in (O.sgd(jnp.array(1)), O.sgd(np.int64(1)), O.inject_hyperparams(recipe)(learning_rate=1, k=1)):
        state = O.set_learning_rate(opt.init(params), 0.5)
        assert jnp.issubdtype(O.get_learning_rate(state).dtype, jnp.floating)
        np.testing.assert_array_equal(opt.update(grads, state, params)[0]["w"], [-0.5, 0.5])
    # a hyperparameter of your own factory's given as an int stays one; a fraction is refused, not cut
    state = O.inject_hyperparams(recipe)(learning_rate=1, k=2).init(params)
    assert jnp.issubdtype(O.get_hyperparams(state)["k"].dtype, jnp.integer)
    assert int(O.get_hyperparams(O.set_hyperparams(state, k=3))["k"]) == 3
    with pytest.raises(ValueError, match=r"k=2.5: the state holds k as int(32|64) .* with a float, e.g. k=2.0"):
        O.set_hyperparams(state, k=2.5)


def test_set_hyperparams_checks_every_value_of_a_vmapped_state_and_leaves_traced_ones():
    opt = O.adam(1e-3)
    states = jax.vmap(lambda lr: O.set_learning_rate(opt.init({"w": jax.device_put(np.ones(2))}), lr))(
        jax.device_put(np.array([1e-3, 1e-2]))
    )
    O.set_hyperparams(states, b1=np.array([0.8, 0.9]))
    with pytest.raises(ValueError, match=r"b1 must be finite and in \[0, 1\), got array\(\[0.9, 1. \]\)"):
        O.set_hyperparams(states, b1=np.array([0.9, 1.0]))
    traced = jax.jit(lambda s, b1: O.get_hyperparams(O.set_hyperparams(s, b1=b1))["b1"])
    np.testing.assert_allclose(traced(states, 0.5), [0.5, 0.5])
    # rprop's limits hold between its two step sizes, as its constructor has them
    rprop = O.rprop(step_sizes=(1e-3, 50.0)).init({"w": jax.device_put(np.ones(2))})
    with pytest.raises(ValueError, match="step_size_max must be >= step_size_min"):
        O.set_hyperparams(rprop, step_size_max=1e-4)
    assert float(O.get_hyperparams(O.set_hyperparams(rprop, step_size_max=1e-3))["step_size_max"]) == pytest.approx(
        1e-3
    )
    # a name of your own factory's: only finiteness is known
    mine = O.inject_hyperparams(O.scale)(step_size=-2.0).init({"w": jax.device_put(np.ones(2))})
    assert float(O.get_hyperparams(O.set_hyperparams(mine, step_size=-3.0))["step_size"]) == -3.0
    with pytest.raises(ValueError, match="step_size must be finite, got nan"):
        O.set_hyperparams(mine, step_size=np.nan)


def test_clip_by_global_norm():
    opt = O.clip_by_global_norm(1.0)
    g = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}
    small = jax.tree.map(lambda x: x / 10, g)  # norm 0.5: untouched
    zero = jax.tree.map(np.zeros_like, g)
    half = {"x": np.full((4,), 3.0, jnp.bfloat16)}  # norm 6 -> scaled by 1/6
    # one compiled program for the four calls
    clipped, small_out, zero_out, out = jax.jit(
        lambda g, small, zero, half: [opt.update(u, opt.init(u))[0] for u in (g, small, zero, half)]
    )(g, small, zero, half)
    np.testing.assert_allclose(_flat(clipped), [0.6, 0.0, 0.8], rtol=1e-15)
    np.testing.assert_array_equal(_flat(small_out), _flat(small))
    np.testing.assert_array_equal(_flat(zero_out), np.zeros(3))
    assert out["x"].dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(out["x"], np.float32), 0.5, rtol=1e-2)
    with pytest.raises(ValueError, match="max_norm"):
        O.clip_by_global_norm(0.0)


def test_clip_scale_decay_schedule_and_chain():
    params = {"x": np.array([1.0, -2.0, 3.0])}
    g = {"x": np.array([0.5, -4.0, 2.0])}
    sched = O.scale_by_schedule(lambda c: 2.0**-c)
    # chain order: clip, then L2 term, then SGD with lr 1 (= negation).
    chain = O.chain(O.clip_by_value(1.0), O.add_decayed_weights(0.1), O.sgd(1.0))

    @jax.jit  # the whole test's numbers in one compiled program
    def run_all(g, params):
        run = lambda t: t.update(g, t.init(params), params)[0]["x"]
        state, scheduled = sched.init(params), []
        for _ in range(3):
            u, state = sched.update(g, state)
            scheduled.append(u["x"])
        return run(O.clip_by_value(1.0)), run(O.scale(-0.5)), run(O.add_decayed_weights(0.1)), scheduled, run(chain)

    clipped, scaled, decayed, scheduled, chained = run_all(g, params)
    np.testing.assert_array_equal(clipped, [0.5, -1.0, 1.0])
    np.testing.assert_array_equal(scaled, [-0.25, 2.0, -1.0])
    np.testing.assert_allclose(decayed, [0.6, -4.2, 2.3], rtol=1e-15)
    for k, u in enumerate(scheduled):
        np.testing.assert_array_equal(u, g["x"] * 2.0**-k)
    np.testing.assert_allclose(chained, [-0.6, 1.2, -1.3], rtol=1e-15)
    with pytest.raises(TypeError, match="transforms"):
        O.chain(O.sgd(), "adam")
    with pytest.raises(TypeError, match="schedule"):
        O.scale_by_schedule(0.1)


def test_stateless_refuses_a_function_that_cannot_take_updates_and_params_when_built():
    """As an Activation's vjp is checked where it is built: a one-argument fn is refused by
    stateless, naming the call it gets, not at fit's first update."""
    want = r"^stateless: fn is called as fn\(updates, params\) -> updates \(params may be None\), but "
    with pytest.raises(TypeError, match=want + r"<lambda> takes \(u\)$"):
        O.stateless(lambda u: u)
    with pytest.raises(TypeError, match=want + r"<lambda> takes \(u, p, scale\)$"):
        O.stateless(lambda u, p, scale: u)
    with pytest.raises(TypeError, match="must be callable"):
        O.stateless(0.5)
    # any signature that takes two arguments is accepted, and one that cannot be read
    halve = O.stateless(functools.partial(lambda u, p, s: jax.tree.map(lambda a: a * s, u), s=0.5))
    g = {"w": np.array([2.0, -4.0])}
    np.testing.assert_array_equal(halve.update(g, halve.init(g))[0]["w"], [1.0, -2.0])
    for fn in (lambda u, p=None: u, lambda *a: a[0], lambda u, p, extra=1: u, max):  # max's is unreadable
        O.stateless(fn)


def test_the_schedules_an_optimizer_holds_are_found_however_its_transforms_nest():
    from fnn.optimizers._held import held_schedules

    rate, factor, decay = S.constant(0.1), (lambda c: 2.0**-c), S.exponential_decay(1e-2, 10, 0.5)
    opt = O.chain(
        O.clip_by_value(1.0),
        O.masked(O.chain(O.trace(0.9), O.scale_by_learning_rate(rate)), {"w": True}),
        O.scale_by_schedule(factor),
        O.inject_hyperparams(O.adamw)(learning_rate=rate, weight_decay=decay),  # injected: their schedules
        O.inject_hyperparams(lambda wd: O.chain(O.add_decayed_weights(wd), O.scale_by_learning_rate(rate)))(wd=0.1),
        O.scale_by_learning_rate(factor, flip_sign=False),
    )
    found = [(h.name, h.schedule, h.rate) for h in held_schedules(opt)]
    assert found == [
        ("learning_rate", rate, True),
        ("scale_by_schedule", factor, False),
        ("learning_rate", rate, True),
        ("weight_decay", decay, False),
        ("learning_rate", rate, True),  # built by the injected factory
        ("learning_rate", factor, True),
    ]
    # a function of the user's own shows nothing; a rate of numbers is no schedule
    assert held_schedules(O.chain(O.stateless(lambda u, p: u), O.sgd(0.1), O.scale_by_learning_rate(0.1))) == []
    # the rate's factor: -rate for descent, +rate without flipping the sign
    g = {"w": np.array([2.0, -1.0])}
    for flip, sign in ((True, -1.0), (False, 1.0)):
        t = O.scale_by_learning_rate(factor, flip_sign=flip)
        u, state = t.update(g, t.init(g))
        u, _ = t.update(g, state)
        np.testing.assert_array_equal(u["w"], sign * 0.5 * g["w"])


# ------------------------------------------------------------------------------------------------
# Validation and the registry.

INVALID = [
    (O.sgd, dict(learning_rate=-1.0), "learning_rate"),
    (O.sgd, dict(learning_rate=float("nan")), "learning_rate"),
    (O.sgd, dict(momentum=-0.1), "momentum"),
    (O.sgd, dict(weight_decay=-1e-4), "weight_decay"),
    (O.sgd, dict(nesterov=True), "nesterov"),
    (O.sgd, dict(momentum=0.9, dampening=0.1, nesterov=True), "nesterov"),
    (O.sgd, dict(dampening=1.5, momentum=0.9), "dampening"),
    (O.adagrad, dict(lr_decay=-1.0), "lr_decay"),
    (O.adagrad, dict(eps=-1e-10), "eps"),
    (O.adagrad, dict(initial_accumulator_value=-0.1), "initial_accumulator_value"),
    (O.rmsprop, dict(decay=1.1), "decay"),
    (O.rmsprop, dict(eps=float("inf")), "eps"),
    (O.adadelta, dict(rho=-0.5), "rho"),
    (O.adam, dict(b1=1.0), "b1"),
    (O.adam, dict(b2=-0.1), "b2"),
    (O.adam, dict(eps=-1e-8), "eps"),
    (O.adamw, dict(weight_decay=-0.01), "weight_decay"),
    (O.adamax, dict(b2=float("nan")), "b2"),
    (O.nadam, dict(momentum_decay=-4e-3), "momentum_decay"),
    (O.radam, dict(b1=1.5), "b1"),
    (O.rprop, dict(etas=(1.2, 0.5)), "etas"),
    (O.rprop, dict(step_sizes=(1.0, 0.5)), "step_sizes"),
    (O.rprop, dict(step_sizes=(-1.0, 0.5)), "step_sizes"),
    (O.lion, dict(b2=1.0), "b2"),
    (O.lion, dict(learning_rate=-1e-4), "learning_rate"),
    (O.asgd, dict(learning_rate=-1e-2), "learning_rate"),
    (O.asgd, dict(lambd=-1e-4), "lambd"),
    (O.asgd, dict(alpha=-0.75), "alpha"),
    (O.asgd, dict(t0=-1.0), "t0"),
    (O.asgd, dict(weight_decay=-1.0), "weight_decay"),
    (O.adafactor, dict(beta2_decay=0.8), "beta2_decay"),
    (O.adafactor, dict(eps=(-1e-3, 1e-3)), "eps1"),
    (O.adafactor, dict(eps=(None, float("nan"))), "eps2"),
    (O.adafactor, dict(eps=(None,)), "eps"),
    (O.adafactor, dict(d=0.5), "d"),
    (O.adafactor, dict(weight_decay=-0.1), "weight_decay"),
    (O.adafactor, dict(learning_rate=-0.1), "learning_rate"),
    (O.muon, dict(learning_rate=-1e-3), "learning_rate"),
    (O.muon, dict(adam_beta_1=1.0), "adam_beta_1"),
    (O.muon, dict(adam_beta_2=-0.1), "adam_beta_2"),
    (O.muon, dict(epsilon=-1e-7), "epsilon"),
    (O.muon, dict(weight_decay=-0.1), "weight_decay"),
    (O.muon, dict(adam_weight_decay=float("nan")), "adam_weight_decay"),
    (O.muon, dict(momentum=-0.5), "momentum"),
    (O.muon, dict(ns_steps=-1), "ns_steps"),
    (O.muon, dict(ns_steps=100), "ns_steps"),
    (O.muon, dict(rms_rate=-0.2), "rms_rate"),
    (O.muon, dict(adam_lr_ratio=-1.0), "adam_lr_ratio"),
    (O.muon, dict(muon_b=float("inf")), "muon_b"),
    (O.lamb, dict(learning_rate=-1e-3), "learning_rate"),
    (O.lamb, dict(b1=1.0), "b1"),
    (O.lamb, dict(b2=-0.1), "b2"),
    (O.lamb, dict(eps=-1e-7), "eps"),
    (O.lamb, dict(weight_decay=-0.1), "weight_decay"),
    (O.ftrl, dict(learning_rate=0.0), "learning_rate must be > 0, got 0.0"),  # it divides
    (O.ftrl, dict(learning_rate_power=0.5), "learning_rate_power must be <= 0, got 0.5"),
    (O.ftrl, dict(initial_accumulator_value=-0.1), "initial_accumulator_value"),
    (O.ftrl, dict(l1_regularization_strength=-0.1), "l1_regularization_strength"),
    (O.ftrl, dict(l2_regularization_strength=-0.1), "l2_regularization_strength"),
    (O.ftrl, dict(l2_shrinkage_regularization_strength=-0.1), "l2_shrinkage_regularization_strength"),
    (O.ftrl, dict(beta=-0.1), "beta"),
    (O.ftrl, dict(weight_decay=float("nan")), "weight_decay"),
]


@pytest.mark.parametrize("factory,kwargs,argname", INVALID)
def test_invalid_hyperparameters_raise_naming_the_argument(factory, kwargs, argname):
    with pytest.raises(ValueError, match=argname):
        factory(**kwargs)


def test_non_numeric_hyperparameters_raise_type_error():
    with pytest.raises(TypeError, match="learning_rate"):
        O.adam(learning_rate="0.1")
    with pytest.raises(TypeError, match="b1"):
        O.adam(b1=None)
    with pytest.raises(TypeError, match=r"eps must be a pair \(eps1, eps2\)"):
        O.adafactor(eps=1e-3)
    with pytest.raises(TypeError, match="maximize"):
        O.adafactor(maximize="yes")
    with pytest.raises(TypeError, match="ns_steps must be an int, got float 5.0"):
        O.muon(ns_steps=5.0)
    with pytest.raises(TypeError, match="nesterov must be a bool"):
        O.muon(nesterov=1)
    with pytest.raises(TypeError, match="rms_rate"):
        O.muon(rms_rate="0.2")
    with pytest.raises(TypeError, match="mask leaves must be Python bools"):
        O.muon(mask={"w": 1}).init({"w": np.ones((2, 2))})
    with pytest.raises(ValueError, match="mask must have the structure of params"):
        O.muon(mask={"v": True}).init({"w": np.ones((2, 2))})


def test_registry():
    assert O.names() == sorted(
        [
            "sgd",
            "momentum",
            "nesterov",
            "adagrad",
            "rmsprop",
            "adadelta",
            "adam",
            "adamw",
            "adamax",
            "nadam",
            "radam",
            "rprop",
            "lion",
            "asgd",
            "adafactor",
            "muon",
            "lamb",
            "ftrl",
        ]
    )
    opt = O.get("Adam", learning_rate=0.5)
    assert float(O.get_learning_rate(opt.init({"x": np.ones(1)}))) == 0.5
    assert O.get(opt) is opt
    with pytest.raises(ValueError, match="adamw"):  # the message lists the known names
        O.get("adamx")
    # whatever fit trains with is an optimizer to get too: as it is, or a pair as a GradientTransformation
    pair = O.get((opt.init, opt.update))
    assert isinstance(pair, O.GradientTransformation) and pair == (opt.init, opt.update)
    with pytest.raises(TypeError, match=r"^name must be an optimizer \(a GradientTransformation, .* got int"):
        O.get(3)
    with pytest.raises(TypeError, match="got a list of length 3"):
        O.get([opt.init, opt.update, opt.update])
    with pytest.raises(TypeError, match="keyword arguments cannot be applied"):
        O.get(opt, learning_rate=0.1)
    optax = pytest.importorskip("optax")
    for built in (optax.adam(0.1), optax.MultiSteps(optax.sgd(0.1), 2)):
        assert O.get(built) is built


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: O.adam(lr=0.1), r"adam\(\) takes learning_rate=, not lr="),
        (lambda: O.get("SGD", lr=0.1), r"sgd\(\) takes learning_rate=, not lr="),
        (lambda: O.rmsprop(epsilon=1e-7), r"rmsprop\(\) takes eps=, not epsilon="),
        (lambda: O.adamw(betas=(0.9, 0.99)), r"adamw\(\) takes b1= and b2=, not betas="),
        (lambda: O.muon(lr=0.1), r"muon\(\) takes learning_rate=, not lr="),  # epsilon= is muon's own: Keras's
        (lambda: O.lamb(beta_1=0.9), r"lamb\(\) takes b1=, not beta_1="),  # Keras's names, adam's here
    ],
)
def test_other_libraries_argument_names_say_which_is_meant(call, message):
    with pytest.raises(TypeError, match=message):
        call()


def test_swapped_byte_order_grads_state_and_params_are_used_by_their_values():
    """Big-endian NumPy grads, state and params (JAX refuses them; a jax array times one would
    read its bytes unswapped) update as the native ones: sgd's first step is -lr * g."""
    params, g = {"w": np.array([1.0, -2.0])}, {"w": np.array([0.5, 4.0])}
    opt = O.sgd(0.1, momentum=0.9)
    state = jax.tree.map(np.asarray, opt.init(params))
    updates, new_state = opt.update(g, state, params)  # native first
    big = lambda tree: jax.tree.map(swapped, tree)
    got, got_state = opt.update(big(g), big(state), big(params))
    np.testing.assert_allclose(got["w"], -0.1 * g["w"], rtol=1e-12)
    chex.assert_trees_all_equal((got, got_state), (updates, new_state))
    np.testing.assert_allclose(O.apply_updates(big(params), big(got))["w"], params["w"] - 0.1 * g["w"], rtol=1e-12)


def test_masked_and_chain_refuse_what_is_no_transform_naming_it():
    for bad in (3, None, "adam", O.sgd):
        with pytest.raises(TypeError, match=r"^masked: inner must have init and update, got "):
            O.masked(bad, {"w": True})
        with pytest.raises(TypeError, match=r"^chain: transforms\[1\] must have init and update, got "):
            O.chain(O.sgd(0.1), bad)
    import optax  # an optax transform is one (the test extra's reference)

    opt = O.masked(optax.sgd(0.5), {"w": True, "b": False})
    params = {"w": jnp.array([1.0]), "b": jnp.array([1.0])}
    updates, _ = opt.update({"w": jnp.array([2.0]), "b": jnp.array([2.0])}, opt.init(params), params)
    assert updates["w"].tolist() == [-1.0] and updates["b"].tolist() == [2.0]


def test_get_learning_rate_is_the_next_update_s_for_a_schedule_and_optax_s_scheduled_state_holds_the_last():
    """fnn's state holds the rate its next update uses, scheduled or not; optax's
    inject_hyperparams state given a schedule holds the one its last update used (the schedule
    is not in its state), as get_learning_rate's docstring says."""
    optax = pytest.importorskip("optax")
    p, g = {"w": jnp.ones(1, jnp.float64)}, {"w": jnp.ones(1, jnp.float64)}
    cases = {
        "fnn": O.sgd(S.exponential_decay(0.1, 1, 0.5)),
        "optax": optax.inject_hyperparams(optax.sgd)(learning_rate=optax.exponential_decay(0.1, 1, 0.5)),
    }
    for name, opt in cases.items():
        state, read, used = opt.init(p), [], []
        for _ in range(3):
            read.append(float(O.get_learning_rate(state)))
            u, state = opt.update(g, state, p)
            used.append(-float(u["w"][0]))
        np.testing.assert_allclose(used, [0.1, 0.05, 0.025], rtol=1e-6)
        np.testing.assert_allclose(read, used if name == "fnn" else [0.1, 0.1, 0.05], rtol=1e-6)
