"""What fit and fit_many check before anything is compiled (fnn/train/_checks.py): optimizers
by name, params and optimizer states that do not fit, hyperparameters that disagree, and labels
that must keep their values (issue 16 items 5, 7, 8 and 14)."""

import functools
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


def _one_model(params):
    """``params`` stacked for one model, by NumPy (an eager ``a[None]`` compiles a program per shape)."""
    return jax.device_put(jax.tree.map(lambda a: np.asarray(a)[None], params))


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
        r"^opt must be an optimizer \(a GradientTransformation, a pair \(init, update\) of callables, or an object "
        r"with init and update methods\) or an optimizer name, got a tuple of length 3"
    )
    with pytest.raises(TypeError, match=message):
        fnn.fit(NET, params, (opt.init, opt.update, opt.update), MSE, x, y, verbose=0)
    with pytest.raises(TypeError, match=r"got a list of length 2"):
        fnn.fit_many(NET, _one_model(params), [opt.init, "update"], MSE, x, y, verbose=0)


def test_integer_params_are_refused_before_anything_compiles(compiles):
    x, y = _problem()
    params = NET.init(KEY, (3,), jnp.float64)
    params[1]["b"] = jnp.zeros(2, jnp.int32)
    message = r"params\[1\]\['b'\] has dtype int32: .* if net.init gave this one, layer 1's init returned it"
    with compiles() as c, pytest.raises(TypeError, match=message):
        fnn.fit(NET, params, O.sgd(0.1), MSE, x, y, verbose=0)
    with pytest.raises(TypeError, match=r"params\[1\]\['b'\] has dtype int32"):
        fnn.fit_many(NET, _one_model(params), O.sgd(0.1), MSE, x, y, verbose=0)
    assert c.count == 0


def test_float8_params_are_refused_naming_the_leaf_before_anything_compiles(compiles):
    # float8 has no implicit promotion with float32: jax's TypePromotionError, or a "does not fit
    # the network" ValueError blaming x, came from inside the trace
    x, y = _problem()
    params = NET.init(KEY, (3,), jnp.float64)
    params[1]["w"] = np.asarray(params[1]["w"], jnp.float8_e4m3fn)
    said = r"^params\[1\]\['w'\] has dtype float8_e4m3fn; params must be float16, bfloat16, float32 or float64"
    with compiles() as c:
        for call in (
            lambda: fnn.fit(NET, params, O.sgd(0.1), MSE, x, y, verbose=0),
            lambda: fnn.fit_many(NET, _one_model(params), O.sgd(0.1), MSE, x, y, verbose=0),
            lambda: fnn.evaluate(NET, params, MSE, x, y),
            lambda: fnn.predict(NET, params, x),
        ):
            with pytest.raises(TypeError, match=said):
                call()
    assert c.count == 0


def test_64bit_jax_arrays_made_before_x64_was_turned_off_are_refused_naming_the_leaf(compiles):
    """JAX computes them in 32 bits once x64 is off: the compiled epoch refused the mix in its
    own words (a scan carry of two dtypes), after 13 truncation warnings. NumPy float64 params
    are cast, as JAX casts them."""
    x, y = _problem()
    params = NET.init(KEY, (3,), jnp.float64)  # jax arrays, x64 on (conftest)
    state = O.adam(0.1).init(params)
    numpy32, stacked = jax.tree.map(lambda a: np.asarray(a, np.float32), params), _one_model(params)
    said = r"^params\[0\]\['b'\] is a float64 jax array, but jax_enable_x64 is off .* or cast its 64-bit leaves"
    with jax.enable_x64(False), warnings.catch_warnings():
        warnings.simplefilter("error")  # and no truncation warning before the error
        with compiles() as c:
            for call in (
                lambda: fnn.fit(NET, params, O.sgd(0.1), MSE, x, y, verbose=0),
                lambda: fnn.fit_many(NET, stacked, O.sgd(0.1), MSE, x, y),
                lambda: fnn.evaluate(NET, params, MSE, x, y),
                lambda: fnn.predict(NET, params, x),
            ):
                with pytest.raises(ValueError, match=said):
                    call()
            with pytest.raises(ValueError, match=r"^opt_state.hparams\['b1'\] is a float64 jax array"):
                fnn.fit(NET, numpy32, O.adam(0.1), MSE, x, y, verbose=0, opt_state=state)
        assert c.count == 0
        numpy64 = jax.tree.map(np.asarray, params)
        assert fnn.predict(NET, numpy64, x[:2]).dtype == np.float32


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


def test_a_second_fit_from_a_state_traces_nothing_to_check_it():
    """The state is checked against ``opt.init(params)`` traced once per optimizer, params'
    shapes and dtypes and JAX settings: a second fit traces nothing; the state of another
    optimizer, or of params of another dtype, is still refused."""
    x, y = _problem()
    params = NET.init(KEY, (3,), jnp.float64)
    state = O.adam(0.1).init(params)
    traced: list = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/jaxpr_trace_duration":
            traced.append(kwargs.get("fun_name"))

    fit = lambda s, p=params: fnn.fit(NET, p, O.adam(0.1), MSE, x, y, verbose=0, opt_state=s, epochs=0)
    fit(state)
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        fit(state)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert traced == []
    with pytest.raises(ValueError, match="another optimizer"):
        fit(O.sgd(0.1, momentum=0.9).init(params))
    with pytest.raises(ValueError, match=r"has dtype float64, opt.init\(params\) builds float32"):
        fit(state, NET.init(KEY, (3,), jnp.float32))


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


def test_an_opt_state_or_checkpoint_holding_a_value_no_optimizer_takes_is_refused_before_compiling(tmp_path, compiles):
    """A state put together by hand, or a checkpoint edited outside fnn, holding a negative or
    NaN learning rate (or b1 = 1) trained with a warning: set_hyperparams refuses them, and so
    does fit now, before anything is compiled."""
    x, y = _problem()
    params = NET.init(KEY, (3,), jnp.float64)
    state = O.adam(1e-3).init(params)
    for name, bad in (("learning_rate", -1.0), ("learning_rate", np.nan), ("b1", 1.0)):
        held = state._replace(hparams={**state.hparams, name: jnp.asarray(bad, state.hparams[name].dtype)})
        said = rf"^fit: opt_state holds a {name} no optimizer takes \({name} must be finite and "
        with compiles() as c, pytest.raises(ValueError, match=said):
            fnn.fit(NET, params, O.adam(1e-3), MSE, x, y, verbose=0, opt_state=held, epochs=1)
        assert c.count == 0
        with pytest.raises(ValueError, match=f"^fit_many: opt_state holds a {name} no optimizer takes"):
            fnn.fit_many(NET, _one_model(params), O.adam(1e-3), MSE, x, y, opt_state=_one_model(held))
        path = str(tmp_path / f"{name}-{bad}.npz")
        fnn.checkpoint.save(path, params=params, opt_state=held, epoch=1)
        with (
            compiles() as c,
            pytest.raises(ValueError, match=rf"^fit: checkpoint '{path}' holds a {name} no optimizer"),
        ):
            fnn.fit(NET, params, O.adam(1e-3), MSE, x, y, verbose=0, checkpoint=path, epochs=2)
        assert c.count == 0


