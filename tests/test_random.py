"""fnn/_random.py: the host's threefry against the published test vectors and jax's own keys
(fold_in, split under both ``jax_threefry_partitionable`` settings, fit's epoch keys), and which
keys it takes."""

import jax
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fnn import _random as R

U32 = st.integers(0, 2**32 - 1)


@pytest.mark.parametrize(
    "key,counter,expected",
    [  # Random123's known answers for Threefry-2x32, 20 rounds (kat_vectors)
        ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
        ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
        ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
    ],
)
def test_threefry_known_answers(key, counter, expected):
    y1, y2 = R.threefry2x32(np.array(key, np.uint32), *counter)
    assert (int(y1[0]), int(y2[0])) == expected
    assert y1.dtype == y2.dtype == np.uint32


def test_threefry_broadcasts_keys_against_counters():
    keys = np.array([[0, 0], [0xFFFFFFFF, 0xFFFFFFFF]], np.uint32)
    y1, y2 = R.threefry2x32(keys[:, None, :], np.zeros((1, 3), np.uint32), np.arange(3, dtype=np.uint32))
    assert y1.shape == y2.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            one = R.threefry2x32(keys[i], 0, j)
            assert (y1[i, j], y2[i, j]) == (one[0][0], one[1][0])


@settings(max_examples=25, deadline=None)
@given(seed=U32, data=U32)
def test_fold_in_equals_jax(seed, data):
    key = jax.random.PRNGKey(seed)
    got = R.fold_in_bits(np.asarray(key), np.uint32(data))
    np.testing.assert_array_equal(got.reshape(2), np.asarray(jax.random.fold_in(key, data)))


@pytest.mark.parametrize("partitionable", [True, False])
@pytest.mark.parametrize("num", [1, 2, 3, 5])
def test_split_equals_jax_under_either_partitionable_setting(partitionable, num):
    with jax.threefry_partitionable(partitionable):
        for seed in (0, 7, 2**32 - 1):
            key = jax.random.PRNGKey(seed)
            got = R.split_bits(np.asarray(key), num)
            np.testing.assert_array_equal(got, np.asarray(jax.random.split(key, num)))
        stacked = jax.random.split(jax.random.PRNGKey(3), 4)
        got = R.split_bits(np.asarray(stacked), num)
        assert got.shape == (4, num, 2)
        for i in range(4):
            np.testing.assert_array_equal(got[i], np.asarray(jax.random.split(stacked[i], num)))


@pytest.mark.parametrize("partitionable", [True, False])
def test_epoch_perm_and_dropout_bits_are_fits_documented_keys(partitionable):
    """The first of split(fold_in(key, epoch)) for every epoch, for one key and K stacked keys;
    the second, the dropout key, too."""
    epochs = np.array([0, 1, 31, 32, 69, 2**31 - 1])
    with jax.threefry_partitionable(partitionable):
        key = jax.random.PRNGKey(42)
        stacked = jax.random.split(key, 3)

        def want(k, e):
            return np.asarray(jax.random.split(jax.random.fold_in(k, int(e)))[0])

        one = R.epoch_perm_bits(np.asarray(key), epochs)
        many = R.epoch_perm_bits(np.asarray(stacked), epochs)
        assert one.shape == (6, 2) and many.shape == (6, 3, 2)
        for j, e in enumerate(epochs):
            np.testing.assert_array_equal(one[j], want(key, e))
            for i in range(3):
                np.testing.assert_array_equal(many[j, i], want(stacked[i], e))
                # the second of the same split: the epoch's dropout key
                dropout = np.asarray(jax.random.split(jax.random.fold_in(stacked[i], int(e)))[1])
                np.testing.assert_array_equal(R.epoch_dropout_bits(np.asarray(stacked), e)[i], dropout)


def test_threefry_bits_takes_threefry_keys_only():
    np.testing.assert_array_equal(R.threefry_bits(jax.random.PRNGKey(3)), [0, 3])
    np.testing.assert_array_equal(R.threefry_bits(jax.random.key(3)), [0, 3])
    stacked = jax.random.split(jax.random.key(3), 4)
    np.testing.assert_array_equal(R.threefry_bits(stacked), jax.random.key_data(stacked))
    assert R.threefry_bits(jax.random.key(3, impl="rbg")) is None
    with jax.default_prng_impl("rbg"):  # raw keys are then rbg's 4 words
        assert R.threefry_bits(jax.random.PRNGKey(3)) is None
    assert R.threefry_bits(np.zeros((3,), np.uint32)) is None  # not a key's shape


def test_permutation_of_bits_is_numpys_pcg64_of_the_bits():
    bits = np.array([1, 2], np.uint32)
    np.testing.assert_array_equal(R.permutation_of_bits(bits, 10), np.random.default_rng([1, 2]).permutation(10))
