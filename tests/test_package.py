"""The package's shape: no private name crosses a module boundary, every public namespace shows
exactly its ``__all__``, and the version lives in one place."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import pathlib
import pkgutil

import pytest

import fnn

ROOT = pathlib.Path(fnn.__file__).parent


def _modules() -> list[tuple[str, pathlib.Path]]:
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append((".".join(parts), path))
    return out


def _resolve(module: str | None, level: int, current: str, is_package: bool) -> str:
    """The absolute module an ``ImportFrom`` names."""
    if level == 0:
        return module or ""
    base = current.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _is_module(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def _violations(name: str, path: pathlib.Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    module_aliases: set[str] = set()  # local names bound to fnn modules
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _resolve(node.module, node.level, name, is_package)
            if not (source == "fnn" or source.startswith("fnn.")):
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not _is_module(f"{source}.{alias.name}"):
                    found.append(f"{path.name}:{node.lineno} imports {source}.{alias.name}")
                if _is_module(f"{source}.{alias.name}"):
                    module_aliases.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("fnn"):
                    module_aliases.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in module_aliases
            and node.attr.startswith("_")
            and not (node.attr.startswith("__") and node.attr.endswith("__"))
        ):
            found.append(f"{path.name}:{node.lineno} reads {node.value.id}.{node.attr}")
    return found


def test_no_private_name_crosses_a_module_boundary():
    modules = _modules()
    assert len(modules) > 20  # the walk really sees the package
    problems = [v for name, path in modules for v in _violations(name, path)]
    assert problems == []


def test_the_walker_catches_both_kinds_of_crossing(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from fnn.optimizers._base import _private\nfrom fnn import train\ntrain._fit\n")
    found = _violations("fnn.bad", bad)
    assert len(found) == 2 and "imports fnn.optimizers._base._private" in found[0] and "reads train._fit" in found[1]


PUBLIC = ["fnn"] + [f"fnn.{n}" for n in fnn.__all__ if isinstance(getattr(fnn, n), type(fnn))] + ["fnn.cli"]


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_namespace_shows_exactly_its_all(name):
    module = importlib.import_module(name)
    shown = {n for n in dir(module) if not n.startswith("__")}  # private modules too (_loss...)
    assert shown == set(module.__all__), name
    for n in module.__all__:
        assert hasattr(module, n), f"{name}.{n} is in __all__ but missing"
    assert len(module.__all__) == len(set(module.__all__)), f"{name}.__all__ repeats a name"


def test_private_modules_are_private():
    """Every implementation module below a public namespace has a leading underscore."""
    for info in pkgutil.walk_packages(fnn.__path__, "fnn."):
        leaf = info.name.rsplit(".", 1)[-1]
        if not info.ispkg and leaf not in ("__main__",):
            parent = info.name.rsplit(".", 1)[0]
            assert leaf.startswith("_") or parent == "fnn", info.name


def test_version_in_one_place():
    try:
        installed = importlib.metadata.version("fnn")
    except importlib.metadata.PackageNotFoundError:  # a source tree on PYTHONPATH, not installed: fnn says so
        installed = None
    assert fnn.__version__ == (installed or "0+unknown")
    text = (ROOT / "__init__.py").read_text()
    assert "__version__ = _version(" in text and (installed is None or installed not in text)


def test_public_signatures_are_typed():
    """Every public function and public method of a public class annotates its parameters and
    its return (``fnn/py.typed`` tells type checkers to read them)."""
    import inspect

    missing = []
    for name in PUBLIC:
        module = importlib.import_module(name)
        for attr in module.__all__:
            obj = getattr(module, attr)
            targets = [(attr, obj)] if inspect.isfunction(obj) else []
            if inspect.isclass(obj) and obj.__module__.startswith("fnn"):
                targets += [
                    (f"{attr}.{m}", f)
                    for m, f in vars(obj).items()
                    if inspect.isfunction(f) and (not m.startswith("_") or m == "__call__")
                ]
            for qual, f in targets:
                if not f.__module__.startswith("fnn"):
                    continue
                sig = inspect.signature(f)
                untyped = [
                    p.name
                    for p in sig.parameters.values()
                    if p.annotation is inspect.Parameter.empty
                    and p.name not in ("self", "cls")
                    and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                ]
                if untyped or sig.return_annotation is inspect.Signature.empty:
                    missing.append(f"{name}.{qual}{untyped or ''}")
    assert missing == []
    assert (ROOT / "py.typed").exists()