def test_data_narrowed_to_the_params_dtype_on_an_accelerator_under_a_disallowing_transfer_guard(accelerator):
    """float64 jax data for float32 params, on a GPU (the fixture makes the CPU behave so) with
    implicit transfers refused: the narrowing's finiteness verdict is read explicitly, and a
    value that overflows float32 is named as on the host."""
    params = NET.init(KEY, (3,), jnp.float32)
    x = np.random.default_rng(0).normal(size=(6, 3))
    big = x.copy()
    big[4, 2] = 1e39
    x, big = jax.device_put(x), jax.device_put(big)
    want = fnn.predict(NET, params, np.asarray(x, np.float32))
    with jax.transfer_guard("disallow"):
        got = fnn.predict(NET, params, x)
        said = r"^x contains 1 value\(s\) that overflow float32 .* first at index \(4, 2\)"
        with pytest.raises(ValueError, match=said):
            fnn.predict(NET, params, big)
    np.testing.assert_array_equal(got, want)


def test_a_held_schedule_s_values_are_named_in_the_schedule_s_order_and_the_opt_s_values_as_given():
    """The state's schedule values are read to the host in one transfer (a dict it gives back
    sorted); the warning lists them in the schedule's own order. A value of another dtype in
    the state is compared with opt's own, and opt's is shown as opt holds it."""
    from fnn.train._checks import hyperparams_differ

    x, y = _problem()
    params = NET.init(KEY, (3,), jnp.float64)
    decay = lambda rate: O.adam(fnn.schedules.exponential_decay(rate, 5, 0.5))
    said = r"learning_rate schedule values init_value=0\.01, decay_rate=0\.5 \(opt says"
    with pytest.warns(RuntimeWarning, match=said):
        fnn.fit(NET, params, decay(1e-3), MSE, x, y, verbose=0, opt_state=decay(1e-2).init(params), epochs=1)
    whole = O.set_hyperparams(O.adam(1e-2).init(params), learning_rate=jnp.asarray(1, jnp.int32))
    assert hyperparams_differ(O.adam(1e-2), whole) == ["learning_rate=1 (opt says 0.01)"]


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


def _dense(dtype, w, b):
    """One Dense layer's params, built by NumPy (no init program to compile)."""
    return jax.device_put([{"w": np.asarray(w, dtype), "b": np.asarray(b, dtype)}])


def test_half_precision_params_score_targets_and_weights_unrounded_as_keras_does():
    # Keras 3's losses take a bfloat16 Dense's outputs against float32 targets: 3.75 here.
    # Rounded to bfloat16 the targets were 1000, 1000, 1004, 1000 (4.0), the weight 1.0078.
    net = fnn.mlp([1])
    params = _dense(jnp.bfloat16, [[0.0]], [1000.0])  # predicts exactly 1000
    x = np.zeros((4, 1), np.float32)
    y = np.array([[1001.0], [1002.0], [1003.0], [999.0]], np.float32)
    w = np.array([1.01, 1.0, 1.0, 1.0])
    want = np.mean((y.astype(np.float64) - 1000.0) ** 2)
    want_w = np.mean(w * (y[:, 0].astype(np.float64) - 1000.0) ** 2)
    assert (want, want_w) == (3.75, 3.7525)
    run = dict(batch_size=4, epochs=1, verbose=0, shuffle=False)
    fit = fnn.fit(net, params, O.sgd(0.0), MSE, x, y, validation_data=(x, y), **run).history
    assert fit["loss"] == fit["val_loss"] == [want]
    assert fnn.evaluate(net, params, MSE, x, y)["loss"] == want
    weighted = fnn.fit(net, params, O.sgd(0.0), MSE, x, y, sample_weight=w, **run).history["loss"]
    np.testing.assert_allclose(weighted, [want_w], rtol=1e-6)
    np.testing.assert_allclose(fnn.evaluate(net, params, MSE, x, y, sample_weight=w)["loss"], want_w, rtol=1e-6)


def test_finite_data_that_overflows_the_dtype_it_is_held_in_is_refused_before_compiling(compiles):
    net = fnn.mlp([2])
    p32 = _dense(np.float32, np.full((3, 2), 0.1), np.zeros(2))
    p16 = _dense(np.float16, np.full((3, 2), 0.1), np.zeros(2))
    x, y = _problem()  # float64: float32 params hold it in float32
    big = x.copy()
    big[5, 1], big[6, 0] = 1e39, -2e39
    in_x = r"^x contains 2 value\(s\) that overflow float32 .*first at index \(5, 1\); the largest magnitude is 2e\+39 "
    sgd = O.sgd(0.1)
    with compiles() as c:
        for call in (
            lambda: fnn.fit(net, p32, sgd, MSE, big, y, verbose=0),
            lambda: fnn.evaluate(net, p32, MSE, big, y),
            lambda: fnn.predict(net, p32, big),
        ):
            with pytest.raises(ValueError, match=in_x):
                call()
        big_y = y.copy()
        big_y[7, 0] = 1e39  # in the validation split: located by its index in y
        with pytest.raises(ValueError, match=r"^y contains 1 value\(s\) that overflow float32 .*index \(7, 0\)"):
            fnn.fit(net, p32, sgd, MSE, x, big_y, verbose=0, validation_split=0.25)
        with pytest.raises(ValueError, match=r"^validation_data\[1\] contains 1 value\(s\) .*index \(7, 0\)"):
            fnn.fit(net, p32, sgd, MSE, x, y, verbose=0, validation_data=(x, big_y))
        with pytest.raises(ValueError, match=r"^sample_weight contains 1 value\(s\) that overflow float32 .*\(2,\)"):
            fnn.evaluate(net, p32, MSE, x, y, sample_weight=np.array([1, 1, 1e39, 1, 1, 1, 1, 1]))
        with pytest.raises(ValueError, match=r"^x contains 1 value\(s\) that overflow float16 .*at most 6.55e\+04"):
            fnn.fit(net, p16, sgd, MSE, np.where(big > 1e30, 7e4, x).astype(np.float32), y, verbose=0)
    assert c.count == 0
    # float16 holds at most 65504, but float16 params' targets are held in float32
    x32, prices = x.astype(np.float32), (7e4 + y).astype(np.float32)
    want = np.mean((np.asarray(fnn.predict(net, p16, x32), np.float64) - prices) ** 2)
    np.testing.assert_allclose(fnn.evaluate(net, p16, MSE, x32, prices)["loss"], want, rtol=1e-6)
    # jax arrays, converted on the device: the same message; values near float32's max, held
    # finite, are not refused (their sum would overflow: the check reads each value's bits)
    with pytest.raises(ValueError, match=r"^x contains 1 value\(s\) that overflow float16 .*index \(5, 1\)"):
        fnn.predict(net, p16, jax.device_put(np.where(big > 1e30, 7e4, x).astype(np.float32)))
    out = fnn.predict(net, p32, jax.device_put(np.full((2, 3), 3e38)))
    np.testing.assert_allclose(out, np.full((2, 2), 3 * np.float32(0.1) * np.float32(3e38)), rtol=1e-6)


