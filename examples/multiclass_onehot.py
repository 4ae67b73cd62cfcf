"""Multi-class classification with one-hot labels (iris, categorical cross-entropy).

The lesson's training loop written out by hand, one line per idea:

    forward   y_pred, cache = net.forward(params, x)          # logits z = x @ W + b, layer by layer
    loss      L, dL/dz = loss.value_and_grad(y, y_pred)       # softmax + cross-entropy, fused: softmax(z) - y
    backward  grads, _ = net.backward(params, cache, dL/dz)   # chain rule, last layer first
    update    params <- params - learning_rate * grads        # (here through an optimizer)

Every step uses ALL training samples, so this is (full-batch) gradient descent: one iteration
per epoch. ``fnn.fit`` at the end runs the same loop compiled, with mini-batches.

Run: python examples/multiclass_onehot.py [--quick]
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
    steps = 20 if quick else 300

    # Iris: 4 features, 3 classes. Labels come as integers 0, 1, 2; categorical
    # cross-entropy wants one row per sample with a 1 in the column of its class.
    (x_train, labels_train), (x_test, labels_test) = fnn.datasets.load("iris")
    y_train = fnn.data.one_hot(labels_train, 3)  # (N, 3), e.g. class 2 -> [0, 0, 1]
    y_test = fnn.data.one_hot(labels_test, 3)
    print(f"x_train {x_train.shape}, one-hot y_train {y_train.shape}; first rows:\n{y_train[:3]}")

    # 4 -> 16 (relu) -> 3 (linear: the outputs are logits, softmax lives inside the loss).
    net = fnn.mlp([16, 3], activation="relu")
    params = net.init(jax.random.PRNGKey(0), input_shape=(4,))
    loss = fnn.losses.get("categorical_crossentropy", from_logits=True)
    opt = fnn.optimizers.sgd(learning_rate=0.5)
    opt_state = opt.init(params)

    @jax.jit  # compile the whole step once; later calls reuse the compiled program
    def step(params, opt_state, x, y):
        y_pred, cache = net.forward(params, x, train=True)  # forward: keep what backward needs
        value, dy = loss.value_and_grad(y, y_pred)  # loss and dL/dy_pred
        grads, _ = net.backward(params, cache, dy)  # backward: chain rule
        updates, opt_state = opt.update(grads, opt_state, params)  # sgd: updates = -lr * grads
        return fnn.optimizers.apply_updates(params, updates), opt_state, value

    for i in range(steps):
        params, opt_state, value = step(params, opt_state, x_train, y_train)
        if i % max(1, steps // 6) == 0 or i == steps - 1:
            print(f"step {i:4d}  training loss {float(value):.4f}")

    # The class with the largest logit is the prediction (softmax keeps the order).
    probs = jax.nn.softmax(net.apply(params, x_test), axis=-1)
    accuracy = float(np.mean(np.argmax(probs, axis=-1) == labels_test))
    print(
        f"hand-written loop: test accuracy {accuracy:.3f}; probabilities of the first test sample "
        f"{np.round(np.asarray(probs[0]), 3)} (label {labels_test[0]})"
    )

    # The same model trained by fnn.fit: Keras-style mini-batches, metrics and history.
    params0 = net.init(jax.random.PRNGKey(0), input_shape=(4,))
    result = fnn.fit(
        net,
        params0,
        fnn.optimizers.adam(learning_rate=1e-2),
        loss,
        x_train,
        y_train,
        batch_size=16,
        epochs=5 if quick else 60,
        key=jax.random.PRNGKey(1),
        metrics=["accuracy"],
        verbose=0,
    )
    test = fnn.evaluate(net, result.params, loss, x_test, y_test, metrics=["accuracy"])
    print(
        f"fnn.fit (adam, batch 16, {result.history.iterations_per_epoch} iterations/epoch): "
        f"test loss {test['loss']:.4f}, test accuracy {test['accuracy']:.3f}"
    )


if __name__ == "__main__":
    main()
