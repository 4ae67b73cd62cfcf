"""fnn.data: Keras's batching and split rules, one-hot, scaling, and input validation."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import swapped
from hypothesis import given, settings, strategies as st

from fnn import data
from fnn.data import _checks


@pytest.mark.parametrize("n,b,want", [(10, 3, 4), (10, 10, 1), (10, 1, 10), (10, 32, 1), (0, 4, 0), (9, 3, 3)])
def test_num_batches(n, b, want):
    assert data.num_batches(n, b) == want


@pytest.mark.parametrize(
    "b,error", [(0, ValueError), (-1, ValueError), (2.0, TypeError), (True, TypeError), (None, TypeError)]
)
def test_bad_batch_size(b, error):
    """A bad value is a ValueError, a wrong type a TypeError (the rule of every check in fnn)."""
    with pytest.raises(error, match="batch_size must be (>= 1|an int)"):
        data.num_batches(10, b)
    with pytest.raises(error, match="batch_size"):
        data.batches(np.zeros((3, 1)), None, b)  # at the call, not at the first next()


def test_batches_in_order_with_last_partial_batch():
    x = np.arange(20).reshape(10, 2)
    y = np.arange(10)
    got = list(data.batches(x, y, 3))
    assert [len(yb) for _, yb in got] == [3, 3, 3, 1]
    np.testing.assert_array_equal(np.concatenate([xb for xb, _ in got]), x)
    np.testing.assert_array_equal(got[-1][1], [9])


def _numpy_permutation(key, n):
    """The documented rule: the key's two uint32 words seed NumPy's default generator."""
    return np.random.default_rng(np.asarray(key, np.uint32)).permutation(n)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 40), b=st.integers(1, 12), seed=st.integers(0, 2**31 - 1))
def test_shuffled_batches_follow_the_key_permutation(n, b, seed):
    key = jax.random.PRNGKey(seed)
    x = np.arange(n)[:, None] * 10
    y = np.arange(n)
    got = list(data.batches(x, y, b, shuffle=True, key=key))
    order = np.concatenate([yb for _, yb in got])
    np.testing.assert_array_equal(order, _numpy_permutation(key, n))
    np.testing.assert_array_equal(np.sort(order), np.arange(n))  # each sample exactly once
    assert len(got) == -(-n // b)
    for xb, yb in got:
        np.testing.assert_array_equal(xb[:, 0], yb * 10)  # x and y stay paired


def test_permutation_is_deterministic_and_key_type_agnostic():
    raw, typed = jax.random.PRNGKey(3), jax.random.key(3)
    p = data.permutation(raw, 12)
    np.testing.assert_array_equal(p, data.permutation(raw, 12))
    np.testing.assert_array_equal(p, data.permutation(typed, 12))
    assert p.dtype == np.int64 and sorted(p) == list(range(12))
    np.testing.assert_array_equal(p, _numpy_permutation(raw, 12))
    assert data.permutation(raw, 0).shape == (0,)
    assert not np.array_equal(p, data.permutation(jax.random.PRNGKey(4), 12))
    with pytest.raises(ValueError, match="n must be"):
        data.permutation(raw, -1)
    with pytest.raises(TypeError, match="key must be"):
        data.permutation(3, 12)


def test_shuffle_needs_a_key_and_lengths_must_match():
    with pytest.raises(ValueError, match="key"):
        data.batches(np.zeros((4, 1)), np.zeros(4), 2, shuffle=True)
    with pytest.raises(ValueError, match="same number of samples"):
        data.batches(np.zeros((4, 1)), np.zeros(3), 2)


# Keras: split_at = floor(N * (1 - validation_split)); the validation part is the tail.
@pytest.mark.parametrize(
    "n,split,split_at", [(10, 0.2, 8), (10, 0.25, 7), (3, 0.5, 1), (7, 0.1, 6), (100, 0.33, 67), (10, 0.3, 7)]
)
def test_train_val_split_takes_the_last_samples(n, split, split_at):
    x = np.arange(n * 2).reshape(n, 2)
    y = np.arange(n)
    (x_tr, y_tr), (x_val, y_val) = data.train_val_split(x, y, split)
    np.testing.assert_array_equal(y_tr, np.arange(split_at))
    np.testing.assert_array_equal(y_val, np.arange(split_at, n))
    np.testing.assert_array_equal(np.concatenate([x_tr, x_val]), x)


# Keras's rule as NumPy computes it with the fraction's own dtype (keras.src.trainers.data_adapters.
# array_slicing.train_validation_split, keras 3): np.float32(0.2) = 0.20000000298 holds out 20 % of
# 10, where the fraction read as a Python float would hold out 3.
@pytest.mark.parametrize(
    "n,split,held_out",
    [
        (10, np.float32(0.2), 2),
        (5, np.float32(0.2), 1),
        (1000, np.float32(0.1), 100),
        (10, np.float32(0.3), 3),  # 1 - 0.3f = 0.69999999 and 10 x that rounds to 7 in float32
        (5, np.float32(0.3), 2),  # 3.4999999 in float32 as in float64
        (100, np.array(0.2, np.float32), 20),
        (100, jnp.float32(0.2), 20),
        (10, np.float16(0.2), 2),  # float16's product: 7.998 rounds to 8
        (100000, np.float16(0.2), 20020),  # float16 would round 100000 itself (to inf): float32's product
        (10, 0.2, 2),
        (10, 0.3, 3),
    ],
)
def test_a_numpy_or_jax_fraction_splits_in_its_own_precision_as_keras_does(n, split, held_out):
    (_, y_tr), (_, y_val) = data.train_val_split(np.zeros((n, 1)), np.arange(n), split)
    assert y_val.shape == (held_out,) and y_tr.shape == (n - held_out,)
    np.testing.assert_array_equal(y_val, np.arange(n - held_out, n))


@pytest.mark.parametrize(
    "split,error",
    [
        (0.0, ValueError),
        (1.0, ValueError),
        (-0.1, ValueError),
        (1.5, ValueError),
        ("0.2", TypeError),
        (True, TypeError),
    ],
)
def test_train_val_split_rejects_bad_fraction(split, error):
    with pytest.raises(error, match=r"validation_split must be (a float )?in \(0, 1\)"):
        data.train_val_split(np.zeros((10, 1)), np.zeros(10), split)


@pytest.mark.parametrize("n,split", [(3, 0.7), (1, 0.5), (10, 1e-17)])
def test_train_val_split_rejects_empty_parts(n, split):
    # floor(3 * 0.3) = 0 train samples; floor(0.5) = 0; 1 - 1e-17 rounds to 1: 0 validation.
    with pytest.raises(ValueError, match=f"no training or no validation sample out of {n}"):
        data.train_val_split(np.zeros((n, 1)), np.zeros(n), split)


@pytest.mark.parametrize("name", ["validation_split", "--validation-split"])
def test_train_val_split_names_the_fraction_as_its_caller_does(name):
    """The library's argument by default; a command line passes its option's name."""
    x, y = np.zeros((3, 1)), np.zeros(3)
    kw = {} if name == "validation_split" else {"name": name}
    with pytest.raises(ValueError) as err:
        data.train_val_split(x, y, 0.7, **kw)
    assert (
        str(err.value)
        == f"{name}=0.7 leaves no training or no validation sample out of 3; use more data or another split"
    )
    with pytest.raises(ValueError) as err:
        data.train_val_split(x, y, 1.5, **kw)
    assert str(err.value) == f"{name} must be in (0, 1), got 1.5"


def test_batches_and_split_take_nested_lists_as_arrays_and_refuse_a_scalar():
    x, y = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], [0, 1, 0]
    got = [(xb.tolist(), yb.tolist()) for xb, yb in data.batches(x, y, 2)]
    assert got == [([[1.0, 2.0], [3.0, 4.0]], [0, 1]), ([[5.0, 6.0]], [0])]
    (x_tr, y_tr), (x_val, y_val) = data.train_val_split(x, y, 0.34)  # floor(3 * 0.66) = 1
    assert (x_tr.tolist(), y_tr.tolist(), x_val.tolist(), y_val.tolist()) == (x[:1], [0], x[1:], [1, 0])
    with pytest.raises(ValueError, match="x must hold samples .*got a scalar"):
        list(data.batches(3.0, None, 2))
    with pytest.raises(ValueError, match="y must hold samples .*got a scalar"):
        data.train_val_split(x, 1, 0.5)
    # not data at all: named by its type (it was "got a scalar": NumPy makes a 0-d object array of it)
    with pytest.raises(TypeError, match=r"^x must be an array or nested lists of numbers, got dict$"):
        data.train_val_split({"a": np.arange(10)}, None, 0.3)
    with pytest.raises(TypeError, match=r"^y must be an array or nested lists of numbers, got set$"):
        list(data.batches(x, {0, 1, 2}, 2))


def test_train_val_split_without_targets():
    (_x_tr, y_tr), (x_val, y_val) = data.train_val_split(np.arange(5)[:, None], None, 0.4)
    assert y_tr is None and y_val is None
    np.testing.assert_array_equal(x_val[:, 0], [3, 4])


# ---------------------------------------------------------------- one-hot


@pytest.mark.parametrize("shape", [(6,), (6, 1)])
def test_one_hot_matches_identity_rows(shape):
    labels = np.array([2, 0, 1, 2, 4, 0]).reshape(shape)
    got = data.one_hot(labels)
    np.testing.assert_array_equal(got, np.eye(5)[labels.reshape(-1)])
    assert got.dtype == np.float32 and got.shape == (6, 5)
    wide = data.one_hot(labels, num_classes=7, dtype=np.float64)
    assert wide.shape == (6, 7) and wide.dtype == np.float64
    np.testing.assert_array_equal(wide[:, 5:], 0)
    # labels of another shape S give S + (C,), as Keras's to_categorical (the docstring says so)
    pairs = np.array([[0, 1], [1, 0], [2, 2]])
    np.testing.assert_array_equal(data.one_hot(pairs, 3), np.eye(3)[pairs])


def test_one_hot_accepts_integral_floats_and_rejects_the_rest():
    np.testing.assert_array_equal(data.one_hot(np.array([1.0, 0.0]), 2), [[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="integer class indices"):
        data.one_hot(np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\); got values from 0 to 3"):
        data.one_hot(np.array([0, 3]), 3)
    with pytest.raises(ValueError, match=r"from -1"):
        data.one_hot(np.array([-1, 1]), 3)
    with pytest.raises(ValueError, match="num_classes"):
        data.one_hot(np.array([0, 1]), 0)


def test_bfloat16_labels_and_features_are_floats_as_float16_ones_are():
    bf16 = np.dtype(jax.numpy.bfloat16)  # ml_dtypes': NumPy kind 'V', not np.floating
    for dtype in (np.float16, bf16):
        np.testing.assert_array_equal(data.one_hot(np.array([1.0, 0.0], dtype), 2), [[0, 1], [1, 0]])
        with pytest.raises(ValueError, match=r"fractional|integer class indices"):
            data.one_hot(np.array([0.5, 1.0], dtype))
        scaled = data.Standardizer.fit([[0.0], [2.0]]).transform(np.array([[1.0], [4.0]], dtype))
        assert scaled.dtype == dtype
        np.testing.assert_array_equal(scaled.astype(np.float64), [[0.0], [3.0]])


def test_one_hot_names_the_fractional_label_and_empty_labels_without_num_classes():
    # whole-number floats are welcome, so the value is at fault, not the dtype
    with pytest.raises(
        ValueError, match=r"^labels must be integer class indices; labels\[1\] is 1\.5, not a whole number$"
    ):
        data.one_hot([0, 1.5])
    with pytest.raises(ValueError, match=r"; labels\[1, 0\] is nan, not a whole number$"):
        data.one_hot(np.array([[0.0, 1.0], [np.nan, 2.0]]))
    with pytest.raises(
        ValueError, match=r"^labels are empty, so num_classes \(max\(labels\) \+ 1\) cannot be inferred"
    ):
        data.one_hot([])
    assert data.one_hot([], 3).shape == (0, 3)


def test_one_hot_names_the_labels_it_was_given_when_they_are_out_of_range():
    """The range is read before the labels become int64 (a float past it wrapped to -2**63 and was
    named), and negative labels are named as such before num_classes is inferred from them (which
    blamed num_classes, an argument never given)."""
    with pytest.raises(ValueError, match=r"^labels must lie in \[0, 3\); got values from 0 to 100000000000000000000$"):
        data.one_hot(np.array([0.0, 1e20]), 3)
    for labels in ([-1], [-1.0, -2.0], np.array([[2], [-3]])):
        with pytest.raises(ValueError, match=r"^labels must be class indices >= 0; got values from -\d to -?\d$"):
            data.one_hot(labels)


# ---------------------------------------------------------------- standardisation


def test_standardizer_uses_training_statistics_only():
    rng = np.random.default_rng(0)
    x_train = rng.normal(3.0, 2.0, size=(50, 3))
    x_train[:, 2] = 7.1  # constant column: std 0 -> 1
    x_test = rng.normal(size=(5, 3))
    s = data.Standardizer.fit(x_train)
    mean, std = x_train.mean(0), x_train.std(0)
    np.testing.assert_allclose(s.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(s.std[:2], std[:2], rtol=1e-12)
    assert s.std[2] == 1.0
    z = s.transform(x_test)
    np.testing.assert_allclose(z[:, :2], (x_test[:, :2] - mean[:2]) / std[:2], rtol=1e-12)
    np.testing.assert_allclose(z[:, 2], x_test[:, 2] - 7.1, rtol=1e-12)
    np.testing.assert_allclose(s.inverse_transform(z), x_test, rtol=1e-12, atol=1e-12)
    zt = s.transform(x_train)
    np.testing.assert_allclose(zt[:, :2].mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(zt[:, :2].std(0), 1, rtol=1e-12)
    np.testing.assert_allclose(zt[:, 2], 0, atol=1e-12)  # mean of 7.1s is 7.1 + O(eps)
    for method, name in ((s.transform, "x"), (s.inverse_transform, "z")):
        with pytest.raises(ValueError, match=rf"{name} of shape \(5, 2\) does not fit the Standardizer: .*\(3,\)"):
            method(x_test[:, :2])


def test_standardizer_leaves_nan_out_as_scikit_learn_s_standard_scaler():
    """NaN are missing values (StandardScaler's rule): the statistics are those of the other
    values, every other value is scaled with them, the NaN stay where they were (fit then
    reports the one NaN, not a whole column of them); a feature that is all NaN stays NaN,
    without numpy's empty-slice warning (warnings are errors here)."""
    x = np.array([[0.0, 1.0, np.nan], [2.0, np.nan, np.nan], [4.0, 5.0, np.nan], [6.0, 7.0, np.nan]])
    s = data.Standardizer.fit(x)
    seen = np.array([1.0, 5.0, 7.0])  # the second feature's values
    np.testing.assert_allclose(s.mean[:2], [3.0, seen.mean()], rtol=1e-15)
    np.testing.assert_allclose(s.std[:2], [np.sqrt(5.0), np.sqrt(np.mean((seen - seen.mean()) ** 2))], rtol=1e-15)
    assert np.isnan(s.mean[2]) and np.isnan(s.std[2])
    (z,) = data.standardize(x)
    np.testing.assert_array_equal(np.isnan(z), np.isnan(x))
    np.testing.assert_allclose(z[[0, 2, 3], 1], (seen - seen.mean()) / seen.std(), rtol=1e-12)
    np.testing.assert_allclose(s.inverse_transform(z), x, rtol=1e-12)
    from sklearn.preprocessing import StandardScaler  # (a test dependency; all-NaN columns warn in it)

    np.testing.assert_allclose(z[:, :2], StandardScaler().fit_transform(x[:, :2]), rtol=1e-12)
    with pytest.raises(ValueError, match=r"^x contains 5 NaN/inf value\(s\), the first at index \(0, 2\)"):
        data.check_arrays(z, None)
    with pytest.raises(ValueError, match=r"^x contains 1 NaN/inf value\(s\), the first at index \(1, 1\)"):
        data.check_arrays(data.standardize(x[:, :2])[0], None)
    # inf is not a missing value: refused, as StandardScaler refuses it, naming the first one
    with pytest.raises(ValueError, match=r"^x holds 2 infinite value\(s\), the first at index \(1, 0\)"):
        data.Standardizer.fit(
            np.where(np.isnan(x), 0.0, x) + np.array([[0, 0, 0], [np.inf, 0, 0], [0, 0, -np.inf], [0, 0, 0]])
        )
    with pytest.raises(ValueError, match=r"^x holds 1 infinite value\(s\), the first at index \(0, 0\)"):
        data.standardize(np.array([[np.inf, 1.0], [0.0, 2.0]]))


@pytest.mark.parametrize("axis,order", [(0, "C"), (0, "F"), (1, "C"), (-1, "F"), (2, "C")])
def test_standardizer_statistics_are_numpy_s_nanmean_and_nanstd_bit_for_bit(axis, order):
    """Counted without numpy's nan-functions (which warn on an all-NaN feature), the statistics
    are still theirs exactly, in either memory layout (a sum adds in the order it gives), with a
    feature that is all NaN, one with a single value (std 1) and large offsets."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(33, 6, 5)) * 10.0 ** rng.integers(-4, 7, size=(1, 6, 5)) + 1e3
    x[rng.random(x.shape) < 0.3] = np.nan
    x[:, 2, :] = x[:, :, 1] = np.nan
    x[:-1, 3, 3] = np.nan  # one value left
    x = np.asarray(x, order=order)
    s = data.Standardizer.fit(x, axis=axis)
    with warnings.catch_warnings():  # the reference's "Mean of empty slice" (the test's own filter)
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, std = np.nanmean(x, axis=axis), np.nanstd(x, axis=axis)
    np.testing.assert_array_equal(s.mean, mean)  # NaN where NaN, every other bit equal
    tiny = 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
    np.testing.assert_array_equal(s.std, np.where(std <= tiny, 1.0, std))
    assert np.isnan(s.mean).any() and (s.std == 1.0).any()


def test_standardize_never_touches_the_warning_filters(monkeypatch):
    """fit used to silence numpy's empty-slice warning with warnings.catch_warnings, which is not
    thread-safe: two threads could leave an "ignore RuntimeWarning" filter for good. With every
    way to change the filters made to fail, Standardizer.fit and standardize still work on an
    all-NaN feature and scattered NaN, warn nothing (warnings are errors here) and give the
    statistics of the values present, computed here one feature at a time in plain Python."""
    x = np.random.default_rng(0).normal(size=(50, 4)) * [1.0, 2.0, 3.0, 4.0] + [0.0, 1.0, -2.0, 5.0]
    x[:, 1] = np.nan
    x[::3, 2] = np.nan
    columns = [[v for v in x[:, j].tolist() if v == v] for j in range(4)]  # v == v: not NaN
    mean = [sum(c) / len(c) if c else np.nan for c in columns]
    std = [(sum((v - m) ** 2 for v in c) / len(c)) ** 0.5 if c else np.nan for c, m in zip(columns, mean, strict=True)]
    before = list(warnings.filters)

    def changes_the_filters(*args, **kwargs):
        raise AssertionError("the warning filters were changed")

    with monkeypatch.context() as m:
        for name in ("catch_warnings", "simplefilter", "filterwarnings", "resetwarnings"):
            m.setattr(warnings, name, changes_the_filters)
        s = data.Standardizer.fit(x)
        z_train, z_other = data.standardize(x, x[:5])
    assert list(warnings.filters) == before
    np.testing.assert_allclose(s.mean, mean, rtol=1e-13)
    np.testing.assert_allclose(s.std, std, rtol=1e-13)
    want = (x - np.array(mean)) / np.array(std)  # NaN stay NaN, the all-NaN feature too
    np.testing.assert_allclose(z_train, want, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(z_other, want[:5], rtol=1e-12, atol=1e-15)
    assert np.isnan(z_train[:, 1]).all() and np.isnan(z_train[::3, 2]).all() and np.isnan(z_train).sum() == 67


def test_standardizer_transforms_along_the_axis_it_was_fit_on():
    """The samples axis of the fit is the transform's: axis=1 (features x samples), 1-D data,
    and a (n, 1) target scaler undoing (m,) predictions, each against NumPy."""
    rng = np.random.default_rng(2)
    cols = rng.normal(2.0, 3.0, size=(3, 7))  # 3 features, 7 samples along axis 1
    s = data.Standardizer.fit(cols, axis=1)
    assert s.axis == 1 and s.mean.shape == (3,)
    want = (cols - cols.mean(1, keepdims=True)) / cols.std(1, keepdims=True)
    np.testing.assert_allclose(s.transform(cols), want, rtol=1e-12)
    np.testing.assert_allclose(s.inverse_transform(s.transform(cols)), cols, rtol=1e-12)
    minus = data.Standardizer.fit(cols, axis=-1)  # -1 is axis 1 here
    assert minus.axis == 1 and np.array_equal(minus.transform(cols), s.transform(cols))
    y = rng.normal(5.0, 2.0, size=9)
    flat = data.Standardizer.fit(y)
    np.testing.assert_allclose(flat.transform(y), (y - y.mean()) / y.std(), rtol=1e-12)
    column = data.Standardizer.fit(y[:, None])
    z = rng.normal(size=4)
    np.testing.assert_allclose(column.inverse_transform(z), z * y.std() + y.mean(), rtol=1e-12)
    np.testing.assert_allclose(column.inverse_transform(z[:, None])[:, 0], z * y.std() + y.mean(), rtol=1e-12)
    with pytest.raises(ValueError, match=r"x of shape \(7, 3\) does not fit .* samples along axis 1"):
        s.transform(cols.T)


def test_standardizer_never_stretches_its_features_over_others():
    """Statistics of one feature scaled 5 columns (NumPy broadcasting): refused, as scikit-learn's
    StandardScaler refuses a feature count it was not fit on. More leading axes before the
    features (a batch of sequences) and one feature's samples given flat are still welcome."""
    one = data.Standardizer.fit(np.arange(10.0).reshape(10, 1))
    for wrong in (np.ones((4, 5)), np.ones((4, 5, 2))):
        with pytest.raises(ValueError, match=r"does not fit the Standardizer: it was fit on features of shape \(1,\)"):
            one.transform(wrong)
        with pytest.raises(ValueError, match=r"^z of shape .* does not fit"):
            one.inverse_transform(wrong)
    with pytest.raises(ValueError, match=r"features of shape \(1,\)"):
        data.standardize(np.arange(10.0).reshape(10, 1), np.ones((4, 5)))
    three = data.Standardizer.fit(np.arange(12.0).reshape(4, 3) ** 2)
    seq = np.arange(24.0).reshape(2, 4, 3)
    np.testing.assert_array_equal(three.transform(seq), (seq - three.mean) / three.std)
    with pytest.raises(ValueError, match=r"x of shape \(4, 1\) does not fit"):
        three.transform(np.ones((4, 1)))
    np.testing.assert_array_equal(one.transform(np.arange(3.0)), (np.arange(3.0) - 4.5) / np.arange(10.0).std())
    cube = data.Standardizer.fit(np.arange(10.0).reshape(10, 1, 1))  # one feature, shaped (1, 1)
    with pytest.raises(ValueError, match=r"x of shape \(3,\) does not fit"):
        cube.transform(np.arange(3.0))  # it would broadcast to (1, 3)
    assert cube.transform(np.ones((3, 1, 1))).shape == (3, 1, 1)


def test_standardizer_refuses_finite_data_whose_variance_overflows():
    """Values of ~1e154 square past float64's range: the std was inf and every value scaled to 0
    with only NumPy's warning."""
    x = np.array([[1.0, 1e155], [2.0, -1e155], [3.0, 5e154]])
    with pytest.raises(ValueError, match=r"^the variance of x's feature \(1,\) overflows float64"):
        data.Standardizer.fit(x)
    fine = data.Standardizer.fit(x / 1e150)
    assert np.isfinite(fine.std).all()


def test_standardizer_refuses_complex_data_as_scikit_learn_does():
    """NumPy's conversion to float would drop the imaginary part, warning only."""
    with pytest.raises(TypeError, match="x must hold real numbers; got dtype complex128"):
        data.Standardizer.fit(np.array([[1 + 1j], [2 + 0j]]))
    scaler = data.Standardizer.fit(np.array([[1.0], [2.0]]))
    with pytest.raises(TypeError, match="x must hold real numbers; got dtype complex64"):
        scaler.transform(np.ones((2, 1), np.complex64))
    with pytest.raises(TypeError, match="must hold real numbers"):
        data.standardize(np.array([[1.0], [2.0]]), np.array([[1j], [2.0]]))


def test_standardizer_names_an_axis_out_of_range_or_not_an_int():
    with pytest.raises(ValueError, match=r"^axis 2 is out of range for x of shape \(3, 2\) \(rank 2\)$"):
        data.Standardizer.fit(np.ones((3, 2)), axis=2)
    with pytest.raises(ValueError, match=r"^axis -3 is out of range"):
        data.Standardizer.fit(np.ones((3, 2)), axis=-3)
    with pytest.raises(TypeError, match=r"^axis must be an int, got float 1\.0$"):
        data.Standardizer.fit(np.ones((3, 2)), axis=1.0)


def test_standardize_function_and_dtypes():
    x_train = np.arange(12, dtype=np.float32).reshape(4, 3)
    x_test = np.ones((2, 3), dtype=np.float32)
    a, b = data.standardize(x_train, x_test)
    assert a.dtype == np.float32 and b.dtype == np.float32
    np.testing.assert_allclose(b, np.broadcast_to((1 - x_train.mean(0)) / x_train.std(0), (2, 3)), rtol=1e-6)
    assert data.Standardizer.fit(x_train).transform(np.ones((1, 3), int)).dtype == np.float32
    with pytest.raises(ValueError, match="features"):
        data.Standardizer.fit(x_train).transform(np.ones((1, 4)))
    with pytest.raises(ValueError, match="at least one sample"):
        data.Standardizer.fit(np.zeros((0, 3)))


# ---------------------------------------------------------------- check_arrays


def test_check_arrays_accepts_and_converts():
    x, y = data.check_arrays([[1.0, 2.0], [3.0, 4.0]], [0, 1])
    assert isinstance(x, np.ndarray) and x.shape == (2, 2) and y.shape == (2,)
    xj = jax.device_put(np.ones((3, 2)))  # device arrays made on the host: nothing compiles
    x2, y2 = data.check_arrays(xj, jax.device_put(np.zeros((3, 1))))
    assert x2 is xj and y2.shape == (3, 1)
    _x3, y3 = data.check_arrays(np.ones((3, 2)), None)
    assert y3 is None


@pytest.mark.parametrize(
    "x,y,names,pattern",
    [
        (
            np.zeros((4, 2)),
            np.zeros(3),
            ("x", "y"),
            "x and y must hold the same number of samples; got 4 in x and 3 in y",
        ),
        (np.zeros((0, 2)), np.zeros(0), ("x", "y"), r"x is empty \(0 samples\)"),
        (np.zeros(4), np.zeros(4), ("x", "y"), r"x must be \(samples, features\); got shape \(4,\)"),
        (np.zeros((4, 2)), np.float64(1.0), ("x", "y"), "y must have a leading samples axis"),
        (
            np.array([[1.0, np.nan]]),
            np.zeros(1),
            ("x", "y"),
            r"x contains 1 NaN/inf value\(s\), the first at index \(0, 1\)",
        ),
        (
            np.zeros((2, 2)),
            np.array([0.0, np.inf]),
            ("validation_data[0]", "validation_data[1]"),
            r"validation_data\[1\] contains 1 NaN/inf",
        ),
        (
            np.zeros((3, 2)),
            np.zeros(2),
            ("validation_data[0]", "validation_data[1]"),
            r"got 3 in validation_data\[0\] and 2 in validation_data\[1\]",
        ),
        (None, np.zeros(2), ("x", "y"), "x is required"),
    ],
)
def test_check_arrays_errors_name_the_argument(x, y, names, pattern):
    with pytest.raises(ValueError, match=pattern):
        data.check_arrays(x, y, names=names)


def test_check_arrays_types_features_and_options():
    with pytest.raises(TypeError, match="x must hold numbers; got dtype <U1"):
        data.check_arrays(np.array([["a"]]), np.zeros(1))
    with pytest.raises(TypeError, match="y must be an array of numbers"):
        data.check_arrays(np.zeros((2, 1)), [[1], [1, 2]])
    with pytest.raises(ValueError, match=r"x must have 3 features \(last axis\); got shape \(2, 4\)"):
        data.check_arrays(np.zeros((2, 4)), np.zeros(2), n_features=3)
    with pytest.raises(ValueError, match="NaN"):
        data.check_arrays(jax.device_put(np.full((3, 2), np.nan)), None)  # the shape of the arrays below
    x, _ = data.check_arrays(np.array([[np.nan]]), None, allow_nonfinite=True)
    assert np.isnan(x[0, 0])
    x, _ = data.check_arrays(np.zeros((2, 3, 4)), np.zeros(2), x_ndim=None)
    assert x.shape == (2, 3, 4)


def test_finite_check_remembers_checked_device_arrays_only_while_they_live():
    import gc

    x = jax.device_put(np.ones((3, 2)))
    bad = np.ones((3, 2))  # one shape for every device array of this file: one finite check compiled
    bad[0, 1] = np.inf
    bad = jax.device_put(bad)
    data.check_arrays(x, None)
    assert _checks._known_finite(x)
    for _ in range(2):  # a rejected array is never remembered: it fails every time
        with pytest.raises(ValueError, match=r"x contains 1 NaN/inf value\(s\), the first at index \(0, 1\)"):
            data.check_arrays(bad, None)
    assert not _checks._known_finite(bad)
    assert not _checks._known_finite(jax.device_put(np.ones((3, 2))))  # equal values, another array
    key = id(x)
    del x
    gc.collect()
    assert key not in _checks._FINITE


def test_check_batch_reads_dtypes_and_shapes_only_leaf_by_leaf():
    """The compiled steps' check of x: complex or empty leaves refused, under jit too (it reads
    no value); a pytree of arrays, for a network of the user's that takes one, leaf by leaf."""
    _checks.check_batch((np.ones((2, 3)), np.ones((2, 5))))  # a two-input network's batch
    _checks.check_batch({"image": np.ones((2, 4)), "meta": np.zeros((2, 1), np.int32)})
    _checks.check_batch([[1.0, 2.0], [3.0, 4.0]])
    for bad, error, words in (
        (np.ones((0, 3)), ValueError, r"^x is empty \(0 samples\)$"),
        ((np.ones((2, 3)), np.ones((0, 2))), ValueError, r"^x is empty \(0 samples\)$"),
        (np.ones((2, 3)) + 1j, TypeError, r"^x must hold real numbers; got dtype complex128$"),
        ([[1 + 1j]], TypeError, r"^x must hold real numbers; got dtype complex128$"),
    ):
        with pytest.raises(error, match=words):
            _checks.check_batch(bad)
    traced = jax.jit(lambda t: (_checks.check_batch(t), t[0].sum() + t[1].sum())[1])
    assert float(traced((np.ones((2, 3)), np.ones((2, 5))))) == 16.0
    with pytest.raises(TypeError, match="real numbers"):
        jax.jit(lambda t: (_checks.check_batch(t), t)[1])(np.ones((2, 3), np.complex64))


def test_check_arrays_makes_swapped_byte_order_native_and_names_a_shape_dtype_struct():
    x, y = np.array([[1.5, -2.0], [3.0, 4.0]]), np.array([0, 70000])
    got_x, got_y = data.check_arrays(swapped(x), swapped(y))
    assert got_x.dtype.isnative and got_y.dtype.isnative
    np.testing.assert_array_equal(got_x, x)
    np.testing.assert_array_equal(got_y, y)
    with pytest.raises(TypeError, match=r"^y is a jax.ShapeDtypeStruct int64\[2\]: a shape and dtype without values"):
        data.check_arrays(x, jax.ShapeDtypeStruct((2,), np.int64))


def test_device_arrays_on_the_cpu_are_checked_where_they_lie_compiling_nothing(compiles):
    """A jax array held by one CPU device is read in place (no program per data shape, none
    before the error SPEC's section 5 asks for): NaN and inf named as in a NumPy array's check,
    float16 and float32 alike; a bfloat16 one (which DLPack cannot lend) is checked on the device."""
    rng, cpu = np.random.default_rng(0), jax.devices("cpu")[0]  # the CPU's also where a GPU is the default
    for dtype in (np.float16, np.float32, np.float64):
        bad = rng.normal(size=(7, 5)).astype(dtype)
        bad[4, 3], bad[6, 0] = np.nan, -np.inf
        good = jax.device_put(np.abs(bad[:4]), cpu)
        with compiles() as c:
            with pytest.raises(ValueError, match=r"^x contains 2 NaN/inf value\(s\), the first at index \(4, 3\)"):
                data.check_arrays(jax.device_put(bad, cpu), None)
            x, _ = data.check_arrays(good, None)
        assert c.count == 0, dtype
        assert x is good and _checks._known_finite(good)
    big = jax.device_put(np.full((3, 2), 6e4, np.float16), cpu)  # a float16 sum overflows: the values do not
    data.check_arrays(big, None)
    with pytest.raises(ValueError, match=r"^y contains 1 NaN/inf value\(s\), the first at index \(1,\)"):
        data.check_arrays(np.ones((2, 3)), jax.device_put(np.array([0.0, np.nan], jnp.bfloat16), cpu))


def test_an_accelerator_s_arrays_are_checked_by_one_sum_on_the_device(monkeypatch):
    """Where the data lies on a GPU or TPU (here: the CPU's view refused, as there), the check is
    one fused sum on the device: NaN/inf named as on the host, a finite overflow of the sum
    re-checked exactly, a finite array remembered (a second fit reads it no more)."""
    monkeypatch.setattr(_checks, "cpu_view", lambda a: None)
    bad = np.ones((3, 2))
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"^x contains 1 NaN/inf value\(s\), the first at index \(2, 1\); clean"):
        data.check_arrays(jax.device_put(bad), None)
    big = jax.device_put(np.full((3, 2), 1e308))  # the sum overflows, the values do not
    x, _ = data.check_arrays(big, None)
    assert x is big and _checks._known_finite(big)