def test_values_that_round_to_inf_in_bfloat16_are_refused_from_numpy_as_from_jax(compiles):
    # ml_dtypes' cast to bfloat16 never raises under np.errstate(over="raise"), as float16's does
    net = fnn.mlp([2])
    pb = _dense(jnp.bfloat16, np.full((3, 2), 0.1), np.zeros(2))
    largest = float(jnp.finfo(jnp.bfloat16).max)  # 0x7F7F; halfway to 2^128 rounds to inf (even)
    halfway = np.array(0x7F7F8000, np.uint32).view(np.float32)
    below = np.nextafter(halfway, np.float32(0))
    said = r"^x contains 1 value\(s\) that overflow bfloat16 \(the dtype it is held in\), the first at index \(1, 2\)"
    for v, dtype in ((halfway, np.float32), (3.4e38, np.float32), (halfway, np.float64), (1e39, np.float64)):
        x = np.zeros((2, 3), dtype)
        x[1, 2] = v
        with compiles() as c:  # NumPy data is converted on the host
            with pytest.raises(ValueError, match=said):
                fnn.predict(net, pb, x)
            with pytest.raises(ValueError, match=said):
                fnn.fit(net, pb, O.sgd(0.1), MSE, x, np.zeros((2, 2)), verbose=0)
        assert c.count == 0
        with pytest.raises(ValueError, match=said):  # the jax path's message
            fnn.predict(net, pb, jax.device_put(x))
    for v in (largest, below):  # held finite: no refusal, from NumPy or jax
        x = np.zeros((2, 3), np.float32)
        x[1, 2] = v
        assert float(np.asarray(x.astype(jnp.bfloat16))[1, 2]) == largest
        assert fnn.predict(net, pb, x).dtype == jnp.bfloat16
        assert fnn.predict(net, pb, jax.device_put(x)).dtype == jnp.bfloat16


@pytest.mark.parametrize(
    "schedule,message,programs",
    [
        (
            lambda step: jnp.where(step < 3, 0.01, jnp.nan),
            r"learning_rate schedule gives nan at step 3 \(this run's 4 updates use steps 0\.\.3\)",
            None,
        ),
        (lambda step: 0.1 - 0.05 * step, r"gives -0\.05\d* at step 3", None),
        (fnn.schedules.exponential_decay(0.1, 1, 1e200), r"gives inf at step 2", 1),
    ],
)
def test_a_schedule_that_turns_bad_during_the_run_is_refused_before_training(schedule, message, programs, compiles):
    x, y = _problem()
    params = NET.init(KEY, (3,), jnp.float64)
    with compiles() as c, pytest.raises(ValueError, match=message):
        fnn.fit(NET, params, O.sgd(schedule), MSE, x, y, epochs=2, batch_size=4, verbose=0)
    if programs is not None:  # an fnn schedule is checked in one program of its rule, not op by op
        assert c.count == programs


def test_the_schedule_check_covers_the_steps_this_run_uses_from_the_state_s_count(tmp_path, compiles):
    """A run's updates use the steps from its state's count on: a fresh state with
    initial_epoch=2 of 4 makes 4 updates, steps 0..3 (not 0..7); the state it ends with, or a
    checkpoint of it, goes on at step 4, where this schedule turns negative (SPEC section 5)."""
    x, y = _problem()  # 2 updates an epoch
    params = NET.init(KEY, (3,), jnp.float64)
    opt = O.sgd(lambda step: 0.5 - 0.125 * step)  # >= 0 through step 4, -0.125 at step 5
    fresh = fnn.fit(NET, params, opt, MSE, x, y, epochs=4, initial_epoch=2, batch_size=4, verbose=0)
    assert int(fresh.opt_state.count) == 4 and fresh.history.epochs == [2, 3]
    message = (
        r"gives -0\.125 at step 5 \(this run's 4 updates use steps 4\.\.7\); learning_rate must be finite and >= 0"
    )
    with compiles() as c, pytest.raises(ValueError, match=message):
        fnn.fit(NET, fresh.params, opt, MSE, x, y, epochs=2, batch_size=4, verbose=0, opt_state=fresh.opt_state)
    assert c.count == 0
    path = tmp_path / "run.npz"
    fnn.fit(NET, params, opt, MSE, x, y, epochs=2, batch_size=4, verbose=0, checkpoint=path)
    with pytest.raises(ValueError, match=message):  # resumed at epoch 2, count 4
        fnn.fit(NET, params, opt, MSE, x, y, epochs=4, batch_size=4, verbose=0, checkpoint=path)
    # a run that makes no update has no step to check
    done = fnn.fit(NET, params, opt, MSE, x, y, epochs=2, batch_size=4, verbose=0, checkpoint=path)
    assert done.history.epochs_run == 2


def _falling(step):
    return 0.5 - 0.125 * step  # >= 0 through step 4, -0.125 at step 5


def _all(tree):
    return jax.tree.map(lambda _: True, tree)


@pytest.mark.parametrize(
    "make",
    [
        lambda s: O.chain(O.scale_by_adam(), O.scale_by_learning_rate(s)),
        lambda s: O.chain(O.clip_by_value(1.0), O.chain(O.trace(0.5), O.scale_by_learning_rate(s))),
        lambda s: O.masked(O.chain(O.trace(0.5), O.scale_by_learning_rate(s)), _all),
        lambda s: O.chain(O.clip_by_value(1.0), O.sgd(s)),  # an injected rate inside a chain
        lambda s: O.chain(O.scale_by_learning_rate(s, flip_sign=False), O.scale(-1.0)),  # a rate all the same
        # a factory of fnn's transforms closing over the schedule: found in the transform it builds
        lambda s: O.inject_hyperparams(lambda wd: O.chain(O.add_decayed_weights(wd), O.scale_by_learning_rate(s)))(
            wd=0.0
        ),
    ],
    ids=["chain", "nested", "masked", "injected-in-chain", "unflipped", "in-a-factory"],
)
def test_a_schedule_held_by_fnn_s_transforms_is_checked_as_an_injected_one(make, compiles):
    """Not only an injected schedule: a plain chain's scale_by_learning_rate(schedule), however
    nested, is refused where it turns negative, with the injected one's message."""
    x, y = _problem()  # 2 updates an epoch
    params = NET.init(KEY, (3,), jnp.float64)
    message = r"opt: the learning_rate schedule gives -0\.125 at step 5 \(this run's 6 updates use steps 0\.\.5\); "
    message += r"learning_rate must be finite and >= 0"
    with compiles() as c, pytest.raises(ValueError, match=message):
        fnn.fit(NET, params, make(_falling), MSE, x, y, epochs=3, batch_size=4, verbose=0)
    assert c.count == 0
    # the same optimizer over the steps where the schedule is >= 0 trains
    assert fnn.fit(NET, params, make(_falling), MSE, x, y, epochs=2, batch_size=4, verbose=0).history.epochs_run == 2


