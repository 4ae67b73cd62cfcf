"""fnn._import_guard: a Ctrl-C Python drops while fnn imports (in JAX's gc callback) ends the import."""

import subprocess
import sys
import textwrap

import pytest

from fnn._import_guard import ctrl_c_kept


class _RaisesOnDelete:
    def __init__(self, exc):
        self.exc = exc

    def __del__(self):
        raise self.exc


def test_a_dropped_ctrl_c_is_raised_when_the_block_ends_and_other_unraisables_go_to_the_hook(monkeypatch):
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(type(u.exc_value)))
    previous = sys.unraisablehook
    with pytest.raises(KeyboardInterrupt), ctrl_c_kept():
        _RaisesOnDelete(KeyboardInterrupt())  # dropped in __del__, as in a gc callback
        _RaisesOnDelete(ValueError("mine"))
        assert seen == [ValueError]  # the block goes on; only the other one reached the hook
    assert sys.unraisablehook is previous
    with ctrl_c_kept():  # nothing dropped: nothing raised
        pass
    # an error of the block propagates as it is, and the hook is put back
    with pytest.raises(ImportError), ctrl_c_kept():
        raise ImportError("broken")
    assert sys.unraisablehook is previous


@pytest.mark.slow
def test_import_fnn_ends_with_the_ctrl_c_that_jax_s_gc_callback_dropped():
    """As JAX's gc callback: one that raises KeyboardInterrupt mid-import (fnn's first modules
    loaded). Python printed "Exception ignored" and the import, and the program, went on."""
    script = textwrap.dedent(
        """
        import gc, sys
        gc.set_threshold(50)  # a collection (and the callback) during fnn's import, for sure
        fired = []
        def callback(phase, info):
            if not fired and "fnn.activations" in sys.modules:
                fired.append(1)
                raise KeyboardInterrupt
        gc.callbacks.append(callback)
        try:
            import fnn
        except KeyboardInterrupt:
            print("interrupted", len(fired))
        else:
            print("imported", len(fired))
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "interrupted 1", run.stdout + run.stderr
    assert "Exception ignored" not in run.stderr
