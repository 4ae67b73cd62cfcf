"""fnn.checkpoint: bit-exact round trips, atomic writes, and clear errors."""

import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
import zipfile
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import swapped

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


def swapped_tree(tree):
    return jax.tree.map(swapped, tree)


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


def test_a_history_of_numbers_is_written_as_version_1_which_every_fnn_reads_and_arrays_or_lists_as_2(tmp_path):
    """A history that holds what only a newer reader takes (arrays as entries, lists, dicts) is
    version 2, so an older fnn says the version it cannot read (it called such a file corrupt);
    one of numbers stays version 1."""
    versions = {}
    for name, history in (("plain", {"loss": [0.5]}), ("array", {"w": [np.ones(2)]}), ("list", {"w": [[1, "a"]]})):
        checkpoint.save(tmp_path / f"{name}.npz", params={"w": np.ones(2)}, history=history)
        with np.load(tmp_path / f"{name}.npz") as z:
            versions[name] = json.loads(str(z["__fnn_checkpoint__"]))["version"]
        assert checkpoint.load(tmp_path / f"{name}.npz").history.keys() == history.keys()
    assert versions == {"plain": 1, "array": 2, "list": 2}


def test_a_file_of_another_format_version_is_refused_with_the_version_it_holds(tmp_path):
    """The version as the file holds it (a string "1" read as the number 1 was "version 1 is not
    supported (this fnn reads version 1)")."""
    path = tmp_path / "ck.npz"
    checkpoint.save(path, params={"w": np.ones(2)})
    for version, shown in ((checkpoint.FORMAT_VERSION + 1, str(checkpoint.FORMAT_VERSION + 1)), ("1", "'1'")):
        with np.load(path) as z:
            arrays = dict(z)
        meta = json.loads(str(arrays["__fnn_checkpoint__"]))
        meta["version"] = version
        arrays["__fnn_checkpoint__"] = np.asarray(json.dumps(meta))
        np.savez(path, **arrays)
        want = (
            f"checkpoint format version {shown} is not supported (this fnn reads versions 1, 2; a newer fnn wrote it?)"
        )
        with pytest.raises(ValueError, match=re.escape(want) + "$"):
            checkpoint.load(path)


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

    monkeypatch.setattr(np, "savez", exploding_savez)
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

    monkeypatch.setattr(os, "replace", no_replace)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, params=_params(1), epoch=2)
    monkeypatch.undo()
    assert checkpoint.load(path).epoch == 1
    assert os.listdir(tmp_path) == ["run.npz"]
    # a rename the system refuses (an immutable file, another user's in a sticky folder) is named
    # as the checkpoint's replacement, not as the hidden temporary file the rename moved

    def refused(src, dst):
        raise PermissionError(1, "Operation not permitted", src, dst)

    monkeypatch.setattr(os, "replace", refused)
    with pytest.raises(PermissionError) as e:
        checkpoint.save(path, params=_params(1), epoch=2)
    monkeypatch.undo()
    assert str(e.value) == (
        f"[Errno 1] Operation not permitted (replacing the file with the new one) while writing the checkpoint: "
        f"{str(path)!r}"
    )
    assert checkpoint.load(path).epoch == 1 and os.listdir(tmp_path) == ["run.npz"]


def test_save_overwrites_and_creates_parent_folders(tmp_path):
    path = tmp_path / "deep" / "er" / "model.ckpt"  # used as given, no .npz added
    checkpoint.save(path, params=_params(0), epoch=1)
    checkpoint.save(path, params=_params(1), epoch=2)
    ck = checkpoint.load(path, params=_params(0))
    assert ck.epoch == 2 and _bits(ck.params) == _bits(_params(1))
    assert os.listdir(path.parent) == ["model.ckpt"]