def test_a_plain_chain_s_schedule_is_checked_from_its_state_s_count_in_fit_fit_many_and_sweep(compiles):
    x, y = _problem()
    params = NET.init(KEY, (3,), jnp.float64)
    opt = O.chain(O.trace(0.5), O.scale_by_learning_rate(_falling))
    first = fnn.fit(NET, params, opt, MSE, x, y, epochs=2, batch_size=4, verbose=0)
    assert int(first.opt_state[1].count) == 4  # scale_by_schedule's count: the next step is 4
    resumed = r"gives -0\.125 at step 5 \(this run's 2 updates use steps 4\.\.5\)"
    with compiles() as c, pytest.raises(ValueError, match=resumed):
        fnn.fit(NET, first.params, opt, MSE, x, y, epochs=1, batch_size=4, verbose=0, opt_state=first.opt_state)
    assert c.count == 0
    # scale_by_schedule's factor: any sign (its own convention), but finite
    nan_late = O.chain(O.scale_by_schedule(lambda step: jnp.where(step < 3, -0.1, jnp.nan)))
    said = r"the scale_by_schedule schedule gives nan at step 3 .*; scale_by_schedule must be finite"
    with pytest.raises(ValueError, match=said):
        fnn.fit(NET, params, nan_late, MSE, x, y, epochs=2, batch_size=4, verbose=0)
    assert fnn.fit(NET, params, nan_late, MSE, x, y, epochs=1, batch_size=4, verbose=0).history.epochs_run == 1
    # fit_many and sweep check every model's steps as fit does, before anything compiles
    with compiles() as c:
        with pytest.raises(ValueError, match=r"gives -0\.125 at step 5 \(this run's 6 updates"):
            fnn.fit_many(NET, _one_model(params), opt, MSE, x, y, epochs=3, batch_size=4)
        with pytest.raises(ValueError, match=r"gives -0\.125 at step 5 \(this run's 6 updates"):
            fnn.sweep(NET, opt, MSE, x, y, seeds=[0], epochs=3, batch_size=4)
    assert c.count == 0


def test_learning_rates_that_cannot_be_held_or_are_negative_are_refused():
    with pytest.raises(ValueError, match="value must be >= 0"):
        fnn.schedules.constant(-0.1)
    with pytest.raises(ValueError, match=r"values\[1\] must be >= 0"):
        fnn.schedules.piecewise_constant([3], [0.1, -0.1])
    with pytest.raises(ValueError, match="must be finite"):
        fnn.schedules.exponential_decay(float("nan"), 10, 0.5)
    with jax.enable_x64(False):
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


def _sgd_init(params):
    return jnp.zeros((), jnp.int32)  # a step count


def _sgd_step(grads, state, params=None):
    return jax.tree.map(lambda g: -0.1 * g, grads), state + 1


BROKEN_PAIRS = {  # update functions that break (grads, state, params) -> (updates, new_state)
    "forgets the state": (
        lambda grads, state, params=None: _sgd_step(grads, state)[0],
        TypeError,
        r"^opt.update \(.*<lambda>\) returned one tree shaped like params: update\(grads, state, params\) must "
        r"return the pair \(updates, new_state\); return the state too",
    ),
    "returns three things": (
        lambda grads, state, params=None: (*_sgd_step(grads, state), None),
        TypeError,
        r"returned a tuple of length 3: update\(grads, state, params\) must return the pair \(updates, new_state\)",
    ),
    "takes no params (torch style)": (
        lambda grads, state: _sgd_step(grads, state),
        TypeError,
        r"^opt.update \(.*<lambda>\) must be callable as update\(grads, state, params\) .*signature is "
        r"\(grads, state\)",
    ),
    "changes the state's dtype": (
        lambda grads, state, params=None: (_sgd_step(grads, state)[0], state + 0.5),
        ValueError,
        r"returned a new state \(its second result\) that does not match the state it was given: new_state has "
        r"dtype float64, opt.init\(params\) builds int32",
    ),
    "changes the state's shape": (
        lambda grads, state, params=None: (_sgd_step(grads, state)[0], jnp.stack([state, state])),
        ValueError,
        r"new_state has shape \(2,\), opt.init\(params\) builds \(\)",
    ),
    "changes the state's structure": (
        lambda grads, state, params=None: (_sgd_step(grads, state)[0], {"count": state}),
        ValueError,
        r"does not match the state it was given: missing new_state; unexpected new_state\['count'\]",
    ),
    "sums the updates": (
        lambda grads, state, params=None: (jax.tree.map(jnp.sum, _sgd_step(grads, state)[0]), state),
        ValueError,
        r"returned updates \(its first result\) that do not match params: updates\[0\]\['b'\] has shape \(\), "
        r"params have \(5,\); updates\[0\]\['w'\] has shape \(\), params have \(3, 5\)",
    ),
    "needs an extra argument (optax's reduce_on_plateau: value=)": (
        lambda grads, state, params=None, *, value: _sgd_step(grads, state),
        TypeError,
        r"signature is \(grads, state, params=None, \*, value\); .* \(fit passes no extra arguments such as optax's "
        r"value=; to lower the learning rate when the loss stalls, use fnn\.callbacks\.ReduceLROnPlateau\)$",
    ),
    "truncates the updates to integers": (
        lambda grads, state, params=None: (
            jax.tree.map(lambda u: u.astype(jnp.int32), _sgd_step(grads, state)[0]),
            state,
        ),
        TypeError,
        r"^opt.update( \(.*<lambda>\))? returned updates\[0\]\['b'\] of dtype int32 for params of dtype float64: "
        r"updates must be floating arrays",
    ),
    "fails in its own code": (
        lambda grads, state, params=None: (grads["w"], state),
        TypeError,
        r"fails on grads shaped like params \(called as update\(grads, state, params\)\): list indices",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN_PAIRS))
