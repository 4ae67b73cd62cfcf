"""Run by tests/test_parallel.py in subprocesses.

As a script: fit on one device and on an 8-device CPU mesh. The device count must be fixed
before JAX initialises, hence a process of its own. Writes an npz with, per case, the params
(flattened leaves) and the history of both runs; the test compares them. Usage: python
tests/_parallel_worker.py OUT.npz

:func:`in_each_process`: run by each worker of examples/multiprocess_launcher.py (its ``--then``),
after that worker's fit, in the same 2 processes: no process start of its own.
"""

import os
import sys

if __name__ == "__main__":  # before JAX starts (not when the launcher's workers load this file)
    os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"

import jax
import numpy as np

import fnn
from fnn import parallel


def weighted_problem():
    """A run with sample weights and a weighted validation triple, on the whole arrays: the
    network, params, optimizer, loss, ``(x, y, w)``, ``(x_val, y_val, w_val)`` and settings."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(31, 3))
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int32)
    w = rng.uniform(0.1, 3.0, size=31)
    net = fnn.mlp([5, 2], activation="tanh")
    params = jax.tree.map(lambda a: np.asarray(a, np.float64), net.init(jax.random.PRNGKey(4), (3,)))
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    settings = dict(batch_size=6, epochs=2, key=jax.random.PRNGKey(5), verbose=0, unroll=1)
    return net, params, fnn.optimizers.adam(1e-2), loss, (x[:23], y[:23], w[:23]), (x[23:], y[23:], w[23:]), settings


# fit's keywords that some process passes otherwise than the others (process 0 passes none of
# them, or adds 1 to params), each refused on every process alike
REFUSED = ("params", "opt_state", "key", "batch_size shuffle", "whole sample_weight", "opt_state on one")


def in_each_process(out: str) -> None:
    """In each process of a 2-process run: fits whose arguments differ between the processes
    (:data:`REFUSED`), then :func:`weighted_problem` with each process passing its shard of every
    per-sample argument. Writes ``OUT.<process>.npz``: each refusal's message, the weighted
    run's params and history, and what predict says to params split over the processes."""
    pid = jax.process_index()
    net, params, opt, loss, (x, y, w), (xv, yv, wv), settings = weighted_problem()
    shard = parallel.process_shard
    mine = dict(mesh=parallel.data_mesh(), sample_weight=shard(w), validation_data=(shard(xv), shard(yv), shard(wv)))
    state = opt.init(params)
    other = {
        "params": dict(params=jax.tree.map(lambda a: a + pid, params)),
        "opt_state": dict(opt_state=fnn.optimizers.set_hyperparams(state, learning_rate=1e-2 * (1 + pid))),
        "key": dict(key=jax.random.PRNGKey(5 + pid)),
        "batch_size shuffle": dict(batch_size=6 + pid, shuffle=pid == 0),
        "whole sample_weight": dict(sample_weight=w),
        "opt_state on one": dict(opt_state=state if pid else None),
    }
    record = {}
    for case in REFUSED:
        try:
            given = dict(net=net, params=params, opt=opt, loss=loss, x=shard(x), y=shard(y), **settings, **mine)
            fnn.fit(**{**given, **other[case]})
            record[f"refused/{case}"] = np.asarray("no error")
        except ValueError as err:
            record[f"refused/{case}"] = np.asarray(str(err))
    r = fnn.fit(net, params, opt, loss, shard(x), shard(y), **{**settings, **mine})
    for i, leaf in enumerate(jax.tree.leaves(r.params)):
        record[f"param{i}"] = np.asarray(leaf)
    for k, v in r.history.history.items():
        record[f"history/{k}"] = np.asarray(v)
    record["shard_error"] = np.asarray(_shard_error(x))
    np.savez(f"{out}.{pid}.npz", **record)


def _shard_error(x) -> str:
    """What fnn.predict says to params split over the processes (each holding part of a kernel)."""
    from jax.sharding import NamedSharding, PartitionSpec

    net = fnn.mlp([8, 2])  # 8 columns: 2 on each of the 4 devices
    params = net.init(jax.random.PRNGKey(0), (x.shape[1],))
    kernel = np.asarray(params[0]["w"])
    columns = NamedSharding(parallel.data_mesh(), PartitionSpec(None, "batch"))  # a part on each device
    params[0]["w"] = jax.make_array_from_callback(kernel.shape, columns, lambda index: kernel[index])
    try:
        fnn.predict(net, params, x[:2])
    except ValueError as e:
        return str(e)
    return ""


