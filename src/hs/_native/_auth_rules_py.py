"""Pure-Python twin of ``_auth_rules_c``: the auth rules' verdict for state resolution.

State resolution asks the auth rules (``hs.core.auth``) for allow/deny many times per
resolution. The Cython twin decides the common shapes itself and hands the rest to the
full rules; this twin hands everything over, so the pure path *is* ``hs.core.auth``. The
rules are passed in as callables because ``hs.core`` imports ``hs._native``, not the
other way round.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["auth_keys", "is_allowed"]

StateKey = tuple[str, str]


def is_allowed(
    event: Any,
    auth_events: Mapping[StateKey, Any],
    fallback: Callable[[Any, Mapping[StateKey, Any]], bool],
) -> bool:
    """The auth rules' verdict on ``event`` against the state map ``auth_events``:
    ``fallback`` (the full rules), always."""
    return bool(fallback(event, auth_events))


def auth_keys(
    events: Iterable[Any], fallback: Callable[[Any], list[StateKey]]
) -> list[list[StateKey]]:
    """The state keys each event's auth rules need (``auth_types_for_event``):
    ``fallback`` (the full selection), always."""
    return [fallback(ev) for ev in events]
