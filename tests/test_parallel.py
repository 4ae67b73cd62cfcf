"""fnn.parallel: data-parallel fit on 8 CPU devices and over 2 processes equals one device;
sweep / fit_many of K models equals K separate fits; bad input.

The subprocess runs and the whole-training comparisons (the sweep's) are marked ``slow``
(``pytest -m "not slow"`` leaves them out, and then no subprocess is started); the checks of
meshes, shards and bad input stay in the fast tier.
"""

import argparse
import contextlib
import functools
import json
import os
import pathlib
import re
import runpy
import subprocess
import sys
import warnings

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import FAST_COMPILE_FLAG
from hypothesis import given, strategies as st
from jax.sharding import AxisType, Mesh

import fnn
from fnn import parallel

ROOT = pathlib.Path(__file__).resolve().parent.parent
TIMEOUT = 300


# --------------------------------------------------------------------------------------------
# Subprocesses: the device count is fixed when JAX starts, so 8 devices and 2 processes each
# need processes of their own. They start with the first test of the module and run while
# the in-process tests do; the tests that read them come last.
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _start_runs_early(request):
    """Starts the subprocesses with the module's first test, if a test that reads them was
    selected (with ``-m "not slow"`` none is, and nothing is started)."""
    if any("runs" in item.fixturenames for item in request.session.items if item.module is request.module):
        request.getfixturevalue("runs")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("parallel")
    # a device count of the caller's own would clash with the worker's; the suite's compile
    # settings (conftest) stay
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if f == FAST_COMPILE_FLAG]
    env = {**{k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}, "XLA_FLAGS": " ".join(flags)}
    env["JAX_PLATFORMS"] = "cpu"
    # The workers import this checkout's fnn, installed or not.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    started = {
        "mesh": (tmp / "mesh.npz", [sys.executable, str(ROOT / "tests" / "_parallel_worker.py")]),
        "processes": (
            tmp / "processes.npz",
            [
                sys.executable,
                str(ROOT / "examples" / "multiprocess_launcher.py"),
                "--processes",
                "2",
                "--devices-per-process",
                "2",
                "--x64",
                "--no-check",
                "--timeout",
                str(TIMEOUT),
                "--then",  # more runs in the same 2 processes
                str(ROOT / "tests" / "_parallel_worker.py"),
                "--out",
            ],
        ),
    }
    procs = {
        name: subprocess.Popen(
            cmd + [str(out)], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for name, (out, cmd) in started.items()
    }
    yield {name: (procs[name], out) for name, (out, _) in started.items()}
    for p in procs.values():
        if p.poll() is None:
            p.kill()
        p.communicate()  # reaps it and closes its pipe, also when no test read it


def _finish(run):
    proc, out = run
    log, _ = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, log
    return np.load(out), log


# --------------------------------------------------------------------------------------------
# Many models
# --------------------------------------------------------------------------------------------

NET = fnn.serial(fnn.Dense(8, activation="tanh"), fnn.Dropout(0.2), fnn.Dense(3))
LOSS = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
OPT = fnn.optimizers.sgd(0.1, momentum=0.9, weight_decay=1e-3)
# 33 rows, the last 7 for validation; 26 training rows in batches of 7: 7, 7, 7, 5. (unroll=1:
# the epoch's loop body compiled once, not twice; the sweep and each fit use the same.)
SETTINGS = dict(batch_size=7, epochs=2, validation_split=0.2, metrics=["accuracy"], unroll=1)


def _data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(33, 4))
    return x, (x[:, 0] + x[:, 1] ** 2 > 0.5).astype(np.int32) + (x[:, 2] > 1)


def _f64(tree):
    """``tree`` in float64, converted by NumPy (an eager astype compiles a program per shape)."""
    return jax.device_put(jax.tree.map(lambda a: np.asarray(a, np.float64), tree))


def _zero_params():
    """Zeros of NET's parameter shapes, for the bad-input checks: their values do not matter, and
    drawing them would compile the initialisers."""
    return jax.tree.map(
        lambda s: np.zeros(s.shape, s.dtype), jax.eval_shape(lambda: NET.init(jax.random.PRNGKey(0), (4,)))
    )


def _with_hparams(state, **values):
    return state._replace(
        hparams={
            **state.hparams,
            **{k: jax.device_put(np.asarray(v, state.hparams[k].dtype)) for k, v in values.items()},
        }
    )


@pytest.fixture(scope="module")
def swept():
    x, y = _data()
    return fnn.sweep(
        NET,
        OPT,
        LOSS,
        x,
        y,
        seeds=[0, 1],
        learning_rates=[0.05, 0.2],
        weight_decays=[0.0, 0.01],
        dtype=jnp.float64,
        **SETTINGS,
    )


@pytest.mark.slow
def test_sweep_equals_separate_fits(swept):
    """K = 2 seeds x 2 learning rates x 2 weight decays = 8 models in one program, each equal
    (float64) to its own fit: same init, shuffles and dropout masks, hyperparameters in the state."""
    x, y = _data()
    res = swept
    assert [tuple(c.values()) for c in res.configs] == [
        (s, lr, wd) for s in (0, 1) for lr in (0.05, 0.2) for wd in (0.0, 0.01)
    ]
    chex.assert_tree_shape_prefix(res.params, (8,))
    chex.assert_tree_shape_prefix(res.opt_state, (8,))
    assert len(res.histories) == 8
    for i, c in enumerate(res.configs):
        init_key, fit_key = jax.random.split(jax.random.PRNGKey(c["seed"]))
        p0 = _f64(NET.init(init_key, (4,)))
        state = _with_hparams(OPT.init(p0), learning_rate=c["learning_rate"], weight_decay=c["weight_decay"])
        with warnings.catch_warnings():  # the state's swept values win over OPT's, as fit warns
            warnings.filterwarnings("ignore", "fit: opt_state holds", RuntimeWarning)
            ref = fnn.fit(NET, p0, OPT, LOSS, x, y, key=fit_key, opt_state=state, verbose=0, **SETTINGS)
        got = res.result(i)
        # the swept values sit in the state where a freshly built optimizer puts them
        built = fnn.optimizers.sgd(c["learning_rate"], momentum=0.9, weight_decay=c["weight_decay"] or 1.0)
        want = {**built.init(p0).hparams, "weight_decay": c["weight_decay"]}
        chex.assert_trees_all_close(dict(got.opt_state.hparams), want, rtol=1e-7)
        chex.assert_trees_all_equal_dtypes(got.params, ref.params)
        assert jax.tree.leaves(got.params)[0].dtype == jnp.float64
        chex.assert_trees_all_close(got.params, ref.params, rtol=1e-12, atol=1e-14)
        chex.assert_trees_all_close(got.opt_state, ref.opt_state, rtol=1e-12, atol=1e-14)
        assert got.history.keys() == ref.history.keys() == {"loss", "accuracy", "val_loss", "val_accuracy"}
        for k in ref.history:
            np.testing.assert_allclose(got.history[k], ref.history[k], rtol=1e-12, atol=1e-14)
        assert got.history.iterations_per_epoch == ref.history.iterations_per_epoch == 4
    # the models really differ: seeds, learning rates and weight decays all change the result
    finals = np.array([h["loss"][-1] for h in res.histories])
    assert len(np.unique(np.round(finals, 12))) == 8


@pytest.mark.slow
def test_sweep_again_with_other_values_compiles_nothing(swept, compiles):
    """Hyperparameters are arrays in the state: a second sweep of the same shapes reuses the program."""
    x, y = _data()
    rates = [np.float64(0.01), jax.device_put(0.02)]  # NumPy's and jax's scalars, read as Python's
    with compiles() as c:
        again = fnn.sweep(
            NET,
            OPT,
            LOSS,
            x,
            y,
            seeds=[5, 6],
            learning_rates=rates,
            weight_decays=[0.1, 0.0],
            dtype=jnp.float64,
            **SETTINGS,
        )
    assert c.count == 0
    assert again.configs[0] == {"seed": 5, "learning_rate": 0.01, "weight_decay": 0.1}
    assert all(type(cfg["learning_rate"]) is float for cfg in again.configs)


