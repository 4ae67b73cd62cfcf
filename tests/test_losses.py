"""fnn.losses against independent NumPy float64 references of Keras 3's formulas, jax.grad of the
same fnn loss, central finite differences, and numbers quoted from Keras's docstrings."""

from __future__ import annotations

import dataclasses
import functools
import inspect

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import staged, swapped
from hypothesis import given, settings, strategies as st

import fnn
from fnn import losses as L

EPS = 1e-7  # keras.backend.epsilon()
# The losses of integer labels, (N,) or (N, 1), rather than targets shaped like y_pred.
LABEL_LOSSES = {"sparse_categorical_crossentropy", "categorical_generalized_cross_entropy"}
N, D, C = 6, 4, 4


# ---------------------------------------------------------------------------------------------
# NumPy float64 references: per-sample losses, written from Keras's source, not from fnn.
# ---------------------------------------------------------------------------------------------


def _sigmoid(z):
    return np.where(z >= 0, 1 / (1 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z))))


def _log_softmax(z, axis=-1):
    m = np.max(z, axis=axis, keepdims=True)
    return z - m - np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))


def ref_mse(t, p):
    return np.mean((t - p) ** 2, axis=-1)


def ref_mae(t, p):
    return np.mean(np.abs(t - p), axis=-1)


def ref_mape(t, p):
    return 100.0 * np.mean(np.abs((t - p) / np.maximum(np.abs(t), EPS)), axis=-1)


def ref_msle(t, p):
    return np.mean((np.log(np.maximum(p, EPS) + 1.0) - np.log(np.maximum(t, EPS) + 1.0)) ** 2, axis=-1)


def ref_huber(t, p, delta=1.0):
    e = p - t
    return np.mean(np.where(np.abs(e) <= delta, 0.5 * e**2, delta * np.abs(e) - 0.5 * delta**2), axis=-1)


def ref_log_cosh(t, p):
    return np.mean(np.log(np.cosh(p - t)), axis=-1)


def _ref_bce_elem(t, p, from_logits):
    if from_logits:  # -t log sigmoid(z) - (1-t) log sigmoid(-z), via logaddexp
        return t * np.logaddexp(0.0, -p) + (1 - t) * np.logaddexp(0.0, p)
    c = np.clip(p, EPS, 1 - EPS)
    return -(t * np.log(c) + (1 - t) * np.log(1 - c))


def ref_bce(t, p, from_logits=False, label_smoothing=0.0):
    t = t * (1 - label_smoothing) + 0.5 * label_smoothing
    return np.mean(_ref_bce_elem(t, p, from_logits), axis=-1)


def ref_focal(t, p, apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0):
    t = t * (1 - label_smoothing) + 0.5 * label_smoothing
    s = _sigmoid(p) if from_logits else p
    bce = _ref_bce_elem(t, p, from_logits)
    p_t = t * s + (1 - t) * (1 - s)
    loss = (1 - p_t) ** gamma * bce
    if apply_class_balancing:
        loss = (t * alpha + (1 - t) * (1 - alpha)) * loss
    return np.mean(loss, axis=-1)


def ref_cce(t, p, from_logits=False, label_smoothing=0.0, axis=-1):
    t = t * (1 - label_smoothing) + label_smoothing / p.shape[axis]
    if from_logits:
        logq = _log_softmax(p, axis)
    else:
        logq = np.log(np.clip(p / np.sum(p, axis=axis, keepdims=True), EPS, 1 - EPS))
    return -np.sum(t * logq, axis=axis)


def ref_scce(labels, p, from_logits=False):
    labels = np.asarray(labels).reshape(p.shape[:-1])
    return ref_cce(np.eye(p.shape[-1])[labels], p, from_logits)


def ref_kld(t, p):
    t, p = np.clip(t, EPS, 1), np.clip(p, EPS, 1)
    return np.sum(t * np.log(t / p), axis=-1)


def ref_poisson(t, p):
    return np.mean(p - t * np.log(p + EPS), axis=-1)


def _hinge_labels(t):
    return 2 * t - 1 if np.all((t == 0) | (t == 1)) else t


def ref_hinge(t, p):
    return np.mean(np.maximum(1 - _hinge_labels(t) * p, 0), axis=-1)


def ref_squared_hinge(t, p):
    return np.mean(np.maximum(1 - _hinge_labels(t) * p, 0) ** 2, axis=-1)


def ref_categorical_hinge(t, p):
    return np.maximum(np.max((1 - t) * p, axis=-1) - np.sum(t * p, axis=-1) + 1, 0)


def ref_cosine(t, p, axis=-1):
    nt = np.maximum(np.linalg.norm(t, axis=axis), EPS)
    npred = np.maximum(np.linalg.norm(p, axis=axis), EPS)
    return -np.sum(t * p, axis=axis) / (nt * npred)


def ref_cfce(t, p, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0):
    t = t * (1 - label_smoothing) + label_smoothing / p.shape[-1]
    if from_logits:  # fnn's documented form: log-softmax, unclipped (Keras clips softmax(z))
        logq = _log_softmax(p)
    else:
        logq = np.log(np.clip(p / np.sum(p, axis=-1, keepdims=True), EPS, 1 - EPS))
    return np.sum(alpha * t * (1 - np.exp(logq)) ** gamma * -logq, axis=-1)


def ref_gce(labels, p, q=0.5):
    p_y = np.take_along_axis(p, np.asarray(labels).reshape(-1, 1), axis=-1)[:, 0]
    return (1 - p_y**q) / q


def ref_dice(t, p, axis=-1):  # axis=None: one value for the whole batch
    return 1 - 2 * np.sum(t * p, axis=axis) / (np.sum(t, axis=axis) + np.sum(p, axis=axis) + EPS)


def ref_tversky(t, p, alpha=0.5, beta=0.5, axis=-1):
    tp, fp, fn = (np.sum(a, axis=axis) for a in (t * p, (1 - p) * t, p * (1 - t)))
    return 1 - tp / (tp + alpha * fp + beta * fn + EPS)


def ref_ctc(labels, z):
    """Graves's CTC forward recursion over the blank-extended labels ``l'``, in probability space
    with plain jnp (differentiable by jax.grad; independent of fnn's log-space kernel and its
    scans): ``a_t(s) = (a_{t-1}(s) + a_{t-1}(s-1) + [l'_s != 0, l'_s != l'_{s-2}] a_{t-1}(s-2))
    y_t(l'_s)``, ``p = a_{T-1}(2n) + a_{T-1}(2n-1)``; 0 pads the labels and is the blank."""
    labels = np.asarray(labels).astype(int)
    rows = [[c for c in row if c] for row in labels.tolist()]
    ext = np.zeros((len(rows), 2 * labels.shape[1] + 1), int)
    for i, row in enumerate(rows):
        ext[i, 1 : 2 * len(row) : 2] = row
    skip = np.zeros(ext.shape, bool)
    skip[:, 2:] = (ext[:, 2:] != 0) & (ext[:, 2:] != ext[:, :-2])
    return _ref_ctc(ext, skip, np.array([2 * len(row) for row in rows]), z)


@jax.jit
def _ref_ctc(ext, skip, ends, z):
    e = jnp.exp(z - jnp.max(z, axis=-1, keepdims=True))
    probs = e / jnp.sum(e, axis=-1, keepdims=True)
    y = jnp.take_along_axis(probs, jnp.broadcast_to(ext[:, None, :], (*z.shape[:2], ext.shape[1])), axis=2)
    a = jnp.where(jnp.arange(ext.shape[1]) < 2, y[:, 0], 0.0)
    for t in range(1, z.shape[1]):
        one = jnp.pad(a, ((0, 0), (1, 0)))[:, :-1]
        two = jnp.pad(a, ((0, 0), (2, 0)))[:, :-2]
        a = (a + one + jnp.where(skip, two, 0.0)) * y[:, t]
    last = jnp.take_along_axis(a, ends[:, None], axis=1)[:, 0]
    before = jnp.where(ends > 0, jnp.take_along_axis(a, jnp.maximum(ends - 1, 0)[:, None], axis=1)[:, 0], 0.0)
    return -jnp.log(last + before)


# labels (N, 3) of 5 classes: two labels, a repeat (a blank between), three equal ones (5 of the
# 6 steps), the empty sequence, three different ones, and a repeated class 4
CTC_Y = np.array([[1, 2, 0], [1, 1, 0], [3, 3, 3], [0, 0, 0], [2, 1, 3], [4, 4, 0]])
CTC_Z = np.random.default_rng(11).normal(size=(6, 6, 5))


# ---------------------------------------------------------------------------------------------
# Cases: (id, loss name, options, y_true, y_pred, reference per-sample function).
# ---------------------------------------------------------------------------------------------


def _cases():
    rng = np.random.default_rng(0)
    normal = lambda *s: rng.normal(size=s)
    onehot = np.eye(C)[rng.integers(0, C, N)]
    labels = rng.integers(0, C, N)
    bits = rng.integers(0, 2, (N, D)).astype(float)
    probs = rng.uniform(0.02, 0.98, (N, D))
    unnormalised = rng.uniform(0.05, 1.0, (N, C))  # cce renormalises these
    dist = lambda: rng.dirichlet(np.ones(C), N)
    msle_pred = np.abs(normal(N, D)) * 2
    msle_pred[0, :2] = [-0.5, 0.0]  # clipped to eps: zero gradient
    soft = rng.uniform(0, 1, (N, D))
    return [
        ("mse", "mean_squared_error", {}, normal(N, D), normal(N, D), ref_mse),
        ("mae", "mean_absolute_error", {}, normal(N, D), normal(N, D), ref_mae),
        ("mape", "mean_absolute_percentage_error", {}, normal(N, D), normal(N, D), ref_mape),
        ("msle", "mean_squared_logarithmic_error", {}, np.abs(normal(N, D)), msle_pred, ref_msle),
        ("huber", "huber", {}, normal(N, D), 2 * normal(N, D), ref_huber),
        ("huber_delta", "huber", {"delta": 0.3}, normal(N, D), normal(N, D), lambda t, p: ref_huber(t, p, 0.3)),
        ("log_cosh", "log_cosh", {}, normal(N, D), 3 * normal(N, D), ref_log_cosh),
        ("bce", "binary_crossentropy", {}, bits, probs, ref_bce),
        (
            "bce_soft_ls",
            "binary_crossentropy",
            {"label_smoothing": 0.2},
            soft,
            probs,
            lambda t, p: ref_bce(t, p, label_smoothing=0.2),
        ),
        (
            "bce_logits",
            "binary_crossentropy",
            {"from_logits": True},
            bits,
            3 * normal(N, D),
            lambda t, p: ref_bce(t, p, True),
        ),
        (
            "bce_logits_ls",
            "binary_crossentropy",
            {"from_logits": True, "label_smoothing": 0.1},
            bits,
            3 * normal(N, D),
            lambda t, p: ref_bce(t, p, True, 0.1),
        ),
        ("focal", "binary_focal_crossentropy", {}, bits, probs, ref_focal),
        (
            "focal_bal_ls",
            "binary_focal_crossentropy",
            {"apply_class_balancing": True, "alpha": 0.4, "gamma": 3.0, "label_smoothing": 0.1},
            bits,
            probs,
            lambda t, p: ref_focal(t, p, True, 0.4, 3.0, False, 0.1),
        ),
        (
            "focal_logits",
            "binary_focal_crossentropy",
            {"from_logits": True, "gamma": 1.5},
            bits,
            3 * normal(N, D),
            lambda t, p: ref_focal(t, p, gamma=1.5, from_logits=True),
        ),
        ("cce", "categorical_crossentropy", {}, onehot, unnormalised, ref_cce),
        (
            "cce_ls",
            "categorical_crossentropy",
            {"label_smoothing": 0.1},
            onehot,
            unnormalised,
            lambda t, p: ref_cce(t, p, label_smoothing=0.1),
        ),
        (
            "cce_logits",
            "categorical_crossentropy",
            {"from_logits": True},
            onehot,
            3 * normal(N, C),
            lambda t, p: ref_cce(t, p, True),
        ),
        (
            "cce_logits_soft_ls",
            "categorical_crossentropy",
            {"from_logits": True, "label_smoothing": 0.3},
            dist(),
            3 * normal(N, C),
            lambda t, p: ref_cce(t, p, True, 0.3),
        ),
        ("scce", "sparse_categorical_crossentropy", {}, labels, unnormalised, ref_scce),
        (
            "scce_logits",
            "sparse_categorical_crossentropy",
            {"from_logits": True},
            labels,
            3 * normal(N, C),
            lambda t, p: ref_scce(t, p, True),
        ),
        ("kld", "kl_divergence", {}, dist(), dist(), ref_kld),
        ("poisson", "poisson", {}, rng.poisson(2.0, (N, D)).astype(float), rng.uniform(0.1, 4, (N, D)), ref_poisson),
        ("hinge_pm1", "hinge", {}, rng.choice([-1.0, 1.0], (N, D)), normal(N, D), ref_hinge),
        ("hinge_01", "hinge", {}, bits, normal(N, D), ref_hinge),
        ("squared_hinge", "squared_hinge", {}, bits, normal(N, D), ref_squared_hinge),
        ("categorical_hinge", "categorical_hinge", {}, onehot, normal(N, C), ref_categorical_hinge),
        ("cosine", "cosine_similarity", {}, normal(N, D), normal(N, D), ref_cosine),
        ("cfce", "categorical_focal_crossentropy", {}, onehot, unnormalised, ref_cfce),
        (
            "cfce_logits_ls",
            "categorical_focal_crossentropy",
            {"from_logits": True, "alpha": 1.5, "gamma": 0.5, "label_smoothing": 0.1},
            onehot,
            3 * normal(N, C),
            lambda t, p: ref_cfce(t, p, 1.5, 0.5, True, 0.1),
        ),
        (
            "gce",
            "categorical_generalized_cross_entropy",
            {"q": 0.7},
            labels,
            unnormalised,
            lambda t, p: ref_gce(t, p, 0.7),
        ),
        ("dice_rows", "dice", {"axis": -1}, bits, probs, ref_dice),
        (
            "tversky_rows",
            "tversky",
            {"alpha": 0.7, "beta": 0.3, "axis": -1},
            bits,
            probs,
            lambda t, p: ref_tversky(t, p, 0.7, 0.3),
        ),
    ]


CASES = _cases()
IDS = [c[0] for c in CASES]


def _fn(name):
    return getattr(L, name), getattr(L, name + "_grad")


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _evaluate(name, options, keys, t, p, w):
    """The quantities ``keys`` of loss ``name`` with ``options`` (sorted (key, value) pairs) at
    ``(t, p)``, ``*_w`` with sample weight ``w``, as ONE compiled program (op by op, every
    operation would compile a program of its own at every new shape)."""
    opts = dict(options)
    value_fn, grad_fn = _fn(name)
    loss = L.get(name, **opts)
    quantities = {
        "per_sample": lambda: loss.per_sample(t, p),
        "value": lambda: value_fn(t, p, **opts),
        "grad": lambda: grad_fn(t, p, **opts),
        "grad_w": lambda: grad_fn(t, p, sample_weight=w, **opts),
        "jax_grad": lambda: jax.grad(lambda q: value_fn(t, q, **opts))(p),
        "jax_grad_w": lambda: jax.grad(lambda q: value_fn(t, q, sample_weight=w, **opts))(p),
        "loss": lambda: loss(t, p),
        "loss_w": lambda: loss(t, p, sample_weight=w),
        "loss_grad_w": lambda: loss.grad(t, p, sample_weight=w),
        "value_and_grad": lambda: loss.value_and_grad(t, p),
        "value_and_grad_w": lambda: loss.value_and_grad(t, p, sample_weight=w),
        "loss_jax_grad": lambda: jax.grad(lambda q: loss(t, q))(p),
        "loss_jax_grad_w": lambda: jax.grad(lambda q: loss(t, q, sample_weight=w))(p),
    }
    return {k: quantities[k]() for k in keys}