def test_save_names_a_path_it_cannot_write_before_writing_anything(tmp_path):
    """save's path is checked as fit's checkpoint= is (the OS's errors named the hidden
    temporary file, "File exists" for a parent that is a file); a trailing separator (a folder
    meant) is refused where realpath dropped it and wrote a file."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "afile").write_text("x")
    for bad, why in [
        (tmp_path / "folder", "is a folder; it must name a file"),
        (tmp_path / "afile" / "c.npz", "afile' is a file, not a folder"),
        (f"{tmp_path}/run1{os.sep}", "ends with a path separator, so it names a folder"),
        ("", "path must be a non-empty path"),
    ]:
        with pytest.raises(ValueError, match=why):
            checkpoint.save(bad, params=_params())
    assert sorted(os.listdir(tmp_path)) == ["afile", "folder"] and os.listdir(tmp_path / "folder") == []
    with pytest.raises(TypeError, match="path must be a path"):
        checkpoint.save(3, params=_params())
    # a payload refused creates no folder on the way
    with pytest.raises(TypeError, match="history"):
        checkpoint.save(tmp_path / "new" / "c.npz", params=_params(), history={"a": [object()]})
    assert not (tmp_path / "new").exists()
    # a pipe (or /dev/null, as root) is never replaced by a regular file
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ValueError, match="is not a regular file"):
        checkpoint.save(tmp_path / "pipe", params=_params())
    assert stat.S_ISFIFO(os.stat(tmp_path / "pipe").st_mode)


def test_loading_a_folder_is_the_os_s_error_not_a_corrupt_file(tmp_path):
    # as np.load: IsADirectoryError (PermissionError likewise), not "corrupt, truncated or foreign"
    with pytest.raises(IsADirectoryError):
        checkpoint.load(tmp_path)
    with pytest.raises(IsADirectoryError):
        checkpoint.resume(tmp_path)


# ---------------------------------------------------------------- bad files


def test_truncated_corrupt_and_foreign_files(tmp_path):
    path = tmp_path / "good.npz"
    checkpoint.save(path, params=_params(), epoch=1, history={"loss": [1.0]})
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
    # a text file: numpy's own text would suggest loading it with allow_pickle
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(ValueError, match=r"notes.txt: not a readable fnn checkpoint .*: not an .npz archive$"):
        checkpoint.load(tmp_path / "notes.txt")
    with pytest.raises(FileNotFoundError, match="no checkpoint at .*missing.npz"):
        checkpoint.load(tmp_path / "missing.npz")


def test_resume_returns_none_only_when_there_is_no_file(tmp_path):
    assert checkpoint.resume(tmp_path / "none.npz", params=_params()) is None
    checkpoint.save(tmp_path / "a.npz", params=_params(), epoch=4)
    assert checkpoint.resume(tmp_path / "a.npz", params=_params()).epoch == 4
    (tmp_path / "bad.npz").write_bytes(b"junk")
    with pytest.raises(ValueError, match="bad.npz"):
        checkpoint.resume(tmp_path / "bad.npz", params=_params())


def test_a_file_behind_a_folder_that_may_not_be_searched_is_not_taken_for_missing(tmp_path, monkeypatch):
    # os.path.exists says False where stat fails with EACCES (a folder without x for this user;
    # root searches every folder, so the OS's answer is stood in for): resume would start afresh
    # over a file that exists, load would call it missing
    path = tmp_path / "locked" / "a.npz"
    checkpoint.save(path, params=_params(), epoch=2)
    real_stat = os.stat

    def stat_(p, *args, **kwargs):
        if os.fspath(p) == os.fspath(path):
            raise PermissionError(13, "Permission denied", os.fspath(p))
        return real_stat(p, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat_)
    for call in (checkpoint.resume, checkpoint.load):
        with pytest.raises(PermissionError, match="Permission denied"):
            call(path, params=_params())
    monkeypatch.undo()
    assert checkpoint.resume(path, params=_params()).epoch == 2
    assert checkpoint.resume(tmp_path / "locked" / "b.npz") is None
    assert checkpoint.resume(tmp_path / "locked" / "a.npz" / "c.npz") is None  # a file as a folder: nothing there


def test_a_tree_with_a_function_in_its_static_data_loads_in_another_process(tmp_path):
    # a treedef prints such a function with its address, another in every process
    script = (
        "import dataclasses, functools, sys, jax, jax.numpy as jnp\n"
        "from fnn import checkpoint\n"
        "def act(x):\n    return x\n"
        "@functools.partial(jax.tree_util.register_dataclass, data_fields=['w'], meta_fields=['fn'])\n"
        "@dataclasses.dataclass\n"
        "class Mod:\n    w: jax.Array\n    fn: object\n"
        "if sys.argv[2] == 'save':\n"
        "    checkpoint.save(sys.argv[1], params=Mod(jnp.arange(2.0), act))\n"
        "else:\n"
        "    print(checkpoint.load(sys.argv[1], params=Mod(jnp.zeros(2), act)).params.w.tolist())\n"
        "    try:\n"
        "        checkpoint.load(sys.argv[1], params=Mod(jnp.zeros(2), print))\n"
        "    except ValueError as err:\n"
        "        print('refused', 'tree structure differs' in str(err))\n"
    )
    path = str(tmp_path / "m.npz")
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    for step in ("save", "load"):
        out = subprocess.run(
            [sys.executable, "-c", script, path, step], capture_output=True, text=True, env=env, timeout=120
        )
        assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["[0.0, 1.0]", "refused True"]


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
    with pytest.raises(ValueError, match=r"holds no opt_state \(it was saved without one\), but opt_state= was given"):
        checkpoint.load(tmp_path / "p.npz", opt_state=_state(params))


def test_a_0d_float_of_another_width_loads_cast_to_the_template_s_other_mismatches_are_refused(tmp_path):
    # injected hyperparameters are float64 in a state made with x64 on, float32 with it off;
    # params and moments are the same in both modes, so a run resumes across the switch
    def state(hp_dtype):
        return {
            "count": np.asarray(3, np.int32),
            "mu": np.full(2, 0.5, np.float32),
            "hparams": {"learning_rate": np.asarray(0.1, hp_dtype), "b1": np.asarray(0.9, hp_dtype)},
        }

    for saved, wanted in [(np.float32, np.float64), (np.float64, np.float32)]:
        path = tmp_path / f"{np.dtype(saved).name}.npz"
        checkpoint.save(path, params=None, opt_state=state(saved))
        held = checkpoint.load(path, opt_state=state(wanted)).opt_state["hparams"]
        for k, v in {"learning_rate": 0.1, "b1": 0.9}.items():
            assert held[k].dtype == wanted and held[k].shape == ()
            # the stored value, rounded once to the narrower of the two widths
            assert float(held[k]) == float(np.asarray(np.asarray(v, saved), wanted))

    path = tmp_path / "float32.npz"
    count_as_float = {**state(np.float32), "count": np.asarray(3.0, np.float32)}
    with pytest.raises(ValueError, match=r"opt_state\['count'\]: dtype int32 in the file vs float32 in the template"):
        checkpoint.load(path, opt_state=count_as_float)
    rate_as_int = state(np.float32)
    rate_as_int["hparams"]["learning_rate"] = np.asarray(0, np.int32)
    with pytest.raises(ValueError, match=r"\['learning_rate'\]: dtype float32 in the file vs int32 in the template"):
        checkpoint.load(path, opt_state=rate_as_int)
    wide_moments = {**state(np.float32), "mu": np.full(2, 0.5, np.float64)}  # not a 0-d leaf
    with pytest.raises(ValueError, match=r"opt_state\['mu'\]: dtype float32 in the file vs float64 in the template"):
        checkpoint.load(path, opt_state=wide_moments)
    # only the two widths of a hyperparameter are cast, and never to inf
    half_rate = state(np.float32)
    half_rate["hparams"]["learning_rate"] = np.asarray(0.1, np.float16)
    with pytest.raises(ValueError, match=r"\['learning_rate'\]: dtype float32 in the file vs float16 in the template"):
        checkpoint.load(path, opt_state=half_rate)
    huge = state(np.float64)
    huge["hparams"]["b1"] = np.asarray(1e300, np.float64)
    checkpoint.save(tmp_path / "huge.npz", params=None, opt_state=huge)
    with pytest.raises(ValueError, match=r"opt_state\['hparams'\]\['b1'\] is 1e\+300 in the file, beyond .* float32"):
        checkpoint.load(tmp_path / "huge.npz", opt_state=state(np.float32))


def test_save_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        checkpoint.save(tmp_path / "x.npz", params=_params(), epoch=-1)
    with pytest.raises(TypeError, match="extra 'fn' must be JSON-like"):
        checkpoint.save(tmp_path / "x.npz", params=_params(), fn=print)
    with pytest.raises(TypeError, match=r"history\['loss'\]\[0\] must be JSON-like"):
        checkpoint.save(tmp_path / "x.npz", params=_params(), history={"loss": [object()]})
    # a callback's logged array is stored as an entry, as Keras's History keeps it; a 0-d one is its number
    checkpoint.save(tmp_path / "arr.npz", params=_params(), history={"arr": [np.arange(3)], "n": [np.float32(2.5)]})
    back = checkpoint.load(tmp_path / "arr.npz").history
    assert back["arr"][0].tolist() == [0, 1, 2] and back["n"] == [2.5]
    with pytest.raises(TypeError, match=r"history\['arr'\]\[0\]\['a'\] must be JSON-like .* got set"):
        checkpoint.save(tmp_path / "x.npz", params=_params(), history={"arr": [{"a": {1.0}}]})
    # JSON's keys are strings: 1 and '1' would come back as one key
    for kw, where in (
        (dict(meta={1: "a", "1": "b"}), r"extra 'meta': .*got 1 \(int\), which would come back as '1'"),
        (dict(history={"loss": [1.0], 2: [3.0]}), r"history: .*got 2 \(int\)"),
        (dict(callbacks=[{(1, 2): 0.5}]), r"callbacks\[0\]: .*got \(1, 2\) \(tuple\)"),
    ):
        with pytest.raises(TypeError, match=where):
            checkpoint.save(tmp_path / "x.npz", params=_params(), **kw)
    # a leaf that cannot be stored is named: an int beyond int32 (x64 off), a donated array
    big = r"params\['big'\]: Python integer 1099511627776 out of bounds for int32"
    with jax.enable_x64(False), pytest.raises(ValueError, match=big):
        checkpoint.save(tmp_path / "x.npz", params={"big": 2**40})
    gone = jnp.ones(3)
    jax.jit(lambda a: a + 1, donate_argnums=0)(gone)
    if gone.is_deleted():  # (a backend that ignores donation keeps it)
        with pytest.raises(ValueError, match=r"params\[0\]: the array has been deleted \(donated"):
            checkpoint.save(tmp_path / "x.npz", params=[gone])
    assert not (tmp_path / "x.npz").exists()


# ---------------------------------------------------------------- files that disagree with themselves
# Each file below is a valid zip archive (every CRC checks out) whose entries or metadata were
# edited by hand: load must refuse it with a ValueError naming the file and the field, never
# return garbage or fail later with a KeyError, a JAX TypeError or a message without the path.

_FIT_HISTORY = {
    "history": {"loss": [1.5, 0.5], "val_loss": [2.0, None], "note": ["a", "b"]},
    "epochs": [0, 1],
    "times": [0.25, 0.5],
    "iterations_per_epoch": 3,
    "stop_reason": "epochs",
    "stopped_epoch": None,
}


@pytest.fixture(scope="module")
def good_file(tmp_path_factory):
    """One checkpoint holding every kind of entry: float32, bfloat16 and float64 leaves, an int32
    count, a typed key, fit's history, extra JSON and arrays, callbacks' state with an array."""
    path = tmp_path_factory.mktemp("good") / "good.npz"
    params = {
        "w": _device(np.arange(6.0).reshape(2, 3), np.float32),
        "h": _device([0.5, 1.5, -2.0], jnp.bfloat16),
        "d": np.array([0.1, 0.2]),
    }
    opt_state = {"count": jax.device_put(np.int32(4)), "mu": {"w": _device(np.ones((2, 3)), np.float32)}}
    checkpoint.save(
        path,
        params=params,
        opt_state=opt_state,
        epoch=2,
        key=jax.random.key(3),
        history=_FIT_HISTORY,
        callbacks=[{"best": 0.5, "weights": {"w": _device([1.0, 2.0], np.float32)}}, None],
        note="run-a",
        mask=np.array([1, 2], np.int32),
    )
    return path


def _edit(src, dst, edit):
    """Copy checkpoint ``src`` to ``dst`` with ``edit(meta, arrays)`` applied (valid checksums)."""
    with np.load(src) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("__fnn_checkpoint__")))
    edit(meta, arrays)
    np.savez(dst, __fnn_checkpoint__=np.asarray(json.dumps(meta)), **arrays)
    return dst


def _leaf(meta, tree, path):
    return next(leaf for leaf in meta["trees"][tree]["leaves"] if leaf["path"] == path)


def _set(d, *keys_value):
    *keys, last, value = keys_value
    for k in keys:
        d = d[k]
    d[last] = value


_W, _H, _COUNT = "params['w']", "params['h']", "opt_state['count']"

# (case id, edit(meta, arrays), regex the message must match after "<file>: ")
_CORRUPT = [
    # ---- stored arrays that disagree with their declared dtype / shape
    ("float64-for-float32", lambda m, a: a.update({_W: a[_W].astype(np.float64)}), r"params\['w'\].*float64.*float32"),
    ("float-count", lambda m, a: a.update({_COUNT: np.float32(4.0)}), r"opt_state\['count'\].*float32.*int32"),
    ("wrong-shape", lambda m, a: a.update({_W: a[_W].reshape(3, 2)}), r"params\['w'\].*\(3, 2\).*\(2, 3\)"),
    ("bfloat16-as-uint8", lambda m, a: a.update({_H: a[_H].view(np.uint8)}), r"params\['h'\].*uint8.*bfloat16"),
    ("bfloat16-as-uint32", lambda m, a: a.update({_H: np.zeros(3, np.uint32)}), r"params\['h'\].*uint32.*bfloat16"),
    ("bfloat16-as-float16", lambda m, a: a.update({_H: a[_H].view(np.float16)}), r"params\['h'\].*float16.*bfloat16"),
    ("declared-dtype-edited", lambda m, a: _leaf(m, "params", "['d']").update(dtype="float32"), r"params\['d'\]"),
    ("declared-shape-edited", lambda m, a: _leaf(m, "params", "['w']").update(shape=[6]), r"params\['w'\].*\(6,\)"),
    ("extra-array-dtype", lambda m, a: a.update({"extra['mask']": np.array([1.0, 2.0])}), r"extra\['mask'\]"),
    (
        "callbacks-array-dtype",
        lambda m, a: a.update({"callbacks[0]['weights']['w']": np.array([1.0, 2.0])}),
        r"callbacks\[0\]\['weights'\]\['w'\].*float64.*float32",
    ),
    ("key-data-shape", lambda m, a: a.update({"key": np.zeros(3, np.uint32)}), r"key.*fry"),
    ("key-data-dtype", lambda m, a: a.update({"key": a["key"].astype(np.int64)}), r"key"),
    ("key-impl-unknown", lambda m, a: _leaf(m, "key", "").update(impl="nope"), r"key.*'nope'"),
    ("key-impl-not-str", lambda m, a: _leaf(m, "key", "").update(impl=3), r"key.*impl"),
    ("key-dtype-disagrees-with-impl", lambda m, a: _leaf(m, "key", "").update(impl="rbg"), r"key"),
    ("key-without-impl", lambda m, a: _leaf(m, "key", "").pop("impl"), r"key.*key<fry>"),
    ("unknown-dtype", lambda m, a: _leaf(m, "params", "['w']").update(dtype="float33"), r"params\['w'\].*float33"),
    ("object-dtype", lambda m, a: _leaf(m, "params", "['w']").update(dtype="object"), r"params\['w'\].*object"),
    ("dtype-not-str", lambda m, a: _leaf(m, "params", "['w']").update(dtype=5), r"params\['w'\].*dtype"),
    ("shape-not-list", lambda m, a: _leaf(m, "params", "['w']").update(shape="2,3"), r"params\['w'\].*shape"),
    ("shape-negative", lambda m, a: _leaf(m, "params", "['w']").update(shape=[-2, 3]), r"params\['w'\].*shape"),
    ("shape-float", lambda m, a: _leaf(m, "params", "['w']").update(shape=[2.0, 3]), r"params\['w'\].*shape"),
    # ---- entries missing or unexplained
    ("missing-leaf-array", lambda m, a: a.pop(_W), r"params\['w'\].*missing"),
    ("missing-extra-array", lambda m, a: a.pop("extra['mask']"), r"extra\['mask'\].*missing"),
    ("missing-callbacks-array", lambda m, a: a.pop("callbacks[0]['weights']['w']"), r"callbacks.*missing"),
    ("stowaway-entry", lambda m, a: a.update(stowaway=np.ones(2)), r"stowaway.*not described"),
    # ---- the metadata's own structure
    ("epoch-string", lambda m, a: m.update(epoch="2"), r"epoch"),
    ("epoch-float", lambda m, a: m.update(epoch=2.5), r"epoch"),
    ("epoch-negative", lambda m, a: m.update(epoch=-1), r"epoch must be >= 0"),
    ("epoch-bool", lambda m, a: m.update(epoch=True), r"epoch"),
    ("epoch-missing", lambda m, a: m.pop("epoch"), r"epoch.*missing"),
    ("trees-not-dict", lambda m, a: m.update(trees=[]), r"trees"),
    ("trees-missing", lambda m, a: m.pop("trees"), r"trees.*missing"),
    ("tree-unknown", lambda m, a: m["trees"].update(weights=m["trees"]["params"]), r"trees.*'weights'"),
    ("tree-not-dict", lambda m, a: m["trees"].update(params="x"), r"trees\['params'\]"),
    ("treedef-not-str", lambda m, a: m["trees"]["params"].update(treedef=42), r"params.*treedef"),
    ("leaves-not-list", lambda m, a: m["trees"]["params"].update(leaves="oops"), r"params.*leaves"),
    ("leaves-missing", lambda m, a: m["trees"]["params"].pop("leaves"), r"params.*leaves"),
    (
        "leaf-not-dict",
        lambda m, a: m["trees"]["params"]["leaves"].append(7),
        r"params'\]\['leaves'\]\[3\] must be a dict",
    ),
    ("leaf-without-dtype", lambda m, a: _leaf(m, "params", "['w']").pop("dtype"), r"params\['w'\].*dtype"),
    (
        "leaf-without-path",
        lambda m, a: m["trees"]["params"]["leaves"][0].pop("path"),
        r"params'\]\['leaves'\]\[0\]: path must be a string",
    ),
    ("leaf-path-not-str", lambda m, a: m["trees"]["params"]["leaves"][0].update(path=1), r"params.*path"),
    (
        "leaf-listed-twice",
        lambda m, a: m["trees"]["params"]["leaves"].append(_leaf(m, "params", "['w']")),
        r"params\['w'\].*twice",
    ),
    ("history-not-dict", lambda m, a: m.update(history=[1, 2]), r"history"),
    ("history-missing", lambda m, a: m.pop("history"), r"history.*missing"),
    (
        "history-values-not-list",
        lambda m, a: _set(m, "history", "history", "loss", 1.5),
        r"history\['history'\]\['loss'\] must be a list",
    ),
    (
        "history-nested",
        lambda m, a: _set(m, "history", "history", "loss", [{"__array__": 3}, 0.5]),
        r"history\['history'\]\['loss'\]\[0\]: an array marker must be",
    ),
    (
        "epochs-not-ints",
        lambda m, a: _set(m, "history", "epochs", [0, 1.5]),
        r"history\['epochs'\]\[1\] must be an int",
    ),
    ("epochs-negative", lambda m, a: _set(m, "history", "epochs", [0, -1]), r"history\['epochs'\]\[1\] must be >= 0"),
    (
        "times-not-numbers",
        lambda m, a: _set(m, "history", "times", [0.1, "x"]),
        r"history\['times'\]\[1\] must be a number",
    ),
    ("times-length", lambda m, a: _set(m, "history", "times", [0.1]), r"history.*times.*epochs"),
    ("history-longer-than-epochs", lambda m, a: _set(m, "history", "history", "loss", [1, 2, 3]), r"loss.*epochs"),
    ("iterations-float", lambda m, a: _set(m, "history", "iterations_per_epoch", 3.5), r"iterations_per_epoch"),
    ("iterations-negative", lambda m, a: _set(m, "history", "iterations_per_epoch", -3), r"iterations_per_epoch"),
    ("stop-reason-not-str", lambda m, a: _set(m, "history", "stop_reason", 0), r"stop_reason"),
    ("stopped-epoch-str", lambda m, a: _set(m, "history", "stopped_epoch", "1"), r"stopped_epoch"),
    ("plain-history-values", lambda m, a: m.update(history={"loss": "1.5"}), r"history\['loss'\]"),
    ("extra-not-dict", lambda m, a: m.update(extra=[1]), r"extra"),
    ("extra-missing", lambda m, a: m.pop("extra"), r"extra.*missing"),
    ("extra-arrays-not-dict", lambda m, a: m.update(extra_arrays=[]), r"extra_arrays"),
    ("extra-array-meta-not-dict", lambda m, a: m["extra_arrays"].update(mask="int32"), r"extra\['mask'\].*metadata"),
    ("extra-name-twice", lambda m, a: m["extra"].update(mask=1), r"extra.*'mask'.*twice"),
    ("callbacks-arrays-not-dict", lambda m, a: m.update(callbacks_arrays=[]), r"callbacks_arrays"),
    ("callbacks-marker-not-str", lambda m, a: _set(m, "callbacks", 0, "weights", "w", {"__array__": 3}), r"callbacks"),
    (
        "callbacks-marker-unknown",
        lambda m, a: _set(m, "callbacks", 0, "weights", "w", {"__array__": "callbacks[9]"}),
        r"callbacks\[9\]",
    ),
    (
        "callbacks-marker-extra-keys",
        lambda m, a: _set(m, "callbacks", 0, "weights", "w", {"__array__": "callbacks[0]['weights']['w']", "x": 1}),
        r"callbacks.*__array__",
    ),
    (
        "callbacks-array-unused",
        lambda m, a: _set(m, "callbacks", 0, "weights", "w", 1.0),
        r"callbacks\[0\]\['weights'\]\['w'\].*not used",
    ),
    ("history-arrays-not-dict", lambda m, a: m.update(history_arrays=[]), r"history_arrays"),
    (
        "history-marker-unknown",
        lambda m, a: _set(m, "history", "history", "loss", [1.5, {"__array__": "history[9]"}]),
        r"history\['history'\]\['loss'\]\[1\]: entry history\[9\] is not in history_arrays",
    ),
    (
        "callbacks-array-meta-shape",
        lambda m, a: m["callbacks_arrays"]["callbacks[0]['weights']['w']"].update(shape=[3]),
        r"callbacks\[0\]\['weights'\]\['w'\].*\(3,\)",
    ),
]


@pytest.mark.parametrize("edit, message", [c[1:] for c in _CORRUPT], ids=[c[0] for c in _CORRUPT])
def test_files_that_disagree_with_their_own_metadata_are_refused_naming_file_and_field(
    tmp_path, good_file, edit, message
):
    bad = _edit(good_file, tmp_path / "bad.npz", edit)
    with pytest.raises(ValueError, match=r"bad\.npz: .*" + message):
        checkpoint.load(bad)
    with pytest.raises(ValueError, match=r"bad\.npz: "):
        checkpoint.resume(bad)


def test_a_template_does_not_hide_a_stored_array_of_another_dtype(tmp_path, good_file):
    # The metadata matches the template, the stored bits do not: refused before any comparison.
    ck = checkpoint.load(good_file)
    bad = _edit(good_file, tmp_path / "bad.npz", _CORRUPT[0][1])
    with pytest.raises(ValueError, match=r"bad\.npz: .*params\['w'\].*float64"):
        checkpoint.load(bad, params={"w": ck.params["['w']"], "h": ck.params["['h']"], "d": ck.params["['d']"]})


def test_the_hand_edited_copy_of_a_good_file_still_loads(tmp_path, good_file):
    # The editing helper itself changes nothing: every case above fails on its edit alone.
    same = _edit(good_file, tmp_path / "same.npz", lambda m, a: None)
    ck = checkpoint.load(same)
    assert ck.epoch == 2 and ck.history == _FIT_HISTORY and ck.extra["note"] == "run-a"
    np.testing.assert_array_equal(ck.params["['w']"], np.arange(6.0).reshape(2, 3))
    assert ck.params["['h']"].dtype == jnp.bfloat16 and ck.params["['d']"].dtype == np.float64
    assert ck.opt_state["['count']"].dtype == jnp.int32 and int(ck.opt_state["['count']"]) == 4
    assert str(jax.random.key_impl(ck.key)) == "threefry2x32"
    np.testing.assert_array_equal(ck.callbacks[0]["weights"]["w"], [1.0, 2.0])
    assert ck.callbacks[0]["best"] == 0.5 and ck.callbacks[1] is None
    np.testing.assert_array_equal(ck.extra["mask"], [1, 2])


def _big_endian(meta, arrays):
    """Every stored array, and every dtype the metadata names that has a byte order, big-endian:
    a file written by hand from big-endian data (or by an fnn that kept its order)."""
    for k, a in arrays.items():
        arrays[k] = swapped(a)
    leaves = [leaf for tree in meta["trees"].values() for leaf in tree["leaves"]]
    for leaf in leaves + list(meta["extra_arrays"].values()) + list(meta["callbacks_arrays"].values()):
        if "impl" not in leaf and np.dtype(jnp.dtype(leaf["dtype"])).type.__module__ == "numpy":
            leaf["dtype"] = np.dtype(leaf["dtype"]).newbyteorder(">").str


def test_big_endian_arrays_save_in_native_order_and_a_big_endian_file_loads_by_its_values(tmp_path, good_file):
    """save stored '>f4' as it came (and load then failed: 'Dtype >f4 is not a valid JAX array
    type'): it stores native order now, and load reads a file of big-endian arrays and dtypes by
    their values, with or without templates."""
    params = {"w": np.arange(6.0, dtype=np.float32).reshape(2, 3), "b": np.array([-1.5, 2.0])}
    opt_state = {"count": np.int32(7), "mu": {"w": np.ones((2, 3), np.float32) / 3}}
    key = jax.random.PRNGKey(5)
    path = tmp_path / "be.npz"
    checkpoint.save(path, params=swapped_tree(params), opt_state=swapped_tree(opt_state), key=swapped(key),
                    mask=swapped(np.array([1, 2], np.int64)))  # fmt: skip
    with np.load(path) as z:
        assert all(z[k].dtype.isnative for k in z.files)
    ck = checkpoint.load(path, params=params, opt_state=opt_state)
    assert _bits(ck.params) == _bits(params) and _bits(ck.opt_state) == _bits(opt_state)
    assert ck.key.tolist() == key.tolist() and ck.key.dtype == np.uint32
    assert ck.extra["mask"].tolist() == [1, 2] and ck.extra["mask"].dtype.isnative
    assert _bits(checkpoint.load(path, params=swapped_tree(params)).params) == _bits(params)  # a big-endian template

    want = checkpoint.load(good_file)
    got = checkpoint.load(_edit(good_file, tmp_path / "hand.npz", _big_endian))
    assert _bits([got.params, got.opt_state, got.key]) == _bits([want.params, want.opt_state, want.key])
    assert _bits(got.extra["mask"]) == _bits(want.extra["mask"])
    assert _bits(got.callbacks[0]["weights"]) == _bits(want.callbacks[0]["weights"])
    template = {"w": want.params["['w']"], "h": want.params["['h']"], "d": want.params["['d']"]}
    got = checkpoint.load(tmp_path / "hand.npz", params=template)
    assert _bits(got.params) == _bits(template)


def test_older_files_and_every_documented_encoding_still_load(tmp_path):
    # A version-1 file written before callbacks were saved has no callbacks entries at all.
    path = tmp_path / "old.npz"
    checkpoint.save(path, params={"w": np.ones(2, np.float32)}, epoch=3, history={"loss": [1.0, None, "x"]})
    old = _edit(path, tmp_path / "older.npz", lambda m, a: (m.pop("callbacks"), m.pop("callbacks_arrays")))
    ck = checkpoint.load(old)
    assert ck.callbacks is None and ck.history == {"loss": [1.0, None, "x"]}
    # int4 / float8 (one-byte views), 0-d bfloat16, int64, rbg keys, empty trees.
    params = {
        "i4": np.array([1, -2, 3], jnp.int4),
        "f8": np.array([0.5, 2.0], jnp.float8_e4m3fn),
        "s": np.array(1.5, jnp.bfloat16),
        "n": np.array([2**40], np.int64),
        "e": {},
    }
    key = jax.random.key(1, impl="rbg")
    checkpoint.save(tmp_path / "enc.npz", params=params, opt_state={}, key=key)
    ck = checkpoint.load(tmp_path / "enc.npz")
    for name in ("i4", "f8", "s", "n"):
        assert _bits(ck.params[f"['{name}']"]) == _bits(params[name])
    assert ck.opt_state == {} and _bits(ck.key) == _bits(key)


def test_save_refuses_a_history_load_would_refuse(tmp_path):
    with pytest.raises(TypeError, match=r"history\['loss'\] must be a list"):
        checkpoint.save(tmp_path / "x.npz", params=_params(), history={"loss": 1.0})
    with pytest.raises(TypeError, match=r"history\['loss'\]\[0\]\[1\] must be JSON-like .* got set"):
        checkpoint.save(tmp_path / "x.npz", params=_params(), history={"loss": [[1.0, {2}]]})
    with pytest.raises(ValueError, match=r"history\['epochs'\]\[0\] must be >= 0"):
        checkpoint.save(tmp_path / "x.npz", params=_params(), history={**_FIT_HISTORY, "epochs": [-1, 0]})
    assert not (tmp_path / "x.npz").exists()


def test_save_refuses_a_history_fit_could_not_continue(tmp_path):
    """What the docstring promises, before anything is written: a plain history's lists of one
    length (the same last epochs), none longer than ``epoch``; a History's epochs before it."""
    path = tmp_path / "x.npz"
    hint = r" \(epoch= is the number of epochs done, which the history covers\)$"
    with pytest.raises(ValueError, match=r"^history lists disagree in length \('loss': 1, 'val_loss': 3\): a plain"):
        checkpoint.save(path, params=_params(), epoch=3, history={"loss": [0.5], "val_loss": [0.4, 0.3, 0.2]})
    with pytest.raises(
        ValueError, match=r"^history holds 3 values per name, more than epoch=2, the epochs the checkpoint holds" + hint
    ):
        checkpoint.save(path, params=_params(), epoch=2, history={"loss": [0.5, 0.4, 0.3]})
    with pytest.raises(
        ValueError, match=r"^history records epochs \[0, 1\], which are not increasing epochs before epoch=1"
    ):
        checkpoint.save(path, params=_params(), epoch=1, history=_FIT_HISTORY)
    assert not path.exists()
    # what fits is written: a plain history of the last epochs, a History of its own epochs (a
    # name it logged from a later epoch on has fewer values)
    checkpoint.save(path, params=_params(), epoch=3, history={"loss": [0.5, 0.4], "val_loss": [0.3, 0.2]})
    checkpoint.save(path, params=_params(), epoch=2, history=_FIT_HISTORY)
    assert checkpoint.load(path).history == _FIT_HISTORY
    # epoch left out: what the history covers (a History's last epoch + 1, a plain one's length)
    checkpoint.save(path, params=_params(), history=_FIT_HISTORY)
    assert checkpoint.load(path).epoch == 2
    checkpoint.save(path, params=_params(), history={"loss": [0.5, 0.4, 0.3]})
    assert checkpoint.load(path).epoch == 3
    checkpoint.save(path, params=_params())
    assert checkpoint.load(path).epoch == 0


def test_save_refuses_leaves_load_could_not_read_and_keeps_the_previous_file(tmp_path):
    path = tmp_path / "x.npz"
    checkpoint.save(path, params=_params(), epoch=3)
    before = path.read_bytes()
    for kw, where in (
        (dict(params={"w": jnp.ones(2), "name": "dense"}), r"params\['name'\]: .*got str of dtype <U5"),
        (dict(params=_params(), opt_state=[np.array([None, 1], dtype=object)]), r"opt_state\[0\]: .*dtype object"),
        (dict(params=_params(), mask=np.array(["a", "b"])), r"extra 'mask': .*dtype <U1"),
    ):
        with pytest.raises(TypeError, match=rf"{where}"):
            checkpoint.save(path, **kw)
        assert path.read_bytes() == before
    assert checkpoint.load(path).epoch == 3


# ---------------------------------------------------------------- temporary files, modes, symlinks

posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes, symlinks and flock are POSIX")


def test_stale_temporary_files_of_the_target_are_removed_by_the_next_save(tmp_path):
    # Left by writers killed mid-save (kill -9, power loss): nobody holds their lock any more.
    stale = [".run.npz.0123456789ab.tmp", ".run.npz.fedcba987654.tmp"]
    others = [
        ".run.npz.notes",
        "run.npz.0123456789ab.tmp",
        ".other.npz.0123456789ab.tmp",
        ".run.npz.x.0123456789ab.tmp",
    ]
    # files of the user's that look like temporary files but are not fnn's names: never removed
    others += [".run.npz.backup.tmp", ".run.npz.v2_old.tmp", ".run.npz.k2j4h5g6.tmp", ".run.npz.0123456789AB.tmp"]
    others += [".run.npz.0123456789abc.tmp", ".run.npz.0123456789a.tmp"]
    for name in stale + others:
        (tmp_path / name).write_bytes(b"PK\x03\x04 half a zip file")
    checkpoint.save(tmp_path / "run.npz", params=_params(), epoch=1)
    assert sorted(os.listdir(tmp_path)) == sorted(["run.npz", *others])
    assert checkpoint.load(tmp_path / "run.npz").epoch == 1


def test_an_os_error_while_saving_names_the_checkpoint_and_keeps_its_type_and_errno(tmp_path, monkeypatch):
    # A full disk fails in write or fsync, whose errors name no file.
    import errno

    path = tmp_path / "run.npz"
    checkpoint.save(path, params=_params(0), epoch=1)
    before = path.read_bytes()

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError) as err:
        checkpoint.save(path, params=_params(1), epoch=2)
    monkeypatch.undo()
    assert type(err.value) is OSError and err.value.errno == errno.ENOSPC and err.value.filename == str(path)
    assert str(err.value) == f"[Errno 28] No space left on device while writing the checkpoint: {str(path)!r}"
    assert type(err.value.__cause__) is OSError and err.value.__cause__.filename is None
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["run.npz"]  # no temporary file left


