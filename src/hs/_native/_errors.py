"""Exception types shared by both twins of every accelerator (so callers catch one class).

``hs.core`` re-exports them next to the APIs that raise them.
"""

from __future__ import annotations


class CanonicalJSONError(ValueError):
    """The value has no canonical JSON form (float, big integer, non-string key, ...)."""


class JSONValueError(ValueError):
    """A decoded JSON value breaks a rule of the strict decoder (float, integer range)."""


class StateSortError(ValueError):
    """The auth graph handed to a state-resolution sort is not a DAG (a cycle of auth events)."""


class MissingEventsError(LookupError):
    """A DAG walk needed events the caller could not supply (``event_ids``, sorted)."""

    def __init__(self, event_ids: list[str]) -> None:
        self.event_ids = event_ids
        shown = ", ".join(event_ids[:5]) + (", ..." if len(event_ids) > 5 else "")
        super().__init__(f"{len(event_ids)} event(s) missing from the DAG: {shown}")


class EventHashError(ValueError):
    """The event cannot be hashed or redacted: not a JSON object, or unknown redaction rules."""
