"""The compilation cache the ``fnn`` commands share: its folder (``--cache-dir``, ``--no-cache``,
``$FNN_CACHE_DIR``), JAX's persistent cache pointed there, what a command's executable store is
keyed on, and the pruning of what no run used for a month.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import stat
import time
import warnings
from collections.abc import Iterator
from typing import Any

import jax
from jax.experimental.compilation_cache.compilation_cache import reset_cache

from fnn._executables import ExecutableStore, source_digest
from fnn._validate import path as check_path
from fnn.cli._common import UsageError, log_line


def default_cache_dir() -> str:
    """Where the CLI keeps JAX's persistent compilation cache: ``$FNN_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/fnn/jax``, else ``~/.cache/fnn/jax``."""
    if os.environ.get("FNN_CACHE_DIR"):
        return os.environ["FNN_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "fnn", "jax")


def default_cache_off() -> str | None:
    """``FNN_COMPILATION_CACHE=...`` as set in the environment where it turns the default cache
    folder off (0, false, no, off), else None."""
    value = os.environ.get("FNN_COMPILATION_CACHE", "")
    return f"FNN_COMPILATION_CACHE={value}" if value.strip().lower() in ("0", "false", "no", "off") else None


def _default_in_use() -> str:
    """The default of ``--cache-dir`` as this environment makes it, for ``--help``."""
    off = default_cache_off()
    if off is not None:
        return (
            f"none: the cache is off, as {off} in the environment says (unset, the folder would be "
            f"{default_cache_dir()}); --cache-dir DIR still uses DIR"
        )
    return f"{default_cache_dir()}; $FNN_CACHE_DIR sets it, FNN_COMPILATION_CACHE=0 turns the default off"


def add_cache_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cache-dir",
        default=None,
        metavar="DIR",
        help="the compilation cache (JAX's persistent cache, and every program a run compiles in its "
        "executables folder): a second run compiles nothing the first compiled, and traces nothing "
        f"(default {_default_in_use()}; executables unused for {CACHE_KEPT_DAYS} days, and JAX's caches of "
        "other versions of fnn unused as long, are removed; JAX's entries for this version are kept)",
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="neither read nor write a compilation cache: fnn's, or one of JAX's own "
        "($JAX_COMPILATION_CACHE_DIR, which FNN_COMPILATION_CACHE=0 leaves on)",
    )


def cache_dir(args) -> str | None:
    """The cache folder this run uses, or None: ``--no-cache`` wins, then ``--cache-dir``, then
    ``FNN_COMPILATION_CACHE=0``, then the default."""
    if getattr(args, "no_cache", True):
        return None
    if args.cache_dir is not None:
        return args.cache_dir
    if default_cache_off() is not None:
        return None
    return default_cache_dir()


DEFAULT_CACHE = "the default cache folder"


def cache_dir_source(args) -> str:
    """Who chose the cache folder, as its messages name it: ``--cache-dir``, ``FNN_CACHE_DIR``
    (a folder the user never typed on this command line), or the default."""
    if getattr(args, "cache_dir", None) is not None:
        return "--cache-dir"
    return "FNN_CACHE_DIR" if os.environ.get("FNN_CACHE_DIR") else DEFAULT_CACHE


def default_cache_problem(args, path: str) -> str | None:
    """Why the default cache folder ``path`` cannot be written (None if it can, or if the folder
    was chosen: ``--cache-dir`` or ``$FNN_CACHE_DIR``, which :func:`use_compilation_cache`
    refuses instead)."""
    if cache_dir_source(args) != DEFAULT_CACHE:
        return None
    try:
        check_path(DEFAULT_CACHE, path, writable=True, folder=True)
    except ValueError as err:
        return str(err)
    return None


# What use_compilation_cache sets: the folder, and no threshold of compile time or size; and
# what --no-cache sets (turn_off_compilation_cache).
CACHE_SETTINGS = (
    "jax_compilation_cache_dir",
    "jax_persistent_cache_min_compile_time_secs",
    "jax_persistent_cache_min_entry_size_bytes",
    "jax_enable_compilation_cache",
)


