"""One validation rule everywhere: a wrong TYPE is a TypeError, a bad VALUE of the right type a
ValueError, the message names the argument; NumPy scalars are welcome wherever Python numbers are."""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import fnn
from fnn import _validate as V
from fnn._dtypes import is_real_dtype

NET = fnn.mlp([3])
PARAMS = NET.init(jax.random.PRNGKey(0), (2,))
X, Y = np.zeros((4, 2), np.float32), np.zeros((4, 3), np.float32)


def test_real():
    assert V.real("a", 3) == 3.0 and V.real("a", np.float32(0.25)) == 0.25 and V.real("a", np.int64(2)) == 2.0
    assert V.real("a", np.asarray(1.5)) == 1.5
    # jax's scalars too (jnp.float32(0.5) is a 0-d jax array), read on the host as floats
    for jax_scalar in (jnp.float32(0.25), jax.device_put(np.asarray(0.25, jnp.bfloat16))):
        assert V.real("a", jax_scalar) == 0.25 and type(V.real("a", jax_scalar)) is float
    assert V.real("a", jax.device_put(np.int32(2))) == 2.0
    for bad in ("1", None, True, np.bool_(True), [1.0], jax.device_put(np.ones(1)), jax.device_put(np.asarray(True))):
        with pytest.raises(TypeError, match="^a must be a real number"):
            V.real("a", bad)
    # a number held in an 8-bit float is already rounded: refused by name
    for eight in (np.asarray(0.9, jnp.float8_e4m3fn), jax.device_put(np.asarray(0.9, jnp.float8_e4m3fn))):
        with pytest.raises(TypeError, match=r"^a is held in float8_e4m3fn \(as 0.875\); a number must be"):
            V.real("a", eight)
    with pytest.raises(ValueError, match="a must be finite, got nan"):
        V.real("a", float("nan"))
    with pytest.raises(ValueError, match=r"a must be in \[0, 1\), got 1.0"):
        V.real("a", 1.0, 0.0, 1.0, hi_open=True)
    with pytest.raises(ValueError, match=r"a must be in \[0, 1\), got nan"):  # an interval names itself
        V.real("a", float("nan"), 0.0, 1.0, hi_open=True)
    with pytest.raises(ValueError, match="a must be > 0, got 0.0"):
        V.real("a", 0.0, lo=0.0, lo_open=True)
    with pytest.raises(TypeError, match="a must be a float in"):
        V.real("a", "x", 0.0, 1.0, what="a float in [0, 1)")


def test_hyper_takes_scalar_arrays_and_tracers():
    assert V.hyper("lr", 0.5) == 0.5
    a = jnp.asarray(0.5)
    assert V.hyper("lr", a) is a
    with pytest.raises(ValueError, match="lr must be >= 0"):
        V.hyper("lr", jnp.asarray(-1.0), lo=0.0)
    with pytest.raises(TypeError, match="lr must be a scalar"):
        V.hyper("lr", jnp.ones(2))
    seen = []
    jax.jit(lambda t: seen.append(V.hyper("lr", t, lo=0.0)) or t)(-1.0)  # traced: unchecked
    assert isinstance(seen[0], jax.core.Tracer)


def test_bfloat16_is_a_real_number_where_float16_is():
    # ml_dtypes' bfloat16 is NumPy kind 'V' (not 'f', not np.floating): one rule takes it
    for dt in (np.float16, ml_dtypes.bfloat16):
        assert is_real_dtype(dt)
        assert V.real("a", dt(0.25)) == 0.25 and V.real("a", np.asarray(0.25, dt)) == 0.25
        held = jnp.asarray(0.25, dt)
        assert V.hyper("lr", held) is held
    for not_real in (np.bool_, object, "U3", "m8[s]", "M8[s]", np.complex64):
        assert not is_real_dtype(not_real), not_real
    with pytest.raises(TypeError, match="^a must be a real number"):
        V.real("a", np.asarray(True))
    # ml_dtypes 0.7 writes the dtype as dtype(bfloat16), 0.6 as bfloat16
    with pytest.raises(ValueError, match=r"^lr must be >= 0, got array\(-0.25, dtype=(bfloat16|dtype\(bfloat16\))\)$"):
        V.hyper("lr", jnp.asarray(-0.25, jnp.bfloat16), lo=0.0)