@posix_only
def test_a_temporary_file_still_being_written_is_left_alone(tmp_path, monkeypatch):
    # A save in another thread is blocked half way; a second save of the same target runs to
    # completion meanwhile. It must not delete the first one's temporary file from under it.
    path = tmp_path / "run.npz"
    real_savez, writing, proceed, result = np.savez, threading.Event(), threading.Event(), []

    def slow_savez(f, **arrays):
        if threading.current_thread().name == "slow-writer":
            writing.set()
            assert proceed.wait(60)
        return real_savez(f, **arrays)

    def slow_save():
        try:
            checkpoint.save(path, params=_params(1), epoch=2)
            result.append("ok")
        except BaseException as err:  # reported by the main thread
            result.append(err)

    monkeypatch.setattr(np, "savez", slow_savez)
    writer = threading.Thread(target=slow_save, name="slow-writer")
    writer.start()
    try:
        assert writing.wait(60)
        (pending,) = [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
        checkpoint.save(path, params=_params(0), epoch=1)
        assert sorted(os.listdir(tmp_path)) == sorted(["run.npz", pending])
        assert checkpoint.load(path).epoch == 1
    finally:
        proceed.set()
        writer.join(60)
    assert result == ["ok"]
    assert os.listdir(tmp_path) == ["run.npz"]
    ck = checkpoint.load(path, params=_params(0))
    assert ck.epoch == 2 and _bits(ck.params) == _bits(_params(1))


_CHILD = """
import io, os, signal, sys, time
import numpy as np
from fnn import checkpoint
path, mode = sys.argv[1], sys.argv[2]
real = np.savez
def savez(f, **arrays):
    buf = io.BytesIO()
    real(buf, **arrays)
    f.write(buf.getvalue()[:300])
    f.flush()
    open(path + ".writing", "w").close()
    if mode == "kill":
        os.kill(os.getpid(), signal.SIGKILL)  # no handler, no cleanup
    while not os.path.exists(path + ".go"):
        time.sleep(0.01)
    f.seek(0)
    f.truncate()
    real(f, **arrays)
np.savez = savez
checkpoint.save(path, params={"w": np.full(3, 7.0)}, epoch=7)
"""


@pytest.mark.slow
@posix_only
def test_kill_9_mid_save_leaves_a_temporary_file_the_next_save_removes_but_never_a_live_one(tmp_path):
    path = str(tmp_path / "run.npz")
    checkpoint.save(path, params={"w": np.zeros(3)}, epoch=1)
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}

    def child(mode):
        return subprocess.Popen([sys.executable, "-c", _CHILD, path, mode], env=env, stderr=subprocess.PIPE)

    def wait_writing(proc):
        deadline = time.monotonic() + 120
        while not os.path.exists(path + ".writing"):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.unlink(path + ".writing")

    killed = child("kill")
    assert killed.wait(120) == -signal.SIGKILL, killed.stderr.read().decode()[-2000:]
    killed.stderr.close()
    os.unlink(path + ".writing")
    (stray,) = [f for f in os.listdir(tmp_path) if f != "run.npz"]
    assert stray.startswith(".run.npz.") and stray.endswith(".tmp")
    checkpoint.save(path, params={"w": np.ones(3)}, epoch=2)
    assert os.listdir(tmp_path) == ["run.npz"]  # the dead writer's file is gone
    assert checkpoint.load(path).epoch == 2

    live = child("wait")
    try:
        wait_writing(live)
        (pending,) = [f for f in os.listdir(tmp_path) if f != "run.npz"]
        checkpoint.save(path, params={"w": np.ones(3)}, epoch=3)
        assert sorted(os.listdir(tmp_path)) == sorted(["run.npz", pending])  # the live one stays
        open(path + ".go", "w").close()
        assert live.wait(120) == 0, live.stderr.read().decode()[-2000:]
    finally:
        live.kill()
        live.wait()
        live.stderr.close()
    os.unlink(path + ".go")
    assert os.listdir(tmp_path) == ["run.npz"]
    ck = checkpoint.load(path)
    assert ck.epoch == 7
    np.testing.assert_array_equal(ck.params["['w']"], np.full(3, 7.0))


