"""Bad input through the public API: every mistake gets a clear ValueError/TypeError that names
the argument and the expected form, raised before anything is compiled, and the caller's
params, optimizer state and data come back untouched.

The sweep gives every case its own number of samples (a shape no other test uses), so a
validation step that compiled anything (even one eager jnp op) shows up in the compile count no
matter which tests ran before.

What "one-hot required" means here, following Keras 3: categorical_crossentropy and
categorical_accuracy require targets of y_pred's shape (N, C) -- integer labels are rejected
with a pointer to the sparse_ variant -- but NOT one-hot values: soft labels (label smoothing,
distillation) are valid targets, and categorical_accuracy compares argmax(y_true). The sparse
losses and metrics require one integer label per sample in [0, C): one-hot rows are rejected.
"""

import re
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fnn
from fnn import optimizers as O

KEY = jax.random.PRNGKey(0)
D, C = 5, 3
NET = fnn.mlp([7, C], activation="tanh")
PARAMS = NET.init(KEY, (D,), jnp.float64)
OPT = O.adam(1e-2)
STATE = OPT.init(PARAMS)
MSE = fnn.losses.get("mse")
SCE = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
CCE = fnn.losses.get("categorical_crossentropy", from_logits=True)


def _bits(tree):
    return [(str(np.asarray(a).dtype), np.asarray(a).tobytes()) for a in jax.tree.leaves(tree)]


PARAM_BITS, STATE_BITS = _bits(PARAMS), _bits(STATE)


def _data(n, d=D, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(n, C)), rng.integers(0, C, size=n)


def _fit(x, y, loss=MSE, params=None, **kw):
    kw.setdefault("opt_state", STATE)
    kw.setdefault("epochs", 1)
    return fnn.fit(NET, PARAMS if params is None else params, OPT, loss, x, y, verbose=0, **kw)


def _with(a, index, value):
    a = np.array(a, dtype=float)
    a[index] = value
    return a


class Case(NamedTuple):
    id: str
    run: Callable[[int], Callable[[], Any]]  # n samples -> the call that must fail
    exc: type
    patterns: tuple  # regexes that must all be found in the message


def _fit_case(id, make, exc, *patterns):
    """``make(x, y_reg, labels, n) -> (args, kwargs)`` for ``_fit`` (one epoch unless given).

    Some cases pass ``epochs=0``: the check must come before the epoch count matters."""

    def run(n):
        args, kwargs = make(*_data(n), n)
        return lambda: _fit(*args, **kwargs)

    return Case(id, run, exc, patterns)


_WRONG_PARAMS = fnn.mlp([6, C]).init(KEY, (D,), jnp.float64)  # another hidden width

