"""Compare optimizers on one problem: no optimizer is best everywhere, so try several.

Each optimizer turns the same gradient g into a different step:

    sgd       w <- w - lr g
    momentum  v <- 0.9 v + g;             w <- w - lr v          (remembers the past direction)
    rmsprop   s <- 0.99 s + 0.01 g^2;     w <- w - lr g / sqrt(s) (per-weight step sizes)
    adam      momentum + rmsprop, with bias correction for the first steps
    lion      w <- w - lr sign(momentum)  (every weight moves by exactly lr)

For a fair comparison every run starts from the SAME initial parameters and sees the batches
in the SAME order; only the update rule (and its usual learning rate) changes. The command
``fnn compare`` does this for more optimizers, batch sizes and seeds, with plots.

Run: python examples/compare_optimizers.py [--quick]
"""

import argparse
import os

import jax

import fnn

# Learning rates that suit each rule on this problem: adaptive methods divide by a running
# gradient scale, so they want much smaller rates than plain SGD.
LEARNING_RATES = {"sgd": 0.1, "momentum": 0.05, "rmsprop": 1e-3, "adam": 2e-3, "lion": 3e-4}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings (also FNN_QUICK=1)")
    args = parser.parse_args()
    quick = args.quick or os.environ.get("FNN_QUICK") == "1"
    names = ["sgd", "adam"] if quick else list(LEARNING_RATES)
    epochs = 2 if quick else 20

    (x_train, y_train), (x_test, y_test) = fnn.datasets.load("digits")
    net = fnn.mlp([32, 10] if quick else [64, 10], activation="relu")
    params0 = net.init(jax.random.PRNGKey(0), input_shape=(64,))  # shared starting point
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)

    rows = []
    for name in names:
        opt = fnn.optimizers.get(name, learning_rate=LEARNING_RATES[name])
        result = fnn.fit(
            net,
            params0,
            opt,
            loss,
            x_train,
            y_train,
            batch_size=32,
            epochs=epochs,
            key=jax.random.PRNGKey(1),
            validation_split=0.2,
            metrics=["accuracy"],
            verbose=0,
        )
        h = result.history
        test = fnn.evaluate(net, result.params, loss, x_test, y_test, metrics=["accuracy"])
        rows.append(
            (name, LEARNING_RATES[name], h["loss"][-1], h["val_loss"][-1], test["accuracy"], sum(h.times[1:]))
        )  # epoch 1 includes compilation
        print(f"trained {name}")

    print(f"\n{epochs} epochs, batch 32, sorted by final validation loss:")
    print(f"{'optimizer':>9} | {'lr':>6} | {'train loss':>10} | {'val loss':>8} | {'test acc':>8} | {'seconds':>7}")
    for name, lr, train, val, acc, seconds in sorted(rows, key=lambda r: r[3]):
        print(f"{name:>9} | {lr:6g} | {train:10.4f} | {val:8.4f} | {acc:8.3f} | {seconds:7.3f}")


if __name__ == "__main__":
    main()
