"""The documentation: the docstring examples run as doctests (fast), and the site builds with
``mkdocs build --strict`` (slow: a warning, such as a broken cross-reference or a docstring
argument that is not in the signature, fails it) with a page for every public namespace and an
entry for every public name."""

from __future__ import annotations

import doctest
import html
import importlib
import io
import os
import pathlib
import pkgutil
import re
import subprocess
import sys

import pytest

import fnn

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Every module of the package: the public namespaces and the private modules they re-export
# from (a function's examples live in the module that defines it). fnn.__main__ runs the CLI.
MODULES = ["fnn"] + sorted(
    info.name for info in pkgutil.walk_packages(fnn.__path__, "fnn.") if not info.name.endswith(".__main__")
)
NAMESPACES = [n for n in fnn.__all__ if type(getattr(fnn, n)) is type(fnn)] + ["cli"]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _doctests(name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(name)
    return [t for t in doctest.DocTestFinder(exclude_empty=True).find(module) if t.examples]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    out = io.StringIO()
    for test in _doctests(name):
        runner.run(test, out=out.write)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, out.getvalue()


def test_the_doctests_cover_the_documented_modules():
    """The walk really finds the examples: each of these namespaces has some."""
    counts = {n: sum(len(t.examples) for m in MODULES if m.startswith(n) for t in _doctests(m)) for n in (
        "fnn.activations", "fnn.losses", "fnn.optimizers", "fnn.schedules", "fnn.grad", "fnn.data",
        "fnn.datasets", "fnn.parallel", "fnn.layers",
    )}  # fmt: skip
    assert all(c > 0 for c in counts.values()), counts
    assert sum(counts.values()) >= 150


# --------------------------------------------------------------------------------------------
# The site.
# --------------------------------------------------------------------------------------------


def _build_env() -> dict[str, str]:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    # Nothing may be fetched while building: any request goes to a closed port and fails.
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env[var] = "http://127.0.0.1:9"
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    return env


def _mkdocs(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", *args],
        cwd=ROOT,
        env=_build_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    run = _mkdocs("--site-dir", str(out))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-6000:]
    assert "WARNING" not in run.stderr, run.stderr[-6000:]
    return out


def _ids(html: str) -> set[str]:
    return set(re.findall(r'id="([^"]+)"', html))


def _text(path: pathlib.Path) -> str:
    """A page's text without its tags (code is split into highlighted spans)."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))


@pytest.mark.slow
def test_the_site_builds_with_every_page(site):
    for page in ("index", "guides/custom", "guides/optimizers", "guides/compare", "guides/scaling",
                 "guides/guarantees", "reference/index", "reference/fnn"):  # fmt: skip
        assert (site / f"{page}.html").is_file(), page
    for ns in NAMESPACES:
        assert (site / "reference" / f"{ns}.html").is_file(), ns
    index = _text(site / "index.html")
    assert "API tour" in index and "fnn.gradcheck(net, loss, params" in index  # the README's tour
    assert "Bad input fails early, clearly, and costs nothing" in _text(site / "guides" / "guarantees.html")


@pytest.mark.slow
def test_every_public_name_has_an_entry_with_its_signature(site):
    for ns in NAMESPACES:
        module = importlib.import_module(f"fnn.{ns}")
        ids = _ids((site / "reference" / f"{ns}.html").read_text())
        missing = [n for n in module.__all__ if f"fnn.{ns}.{n}" not in ids]
        assert missing == [], f"fnn.{ns}: {missing}"
    top = (site / "reference" / "fnn.html").read_text()
    for name in fnn.__all__:
        assert f"<code>fnn.{name}</code>" in top, name
    train = _text(site / "reference" / "train.html")
    # fit's signature, its arguments with their annotations, and Args/Returns/Raises sections.
    assert re.search(r"fit\(\s*net:", train), "fit's signature"
    assert re.search(r"batch_size:\s*int", train)
    losses = _text(site / "reference" / "losses.html")
    for section in ("Parameters:", "Returns:", "Raises:"):
        assert section in losses, section


@pytest.mark.slow
def test_a_broken_cross_reference_fails_the_build(tmp_path):
    """The same configuration on a page that links to a name that does not exist."""
    import yaml

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    docs = tmp_path / "docs"
    docs.mkdir()
    page = "# Broken\n\n::: fnn.schedules.constant\n\n"
    page += "[found][fnn.schedules.constant], [broken][fnn.schedules.no_such_name]\n"
    (docs / "index.md").write_text(page)
    config.update(docs_dir=str(docs), site_dir=str(tmp_path / "site"), nav=["index.md"])
    config["hooks"] = [str(ROOT / h) for h in config.get("hooks", [])]
    for plugin in config["plugins"]:
        if isinstance(plugin, dict) and "mkdocstrings" in plugin:
            python = plugin["mkdocstrings"]["handlers"]["python"]
            python["paths"] = [str(ROOT)]
            python["options"]["extensions"] = [str(ROOT / e) for e in python["options"].get("extensions", [])]
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    run = _mkdocs("--config-file", str(tmp_path / "mkdocs.yml"))
    assert run.returncode != 0
    assert "fnn.schedules.no_such_name" in run.stderr and "fnn.schedules.constant'" not in run.stderr


@pytest.mark.slow
def test_the_guides_code_runs_as_written(tmp_path):
    """Every Python block of the custom-pieces and optimizers guides, in order, in one fresh
    process (x64 off, as a user's): what a reader copies runs. (compare.md's one block is the
    CLI run the command-line tests make.)"""
    blocks = []
    for guide in ("custom", "optimizers"):
        text = (ROOT / "docs" / "guides" / f"{guide}.md").read_text()
        found = re.findall(r"```python\n(.*?)```", text, flags=re.S)
        assert found, f"{guide}.md has no Python block"
        blocks += found
    script = tmp_path / "guides.py"
    script.write_text("\n".join(blocks) + "\nprint('guides ran')\n")
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.rstrip().endswith("guides ran")
