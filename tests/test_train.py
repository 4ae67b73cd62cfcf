"""fit against an explicit NumPy float64 loop written from Keras's rules; steps, resume, NaN, caching.

Compilations are the cost here, so tests reuse each other's programs where the point allows:
fits of the same network, loss, batch size and shuffling on as many samples share one compiled
epoch (the rate lives in the optimizer state), and ``unroll=1`` compiles a loop body once where
the unrolling is not what a test is about. The run on a real data set is marked ``slow``.
"""

import concurrent.futures
import contextlib
import copy
import gc
import io
import json
import math
import pickle
import threading
import warnings

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import swapped

import fnn
from fnn import data, optimizers as O, schedules as S
from fnn.callbacks import Callback, EarlyStopping, ReduceLROnPlateau, TerminateOnNaN
from fnn.train import _epoch, _loop, _sums  # private: which epoch program fit took (the padded last batch)

KEY = jax.random.PRNGKey(0)
NET = fnn.mlp([3, 2], activation="tanh")
MSE = fnn.losses.get("mse")


def _problem(n=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)), rng.normal(size=(n, 2))


def _fresh(tree):
    """A copy of ``tree`` in new device buffers (train_step donates its arguments), made through
    NumPy: ``jnp.array`` would compile a copy program per shape and dtype."""
    return jax.tree.map(lambda a: jax.device_put(np.array(a)), tree)


def _numpy_mse_grads(p, x, y):
    """Forward/backward of tanh-Dense(3) -> Dense(2) with MSE, in float64 NumPy."""
    z1 = x @ p[0]["w"] + p[0]["b"]
    h = np.tanh(z1)
    out = h @ p[1]["w"] + p[1]["b"]
    r = out - y
    loss = np.mean(r**2)
    d_out = 2 * r / r.size
    dh = d_out @ p[1]["w"].T
    dz1 = dh * (1 - h**2)
    grads = [{"w": x.T @ dz1, "b": dz1.sum(0)}, {"w": h.T @ d_out, "b": d_out.sum(0)}]
    return loss, grads


def _keras_sgd_reference(p, x, y, *, lr, batch_size, epochs, orders):
    """Keras's loop: ceil(N/B) iterations, the last partial batch kept, epoch loss =
    batch-size-weighted mean of pre-update batch losses."""
    p = jax.tree.map(lambda a: np.array(a, np.float64), p)
    n = len(x)
    losses = []
    for e in range(epochs):
        order = orders[e]
        total = 0.0
        for it in range(math.ceil(n / batch_size)):
            idx = order[it * batch_size : (it + 1) * batch_size]
            value, g = _numpy_mse_grads(p, x[idx], y[idx])
            total += value * len(idx)
            p = jax.tree.map(lambda a, b: a - lr * b, p, g)
        losses.append(total / n)
    return p, losses


@jax.jit  # one program per kind of key (every epoch's), not an eager one per primitive
def _perm_key(key, epoch):
    return jax.random.split(jax.random.fold_in(key, epoch))[0]


def _perm(key, epoch, n):
    """The permutation fit draws for ``epoch`` (documented: fold_in(key, epoch), first split)."""
    return data.permutation(_perm_key(key, epoch), n)


@pytest.mark.parametrize("batch_size,shuffle", [(3, False), (3, True), (10, False), (1, True)])
def test_fit_sgd_equals_numpy_keras_loop(batch_size, shuffle):
    x, y = _problem()
    params = NET.init(KEY, (4,), jnp.float64)
    k = jax.random.PRNGKey(42)
    res = fnn.fit(
        NET, params, O.sgd(0.1), MSE, x, y, batch_size=batch_size, epochs=2, shuffle=shuffle, key=k, verbose=0
    )
    orders = [_perm(k, e, 10) if shuffle else np.arange(10) for e in range(2)]
    ref_p, ref_losses = _keras_sgd_reference(params, x, y, lr=0.1, batch_size=batch_size, epochs=2, orders=orders)
    assert res.history.iterations_per_epoch == math.ceil(10 / batch_size)
    np.testing.assert_allclose(res.history["loss"], ref_losses, rtol=1e-12)
    chex.assert_trees_all_close(res.params, ref_p, rtol=1e-12)
    # the caller's params are untouched (fit works on copies and donates those)
    chex.assert_trees_all_close(params, NET.init(KEY, (4,), jnp.float64))


@pytest.mark.parametrize(
    "impl", ["raw", "threefry2x32", "rbg", "unsafe_rbg"], ids=["raw key", "typed key", "rbg key", "unsafe_rbg key"]
)
def test_fit_shuffles_in_the_documented_order_whatever_the_key(impl):
    """Threefry keys (raw or typed: their epoch keys derived on the host) and rbg and
    unsafe_rbg keys (read from the device, a block of epochs at a time) give fit the orders
    permutation(split(fold_in(key, epoch))[0])."""
    x, y = _problem()
    params = NET.init(KEY, (4,), jnp.float64)
    k = jax.random.PRNGKey(42) if impl == "raw" else jax.random.key(42, impl=impl)
    res = fnn.fit(NET, params, O.sgd(0.1), MSE, x, y, batch_size=3, epochs=2, shuffle=True, key=k, verbose=0)
    orders = [_perm(k, e, 10) for e in range(2)]
    ref_p, ref_losses = _keras_sgd_reference(params, x, y, lr=0.1, batch_size=3, epochs=2, orders=orders)
    np.testing.assert_allclose(res.history["loss"], ref_losses, rtol=1e-12)
    chex.assert_trees_all_close(res.params, ref_p, rtol=1e-12)


@pytest.mark.parametrize(
    "impl", ["raw", "threefry2x32", "rbg", "unsafe_rbg"], ids=["raw key", "typed key", "rbg key", "unsafe_rbg key"]
)
def test_epoch_orders_drawn_in_blocks_are_each_epochs_documented_order(impl, monkeypatch):
    """fit takes its epochs' permutation keys KEY_BLOCK epochs at a time (so the next order is
    drawn while an epoch runs): threefry keys (raw or typed) derived on the host, with no
    program; other implementations read from the device, derived a key and an epoch at a time
    (vmapped, unsafe_rbg's split and fold_in would draw from the first alone). Every epoch's order, across block
    boundaries and with x64 on and off, is still permutation(split(fold_in(key, epoch))[0]) and
    its dropout key the second split, for one key (fit) and K stacked keys (fit_many); no block
    past the last epoch is asked for, and without Dropout no per-epoch key program runs. A
    threefry key's dropout keys come from the host too: no program for them either (each new
    key shape compiled one, ~0.15-0.2 s of a first fit of a Dropout network)."""
    block = _loop.KEY_BLOCK
    key = jax.random.PRNGKey(7) if impl == "raw" else jax.random.key(7, impl=impl)
    stacked = jax.jit(lambda k: jax.random.split(k, 3))(key)  # one program, not eager ones
    epochs = 2 * block + 5
    asked = []
    plain_call = _loop.call_through_store
    monkeypatch.setattr(
        _loop, "call_through_store", lambda f, role, *a, **k: asked.append(role) or plain_call(f, role, *a, **k)
    )

    @jax.jit  # the documented keys of one epoch, the key's and the stacked keys': one program, not eager ones
    def documented_keys(k, ks, epoch):
        split = lambda k: jax.random.split(jax.random.fold_in(k, epoch))
        perm_key, drop_key = split(k)  # unstacked in the program, not by an eager one
        return (perm_key, drop_key), [split(ks[i]) for i in range(len(ks))]

    def expected(k, ks, epoch):
        (perm_key, drop_key), perm_keys = documented_keys(k, ks, epoch)
        return (data.permutation(perm_key, 13), jax.random.key_data(drop_key)), [
            (data.permutation(pk, 13), jax.random.key_data(dk)) for pk, dk in perm_keys
        ]

    for x64 in (True, False):
        with jax.enable_x64(x64):
            one = _loop.epoch_inputs(_epoch.epoch_keys, key, n=13, shuffle=True, needs_key=True, epochs=epochs)
            many = _loop.epoch_inputs(
                fnn.train._many._split_keys, stacked, n=13, shuffle=True, needs_key=False, epochs=epochs
            )
            many_drop = _loop.epoch_inputs(
                fnn.train._many._split_keys, stacked, n=13, shuffle=False, needs_key=True, epochs=epochs
            )
            for epoch in (0, 1, block - 1, block, block + 1, 2 * block, epochs - 1):
                perm, drop = one(epoch)
                (want, want_drop), want_many = expected(key, stacked, epoch)
                assert perm.dtype == np.int32
                np.testing.assert_array_equal(perm, want)
                np.testing.assert_array_equal(jax.random.key_data(drop), want_drop)
                perms, none = many(epoch)
                assert none is None and perms.shape == (3, 13) and perms.dtype == np.int32
                no_perm, drops = many_drop(epoch)
                assert no_perm is None and drops.dtype == drop.dtype and drops.shape == (3, *drop.shape)
                for i in range(3):
                    np.testing.assert_array_equal(np.asarray(perms)[i], want_many[i][0])
                    np.testing.assert_array_equal(jax.random.key_data(drops)[i], want_many[i][1])
    blocks = [r for r in asked if r.endswith("_block")]
    if impl in ("rbg", "unsafe_rbg"):
        # three blocks cover the epochs, each asked for once per source and x64 setting (the
        # next one as soon as one is read)
        assert len(blocks) == 12 and blocks.count("epoch_keys_block") == blocks.count("_split_keys_block") == 6
    else:
        assert blocks == []  # threefry keys: the blocks come from the host
    # the dropout keys (Dropout only) come per epoch, from a program for other keys than threefry's
    rbg = impl in ("rbg", "unsafe_rbg")
    assert asked.count("epoch_keys") == asked.count("_split_keys") == (2 * 7 if rbg else 0)

    short = _loop.epoch_inputs(_epoch.epoch_keys, key, n=13, shuffle=True, needs_key=False, epochs=3)
    asked.clear()
    for epoch in range(3):
        short(epoch)
    # one program for a run shorter than a block; none for threefry keys
    assert asked == (["epoch_keys_block"] if impl in ("rbg", "unsafe_rbg") else [])


def test_without_callbacks_each_epoch_is_queued_before_the_last_is_recorded_and_trains_the_same(monkeypatch):
    """With nothing between epochs that reads or changes the state (no callback, checkpoint or
    TerminateOnNaN), fit and fit_many queue epoch e + 1 on the device before epoch e's sums are
    read and recorded; a fit with a callback records each epoch before the next runs. Both train
    to the same params, optimizer state and logs, bit for bit, and the times add up."""
    x, y = _problem(10)
    params = NET.init(KEY, (4,), jnp.float64)
    events = []
    plain_run, plain_append = _loop._run_epoch, fnn.History.append
    monkeypatch.setattr(_loop, "_run_epoch", lambda *a: events.append("run") or plain_run(*a))
    monkeypatch.setattr(fnn.History, "append", lambda h, *a, **k: events.append("record") or plain_append(h, *a, **k))
    kw = dict(batch_size=4, epochs=3, shuffle=True, key=jax.random.PRNGKey(5), validation_split=0.2, verbose=0)

    queued = fnn.fit(NET, params, O.adam(0.05), MSE, x, y, **kw)
    assert events == ["run", "run", "record", "run", "record", "record"]
    events.clear()
    with_callback = fnn.fit(NET, params, O.adam(0.05), MSE, x, y, callbacks=[Callback()], **kw)
    assert events == ["run", "record"] * 3
    chex.assert_trees_all_equal(queued.params, with_callback.params)
    chex.assert_trees_all_equal(queued.opt_state, with_callback.opt_state)
    assert queued.history.history == with_callback.history.history
    assert len(queued.history.times) == 3 and all(t > 0 for t in queued.history.times)

    events.clear()
    stacked = jax.device_put(jax.tree.map(lambda a: np.stack([a, a]), params))  # NumPy: no stack program
    many = fnn.fit_many(NET, stacked, O.adam(0.05), MSE, x, y, **kw)
    assert events == ["run", "run"] + ["record"] * 2 + ["run"] + ["record"] * 4  # a history per model
    chex.assert_trees_all_equal(jax.tree.map(lambda a: np.asarray(a)[1], many.params), queued.params)
    for name, values in queued.history.history.items():  # another program (vmapped): equal to the last bit or so
        np.testing.assert_allclose(many.histories[1][name], values, rtol=1e-13)


