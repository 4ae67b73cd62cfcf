"""One name rule for every registry (activations, initializers, losses, metrics, optimizers,
schedules): names are compared without case and underscores, so Keras's and PyTorch's class
names resolve as well as the function names (``"ReLU"``, ``"GlorotUniform"``,
``"MeanSquaredError"``, ``"Adam"``); an unknown name raises a ValueError listing the known ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


def normalize(name: str) -> str:
    """The form names are compared in: lower case, without underscores, dashes or spaces."""
    return name.lower().replace("_", "").replace("-", "").replace(" ", "")


class Registry(Generic[T]):
    """Entries by canonical name, with aliases; lookups normalise the name asked for."""

    def __init__(
        self,
        kind: str,
        entries: Mapping[str, T],
        aliases: Mapping[str, str] | None = None,
        known: str = "names",
        listed: tuple[str, ...] = (),
    ) -> None:
        self.kind, self.known = kind, known
        self.entries = dict(entries)
        self.aliases = dict(aliases or {})
        self.listed = listed  # names the registry's owner resolves itself (listed, never looked up)
        self._index = {normalize(n): n for n in self.entries}
        for alias, target in self.aliases.items():
            if target not in self.entries:
                raise KeyError(f"{kind} alias {alias!r} points to unknown {target!r}")
            self._index.setdefault(normalize(alias), target)

    def names(self) -> list[str]:
        """Canonical names, aliases and the owner's own listed names, sorted."""
        return sorted([*self.entries, *self.aliases, *self.listed])

    def canonical(self, name: object) -> str:
        """The canonical name for ``name``; TypeError for a non-string, ValueError if unknown."""
        if not isinstance(name, str):
            raise TypeError(f"{self.kind} name must be a str, got {type(name).__name__} {name!r}")
        found = self._index.get(normalize(name))
        if found is None:
            raise ValueError(f"unknown {self.kind} {name!r}; known {self.known}: {', '.join(self.names())}")
        return found

    def lookup(self, name: object) -> T:
        return self.entries[self.canonical(name)]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and normalize(name) in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)