FIT_CASES = [
    # ---- shapes and ranks
    _fit_case(
        "n_mismatch",
        lambda x, y, l, n: ((x, y[:-1]), {}),
        ValueError,
        r"x and y must hold the same number of samples",
        r"got {n} in x and {m} in y",
    ),
    _fit_case(
        "features",
        lambda x, y, l, n: ((x[:, :4], y), {}),
        ValueError,
        r"^x of shape .* does not fit",
        r"expects 5 input features, got 4",
    ),
    _fit_case(
        "x_rank1",
        lambda x, y, l, n: ((x[:, 0], y), {}),
        ValueError,
        r"x must be \(samples, \*input_shape\)",
        r"rank 1: one feature per sample is x\[:, None\]",
    ),
    _fit_case(  # any rank >= 2 is data (a Flatten network's images); the network says it does not fit
        "x_rank3",
        lambda x, y, l, n: ((x[:, :, None], y), {}),
        ValueError,
        r"^x of shape \(\d+, 5, 1\) does not fit",
        r"expects 5 input features, got 1",
    ),
    _fit_case(
        "y_rank1_for_3_outputs",
        lambda x, y, l, n: ((x, y[:, 0]), {}),
        ValueError,
        r"^y: ",
        r"y_true shape \({n},\) does not match y_pred shape \({n}, 3\)",
    ),
    _fit_case(
        "y_rank3",
        lambda x, y, l, n: ((x, y[:, :, None].repeat(2, -1)), {}),
        ValueError,
        r"^y: ",
        r"does not match y_pred shape",
    ),
    # ---- dtypes
    _fit_case(
        "y_strings", lambda x, y, l, n: ((x, y.astype(str)), {}), TypeError, r"y must hold numbers; got dtype <U"
    ),
    _fit_case(
        "x_objects", lambda x, y, l, n: ((x.astype(object), y), {}), TypeError, r"x must hold numbers; got dtype object"
    ),
    _fit_case(
        "x_ragged_list",
        lambda x, y, l, n: (([[1.0] * D] * (n - 1) + [[1.0]], y), {}),
        TypeError,
        r"x must be an array of numbers",
    ),
    _fit_case("x_complex", lambda x, y, l, n: ((x + 1j, y), {"epochs": 0}), TypeError, r"\bx\b.*real"),
    _fit_case("y_complex", lambda x, y, l, n: ((x, y + 1j), {"epochs": 0}), TypeError, r"\by\b.*real"),
    # ---- class labels
    _fit_case(
        "sparse_label_eq_C",
        lambda x, y, l, n: ((x, np.where(l == 2, 3, l)), {"loss": SCE}),
        ValueError,
        r"^y: ",
        r"labels must be in \[0, 3\)",
        r"got \[3\]",
    ),
    _fit_case(
        "sparse_label_negative",
        lambda x, y, l, n: ((x, np.where(l == 2, -1, l)), {"loss": SCE}),
        ValueError,
        r"^y: ",
        r"labels must be in \[0, 3\)",
        r"got \[-1\]",
    ),
    _fit_case(
        "sparse_label_fraction",
        lambda x, y, l, n: ((x, l + 0.5), {"loss": SCE}),
        ValueError,
        r"^y: ",
        r"integer class ids",
    ),
    _fit_case(
        "sparse_given_one_hot",
        lambda x, y, l, n: ((x, np.eye(C)[l]), {"loss": SCE}),
        ValueError,
        r"^y: ",
        r"y_true has y_pred's shape \({n}, 3\), as one-hot targets do; it takes integer labels of shape \({n},\) "
        r"or \({n}, 1\) \(for one-hot targets use categorical_crossentropy",
    ),
    _fit_case(
        "categorical_given_labels",
        lambda x, y, l, n: ((x, l), {"loss": CCE}),
        ValueError,
        r"^y: categorical_crossentropy",
        r"does not match y_pred shape \({n}, 3\)",
    ),
    _fit_case(
        "validation_label_out_of_range",
        lambda x, y, l, n: ((x, l), {"loss": SCE, "validation_data": (x, np.full(n, 5))}),
        ValueError,
        r"^validation y: ",
        r"\[0, 3\)",
        r"got \[5\]",
    ),
    # ---- NaN / inf
    _fit_case(
        "nan_in_x",
        lambda x, y, l, n: ((_with(x, (n - 2, 3), np.nan), y), {}),
        ValueError,
        r"^x contains 1 NaN/inf value\(s\), the first at index \({m}, 3\)".replace("{m}", "{n-2}"),
    ),
    _fit_case(
        "inf_in_y",
        lambda x, y, l, n: ((x, _with(y, (4, 1), np.inf)), {}),
        ValueError,
        r"^y contains 1 NaN/inf value\(s\), the first at index \(4, 1\)",
    ),
    _fit_case(
        "neg_inf_in_validation_x",
        lambda x, y, l, n: ((x, y), {"validation_data": (_with(x, (0, 0), -np.inf), y)}),
        ValueError,
        r"^validation_data\[0\] contains 1 NaN/inf",
    ),
    _fit_case(
        "nan_label",
        lambda x, y, l, n: ((x, _with(l, 3, np.nan)), {"loss": SCE}),
        ValueError,
        r"^y contains 1 NaN/inf value\(s\), the first at index \(3,\)",
    ),
    # ---- empty data
    _fit_case("empty", lambda x, y, l, n: ((x[:0], y[:0]), {}), ValueError, r"x is empty \(0 samples\)"),
    _fit_case(
        "empty_validation",
        lambda x, y, l, n: ((x, y), {"validation_data": (x[:0], y[:0])}),
        ValueError,
        r"validation_data\[0\] is empty",
    ),
    _fit_case(
        "split_leaves_no_training",
        lambda x, y, l, n: ((x, y), {"validation_split": 0.999}),
        ValueError,
        r"validation_split=0.999 leaves no training or no validation sample out of {n}",
    ),
    # ---- batch size, epochs, split
    _fit_case(
        "batch_size_0", lambda x, y, l, n: ((x, y), {"batch_size": 0}), ValueError, r"batch_size must be >= 1, got 0"
    ),
    _fit_case(
        "batch_size_negative",
        lambda x, y, l, n: ((x, y), {"batch_size": -4}),
        ValueError,
        r"batch_size must be >= 1, got -4",
    ),
    _fit_case(
        "batch_size_float",
        lambda x, y, l, n: ((x, y), {"batch_size": 8.0}),
        TypeError,
        r"batch_size must be an int, got float",
    ),
    _fit_case(
        "validation_batch_size_0",
        lambda x, y, l, n: ((x, y), {"validation_split": 0.25, "validation_batch_size": 0, "epochs": 0}),
        ValueError,
        r"validation_batch_size must be >= 1",
    ),
    _fit_case(
        "validation_batch_size_float",
        lambda x, y, l, n: ((x, y), {"validation_split": 0.25, "validation_batch_size": 2.5, "epochs": 0}),
        TypeError,
        r"validation_batch_size must be an int",
    ),
    _fit_case(
        "epochs_negative", lambda x, y, l, n: ((x, y), {"epochs": -1}), ValueError, r"epochs must be >= 0, got -1"
    ),
    _fit_case(
        "epochs_float", lambda x, y, l, n: ((x, y), {"epochs": 2.5}), TypeError, r"epochs must be an int, got float"
    ),
    _fit_case(
        "initial_epoch_negative",
        lambda x, y, l, n: ((x, y), {"initial_epoch": -2}),
        ValueError,
        r"initial_epoch must be >= 0, got -2",
    ),
    _fit_case(
        "validation_split_negative",
        lambda x, y, l, n: ((x, y), {"validation_split": -0.1}),
        ValueError,
        r"validation_split must be in \[0, 1\), got -0.1",
    ),
    _fit_case(
        "validation_split_nan",
        lambda x, y, l, n: ((x, y), {"validation_split": float("nan")}),
        ValueError,
        r"validation_split must be in \[0, 1\), got nan",
    ),
    _fit_case(
        "validation_split_string",
        lambda x, y, l, n: ((x, y), {"validation_split": "0.2"}),
        TypeError,
        r"validation_split must be a (float|number)",
    ),
    _fit_case(
        "validation_data_triple",  # a third element is sample weights, one per sample (Keras)
        lambda x, y, l, n: ((x, y), {"validation_data": (x, y, y)}),
        ValueError,
        r"validation_data\[2\] must have one weight per sample",
    ),
    _fit_case(
        "validation_data_quadruple",
        lambda x, y, l, n: ((x, y), {"validation_data": (x, y, y, y)}),
        ValueError,
        r"validation_data must be a pair \(x_val, y_val\) or a triple",
    ),
    _fit_case(
        "validation_features",
        lambda x, y, l, n: ((x, y), {"validation_data": (x[:, :3], y)}),
        ValueError,
        r"^validation x of shape .* does not fit",
        r"expects 5 input features, got 3",
    ),
    # ---- names and objects
    _fit_case(
        "unknown_loss",
        lambda x, y, l, n: ((x, y), {"loss": "mean_sqared_error"}),
        ValueError,
        r"unknown loss 'mean_sqared_error'; known names: .*mean_squared_error",
    ),
    _fit_case(
        "loss_not_a_loss",
        lambda x, y, l, n: ((x, y), {"loss": 3}),
        TypeError,
        r"loss must be a loss name or an fnn.losses.Loss, got int",
    ),
    _fit_case(
        "unknown_metric",
        lambda x, y, l, n: ((x, y), {"metrics": ["acuracy"]}),
        ValueError,
        r"unknown metric 'acuracy'; known metrics: .*accuracy",
    ),
    _fit_case(
        "unknown_grad_mode",
        lambda x, y, l, n: ((x, y), {"grad": "numeric"}),
        ValueError,
        r"grad must be one of \('manual', 'autodiff'\), got 'numeric'",
    ),
    _fit_case(
        "callback_not_callable",
        lambda x, y, l, n: ((x, y), {"callbacks": [3]}),
        TypeError,
        r"callbacks\[0\] must be a Callback or a callable",
    ),
    _fit_case(
        "shuffle_string",
        lambda x, y, l, n: ((x, y), {"shuffle": "no", "epochs": 0}),
        TypeError,
        r"shuffle must be a bool",
    ),
    _fit_case("key_not_a_key", lambda x, y, l, n: ((x, y), {"key": 3}), TypeError, r"^key must be a jax PRNG key"),
    # ---- params and optimizer state that do not fit
    _fit_case(
        "params_of_a_wider_network",
        lambda x, y, l, n: ((x, y), {"params": _WRONG_PARAMS, "opt_state": None, "epochs": 0}),
        ValueError,
        r"params",
        r"shape \(5, 6\).*\(5, 7\)",
    ),
    _fit_case(
        "params_too_few_layers",
        lambda x, y, l, n: ((x, y), {"params": PARAMS[:1]}),
        ValueError,
        r"params must be a list with one entry per layer \(2\), got a list of length 1",
    ),
    _fit_case(
        "opt_state_for_other_params",
        lambda x, y, l, n: ((x, y), {"opt_state": OPT.init(_WRONG_PARAMS)}),
        ValueError,
        r"opt_state",
        r"opt\.init\(params\)",
    ),
    _fit_case(
        "opt_state_of_other_optimizer",
        lambda x, y, l, n: ((x, y), {"opt_state": O.sgd(0.1).init(PARAMS)}),
        ValueError,
        r"opt_state",
        r"opt\.init\(params\)",
    ),
]