def test_validation_split_takes_the_last_samples_before_shuffling():
    x, y = _problem(10)
    params = NET.init(KEY, (4,), jnp.float64)
    res = fnn.fit(
        NET,
        params,
        O.sgd(0.1),
        MSE,
        x,
        y,
        batch_size=4,
        epochs=1,
        validation_split=0.3,
        key=jax.random.PRNGKey(1),
        verbose=0,
    )
    # 7 training samples -> ceil(7/4) = 2 iterations; validation = samples 7, 8, 9 at end-of-epoch weights
    assert res.history.iterations_per_epoch == 2
    orders = [_perm(jax.random.PRNGKey(1), 0, 7)]
    ref_p, ref_losses = _keras_sgd_reference(params, x[:7], y[:7], lr=0.1, batch_size=4, epochs=1, orders=orders)
    np.testing.assert_allclose(res.history["loss"], ref_losses, rtol=1e-12)
    np.testing.assert_allclose(res.history["val_loss"], [_numpy_mse_grads(ref_p, x[7:], y[7:])[0]], rtol=1e-12)


def test_the_history_is_the_dict_of_logged_values_as_keras_gives_it():
    x, y = _problem(10)
    res = fnn.fit(NET, NET.init(KEY, (4,), jnp.float64), O.sgd(0.1), MSE, x, y, batch_size=4, epochs=3,
                  validation_split=0.2, metrics=["mae"], verbose=0)  # fmt: skip
    h = res.history
    # SPEC: history is a dict name -> list (one per epoch); Keras's History.history / .epoch too
    assert isinstance(h, dict) and h.history is h and h.epoch == h.epochs == [0, 1, 2]
    assert sorted(h) == sorted(h.keys()) == ["loss", "mae", "val_loss", "val_mae"] and len(h) == 4
    assert all(isinstance(v, list) and len(v) == 3 and all(isinstance(f, float) for f in v) for v in h.values())
    assert dict(h.items()) == h and h.get("accuracy") is None and h.get("loss") is h["loss"]
    assert json.loads(json.dumps(h)) == dict(h)
    with pytest.raises(KeyError):
        h["accuracy"]
    # bookkeeping beside the dict survives the checkpoint's round trip; the copy is not shared
    back = fnn.History.from_dict(json.loads(json.dumps(h.to_dict())))
    assert back == h and back.epochs == h.epochs and back.iterations_per_epoch == 2
    assert back.stop_reason == "epochs" and back.times == h.times
    back["loss"].append(0.0)
    assert len(h["loss"]) == 3


def test_reprs_show_what_a_callback_logged_and_summarise_arrays():
    """A callback may log any value (Keras's History takes any): the repr rounds numbers and
    shows a str or None as it is; FitResult and SweepResult give their arrays' count and size."""
    h = fnn.History(iterations_per_epoch=2)
    h.append(0, {"loss": 0.123456789, "phase": "warmup", "note": None, "stopped": False}, seconds=0.1)
    h.append(1, {"loss": 2, "phase": "main", "note": None, "stopped": True, "x": np.zeros((2, 3))}, seconds=0.1)
    last = "{'loss': 2, 'phase': 'main', 'note': None, 'stopped': True, 'x': <array (2, 3) float64>}"
    assert repr(h) == f"History(epochs_run=2, iterations_per_epoch=2, last={last})"
    params = [{"w": np.zeros((2, 4, 3)), "b": np.zeros((2, 3))}]
    assert (
        repr(fnn.FitResult(params, (), h))
        == f"FitResult(params=<2 arrays, 30 values>, opt_state=<0 arrays, 0 values>, history={h!r})"
    )
    sweep = fnn.SweepResult(params, {"count": np.zeros(2)}, [h, h], [{"seed": 0}, {"seed": 1}])
    assert repr(sweep) == (
        "SweepResult(models=2, params=<2 arrays, 30 values>, opt_state=<1 arrays, 2 values>, "
        f"configs=[{{'seed': 0}}, {{'seed': 1}}], histories=[{h!r}, {h!r}])"
    )


def test_fit_takes_every_loss_form_evaluate_takes():
    """A plain callable (grad="autodiff") and a loss built with fnn.losses.custom (its hand-written
    gradient, grad="manual") both train as Keras's loop says; fit_many takes the custom loss too,
    and evaluate agrees with the history."""
    x, y = _problem()
    params = NET.init(KEY, (4,), jnp.float64)
    ref_p, ref_losses = _keras_sgd_reference(params, x, y, lr=0.1, batch_size=4, epochs=2, orders=[np.arange(10)] * 2)
    plain = lambda t, p: jnp.mean((t - p) ** 2)
    mine = fnn.losses.custom(
        "my_mse", lambda t, p: jnp.mean((t - p) ** 2, axis=-1), lambda t, p: 2 * (p - t) / p.shape[-1]
    )
    kw = dict(batch_size=4, epochs=2, shuffle=False, verbose=0, unroll=1)
    for loss, grad in [(plain, "autodiff"), (mine, "manual"), (mine, "autodiff")]:
        res = fnn.fit(NET, params, O.sgd(0.1), loss, x, y, grad=grad, **kw)
        np.testing.assert_allclose(res.history["loss"], ref_losses, rtol=1e-12)
        chex.assert_trees_all_close(res.params, ref_p, rtol=1e-12)
        assert fnn.evaluate(NET, res.params, loss, x, y)["loss"] == pytest.approx(
            _numpy_mse_grads(ref_p, x, y)[0], rel=1e-12
        )
    many = fnn.fit_many(
        NET, jax.device_put(jax.tree.map(lambda a: np.stack([a, a]), params)), O.sgd(0.1), mine, x, y, **kw
    )
    for h in many.histories:
        np.testing.assert_allclose(h["loss"], ref_losses, rtol=1e-12)
    with pytest.raises(TypeError, match="Plain callables train with grad='autodiff'"):
        fnn.fit(NET, params, O.sgd(0.1), plain, x, y, grad="manual", **kw)


def test_tuple_params_train_and_come_back_a_tuple_with_either_gradient():
    """fit and train_step on params given as a tuple, with the hand-written gradient as with
    jax.grad's: Keras's loop, and the params come back in their own container."""
    x, y = _problem()
    params = NET.init(KEY, (4,), jnp.float64)
    ref_p, ref_losses = _keras_sgd_reference(params, x, y, lr=0.1, batch_size=4, epochs=2, orders=[np.arange(10)] * 2)
    kw = dict(batch_size=4, epochs=2, shuffle=False, verbose=0, unroll=1)
    for grad in ("manual", "autodiff"):
        res = fnn.fit(NET, tuple(params), O.sgd(0.1), MSE, x, y, grad=grad, **kw)
        assert type(res.params) is tuple
        np.testing.assert_allclose(res.history["loss"], ref_losses, rtol=1e-12)
        chex.assert_trees_all_close(list(res.params), ref_p, rtol=1e-12)
    opt = O.sgd(0.1)
    new_p, _, _ = fnn.train_step(NET, MSE, opt)(_fresh(tuple(params)), opt.init(tuple(params)), x, y)
    _, g = _numpy_mse_grads(jax.tree.map(np.asarray, params), x, y)
    assert type(new_p) is tuple
    chex.assert_trees_all_close(list(new_p), jax.tree.map(lambda a, b: np.asarray(a) - 0.1 * b, params, g), rtol=1e-12)


def test_a_plain_loss_giving_one_value_per_sample_is_refused_before_compiling(compiles):
    """Keras's custom-loss form (one value per sample, which Keras averages) is
    fnn.losses.custom's in fnn; as a plain callable, with or without weights, it is refused
    naming loss, the shape it returned and that door, before anything compiles (fit's checks),
    or while the step is traced (train_step, eval_step)."""
    x, y = _problem()
    params = NET.init(KEY, (4,), jnp.float64)
    stacked = jax.device_put(jax.tree.map(lambda a: np.stack([a, a]), params))
    w = np.linspace(0.5, 2.0, 10)
    opt = O.sgd(0.1)
    state = opt.init(params)
    per_sample = lambda t, p: jnp.mean((t - p) ** 2, axis=-1)

    def weighed(t, p, sample_weight=None):
        per = jnp.mean((t - p) ** 2, axis=-1)
        return per if sample_weight is None else per * sample_weight

    door = r"returned an array of shape \(10,\); a plain callable loss.*fnn\.losses\.custom\(name, fn\)"
    kw = dict(batch_size=4, epochs=2, verbose=0, grad="autodiff")
    with compiles() as c:
        for loss, name, weights in ((per_sample, "<lambda>", {}), (weighed, "weighed", {"sample_weight": w})):
            with pytest.raises(ValueError, match=rf"^loss {name} {door}"):
                fnn.fit(NET, params, opt, loss, x, y, **weights, **kw)
            with pytest.raises(ValueError, match=rf"^loss {name} {door}"):
                fnn.evaluate(NET, params, loss, x, y, **weights)
        with pytest.raises(ValueError, match=rf"^loss <lambda> {door}"):
            fnn.fit_many(NET, stacked, opt, per_sample, x, y, **kw)
        with pytest.raises(ValueError, match=rf"^loss <lambda> {door}"):
            fnn.eval_step(NET, per_sample)(params, x, y)
        with pytest.raises(ValueError, match=rf"^loss <lambda> {door}"):
            fnn.train_step(NET, per_sample, opt, grad="autodiff")(params, state, x, y)
    assert c.count == 0


def test_manual_and_autodiff_fit_give_the_same_params_and_second_fit_compiles_nothing(compiles):
    x, y = _problem(13)
    params = NET.init(KEY, (4,), jnp.float64)
    opt = O.adam(1e-2)
    kw = dict(batch_size=4, epochs=3, key=KEY, verbose=0, metrics=["mae"], validation_split=0.25, unroll=1)
    manual = fnn.fit(NET, params, opt, MSE, x, y, grad="manual", **kw)
    auto = fnn.fit(NET, params, opt, MSE, x, y, grad="autodiff", **kw)
    chex.assert_trees_all_close(manual.params, auto.params, rtol=1e-10)
    np.testing.assert_allclose(manual.history["val_mae"], auto.history["val_mae"], rtol=1e-10)
    with compiles() as c:
        again = fnn.fit(NET, params, opt, fnn.losses.get("mse"), x, y, grad="manual", **kw)
    assert c.count == 0
    chex.assert_trees_all_close(again.params, manual.params, rtol=0, atol=0)


def test_a_schedule_built_afresh_with_the_same_arguments_compiles_nothing(compiles):
    """Issue 18: schedules compare by value, so an optimizer built with a new but equal schedule
    has an equal ``update`` and fit's cached epoch serves it."""
    x, y = _problem(13)
    params = NET.init(KEY, (4,), jnp.float64)
    kw = dict(batch_size=4, epochs=2, key=KEY, verbose=0, unroll=1)
    first = fnn.fit(NET, params, O.adam(S.exponential_decay(0.1, 2, 0.5)), MSE, x, y, **kw)
    with compiles() as c:
        again = fnn.fit(NET, params, O.adam(S.exponential_decay(0.1, 2, 0.5)), MSE, x, y, **kw)
    assert c.count == 0
    chex.assert_trees_all_close(again.params, first.params, rtol=0, atol=0)
    # the schedule ran: 2 epochs of 4 batches, the rate after them 0.1 * 0.5**(8 / 2)
    assert float(O.get_learning_rate(again.opt_state)) == pytest.approx(0.1 * 0.5**4, rel=1e-15)