def test_a_plain_pair_that_breaks_the_protocol_is_named_before_anything_compiles(case, compiles):
    # was a bare "not enough values to unpack" / "update() takes 2 positional arguments" / scan's
    # "carry input and carry output must have equal types" from inside the compiled epoch
    update, kind, message = BROKEN_PAIRS[case]
    x, y = _problem()
    params = NET.init(KEY, (3,), jnp.float64)
    stacked = _one_model(params)
    with compiles() as c:
        with pytest.raises(kind, match=message):
            fnn.fit(NET, params, (_sgd_init, update), MSE, x, y, epochs=1, verbose=0)
        with pytest.raises(kind, match=message):
            fnn.fit_many(NET, stacked, [_sgd_init, update], MSE, x, y, epochs=1, verbose=0)
        with pytest.raises(kind, match=message):  # before it initialises the params
            fnn.sweep(NET, O.GradientTransformation(_sgd_init, update), MSE, x, y, epochs=1, dtype=jnp.float64)
        chained = O.chain(O.clip_by_value(1.0), O.GradientTransformation(_sgd_init, update))
        with pytest.raises((TypeError, ValueError), match=r"^opt\.update "):  # inside a chain of fnn's own
            fnn.fit(NET, params, chained, MSE, x, y, epochs=1, verbose=0)
    assert c.count == 0


def test_a_sweep_of_a_hyperparameter_the_state_does_not_hold_names_the_argument(compiles):
    x, y = _problem()
    plain = O.GradientTransformation(_sgd_init, _sgd_step)
    with compiles() as c, pytest.raises(ValueError, match=r"^learning_rates: sweep sets learning_rate in opt's state"):
        fnn.sweep(NET, plain, MSE, x, y, learning_rates=[0.1, 0.2], epochs=1, dtype=jnp.float64)
    assert c.count == 0


def test_a_correct_plain_pair_trains_as_before_and_is_checked_once(compiles):
    x, y = _problem()
    params = NET.init(KEY, (3,), jnp.float64)
    traced = []

    def update(grads, state, params=None):
        traced.append(1)
        return _sgd_step(grads, state)

    first = fnn.fit(NET, params, (_sgd_init, update), MSE, x, y, epochs=2, verbose=0, batch_size=4)
    assert traced and int(first.opt_state) == 4  # two epochs of two steps
    reference = fnn.fit(NET, params, O.sgd(0.1), MSE, x, y, epochs=2, verbose=0, batch_size=4)
    assert first.history["loss"] == reference.history["loss"]
    chex.assert_trees_all_close(first.params, reference.params, rtol=1e-15)
    traced.clear()
    with compiles() as c:  # the check is cached like the compiled epoch: no trace, no compile
        again = fnn.fit(NET, params, (_sgd_init, update), MSE, x, y, epochs=2, verbose=0, batch_size=4)
    assert traced == [] and c.count == 0
    chex.assert_trees_all_equal(again.params, first.params)


def test_pairs_the_protocol_allows_are_not_refused():
    """What the compiled loop takes, the check takes: a state holding a typed PRNG key (optax's
    noisy_sgd), an update adapted by a functools.wraps decorator (its wrapper is what fit calls),
    a Python-number state (weakly typed: the loop carries it in the params' dtype)."""
    x, y = _problem()
    params = NET.init(KEY, (3,), jnp.float64)

    def keyed_init(params):
        return (jax.random.key(0), jnp.zeros((), jnp.int32))

    def keyed_update(grads, state, params=None):
        key, count = state
        return jax.tree.map(lambda g: -0.1 * g, grads), (jax.random.split(key)[0], count + 1)

    def two_argument(grads, state):  # torch's habit, adapted below
        return _sgd_step(grads, state)

    @functools.wraps(two_argument)
    def adapted(grads, state, params=None):
        return two_argument(grads, state)

    def weak_update(grads, state, params=None):
        return jax.tree.map(lambda g: -0.1 * g, grads), state + sum(jnp.sum(g) for g in jax.tree.leaves(grads))

    reference = fnn.fit(NET, params, O.sgd(0.1), MSE, x, y, epochs=1, verbose=0, batch_size=4)
    for pair in ((keyed_init, keyed_update), (_sgd_init, adapted), (lambda params: 0.0, weak_update)):
        got = fnn.fit(NET, params, pair, MSE, x, y, epochs=1, verbose=0, batch_size=4)
        assert got.history["loss"] == reference.history["loss"]


def test_an_object_with_init_and_update_methods_is_an_optimizer(compiles):
    """Duck typing, as optax's own code: a user's class with init and update methods, and
    optax.MultiSteps (not a GradientTransformation; optax's loops call its methods), train."""
    x, y = _problem()
    params = NET.init(KEY, (3,), jnp.float64)

    class PlainSGD:  # a torch user's habit: the optimizer an object with methods
        def __init__(self, learning_rate):
            self.learning_rate = learning_rate

        def init(self, params):
            return ()

        def update(self, grads, state, params=None):
            return jax.tree.map(lambda g: -self.learning_rate * g, grads), state

    reference = fnn.fit(NET, params, O.sgd(0.1), MSE, x, y, epochs=1, verbose=0, batch_size=4)
    got = fnn.fit(NET, params, PlainSGD(0.1), MSE, x, y, epochs=1, verbose=0, batch_size=4)
    assert got.history["loss"] == reference.history["loss"]
    chex.assert_trees_all_close(got.params, reference.params, rtol=1e-15)

    optax = pytest.importorskip("optax")
    multi = optax.MultiSteps(optax.sgd(0.1), every_k_schedule=2)  # a step every 2 batches
    kw = dict(epochs=2, verbose=0, batch_size=4, shuffle=False)
    documented = fnn.fit(NET, params, multi.gradient_transformation(), MSE, x, y, **kw)
    got = fnn.fit(NET, params, multi, MSE, x, y, **kw)
    assert got.history["loss"] == documented.history["loss"]
    chex.assert_trees_all_equal((got.params, got.opt_state), (documented.params, documented.opt_state))
    with compiles() as c:  # the same object again: the same compiled epoch
        again = fnn.fit(NET, params, multi, MSE, x, y, **kw)
    assert c.count == 0
    chex.assert_trees_all_equal(again.params, got.params)
    many = fnn.fit_many(NET, jax.tree.map(lambda a: np.stack([a, a]), params), multi, MSE, x, y, **kw)
    chex.assert_trees_all_close(jax.tree.map(lambda a: np.asarray(a)[1], many.params), got.params, rtol=1e-13)


def test_an_optimizer_that_needs_optaxs_value_argument_is_refused_naming_what_fit_offers(compiles):
    """fit calls update(grads, state, params): optax's reduce_on_plateau, which reads the loss as
    update(..., value=loss), cannot run in it, in optax's chain or in fnn's (which pass value= on)."""
    optax = pytest.importorskip("optax")
    x, y = _problem()
    params = NET.init(KEY, (3,), jnp.float64)
    plateau = optax.contrib.reduce_on_plateau()
    message = (
        r"^opt\.update .*missing 1 required keyword-only argument: 'value' \(fit passes no extra arguments such as "
        r"optax's value=; to lower the learning rate when the loss stalls, use fnn\.callbacks\.ReduceLROnPlateau\)$"
    )
    with compiles() as c:
        for opt in (optax.chain(optax.sgd(0.1), plateau), O.chain(O.sgd(0.1), plateau)):
            with pytest.raises(TypeError, match=message):
                fnn.fit(NET, params, opt, MSE, x, y, epochs=1, verbose=0)
    assert c.count == 0


