"""Regression on diabetes: mean squared error vs mean absolute error.

    MSE = mean((y_pred - y)^2)    dMSE/dy_pred = 2 (y_pred - y) / N    grows with the error
    MAE = mean(|y_pred - y|)      dMAE/dy_pred = sign(y_pred - y) / N  the same size for every error

So MSE pushes hardest on the worst predictions (and is pulled around by outliers), while MAE
treats every sample alike (and is robust to them). The same network is trained with each loss,
on clean targets and on targets with a few gross errors, and judged on the clean test set.

Run: python examples/regression.py [--quick]
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
    epochs = 5 if quick else 150

    # The gradients in one picture: four predictions, the last one far off (an outlier).
    y_true = np.zeros((4, 1), np.float32)
    y_pred = np.array([[0.1], [-0.2], [0.3], [5.0]], np.float32)
    print("error            ", y_pred.ravel())
    print("d MSE / d y_pred ", np.asarray(fnn.losses.get("mse").grad(y_true, y_pred)).ravel())
    print("d MAE / d y_pred ", np.asarray(fnn.losses.get("mae").grad(y_true, y_pred)).ravel())

    # Diabetes: 10 standardised features, target = disease progression (about 25 to 350).
    (x_train, y_train), (x_test, y_test) = fnn.datasets.load("diabetes")
    # Targets of size ~150 would need tiny learning rates; train on standardised targets and
    # convert the predictions back to the original units for reporting.
    y_mean, y_std = y_train.mean(), y_train.std()
    z_train = (y_train - y_mean) / y_std

    # A copy of the training targets with 5 % of them made wildly wrong (+10 standard
    # deviations): data-entry errors, say. The test targets stay clean.
    rng = np.random.default_rng(0)
    bad = rng.choice(len(z_train), size=len(z_train) // 20, replace=False)
    z_corrupt = z_train.copy()
    z_corrupt[bad] += 10.0

    net = fnn.mlp([32, 1], activation="relu")  # one output unit, linear: a real number
    params0 = net.init(jax.random.PRNGKey(0), input_shape=(10,))
    # One optimizer for the four runs: each fit starts from a fresh state of it. A new adam(3e-3)
    # per run would compile nothing more: fit's compiled code is keyed on what the optimizer
    # computes, not on the object.
    opt = fnn.optimizers.adam(learning_rate=3e-3)
    print(f"\n{x_train.shape[0]} training samples, {x_test.shape[0]} test samples, {epochs} epochs")
    print(f"{'loss':>5} | {'targets':>9} | {'test MAE':>9} | {'test RMSE':>9}")
    for name in ("mse", "mae"):
        for label, targets in (("clean", z_train), ("5% wrong", z_corrupt)):
            result = fnn.fit(
                net,
                params0,
                opt,
                name,
                x_train,
                targets,
                batch_size=32,
                epochs=epochs,
                key=jax.random.PRNGKey(1),
                verbose=0,
            )
            pred = np.asarray(net.apply(result.params, x_test)) * y_std + y_mean  # original units
            mae = float(np.mean(np.abs(pred - y_test)))
            rmse = float(np.sqrt(np.mean((pred - y_test) ** 2)))
            print(f"{name:>5} | {label:>9} | {mae:9.2f} | {rmse:9.2f}")
    print("\nOn clean targets the two losses end up close. The wrong targets pull the MSE model")
    print("(its gradient grows with the error) much further than the MAE model (its gradient does not).")


if __name__ == "__main__":
    main()