def test_a_copied_or_unpickled_optimizer_trains_with_its_own_array_hyperparameter(compiles):
    """The issue: scale_by_adam(b1=jnp.asarray(0.9)) deep-copied or pickled, the original freed,
    compared equal to a new b1=0.5 one (an id reused) and fit trained it with that one's epoch.
    Keyed by value, each trains with its own b1; a copied or unpickled optimizer and network
    equal to ones fit has seen still compile nothing."""
    x, y = _problem(12)
    params = NET.init(KEY, (4,), jnp.float64)
    kw = dict(batch_size=4, epochs=2, shuffle=False, verbose=0, unroll=1)
    opt = lambda b1: O.chain(O.scale_by_adam(b1=b1), O.scale_by_learning_rate(0.1))
    want = {b1: fnn.fit(NET, params, opt(jnp.asarray(b1)), MSE, x, y, **kw).history["loss"] for b1 in (0.9, 0.5)}
    assert not np.allclose(want[0.9], want[0.5])
    np.testing.assert_allclose(fnn.fit(NET, params, opt(0.9), MSE, x, y, **kw).history["loss"], want[0.9], rtol=1e-12)
    for copy_of in (copy.deepcopy, lambda o: pickle.loads(pickle.dumps(o))):
        original = opt(jnp.asarray(0.9))
        restored = copy_of(original)
        del original
        gc.collect()
        other = opt(jnp.asarray(0.5))
        assert restored != other
        with compiles() as c:  # equal values: the epochs compiled for them serve
            got = {0.9: fnn.fit(copy_of(NET), params, restored, MSE, x, y, **kw).history["loss"]}
            got[0.5] = fnn.fit(NET, params, other, MSE, x, y, **kw).history["loss"]
        assert c.count == 0
        assert got == want


def _numpy_scheduled_adam(p, x, y, rates, *, batch_size, epochs, b1=0.9, b2=0.999, eps=1e-8):
    """torch.optim.Adam's rule on NET with MSE, batches in order, in float64 NumPy, the rate of
    update t being ``rates[t]``."""
    p = jax.tree.map(lambda a: np.array(a, np.float64), p)
    m, v = jax.tree.map(np.zeros_like, p), jax.tree.map(np.zeros_like, p)
    t = 0
    for _ in range(epochs):
        for i in range(0, len(x), batch_size):
            _, g = _numpy_mse_grads(p, x[i : i + batch_size], y[i : i + batch_size])
            lr, t = float(rates[t]), t + 1
            m = jax.tree.map(lambda m_, g_: b1 * m_ + (1 - b1) * g_, m, g)
            v = jax.tree.map(lambda v_, g_: b2 * v_ + (1 - b2) * g_ * g_, v, g)
            p = jax.tree.map(
                lambda p_, m_, v_: p_ - lr / (1 - b1**t) * m_ / (np.sqrt(v_) / np.sqrt(1 - b2**t) + eps), p, m, v
            )
    return p


def test_a_schedule_with_other_values_compiles_nothing_and_resumes_from_a_checkpoint(tmp_path, compiles):
    """A schedule's values are data in the optimizer state: fit with adam(cosine_decay(1e-2, 100))
    after adam(cosine_decay(3e-3, 100)) compiles nothing, each trains as Adam in float64 with
    the rate of the schedule called directly, and a checkpointed run resumes bit for bit; a
    state given with an optimizer of other schedule values keeps the state's (and says so)."""
    x, y = _problem(12)
    params = NET.init(KEY, (4,), jnp.float64)
    kw = dict(batch_size=4, shuffle=False, verbose=0, unroll=1)
    first = fnn.fit(NET, params, O.adam(S.cosine_decay(3e-3, 100)), MSE, x, y, epochs=2, **kw)
    with compiles() as c:
        second = fnn.fit(NET, params, O.adam(S.cosine_decay(1e-2, 100)), MSE, x, y, epochs=2, **kw)
    assert c.count == 0
    # both schedules' rates: one program, not one per schedule or per op
    both_rates = jax.jit(lambda steps: [S.cosine_decay(rate, 100)(steps) for rate in (3e-3, 1e-2)])(np.arange(6))
    for run, rates in zip((first, second), both_rates, strict=True):
        rates = np.asarray(rates)
        want = _numpy_scheduled_adam(params, x, y, rates, batch_size=4, epochs=2)
        chex.assert_trees_all_close(run.params, want, rtol=1e-12, atol=1e-15)
    path = str(tmp_path / "run.npz")
    part = fnn.fit(NET, params, O.adam(S.cosine_decay(1e-2, 100)), MSE, x, y, epochs=1, checkpoint=path, **kw)
    resumed = fnn.fit(NET, params, O.adam(S.cosine_decay(1e-2, 100)), MSE, x, y, epochs=2, checkpoint=path, **kw)
    assert part.history.epochs_run == 1 and resumed.history.epochs == [0, 1]
    chex.assert_trees_all_close((resumed.params, resumed.opt_state), (second.params, second.opt_state), rtol=0, atol=0)
    other = O.adam(S.cosine_decay(3e-3, 100))
    with pytest.warns(RuntimeWarning, match=r"learning_rate schedule values .*init_value=0\.01.* \(opt says fnn\."):
        kept = fnn.fit(NET, part.params, other, MSE, x, y, epochs=1, opt_state=part.opt_state, **kw)
    chex.assert_trees_all_close(kept.params, second.params, rtol=0, atol=0)


def test_fits_that_differ_in_optimizer_and_batch_size_share_one_validation_program():
    """The validation pass is a program of its own, on the network, loss and metrics alone: a
    second fit with another optimizer family and batch size compiles its epoch and nothing else,
    and every fit's ``val_*`` are what ``evaluate`` gives on the validation data with its
    params (the last epoch's)."""
    net = fnn.mlp([7, 2], activation="tanh")  # a width no other test uses: nothing compiled yet
    x, y = _problem(23)
    x_val, y_val = _problem(9, seed=1)
    params = net.init(KEY, (4,), jnp.float64)
    kw = dict(epochs=2, key=KEY, verbose=0, metrics=["mae"], validation_data=(x_val, y_val))
    names = []

    def listener(event, duration, **info):
        if event == "/jax/core/compile/backend_compile_duration":
            names.append(info.get("fun_name"))

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        runs = [
            fnn.fit(net, params, O.sgd(0.1), MSE, x, y, batch_size=4, **kw),
            fnn.fit(net, params, O.adam(0.01), MSE, x, y, batch_size=8, **kw),
            fnn.fit(net, params, O.rmsprop(0.01), MSE, x, y, batch_size=4, validation_batch_size=4, **kw),
        ]
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    # the third asks for other validation batches: a validation program of its own
    assert names.count("jit(validation)") == 2 and names.count("jit(epoch)") == 3
    for run, val_batch in zip(runs, (None, None, 4), strict=True):
        ref = fnn.evaluate(net, run.params, MSE, x_val, y_val, metrics=["mae"], batch_size=val_batch or 1024)
        assert len(run.history["val_loss"]) == 2
        np.testing.assert_allclose(run.history["val_loss"][-1], ref["loss"], rtol=1e-12)
        np.testing.assert_allclose(run.history["val_mae"][-1], ref["mae"], rtol=1e-12)
    assert runs[0].history["val_loss"] != runs[1].history["val_loss"]  # the runs' own params


def test_terminate_on_nan_returns_last_finite_params_and_says_why():
    x, y = _problem(12)
    x = x * 1e3
    params = NET.init(KEY, (4,), jnp.float64)
    res = fnn.fit(
        NET,
        params,
        O.sgd(1e6),
        MSE,
        x,
        y,
        batch_size=2,
        epochs=50,
        shuffle=False,
        callbacks=[TerminateOnNaN()],
        verbose=0,
    )
    assert res.history.stop_reason == "nan" and 1 <= res.history.epochs_run < 50
    assert not np.isfinite(res.history["loss"][-1]) and np.all(np.isfinite(res.history["loss"][:-1]))
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(res.params))  # NumPy: no program
    # Reproduce by hand: step until the first non-finite batch loss; fit returns the params before it.
    step = fnn.train_step(NET, MSE, O.sgd(1e6))
    p, s = _fresh(params), O.sgd(1e6).init(params)
    done = False
    for _ in range(res.history.epochs_run):
        for i in range(6):
            last = _fresh(p)
            p, s, value = step(p, s, jax.device_put(x[2 * i : 2 * i + 2]), jax.device_put(y[2 * i : 2 * i + 2]))
            if not np.isfinite(float(value)):
                done = True
                break
        if done:
            break
    assert done
    chex.assert_trees_all_close(res.params, last, rtol=0, atol=0)


def test_nonfinite_loss_without_callback_warns_at_epoch_end():
    x, y = _problem(10)  # 10 samples in batches of 3, unshuffled: the program of test_fit_sgd_equals_numpy_keras_loop
    params = NET.init(KEY, (4,), jnp.float64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fnn.fit(NET, params, O.sgd(1e6), MSE, x * 1e3, y, batch_size=3, epochs=40, shuffle=False, verbose=0)
    assert res.history.epochs_run == 40 and not np.isfinite(res.history["loss"][-1])
    nonfinite = [w for w in caught if "non-finite" in str(w.message)]
    assert len(nonfinite) == 1 and nonfinite[0].category is RuntimeWarning  # once, not every epoch


def test_reduce_lr_on_plateau_changes_the_rate_without_recompiling(compiles):
    x, y = _problem(10)  # one unshuffled batch of 10: the program of test_fit_sgd_equals_numpy_keras_loop
    params = NET.init(KEY, (4,), jnp.float64)
    opt = O.sgd(0.8)
    # compile once (with a rate-setting callback: fit probes once, cached, whether opt's update reads the rate)
    warm = ReduceLROnPlateau(monitor="loss")
    fnn.fit(NET, params, opt, MSE, x, y, batch_size=10, epochs=1, shuffle=False, verbose=0, callbacks=[warm])
    # min_delta=10 means no epoch ever counts as an improvement: the rate halves every epoch after the first
    cb = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=10.0)
    with compiles() as c:
        res = fnn.fit(NET, params, opt, MSE, x, y, batch_size=10, epochs=5, shuffle=False, verbose=0, callbacks=[cb])
    assert c.count == 0
    np.testing.assert_allclose(float(O.get_learning_rate(res.opt_state)), 0.8 * 0.5**4, rtol=1e-12)
    # logged: the rate each epoch ran with (reduced at the end of epochs 2..5)
    np.testing.assert_allclose(res.history["learning_rate"], [0.8, 0.8, 0.4, 0.2, 0.1], rtol=1e-12)


def test_early_stopping_restores_best_weights_in_fit():
    x, y = _problem(10)
    params = NET.init(KEY, (4,), jnp.float64)
    es = EarlyStopping(monitor="loss", patience=1, restore_best_weights=True)
    # A huge rate makes the loss bounce; the restored weights are those of the best epoch.
    res = fnn.fit(NET, params, O.sgd(3.0), MSE, x, y, batch_size=10, epochs=8, shuffle=False, verbose=0, callbacks=[es])
    losses = res.history["loss"]
    best = int(np.argmin(losses))
    # the loss reported for epoch e is measured before epoch e's update: the weights after epoch best-1
    replay = fnn.fit(NET, params, O.sgd(3.0), MSE, x, y, batch_size=10, epochs=best + 1, shuffle=False, verbose=0)
    chex.assert_trees_all_close(res.params, replay.params, rtol=0, atol=0)


def test_checkpoint_resume_is_bit_identical(tmp_path):
    x, y = _problem(11)
    # (the network and settings of test_reliability_faults' reference run: one compiled epoch for both)
    net = fnn.serial(fnn.Dense(6, "relu"), fnn.Dropout(0.25), fnn.Dense(2))
    params = net.init(KEY, (4,), jnp.float64)
    opt = O.adam(1e-2)
    kw = dict(batch_size=3, key=jax.random.PRNGKey(9), verbose=0, validation_split=0.2, unroll=1)
    full = fnn.fit(net, params, opt, MSE, x, y, epochs=4, **kw)
    path = str(tmp_path / "run.npz")
    part = fnn.fit(net, params, opt, MSE, x, y, epochs=2, checkpoint=path, **kw)  # "interrupted" after 2
    resumed = fnn.fit(net, params, opt, MSE, x, y, epochs=4, checkpoint=path, **kw)
    assert part.history.epochs_run == 2 and resumed.history.epochs == [0, 1, 2, 3]
    chex.assert_trees_all_close(resumed.params, full.params, rtol=0, atol=0)
    chex.assert_trees_all_close(resumed.opt_state, full.opt_state, rtol=0, atol=0)
    np.testing.assert_array_equal(resumed.history["loss"], full.history["loss"])