@posix_only
def test_replacing_a_checkpoint_keeps_its_mode_and_a_new_one_follows_the_umask(tmp_path):
    path = tmp_path / "run.npz"
    checkpoint.save(path, params=_params(), epoch=1)
    for mode in (0o640, 0o444, 0o664):
        os.chmod(path, mode)
        checkpoint.save(path, params=_params(), epoch=2)
        assert stat.S_IMODE(os.stat(path).st_mode) == mode
    old = os.umask(0o027)
    try:
        checkpoint.save(tmp_path / "new.npz", params=_params())
        checkpoint.save(tmp_path / "deep" / "new.npz", params=_params())
    finally:
        os.umask(old)
    # what open(path, "w") would have given: 0o666 without the umask's bits
    assert stat.S_IMODE(os.stat(tmp_path / "new.npz").st_mode) == 0o640
    assert stat.S_IMODE(os.stat(tmp_path / "deep" / "new.npz").st_mode) == 0o640


@posix_only
def test_saving_through_a_symlink_writes_its_target(tmp_path):
    store, links = tmp_path / "store", tmp_path / "links"
    store.mkdir()
    links.mkdir()
    checkpoint.save(store / "real.npz", params=_params(0), epoch=1)
    (links / "latest.npz").symlink_to("../store/real.npz")  # relative, as ln -s makes them
    (store / ".real.npz.0a1b2c3d4e5f.tmp").write_bytes(b"left by a killed save")
    checkpoint.save(links / "latest.npz", params=_params(1), epoch=2)
    assert os.path.islink(links / "latest.npz")
    assert os.listdir(links) == ["latest.npz"] and os.listdir(store) == ["real.npz"]
    ck = checkpoint.load(store / "real.npz", params=_params(0))
    assert ck.epoch == 2 and _bits(ck.params) == _bits(_params(1))
    # A dangling link (its target not written yet, nor its folder): the target is created.
    (links / "next.npz").symlink_to(store / "later" / "next.npz")
    checkpoint.save(links / "next.npz", params=_params(0), epoch=3)
    assert os.path.islink(links / "next.npz") and checkpoint.load(links / "next.npz").epoch == 3
    assert os.listdir(store / "later") == ["next.npz"]


