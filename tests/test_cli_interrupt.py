"""``fnn train`` and ``fnn compare`` stopped half-way keep what they did: Ctrl-C (SIGINT) and a
reader that goes away (``| head -1``, a broken pipe on stdout).

Every test drives a real process (``python -m fnn``): a signal and a closed pipe only mean
something there. The runs are long enough in epochs (iris, 4 hidden units, full batch: a few
milliseconds an epoch) that the signal lands in the middle of training; the tests wait for the
first epoch's output before sending it, never for a time.
"""

import json
import os
import pathlib
import queue
import re
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

import fnn

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGINT and SIGPIPE are POSIX"),
]

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENV = {
    **os.environ,
    "JAX_PLATFORMS": "cpu",
    "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
}
TRAIN = ["train", "--dataset", "iris", "--hidden", "4", "--batch-size", "full", "--lr", "0.01"]
TIMEOUT = 300


def _start(args):
    return subprocess.Popen(
        [sys.executable, "-m", "fnn", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=ROOT
    )


class _Reader:
    """Collects a pipe's bytes in a thread so that the test can wait for some text to appear
    (tqdm's bar ends its updates with ``\\r``, not a newline: so bytes, not lines)."""

    def __init__(self, stream):
        self.data = b""
        self._chunks: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream):
        while chunk := stream.read1(4096):
            self._chunks.put(chunk)
        self._chunks.put(None)

    def wait_for(self, pattern: bytes) -> re.Match:
        while not (found := re.search(pattern, self.data)):
            chunk = self._chunks.get(timeout=TIMEOUT)
            assert chunk is not None, f"the process ended before {pattern!r} appeared: {self.data[-2000:]!r}"
            self.data += chunk
        return found

    def rest(self) -> bytes:
        while (chunk := self._chunks.get(timeout=TIMEOUT)) is not None:
            self.data += chunk
        return self.data


def _interrupt_after(proc, stream: str, pattern: bytes, sig=signal.SIGINT) -> tuple[int, bytes, bytes]:
    """``sig`` (SIGINT) once ``pattern`` shows on ``stream``; (exit status, stdout, stderr)."""
    with proc:  # closes the pipes
        readers = {"out": _Reader(proc.stdout), "err": _Reader(proc.stderr)}
        try:
            readers[stream].wait_for(pattern)
            proc.send_signal(sig)
            out, err = readers["out"].rest(), readers["err"].rest()
            return proc.wait(timeout=TIMEOUT), out, err
        finally:
            if proc.poll() is None:
                proc.kill()


def _close_stdout_after_first_line(proc) -> tuple[int, bytes, bytes]:
    """Reads one line of stdout, closes the pipe (as ``| head -1`` does) and waits."""
    with proc:
        try:
            first = proc.stdout.readline()
            proc.stdout.close()
            _, err = proc.communicate(timeout=TIMEOUT)
            return proc.returncode, first, err
        finally:
            if proc.poll() is None:
                proc.kill()