@pytest.mark.slow
def test_digits_reaches_96_percent_test_accuracy():
    (x_tr, y_tr), (x_te, y_te) = fnn.datasets.load("digits")
    net = fnn.mlp([64, 64, 10])
    params = net.init(KEY, (x_tr.shape[1],))
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    res = fnn.fit(
        net, params, O.adam(1e-3), loss, x_tr, y_tr, batch_size=32, epochs=30, key=KEY, verbose=0, metrics=["accuracy"]
    )
    out = fnn.evaluate(net, res.params, loss, x_te, y_te, metrics=["accuracy"])
    assert out["accuracy"] >= 0.96, out


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(batch_size=0), "batch_size"),
        (dict(epochs=-1), "epochs"),
        (dict(validation_split=1.0), "validation_split"),
        (dict(grad="numeric"), "grad"),
        (dict(verbose=3), "verbose"),
    ],
)
def test_bad_arguments_raise_before_compiling(kwargs, match):
    x, y = _problem(6)
    params = NET.init(KEY, (4,), jnp.float64)
    with pytest.raises((ValueError, TypeError), match=match):
        fnn.fit(NET, params, O.sgd(0.1), MSE, x, y, **kwargs)


def test_bad_output_paths_fail_before_anything_is_compiled(tmp_path, compiles):
    from fnn.callbacks import CSVLogger, ModelCheckpoint

    x, y = _problem()
    params = NET.init(KEY, (4,), jnp.float64)
    (tmp_path / "f").write_text("")
    with compiles() as c:
        with pytest.raises(ValueError, match="checkpoint .*f/ck.npz.*is a file, not a folder"):
            fnn.fit(NET, params, O.sgd(0.1), MSE, x, y, checkpoint=tmp_path / "f" / "ck.npz", verbose=0)
        with pytest.raises(ValueError, match="checkpoint .* is a folder; it must name a file"):
            fnn.fit(NET, params, O.sgd(0.1), MSE, x, y, checkpoint=tmp_path, verbose=0)
        with pytest.raises(ValueError, match="filepath .* is a file, not a folder"):
            ModelCheckpoint(str(tmp_path / "f" / "best.npz"))
        with pytest.raises(ValueError, match="filename .* is a folder"):
            CSVLogger(tmp_path)
    assert c.count == 0
    # a folder that does not exist yet is fine, and not created by the check (saving creates it)
    ModelCheckpoint(tmp_path / "new" / "best.npz")
    CSVLogger(tmp_path / "new" / "log.csv")
    assert not (tmp_path / "new").exists()


def test_a_plain_callable_loss_weighs_samples_only_through_its_sample_weight_keyword(compiles):
    x, y = _problem()
    params = NET.init(KEY, (4,), jnp.float64)
    w = np.linspace(0.5, 2.0, 10)
    plain = lambda t, p: jnp.mean((t - p) ** 2)
    kw = dict(batch_size=4, epochs=2, shuffle=False, verbose=0, unroll=1)
    with compiles() as c:
        for weights, name in (
            (dict(sample_weight=w), "sample_weight"),
            (dict(class_weight={0: 2.0}), "class_weight"),
            (dict(validation_data=(x, y, w)), r"validation_data\[2\]"),
        ):
            with pytest.raises(
                TypeError, match=rf"^{name} given, but the loss <lambda> is a plain callable.*losses\.custom"
            ):
                fnn.fit(NET, params, O.sgd(0.1), plain, x, y, grad="autodiff", **weights, **kw)
        with pytest.raises(TypeError, match="^sample_weight given, but the loss <lambda>"):
            fnn.evaluate(NET, params, plain, x, y, sample_weight=w)
    assert c.count == 0

    def weighted(t, p, sample_weight=None):  # Keras's sum_over_batch_size of the weighted values
        per_sample = jnp.mean((t - p) ** 2, axis=-1)
        return jnp.mean(per_sample if sample_weight is None else per_sample * sample_weight)

    mine = fnn.fit(
        NET, params, O.sgd(0.1), weighted, x, y, grad="autodiff", sample_weight=w, validation_data=(x, y, w), **kw
    )
    builtin = fnn.fit(NET, params, O.sgd(0.1), MSE, x, y, sample_weight=w, validation_data=(x, y, w), **kw)
    for name in ("loss", "val_loss"):
        np.testing.assert_allclose(mine.history[name], builtin.history[name], rtol=1e-12)
    chex.assert_trees_all_close(mine.params, builtin.params, rtol=1e-12)
    assert fnn.evaluate(NET, mine.params, weighted, x, y, sample_weight=w)["loss"] == pytest.approx(
        builtin.history["val_loss"][-1], rel=1e-12
    )


def test_unclear_errors_name_the_argument(compiles):
    from fnn.callbacks import EarlyStopping

    x, y = _problem()
    params = NET.init(KEY, (4,), jnp.float64)
    no_b = [{"w": params[0]["w"]}, params[1]]
    fit = lambda **kw: fnn.fit(NET, params, O.sgd(0.1), MSE, **{"x": x, "y": y, "verbose": 0, **kw})
    with compiles() as c:
        with pytest.raises(ValueError, match="y is required; got None"):
            fit(y=None)
        # these were AttributeErrors naming nothing, and a dict's keys were read as metric names
        with pytest.raises(ValueError, match=r"^validation_data\[1\] \(y_val\) is required; got None"):
            fit(validation_data=(x[:3], None))
        with pytest.raises(ValueError, match="^y is required; got None"):
            fnn.evaluate(NET, params, MSE, x, None)
        with pytest.raises(TypeError, match=r"^metrics must be a list .*got a dict .*an fnn network has one output"):
            fit(metrics={"out": ["mae"]})
        with pytest.raises(TypeError, match=r"callbacks\[0\] is the class EarlyStopping.*EarlyStopping\(\.\.\.\)"):
            fit(callbacks=[EarlyStopping])
        for call in (
            lambda: fnn.fit(NET, no_b, O.sgd(0.1), MSE, x, y, verbose=0),
            lambda: fnn.evaluate(NET, no_b, MSE, x, y),
        ):
            with pytest.raises(
                ValueError, match=r"params do not have the network's structure.*missing params\[0\]\['b'\]"
            ):
                call()
        with pytest.raises(
            ValueError, match=r"key must be a PRNG key: a raw key is uint32 of shape \(2,\).*got shape \(3,\)"
        ):
            fit(key=np.zeros(3, np.uint32))
        with pytest.raises(TypeError, match="x must hold numbers; got dtype timedelta64"):
            fit(x=x.astype("timedelta64[s]"))
    assert c.count == 0

    class Note(Callback):  # puts a string in the logs: the per-epoch line prints it as it is
        def on_epoch_end(self, epoch, logs, ctx=None):
            logs["note"] = "hello"

    fit(callbacks=[Note()], verbose=2, epochs=1, unroll=1)


def test_the_same_checkpointed_fit_twice_with_numpy_float64_params_and_x64_off(tmp_path):
    """Without x64, NumPy float64 params train as float32; the checkpoint written by the first
    call is read back by the second (which then has nothing left to train) with the same result."""
    x, y = _problem()
    with jax.enable_x64(False):
        params = jax.tree.map(lambda a: np.asarray(a, np.float64), NET.init(KEY, (4,)))
        kw = dict(epochs=2, batch_size=5, verbose=0, unroll=1, checkpoint=tmp_path / "ck.npz")
        first = fnn.fit(NET, params, O.sgd(0.1), MSE, x, y, **kw)
        second = fnn.fit(NET, params, O.sgd(0.1), MSE, x, y, **kw)
    assert jax.tree.leaves(first.params)[0].dtype == jnp.float32
    chex.assert_trees_all_equal(first.params, second.params)
    assert second.history["loss"] == first.history["loss"]


def test_bad_data_raises_with_names():
    x, y = _problem(6)
    params = NET.init(KEY, (4,), jnp.float64)
    with pytest.raises(ValueError, match="same number of samples"):
        fnn.fit(NET, params, O.sgd(0.1), MSE, x, y[:5], verbose=0)
    with pytest.raises(ValueError, match=r"expects 4 input features, got 3"):
        fnn.fit(NET, params, O.sgd(0.1), MSE, x[:, :3], y, verbose=0)
    bad = x.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="x"):
        fnn.fit(NET, params, O.sgd(0.1), MSE, bad, y, verbose=0)
    with pytest.raises(ValueError, match="shape"):
        fnn.fit(NET, params, O.sgd(0.1), MSE, x, y[:, :1], verbose=0)
    sce = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        fnn.fit(NET, params, O.sgd(0.1), sce, x, np.array([0, 1, 2, 0, 1, 0]), verbose=0)
    with pytest.raises(TypeError, match=r"opt must be .* or an optimizer name.*fnn\.optimizers\.names"):
        fnn.fit(NET, params, 0.01, MSE, x, y, verbose=0)
    with pytest.raises(ValueError, match="adamm.*adam"):  # an unknown name lists the known ones
        fnn.fit(NET, params, "adamm", MSE, x, y, verbose=0)


def test_checks_cached_between_fits_still_reject_what_does_not_fit():
    """fit caches its traced shape checks and remembers finite device arrays; neither may let a
    later call with other shapes, wider params or bad labels through."""
    x, y = _problem(6)
    params = NET.init(KEY, (4,), jnp.float64)
    xd, yd = jax.device_put(x), jax.device_put(y)
    xd3, yd1 = jax.device_put(x[:, :3]), jax.device_put(y[:, :1])  # placed, not sliced eagerly (a program each)
    for _ in range(2):  # the second round runs on the cached checks
        fnn.fit(NET, params, O.sgd(0.1), MSE, xd, yd, epochs=0, verbose=0)
        wider = fnn.mlp([5, 2], activation="tanh").init(KEY, (4,), jnp.float64)
        with pytest.raises(ValueError, match=r"params do not fit the network.*\(4, 5\).*\(4, 3\)"):
            fnn.fit(NET, wider, O.sgd(0.1), MSE, xd, yd, epochs=0, verbose=0)
        with pytest.raises(ValueError, match=r"expects 4 input features, got 3"):
            fnn.fit(NET, params, O.sgd(0.1), MSE, xd3, yd, epochs=0, verbose=0)
        with pytest.raises(ValueError, match="shape"):
            fnn.fit(NET, params, O.sgd(0.1), MSE, xd, yd1, epochs=0, verbose=0)
        sce = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
        labels = np.array([0, 1, 0, 0, 1, 0])
        fnn.fit(NET, params, O.sgd(0.1), sce, xd, labels, epochs=0, verbose=0)
        with pytest.raises(ValueError, match=r"\[0, 2\)"):  # same shapes, a bad value
            fnn.fit(NET, params, O.sgd(0.1), sce, xd, np.where(labels == 1, 2, 0), epochs=0, verbose=0)


def test_train_step_and_eval_step():
    x, y = _problem(6)
    params = NET.init(KEY, (4,), jnp.float64)
    opt = O.sgd(0.1)
    step = fnn.train_step(NET, MSE, opt)
    new_p, _, value = step(_fresh(params), opt.init(params), jax.device_put(x), jax.device_put(y))
    ref_loss, g = _numpy_mse_grads(jax.tree.map(np.asarray, params), x, y)
    np.testing.assert_allclose(value, ref_loss, rtol=1e-12)
    chex.assert_trees_all_close(new_p, jax.tree.map(lambda a, b: np.asarray(a) - 0.1 * b, params, g), rtol=1e-12)
    out = fnn.eval_step(NET, MSE, metrics=["mae"])(new_p, jax.device_put(x), jax.device_put(y))
    assert set(out) == {"loss", "mae"}


