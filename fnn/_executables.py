"""Compiled programs kept on disk as executables, so that a second run skips tracing too.

JAX's persistent compilation cache skips XLA's compilation but still traces and lowers every
program to find its key: for ``fnn compare``'s eleven epochs that is about half of a warm run.
An :class:`ExecutableStore` keys a program on a *description* of it instead: a namespace that
the caller vouches for (the command line's settings, which build every object the program
closes over) plus this process's fingerprint (fnn's own source, the jax and jaxlib versions,
the device, the host CPU, ``XLA_FLAGS`` and JAX's configuration) plus the program's role and
its arguments' structure, shapes, dtypes and placements. A hit loads the serialized executable
(``jax.experimental.serialize_executable``) without tracing anything; a miss compiles through
``jit`` as usual and writes the executable for next time.

A miss whose compilation JAX's persistent cache answered is run but, as a rule, not written:
XLA:CPU cannot serialize again an executable it deserialized (the copy loads, then fails on its
first call: "Function ... not found"), so only executables compiled in this process are stored.
So is one that JAX's in-memory cache gave back (a program this process ran by plain ``jit``
before) once the process has read anything from JAX's cache: it may be such a copy.
The exception is a program that this process compiled itself under another key and that lowers
to the same text (two runs whose programs lower alike, each under its run's namespace): the
executable compiled here is written under the new key too. Any other such program (the same one
under another namespace in a later process: ``fnn compare --early-stopping 6`` after
``--early-stopping 5``) keeps JAX's warm cost, tracing and lowering, on every run.

Programs that depend on their arguments alone (a module-level jitted function with no closure:
copying a tree, an epoch's keys) are called with ``shared=True`` and kept once, whatever the
namespace.

Only callers that can name everything a program depends on may open a store (the CLI does,
for the objects it builds from strings): a library function compiled from a user's closures
has no such description, so :func:`call` without an open store is plain ``jitted(*args)``.
Like JAX's own cache, the folder is trusted: loading an executable runs its code.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import os
import pickle
import platform
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np
from jax.experimental import serialize_executable

from fnn._validate import any_traced

_FORMAT = b"fnn-executable-2"
# A file is _FORMAT, the SHA-256 of its body, and the body (the pickled executable and output
# tree): XLA loads a damaged executable without a check and runs it into SIGILL or SIGSEGV, so a
# file whose body does not match its digest is compiled again instead.
_DIGEST_SIZE = hashlib.sha256().digest_size


def pack(body: bytes) -> bytes:
    """A file's bytes for ``body``: the format, the body's digest, the body."""
    return _FORMAT + hashlib.sha256(body).digest() + body


def unpack(blob: bytes) -> bytes:
    """The body of a file :func:`pack` wrote; ValueError for another format or a body that is
    not the one its digest was taken of (a damaged file)."""
    if not blob.startswith(_FORMAT):
        raise ValueError("not an fnn executable")
    digest, body = blob[len(_FORMAT) : len(_FORMAT) + _DIGEST_SIZE], blob[len(_FORMAT) + _DIGEST_SIZE :]
    if hashlib.sha256(body).digest() != digest:
        raise ValueError("damaged: its contents do not match its digest")
    return body


# jax.monitoring events, one per program looked up: read from the store, or compiled and written
HIT_EVENT = "/fnn/executable_store/hits"
MISS_EVENT = "/fnn/executable_store/misses"
_STORE: contextvars.ContextVar[ExecutableStore | None] = contextvars.ContextVar("fnn_executable_store", default=None)
# JAX settings that do not change a compiled program (where caches live, what gets logged).
_IGNORED_CONFIG = ("cache", "log", "traceback", "pprint", "dump")
_JAX_CACHE_HIT = "/jax/compilation_cache/cache_hits"
_BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"
# Per thread (JAX records both events in the compiling thread): ``hits``, executables read from
# JAX's persistent cache; ``compiles``, executables XLA built or JAX's cache gave (each records
# this once; one that JAX's in-memory cache gives back records neither). And whether any
# executable of this process came from JAX's persistent cache: the listeners are registered
# when fnn is imported, before the command line compiles anything.
_jax_events = threading.local()
_read_from_jax_cache = threading.Event()


def _count_jax_cache_hit(event: str, **_: Any) -> None:
    if event == _JAX_CACHE_HIT:
        _jax_events.hits = getattr(_jax_events, "hits", 0) + 1
        _read_from_jax_cache.set()


def _count_backend_compile(event: str, duration_secs: float, **_: str | int) -> None:
    if event == _BACKEND_COMPILE:
        _jax_events.compiles = getattr(_jax_events, "compiles", 0) + 1


jax.monitoring.register_event_listener(_count_jax_cache_hit)
jax.monitoring.register_event_duration_secs_listener(_count_backend_compile)


# Programs are traced and lowered one at a time (compiled side by side): tracing holds Python's
# lock, so two traces interleaved both end late, and the first program's compilation, which
# releases it, could have started at half the wait.
_TRACING = threading.RLock()  # re-entered where a trace runs a stored program of its own


def _compile_fresh(jitted: Any, args: tuple) -> tuple[Any, bool, Any]:
    """``(jitted compiled for args, whether XLA compiled it in this process, the lowered
    program)``. False where JAX's persistent cache answered, which makes an executable that
    cannot be serialized again; and where JAX's in-memory cache gave back an executable (the
    same program run by plain ``jit`` before) in a process that has read from JAX's persistent
    cache, as that one may have been: only the store's own records (``_compiled_here``) vouch
    for it then."""
    with _TRACING:
        lowered = jitted.lower(*args)  # tracing may compile (and read) small programs of its own
    hits, compiles = getattr(_jax_events, "hits", 0), getattr(_jax_events, "compiles", 0)
    compiled = lowered.compile()
    if getattr(_jax_events, "hits", 0) != hits:
        return compiled, False, lowered
    built_now = getattr(_jax_events, "compiles", 0) != compiles
    return compiled, built_now or not _read_from_jax_cache.is_set(), lowered


def _program_digest(lowered: Any, args: tuple) -> tuple:
    """What makes two lowered programs one executable in this process: the program's text and
    its arguments' shapes, dtypes, weak types and placements (the tree structure aside, which
    a load takes from the arguments)."""
    return hashlib.sha256(lowered.as_text().encode()).hexdigest(), _signature(args)[1:]


@functools.cache
def source_digest() -> str:
    """A digest of every source file of the fnn package: another version of fnn (or an edited
    checkout) never loads this one's programs."""
    root = os.path.dirname(os.path.abspath(__file__))
    h = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                h.update(os.path.relpath(path, root).encode())
                with open(path, "rb") as f:
                    h.update(f.read())
    return h.hexdigest()