@contextlib.contextmanager
def cache_settings_restored():
    """A block after which JAX's persistent-cache settings (:data:`CACHE_SETTINGS`) are those
    before it, whether it returns or raises: ``main`` run in-process leaves the program's own
    later compilations in the program's own cache folder (or none), under its own thresholds,
    not in fnn's, whose prune may remove them. With the folder put back, JAX's cache is reset
    too: it would otherwise keep writing to the folder it opened, fnn's
    (:func:`use_compilation_cache`). What compiles inside must have ended by then, or it could
    land in the caller's folder: ``fnn compare`` waits for its compilations on Ctrl-C when
    ``main`` runs in-process (``fnn.cli._compare.compile_concurrently``)."""
    before = {name: getattr(jax.config, name) for name in CACHE_SETTINGS}
    try:
        yield
    finally:
        changed = [name for name, value in before.items() if getattr(jax.config, name) != value]
        for name in changed:
            jax.config.update(name, before[name])
        if CACHE_SETTINGS[0] in changed or CACHE_SETTINGS[3] in changed:
            reset_cache()


def use_compilation_cache(path: str, source: str) -> None:
    """JAX's persistent compilation cache in ``path``, for every program however small or quick
    to compile (the CLI compiles many small ones): the settings :data:`CACHE_SETTINGS`, which
    :func:`cache_settings_restored` puts back (``main`` run in-process). JAX opens its cache's
    folder at the first compilation that uses it and keeps it, whatever the setting says later
    (JAX 0.10), so the cache is reset here: the next compilation opens this folder, also in a
    process that compiled before. A folder that cannot be written is a UsageError naming
    ``source`` (:func:`cache_dir_source`): ``FNN_CACHE_DIR='...'`` for the environment's, which
    no option on the command line shows.

    The cache lives in a subfolder per version of fnn's source (``jax-<digest>``): XLA:CPU
    cannot serialize again an executable read from JAX's cache, so the executable store writes
    only what was compiled in the process (``fnn._executables``), and a new version of fnn must
    compile its programs, not read the old version's, for the store to keep them."""
    try:
        path = check_path(source, path, writable=True, folder=True)
    except ValueError as err:
        words = str(err)
        if source == "FNN_CACHE_DIR":  # the variable as it was set, not as if it were an option
            words = words.replace(f"{source} {path!r}", f"{source}={path!r}", 1)
        raise UsageError(f"{words}; give another or --no-cache") from None
    current = os.path.join(path, "jax-" + source_digest()[:16])
    for name, value in zip(CACHE_SETTINGS[:3], (current, 0.0, 0), strict=True):
        jax.config.update(name, value)
    reset_cache()
    # The folder's time is its last use (prune_cache reads it). A missing one is JAX's cache's to
    # create when it first writes, so a usage error found after this leaves no folder behind.
    with contextlib.suppress(OSError):
        os.utime(current)
    prune_cache(path, current)


_CACHE_WARNING = re.compile(r"Error (reading|writing) persistent compilation cache entry for '([^']*)': (.*)", re.S)


@contextlib.contextmanager
def cache_warnings_in_one_line(command: str) -> Iterator[None]:
    """JAX's warnings of a cache entry it could not read or write (a full disk: one per program,
    each two lines with JAX's source line) as one line of the command's, once per kind; every
    other warning as Python shows it. An entry that cannot be read (cut short by a full disk) is
    removed, so that a later run compiles and stores it again (JAX never replaces it)."""
    shown: set[str] = set()
    previous = warnings.showwarning

    def show(message: Any, category: Any, filename: Any, lineno: Any, file: Any = None, line: Any = None) -> None:
        found = _CACHE_WARNING.match(str(message))
        if found is None:
            previous(message, category, filename, lineno, file, line)
            return
        kind, key, cause = found.groups()
        # read as an attribute: JAX refuses config.read of a flag that has a context manager
        folder = getattr(jax.config, CACHE_SETTINGS[0])
        if kind == "reading" and folder and _JAX_ENTRY.fullmatch(key + "-cache"):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(folder, key + "-cache"))
        if kind not in shown:
            shown.add(kind)
            what = "read a program from" if kind == "reading" else "store a program in"
            then = "compiles it" if kind == "reading" else "goes on without storing it"
            log_line(f"fnn {command}: warning: could not {what} the compilation cache ({cause}); the run {then}")

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