def test_train_step_and_eval_step_hold_the_batch_as_fit_and_evaluate_do():
    """With bfloat16 params and float32 data the steps computed the whole network in float32
    (fit, evaluate and predict move x into the params' dtype): eval_step's loss was not
    evaluate's, train_step's params not fit's. And the mistakes a loop makes are named."""
    net = fnn.mlp([6, 3], activation="tanh")
    params = net.init(KEY, (4,), jnp.bfloat16)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 4)).astype(np.float32), rng.integers(0, 3, 16)
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    assert float(fnn.eval_step(net, loss)(params, x, y)["loss"]) == fnn.evaluate(net, params, loss, x, y)["loss"]
    opt = O.sgd(0.5)
    fitted = fnn.fit(net, params, opt, loss, x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    step = fnn.train_step(net, loss, opt)
    p, s = jax.tree.map(jnp.copy, params), opt.init(params)
    for _ in range(2):
        p, s, _ = step(p, s, x, y)
    chex.assert_trees_all_equal(p, fitted.params)
    with pytest.raises(ValueError, match=r"^y is required; got None"):
        fnn.eval_step(net, loss)(params, x, None)
    with pytest.raises(ValueError, match=r"^y is required; got None"):
        step(p, s, x, None)
    for build in (lambda: fnn.train_step([fnn.Dense(3)], loss, opt), lambda: fnn.eval_step([fnn.Dense(3)], loss)):
        with pytest.raises(TypeError, match=r"^net must be a network with apply\(params, x\) .*got list$"):
            build()


def test_a_train_step_loop_with_fit_s_documented_orders_and_keys_is_fit_bit_for_bit():
    """fit's key doc: epoch e's ``split(fold_in(key, e))``, the first key's
    ``fnn.data.permutation`` for its order, ``fold_in(second, i)`` for batch i's Dropout."""
    net = fnn.serial(fnn.Dense(6, activation="tanh"), fnn.Dropout(0.3), fnn.Dense(2))
    params = net.init(KEY, (4,), jnp.float64)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(10, 4)), rng.normal(size=(10, 2))
    key, opt = jax.random.PRNGKey(5), O.sgd(0.1)
    fitted = fnn.fit(net, params, opt, "mse", x, y, batch_size=4, epochs=2, key=key, verbose=0, unroll=1)
    step = fnn.train_step(net, "mse", opt)
    p, s = jax.tree.map(jnp.copy, params), opt.init(params)
    for e in range(2):
        first, second = jax.random.split(jax.random.fold_in(key, e))
        order = fnn.data.permutation(first, 10)
        for i in range(3):  # ceil(10 / 4), the last batch of 2
            rows = order[4 * i : 4 * (i + 1)]
            p, s, _ = step(p, s, x[rows], y[rows], jax.random.fold_in(second, i))
    chex.assert_trees_all_equal(p, fitted.params)


def test_train_step_eval_step_and_value_and_grad_take_nested_lists_as_evaluate_does():
    """Under jit a list is a pytree of scalars the network cannot read as a batch (a
    TracerArrayConversionError): lists of numbers are the arrays they spell, as evaluate takes them."""
    net = fnn.mlp([1])
    params = net.init(KEY, (3,))
    x, y = [[0.0, 1.0, 2.0], [1.0, 2.0, 3.0]], [[1.0], [2.0]]
    want = fnn.evaluate(net, params, "mse", x, y)["loss"]
    assert float(fnn.eval_step(net, "mse")(params, x, y)["loss"]) == pytest.approx(want, rel=1e-6)
    assert float(fnn.value_and_grad(net, "mse")(params, x, y)[0]) == pytest.approx(want, rel=1e-6)
    opt = O.sgd(0.1)
    _, _, loss = fnn.train_step(net, "mse", opt)(jax.tree.map(jnp.copy, params), opt.init(params), x, y)
    assert float(loss) == pytest.approx(want, rel=1e-6)
    as_tuples = tuple(map(tuple, x)), tuple(map(tuple, y))
    assert float(fnn.eval_step(net, "mse")(params, *as_tuples)["loss"]) == pytest.approx(want, rel=1e-6)
    assert float(fnn.eval_step(net, "mse")(params, x=x, y=[[np.float32(1)], [np.float32(2)]])["loss"]) == pytest.approx(
        want, rel=1e-6
    )
    with pytest.raises(TypeError, match=r"x must be an array of numbers; got list \(setting an array element"):
        fnn.eval_step(net, "mse")(params, [[0.0, 1.0], [1.0, 2.0, 3.0]], y)


def test_train_step_and_eval_step_are_jitted_functions_to_lower_and_to_call_in_a_jit():
    """What the steps return reads as the jitted step (benchmarks' recipe
    ``fnn.train_step(...).lower(...).compile().as_text()``, eval_shape, the same object from
    equal pieces) and runs inside the user's jit and vmap with a plain call's numbers."""
    x, y = (jax.device_put(a) for a in _problem(6))
    params = NET.init(KEY, (4,), jnp.float64)
    opt = O.sgd(0.1)
    step, score = fnn.train_step(NET, MSE, opt), fnn.eval_step(NET, MSE)
    assert step is fnn.train_step(NET, MSE, O.sgd(0.1)) and step.__name__ == "step"
    want = step(_fresh(params), opt.init(params), x, y)
    compiled = step.lower(params, opt.init(params), x, y).compile()
    assert "f64" in compiled.as_text()
    chex.assert_trees_all_close(compiled(_fresh(params), opt.init(params), x, y), want, rtol=1e-12)
    assert step.eval_shape(params, opt.init(params), x, y)[2].shape == ()
    in_jit = jax.jit(lambda p, s: step(p, s, x, y))(_fresh(params), opt.init(params))
    chex.assert_trees_all_close(in_jit, want, rtol=1e-12)
    trained = want[0]
    loss = score(trained, x, y)["loss"]
    assert score.lower(trained, x, y).compile()(trained, x, y)["loss"] == loss
    vmapped = jax.vmap(lambda xb: score(trained, xb, y)["loss"])(jnp.stack([x, x]))
    np.testing.assert_allclose(vmapped, [loss, loss], rtol=1e-12)


def test_swapped_byte_order_arrays_train_and_score_as_their_values():
    """Big-endian NumPy arrays (read from a file): train_step and eval_step, after a native call
    of the same shapes (where JAX's fast path read their bytes unswapped), give NumPy's numbers;
    fit, evaluate and predict take big-endian params, data and integer labels (JAX refused
    '>i8'), validation_data's too, with the native arrays' results."""
    x, y = _problem(6)
    params = jax.tree.map(np.asarray, NET.init(KEY, (4,), jnp.float64))
    big = jax.tree.map(swapped, params)
    opt = O.sgd(0.1)
    step, score = fnn.train_step(NET, MSE, opt), fnn.eval_step(NET, MSE)
    state = jax.tree.map(np.asarray, opt.init(params))
    step(params, state, x, y)  # NumPy trees of the same shapes first: the fast path is set
    score(params, x, y)
    new_p, _, value = step(big, jax.tree.map(swapped, state), swapped(x), swapped(y))
    ref_loss, g = _numpy_mse_grads(params, x, y)
    np.testing.assert_allclose(value, ref_loss, rtol=1e-12)
    chex.assert_trees_all_close(new_p, jax.tree.map(lambda a, b: a - 0.1 * b, params, g), rtol=1e-12)
    np.testing.assert_allclose(score(big, swapped(x), swapped(y))["loss"], ref_loss, rtol=1e-12)

    sce = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    labels = np.array([0, 1, 0, 0, 1, 0])
    kw = dict(epochs=1, shuffle=False, verbose=0)
    want = fnn.fit(NET, params, O.sgd(0.1), sce, x, labels, validation_data=(x, labels), **kw)
    got = fnn.fit(NET, big, O.sgd(0.1), sce, swapped(x), swapped(labels), **kw,
                  validation_data=(swapped(x), swapped(labels)))  # fmt: skip
    assert (got.history["loss"], got.history["val_loss"]) == (want.history["loss"], want.history["val_loss"])
    chex.assert_trees_all_equal(got.params, want.params)
    assert fnn.evaluate(NET, big, sce, swapped(x), swapped(labels)) == fnn.evaluate(NET, params, sce, x, labels)
    np.testing.assert_array_equal(fnn.predict(NET, big, swapped(x)), fnn.predict(NET, params, x))


def test_data_given_as_a_shape_dtype_struct_is_named_as_one():
    x, y = jax.ShapeDtypeStruct((6, 4), jnp.float64), np.zeros((6, 2))
    params = NET.init(KEY, (4,), jnp.float64)
    said = r"^x is a jax.ShapeDtypeStruct float64\[6, 4\]: a shape and dtype without values"
    for call in (
        lambda: fnn.fit(NET, params, "sgd", MSE, x, y, verbose=0),
        lambda: fnn.evaluate(NET, params, MSE, x, y),
        lambda: fnn.predict(NET, params, x),
        lambda: fnn.eval_step(NET, MSE)(params, x, y),
    ):
        with pytest.raises(TypeError, match=said):
            call()


def test_steps_and_value_and_grad_refuse_an_empty_or_complex_batch_while_tracing(compiles):
    """An x of 0 samples (eval_step divided by zero, train_step and value_and_grad gave a loss
    of 0) and a complex x (its imaginary part dropped unseen) are refused in fit's words, from
    the shape and dtype alone: while the step is traced, so nothing compiles, nothing syncs."""
    x, y = _problem(6)
    params = NET.init(KEY, (4,), jnp.float64)
    opt = O.sgd(0.1)
    state = opt.init(params)
    # (jax appends a note on its traceback to the message: no $ anchors)
    cases = [
        ((np.zeros((0, 4)), np.zeros((0, 2))), ValueError, r"^x is empty \(0 samples\)"),
        ((x + 1j * x, y), TypeError, r"^x must hold real numbers; got dtype complex128"),
        (
            (jax.device_put((x + 1j * x).astype(np.complex64)), y),
            TypeError,
            r"^x must hold real numbers; got dtype complex64",
        ),
    ]
    with compiles() as c:
        for (xb, yb), error, said in cases:
            calls = [
                lambda: fnn.train_step(NET, MSE, opt)(params, state, xb, yb),
                lambda: fnn.eval_step(NET, MSE, ["mae"])(params, xb, yb),
                *(lambda m=m: jax.jit(fnn.value_and_grad(NET, MSE, m))(params, xb, yb) for m in ("manual", "autodiff")),
                *(lambda m=m: fnn.value_and_grad(NET, MSE, m)(params, xb, yb) for m in ("manual", "autodiff")),
            ]
            for call in calls:
                with pytest.raises(error, match=said):
                    call()
    assert c.count == 0


