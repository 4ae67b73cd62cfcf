"""fnn._native: NumPy arrays of the other byte order become native copies with the same values;
object arrays and ShapeDtypeStructs are TypeErrors naming the argument; native trees come back
as they are."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import swapped

from fnn._native import native, native_tree, natively


def test_a_swapped_array_becomes_native_with_its_values():
    a = np.array([[1.5, -2.0], [3.25, 1e300]])
    got = native(swapped(a), "x")
    assert got.dtype.isnative and got.dtype == np.float64
    np.testing.assert_array_equal(got, a)
    labels = native(swapped(np.array([0, 2, 70000], np.int32)), "y")
    assert labels.dtype == np.int32 and labels.tolist() == [0, 2, 70000]


def test_native_values_come_back_as_they_are():
    a, j = np.ones(3), jnp.ones(3)
    assert native(a, "x") is a and native(j, "x") is j
    assert native([1.0, 2.0], "x") == [1.0, 2.0] and native(None, "x") is None
    assert native(np.uint8(3), "x") == 3 and native(np.ones(2, bool), "x").dtype == np.bool_
    tree = [{"w": a, "b": j}, {}]
    assert native_tree(tree, "params") is tree  # nothing to convert: the very tree, no rebuild


def test_a_tree_is_rebuilt_with_native_leaves_in_its_containers():
    w = np.arange(6.0).reshape(3, 2)
    tree = ({"w": swapped(w), "b": jnp.zeros(2)}, None, [np.int64(4)])
    got = native_tree(tree, "params")
    assert isinstance(got, tuple) and got[1] is None and got[0]["b"] is tree[0]["b"]
    assert got[0]["w"].dtype.isnative
    np.testing.assert_array_equal(got[0]["w"], w)


def test_object_arrays_and_shape_dtype_structs_are_named():
    with pytest.raises(TypeError, match=r"^params\[0\]\['w'\] must hold numbers; got dtype object"):
        native_tree([{"w": np.ones(2, object)}], "params")
    said = r"x is a jax.ShapeDtypeStruct float32\[4, 2\]: a shape and dtype without values"
    with pytest.raises(TypeError, match=said + r".*jax.eval_shape\(net.apply"):
        native(jax.ShapeDtypeStruct((4, 2), jnp.float32), "x")


def test_natively_converts_each_argument_before_a_jitted_call():
    """JAX's fast path reads a swapped array's bytes unswapped once the function ran on a native
    array of that shape; through natively the swapped array gives the native one's numbers."""
    double = natively(jax.jit(lambda a, b=0.0: a * 2 + b), ("a",))
    a = np.array([1.0, 2.0])
    assert double(a).tolist() == [2.0, 4.0]
    assert double(swapped(a)).tolist() == [2.0, 4.0]
    assert double(a, b=swapped(np.array([1.0, 1.0]))).tolist() == [3.0, 5.0]
    with pytest.raises(TypeError, match=r"^b must hold numbers"):
        double(a, b=np.ones(2, object))


def test_natively_is_the_function_it_wraps_for_everything_but_the_conversion():
    """Attributes read through (a jitted function's lower, eval_shape, _cache_size; its name,
    doc and signature), and it works under the user's jit, vmap and grad."""

    def f(a, b):
        """Doc of f."""
        return jnp.sum(a * b)

    jitted = jax.jit(f)
    g = natively(jitted, ("a", "b"))
    a, b = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    assert g.__name__ == "f" and g.__doc__ == "Doc of f." and g.__wrapped__ is jitted
    assert list(inspect.signature(g).parameters) == ["a", "b"]
    assert g.lower(a, b).compile()(a, b) == 1.0 and g.eval_shape(a, b).shape == ()
    assert g(swapped(a), b) == 1.0 and g._cache_size() == jitted._cache_size() == 1
    assert jax.jit(g)(a, b) == 1.0
    assert jax.vmap(g, in_axes=(0, None))(np.stack([a, b]), b).tolist() == [1.0, 10.0]
    assert jax.grad(g)(a, b).tolist() == [3.0, -1.0]
    assert hash(g) == hash(g) and g == g


def test_natively_checks_each_call_whatever_the_structure_of_the_last():
    """The check flattens up to the last call's structure: a swapped leaf where an array was,
    or a subtree where a leaf was, is still found and converted, named by its path."""
    total = natively(jax.jit(lambda t: sum(jnp.sum(v) for v in jax.tree.leaves(t))), ("t",))
    tree = {"u": jnp.ones(2), "v": [np.ones(3)]}
    assert total(tree) == 5.0  # the fast path set for these shapes
    assert total({"u": jnp.ones(2), "v": [swapped(np.ones(3))]}) == 5.0
    assert total({"u": {"deep": swapped(np.ones(2))}, "v": [np.ones(3)]}) == 5.0
    assert total({"u": jnp.ones(2), "v": [np.float32(1.0), 2]}) == 5.0  # other leaf types
    with pytest.raises(TypeError, match=r"^t\['u'\]\['deep'\] must hold numbers"):
        total({"u": {"deep": np.ones(2, object)}, "v": [np.ones(3)]})
