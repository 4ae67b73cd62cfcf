"""Benchmarks of fnn against hand-written JAX, optax, PyTorch and Keras.

Each module is a script, ``python -m benchmarks.NAME [--quick] [--json PATH]``, that prints a
Markdown table and can write its numbers as JSON:

* ``train_throughput``  samples/s of one ``fnn.fit`` epoch vs a hand-written ``lax.scan`` epoch,
  an optax per-step loop, PyTorch eager and Keras 3 ``fit`` (each when installed), with % of
  the measured matmul peak.
* ``grad``        hand-written backward vs ``jax.grad``: time and max relative difference.
* ``optimizers``  update-step time of each fnn optimizer vs optax's on a ~10M-parameter pytree.
* ``scaling``     fit throughput as width, depth and batch size grow.
* ``compile``     first-call latency of a fit epoch and of ``train_step``.
* ``breakdown``   fit's step split into its gradient and its optimizer update, against the
  memory floor of the update: what bounds each batch size.
* ``adam_layouts`` Adam's state stacked, chunked or in one flat buffer against fnn's per-leaf
  arrays, and a control without the square root and division.
* ``gpu.sh``      the large-size runs for a GPU (float32 and bfloat16); ``--smoke`` checks the
  script at tiny sizes on any backend.

Every ratio compares runners timed in the same process, in interleaved rounds (each runner
once per round, the order rotated), and reports medians: the machine's speed drifts, and
interleaving keeps the ratios honest. ``RESULTS.md`` holds the latest tables.
"""