def test_train_step_and_eval_step_built_again_from_equal_pieces_compile_nothing(compiles):
    """Both steps are cached on structure, as fit's epoch: a network built again from the same
    description, the same loss by name and an sgd of another rate (held in the state) give back
    the compiled steps, which train with the new rate; a piece that cannot be hashed still works."""
    x, y = _problem(6)
    params = NET.init(KEY, (4,), jnp.float64)
    xd, yd = jax.device_put(x), jax.device_put(y)
    first = fnn.train_step(NET, MSE, O.sgd(0.1))
    first(_fresh(params), O.sgd(0.1).init(params), xd, yd)
    fnn.eval_step(NET, MSE, metrics=["mae"])(params, xd, yd)
    with compiles() as c:
        opt, net = O.sgd(0.5), fnn.mlp([3, 2], activation="tanh")
        step = fnn.train_step(net, "mse", opt)
        new_p, _, value = step(_fresh(params), opt.init(params), xd, yd)
        out = fnn.eval_step(net, fnn.losses.get("mse"), metrics=["mae"])(new_p, xd, yd)
    assert c.count == 0 and step is first
    ref_loss, g = _numpy_mse_grads(jax.tree.map(np.asarray, params), x, y)
    np.testing.assert_allclose(value, ref_loss, rtol=1e-12)
    stepped = jax.tree.map(lambda a, b: np.asarray(a) - 0.5 * b, params, g)
    chex.assert_trees_all_close(new_p, stepped, rtol=1e-12)
    np.testing.assert_allclose(out["loss"], _numpy_mse_grads(stepped, x, y)[0], rtol=1e-12)

    class Unhashable:  # compared by value, so it cannot be hashed: the steps are built afresh
        __hash__ = None  # type: ignore[assignment]

        def __eq__(self, other):
            return isinstance(other, Unhashable)

        def __call__(self, y_true, y_pred):
            return jnp.mean((y_pred - y_true) ** 2)

    p2, _, v2 = fnn.train_step(NET, Unhashable(), O.sgd(0.1), grad="autodiff")(
        _fresh(params), O.sgd(0.1).init(params), xd, yd
    )
    np.testing.assert_allclose(v2, ref_loss, rtol=1e-12)
    chex.assert_trees_all_close(p2, jax.tree.map(lambda a, b: np.asarray(a) - 0.1 * b, params, g), rtol=1e-12)
    assert float(fnn.eval_step(NET, Unhashable())(params, xd, yd)["loss"]) == pytest.approx(ref_loss, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# The padded last batch: with built-in layers, a Loss's hand-written gradient and built-in
# metrics, the last partial batch runs as one more iteration of the epoch's scan (the last B
# samples, the rows of the previous batch masked out); otherwise as a step of its own. The two
# paths must give the same numbers. A user Layer wrapping a built-in Dense's functions gives the
# same network on the unpadded path.
# ---------------------------------------------------------------------------------------------


def _user_layer(layer):
    """A user Layer whose forward calls ``layer``'s: the same numbers, but not a built-in, so
    fit does not pad the last batch of a network holding it."""
    forward = lambda params, x, **kw: layer.forward(params, x, **kw)
    return fnn.Layer(layer.init, forward, layer.backward, "user_dense", layer.needs_key)


PAD_NET = fnn.serial(fnn.Dense(3, "tanh"), fnn.Dense(2))
USER_NET = fnn.serial(_user_layer(fnn.Dense(3, "tanh")), fnn.Dense(2))
SCCE = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)


@pytest.fixture
def epoch_specs(monkeypatch):
    """The EpochSpec of every epoch program fit and fit_many fetch, in order."""
    seen = []
    real = _loop.compiled_epoch
    monkeypatch.setattr(_loop, "compiled_epoch", lambda spec: seen.append(spec) or real(spec))
    return seen


def _assert_took_both_paths(specs):
    padded, unpadded = specs[-2:]
    assert padded.pad_last and not unpadded.pad_last
    assert padded._replace(net=None, pad_last=False) == unpadded._replace(net=None)  # nothing else differs


