"""fnn._values: keys compared by value, so that equal keys mean equal programs; an object keyed
by identity is held by its key, and a copy or an unpickled ``bound`` keys on its own arguments."""

import copy
import functools
import gc
import inspect
import pickle
import weakref

import jax
import jax.numpy as jnp
import numpy as np

from fnn._values import Static, bound, by_value, freeze, keyed


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


def _scaled(c):
    def forward(x):
        return x * c

    return forward


def test_closures_and_partials_are_keyed_by_what_they_compute():
    """A closure by its code, its module's globals, defaults, attributes and the values its cells
    hold; a partial by its function and arguments. Two made alike key alike; any difference in a
    held value (its type, a float's bits, an array's bytes) keys apart."""
    assert freeze(_scaled(2.0)) == freeze(_scaled(2.0)) and hash(freeze(_scaled(2.0))) == hash(freeze(_scaled(2.0)))
    for other in (3.0, 2, np.float32(2.0), np.array(2.0)):
        assert freeze(_scaled(2.0)) != freeze(_scaled(other))
    held = jnp.arange(3.0)  # immutable: by its bytes
    assert freeze(_scaled(held)) == freeze(_scaled(jnp.arange(3.0))) != freeze(_scaled(jnp.arange(4.0)))
    assert freeze(_scaled((1, 2))) == freeze(_scaled((1, 2))) != freeze(_scaled((1, 3)))
    power = lambda x, p=2: x**p
    assert freeze(power) == freeze(power)
    twin = lambda x, p=2: x**p  # another line: other code
    assert freeze(twin) != freeze(power)
    made = [lambda x, p=p: x**p for p in (2, 2, 3)]  # one code, other defaults
    assert freeze(made[0]) == freeze(made[1]) != freeze(made[2])
    assert freeze(functools.partial(pow, 2)) == freeze(functools.partial(pow, 2)) != freeze(functools.partial(pow, 3))
    assert freeze(functools.partial(_scaled(1.0), 4.0)) == freeze(functools.partial(_scaled(1.0), 4.0))
    marked = _scaled(1.0)
    marked.tag = "a"
    assert freeze(marked) != freeze(_scaled(1.0))


def test_a_closure_that_holds_itself_or_an_empty_cell_is_keyed_without_recursing():
    def recursive():
        def f(n):
            return 0 if n == 0 else f(n - 1)

        return f

    f = recursive()
    assert freeze(f) == freeze(f) and freeze(recursive()) != freeze(f)  # held: keyed by identity there

    def late():
        def g():
            return h  # assigned after g is keyed

        key = freeze(g)
        h = 1
        return key, g

    key, g = late()
    assert key != freeze(g)  # the cell filled since


def test_by_value_calls_its_function_and_keyed_wraps_only_what_compares_by_identity():
    a, b = by_value(_scaled(2.0)), by_value(_scaled(2.0))
    assert a == b and hash(a) == hash(b) and a != by_value(_scaled(3.0))
    assert a(3.0) == 6.0 and repr(a) == repr(a.fn)
    assert list(inspect.signature(a).parameters) == ["x"]
    assert keyed(pow) is pow and keyed(freeze) is freeze  # a builtin, fnn's own function
    assert freeze(_scaled) is _scaled and keyed(_scaled) is _scaled  # defined once: by identity, as before
    one = bound(pow, 2)
    assert keyed(one) is one
    assert isinstance(keyed(_scaled(1.0)), by_value) and isinstance(keyed(functools.partial(freeze, 1)), by_value)


def test_what_a_function_holds_and_can_change_in_place_is_keyed_by_identity_and_value():
    """A list, dict, set or NumPy array a closure holds: jit traces a cached program again (new
    shapes) through the function it was made with, reading that object as it is then, so a
    function holding an equal copy must not share it; the same object changed keys anew."""
    for make in (lambda: [1, 2], lambda: {"a": 1}, lambda: {1, 2}, lambda: np.arange(3.0)):
        shared = make()
        assert freeze(_scaled(shared)) == freeze(_scaled(shared)) != freeze(_scaled(make()))
    shared = [1, 2]
    before = freeze(_scaled(shared))
    shared.append(3)
    assert freeze(_scaled(shared)) != before
    assert freeze(np.arange(3.0)) == freeze(np.arange(3.0))  # a value held as a bound's argument: by value


def test_a_function_closing_over_large_data_keys_it_by_identity_not_by_a_copy():
    small, large = jnp.ones(8), jnp.ones((1 << 14) + 1)  # float32: 32 B and just over 64 KiB
    assert freeze(_scaled(small)) == freeze(_scaled(jnp.ones(8)))
    key = freeze(_scaled(large))
    assert key == freeze(_scaled(large)) and key != freeze(_scaled(jnp.ones((1 << 14) + 1)))
    assert not any(isinstance(part, bytes) and len(part) > 1 << 16 for part in _flat(key))
    assert freeze(large) == freeze(jnp.ones((1 << 14) + 1))  # a value held as a bound's argument: by its bytes


def _flat(key):
    if isinstance(key, tuple):
        for part in key:
            yield from _flat(part)
    else:
        yield key


def test_a_function_closing_over_a_typed_key_or_a_tracer_keys_it_by_identity():
    key = jax.random.key(0)
    assert freeze(_scaled(key)) == freeze(_scaled(key)) != freeze(_scaled(jax.random.key(0)))

    def traced(x):
        assert freeze(_scaled(x)) == freeze(_scaled(x))
        return x

    jax.jit(traced)(jnp.ones(3))
