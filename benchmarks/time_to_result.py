"""Time to result: ``fnn compare``'s default job end to end, cold and warm, against the same job
written as a plain PyTorch loop and as Keras ``model.fit`` calls; and a learning-rate sweep
written the obvious way (a new optimizer object per trial in a Python loop over ``fnn.fit``).

    python -m benchmarks.time_to_result [--quick] [--rounds 3] [--baseline-python PATH] [--json PATH]

The job (``fnn compare``'s defaults): digits (1,438 training rows, the last 288 of them held out
for validation, 359 test rows), MLP 64-64-64-10 with ReLU, sparse categorical cross-entropy,
the 11 default optimizers at fnn's default learning rates, 3 seeds each, 30 epochs of batch 32
with shuffling, a validation pass after every epoch and a test pass at the end. PyTorch lacks
Lion and Keras lacks RAdam, so each of them runs the 10 it has (``fnn compare`` all 11).

Every run is a fresh process (``python -c``/``python -m``: imports, data loading, compilation,
training, evaluation, all counted), the runners interleaved over the rounds, medians reported.
Python's bytecode cache is on for every process, whatever ``PYTHONDONTWRITEBYTECODE`` says, and
fnn's modules are byte-compiled beforehand, as ``pip install`` compiles jax's, torch's and
keras's (and fnn's, for the README's ``pip install .``):

* ``fnn cold``: ``fnn compare --no-plots`` with an empty persistent compilation cache;
* ``fnn warm``: the same command a second time, its cache filled by an earlier run;
* ``torch``: the PyTorch loop (``torch.optim``, eager, the default thread count);
* ``keras``: one ``model.fit(..., validation_data=...)`` and ``model.evaluate`` per run, with
  ``KERAS_BACKEND`` as set (default jax).

The baselines run under ``--baseline-python`` (default this interpreter) and are left out, with
a note, where that interpreter cannot import them. Ratios are baseline time / fnn time.

The sweep: 8 learning rates, each trial a new ``fnn.mlp`` (its params from ``net.init``) and a
new ``fnn.optimizers.adam`` object, in one process; its total against one trial's compile time
plus 8 trials' training time, both measured on one such trial of another shape, its first call
(compiling the network's init and the epoch) against its second (the goal: <= 1.5x, i.e. the
trials share one compiled init and epoch).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np

import fnn
from benchmarks import _common as C
from fnn.cli import DEFAULT_LEARNING_RATES, DEFAULT_OPTIMIZERS

OPTIMIZERS = DEFAULT_OPTIMIZERS  # fnn compare's default job

_TORCH_JOB = r"""
import sys, time, numpy as np, torch
data = np.load(sys.argv[1]); epochs, seeds, batch = map(int, sys.argv[2:5]); names = sys.argv[5].split(",")
rates = dict(kv.split("=") for kv in sys.argv[6].split(","))
keys = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
xt, yt, xv, yv, xs, ys = (torch.from_numpy(data[k]) for k in keys)
yt, yv, ys = yt.long(), yv.long(), ys.long()
O = torch.optim
make = {
    "sgd": lambda p, lr: O.SGD(p, lr), "momentum": lambda p, lr: O.SGD(p, lr, momentum=0.9),
    "nesterov": lambda p, lr: O.SGD(p, lr, momentum=0.9, nesterov=True), "adagrad": O.Adagrad,
    "rmsprop": O.RMSprop, "adadelta": O.Adadelta, "adam": O.Adam, "adamw": O.AdamW, "nadam": O.NAdam,
    "radam": O.RAdam,
}
loss_fn = torch.nn.CrossEntropyLoss()
for name in names:
    if name not in make:
        continue
    for seed in range(seeds):
        torch.manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Linear(xt.shape[1], 64), torch.nn.ReLU(), torch.nn.Linear(64, 64),
                                  torch.nn.ReLU(), torch.nn.Linear(64, 10))
        opt = make[name](net.parameters(), float(rates[name]))
        for epoch in range(epochs):
            order = torch.randperm(len(xt))
            for i in range(0, len(xt), batch):
                idx = order[i:i + batch]
                opt.zero_grad()
                loss = loss_fn(net(xt[idx]), yt[idx])
                loss.backward()
                opt.step()
            with torch.no_grad():
                val = loss_fn(net(xv), yv).item()
        with torch.no_grad():
            acc = (net(xs).argmax(1) == ys).float().mean().item()
        print(name, seed, round(val, 4), round(acc, 4), flush=True)
