"""What fit and fit_many check before anything is compiled (fnn/train/_checks.py): optimizers
by name, params and optimizer states that do not fit, hyperparameters that disagree, and labels
that must keep their values (issue 16 items 5, 7, 8 and 14)."""

import warnings

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import optimizers as O

KEY = jax.random.PRNGKey(0)
NET = fnn.mlp([5, 2])
MSE = fnn.losses.get("mse")


def _problem(n=8):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 3)), rng.normal(size=(n, 2))


def test_an_optimizer_by_name_trains_as_its_defaults():
    x, y = _problem()
    params = NET.init(KEY, (3,), jnp.float64)
    by_name = fnn.fit(NET, params, "Adam", MSE, x, y, epochs=2, verbose=0, batch_size=4)
    by_object = fnn.fit(NET, params, O.adam(), MSE, x, y, epochs=2, verbose=0, batch_size=4)
    assert by_name.history["loss"] == by_object.history["loss"]


def test_a_plain_init_update_pair_trains_as_the_optimizer_it_is(compiles):
    # SPEC: an optimizer is an (init, update) pair; a plain tuple or list of the two is one
    x, y = _problem()
    params = NET.init(KEY, (3,), jnp.float64)
    opt = O.adam()
    wrapped = fnn.fit(NET, params, opt, MSE, x, y, epochs=2, verbose=0, batch_size=4)
    for pair in ((opt.init, opt.update), [opt.init, opt.update]):
        with compiles() as c:  # the same update function: the same compiled program
            plain = fnn.fit(NET, params, pair, MSE, x, y, epochs=2, verbose=0, batch_size=4)
        assert c.count == 0
        assert plain.history["loss"] == wrapped.history["loss"]
        chex.assert_trees_all_equal((plain.params, plain.opt_state), (wrapped.params, wrapped.opt_state))
    assert callable(fnn.train_step(NET, MSE, (opt.init, opt.update)))  # built, not run
    message = (
        r"^opt must be an optimizer \(a GradientTransformation, or a pair \(init, update\) of callables\) or an "
        r"optimizer name, got a tuple of length 3"
    )
    with pytest.raises(TypeError, match=message):
        fnn.fit(NET, params, (opt.init, opt.update, opt.update), MSE, x, y, verbose=0)
    with pytest.raises(TypeError, match=r"got a list of length 2"):
        fnn.fit_many(NET, jax.tree.map(lambda a: a[None], params), [opt.init, "update"], MSE, x, y, verbose=0)


def test_integer_params_are_refused_before_anything_compiles(compiles):
    x, y = _problem()
    params = NET.init(KEY, (3,), jnp.float64)
    params[1]["b"] = jnp.zeros(2, jnp.int32)
    with compiles() as c, pytest.raises(TypeError, match=r"params\[1\]\['b'\] has dtype int32"):
        fnn.fit(NET, params, O.sgd(0.1), MSE, x, y, verbose=0)
    with pytest.raises(TypeError, match=r"params\[1\]\['b'\] has dtype int32"):
        fnn.fit_many(NET, jax.tree.map(lambda a: a[None], params), O.sgd(0.1), MSE, x, y, verbose=0)
    assert c.count == 0


def test_another_optimizers_state_is_named_in_fit_and_fit_many(compiles):
    x, y = _problem()
    params = NET.init(KEY, (3,), jnp.float64)
    sgd_state = O.sgd(0.1, momentum=0.9).init(params)
    stacked = jax.tree.map(lambda a: np.stack([a, a]), params)
    stacked_sgd_state = jax.tree.map(lambda a: np.stack([a, a]), sgd_state)
    with compiles() as c:
        with pytest.raises(ValueError, match=r"opt_state does not match opt.init\(params\): another optimizer"):
            fnn.fit(NET, params, O.adam(0.1), MSE, x, y, verbose=0, opt_state=sgd_state)
        with pytest.raises(ValueError, match="another optimizer"):  # was KeyError: 'b1'
            fnn.fit_many(NET, stacked, O.adam(0.1), MSE, x, y, verbose=0, opt_state=stacked_sgd_state)
    assert c.count == 0


