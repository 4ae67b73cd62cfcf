"""MNIST (or Fashion-MNIST) from files you already have: fnn never downloads anything.

Give ``--path`` either a folder with the four IDX files
(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
t10k-labels-idx1-ubyte; ``.gz`` is fine) or a Keras-style ``mnist.npz`` with x_train, y_train,
x_test, y_test. The 28x28 images are flattened to 784 pixel values in [0, 1].

Run: python examples/mnist_local.py --path ~/data/mnist [--dataset fashion_mnist] [--quick]
"""

import argparse
import os

import jax

import fnn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", help="folder with the IDX files, or an .npz")
    parser.add_argument("--dataset", choices=["mnist", "fashion_mnist"], default="mnist")
    parser.add_argument("--quick", action="store_true", help="tiny settings (also FNN_QUICK=1)")
    args = parser.parse_args()
    quick = args.quick or os.environ.get("FNN_QUICK") == "1"

    if not args.path:
        print(
            f"{args.dataset} is read from local files and none were given.\n"
            "Pass --path with a folder holding train-images-idx3-ubyte, train-labels-idx1-ubyte,\n"
            "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (optionally .gz), or a Keras-style\n"
            "mnist.npz (x_train, y_train, x_test, y_test). Nothing to do."
        )
        return
    try:
        (x_train, y_train), (x_test, y_test) = fnn.datasets.load(args.dataset, path=args.path)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"cannot read {args.dataset} from {args.path}: {err}") from None
    if quick:  # a slice is enough to see it train
        x_train, y_train, x_test, y_test = x_train[:1000], y_train[:1000], x_test[:500], y_test[:500]
    print(f"x_train {x_train.shape}, x_test {x_test.shape}")

    net = fnn.mlp([32, 10] if quick else [256, 128, 10], activation="relu")
    params = net.init(jax.random.PRNGKey(0), input_shape=(x_train.shape[1],))
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    result = fnn.fit(
        net,
        params,
        fnn.optimizers.adam(learning_rate=1e-3),
        loss,
        x_train,
        y_train,
        batch_size=128,
        epochs=1 if quick else 5,
        key=jax.random.PRNGKey(1),
        validation_split=0.1,
        metrics=["accuracy"],
        verbose=1,
    )
    test = fnn.evaluate(net, result.params, loss, x_test, y_test, metrics=["accuracy"], batch_size=1024)
    print(f"test loss {test['loss']:.4f}, test accuracy {test['accuracy']:.4f}")


if __name__ == "__main__":
    main()