def _pattern(pattern, n):
    """``{n}``, ``{m}``, ``{n-2}`` in a pattern stand for the case's n, n - 1, n - 2."""
    return pattern.replace("{n-2}", str(n - 2)).replace("{n}", str(n)).replace("{m}", str(n - 1))


def _params(cases):
    return [pytest.param(i, c, id=c.id) for i, c in enumerate(cases)]


def _expect(case, n, compiles):
    call = case.run(n)
    with compiles() as c, pytest.raises(case.exc) as info:
        call()
    message = str(info.value)
    for p in case.patterns:
        assert re.search(_pattern(p, n), message), f"{p!r} not found in: {message}"
    assert c.count == 0, f"{c.count} compilation(s) before the error: {message}"
    assert _bits(PARAMS) == PARAM_BITS and _bits(STATE) == STATE_BITS
    assert not any(a.is_deleted() for a in jax.tree.leaves((PARAMS, STATE)))


@pytest.mark.parametrize("i,case", _params(FIT_CASES))
def test_fit_rejects_bad_input_before_compiling_and_keeps_the_callers_arrays(i, case, compiles):
    _expect(case, 211 + 2 * i, compiles)


def test_fit_leaves_numpy_inputs_and_a_passed_opt_state_untouched():
    x, y, _ = _data(10)
    x32 = x.astype(np.float32)
    copies = x32.copy(), y.copy()
    # float32 data, float64 params: fit casts a copy. (The settings of
    # test_batch_size_above_n_is_one_full_batch_with_validation: one compiled epoch for both.)
    res = _fit(x32, y, batch_size=8, epochs=2, validation_split=0.2, key=KEY)
    np.testing.assert_array_equal(x32, copies[0])
    np.testing.assert_array_equal(y, copies[1])
    assert x32.dtype == np.float32
    assert _bits(PARAMS) == PARAM_BITS and _bits(STATE) == STATE_BITS
    assert int(res.opt_state.count) == 2 and int(STATE.count) == 0  # continued from STATE, a copy