@pytest.mark.parametrize(("verbose", "sig"), [("2", signal.SIGINT), ("1", signal.SIGINT), ("2", signal.SIGTERM)])
def test_ctrl_c_or_sigterm_during_train_saves_a_resumable_checkpoint_and_exits_130_or_143(tmp_path, verbose, sig):
    """SIGTERM (kill, timeout, a job scheduler) ends it as Ctrl-C does, with status 143."""
    ck = str(tmp_path / "ck.npz")
    proc = _start([*TRAIN, "--epochs", "100000", "--verbose", verbose, "--save", ck])
    # the first finished epoch: its line on stdout (verbose 2), or the bar moving on to epoch 2
    pattern = rb"Epoch [1-9]\d*/100000" if verbose == "2" else rb"Epoch ([2-9]|\d\d+)/100000"
    rc, out, err = _interrupt_after(proc, "out" if verbose == "2" else "err", pattern, sig)
    assert rc == 128 + sig, err.decode()
    assert b"Traceback" not in err and err.count(b"\n") <= 2, err.decode()
    # the one line is the last thing on the terminal, not overdrawn by the progress bar
    last = err.rstrip(b"\n").split(b"\n")[-1].split(b"\r")[-1].decode()
    said = "fnn train: interrupted " + ("by SIGTERM " if sig == signal.SIGTERM else "")
    assert last.startswith(said) and ck in last, last

    saved = fnn.checkpoint.load(ck)
    epoch = saved.epoch
    assert 1 <= epoch < 100000 and f"(epoch {epoch})" in last
    assert len(saved.history["history"]["loss"]) == epoch == len(saved.history["epochs"])
    if verbose == "2":  # every saved epoch was reported before the interrupt
        shown = [int(m) for m in re.findall(rb"Epoch (\d+)/100000", out)]
        assert shown == list(range(1, len(shown) + 1)) and len(shown) >= epoch

    if verbose == "1" or sig == signal.SIGTERM:
        return
    # The checkpoint continues where it stopped: one more epoch, and the history runs on (in a
    # process of its own: the tests' x64 mode would read the saved float32 state as float64).
    ck2 = str(tmp_path / "ck2.npz")
    proc = subprocess.run(
        [sys.executable, "-m", "fnn", *TRAIN, "--epochs", str(epoch + 1), "--verbose", "0"]
        + ["--resume", ck, "--save", ck2],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"resumed from {ck} at epoch {epoch}" in proc.stdout
    resumed = fnn.checkpoint.load(ck2)
    assert resumed.epoch == epoch + 1
    assert resumed.history["epochs"] == list(range(epoch + 1))
    np.testing.assert_array_equal(resumed.history["history"]["loss"][:epoch], saved.history["history"]["loss"])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_run_resumed_without_save_and_stopped_saves_back_to_its_checkpoint(tmp_path, sig):
    """``--resume PATH`` alone, as the line printed after a stop says, keeps checkpointing the
    run in PATH: stopped again, PATH holds the epochs the resumed run finished too."""
    ck = str(tmp_path / "ck.npz")
    proc = _start([*TRAIN, "--epochs", "100000", "--verbose", "2", "--save", ck])
    rc, _, err = _interrupt_after(proc, "out", rb"Epoch [1-9]\d*/100000", signal.SIGTERM)
    assert rc == 143, err.decode()
    first = fnn.checkpoint.load(ck)
    assert err.decode().endswith(f"saved checkpoint (epoch {first.epoch}) to {ck}; continue with --resume {ck}\n")

    proc = _start(["train", "--resume", ck, "--verbose", "2"])  # the rest from the checkpoint
    # an epoch the resumed run finished (its line comes after the epoch's end)
    rc, out, err = _interrupt_after(proc, "out", rf"Epoch {first.epoch + 1}/100000".encode(), sig)
    assert rc == 128 + sig and f"resumed from {ck} at epoch {first.epoch}".encode() in out, err.decode()
    again = fnn.checkpoint.load(ck)
    assert again.epoch > first.epoch, err.decode()
    said = f"saved checkpoint (epoch {again.epoch}) to {ck}; continue with --resume {ck}\n"
    assert err.decode().endswith(said) and err.count(b"\n") <= 2, err.decode()
    assert again.history["epochs"] == list(range(again.epoch)) and again.extra["epochs"] == 100000
    np.testing.assert_array_equal(again.history["history"]["loss"][: first.epoch], first.history["history"]["loss"])


def test_ctrl_c_without_save_exits_130_with_one_line(tmp_path):
    proc = _start([*TRAIN, "--epochs", "100000", "--verbose", "2"])
    rc, _, err = _interrupt_after(proc, "out", rb"Epoch 1/100000")
    assert rc == 130 and err.count(b"\n") == 1, err.decode()
    assert err.startswith(b"fnn train: interrupted") and b"--save" in err


def test_train_piped_into_head_still_saves_its_checkpoint(tmp_path):
    ck = tmp_path / "ck.npz"
    proc = _start([*TRAIN, "--epochs", "3", "--verbose", "0", "--save", str(ck)])
    rc, first, err = _close_stdout_after_first_line(proc)
    assert first.startswith(b"fnn train: iris")
    # quiet, as a process killed by SIGPIPE would be, and the work is kept
    assert err == b"" and rc == 128 + signal.SIGPIPE
    saved = fnn.checkpoint.load(ck)
    assert saved.epoch == 3 and len(saved.history["history"]["loss"]) == 3


def test_train_piped_into_head_during_training_keeps_the_finished_epochs(tmp_path):
    ck = tmp_path / "ck.npz"
    proc = _start([*TRAIN, "--epochs", "100000", "--verbose", "2", "--save", str(ck)])
    rc, first, err = _close_stdout_after_first_line(proc)
    assert first.startswith(b"fnn train: iris")
    assert err == b"" and rc == 128 + signal.SIGPIPE
    saved = fnn.checkpoint.load(ck)
    assert 1 <= saved.epoch < 100000 and len(saved.history["history"]["loss"]) == saved.epoch


COMPARE = ["compare", "--dataset", "iris", "--hidden", "4", "--batch-sizes", "full", "--seeds", "1"]


def _stale_outputs(out: pathlib.Path) -> None:
    out.mkdir()
    (out / "results.json").write_text(json.dumps({"config": {"stale": True}, "runs": []}))
    (out / "results.csv").write_text("stale\n")
    (out / "loss_vs_epoch.png").write_bytes(b"stale")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_during_compare_writes_the_finished_runs_marked_partial(tmp_path, jobs):
    """--apart (a program per run): with --jobs 2 the runs train two at a time in threads: those
    still training when the signal lands stop before their next epoch and are left out; the
    finished ones keep the order asked for."""
    out = tmp_path / "cmp"
    _stale_outputs(out)
    names = ["sgd", "adam", "rmsprop", "adagrad"]
    args = [*COMPARE, "--jobs", jobs, "--optimizers", ",".join(names), "--epochs", "2000", "--out", str(out)]
    args.append("--apart")
    proc = _start(args)
    # each finished run logs one line on stderr: interrupt once the first one has
    rc, _, err = _interrupt_after(proc, "err", rb"sgd batch +full: compiled[^\n]*\n")
    assert rc == 130, err.decode()
    lines = err.decode().splitlines()
    assert "Traceback" not in err.decode()
    logged = [line for line in lines if "compiled in" in line]
    assert lines == [*logged, lines[-1]]  # the finished runs' lines, then ONE line
    assert lines[-1].startswith("fnn compare: interrupted") and "partial" in lines[-1]

    results = json.loads((out / "results.json").read_text())
    assert results["partial"] is True and "stale" not in results["config"]
    runs = results["runs"]
    assert 1 <= len(runs) == len(logged) < len(names)
    done = [r["optimizer"] for r in runs]
    assert done == [name for name in names if name in done] and "sgd" in done
    assert sorted(line.split()[0] for line in logged) == sorted(done)
    if jobs == "1":
        assert done == names[: len(runs)]
    assert all(s["epochs_run"] == 2000 for r in runs for s in r["seeds"])
    assert f"{len(runs)} of {len(names)} runs" in lines[-1]
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) == 1 + len(runs) and [row.split(",")[0] for row in rows[1:]] == done
    assert not (out / "loss_vs_epoch.png").exists()  # no plot of another run is left behind


def test_compare_piped_into_head_still_writes_every_result(tmp_path):
    out = tmp_path / "cmp"
    _stale_outputs(out)
    proc = _start(
        [*COMPARE, "--jobs", "1", "--optimizers", "sgd,adam", "--epochs", "2", "--out", str(out), "--no-plots"]
    )
    rc, first, err = _close_stdout_after_first_line(proc)
    assert first.startswith(b"fnn compare: iris")
    assert rc == 128 + signal.SIGPIPE
    assert [line for line in err.decode().splitlines() if "compiled in" not in line] == []
    results = json.loads((out / "results.json").read_text())
    assert not results.get("partial") and [r["optimizer"] for r in results["runs"]] == ["sgd", "adam"]
    assert len((out / "results.csv").read_text().splitlines()) == 3
