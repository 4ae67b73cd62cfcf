"""The README's Guarantees section names, for each promise, the tests that hold it: every test it
cites exists (a renamed or deleted test would leave a promise unchecked)."""

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _guarantees() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Guarantees\n")
    return text[start : text.index("\n## ", start + 1)]


def _cited() -> list[tuple[str, str]]:
    """``(file, test)`` for each citation: ``tests/f.py::test`` or ``::test`` (same file)."""
    out, current = [], None
    for file, name in re.findall(r"`(tests/[\w/]+\.py)?(?:::(\w+))?`", _guarantees()):
        current = file or current
        if name:
            assert current is not None, f"::{name} cited before any test file"
            out.append((current, name))
    return out


def test_every_promise_cites_tests_that_exist():
    cited = _cited()
    assert len(cited) >= 40  # the section lists promises one by one, each with its tests
    defined: dict[str, set[str]] = {}
    for file, name in cited:
        if file not in defined:
            tree = ast.parse((ROOT / file).read_text())
            defined[file] = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert name in defined[file], f"README's Guarantees cite {file}::{name}, which does not exist"


def test_every_promise_paragraph_has_a_test():
    blocks = _guarantees().split("\n\n")[1:]
    for i, block in enumerate(blocks):
        cites = "tests/" in block or "`::" in block
        heading_of_a_list = block.startswith("**") and i + 1 < len(blocks) and blocks[i + 1].startswith("- ")
        if block.startswith("- "):
            for item in block.split("\n- "):
                assert "tests/" in item or "`::" in item, f"a promise without its test: {item[:80]!r}"
        elif block.startswith("**"):
            assert cites or heading_of_a_list, f"a promise without its test: {block[:80]!r}"