def main(out: str) -> None:
    assert jax.device_count() == 8, jax.devices()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(37, 5)).astype(np.float32)
    y = rng.integers(0, 3, size=37)
    # 37 * 0.8 -> 29 training rows in batches of 12: 12, 12 and a remainder of 5, none divisible by 8.
    cases = {
        "manual": (
            fnn.serial(fnn.Dense(16, activation="tanh"), fnn.Dropout(0.25), fnn.Dense(3)),
            dict(grad="manual", validation_split=0.2, metrics=["accuracy"]),
        ),
        "autodiff": (fnn.mlp([16, 3], activation="relu"), dict(grad="autodiff", shuffle=False)),
    }
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    mesh = parallel.data_mesh()
    record = {}
    for name, (net, kw) in cases.items():
        params = net.init(jax.random.PRNGKey(1), (5,))
        for where, m in (("single", None), ("mesh", mesh)):
            r = fnn.fit(
                net,
                params,
                fnn.optimizers.adam(1e-2),
                loss,
                x,
                y,
                batch_size=12,
                epochs=3,
                key=jax.random.PRNGKey(3),
                verbose=0,
                mesh=m,
                **kw,
            )
            for i, leaf in enumerate(jax.tree.leaves(r.params)):
                record[f"{name}/{where}/param{i}"] = np.asarray(leaf)
                record[f"{name}/{where}/devices{i}"] = np.asarray(len(leaf.sharding.device_set))
            for k, v in r.history.history.items():
                record[f"{name}/{where}/history/{k}"] = np.asarray(v)
    placements(record)
    np.savez(out, **record)


def placements(record: dict) -> None:
    """fit (no mesh), predict, evaluate and gradcheck with arrays placed apart: params on device
    3 and x on device 5; params replicated on the data mesh (as fit(mesh=) returns them) and data
    split on another mesh (Explicit axes). Each result beside the one from NumPy arrays."""
    from jax.sharding import NamedSharding, PartitionSpec as P

    rng = np.random.default_rng(1)
    x = rng.normal(size=(12, 3)).astype(np.float32)
    # int64 labels (NumPy's default), put on the devices by the fits with x64 off, then gradcheck's
    # in float64 (its x64): they reached its program as int32 now and then before it copied them
    y = rng.integers(0, 2, size=12)
    net = fnn.mlp([4, 2], activation="tanh")
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    params = jax.tree.map(np.asarray, net.init(jax.random.PRNGKey(0), (3,)))
    dev = jax.devices()
    p3, x5 = jax.device_put(params, dev[3]), jax.device_put(x, dev[5])
    replicated = parallel.replicate(params, parallel.data_mesh())
    split = NamedSharding(jax.make_mesh((4, 2), ("a", "b")), P("a"))  # 12 rows: 3 per device
    xs, ys = jax.device_put(x, split), jax.device_put(y, split)
    kw = dict(batch_size=5, epochs=1, shuffle=False, verbose=0)  # 5 rows a batch: not a multiple of 4
    fits = {
        "numpy": fnn.fit(net, params, "sgd", loss, x, y, **kw),
        "apart": fnn.fit(net, p3, "sgd", loss, x5, y, **kw),
        "split": fnn.fit(net, params, "sgd", loss, xs, ys, **kw),
    }
    for name, r in fits.items():
        record[f"placement/fit/{name}"] = np.concatenate([np.ravel(a) for a in jax.tree.leaves(r.params)])
    record["placement/fit/apart_device"] = np.asarray(jax.tree.leaves(fits["apart"].params)[0].devices().pop().id)
    for name, (p, a, b) in {"numpy": (params, x, y), "apart": (p3, x5, y), "split": (replicated, xs, ys)}.items():
        out = fnn.predict(net, p, a, batch_size=5)
        record[f"placement/predict/{name}"] = np.asarray(out)
        record[f"placement/evaluate/{name}"] = np.asarray(fnn.evaluate(net, p, loss, a, b, batch_size=5)["loss"])
        if name != "numpy":
            record[f"placement/predict/{name}_devices"] = np.asarray(sorted(d.id for d in out.devices()))
    report = fnn.gradcheck(net, loss, replicated, x5, y)
    record["placement/gradcheck_passed"] = np.asarray(report.passed)
    # jax.make_mesh's mesh (Explicit axes), the data on it, the run inside jax.set_mesh, with a split
    explicit = jax.make_mesh((8,), ("batch",), axis_types=(jax.sharding.AxisType.Explicit,))
    on_it = jax.device_put((params, x, y), NamedSharding(explicit, P()))
    split_kw = dict(kw, validation_split=0.25)
    with jax.set_mesh(explicit):
        inside = fnn.fit(net, on_it[0], "sgd", loss, on_it[1], on_it[2], mesh=explicit, **split_kw)
    plain = fnn.fit(net, params, "sgd", loss, x, y, **split_kw)
    for name, r in (("explicit", inside), ("plain", plain)):
        record[f"placement/set_mesh/{name}"] = np.asarray(r.history.history["loss"] + r.history.history["val_loss"])


if __name__ == "__main__":
    main(sys.argv[1])
