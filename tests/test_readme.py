"""The README's API tour runs as written (in a fresh process: it must not rely on x64 being on)."""

import pathlib
import re
import subprocess
import sys

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_api_tour_runs_as_written(tmp_path):
    text = README.read_text()
    tour = text.split("<!-- API-TOUR-START -->")[1].split("<!-- API-TOUR-END -->")[0]
    blocks = re.findall(r"```python\n(.*?)```", tour, flags=re.S)
    assert blocks, "the README lost its API tour"
    script = tmp_path / "tour.py"
    script.write_text("\n".join(blocks))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "gradcheck PASSED" in out.stdout


def test_the_library_imports_no_optax_flax_torch_or_keras():
    """README: fnn never depends on optax, flax or torch (the test extra installs optax for the
    benchmarks' baselines, so check what importing and training with fnn actually loads)."""
    code = (
        "import sys, numpy as np, jax, fnn\n"
        "net = fnn.mlp([4, 2])\n"
        "p = net.init(jax.random.PRNGKey(0), (3,))\n"
        "fnn.fit(net, p, fnn.optimizers.adam(), 'mse', np.ones((8, 3)), np.ones((8, 2)), verbose=0)\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules} & {'optax', 'flax', 'torch', 'keras'})\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "[]"
