"""Checkpoints: params, optimizer state, epoch, PRNG key and history in ONE ``.npz`` file.

Layout of the file (plain ``numpy.savez``, readable without fnn):

* one entry per array leaf, named ``<tree><keystr(path)>``, e.g. ``params[0]['w']``,
  ``opt_state[0].mu[1]['b']``, ``key``; ``extra`` arrays as ``extra['name']``;
* ``callbacks``: the callbacks' state (``fit`` saves it so that a resumed run continues them
  exactly): nested dicts and lists whose numbers, strings and ``None`` go to the JSON (floats
  round-trip exactly, ``inf`` and ``nan`` included) and whose arrays are entries
  ``callbacks<path>``, e.g. ``callbacks[0]['best_weights'][1]['w']``;
* ``__fnn_checkpoint__``: a JSON string with the format version, epoch, history, the JSON part
  of ``extra`` and ``callbacks``, and for each tree its treedef string and per-leaf path, dtype
  and shape.

Dtypes NumPy cannot store (bfloat16, float8, ...) are stored as an unsigned-int view of the same
width and viewed back on load; typed PRNG keys are stored as ``jax.random.key_data`` and
rewrapped with their implementation, so every leaf round-trips bit for bit (its bits, dtype and
shape: a weakly typed scalar such as ``jnp.asarray(1.0)`` comes back strongly typed, and a Python
number as a 0-d array of jax's default dtype).

Writes go to a temporary file ``.<name>.<12 random hex digits>.tmp`` beside the target, are flushed
to disk and then ``os.replace``d over it: a failure at any point leaves the previous checkpoint
intact. The writer holds an exclusive ``flock`` on its temporary file until the rename; a writer
killed mid-save (``kill -9``, power loss) leaves its file unlocked, and the next save of the same
target removes every such file that nobody holds (only names of exactly that pattern, so a file of
yours such as ``.<name>.backup.tmp`` stays; where files cannot be locked, on Windows or a file
system without locks, those older than an hour). A replaced file keeps its permission bits, a new
one gets ``0o666`` less the umask like ``open``, and a symlink is written through: its target is
replaced (created, when dangling), never the link.

:func:`load` checks the file against its own metadata before using any of it: the metadata's
fields and types, every entry listed exactly once and present, nothing unlisted, and each stored
array's dtype and shape against the declared ones (in the encodings above); any disagreement is a
ValueError naming the file and the field. Fields this version does not know are ignored.
"""

from fnn.checkpoint._format import FORMAT_VERSION as FORMAT_VERSION
from fnn.checkpoint._io import Checkpoint as Checkpoint, load as load, resume as resume, save as save

__all__ = ["Checkpoint", "save", "load", "resume", "FORMAT_VERSION"]


def __dir__() -> list[str]:
    """The public API only (implementation imports stay out of ``dir``)."""
    return sorted(__all__)
