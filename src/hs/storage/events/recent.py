"""What this process wrote to the events stream lately, so /sync can answer its short
range reads (rooms with new events, membership changes, timeline IDs) from memory
instead of a database round trip each.

The persister records a batch after its transaction committed and *before* its stream
positions complete, so by the time a reader can see a position (its ``upto``) the entry
is here. A range ``(since, upto]`` is answered only when every position in it is
accounted for by a successful batch of this process (written, or allocated to a
duplicate that wrote nothing); positions of other processes, of failed batches (the
commit's outcome may be unknown) and of batches with outliers (promotion moves rows
between positions) leave gaps, and a range with a gap goes to the database. The log is
bounded: the oldest positions are dropped first, which only makes ranges fall back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: Longer ranges are left to the database (they are rare and would scan the log).
MAX_RANGE = 1000
#: Positions remembered (~150 bytes each). A range is answered only when it is at most
#: ``MAX_RANGE`` long and ends at a position a reader saw complete, so entries much
#: older than the newest ``MAX_RANGE`` serve nothing: the margin covers positions
#: written while a request runs (20,000 kept ~3 MB that no read could use).
DEFAULT_SIZE = 4 * MAX_RANGE


@dataclass(frozen=True, slots=True)
class Written:
    """One event written at a position, with the row facts /sync reads."""

    room_id: str
    event_id: str
    #: ``events.in_timeline``.
    in_timeline: bool
    #: ``(user_id, membership)`` of its ``room_memberships`` row, if any.
    membership: tuple[str, str] | None
    #: Its batch may have logged an ``m.room.member`` current-state delta.
    member_delta: bool


class RecentWrites:
    """See the module docstring."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._size = size
        #: position -> what was written there (None: accounted for, nothing written).
        self._log: dict[int, Written | None] = {}
        self._low = 0  # positions at or below were dropped (or never seen)

    def record(self, entries: Iterable[tuple[int, Written | None]]) -> None:
        """Account for positions of a committed batch (before they complete)."""
        for position, written in entries:
            if position > self._low:
                self._log[position] = written
        if len(self._log) > self._size:
            # Insertion order is roughly position order: drop the oldest inserted.
            drop = len(self._log) - self._size
            for position in list(self._log)[:drop]:
                del self._log[position]
                self._low = max(self._low, position)

    def span(self, since: int, upto: int) -> list[tuple[int, Written]] | None:
        """The writes at positions ``(since, upto]`` in order, or None unless every
        position of the range is accounted for."""
        if upto - since > MAX_RANGE or since < self._low:
            return None
        out: list[tuple[int, Written]] = []
        log = self._log
        for position in range(since + 1, upto + 1):
            if position not in log:
                return None
            written = log[position]
            if written is not None:
                out.append((position, written))
        return out


__all__ = ["MAX_RANGE", "RecentWrites", "Written"]