def _cpu_description() -> str:
    """The host CPU (model and instruction-set flags on Linux): an executable compiled for one
    CPU may use instructions another lacks."""
    text = platform.machine() + " " + platform.processor()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
        wanted = ("model name", "flags", "Features", "CPU implementer", "CPU part")
        seen = {}
        for line in lines:
            key = line.split(":", 1)[0].strip()
            if key in wanted and key not in seen:
                seen[key] = line
        text += "\n" + "\n".join(seen[k] for k in sorted(seen))
    return text


def fingerprint() -> str:
    """Everything of this process, besides the program itself, that a compiled program depends
    on: fnn's source, jax and jaxlib, the backend and its devices, the host CPU, ``XLA_FLAGS``
    and every JAX setting but where caches live and what is logged."""
    import jaxlib

    devices = jax.devices()
    config = sorted(
        (k, repr(v)) for k, v in jax.config.values.items() if not any(word in k for word in _IGNORED_CONFIG)
    )
    parts = [
        source_digest(),
        jax.__version__,
        jaxlib.__version__,
        devices[0].platform,
        devices[0].device_kind,
        devices[0].client.platform_version,
        str(len(devices)),
        _cpu_description(),
        os.environ.get("XLA_FLAGS", ""),
        repr(config),
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _describe_value(v: Any) -> str:
    """A description of a static setting that is the same in every process: plain values by
    repr, anything else by its type's name and its repr unless that holds a memory address
    (then by the type's name alone: the store's namespace must say the rest)."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return repr(v)
    if isinstance(v, tuple):
        return "(" + ",".join(_describe_value(x) for x in v) + ")"
    t = type(v)
    text = repr(v)
    return f"<{t.__module__}.{t.__qualname__}>" if "0x" in text else f"<{t.__module__}.{t.__qualname__}:{text}>"


def _signature(args: tuple) -> tuple:
    """The arguments' tree structure and, per leaf, shape, dtype, weak type and placement (a
    hashable tuple: looked up on every call, described in full once)."""
    leaves, tree = jax.tree.flatten(args)
    sig: list[Any] = [tree]
    for leaf in leaves:
        if isinstance(leaf, jax.Array):
            sig.append((leaf.shape, leaf.dtype, leaf.weak_type, leaf.sharding))
        elif isinstance(leaf, np.ndarray):
            sig.append((leaf.shape, leaf.dtype, False, None))
        else:
            aval = jax.typeof(leaf)
            sig.append((aval.shape, aval.dtype, getattr(aval, "weak_type", False), None))
    return tuple(sig)


class ExecutableStore:
    """Executables in ``folder``, keyed on ``namespace`` (what the caller vouches describes the
    objects its programs close over), this process's :func:`fingerprint`, the program's role
    and its arguments. Thread-safe; files are written atomically and a file that cannot be
    read back (truncated, from another version) is compiled again and replaced.

    A *shared* program (:meth:`call` with ``shared=True``: a module-level function of its
    arguments alone, such as a tree copy) is keyed without the namespace, so every namespace
    loads the one file. A program compiled in this process and then lowered again to the same
    text under another key (another namespace's identical optimizer init, which JAX's cache
    answers) is written under that key too, from the executable compiled here."""

    def __init__(self, folder: str, namespace: str, fingerprint_: str | None = None) -> None:
        self.folder = folder
        root = fingerprint_ or fingerprint()
        self.prefix = hashlib.sha256((root + "\0" + namespace).encode()).hexdigest()
        self._shared_prefix = hashlib.sha256((root + "\0shared").encode()).hexdigest()
        self._common_prefix = self.prefix  # a child's is its root's: see call's ``common``
        self._loaded: dict[str, Any] = {}  # key -> executable, this process's (children share it)
        self._lock = threading.Lock()
        self._counts = {"hits": 0, "misses": 0}
        self._keys: dict[tuple, str] = {}
        # _program_digest -> serialized executable, of the programs compiled in this process
        self._compiled_here: dict[tuple, bytes] = {}
        self._pending: dict[str, threading.Lock] = {}  # key -> held while it loads or compiles

    @property
    def hits(self) -> int:
        """Executables read from the folder (by this store and its children)."""
        return self._counts["hits"]

    @property
    def misses(self) -> int:
        """Executables compiled (and written, unless JAX's cache gave them; by this store and
        its children)."""
        return self._counts["misses"]

    def child(self, namespace: str) -> ExecutableStore:
        """A store in the same folder for programs described further by ``namespace`` (one run
        of several in a command), sharing this one's fingerprint, loaded executables and counts."""
        store = ExecutableStore(self.folder, namespace, fingerprint_=self.prefix)
        store._loaded, store._lock, store._counts = self._loaded, self._lock, self._counts
        store._shared_prefix, store._compiled_here = self._shared_prefix, self._compiled_here
        store._common_prefix, store._pending = self._common_prefix, self._pending
        return store

    def key(self, role: str, static: tuple, args: tuple, shared: bool = False, common: bool = False) -> str:
        """The file name (a sha256) of the program ``role`` with settings ``static`` for
        ``args`` (``shared``: whatever the namespace; ``common``: in the root store's
        namespace, whatever a child's adds); memoised on the arguments' signature, as every
        epoch asks again."""
        # by description, not by value: 1, 1.0 and True are equal keys of a dict
        lookup = (role, _describe_value(static), _signature(args), shared, common)
        key = self._keys.get(lookup)
        if key is None:
            prefix = self._shared_prefix if shared else self._common_prefix if common else self.prefix
            text = "\0".join([prefix, role, lookup[1], repr(lookup[2])])
            key = self._keys[lookup] = hashlib.sha256(text.encode()).hexdigest()
        return key

    def call(
        self, jitted: Any, role: str, static: tuple, args: tuple, shared: bool = False, common: bool = False
    ) -> Any:
        key = self.key(role, static, args, shared, common)
        with self._lock:
            compiled = self._loaded.get(key)
            if compiled is None:
                pending = self._pending.setdefault(key, threading.Lock())
        if compiled is None:
            with pending:  # one thread loads or compiles a key; the others wait for it
                with self._lock:
                    compiled = self._loaded.get(key)
                if compiled is None:
                    compiled = self._load_or_compile(key, jitted, args)
        return compiled(*args)

    def _load_or_compile(self, key: str, jitted: Any, args: tuple) -> Any:
        compiled = self._load(key, args)
        event = "hits"
        if compiled is None:
            event = "misses"
            compiled, fresh, lowered = _compile_fresh(jitted, args)
            if fresh:
                payload = self._save(key, compiled)
                if payload is not None:
                    with self._lock:
                        self._compiled_here[_program_digest(lowered, args)] = payload
            elif self._compiled_here:  # JAX's cache answered: this process may hold the program
                digest = _program_digest(lowered, args)
                with self._lock:
                    payload = self._compiled_here.get(digest)
                if payload is not None:
                    self._write(key, payload, compiled.out_tree)
        with self._lock:
            self._loaded[key] = compiled
            self._counts[event] += 1
        jax.monitoring.record_event(HIT_EVENT if event == "hits" else MISS_EVENT)
        return compiled

    def _path(self, key: str) -> str:
        return os.path.join(self.folder, key + ".exe")

    def _load(self, key: str, args: tuple) -> Any:
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                blob = f.read()
        except OSError:
            return None
        with contextlib.suppress(OSError):  # a file's time is its last use: the CLI prunes unused ones
            os.utime(path)
        try:
            payload, out_tree = pickle.loads(unpack(blob))
            in_tree = jax.tree.structure((args, {}))
            return serialize_executable.deserialize_and_load(payload, in_tree, out_tree)
        except Exception:  # any unreadable file: compile again and replace it
            with contextlib.suppress(OSError):
                os.remove(path)
            return None

    def _save(self, key: str, compiled: Any) -> bytes | None:
        """Writes ``compiled`` under ``key``; returns its serialized executable (None where it
        cannot be serialized)."""
        try:
            payload, _, out_tree = serialize_executable.serialize(compiled)
        except Exception:
            return None
        self._write(key, payload, out_tree)
        return payload

    def _write(self, key: str, payload: bytes, out_tree: Any) -> None:
        try:
            blob = pack(pickle.dumps((payload, out_tree)))
            os.makedirs(self.folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".exe")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(blob)
                os.replace(tmp, self._path(key))
            except BaseException:
                with contextlib.suppress(OSError):
                    os.remove(tmp)
                raise
        except Exception:  # a cache that cannot be written only costs the next run its time
            return