def test_a_float32_state_for_float64_params_is_named(compiles):
    x, y = _problem()
    params = NET.init(KEY, (3,), jnp.float64)
    state32 = O.adam(0.1).init(NET.init(KEY, (3,), jnp.float32))
    message = r"opt_state.*has dtype float32, opt.init\(params\) builds float64"
    with compiles() as c, pytest.raises(ValueError, match=message):
        fnn.fit(NET, params, O.adam(0.1), MSE, x, y, verbose=0, opt_state=state32)
    assert c.count == 0


def test_an_opt_state_with_other_hyperparameters_wins_and_is_named():
    x, y = _problem()
    params = NET.init(KEY, (3,), jnp.float64)
    state = O.adam(1e-4).init(params)
    with pytest.warns(RuntimeWarning, match=r"learning_rate=0\.0001 \(opt says 0\.01\).*state's values"):
        res = fnn.fit(NET, params, O.adam(1e-2), MSE, x, y, verbose=0, opt_state=state, epochs=1)
    ref = fnn.fit(NET, params, O.adam(1e-4), MSE, x, y, verbose=0, epochs=1)
    assert res.history["loss"] == ref.history["loss"]  # trained at the state's 1e-4
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same values: no warning
        fnn.fit(NET, params, O.adam(1e-4), MSE, x, y, verbose=0, opt_state=state, epochs=1)


@pytest.mark.parametrize(
    "dtype,labels", [(jnp.bfloat16, [257.0, 259.0, 271.0, 299.0]), (jnp.float16, [2049.0, 2051.0, 3001.0, 2999.0])]
)
def test_float_sparse_labels_are_never_rounded_to_the_params_dtype(dtype, labels):
    # Each one-hot input picks its own class through a large weight: accuracy 1.0 when the
    # labels keep their values. bfloat16 rounded 257 to 256 (and float16 2049 to 2048).
    n_classes = 3002
    x = np.eye(4)
    w = np.zeros((4, n_classes))
    w[np.arange(4), np.asarray(labels, int)] = 10.0
    net = fnn.mlp([n_classes])
    params = [{"w": jnp.asarray(w, dtype), "b": jnp.zeros(n_classes, dtype)}]
    y = np.asarray(labels)
    sce = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    res = fnn.fit(net, params, O.sgd(0.0), sce, x, y, metrics=["accuracy"], batch_size=4, verbose=0, shuffle=False)
    assert res.history["accuracy"] == [1.0]
    assert fnn.evaluate(net, params, sce, x, y, metrics=["accuracy"])["accuracy"] == 1.0


@pytest.mark.parametrize(
    "schedule,message",
    [
        (lambda step: jnp.where(step < 3, 0.01, jnp.nan), r"learning_rate schedule gives nan at step 3 \(of the 4"),
        (lambda step: 0.1 - 0.05 * step, r"gives -0\.05\d* at step 3"),
    ],
)
def test_a_schedule_that_turns_bad_during_the_run_is_refused_before_training(schedule, message, compiles):
    x, y = _problem()
    params = NET.init(KEY, (3,), jnp.float64)
    with pytest.raises(ValueError, match=message):
        fnn.fit(NET, params, O.sgd(schedule), MSE, x, y, epochs=2, batch_size=4, verbose=0)


def test_learning_rates_that_cannot_be_held_or_are_negative_are_refused():
    with pytest.raises(ValueError, match="value must be >= 0"):
        fnn.schedules.constant(-0.1)
    with pytest.raises(ValueError, match=r"values\[1\] must be >= 0"):
        fnn.schedules.piecewise_constant([3], [0.1, -0.1])
    with pytest.raises(ValueError, match="must be finite"):
        fnn.schedules.exponential_decay(float("nan"), 10, 0.5)
    enable_x64 = jax.enable_x64 if hasattr(jax, "enable_x64") else jax.experimental.enable_x64
    with enable_x64(False):
        state = O.adam(0.1).init(NET.init(KEY, (3,), jnp.float32))
        with pytest.raises(ValueError, match=r"learning_rate=1e\+39 is not finite in float32"):
            O.set_learning_rate(state, 1e39)  # the state holds float32: 1e39 would be stored as inf
        with pytest.raises(ValueError, match=r"learning_rate=1e\+39 overflows float32"):
            O.sgd(1e39)


