"""Digits with integer labels: sparse categorical cross-entropy.

With C classes, categorical cross-entropy wants one-hot rows y (N, C); sparse categorical
cross-entropy takes the class index k itself (N,) and reads the same number:

    CE_i = -log softmax(z_i)[k_i]        dCE/dz_i = (softmax(z_i) - onehot(k_i)) / N

No (N, C) matrix of zeros is ever built, which matters when C is large. This example checks
that both losses agree, trains on the integer labels and prints a confusion matrix.

Run: python examples/sparse_labels.py [--quick]
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

    # 8x8 images of the digits 0-9 as 64 features in [0, 1]; labels are int32 of shape (N,).
    (x_train, y_train), (x_test, y_test) = fnn.datasets.load("digits")
    print(f"x_train {x_train.shape}, y_train {y_train.shape} {y_train.dtype}, first labels {y_train[:8]}")

    net = fnn.mlp([32, 10] if quick else [64, 64, 10], activation="relu")
    params = net.init(jax.random.PRNGKey(0), input_shape=(64,))
    sparse = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    dense = fnn.losses.get("categorical_crossentropy", from_logits=True)

    # Same logits, labels given two ways: same loss, same gradient.
    logits = net.apply(params, x_train[:100])
    onehot = fnn.data.one_hot(y_train[:100], 10)
    print(
        f"sparse CE on labels {float(sparse(y_train[:100], logits)):.6f} = "
        f"categorical CE on one-hot rows {float(dense(onehot, logits)):.6f}"
    )
    gap = np.max(np.abs(np.asarray(sparse.grad(y_train[:100], logits)) - np.asarray(dense.grad(onehot, logits))))
    print(f"largest difference between their gradients: {gap:.1e}")

    result = fnn.fit(
        net,
        params,
        fnn.optimizers.adam(learning_rate=2e-3),
        sparse,
        x_train,
        y_train,
        batch_size=32,
        epochs=2 if quick else 30,
        key=jax.random.PRNGKey(1),
        validation_split=0.2,
        metrics=["accuracy"],
        verbose=0,
    )
    h = result.history
    print(
        f"{h.epochs_run} epochs of {h.iterations_per_epoch} iterations: loss {h['loss'][-1]:.4f}, "
        f"val_accuracy {h['val_accuracy'][-1]:.3f}"
    )
    test = fnn.evaluate(net, result.params, sparse, x_test, y_test, metrics=["accuracy"])
    print(f"test loss {test['loss']:.4f}, test accuracy {test['accuracy']:.3f}")

    # Rows: true digit, columns: predicted digit. Off-diagonal entries are the mistakes.
    predicted = np.argmax(np.asarray(net.apply(result.params, x_test)), axis=-1)
    confusion = np.zeros((10, 10), int)
    np.add.at(confusion, (y_test, predicted), 1)
    print("confusion matrix (row = true digit, column = predicted):")
    print("     " + " ".join(f"{c:3d}" for c in range(10)))
    for digit, row in enumerate(confusion):
        print(f"  {digit}: " + " ".join(f"{v:3d}" for v in row))


if __name__ == "__main__":
    main()