def test_fnns_own_optimizers_are_not_traced_for_the_check():
    from fnn.train import _checks  # private: whether the protocol check traced

    x, y = _problem()
    params = NET.init(KEY, (3,), jnp.float64)
    before = _checks._check_opt_update.cache_info()
    scheduled = O.adam(fnn.schedules.exponential_decay(0.1, 10, 0.5))
    for opt in ("sgd", scheduled, O.chain(O.clip_by_value(1.0), O.sgd(0.1))):
        fnn.fit(NET, params, opt, MSE, x, y, epochs=1, verbose=0, batch_size=4)
    after = _checks._check_opt_update.cache_info()
    assert (after.hits, after.misses) == (before.hits, before.misses)


def test_an_optimizer_state_holding_a_typed_key_resumes_with_x64_on_and_off():
    """optax.add_noise keeps a typed PRNG key in its state: the 64-bit check passes it by (its
    dtype is not one x64 changes; asking JAX to canonicalize it raised an internal error)."""
    import optax

    x, y = _problem()
    opt = optax.chain(optax.add_noise(0.01, 0.55, 0), optax.sgd(0.1))
    for on in (True, False):
        with jax.enable_x64(on):
            params = NET.init(jax.random.key(0), (3,))
            first = fnn.fit(NET, params, opt, MSE, x, y, verbose=0, epochs=1)
            assert any(jax.dtypes.issubdtype(k.dtype, jax.dtypes.prng_key) for k in jax.tree.leaves(first.opt_state))
            again = fnn.fit(NET, first.params, opt, MSE, x, y, verbose=0, epochs=1, opt_state=first.opt_state)
            assert np.isfinite(again.history["loss"][-1])


def _scale(name="scale", only=None):
    """A user layer ``x * s`` whose ``s`` follows the input's shape; ``only``: the one input shape
    its init takes (an init that needs something unusual)."""

    def init(key, shape, dtype=jnp.float32):
        if only is not None and tuple(shape) != only:
            raise ValueError(f"this layer takes inputs of shape {only} only")
        return tuple(shape), {"s": jnp.ones(shape, dtype)}

    def forward(p, x, key=None, train=False):
        return x * p["s"], x

    return fnn.Layer(init, forward, lambda p, x, dy: ({"s": jnp.sum(dy * x, 0)}, dy * p["s"]), name)


def _wrong_args_calls(net, params, x, y):
    """Every door that checks params and x against the network: fit, predict, evaluate,
    gradcheck, value_and_grad (manual, autodiff, under jit), train_step (manual, autodiff),
    eval_step and with_manual_vjp's function."""
    sgd = O.sgd(0.1)

    def step(grad):  # donated: a copy of the params each time
        copied = jax.tree.map(lambda a: jax.device_put(np.array(a)), params)  # a NumPy copy: no program
        return fnn.train_step(net, "mse", sgd, grad=grad)(copied, sgd.init(copied), x, y)

    return {
        "fit": lambda: fnn.fit(net, params, "sgd", "mse", x, y, epochs=0, verbose=0),
        "predict": lambda: fnn.predict(net, params, x),
        "evaluate": lambda: fnn.evaluate(net, params, "mse", x, y),
        "gradcheck": lambda: fnn.gradcheck(net, "mse", params, x, y),
        "value_and_grad": lambda: fnn.value_and_grad(net, "mse")(params, x, y),
        "value_and_grad autodiff": lambda: fnn.value_and_grad(net, "mse", mode="autodiff")(params, x, y),
        "value_and_grad jit": lambda: jax.jit(fnn.value_and_grad(net, "mse"))(params, x, y),
        "train_step": lambda: step("manual"),
        "train_step autodiff": lambda: step("autodiff"),
        "eval_step": lambda: fnn.eval_step(net, "mse")(params, x, y),
        "with_manual_vjp": lambda: fnn.with_manual_vjp(net)(params, x),
    }


DOORS = list(_wrong_args_calls(None, None, None, None))


@pytest.mark.parametrize("door", DOORS)
def test_params_whose_layers_disagree_are_named_not_x_that_fits_the_first_layer(door):
    """x of the features the first layer takes; a later layer's kernel replaced by one of another
    width (or params of another network): the params are at fault, named leaf by leaf, not x."""
    net = fnn.mlp([4, 3])
    params = net.init(KEY, (5,))
    x, y = np.ones((10, 5), np.float32), np.zeros((10, 3), np.float32)
    replaced = [params[0], {"w": np.zeros((6, 3), np.float32), "b": params[1]["b"]}]
    message = r"^params do not fit the network for inputs of shape \(5,\): params\[1\]\['w'\] has shape \(6, 3\), "
    with pytest.raises(ValueError, match=message + r"the network builds \(4, 3\)(\n|$)"):
        _wrong_args_calls(net, replaced, x, y)[door]()
    # a user layer first, its parameter following the input's shape: the Dense after it is named
    user = fnn.serial(_scale(), fnn.Dense(4), fnn.Dense(3))
    params = user.init(KEY, (5,))
    replaced = [params[0], params[1], {"w": np.zeros((6, 3), np.float32), "b": params[2]["b"]}]
    message = r"^params do not fit the network .*: params\[2\]\['w'\] has shape \(6, 3\), "
    with pytest.raises(ValueError, match=message + r"the network builds \(4, 3\)(\n|$)"):
        _wrong_args_calls(user, replaced, x, y)[door]()


@pytest.mark.parametrize("door", DOORS)
def test_params_of_another_network_are_named_leaf_by_leaf(door):
    """Params of another, self-consistent network: every door refuses them (value_and_grad,
    train_step, eval_step and with_manual_vjp ran and trained the other network silently)."""
    net, other = fnn.mlp([4, 3]), fnn.mlp([8, 3]).init(KEY, (5,))
    x, y = np.ones((10, 5), np.float32), np.zeros((10, 3), np.float32)
    message = (
        r"^params do not fit the network for inputs of shape \(5,\): params\[0\]\['b'\] has shape \(8,\), the "
        r"network builds \(4,\); params\[0\]\['w'\] has shape \(5, 8\), the network builds \(5, 4\); "
        r"params\[1\]\['w'\] has shape \(8, 3\), the network builds \(4, 3\)(\n|$)"
    )
    with pytest.raises(ValueError, match=message):
        _wrong_args_calls(net, other, x, y)[door]()