def test_a_second_sweep_of_the_same_structure_traces_nothing():
    """The checks before anything runs (one model's params, the optimizer state, each swept
    value set in it) are cached on the network, the optimizer, the shapes and the values: equal
    ones built afresh trace nothing the second time; a new value is still checked."""
    x, y = _data()
    traced: list = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/jaxpr_trace_duration":
            traced.append(kwargs.get("fun_name"))

    def run(rates):
        net = fnn.serial(fnn.Dense(5, activation="tanh"), fnn.Dense(3))
        return fnn.sweep(net, fnn.optimizers.adam(1e-3), LOSS, x, y, seeds=[0, 1], learning_rates=rates, epochs=0)

    run([0.01, 0.1])
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        again = run([0.01, 0.1])
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert traced == []
    assert [c["learning_rate"] for c in again.configs] == [0.01, 0.1, 0.01, 0.1]
    with pytest.raises(ValueError, match="learning_rates must be >= 0"):
        run([0.01, -0.1])
    with pytest.raises(ValueError, match=r"b1 must be finite and in \[0, 1\), got 1.0"):  # the constructor's
        fnn.sweep(fnn.mlp([3]), fnn.optimizers.adam(1e-3), LOSS, x, y, hparams={"b1": [0.9, 1.0]}, epochs=0)


def _compiled_names(run):
    """The names of the programs XLA compiles while ``run()`` runs, and its result."""
    compiled: list = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiled.append(kwargs.get("fun_name"))

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        return compiled, run()
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def test_fit_many_fills_the_models_optimizer_states_on_the_host():
    """The K models' optimizer states of a built-in family (zeros, a step count, the
    hyperparameter values broadcast over models): no program at all, neither the vmapped init
    nor a small one per leaf shape; each model's state what ``opt.init`` gives it alone, the
    hyperparameters broadcast."""
    x, y = _data()
    x = np.concatenate([x, x[:, :2]], axis=1)  # 6 features, 5 models: shapes no other test builds
    inits = [NET.init(jax.random.PRNGKey(s), (6,)) for s in range(5)]
    stacked = jax.device_put(jax.tree.map(lambda *a: np.stack(a), *inits))  # NumPy: no stack program
    keys = jax.random.split(jax.random.PRNGKey(3), 5)
    fnn.fit_many(NET, stacked, fnn.optimizers.sgd(0.1), LOSS, x, y, key=keys, epochs=0)  # the programs besides the init

    def both():
        first = fnn.fit_many(NET, stacked, fnn.optimizers.adamax(0.01), LOSS, x, y, key=keys, epochs=0)
        second = fnn.fit_many(NET, stacked, fnn.optimizers.adamax(0.05, b1=0.8), LOSS, x, y, key=keys, epochs=0)
        for shared in (jax.random.PRNGKey(3), jax.random.key(3)):  # one key for all: copied on the host
            fnn.fit_many(NET, stacked, fnn.optimizers.adamax(0.01), LOSS, x, y, key=shared, epochs=0)
        return first, second

    compiled, (first, second) = _compiled_names(both)
    assert compiled == []
    for i in (0, 4):
        alone = fnn.optimizers.adamax(0.01).init(inits[i])
        chex.assert_trees_all_equal(jax.tree.map(lambda a, i=i: np.asarray(a)[i], first.opt_state), alone)
    for name, value in {"learning_rate": 0.05, "b1": 0.8, "b2": 0.999}.items():
        got = second.opt_state.hparams[name]
        np.testing.assert_array_equal(got, np.full(5, value, got.dtype))
    chex.assert_trees_all_equal(second.params, stacked)  # no epoch ran


def test_fit_many_builds_a_computed_optimizer_state_in_one_program():
    """An optimizer whose init computes from the params (here a scaled copy): ONE compiled
    program for the K models' states (opt.init vmapped inside the jit; a vmap outside it
    broadcasts each unbatched leaf eagerly, a small program per shape), each model's state
    what ``opt.init`` gives it alone; a second fit compiles no init again."""
    x, y = _data()
    x = np.concatenate([x, x[:, :1]], axis=1)  # 5 features, 3 models: shapes no other test builds
    inits = [NET.init(jax.random.PRNGKey(s), (5,)) for s in range(3)]
    stacked = jax.device_put(jax.tree.map(lambda *a: np.stack(a), *inits))  # NumPy: no stack program
    keys = jax.random.split(jax.random.PRNGKey(3), 3)
    halves = fnn.optimizers.GradientTransformation(
        lambda params: jax.tree.map(lambda p: 0.5 * p, params), lambda g, state, params=None: (g, state)
    )
    run = lambda: fnn.fit_many(NET, stacked, halves, LOSS, x, y, key=keys, epochs=0)
    compiled, first = _compiled_names(run)
    assert compiled.count("jit(opt_init)") == 1 and "jit(broadcast_in_dim)" not in compiled
    assert "jit(opt_init)" not in _compiled_names(run)[0]
    for i in (0, 2):
        chex.assert_trees_all_equal(
            jax.tree.map(lambda a, i=i: np.asarray(a)[i], first.opt_state), halves.init(inits[i])
        )


