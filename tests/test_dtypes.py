"""The dtypes params compute in (float8 refused, float64 without x64 said once), as
``fnn._dtypes`` checks them."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import _dtypes as D


def test_params_dtype_refuses_float8_and_says_float64_without_x64_once():
    assert D.params_dtype("dtype", "bfloat16") == jnp.bfloat16 and D.params_dtype("dtype", np.float16) == np.float16
    assert D.params_dtype("dtype", None) == np.float64  # the default float dtype (x64 on in tests)
    for f8 in (jnp.float8_e4m3fn, "float8_e5m2"):
        with pytest.raises(TypeError, match=r"^dtype must be float16, bfloat16, float32 or float64 \(8-bit"):
            D.params_dtype("dtype", f8)
    with pytest.raises(TypeError, match=r"^dtype must be a floating dtype, got int32"):
        D.params_dtype("dtype", np.int32)
    with pytest.raises(TypeError, match=r"^params\[0\] has dtype float8_e4m3fn; params must be float16, "):
        D.check_params_float("params[0]", jnp.float8_e4m3fn)
    D.check_params_float("params[0]", jnp.bfloat16)
    with jax.enable_x64(False):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert D.params_dtype("dtype", None) == np.float32
        with pytest.warns(UserWarning, match=r"^dtype=float64 is not available with jax_enable_x64 off") as seen:
            assert D.params_dtype("dtype", jnp.float64) == np.float32
        assert len(seen) == 1


def test_abstract_array_holds_what_jax_makes_of_the_dtype():
    # tests run with x64 on: float64 stays; off, it is float32 as jnp.asarray makes it, quietly
    # (JAX 0.12 warns for a float64 ShapeDtypeStruct without x64)
    assert D.abstract_array((2, 3), np.float64) == jax.ShapeDtypeStruct((2, 3), np.float64)
    with jax.enable_x64(False), warnings.catch_warnings():
        warnings.simplefilter("error")
        for dtype, want in ((np.float64, np.float32), (np.int64, np.int32), ("bfloat16", jnp.bfloat16)):
            got = D.abstract_array((4,), dtype)
            assert got.shape == (4,) and got.dtype == want == jnp.asarray(np.zeros(4, dtype)).dtype
    swapped = np.dtype("f4").newbyteorder("S")
    assert D.abstract_array((1,), swapped).dtype == np.dtype("=f4")  # native byte order
    key = jax.random.key(0)
    assert D.abstract_array((), key.dtype).dtype == key.dtype  # typed PRNG keys kept