@pytest.mark.parametrize("door", DOORS)
def test_x_of_the_wrong_feature_count_is_still_named(door):
    """The params fit each other: x's feature count is what is wrong, and every door names x
    in fit's words, with or without a user layer."""
    x, y = np.ones((10, 6), np.float32), np.zeros((10, 3), np.float32)
    for net in (fnn.mlp([4, 3]), fnn.serial(_scale(), fnn.Dense(4), fnn.Dense(3))):
        params = net.init(KEY, (5,))
        features = r"layer 0 \(dense_0\) expects 5 input features, got 6" if len(params) == 2 else "scale"
        message = r"^x of shape \(10, 6\) does not fit the network: " + ("" if len(params) == 2 else ".*")
        with pytest.raises(ValueError, match=message + features) as err:
            _wrong_args_calls(net, params, x, y)[door]()
        assert "params do not fit" not in str(err.value)


def test_a_network_whose_init_takes_one_input_shape_only_keeps_the_network_s_message():
    """No verdict on the params where the network cannot build params for other shapes: the
    message is the network's own, after fit's words, in value_and_grad's function too."""
    net = fnn.serial(_scale(only=(5,)), fnn.Dense(4), fnn.Dense(3))
    params = net.init(KEY, (5,))
    replaced = [params[0], params[1], {"w": np.zeros((6, 3), np.float32), "b": params[2]["b"]}]
    x, y = np.ones((10, 5), np.float32), np.zeros((10, 3), np.float32)
    said = r"^x of shape \(10, 5\) does not fit the network: layer 2 \(dense_1\) expects 6 input features, got 4"
    with pytest.raises(ValueError, match=said):
        fnn.fit(net, replaced, "sgd", "mse", x, y, epochs=0, verbose=0)
    with pytest.raises(ValueError, match=said):
        fnn.value_and_grad(net, "mse")(replaced, x, y)


def _replaced(params, i, leaf, value):
    """``params`` with ``params[i][leaf]`` replaced (None: removed)."""
    out = [dict(p) for p in params]
    if value is None:
        del out[i][leaf]
    else:
        out[i][leaf] = value
    return out


@pytest.mark.parametrize("door", DOORS)
def test_every_door_names_the_params_leaf_that_predict_names(door):
    """A bias of the wrong length (the layer's broadcasting error before), of length 1 (a shared
    scalar bias jax.grad trained silently), a missing leaf (a KeyError) and an extra one (the
    layer's backward blamed): every door says what predict says, naming the leaf."""
    net = fnn.mlp([6, 4, 3])
    params = net.init(KEY, (5,))
    x, y = np.ones((8, 5), np.float32), np.zeros((8, 3), np.float32)
    fits = r"^params do not fit the network for inputs of shape \(5,\): params\[1\]\['b'\] has shape "
    structure = r"^params do not have the network's structure \(net.init\(key, \(5,\)\) builds it\): "
    cases = [
        (_replaced(params, 1, "b", np.zeros(5, np.float32)), fits + r"\(5,\), the network builds \(4,\)(\n|$)"),
        (_replaced(params, 1, "b", np.zeros(1, np.float32)), fits + r"\(1,\), the network builds \(4,\)(\n|$)"),
        (_replaced(params, 1, "b", None), structure + r"missing params\[1\]\['b'\](\n|$)"),
        (
            _replaced(params, 1, "extra", np.zeros(3, np.float32)),
            structure + r"unexpected params\[1\]\['extra'\](\n|$)",
        ),
    ]
    for wrong, message in cases:
        with pytest.raises(ValueError, match=message):
            _wrong_args_calls(net, wrong, x, y)[door]()


def _docs_scale():
    """The user layer of docs/guides/custom.md: ``x * s``, one learned scale per feature."""

    def init(key, input_shape, dtype=jnp.float32):
        return tuple(input_shape), {"s": jnp.ones(input_shape[-1:], dtype)}

    def forward(params, x, *, key=None, train=False):
        return x * params["s"], (x,)

    def backward(params, cache, dy):
        (x,) = cache
        return {"s": jnp.sum(dy * x, axis=0)}, dy * params["s"]

    return fnn.Layer(init, forward, backward, "scale")


@pytest.mark.parametrize("door", DOORS)
def test_a_first_layer_s_per_feature_leaf_that_disagrees_with_the_others_is_named_not_x(door):
    """x fits the first layer's other leaves and the next kernel: a LayerNorm offset (or the
    guide's scale) of 4 features where they take 5 is the params' fault, not x's."""
    x, y = np.ones((8, 5), np.float32), np.zeros((8, 3), np.float32)
    for first, leaf in ((fnn.LayerNorm(), "offset"), (_docs_scale(), "s")):
        net = fnn.serial(first, fnn.Dense(3))
        wrong = _replaced(net.init(KEY, (5,)), 0, leaf, np.ones(4, np.float32))
        message = rf"^params do not fit the network for inputs of shape \(5,\): params\[0\]\['{leaf}'\] has shape "
        with pytest.raises(ValueError, match=message + r"\(4,\), the network builds \(5,\)(\n|$)"):
            _wrong_args_calls(net, wrong, x, y)[door]()


@pytest.mark.parametrize("door", DOORS)
def test_x_is_named_first_and_then_the_later_leaf_that_is_wrong_too(door):
    """x of 4 features for params built for 5, and a later kernel of another width: x is named,
    then the later leaf; not the first kernel, which fits the params around it."""
    net = fnn.mlp([6, 4, 3])
    wrong = _replaced(net.init(KEY, (5,)), 1, "w", np.zeros((7, 4), np.float32))
    x, y = np.ones((8, 4), np.float32), np.zeros((8, 3), np.float32)
    message = (
        r"^x of shape \(8, 4\) does not fit the network: layer 0 \(dense_0\) expects 5 input features, got 4.*; "
        r"and params do not fit the network whatever its inputs: params\[1\]\['w'\] has shape \(7, 4\), the "
        r"network builds \(6, 4\)(\n|$)"
    )
    with pytest.raises(ValueError, match=message) as err:
        _wrong_args_calls(net, wrong, x, y)[door]()
    assert "params[0]" not in str(err.value)


DATA_DOORS = ["fit", "predict", "evaluate", "gradcheck"]  # take a data set: samples first


@pytest.mark.parametrize("door", DATA_DOORS)
def test_x_without_a_samples_axis_is_named_by_the_data_doors(door):
    """x of rank 1 given for a data set: the doors that take one say what fit says (gradcheck
    counted its features as samples)."""
    params = fnn.mlp([6, 4, 3]).init(KEY, (5,))
    x, y = np.ones(5, np.float32), np.zeros((8, 3), np.float32)
    with pytest.raises(ValueError, match=r"^x must be \(samples, \*input_shape\), samples first; got shape \(5,\)"):
        _wrong_args_calls(fnn.mlp([6, 4, 3]), params, x, y)[door]()


