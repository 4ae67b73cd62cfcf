"""The executable store (fnn._executables): compiled epochs kept on disk and read back without
tracing, keyed on a description that must change whenever the program could.

A "second process" is a new :class:`ExecutableStore` on the same folder (its in-process dict is
empty) after ``jax.clear_caches()`` (nothing traced or compiled in memory either). The stores
get one fingerprint computed once per module (``fp``): other engineers' edits of fnn's source
between two stores would change the real one, which is what it is for but not what these tests
are about. Compilations are the cost: one tiny network, loss and batch size throughout, and tiny
jitted lambdas where the point is the key rather than training.
"""

from __future__ import annotations

import os
import pickle
import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run_python_json

import fnn
import fnn._executables as E
from fnn._executables import HIT_EVENT, MISS_EVENT, ExecutableStore, call, current, fingerprint, using

TRACE = "/jax/core/compile/jaxpr_trace_duration"
COMPILE = "/jax/core/compile/backend_compile_duration"
# (event, fun_name) of every trace and XLA compilation, and every store event, in this process
_EVENTS: list[tuple[str, str | None]] = []


def _on_duration(event, duration, **kwargs):
    if event in (TRACE, COMPILE):
        _EVENTS.append((event, kwargs.get("fun_name")))


def _on_event(event, **kwargs):
    if event in (HIT_EVENT, MISS_EVENT):
        _EVENTS.append((event, None))


jax.monitoring.register_event_duration_secs_listener(_on_duration)
jax.monitoring.register_event_listener(_on_event)

NET = fnn.mlp([5, 2])
LOSS = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
X = np.random.default_rng(0).normal(size=(12, 3)).astype(np.float32)
Y = np.arange(12) % 2
SETTINGS = dict(batch_size=4, epochs=2, validation_split=0.25, metrics=["accuracy"], verbose=0)


@pytest.fixture(scope="module")
def fp():
    return fingerprint()


def _train(kind="fit"):
    """(params, opt_state, histories) of a small fit or fit_many (two models), all seeded."""
    if kind == "fit":
        params = NET.init(jax.random.PRNGKey(0), (3,))
        r = fnn.fit(NET, params, fnn.optimizers.adam(1e-2), LOSS, X, Y, key=jax.random.PRNGKey(1), **SETTINGS)
        return r.params, r.opt_state, [r.history.history]
    params = jax.vmap(lambda k: NET.init(k, (3,)))(jax.random.split(jax.random.PRNGKey(0), 2))
    keys = jax.random.split(jax.random.PRNGKey(1), 2)
    r = fnn.fit_many(NET, params, fnn.optimizers.adam(1e-2), LOSS, X, Y, key=keys, **SETTINGS)
    return r.params, r.opt_state, [h.history for h in r.histories]


def _assert_identical(a, b):
    """Bit for bit: the same executable on the same inputs."""
    assert jax.tree.structure(a[:2]) == jax.tree.structure(b[:2])
    for u, v in zip(jax.tree.leaves(a[:2]), jax.tree.leaves(b[:2]), strict=True):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    assert a[2] == b[2] and "val_loss" in a[2][0] and len(a[2][0]["loss"]) == SETTINGS["epochs"]


def _epoch_work(since):
    """The epoch's traces and compilations among the events since index ``since``."""
    return [e for e in _EVENTS[since:] if e[0] in (TRACE, COMPILE) and e[1] in ("epoch", "jit(epoch)")]


# a run's programs in a store: its epoch, under its namespace (the optimizer state, zeros and
# hyperparameter values, is filled on the host: no program)
OWN = 1
# and the program of its arguments alone, one file for every namespace: the params' copy (the
# epochs' keys of a threefry key are derived on the host: no program)
SHARED = 1
# and the validation pass (network, loss and metrics: what the command's namespace says, not a
# run's), one file for every run of a command
COMMON = 1
PROGRAMS = OWN + SHARED + COMMON


def _files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --- a round trip -----------------------------------------------------------------------------