# ---------------------------------------------------------------- checkpoint files given to fit


def test_fit_rejects_foreign_and_corrupt_checkpoints_and_keeps_the_file(tmp_path):
    x, y, _ = _data(12)
    good = tmp_path / "params_only.npz"  # another program's file: no opt_state
    fnn.checkpoint.save(good, params=PARAMS, epoch=3)
    cut = tmp_path / "cut.npz"  # a copy that died halfway
    fnn.checkpoint.save(cut, params=PARAMS, opt_state=STATE, epoch=3)
    cut.write_bytes(cut.read_bytes()[:1000])
    other = tmp_path / "other.npz"  # same kind of model, other sizes
    fnn.checkpoint.save(other, params=_WRONG_PARAMS, opt_state=OPT.init(_WRONG_PARAMS), epoch=1)
    for path, pattern in [
        (good, r"params_only.npz' holds no optimizer state \(it was saved with params only, as ModelCheckpoint"),
        (cut, r"cut.npz: not a readable fnn checkpoint \(corrupt, truncated"),
        (
            other,
            (
                r"other.npz: checkpoint does not match the template: "
                r"params\[0\]\['b'\]: shape \(6,\) in the file vs \(7,\)"
            ),
        ),
    ]:
        before = path.read_bytes()
        with pytest.raises(ValueError, match=pattern):
            fnn.fit(NET, PARAMS, OPT, MSE, x, y, checkpoint=path, verbose=0)
        assert path.read_bytes() == before  # never overwritten
    assert _bits(PARAMS) == PARAM_BITS and _bits(STATE) == STATE_BITS