def current() -> ExecutableStore | None:
    """The store open in this thread (:func:`using`), or None."""
    return _STORE.get()


@contextlib.contextmanager
def using(store: ExecutableStore | None) -> Iterator[ExecutableStore | None]:
    """Opens ``store`` for the programs :func:`call` runs in this thread (None: none)."""
    token = _STORE.set(store)
    try:
        yield store
    finally:
        _STORE.reset(token)


def debugging_nonfinite() -> bool:
    """Whether ``jax_debug_nans`` or ``jax_debug_infs`` is on here (set, or by its context
    manager): JAX then checks every program's outputs and re-runs one holding a NaN or inf."""
    return bool(getattr(jax.config, "jax_debug_nans", False) or getattr(jax.config, "jax_debug_infs", False))


def call(jitted: Callable, role: str, static: tuple, *args: Any, shared: bool = False, common: bool = False) -> Any:
    """``jitted(*args)``, through the open store if there is one. ``static``: the program's
    settings that are not arguments (compared by :func:`_describe_value`), besides what the
    store's namespace already says; ``shared``: the program depends on ``role``, ``static``
    and the arguments alone (a module-level function, no closure), so it is kept once for
    every namespace; ``common``: it depends on nothing a child store's namespace adds (one run's
    optimizer: the validation pass), so it is kept once for every run of a command."""
    store = _STORE.get()
    # Under JAX's NaN/inf debugging only jit re-runs a program whose output holds a NaN or inf,
    # to name the operation (FloatingPointError); a stored executable called directly raises
    # JAX's internal error, naming nothing.
    if store is None or getattr(jax.config, "jax_disable_jit", False) or debugging_nonfinite():
        return jitted(*args)
    if any_traced(args):
        return jitted(*args)  # called under the user's jit: no executable, jit traces into it
    return store.call(jitted, role, static, args, shared, common)
