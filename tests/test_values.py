"""fnn._values: keys compared by value, so that equal keys mean equal programs; an object keyed
by identity is held by its key, and a copy or an unpickled ``bound`` keys on its own arguments."""

import copy
import gc
import pickle
import weakref

import jax
import jax.numpy as jnp
import numpy as np

from fnn._values import Static, bound, freeze


def _f(*args, **kwargs):
    return args, kwargs


class _Unhashable:
    __hash__ = None  # type: ignore[assignment]  # compared by identity, as a user's object would be


def test_concrete_arrays_are_keyed_by_dtype_shape_and_bytes():
    a = jnp.asarray(0.9, jnp.float32)
    assert bound(_f, a) == bound(_f, jnp.asarray(0.9, jnp.float32))
    assert hash(bound(_f, a)) == hash(bound(_f, jnp.asarray(0.9, jnp.float32)))
    assert bound(_f, a) != bound(_f, jnp.asarray(0.5, jnp.float32))
    assert bound(_f, a) != bound(_f, jnp.asarray(0.9, jnp.float16))  # another dtype: another constant
    assert bound(_f, jnp.ones((2, 1))) != bound(_f, jnp.ones((1, 2)))  # same bytes, another shape
    assert bound(_f, jnp.asarray(0.9)) != bound(_f, jnp.asarray(0.9, jnp.asarray(0.9).dtype))  # weak type
    assert bound(_f, b1=np.array([1.0, 2.0])) == bound(_f, b1=np.array([1.0, 2.0]))
    assert bound(_f, np.array([1.0, 2.0])) != bound(_f, np.array([1.0, 3.0]))
    assert freeze(np.float32(0.5)) == freeze(np.float32(0.5)) != freeze(np.float64(0.5))


def test_numbers_are_keyed_with_their_type_and_floats_by_their_bits():
    # 1, 1.0 and True are equal in Python but trace to different programs (int, float, bool)
    assert len({bound(_f, 1), bound(_f, 1.0), bound(_f, True)}) == 3
    assert bound(_f, float("nan")) == bound(_f, float("nan"))
    assert bound(_f, 0.0) != bound(_f, -0.0)
    # a complex number by its parts' bits: angle(-1 - 0j) is -pi, angle(-1 + 0j) pi
    assert bound(_f, complex(-1, -0.0)) != bound(_f, complex(-1, 0.0)) and len({bound(_f, 1j), bound(_f, 1j)}) == 1
    assert bound(_f, 0.1, k=(1, 2)) == bound(_f, 0.1, k=(1, 2)) != bound(_f, 0.1, k=[1, 2])


def test_an_unhashable_object_is_keyed_by_identity_and_held_by_its_key():
    obj = _Unhashable()
    assert bound(_f, obj) == bound(_f, obj) != bound(_f, _Unhashable())
    alive = weakref.ref(obj)
    key = freeze({"x": obj})
    del obj
    gc.collect()
    assert alive() is not None  # the key holds it: its address cannot be reused while the key lives
    assert key == freeze({"x": alive()})


def test_a_copied_or_unpickled_bound_keys_on_its_own_arguments():
    """The issue: a copy kept the original's key (an array's id) while holding a new array, so
    once the original was freed a different object could reuse the address and compare equal."""
    for copy_of in (copy.copy, copy.deepcopy, lambda b: pickle.loads(pickle.dumps(b))):
        original = bound(_f, jnp.asarray(0.9), scale=np.array([2.0]))
        restored = copy_of(original)
        del original
        gc.collect()
        assert restored == bound(_f, jnp.asarray(0.9), scale=np.array([2.0]))
        assert restored != bound(_f, jnp.asarray(0.5), scale=np.array([2.0]))
        assert restored() == ((restored.args[0],), {"scale": restored.kwargs["scale"]})
    held = bound(_f, _Unhashable())
    assert copy.deepcopy(held) != held  # a new object: equal to nothing built before
    assert copy.copy(held) == held  # the same object


def test_a_bound_hashes_its_key_once():
    """A network's hash hashes every layer's bound functions on every cache lookup: each keeps
    its hash (its key never changes); a copy rebuilds its own."""

    class Counted:
        calls = 0

        def __hash__(self):
            Counted.calls += 1
            return 7

    held = Counted()
    b = bound(_f, held, scale=2.0)
    outer = bound(_f, b)
    Counted.calls = 0
    assert hash(b) == hash(b) == hash(bound(_f, held, scale=2.0)) and hash(outer) == hash(outer)
    assert Counted.calls == 2  # b's, once, and the fresh bound's
    assert copy.copy(b) == b and hash(copy.copy(b)) == hash(b)


def test_traced_values_are_keyed_by_identity():
    @jax.jit
    def keys(x):
        assert bound(_f, x) == bound(_f, x) and bound(_f, x) != bound(_f, x + 1)
        return x

    keys(jnp.ones(2))


def test_static_compares_its_value_as_freeze_does():
    assert Static({"a": [1, 2]}) == Static({"a": [1, 2]}) and hash(Static((3,))) == hash(Static((3,)))
    assert Static((3,)) != Static((3.0,))
