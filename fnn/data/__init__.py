"""Data preparation: validation of arrays, batching, train/validation split, one-hot, scaling.

Everything here runs on the host before anything is compiled, in NumPy (jax arrays are accepted
and kept where no copy is needed). Batching follows Keras's ``Model.fit`` for in-memory arrays:
``ceil(N / B)`` batches per epoch, the last one partial, a fresh permutation per epoch when
shuffling, and ``validation_split`` taking the last samples before any shuffle.
"""

from fnn.data._batching import (
    batches as batches,
    num_batches as num_batches,
    permutation as permutation,
    train_val_split as train_val_split,
)
from fnn.data._checks import check_arrays as check_arrays
from fnn.data._preprocessing import (
    Standardizer as Standardizer,
    one_hot as one_hot,
    standardize as standardize,
)

__all__ = [
    "check_arrays",
    "num_batches",
    "permutation",
    "batches",
    "train_val_split",
    "one_hot",
    "Standardizer",
    "standardize",
]


def __dir__() -> list[str]:
    """The public API only (implementation imports stay out of ``dir``)."""
    return sorted(__all__)
