"""The README's API tour runs as written (in a fresh process: it must not rely on x64 being on).

Both tests read one run of that process (JAX's start-up is paid once): the tour as written,
then, in a function of its own so that nothing of the tour is touched, a small training run and
a last line that lists which of optax, flax, torch and keras importing and using fnn loaded.
"""

import pathlib
import re
import subprocess
import sys

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"

pytestmark = pytest.mark.slow

IMPORTS_CHECK = """

def _fnn_test_loaded_modules():
    import sys, numpy as np, jax, fnn
    net = fnn.mlp([4, 2])
    p = net.init(jax.random.PRNGKey(0), (3,))
    fnn.fit(net, p, fnn.optimizers.adam(), 'mse', np.ones((8, 3)), np.ones((8, 2)), verbose=0)
    return sorted({m.split('.')[0] for m in sys.modules} & {'optax', 'flax', 'torch', 'keras'})


print("loaded:", _fnn_test_loaded_modules())
"""


@pytest.fixture(scope="module")
def tour(tmp_path_factory):
    text = README.read_text()
    tour = text.split("<!-- API-TOUR-START -->")[1].split("<!-- API-TOUR-END -->")[0]
    blocks = re.findall(r"```python\n(.*?)```", tour, flags=re.S)
    assert blocks, "the README lost its API tour"
    script = tmp_path_factory.mktemp("readme") / "tour.py"
    script.write_text("\n".join(blocks) + IMPORTS_CHECK)
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)


def test_api_tour_runs_as_written(tour):
    assert tour.returncode == 0, tour.stderr[-3000:]
    assert "gradcheck PASSED" in tour.stdout


def test_the_library_imports_no_optax_flax_torch_or_keras(tour):
    """README: fnn never depends on optax, flax or torch (the test extra installs optax for the
    benchmarks' baselines, so check what importing and training with fnn actually loads)."""
    assert tour.returncode == 0, tour.stderr[-3000:]
    assert tour.stdout.splitlines()[-1] == "loaded: []"