def test_an_accelerator_s_arrays_are_checked_and_split_under_a_disallowing_transfer_guard(accelerator):
    """Where the data lies on a GPU (the fixture makes the CPU behave so) and the caller refuses
    implicit transfers: the finiteness check reads its verdict explicitly and names a NaN as on
    the host; validation_split slices without putting an index on the device."""
    bad = np.ones((5, 2))
    bad[3, 1] = -np.inf
    bad, x = jax.device_put(bad), jax.device_put(np.arange(10.0).reshape(5, 2))
    with jax.transfer_guard("disallow"):
        with pytest.raises(ValueError, match=r"^x contains 1 NaN/inf value\(s\), the first at index \(3, 1\); clean"):
            data.check_arrays(bad, None)
        data.check_arrays(x, None)
        (x_tr, _), (x_val, _) = data.train_val_split(x, None, 0.4)
    np.testing.assert_array_equal(x_tr, np.arange(6.0).reshape(3, 2))
    np.testing.assert_array_equal(x_val, np.arange(6.0, 10.0).reshape(2, 2))


def test_typed_keys_are_split_as_any_array():
    """A typed PRNG key array lends no buffer (DLPack has no key dtype): split as any array."""
    keys = jax.random.split(jax.random.key(0), 5)
    (first, _), (last, _) = data.train_val_split(keys, None, 0.4)
    np.testing.assert_array_equal(jax.random.key_data(first), jax.random.key_data(keys[:3]))
    np.testing.assert_array_equal(jax.random.key_data(last), jax.random.key_data(keys[3:]))


def test_a_split_under_jit_slices_the_traced_array():
    split = jax.jit(lambda a: data.train_val_split(a, None, 0.4))
    (first, _), (last, _) = split(jnp.arange(5.0))
    np.testing.assert_array_equal(first, [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(last, [3.0, 4.0])


def test_a_failed_check_keeps_no_hold_on_the_array_and_a_donated_one_is_named():
    """The host's view of a device array goes before the error: a traceback kept (IPython keeps
    the last) does not stop the array's donation. A donated array is named, not XLA's words."""
    import sys

    bad = np.ones((4, 3), np.float32)
    bad[1, 1] = np.nan
    x = jax.device_put(bad)
    try:
        data.check_arrays(x, None)
    except ValueError:
        kept = sys.exc_info()
    assert kept[0] is ValueError
    donate = jax.jit(lambda v: v + 1, donate_argnums=0)
    donate(x)
    assert x.is_deleted()
    y = jax.device_put(np.ones((4, 3), np.float32))
    donate(y)
    with pytest.raises(ValueError, match=r"^x is a deleted jax array \(donated to a compiled program"):
        data.check_arrays(y, None)