def turn_off_compilation_cache() -> None:
    """``--no-cache``: no persistent compilation cache for the run, not even one of JAX's own
    that the environment or the calling program set up (``$JAX_COMPILATION_CACHE_DIR``), so each
    program is compiled as in a first run. :func:`cache_settings_restored` puts the setting back
    and resets JAX's cache again."""
    jax.config.update(CACHE_SETTINGS[3], False)
    reset_cache()  # JAX decides once whether its cache is used, at the first compilation


# What no run used for this long leaves the cache when a command starts: otherwise it only grows
# (every version of fnn's source and every command's settings compile programs of their own).
CACHE_KEPT_DAYS = 30
_DAY = 24 * 3600.0


# The names fnn and JAX write in the cache folder, and only those: the folder may be one of
# the user's (--cache-dir, $FNN_CACHE_DIR), whose own files are never touched, whatever their
# names or ages. JAX's folder per version of fnn's source (use_compilation_cache); in it, JAX's
# LRUCache's entries (``<module>-<sha256>-cache``, ``-atime`` beside them, its ``.lockfile``);
# the executable store's files (``<sha256>.exe``) and tempfile.mkstemp's (``.tmp-<8>.exe``,
# fnn._executables).
_JAX_FOLDER = re.compile(r"jax-[0-9a-f]{16}")
_JAX_ENTRY = re.compile(r".+-[0-9a-f]{64}-(cache|atime)|\.lockfile")
# On a GPU, JAX (jax_persistent_cache_enable_xla_caches, by default) points XLA's per-fusion
# autotune cache into the same folder: XLA writes ``<base64url of a sha256>.textproto`` there,
# through ``tmp/tmp_[per_fusion_]cache_<that hash>_<nanoseconds>.textproto`` renamed into place.
_AUTOTUNE = "xla_gpu_per_fusion_autotune_cache_dir"
_AUTOTUNE_ENTRY = re.compile(r"[A-Za-z0-9_-]{43}=?\.textproto")
_AUTOTUNE_TEMP = re.compile(r"tmp_(per_fusion_)?cache_[A-Za-z0-9_-]{43}=?_[0-9]+\.textproto")
_EXECUTABLE = re.compile(r"[0-9a-f]{64}\.exe")
_EXECUTABLE_TEMP = re.compile(r"\.tmp-[a-z0-9_]{8}\.exe")