"""

_KERAS_JOB = r"""
import os, sys
os.environ.setdefault("KERAS_BACKEND", "jax")
import numpy as np, keras
data = np.load(sys.argv[1]); epochs, seeds, batch = map(int, sys.argv[2:5]); names = sys.argv[5].split(",")
rates = dict(kv.split("=") for kv in sys.argv[6].split(","))
O = keras.optimizers
make = {
    "sgd": lambda lr: O.SGD(lr), "momentum": lambda lr: O.SGD(lr, momentum=0.9),
    "nesterov": lambda lr: O.SGD(lr, momentum=0.9, nesterov=True), "adagrad": O.Adagrad, "rmsprop": O.RMSprop,
    "adadelta": O.Adadelta, "adam": O.Adam, "adamw": O.AdamW, "nadam": O.Nadam, "lion": O.Lion,
}
for name in names:
    if name not in make:
        continue
    for seed in range(seeds):
        keras.utils.set_random_seed(seed)
        model = keras.Sequential([keras.Input((data["x_train"].shape[1],)), keras.layers.Dense(64, "relu"),
                                  keras.layers.Dense(64, "relu"), keras.layers.Dense(10)])
        model.compile(make[name](float(rates[name])),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        h = model.fit(data["x_train"], data["y_train"], batch_size=batch, epochs=epochs, verbose=0,
                      validation_data=(data["x_val"], data["y_val"]))
        _, acc = model.evaluate(data["x_test"], data["y_test"], verbose=0)
        print(name, seed, round(h.history["val_loss"][-1], 4), round(acc, 4), flush=True)
"""


def _can_import(python: str, module: str) -> bool:
    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "jax")}
    return subprocess.run([python, "-c", f"import {module}"], capture_output=True, env=env).returncode == 0


def _process(cmd: list[str], env: dict | None = None, cwd: str | None = None):
    """A runner: one fresh process, which must succeed (run in ``cwd``: ``python -m`` puts the
    working folder first on sys.path)."""

    def run() -> None:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd[:4]}... failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")

    return run


def _announced(name: str, run):
    """``run``, each call's seconds also printed to stderr as it ends: a run stopped part-way (a
    lease's time limit) still leaves the figures it measured."""

    def go() -> None:
        t0 = time.perf_counter()
        run()
        print(f"time_to_result: {name} {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)

    return go


def _write_data(path: str) -> dict:
    (x_tr, y_tr), (x_te, y_te) = fnn.datasets.load("digits")
    (x_t, y_t), (x_v, y_v) = fnn.data.train_val_split(x_tr, y_tr, 0.2)  # as fnn compare splits
    arrays = dict(x_train=x_t, y_train=y_t, x_val=x_v, y_val=y_v, x_test=x_te, y_test=y_te)
    np.savez(path, **{k: np.asarray(v, np.float32 if k.startswith("x") else np.int64) for k, v in arrays.items()})
    return {k: len(v) for k, v in arrays.items() if k.startswith("x")}


def sweep(n_trials: int = 8, quick: bool = False) -> dict:
    """8 learning rates, a new network and optimizer object per trial, in a loop over fit."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512 if quick else 4096, 32)).astype(np.float32)
    y = rng.integers(0, 10, len(x))
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    kw = dict(batch_size=32, epochs=1 if quick else 3, verbose=0)

    def trial(shape: list[int], lr: float) -> fnn.History:
        # as users write a trial: a new network from its description, its params, a new optimizer
        net = fnn.mlp(shape)
        return fnn.fit(net, net.init(jax.random.PRNGKey(1), (32,)), fnn.optimizers.adam(lr), loss, x, y, **kw).history

    def timed(shape: list[int], lr: float) -> float:
        t0 = time.perf_counter()
        trial(shape, lr)
        return time.perf_counter() - t0

    # The reference: one trial's first call (compiling the network's init and the epoch, then
    # training) and its second (new objects of the same structure: training alone, if nothing
    # is compiled again), on a shape nothing else in this process has compiled.
    first, train = timed([48, 48, 10], 1e-3), timed([48, 48, 10], 1e-3)
    compile_s = max(first - train, 0.0)
    # The sweep: another fresh shape, so that it pays its own single compile; 8 separate
    # compilations would make it ~8x the budget.
    rates = np.geomspace(1e-4, 1e-1, n_trials)
    t0 = time.perf_counter()
    finals = [trial([56, 56, 10], float(lr))["loss"][-1] for lr in rates]
    total = time.perf_counter() - t0
    budget = compile_s + n_trials * train
    return {
        "trials": n_trials,
        "one_fit_first_s": first,
        "one_fit_train_s": train,
        "sweep_total_s": total,
        "ratio_to_one_compile_plus_trainings": total / budget,
        "final_losses": [float(v) for v in finals],
    }


def main(argv: list[str] | None = None) -> dict:
    p = C.parser(__doc__.splitlines()[0])
    p.add_argument("--baseline-python", default=sys.executable, help="interpreter with torch / keras installed")
    p.add_argument("--baselines", default="torch,keras", help="comma-separated: torch, keras (or none)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--optimizers", default=",".join(OPTIMIZERS))
    p.add_argument("--no-sweep", action="store_true", help="skip the learning-rate sweep")
    p.add_argument(
        "--before",
        metavar="DIR",
        default=None,
        help="also time `fnn compare` of another checkout (an older fnn) as 'fnn before', cold (an empty cache)",
    )
    args = p.parse_args(argv)
    C.quick_defaults(p, args, epochs=2, seeds=1, optimizers="sgd,adam")
    n_rounds = C.rounds(args)
    names = args.optimizers.split(",")
    rates = ",".join(f"{n}={DEFAULT_LEARNING_RATES[n]}" for n in names)
    work = tempfile.mkdtemp(prefix="fnn-ttr-")
    try:
        sizes = _write_data(os.path.join(work, "digits.npz"))
        common = [str(args.epochs), str(args.seeds), "32", ",".join(names), rates]
        data = os.path.join(work, "digits.npz")
        fnn_cmd = [sys.executable, "-m", "fnn", "compare", "--no-plots", "--epochs", str(args.epochs)]
        fnn_cmd += ["--seeds", str(args.seeds), "--optimizers", ",".join(names), "--out", os.path.join(work, "out")]
        # Python's bytecode cache on, as in a user's shell (a sandbox may turn it off): without it
        # every fnn process compiles fnn's own modules from source (~0.2 s), while jax, torch
        # and keras load the bytecode pip compiled at install time
        drop = ("FNN_COMPILATION_CACHE", "FNN_CACHE_DIR", "PYTHONDONTWRITEBYTECODE")
        env = {k: v for k, v in os.environ.items() if k not in drop}
        checkouts = [os.path.dirname(os.path.dirname(os.path.abspath(fnn.__file__)))]
        cold_dir, warm_dir = os.path.join(work, "cold-cache"), os.path.join(work, "warm-cache")
        # --quick: the warm run reads the cache the cold run (the first run of all) leaves
        # filled, one process fewer than a run to fill a cache of its own
        if args.quick:
            warm_dir = cold_dir

        def cold() -> None:
            shutil.rmtree(cold_dir, ignore_errors=True)
            _process([*fnn_cmd, "--cache-dir", cold_dir], env)()

        runners = {"fnn cold": cold, "fnn warm": _process([*fnn_cmd, "--cache-dir", warm_dir], env)}
        if args.before:
            before_cmd = [a for a in fnn_cmd if a != "--no-plots"] + ["--no-plots"]
            # cold every time: its default cache folder (if it has one) in a fresh XDG_CACHE_HOME
            before_cache = os.path.join(work, "before-cache")
            before_env = {**env, "PYTHONPATH": os.path.abspath(args.before), "XDG_CACHE_HOME": before_cache}
            before_run = _process(before_cmd, before_env, cwd=work)

            def before() -> None:
                shutil.rmtree(before_cache, ignore_errors=True)
                before_run()

            runners["fnn before"] = before
            checkouts.append(os.path.abspath(args.before))
        # every fnn's bytecode written beforehand, as `pip install .` writes it (a folder that
        # cannot be written, an installed fnn, has its bytecode already)
        for root in checkouts:
            subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(root, "fnn")], env=env, check=False)
        notes = []
        wanted = [b for b in args.baselines.split(",") if b and b != "none"]
        for name, module, job in (("torch", "torch", _TORCH_JOB), ("keras", "keras", _KERAS_JOB)):
            if name not in wanted:
                continue
            if not _can_import(args.baseline_python, module):
                notes.append(f"{name}: not importable by {args.baseline_python}; left out")
                continue
            runners[name] = _process([args.baseline_python, "-c", job, data, *common], env)
        if not args.quick:
            runners["fnn warm"]()  # fills the warm cache (untimed)
        times = C.interleaved({k: _announced(k, run) for k, run in runners.items()}, n_rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {k: C.median(v) for k, v in times.items()}
    baselines = ("torch", "keras", "fnn before")
    ratios = {f"{b} / {f}": med[b] / med[f] for b in baselines if b in med for f in ("fnn cold", "fnn warm")}
    swept = None if args.no_sweep else sweep(quick=args.quick)

    def report(payload: dict) -> str:
        rows = [(k, len(times[k]), f"{med[k]:.1f}", f"{min(times[k]):.1f}", f"{max(times[k]):.1f}") for k in times]
        out = [
            f"## time_to_result: fnn compare's job, {len(names)} optimizers x {args.seeds} seeds x "
            f"{args.epochs} epochs, each run a fresh process",
            C.machine_line(payload["machine"]),
            "",
            C.markdown_table(["runner", "rounds", "median s", "min s", "max s"], rows),
            "",
            C.markdown_table(["ratio (baseline s / fnn s)", "x"], [(k, f"{v:.2f}") for k, v in ratios.items()]),
        ]
        out += [f"note: {n}" for n in notes]
        if swept is not None:
            out += [
                "",
                f"sweep: {swept['trials']} learning rates, new network and optimizer objects per trial: "
                f"{swept['sweep_total_s']:.2f} s against one trial's compile + {swept['trials']} trainings "
                f"({swept['one_fit_first_s'] - swept['one_fit_train_s']:.2f} + {swept['trials']} x "
                f"{swept['one_fit_train_s']:.3f} s): {swept['ratio_to_one_compile_plus_trainings']:.2f}x "
                "(goal <= 1.5x)",
            ]
        return "\n".join(out)

    return C.finish(
        "time_to_result",
        args,
        report,
        sizes=sizes,
        seconds=times,
        medians=med,
        ratios=ratios,
        notes=notes,
        sweep=swept,
    )


if __name__ == "__main__":
    main()
