"""Run by tests/test_parallel.py in a subprocess: fit on one device and on an 8-device CPU mesh.

The device count must be fixed before JAX initialises, hence a process of its own. Writes an
npz with, per case, the params (flattened leaves) and the history of both runs; the test
compares them. Usage: python tests/_parallel_worker.py OUT.npz
"""

import os
import sys

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"

import jax
import numpy as np

import fnn
from fnn import parallel


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
    np.savez(out, **record)


if __name__ == "__main__":
    main(sys.argv[1])
