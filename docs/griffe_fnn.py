"""A Griffe extension for fnn's API reference (mkdocs.yml loads it into mkdocstrings).

fnn's docstrings are Google style (Args / Returns / Raises) with a few reStructuredText habits
that read well in ``help()`` but not in Markdown. Before mkdocstrings parses a docstring, this
extension rewrites:

* Sphinx roles, ``:func:`chain``` and friends, into cross-references to the object's entry in
  the reference when it has one (``[`chain`][fnn.optimizers.chain]``), else into code;
  ``:math:`x``` into code;
* ``.. math::`` blocks into ``latex`` code blocks (the site loads no JavaScript to typeset);
* a paragraph ending in ``::`` (reST's literal block) into one ending in ``:``;
* doctest lines (``>>>``) outside an Examples section into a ``pycon`` code block.

It also restores the activations: ``relu = with_derivative(relu, ...)`` rebinds each function
to a ``jax.custom_jvp`` wrapper, which static analysis sees as a plain attribute; the function
(its signature and docstring, kept by ``functools.wraps``) is what the reference should show.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(func|class|meth|mod|attr|data|obj|exc|math):`(~?)([^`]+)`")
_MATH = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*$")
_SECTION = re.compile(r"^(Examples?|Example):[ \t]*$")

# The public namespaces, each with a page in the reference (docs/reference/*.md).
_PUBLIC_ROOT = "fnn"


class FnnDocstrings(griffe.Extension):
    def __init__(self) -> None:
        super().__init__()
        self._functions: dict[str, dict[str, griffe.Function]] = {}

    # -- the activations: functions rebound by an assignment ------------------------------------

    def on_function_instance(self, *, node: Any, func: griffe.Function, agent: Any, **kwargs: Any) -> None:
        if func.parent is not None and func.parent.is_module:
            self._functions.setdefault(func.parent.path, {})[func.name] = func

    def on_module_members(self, *, node: Any, mod: griffe.Module, agent: Any, **kwargs: Any) -> None:
        defined = self._functions.get(mod.path, {})
        for name, member in list(mod.members.items()):
            if member.is_alias or not member.is_attribute:
                continue
            match = re.match(r"with_derivative\((\w+),", str(member.value or ""))
            if match and match.group(1) in defined:
                func = defined[match.group(1)]
                if func.docstring is not None:
                    func.docstring.parent = func  # the attribute had taken it over
                if name == func.name:
                    mod.set_member(name, func)
                else:  # swish = silu: the same function under a second name
                    mod.set_member(name, griffe.Alias(name, func, parent=mod))

    # -- docstrings ----------------------------------------------------------------------------

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if pkg.name != _PUBLIC_ROOT:
            return
        self._collection = loader.modules_collection
        self._public = _public_paths(pkg)
        for obj in _walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = self._rewrite(obj.docstring.value, obj)

    def _rewrite(self, text: str, obj: griffe.Object) -> str:
        text = _math_blocks(text)
        text = _ROLE.sub(lambda m: self._role(m, obj), text)
        text = _literal_paragraphs(text)
        return _doctest_blocks(text)

    def _role(self, match: re.Match, obj: griffe.Object) -> str:
        role, tilde, target = match.groups()
        shown = target.rsplit(".", 1)[-1] if tilde else target
        if role == "math":
            return f"`{target}`"
        path = self._resolve(target.rstrip("()"), obj)
        return f"[`{shown}`][{path}]" if path else f"`{shown}`"

    def _resolve(self, target: str, obj: griffe.Object) -> str | None:
        """The reference entry ``target`` names, seen from ``obj``'s docstring, or None."""
        module = obj if obj.is_module else obj.module
        candidates = [target] if target.startswith(_PUBLIC_ROOT + ".") or target == _PUBLIC_ROOT else []
        if obj.is_class:
            candidates.append(f"{obj.path}.{target}")
        if obj.parent is not None and obj.parent.is_class:
            candidates.append(f"{obj.parent.path}.{target}")
        candidates += [f"{_public_module(module.path)}.{target}", f"{module.path}.{target}", f"fnn.{target}"]
        for candidate in candidates:
            if candidate in self._public.values():
                return candidate
            try:
                found = self._collection.get_member(candidate)
            except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
                continue
            canonical = found.final_target.path if found.is_alias else found.path
            if canonical in self._public:
                return self._public[canonical]
        return None