def prune_cache(path: str, current: str, now: float | None = None) -> list[str]:
    """Removes from the cache folder ``path`` what no run used for :data:`CACHE_KEPT_DAYS` days:
    JAX's folders of other versions of fnn's source (``jax-<16 hex digits>`` but ``current``,
    each dated by its last use; only JAX's entries in it go, and XLA's autotune results in its
    ``xla_gpu_per_fusion_autotune_cache_dir`` (each old too), and each folder only once empty)
    and executables (``executables/<64 hex digits>.exe``, dated by their last write or load),
    after a day the temporary files of a write that was interrupted, and at once the empty
    entries of ``current`` (writes a full disk cut short). Nothing whose name
    fnn or JAX would not write is removed. Returns what was removed; anything that cannot be
    read or removed stays (it costs only space)."""
    now = time.time() if now is None else now
    removed = []

    def older(p: str, days: float) -> bool:
        try:
            return os.stat(p, follow_symlinks=False).st_mtime < now - days * _DAY
        except OSError:
            return False

    def remove(p: str, pattern: re.Pattern) -> bool:
        """Removes the regular file ``p`` if its name is ``pattern``'s (never a link's target)."""
        if pattern.fullmatch(os.path.basename(p)) and os.path.isfile(p) and not os.path.islink(p):
            with contextlib.suppress(OSError):
                os.remove(p)
                return True
        return False

    with contextlib.suppress(OSError):
        for name in os.listdir(path):
            p = os.path.join(path, name)
            if not _JAX_FOLDER.fullmatch(name) or p == current or os.path.islink(p) or not os.path.isdir(p):
                continue
            if older(p, CACHE_KEPT_DAYS):
                with contextlib.suppress(OSError):
                    for entry in os.listdir(p):
                        remove(os.path.join(p, entry), _JAX_ENTRY)
                tuned = os.path.join(p, _AUTOTUNE)
                for folder, pattern in ((os.path.join(tuned, "tmp"), _AUTOTUNE_TEMP), (tuned, _AUTOTUNE_ENTRY)):
                    # each entry dated on its own: removing tmp/ dates the folder around it now
                    if not os.path.islink(folder):
                        with contextlib.suppress(OSError):
                            for entry in os.listdir(folder):
                                if older(os.path.join(folder, entry), CACHE_KEPT_DAYS):
                                    remove(os.path.join(folder, entry), pattern)
                            os.rmdir(folder)  # only if nothing else is in it
                with contextlib.suppress(OSError):
                    os.rmdir(p)  # only if nothing else is in it
                    removed.append(p)
    # An empty entry of this version's folder is a write that a full disk cut short (JAX writes
    # none: an entry is a compressed executable); left, JAX warned of it at every later run.
    with contextlib.suppress(OSError):
        for name in os.listdir(current):
            p = os.path.join(current, name)
            if name.endswith("-cache") and _empty(p) and remove(p, _JAX_ENTRY):
                removed.append(p)
    store = os.path.join(path, "executables")
    with contextlib.suppress(OSError):
        for name in os.listdir(store):
            p = os.path.join(store, name)
            temp = _EXECUTABLE_TEMP.fullmatch(name) is not None
            if older(p, 1.0 if temp else CACHE_KEPT_DAYS) and remove(p, _EXECUTABLE_TEMP if temp else _EXECUTABLE):
                removed.append(p)
    return removed


def _empty(p: str) -> bool:
    """Whether ``p`` is a regular file of 0 bytes (not a link)."""
    try:
        st = os.stat(p, follow_symlinks=False)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size == 0


# What does not change a compiled program: where the outputs, plots and caches go, how many
# threads compile, how much is printed (--verbose); how many epochs run (a bound of the host's
# loop), the seed and the learning rate (values the programs take as inputs: the seeds' initial
# params, the injected hyperparameters); train's checkpoint paths (a resumed run's params and
# state are arguments, their shapes, dtypes and placements in every program's key; --save adds
# only copies, kept once for every namespace); and compare's lists of optimizers and batch sizes
# as wholes: each run's programs (its epoch, its optimizer's init) are kept in a child namespace
# that names its optimizer and batch size (fnn.cli._compare's run_store), and those of the
# command's own namespace use neither (the seeds' initial params; the test pass at batch 1024;
# the validation pass, whose batch, max(batch size, 1024) within the validation set, is in its
# own static key); and which options the command line wrote (train's ``given``: --resume fills
# in the others, and their values are here). A program's key also holds its static settings
# and its arguments' shapes, so leaving one of these out can only make two runs share a program
# they both run.
_NOT_IN_PROGRAMS = (
    *("func", "out", "no_plots", "jobs", "cache_dir", "no_cache", "verbose"),
    *("epochs", "seed", "lr", "save", "resume", "optimizers", "batch_sizes", "given"),
)


def executable_store(args) -> ExecutableStore | None:
    """The store of this command's compiled executables (in the cache folder's ``executables``),
    or None with ``--no-cache``: its namespace is the command and every setting that could
    shape a program (all of them but the output, plot, thread, verbosity and cache options, the
    epochs, the seed, the learning rate, train's checkpoint paths and compare's lists of
    optimizers and batch sizes, whose runs each add their own to a child namespace), so a warm
    run with the same settings, or other values of those, loads its programs without tracing
    them."""
    folder = cache_dir(args)
    if folder is None:
        return None
    settings = sorted((k, repr(v)) for k, v in vars(args).items() if k not in _NOT_IN_PROGRAMS)
    return ExecutableStore(os.path.join(folder, "executables"), repr(settings))
