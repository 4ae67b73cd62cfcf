"""Smoke tests of ``benchmarks/``: each script's ``main`` in --quick mode at tiny sizes (the
numbers are meaningless there; what is checked is that every runner runs, the table and JSON
hold consistent figures), plus exact checks of the shared helpers.

The end-to-end runs are marked ``slow`` (``pytest -m "not slow"`` leaves them out). They pass
the smallest sizes that still show what they check: few samples (often one batch, so that each
compiled epoch is a single step) and ``--unroll 1`` where the loop's unrolling is not the point.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import math

import numpy as np
import pytest

# benchmarks/ is a folder of scripts beside the package, not installed with it; pyproject's
# ``pythonpath = ["."]`` puts the checkout on sys.path however pytest was started.
from benchmarks import (
    _common as C,
    adam_layouts as bench_adam_layouts,
    breakdown as bench_breakdown,
    compile as bench_compile,
    fit_loop as bench_fit_loop,
    grad as bench_grad,
    optimizers as bench_optimizers,
    scaling as bench_scaling,
    time_to_result as bench_ttr,
    train_throughput as bench_tt,
)


@pytest.fixture(scope="module", autouse=True)
def _frozen_heap():
    """The timing helpers collect garbage before every timed call (``C._timed``); a full
    collection walks every object the process holds, a second or so after the test files that ran
    before this one in the same worker. ``gc.freeze`` sets those objects aside for this file: the
    collections still run, over what this file's tests allocate."""
    gc.freeze()
    yield
    gc.unfreeze()


def _positive_finite(*xs):
    return all(isinstance(x, float) and math.isfinite(x) and x > 0 for x in xs)


# --------------------------------------------------------------------------------------------
# Shared helpers: exact numbers
# --------------------------------------------------------------------------------------------


def test_mlp_flops_per_sample_is_6w_minus_2w1():
    # 784-256-256-10: W = 200704 + 65536 + 2560 = 268800, W1 = 200704.
    assert C.mlp_flops_per_sample([784, 256, 256, 10]) == 6 * 268800 - 2 * 200704
    # One layer: the input gradient is never needed, so forward + weight gradient = 4 W.
    assert C.mlp_flops_per_sample([3, 5]) == 4 * 15


def test_markdown_table_aligns_text_left_and_numbers_right():
    table = C.markdown_table(["name", "value"], [["adam", 1234567.0], ["sgd", 0.5]])
    assert table.split("\n") == [
        "| name |     value |",
        "|:-----|----------:|",
        "| adam | 1,234,567 |",
        "| sgd  |      0.50 |",
    ]
    assert C.markdown_table(["x"], [[None], [float("nan")]]).split("\n")[2:] == ["|   - |", "| nan |"]


def test_interleaved_rotates_the_order_and_times_every_round():
    calls = []
    runners = {k: (lambda k=k: calls.append(k)) for k in "abc"}
    between = []
    times = C.interleaved(runners, 3, between=lambda: between.append(len(calls)))
    assert calls == list("abc" + "bca" + "cab")
    assert between == [3, 6, 9]
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3, "c": 3}


def test_synthetic_classification_is_reproducible_and_learnable():
    x, y = C.synthetic_classification(200, 7, 3, seed=4)
    x2, y2 = C.synthetic_classification(200, 7, 3, seed=4)
    assert x.dtype == np.float32 and y.dtype == np.int32 and x.shape == (200, 7) and y.shape == (200,)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert set(np.unique(y)) <= {0, 1, 2} and len(np.unique(y)) > 1
    assert x.min() >= 0.0 and x.max() < 1.0


