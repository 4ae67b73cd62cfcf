"""ModelCheckpoint's ``filepath``, a ``str.format`` template of the epoch and its logs: its
fields, their format specs checked against the values' types before training (``epoch`` an
int, the logs' values floats), and the paths it can write (fit refuses one as its own
checkpoint where the callback keeps a best or params-only file there)."""

from __future__ import annotations

import os
import re
import string
from typing import Any

# What a number formats to, whatever its spec: digits, signs, separators, exponents, hex, nan, inf
_NUMBER = "0-9a-fA-FinxoINXO+\\-.,_% "


def fields(template: str) -> list[str]:
    """The replacement-field names of a ``str.format`` template (``"{epoch:02d}"`` -> ``epoch``)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:
        raise ValueError(f"ModelCheckpoint: filepath {template!r} is not a valid format string: {err}") from None
    return [name.split(".")[0].split("[")[0] for _, name, _, _ in parsed if name is not None]


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
        name = field.split(".")[0].split("[")[0]
        if name not in values or "{" in (spec or ""):
            continue
        text = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        try:
            text.format(**{name: values[name]})
        except (ValueError, TypeError, AttributeError, KeyError, IndexError) as err:
            kind = "an int" if name == "epoch" else "a float, as every value the logs hold"
            raise ValueError(
                f"ModelCheckpoint: filepath {template!r} cannot format its field {text}: {err} ({{{name}}} is {kind})"
            ) from None


def could_write(template: str, path: str) -> bool:
    """Whether formatting ``template`` can give ``path``: its literal text with each field a
    number (compared as absolute paths, and through symlinks where the template's folder has
    no fields to resolve)."""
    folder, name = os.path.split(template)
    templates = {os.path.abspath(template)}
    if not fields(template):  # a link of its own, resolved
        templates.add(os.path.realpath(template))
    elif "{" not in folder:
        templates.add(os.path.join(os.path.realpath(folder), name))
    candidates = {os.path.abspath(path), os.path.realpath(path)}
    return any(_regex(t).fullmatch(c) for t in templates for c in candidates)


def _regex(template: str) -> re.Pattern:
    """The paths ``template`` formats to: its literal text, and each field a number."""
    regex = ""
    for literal, field, spec, _ in string.Formatter().parse(template):
        regex += re.escape(literal) + ("" if field is None else _field_pattern(spec or ""))
    return re.compile(regex)


def _field_pattern(spec: str) -> str:
    """A regular expression of the text a number's field with format ``spec`` may become: the
    characters of numbers, and the spec's fill character (``"*>8"``)."""
    fill = re.escape(spec[0]) if len(spec) > 1 and spec[1] in "<>=^" else ""
    return f"[{_NUMBER}{fill}]*"
