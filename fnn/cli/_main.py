"""The ``fnn`` command line: compare optimizers and batch sizes, train, gradcheck, list data sets.

``fnn compare`` is the lesson's closing advice turned into one command: no optimizer is best
everywhere, so train the same network from the same initial parameters with each optimizer
(and each batch size: ``full`` is gradient descent, ``1`` is SGD, ``32`` mini-batch GD) and
compare losses, test metric, epochs, iterations per epoch and wall time.

Every bad argument exits with status 2 and one line on stderr, as argparse's own errors do.
Ctrl-C keeps what is done (``train --save``, or ``--resume`` alone: the last finished epoch's checkpoint; ``compare``:
the finished runs, marked partial) and exits with status 130 after one line; SIGTERM (``kill``,
``timeout``, a job scheduler) does the same, its line naming it, with status 143 (128 +
SIGTERM); a reader that goes away (``| head``) ends a run the same way but quietly, with status
141 (128 + SIGPIPE). Once a command has decided to exit, further signals are ignored.

The parts: ``_args.py`` (argument types, shared options), ``_compile_cache.py`` (the
compilation cache and its options), ``_common.py``
(errors, stopping half-way, number formats), ``_problem.py`` (data, loss, metric),
``_compare.py`` (the comparison engine), ``_report.py`` (table, results files, plots),
``_train.py`` (``fnn train``), ``_resume.py`` (what its checkpoint records, ``--resume``),
``_commands.py`` (``fnn compare``, ``gradcheck``, ``datasets``);
this module holds the parser, ``main`` and the console script.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import os
import sys
import textwrap
import threading
from collections.abc import Sequence
from typing import NoReturn

import jax

import fnn
from fnn._import_guard import ctrl_c_kept

# the command's modules, as fnn's own (fnn/__init__.py): a Ctrl-C Python drops while they import
with ctrl_c_kept():
    from fnn._interrupts import ctrl_c_recorded, ignore_interrupts
    from fnn.cli._args import (
        add_model_args,
        add_training_args,
        batch_size,
        batch_sizes,
        optimizer_list,
        optimizer_name,
        positive_int,
    )
    from fnn.cli._commands import cmd_compare, cmd_datasets, cmd_gradcheck
    from fnn.cli._common import (
        EXIT_BROKEN_PIPE,
        PROCESS_ENDS,
        UsageError,
        interrupted,
        silence_broken_streams,
        stopped,
    )
    from fnn.cli._compile_cache import (
        add_cache_args,
        cache_dir,
        cache_dir_source,
        cache_settings_restored,
        cache_warnings_in_one_line,
        default_cache_problem,
        turn_off_compilation_cache,
        use_compilation_cache,
    )
    from fnn.cli._train import cmd_train

DEFAULT_OPTIMIZERS = (
    "sgd",
    "momentum",
    "nesterov",
    "adagrad",
    "rmsprop",
    "adadelta",
    "adam",
    "adamw",
    "nadam",
    "radam",
    "lion",
)


# --------------------------------------------------------------------------------------------
# Parser and entry point
# --------------------------------------------------------------------------------------------


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's help, its lines never broken at a hyphen (a folder such as ``~/.cache/fnn-x``
    stays whole, to be copied)."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return textwrap.fill(
            " ".join(text.split()), width, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False
        )


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (exit status 2, as before) and help lines that do
    not break words at hyphens."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def parse_args(self, args=None, namespace=None):
        # argparse reports a command's unknown option as the top parser's ("fnn: error:"); the
        # command's own parser says it, as for every other bad argument of the command
        ns, extras = self.parse_known_args(args, namespace)
        if extras:
            commands = getattr(self, "commands", {})
            commands.get(getattr(ns, "command", None), self).error(f"unrecognized arguments: {' '.join(extras)}")
        return ns


class _GivenOnly(_Parser):
    """The same parser with no defaults: its namespace holds only the options the command line
    gives."""

    def add_argument(self, *args, **kwargs):
        return super().add_argument(*args, **{**kwargs, "default": argparse.SUPPRESS})

    def set_defaults(self, **kwargs) -> None:
        pass


def build_parser() -> argparse.ArgumentParser:
    """The ``fnn`` argument parser (sub-commands compare, train, gradcheck, datasets)."""
    return _build(_Parser)


def given_options(argv: Sequence[str] | None) -> frozenset[str]:
    """The options ``argv`` gives, by ``dest`` (``lr``, ``batch_size``...), however written:
    ``--lr 0.1``, ``--lr=0.1``, ``--l 0.1`` (argparse takes unique prefixes). ``argv`` is parsed
    again, by the parser without defaults, so that argparse's own matching decides, not a second
    reading of the words. ``argv`` must be one that ``build_parser()`` accepts."""
    return frozenset(vars(_build(_GivenOnly).parse_args(argv))) - {"command"}


def _build(parser_class: type[_Parser]) -> argparse.ArgumentParser:
    parser = parser_class(
        prog="fnn",
        description="Fully-connected neural networks in JAX with hand-written "
        "backpropagation: compare optimizers and batch sizes, train, check gradients.",
    )
    parser.add_argument("--version", action="version", version=f"fnn {fnn.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=parser_class)
    sub.required = True
    parser.commands = sub.choices  # type: ignore[attr-defined]  # each command's parser, by name

    p = sub.add_parser(
        "compare",
        help="train one network with several optimizers and batch sizes, "
        "print a table, write results.json/csv and plots",
        description="Trains the same network from the same initial parameters (per seed) with "
        "each optimizer and each batch size, then prints a table of losses, test metric, epochs, "
        "iterations per epoch and training time (mean ± std over seeds) with notes saying which "
        "weights the numbers describe (the last epoch's, or with --early-stopping the restored best "
        "epoch's) and what the time is (a batch size's runs train together in ONE compiled program, "
        "each row's seeds vmapped, whose time they share; with --apart a program per row; with "
        "--early-stopping each seed trains alone). Ctrl-C stops it: the runs "
        'finished so far go to results.json and results.csv, marked "partial": true, and the exit '
        "status is 130. SIGTERM (kill, timeout, a job scheduler) stops it the same way, exit status 143.",
    )
    add_model_args(p, "64,64", seed_help="the first seed: a run trains seeds SEED, SEED+1, ..., one per --seeds")
    add_training_args(p, "compare")
    p.set_defaults(epochs=30)
    p.add_argument(
        "--optimizers",
        type=optimizer_list,
        default=list(DEFAULT_OPTIMIZERS),
        metavar="NAMES",
        help=f"comma-separated optimizers or 'all' (default {','.join(DEFAULT_OPTIMIZERS)})",
    )
    p.add_argument(
        "--batch-sizes",
        type=batch_sizes,
        default=[32],
        metavar="SIZES",
        help="comma-separated batch sizes; 'full' = the whole training set (gradient descent), 1 = SGD (default 32)",
    )
    p.add_argument("--seeds", type=positive_int, default=3, help="seeds per run (default 3)")
    p.add_argument("--out", default="fnn-compare", metavar="DIR", help="output folder (default fnn-compare)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument(
        "--jobs",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"programs compiled, then trained, side by side (default: one per core, here {os.cpu_count() or 1}): "
        "a batch size's runs share one program, split into N parts; with --apart, runs; 1 trains one at a time",
    )
    p.add_argument(
        "--apart",
        action="store_true",
        help="a program per run (optimizer x batch size): a compilation each, about 3x the time to "
        "compile, but each row's time its own and each run finished (and kept on Ctrl-C) alone",
    )
    add_cache_args(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "train",
        help="train one network with a progress bar; checkpoint save/resume",
        description="Trains one network with a progress bar (fnn.fit) and reports the final epoch, "
        "with --early-stopping the best epoch (whose weights are restored), and the test metrics of "
        "the weights it ends with. --save writes a checkpoint that --resume continues exactly, early "
        "stopping included, and saves the continued run back to the same file unless --save names "
        "another. Ctrl-C stops it at once, the epoch in progress dropped: with --save (or --resume) the "
        "finished epochs are saved (a save under way is finished first), and the exit status is 130. "
        "SIGTERM (kill, timeout, a job scheduler) stops it the same way, exit status 143. "
        "A closed output pipe (| head) stops it the same way, quietly (exit status 141).",
    )
    add_model_args(p, "64,64")
    add_training_args(p, "train")
    p.set_defaults(epochs=20)
    p.add_argument("--optimizer", type=optimizer_name, default="adam", help="optimizer (default adam)")
    p.add_argument("--batch-size", type=batch_size, default=32, help="batch size or 'full' (default 32)")
    p.add_argument(
        "--save",
        default=None,
        metavar="PATH",
        help="write a checkpoint (.npz) at the end, or of the last finished epoch when interrupted (Ctrl-C, "
        "SIGTERM): the last epoch's weights and optimizer state, the history, and EarlyStopping's state "
        "(its best weights included), which --resume continues (a --resume run without --save writes "
        "back to the checkpoint it continues)",
    )
    p.add_argument(
        "--resume",
        default=None,
        metavar="PATH",
        help="continue a checkpoint of fnn train up to --epochs (a run that early stopping ended stays "
        "ended). The checkpoint records the run's settings (--dataset, --loss, --hidden, --activation, "
        "--optimizer, --lr, --batch-size, --validation-split, --seed, --early-stopping) and --epochs: "
        "each one not given is the saved one (fnn train --resume PATH alone continues the saved run "
        "to its --epochs; a given --epochs sets a new target), and where a given setting differs "
        "the resume is refused, exit 2. Without --save the "
        "resumed run is saved back to PATH, at the end or when interrupted, atomically (a failed save "
        "leaves the checkpoint as it was; a run that runs no epoch leaves it untouched); a PATH "
        "that cannot be written back (a read-only file or folder) is refused before training",
    )
    p.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=1,
        help="1: progress bar (default), 2: one line per epoch, 0: quiet",
    )
    add_cache_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "gradcheck",
        help="hand-written vs autodiff vs finite-difference gradients, per layer",
        description="Compares the hand-written backward pass with jax.grad and with central finite "
        "differences, per layer, in float64 on --samples training samples (fnn.gradcheck), then times "
        "both gradients (float32, jitted, whole training set). Exit status 1 when the check fails.",
    )
    add_model_args(p, "32")
    p.add_argument("--samples", type=positive_int, default=32, help="batch used for the check (default 32)")
    p.add_argument("--repeats", type=positive_int, default=20, help="timed calls per mode (default 20)")
    add_cache_args(p)
    p.set_defaults(func=cmd_gradcheck)

    p = sub.add_parser(
        "datasets",
        help="list the data sets with their task and shapes",
        description="Lists the data sets the commands take (--dataset): task, classes, source, "
        "suggested loss and the shapes of the training and test parts. mnist and fashion_mnist are "
        "read from local files (--path); nothing is downloaded.",
    )
    p.add_argument("--path", default=None, help="folder or .npz of mnist / fashion_mnist, to show their shapes")
    p.set_defaults(func=cmd_datasets)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the ``fnn`` command line in-process: the console script's entry point.

    ``import fnn`` leaves the command line out (its import cost): ``import fnn.cli`` first.

    With the compilation cache on (not ``--no-cache``), ``train``, ``gradcheck`` and ``compare``
    point JAX's persistent compilation cache at fnn's folder, with no threshold of compile time
    or size (``jax_compilation_cache_dir``, ``jax_persistent_cache_min_compile_time_secs``,
    ``jax_persistent_cache_min_entry_size_bytes``), and reset JAX's cache so that it opens that
    folder. With ``--no-cache`` they turn JAX's persistent cache off for the run
    (``jax_enable_compilation_cache``), also one the caller set up. ``main`` puts the four
    settings back when it returns or raises, and resets JAX's cache again, so a program calling
    it compiles afterwards into its own folder (or none), never into fnn's, whose prune may
    remove what it finds there.

    Args:
        argv: The arguments after ``fnn`` (``["datasets"]``); None reads ``sys.argv``.

    Returns:
        The exit status, as the console script's (0: done; 2: a bad argument).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0) or a bad argument (2): a status, also in-process
        return int(stop.code or 0)
    if args.func is cmd_train:  # --resume takes the saved value of each setting not given
        args.given = given_options(argv)
    try:
        # A Ctrl-C that Python drops (in a gc callback) still ends the run; SIGTERM ends it as
        # Ctrl-C does (the finished work kept), instead of killing the process on the spot; a
        # second one while the run keeps its work is ignored.
        with (
            ctrl_c_recorded(sigterm=True, once=True),
            cache_settings_restored(),
            cache_warnings_in_one_line(args.command),
        ):
            return _run(args)
    except UsageError as err:
        print(f"fnn {args.command}: error: {err}", file=sys.stderr)
        return 2
    except ImportError as err:
        print(f"fnn {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:  # before (or after) anything worth keeping
        words, status = interrupted(stopped(err))
        print(f"fnn {args.command}: {words}", file=sys.stderr)
        return status
    except BrokenPipeError:
        silence_broken_streams()
        return EXIT_BROKEN_PIPE
    except OSError as err:  # a full disk, a folder gone: the system's words, in one line
        print(f"fnn {args.command}: error: {err}", file=sys.stderr)
        return 1
    except jax.errors.JaxRuntimeError as err:
        if "RESOURCE_EXHAUSTED" not in str(err):
            raise
        # the device's memory, for a network or batch the flags made too large: XLA's first line
        said = str(err).strip().splitlines()[0]
        print(
            f"fnn {args.command}: error: out of memory ({said}); a smaller --hidden or --batch-size may fit",
            file=sys.stderr,
        )
        return 1


def _run(args: argparse.Namespace) -> int:
    """The command, with its compilation cache; returns its exit status."""
    if getattr(args, "no_cache", False):  # (the commands that compile have the option)
        turn_off_compilation_cache()
    cache = cache_dir(args)
    if cache is not None and (problem := default_cache_problem(args, cache)):
        # The default folder is only a speed-up: a read-only home still runs, without it.
        print(
            f"fnn {args.command}: warning: {problem}; running without the compilation cache "
            "(--cache-dir DIR or $FNN_CACHE_DIR choose another folder, --no-cache silences this)",
            file=sys.stderr,
        )
        args.no_cache, cache = True, None  # the executable store too
    if cache is not None:
        use_compilation_cache(cache, cache_dir_source(args))
    status = args.func(args)
    sys.stdout.flush()  # a pipe's reader that has gone shows here, not in Python's exit
    return status


def exit_fast(status: int) -> NoReturn:
    """Ends the process with ``status`` as Python's exit would, less the interpreter's teardown:
    JAX's modules take ~0.45 s to finalise on a 2-core machine (``python -c "import fnn"``:
    1.69 s with it, 1.18 s without, medians of 6), a tenth of a warm ``fnn compare``. Other
    threads are joined and ``atexit`` handlers run (JAX's, coverage's...) and the standard
    streams flushed first; every file the commands write is closed by then. Under a profiler
    or a tracer (``python -m cProfile -m fnn``, a debugger), which may write its results after
    this returns, it exits the usual way. Either way SIGINT and SIGTERM are ignored from here
    on: the command has printed its line and chosen its status, which a second Ctrl-C landing
    in an ``atexit`` callback (JAX's) would follow with a traceback, and a SIGTERM replace."""
    ignore_interrupts()
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(status)
    # What Python's exit does first: tell idle thread pools to end (concurrent.futures
    # registers that with threading), then join every non-daemon thread.
    getattr(threading, "_shutdown")()  # noqa: B009  (CPython's, absent from the stubs)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away, or a stream closed
            status = status or EXIT_BROKEN_PIPE
    os._exit(status)


def console() -> NoReturn:
    """The ``fnn`` console script and ``python -m fnn``: :func:`main` on ``sys.argv``, then
    :func:`exit_fast`. The ~97,000 objects the imports made (JAX's and fnn's modules, which
    live as long as the process) are frozen first: Python's full collections, which would walk
    them every time, skip them (a cold ``fnn compare``: 3 full collections, 0.23 s with the
    lock held, against 2 and 0.02 s; a warm one: 0.05-0.07 s against 0.01 s). The command knows
    that the process ends with it (:data:`~fnn.cli._common.PROCESS_ENDS`)."""
    gc.freeze()
    PROCESS_ENDS[0] = True
    try:
        status = main()
    finally:  # main's command only: a main called later in this process is in-process
        PROCESS_ENDS[0] = False
    exit_fast(status)


if __name__ == "__main__":
    console()
