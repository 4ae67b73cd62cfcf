"""ModelCheckpoint's ``filepath``, a ``str.format`` template of the epoch and its logs: its
fields, their format specs checked against the values' types before training (``epoch`` an
int, the logs' values floats), and the paths it can write (fit refuses one as its own
checkpoint where the callback keeps a best or params-only file there)."""

from __future__ import annotations

import contextlib
import os
import re
import string
from typing import Any

# What a number formats to, whatever its spec: digits, signs, separators, exponents, hex, nan, inf
_NUMBER = "0-9a-fA-FinxoINXO+\\-.,_% "


def _name(field: str) -> str:
    """A replacement field's name (``"loss.real"``, ``"x[0]"`` -> ``loss``, ``x``)."""
    return field.split(".")[0].split("[")[0]


def _field_text(field: str, spec: str | None, conversion: str | None) -> str:
    """The replacement field written back as a template (``{field!conversion:spec}``)."""
    return "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"


def fields(template: str) -> list[str]:
    """The replacement-field names of a ``str.format`` template (``"{epoch:02d}"`` -> ``epoch``)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:
        raise ValueError(f"ModelCheckpoint: filepath {template!r} is not a valid format string: {err}") from None
    return [_name(name) for _, name, _, _ in parsed if name is not None]


def check_formats(template: str, names: set[str]) -> None:
    """Each field of ``template`` that is ``epoch`` (an int) or among the log ``names`` (floats)
    formatted once with a value of that type: a spec or conversion that cannot format it
    (``{loss:02d}``) is a ValueError naming ModelCheckpoint, the filepath and the field. Fields
    of other names (a callback of the user's logs them) and specs with nested fields are left
    to the epoch's end."""
    values: dict[str, Any] = dict.fromkeys(names, 1.0)
    values["epoch"] = 1
    for _, field, spec, conversion in string.Formatter().parse(template):
        if field is None:
            continue
        name = _name(field)
        if name not in values or "{" in (spec or ""):
            continue
        text = _field_text(field, spec, conversion)
        try:
            text.format(**{name: values[name]})
        except (ValueError, TypeError, AttributeError, KeyError, IndexError) as err:
            kind = "an int" if name == "epoch" else "a float, as every value the logs hold"
            raise ValueError(
                f"ModelCheckpoint: filepath {template!r} cannot format its field {text}: {err} ({{{name}}} is {kind})"
            ) from None


def could_write(template: str, path: str) -> bool:
    """Whether formatting ``template`` can give ``path``: its literal text with each field a
    number its format spec can produce (compared as absolute paths, and through symlinks where
    the template's folder has no fields to resolve)."""
    folder, name = os.path.split(template)
    templates = {os.path.abspath(template)}
    if not fields(template):  # a link of its own, resolved
        templates.add(os.path.realpath(template))
    elif "{" not in folder:
        templates.add(os.path.join(os.path.realpath(folder), name))
    candidates = {os.path.abspath(path), os.path.realpath(path)}
    return any(_formats_to(list(string.Formatter().parse(t)), c, 0) for t in templates for c in candidates)


def _formats_to(parts: list, path: str, pos: int) -> bool:
    """Whether the template ``parts`` (``string.Formatter().parse``'s) can format to
    ``path[pos:]``: each literal as it is, each field some text of number characters that a
    value of its type formats to with its spec (every way of splitting the path is tried)."""
    if not parts:
        return pos == len(path)
    (literal, field, spec, conversion), rest = parts[0], parts[1:]
    if not path.startswith(literal, pos):
        return False
    pos += len(literal)
    if field is None:
        return _formats_to(rest, path, pos)
    allowed = re.compile(f"[{_NUMBER}{re.escape(_fill(spec or ''))}]")
    for end in range(pos, len(path) + 1):
        text = path[pos:end]
        if _field_gives(text, field, spec or "", conversion) and _formats_to(rest, path, end):
            return True
        if end < len(path) and not allowed.fullmatch(path[end]):
            break
    return False


def _fill(spec: str) -> str:
    """The spec's fill character (``"*>8"``), or none."""
    return spec[0] if len(spec) > 1 and spec[1] in "<>=^" else ""


def _field_gives(text: str, field: str, spec: str, conversion: str | None) -> bool:
    """Whether a value of the field's type (``epoch`` an int, a logged value a float) formats to
    ``text``: the numbers ``text`` reads as are formatted back with the spec and compared. A
    field this cannot judge (an attribute or index, a nested spec, a fill that is a number's
    character) may give any number's text."""
    name = _name(field)
    fill = _fill(spec)
    if field != name or "{" in spec or (fill and re.fullmatch(f"[{_NUMBER}]", fill) and fill != " "):
        return True
    shown = _field_text("0", spec, conversion)
    for value in _read(text, as_int=name == "epoch"):
        try:
            if shown.format(value) == text:
                return True
        except (ValueError, TypeError, OverflowError):
            continue
    return False


def _read(text: str, as_int: bool) -> list:
    """The numbers ``text`` may show (ints for ``as_int``, floats otherwise): read in each base
    and as a float, separators and padding dropped, a percentage divided by 100, a character
    as its code."""
    core = text.replace(",", "").replace("_", "").strip()
    tokens = {core, core.rstrip("%")} | set(re.findall(r"[-+]?[0-9A-Za-z.]+", core))
    out: list = []
    for token in tokens:
        for base in (10, 16, 8, 2):
            with contextlib.suppress(ValueError):
                out.append(int(token, base))
        try:
            number = float(token)
        except ValueError:
            continue
        out += [number, number / 100]
        if number.is_integer():
            out += [int(number), int(number) // 100]
    if len(text) == 1:
        out.append(ord(text))  # the "c" type
    if as_int:
        return [v for v in out if isinstance(v, int)]
    return [float(v) for v in out]
