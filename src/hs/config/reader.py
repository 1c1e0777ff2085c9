"""A small walker over the parsed YAML that records every problem and every unread key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
_MISSING: Any = object()


class Section:
    """One mapping in the config file; ``get`` validates a key, ``finish`` lists leftovers."""

    def __init__(self, data: Any, path: str, problems: list[tuple[str, str]],
                 unknown: list[str]) -> None:
        self.path = path
        self.problems = problems
        self.unknown = unknown
        self._seen: set[str] = set()
        if data is None:
            data = {}
        if not isinstance(data, dict):
            problems.append((path or "<top level>", f"must be a mapping, not {data!r}"))
            data = {}
        self.data: dict[str, Any] = data

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def get(self, key: str, parser: Callable[[Any], T], default: T = _MISSING,
            hint: str = "") -> T:
        """Parse ``key``; a missing required key or a bad value is recorded, not raised."""
        self._seen.add(key)
        value = self.data.get(key)
        if value is None:
            if default is _MISSING:
                self.problems.append((self.key_path(key), "is required" + (f"; {hint}" if hint
                                                                           else "")))
            return default
        try:
            return parser(value)
        except ValueError as exc:
            self.problems.append((self.key_path(key), str(exc) + (f"; {hint}" if hint else "")))
            return default if default is not _MISSING else None  # type: ignore[return-value]

    def section(self, key: str) -> Section:
        self._seen.add(key)
        return Section(self.data.get(key), self.key_path(key), self.problems, self.unknown)

    def items(self) -> list[tuple[str, Any]]:
        return list(self.data.items())

    def mark_seen(self, *keys: str) -> None:
        self._seen.update(keys)

    def finish(self) -> None:
        """Record keys nobody asked for (typos, unsupported settings)."""
        for key in self.data:
            if key not in self._seen:
                self.unknown.append(self.key_path(str(key)))