def test_fit_reads_the_checkpoint_before_compiling_anything(tmp_path, compiles):
    net = fnn.mlp([37, C])
    # zeros of init's shapes: the values do not matter, and drawing them would compile
    params = jax.tree.map(
        lambda s: np.zeros(s.shape, s.dtype), jax.eval_shape(lambda: net.init(KEY, (D,), jnp.float64))
    )
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    x, y, _ = _data(409)
    with compiles() as c, pytest.raises(ValueError, match="junk.npz: not a readable fnn checkpoint"):
        fnn.fit(net, params, OPT, MSE, x, y, checkpoint=tmp_path / "junk.npz", verbose=0)
    assert c.count == 0


# ---------------------------------------------------------------- evaluate

EVAL_CASES = [
    Case(
        "labels_out_of_range",
        lambda n: lambda: fnn.evaluate(NET, PARAMS, SCE, _data(n)[0], np.full(n, C)),
        ValueError,
        (r"^y: ", r"labels must be in \[0, 3\)"),
    ),
    Case(
        "features",
        lambda n: lambda: fnn.evaluate(NET, PARAMS, MSE, _data(n)[0][:, :4], _data(n)[1]),
        ValueError,
        (r"^x of shape \({n}, 4\) does not fit", r"expects 5 input features, got 4"),
    ),
    Case(
        "y_shape",
        lambda n: lambda: fnn.evaluate(NET, PARAMS, MSE, _data(n)[0], _data(n)[1][:, :2]),
        ValueError,
        (r"^y: ", r"y_true shape \({n}, 2\) does not match y_pred shape \({n}, 3\)"),
    ),
    Case(
        "nan_in_y",
        lambda n: lambda: fnn.evaluate(NET, PARAMS, MSE, _data(n)[0], _with(_data(n)[1], (2, 2), np.nan)),
        ValueError,
        (r"^y contains 1 NaN/inf value\(s\), the first at index \(2, 2\)",),
    ),
    Case(
        "empty",
        lambda n: lambda: fnn.evaluate(NET, PARAMS, MSE, _data(n)[0][:0], _data(n)[1][:0]),
        ValueError,
        (r"x is empty",),
    ),
    Case(
        "batch_size_float",
        lambda n: lambda: fnn.evaluate(NET, PARAMS, MSE, *_data(n)[:2], batch_size=2.0),
        TypeError,
        (r"batch_size must be an int, got float 2.0",),
    ),
]


