"""Gradient descent vs stochastic gradient descent vs mini-batch gradient descent.

One epoch = one pass over the N training samples. The batch size B decides how many samples
each gradient is averaged over, and therefore how many updates an epoch makes:

    iterations per epoch = ceil(N / B)        (the last, smaller batch is used as it is)

    B = N   gradient descent (GD)       1 update per epoch, exact gradient, smooth but slow
    B = 1   stochastic GD (SGD)         N updates per epoch, very noisy gradient
    B = 32  mini-batch GD               in between: the usual choice

Everything else is held fixed: same network, same initial parameters, same plain SGD update
``w <- w - learning_rate * grad``, same learning rate, same number of epochs.

Run: python examples/gd_sgd_minibatch.py [--quick] [--plot curves.png]
"""

import argparse
import math
import os

import jax

import fnn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings (also FNN_QUICK=1)")
    parser.add_argument("--plot", metavar="PNG", help="save the loss curves here (needs matplotlib)")
    args = parser.parse_args()
    quick = args.quick or os.environ.get("FNN_QUICK") == "1"
    epochs = 2 if quick else 20

    (x, y), _ = fnn.datasets.load("digits")
    n = x.shape[0]
    net = fnn.mlp([32, 10], activation="relu")
    params0 = net.init(jax.random.PRNGKey(0), input_shape=(64,))
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    opt = fnn.optimizers.sgd(learning_rate=0.05)

    runs = {}
    for label, batch_size in (("GD (B=N)", n), ("SGD (B=1)", 1), ("mini-batch (B=32)", 32)):
        print(
            f"{label:18s} N={n}, B={batch_size}: ceil({n}/{batch_size}) = "
            f"{math.ceil(n / batch_size)} iterations per epoch"
        )
        result = fnn.fit(
            net,
            params0,
            opt,
            loss,
            x,
            y,
            batch_size=batch_size,
            epochs=epochs,
            shuffle=True,
            key=jax.random.PRNGKey(1),
            verbose=0,
        )
        runs[label] = result.history

    print(f"\ntraining loss after each epoch ({epochs} epochs, learning rate 0.05):")
    print(f"{'epoch':>7} | " + " | ".join(f"{k:>17}" for k in runs))
    for e in range(epochs):
        print(f"{e + 1:7d} | " + " | ".join(f"{h['loss'][e]:17.4f}" for h in runs.values()))
    print(f"{'updates':>7} | " + " | ".join(f"{h.iterations_per_epoch * epochs:17d}" for h in runs.values()))
    # The first epoch includes compilation, so wall time is summed from the second one on.
    print(f"{'seconds':>7} | " + " | ".join(f"{sum(h.times[1:]):17.3f}" for h in runs.values()))
    print("\nGD made one careful step per epoch and barely moved; SGD made N cheap, noisy steps;")
    print("mini-batches get most of SGD's progress per epoch with far fewer, better-aimed steps.")

    if args.plot:
        try:
            import matplotlib
        except ImportError:
            print('matplotlib is not installed: no plot (pip install "fnn[examples]")')
            return
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for label, h in runs.items():
            ax.plot(range(1, epochs + 1), h["loss"], marker="o", label=label)
        ax.set(xlabel="epoch", ylabel="training loss", yscale="log", title="GD vs SGD vs mini-batch")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f"saved {args.plot}")


if __name__ == "__main__":
    main()
