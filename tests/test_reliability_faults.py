"""Faults during training: non-finite losses, gradients at kinks and extremes, failed or killed
checkpoint writes, interrupted and resumed runs, determinism, and float64 / bfloat16 end to end.

Every comparison of a resumed or repeated run is bit for bit (CPU), through the raw bytes of
each leaf. The uninterrupted reference run is computed once per module, and every run of the
same settings reuses its compiled epoch. The fits pass ``unroll=1`` (the loop body compiled
once, not twice: unrolling is not what is tested here). The subprocess test and the multi-run
end-to-end checks (determinism across keys, bfloat16 training) are marked ``slow``.
"""

import io
import os
import subprocess
import sys
import textwrap
import warnings

import chex
import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import fnn
from fnn import checkpoint, data, optimizers as O
from fnn.callbacks import Callback, TerminateOnNaN

KEY = jax.random.PRNGKey(0)
RUN_KEY = jax.random.PRNGKey(7)
MSE = fnn.losses.get("mse")
OPT = O.adam(1e-2)
# Shuffling and dropout both draw from the key: a resumed run must replay both exactly.
DROPNET = fnn.serial(fnn.Dense(6, "relu"), fnn.Dropout(0.25), fnn.Dense(2))
RUN = dict(batch_size=3, key=RUN_KEY, verbose=0, validation_split=0.2, unroll=1)
EPOCHS = 4


def _problem(n=11, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)), rng.normal(size=(n, 2))


def _fresh(tree):
    """A copy of ``tree`` in new device buffers (train_step donates its arguments), made through
    NumPy: ``jnp.array`` would compile a copy program per shape and dtype."""
    return jax.tree.map(lambda a: jax.device_put(np.array(a)), tree)


def _bits(tree):
    return [(str(np.asarray(a).dtype), np.shape(a), np.asarray(a).tobytes()) for a in jax.tree.leaves(tree)]


def _same_run(a, b):
    assert _bits(a.params) == _bits(b.params)
    assert _bits(a.opt_state) == _bits(b.opt_state)
    assert a.history.epochs == b.history.epochs
    for name in ("loss", "val_loss"):
        np.testing.assert_array_equal(a.history[name], b.history[name])


@pytest.fixture(scope="module")
def full_run():
    x, y = _problem()
    params = DROPNET.init(KEY, (4,), jnp.float64)
    return params, fnn.fit(DROPNET, params, OPT, MSE, x, y, epochs=EPOCHS, **RUN)


# ---------------------------------------------------------------- interrupted and resumed runs


class Interrupt(Callback):
    """Raises ``exc`` at ``hook`` of epoch ``at``: a crash, a Ctrl-C, a pre-empted job."""

    def __init__(self, hook, at, exc):
        self.hook, self.at, self.exc = hook, at, exc

    def on_epoch_begin(self, epoch, ctx):
        if self.hook == "begin" and epoch == self.at:
            raise self.exc("interrupted")

    def on_epoch_end(self, epoch, logs, ctx):
        if self.hook == "end" and epoch == self.at:
            raise self.exc("interrupted")


@pytest.mark.parametrize(
    "hook,at,exc,saved_epochs",
    [
        ("begin", 2, KeyboardInterrupt, 2),  # after two epochs were saved
        ("end", 1, RuntimeError, 1),  # epoch 1 ran but its checkpoint was never written
        ("begin", 0, KeyboardInterrupt, None),  # nothing saved yet: resuming is a fresh start
    ],
)
def test_run_interrupted_by_an_exception_resumes_bit_identically(tmp_path, full_run, hook, at, exc, saved_epochs):
    params, full = full_run
    x, y = _problem()
    path = tmp_path / "run.npz"
    with pytest.raises(exc, match="interrupted"):
        fnn.fit(
            DROPNET, params, OPT, MSE, x, y, epochs=EPOCHS, checkpoint=path, callbacks=[Interrupt(hook, at, exc)], **RUN
        )
    if saved_epochs is None:
        assert not path.exists()
    else:
        ck = checkpoint.load(path)
        assert ck.epoch == saved_epochs and len(ck.history["history"]["loss"]) == saved_epochs
    resumed = fnn.fit(DROPNET, params, OPT, MSE, x, y, epochs=EPOCHS, checkpoint=path, **RUN)
    _same_run(resumed, full)
    assert os.listdir(tmp_path) == ["run.npz"]