def test_a_new_store_on_the_same_folder_loads_the_epoch_without_tracing_or_compiling_it(tmp_path, fp):
    jax.clear_caches()  # whatever ran before: the reference fit traces and compiles its epoch
    start = len(_EVENTS)
    plain = _train()
    assert {e[0] for e in _epoch_work(start)} == {TRACE, COMPILE}  # what the check below looks for

    folder = tmp_path / "exe"
    start = len(_EVENTS)
    with using(ExecutableStore(str(folder), "ns", fingerprint_=fp)) as first_store:
        first = _train()
    # one program for both epochs, the validation pass and the params' copy: each compiled once,
    # written once
    assert (first_store.hits, first_store.misses) == (0, PROGRAMS)
    assert [e for e in _EVENTS[start:] if e[0] in (HIT_EVENT, MISS_EVENT)] == [(MISS_EVENT, None)] * PROGRAMS
    written = _files(folder)
    assert len(written) == PROGRAMS and all(name.endswith(".exe") for name in written)

    jax.clear_caches()  # what a second process starts from: nothing traced or compiled
    start = len(_EVENTS)
    with using(ExecutableStore(str(folder), "ns", fingerprint_=fp)) as second_store:
        second = _train()
    assert (second_store.hits, second_store.misses) == (PROGRAMS, 0)
    assert [e for e in _EVENTS[start:] if e[0] in (HIT_EVENT, MISS_EVENT)] == [(HIT_EVENT, None)] * PROGRAMS
    assert _epoch_work(start) == []
    assert not [e for e in _EVENTS[start:] if e[1] in ("epoch_keys", "copy_tree")]
    # the optimizer state is filled on the host from its init's trace (a few ms), never compiled
    assert not [e for e in _EVENTS[start:] if e[1] in ("opt_init", "jit(opt_init)") and e[0] != TRACE]
    # the caches were really cleared: the test's own init of the params compiled again
    assert [e for e in _EVENTS[start:] if e[0] == COMPILE]
    assert _files(folder) == written
    _assert_identical(first, plain)
    _assert_identical(second, plain)


# --- a different description is a miss, never another program's hit ----------------------------

_DOUBLE = jax.jit(lambda t: jax.tree.map(lambda v: v * 2, t))
_INC = jax.jit(lambda t: jax.tree.map(lambda v: v + 1, t))
A = jnp.arange(3, dtype=jnp.float32)


def test_the_store_trusts_its_description_so_equal_descriptions_share_a_program(tmp_path, fp):
    """The control for the next test: a fresh store that is handed another function under the
    same description runs the stored one, so each miss below is the key's doing."""
    ExecutableStore(str(tmp_path), "ns", fingerprint_=fp).call(_DOUBLE, "prog", ("s", 1), (A,))
    store = ExecutableStore(str(tmp_path), "ns", fingerprint_=fp)
    np.testing.assert_array_equal(store.call(_INC, "prog", ("s", 1), (A,)), [0.0, 2.0, 4.0])
    assert (store.hits, store.misses) == (1, 0) and len(_files(tmp_path)) == 1


def test_a_common_program_is_one_file_for_every_run_of_a_command_and_no_other(tmp_path, fp):
    """``common=True`` keys a program on the root store's namespace: every child (a run) of a
    command, and a later process's, loads the one file; another command's namespace, and a
    child's own (not common) program of the same role, are misses."""
    command = ExecutableStore(str(tmp_path), "command", fingerprint_=fp)
    command.child("run a").call(_DOUBLE, "prog", ("s", 1), (A,), common=True)
    later = ExecutableStore(str(tmp_path), "command", fingerprint_=fp)
    for store in (later.child("run b"), later.child("run a").child("deeper"), later):
        np.testing.assert_array_equal(store.call(_INC, "prog", ("s", 1), (A,), common=True), [0.0, 2.0, 4.0])
    assert (later.hits, later.misses) == (1, 0) and len(_files(tmp_path)) == 1  # loaded once, then held
    other = ExecutableStore(str(tmp_path), "other command", fingerprint_=fp)
    np.testing.assert_array_equal(other.child("run a").call(_INC, "prog", ("s", 1), (A,), common=True), [1.0, 2.0, 3.0])
    own = ExecutableStore(str(tmp_path), "command", fingerprint_=fp).child("run a")
    np.testing.assert_array_equal(own.call(_INC, "prog", ("s", 1), (A,)), [1.0, 2.0, 3.0])
    assert len(_files(tmp_path)) == 3