@pytest.mark.parametrize("i,case", _params(EVAL_CASES))
def test_evaluate_rejects_bad_input_before_compiling(i, case, compiles):
    _expect(case, 307 + 2 * i, compiles)


# ---------------------------------------------------------------- optimizer updates and trees

_GRADS = jax.tree.map(jnp.ones_like, PARAMS)
UPDATE_CASES = [
    ("adam_grads_tree", lambda: OPT.update(_GRADS[:1], STATE, PARAMS), r"grads.*(state|params)"),
    (
        "adam_grads_shapes",
        lambda: OPT.update(jax.tree.map(jnp.ones_like, _WRONG_PARAMS), STATE, PARAMS),
        r"grads.*shape",
    ),
    (
        "adamw_params_tree",
        lambda: O.adamw(1e-3).update(_GRADS, O.adamw(1e-3).init(PARAMS), PARAMS[:1]),
        r"params.*grads|grads.*params",
    ),
    (
        "sgd_momentum_tree",
        lambda: O.sgd(0.1, momentum=0.9).update(_GRADS[:1], O.sgd(0.1, momentum=0.9).init(PARAMS), PARAMS),
        r"grads.*(state|params)",
    ),
    ("apply_updates_tree", lambda: O.apply_updates(PARAMS, _GRADS[:1]), r"updates.*params|params.*updates"),
]


@pytest.mark.parametrize("name,call,pattern", [pytest.param(*c, id=c[0]) for c in UPDATE_CASES])
def test_optimizer_update_rejects_mismatched_trees_by_name(name, call, pattern):
    # update is itself jittable code: what counts is a clear error at trace time, no side effects.
    with pytest.raises((ValueError, TypeError), match=pattern):
        call()
    assert _bits(PARAMS) == PARAM_BITS and _bits(STATE) == STATE_BITS


@pytest.mark.parametrize(
    "factory,kwargs,pattern",
    [
        (O.sgd, dict(learning_rate=-0.1), r"learning_rate must be >= 0, got -0.1"),
        (O.adam, dict(learning_rate=float("nan")), r"learning_rate must be finite, got nan"),
        (O.rmsprop, dict(learning_rate=float("inf")), r"learning_rate must be finite, got inf"),
        (O.adamw, dict(learning_rate=jnp.asarray(jnp.nan)), r"learning_rate must be finite"),
        (O.lion, dict(learning_rate="1e-4"), r"learning_rate must be a real number, got '1e-4'"),
    ],
)
def test_bad_learning_rates_raise_at_construction(factory, kwargs, pattern, compiles):
    with compiles() as c, pytest.raises((ValueError, TypeError), match=pattern):
        factory(**kwargs)
    assert c.count == 0


@pytest.mark.parametrize("lr", [-1e-3, float("nan"), float("inf")])
def test_set_learning_rate_rejects_bad_values_and_keeps_the_state(lr):
    with pytest.raises(ValueError, match="learning_rate must be finite and >= 0"):
        O.set_learning_rate(STATE, lr)
    assert _bits(STATE) == STATE_BITS
    with pytest.raises(ValueError, match=r"LearningRateScheduler: the schedule's learning rate for epoch 0 must be"):
        fnn.fit(
            NET,
            PARAMS,
            OPT,
            MSE,
            *_data(8)[:2],
            verbose=0,
            epochs=2,
            callbacks=[fnn.callbacks.LearningRateScheduler(lambda epoch, old: lr)],
        )
    assert _bits(PARAMS) == PARAM_BITS


# ---------------------------------------------------------------- unknown names list the known ones


@pytest.mark.parametrize(
    "get,module,bad",
    [
        (fnn.losses.get, fnn.losses, "crossentropy"),
        (fnn.metrics.get, fnn.metrics, "acc_top5"),
        (fnn.optimizers.get, fnn.optimizers, "adamm"),
        (fnn.activations.get, fnn.activations, "rellu"),
        (fnn.initializers.get, fnn.initializers, "glorot"),
        (fnn.datasets.load, fnn.datasets, "mnist10"),
    ],
)
def test_unknown_names_list_every_known_one(get, module, bad):
    with pytest.raises(ValueError) as info:
        get(bad)
    message = str(info.value)
    assert repr(bad) in message and "known" in message
    missing = [n for n in module.names() if n not in message]
    assert not missing, f"not listed: {missing}"