@posix_only
def test_a_temporary_file_taken_for_stale_before_its_lock_is_made_anew(tmp_path, monkeypatch):
    # Another save's cleanup may find the new file in the instant between its creation and its
    # lock, and remove it: the writer must notice and start a new file, not rename a ghost.
    import fcntl

    real_flock, removed = fcntl.flock, []

    def flock(fd, operation):
        if operation == fcntl.LOCK_EX and not removed:
            (name,) = [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
            os.unlink(tmp_path / name)
            removed.append(name)
        return real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock)
    checkpoint.save(tmp_path / "run.npz", params=_params(), epoch=5)
    monkeypatch.undo()
    assert len(removed) == 1 and os.listdir(tmp_path) == ["run.npz"]
    assert checkpoint.load(tmp_path / "run.npz").epoch == 5


@posix_only
def test_on_a_file_system_without_locks_saves_work_and_only_old_temporary_files_go(tmp_path, monkeypatch):
    import fcntl

    def no_locks(fd, operation):
        raise OSError(37, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    old, recent = tmp_path / ".run.npz.aaaa1111aaaa.tmp", tmp_path / ".run.npz.bbbb2222bbbb.tmp"
    old.write_bytes(b"x")
    recent.write_bytes(b"x")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    checkpoint.save(tmp_path / "run.npz", params=_params(), epoch=1)  # the new file is not locked
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == [recent.name, "run.npz"]  # it may be a live writer's
    assert checkpoint.load(tmp_path / "run.npz").epoch == 1
