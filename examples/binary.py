"""Binary classification on breast_cancer with binary cross-entropy.

One output unit gives a logit z; the probability of class 1 is p = sigmoid(z) = 1 / (1 + e^-z).

    BCE = -mean(y log p + (1 - y) log(1 - p))     dBCE/dz = (p - y) / N   (sigmoid and BCE fused)

With ``from_logits=True`` the loss takes z itself and computes log(sigmoid(z)) stably, which
is why the network's last layer stays linear. A sample is predicted 1 when p > 0.5, i.e. z > 0.

Run: python examples/binary.py [--quick]
"""

import argparse
import os

import jax
import numpy as np

import fnn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings (also FNN_QUICK=1)")
    args = parser.parse_args()
    quick = args.quick or os.environ.get("FNN_QUICK") == "1"

    # 30 standardised features; labels 0 (malignant) / 1 (benign) as float32 of shape (N, 1).
    (x_train, y_train), (x_test, y_test) = fnn.datasets.load("breast_cancer")
    print(f"x_train {x_train.shape}, y_train {y_train.shape}, share of class 1: {y_train.mean():.2f}")

    net = fnn.mlp([16, 1], activation="relu")
    params = net.init(jax.random.PRNGKey(0), input_shape=(30,))
    loss = fnn.losses.get("binary_crossentropy", from_logits=True)

    result = fnn.fit(
        net,
        params,
        fnn.optimizers.adam(learning_rate=1e-3),
        loss,
        x_train,
        y_train,
        batch_size=32,
        epochs=3 if quick else 40,
        key=jax.random.PRNGKey(1),
        validation_split=0.2,
        metrics=["accuracy"],
        verbose=0,
    )
    h = result.history
    for epoch in sorted({0, len(h["loss"]) // 2, len(h["loss"]) - 1}):
        print(
            f"epoch {epoch + 1:3d}: loss {h['loss'][epoch]:.4f}  val_loss {h['val_loss'][epoch]:.4f}  "
            f"val_accuracy {h['val_accuracy'][epoch]:.3f}"
        )

    test = fnn.evaluate(net, result.params, loss, x_test, y_test, metrics=["accuracy"])
    print(f"test loss {test['loss']:.4f}, test accuracy {test['accuracy']:.3f}")

    # From logits to probabilities and decisions, for the first five test samples.
    z = np.asarray(net.apply(result.params, x_test[:5])).ravel()
    p = 1.0 / (1.0 + np.exp(-z))
    for zi, pi, yi in zip(z, p, y_test[:5].ravel(), strict=True):
        print(f"logit {zi:+7.3f} -> p(class 1) {pi:.3f} -> predicted {int(pi > 0.5)}, true {int(yi)}")


if __name__ == "__main__":
    main()
