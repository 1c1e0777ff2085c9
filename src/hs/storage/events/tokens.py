"""Room position tokens for /messages, /context and sync.

Format choice: ``t<depth>-<stream>`` is a *topological* position and ``s<stream>`` a
*stream* position. Both name the point just after the event with that key, where events
are ordered by ``(depth, stream_ordering)`` in topological order and by ``stream_ordering``
in stream order. Depth alone is not unique (siblings share it), so the stream ordering
breaks ties and makes every position exact; a backwards page from ``P`` returns keys
``<= P`` and hands back the point just before its last event, a forwards page returns keys
``> P``, so consecutive pages never repeat or skip an event. Sync hands out stream tokens
(it reads in arrival order); /messages accepts either and converts a stream token to the
topological point of the newest event at or before it (``EventsStore.topological_token``).
"""

from __future__ import annotations

from dataclasses import dataclass


class InvalidTokenError(ValueError):
    """The string is not a room position token (the API layer maps this to 400)."""


@dataclass(frozen=True, slots=True, order=True)
class RoomToken:
    """A position; ``depth`` None means a stream position."""

    depth: int | None
    stream: int

    @property
    def is_topological(self) -> bool:
        return self.depth is not None

    def __str__(self) -> str:
        if self.depth is None:
            return f"s{self.stream}"
        return f"t{self.depth}-{self.stream}"

    @classmethod
    def parse(cls, text: str) -> RoomToken:
        try:
            if text.startswith("s"):
                return cls(None, int(text[1:]))
            if text.startswith("t"):
                depth, stream = text[1:].split("-", 1)
                return cls(int(depth), int(stream))
        except ValueError:
            pass
        raise InvalidTokenError(f"invalid room token {text!r}")


__all__ = ["InvalidTokenError", "RoomToken"]
