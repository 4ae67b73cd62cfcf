"""fnn.checkpoint: bit-exact round trips, atomic writes, and clear errors."""

import os
import zipfile
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import checkpoint


class AdamState(NamedTuple):
    count: jax.Array
    mu: list
    nu: list


def _device(x, dtype):
    """A device array converted on the host: jnp.asarray(x, dtype) compiles a program per shape."""
    return jax.device_put(np.asarray(x).astype(dtype))


def _params(seed=0):
    rng = np.random.default_rng(seed)
    return [
        {"w": _device(rng.normal(size=(3, 4)), np.float32), "b": _device(rng.normal(size=4), np.float32)},
        {},  # parameter-free layer
        {"w": _device(rng.normal(size=(4, 2)), jnp.bfloat16), "b": _device(rng.normal(size=2), np.float64)},
    ]


@jax.jit  # one program for the whole state (op by op, every leaf's products compile their own)
def _state(params):
    return (
        AdamState(
            jnp.asarray(7, jnp.int32), jax.tree.map(lambda p: p * 0.5, params), jax.tree.map(lambda p: p * p, params)
        ),
        {"lr": jnp.asarray(1e-3, jnp.float32)},
    )


def _bits(tree):
    """Leaves as (dtype, raw bytes): equality means bit-identical, NaNs and -0.0 included."""

    def one(a):
        a = jax.random.key_data(a) if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key) else a
        a = np.asarray(a)
        return str(a.dtype), a.shape, a.tobytes()

    return [one(a) for a in jax.tree.leaves(tree)]


def test_round_trip_is_bit_exact(tmp_path):
    params = _params()
    b = np.array(params[0]["b"])
    b[0], b[1] = np.nan, -0.0
    params[0]["b"] = jax.device_put(b)
    state = _state(params)
    key = jax.random.PRNGKey(42)
    history = {"loss": [1.5, 0.75, float("nan")], "val_accuracy": [0.5, 0.625, 0.75]}
    path = tmp_path / "ckpt.npz"
    checkpoint.save(
        path,
        params=params,
        opt_state=state,
        epoch=3,
        key=key,
        history=history,
        best_epoch=2,
        note="run-a",
        mask=np.array([True, False]),
    )
    ck = checkpoint.load(path, params=_params(1), opt_state=_state(_params(1)))
    assert isinstance(ck, checkpoint.Checkpoint)
    chex.assert_trees_all_equal_structs(ck.params, params)
    chex.assert_trees_all_equal_structs(ck.opt_state, state)
    assert _bits(ck.params) == _bits(params)
    assert _bits(ck.opt_state) == _bits(state)
    assert isinstance(ck.opt_state[0], AdamState)
    assert ck.params[2]["w"].dtype == jnp.bfloat16 and ck.params[2]["b"].dtype == jnp.float64
    assert _bits(ck.key) == _bits(key) and ck.key.dtype == jnp.uint32
    assert ck.epoch == 3
    assert ck.history["val_accuracy"] == history["val_accuracy"]
    assert np.isnan(ck.history["loss"][2])
    assert ck.extra["best_epoch"] == 2 and ck.extra["note"] == "run-a"
    np.testing.assert_array_equal(ck.extra["mask"], [True, False])
    # The file is a plain .npz keyed by tree paths.
    with np.load(path) as z:
        assert {
            "params[0]['w']",
            "params[2]['b']",
            "opt_state[0].count",
            "opt_state[0].mu[0]['w']",
            "opt_state[1]['lr']",
            "key",
        } <= set(z.files)
        assert z["params[2]['w']"].dtype == np.uint16  # bfloat16 stored as its bits
    assert os.listdir(tmp_path) == ["ckpt.npz"]


