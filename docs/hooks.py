"""MkDocs hooks (mkdocs.yml: ``hooks``): parts of the README included in the pages, so that the
README and the site say the same thing without a copy to keep in step.

In a page's Markdown:

* ``<!-- readme: api-tour -->`` is replaced by the README's text between
  ``<!-- API-TOUR-START -->`` and ``<!-- API-TOUR-END -->`` (tests/test_readme.py runs that
  code);
* ``<!-- readme-section: Heading -->`` by the body of the README section with that heading,
  its subsections one level up (the page gives the title);
* ``<!-- fnn-top-level -->`` by a table of ``fnn``'s top-level names, each linked to its entry
  in the reference;
* ``<!-- fnn-cli-help: compare -->`` by ``fnn compare --help`` (any command).

A marker that matches nothing is an error, so the build fails rather than lose a section.
"""

from __future__ import annotations

import inspect
import pathlib
import posixpath
import re
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

_TOUR = re.compile(r"<!--\s*readme:\s*api-tour\s*-->")
_SECTION = re.compile(r"<!--\s*readme-section:\s*(.+?)\s*-->")
_TOP_LEVEL = re.compile(r"<!--\s*fnn-top-level\s*-->")
_CLI_HELP = re.compile(r"<!--\s*fnn-cli-help:\s*(\w+)\s*-->")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")


def _tour(text: str) -> str:
    try:
        return text.split("<!-- API-TOUR-START -->", 1)[1].split("<!-- API-TOUR-END -->", 1)[0].strip()
    except IndexError:
        raise ValueError("README.md has no <!-- API-TOUR-START --> ... <!-- API-TOUR-END --> block") from None


def _section(text: str, title: str) -> str:
    """The body of the README section called ``title``, subsections one level up."""
    lines = text.split("\n")
    fence = False
    start = level = None
    body: list[str] = []
    for line in lines:
        if line.startswith("```"):
            fence = not fence
        m = None if fence or line.startswith("```") else _HEADING.match(line)
        if start is None:
            if m and m.group(2) == title:
                start, level = True, len(m.group(1))
            continue
        if m and len(m.group(1)) <= level:
            break
        if m:
            line = "#" * (len(m.group(1)) - 1) + " " + m.group(2)
        body.append(line)
    if start is None:
        raise ValueError(f"README.md has no section {title!r}")
    return "\n".join(body).strip()


def _relink(text: str, page_uri: str) -> str:
    """The README's links into docs/ made relative to the page."""
    here = posixpath.dirname(page_uri)
    return re.sub(r"\]\(docs/([^)\s]+)\)", lambda m: f"]({posixpath.relpath(m.group(1), here or '.')})", text)


def _top_level_table() -> str:
    """The table of ``fnn.__all__``; names that no namespace documents are rendered below it."""
    import fnn

    rows = ["| name | what it is | documented in |", "|---|---|---|"]
    own = []
    for name in fnn.__all__:
        obj = getattr(fnn, name)
        if type(obj) is type(fnn):  # a namespace: its own page
            rows.append(f"| [`fnn.{name}`][{obj.__name__}] | namespace | [{obj.__name__}][{obj.__name__}] |")
            continue
        home = _home(obj, name)
        doc = (inspect.getdoc(obj) or "").split("\n\n")[0].replace("\n", " ").replace("|", "\\|")
        doc = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", doc)
        if home is None:
            own.append(name)
            home = "fnn"
        rows.append(f"| [`fnn.{name}`][{home}.{name}] | {doc} | [{home}][{home}.{name}] |")
    blocks = [f"::: fnn.{name}\n    options:\n      heading_level: 3\n      show_root_full_path: true" for name in own]
    return "\n".join(rows) + ("\n\n## Defined at the top level\n\n" + "\n\n".join(blocks) if blocks else "")


def _home(obj: Any, name: str) -> str | None:
    """The public namespace whose reference page documents the top-level name ``name``
    (None: the name lives at the top level only, and the ``fnn`` page documents it)."""
    import fnn

    for ns in fnn.__all__:
        sub = getattr(fnn, ns)
        if type(sub) is type(fnn) and name in getattr(sub, "__all__", ()) and getattr(sub, name) is obj:
            module = getattr(obj, "__module__", "") or ""
            if module.startswith(sub.__name__):  # prefer the namespace that defines it
                return sub.__name__
    for ns in fnn.__all__:
        sub = getattr(fnn, ns)
        if type(sub) is type(fnn) and name in getattr(sub, "__all__", ()) and getattr(sub, name) is obj:
            return sub.__name__
    return None


def _cli_help(command: str) -> str:
    """``fnn COMMAND --help`` as the parser prints it, 100 columns wide."""
    import argparse
    import os

    from fnn.cli import build_parser

    width = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        parser = build_parser()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        text = sub.choices[command].format_help()
    finally:
        if width is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = width
    return f"```text\n$ fnn {command} --help\n{text.rstrip()}\n```"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if "<!--" not in markdown:
        return markdown
    readme = README.read_text(encoding="utf-8")
    uri = page.file.src_uri
    markdown = _TOUR.sub(lambda m: _relink(_tour(readme), uri), markdown)
    markdown = _SECTION.sub(lambda m: _relink(_section(readme, m.group(1)), uri), markdown)
    markdown = _CLI_HELP.sub(lambda m: _cli_help(m.group(1)), markdown)
    return _TOP_LEVEL.sub(lambda m: _top_level_table(), markdown)
