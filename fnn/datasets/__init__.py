"""Small data sets for examples and tests: ``load(name) -> (x_train, y_train), (x_test, y_test)``.

Nothing is ever downloaded. Three sources:

* scikit-learn's bundled files (``pip install "fnn[datasets]"``): digits, iris, breast_cancer,
  diabetes, wine.
* synthetic generators, deterministic in ``seed`` (or a jax ``key``): spirals, moons, xor, sine.
* local files given ``path=``: mnist, fashion_mnist (IDX files, optionally gzipped, or a Keras
  style ``.npz`` with ``x_train, y_train, x_test, y_test``).

Conventions: x is float32 (N, features); classification labels are int32 (N,); binary labels
are float32 0/1 of shape (N, 1), matching a one-unit output; regression targets are float32
(N, 1). The split is fixed: 80 % train / 20 % test, stratified by class for (binary)
classification, drawn with ``numpy.random.default_rng(0)`` and shuffled within each part
(mnist / fashion_mnist keep their published 60k/10k split). Features are standardised with
the training part's mean and std (``fnn.data.Standardizer``), except digits (pixels / 16),
MNIST-like images (pixels / 255; float images already in [0, 1] as they are) and the synthetic
sets (already of unit scale).
"""

from fnn.datasets._images import read_idx as read_idx
from fnn.datasets._registry import info as info, load as load, names as names
from fnn.datasets._split import Split as Split
from fnn.datasets._synthetic import moons as moons, sine as sine, spirals as spirals, xor as xor

__all__ = ["load", "names", "info"]


def __dir__() -> list[str]:
    """The public API only (implementation imports stay out of ``dir``)."""
    return sorted(__all__)