@pytest.mark.parametrize("impl", ["threefry2x32", "rbg"])
def test_typed_keys_round_trip(tmp_path, impl):
    key = jax.jit(lambda: jax.random.split(jax.random.key(5, impl=impl), 3))()  # one program, not op by op
    checkpoint.save(tmp_path / "k.npz", params={"w": np.ones(2)}, key=key)
    ck = checkpoint.load(tmp_path / "k.npz")
    assert ck.key.dtype == key.dtype and ck.key.shape == (3,)
    assert str(jax.random.key_impl(ck.key)) == impl
    assert _bits(ck.key) == _bits(key)
    draw = jax.jit(lambda k: jax.random.normal(k[1], (4,)))  # one program for both keys
    np.testing.assert_array_equal(draw(ck.key), draw(key))


def test_typed_key_inside_a_tree_and_abstract_templates(tmp_path):
    params = {"w": jax.device_put(np.arange(6.0).reshape(2, 3)), "k": jax.random.key(1)}
    state = {"count": jnp.asarray(3), "step_size": 0.5}  # a Python float leaf
    checkpoint.save(tmp_path / "a.npz", params=params, opt_state=state)
    template = jax.eval_shape(lambda: params)  # ShapeDtypeStructs only
    ck = checkpoint.load(tmp_path / "a.npz", params=template, opt_state=state)
    assert _bits(ck.params) == _bits(params)
    assert float(ck.opt_state["step_size"]) == 0.5


def test_load_without_templates_gives_flat_dicts(tmp_path):
    params = _params()
    checkpoint.save(tmp_path / "c.npz", params=params)
    ck = checkpoint.load(tmp_path / "c.npz")
    assert set(ck.params) == {"[0]['w']", "[0]['b']", "[2]['w']", "[2]['b']"}
    assert ck.params["[2]['w']"].dtype == jnp.bfloat16
    assert ck.opt_state is None and ck.key is None and ck.history is None and ck.extra == {}
    assert ck.epoch == 0


# ---------------------------------------------------------------- atomic writes


def test_failure_mid_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "run.npz"
    old = _params(0)
    checkpoint.save(path, params=old, epoch=1)

    def exploding_savez(f, **arrays):
        f.write(b"PK\x03\x04 half a zip file")  # partial bytes, then the crash
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.np, "savez", exploding_savez)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(path, params=_params(1), epoch=2)
    monkeypatch.undo()
    ck = checkpoint.load(path, params=old)
    assert ck.epoch == 1 and _bits(ck.params) == _bits(old)
    assert os.listdir(tmp_path) == ["run.npz"]  # the temporary file is gone


def test_failed_rename_and_interrupt_leave_no_temp_files(tmp_path, monkeypatch):
    path = tmp_path / "run.npz"
    checkpoint.save(path, params=_params(0), epoch=1)

    def no_replace(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.os, "replace", no_replace)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, params=_params(1), epoch=2)
    monkeypatch.undo()
    assert checkpoint.load(path).epoch == 1
    assert os.listdir(tmp_path) == ["run.npz"]


def test_save_overwrites_and_creates_parent_folders(tmp_path):
    path = tmp_path / "deep" / "er" / "model.ckpt"  # used as given, no .npz added
    checkpoint.save(path, params=_params(0), epoch=1)
    checkpoint.save(path, params=_params(1), epoch=2)
    ck = checkpoint.load(path, params=_params(0))
    assert ck.epoch == 2 and _bits(ck.params) == _bits(_params(1))
    assert os.listdir(path.parent) == ["model.ckpt"]


# ---------------------------------------------------------------- bad files


