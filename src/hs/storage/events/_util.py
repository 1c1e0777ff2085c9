"""Small SQL helpers shared by the event, state and room stores."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

from hs.storage.database import placeholders

T = TypeVar("T")

#: IDs per ``IN (...)`` list: well below SQLite's and PostgreSQL's parameter limits, and
#: large enough that a typical batch is one statement.
CHUNK = 500


def chunks(items: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    """``items`` in lists of at most ``size`` (none when ``items`` is empty)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def qmarks(values: Sequence[object]) -> str:
    """``?, ?, ?`` for an IN list of ``values`` (which must not be empty)."""
    return placeholders(len(values))


__all__ = ["CHUNK", "chunks", "qmarks"]