def test_failed_save_mid_run_keeps_the_previous_checkpoint_and_resumes(tmp_path, monkeypatch, full_run):
    params, full = full_run
    x, y = _problem()
    path = tmp_path / "run.npz"
    real_savez, calls = np.savez, []

    def disk_full_on_third_save(f, **arrays):
        calls.append(1)
        if len(calls) == 3:
            buf = io.BytesIO()
            real_savez(buf, **arrays)
            f.write(buf.getvalue()[: len(buf.getvalue()) // 2])  # a truncated archive, then the crash
            raise OSError(28, "No space left on device")
        return real_savez(f, **arrays)

    monkeypatch.setattr(np, "savez", disk_full_on_third_save)
    with pytest.raises(OSError, match="No space left"):
        fnn.fit(DROPNET, params, OPT, MSE, x, y, epochs=EPOCHS, checkpoint=path, **RUN)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["run.npz"]  # no half-written temp file
    two = fnn.fit(DROPNET, params, OPT, MSE, x, y, epochs=2, **RUN)
    ck = checkpoint.load(path, params=two.params, opt_state=two.opt_state)
    assert ck.epoch == 2 and _bits(ck.params) == _bits(two.params)
    assert _bits(ck.opt_state) == _bits(two.opt_state)
    _same_run(fnn.fit(DROPNET, params, OPT, MSE, x, y, epochs=EPOCHS, checkpoint=path, **RUN), full)


@pytest.mark.slow
def test_process_killed_mid_write_leaves_the_previous_checkpoint_readable(tmp_path):
    path = tmp_path / "run.npz"
    script = textwrap.dedent(f"""
        import io, os
        import numpy as np
        from fnn import checkpoint
        checkpoint.save({str(path)!r}, params={{"w": np.arange(6.0)}}, epoch=1)
        real = np.savez
        def killed(f, **arrays):
            buf = io.BytesIO()
            real(buf, **arrays)
            f.write(buf.getvalue()[:300])
            f.flush()
            os._exit(17)        # no exception handler, no cleanup: the power went out
        np.savez = killed
        checkpoint.save({str(path)!r}, params={{"w": np.zeros(6)}}, epoch=2)
    """)
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=300, check=False)
    assert proc.returncode == 17, proc.stderr.decode()[-2000:]
    ck = checkpoint.load(path, params={"w": np.zeros(6)})
    assert ck.epoch == 1
    np.testing.assert_array_equal(ck.params["w"], np.arange(6.0))
    stray = [f for f in os.listdir(tmp_path) if f != "run.npz"]
    assert len(stray) == 1 and stray[0].startswith(".run.npz.") and stray[0].endswith(".tmp")
    checkpoint.save(path, params={"w": np.ones(6)}, epoch=2)  # the next save just works
    assert checkpoint.load(path, params={"w": np.zeros(6)}).epoch == 2


def test_truncated_checkpoint_stops_fit_and_is_left_for_inspection(tmp_path, full_run):
    params, _ = full_run
    x, y = _problem()
    path = tmp_path / "run.npz"
    fnn.fit(DROPNET, params, OPT, MSE, x, y, epochs=1, checkpoint=path, **RUN)
    raw = path.read_bytes()
    for cut in (len(raw) - 1, len(raw) // 2, 10):
        path.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match=r"run.npz: not a readable fnn checkpoint"):
            fnn.fit(DROPNET, params, OPT, MSE, x, y, epochs=2, checkpoint=path, **RUN)
        assert path.read_bytes() == raw[:cut]


# ---------------------------------------------------------------- determinism


def test_same_key_gives_bit_identical_runs_and_other_keys_differ(full_run):
    params, full = full_run
    x, y = _problem()
    _same_run(fnn.fit(DROPNET, params, OPT, MSE, x, y, epochs=EPOCHS, **RUN), full)
    other = fnn.fit(DROPNET, params, OPT, MSE, x, y, epochs=EPOCHS, **{**RUN, "key": jax.random.PRNGKey(8)})
    assert all(
        not np.array_equal(a, b)
        for a, b in zip(jax.tree.leaves(other.params), jax.tree.leaves(full.params), strict=True)
    )
    assert other.history["loss"] != full.history["loss"]


@pytest.mark.slow  # six whole runs and two programs of their own
def test_shuffle_order_and_dropout_each_follow_the_key():
    x, y = _problem()
    plain = fnn.mlp([3, 2], activation="relu")  # RELU below: its fits in batches of 4 reuse this program
    p_plain = plain.init(KEY, (4,), jnp.float64)
    p_drop = DROPNET.init(KEY, (4,), jnp.float64)
    for name, net, p, shuffle, batch in (
        ("shuffle only", plain, p_plain, True, 4),
        ("dropout only", DROPNET, p_drop, False, 3),
    ):
        a, b, c = (
            fnn.fit(net, p, OPT, MSE, x, y, epochs=2, batch_size=batch, shuffle=shuffle, key=k, verbose=0, unroll=1)
            for k in (RUN_KEY, RUN_KEY, jax.random.PRNGKey(8))
        )
        assert _bits(a.params) == _bits(b.params), name
        assert _bits(a.params) != _bits(c.params), name
    assert _bits(DROPNET.init(KEY, (4,))) == _bits(DROPNET.init(KEY, (4,)))
    assert _bits(DROPNET.init(KEY, (4,))) != _bits(DROPNET.init(jax.random.PRNGKey(1), (4,)))


# ---------------------------------------------------------------- non-finite losses

RELU = fnn.mlp([3, 2], activation="relu")


def _overflowing(position, key):
    """Finite data (it passes the NaN check) with one sample of 1e200 whose loss overflows to inf;
    returns the data, the epoch-0 order fit uses, and the row of the bad sample."""
    x, y = _problem(11, seed=1)
    order = data.permutation(jax.random.split(jax.random.fold_in(key, 0))[0], 11)
    bad = int(order[0] if position == "first batch" else order[-1])
    x[bad] = 1e200
    return x, y, order


@pytest.mark.parametrize("position", ["first batch", "last, partial batch"])
def test_terminate_on_nan_stops_at_the_first_bad_batch_with_last_finite_state(tmp_path, position):
    key = jax.random.PRNGKey(3)
    x, y, order = _overflowing(position, key)
    params = RELU.init(KEY, (4,), jnp.float64)
    path = tmp_path / "nan.npz"
    res = fnn.fit(
        RELU,
        params,
        OPT,
        MSE,
        x,
        y,
        batch_size=4,
        epochs=3,
        key=key,
        verbose=0,
        unroll=1,
        callbacks=[TerminateOnNaN()],
        checkpoint=path,
    )
    assert res.history.stop_reason == "nan" and res.history.stopped_epoch == 0
    assert res.history.epochs_run == 1 and not np.isfinite(res.history["loss"][0])
    # Replay with the single-step API in fit's order (batches of 4, 4, 3).
    step = fnn.train_step(RELU, MSE, OPT)
    p, s = _fresh(params), OPT.init(params)
    good = 0
    for start in (0, 4, 8):
        idx = order[start : start + 4]
        new_p, new_s, value = step(_fresh(p), _fresh(s), jax.device_put(x[idx]), jax.device_put(y[idx]))
        if not np.isfinite(float(value)):
            break
        p, s, good = new_p, new_s, good + 1
    assert good == (0 if position == "first batch" else 2)
    chex.assert_trees_all_close(res.params, p, rtol=1e-12, atol=0)
    chex.assert_trees_all_close(res.opt_state, s, rtol=1e-12, atol=0)
    assert int(res.opt_state.count) == good
    assert all(np.all(np.isfinite(a)) for a in jax.tree.leaves((res.params, res.opt_state)))
    # the checkpoint written at the stop holds the same finite state
    ck = checkpoint.load(path, params=res.params, opt_state=res.opt_state)
    assert ck.epoch == 1 and _bits(ck.params) == _bits(res.params)


def test_without_terminate_on_nan_fit_warns_once_pointing_at_the_caller():
    key = jax.random.PRNGKey(3)
    x, y, _ = _overflowing("first batch", key)
    params = RELU.init(KEY, (4,), jnp.float64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fnn.fit(RELU, params, OPT, MSE, x, y, batch_size=4, epochs=3, key=key, verbose=0, unroll=1)
    hits = [w for w in caught if issubclass(w.category, RuntimeWarning) and "non-finite" in str(w.message)]
    assert len(hits) == 1, [str(w.message) for w in caught]
    assert "epoch 1" in str(hits[0].message) and "TerminateOnNaN" in str(hits[0].message)
    assert hits[0].filename == __file__  # stacklevel points at this call
    assert res.history.epochs_run == 3 and res.history.stop_reason == "epochs"


# ---------------------------------------------------------------- gradients at kinks and extremes


def _both(net, loss, params, x, y):
    """(manual, autodiff) (value, grads), jitted together: one compilation per call."""
    manual = fnn.value_and_grad(net, loss, "manual")
    auto = fnn.value_and_grad(net, loss, "autodiff")
    return jax.jit(lambda p, a, b: (manual(p, a, b), auto(p, a, b)))(params, x, y)


def _finite(tree):
    return all(bool(np.all(np.isfinite(a))) for a in jax.tree.leaves(tree))  # NumPy: no program per shape


def test_relu_at_exactly_zero_gives_zero_subgradient():
    rng = np.random.default_rng(0)
    params = RELU.init(KEY, (4,), jnp.float64)
    params[0] = jax.device_put({"w": np.zeros((4, 3)), "b": np.zeros(3)})  # every pre-activation is 0
    x, y = rng.normal(size=(5, 4)), rng.normal(size=(5, 2))
    (value, g), (value_a, g_a) = _both(RELU, MSE, params, x, y)
    chex.assert_trees_all_close(g, g_a, rtol=1e-12, atol=0)
    out = np.asarray(params[1]["b"])  # h = 0, so y_pred = b1
    np.testing.assert_allclose([value, value_a], np.mean((out - y) ** 2), rtol=1e-12)
    d_out = 2 * (out - y) / y.size
    np.testing.assert_array_equal(g[0]["w"], 0)  # relu'(0) = 0
    np.testing.assert_array_equal(g[1]["w"], 0)
    np.testing.assert_allclose(g[1]["b"], d_out.sum(0), rtol=1e-12)


def test_mae_at_zero_residual_is_finite_and_matches_autodiff():
    net = fnn.mlp([2])
    rng = np.random.default_rng(1)
    params = net.init(KEY, (3,), jnp.float64)
    x = rng.normal(size=(6, 3))
    y = np.asarray(net.apply(params, x)).copy()
    y[::2] += rng.normal(size=(3, 2))  # half the residuals exactly 0
    mae = fnn.losses.get("mae")
    (value, g), (value_a, g_a) = _both(net, mae, params, x, y)
    r = np.asarray(net.apply(params, x)) - y
    d = np.where(r >= 0, 1.0, -1.0) / r.size  # the documented +1 at r == 0
    np.testing.assert_allclose([value, value_a], np.abs(r).mean(), rtol=1e-12)
    np.testing.assert_allclose(g[0]["w"], x.T @ d, rtol=1e-12)
    chex.assert_trees_all_close(g, g_a, rtol=1e-12)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_saturated_outputs_and_huge_logits_give_finite_exact_gradients(dtype):
    # Logits of +-1e4: sigmoid probabilities are exactly 0 and 1 (clipped inside the loss), and
    # the from_logits losses must not overflow.
    net = fnn.mlp([3])
    # placed from NumPy: an eager jnp.asarray compiles a program per shape and dtype
    params = jax.device_put([{"w": np.asarray([[1e4, -1e4, 1e4]], dtype), "b": np.zeros(3, dtype)}])
    x = jax.device_put(np.asarray([[1.0], [-1.0]], dtype))
    z = np.asarray(x, np.float64) @ np.asarray(params[0]["w"], np.float64)
    labels = np.array([1, 0])
    onehot = np.eye(3, dtype=np.float64)[labels]
    tol = dict(rtol=1e-5 if dtype == jnp.float32 else 1e-12, atol=0)
    cases = {
        "sparse_ce": (fnn.losses.get("sparse_categorical_crossentropy", from_logits=True), labels),
        "categorical_ce": (fnn.losses.get("categorical_crossentropy", from_logits=True), onehot),
        "binary_ce_logits": (fnn.losses.get("binary_crossentropy", from_logits=True), onehot),
    }
    log_q = z - z.max(1, keepdims=True)
    log_q -= np.log(np.exp(log_q).sum(1, keepdims=True))
    with np.errstate(over="ignore"):
        sigmoid = 1 / (1 + np.exp(-z))  # exp(1e4) = inf -> exactly 0
    for name, (loss, y) in cases.items():
        (value, g), (value_a, g_a) = _both(
            net, loss, params, x, jax.device_put(np.asarray(y, dtype if y.dtype.kind == "f" else None))
        )
        assert _finite((value, g)), name
        if name == "binary_ce_logits":
            dz = (sigmoid - onehot) / z.size
            want = np.mean(np.maximum(z, 0) - z * onehot + np.log1p(np.exp(-np.abs(z))))
        else:
            dz = (np.exp(log_q) - onehot) / len(z)
            want = np.mean(-log_q[np.arange(2), labels])
        np.testing.assert_allclose([value, value_a], want, **tol, err_msg=name)
        np.testing.assert_allclose(g[0]["w"], np.asarray(x, np.float64).T @ dz, **tol, err_msg=name)
        chex.assert_trees_all_close(g, g_a, **tol)
    # probabilities exactly 0 and 1 through a sigmoid output and the clipped binary CE
    sig = fnn.mlp([3], output_activation="sigmoid")
    bce = fnn.losses.get("binary_crossentropy")
    (value, g), (value_a, g_a) = _both(sig, bce, params, x, jax.device_put(np.asarray(onehot, dtype)))
    assert _finite((value, g)) and _finite(g_a)
    npdt = np.dtype(dtype)
    eps = npdt.type(1e-7)  # the clip bounds live in the data's dtype
    p = np.clip(sigmoid.astype(npdt), eps, npdt.type(1) - eps).astype(np.float64)
    want = np.mean(-(onehot * np.log(p) + (1 - onehot) * np.log(1 - p)))
    np.testing.assert_allclose([value, value_a], want, rtol=1e-4 if dtype == jnp.float32 else 1e-12)
    np.testing.assert_array_equal(g[0]["w"], 0)  # clipped: no gradient flows, like Keras
    chex.assert_trees_all_close(g, g_a, **tol)


ACTIVATIONS = [
    "sigmoid",
    "tanh",
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "gelu_tanh",
    "silu",
    "softplus",
    "softsign",
    "hard_sigmoid",
    "mish",
    "linear",
]


@pytest.mark.parametrize("dtype", [jnp.float32])  # float64 has 10^300 of headroom: nothing to learn
def test_inputs_of_1e6_give_finite_gradients_matching_autodiff(dtype):
    nets = {a: fnn.mlp([3, 2], activation=a) for a in ACTIVATIONS}
    # Dense's init does not depend on its activation: every net starts from these params. (Each
    # net's own init is a program of its own, equal to the others: 15 compilations of one program.)
    init = fnn.mlp([3, 2]).init(KEY, (2,), dtype)
    params = dict.fromkeys(nets, init)
    x = jax.device_put(np.asarray([[1e6, -1e6], [-1e6, 1e6], [1e6, 1e6], [0.0, -1e6]], dtype))
    y = jax.device_put(np.asarray(np.random.default_rng(0).normal(size=(4, 2)), dtype))

    @jax.jit
    def all_grads(ps):
        out = {}
        for a, net in nets.items():
            out[a] = (
                fnn.value_and_grad(net, MSE, "manual")(ps[a], x, y),
                fnn.value_and_grad(net, MSE, "autodiff")(ps[a], x, y),
            )
        return out

    for a, ((value, g), (value_a, g_a)) in all_grads(params).items():
        assert _finite((value, g)), a
        np.testing.assert_allclose(value, value_a, rtol=1e-6 if dtype == jnp.float32 else 1e-12, err_msg=a)
        scale = max(float(np.max(np.abs(l))) for l in jax.tree.leaves(g_a))
        for l, l_a in zip(jax.tree.leaves(g), jax.tree.leaves(g_a), strict=True):
            np.testing.assert_allclose(
                l, l_a, rtol=1e-4 if dtype == jnp.float32 else 1e-10, atol=1e-6 * scale, err_msg=a
            )


# ---------------------------------------------------------------- dtypes end to end


def _numpy_adam_linear(w, b, x, y, steps, lr=1e-2, b1=0.9, b2=0.999, eps=1e-8):
    """Full-batch Adam (torch.optim.Adam's rule) on y_pred = x w + b with MSE, in float64."""
    theta = [w.copy(), b.copy()]
    m = [np.zeros_like(t) for t in theta]
    v = [np.zeros_like(t) for t in theta]
    for t in range(1, steps + 1):
        r = x @ theta[0] + theta[1] - y
        d = 2 * r / r.size
        grads = [x.T @ d, d.sum(0)]
        for i, g in enumerate(grads):
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            theta[i] = theta[i] - lr / (1 - b1**t) * m[i] / (np.sqrt(v[i]) / np.sqrt(1 - b2**t) + eps)
    return theta, m, v


def test_float64_end_to_end_matches_a_numpy_adam_loop():
    net = fnn.mlp([2])
    params = net.init(KEY, (3,), jnp.float64)
    rng = np.random.default_rng(5)
    x32 = rng.normal(size=(8, 3)).astype(np.float32)
    y = rng.normal(size=(8, 2))
    res = fnn.fit(net, params, OPT, MSE, x32, y, batch_size=8, epochs=5, shuffle=False, verbose=0)
    (w, b), m, v = _numpy_adam_linear(
        np.asarray(params[0]["w"]), np.asarray(params[0]["b"]), x32.astype(np.float64), y, steps=5
    )
    # float32 moments or a float32 copy of the data would be off by ~1e-7, not 1e-13
    tight = dict(rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(res.params[0]["w"], w, **tight)
    np.testing.assert_allclose(res.params[0]["b"], b, **tight)
    np.testing.assert_allclose(res.opt_state.inner_state[0].mu[0]["w"], m[0], **tight)
    np.testing.assert_allclose(res.opt_state.inner_state[0].nu[0]["w"], v[0], rtol=1e-12, atol=1e-18)
    floats = [a for a in jax.tree.leaves((res.params, res.opt_state)) if jnp.issubdtype(a.dtype, jnp.floating)]
    assert {str(a.dtype) for a in floats} == {"float64"}
    # float32 data is cast exactly: the same run on the float64 values is bit-identical
    again = fnn.fit(net, params, OPT, MSE, x32.astype(np.float64), y, batch_size=8, epochs=5, shuffle=False, verbose=0)
    assert _bits(again.params) == _bits(res.params)
    out = fnn.evaluate(net, res.params, MSE, x32, y, batch_size=3)
    np.testing.assert_allclose(out["loss"], np.mean((x32.astype(np.float64) @ w + b - y) ** 2), rtol=1e-12)


@pytest.mark.slow  # bfloat16 training end to end: four runs, a checkpoint and a resume
def test_bfloat16_params_train_with_float32_moments(tmp_path):
    net = fnn.mlp([5, 2], activation="tanh")
    params = net.init(KEY, (4,), jnp.bfloat16)
    x, y = _problem(12, seed=2)
    # One full-batch step: the moments hold the gradient in float32. XLA on CPU computes bfloat16
    # in float32 and may skip the intermediate rounding (excess precision), so the gradient inside
    # fit agrees with a standalone one to a bfloat16 ulp, while mu and nu agree with each other to
    # float32 rounding -- which bfloat16 moments (8-bit mantissa) could not.
    one = fnn.fit(net, params, OPT, MSE, x, y, batch_size=12, epochs=1, shuffle=False, verbose=0)
    # (fit holds x in bfloat16 and the targets in float32, as Keras's losses take them)
    _, g = jax.jit(fnn.value_and_grad(net, MSE, "manual"))(
        params, jnp.asarray(x, jnp.bfloat16), jnp.asarray(y, jnp.float32)
    )
    # 1 - beta in the hyperparameters' float64 (x64 is on here), rounded to the moments' float32,
    # as torch takes 1 - beta2 in Python's double
    one_b1, one_b2 = np.float32(1 - 0.9), np.float32(1 - 0.999)
    for leaf, mu, nu, grad in zip(
        jax.tree.leaves(one.params),
        jax.tree.leaves(one.opt_state.inner_state[0].mu),
        jax.tree.leaves(one.opt_state.inner_state[0].nu),
        jax.tree.leaves(g),
        strict=True,
    ):
        assert leaf.dtype == jnp.bfloat16 and mu.dtype == nu.dtype == jnp.float32
        g_fit = np.asarray(mu) / one_b1
        np.testing.assert_allclose(nu, one_b2 * g_fit * g_fit, rtol=1e-5, atol=1e-30)
        np.testing.assert_allclose(g_fit, np.asarray(grad, np.float32), rtol=2**-7, atol=1e-6)
    # first Adam step = -lr * sign(g) (up to eps), rounded once into bfloat16
    for p0, p1, grad in zip(jax.tree.leaves(params), jax.tree.leaves(one.params), jax.tree.leaves(g), strict=True):
        g32 = np.asarray(grad, np.float32)
        step = (np.float32(-0.01) * g32 / (np.abs(g32) + np.float32(1e-8))).astype(ml_dtypes.bfloat16)
        want = (np.asarray(p0).astype(ml_dtypes.bfloat16) + step).astype(np.float32)
        np.testing.assert_allclose(np.asarray(p1, np.float32), want, rtol=2**-7, atol=1e-30)
    # a longer run: still bfloat16, finite, learning; and its checkpoint resumes bit-identically
    kw = dict(batch_size=4, key=RUN_KEY, verbose=0, unroll=1)
    full = fnn.fit(net, params, OPT, MSE, x, y, epochs=6, **kw)
    assert all(a.dtype == jnp.bfloat16 for a in jax.tree.leaves(full.params))
    assert np.all(np.isfinite(full.history["loss"])) and full.history["loss"][-1] < full.history["loss"][0]
    fnn.fit(net, params, OPT, MSE, x, y, epochs=2, checkpoint=tmp_path / "bf16.npz", **kw)
    resumed = fnn.fit(net, params, OPT, MSE, x, y, epochs=6, checkpoint=tmp_path / "bf16.npz", **kw)
    assert _bits(resumed.params) == _bits(full.params) and _bits(resumed.opt_state) == _bits(full.opt_state)