def test_scaling_sample_count_is_whole_batches_within_caps():
    args = bench_scaling.build_parser().parse_args(
        ["--epoch-gflop", "1", "--max-n", "1000", "--max-iters", "5", "--min-iters", "2"]
    )
    assert bench_scaling.samples_for(1e6, 32, args) == 5 * 32  # iteration cap
    assert bench_scaling.samples_for(1e3, 7, args) == 5 * 7  # iteration cap again
    args.max_iters = 10_000
    assert bench_scaling.samples_for(1e3, 7, args) == (1000 // 7) * 7  # sample cap
    assert bench_scaling.samples_for(1e12, 64, args) == 2 * 64  # at least min_iters batches
    assert bench_scaling.samples_for(1e8, 3, args) == 3 * 3  # 10 samples of work: 3 batches


def test_train_throughput_targets_from_results():
    rows = [
        (1, "fnn_manual", 100.0),
        (1, "torch_eager", 8.0),
        (1, "keras_fit", 25.0),
        (1, "optax_step", 50.0),
        (1, "hand_scan", 90.0),
        (1, "fnn_autodiff", 80.0),
        (1024, "fnn_manual", 10.0),
        (1024, "hand_scan", 12.5),
        (1024, "optax_step", 9.0),
    ]
    results = [{"batch_size": b, "runner": r, "samples_per_s": s, "pct_peak": 81.0} for b, r, s in rows]
    got = {(t["batch_size"], t["target"]): (t["measured"], t["met"]) for t in bench_tt.evaluate_targets(results)}
    assert got[(1, "fnn / torch eager >= 10x")] == (12.5, True)
    assert got[(1, "fnn / keras fit >= 5x")] == (4.0, False)
    assert got[(1, "fnn / optax step >= 3x")] == (2.0, False)
    assert got[(1, "fnn / hand scan >= 1x")] == (pytest.approx(100 / 90), True)
    assert got[(1, "manual time / autodiff time <= 1")] == (0.8, True)
    assert got[(1024, "fnn / best baseline (hand scan) >= 1x")] == (0.8, False)
    assert got[(1024, "fnn % of matmul peak >= 80")] == (81.0, True)
    assert not any(k[0] == 32 for k in got)  # no batch-32 rows: nothing to check


def test_hand_scan_unroll_follows_fit_unless_given():
    assert bench_tt.scan_unroll(8, 100, unroll=None, scan_unroll=3) == 3
    assert bench_tt.scan_unroll(8, 100, unroll=2) == 2
    assert bench_tt.scan_unroll(8, 100) >= 1


def test_bad_runner_name_is_rejected():
    with pytest.raises(SystemExit, match="unknown.*'nope'.*known"):
        bench_tt.main(["--quick", "--runners", "fnn_manual,nope"])


# --------------------------------------------------------------------------------------------
# Each benchmark end to end, --quick
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_train_throughput_quick(tmp_path, capsys):
    path = tmp_path / "tt.json"
    # 8 samples in batches of 4, as test_breakdown_quick's fit runs: its epochs are compiled once
    out = bench_tt.main(
        [
            "--quick",
            "--n",
            "8",
            "--batch-sizes",
            "4",
            "--slow-iters",
            "1",
            "--peak-size",
            "64",
            "--unroll",
            "1",
            "--json",
            str(path),
        ]
    )
    printed = capsys.readouterr().out
    ran = {r["runner"] for r in out["results"]}
    assert {"fnn_manual", "fnn_autodiff"} <= ran
    for name, pkg in (
        ("hand_scan", "optax"),
        ("optax_step", "optax"),
        ("torch_eager", "torch"),
        ("keras_fit", "keras"),
    ):
        # Either it ran, or it is reported as skipped because its package is missing.
        if importlib.util.find_spec(pkg) is None:
            assert name in out["skipped"] and "not importable" in out["skipped"][name]
        else:
            assert name in ran, out["skipped"]
    peak = out["peak_flops"]
    assert _positive_finite(peak)
    for r in out["results"]:
        assert _positive_finite(r["samples_per_s"], r["median_s"])
        assert r["samples_per_s"] == pytest.approx(r["samples"] / r["median_s"])
        assert r["pct_peak"] == pytest.approx(100 * r["samples_per_s"] * out["flops_per_sample"] / peak)
        assert len(r["seconds"]) == out["rounds"] == 1
        assert r["iterations"] == (math.ceil(8 / 4) if r["runner"] not in ("torch_eager", "keras_fit") else 1)
    assert "| batch | runner" in printed and "fnn manual" in printed
    assert ("hand scan (unroll" in printed) == ("hand_scan" in ran)
    # the slow baselines ran 1 of the 2 iterations
    assert ("† timed on a fixed subset" in printed) == bool(ran & {"torch_eager", "keras_fit"})
    saved = json.loads(path.read_text())
    assert saved["results"][0]["samples_per_s"] == out["results"][0]["samples_per_s"]
    assert saved["machine"]["nproc"] >= 1 and saved["sizes"] == [64, 32, 10]


@pytest.mark.slow
def test_grad_quick_agrees_with_autodiff(tmp_path):
    out = bench_grad.main(
        ["--quick", "--widths", "16", "--depths", "1", "--batches", "1", "--json", str(tmp_path / "g.json")]
    )
    # One axis at a time around (width 16, depth 1, batch 8), the base measured once.
    assert [(r["width"], r["depth"], r["batch"]) for r in out["results"]] == [(16, 1, 8), (16, 1, 1)]
    for r in out["results"]:
        assert _positive_finite(r["manual_s"], r["autodiff_s"])
        assert r["ratio"] == pytest.approx(r["manual_s"] / r["autodiff_s"])
        assert r["rel_diff"] < 1e-5  # float32 params: hand-written and jax.grad agree to rounding
    assert json.loads((tmp_path / "g.json").read_text())["benchmark"] == "grad"


def test_grad_max_rel_diff_is_relative_to_the_reference():
    a = {"w": np.array([1.0, 2.0]), "b": np.array([0.0])}
    b = {"w": np.array([1.0, 4.0]), "b": np.array([0.5])}
    assert bench_grad.max_rel_diff(a, b) == pytest.approx(2.0 / 4.0)


@pytest.mark.slow
def test_optimizers_quick(tmp_path):
    args = ["--quick", "--only", "sgd,adam", "--json", str(tmp_path / "o.json")]
    if importlib.util.find_spec("optax") is None:  # the test extra installs it; say so if it is not
        with pytest.raises(SystemExit, match=r"needs optax \(pip install optax\)"):
            bench_optimizers.main(args)
        return
    out = bench_optimizers.main(args)
    assert [r["optimizer"] for r in out["results"]] == ["sgd", "adam"]
    assert out["n_params"] == 32 * 64 + 64 + 64 * 10 + 10
    for r in out["results"]:
        assert _positive_finite(r["fnn_s"], r["optax_s"])
        assert r["speedup"] == pytest.approx(r["optax_s"] / r["fnn_s"])
    with pytest.raises(SystemExit, match="unknown.*known"):
        bench_optimizers.main(["--quick", "--only", "adamm"])


@pytest.mark.slow
def test_scaling_quick(tmp_path):
    # --max-n 16: one batch of 16 samples per epoch; the peak's matmul as train_throughput's above
    out = bench_scaling.main(
        [
            "--quick",
            "--widths",
            "16",
            "--depths",
            "1",
            "--batch-sizes",
            "16",
            "--max-n",
            "16",
            "--peak-size",
            "64",
            "--json",
            str(tmp_path / "s.json"),
        ]
    )
    assert [(r["axis"], r["width"], r["depth"], r["batch"]) for r in out["results"]] == [
        ("width", 16, 1, 16),
        ("depth", 16, 1, 16),
        ("batch", 16, 1, 16),
    ]
    for r in out["results"]:
        assert r["n"] % r["batch"] == 0 and r["iterations"] == r["n"] // r["batch"]
        assert _positive_finite(r["samples_per_s"], r["pct_peak"])


@pytest.mark.slow
def test_fit_loop_quick_and_its_floor_trains_what_fit_trains(tmp_path):
    path = tmp_path / "f.json"
    # the problem of the check below in shape (14 training rows in batches of 4, the last one
    # partial, 6 validation rows, 3 features, MLP 3-4-10): the check reuses every program compiled here
    sizes = ["--n", "14", "--n-val", "6", "--features", "3", "--hidden", "4", "--batch-sizes", "4"]
    out = bench_fit_loop.main(["--quick", *sizes, "--json", str(path)])
    assert [(r["batch_size"], r["runner"]) for r in out["records"]] == [(4, "fit"), (4, "fit_many K=2")]
    for r in out["records"]:
        assert _positive_finite(r["seconds"], r["floor_seconds"], r["ratio"])
        assert r["ratio"] == pytest.approx(r["seconds"] / r["floor_seconds"])
        assert r["ms_per_epoch"] == pytest.approx(1e3 * r["seconds"] / 3)
    assert json.loads(path.read_text())["records"] == json.loads(json.dumps(out["records"]))

    # the floor is fit's own computation: fit's program on fit's orders gives fit's params
    import jax

    import fnn

    x, y = C.synthetic_classification(20, 3, 10, seed=1)
    val = (x[14:], y[14:])
    x, y = x[:14], y[:14]
    net, opt = fnn.mlp([4, 10]), fnn.optimizers.adam(1e-2)
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    key = jax.random.PRNGKey(3)
    params = net.init(key, (3,))
    # accuracy logged, as the benchmark's fit logs it beside its floor (which always logs it)
    settings = dict(batch_size=4, epochs=3, validation_data=val, metrics=["accuracy"])
    fitted = fnn.fit(net, params, opt, loss, x, y, key=key, verbose=0, **settings)
    floor = bench_fit_loop.floor_runner(
        net, params, opt, loss, x, y, val, batch_size=4, epochs=3, key=key, models=False
    )
    for a, b in zip(jax.tree.leaves(floor()), jax.tree.leaves((fitted.params, fitted.opt_state)), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    keys = jax.random.split(key, 2)
    stacked = jax.tree.map(lambda *a: np.stack(a), *[net.init(k, (3,)) for k in keys])
    many = fnn.fit_many(net, stacked, opt, loss, x, y, key=keys, **settings)
    floor = bench_fit_loop.floor_runner(
        net, stacked, opt, loss, x, y, val, batch_size=4, epochs=3, key=keys, models=True
    )
    for a, b in zip(jax.tree.leaves(floor()), jax.tree.leaves((many.params, many.opt_state)), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
def test_compile_quick(tmp_path):
    # one batch of 8 samples: the smallest epoch program
    out = bench_compile.main(["--quick", "--batch-sizes", "8", "--n", "8", "--json", str(tmp_path / "c.json")])
    whats = [r["what"] for r in out["results"]]
    assert whats[:2] == ["fit epoch", "train_step"]
    for r in out["results"]:
        # A first call with new objects compiles; the second reuses it and is far cheaper.
        assert r["xla_s"] > 0 and r["first_s"] > r["second_s"]
        assert r["compile_s"] == pytest.approx(r["trace_s"] + r["xla_s"])


def test_breakdown_update_scan_equals_repeated_updates():
    import jax
    import jax.numpy as jnp

    import fnn

    params = {"w": jnp.array([[0.5, -1.0], [2.0, 0.25]]), "b": jnp.array([0.1, -0.2])}
    grads = {"w": jnp.array([[0.3, -0.1], [0.0, 2.0]]), "b": jnp.array([-1.0, 0.5])}
    opt = fnn.optimizers.adam(0.1)
    run, carry = bench_breakdown.update_scan(opt, params, grads, 3)
    run()
    update = jax.jit(opt.update)  # one compilation for the three calls
    p, s = params, opt.init(params)
    for i in range(3):
        g = jax.tree.map(lambda a: a * np.float32(1 + 1e-7 * i), grads)
        u, s = update(g, s, p)
        p = fnn.optimizers.apply_updates(p, u)
    for a, b in zip(jax.tree.leaves(carry[0]), jax.tree.leaves(p), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
    assert int(carry[1].count) == 3
    # The caller's params are copied, never donated.
    np.testing.assert_array_equal(np.asarray(params["w"]), [[0.5, -1.0], [2.0, 0.25]])


@pytest.mark.slow
def test_breakdown_quick(tmp_path):
    out = bench_breakdown.main(["--quick", "--n", "8", "--batch-sizes", "1", "4", "--json", str(tmp_path / "b.json")])
    parts = list(bench_breakdown.PARTS)
    assert [(r["batch_size"], r["part"]) for r in out["results"]] == [(b, p) for b in (1, 4) for p in parts]
    for r in out["results"]:
        assert _positive_finite(r["us_per_step"])
        # fit's steps are the epoch's iterations (ceil(8 / B): 8 and 2); the scans run at least 4.
        assert r["steps"] == (
            math.ceil(8 / r["batch_size"]) if r["part"].startswith("fit") else max(4, math.ceil(8 / r["batch_size"]))
        )
    d = {x["batch_size"]: x for x in out["derived"]}
    us = {(r["batch_size"], r["part"]): r["us_per_step"] for r in out["results"]}
    assert d[4]["gradient_us"] == pytest.approx(us[(4, "fit, sgd")] - us[(4, "sgd alone")])
    assert d[1]["adam_share"] == pytest.approx(us[(1, "adam alone")] / us[(1, "fit, adam")])
    assert out["parameters"] == 64 * 32 + 32 + 32 * 10 + 10
    assert json.loads((tmp_path / "b.json").read_text())["benchmark"] == "breakdown"


@pytest.mark.slow
def test_gpu_sh_smoke_runs_every_step_and_reads_the_target_back(tmp_path):
    # The GPU script cannot run its real sizes here; --smoke runs the same steps at tiny sizes on
    # any backend, so a typo in it is caught before a GPU is lent.
    import os
    import pathlib
    import subprocess

    script = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.sh"
    # Its steps are separate processes, and compiling is most of what they do at these sizes: a
    # compilation cache of their own lets a later one load what an earlier one compiled (the
    # random initialisers, the float32 and bfloat16 epochs that train_throughput and scaling
    # share), and XLA skips LLVM's optimisations (the smoke run's timings mean nothing anyway).
    # The steps stay separate processes, as on the device: the smoke run is gpu.sh's rehearsal.
    env = {
        **os.environ,
        "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax-cache"),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1",
        "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip(),
    }
    proc = subprocess.run(
        ["bash", str(script), "--smoke", str(tmp_path)], capture_output=True, text=True, timeout=600, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = {
        "train_throughput_mnist": ("train_throughput", "float32"),
        "train_throughput_32_float32": ("train_throughput", "float32"),
        "train_throughput_32_bfloat16": ("train_throughput", "bfloat16"),
        "scaling_float32": ("scaling", "float32"),
        "scaling_bfloat16": ("scaling", "bfloat16"),
    }
    for name, (benchmark, dtype) in runs.items():
        payload = json.loads((tmp_path / f"{name}.json").read_text())
        assert (payload["benchmark"], payload["args"]["dtype"]) == (benchmark, dtype)
        assert (tmp_path / f"{name}.md").read_text().startswith("## ")
    lines = [ln for ln in proc.stdout.splitlines() if "width-32 MLP at batch 16" in ln]
    assert [ln.split(":")[0] for ln in lines] == ["float32", "bfloat16"]


def test_adam_layouts_update_equals_fnn_adam():
    # The script's Adam is fnn's rule: one step on the same numbers gives fnn's update.
    import jax.numpy as jnp

    import fnn

    g, p = jnp.array([0.5, -2.0, 0.0]), jnp.array([1.0, 0.25, -3.0])
    m, v = jnp.array([0.1, 0.2, -0.3]), jnp.array([0.01, 0.04, 0.09])
    opt = fnn.optimizers.adam(bench_adam_layouts.LR)
    state = opt.init(p)
    adam_state = state.inner_state[0]._replace(
        count=jnp.asarray(4, jnp.int32), mu=m, nu=v
    )  # chain: Adam, then the rate
    state = state._replace(inner_state=(adam_state, *state.inner_state[1:]))
    u, s = opt.update(g, state, p)
    p2, m2, v2 = bench_adam_layouts.adam(g, p, m, v, 5.0)
    np.testing.assert_allclose(np.asarray(p2), np.asarray(p + u), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(m2), np.asarray(s.inner_state[0].mu), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(v2), np.asarray(s.inner_state[0].nu), rtol=1e-6)


@pytest.mark.slow
def test_adam_layouts_quick(tmp_path):
    out = bench_adam_layouts.main(["--quick", "--json", str(tmp_path / "a.json")])
    assert [(r["what"], r["layout"]) for r in out["results"]] == [
        ("update alone", "separate"),
        ("update alone", "stacked m,v"),
        ("update alone", "stacked p,m,v"),
        ("update alone", "separate, no sqrt/div"),
        ("update alone", "chunked (64)"),
        ("batch-1 epoch", "per leaf"),
        ("batch-1 epoch", "flat"),
    ]
    for r in out["results"]:
        assert _positive_finite(r["us_per_step"], r["vs_fnn_layout"])
    assert out["parameters"] == 16 * 8 + 8 + 8 * 4 + 4
    assert out["epoch_max_abs_diff"] < 1e-5  # the two layouts train the same network
    assert out["chunked_max_abs_diff"] < 1e-6


@pytest.mark.slow
def test_time_to_result_quick(tmp_path):
    """fnn compare cold (empty cache) and warm (filled) in fresh processes, and the sweep of new
    optimizer objects, which shares one compiled epoch: well under 8 compilations' worth."""
    # one optimizer: each compare process compiles one epoch program, not one per optimizer
    args = ["--quick", "--baselines", "none", "--optimizers", "adam", "--json", str(tmp_path / "t.json")]
    out = bench_ttr.main(args)
    assert set(out["medians"]) == {"fnn cold", "fnn warm"} and out["ratios"] == {}
    assert all(len(v) == 1 and v[0] > 0 for v in out["seconds"].values())
    assert out["sizes"] == {"x_train": 1150, "x_val": 288, "x_test": 359}  # digits as fnn compare splits it
    sweep = out["sweep"]
    assert sweep["trials"] == 8 and all(math.isfinite(v) for v in sweep["final_losses"])
    # 8 separate compilations would be ~8x one; sharing one keeps the sweep near 1x (noise aside)
    assert sweep["ratio_to_one_compile_plus_trainings"] < 4
    assert json.loads((tmp_path / "t.json").read_text())["benchmark"] == "time_to_result"
