"""Selector: the Cython event hasher (redaction, content and reference hashes), or its twin."""

from hs._native._errors import EventHashError
from hs._native._loader import load

_impl = load("event_hash")

redact = _impl.redact
content_hash = _impl.content_hash
reference_hash = _impl.reference_hash
hash_event = _impl.hash_event
hash_events = _impl.hash_events

__all__ = [
    "EventHashError",
    "content_hash",
    "hash_event",
    "hash_events",
    "redact",
    "reference_hash",
]