@pytest.mark.slow
def test_fit_many_with_one_shared_key(swept, compiles):
    """8 stacked inits, ONE key for all (same shuffles and masks): each model equals
    fit(key=key); the same compiled program as the sweep's."""
    x, y = _data()
    key = jax.random.PRNGKey(7)
    inits = [_f64(NET.init(jax.random.PRNGKey(s), (4,))) for s in range(10, 18)]
    stacked = jax.device_put(jax.tree.map(lambda *a: np.stack(a), *inits))  # NumPy: no stack program
    compiled, res = _compiled_names(lambda: fnn.fit_many(NET, stacked, OPT, LOSS, x, y, key=key, **SETTINGS))
    assert compiled == []  # the key's copies and the epochs' keys made on the host; the sweep's epoch
    for i in (0, 5):
        ref = fnn.fit(NET, inits[i], OPT, LOSS, x, y, key=key, verbose=0, **SETTINGS)
        chex.assert_trees_all_close(res.result(i).params, ref.params, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(res.histories[i]["val_loss"], ref.history["val_loss"], rtol=1e-12)
    assert res.configs == [{}] * 8


@pytest.mark.parametrize("impl", ["rbg", "unsafe_rbg"])
def test_fit_many_equals_fit_with_any_kind_of_key(impl):
    """JAX's other key kinds, rbg and unsafe_rbg, draw the whole batch of a vmapped draw from
    the first key; fit_many's models still each shuffle and drop out as fit does with their own
    key (Dropout's masks, the network's and the epochs' keys drawn one model at a time)."""
    x, y = _data()
    keys = jax.random.split(jax.random.key(5, impl=impl), 2)
    inits = [NET.init(jax.random.PRNGKey(s), (4,)) for s in (0, 1)]
    stacked = jax.device_put(jax.tree.map(lambda *a: np.stack(a), *inits))  # NumPy: no stack program
    settings = dict(batch_size=7, epochs=2, unroll=1)  # no validation pass: not what is tested
    res = fnn.fit_many(NET, stacked, OPT, LOSS, x, y, key=keys, **settings)
    for i in (0, 1):
        ref = fnn.fit(NET, inits[i], OPT, LOSS, x, y, key=keys[i], verbose=0, **settings)
        chex.assert_trees_all_close(res.result(i).params, ref.params, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(res.histories[i]["loss"], ref.history["loss"], rtol=1e-5)


@pytest.mark.slow
def test_best_picks_the_lowest_last_monitor(swept):
    last_val = [h["val_loss"][-1] for h in swept.histories]
    assert swept.best() == int(np.argmin(last_val))
    assert swept.best("loss") == int(np.argmin([h["loss"][-1] for h in swept.histories]))
    assert swept.best("val_accuracy", mode="max") == int(np.argmax([h["val_accuracy"][-1] for h in swept.histories]))
    with pytest.raises(ValueError, match="monitor 'auc' was not recorded"):
        swept.best("auc")
    with pytest.raises(ValueError, match="mode"):
        swept.best(mode="lowest")


def test_best_ranks_a_model_whose_loss_diverged_last_whatever_the_monitor():
    """A diverged model's NaN outputs all fall in one class, which still scores a finite
    accuracy (the share of that class): ranked by it, best() chose the diverged model."""

    def history(**logs):
        h = fnn.History()
        h.append(0, logs, seconds=0.0)
        return h

    diverged = history(loss=float("nan"), val_loss=float("nan"), val_accuracy=0.80)
    fine = history(loss=0.59, val_loss=0.61, val_accuracy=0.76)
    worse = history(loss=0.70, val_loss=0.75, val_accuracy=0.70)
    result = fnn.SweepResult(None, None, [diverged, fine, worse], [{}, {}, {}])
    assert result.best("val_accuracy", mode="max") == 1 and result.best() == 1
    assert result.best("loss") == 1 and result.best("val_accuracy", mode="min") == 2
    runs = [history(loss=float("inf"), acc=0.9), history(loss=1.0, acc=0.5)]
    train_only = fnn.SweepResult(None, None, runs, [{}, {}])
    assert train_only.best("acc", mode="max") == 1
    all_diverged = fnn.SweepResult(None, None, [diverged, diverged], [{}, {}])
    assert all_diverged.best("val_accuracy", mode="max") == 0  # none usable: the first


def test_best_s_auto_mode_reads_the_direction_of_the_built_in_metric_named_and_refuses_others():
    """mode="auto" (the default), as Keras 3's callbacks settle it: the highest accuracy, auc or
    r2, the lowest loss or error, whatever the alias or case; a name no built-in metric has a
    direction for needs mode (a lowest-accuracy default picked the worst model)."""

    def history(**logs):
        h = fnn.History()
        h.append(0, logs, seconds=0.0)
        return h

    logs = [
        dict(loss=0.5, val_loss=0.7, val_acc=0.6, val_auc=0.9, R2_score=0.3, val_mae=0.2, lr=0.1, true_positives=4.0),
        dict(loss=0.6, val_loss=0.6, val_acc=0.8, val_auc=0.7, R2_score=0.5, val_mae=0.4, lr=0.2, true_positives=9.0),
        dict(loss=0.4, val_loss=0.8, val_acc=0.7, val_auc=0.8, R2_score=0.1, val_mae=0.3, lr=0.3, true_positives=1.0),
    ]
    result = fnn.SweepResult(None, None, [history(**d) for d in logs], [{}, {}, {}])
    expected = {"loss": 2, "val_loss": 1, "val_acc": 1, "val_auc": 0, "R2_score": 1, "val_mae": 0}
    assert {m: result.best(m) for m in expected} == expected
    assert result.best() == 1  # val_loss
    for name in ("lr", "true_positives"):
        with pytest.raises(ValueError, match=f"monitor '{name}' should be maximized or minimized.*mode='max'"):
            result.best(name)
        assert (result.best(name, mode="min"), result.best(name, mode="max")) == ((0, 2) if name == "lr" else (2, 1))


@pytest.mark.slow
def test_best_reads_the_run_s_metrics_not_their_names():
    """A loss given as a metric (fnn.losses.cosine_similarity: lower is better) was ranked as the
    built-in metric of its name (the cosine: higher is better), picking the worst model; a metric
    of yours named "accuracy" took the built-in accuracy's direction (EarlyStopping refuses it)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3))
    y = x @ rng.normal(size=(3, 2))
    settings = dict(input_shape=(3,), batch_size=8, epochs=3, verbose=0, unroll=1)
    cosine = [fnn.losses.cosine_similarity]
    sgd = fnn.optimizers.sgd()
    r = fnn.sweep(fnn.mlp([2]), sgd, "mse", x, y, learning_rates=[0.0, 0.1], metrics=cosine, **settings)
    last = [h["cosine_similarity"][-1] for h in r.histories]
    assert last[1] < last[0] and r.best("cosine_similarity") == 1

    def accuracy(t, p):  # an error, named as the accuracy
        return jnp.mean(jnp.abs(t - p), axis=-1)

    net = fnn.mlp([2])
    stacked = jax.vmap(lambda k: net.init(k, (3,), jnp.float64))(jax.random.split(jax.random.PRNGKey(0), 2))
    del settings["input_shape"]
    r = fnn.fit_many(net, stacked, fnn.optimizers.sgd(0.1), "mse", x, y, metrics=[accuracy], **settings)
    with pytest.raises(ValueError, match=r"cannot tell whether monitor 'accuracy'.*a metric of yours"):
        r.best("accuracy")
    assert r.best("accuracy", mode="min") in (0, 1)
    # the ways survive a History's copy and its to_dict record (its JSON): best picked the worst
    # model again after a round trip
    again = [fnn.History.from_dict(json.loads(json.dumps(h.to_dict()))) for h in r.histories]
    copies = fnn.SweepResult(r.params, r.opt_state, [fnn.History.from_dict(h) for h in again], r.configs)
    with pytest.raises(ValueError, match=r"cannot tell whether monitor 'accuracy'"):
        copies.best("accuracy")
    # a monitor of arrays ranks nothing (argmin counted the cells: model 4 of 2)
    arrays = [fnn.History() for _ in range(2)]
    for h, v in zip(arrays, ([5.0, 1.0], [9.0, 0.0]), strict=True):
        h.append(0, {"arr": np.array(v)}, 0.0)
    with pytest.raises(ValueError, match=r"monitor 'arr' must hold one number per epoch.*ndarray"):
        fnn.SweepResult(None, None, arrays, [{}, {}]).best("arr", "min")


def test_result_takes_python_and_numpy_indices_and_refuses_others(swept):
    last, first = swept.result(-1), swept.result(np.int64(0))
    # models taken out by NumPy: an eager index compiles a program per leaf shape
    chex.assert_trees_all_equal(last.params, jax.tree.map(lambda a: np.asarray(a)[7], swept.params))
    chex.assert_trees_all_equal(first.opt_state, jax.tree.map(lambda a: np.asarray(a)[0], swept.opt_state))
    assert last.history is swept.histories[7]
    for bad in (8, -9):
        with pytest.raises(IndexError, match="out of range for 8 models"):
            swept.result(bad)
    for bad, kind in ((1.0, "float 1.0"), (True, "bool True")):
        with pytest.raises(IndexError, match=f"model index must be an int, got {kind}"):
            swept.result(bad)


# --------------------------------------------------------------------------------------------
# Meshes, shards, bad input
# --------------------------------------------------------------------------------------------


def test_data_mesh_and_check_mesh():
    mesh = parallel.data_mesh()
    assert mesh.axis_names == ("batch",) and mesh.axis_types == (AxisType.Auto,)
    assert mesh.devices.size == jax.device_count()
    # Explicit given (jax's default from 0.9; 0.8.x warns that its default changes)
    explicit = jax.make_mesh((1,), ("batch",), axis_types=(AxisType.Explicit,))
    assert parallel.check_mesh(explicit).axis_types == (AxisType.Auto,)
    with pytest.raises(TypeError, match="mesh must be a jax.sharding.Mesh"):
        parallel.check_mesh("cpu")
    with pytest.raises(ValueError, match="axis named 'batch'.*'data'"):
        parallel.check_mesh(Mesh(np.array(jax.devices()[:1]), ("data",)))
    with pytest.raises(ValueError, match="at least one device"):
        parallel.data_mesh([])
    device = jax.devices()[0]
    with pytest.raises(TypeError, match="devices must be a sequence of jax devices, got "):
        parallel.data_mesh(device)
    with pytest.raises(TypeError, match=r"devices\[0\] must be a jax device .*got int 0"):
        parallel.data_mesh([0])
    # a platform's name is a sequence too, of characters: named whole, with the call that was meant
    with pytest.raises(TypeError, match=r"got str 'cpu' \(a platform's devices: data_mesh\(jax.devices\('cpu'\)\)\)$"):
        parallel.data_mesh("cpu")
    with pytest.raises(ValueError, match=r"devices must be distinct; 1 repeat\(s\)"):
        parallel.data_mesh([device, device])
    assert parallel.data_mesh(jax.devices()).devices.size == jax.device_count()


def test_fit_rejects_a_bad_mesh_before_compiling(compiles):
    x, y = _data()
    params = _zero_params()
    with compiles() as c:
        with pytest.raises(TypeError, match="mesh must be a jax.sharding.Mesh"):
            fnn.fit(NET, params, OPT, LOSS, x, y, mesh=object(), verbose=0)
        with pytest.raises(ValueError, match="axis named 'batch'"):
            fnn.fit(NET, params, OPT, LOSS, x, y, mesh=Mesh(np.array(jax.devices()[:1]), ("model",)), verbose=0)
    assert c.count == 0


def test_fit_on_jax_s_explicit_mesh_takes_arrays_placed_on_it_and_runs_under_it_as_on_its_auto_copy():
    """``jax.make_mesh``'s axes are Explicit (JAX's default): params, optimizer state and data
    already replicated on such a mesh, and a run inside ``with jax.set_mesh(mesh)``, train as
    on the Auto mesh over the same devices (both failed while tracing, blaming layer 0)."""
    explicit = jax.make_mesh((1,), ("batch",), axis_types=(AxisType.Explicit,))
    x, y = _data()
    params = _f64(NET.init(jax.random.PRNGKey(0), (4,)))
    state = OPT.init(params)
    settings = dict(batch_size=7, epochs=1, key=jax.random.PRNGKey(1), verbose=0, unroll=1, validation_split=0.25)
    auto = parallel.data_mesh(jax.devices()[:1])
    want = fnn.fit(NET, params, OPT, LOSS, x, y, opt_state=state, mesh=auto, **settings)
    on_it = jax.device_put((params, state, x), jax.sharding.NamedSharding(explicit, jax.sharding.PartitionSpec()))
    assert on_it[0][0]["w"].sharding.mesh.axis_types == (AxisType.Explicit,)
    for placed in (on_it, (params, state, x)):
        for context in (contextlib.nullcontext(), jax.set_mesh(explicit)):
            with context:
                got = fnn.fit(NET, placed[0], OPT, LOSS, placed[2], y, opt_state=placed[1], mesh=explicit, **settings)
            chex.assert_trees_all_close(got.params, want.params, rtol=1e-12, atol=1e-14)
            for name in ("loss", "val_loss"):  # the split's checks ran on the arrays on that mesh
                assert got.history.history[name] == pytest.approx(want.history.history[name], rel=1e-12)


def test_a_mesh_fit_compiles_its_epoch_once_whatever_the_number_of_epochs(compiles):
    """Epoch 1's inputs were put on a one-device mesh as that device's arrays (their sharding
    equivalent), epoch 2's were the mesh's that epoch 1 returned: the epoch compiled twice."""
    x, y = _data()
    params = _f64(NET.init(jax.random.PRNGKey(0), (4,)))
    mesh = parallel.data_mesh(jax.devices()[:1])
    settings = dict(batch_size=7, key=jax.random.PRNGKey(1), verbose=0, unroll=1, mesh=mesh)
    fnn.fit(NET, params, OPT, LOSS, x, y, epochs=1, **settings)
    with compiles() as c:
        fnn.fit(NET, params, OPT, LOSS, x, y, epochs=3, **settings)
    assert c.count == 0


def test_single_process_gather_is_the_identity():
    x, y = _data()
    w, val = np.ones(len(x)), (x[:3], y[:3], np.ones(3))
    got = parallel.gather_process_data(x, y, val, mesh=parallel.data_mesh(), sample_weight=w, same={"a": 1})
    assert got[0] is x and got[1] is y and got[2] is val and got[3] is w


@given(n=st.integers(0, 40), count=st.integers(1, 7))
def test_process_shards_concatenate_to_the_whole(n, count):
    a = np.arange(n * 2).reshape(n, 2)
    shards = [parallel.process_shard(a, index=i, count=count) for i in range(count)]
    np.testing.assert_array_equal(np.concatenate(shards), a)
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_the_multiprocess_launcher_removes_its_folder_unless_given_out(monkeypatch, tmp_path):
    """Without --out the workers' params go to a temporary folder that the launcher removes;
    --out is where the user wants them, kept. (The workers are stand-ins that write the file.)"""
    launcher = runpy.run_path(str(ROOT / "examples" / "multiprocess_launcher.py"))
    written = []

    class Worker:
        def __init__(self, cmd, **_):
            written.append(cmd[cmd.index("--out") + 1])
            pathlib.Path(written[-1]).write_bytes(b"params")

        def wait(self, timeout=None):
            return 0

        def poll(self):
            return 0

    monkeypatch.setattr(subprocess, "Popen", Worker)
    args = dict(processes=2, devices_per_process=1, x64=False, then=None, no_check=True, timeout=5.0)
    launcher["launch"](argparse.Namespace(out=None, **args))
    assert len(written) == 2 and written[0] == written[1]
    assert not os.path.exists(os.path.dirname(written[0]))
    launcher["launch"](argparse.Namespace(out=str(tmp_path / "mine.npz"), **args))
    assert written[2:] == [str(tmp_path / "mine.npz")] * 2
    assert (tmp_path / "mine.npz").read_bytes() == b"params"


def test_process_shard_and_initialize_bad_input():
    with pytest.raises(ValueError, match=r"index must be in \[0, count=2\)"):
        parallel.process_shard(np.zeros(4), index=2, count=2)
    with pytest.raises(ValueError, match="count must be >= 1"):
        parallel.process_shard(np.zeros(4), index=0, count=0)
    with pytest.raises(ValueError, match=r"cpu_collectives must be one of \('gloo', 'mpi'\)"):
        parallel.initialize("127.0.0.1:1", 2, 0, cpu_collectives="nccl")
    with pytest.raises(ValueError, match=r"process_id must be in \[0, num_processes=2\)"):
        parallel.initialize("127.0.0.1:1", 2, 2)
    with pytest.raises(TypeError, match="local_device_count must be an int"):
        parallel.initialize("127.0.0.1:1", 2, 0, local_device_count=1.5)


def test_a_failed_initialize_leaves_the_jax_settings_as_they_were():
    """A keyword jax.distributed.initialize does not take: its TypeError, and the collectives
    setting fnn made before the call put back (no distributed runtime is started)."""
    before = jax.config.jax_cpu_collectives_implementation
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        parallel.initialize("127.0.0.1:1", 1, 0, cpu_collectives="mpi" if before != "mpi" else "gloo", bogus=1)
    assert jax.config.jax_cpu_collectives_implementation == before


_FAILED_INITIALIZE = """
import json, jax, fnn
before = (jax.config.jax_cpu_collectives_implementation, jax.config.jax_num_cpu_devices)
try:
    fnn.parallel.initialize("127.0.0.1:1", 1, 0, local_device_count=3, cpu_collectives="mpi", bogus=1)
except TypeError as e:
    error = str(e)
after = (jax.config.jax_cpu_collectives_implementation, jax.config.jax_num_cpu_devices)
print(json.dumps({"before": before, "after": after, "error": error, "devices": len(jax.devices())}))
"""


def test_a_failed_initialize_puts_back_only_the_settings_it_changed(monkeypatch):
    """A coordinator that does not answer (jax.distributed.initialize faked: no runtime is
    started): its error comes out, and only a setting fnn changed is set again."""
    updates, update = [], jax.config.update

    def recorded(name, value):
        updates.append((name, value))
        update(name, value)

    def no_answer(*args, **kwargs):
        raise ConnectionError("the coordinator does not answer")

    monkeypatch.setattr(jax.config, "update", recorded)
    monkeypatch.setattr(jax.distributed, "initialize", no_answer)
    name = "jax_cpu_collectives_implementation"
    before = getattr(jax.config, name)
    other = "mpi" if before != "mpi" else "gloo"
    with pytest.raises(ConnectionError, match="does not answer"):
        parallel.initialize("127.0.0.1:1", 1, 0, cpu_collectives=other)
    assert updates == [(name, other), (name, before)] and getattr(jax.config, name) == before
    updates.clear()
    with pytest.raises(ConnectionError, match="does not answer"):
        parallel.initialize("127.0.0.1:1", 1, 0, cpu_collectives=before)  # the setting in place
    assert updates == [(name, before)]  # made, and nothing to put back


_BACKENDS_STARTED_IN_THE_CALL = """
import json, jax, jax.numpy as jnp, fnn
def starts_then_fails(*args, **kwargs):  # a computation inside the call starts the backends
    jnp.ones(3).block_until_ready()
    raise ConnectionError("the coordinator does not answer")
jax.distributed.initialize = starts_then_fails
before = jax.config.jax_cpu_collectives_implementation
try:
    fnn.parallel.initialize("127.0.0.1:1", 1, 0, local_device_count=3, cpu_collectives="mpi")
except Exception as e:
    error = f"{type(e).__name__}: {e}"
after = (jax.config.jax_cpu_collectives_implementation, jax.config.jax_num_cpu_devices)
print(json.dumps({"before": before, "after": after, "error": error, "devices": len(jax.devices())}))
"""


@pytest.mark.slow
def test_a_failed_initialize_whose_backends_started_raises_its_own_error():
    """In a fresh process: the backends started on 3 devices inside the failed call, so the
    device count cannot be put back (JAX refuses) and stays, as they run on it; the call's own
    error comes out, not JAX's refusal, and the collectives are put back."""
    from conftest import run_python_json

    got = run_python_json(_BACKENDS_STARTED_IN_THE_CALL)
    assert got["error"] == "ConnectionError: the coordinator does not answer"
    assert got["after"] == [got["before"], 3] and got["devices"] == 3


@pytest.mark.slow
def test_a_failed_initialize_leaves_the_device_count_as_it_was():
    """In a fresh process (the device count can only be set before JAX starts): after the
    TypeError, jax_num_cpu_devices is back as it was and JAX does not start on 3 devices."""
    from conftest import run_python_json

    got = run_python_json(_FAILED_INITIALIZE)
    assert "unexpected keyword argument 'bogus'" in got["error"]
    assert got["after"] == got["before"] and got["before"][1] != 3
    assert got["devices"] != 3


@pytest.mark.parametrize("impl", ["threefry2x32", "rbg"])
def test_the_seeds_params_and_keys_are_drawn_by_one_program_as_each_seed_draws_them(impl, compiles):
    """sweep's (and the commands') set-up: seed s gives net.init(split(PRNGKey(s))[0]) and
    split(PRNGKey(s))[1], bit for bit, from ONE program for the distinct seeds, which a grid of
    another size over as many seeds shares. Drawn seed by seed, the seeding, splitting and the
    stacking of each leaf compiled 8 small programs before a first sweep trained, and the
    stacking again for each grid size. rbg keys draw otherwise under vmap: seed by seed."""
    from fnn.train._initial import initial_params

    net = fnn.serial(fnn.Dense(7, kernel_initializer="he_normal"), fnn.Dense(2))  # a structure of its own
    seeds = [0, 5, 0, 2**33 + 1, -1, np.uint64(2**63 + 5)]  # a NumPy uint64 wraps as PRNGKey's int64
    with jax.default_prng_impl(impl):
        with compiles() as c:
            params, keys = initial_params(net, 3, seeds, jnp.float32)
        if impl == "threefry2x32":  # rbg's eager draws compile what net.init and the splits do
            assert c.count == 1
        for i, s in enumerate(seeds):
            init_key, fit_key = jax.random.split(jax.random.PRNGKey(np.int64(s)))
            one = jax.tree.map(lambda a: a.astype(jnp.float32), net.init(init_key, (3,)))
            chex.assert_trees_all_equal(jax.tree.map(lambda a, i=i: a[i], params), one)
            np.testing.assert_array_equal(keys[i], fit_key)
        with compiles() as c:  # other seeds, as many, in a grid of another size: the same program
            again, _ = initial_params(net, (3,), [9, 8, 7, 6, 4, 9, 8], jnp.float32)
        assert c.count == 0 and jax.tree.leaves(again)[0].shape[0] == 7


def test_uniform_inits_draw_the_seeds_params_on_the_host_as_each_seed_draws_them(compiles):
    """fnn compare's and sweep's set-up for a network of uniform initializers (glorot_uniform,
    the default): the keys and random bits drawn on the host, the arithmetic in a small
    program of its own (fnn._host_keys), and every seed's params still ``net.init``'s from
    ``split(PRNGKey(s))[0]``, bit for bit; the zeros a program compiles on while they are
    drawn have their shapes and dtypes."""
    from fnn.train._initial import initial_params, initial_zeros

    net = fnn.serial(fnn.Dense(9, kernel_initializer="he_uniform"), fnn.Dense(2, bias_initializer="ones"))
    seeds = [3, 0, -7, 2**33 + 1]
    with compiles() as c:
        params, keys = initial_params(net, 4, seeds)
    assert c.count <= 1  # the arithmetic alone (none if another network's had these shapes)
    for i, s in enumerate(seeds):
        init_key, fit_key = jax.random.split(jax.random.PRNGKey(np.int64(s)))
        chex.assert_trees_all_equal(jax.tree.map(lambda a, i=i: a[i], params), net.init(init_key, (4,)))
        np.testing.assert_array_equal(keys[i], fit_key)
    zeros, zero_keys = initial_zeros(net, 4, len(seeds))
    chex.assert_trees_all_equal_shapes_and_dtypes((zeros, zero_keys), (params, keys))
    assert all(not np.any(np.asarray(a)) for a in jax.tree.leaves(zeros))


def test_sweep_s_learning_rate_is_the_first_group_s_and_the_others_keep_their_proportions():
    """chain(masked(sgd(0.1), w), masked(adam(0.01), b)) swept at 0.5 and 0.02 trains with
    (0.5, 0.05) and (0.02, 0.002), as LearningRateScheduler and scale_learning_rates keep the
    10:1 ratio (every group at the swept rate lost it)."""
    net, x = fnn.mlp([1]), np.linspace(-1, 1, 16).reshape(8, 2)
    O = fnn.optimizers
    w, b = [{"w": True, "b": False}], [{"w": False, "b": True}]
    opt = O.chain(O.masked(O.sgd(0.1), w), O.masked(O.adam(0.01), b))
    res = fnn.sweep(net, opt, "mse", x, x.sum(1, keepdims=True), learning_rates=[0.5, 0.02], batch_size=8, epochs=1)
    assert [c["learning_rate"] for c in res.configs] == [0.5, 0.02]
    rates = np.array([np.asarray(r, np.float64) for r in O.get_learning_rates(res.opt_state)])  # (groups, K)
    np.testing.assert_allclose(rates, np.float32([[0.5, 0.02], [0.05, 0.002]]), rtol=1e-7)
    assert np.float32(rates[0, 1]) == np.float32(0.02)  # the first group's is the swept value itself


def test_sweep_dtype_float64_without_x64_says_so_once():
    x, y = _data()
    with jax.enable_x64(False), pytest.warns(UserWarning) as seen:  # not jax's warning per leaf and cast
        result = fnn.sweep(NET, OPT, LOSS, x, y, learning_rates=[0.1], dtype=jnp.float64, epochs=0, verbose=0)
    assert [str(w.message)[:58] for w in seen] == ["dtype=float64 is not available with jax_enable_x64 off: th"]
    assert {a.dtype for a in jax.tree.leaves(result.params)} == {np.dtype(np.float32)}


def test_sweep_and_fit_many_bad_input(compiles):
    x, y = _data()
    p = _zero_params()
    stacked = jax.tree.map(lambda a: np.stack([a, a]), p)
    unstacked = jax.device_put([{"w": np.zeros((2, 4, 8)), "b": np.zeros((3, 8))}, {}, {}])  # NumPy: no program
    three_keys = jax.random.split(jax.random.PRNGKey(0), 3)
    with compiles() as c:
        with pytest.raises(ValueError, match="no hyperparameter 'weight_decay'.*learning_rate.*weight_decay=0"):
            fnn.sweep(NET, fnn.optimizers.sgd(0.1), LOSS, x, y, weight_decays=[0.0, 0.1])
        with pytest.raises(ValueError, match="no hyperparameter 'nope'"):
            fnn.sweep(NET, OPT, LOSS, x, y, hparams={"nope": [1.0]})
        with pytest.raises(ValueError, match="learning_rates must hold at least one value"):
            fnn.sweep(NET, OPT, LOSS, x, y, learning_rates=[])
        with pytest.raises(
            TypeError, match=r"^sweep\(\) got an unexpected keyword argument 'mesh' \(a sweep trains on one"
        ):
            fnn.sweep(NET, OPT, LOSS, x, y, mesh=None)
        with pytest.raises(TypeError, match=r"^sweep\(\) got an unexpected keyword argument 'epoch'$"):
            fnn.sweep(NET, OPT, LOSS, x, y, epoch=3)
        # fit_many names where a mesh goes too (Python's own message named no remedy)
        with pytest.raises(
            TypeError, match=r"^fit_many\(\) got an unexpected keyword argument 'mesh' \(fit_many trains on one"
        ):
            fnn.fit_many(NET, stacked, OPT, LOSS, x, y, mesh=parallel.data_mesh())
        with pytest.raises(TypeError, match=r"^fit_many\(\) got an unexpected keyword argument 'epoch'$"):
            fnn.fit_many(NET, stacked, OPT, LOSS, x, y, epoch=3)
        with pytest.raises(ValueError, match="learning_rates must be >= 0"):
            fnn.sweep(NET, OPT, LOSS, x, y, learning_rates=[0.1, -1.0])
        with pytest.raises(ValueError, match="momentum values must be finite"):
            fnn.sweep(NET, OPT, LOSS, x, y, hparams={"momentum": [0.5, float("nan")]})
        with pytest.raises(TypeError, match="seeds must be ints"):
            fnn.sweep(NET, OPT, LOSS, x, y, seeds=[0.5])
        for seed in (2**64 - 1, 2**70, -(2**63) - 1):  # PRNGKey(seed) overflows: they were reduced mod 2^32
            with pytest.raises(ValueError, match=rf"seeds must be in int64's range, .* got {seed}$"):
                fnn.sweep(NET, OPT, LOSS, x, y, seeds=[0, seed])
        with pytest.raises(ValueError, match=r"b1 must be finite and in \[0, 1\), got 1.0"):
            fnn.sweep(NET, fnn.optimizers.adam(1e-3), LOSS, x, y, hparams={"b1": [0.9, 1.0]})
        with pytest.raises(ValueError, match=r"decay must be in \[0, 1\], got 1.5"):  # rmsprop's own range
            fnn.sweep(NET, fnn.optimizers.rmsprop(0.01), LOSS, x, y, hparams={"decay": [0.9, 1.5]})
        with pytest.raises(TypeError, match="dtype must be a floating dtype, got int32"):
            fnn.sweep(NET, OPT, LOSS, x, y, dtype=jnp.int32)
        with pytest.raises(TypeError, match=r"^dtype must be float16, bfloat16, float32 or float64 \(8-bit"):
            fnn.sweep(NET, OPT, LOSS, x, y, dtype=jnp.float8_e4m3fn)
        with pytest.raises(ValueError, match="learning_rate values must be finite"):
            fnn.sweep(NET, OPT, LOSS, x, y, learning_rates=[np.float32(np.inf)])
        # an 8-bit float is already rounded (0.1 is 0.1015625): refused by name, as fnn.adam(b1=...)
        eight = jnp.float8_e4m3fn
        with pytest.raises(TypeError, match=r"^learning_rates\[1\] is held in float8_e4m3fn \(as 0.1015625\)"):
            fnn.sweep(NET, OPT, LOSS, x, y, learning_rates=[0.1, jax.device_put(np.asarray(0.1, eight))])
        with pytest.raises(TypeError, match=r"^learning_rates is held in float8_e4m3fn \(as \[0.1015625\]\)"):
            fnn.sweep(NET, OPT, LOSS, x, y, learning_rates=np.asarray([0.1], eight))
        # a value of the wrong type is a TypeError (README's Guarantees), a bad number a ValueError
        momentum_opt = fnn.optimizers.sgd(0.1, momentum=0.5, weight_decay=1e-3)
        for grid, name, value in (
            ({"learning_rates": [0.1, "0.1"]}, "learning_rate", "'0.1'"),
            ({"weight_decays": ["0.1"]}, "weight_decay", "'0.1'"),
            ({"hparams": {"momentum": ["0.5"]}}, "momentum", "'0.5'"),
            ({"learning_rates": [None]}, "learning_rate", "None"),
            ({"hparams": {"momentum": [True]}}, "momentum", "True"),
        ):
            with pytest.raises(TypeError, match=rf"^{name} values must be real numbers, got {value} in \["):
                fnn.sweep(NET, momentum_opt, LOSS, x, y, **grid)
        with pytest.raises(TypeError, match="sweep\\(\\) sets 'key' itself"):
            fnn.sweep(NET, OPT, LOSS, x, y, key=jax.random.PRNGKey(0))
        with pytest.raises(ValueError, match="learning_rate given twice"):
            fnn.sweep(NET, OPT, LOSS, x, y, learning_rates=[0.1], hparams={"learning_rate": [0.2]})
        # fit_many's checks of the data and loss, made before the seeds' inits compile
        with pytest.raises(ValueError, match="same number of samples"):
            fnn.sweep(NET, OPT, LOSS, x, y[:-1], learning_rates=[0.1])
        with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
            fnn.sweep(NET, OPT, LOSS, x, np.full(len(x), 5), learning_rates=[0.1])
        with pytest.raises(ValueError, match=r"x contains 1 NaN/inf value\(s\), the first at index \(3, 1\)"):
            fnn.sweep(NET, OPT, LOSS, np.where(np.arange(x.size).reshape(x.shape) == 13, np.nan, x), y)
        with pytest.raises(ValueError, match=r"loss <lambda> returned an array of shape \(33,\)"):
            fnn.sweep(NET, OPT, lambda t, p: jnp.mean(jnp.square(p - t[:, None]), axis=-1), x, y, grad="autodiff")
        with pytest.raises(ValueError, match="params must be stacked"):
            fnn.fit_many(NET, unstacked, OPT, LOSS, x, y)
        empty = jax.tree.map(lambda a: a[:0], stacked)  # K = 0: refused whether or not it shuffles
        for shuffle in (True, False):
            with pytest.raises(ValueError, match=r"params stacks no model: .* K >= 1 is needed"):
                fnn.fit_many(NET, empty, OPT, LOSS, x, y, shuffle=shuffle)
        with pytest.raises(ValueError, match="batch_size must be >= 1"):
            fnn.fit_many(NET, stacked, OPT, LOSS, x, y, batch_size=0)
    assert c.count == 0
    # (after the data checks, which fit shares and which may stage a tiny label-range kernel)
    with pytest.raises(ValueError, match="key holds 3 keys for 2 models"):
        fnn.fit_many(NET, stacked, OPT, LOSS, x, y, key=three_keys)
    with pytest.raises(ValueError, match="configs must have one entry per model"):
        fnn.fit_many(NET, stacked, OPT, LOSS, x, y, configs=[{}])
    # (each before anything trains: a result lost to a mistake found on the way out)
    for configs, said in (
        (["lr=0.1", "lr=0.2"], r"configs\[0\] must be a dict \(model 0's settings\), got str"),
        ([{}, 2], r"configs\[1\] must be a dict \(model 1's settings\), got int"),
        ((c for c in [{}, {}]), r"configs must be a list of K=2 dicts, got generator"),
    ):
        with pytest.raises(TypeError, match=said):
            fnn.fit_many(NET, stacked, OPT, LOSS, x, y, configs=configs)
    raw = r"key must be one PRNG key or K=2 stacked keys: a raw key is uint32 of shape \(2,\) .* got shape "
    for key in (np.zeros((2, 3), np.uint32), np.zeros(4, np.uint32)):  # rbg's key data is 4 words
        with pytest.raises(ValueError, match=raw + re.escape(str(key.shape))):
            fnn.fit_many(NET, stacked, OPT, LOSS, x, y, key=key)
    with pytest.raises(ValueError, match="same number of samples"):
        fnn.fit_many(NET, stacked, OPT, LOSS, x, y[:-1])
    with pytest.raises(ValueError, match="opt_state must be stacked"):
        fnn.fit_many(NET, stacked, OPT, LOSS, x, y, opt_state=OPT.init(p))
    # combinations are checked on the initial states' values (after their init, before training)
    nesterov = fnn.optimizers.sgd(0.1, momentum=0.9, nesterov=True)
    with pytest.raises(ValueError, match="nesterov=True requires momentum > 0 and dampening == 0"):
        fnn.sweep(NET, nesterov, LOSS, x, y, hparams={"momentum": [0.5, 0.0]})
    # a warmup from 0: no factor of the schedule makes the first update use the swept rate
    warmup = fnn.optimizers.sgd(fnn.schedules.warmup_cosine_decay(0.0, 1e-2, 4, 40))
    with pytest.raises(ValueError, match="learning_rate=0.1: learning_rate follows a schedule that gives 0"):
        fnn.sweep(NET, warmup, LOSS, x, y, learning_rates=[0.1])


# --------------------------------------------------------------------------------------------
# The subprocess runs (started with the first test of this module)
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sharded_fit_on_8_devices_equals_one_device(runs):
    """float32, shuffled, Dropout, validation and accuracy; batches of 12, 12 and 5 rows on 8
    devices (none divisible by 8): manual and autodiff gradients."""
    d, _ = _finish(runs["mesh"])
    for case in ("manual", "autodiff"):
        names = sorted(k.split("/", 2)[2] for k in d if k.startswith(f"{case}/single/"))
        assert any(n.startswith("history/val_") for n in names) == (case == "manual")
        for n in names:
            single, mesh = d[f"{case}/single/{n}"], d[f"{case}/mesh/{n}"]
            if n.startswith("devices"):
                assert (int(single), int(mesh)) == (1, 8)  # the sharded run really used 8 devices
            else:
                assert single.dtype == np.float32 or n.startswith("history")
                np.testing.assert_allclose(mesh, single, rtol=1e-5, atol=1e-6, err_msg=f"{case} {n}")
        # and training did something: the weights moved from their start
        assert not np.allclose(d[f"{case}/single/param0"], 0)


@pytest.mark.slow
def test_arrays_placed_apart_compute_on_the_params_device(runs):
    """fit (no mesh), predict, evaluate and gradcheck on one device, whatever device or mesh
    the arrays were put on: params on device 3 and x on device 5 (the data follow the params);
    params replicated on the data mesh and data split on another mesh, 5-row batches that do
    not divide over it. The numbers are those of NumPy arrays, bit for bit."""
    d, _ = _finish(runs["mesh"])
    for what in ("fit", "predict", "evaluate"):
        for placed in ("apart", "split"):
            np.testing.assert_array_equal(d[f"placement/{what}/{placed}"], d[f"placement/{what}/numpy"], err_msg=placed)
    assert int(d["placement/fit/apart_device"]) == 3
    assert d["placement/predict/apart_devices"].tolist() == [3]
    assert d["placement/predict/split_devices"].tolist() == [0]  # the replicated params' first copy
    assert bool(d["placement/gradcheck_passed"])
    # a run inside jax.set_mesh of jax.make_mesh's Explicit mesh, its data on it and a validation
    # split (checked under the caller's mesh, trained under its Auto copy): the plain run's numbers
    np.testing.assert_allclose(d["placement/set_mesh/explicit"], d["placement/set_mesh/plain"], rtol=1e-5)
    assert float(d["placement/evaluate/numpy"]) > 0 and np.abs(d["placement/predict/numpy"]).min() > 0


@functools.cache
def _one_process():
    """The 2-process example's problem and its fit in this one process (once for the tests)."""
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import multiprocess_launcher
    finally:
        sys.path.pop(0)
    net, params, opt, loss, x, y, settings = multiprocess_launcher.problem()
    return (net, params, opt, loss, x, y, settings), fnn.fit(net, params, opt, loss, x, y, **settings)


@pytest.mark.slow
def test_two_processes_equal_one_process(runs):
    """2 processes x 2 CPU devices (gloo collectives), each feeding its shard of the rows, give
    the params and history of one process on all the rows (float64)."""
    d, log = _finish(runs["processes"])
    assert "process 0/2: 102 of 203 rows, 2 of 4 devices" in log
    assert "process 1/2: 101 of 203 rows, 2 of 4 devices" in log
    _, ref = _one_process()
    leaves = jax.tree.leaves(ref.params)
    assert leaves[0].dtype == np.float64
    for i, leaf in enumerate(leaves):
        np.testing.assert_allclose(d[f"arr_{i}"], leaf, rtol=1e-10, atol=1e-12)
    for k, v in ref.history.history.items():
        np.testing.assert_allclose(d["history_" + k], v, rtol=1e-10, atol=1e-12)
    assert set(ref.history.keys()) == {"loss", "accuracy", "val_loss", "val_accuracy"}


def _in_each_process(out):
    """What :func:`_parallel_worker.in_each_process` wrote in each of the 2 processes, and the module."""
    worker = runpy.run_path(str(ROOT / "tests" / "_parallel_worker.py"))
    return [dict(np.load(f"{out}.{pid}.npz")) for pid in range(2)], worker


@pytest.mark.slow
def test_two_processes_take_their_shards_of_the_weights_and_of_a_weighted_validation_triple(runs):
    """Each process passes its shard of x, y, sample_weight and of (x_val, y_val, w_val): the
    params and history of one process on the whole arrays (float64)."""
    _, out = runs["processes"]
    _finish(runs["processes"])
    (d0, d1), worker = _in_each_process(out)
    net, params, opt, loss, (x, y, w), val, settings = worker["weighted_problem"]()
    ref = fnn.fit(net, params, opt, loss, x, y, sample_weight=w, validation_data=val, **settings)
    unweighted = fnn.fit(net, params, opt, loss, x, y, validation_data=val[:2], **settings)
    for d in (d0, d1):
        for i, leaf in enumerate(jax.tree.leaves(ref.params)):
            np.testing.assert_allclose(d[f"param{i}"], leaf, rtol=1e-10, atol=1e-12)
        assert sorted(k for k in d if k.startswith("history/")) == ["history/loss", "history/val_loss"]
        for k, v in ref.history.history.items():
            np.testing.assert_allclose(d[f"history/{k}"], v, rtol=1e-10, atol=1e-12)
            # the weights count: the unweighted run's losses are others
            assert not np.allclose(unweighted.history[k], v, rtol=1e-3)


@pytest.mark.slow
def test_two_processes_refuse_arguments_that_differ_alike_on_each(runs):
    """params, opt_state (given on one process only, too), key and settings that differ between
    the processes, and a sample_weight of the whole training set with each process's shard of x:
    the same ValueError on both (neither waits for the other), naming what differs and where."""
    _, out = runs["processes"]
    _finish(runs["processes"])
    (d0, d1), worker = _in_each_process(out)
    same = (
        "every process must pass the same arguments but for its own shard of the data; these differ from process 0's: "
    )
    expected = {
        "params": same + "params (on process 1)",
        "opt_state": same + "opt_state (on process 1)",
        "key": same + "key (on process 1)",
        "batch_size shuffle": same + "batch_size (on process 1), shuffle (on process 1)",
        "opt_state on one": same + "opt_state (on process 1)",
        "whole sample_weight": "sample_weight: each process must pass its own shard, one row per row of its x "
        "(fnn.parallel.process_shard(sample_weight), as for x); got 23 rows for 12, 23 rows for 11 (process 0, 1, ...)",
    }
    assert set(expected) == set(worker["REFUSED"])
    for case, message in expected.items():
        assert str(d0[f"refused/{case}"]) == str(d1[f"refused/{case}"]) == message, case


@pytest.mark.slow
def test_each_process_evaluates_and_predicts_on_its_own(runs):
    """The params a 2-process fit returns are replicated over both processes' devices: evaluate
    and predict take them in each process (its local copy), as one process's trained params; a
    kernel split over the processes is refused, saying how to gather it."""
    d, log = _finish(runs["processes"])
    assert log.count("loss on all rows") == 2
    (net, _, _, loss, x, y, settings), ref = _one_process()
    logs = fnn.evaluate(net, ref.params, loss, x, y, metrics=settings["metrics"])
    assert sorted(k for k in d if k.startswith("evaluate_")) == ["evaluate_accuracy", "evaluate_loss"]
    for k, v in logs.items():
        np.testing.assert_allclose(d["evaluate_" + k], v, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(d["predict"], fnn.predict(net, ref.params, x[:5]), rtol=1e-10, atol=1e-12)
    (d0, d1), _ = _in_each_process(runs["processes"][1])
    for message in (str(d0["shard_error"]), str(d1["shard_error"])):
        assert message.startswith("params[0]['w'] is split over processes (NamedSharding(")
        assert "process_allgather(a, tiled=True) gives every process the whole value" in message


def test_fit_many_s_misfit_leaf_says_per_model_and_sweep_names_its_input_shape():
    """fit_many checks one model's slice: the message says its shapes are per model (the user's
    leaf is stacked); sweep's params are built for input_shape: x that does not fit them names
    input_shape, whichever of the two is wrong."""
    net = fnn.mlp([6, 3])
    k0, k1 = jax.random.split(jax.random.PRNGKey(0))
    stacked = jax.tree.map(lambda *a: jnp.stack(a), net.init(k0, (5,)), net.init(k1, (5,)))
    stacked[1]["w"] = jnp.zeros((2, 7, 3))
    x, y = np.ones((8, 5), np.float32), np.zeros((8, 3), np.float32)
    with pytest.raises(
        ValueError,
        match=r"^params do not fit the network for inputs of shape \(5,\): params\[1\]\['w'\] has shape \(7, 3\), the "
        r"network builds \(6, 3\) \(shapes per model: each stacked leaf holds the 2 models along its first axis\)$",
    ):
        fnn.fit_many(net, stacked, "sgd", "mse", x, y, epochs=1)
    said = r"^x of shape \(8, 5\) does not fit the network built for input_shape=\(4,\) \(sweep inits each model with "
    with pytest.raises(ValueError, match=said + r".*: layer 0 \(dense_0\) expects 4 input features, got 5"):
        fnn.sweep(net, "sgd", "mse", x, y, input_shape=(4,), epochs=1)
    with pytest.raises(ValueError, match=r"^x of shape \(8, 4\) does not fit the network built for input_shape=\(5,\)"):
        fnn.sweep(net, "sgd", "mse", x[:, :4], y, input_shape=(5,), epochs=1)


def test_a_sweep_continued_by_fit_many_from_initial_epoch_equals_the_sweep_run_without_a_stop(compiles):
    """Epoch e draws its order and Dropout keys from fold_in(key, e): a sweep of 1 epoch then
    fit_many(initial_epoch=1, epochs=3) from its params, states and keys equals a sweep of 3
    epochs (a second call without initial_epoch drew epoch 0's orders again), with the histories
    counting from 1; initial_epoch >= epochs trains nothing. The same epoch program throughout."""
    x, y = _data()
    settings = dict(batch_size=7, validation_split=0.2, unroll=1, dtype=jnp.float64)
    grid = dict(seeds=[0, 1], learning_rates=[0.05, 0.2])
    whole = fnn.sweep(NET, OPT, LOSS, x, y, epochs=3, **grid, **settings)
    first = fnn.sweep(NET, OPT, LOSS, x, y, epochs=1, **grid, **settings)
    keys = jnp.stack([jax.random.split(jax.random.PRNGKey(c["seed"]))[1] for c in first.configs])
    fit_settings = {k: v for k, v in settings.items() if k != "dtype"}
    with compiles() as c:
        rest = fnn.fit_many(
            NET, first.params, OPT, LOSS, x, y, key=keys, opt_state=first.opt_state, epochs=3, initial_epoch=1,
            **fit_settings,
        )  # fmt: skip
    assert c.count == 0, c.count
    chex.assert_trees_all_close(rest.params, whole.params, rtol=1e-12, atol=1e-14)
    chex.assert_trees_all_close(rest.opt_state, whole.opt_state, rtol=1e-12, atol=1e-14)
    for h, w in zip(rest.histories, whole.histories, strict=True):
        assert h.epochs == [1, 2] and w.epochs == [0, 1, 2]
        for name in w:
            np.testing.assert_allclose(h[name], w[name][1:], rtol=1e-12, atol=1e-14)
    again = fnn.fit_many(
        NET, first.params, OPT, LOSS, x, y, key=keys, opt_state=first.opt_state, epochs=2, **fit_settings
    )
    assert not np.allclose(again.histories[0]["loss"], whole.histories[0]["loss"][1:], rtol=1e-9)
    done = fnn.fit_many(
        NET, rest.params, OPT, LOSS, x, y, key=keys, opt_state=rest.opt_state, epochs=3, initial_epoch=3
    )
    assert [h.epochs for h in done.histories] == [[]] * 4
    chex.assert_trees_all_equal(done.params, rest.params)
    for bad, error in ((-1, ValueError), (1.0, TypeError), (True, TypeError)):
        with pytest.raises(error, match="initial_epoch must be"):
            fnn.fit_many(NET, first.params, OPT, LOSS, x, y, epochs=3, initial_epoch=bad)


def test_result_takes_a_jax_integer_index_and_stacked_params_given_as_one_model_s_are_named_so():
    """res.result(jnp.argmin(...)) takes the 0-d jax integer (as a list does); the stacked params
    of a sweep handed to predict/evaluate/fit get a note saying what they are."""
    h0, h1 = fnn.History(), fnn.History()
    h0.append(0, {"loss": 0.5}, seconds=0.0)
    h1.append(0, {"loss": 0.25}, seconds=0.0)
    net = fnn.mlp([3, 2])
    p0, p1 = net.init(jax.random.PRNGKey(0), (4,)), net.init(jax.random.PRNGKey(1), (4,))
    stacked = jax.tree.map(lambda *a: np.stack(a), p0, p1)
    result = fnn.SweepResult(stacked, None, [h0, h1], [{}, {}])
    i = jnp.argmin(jnp.array([h["loss"][-1] for h in result.histories]))
    assert result.result(i).history is h1 and result.result(np.array(-2)).history is h0
    chex.assert_trees_all_equal(result.result(i).params, p1)
    for bad in (jnp.float32(1.0), jnp.array(True), jnp.array([1])):
        with pytest.raises(IndexError, match="model index must be an int"):
            result.result(bad)
    note = r"every leaf has a leading axis of 2 before the network's shape: these are stacked models' params"
    x = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"^params do not fit the network .*" + note):
        fnn.predict(net, stacked, x)
    with pytest.raises(ValueError, match=note):
        fnn.evaluate(net, stacked, "mse", x, np.zeros((3, 2), np.float32))
    p0[1]["w"] = np.zeros((3, 3), np.float32)  # a wrong leaf, not a stacking: no note
    with pytest.raises(ValueError, match=r"params\[1\]\['w'\] has shape \(3, 3\)") as e:
        fnn.predict(net, p0, x)
    assert "stacked" not in str(e.value)