def test_unknown_activation_is_rejected_when_the_network_is_built():
    with pytest.raises(ValueError, match="unknown activation 'rellu'"):
        fnn.mlp([4, 2], activation="rellu")
    with pytest.raises(ValueError, match="unknown activation 'rellu'"):
        fnn.Dense(2, activation="rellu")


def test_unknown_activation_is_rejected_even_without_hidden_layers():
    with pytest.raises(ValueError, match="unknown activation 'rellu'"):
        fnn.mlp([2], activation="rellu")


# ---------------------------------------------------------------- properties (hypothesis)


@settings(max_examples=25, deadline=None)
@given(n_x=st.integers(1, 9), n_y=st.integers(1, 9), d=st.integers(1, 8), rank=st.sampled_from([1, 2, 3]))
def test_property_shape_errors_name_x_or_y_and_valid_shapes_pass(n_x, n_y, d, rank):
    rng = np.random.default_rng(n_x * 100 + n_y * 10 + d)
    x = rng.normal(size=(n_x, d)[:rank] if rank < 3 else (n_x, d, 1))
    y = rng.normal(size=(n_y, C))
    if rank == 1:
        expected = rf"x must be \(samples, \*input_shape\), samples first; got shape {re.escape(str(x.shape))}"
    elif n_x != n_y:
        expected = rf"got {n_x} in x and {n_y} in y"
    elif rank == 3:  # (n, d, 1): Dense reads the last axis, one feature
        expected = rf"x of shape \({n_x}, {d}, 1\) does not fit the network: .*expects 5 input features, got 1"
    elif d != D:
        expected = rf"x of shape \({n_x}, {d}\) does not fit the network: .*expects 5 input features, got {d}"
    else:
        expected = None
    if expected is None:  # valid: epochs=0 trains nothing and returns the params unchanged
        res = fnn.fit(NET, PARAMS, OPT, MSE, x, y, epochs=0, verbose=0)
        assert _bits(res.params) == PARAM_BITS and res.history.epochs_run == 0
    else:
        with pytest.raises(ValueError, match=expected):
            fnn.fit(NET, PARAMS, OPT, MSE, x, y, epochs=0, verbose=0)
    assert _bits(PARAMS) == PARAM_BITS


@settings(max_examples=25, deadline=None)
@given(
    labels=st.lists(st.integers(-3, C + 2), min_size=1, max_size=12),
    column=st.booleans(),
    dtype=st.sampled_from([np.int32, np.int64, np.float64]),
    ignore=st.sampled_from([None, -1]),
)
def test_property_sparse_labels_outside_0_C_are_rejected_and_listed(labels, column, dtype, ignore):
    y = np.asarray(labels, dtype)
    y = y[:, None] if column else y
    x = np.random.default_rng(len(labels)).normal(size=(len(labels), D))
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True, ignore_class=ignore)
    flat = y.reshape(-1)
    outside = (flat < 0) | (flat >= C)
    if ignore is not None:
        outside &= flat != ignore
    bad = np.unique(flat[outside])
    if bad.size:
        with pytest.raises(ValueError) as info:
            fnn.fit(NET, PARAMS, OPT, loss, x, y, epochs=0, verbose=0)
        message = str(info.value)
        assert message.startswith("y: sparse_categorical_crossentropy: labels must be in [0, 3)")
        assert f"got {bad[:5].tolist()}" in message, message
    else:
        res = fnn.fit(NET, PARAMS, OPT, loss, x, y, epochs=0, verbose=0)
        assert res.history.epochs_run == 0
    assert _bits(PARAMS) == PARAM_BITS