def test_truncated_corrupt_and_foreign_files(tmp_path):
    path = tmp_path / "good.npz"
    checkpoint.save(path, params=_params(), history={"loss": [1.0]})
    raw = path.read_bytes()
    for name, content in [("truncated.npz", raw[: len(raw) // 2]), ("empty.npz", b""), ("noise.npz", os.urandom(300))]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=f"{name}: not a readable fnn checkpoint"):
            checkpoint.load(tmp_path / name)
    # Flip one byte inside the first stored entry: the zip CRC check catches it.
    flipped = bytearray(raw)
    with zipfile.ZipFile(path) as z:
        info = z.infolist()[0]
    offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + 100
    flipped[offset] ^= 0xFF
    (tmp_path / "flipped.npz").write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="flipped.npz: not a readable fnn checkpoint"):
        checkpoint.load(tmp_path / "flipped.npz")
    np.savez(tmp_path / "foreign.npz", w=np.ones(3))
    with pytest.raises(ValueError, match="foreign.npz: .*not an fnn checkpoint"):
        checkpoint.load(tmp_path / "foreign.npz")
    np.save(tmp_path / "single.npy", np.ones(3))
    with pytest.raises(ValueError, match="single.npy: .*not an .npz"):
        checkpoint.load(tmp_path / "single.npy")
    with pytest.raises(FileNotFoundError, match="no checkpoint at .*missing.npz"):
        checkpoint.load(tmp_path / "missing.npz")


def test_resume_returns_none_only_when_there_is_no_file(tmp_path):
    assert checkpoint.resume(tmp_path / "none.npz", params=_params()) is None
    checkpoint.save(tmp_path / "a.npz", params=_params(), epoch=4)
    assert checkpoint.resume(tmp_path / "a.npz", params=_params()).epoch == 4
    (tmp_path / "bad.npz").write_bytes(b"junk")
    with pytest.raises(ValueError, match="bad.npz"):
        checkpoint.resume(tmp_path / "bad.npz", params=_params())


# ---------------------------------------------------------------- template mismatches


def test_mismatch_messages_say_what_differs(tmp_path):
    path = tmp_path / "m.npz"
    params = _params()
    checkpoint.save(path, params=params, opt_state=_state(params))

    bigger = _params() + [{"w": jax.device_put(np.ones((2, 2)))}]
    with pytest.raises(
        ValueError,
        match=r"params structure differs.*missing from the file: "
        r"params\[3\]\['w'\]",
    ):
        checkpoint.load(path, params=bigger)

    smaller = _params()[:1]
    with pytest.raises(
        ValueError,
        match=r"in the file but not in the template: "
        r"params\[2\]\['b'\], params\[2\]\['w'\]",
    ):
        checkpoint.load(path, params=smaller)

    transposed = _params()
    transposed[0]["w"] = jax.device_put(np.asarray(transposed[0]["w"]).T)
    with pytest.raises(
        ValueError,
        match=r"params\[0\]\['w'\]: shape \(3, 4\) in the file vs "
        r"\(4, 3\) in the template",
    ):
        checkpoint.load(path, params=transposed)

    recast = _params()
    recast[2]["w"] = _device(recast[2]["w"], np.float32)
    with pytest.raises(
        ValueError,
        match=r"params\[2\]\['w'\]: dtype bfloat16 in the file vs "
        r"float32 in the template",
    ):
        checkpoint.load(path, params=recast)

    as_tuple = tuple(_params())  # same paths, another node type
    with pytest.raises(ValueError, match="tree structure differs from the template"):
        checkpoint.load(path, params=as_tuple)

    renamed_state = ({"count": 0, "mu": params, "nu": params}, {"lr": 0.0})
    with pytest.raises(ValueError, match=r"missing from the file: opt_state\[0\]\['count'\]"):
        checkpoint.load(path, params=params, opt_state=renamed_state)

    checkpoint.save(tmp_path / "p.npz", params=params)
    with pytest.raises(ValueError, match="holds no opt_state, but a opt_state template"):
        checkpoint.load(tmp_path / "p.npz", opt_state=_state(params))


def test_save_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        checkpoint.save(tmp_path / "x.npz", params=_params(), epoch=-1)
    with pytest.raises(TypeError, match="extra 'fn' must be JSON-like"):
        checkpoint.save(tmp_path / "x.npz", params=_params(), fn=print)
    with pytest.raises(TypeError, match=r"history\['loss'\]\[0\] must be JSON-like"):
        checkpoint.save(tmp_path / "x.npz", params=_params(), history={"loss": [object()]})
    assert not (tmp_path / "x.npz").exists()