def test_integer_boolean_choice():
    assert V.integer("n", np.int64(3), 1) == 3 and isinstance(V.integer("n", np.int64(3)), int)
    for bad in (2.0, "2", True, None, np.float32(2)):
        with pytest.raises(TypeError, match="^n must be an int"):
            V.integer("n", bad)
    with pytest.raises(ValueError, match="^n must be >= 1, got 0"):
        V.integer("n", 0, 1)
    with pytest.raises(ValueError, match="^n must be <= 5, got 6"):
        V.integer("n", 6, maximum=5)
    assert V.boolean("b", np.bool_(True)) is True
    for bad in (1, "yes", None):
        with pytest.raises(TypeError, match="^b must be a bool"):
            V.boolean("b", bad)
    assert V.choice("c", "x", ("x", "y")) == "x"
    with pytest.raises(ValueError, match=r"^c must be one of \('x', 'y'\), got 'z'"):
        V.choice("c", "z", ("x", "y"))
    with pytest.raises(TypeError, match="^c must be one of"):
        V.choice("c", 3, ("x", "y"))


def test_path(tmp_path):
    assert V.path("out", tmp_path / "f.npz", writable=True) == str(tmp_path / "f.npz")
    # folders that do not exist yet are fine (the writer creates them; the check creates nothing) ...
    assert V.path("out", tmp_path / "new" / "deeper" / "f.npz", writable=True)
    assert V.path("out", tmp_path / "new-folder", writable=True, folder=True)
    assert sorted(os.listdir(tmp_path)) == []  # the write check left nothing behind
    assert V.path("out", tmp_path, writable=True, folder=True) == str(tmp_path)
    with pytest.raises(TypeError, match="out must be a path"):
        V.path("out", 3)
    with pytest.raises(ValueError, match="is a folder; it must name a file"):
        V.path("out", tmp_path, writable=True)
    (tmp_path / "file").write_text("x")
    # ... but not under a regular file, and a folder is not a file
    with pytest.raises(ValueError, match="is a file, not a folder"):
        V.path("out", tmp_path / "file" / "f.npz", writable=True)
    with pytest.raises(ValueError, match="is a file, not a folder"):
        V.path("out", tmp_path / "file" / "sub" / "f.npz", writable=True)
    with pytest.raises(ValueError, match="is a file; it must name a folder"):
        V.path("out", tmp_path / "file", writable=True, folder=True)
    assert os.listdir(tmp_path) == ["file"]


@pytest.mark.skipif(os.name != "posix", reason="symlinks are POSIX")
def test_a_loop_of_symlinks_is_refused_as_a_place_to_write(tmp_path):
    os.symlink(tmp_path / "b", tmp_path / "a")
    os.symlink(tmp_path / "a", tmp_path / "b")
    for p in (tmp_path / "a", tmp_path / "a" / "f.npz"):
        with pytest.raises(ValueError, match="is a loop of symbolic links: nothing can be written there"):
            V.path("out", p, writable=True)
        with pytest.raises(ValueError, match="is a loop of symbolic links"):
            V.path("out", p, writable=True, folder=True)
    assert V.path("out", tmp_path / "a") == str(tmp_path / "a")  # only where it would be written
    # a link to nothing is named so (it was called a file), as a folder or on the way to one
    os.symlink(tmp_path / "gone", tmp_path / "dangling")
    for p, folder in ((tmp_path / "dangling", True), (tmp_path / "dangling" / "f.npz", False)):
        with pytest.raises(
            ValueError, match=r"'[^']*dangling' is a broken symbolic link \(to '[^']*gone', which does not"
        ):
            V.path("out", p, writable=True, folder=folder)


@pytest.mark.skipif(sys.platform != "linux", reason="/proc is Linux's")
def test_path_where_nothing_can_be_written():
    with pytest.raises(ValueError, match=r"cannot write in '/proc/fnn-no-such-folder'"):
        V.path("out", "/proc/fnn-no-such-folder/f.npz", writable=True)


