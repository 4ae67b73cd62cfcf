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