ALL = (
    "per_sample",
    "value",
    "grad",
    "grad_w",
    "jax_grad",
    "jax_grad_w",
    "loss",
    "loss_w",
    "loss_grad_w",
    "value_and_grad",
    "value_and_grad_w",
    "loss_jax_grad",
    "loss_jax_grad_w",
)
W_VALUE = np.linspace(0.0, 2.0, N)  # Keras: sum(w l) / N, not divided by sum(w)
W_GRAD = np.linspace(0.5, 1.5, N)


def _signature(name, opts, t, p):
    return name, tuple(sorted(opts.items())), np.shape(t), np.asarray(t).dtype, np.shape(p)


CASE_SIGNATURES = {_signature(name, opts, t, p) for _, name, opts, t, p, _ in CASES}


def evaluate(name, opts, t, p, w=W_GRAD, keys=ALL):
    """The quantities of loss ``name`` with options ``opts`` at ``(t, p)``, as a dict; ``w`` is the
    sample weight of the ``*_w`` entries.

    Inputs of a case's signature (loss, options, shapes and dtypes) share that case's program,
    which computes every quantity: the value and gradient tests of a case, its finite differences
    and the tests below that reuse its loss compile once between them. Any other input compiles
    a program for ``keys`` only (XLA on CPU pays for every fused kernel it compiles)."""
    keys = ALL if _signature(name, opts, t, p) in CASE_SIGNATURES else tuple(keys)
    return _evaluate(name, tuple(sorted(opts.items())), keys, t, p, w)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_value_matches_numpy_reference(case):
    _, name, opts, t, p, ref = case
    expected = ref(t, p)
    out = evaluate(name, opts, t, p, W_VALUE)
    np.testing.assert_allclose(out["per_sample"], expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(out["value"], expected.mean(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(out["loss"], expected.mean(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(out["loss_w"], np.sum(W_VALUE * expected) / N, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_grad_matches_jax_grad(case):
    _, name, opts, t, p, _ = case
    out = evaluate(name, opts, t, p, W_GRAD)
    for got, expected in ((out["grad"], out["jax_grad"]), (out["grad_w"], out["jax_grad_w"])):
        chex.assert_shape(got, p.shape)
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-15)
    value, grad = out["value_and_grad_w"]
    np.testing.assert_allclose(value, out["loss_w"], rtol=1e-15)
    np.testing.assert_allclose(grad, out["loss_grad_w"], rtol=1e-15)
    np.testing.assert_allclose(grad, out["grad_w"], rtol=1e-15)


def _differences(f, p, h=1e-6):
    """Central differences of ``f`` at ``p``, and where ``f`` is smooth: the one-sided
    differences agree (they disagree on a kink or a clip edge, where no derivative exists)."""
    p = np.asarray(p, dtype=np.float64)
    f0 = float(f(p))
    g, smooth = np.zeros_like(p), np.ones(p.shape, bool)
    for idx in np.ndindex(p.shape):
        up, down = p.copy(), p.copy()
        up[idx] += h
        down[idx] -= h
        f_up, f_down = float(f(up)), float(f(down))
        g[idx] = (f_up - f_down) / (2 * h)
        smooth[idx] = abs((f_up - f0) - (f0 - f_down)) <= 1e-4 * h + 1e-6 * abs(f_up - f_down)
    return g, smooth


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_grad_matches_finite_differences(case):
    """The independent check of every hand-written gradient (jax.grad of a loss IS its hand-written
    gradient, attached with jax.custom_jvp), at every entry where the loss is smooth."""
    _, name, opts, t, p, _ = case
    fd, smooth = _differences(lambda q: evaluate(name, opts, t, q)["value"], p)
    assert smooth.sum() >= 0.8 * p.size  # the cases sit mostly away from kinks
    grad = evaluate(name, opts, t, p)["grad"]
    np.testing.assert_allclose(np.asarray(grad)[smooth], fd[smooth], rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------------------------------
# Extremes: probabilities exactly 0 and 1, logits of +-1e4.
# ---------------------------------------------------------------------------------------------

# Tiled to the (N, D) of the cases above: eager jax compiles each op once per shape.
T_BIN = np.tile([[0.0, 1.0, 0.0, 1.0], [1.0, 0.0, 0.0, 1.0]], (N // 2, 1))
P_EDGE = np.tile([[0.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.5, 1.0]], (N // 2, 1))
Z_HUGE = np.tile([[-1e4, 1e4, 1e4, -1e4], [1e4, -1e4, 0.3, 1e4]], (N // 2, 1))


@pytest.mark.parametrize(
    "name,opts,p,ref",
    [
        ("binary_crossentropy", {}, P_EDGE, ref_bce),
        ("binary_crossentropy", {"from_logits": True}, Z_HUGE, lambda t, p: ref_bce(t, p, True)),
        ("binary_focal_crossentropy", {}, P_EDGE, ref_focal),
        (
            "binary_focal_crossentropy",
            {"from_logits": True, "apply_class_balancing": True},
            Z_HUGE,
            lambda t, p: ref_focal(t, p, True, from_logits=True),
        ),
        ("categorical_crossentropy", {}, P_EDGE, ref_cce),
        (
            "categorical_crossentropy",
            {"from_logits": True, "label_smoothing": 0.1},
            Z_HUGE,
            lambda t, p: ref_cce(t, p, True, 0.1),
        ),
        ("kl_divergence", {}, P_EDGE, ref_kld),
        ("categorical_focal_crossentropy", {}, P_EDGE, ref_cfce),
        (
            "categorical_focal_crossentropy",
            {"from_logits": True, "gamma": 0.5, "label_smoothing": 0.1},
            Z_HUGE,
            lambda t, p: ref_cfce(t, p, gamma=0.5, from_logits=True, label_smoothing=0.1),
        ),
    ],
    ids=["bce", "bce_logits", "focal", "focal_logits", "cce", "cce_logits", "kld", "cfce", "cfce_logits"],
)
def test_extreme_inputs_are_finite_and_exact(name, opts, p, ref):
    expected = ref(T_BIN, p)
    assert np.all(np.isfinite(expected))
    out = evaluate(name, opts, T_BIN, p, keys=("value_and_grad", "jax_grad"))
    value, grad = out["value_and_grad"]
    np.testing.assert_allclose(value, expected.mean(), rtol=1e-12)
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, out["jax_grad"], rtol=1e-10, atol=1e-15)


def test_clipped_probabilities_have_zero_gradient():
    # bce: every p in {0, 1} is clipped to [1e-7, 1 - 1e-7], so only the 0.5 entry moves.
    out = evaluate("binary_crossentropy", {}, T_BIN, P_EDGE)
    g = out["grad"]
    expected = np.zeros_like(P_EDGE)
    expected[1::2, 2] = (0.5 - 0.0) / (0.5 * 0.5) / P_EDGE.size
    np.testing.assert_allclose(g, expected, rtol=1e-12)
    # per pair of rows: five right answers at the clip (-log(1 - 1e-7)), a wrong 0 (-log 1e-7),
    # a wrong 1 (-log(1 - fl(1 - 1e-7))) and one 0.5
    per_pair = -5 * np.log(1 - EPS) - np.log(EPS) - np.log(1 - (1 - EPS)) + np.log(2)
    np.testing.assert_allclose(out["value"], per_pair / 8, rtol=1e-12)


def test_logit_gradients_are_the_fused_form():
    z = Z_HUGE
    logits = {"from_logits": True}
    np.testing.assert_allclose(
        evaluate("binary_crossentropy", logits, T_BIN, z)["grad"],
        (_sigmoid(z) - T_BIN) / z.size,
        rtol=1e-12,
        atol=1e-300,
    )
    soft = np.exp(_log_softmax(z))
    np.testing.assert_allclose(
        evaluate("categorical_crossentropy", logits, T_BIN / T_BIN.sum(-1, keepdims=True), z)["grad"],
        (soft - T_BIN / 2) / N,
        rtol=1e-12,
        atol=1e-300,
    )
    labels = np.tile([0, 1], N // 2)
    value, grad = evaluate("sparse_categorical_crossentropy", logits, labels, z)["value_and_grad"]
    np.testing.assert_allclose(value, ref_scce(labels, z, True).mean(), rtol=1e-12)
    np.testing.assert_allclose(grad, (soft - np.eye(4)[labels]) / N, rtol=1e-12, atol=1e-300)
    assert np.isfinite(value) and value > 1e3  # a wrong class at 1e4 costs ~2e4, not inf


def test_a_minus_inf_logit_of_a_target_0_class_costs_nothing_and_log_cosh_spans_the_float_range():
    """Cross-entropy from logits leaves out classes of target 0, so 0 * -inf makes no NaN: logits
    [-inf, 1, 2] with label 1 cost log(e + e^2) - 1 = 1.3133 (torch's and optax's value). log_cosh
    as |e| + softplus(-2|e|) - log 2 is finite at e = -3e38 in float32 and inf, not NaN, at -inf."""
    z = np.array([[-np.inf, 1.0, 2.0]])
    t = np.array([[0.0, 0.5, 0.5]])
    e = np.array([[-3e38], [3e38], [-np.inf], [np.inf], [-1.5], [2.0]], np.float32)
    run = jax.jit(
        lambda z, t, e: (
            L.get("sparse_categorical_crossentropy", from_logits=True).value_and_grad(jnp.array([1]), z),
            L.get("categorical_crossentropy", from_logits=True).value_and_grad(t, z),
            L.get("log_cosh").per_sample(jnp.zeros_like(e), e),
            L.log_cosh_grad(jnp.zeros_like(e), e),
        )
    )
    (v_sparse, g_sparse), (v_cat, g_cat), per, grad = run(z, t, e)
    soft = np.array([0.0, np.e, np.e**2]) / (np.e + np.e**2)
    logq = np.log(soft[1:])  # the classes of target > 0
    np.testing.assert_allclose(v_sparse, -logq[0], rtol=1e-12)
    assert float(v_sparse) == pytest.approx(1.3133, abs=1e-4)
    np.testing.assert_allclose(g_sparse, [soft - [0.0, 1.0, 0.0]], rtol=1e-12)
    np.testing.assert_allclose(v_cat, -0.5 * logq.sum(), rtol=1e-12)
    np.testing.assert_allclose(g_cat, [soft - t[0]], rtol=1e-12)
    log2 = np.float32(np.log(2.0))
    np.testing.assert_array_equal(np.asarray(per)[:4], [np.float32(3e38) - log2] * 2 + [np.inf] * 2)
    np.testing.assert_allclose(np.asarray(per)[4:], np.log(np.cosh([-1.5, 2.0])), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(grad).ravel(), np.tanh(e.astype(np.float64)).ravel() / 6, rtol=1e-6)


def test_float32_stays_float32_and_finite():
    names = ("binary_crossentropy", "categorical_crossentropy", "binary_focal_crossentropy")
    run = jax.jit(lambda t, z: [L.get(n, from_logits=True).value_and_grad(t, z) for n in names])
    for value, grad in run(jnp.asarray(T_BIN, jnp.float32), jnp.asarray(Z_HUGE, jnp.float32)):
        assert value.dtype == jnp.float32 and grad.dtype == jnp.float32
        assert np.isfinite(value) and np.all(np.isfinite(grad))


def test_half_precision_predictions_are_computed_in_float32_as_keras_does():
    """1 - 1e-7 rounds to 1 in float16 and bfloat16: a probability of exactly 0 or 1 gave inf
    and NaN gradients there. Losses compute in float32 (Keras's loss dtype); the gradient, a
    cotangent of y_pred, keeps y_pred's dtype."""
    t, p = np.array([[0.0], [1.0]], np.float32), np.array([[1.0], [0.0]], np.float32)
    names, dtypes = ("binary_crossentropy", "binary_focal_crossentropy", "mse"), (jnp.bfloat16, jnp.float16)

    @jax.jit  # one compilation instead of eager dispatch of every op in three dtypes
    def run(t32, p32):
        out = []
        for name in names:
            row = [L.get(name).value_and_grad(t32, p32)]
            for dtype in dtypes:
                t_, p_ = t32.astype(dtype), p32.astype(dtype)
                auto = jax.grad(lambda q, name=name, t_=t_: L.get(name)(t_, q))(p_)
                row.append((*L.get(name).value_and_grad(t_, p_), auto))
            out.append(row)
        return out

    for name, ((ref_value, ref_grad), *rows) in zip(names, run(t, p), strict=True):
        assert ref_value.dtype == jnp.float32 and ref_grad.dtype == jnp.float32
        assert np.isfinite(ref_value) and np.all(np.isfinite(ref_grad))  # Keras's BCE here: 16.03024
        for dtype, (value, grad, auto) in zip(dtypes, rows, strict=True):
            assert value.dtype == jnp.float32 and grad.dtype == dtype, (name, dtype)
            assert np.asarray(value) == np.asarray(ref_value), (name, dtype)
            assert np.all(np.asarray(grad) == np.asarray(ref_grad).astype(dtype)), (name, dtype)
            assert auto.dtype == dtype and np.all(np.asarray(auto) == np.asarray(grad)), (name, dtype)


# ---------------------------------------------------------------------------------------------
# Keras 3 docstring examples (keras/src/losses/losses.py), values as printed there.
# ---------------------------------------------------------------------------------------------

CCE_T = [[0, 1, 0], [0, 0, 1]]
CCE_P = [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]
BIN_T = [[0, 1], [0, 0]]
BIN_P = [[0.6, 0.4], [0.4, 0.6]]
LOGITS_T = np.array([[0, 1], [0, 0]])
LOGITS_P = np.array([[-18.6, 0.51], [2.94, -12.8]])
DICE_T = np.array([[[[1.0], [1.0]], [[0.0], [0.0]]], [[[1.0], [1.0]], [[0.0], [0.0]]]])
DICE_P = np.array([[[[0.0], [1.0]], [[0.0], [1.0]]], [[[0.4], [0.0]], [[0.0], [0.9]]]])


KERAS_EXAMPLES = [
    # CategoricalCrossentropy: 1.177, sample_weight [0.3, 0.7]: 0.814, reduction=None: [0.0513, 2.303]
    (lambda: L.categorical_crossentropy(CCE_T, CCE_P), 1.177, 1e-3),
    (lambda: L.categorical_crossentropy(CCE_T, CCE_P, sample_weight=[0.3, 0.7]), 0.814, 1e-3),
    (lambda: L.get("categorical_crossentropy").per_sample(CCE_T, CCE_P), [0.0513, 2.303], 1e-3),
    # SparseCategoricalCrossentropy with y_true = [1, 2]: the same numbers.
    (lambda: L.sparse_categorical_crossentropy([1, 2], CCE_P), 1.177, 1e-3),
    (lambda: L.sparse_categorical_crossentropy([1, 2], CCE_P, sample_weight=np.array([0.3, 0.7])), 0.814, 1e-3),
    # to_categorical docstring: categorical_crossentropy(a, b) -> [0.10536 0.82807 0.1011 1.77196]
    (
        lambda: L.get("categorical_crossentropy").per_sample(
            np.eye(4),
            np.array(
                [0.9, 0.04, 0.03, 0.03, 0.3, 0.45, 0.15, 0.13, 0.04, 0.01, 0.94, 0.05, 0.12, 0.21, 0.5, 0.17]
            ).reshape(4, 4),
        ),
        [0.10536, 0.82807, 0.1011, 1.77196],
        1e-5,
    ),
    # binary_crossentropy: [0.916, 0.714]
    (lambda: L.get("binary_crossentropy").per_sample(BIN_T, BIN_P), [0.916, 0.714], 1e-3),
    # BinaryCrossentropy(from_logits=True): 0.8654 (flat and 2x2), sample_weight [0.8, 0.2]: 0.243,
    # reduction=None: [0.235, 1.496]
    (lambda: L.binary_crossentropy([0, 1, 0, 0], [-18.6, 0.51, 2.94, -12.8], from_logits=True), 0.8654, 1e-4),
    (lambda: L.binary_crossentropy(LOGITS_T, LOGITS_P, from_logits=True), 0.8654, 1e-4),
    (lambda: L.binary_crossentropy(LOGITS_T, LOGITS_P, from_logits=True, sample_weight=[0.8, 0.2]), 0.243, 1e-3),
    (lambda: L.get("binary_crossentropy", from_logits=True).per_sample(LOGITS_T, LOGITS_P), [0.235, 1.496], 1e-3),
    # binary_focal_crossentropy(gamma=2) on probabilities: [0.330, 0.206]
    (lambda: L.get("binary_focal_crossentropy", gamma=2).per_sample(BIN_T, BIN_P), [0.330, 0.206], 1e-3),
    # BinaryFocalCrossentropy(from_logits=True): gamma=2: 0.691, balanced: 0.51
    (
        lambda: L.binary_focal_crossentropy([0, 1, 0, 0], [-18.6, 0.51, 2.94, -12.8], gamma=2, from_logits=True),
        0.691,
        1e-3,
    ),
    (
        lambda: L.binary_focal_crossentropy(
            [0, 1, 0, 0], [-18.6, 0.51, 2.94, -12.8], apply_class_balancing=True, gamma=2, from_logits=True
        ),
        0.51,
        5e-3,
    ),
    # 2x2, gamma=3: 0.647, balanced 0.482; sample_weight [0.8, 0.2]: 0.133, balanced 0.097
    (lambda: L.binary_focal_crossentropy(LOGITS_T, LOGITS_P, gamma=3, from_logits=True), 0.647, 1e-3),
    (
        lambda: L.binary_focal_crossentropy(LOGITS_T, LOGITS_P, apply_class_balancing=True, gamma=3, from_logits=True),
        0.482,
        1e-3,
    ),
    (
        lambda: L.binary_focal_crossentropy(LOGITS_T, LOGITS_P, gamma=3, from_logits=True, sample_weight=[0.8, 0.2]),
        0.133,
        1e-3,
    ),
    (
        lambda: L.binary_focal_crossentropy(
            LOGITS_T, LOGITS_P, apply_class_balancing=True, gamma=3, from_logits=True, sample_weight=[0.8, 0.2]
        ),
        0.097,
        1e-3,
    ),
    # gamma=4, reduction="sum": 1.222 (balanced 0.914), i.e. a mean of 0.611 (0.457) over 2 samples
    (lambda: L.binary_focal_crossentropy(LOGITS_T, LOGITS_P, gamma=4, from_logits=True), 1.222 / 2, 1e-3),
    (
        lambda: L.binary_focal_crossentropy(LOGITS_T, LOGITS_P, apply_class_balancing=True, gamma=4, from_logits=True),
        0.914 / 2,
        1e-3,
    ),
    # gamma=5, reduction=None: [0.0017, 1.1561], balanced [0.0004, 0.8670]
    (
        lambda: L.get("binary_focal_crossentropy", gamma=5, from_logits=True).per_sample(LOGITS_T, LOGITS_P),
        [0.0017, 1.1561],
        1e-4,
    ),
    (
        lambda: L.get("binary_focal_crossentropy", gamma=5, from_logits=True, apply_class_balancing=True).per_sample(
            LOGITS_T, LOGITS_P
        ),
        [0.0004, 0.8670],
        1e-4,
    ),
    # CategoricalFocalCrossentropy: 0.23315276, sample_weight [0.3, 0.7]: 0.1632, reduction=None:
    # [3.2058331e-05, 4.6627346e-01]; categorical_focal_crossentropy: [2.63401289e-04, 6.75912094e-01]
    (lambda: L.categorical_focal_crossentropy(CCE_T, CCE_P), 0.23315276, 1e-7),
    (lambda: L.categorical_focal_crossentropy(CCE_T, CCE_P, sample_weight=[0.3, 0.7]), 0.1632, 1e-4),
    (lambda: L.get("categorical_focal_crossentropy").per_sample(CCE_T, CCE_P), [3.2058331e-05, 4.6627346e-01], 1e-7),
    (
        lambda: L.get("categorical_focal_crossentropy").per_sample(CCE_T, [[0.05, 0.9, 0.05], [0.1, 0.85, 0.05]]),
        [2.63401289e-04, 6.75912094e-01],
        1e-8,
    ),
    # Dice: axis=(1, 2, 3), reduction=None: [0.5, 0.75757575]; default (axis=None): 0.6164384
    (lambda: L.get("dice", axis=(1, 2, 3)).per_sample(DICE_T, DICE_P), [0.5, 0.75757575], 1e-7),
    (lambda: L.dice(DICE_T, DICE_P), 0.6164384, 1e-7),
    # huber: 0.155; log_cosh: 0.108
    (lambda: L.huber([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]]), 0.155, 1e-6),
    (lambda: L.log_cosh([[0.0, 1.0], [0.0, 0.0]], [[1.0, 1.0], [0.0, 0.0]]), 0.108, 1e-3),
    # cosine_similarity: [-0., -0.99999994, 0.99999994] (float32 rounding of -1, 1)
    (
        lambda: L.get("cosine_similarity").per_sample(
            [[0.0, 1.0], [1.0, 1.0], [1.0, 1.0]], [[1.0, 0.0], [1.0, 1.0], [-1.0, -1.0]]
        ),
        [0.0, -1.0, 1.0],
        1e-6,
    ),
]


@pytest.mark.parametrize("got,expected,tol", KERAS_EXAMPLES)
def test_keras_docstring_examples(got, expected, tol):
    np.testing.assert_allclose(_keras_examples()[got], expected, atol=tol, rtol=0)


@functools.cache
def _keras_examples():
    """Every example's value, all computed by ONE compiled program (op by op, each example would
    compile a dozen small programs; one jit per example, one program each)."""
    examples = [got for got, _, _ in KERAS_EXAMPLES]
    return dict(zip(examples, jax.jit(lambda: [got() for got in examples])(), strict=True))


# ---------------------------------------------------------------------------------------------
# Options: label smoothing, ignore_class, sparse label shapes, sample_weight, hinge labels, axis.
# ---------------------------------------------------------------------------------------------


def test_label_smoothing_is_target_smoothing():
    _, _, _, t, p, _ = CASES[IDS.index("cce_logits")]
    smoothed = t * 0.8 + 0.2 / C
    cce = "categorical_crossentropy"
    np.testing.assert_allclose(
        evaluate(cce, {"from_logits": True, "label_smoothing": 0.2}, t, p, keys=("value",))["value"],
        evaluate(cce, {"from_logits": True}, smoothed, p)["value"],
        rtol=1e-13,
    )
    _, _, _, t, p, _ = CASES[IDS.index("bce")]
    np.testing.assert_allclose(
        evaluate("binary_crossentropy", {"label_smoothing": 0.3}, t, p, keys=("grad",))["grad"],
        evaluate("binary_crossentropy", {}, t * 0.7 + 0.15, p)["grad"],
        rtol=1e-13,
    )


def test_ignore_class_masks_samples_and_rescales_the_mean():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(N, C)) * 2
    labels = np.array([0, -1, 3, 2, -1, 1])
    valid = labels != -1
    scce = "sparse_categorical_crossentropy"
    for from_logits, p in ((True, z), (False, np.exp(z))):
        opts = _sparse_options(from_logits, -1)
        L.check_targets(L.get(scce, **opts), labels, p.shape)  # the eager label check lets -1 through
        per_ref = ref_scce(np.where(valid, labels, 0), p, from_logits)
        w = np.linspace(0.5, 3.0, N)
        out = evaluate(scce, opts, labels, p, w, keys=SPARSE_KEYS)
        value, grad = out["value_and_grad"]
        np.testing.assert_allclose(value, per_ref[valid].mean(), rtol=1e-12)
        np.testing.assert_allclose(out["per_sample"], np.where(valid, per_ref, 0.0), rtol=1e-12)
        assert np.all(np.asarray(grad)[~valid] == 0)
        np.testing.assert_allclose(grad, out["loss_jax_grad"], rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(out["loss_w"], np.sum((w * per_ref)[valid]) / valid.sum(), rtol=1e-12)
        np.testing.assert_allclose(out["loss_grad_w"], out["loss_jax_grad_w"], rtol=1e-10, atol=1e-15)
    # Every sample ignored: Keras's divide_no_nan gives 0, with a zero gradient.
    opts = _sparse_options(True, -1)
    L.check_targets(L.get(scce, **opts), -np.ones(N, int), z.shape)
    value, grad = evaluate(scce, opts, -np.ones(N, int), z, keys=SPARSE_KEYS)["value_and_grad"]
    assert float(value) == 0.0 and np.all(np.asarray(grad) == 0)
    # ignore_class may be a real class id (Keras's "void" class 0).
    opts = _sparse_options(True, 0)
    ids = np.abs(labels)  # [0, 1, 3, 2, 1, 1]: sample 0 is ignored
    L.check_targets(L.get(scce, **opts), ids, z.shape)
    loss0 = evaluate(scce, opts, ids, z, keys=("loss",))["loss"]
    np.testing.assert_allclose(loss0, ref_scce(ids, z, True)[1:].mean(), rtol=1e-12)


# What the ignore_class tests read: one program per option set, shared by them.
SPARSE_KEYS = ("per_sample", "loss_w", "loss_grad_w", "value_and_grad", "loss_jax_grad", "loss_jax_grad_w")


def _sparse_options(from_logits, ignore_class):
    """Options of sparse CE with the defaults left out: ``get`` builds the same Loss either way,
    and equal options share one compiled :func:`_evaluate` with the cases above."""
    opts = {"from_logits": from_logits, "ignore_class": ignore_class}
    assert L.get("sparse_categorical_crossentropy", **opts) == L.get(
        "sparse_categorical_crossentropy", **{k: v for k, v in opts.items() if v is not False and v is not None}
    )
    return {k: v for k, v in opts.items() if v is not False and v is not None}


def test_sparse_labels_of_shape_n_1_equal_shape_n():
    _, _, _, labels, z, _ = CASES[IDS.index("scce_logits")]
    scce, logits = "sparse_categorical_crossentropy", {"from_logits": True}
    a = evaluate(scce, logits, labels, z)["value_and_grad"]
    b = evaluate(scce, logits, labels[:, None], z, keys=("value_and_grad",))["value_and_grad"]
    chex.assert_trees_all_close(a, b, rtol=0, atol=0)
    # float labels holding integers are accepted (by the eager label check too), as Keras casts them
    L.check_targets(L.get(scce, **logits), labels.astype(float), z.shape)
    np.testing.assert_allclose(evaluate(scce, logits, labels.astype(float), z, keys=("value",))["value"], a[0])


def test_sample_weight_shapes():
    _, _, _, t, p, ref = CASES[IDS.index("mse")]
    per = ref(t, p)
    w = np.arange(1.0, N + 1)
    weights = (w, w[:, None], jax.device_put(w), 2.0)
    # one compiled program for the four weightings (each a constant of its own type and shape)
    values = jax.jit(lambda t, p: [L.mean_squared_error(t, p, sample_weight=sw) for sw in weights])(t, p)
    for value in values[:3]:
        np.testing.assert_allclose(value, np.sum(w * per) / N, rtol=1e-13)
    np.testing.assert_allclose(values[3], 2 * per.mean(), rtol=1e-13)
    with pytest.raises(ValueError, match=r"sample_weight shape \(5,\)"):  # a shape check: raised while tracing
        jax.jit(lambda t, p: L.mean_squared_error(t, p, sample_weight=np.ones(5)))(t, p)
    # the shapes it takes, each named once
    expected = rf"per-sample loss shape \({N},\) \(expected \({N},\), \({N}, 1\) or a scalar\)$"
    with pytest.raises(ValueError, match=expected):
        L.mean_squared_error(t, p, sample_weight=np.ones(N + 1))
    # rank-3 predictions (a loss per sample and step): (N, 1) weights broadcast over the steps,
    # as Keras's do, and equal the (N,) ones
    t3, p3 = np.linspace(-1, 1, 24).reshape(3, 2, 4), np.linspace(1, -2, 24).reshape(3, 2, 4)
    w3 = np.array([1.0, 2.0, 0.5])
    want = np.sum(w3[:, None] * np.mean((p3 - t3) ** 2, -1)) / 6
    # one compiled program for both weightings
    for value in jax.jit(lambda t, p: [L.mean_squared_error(t, p, sample_weight=sw) for sw in (w3, w3[:, None])])(
        t3, p3
    ):
        np.testing.assert_allclose(value, want, rtol=1e-13)


def test_rank1_and_trailing_one_shapes():
    rng = np.random.default_rng(2)
    t, p = rng.integers(0, 2, 8).astype(float), rng.uniform(0.05, 0.95, 8)
    w = np.linspace(0, 1, 8)
    bce = L.get("binary_crossentropy")

    @jax.jit  # one compilation instead of eager dispatch at four new shapes
    def run(t, p, w):
        return (
            bce.per_sample(t, p),
            bce(t, p, sample_weight=w),
            bce(t, p[:, None]),
            bce.grad(t, p[:, None]),
            bce(t[:, None], p),
        )

    per_sample, weighted, expanded, grad_expanded, squeezed = run(t, p, w)
    per = _ref_bce_elem(t, p, False)  # rank 1: each entry is a sample
    np.testing.assert_allclose(per_sample, per, rtol=1e-12)
    np.testing.assert_allclose(weighted, np.sum(w * per) / 8, rtol=1e-12)
    # (N,) targets against (N, 1) predictions and back, as Keras's squeeze_or_expand_to_same_rank
    np.testing.assert_allclose(expanded, per.mean(), rtol=1e-12)
    chex.assert_shape(grad_expanded, (8, 1))
    np.testing.assert_allclose(squeezed, per.mean(), rtol=1e-12)


def test_hinge_converts_01_labels_only_when_all_are_binary():
    rng = np.random.default_rng(3)
    t01 = rng.integers(0, 2, (N, D)).astype(float)
    p = rng.normal(size=(N, D))
    hinge = lambda t, p: evaluate("hinge", {}, t, p)["value"]
    np.testing.assert_allclose(hinge(t01, p), hinge(2 * t01 - 1, p), rtol=1e-14)
    mixed = t01.copy()
    mixed[0, 0] = -1.0  # not all in {0, 1}: labels used as given
    np.testing.assert_allclose(hinge(mixed, p), ref_hinge(mixed, p).mean(), rtol=1e-13)
    np.testing.assert_allclose(
        evaluate("squared_hinge", {}, mixed, p)["value"], np.mean(np.maximum(1 - mixed * p, 0) ** 2), rtol=1e-13
    )


def test_class_axis_other_than_last():
    rng = np.random.default_rng(4)
    t = np.moveaxis(np.eye(3)[rng.integers(0, 3, (2, 5))], -1, 1)  # (2, 3, 5), classes on axis 1
    z = rng.normal(size=(2, 3, 5))
    cce = L.get("categorical_crossentropy", from_logits=True, axis=1, label_smoothing=0.1)
    cos = L.get("cosine_similarity", axis=1)

    @jax.jit
    def run(t, z):
        return (
            cce.per_sample(t, z),
            cce.value_and_grad(t, z),
            jax.grad(lambda q: cce(t, q))(z),
            cos.value_and_grad(t, z),
            jax.grad(lambda q: cos(t, q))(z),
        )

    per, (value, grad), autodiff, (cos_value, cos_grad), cos_autodiff = run(t, z)
    chex.assert_shape(per, (2, 5))
    np.testing.assert_allclose(value, ref_cce(t, z, True, 0.1, axis=1).mean(), rtol=1e-12)
    np.testing.assert_allclose(grad, autodiff, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(cos_value, ref_cosine(t, z, axis=1).mean(), rtol=1e-12)
    np.testing.assert_allclose(cos_grad, cos_autodiff, rtol=1e-10)


def test_cosine_of_a_zero_prediction_is_zero_with_a_finite_gradient():
    _, _, _, t, p, _ = CASES[IDS.index("cosine")]
    p = p.copy()
    p[0] = 0.0
    out = evaluate("cosine_similarity", {}, t, p)
    value, grad = out["value_and_grad"]
    np.testing.assert_allclose(value, ref_cosine(t, p).mean(), rtol=1e-12)
    # below the 1e-7 norm floor the loss is -t^ . p / 1e-7: linear, gradient -t^ / (1e-7 n)
    np.testing.assert_allclose(np.asarray(grad)[0], -t[0] / np.linalg.norm(t[0]) / EPS / N, rtol=1e-12)
    np.testing.assert_allclose(grad, out["jax_grad"], rtol=1e-10)


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    ignore=st.sampled_from([None, -1, 1]),
    from_logits=st.booleans(),
    scale=st.sampled_from([0.1, 3.0, 30.0]),
)
def test_sparse_ce_grad_property(seed, ignore, from_logits, scale):
    rng = np.random.default_rng(seed)
    labels = rng.integers(-1 if ignore == -1 else 0, C, N)
    z = rng.normal(size=(N, C)) * scale
    p = z if from_logits else np.exp(z / scale)
    opts = _sparse_options(from_logits, ignore)
    L.check_targets(L.get("sparse_categorical_crossentropy", **opts), labels, p.shape)  # eager label check
    keys = SPARSE_KEYS if ignore == -1 else ("value_and_grad", "loss_jax_grad")  # -1: the programs above
    out = evaluate("sparse_categorical_crossentropy", opts, labels, p, keys=keys)
    value, grad = out["value_and_grad"]
    valid = labels != ignore
    if valid.any():
        per = ref_scce(np.where(valid, labels, 0), p, from_logits)
        np.testing.assert_allclose(value, per[valid].mean(), rtol=1e-11)
    np.testing.assert_allclose(grad, out["loss_jax_grad"], rtol=1e-10, atol=1e-15)


# ---------------------------------------------------------------------------------------------
# get(), Loss objects, errors, jit.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "alias,name",
    [
        ("mse", "mean_squared_error"),
        ("MSE", "mean_squared_error"),
        ("MeanSquaredError", "mean_squared_error"),
        ("mae", "mean_absolute_error"),
        ("mape", "mean_absolute_percentage_error"),
        ("msle", "mean_squared_logarithmic_error"),
        ("kld", "kl_divergence"),
        ("bce", "binary_crossentropy"),  # Keras 3's alias
        ("BCE", "binary_crossentropy"),
        ("kullback_leibler_divergence", "kl_divergence"),
        ("KLDivergence", "kl_divergence"),
        ("huber_loss", "huber"),
        ("logcosh", "log_cosh"),
        ("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy"),
        ("CategoricalFocalCrossentropy", "categorical_focal_crossentropy"),
        ("CategoricalGeneralizedCrossEntropy", "categorical_generalized_cross_entropy"),
        ("Dice", "dice"),
        ("Tversky", "tversky"),
        ("Circle", "circle"),
        ("CTC", "ctc"),
    ],
)
def test_aliases_resolve_to_canonical_names(alias, name):
    loss = L.get(alias)
    assert loss.name == name and loss == L.get(name)


def test_names_cover_the_spec():
    spec = [
        "mean_squared_error",
        "mse",
        "mean_absolute_error",
        "mae",
        "mean_absolute_percentage_error",
        "mape",
        "mean_squared_logarithmic_error",
        "msle",
        "huber",
        "log_cosh",
        "binary_crossentropy",
        "binary_focal_crossentropy",
        "categorical_crossentropy",
        "sparse_categorical_crossentropy",
        "kl_divergence",
        "kld",
        "poisson",
        "hinge",
        "squared_hinge",
        "categorical_hinge",
        "cosine_similarity",
        "categorical_focal_crossentropy",
        "categorical_generalized_cross_entropy",
        "dice",
        "tversky",
        "circle",
        "ctc",
    ]
    assert set(spec) <= set(L.names())
    for name in L.names():
        value_fn, grad_fn = _fn(L.get(name).name)
        assert callable(value_fn) and callable(grad_fn)


def test_loss_objects_are_values():
    a = L.get("categorical_crossentropy", from_logits=True)
    b = L.get("categorical_crossentropy", label_smoothing=0, from_logits=True, axis=-1)
    assert a == b and hash(a) == hash(b) and a.from_logits and not L.get("mse").from_logits
    assert a.options == (("axis", -1), ("from_logits", True), ("label_smoothing", 0.0))
    assert L.get(a, label_smoothing=0.1) != a and L.get(a, label_smoothing=0.1).from_logits
    assert L.get(a) == a
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.name = "mse"


def test_get_errors():
    with pytest.raises(ValueError, match="unknown loss 'mean_sqared_error'.*known names:.*mean_squared_error"):
        L.get("mean_sqared_error")
    with pytest.raises(TypeError, match=r"unexpected option\(s\) \['from_logits'\].*takes: no options"):
        L.get("mse", from_logits=True)
    with pytest.raises(TypeError, match=r"'ignore_clas'.*from_logits, ignore_class, axis"):
        L.get("sparse_categorical_crossentropy", ignore_clas=-1)
    with pytest.raises(TypeError, match="from_logits must be a bool"):
        L.get("binary_crossentropy", from_logits="yes")
    with pytest.raises(TypeError, match="delta must be a real number"):
        L.get("huber", delta="1")
    with pytest.raises(TypeError, match="must be a name"):
        L.get(3)
    for name in ("binary_crossentropy", "categorical_crossentropy", "binary_focal_crossentropy"):
        with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\], got 1.5"):
            L.get(name, label_smoothing=1.5)
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        L.categorical_crossentropy(CCE_T, CCE_P, label_smoothing=-0.1)
    # each option's documented range, by get() and by the functions alike (Keras checks none)
    t, p = np.zeros((2, 3)), np.full((2, 3), 0.5)
    for name, option, bad, expected in (
        ("huber", "delta", 0.0, "> 0"),
        ("huber", "delta", -1.0, "> 0"),
        ("binary_focal_crossentropy", "gamma", -1.0, ">= 0"),
        ("binary_focal_crossentropy", "alpha", 2.0, r"in \[0, 1\]"),
        ("binary_focal_crossentropy", "alpha", -0.5, r"in \[0, 1\]"),
        ("categorical_focal_crossentropy", "alpha", -0.5, ">= 0"),
        ("categorical_focal_crossentropy", "gamma", -1.0, ">= 0"),
        ("tversky", "alpha", -0.1, ">= 0"),
        ("tversky", "beta", -2.0, ">= 0"),
        ("categorical_generalized_cross_entropy", "q", 0.0, r"in \(0, 1\)"),
        ("categorical_generalized_cross_entropy", "q", 1.0, r"in \(0, 1\)"),
    ):
        message = rf"{name}: {option} must be {expected}, got {bad}"
        labels = np.array([0, 2]) if name in LABEL_LOSSES else t
        with pytest.raises(ValueError, match=message):
            L.get(name, **{option: bad})
        with pytest.raises(ValueError, match=message):
            getattr(L, name)(labels, p, **{option: bad})
        with pytest.raises(ValueError, match=message):
            getattr(L, f"{name}_grad")(labels, p, **{option: bad})
    # an option per output (alpha of each class) is checked entry by entry
    focal = lambda a, t=t, p=p: L.binary_focal_crossentropy(t, p, apply_class_balancing=True, alpha=a)

    @jax.jit  # one compilation instead of eager dispatch of every op
    def run(t, p, small_t, small_p):
        huber = L.get("huber", delta=1e-3)(small_t, small_p)
        return huber, focal(np.array([0.25, 0.25, 0.25]), t, p), focal(0.25, t, p)

    huber, focal_per_class, focal_scalar = run(t, p, np.array([[0.0]]), np.array([[1.0]]))
    assert huber == pytest.approx(1e-3 - 0.5e-6)
    np.testing.assert_allclose(focal_per_class, focal_scalar, rtol=1e-12)
    with pytest.raises(ValueError, match=r"binary_focal_crossentropy: alpha must be in \[0, 1\], got 1.5"):
        focal(np.array([0.25, 1.5, 0.5]))
    assert L.get("binary_focal_crossentropy", gamma=0.0, alpha=1.0) == L.get(
        "binary_focal_crossentropy", gamma=0, alpha=1
    )


def test_categorical_focal_alpha_per_class_as_a_list_tuple_or_array():
    """Keras's alpha "can be a list of floats": get() and the functions take a list, tuple or
    1-D array (held as a tuple of floats: equal Loss objects, one compiled epoch), checked
    against the classes of y_pred with a message naming alpha and both lengths."""
    name = "categorical_focal_crossentropy"
    t, p = np.eye(3)[[0, 1, 2, 1]], np.array([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.2, 0.2, 0.6], [0.4, 0.4, 0.2]])
    alpha = [0.1, 0.2, 0.7]
    expected = np.mean(ref_cfce(t, p, np.array(alpha)))
    losses = [L.get(name, alpha=a) for a in (alpha, tuple(alpha), np.array(alpha), jnp.array(alpha, jnp.float32))]
    assert losses[0] == losses[1] == losses[2] and hash(losses[0]) == hash(losses[2])
    assert dict(losses[0].options)["alpha"] == (0.1, 0.2, 0.7)
    alphas = (alpha, tuple(alpha), np.array(alpha))
    # concrete inputs (the eager path), every call in one compiled program
    by_loss, by_function, grads, grad, (one, scalar) = staged(
        lambda: (
            [loss(t, p) for loss in losses],
            [L.categorical_focal_crossentropy(t, p, alpha=a) for a in alphas],
            [L.categorical_focal_crossentropy_grad(t, p, alpha=a) for a in alphas],
            losses[0].grad(t, p),
            (L.get(name, alpha=[0.3])(t, p), L.get(name, alpha=0.3)(t, p)),
        )
    )
    for value in by_loss + by_function:
        np.testing.assert_allclose(value, expected, rtol=1e-6)
    for g in grads:
        np.testing.assert_allclose(g, grad)
    # traced inputs go through the custom_jvp, whose static options must hash
    traced = jax.jit(lambda t, p: [L.categorical_focal_crossentropy(t, p, alpha=a) for a in alphas])(t, p)
    np.testing.assert_allclose(traced, [expected] * 3, rtol=1e-6)
    np.testing.assert_allclose(one, scalar, rtol=1e-7)
    # the wrong length, named when y_pred is seen (the loss's mistake in fit's target check)
    for a in ([0.1, 0.2], np.array([0.1, 0.2, 0.3, 0.4])):
        n = len(a)
        message = rf"{name}: alpha has {n} values \(one per class\), but y_pred has 3 classes"
        with pytest.raises(ValueError, match=message):
            L.get(name, alpha=a)(t, p)
        with pytest.raises(ValueError, match=message):
            L.categorical_focal_crossentropy_grad(t, p, alpha=a)
        with pytest.raises(ValueError, match="^loss: " + message):
            L.check_targets(L.get(name, alpha=a), t, p.shape)
    for bad, error, message in (
        ([[0.1, 0.2, 0.7]], ValueError, r"alpha must be a float or a non-empty 1-D sequence .*shape \(1, 3\)"),
        ([], ValueError, r"alpha must be a float or a non-empty 1-D sequence .*shape \(0,\)"),
        ([0.1, -0.2, 0.7], ValueError, r"alpha must be >= 0, got -0.2"),
        ([0.1, np.inf, 0.7], ValueError, r"alpha must be finite, got inf"),
        ([0.1, "a", 0.7], TypeError, r"alpha must be a real number"),
    ):
        with pytest.raises(error, match=f"{name}: {message}"):
            L.get(name, alpha=bad)
        with pytest.raises(error, match=f"{name}: {message}"):
            L.categorical_focal_crossentropy(t, p, alpha=bad)


def test_a_custom_loss_returning_tuples_is_named():
    bad = L.custom("pairs", lambda t, p: jnp.mean((p - t) ** 2, axis=-1), lambda t, p: (2 * (p - t) / p.shape[-1], 0.0))
    with pytest.raises(
        ValueError,
        match="custom loss 'pairs': fn and grad must each return one array; got fn an array and grad a tuple",
    ):
        bad.value_and_grad(np.zeros((4, 2)), np.ones((4, 2)))
    # Without grad, fn's output is checked before jax.vjp's pullback would fail on it.
    pairs = L.custom("pairs", lambda t, p: (jnp.mean((p - t) ** 2, axis=-1), 0.0))
    with pytest.raises(ValueError, match="custom loss 'pairs': fn must return one array; got fn a tuple$"):
        pairs(np.zeros((4, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="custom loss 'none': fn must return one array; got fn a NoneType$"):
        L.custom("none", lambda t, p: None).grad(np.zeros((4, 2)), np.ones((4, 2)))
    # checked against the targets (as fit and evaluate check them), the loss is named, not y
    scalar = L.custom("scalar", lambda t, p: jnp.mean((p - t) ** 2))
    with pytest.raises(ValueError, match=r"^loss: custom loss 'scalar': fn must return one loss per sample"):
        L.check_targets(scalar, np.zeros((4, 2)), (4, 2), name="y")


def test_a_custom_loss_gets_targets_of_y_pred_s_rank_as_keras_s_wrapper_gives_them():
    """Targets (N,) against outputs (N, 1): Keras's LossFunctionWrapper expands them (its
    squeeze_or_expand_to_same_rank), so fn sees N pairs; fnn passed them as they were and
    mean(square(t - p), axis=-1) broadcast to (N, N), the mean over all pairs (3.43 against
    2.57 in the probe), and a hand-written grad was refused as of shape (N, N)."""
    rng = np.random.default_rng(0)
    p, t = rng.normal(size=(5, 1)), rng.normal(size=5)
    want = np.mean((p[:, 0] - t) ** 2)  # NumPy float64: the mean of the 5 pairs
    mse = lambda t, p: jnp.mean(jnp.square(t - p), axis=-1)
    mse_grad = lambda t, p: 2 * (p - t) / p.shape[-1]
    for loss in (L.custom("mse_vjp", mse), L.custom("mse_hand", mse, mse_grad)):
        for y_true, y_pred in ((t, p), (t[:, None], p[:, 0])):  # and (N, 1) targets for (N,) outputs
            value, grad = loss.value_and_grad(y_true, y_pred)
            np.testing.assert_allclose(value, want, rtol=1e-14)
            assert grad.shape == y_pred.shape
            np.testing.assert_allclose(np.ravel(grad), 2 * (p[:, 0] - t) / 5, rtol=1e-14)
            np.testing.assert_allclose(
                jax.grad(lambda q, loss=loss, y_true=y_true: loss(y_true, q))(y_pred), grad, rtol=1e-14
            )
        # a longer target's trailing 1 is squeezed (Keras's rule for ranks above 1)
        np.testing.assert_allclose(loss(np.stack([t, t], 1)[..., None], np.repeat(p, 2, 1)), want, rtol=1e-14)


def test_shape_and_label_errors():
    with pytest.raises(ValueError, match=r"y_true shape \(5, 4\) does not match y_pred shape \(6, 4\)"):
        L.mean_squared_error(np.zeros((5, 4)), np.zeros((6, 4)))
    with pytest.raises(ValueError, match=r"y_true shape \(6, 3\) does not match y_pred shape \(6, 4\)"):
        L.get("categorical_crossentropy").grad(np.zeros((6, 3)), np.ones((6, 4)))
    with pytest.raises(ValueError, match=r"y_true shape \(5,\) does not match y_pred shape \(6, 4\)"):
        L.sparse_categorical_crossentropy(np.zeros(5, int), np.ones((6, 4)))
    with pytest.raises(ValueError, match=r"y_true has y_pred's shape \(6, 4\), as one-hot targets do"):
        L.sparse_categorical_crossentropy(np.eye(4)[[0, 1, 2, 3, 0, 1]], np.ones((6, 4)))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 4\).*got \[-1, 4\]"):
        L.sparse_categorical_crossentropy(np.array([0, 4, -1, 1]), np.ones((4, 4)))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 4\) .*ignore_class=-1.*got \[7\]"):
        L.sparse_categorical_crossentropy(np.array([0, 7, -1, 1]), np.ones((4, 4)), ignore_class=-1)
    with pytest.raises(ValueError, match="integer class ids"):
        L.sparse_categorical_crossentropy(np.array([0.5, 1.0]), np.ones((2, 4)))
    with pytest.raises(ValueError, match="y_train: .*labels must be in"):
        L.check_targets("sparse_categorical_crossentropy", np.array([0, 9]), (2, 4), name="y_train")
    with pytest.raises(ValueError, match=r"y_train: .*\(2, 3\) does not match y_pred shape \(2, 4\)"):
        L.check_targets(L.get("mse"), np.zeros((2, 3)), (2, 4), name="y_train")
    L.check_targets("sparse_categorical_crossentropy", np.array([[0], [3]]), (2, 4))


def test_the_target_checks_trace_the_loss_in_the_run_s_dtypes_under_dtype_promotion_strict():
    """check_targets traces predictions in floating targets' dtype, and fit's and evaluate's check
    in the dtypes the run computes in (float32 targets are moved to float64 params' dtype): under
    x64 a float32 y against float64 zeros was a mix of the check's own, which a custom loss
    (``t - p``) refused under jax_numpy_dtype_promotion="strict" before anything ran."""
    sq = L.custom("sq", lambda t, p: jnp.mean((t - p) ** 2, axis=-1), grad=lambda t, p: 2 * (p - t) / p.shape[-1])
    net = fnn.mlp([2])
    x, y = np.linspace(-1, 1, 12).reshape(4, 3), np.linspace(0, 1, 8, dtype=np.float32).reshape(4, 2)
    p32, p64 = net.init(jax.random.PRNGKey(0), (3,)), net.init(jax.random.PRNGKey(0), (3,), jnp.float64)
    with jax.numpy_dtype_promotion("strict"):
        L.check_targets(sq, y, (4, 2))
        got = [fnn.evaluate(net, p, sq, x, y) for p in (p32, p64)]
    assert jax.config.jax_enable_x64 and got == [fnn.evaluate(net, p, sq, x, y) for p in (p32, p64)]


@pytest.mark.parametrize("name", sorted(n for n in L.names() if callable(getattr(L, n, None))))  # aliases once
def test_inputs_and_options_of_the_wrong_type_are_named(name):
    """Strings would fail deep in jax, a complex y_pred's imaginary part be dropped and
    ``from_logits="yes"`` be taken as True: each is a TypeError naming what is wrong."""
    fn = getattr(L, name)
    t, p = np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([[0.3, 0.7], [0.6, 0.4]])
    if name in LABEL_LOSSES | {"circle"}:
        t = np.array([1, 0])
    if name == "ctc":  # label sequences (N, L), logits (N, T, C)
        t, p = np.array([[1], [0]]), p[:, None, :]
    with pytest.raises(TypeError, match=r"^y_true must hold numbers; got dtype <U\d+$"):
        fn(t.astype(str), p)
    with pytest.raises(TypeError, match=r"^y_pred must hold real numbers; got dtype complex128$"):
        fn(t, p + 1j)
    with pytest.raises(TypeError, match=r"^sample_weight must hold numbers; got dtype <U1$"):
        fn(t, p, sample_weight=np.array(["a", "b"]))
    params = inspect.signature(fn).parameters
    for option in ("from_logits", "apply_class_balancing"):
        if option in params:
            with pytest.raises(TypeError, match=rf"^{name}: {option} must be a bool, got str 'yes'$"):
                fn(t, p, **{option: "yes"})
    for option in ("label_smoothing", "alpha", "gamma", "delta", "beta", "q"):
        if option in params:
            with pytest.raises(TypeError, match=rf"^{name}: {option} must be a real number, got str '0.1'$"):
                fn(t, p, **{option: "0.1"})
    np.testing.assert_allclose(*staged(lambda: (fn(t.astype(np.float32), p), fn(t, p))), rtol=1e-6)  # real dtypes pass


def test_jit_with_loss_as_static_argument():
    # Shape checks run at trace time; value checks are skipped for tracers instead of failing.
    @jax.jit
    def step(labels, z):
        return L.get("sparse_categorical_crossentropy", from_logits=True, ignore_class=-1).value_and_grad(labels, z)

    _, _, _, labels, z, ref = CASES[IDS.index("scce_logits")]
    value, grad = step(labels, z)
    np.testing.assert_allclose(value, ref(labels, z).mean(), rtol=1e-12)

    f = jax.jit(lambda loss, t, p: loss.value_and_grad(t, p), static_argnums=0)
    _, _, opts, t, p, ref = CASES[IDS.index("focal_logits")]
    value, grad = f(L.get("binary_focal_crossentropy", **opts), t, p)
    np.testing.assert_allclose(value, ref(t, p).mean(), rtol=1e-12)
    np.testing.assert_allclose(grad, evaluate("binary_focal_crossentropy", opts, t, p)["grad"], rtol=1e-12)
    with pytest.raises(ValueError, match="does not match"):
        jax.jit(L.mean_squared_error)(np.zeros((2, 3)), np.zeros((3, 3)))


# Points ON the kinks, ties, clip edges and saturations of every loss (float64, two samples).
_T01 = np.array([[0.0, 1.0, 1.0, 0.0], [1.0, 0.0, 1.0, 0.0]])
_KINKS = {
    "mean_squared_error": ({}, _T01, _T01),  # e = 0
    "mean_absolute_error": ({}, _T01, _T01),  # |e| at 0
    "mean_absolute_percentage_error": ({}, _T01 + 1, _T01 + 1),
    "mean_squared_logarithmic_error": ({}, _T01, np.array([[EPS, 0.0, -1.0, EPS], [1.0, EPS, 2.0, 0.0]])),  # clip
    "huber": ({"delta": 1.0}, _T01, _T01 + np.array([[1.0, -1.0, 0.0, 2.0], [-1.0, 1.0, 0.5, 0.0]])),  # |e| = delta
    "log_cosh": ({}, _T01, _T01),
    "binary_crossentropy": ({"from_logits": True}, _T01, np.zeros((2, 4))),  # logits 0
    "binary_focal_crossentropy": ({"from_logits": True, "gamma": 0.5}, _T01, np.array([[40.0, -40.0, 0.0, 0.0]] * 2)),
    "categorical_crossentropy": ({}, _T01 / 2, np.array([[0.0, 1.0, 0.0, 0.0], [EPS, 1 - EPS, 0.5, 0.5]])),  # clips
    "sparse_categorical_crossentropy": ({"from_logits": True}, np.array([1, 2]), np.zeros((2, 4))),  # ties
    "kl_divergence": ({}, _T01 / 2, np.array([[EPS, 1.0, 0.0, 0.5], [1.0, EPS, 0.3, 2.0]])),  # clip edges
    "poisson": ({}, _T01, _T01 + 1.0),
    "hinge": ({}, _T01, 2 * _T01 - 1),  # margins exactly 0
    "squared_hinge": ({}, _T01, 2 * _T01 - 1),
    "categorical_hinge": ({}, _T01 / 2, np.array([[1.0, 1.0, 1.0, 0.0], [2.0, 2.0, 0.0, 2.0]])),  # ties in the max
    "cosine_similarity": ({}, _T01, np.array([[0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0]])),  # a zero vector
    # a true class at q = 1 exactly (1 - q = 0, gamma < 1), others at q = 0 (log q = -1e4)
    "categorical_focal_crossentropy": (
        {"from_logits": True, "gamma": 0.5},
        _T01 / 2,
        np.array([[1e4, -1e4, 0.0, 0.0], [0.0, 0.0, 1e4, 0.0]]),
    ),
    "categorical_generalized_cross_entropy": (
        {},
        np.array([1, 2]),
        np.array([[0.0, 1.0, 0.0, 0.0], [0.5, 0.0, 0.5, 0.0]]),
    ),
    "dice": ({}, np.zeros((2, 4)), np.zeros((2, 4))),  # empty masks: 1 - 0 / eps
    "tversky": ({}, _T01, _T01),  # a perfect prediction
    # similarities exactly 1 (d = max(1 - s, 0) at its kink): the diagonal kept, and two rows of
    # other labels on one point
    "circle": ({"remove_diagonal": False, "gamma": 2.0}, np.array([0, 1]), np.array([[0.6, 0.8], [0.6, 0.8]])),
    # no kink; the edges: a repeat that fills every step (one alignment), saturated logits, an
    # empty sequence
    "ctc": ({}, np.array([[2, 2], [0, 0]]), np.array([[[0.0, 0.0, 1e4], [1e4, 0.0, 0.0], [0.0, -1e4, 0.0]]] * 2)),
}


def test_every_loss_is_covered_at_its_kinks():
    assert set(_KINKS) == {n for n in L.names() if n == L.get(n).name}


@pytest.mark.parametrize("name", sorted(_KINKS))
def test_jax_grad_is_the_hand_written_gradient_at_kinks(name):
    """jax.grad of every loss equals its hand-written gradient exactly where autodiff of the plain
    formula would pick another subgradient or give NaN (logits 0, ties, clip edges, |e| = delta,
    zero margins, saturated logits), float64, with and without sample weights."""
    opts, t, p = _KINKS[name]
    loss = L.get(name, **opts)
    w = np.array([0.5, 2.0])

    @jax.jit
    def both(t, p, w):
        return (
            (jax.grad(lambda q: loss(t, q))(p), loss.grad(t, p)),
            (jax.grad(lambda q: loss(t, q, sample_weight=w))(p), loss.grad(t, p, sample_weight=w)),
        )

    for auto, hand in both(t, p, w):
        assert np.all(np.isfinite(np.asarray(hand))), name
        np.testing.assert_allclose(np.asarray(auto), np.asarray(hand), rtol=1e-12, atol=0)


# ---------------------------------------------------------------------------------------------
# rows_value_and_grad: the loss of some rows of a batch as if the batch held them alone (fit's
# padded last batch); every rows case of a test runs in ONE compiled program.
# ---------------------------------------------------------------------------------------------

ROWS = np.array([False, True, True, False, True, True])  # of the N = 6 samples of the cases
ROWS_IDX = np.flatnonzero(ROWS)
MY_MSE = L.custom("my_mse", lambda t, p: jnp.mean((t - p) ** 2, axis=-1))  # gradient from jax.vjp


@functools.partial(jax.jit, static_argnums=0)
def _rows_and_alone(losses, ts, ps, w, rows):
    """For each loss (a tuple, static): ``rows_value_and_grad`` of the whole batch with mask ``rows``, and
    ``value_and_grad`` of the rows ``ROWS_IDX`` alone, each without and with sample weights."""
    out = []
    for loss, t, p in zip(losses, ts, ps, strict=True):
        alone = (t[ROWS_IDX], p[ROWS_IDX])
        out.append(
            {
                "rows": loss.rows_value_and_grad(t, p, None, rows),
                "rows_w": loss.rows_value_and_grad(t, p, w, rows),
                "alone": loss.value_and_grad(*alone),
                "alone_w": loss.value_and_grad(*alone, sample_weight=w[ROWS_IDX]),
            }
        )
    return out


def _rows_cases():
    """The first case of each built-in loss in CASES, a custom loss, and mse on rank-1 and rank-3
    predictions (per-sample losses of shapes (N,) and (N, T), the mask broadcast over T)."""
    first = {}
    for case in CASES:
        first.setdefault(case[1], case)
    rng = np.random.default_rng(7)
    t3, p3 = rng.normal(size=(N, 3, 2)), rng.normal(size=(N, 3, 2))
    t1, p1 = rng.normal(size=N), rng.normal(size=N)
    mse = CASES[IDS.index("mse")]
    extra = [
        ("custom_mse", MY_MSE, {}, mse[3], mse[4], ref_mse),
        ("mse_rank1", "mean_squared_error", {}, t1, p1, lambda t, p: (t - p) ** 2),
        ("mse_rank3", "mean_squared_error", {}, t3, p3, ref_mse),
    ]
    return list(first.values()) + extra


ROWS_CASES = _rows_cases()


def test_rows_cases_cover_every_builtin_loss():
    canonical = {n for n in L.names() if n == L.get(n).name}
    # circle's per-sample values depend on the batch: its rows are tested with its own reference;
    # ctc's (a scan per program: seconds of compilation) by a fit with a padded last batch
    assert {L.get(case[1]).name for case in ROWS_CASES} == canonical - {"circle", "ctc"} | {"my_mse"}


def _assert_rows_result(value, grad, alone_value, alone_grad, expected, shape):
    grad = np.asarray(grad)
    assert grad.shape == shape
    np.testing.assert_allclose(value, expected, rtol=1e-12, atol=1e-14)  # the NumPy reference
    np.testing.assert_allclose(value, alone_value, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grad[ROWS], alone_grad, rtol=1e-12, atol=1e-15)
    assert np.all(grad[~ROWS] == 0)  # exactly: the layers' batch sums then get nothing from them


@pytest.mark.parametrize("case", ROWS_CASES, ids=[c[0] for c in ROWS_CASES])
def test_rows_value_and_grad_is_the_loss_of_the_rows_alone(case):
    """Value = mean (Keras: sum(w l) / count) of the NumPy per-sample reference over the selected
    rows; value and gradient rows equal value_and_grad of those rows alone; other rows' gradient 0."""
    _, name, opts, t, p, ref = case
    (out,) = _rows_and_alone((L.get(name, **opts),), [t], [p], W_GRAD, ROWS)  # one program a case
    per = ref(t, p)
    w = W_GRAD.reshape((N,) + (1,) * (per.ndim - 1))
    expected = {"rows": per[ROWS].mean(), "rows_w": np.mean((w * per)[ROWS])}
    for key in ("rows", "rows_w"):
        _assert_rows_result(*out[key], *out[key.replace("rows", "alone")], expected[key], np.shape(p))
    # the weights matter (so the weighted check is not the unweighted one again)
    assert not np.isclose(out["rows"][0], out["rows_w"][0], rtol=1e-6)


def test_rows_value_and_grad_combines_with_ignore_class_and_edge_masks():
    """Sparse CE with ignore_class: the mean runs over the rows both selected and valid (Keras's
    sum(w m l) / sum(m) of the selected rows alone); no row selected, or none valid: 0, gradient 0;
    every row selected: value_and_grad itself."""
    rng = np.random.default_rng(3)
    z = rng.normal(size=(N, C)) * 2
    labels = np.array([0, -1, 3, -1, -1, 1])  # selected rows 1, 2, 4, 5: two valid (2 and 5)
    w = np.linspace(0.5, 3.0, N)
    none_valid = np.array([False, True, False, True, False, False])  # rows 1 and 3: both ignored
    scce = L.get("sparse_categorical_crossentropy", from_logits=True, ignore_class=-1)
    mse = CASES[IDS.index("mse")]
    mse_loss = L.get("mse")

    @jax.jit
    def run(labels, z, w, t, p):
        return {
            "rows": scce.rows_value_and_grad(labels, z, None, ROWS),
            "rows_w": scce.rows_value_and_grad(labels, z, w, ROWS),
            "alone": scce.value_and_grad(labels[ROWS_IDX], z[ROWS_IDX]),
            "alone_w": scce.value_and_grad(labels[ROWS_IDX], z[ROWS_IDX], sample_weight=w[ROWS_IDX]),
            "none_valid": scce.rows_value_and_grad(labels, z, w, none_valid),
            "no_rows": mse_loss.rows_value_and_grad(t, p, w, np.zeros(N, bool)),
            "all_rows": mse_loss.rows_value_and_grad(t, p, w, np.ones(N, bool)),
            "all": mse_loss.value_and_grad(t, p, sample_weight=w),
        }

    out = run(labels, z, w, mse[3], mse[4])
    per = ref_scce(np.where(labels == -1, 0, labels), z, True)
    counted = ROWS & (labels != -1)
    assert counted.sum() == 2
    expected = {"rows": per[counted].mean(), "rows_w": np.sum((w * per)[counted]) / counted.sum()}
    for key in ("rows", "rows_w"):
        _assert_rows_result(*out[key], *out[key.replace("rows", "alone")], expected[key], z.shape)
        assert np.all(np.asarray(out[key][1])[ROWS & (labels == -1)] == 0)  # ignored rows: no gradient
    for key in ("none_valid", "no_rows"):
        value, grad = out[key]
        assert float(value) == 0.0 and np.all(np.asarray(grad) == 0), key
    np.testing.assert_allclose(out["all_rows"][0], out["all"][0], rtol=1e-14)
    np.testing.assert_allclose(out["all_rows"][1], out["all"][1], rtol=1e-14, atol=0)


def test_rows_value_and_grad_ignores_nonfinite_unselected_rows():
    """A row left out whose loss is inf or NaN (an overflowing square, NaN or infinite logits and
    probabilities) leaves the value and the selected rows' gradient finite and exact, and gets a
    gradient of exactly 0, not NaN (0 * inf)."""
    out_rows = np.flatnonzero(~ROWS)  # rows 0 and 3
    cases = []
    for cid, bad in (
        ("mse", (np.nan, 1e200)),  # NaN; (1e200)^2 overflows to inf
        ("mae", (np.inf, -np.inf)),
        ("cce", (np.nan, np.inf)),  # probabilities
        ("scce_logits", (np.inf, np.nan)),  # log-softmax of inf logits: inf - inf
        ("bce_logits", (np.nan, -np.inf)),
        ("focal", (np.nan, np.inf)),
        ("kld", (np.nan, np.inf)),
        ("poisson", (np.nan, np.inf)),
        ("cosine", (np.nan, np.inf)),
    ):
        _, name, opts, t, p, _ = CASES[IDS.index(cid)]
        p = np.array(p, dtype=np.float64)
        p[out_rows[0], 0], p[out_rows[1], -1] = bad
        cases.append((L.get(name, **opts), t, p))
    cases.append((MY_MSE, CASES[0][3], cases[0][2]))  # a custom loss, its gradient from jax.vjp

    @jax.jit
    def run(ts, ps, w):
        return [
            (
                loss.rows_value_and_grad(t, p, w, ROWS),
                loss.value_and_grad(t[ROWS_IDX], p[ROWS_IDX], sample_weight=w[ROWS_IDX]),
                loss.per_sample(t, p),
            )
            for (loss, _, _), t, p in zip(cases, ts, ps, strict=True)
        ]

    results = run([t for _, t, _ in cases], [p for _, _, p in cases], W_GRAD)
    for (loss, _, _), ((value, grad), (alone_value, alone_grad), per) in zip(cases, results, strict=True):
        assert not np.all(np.isfinite(np.asarray(per)[~ROWS])), loss.name  # the left-out rows really are bad
        assert np.isfinite(value) and np.all(np.isfinite(np.asarray(grad))), loss.name
        np.testing.assert_allclose(value, alone_value, rtol=1e-12, err_msg=loss.name)
        np.testing.assert_allclose(np.asarray(grad)[ROWS], alone_grad, rtol=1e-12, atol=1e-15, err_msg=loss.name)
        assert np.all(np.asarray(grad)[~ROWS] == 0), loss.name


def test_hinge_rows_convert_labels_as_the_rows_alone_would():
    """Keras's hinge converts labels to -1/+1 when the batch's labels are all 0 or 1: the rows of a
    padded batch must be judged alone (rows 2 and 3 hold 0 and 1, the others do not)."""
    y = np.array([[0.5], [-1.0], [0.0], [1.0]])
    p = np.array([[0.3], [0.2], [0.4], [-0.1]])
    rows = np.array([False, False, True, True])
    run = jax.jit(
        lambda y, p: [
            (L.get(n).rows_value_and_grad(y, p, None, rows), L.get(n).value_and_grad(y[2:], p[2:]))
            for n in ("hinge", "squared_hinge")
        ]
    )
    for (value, grad), (alone_value, alone_grad) in run(y, p):
        np.testing.assert_allclose(value, alone_value, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(grad)[2:], alone_grad, rtol=1e-12)


def test_rows_value_and_grad_names_a_bad_mask():
    loss = L.get("mse")
    y = np.zeros((4, 2))
    with pytest.raises(TypeError, match="rows must be a bool mask"):
        loss.rows_value_and_grad(y, y, None, np.array([1, 0, 1, 1]))
    with pytest.raises(ValueError, match=r"rows must have shape \(4,\)"):
        loss.rows_value_and_grad(y, y, None, np.array([True, False]))


# ---------------------------------------------------------------------------------------------
# Targets and sample weights given as Python lists: the same numbers as arrays under every
# transformation (a custom_jvp would take each number of a list as an argument of its own).
# ---------------------------------------------------------------------------------------------


def test_list_targets_and_weights_under_grad_jacfwd_and_vmap():
    """Every loss of the registry (the ROWS_CASES: each built-in loss, a custom one, rank-1 and
    rank-3 mse) with y_true and sample_weight as nested Python lists: jax.grad, jax.jacfwd (forward
    mode through the loss's custom JVP), jax.vmap of the value and of jax.grad give the NumPy
    references' values and the hand-written gradient of the arrays, in ONE compiled program."""
    losses = [c[1] if isinstance(c[1], L.Loss) else L.get(c[1], **c[2]) for c in ROWS_CASES]
    lists = [(c[3].tolist(), W_GRAD.tolist()) for c in ROWS_CASES]

    @jax.jit
    def run(ts, ps, w):
        out = []
        for loss, (t_list, w_list), t, p in zip(losses, lists, ts, ps, strict=True):
            f = lambda q, t_list=t_list, w_list=w_list, loss=loss: loss(t_list, q, w_list)
            both = jnp.stack([p, p[::-1]])
            hand = jnp.stack([loss.grad(t, q, w) for q in (p, p[::-1])])
            out.append((jax.grad(f)(p), jax.jacfwd(f)(p), jax.vmap(f)(both), jax.vmap(jax.grad(f))(both), hand))
        return out

    ts, ps = [c[3] for c in ROWS_CASES], [c[4] for c in ROWS_CASES]
    for case, (grad, jac, values, grads, hand) in zip(ROWS_CASES, run(ts, ps, W_GRAD), strict=True):
        t, p, ref, hand = case[3], case[4], case[5], np.asarray(hand)  # indexed on the host: no program
        w = W_GRAD.reshape((N,) + (1,) * (np.ndim(ref(t, p)) - 1))
        expected = [np.sum(w * ref(t, q)) / np.size(ref(t, q)) for q in (p, p[::-1])]
        np.testing.assert_allclose(values, expected, rtol=1e-12, err_msg=case[0])
        np.testing.assert_allclose(grad, hand[0], rtol=1e-12, atol=1e-15, err_msg=case[0])
        np.testing.assert_allclose(jac, hand[0], rtol=1e-12, atol=1e-15, err_msg=case[0])
        np.testing.assert_allclose(grads, hand, rtol=1e-12, atol=1e-15, err_msg=case[0])


def test_jax_grad_with_list_inputs():
    """The reported cases: lists for y_true, sample_weight and sparse labels, and a gradient with
    respect to a list of weights (its tracers stacked into one array), in one compiled program."""
    yt, w, yp = [[0.0], [1.0], [2.0], [3.0]], [1.0, 2.0, 1.0, 1.0], np.ones((4, 1))
    logits = np.array([[0.0, 1.0], [2.0, 0.0]])
    mse = L.get("mse")

    @jax.jit
    def grads(yp, logits):
        return (
            jax.grad(lambda p: mse(yt, p))(yp),
            jax.grad(lambda p: L.mean_squared_error(yt, p))(yp),
            jax.grad(lambda p: mse(np.asarray(yt), p, w))(yp),
            jax.grad(lambda w: mse(yt, yp, w))(w),
            jax.grad(lambda z: L.sparse_categorical_crossentropy([0, 1], z, from_logits=True))(logits),
        )

    by_loss, by_function, weighted, by_weight, sparse = grads(yp, logits)
    expected = [[0.5], [0.0], [-0.5], [-1.0]]  # 2 (p - t) / 4; the weight 2 multiplies a 0
    for got in (by_loss, by_function, weighted):
        np.testing.assert_allclose(got, expected, rtol=1e-15)
    np.testing.assert_allclose(by_weight, [0.25, 0.0, 0.25, 1.0], rtol=1e-15)  # l_i / n = (1 - t_i)^2 / 4
    softmax = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(sparse, (softmax - np.eye(2)) / 2, rtol=1e-12)
    with pytest.raises(ValueError, match="y_true must be an array or a nested list of numbers of one shape"):
        L.mean_squared_error([[0.0], [1.0, 2.0]], yp[:2])


def test_a_nan_prediction_gives_a_nan_loss_for_every_builtin_loss():
    """A diverged prediction must not read as a finite loss (the hinge losses' max(m, 0) took a
    NaN margin for 0: a NaN network reported a perfect 0.0, and neither fit's warning nor
    TerminateOnNaN's loss check saw it). Keras's maximum keeps the NaN, and so does fnn now; the
    hinge losses' gradients are NaN there too, and their finite values unchanged."""
    names = L.names()
    t, labels = np.array([[0.0, 1.0, 0.0]]), np.array([1])
    p_nan, p = np.array([[0.2, np.nan, 0.3]]), np.array([[0.2, 0.9, 0.3]])

    def inputs(name, p):  # circle: rows with a positive and a negative pair (a lone row has none: 0)
        if L.get(name).name == "circle":
            return np.array([1, 1, 0]), jnp.concatenate([p, p, p])
        if L.get(name).name == "ctc":  # one step of logits
            return labels[:, None], p[:, None, :]
        return (labels if L.get(name).name in LABEL_LOSSES else t), p

    @jax.jit
    def values(p):
        return [L.get(n)(*inputs(n, p)) for n in names]

    assert [n for n, v in zip(names, values(p_nan), strict=True) if not np.isnan(v)] == []
    # margins 1 - t p with t in {-1, 1}: 1.2, 0.1, 1.3 (their mean, the mean of their squares);
    # categorical: the largest other prediction 0.3 - the true class's 0.9 + 1
    hinges = {"hinge": 2.6 / 3, "squared_hinge": 3.14 / 3, "categorical_hinge": 0.4}
    for name, v in zip(names, values(p), strict=True):
        if name in hinges:
            np.testing.assert_allclose(v, hinges[name], rtol=1e-12)
    grads = jax.jit(lambda q: [jax.grad(lambda r: L.get(n)(t, r))(q) for n in hinges])(p_nan)
    assert all(np.isnan(np.asarray(g)[0, 1]) for g in grads)


def test_swapped_byte_order_targets_predictions_and_weights_are_used_by_their_values():
    """Big-endian NumPy labels, logits and weights (JAX refuses them) give NumPy's weighted
    crossentropy and its gradient, ``(softmax - onehot) * w / N``."""
    labels, w = np.array([0, 2, 1]), np.array([1.0, 0.5, 2.0])
    logits = np.array([[1.0, 2.0, 0.5], [0.1, -1.0, 3.0], [0.0, 0.0, 0.0]])
    logp = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    sce = L.get("sparse_categorical_crossentropy", from_logits=True)
    value, grad = staged(lambda: sce.value_and_grad(swapped(labels), swapped(logits), sample_weight=swapped(w)))
    np.testing.assert_allclose(value, np.sum(w * -logp[np.arange(3), labels]) / 3, rtol=1e-12)
    np.testing.assert_allclose(grad, (np.exp(logp) - np.eye(3)[labels]) * w[:, None] / 3, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# Dice and Tversky over the whole batch, generalized CE's labels, focal CE's smoothing, and the
# four training a network.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,opts", [("dice", {}), ("tversky", {"alpha": 0.7, "beta": 0.3})])
def test_overlap_losses_over_the_whole_batch(name, opts):
    """Keras's default axis=None: ONE ratio of the batch's sums (not a mean of per-sample values);
    sample weights scale it by their mean (Keras's reduction of a scalar); the hand-written
    gradient equals jax.grad and central differences; rows_value_and_grad (fit's padded last
    batch) is the loss of the selected rows alone, NaN in the others left out."""
    t, p = CASES[IDS.index(name + "_rows")][3:5]
    ref = lambda t, p: ref_dice(t, p, None) if name == "dice" else ref_tversky(t, p, axis=None, **opts)
    out = evaluate(name, opts, t, p, W_GRAD, keys=ALL)  # every call below shares this one program
    assert np.shape(out["per_sample"]) == ()
    np.testing.assert_allclose([out["value"], out["per_sample"]], ref(t, p), rtol=1e-12)
    assert not np.isclose(ref(t, p), np.mean(ref_dice(t, p) if name == "dice" else ref_tversky(t, p, **opts)))
    np.testing.assert_allclose(out["loss_w"], W_GRAD.mean() * ref(t, p), rtol=1e-12)
    for got, expected in ((out["grad"], out["jax_grad"]), (out["grad_w"], out["jax_grad_w"])):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(out["grad_w"], W_GRAD.mean() * np.asarray(out["grad"]), rtol=1e-12)
    fd, smooth = _differences(lambda q: evaluate(name, opts, t, q, W_GRAD, keys=ALL)["value"], p)
    assert smooth.all()
    np.testing.assert_allclose(out["grad"], fd, rtol=1e-6, atol=1e-9)
    bad = p.copy()
    bad[~ROWS] = np.nan  # padding that diverged adds nothing
    loss = L.get(name, **opts)
    for q in (p, bad):
        (out,) = _rows_and_alone((loss,), [t], [q], W_GRAD, ROWS)
        expected = {"rows": ref(t[ROWS], p[ROWS]), "rows_w": W_GRAD[ROWS].mean() * ref(t[ROWS], p[ROWS])}
        for key in ("rows", "rows_w"):
            _assert_rows_result(*out[key], *out[key.replace("rows", "alone")], expected[key], p.shape)


def test_overlap_axes_and_generalized_ce_labels():
    """Dice's axis: a tuple of each sample's axes equals their flattening; the batch axis, a
    repeated axis or a non-integer one is refused (by the functions and by get). Generalized CE:
    (N, 1) labels equal (N,) ones (Keras would broadcast them into an (N, N) matrix); labels
    outside [0, C), fractional or of another length are refused, eagerly by check_targets too."""
    rng = np.random.default_rng(5)
    t3, p3 = rng.integers(0, 2, (N, 2, 3)).astype(float), rng.uniform(0.05, 0.95, (N, 2, 3))
    _, _, opts, labels, p, ref = CASES[IDS.index("gce")]

    @jax.jit
    def run(t3, p3, labels, p):
        return (
            L.dice(t3, p3, axis=(1, 2)),
            L.get("dice", axis=-1).value_and_grad(t3.reshape(N, 6), p3.reshape(N, 6)),
            L.get("dice", axis=[-1, 1]).value_and_grad(t3, p3),
            L.get("categorical_generalized_cross_entropy", **opts).value_and_grad(labels[:, None], p),
        )

    tuple_axes, (flat, flat_grad), (value, grad), (gce, gce_grad) = run(t3, p3, labels, p)
    np.testing.assert_allclose([tuple_axes, value], flat, rtol=1e-13)
    np.testing.assert_allclose(grad, np.reshape(flat_grad, (N, 2, 3)), rtol=1e-13)
    np.testing.assert_allclose(gce, ref(labels, p).mean(), rtol=1e-13)
    np.testing.assert_allclose(gce_grad, evaluate("categorical_generalized_cross_entropy", opts, labels, p)["grad"])
    t, q = np.zeros((2, 3)), np.full((2, 3), 0.5)
    for axis, error, message in (
        (0, ValueError, "includes the batch axis 0"),
        ((1, 0), ValueError, "includes the batch axis 0"),
        ((1, -1), ValueError, "distinct axes"),
        (2, ValueError, "axis 2 is out of range"),
        (1.0, TypeError, "axis must be an int"),
    ):
        with pytest.raises(error, match=message):
            L.dice_grad(t, q, axis=axis)
    with pytest.raises(TypeError, match=r"loss 'tversky': axis must be None, an int or a tuple of ints, got 'a'"):
        L.get("tversky", axis="a")
    with pytest.raises(ValueError, match=r"dice: y_true shape \(2, 4\) does not match y_pred shape \(2, 3\)"):
        L.dice(np.zeros((2, 4)), q)
    gce = L.categorical_generalized_cross_entropy
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\).*got \[-1, 3\]"):
        gce(np.array([3, -1]), q)
    with pytest.raises(ValueError, match="integer class ids"):
        gce(np.array([0.5, 1.0]), q)
    with pytest.raises(
        ValueError,
        match=r"y_true has y_pred's shape \(2, 3\), as one-hot targets do; it takes integer labels of shape \(2,\) "
        r"or \(2, 1\) \(for one-hot targets use categorical_crossentropy",
    ):
        gce(t, q)
    with pytest.raises(ValueError, match="y_train: .*labels must be in"):
        L.check_targets("CategoricalGeneralizedCrossEntropy", np.array([0, 3]), (2, 3), name="y_train")


# Circle: Keras 3.15.1's own numbers (JAX backend, float32), from
#   keras.losses.Circle(**opts)(CIRCLE_Y, CIRCLE_P, sample_weight=w)   (the class: its mean
#   leaves out the zero losses) and keras.losses.circle(CIRCLE_Y, CIRCLE_P, ref_labels=...,
#   ref_embeddings=CIRCLE_REF, remove_diagonal=False, gamma=4.0, margin=0.25) (per sample).
CIRCLE_P = np.array([
    [0.003, 0.7368, -0.6761], [-0.6324, -0.3229, -0.7042], [0.0421, 0.9379, -0.3444],
    [-0.7154, 0.5648, 0.4115], [0.1125, -0.9932, -0.0312], [0.4398, -0.8502, -0.2894],
])  # fmt: skip
CIRCLE_Y = np.array([0, 1, 0, 2, 1, 0])  # class 2 has one member: no positive pair, a loss of 0
CIRCLE_W = np.array([0.5, 2.0, 1.0, 1.5, 0.25, 1.0])
CIRCLE_REF = np.array([
    [-1.9012, -1.2895, -1.8417], [-0.2351, -1.2674, 0.2713], [0.1568, -0.1869, -2.5168], [-0.5387, -0.0485, 0.1133],
])  # fmt: skip
CIRCLE_REF_Y = np.array([0, 1, 1, 2])
CIRCLE_KERAS = [  # (options, sample weights?, Keras's value)
    ({}, False, 146.47926330566406),
    ({}, True, 123.42049407958984),
    ({"remove_diagonal": False}, False, 122.0660400390625),
    ({"gamma": 4.0, "margin": 0.25}, False, 8.69629955291748),
    ({"gamma": 4.0, "margin": 0.25}, True, 7.6783928871154785),
]
CIRCLE_KERAS_PER = [
    150.66519165039062, 21.59528350830078, 212.85671997070312, 0.0, 82.07538604736328, 265.2037048339844,
]  # fmt: skip
CIRCLE_KERAS_REF_PER = [
    5.5657548904418945, 5.316226482391357, 12.694422721862793, 2.3124420642852783, 5.704380512237549, 3.862727165222168,
]  # fmt: skip


def ref_circle(y, p, w=None, ref_y=None, ref=None, remove_diagonal=True, gamma=80.0, margin=0.4):
    """Keras's circle written again in plain jnp (float64, differentiated by jax.grad), then its
    Circle class's mean over the samples of a loss > 0."""
    ref, ref_y = (p, y) if ref is None else (ref, ref_y)
    d = jnp.maximum(1 - p @ ref.T, 0.0)
    pos = y[:, None] == ref_y[None, :]
    neg = ~pos
    if remove_diagonal:
        pos = pos & ~np.eye(len(y), len(ref_y), dtype=bool)
    a = -gamma * jnp.maximum(margin + d, 0) * (margin - d)
    b = gamma * jnp.maximum(1 + margin - d, 0) * (1 - margin - d)
    lse = lambda x, m: jax.scipy.special.logsumexp(jnp.where(m, x, -jnp.inf), axis=1)
    per = jax.nn.softplus(lse(a, pos) + lse(b, neg))
    w = jnp.ones(len(y)) if w is None else w
    return jnp.sum(w * per) / jnp.sum(per > 0), per


def test_circle_matches_keras_and_its_gradient_jax_grad_of_a_plain_formula_and_differences():
    """Values against Keras's (float32: rtol 1e-6), per-sample values too; the hand-written
    gradient against jax.grad of ``ref_circle`` (float64) and central differences; jax.grad of
    fnn's loss is the hand-written one. One compiled program for all of them."""
    cases = [(opts, CIRCLE_W if weighted else None) for opts, weighted, _ in CIRCLE_KERAS]
    ref_opts = {"remove_diagonal": False, "gamma": 4.0, "margin": 0.25}
    with_ref = L.get("circle", ref_labels=CIRCLE_REF_Y, ref_embeddings=CIRCLE_REF, **ref_opts)

    @jax.jit
    def run(y, p, w):
        out = []
        for opts, cw in cases:
            loss, cw = L.get("circle", **opts), None if cw is None else w
            value, grad = loss.value_and_grad(y, p, sample_weight=cw)
            expected, expected_grad = jax.value_and_grad(lambda q: ref_circle(y, q, cw, **opts)[0])(p)
            auto = jax.grad(lambda q: loss(y, q, sample_weight=cw))(p)
            out.append((value, grad, expected, expected_grad, auto))
        ref_value, ref_grad = with_ref.value_and_grad(y, p, sample_weight=w)
        ref_expected = jax.value_and_grad(lambda q: ref_circle(y, q, w, CIRCLE_REF_Y, CIRCLE_REF, **ref_opts)[0])(p)
        per = (L.get("circle").per_sample(y, p), with_ref.per_sample(y, p))
        return out, (ref_value, ref_grad, *ref_expected), per

    out, (ref_value, ref_grad, ref_expected, ref_expected_grad), per = run(CIRCLE_Y, CIRCLE_P, CIRCLE_W)
    for (value, grad, expected, expected_grad, auto), (_, _, keras) in zip(out, CIRCLE_KERAS, strict=True):
        np.testing.assert_allclose(value, keras, rtol=1e-6)
        np.testing.assert_allclose(value, expected, rtol=1e-13)
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(auto, grad)
    np.testing.assert_allclose(per[0], CIRCLE_KERAS_PER, rtol=1e-6)
    np.testing.assert_allclose(per[1], CIRCLE_KERAS_REF_PER, rtol=1e-6)
    np.testing.assert_allclose(ref_value, ref_expected, rtol=1e-13)
    np.testing.assert_allclose(ref_grad, ref_expected_grad, rtol=1e-10, atol=1e-12)
    # the weighted mean of the Keras's ref case (its class's mask: every loss > 0 here)
    np.testing.assert_allclose(ref_value, np.mean(CIRCLE_W * np.array(CIRCLE_KERAS_REF_PER)), rtol=1e-6)
    assert L.get("circle").whole_batch and not with_ref.whole_batch
    # central differences of the weighted, non-default case (one more compiled program)
    value_of = jax.jit(lambda q: L.circle(CIRCLE_Y, q, gamma=4.0, margin=0.25, sample_weight=CIRCLE_W))
    fd, smooth = _differences(value_of, CIRCLE_P)
    assert smooth.all()
    np.testing.assert_allclose(out[4][1], fd, rtol=1e-6, atol=1e-8)


def test_circle_rows_leave_the_padding_out_of_every_pair():
    """rows_value_and_grad (fit's padded last batch) is the loss of the selected rows alone: the
    padding (a copy of a selected row, or NaN) is in no pair and gets a gradient of exactly 0."""
    loss = L.get("circle", gamma=4.0, margin=0.25)
    rows = np.array([True, True, False, True, True, False])  # rows 0, 1, 3, 4 (labels 0, 1, 2, 1)
    bad = CIRCLE_P.copy()
    bad[~rows] = np.nan

    @jax.jit
    def run(y, p, bad, w):
        alone = (y[rows], p[rows])
        return (
            [loss.rows_value_and_grad(y, q, c, rows) for q in (p, bad) for c in (None, w)],
            [loss.value_and_grad(*alone, sample_weight=c) for c in (None, w[rows])],
            ref_circle(*alone, gamma=4.0, margin=0.25)[1],
        )

    got, alone, per = run(CIRCLE_Y, CIRCLE_P, bad, CIRCLE_W)
    for i, (value, grad) in enumerate(got):
        alone_value, alone_grad = alone[i % 2]
        np.testing.assert_allclose(value, alone_value, rtol=1e-13)
        np.testing.assert_allclose(np.asarray(grad)[rows], alone_grad, rtol=1e-12, atol=1e-15)
        assert np.all(np.asarray(grad)[~rows] == 0)
    # row 0 (label 0) has no positive pair once row 2 is left out: a loss of 0, out of the mean
    per = np.asarray(per)
    assert per[0] == 0 and per[1] > 0
    np.testing.assert_allclose(got[0][0], per[per > 0].mean(), rtol=1e-12)


def test_circle_bad_inputs_and_options_are_refused():
    y, p = CIRCLE_Y, CIRCLE_P
    for kwargs, error, message in (
        ({"gamma": 0.0}, ValueError, r"circle: gamma must be > 0, got 0.0"),
        ({"gamma": -1.0}, ValueError, r"circle: gamma must be > 0"),
        ({"margin": np.inf}, ValueError, r"circle'?: margin must be finite"),
        ({"margin": "0.4"}, TypeError, r"circle'?: margin must be a real number"),
        ({"ref_labels": CIRCLE_REF_Y}, ValueError, "give ref_labels and ref_embeddings together"),
        ({"ref_labels": CIRCLE_REF_Y, "ref_embeddings": CIRCLE_REF}, ValueError, "pass remove_diagonal=False"),
        (
            {"ref_labels": CIRCLE_REF_Y[:3], "ref_embeddings": CIRCLE_REF, "remove_diagonal": False},
            ValueError,
            r"ref_labels must have shape \(4,\)",
        ),
        (
            {"ref_labels": CIRCLE_REF_Y + 0.5, "ref_embeddings": CIRCLE_REF, "remove_diagonal": False},
            ValueError,
            "ref_labels must hold integer class ids",
        ),
    ):
        with pytest.raises(error, match=message):
            L.get("Circle", **kwargs)
        with pytest.raises(error, match=message):
            L.circle(y, p, **kwargs)
    refs = {"ref_labels": CIRCLE_REF_Y, "ref_embeddings": CIRCLE_REF[:, :2], "remove_diagonal": False}
    for t, q, error, message in (
        (y, p[:, :, None], ValueError, r"circle: y_pred must be embeddings of shape \(N, D\), got shape \(6, 3, 1\)"),
        (y[:5], p, ValueError, r"circle: y_true must be integer labels of shape \(6,\) or \(6, 1\), got \(5,\)"),
        (y + 0.5, p, ValueError, "circle: y_true must hold integer class ids"),
    ):
        with pytest.raises(error, match=message):
            L.circle_grad(t, q)
    with pytest.raises(ValueError, match="ref_embeddings have 2 features, but y_pred has 3"):
        L.circle(y, p, **refs)
    with pytest.raises(ValueError, match="y_train: circle: y_true must hold integer class ids"):
        L.check_targets("circle", y + 0.5, p.shape, name="y_train")
    # labels are held as int32: 2**32 would wrap onto 0, so it is refused, not merged with class 0
    big = np.where(y == 1, 2**32, y)
    for call in (lambda: L.circle(big, p), lambda: L.check_targets("circle", big, p.shape)):
        with pytest.raises(ValueError, match=r"circle: y_true must fit int32 .* up to 4294967296"):
            call()
    with pytest.raises(ValueError, match="circle: ref_labels must fit int32"):
        L.get("circle", ref_labels=[0, 1, 2, -(2**40)], ref_embeddings=CIRCLE_REF, remove_diagonal=False)
    # float labels are read as integers on the host: 2**24 and 2**24 + 1 stay two classes (float32 would merge them)
    far = np.array([2**24, 2**24 + 1, 5, 5, 6, 7], float)
    with jax.enable_x64(False):  # where jnp.asarray of float64 labels is float32
        got, want = staged(lambda: [L.circle(t, CIRCLE_P, gamma=2.0) for t in (far, [0, 1, 5, 5, 6, 7])])
    assert got.dtype == np.float32 and float(got) == float(want)
    # an empty batch: a loss of 0 and an empty gradient, as the other losses (Keras: an empty array);
    # (N, 1) labels are (N,) ones
    empty, empty_grad, column, flat = staged(
        lambda: (
            L.circle(np.zeros(0, int), np.zeros((0, 3))),
            L.circle_grad(np.zeros(0, int), np.zeros((0, 3))),
            L.circle(y[:, None], p, gamma=4.0),
            L.circle(y, p, gamma=4.0),
        )
    )
    assert float(empty) == 0.0
    assert empty_grad.shape == (0, 3)
    np.testing.assert_allclose(column, flat, rtol=1e-14)
    # a Loss holding references is a hashable value
    a = L.get("circle", **{**refs, "ref_embeddings": CIRCLE_REF})
    b = L.get("circle", ref_labels=list(CIRCLE_REF_Y), ref_embeddings=CIRCLE_REF.tolist(), remove_diagonal=False)
    assert a == b and hash(a) == hash(b)


# Keras 3.15.1 (KERAS_BACKEND=jax): keras.losses.ctc(KERAS_CTC_Y, KERAS_CTC_Z) per sample, then
# keras.losses.CTC()(y, z) and CTC()(y, z, sample_weight=KERAS_CTC_W); float32
KERAS_CTC_Z = np.random.default_rng(0).normal(size=(6, 5, 4)).astype(np.float32)
KERAS_CTC_Y = np.array([[1, 2, 0], [1, 1, 0], [3, 3, 3], [0, 0, 0], [2, 1, 3], [1, 2, 1]])
KERAS_CTC_W = np.array([1.0, 2.0, 0.0, 0.5, 1.0, 3.0])
KERAS_CTC_PER = [5.029120922088623, 3.9911370277404785, 11.272073745727539, 9.824983596801758, 2.964118719100952,
                 3.655409574508667]  # fmt: skip
KERAS_CTC_MEAN, KERAS_CTC_WEIGHTED = 6.122807025909424, 5.3090386390686035
# [2, 2] in 3 steps (2, blank, 2: one alignment): CTC()(y, z) and jax.grad of it, Keras 3.15.1
KERAS_CTC_SMALL_Z = np.array([[[0.5, -1.0, 2.0], [0.0, 1.5, -0.5], [1.0, 0.2, 0.3]]], np.float32)
KERAS_CTC_SMALL = (3.4133992195129395, [[[0.17529039084911346, 0.03911257162690163, -0.214402973651886],
                                         [-0.8357483744621277, 0.7361246943473816, 0.09962364286184311],
                                         [0.5138972401618958, 0.23090891540050507, -0.744806170463562]]])  # fmt: skip


def test_ctc_matches_keras_in_float32():
    """Keras 3's CTC (logits, blank 0, labels padded with 0; a label repeated needs a blank
    between; the empty sequence; every step used by [3, 3, 3]), per sample and weighted, and
    its gradient at the one alignment of [2, 2] in 3 steps, float32 as Keras computes."""
    loss = L.get("CTC")

    @jax.jit
    def run(y, z, w, y_small, z_small):
        return loss.per_sample(y, z), loss(y, z, sample_weight=w), loss.value_and_grad(y_small, z_small)

    per, weighted, (small, small_grad) = run(
        KERAS_CTC_Y, KERAS_CTC_Z, KERAS_CTC_W.astype(np.float32), np.array([[2, 2]]), KERAS_CTC_SMALL_Z
    )
    assert per.dtype == small_grad.dtype == np.float32
    np.testing.assert_allclose(per, KERAS_CTC_PER, rtol=2e-6)
    assert float(np.mean(per)) == pytest.approx(KERAS_CTC_MEAN, rel=2e-6)
    np.testing.assert_allclose([weighted, small], [KERAS_CTC_WEIGHTED, KERAS_CTC_SMALL[0]], rtol=2e-6)
    np.testing.assert_allclose(small_grad, KERAS_CTC_SMALL[1], rtol=1e-5, atol=1e-6)
    q = np.exp(_log_softmax(KERAS_CTC_SMALL_Z[0].astype(np.float64)))  # 2, blank, 2
    assert small == pytest.approx(-np.log(q[0, 2] * q[1, 0] * q[2, 2]), rel=1e-6)


def test_ctc_gradient_is_jax_grad_of_a_plain_formula_and_central_differences():
    """float64: the value against the plain probability-space recursion (``ref_ctc``), the
    hand-written gradient (weighted) against jax.grad of it and against central differences, and
    jax.grad of the loss (a custom_jvp) against the hand-written gradient."""
    loss = L.get("ctc")
    f = jax.jit(lambda z: loss.value_and_grad(CTC_Y, z, sample_weight=W_GRAD))
    value, grad = f(CTC_Z)
    reference = jax.jit(jax.value_and_grad(lambda z: jnp.sum(W_GRAD * ref_ctc(CTC_Y, z)) / N))
    ref_value, ref_grad = reference(CTC_Z)
    np.testing.assert_allclose(value, ref_value, rtol=1e-13)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-14)
    fd, smooth = _differences(lambda z: f(z)[0], CTC_Z)
    assert smooth.all()
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)
    # each step's gradient sums to 0 over the classes (softmax and the alignments' occupancy both sum to w_i / N)
    np.testing.assert_allclose(np.sum(grad, axis=-1), 0.0, atol=1e-15)


def test_ctc_refuses_labels_it_cannot_score_and_gives_inf_for_them_under_jit():
    """Clear errors for wrong ranks, non-integer labels, labels out of [0, C), the blank 0 inside
    a sequence and a row too long for the time steps (Keras: about 1e5 from its -1e5 for log 0;
    the exact -log 0 is inf, what such a row gets under jit, where labels cannot be checked, with
    a gradient of 0); check_targets (fit's) names them."""
    z = np.zeros((2, 3, 4))
    y = np.array([[1, 2], [3, 0]])
    for t, p, match in [
        (y, z[:, 0], r"ctc: y_pred must be logits of shape \(N, T, C\) \(batch, time steps >= 1, classes\), got"),
        (y, z[:, :0], r"y_pred must be logits of shape \(N, T, C\) .*got shape \(2, 0, 4\)"),
        (y[:, 0], z, r"ctc: y_true must be integer labels of shape \(2, L\) \(padded with 0, the blank\), got"),
        (y[:1], z, r"y_true must be integer labels of shape \(2, L\)"),
        (y + 0.5, z, "ctc: y_true must hold integer class ids, got non-integer values"),
        (np.array([[1, 4], [3, 0]]), z, r"ctc: y_true labels must be in \[1, 4\) \(the classes of y_pred but 0.*\[4\]"),
        (np.array([[1, -1], [3, 0]]), z, r"labels must be in \[1, 4\).*got \[-1\]"),
        (np.array([[1, 2], [0, 3]]), z, r"ctc: y_true holds the blank 0 inside a label sequence \(row 1: \[0, 3\]\)"),
        (np.array([[1, 2], [3, 3]]), z[:, :2],
         r"ctc: y_true row 1 \(\[3, 3\]\) needs at least 3 time steps .* but y_pred has 2: no alignment exists"),
    ]:  # fmt: skip
        for fn in (L.ctc, L.ctc_grad):
            with pytest.raises(ValueError, match=match):
                fn(t, p)
    with pytest.raises(ValueError, match=r"y_train: ctc: y_true row 0 \(\[1, 2, 3\]\) needs at least 3 time steps"):
        L.check_targets("ctc", [[1, 2, 3]], (1, 2, 4), name="y_train")
    with pytest.raises(ValueError, match=r"y_train: ctc: y_true holds the blank 0 inside"):
        L.check_targets("ctc", np.array([[0.0, 1.0]]), (1, 2, 4), name="y_train")
    L.check_targets("ctc", np.array([[2.0, 2.0, 0.0]]), (1, 3, 4))  # floats of integers pad as ints
    # under jit: an impossible row ([1, 1] in 2 steps) is inf with a zero gradient, the other finite
    value, grad = map(np.asarray, jax.jit(L.get("ctc").value_and_grad)(np.array([[1, 1], [1, 2]]), CTC_Z[:2, :2]))
    assert value == np.inf and np.all(grad[0] == 0) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(np.sum(grad[1], axis=-1), 0.0, atol=1e-15)
    assert np.abs(grad[1]).max() > 0.01


def test_ctc_in_float32_keeps_its_gradient_where_the_loss_is_large():
    """Confidently wrong logits (scale 1e3, a loss ~2e3) and a long sequence (T = 200): the
    recursions are rescaled per step, so float32's gradient stays within 1e-5 of float64's (the
    unscaled log-space products lost ~1e-3 against a log p of -2e4, as Keras's recursion does);
    each step's gradient sums to 0 over the classes, and a certain alignment's loss is +0. (An
    H200's float32 exp and log round otherwise: within 1e-4 there, 8.1e-5 measured.)"""
    rng = np.random.default_rng(3)
    y = np.array([[1, 2, 3, 0], [2, 2, 0, 0], [3, 1, 2, 1]])
    zs = [z.astype(dtype) for z in (rng.normal(size=(3, 8, 4)) * 1e3, rng.normal(size=(3, 200, 4)) * 3)
          for dtype in (np.float32, np.float64)]  # fmt: skip
    certain = np.full((1, 2, 3), -1e4)
    certain[0, 0, 1] = certain[0, 1, 2] = 1e4
    # the labels concrete (checked on the host), every loss in one compiled program
    grads, loss = jax.jit(lambda zs, c: ([L.ctc_grad(y, z) for z in zs], L.ctc([[1, 2]], c)))(
        zs, certain.astype(np.float32)
    )
    atol = 1e-5 if jax.default_backend() == "cpu" else 1e-4
    for g32, g64 in zip(grads[::2], grads[1::2], strict=True):
        assert g32.dtype == np.float32
        g32, g64 = np.asarray(g32, np.float64), np.asarray(g64, np.float64)
        np.testing.assert_allclose(g32, g64, atol=atol)
        np.testing.assert_allclose(g32.sum(axis=-1), 0.0, atol=atol)
    loss = np.asarray(loss)
    assert loss == 0 and not np.signbit(loss)


def test_ctc_trains_a_dense_reshape_network_on_label_sequences():
    """Keras's CTC workflow in small: per-step logits from ``Dense(T * C)`` and ``Reshape((T, C))``,
    float labels of integer values (held as int32 by fit), a padded last batch; the loss falls."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(14, 3))
    patterns = np.array([[1, 2, 0], [2, 2, 1], [3, 0, 0]], float)
    y = patterns[(x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)]
    steps, classes = 5, 4
    net = fnn.serial(fnn.Dense(steps * classes), fnn.Reshape((steps, classes)))
    params = net.init(jax.random.PRNGKey(0), (3,))
    res = fnn.fit(net, params, fnn.optimizers.adam(0.1), "ctc", x, y, batch_size=4, epochs=10, verbose=0)
    history = res.history["loss"]
    assert np.all(np.isfinite(history)) and history[-1] < 0.5 * history[0], history


def test_focal_label_smoothing_is_target_smoothing_and_gamma_0_alpha_1_is_cce():
    _, _, _, t, z, _ = CASES[IDS.index("cfce_logits_ls")]
    opts = {"from_logits": True, "alpha": 1.5, "gamma": 0.5}
    smoothed = evaluate("categorical_focal_crossentropy", opts, t * 0.9 + 0.1 / C, z, keys=("value_and_grad",))
    chex.assert_trees_all_close(
        evaluate("categorical_focal_crossentropy", {**opts, "label_smoothing": 0.1}, t, z)["value_and_grad"],
        smoothed["value_and_grad"],
        rtol=1e-13,
    )
    _, _, _, t, p, _ = CASES[IDS.index("cfce")]
    cce = evaluate("categorical_crossentropy", {}, t, p)["value_and_grad"]
    plain = evaluate("categorical_focal_crossentropy", {"alpha": 1.0, "gamma": 0.0}, t, p, keys=("value_and_grad",))
    chex.assert_trees_all_close(plain["value_and_grad"], cce, rtol=1e-13)


@pytest.mark.parametrize(
    "name,targets,output_activation,opts",
    [
        ("categorical_focal_crossentropy", "onehot", None, {"from_logits": True}),
        ("categorical_generalized_cross_entropy", "labels", "softmax", {}),
        ("dice", "bits", "sigmoid", {}),
        ("tversky", "bits", "sigmoid", {}),
    ],
)
def test_fit_trains_with_the_loss_by_name(name, targets, output_activation, opts):
    """A tiny network learns with each loss from fnn.losses.get: 14 samples in batches of 4 (the
    last one padded, so dice's and tversky's whole-batch sums leave the padding out)."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=(14, 3))
    labels = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0).astype(int)
    y = {"onehot": np.eye(3)[labels], "labels": labels, "bits": (x[:, :2] > 0).astype(float)}[targets]
    net = fnn.mlp([8, 2 if targets == "bits" else 3], output_activation=output_activation)
    params = net.init(jax.random.PRNGKey(0), (3,), jnp.float64)
    opt = fnn.optimizers.adam(0.05)
    res = fnn.fit(net, params, opt, L.get(name, **opts), x, y, batch_size=4, epochs=15, verbose=0)
    history = res.history["loss"]
    assert np.all(np.isfinite(history)) and history[-1] < 0.6 * history[0], history


def test_check_targets_takes_the_output_s_shape_and_refuses_anything_else_naming_it():
    labels = np.array([0, 2])
    L.check_targets("sparse_categorical_crossentropy", labels, (2, 3))
    L.check_targets("sparse_categorical_crossentropy", labels, [2, np.int64(3)])  # a list, NumPy ints
    L.check_targets("sparse_categorical_crossentropy", labels, np.array([2, 3]))  # a shape as an array
    L.check_targets("sparse_categorical_crossentropy", labels, (jnp.int32(2), 3.0))  # whole numbers
    for bad in (np.zeros((2, 3)), jnp.zeros((2, 3)), (2, 2.5), (2, -3), "2,3", None, (2, None)):
        with pytest.raises(TypeError, match=r"^y_pred_shape must be a tuple of ints \(the shape of the network"):
            L.check_targets("sparse_categorical_crossentropy", labels, bad)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\)"):
        L.check_targets("sparse_categorical_crossentropy", labels, (2, 2))