@pytest.mark.parametrize(
    "namespace, role, static, args",
    [
        ("other", "prog", ("s", 1), (A,)),
        ("ns", "other role", ("s", 1), (A,)),
        ("ns", "prog", ("s", 2), (A,)),
        ("ns", "prog", ("s", True), (A,)),  # True == 1, but another setting
        ("ns", "prog", ("s", 1.0), (A,)),
        ("ns", "prog", ("s", 1), (jnp.arange(4, dtype=jnp.float32),)),
        ("ns", "prog", ("s", 1), (A.astype(jnp.float64),)),
        ("ns", "prog", ("s", 1), ({"a": A},)),
    ],
    ids=["namespace", "role", "static", "static-bool", "static-float", "shape", "dtype", "tree"],
)
def test_another_description_compiles_its_own_program(tmp_path, fp, namespace, role, static, args):
    ExecutableStore(str(tmp_path), "ns", fingerprint_=fp).call(_DOUBLE, "prog", ("s", 1), (A,))
    store = ExecutableStore(str(tmp_path), namespace, fingerprint_=fp)
    out = store.call(_INC, role, static, args)
    expected = jax.tree.map(lambda v: np.asarray(v) + 1, args[0])  # not the stored program's 2 * v
    assert jax.tree.structure(out) == jax.tree.structure(expected)
    for u, v in zip(jax.tree.leaves(out), jax.tree.leaves(expected), strict=True):
        assert u.dtype == v.dtype
        np.testing.assert_array_equal(u, v)
    assert (store.hits, store.misses) == (0, 1) and len(_files(tmp_path)) == 2


def test_a_shared_program_is_one_file_for_every_namespace(tmp_path, fp):
    """``shared=True``: keyed on role, settings and arguments alone (a fresh store of another
    namespace loads it); the same call unshared is a program of the namespace."""
    first = ExecutableStore(str(tmp_path), "run a", fingerprint_=fp)
    np.testing.assert_array_equal(first.call(_DOUBLE, "prog", (), (A,), shared=True), [0.0, 2.0, 4.0])
    other = ExecutableStore(str(tmp_path), "run b", fingerprint_=fp)
    np.testing.assert_array_equal(other.call(_INC, "prog", (), (A,), shared=True), [0.0, 2.0, 4.0])  # the stored one
    assert (first.hits, first.misses, other.hits, other.misses) == (0, 1, 1, 0) and len(_files(tmp_path)) == 1
    np.testing.assert_array_equal(other.call(_INC, "prog", (), (A,)), [1.0, 2.0, 3.0])  # unshared: its own
    assert other.misses == 1 and len(_files(tmp_path)) == 2
    # the module-level call, and a child store, take the same key
    with using(ExecutableStore(str(tmp_path), "run c", fingerprint_=fp).child("x")) as child:
        np.testing.assert_array_equal(call(_INC, "prog", (), A, shared=True), [0.0, 2.0, 4.0])
    assert (child.hits, child.misses) == (1, 0)
    # another fingerprint is another process's program, shared or not
    stranger = ExecutableStore(str(tmp_path), "run a", fingerprint_="another process")
    np.testing.assert_array_equal(stranger.call(_INC, "prog", (), (A,), shared=True), [1.0, 2.0, 3.0])
    assert stranger.misses == 1


def test_a_callbacks_snapshot_is_fits_shared_copy_program(tmp_path, fp):
    """``ctx.snapshot`` (EarlyStopping's best weights, fnn train --save's last epoch) copies
    through the open store, as fit's own copy: one shared file, so a warm run traces neither."""
    from fnn.train._loop import copy_tree

    tree = ({"w": jax.device_put(np.arange(7.0))},)
    ctx = fnn.callbacks.FitContext(NET, None, None, None, 1, 1)
    with using(ExecutableStore(str(tmp_path), "run a", fingerprint_=fp)) as first:
        copied = ctx.snapshot(tree)
    assert (first.hits, first.misses) == (0, 1) and len(_files(tmp_path)) == 1
    np.testing.assert_array_equal(copied[0]["w"], np.arange(7.0))
    assert copied[0]["w"].unsafe_buffer_pointer() != tree[0]["w"].unsafe_buffer_pointer()
    with using(ExecutableStore(str(tmp_path), "run b", fingerprint_=fp)) as second:
        np.testing.assert_array_equal(copy_tree(tree)[0]["w"], np.arange(7.0))
    assert (second.hits, second.misses) == (1, 0)