def _padding_problem(n=13, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    labels = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    return x, rng.normal(size=(n, 2)), labels, rng.uniform(0.2, 2.0, n)


PAD_CASES = {
    # mse, shuffled, sample weights, validation data with its own weights, a mean and a statistics metric
    "mse-shuffle-sample_weight-validation_data": lambda x, y, labels, w: (
        MSE,
        y,
        dict(
            shuffle=True,
            sample_weight=w,
            validation_data=(x[:5] + 0.5, y[:5], w[:5]),
            metrics=["mae", "r2"],
            weighted_metrics=["mae", "R2Score"],
        ),
    ),
    # sparse CE in order, class weights, validation_split (7 training rows: batches of 4 and 3)
    "scce-in_order-class_weight-validation_split": lambda x, y, labels, w: (
        SCCE,
        labels,
        dict(
            shuffle=False,
            class_weight={0: 0.4, 1: 2.5},
            validation_split=0.4,
            metrics=["accuracy"],
            weighted_metrics=["accuracy"],
        ),
    ),
    # mse with no weights at all (the mask alone weighs the metrics)
    "mse-in_order": lambda x, y, labels, w: (MSE, y, dict(shuffle=False, metrics=["mae"])),
    # circle (each sample's loss depends on the batch's pairs: the padding must be in none), in
    # order, sample weights, validation_split (7 training rows: batches of 4 and 3)
    "circle-in_order-sample_weight-validation_split": lambda x, y, labels, w: (
        fnn.losses.get("circle", gamma=4.0, margin=0.25),
        labels,
        dict(shuffle=False, sample_weight=w, validation_split=0.4),
    ),
}


@pytest.mark.parametrize("case", sorted(PAD_CASES))
def test_padded_last_batch_fit_equals_the_unpadded_fit(case, epoch_specs):
    """13 training samples in batches of 4 (the last holds 1), or 7 (the last holds 3): the padded
    epoch's params, optimizer state, losses and metrics (training and validation) are those of
    the separate last step, to float64 rounding."""
    x, y, labels, w = _padding_problem()
    loss, target, kw = PAD_CASES[case](x, y, labels, w)
    params = PAD_NET.init(KEY, (4,), jnp.float64)
    fits = [
        fnn.fit(net, params, O.adam(0.05), loss, x, target, batch_size=4, epochs=3, key=KEY, verbose=0, unroll=1, **kw)
        for net in (PAD_NET, USER_NET)
    ]
    _assert_took_both_paths(epoch_specs)
    padded, unpadded = fits
    n_train = len(fnn.data.train_val_split(x, target, kw["validation_split"])[0][0]) if "validation_split" in kw else 13
    assert n_train % 4 and padded.history.iterations_per_epoch == math.ceil(n_train / 4)
    chex.assert_trees_all_close(padded.params, unpadded.params, rtol=1e-12, atol=1e-14)
    chex.assert_trees_all_close(padded.opt_state, unpadded.opt_state, rtol=1e-12, atol=1e-14)
    assert set(padded.history.history) == set(unpadded.history.history)
    if "weighted_metrics" in kw:
        assert {"loss", "val_loss"} <= set(padded.history.history)
        name = kw["weighted_metrics"][0]  # in metrics too: logged as weighted_<name>, and weighted
        assert not np.allclose(padded.history["weighted_" + name], padded.history[name])
    for k in padded.history.history:
        np.testing.assert_allclose(padded.history[k], unpadded.history[k], rtol=1e-12, atol=1e-14, err_msg=k)
    # and it trained: the weights moved, the loss fell
    assert not np.allclose(padded.params[0]["w"], params[0]["w"])
    assert padded.history["loss"][-1] < padded.history["loss"][0]


@pytest.mark.parametrize(
    "case", ["mse-shuffle-sample_weight-validation_data", "scce-in_order-class_weight-validation_split"]
)
def test_padded_last_batch_fit_many_equals_the_unpadded_fit_many(case, epoch_specs):
    """fit_many (the epoch under vmap), two models with their own keys (shuffles): the same."""
    x, y, labels, w = _padding_problem()
    loss, target, kw = PAD_CASES[case](x, y, labels, w)
    kw = {k: v for k, v in kw.items() if k not in ("sample_weight", "class_weight")}  # fit only
    if "validation_data" in kw:
        kw["validation_data"] = kw["validation_data"][:2]
    k0, k1 = jax.device_put(tuple(np.asarray(jax.random.split(KEY))))  # unstacked by NumPy: no programs
    stacked = jax.device_put(  # stacked by NumPy: no stack program
        jax.tree.map(lambda *a: np.stack(a), PAD_NET.init(k0, (4,), jnp.float64), PAD_NET.init(k1, (4,), jnp.float64))
    )
    keys = jax.device_put(np.stack([jax.random.PRNGKey(5), jax.random.PRNGKey(6)]))
    runs = [
        fnn.fit_many(net, stacked, O.adam(0.05), loss, x, target, key=keys, batch_size=4, epochs=3, unroll=1, **kw)
        for net in (PAD_NET, USER_NET)
    ]
    _assert_took_both_paths(epoch_specs)
    assert epoch_specs[-1].models
    padded, unpadded = runs
    chex.assert_trees_all_close(padded.params, unpadded.params, rtol=1e-12, atol=1e-14)
    for hp, hu in zip(padded.histories, unpadded.histories, strict=True):
        assert set(hp.history) == set(hu.history) and "val_loss" in hp.history
        for k in hp.history:
            np.testing.assert_allclose(hp[k], hu[k], rtol=1e-12, atol=1e-14, err_msg=k)
    assert not np.allclose(padded.params[0]["w"][0], padded.params[0]["w"][1])  # two different models


def _dot_count(net, n, batch_size=4):
    """``(padded?, dot_general ops)`` of the lowered (not compiled) epoch program fit would run on
    ``n`` unshuffled samples: each copy of the step holds the same dots (forward and backward)."""
    loss, opt = MSE, O.sgd(0.1)
    spec = _epoch.EpochSpec(
        net=net,
        loss=loss,
        update=opt.update,
        grad="manual",
        metrics=(),
        batch_size=batch_size,
        shuffle=False,
        stop_on_nan=True,
        unroll=1,
        pad_last=_epoch.can_pad_last(net, loss, (), "manual", None),
    )
    params = jax.eval_shape(lambda: net.init(KEY, (4,), jnp.float64))
    opt_state = jax.eval_shape(opt.init, params)
    x, y = jax.ShapeDtypeStruct((n, 4), jnp.float64), jax.ShapeDtypeStruct((n, 2), jnp.float64)
    lowered = jax.jit(_epoch.epoch_fn(spec)).lower(params, opt_state, x, y, None, None, None)
    return spec.pad_last, lowered.as_text().count("stablehlo.dot_general")


def test_the_padded_epoch_holds_one_copy_of_the_step():
    """7 full batches and a partial one: the padded program has the dot ops of one step (as 8 full
    batches do); the unpadded one compiles the step twice."""
    pad_rem, pad_dots_rem = _dot_count(PAD_NET, 7 * 4 + 3)
    pad_full, pad_dots_full = _dot_count(PAD_NET, 8 * 4)
    user_rem, user_dots_rem = _dot_count(USER_NET, 7 * 4 + 3)
    user_full, user_dots_full = _dot_count(USER_NET, 8 * 4)
    assert (pad_rem, pad_full, user_rem, user_full) == (True, True, False, False)
    assert pad_dots_rem == pad_dots_full == user_dots_full > 0
    assert user_dots_rem == 2 * user_dots_full


def test_padding_falls_back_where_it_cannot_hold(epoch_specs):
    """A plain-callable loss, autodiff, a user metric, a mesh or a user layer: the separate last
    step; a fit with a user metric still trains and logs as the padded fit does."""
    ms = fnn.metrics.resolve(["mae", "r2"], loss=MSE)
    can = _epoch.can_pad_last
    assert can(PAD_NET, MSE, ms, "manual", None)
    assert can(PAD_NET, SCCE, fnn.metrics.resolve(["accuracy"], loss=SCCE), "manual", None)
    assert not can(PAD_NET, MSE, ms, "autodiff", None)
    assert not can(PAD_NET, lambda t, p: jnp.mean((t - p) ** 2), ms, "autodiff", None)
    assert not can(PAD_NET, MSE, fnn.metrics.resolve(["mae", lambda t, p: jnp.abs(t - p)]), "manual", None)
    assert not can(PAD_NET, MSE, ms, "manual", fnn.parallel.data_mesh())
    assert not can(USER_NET, MSE, ms, "manual", None)

    def abs_error(t, p):
        return jnp.abs(t - p)

    x, y, _, _ = _padding_problem()
    params = PAD_NET.init(KEY, (4,), jnp.float64)
    kw = dict(batch_size=4, epochs=3, key=KEY, verbose=0, unroll=1, shuffle=False)  # test_padded_..._fit's mse-in_order
    builtin = fnn.fit(PAD_NET, params, O.adam(0.05), MSE, x, y, metrics=["mae"], **kw)
    mine = fnn.fit(PAD_NET, params, O.adam(0.05), MSE, x, y, metrics=[abs_error], **kw)
    assert epoch_specs[-2].pad_last and not epoch_specs[-1].pad_last
    chex.assert_trees_all_close(mine.params, builtin.params, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(mine.history["abs_error"], builtin.history["mae"], rtol=1e-12)
    np.testing.assert_allclose(mine.history["loss"], builtin.history["loss"], rtol=1e-12)


def test_terminate_on_nan_in_the_padded_last_batch():
    """Only the last 2 of 10 samples (unshuffled, batches of 4: the padded batch) have targets
    whose square overflows float64: fit stops in epoch 0 with the params of the two batches before,
    on both paths."""
    x, y = _problem(10)
    y[8:] = 1e200  # (1e200)^2 = inf: the padded batch's loss (its rows 6 and 7 are masked out)
    params = PAD_NET.init(KEY, (4,), jnp.float64)
    kw = dict(batch_size=4, epochs=5, shuffle=False, callbacks=[TerminateOnNaN()], verbose=0, unroll=1)
    results = [fnn.fit(net, params, O.sgd(0.1), MSE, x, y, **kw) for net in (PAD_NET, USER_NET)]
    # by hand: two steps on the first two batches
    step = fnn.train_step(PAD_NET, MSE, O.sgd(0.1))
    p, s = _fresh(params), O.sgd(0.1).init(params)
    for i in range(2):
        p, s, value = step(p, s, jax.device_put(x[4 * i : 4 * i + 4]), jax.device_put(y[4 * i : 4 * i + 4]))
        assert np.isfinite(float(value))
    for res in results:
        assert res.history.stop_reason == "nan" and res.history.epochs_run == 1
        assert not np.isfinite(res.history["loss"][0])
        assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(res.params))  # NumPy: no program
        chex.assert_trees_all_close(res.params, p, rtol=1e-14, atol=0)


# Where padding must not change a result: nets by protocol, loss functions as metrics, Dropout.


def test_a_network_by_protocol_only_still_trains():
    class Protocol:
        needs_key = False

        def init(self, key, shape, dtype=jnp.float32):
            return NET.init(key, shape, dtype)

        def apply(self, params, x, **kw):
            return NET.apply(params, x, **kw)

        def forward(self, params, x, **kw):
            return NET.forward(params, x, **kw)

        def backward(self, params, cache, dy):
            return NET.backward(params, cache, dy)

    x, y = _problem(10)
    params = NET.init(KEY, (4,), jnp.float64)
    res = fnn.fit(Protocol(), params, O.sgd(0.1), MSE, x, y, batch_size=3, epochs=2, shuffle=False, verbose=0)
    ref = fnn.fit(NET, params, O.sgd(0.1), MSE, x, y, batch_size=3, epochs=2, shuffle=False, verbose=0)
    chex.assert_trees_all_close(res.params, ref.params, rtol=1e-12)


def test_a_loss_function_as_metric_logs_the_same_on_both_paths():
    x, y, _, _ = _padding_problem()
    params = PAD_NET.init(KEY, (4,), jnp.float64)
    kw = dict(batch_size=4, epochs=2, key=KEY, verbose=0, unroll=1, shuffle=False)
    a, b = (
        fnn.fit(net, params, O.adam(0.05), MSE, x, y, metrics=[fnn.losses.mean_absolute_error], **kw)
        for net in (PAD_NET, USER_NET)
    )
    np.testing.assert_allclose(a.history["mean_absolute_error"], b.history["mean_absolute_error"], rtol=1e-12)


def test_dropout_networks_pad_to_the_same_result():
    net = fnn.serial(fnn.Dense(3, "tanh"), fnn.Dropout(0.3), fnn.Dense(2))
    user = fnn.serial(_user_layer(fnn.Dense(3, "tanh")), fnn.Dropout(0.3), fnn.Dense(2))
    x, y = _problem(10)
    params = net.init(KEY, (4,), jnp.float64)
    kw = dict(batch_size=4, epochs=1, key=KEY, verbose=0, unroll=1, shuffle=False)
    a, b = (fnn.fit(n, params, O.sgd(0.1), MSE, x, y, **kw) for n in (net, user))
    np.testing.assert_allclose(a.history["loss"], b.history["loss"], rtol=1e-12)
    chex.assert_trees_all_close(a.params, b.params, rtol=1e-12)


def test_padding_rows_weigh_nothing_even_where_a_diverged_batch_predicts_inf():
    """0 * inf is NaN: a padding row's inf prediction (diverged params) must not turn the
    metrics NaN where the unpadded step logs inf (and the real rows' finite values stay)."""
    mae = fnn.metrics.get("mae")
    y = np.zeros((4, 1))
    rows = np.array([True, True, True, False])
    # as in the epoch program: traced, one program for both (eagerly, one per primitive)
    sums = jax.jit(lambda pred, loss: _sums.batch_sums(MSE, [mae], y, pred, loss, None, rows))
    diverged = sums(np.array([[1.0], [2.0], [np.inf], [np.inf]]), np.array(np.inf))
    assert diverged["mae"] == (np.inf, 3.0)
    finite = sums(np.array([[1.0], [2.0], [3.0], [np.inf]]), np.array(1.0))
    assert finite["mae"] == (6.0, 3.0) and finite["loss"] == (3.0, 3.0)


def test_padding_is_taken_only_where_its_waste_is_small():
    """Padding wastes ``batch - N % batch`` rows per epoch: taken up to 64 rows or 1/32 of N."""
    assert _epoch.pad_worth(32, 1150)  # fnn compare's digits: 2 rows
    assert _epoch.pad_worth(128, 1000)  # 24 rows
    assert _epoch.pad_worth(1024, 100_000)  # 672 rows, 0.7 %
    assert not _epoch.pad_worth(1024, 12_800)  # train_throughput's batch 1024: 512 rows, 4 %
    assert not _epoch.pad_worth(32, 1152)  # no partial batch
    assert not _epoch.pad_worth(32, 20) and not _epoch.pad_worth(32, 32)  # one batch: nothing to share
    # and prepare puts the decision in the epoch's spec
    x, y, _, _ = _padding_problem(n=200)
    params = PAD_NET.init(KEY, (4,), jnp.float64)
    prepared = [
        _loop.prepare(PAD_NET, params, O.sgd(0.1), MSE, x[:n], y[:n], batch_size=b, grad="manual", epochs=1,
                      unroll=None, shuffle=False, verbose=0, validation_split=0.0, validation_data=None,
                      validation_batch_size=None, metrics=None)
        for n, b in ((199, 100), (130, 100))
    ]  # fmt: skip
    assert [p.spec.pad_last for p in prepared] == [True, False]  # 1 row wasted; 70 rows of 130


def test_training_inside_cancelled_by_stops_before_the_epoch_after_the_event_is_set():
    """fnn compare's runs in other threads stop on Ctrl-C this way: the epoch running ends, the
    next one never starts; without the event set, the same fit is untouched."""

    x, y = _problem()
    event = threading.Event()

    class SetAfterSecond(Callback):
        def on_epoch_end(self, epoch, logs, ctx=None):
            self.epochs = epoch + 1
            if epoch == 1:
                event.set()

    seen = SetAfterSecond()
    kw = dict(epochs=5, batch_size=5, verbose=0, unroll=1)
    with _loop.cancelled_by(event), pytest.raises(_loop.Cancelled, match="before epoch 2"):
        fnn.fit(NET, NET.init(KEY, (4,)), O.sgd(0.1), MSE, x, y, callbacks=[seen], **kw)
    assert seen.epochs == 2
    with _loop.cancelled_by(threading.Event()):
        inside = fnn.fit(NET, NET.init(KEY, (4,)), O.sgd(0.1), MSE, x, y, **kw)
    outside = fnn.fit(NET, NET.init(KEY, (4,)), O.sgd(0.1), MSE, x, y, **kw)
    assert inside.history.epochs_run == 5
    chex.assert_trees_all_equal(inside.params, outside.params)
    # the event belongs to the thread (context) that opened it: another thread trains on
    with _loop.cancelled_by(event):
        pool = concurrent.futures.ThreadPoolExecutor(1)
        other = pool.submit(fnn.fit, NET, NET.init(KEY, (4,)), O.sgd(0.1), MSE, x, y, **kw).result()
        pool.shutdown()
    assert other.history.epochs_run == 5


def _two_models(params):
    """Two copies of ``params`` stacked for fit_many, on the device: stacked by NumPy (an eager
    jnp.stack compiles a program per leaf's shape)."""
    return jax.device_put(jax.tree.map(lambda a: np.stack([a, a]), params))


@pytest.mark.parametrize("on_accelerator", [False, True], ids=["cpu", "as-on-a-gpu"])
def test_under_a_disallowing_transfer_guard_every_entry_point_trains_as_unguarded(on_accelerator, request):
    # jax.transfer_guard("disallow") refuses implicit transfers only: fnn puts what it makes on the
    # host (the epochs' orders and numbers, its default keys) on the device with jax.device_put and
    # reads the logs back with jax.device_get, and converts NumPy data the caller gave it the same way;
    # on a GPU (the accelerator fixture makes the CPU behave so) it also reads its checks' verdicts so
    if on_accelerator:
        request.getfixturevalue("accelerator")
    net = fnn.serial(fnn.Dense(4), fnn.Dropout(0.25), fnn.Dense(2))  # Dropout: a key drawn per epoch
    params = net.init(jax.random.PRNGKey(0), (3,))
    x_np, y_np = np.random.default_rng(0).normal(size=(10, 3)), np.arange(10) % 2
    x, y = jax.device_put((x_np, y_np))
    stacked = _two_models(params)
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    kw = dict(batch_size=4, epochs=2, verbose=0)
    runs = {  # fit without a key: its default PRNGKey(0); sweep: the seeds' keys
        "fit": lambda a, b: (
            fnn.fit(net, params, "adam", loss, a, b, validation_split=0.2, metrics=["accuracy"], **kw).history.history
        ),
        "fit_many": lambda a, b: [h.history for h in fnn.fit_many(net, stacked, "adam", loss, a, b, **kw).histories],
        "sweep": lambda a, b: [h.history for h in fnn.sweep(net, "sgd", loss, a, b, seeds=[0, 1], **kw).histories],
        "evaluate": lambda a, b: fnn.evaluate(net, params, loss, a, b, metrics=["accuracy"]),
        "predict": lambda a, b: np.asarray(jax.device_get(fnn.predict(net, params, a))).tolist(),
    }
    for name, run in runs.items():
        expected = run(x, y)
        fresh = jax.device_put((x_np, y_np))  # arrays not yet checked
        with jax.transfer_guard("disallow"):
            assert run(x, y) == expected, name
            assert run(x_np, y_np) == expected, name
            assert run(*fresh) == expected, name
    assert np.isfinite(expected).all()  # predict's outputs: real numbers compared


def test_under_a_disallowing_transfer_guard_on_a_gpu_checkpoints_callbacks_sweeps_and_data_helpers_work(
    accelerator, tmp_path
):
    """Beyond the entry points' plain calls, what reads device values on the host reads them
    with jax.device_get on a GPU (the fixture makes the CPU behave so): a checkpoint saved (a
    typed key in it) and loaded against device params, a run resumed from its checkpoint, the
    learning-rate callbacks, sweeps over rates and weight decays, hyperparameters given as jax
    scalars, fnn.data's standardizer and shuffled batches. Each gives what it gives unguarded."""
    net = fnn.mlp([4, 3])
    params = net.init(jax.random.PRNGKey(0), (3,))
    x_np, y_np = np.random.default_rng(0).normal(size=(10, 3)), np.arange(10) % 3
    x, y, p = jax.device_put((x_np, y_np, params))
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    kw = dict(epochs=2, batch_size=4, verbose=0)
    lr_callbacks = lambda: [
        fnn.callbacks.LearningRateScheduler(lambda epoch: 0.01 / (1 + epoch)),
        fnn.callbacks.ReduceLROnPlateau(monitor="loss", patience=0, min_delta=10.0),
    ]
    fit = lambda a, b, **more: fnn.fit(net, p, "adam", loss, a, b, **kw, **more)
    scaler = fnn.data.Standardizer.fit(x_np)
    # made before the guard, as the data are
    typed_key, batches_key, rate = jax.random.key(1), jax.random.PRNGKey(2), jnp.asarray(0.01)

    def checkpoint(i):
        fnn.checkpoint.save(tmp_path / f"c{i}.npz", params=p, key=typed_key)
        loaded = fnn.checkpoint.load(tmp_path / f"c{i}.npz", params=p)
        return loaded.params, jax.random.key_data(loaded.key)

    def resumed(path):  # one epoch, then resumed from its checkpoint for the second
        fnn.fit(net, p, "adam", loss, x, y, **{**kw, "epochs": 1}, checkpoint=path)
        return fit(x, y, checkpoint=path).history.history

    histories = lambda result: [h.history for h in result.histories]
    shuffled = lambda: fnn.data.batches(x, y, batch_size=4, shuffle=True, key=batches_key)
    runs = {
        "checkpoint": checkpoint,
        "resume": lambda i: resumed(str(tmp_path / f"run{i}.ckpt")),
        "callbacks": lambda i: fit(x, y, callbacks=lr_callbacks()).history.history,
        "sweep rates": lambda i: histories(fnn.sweep(net, "adam", loss, x, y, learning_rates=[0.01, 0.1], **kw)),
        "sweep decays": lambda i: histories(fnn.sweep(net, "adamw", loss, x, y, weight_decays=[0.0, 0.1], **kw)),
        "jax hyperparameters": lambda i: fnn.fit(net, p, O.adam(rate), loss, x, y, **kw).history.history,
        "standardize": lambda i: [fnn.data.standardize(x), scaler.transform(x)],
        "batches": lambda i: list(shuffled()),
    }
    for name, run in runs.items():
        expected = jax.device_get(run(0))
        with jax.transfer_guard("disallow"):
            got = jax.device_get(run(1))  # the test's own read: explicit
        chex.assert_trees_all_equal(got, expected, custom_message=name)


@pytest.mark.parametrize("flag, found", [("debug_infs", "inf"), ("debug_nans", "nan")])
def test_jax_nan_and_inf_debugging_names_the_operation_of_a_diverging_fit(flag, found):
    # JAX re-runs a program whose output holds an inf (a NaN) to name the operation: the epoch and
    # the step donate nothing then, or the re-run reads a deleted buffer ("Array has been deleted")
    net = fnn.mlp([8, 1])
    params = net.init(jax.random.PRNGKey(0), (4,))
    x = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    y = 3 * x[:, :1]
    before = fnn.evaluate(net, params, "mse", x, y)
    stacked = _two_models(params)
    opt = O.sgd(1e3)
    with getattr(jax, flag)(True), contextlib.redirect_stdout(io.StringIO()):  # JAX's note of the re-run
        with pytest.raises(FloatingPointError, match=rf"invalid value \({found}\) encountered in scan"):
            fnn.fit(net, params, opt, "mse", x, y, batch_size=8, epochs=3, verbose=0)
        with pytest.raises(FloatingPointError, match=rf"invalid value \({found}\) encountered in scan"):
            fnn.fit_many(net, stacked, opt, "mse", x, y, batch_size=8, epochs=3)
        step = fnn.train_step(net, "mse", opt)
        p, s = jax.tree.map(lambda a: jax.device_put(np.array(a)), params), opt.init(params)  # a copy
        with pytest.raises(FloatingPointError, match=rf"invalid value \({found}\)"):
            for _ in range(5):
                p, s, _ = step(p, s, x, y)
        assert _epoch.donated() == ()
    assert fnn.evaluate(net, params, "mse", x, y) == before  # the caller's params, untouched and usable
    assert math.isfinite(before["loss"]) and _epoch.donated() == (0, 1)  # outside it, the programs donate


def test_half_precision_params_with_weights_and_a_padded_last_batch_run_under_dtype_promotion_strict():
    # the padded last batch's row mask (in the outputs' bfloat16) meets float32 sample weights:
    # cast to the dtype standard promotion gives, so "strict" trains with the same numbers
    net = fnn.mlp([8, 2])
    params = net.init(KEY, (5,), jnp.bfloat16)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 5)).astype(np.float32), rng.integers(0, 2, 40)  # 40 = 2 batches of 16 and 8
    w = rng.uniform(0.5, 2.0, 40).astype(np.float32)
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)

    def run():
        r = fnn.fit(
            net, params, O.sgd(0.1), loss, x, y, sample_weight=w, batch_size=16, epochs=2, verbose=0,
            weighted_metrics=["accuracy"], key=KEY,
        )  # fmt: skip
        return jax.tree.map(np.asarray, (r.params, dict(r.history.history)))

    with jax.numpy_dtype_promotion("strict"):
        got = run()
    want = run()
    assert got[0][0]["w"].dtype == jnp.bfloat16 and np.isfinite(want[1]["loss"]).all()
    chex.assert_trees_all_equal(got, want)