@pytest.mark.skipif(sys.platform != "linux", reason="chattr's flags and /proc are Linux's")
def test_a_file_a_rename_cannot_replace_is_refused_as_a_checkpoint(tmp_path, monkeypatch):
    """A checkpoint is written beside its path and renamed over it: an immutable or append-only
    file (chattr +i, +a), or another user's in a sticky folder (/tmp), refuses the rename, which
    failed only after training; a folder that takes new files said nothing of it."""
    import fcntl
    import struct

    target = tmp_path / "ck.npz"
    target.write_bytes(b"old")
    assert V.path("checkpoint", target, writable=True, replaced=True) == str(target)
    assert V.path("out", target, writable=True) == str(target)  # a file written in place: not asked
    real_ioctl = fcntl.ioctl
    for flag, said in ((0x10, r"it is immutable \(chattr \+i\)"), (0x20, r"it is append-only \(chattr \+a\)")):

        def ioctl(fd, request, arg, flag=flag):
            return struct.pack("l", flag) if request == V._FS_IOC_GETFLAGS else real_ioctl(fd, request, arg)

        monkeypatch.setattr(fcntl, "ioctl", ioctl)
        with pytest.raises(ValueError, match=f"^checkpoint '{target}': the file cannot be replaced, {said}$"):
            V.path("checkpoint", target, writable=True, replaced=True)
        link = tmp_path / "link.npz"  # through a symlink, the file it names is what is replaced
        link.unlink(missing_ok=True)
        link.symlink_to(target)
        with pytest.raises(ValueError, match=said):
            V.path("checkpoint", link, writable=True, replaced=True)
        monkeypatch.undo()
    # another user's file in a sticky folder: refused unless the process may remove it anyway
    sticky = tmp_path / "shared"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    (sticky / "ck.npz").write_bytes(b"old")
    monkeypatch.setattr(os, "geteuid", lambda: os.stat(sticky).st_uid + 4321)  # neither owner
    for privileged, refused in ((False, True), (True, False)):
        monkeypatch.setattr(V, "_has_capability", lambda bit, p=privileged: p)
        if refused:
            with pytest.raises(ValueError, match="it is another user's, in a folder with the sticky bit"):
                V.path("checkpoint", sticky / "ck.npz", writable=True, replaced=True)
        else:
            assert V.path("checkpoint", sticky / "ck.npz", writable=True, replaced=True)
    assert V.path("checkpoint", sticky / "new.npz", writable=True, replaced=True)  # a new file: nothing to replace
    os.chmod(sticky, 0o777)  # not sticky: anyone who may write in it may rename over the file
    assert V.path("checkpoint", sticky / "ck.npz", writable=True, replaced=True)
    assert isinstance(V._has_capability(V._CAP_FOWNER), bool)
    assert target.read_bytes() == b"old"