def test_threads_asking_for_one_key_compile_it_once(tmp_path, fp):
    store = ExecutableStore(str(tmp_path), "ns", fingerprint_=fp)
    barrier = threading.Barrier(4)
    program = jax.jit(lambda t: t * 3)  # new to this process: a real compilation, long enough to overlap
    outs, errors = [], []

    def worker():
        try:
            barrier.wait(timeout=60)
            outs.append(np.asarray(store.call(program, "prog", (), (A,), shared=True)))
        except BaseException as err:  # reported below, in the test's thread
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == [] and len(outs) == 4 and all((o == [0.0, 3.0, 6.0]).all() for o in outs)
    assert (store.hits, store.misses) == (0, 1) and len(_files(tmp_path)) == 1


def test_one_store_tells_settings_apart_that_compare_equal(tmp_path, fp):
    """``static`` is compared by its description (``1``, ``True`` and ``1.0`` are three settings)
    within one store too, not only across processes."""
    store = ExecutableStore(str(tmp_path), "ns", fingerprint_=fp)
    np.testing.assert_array_equal(store.call(_DOUBLE, "prog", (1,), (A,)), [0.0, 2.0, 4.0])
    np.testing.assert_array_equal(store.call(_INC, "prog", (True,), (A,)), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(store.call(_INC, "prog", (1.0,), (A,)), [1.0, 2.0, 3.0])
    assert store.misses == 3 and len(_files(tmp_path)) == 3


def test_weak_and_strong_scalars_are_different_programs(tmp_path, fp):
    store = ExecutableStore(str(tmp_path), "ns", fingerprint_=fp)
    weak = store.call(_DOUBLE, "prog", (), (2.0,))  # a Python float: weakly typed
    strong = store.call(_DOUBLE, "prog", (), (np.float32(2.0),))
    assert weak.weak_type and not strong.weak_type and strong.dtype == np.float32
    assert float(weak) == float(strong) == 4.0
    assert store.misses == 2 and len(_files(tmp_path)) == 2


def test_another_fingerprint_misses(tmp_path, fp, monkeypatch):
    ExecutableStore(str(tmp_path), "ns", fingerprint_=fp).call(_DOUBLE, "prog", (), (A,))
    other = ExecutableStore(str(tmp_path), "ns", fingerprint_="another process")
    np.testing.assert_array_equal(other.call(_INC, "prog", (), (A,)), [1.0, 2.0, 3.0])
    assert (other.hits, other.misses) == (0, 1)

    # the fingerprint a store computes itself follows XLA_FLAGS (fnn's source held still)
    monkeypatch.setattr(E, "source_digest", lambda: "fnn source")
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    folder = str(tmp_path / "own")
    ExecutableStore(folder, "ns").call(_DOUBLE, "prog", (), (A,))
    same = ExecutableStore(folder, "ns")
    np.testing.assert_array_equal(same.call(_INC, "prog", (), (A,)), [0.0, 2.0, 4.0])
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=false")
    flagged = ExecutableStore(folder, "ns")
    np.testing.assert_array_equal(flagged.call(_INC, "prog", (), (A,)), [1.0, 2.0, 3.0])
    assert (same.hits, same.misses, flagged.hits, flagged.misses) == (1, 0, 0, 1)


def test_fingerprint_is_stable_and_follows_what_changes_programs(monkeypatch):
    assert fingerprint() == fingerprint()
    monkeypatch.setattr(E, "source_digest", lambda: "fnn source")
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    base = fingerprint()
    assert fingerprint() == base and len(base) == 64
    monkeypatch.setattr(E, "source_digest", lambda: "edited fnn source")
    assert fingerprint() != base
    monkeypatch.setattr(E, "source_digest", lambda: "fnn source")
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=false")
    assert fingerprint() != base
    monkeypatch.delenv("XLA_FLAGS")
    assert fingerprint() == base
    assert jax.config.jax_enable_x64  # conftest
    try:
        jax.config.update("jax_enable_x64", False)
        assert fingerprint() != base
    finally:
        jax.config.update("jax_enable_x64", True)
    assert fingerprint() == base
    # where caches live and what is logged change no program
    before = jax.config.jax_persistent_cache_min_entry_size_bytes
    try:
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", before + 12345)
        assert fingerprint() == base
    finally:
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", before)


# --- damaged files and folders that cannot be written ------------------------------------------


def _damage(kind, good):
    payload, out_tree = pickle.loads(E.unpack(good))
    flipped = bytearray(good)
    at = len(good) * 6 // 10  # inside the machine code: XLA ran such a file into SIGILL
    flipped[at : at + 256] = bytes(b ^ 0xFF for b in flipped[at : at + 256])
    return {
        "truncated": good[: len(good) // 2],
        "empty": b"",
        "garbage": bytes(range(256)) * 4,
        "not-a-pickle": E.pack(b"junk"),
        "not-an-executable": E.pack(pickle.dumps((b"not xla", out_tree))),
        "truncated-executable": E.pack(pickle.dumps((payload[: len(payload) // 2], out_tree))),
        "bytes-flipped": bytes(flipped),
        "older-format": b"fnn-executable-1" + pickle.dumps((payload, out_tree)),
    }[kind]


@pytest.mark.parametrize(
    "kind",
    [
        "truncated", "empty", "garbage", "not-a-pickle", "not-an-executable", "truncated-executable",
        "bytes-flipped", "older-format",
    ],
)  # fmt: skip
def test_an_unreadable_file_is_compiled_again_and_replaced(kind, tmp_path, fp):
    with using(ExecutableStore(str(tmp_path), "ns", fingerprint_=fp)):
        reference = _train()
    names = _files(tmp_path)
    assert len(names) == PROGRAMS
    for name in names:  # the epoch's and the params' copy's
        path = tmp_path / name
        path.write_bytes(_damage(kind, path.read_bytes()))
    with using(ExecutableStore(str(tmp_path), "ns", fingerprint_=fp)) as store:
        again = _train()
    assert (store.hits, store.misses) == (0, PROGRAMS)
    _assert_identical(again, reference)
    assert _files(tmp_path) == names  # replaced in place, no temporary file left behind
    with using(ExecutableStore(str(tmp_path), "ns", fingerprint_=fp)) as store:
        _assert_identical(_train(), reference)
    assert (store.hits, store.misses) == (PROGRAMS, 0)


def test_a_folder_that_cannot_be_written_costs_only_the_file(tmp_path, fp):
    reference = _train()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    folder = blocker / "executables"  # under a regular file: never a folder
    with using(ExecutableStore(str(folder), "ns", fingerprint_=fp)) as store:
        result = _train()
    _assert_identical(result, reference)
    assert (store.hits, store.misses) == (0, PROGRAMS)  # each compiled once, the epoch used twice
    assert not folder.exists() and blocker.read_text() == "" and _files(tmp_path) == ["a-file"]


# --- call and using ------------------------------------------------------------------------------


def test_call_without_a_store_or_with_jit_disabled_is_the_plain_call(tmp_path, fp):
    seen = []
    result = object()

    def jitted(*args):  # no .lower: the store would fail on it
        seen.append(args)
        return result

    assert current() is None
    assert call(jitted, "prog", ("s",), 1, "two") is result and seen == [(1, "two")]
    store = ExecutableStore(str(tmp_path / "exe"), "ns", fingerprint_=fp)
    with using(store) as opened:
        assert opened is store and current() is store
        with jax.disable_jit():
            assert call(jitted, "prog", ("s",), 3) is result
        with using(None):
            assert current() is None
            assert call(jitted, "prog", ("s",), 4) is result
        assert current() is store
        np.testing.assert_array_equal(call(_DOUBLE, "prog", (), A), [0.0, 2.0, 4.0])  # through the store
    assert current() is None
    assert seen == [(1, "two"), (3,), (4,)]
    assert (store.hits, store.misses) == (0, 1) and len(_files(tmp_path / "exe")) == 1


@pytest.mark.parametrize("flag", ["debug_nans", "debug_infs"])
def test_under_jax_nan_and_inf_debugging_programs_run_by_plain_jit(tmp_path, fp, flag, capsys):
    # only jit re-runs a program whose output holds a NaN or inf, to raise FloatingPointError
    # naming the operation; a stored executable called directly raised JAX's internal error
    store = ExecutableStore(str(tmp_path / "exe"), "ns", fingerprint_=fp)
    bad = jnp.array([0.0, np.nan if flag == "debug_nans" else np.inf])
    with using(store), getattr(jax, flag)(True):
        with pytest.raises(FloatingPointError, match=r"invalid value \((nan|inf)\) encountered in mul"):
            call(_DOUBLE, "prog", (), bad)
        np.testing.assert_array_equal(call(_DOUBLE, "prog", (), A), [0.0, 2.0, 4.0])
    assert (store.hits, store.misses) == (0, 0) and _files(tmp_path / "exe") == []
    assert "de-optimized" in capsys.readouterr().out


def test_the_store_closes_even_when_the_block_raises(tmp_path, fp):
    store = ExecutableStore(str(tmp_path), "ns", fingerprint_=fp)
    with pytest.raises(RuntimeError, match="inside"), using(store):
        assert current() is store
        raise RuntimeError("inside")
    assert current() is None


# --- threads -------------------------------------------------------------------------------------


def test_threads_train_at_once_each_through_its_own_child_store(tmp_path, fp):
    """Two fit_many runs side by side, as ``fnn compare`` warms its runs up (stacked models: the
    CLI's program), then a fresh store on the same folder: one run read back, one new."""
    reference = _train("fit_many")
    parent = ExecutableStore(str(tmp_path), "command", fingerprint_=fp)
    barrier = threading.Barrier(2)
    results, seen, errors = {}, {}, []

    def worker(i):
        try:
            seen[f"before {i}"] = current()  # a new thread does not see the starting thread's store
            child = parent.child(f"run {i}")
            with using(child):
                barrier.wait(timeout=60)
                results[i] = _train("fit_many")
                seen[i] = (current(), child)
        except BaseException as err:  # reported below, in the test's thread
            errors.append(err)

    with using(parent):
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert current() is parent
    assert errors == [] and not any(t.is_alive() for t in threads)
    assert seen["before 0"] is None and seen["before 1"] is None
    assert all(seen[i][0] is seen[i][1] for i in range(2)) and seen[0][1] is not seen[1][1]
    # each run's own files and one of each shared and common program (compiled by one thread while
    # the other waited); the children's counts are the parent's
    once = SHARED + COMMON
    assert (parent.hits, parent.misses) == (0, 2 * OWN + once) and len(_files(tmp_path)) == 2 * OWN + once
    for i in range(2):
        _assert_identical(results[i], reference)

    fresh = ExecutableStore(str(tmp_path), "command", fingerprint_=fp)
    with using(fresh.child("run 1")):
        _assert_identical(_train("fit_many"), reference)
    with using(fresh.child("run 2")):  # a run the first command did not have
        _assert_identical(_train("fit_many"), reference)
    # the shared and common programs loaded once for both runs
    assert (fresh.hits, fresh.misses) == (PROGRAMS, OWN) and len(_files(tmp_path)) == 3 * OWN + once
    assert not [n for n in os.listdir(tmp_path) if not n.endswith(".exe") or n.startswith(".tmp-")]


# a fresh process with JAX's persistent cache in argv[1], for every program however small
_WITH_JAX_CACHE = """
import json, sys
import jax, numpy as np
jax.config.update("jax_compilation_cache_dir", sys.argv[1])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
from fnn._executables import ExecutableStore, call, using
"""

_JAX_CACHE_RUN = (
    _WITH_JAX_CACHE
    + """
# random bits and a loop: the kind of program whose re-serialized copy lost its functions
program = jax.jit(
    lambda k: jax.random.uniform(k, (7, 5)).sum() + jax.random.normal(jax.random.fold_in(k, 1), (9,)).sum()
)
key = jax.random.PRNGKey(0)
reference = float(program(key))  # compiled by XLA and written to JAX's cache
out = {}
for step, namespace in enumerate(["another", "another", "first"]):
    jax.clear_caches()  # a new process but for JAX's persistent cache, which answers from here on
    with using(ExecutableStore(sys.argv[2], namespace, fingerprint_="fp")) as store:
        value = float(call(program, "role", (), key))
    out[step] = {"value": value, "hits": store.hits, "misses": store.misses}
jax.clear_caches()
plain = float(program(key))  # read from JAX's cache by plain jit, then kept in its in-memory cache
with using(ExecutableStore(sys.argv[2], "after plain jit", fingerprint_="fp")) as store:
    value = float(call(program, "role", (), key))  # the in-memory cache gives that copy back
out[3] = {"value": value, "hits": store.hits, "misses": store.misses}
print(json.dumps({"reference": reference, "runs": out}))
"""
)


@pytest.mark.slow
def test_an_executable_from_jax_cache_is_run_but_never_stored(tmp_path):
    """XLA:CPU cannot serialize again an executable that JAX's persistent cache deserialized: the
    copy loads, then fails on its first call ("Function ... not found"). A store miss that JAX's
    cache answers (the same program under another namespace, or from another version of fnn)
    runs the program and writes nothing; the next run misses again and runs it again. So does
    a miss that JAX's in-memory cache answers with such a copy, which plain ``jit`` read from
    JAX's cache before (the compilation then records no event of JAX's cache)."""
    jax_cache, folder = tmp_path / "jax", tmp_path / "store"
    result = run_python_json(_JAX_CACHE_RUN, str(jax_cache), str(folder), timeout=120)
    runs = [result["runs"][str(i)] for i in range(4)]
    assert [r["value"] for r in runs] == [result["reference"]] * 4
    assert [(r["hits"], r["misses"]) for r in runs] == [(0, 1)] * 4
    assert not folder.exists() or list(folder.iterdir()) == []


_SAME_TEXT_RUN = (
    _WITH_JAX_CACHE
    + """
# two functions, one program text (the same name, arithmetic and leaf names), other output trees
pair = jax.jit(lambda x: (x + 1, x * 2))
named = jax.jit(lambda x: [x + 1, x * 2])  # a list: the text names the leaves result[0], result[1] too
other_text = jax.jit(lambda x: (x - 1, x * 2))
x = np.arange(3, dtype=np.float32)
out = {}
parent = ExecutableStore(sys.argv[2], "command", fingerprint_="fp")
if sys.argv[3] == "one process":
    for step, (namespace, fn) in enumerate([("a", pair), ("b", named), ("c", other_text)]):
        with using(parent.child(namespace)):
            value = call(fn, "role", (), x)
        out[step] = {"tree": str(jax.tree.structure(value))}
else:
    for step, namespace in enumerate(["b", "a", "c"]):
        jax.clear_caches()
        with using(parent.child(namespace)):
            value = call(pair, "role", (), x)  # the store's program, whatever this function says
        leaves, tree = jax.tree.flatten(value)
        out[step] = {"tree": str(tree), "values": [np.asarray(v).tolist() for v in leaves]}
out["counts"] = [parent.hits, parent.misses]
print(json.dumps(out))
"""
)


@pytest.mark.slow
def test_a_program_compiled_here_is_written_under_each_key_that_lowers_to_it(tmp_path):
    """One process: run "a" compiles a program and writes it; run "b" lowers another function to
    the same text, which JAX's cache answers with an executable that cannot be serialized again,
    so the one compiled for "a" is written under "b"'s key, with "b"'s own output tree; run "c"
    (another text) is compiled and written as usual. The next process loads all three."""
    jax_cache, folder = str(tmp_path / "jax"), str(tmp_path / "store")
    first = run_python_json(_SAME_TEXT_RUN, jax_cache, folder, "one process", timeout=120)
    assert first["counts"] == [0, 3] and len(_files(tmp_path / "store")) == 3
    assert first["0"]["tree"].startswith("PyTreeDef((") and first["1"]["tree"].startswith("PyTreeDef([")
    second = run_python_json(_SAME_TEXT_RUN, jax_cache, folder, "next process", timeout=120)
    assert second["counts"] == [3, 0]
    b, a, c = second["0"], second["1"], second["2"]
    assert b["tree"].startswith("PyTreeDef([")  # its own output tree, from the executable compiled for "a"
    assert a["tree"].startswith("PyTreeDef((") and c["tree"].startswith("PyTreeDef((")
    assert b["values"] == [[1.0, 2.0, 3.0], [0.0, 2.0, 4.0]] == a["values"]
    assert c["values"] == [[-1.0, 0.0, 1.0], [0.0, 2.0, 4.0]]
