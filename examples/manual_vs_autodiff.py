"""Backpropagation by hand vs automatic differentiation.

fnn writes every layer's backward pass by hand (the chain rule, layer by layer, last layer
first) and checks it against ``jax.grad`` of the same function and against finite differences.
This example does the same thing in three steps:

1. One Dense layer with MSE, backpropagated in plain NumPy:
       forward   y = x W + b                       x (N, in), W (in, out), b (out,)
       loss      L = mean((y - t)^2)               over all N * out entries
       backward  dL/dy = 2 (y - t) / (N out)
                 dL/dW = x^T dL/dy                 (in, out)
                 dL/db = sum over samples of dL/dy (out,)
                 dL/dx = dL/dy W^T                 (what the layer below receives)
2. A whole network: ``fnn.value_and_grad(mode="manual")`` vs ``mode="autodiff"`` (``jax.grad``
   of fnn's forward, where each built-in activation and loss runs its hand-written derivative:
   this checks the chain rule through the layers, so the two agree exactly), vs ``jax.grad`` of
   the same network written again in plain ``jax.numpy`` (an independent reference: the two
   differ by float32 rounding), and ``fnn.gradcheck`` (manual vs autodiff vs finite
   differences, per layer, in float64).
3. The speed of both, compiled.

Run: python examples/manual_vs_autodiff.py [--quick]
"""

import argparse
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import fnn


def median_seconds(fn, *args, repeats):
    jax.block_until_ready(fn(*args))  # the first call compiles; do not time it
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def plain_loss(params, x, labels):
    """The network of part 2 written again in plain ``jax.numpy`` (tanh hidden layers, a linear
    last layer, mean sparse cross-entropy on the logits), with nothing of fnn's: its
    ``jax.grad`` is a reference independent of fnn's hand-written derivatives."""
    h = x
    for layer in params[:-1]:
        h = jnp.tanh(h @ layer["w"] + layer["b"])
    z = h @ params[-1]["w"] + params[-1]["b"]
    return jnp.mean(jax.nn.logsumexp(z, axis=1) - jnp.take_along_axis(z, labels[:, None], axis=1)[:, 0])


def largest_gap(a, b):
    return max(float(jnp.max(jnp.abs(u - v))) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings (also FNN_QUICK=1)")
    args = parser.parse_args()
    quick = args.quick or os.environ.get("FNN_QUICK") == "1"

    # ---- 1. One Dense layer by hand ---------------------------------------------------------
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3))
    t = rng.normal(size=(5, 2))
    layer = fnn.mlp([2])  # a single Dense(2) layer, linear
    with jax.enable_x64(True):  # float64 throughout, so the three answers can agree exactly
        params = layer.init(jax.random.PRNGKey(0), input_shape=(3,), dtype=jnp.float64)
        w, b = np.asarray(params[0]["w"]), np.asarray(params[0]["b"])

        y = x @ w + b  # forward
        dy = 2 * (y - t) / y.size  # dL/dy for L = mean((y - t)^2)
        dw, db, dx = x.T @ dy, dy.sum(axis=0), dy @ w.T  # backward: the chain rule

        _, cache = layer.forward(params, jnp.asarray(x))
        grads, dx_fnn = layer.backward(params, cache, jnp.asarray(dy))
        auto = jax.grad(lambda p: fnn.losses.mean_squared_error(t, layer.apply(p, jnp.asarray(x))))(params)
        grads, dx_fnn, auto = jax.tree.map(np.asarray, (grads, dx_fnn, auto))  # leave jax's float64 here
    print("one Dense layer + MSE, NumPy by hand vs fnn's backward vs jax.grad (largest differences):")
    print(
        f"  dW: {np.abs(dw - grads[0]['w']).max():.1e} / {np.abs(dw - auto[0]['w']).max():.1e}   "
        f"db: {np.abs(db - grads[0]['b']).max():.1e} / {np.abs(db - auto[0]['b']).max():.1e}   "
        f"dx: {np.abs(dx - dx_fnn).max():.1e}"
    )

    # ---- 2. A whole network ------------------------------------------------------------------
    (x_train, y_train), _ = fnn.datasets.load("digits")
    sizes = [16, 10] if quick else [64, 64, 10]
    net = fnn.mlp(sizes, activation="tanh")
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    params = net.init(jax.random.PRNGKey(0), input_shape=(64,))
    manual = jax.jit(fnn.value_and_grad(net, loss, mode="manual"))
    autodiff = jax.jit(fnn.value_and_grad(net, loss, mode="autodiff"))
    plain = jax.jit(jax.value_and_grad(plain_loss))  # jax.grad through jnp.tanh and logsumexp
    (v1, g1), (v2, g2) = manual(params, x_train, y_train), autodiff(params, x_train, y_train)
    v3, g3 = plain(params, x_train, y_train)
    print(
        f"\nnetwork {'-'.join(map(str, [64, *sizes]))} (tanh): loss {float(v1):.6f} (manual), "
        f"{float(v2):.6f} (autodiff), {float(v3):.6f} (plain jax.numpy); largest gradient differences:"
    )
    print(f"  manual vs autodiff {largest_gap(g1, g2):.1e} (the same derivatives of tanh and the loss)")
    print(f"  manual vs jax.grad of plain jax.numpy {largest_gap(g1, g3):.1e} (float32 rounding)")

    print("\ngradcheck on 16 samples in float64:")
    with jax.enable_x64(True):
        params64 = net.init(jax.random.PRNGKey(0), input_shape=(64,), dtype=jnp.float64)
        print(fnn.gradcheck(net, loss, params64, x_train[:16].astype(np.float64), y_train[:16]))

    # ---- 3. Speed ----------------------------------------------------------------------------
    repeats = 5 if quick else 50
    t_manual = median_seconds(manual, params, x_train, y_train, repeats=repeats)
    t_auto = median_seconds(autodiff, params, x_train, y_train, repeats=repeats)
    print(
        f"\none loss + gradient on {len(x_train)} samples, compiled, median of {repeats}: manual "
        f"{t_manual * 1e3:.3f} ms, autodiff {t_auto * 1e3:.3f} ms (ratio {t_manual / t_auto:.2f})"
    )


if __name__ == "__main__":
    main()