# The same argument, checked the same way wherever it appears in the public API.
SAME_RULE = [
    (
        "fit batch_size float",
        lambda: fnn.fit(NET, PARAMS, fnn.optimizers.sgd(), "mse", X, Y, batch_size=2.5),
        TypeError,
    ),
    ("evaluate batch_size float", lambda: fnn.evaluate(NET, PARAMS, "mse", X, Y, batch_size=2.5), TypeError),
    ("num_batches batch_size float", lambda: fnn.data.num_batches(4, 2.5), TypeError),
    ("fit batch_size 0", lambda: fnn.fit(NET, PARAMS, fnn.optimizers.sgd(), "mse", X, Y, batch_size=0), ValueError),
    ("evaluate batch_size 0", lambda: fnn.evaluate(NET, PARAMS, "mse", X, Y, batch_size=0), ValueError),
    ("num_batches batch_size 0", lambda: fnn.data.num_batches(4, 0), ValueError),
    ("sgd learning_rate string", lambda: fnn.optimizers.sgd("0.1"), TypeError),
    ("sgd learning_rate negative", lambda: fnn.optimizers.sgd(-0.1), ValueError),
    ("scale_by_adam b1 string", lambda: fnn.optimizers.scale_by_adam(b1="0.9"), TypeError),
    ("scale_by_adam b1 1.0", lambda: fnn.optimizers.scale_by_adam(b1=1.0), ValueError),
    ("Dense units float", lambda: fnn.Dense(2.0), TypeError),
    ("Dense units 0", lambda: fnn.Dense(0), ValueError),
    ("Dropout rate string", lambda: fnn.Dropout("0.5"), TypeError),
    ("Dropout rate above 1", lambda: fnn.Dropout(1.5), ValueError),
    ("schedule value string", lambda: fnn.schedules.constant("1"), TypeError),
    ("initializer stddev negative", lambda: fnn.initializers.random_normal(stddev=-1.0), ValueError),
    ("loss option type", lambda: fnn.losses.get("huber", delta="1"), TypeError),
    ("activation option type", lambda: fnn.activations.get("elu", alpha="1"), TypeError),
    ("moons n_samples float", lambda: fnn.datasets.load("moons", n_samples=100.0), TypeError),
    ("moons noise negative", lambda: fnn.datasets.load("moons", noise=-1.0), ValueError),
    ("fit shuffle string", lambda: fnn.fit(NET, PARAMS, fnn.optimizers.sgd(), "mse", X, Y, shuffle="no"), TypeError),
    ("fit verbose 3", lambda: fnn.fit(NET, PARAMS, fnn.optimizers.sgd(), "mse", X, Y, verbose=3), ValueError),
    ("fit key int", lambda: fnn.fit(NET, PARAMS, fnn.optimizers.sgd(), "mse", X, Y, key=3), TypeError),
    ("registry name int", lambda: fnn.optimizers.get(3), TypeError),
    ("registry unknown name", lambda: fnn.optimizers.get("adamm"), ValueError),
]


@pytest.mark.parametrize("what,call,error", SAME_RULE, ids=[c[0] for c in SAME_RULE])
def test_public_api_follows_the_rule(what, call, error, compiles):
    with compiles() as c, pytest.raises(error):
        call()
    assert c.count == 0  # raised before anything was compiled


def test_numpy_scalars_work_where_python_numbers_do():
    opt = fnn.optimizers.adam(np.float32(1e-3), b1=np.float64(0.9), weight_decay=np.float32(0.0))
    assert float(fnn.optimizers.get_learning_rate(opt.init(PARAMS))) == pytest.approx(1e-3, rel=1e-6)
    assert fnn.Dense(np.int64(3)) == fnn.Dense(3)
    assert fnn.mlp([np.int64(3)]) == fnn.mlp([3])
    assert fnn.losses.get("huber", delta=np.float32(0.5)) == fnn.losses.get("huber", delta=0.5)
    assert fnn.data.num_batches(np.int64(10), np.int32(3)) == 4
    out = fnn.evaluate(NET, PARAMS, "mse", X, Y, batch_size=np.int64(2))
    assert out["loss"] >= 0
    sched = fnn.schedules.cosine_decay(np.float32(1.0), np.int64(10))
    assert float(sched(0)) == pytest.approx(1.0)
    # bfloat16 scalars (ml_dtypes', and 0-d jax arrays where jax arrays are taken) as float16 ones
    half = ml_dtypes.bfloat16(0.5)  # jnp.bfloat16(0.5) is a jax array
    assert fnn.Dropout(half) == fnn.Dropout(0.5) and fnn.LayerNorm(epsilon=half) == fnn.LayerNorm(epsilon=0.5)
    assert fnn.losses.get("huber", delta=half) == fnn.losses.get("huber", delta=0.5)
    assert fnn.activations.get("leaky_relu", negative_slope=half) == fnn.activations.get(
        "leaky_relu", negative_slope=0.5
    )
    y, p = np.zeros(3), np.asarray([0.25, 1.0, -2.0])
    assert float(fnn.losses.huber(y, p, delta=half)) == float(fnn.losses.huber(y, p, delta=0.5))
    for lr in (half, jnp.asarray(half)):
        opt = fnn.optimizers.sgd(lr, momentum=half)
        assert float(fnn.optimizers.get_learning_rate(opt.init(PARAMS))) == 0.5
