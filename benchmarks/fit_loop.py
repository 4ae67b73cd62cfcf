"""fit's epoch loop against its compiled epoch alone: what the host adds to each epoch.

``fnn.fit`` runs one compiled program per epoch with the host in between: the epoch's sample
order (drawn on the host from the epoch's key), the dispatch, one read-back of the epoch's sums,
the history. Per batch size this times, in interleaved rounds (medians):

* ``fit``: ``fnn.fit(..., epochs=E)``, the whole call;
* ``fit_many K``: ``fnn.fit_many`` of K stacked models (``fnn compare`` trains its seeds so);
* ``floor`` of each: the same compiled epoch program called E times back to back on the same
  orders, drawn and put on the device beforehand, only the last epoch waited for: the device's
  time for the E epochs with nothing in between (plus the parameters' copy and the optimizer
  init). It trains to the same parameters as the fit it stands beside.

``fit / floor`` is 1.0 when the host costs nothing; the difference, per epoch, is what the loop
adds. The default problem is ``fnn compare``'s job in shape (1,150 training and 288 validation
rows of 64 features, 10 classes, MLP 64-64-10 relu, Adam, sparse CE, accuracy logged).

    python -m benchmarks.fit_loop [--quick] [--epochs 40] [--batch-sizes 0 128 32] [--json PATH]

(``--batch-sizes 0``: the full batch.)
"""

from __future__ import annotations

import jax
import numpy as np

import fnn
from benchmarks import _common
from fnn.train import _loop  # private: the compiled epoch fit runs, for the floor


def epoch_order(key, epoch: int, n: int) -> np.ndarray:
    """The order fit draws for ``epoch`` from its ``key`` (documented: the first key of
    ``split(fold_in(key, epoch))``), int32."""
    return fnn.data.permutation(jax.random.split(jax.random.fold_in(key, epoch))[0], n).astype(np.int32)


def floor_runner(net, params, opt, loss, x, y, val, *, batch_size, epochs, key, models):
    """A runner that calls fit's own compiled epoch ``epochs`` times on fit's orders (drawn and
    put on the device beforehand), waiting only for the last epoch; it returns the final
    ``(params, opt_state)``, which equal what :func:`fnn.fit` (``models``: :func:`fnn.fit_many`
    with K stacked ``key``) returns. ``params``: one model's, or K stacked with ``models``."""
    one = jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a)[1:], a.dtype), params) if models else params
    run = _loop.prepare(
        net, one, opt, loss, x, y, grad="manual", batch_size=batch_size, epochs=epochs, unroll=None,
        shuffle=True, verbose=0, validation_split=0.0, validation_data=val, validation_batch_size=None,
        metrics=["accuracy"], models=models,
    )  # fmt: skip
    order = lambda e: np.stack([epoch_order(k, e, run.n) for k in key]) if models else epoch_order(key, e, run.n)
    perms = [jax.device_put(order(e)) for e in range(epochs)]
    xs, ys, w, xv, yv, wv = run.data

    def floor():
        p = _loop.copy_tree(params)
        s = _loop.init_state(opt, p, models=models)
        for perm in perms:
            p, s, _, sums = run.epoch(p, s, xs, ys, w, perm, None)
            v = None if run.validation is None else run.validation[1](p, xv, yv, wv)
        _common.block((p, s, sums, v))
        return p, s

    return floor


def main(argv: list[str] | None = None) -> dict:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[0, 128, 32], help="0: the full batch")
    p.add_argument("--n", type=int, default=1150, help="training rows")
    p.add_argument("--n-val", type=int, default=288, help="validation rows")
    p.add_argument("--features", type=int, default=64)
    p.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    p.add_argument("--models", type=int, default=3, help="K, the models fit_many trains together")
    args = p.parse_args(argv)
    _common.quick_defaults(p, args, epochs=3, batch_sizes=[8], n=48, n_val=16, features=8, hidden=[8], models=2)
    if args.epochs < 1 or args.models < 1 or min(args.batch_sizes) < 0:
        raise SystemExit("--epochs and --models must be >= 1, --batch-sizes >= 0")
    n_rounds = _common.rounds(args, default=5)

    x, y = _common.synthetic_classification(args.n + args.n_val, args.features, 10, seed=args.seed)
    x, y, val = x[: args.n], y[: args.n], (x[args.n :], y[args.n :])
    net = fnn.mlp([*args.hidden, 10])
    loss = fnn.losses.get("sparse_categorical_crossentropy", from_logits=True)
    opt = fnn.optimizers.adam(2e-3)
    key = jax.random.PRNGKey(args.seed)
    init_keys = jax.random.split(key, args.models)
    params = net.init(init_keys[0], (args.features,))
    stacked = jax.tree.map(lambda *a: np.stack(a), *[net.init(k, (args.features,)) for k in init_keys])
    stacked_keys = jax.random.split(jax.random.fold_in(key, 1), args.models)

    records, rows = [], []
    for bs in args.batch_sizes:
        batch = bs or args.n
        settings = dict(batch_size=batch, epochs=args.epochs, validation_data=val, metrics=["accuracy"], verbose=0)

        def fit(settings=settings):
            _common.block(fnn.fit(net, params, opt, loss, x, y, key=key, **settings).params)

        def fit_many(settings=settings):
            _common.block(fnn.fit_many(net, stacked, opt, loss, x, y, key=stacked_keys, **settings).params)

        same = dict(batch_size=batch, epochs=args.epochs)
        runners = {
            "fit": fit,
            "fit floor": floor_runner(net, params, opt, loss, x, y, val, key=key, models=False, **same),
            f"fit_many K={args.models}": fit_many,
            "fit_many floor": floor_runner(net, stacked, opt, loss, x, y, val, key=stacked_keys, models=True, **same),
        }
        times = {n: _common.median(t) for n, t in _common.interleaved(runners, n_rounds, warmup=True).items()}
        per_epoch = lambda seconds: 1e3 * seconds / args.epochs
        for name, floor in (("fit", "fit floor"), (f"fit_many K={args.models}", "fit_many floor")):
            ratio = times[name] / times[floor]
            extra = per_epoch(times[name] - times[floor])
            rows.append((batch, name, per_epoch(times[name]), per_epoch(times[floor]), extra, ratio))
            records.append(
                {
                    "batch_size": batch,
                    "runner": name,
                    "seconds": times[name],
                    "floor_seconds": times[floor],
                    "ms_per_epoch": per_epoch(times[name]),
                    "floor_ms_per_epoch": per_epoch(times[floor]),
                    "ratio": ratio,
                }
            )

    def report(payload: dict) -> str:
        head = (
            f"## fit_loop: fit's {args.epochs} epochs against its compiled epoch alone ({args.n} rows + "
            f"{args.n_val} validation, {args.features} -> {' -> '.join(map(str, args.hidden))} -> 10, Adam, "
            f"median of {n_rounds} rounds)\n\n{_common.machine_line(payload['machine'])}\n\n"
        )
        table = _common.markdown_table(
            ["batch", "runner", "ms / epoch", "floor ms / epoch", "host adds (ms / epoch)", "runner / floor"], rows
        )
        return head + table

    return _common.finish("fit_loop", args, report, records=records)


if __name__ == "__main__":
    main()