def test_a_sparse_cross_entropy_with_ignore_class_validates_in_keras_batches_by_default():
    """With ``ignore_class`` a batch's value is the mean over its samples not ignored, a ratio
    whose count each batch has its own: val_loss depends on the batches, so they are Keras's
    (``batch_size``) by default. It was one batch of all (1024's default), 1.875 against
    Keras's 1.250 in the probe that found it."""
    net = fnn.mlp([3])
    x = np.random.default_rng(0).normal(size=(5, 4))
    y = np.array([2, 0, 1, 2, 2])  # batches of 2: [2, 0], [1, 2], [2]: 1, 1 and 0 samples count
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True, ignore_class=2)
    assert loss.whole_batch and not fnn.losses.get("sparse_categorical_crossentropy").whole_batch
    params = net.init(KEY, (4,), jnp.float64)
    kw = dict(batch_size=2, epochs=1, verbose=0, shuffle=False, validation_data=(x, y))
    run = fnn.fit(net, params, O.sgd(0.0), loss, x, y, **kw)
    logits = np.asarray(net.apply(params, x), np.float64)
    per = -(logits - np.log(np.exp(logits).sum(1, keepdims=True)))[np.arange(5), np.where(y == 2, 0, y)]
    batches = [slice(0, 2), slice(2, 4), slice(4, 5)]
    means = [per[b][y[b] != 2].sum() / max((y[b] != 2).sum(), 1) for b in batches]  # Keras: 0 for none
    keras = sum(m * (b.stop - b.start) for m, b in zip(means, batches, strict=True)) / 5
    assert abs(keras - per[y != 2].mean()) > 0.1  # one batch of all differs
    np.testing.assert_allclose(run.history["val_loss"][-1], keras, rtol=1e-12)
    np.testing.assert_allclose(run.history["loss"][-1], keras, rtol=1e-12)  # the same batches, unshuffled


def test_a_whole_batch_loss_validates_in_keras_batches_by_default():
    """Dice (axis=None) is one ratio per batch, so val_loss depends on the validation batches:
    by default they are Keras's, ``batch_size`` (not fit's faster 1024), in fit, fit_many and
    sweep alike; val_loss is then Keras's batch-size-weighted mean of the batches' values."""
    net = fnn.mlp([3, 3], activation="tanh", output_activation="sigmoid")  # (softmax rows: a mean)
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(16, 4)), rng.integers(0, 2, (16, 3)).astype(float)
    x_val, y_val = rng.normal(size=(10, 4)), rng.integers(0, 2, (10, 3)).astype(float)
    y_val[8:] = 0.0  # the last batch's dice is 1, far from its share of the whole batch's
    dice = fnn.losses.get("dice")
    assert dice.whole_batch and not fnn.losses.get("dice", axis=-1).whole_batch and not MSE.whole_batch

    @jax.jit  # dice of the two validation batches and of the whole: one program, not one per primitive
    def dices(params):
        pred = net.apply(params, x_val).astype(jnp.float64)  # float64, whatever the params' dtype
        return [fnn.losses.dice(y_val[s], pred[s]) for s in (slice(0, 8), slice(8, 10), slice(0, 10))]

    def keras(params):  # Keras's val_loss: batches of 8, weighted by their sizes
        first, last, _ = dices(params)
        return (8 * float(first) + 2 * float(last)) / 10

    params = net.init(KEY, (4,), jnp.float64)
    kw = dict(batch_size=8, epochs=1, verbose=0, validation_data=(x_val, y_val))
    run = fnn.fit(net, params, O.sgd(0.1), dice, x, y, key=KEY, **kw)
    whole = float(dices(run.params)[2])
    assert abs(keras(run.params) - whole) > 0.02  # one batch of 10 differs
    np.testing.assert_allclose(run.history["val_loss"][-1], keras(run.params), rtol=1e-6)
    explicit = fnn.fit(net, params, O.sgd(0.1), dice, x, y, key=KEY, validation_batch_size=8, **kw)
    assert explicit.history["val_loss"] == run.history["val_loss"]
    # fit_many and sweep: a learning rate of 0 keeps the params, whose val_loss is known
    stacked = jax.tree.map(lambda a: np.asarray(a)[None], params)
    keep = fnn.fit_many(net, stacked, O.sgd(0.0), dice, x, y, key=KEY[None], **kw)
    swept = fnn.sweep(net, O.sgd(0.1), dice, x, y, learning_rates=[0.0], input_shape=(4,), **kw)
    for result in (keep, swept):
        first = jax.tree.map(lambda a: np.asarray(a)[0], result.params)
        np.testing.assert_allclose(result.histories[0]["val_loss"][-1], keras(first), rtol=1e-6)


def test_update_last_overwrites_a_name_first_logged_after_epoch_0_and_arrays_are_copied():
    """update_last's second call of one epoch appended where a name was first logged after
    epoch 0 (its list shorter than the epochs); on an empty History it was an IndexError. A
    NumPy array a callback updates in place rewrote every epoch recorded before."""
    h = fnn.History()
    h.append(0, {"loss": 1.0}, 0.0)
    h.append(1, {"loss": 0.5}, 0.0)
    h.update_last({"lr": 0.1})
    h.update_last({"lr": 0.2})
    assert dict(h) == {"loss": [1.0, 0.5], "lr": [0.2]}
    buffer = np.zeros(2)
    h.append(2, {"loss": 0.25, "w": buffer}, 0.0)
    buffer[:] = 7.0
    assert h["w"][0].tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match=r"^update_last: no epoch recorded yet"):
        fnn.History().update_last({"lr": 0.1})


def test_history_from_keras_s_plain_logs_and_to_dict_s_copies():
    """``History.from_dict`` takes a plain ``{name: [value per epoch]}`` (Keras's
    ``History.history``, ``json.loads(json.dumps(h))``): it returned an empty History. And
    ``to_dict`` hands out copies: appending to its epochs grew the History's own."""
    import json

    h = fnn.History.from_dict({"loss": [1.0, 0.5], "val_loss": [1.2, 0.7]})
    assert dict(h) == {"loss": [1.0, 0.5], "val_loss": [1.2, 0.7]} and h.epochs == [0, 1]
    assert len(h.times) == 2 and all(np.isnan(h.times))
    again = fnn.History.from_dict(json.loads(json.dumps(h)))
    assert dict(again) == dict(h) and again.epochs == [0, 1]
    late = fnn.History.from_dict({"loss": [1.0, 0.5, 0.25], "learning_rate": [0.1]})  # logged from epoch 2 on
    assert late.epochs == [0, 1, 2] and late["learning_rate"] == [0.1]
    assert fnn.History.from_dict({}).epochs == []
    assert fnn.History.from_dict({"epochs": [3, 4]}).epochs == [3, 4]  # a record missing its logs
    resumed = fnn.History(iterations_per_epoch=4)
    resumed.append(2, {"loss": 0.5}, seconds=0.1)
    resumed.stop_reason, resumed.stopped_epoch = "early_stopping", 2
    copied = fnn.History.from_dict(resumed)
    assert (copied.epochs, copied.stop_reason, copied.iterations_per_epoch, dict(copied)) == (
        [2],
        "early_stopping",
        4,
        {"loss": [0.5]},
    )
    d = h.to_dict()
    d["epochs"].append(7)
    d["times"].append(1.0)
    d["history"]["loss"].append(0.1)
    assert h.epochs == [0, 1] and len(h.times) == 2 and h["loss"] == [1.0, 0.5]
    assert fnn.History.from_dict(h.to_dict()).epochs == [0, 1]