@settings(max_examples=25, deadline=None)
@given(
    where=st.sampled_from(["x", "y", "validation_data[0]", "validation_data[1]"]),
    value=st.sampled_from([np.nan, np.inf, -np.inf]),
    row=st.integers(0, 5),
    col=st.integers(0, 2),
    extra=st.integers(0, 3),
)
def test_property_nonfinite_data_is_located(where, value, row, col, extra):
    x, y, _ = _data(6, seed=row)
    arrays = {"x": x, "y": y, "validation_data[0]": x.copy(), "validation_data[1]": y.copy()}
    target = arrays[where]
    target[row, col] = value
    for k in range(extra):  # more bad values in the last row
        target[5, k] = np.nan
    count = int((~np.isfinite(target)).sum())
    first = tuple(int(i) for i in np.argwhere(~np.isfinite(target))[0])
    with pytest.raises(
        ValueError, match=re.escape(f"{where} contains {count} NaN/inf value(s), the first at index {first}")
    ):
        fnn.fit(
            NET,
            PARAMS,
            OPT,
            MSE,
            arrays["x"],
            arrays["y"],
            verbose=0,
            validation_data=(arrays["validation_data[0]"], arrays["validation_data[1]"]),
        )


@settings(max_examples=20, deadline=None)
@given(
    widths=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    other=st.lists(st.integers(1, 4), min_size=1, max_size=3),
)
def test_property_checkpoint_load_accepts_only_the_same_tree(tmp_path_factory, widths, other):
    path = tmp_path_factory.mktemp("ck") / "p.npz"
    make = lambda ws: [
        {"w": np.full((a, b), 0.5), "b": np.arange(b, dtype=np.float32)} for a, b in zip([2] + ws[:-1], ws, strict=True)
    ]
    saved = make(widths)
    fnn.checkpoint.save(path, params=saved, epoch=1)
    template = make(other)
    template_bits = _bits(template)
    if other == widths:
        assert _bits(fnn.checkpoint.load(path, params=template).params) == _bits(saved)
    else:
        with pytest.raises(ValueError, match=re.escape(str(path))) as info:
            fnn.checkpoint.load(path, params=template)
        assert re.search(r"structure differs|does not match the template", str(info.value))
    assert _bits(template) == template_bits


# ---------------------------------------------------------------- accepted on purpose (Keras semantics)


def test_batch_size_above_n_is_one_full_batch_with_validation():
    x, y, _ = _data(10)
    kw = dict(epochs=2, validation_split=0.2, key=KEY, verbose=0)
    big = fnn.fit(NET, PARAMS, OPT, MSE, x, y, batch_size=1000, validation_batch_size=500, **kw)
    exact = fnn.fit(NET, PARAMS, OPT, MSE, x, y, batch_size=8, **kw)  # 8 training samples
    assert big.history.iterations_per_epoch == 1
    assert _bits(big.params) == _bits(exact.params)
    np.testing.assert_array_equal(big.history["val_loss"], exact.history["val_loss"])


def test_zero_epochs_and_initial_epoch_at_the_end_train_nothing():
    x, y, _ = _data(10)
    for kw in (dict(epochs=0), dict(epochs=2, initial_epoch=2)):
        res = fnn.fit(NET, PARAMS, OPT, MSE, x, y, verbose=0, **kw)
        assert res.history.epochs_run == 0 and res.history.history == {}
        assert _bits(res.params) == PARAM_BITS and int(res.opt_state.count) == 0


def test_soft_labels_are_valid_categorical_targets_with_keras_values():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(6, C)) * 3
    soft = rng.dirichlet(np.ones(C), size=6)  # rows sum to 1, none one-hot
    log_q = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    np.testing.assert_allclose(CCE(soft, logits), np.mean(-(soft * log_q).sum(1)), rtol=1e-12)
    np.testing.assert_allclose(CCE.grad(soft, logits), (np.exp(log_q) - soft) / 6, rtol=1e-12, atol=1e-15)
    # Keras's categorical_accuracy compares argmax(y_true) with argmax(y_pred).
    want = np.mean(soft.argmax(1) == logits.argmax(1))
    assert float(fnn.metrics.categorical_accuracy(soft, logits)) == pytest.approx(want, abs=1e-12)