@pytest.mark.parametrize("door", [d for d in DOORS if d not in DATA_DOORS])
def test_x_of_one_sample_is_checked_as_a_batch_of_one(door):
    """The pure functions run per example under jax.vmap, where x is one sample of rank 1: it is
    checked as a batch of one (a wrong feature count named on x), and runs as the network does."""
    net = fnn.mlp([6, 4, 3])
    params = net.init(KEY, (5,))
    one_sample = r"^x \(one sample of shape \(6,\)\) of shape \(1, 6\) does not fit the network"
    with pytest.raises(ValueError, match=one_sample):
        _wrong_args_calls(net, params, np.ones(6, np.float32), np.zeros(3, np.float32))[door]()
    other = fnn.mlp([7, 4, 3]).init(KEY, (5,))  # params of another network, one sample
    with pytest.raises(ValueError, match=r"^params do not fit the network for inputs of shape \(5,\)"):
        _wrong_args_calls(net, other, np.ones(5, np.float32), np.zeros(3, np.float32))[door]()


@pytest.mark.parametrize(
    "layers",
    [
        [fnn.Dense(6, "tanh"), fnn.Dense(3)],
        # these read axis 0 as the samples': a rank-1 sample went in as 5 samples (Flatten: "expects
        # 5 input features, got 1") or was refused ("expects a batch of samples")
        [fnn.Flatten(), fnn.Dense(3)],
        [fnn.Reshape((5, 1)), fnn.Flatten(), fnn.Dense(3)],
        [fnn.UnitNormalization(), fnn.Dense(3)],
    ],
    ids=["dense", "flatten", "reshape", "unit_normalization"],
)
def test_value_and_grad_vmapped_per_example_equals_batches_of_one(layers):
    """Per-example gradients and outputs, the usual jax.vmap over samples (each x of rank 1): each
    equals the batch of one, in both modes, through with_manual_vjp and Network.apply."""
    net = fnn.serial(*layers)
    params = net.init(KEY, (5,))
    x = np.random.default_rng(0).normal(size=(4, 5))
    y = np.random.default_rng(1).normal(size=(4, 3))
    fs = [fnn.value_and_grad(net, "mse", mode) for mode in ("manual", "autodiff")]

    @jax.jit  # one program for all of it (eagerly, every primitive compiled on its own)
    def per_example(params, x, y):
        vmapped = [jax.vmap(f, in_axes=(None, 0, 0))(params, x, y) for f in fs]
        ones = [[f(params, x[i : i + 1], y[i : i + 1]) for i in range(4)] for f in fs]
        outs = [jax.vmap(apply, in_axes=(None, 0))(params, x) for apply in (fnn.with_manual_vjp(net), net.apply)]
        return vmapped, ones, outs, net.apply(params, x)

    vmapped, ones, outs, applied = jax.tree.map(np.asarray, per_example(params, x, y))  # NumPy indexing
    for (values, grads), batches in zip(vmapped, ones, strict=True):
        for i, (value, grad) in enumerate(batches):
            np.testing.assert_allclose(values[i], value, rtol=1e-12)
            chex.assert_trees_all_close(jax.tree.map(lambda a, i=i: a[i], grads), grad, rtol=1e-12, atol=1e-15)
    for out in outs:
        np.testing.assert_allclose(out, applied, rtol=1e-12)


def test_one_sample_given_as_lists_and_eval_step_per_example_are_batches_of_one():
    """A rank-1 x given as a Python list was not one sample in mode="manual" (Reshape: "expects
    a batch of samples"), and a list target was split into scalars ("y_true shape (3, 1)");
    eval_step under a per-example vmap failed inside ("Too many indices"). Each is a batch of one."""
    net = fnn.serial(fnn.Reshape((2, 3)), fnn.Flatten(), fnn.Dense(3))
    params = net.init(KEY, (6,))
    x = np.random.default_rng(0).normal(size=(4, 6))
    onehot = np.eye(3)[[0, 2, 1, 0]]
    loss = fnn.losses.get("categorical_crossentropy", from_logits=True)
    for mode in ("manual", "autodiff"):
        f = fnn.value_and_grad(net, loss, mode)
        value, grads = f(params, x[0].tolist(), onehot[0].tolist())
        want_value, want_grads = f(params, x[:1], onehot[:1])
        np.testing.assert_allclose(value, want_value, rtol=1e-12)
        chex.assert_trees_all_close(grads, want_grads, rtol=1e-12, atol=1e-15)
    step = fnn.eval_step(net, loss, metrics=["categorical_accuracy"])
    per_example = jax.vmap(step, in_axes=(None, 0, 0))(params, x, onehot)
    for i in range(4):
        one = step(params, x[i : i + 1], onehot[i : i + 1])
        for name, value in one.items():
            np.testing.assert_allclose(per_example[name][i], value, rtol=1e-12, err_msg=name)


def _tuple_dense(n, name="tup"):
    """A user layer with tuple params whose forward fails with dot_general's TypeError on shapes."""

    def init(key, input_shape, dtype=jnp.float32):
        return (n,), (jax.random.normal(key, (input_shape[-1], n), dtype) * 0.1, jnp.zeros(n, dtype))

    def forward(p, x, key=None, train=False):
        return x @ p[0] + p[1], x

    return fnn.Layer(init, forward, lambda p, x, dy: ((x.T @ dy, dy.sum(0)), dy @ p[0].T), name)


@pytest.mark.parametrize("door", DOORS)
def test_a_user_layers_type_error_on_shapes_names_the_params_or_x_that_cause_it(door):
    """A layer of the user's fails with dot_general's TypeError, not the ValueError of a Dense:
    params of another width are still named, and an x of the wrong feature count is a ValueError
    naming x (it was the layer's raw TypeError in every door)."""
    net = fnn.serial(_tuple_dense(6), _tuple_dense(3))
    params = net.init(KEY, (5,))
    y = np.zeros((8, 3), np.float32)
    wrong = [params[0], (jnp.zeros((7, 3)), params[1][1])]
    message = r"^params do not fit the network for inputs of shape \(5,\): params\[1\]\[0\] has shape \(7, 3\), the"
    with pytest.raises(ValueError, match=message):
        _wrong_args_calls(net, wrong, np.ones((8, 5), np.float32), y)[door]()
    with pytest.raises(ValueError, match=r"^x of shape \(8, 4\) does not fit the network: layer 0 \(tup_0\)"):
        _wrong_args_calls(net, params, np.ones((8, 4), np.float32), y)[door]()


def test_a_user_layers_own_type_error_is_kept_as_it_raised_it():
    """A TypeError the params and x do not explain (the layer's own) goes out as the layer raised it."""

    def forward(p, x, key=None, train=False):
        raise TypeError("my layer wants something else")

    layer = fnn.Layer(lambda key, shape, dtype=jnp.float32: (shape, {}), forward, lambda p, x, dy: ({}, dy), "own")
    net = fnn.serial(layer, fnn.Dense(3))
    params = net.init(KEY, (5,))
    with pytest.raises(TypeError, match="my layer wants something else"):
        fnn.predict(net, params, np.ones((8, 5), np.float32))