def test_a_checkpoint_name_the_logs_cannot_fill_fails_before_training(tmp_path, compiles):
    x, y = _problem()
    params = NET.init(KEY, (3,), jnp.float64)
    cb = fnn.callbacks.ModelCheckpoint(tmp_path / "ck-{epoch:02d}-{val_loss:.3f}.npz")
    with compiles() as c, pytest.raises(ValueError, match=r"\{val_loss\}.*there is no validation data"):
        fnn.fit(NET, params, O.sgd(0.1), MSE, x, y, verbose=0, callbacks=[cb])
    assert c.count == 0
    # with validation data the same name is filled, and the file is a resumable checkpoint
    fnn.fit(NET, params, O.sgd(0.1), MSE, x, y, verbose=0, callbacks=[cb], validation_split=0.25, epochs=1)
    (path,) = tmp_path.iterdir()
    assert path.name.startswith("ck-01-") and fnn.checkpoint.load(path).epoch == 1


def test_a_checkpoint_may_name_the_learning_rate_only_after_a_callback_logs_it(tmp_path, compiles):
    x, y = _problem()
    params = NET.init(KEY, (3,), jnp.float64)
    ck = fnn.callbacks.ModelCheckpoint(tmp_path / "ck-{learning_rate:.3g}.npz")
    plateau = fnn.callbacks.ReduceLROnPlateau(monitor="loss")
    with compiles() as c, pytest.raises(ValueError, match=r"\{learning_rate\}, which the logs will not have"):
        fnn.fit(NET, params, O.sgd(0.1), MSE, x, y, verbose=0, callbacks=[ck, plateau])  # logged after it
    assert c.count == 0
    fnn.fit(NET, params, O.sgd(0.1), MSE, x, y, verbose=0, callbacks=[plateau, ck], epochs=1)
    assert [p.name for p in tmp_path.iterdir()] == ["ck-0.1.npz"]
    assert fnn.train_step(NET, MSE, "sgd") is not None  # names work wherever an optimizer is taken


def test_a_flatten_network_trains_and_evaluates_on_images_as_on_their_rows():
    """x of any rank >= 2 is data, as Keras's fit takes it: a network that starts with Flatten
    trains on (N, 2, 3) images exactly as the same Dense layers on the (N, 6) rows (fit,
    validation_data, evaluate, predict); rank 1 is named with its two usual fixes."""
    rng = np.random.default_rng(1)
    images, y = rng.normal(size=(10, 2, 3)), rng.normal(size=(10, 2))
    rows = images.reshape(10, 6)
    flat_net, dense_net = fnn.serial(fnn.Flatten(), fnn.Dense(2)), fnn.serial(fnn.Dense(2))
    params = flat_net.init(KEY, (2, 3), jnp.float64)
    kw = dict(epochs=2, batch_size=4, verbose=0, key=KEY, shuffle=True)
    on_images = fnn.fit(flat_net, params, O.sgd(0.1), MSE, images, y, validation_data=(images[:3], y[:3]), **kw)
    on_rows = fnn.fit(dense_net, params[1:], O.sgd(0.1), MSE, rows, y, validation_data=(rows[:3], y[:3]), **kw)
    assert on_images.history.to_dict()["history"] == on_rows.history.to_dict()["history"]
    assert on_images.history.epochs_run == 2
    chex.assert_trees_all_equal(on_images.params[1:], on_rows.params)
    evaluated = fnn.evaluate(flat_net, on_images.params, MSE, images, y)
    assert evaluated == fnn.evaluate(dense_net, on_rows.params, MSE, rows, y)
    np.testing.assert_array_equal(
        fnn.predict(flat_net, on_images.params, images), fnn.predict(dense_net, on_rows.params, rows)
    )
    for call in (
        lambda: fnn.fit(NET, NET.init(KEY, (3,), jnp.float64), O.sgd(0.1), MSE, rows[:, 0], y, verbose=0),
        lambda: fnn.evaluate(NET, NET.init(KEY, (3,), jnp.float64), MSE, rows[:, 0], y),
    ):
        rank_1 = r"x must be \(samples, \*input_shape\).*x\[:, None\], one sample x\[None\]"
        with pytest.raises(ValueError, match=rank_1):
            call()