def _public_module(path: str) -> str:
    """``fnn.optimizers._inject`` -> ``fnn.optimizers``: the namespace that re-exports it."""
    parts = path.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_"):
            return ".".join(parts[:i])
    return path


def _public_paths(pkg: griffe.Module) -> dict[str, str]:
    """Canonical path -> the path of its entry in the reference, for every name a public
    namespace exports (and the public members of exported classes), and the namespaces."""
    out: dict[str, str] = {}
    namespaces = [m for name, m in pkg.members.items() if not name.startswith("_") and not m.is_alias and m.is_module]
    for mod in namespaces:
        out.setdefault(mod.path, mod.path)
        for name in _exports(mod):
            member = mod.members.get(name)
            if member is None:
                continue
            try:
                target = member.final_target if member.is_alias else member
            except (griffe.AliasResolutionError, griffe.CyclicAliasError):
                continue
            out.setdefault(target.path, f"{mod.path}.{name}")
            if target.is_class:
                for sub in target.members:
                    if not sub.startswith("_"):
                        out.setdefault(f"{target.path}.{sub}", f"{mod.path}.{name}.{sub}")
    # Top-level names that no namespace exports have their entry on the fnn page.
    for name in _exports(pkg):
        member = pkg.members.get(name)
        try:
            target = member.final_target if member is not None and member.is_alias else member
        except (griffe.AliasResolutionError, griffe.CyclicAliasError):
            continue
        if target is not None and not target.is_module:
            out.setdefault(target.path, f"fnn.{name}")
    return out


def _exports(mod: griffe.Module) -> list[str]:
    exports = mod.exports or []
    return [e if isinstance(e, str) else getattr(e, "name", str(e)) for e in exports]


def _walk(obj: griffe.Object):
    yield obj
    for member in obj.members.values():
        if member.is_alias:
            continue
        yield from _walk(member)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _math_blocks(text: str) -> str:
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        m = _MATH.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        base = len(m.group("indent"))
        i += 1
        body = []
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > base):
            body.append(lines[i])
            i += 1
        while body and not body[-1].strip():
            body.pop()
        while body and not body[0].strip():
            body.pop(0)
        cut = min((_indent(b) for b in body if b.strip()), default=0)
        pad = " " * base
        out += [f"{pad}```latex", *(pad + b[cut:] if b.strip() else "" for b in body), f"{pad}```", ""]
    return "\n".join(out)


def _literal_paragraphs(text: str) -> str:
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.rstrip().endswith("::") and not line.lstrip().startswith((">>>", "...")):
            stripped = line.rstrip()[:-2].rstrip()
            lines[i] = stripped + ":" if stripped else ""
    return "\n".join(lines)


def _doctest_blocks(text: str) -> str:
    """``>>>`` blocks in free text as fenced ``pycon`` blocks (an Examples section is left to the
    docstring parser, which renders its own)."""
    lines, out, i, in_examples = text.split("\n"), [], 0, False
    while i < len(lines):
        line = lines[i]
        if line.strip() and _indent(line) == 0:
            in_examples = bool(_SECTION.match(line))  # a section ends at the next unindented line
        if in_examples or not line.lstrip().startswith(">>>"):
            out.append(line)
            i += 1
            continue
        pad = " " * _indent(line)
        block = []
        while i < len(lines) and lines[i].strip():
            block.append(lines[i][len(pad) :])
            i += 1
        out += [f"{pad}```pycon", *(pad + b for b in block), f"{pad}```"]
    return "\n".join(out)
