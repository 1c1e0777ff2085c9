"""The filter model (client-server "Filtering"): parse and validate, store, apply.

A filter arrives as an uploaded JSON object (``POST /user/{userId}/filter``), by ID, or as
inline JSON in a query string (a ``filter`` value starting with ``{``). ``Filter`` is the
whole sync filter; ``RoomEventFilter`` is what /messages, /context and the room sections
use. The simple conditions (types, senders) are also handed to SQL as an ``EventFilter``;
the rest (``contains_url``, globs that are not a trailing ``*``, rooms) apply in Python.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

from hs.core.json_decode import JSONDecodeError, decode_json
from hs.core.pdu import PDU
from hs.core.push_rules import split_dotted_path
from hs.http.errors import MatrixError, bad_json, forbidden, invalid_param
from hs.storage.events import EventFilter
from hs.storage.events.cache import LruCache
from hs.storage.filters import FilterStore

#: Largest ``limit`` honoured anywhere a filter sets one (a larger value is capped).
MAX_FILTER_LIMIT = 1000


@lru_cache(maxsize=1024)
def _glob(pattern: str) -> re.Pattern[str]:
    """``*`` matches any sequence of characters; everything else is literal."""
    return re.compile(".*".join(re.escape(p) for p in pattern.split("*")), re.DOTALL)


def _type_matches(etype: str, patterns: Iterable[str]) -> bool:
    for p in patterns:
        if "*" in p:
            if _glob(p).fullmatch(etype):
                return True
        elif p == etype:
            return True
    return False


def _str_list(body: Mapping[str, Any], key: str, where: str, prefix: str = "") -> list[str] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_json(f"{where}{key} must be a list of strings")
    if prefix and any(not v.startswith(prefix) for v in value):
        raise bad_json(f"{where}{key} entries must start with {prefix!r}")
    return value


def _bool(body: Mapping[str, Any], key: str, where: str) -> bool | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise bad_json(f"{where}{key} must be a boolean")
    return value


def _object(body: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_json(f"{where}{key} must be an object")
    return value


@dataclass(frozen=True)
class EventFilterSpec:
    """The spec's EventFilter: limit, types/not_types (``*`` globs), senders/not_senders."""

    limit: int | None = None
    types: Sequence[str] | None = None
    not_types: Sequence[str] = ()
    senders: Sequence[str] | None = None
    not_senders: Sequence[str] = ()

    def matches_fields(self, etype: str, sender: str | None) -> bool:
        if self.types is not None and not _type_matches(etype, self.types):
            return False
        if self.not_types and _type_matches(etype, self.not_types):
            return False
        if sender is not None:
            if self.senders is not None and sender not in self.senders:
                return False
            if sender in self.not_senders:
                return False
        return True

    def matches(self, event: PDU | Mapping[str, Any]) -> bool:
        data = event.data if isinstance(event, PDU) else event
        return self.matches_fields(str(data.get("type", "")), data.get("sender"))

    def filter(self, events: Iterable[Any]) -> list[Any]:
        return [e for e in events if self.matches(e)]

    def limit_or(self, default: int) -> int:
        return min(self.limit, MAX_FILTER_LIMIT) if self.limit is not None else default


@dataclass(frozen=True)
class RoomEventFilter(EventFilterSpec):
    """The spec's RoomEventFilter: EventFilter plus rooms, URLs and member lazy-loading."""

    rooms: Sequence[str] | None = None
    not_rooms: Sequence[str] = ()
    contains_url: bool | None = None
    lazy_load_members: bool = False
    include_redundant_members: bool = False
    unread_thread_notifications: bool = False

    def allows_room(self, room_id: str) -> bool:
        if room_id in self.not_rooms:
            return False
        return self.rooms is None or room_id in self.rooms

    def matches(self, event: PDU | Mapping[str, Any]) -> bool:
        data = event.data if isinstance(event, PDU) else event
        room_id = data.get("room_id")
        if isinstance(room_id, str) and not self.allows_room(room_id):
            return False
        if self.contains_url is not None:
            content = data.get("content")
            has_url = isinstance(content, dict) and isinstance(content.get("url"), str)
            if has_url != self.contains_url:
                return False
        return super().matches(data)

    def storage_filter(self) -> EventFilter | None:
        """The part SQL can evaluate: types with only a trailing ``*``, and senders.
        Type lists with other globs are left to ``matches`` (always applied as well)."""

        def sql_ok(types: Sequence[str]) -> bool:
            return all("*" not in t[:-1] for t in types)

        types = self.types if self.types is not None and sql_ok(self.types) else None
        not_types = self.not_types if sql_ok(self.not_types) else ()
        if types is None and not not_types and self.senders is None and not self.not_senders:
            return None
        return EventFilter(types, not_types, self.senders, self.not_senders)

    @property
    def needs_python(self) -> bool:
        """Whether ``matches`` can reject an event the storage filter let through."""
        return self.contains_url is not None or self.rooms is not None or bool(
            self.not_rooms) or any("*" in t[:-1] for t in (*(self.types or ()), *self.not_types))


@dataclass(frozen=True)
class RoomFilter:
    rooms: Sequence[str] | None = None
    not_rooms: Sequence[str] = ()
    include_leave: bool = False
    ephemeral: RoomEventFilter = field(default_factory=RoomEventFilter)
    state: RoomEventFilter = field(default_factory=RoomEventFilter)
    timeline: RoomEventFilter = field(default_factory=RoomEventFilter)
    account_data: RoomEventFilter = field(default_factory=RoomEventFilter)

    def allows_room(self, room_id: str) -> bool:
        """Applied before the per-section filters (the spec's RoomFilter rooms/not_rooms)."""
        if room_id in self.not_rooms:
            return False
        return self.rooms is None or room_id in self.rooms


@dataclass(frozen=True)
class Filter:
    """A whole filter as uploaded (the spec's Filter object)."""

    event_fields: Sequence[str] | None = None
    event_format: str = "client"
    presence: EventFilterSpec = field(default_factory=EventFilterSpec)
    account_data: EventFilterSpec = field(default_factory=EventFilterSpec)
    room: RoomFilter = field(default_factory=RoomFilter)


def _limit(body: Mapping[str, Any], where: str) -> int | None:
    value = body.get("limit")
    if value is None:
        return None
    # 0 is accepted: bots use a zero timeline limit to skip timelines in /sync.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise bad_json(f"{where}limit must be a non-negative integer")
    return min(value, MAX_FILTER_LIMIT)


def _event_filter_kwargs(body: Mapping[str, Any], where: str) -> dict[str, Any]:
    return {
        "limit": _limit(body, where),
        "types": _str_list(body, "types", where),
        "not_types": _str_list(body, "not_types", where) or (),
        "senders": _str_list(body, "senders", where, "@"),
        "not_senders": _str_list(body, "not_senders", where, "@") or (),
    }


def parse_event_filter(body: Any, where: str = "") -> EventFilterSpec:
    if not isinstance(body, dict):
        raise bad_json(f"{where or 'filter'} must be an object")
    return EventFilterSpec(**_event_filter_kwargs(body, where))


def parse_room_event_filter(body: Any, where: str = "") -> RoomEventFilter:
    if not isinstance(body, dict):
        raise bad_json(f"{where or 'filter'} must be an object")
    return RoomEventFilter(
        **_event_filter_kwargs(body, where),
        rooms=_str_list(body, "rooms", where, "!"),
        not_rooms=_str_list(body, "not_rooms", where, "!") or (),
        contains_url=_bool(body, "contains_url", where),
        lazy_load_members=bool(_bool(body, "lazy_load_members", where)),
        include_redundant_members=bool(_bool(body, "include_redundant_members", where)),
        unread_thread_notifications=bool(_bool(body, "unread_thread_notifications", where)),
    )


def parse_filter(body: Any) -> Filter:
    """Validate a whole filter; wrong shapes are M_BAD_JSON (400)."""
    if not isinstance(body, dict):
        raise bad_json("filter must be an object")
    event_format = body.get("event_format", "client")
    if event_format not in ("client", "federation"):
        raise bad_json("event_format must be 'client' or 'federation'")
    room = _object(body, "room", "")
    return Filter(
        event_fields=_str_list(body, "event_fields", ""),
        event_format=event_format,
        presence=parse_event_filter(_object(body, "presence", ""), "presence."),
        account_data=parse_event_filter(_object(body, "account_data", ""), "account_data."),
        room=RoomFilter(
            rooms=_str_list(room, "rooms", "room.", "!"),
            not_rooms=_str_list(room, "not_rooms", "room.", "!") or (),
            include_leave=bool(_bool(room, "include_leave", "room.")),
            ephemeral=parse_room_event_filter(_object(room, "ephemeral", "room."),
                                              "room.ephemeral."),
            state=parse_room_event_filter(_object(room, "state", "room."), "room.state."),
            timeline=parse_room_event_filter(_object(room, "timeline", "room."),
                                             "room.timeline."),
            account_data=parse_room_event_filter(_object(room, "account_data", "room."),
                                                 "room.account_data."),
        ),
    )


def _inline_json(text: str) -> Any:
    try:
        return decode_json(text.encode())
    except JSONDecodeError as exc:
        raise invalid_param(f"filter is not valid JSON: {exc}") from None


def parse_inline_room_event_filter(text: str | None) -> RoomEventFilter:
    """The ``filter`` query parameter of /messages, /context (inline JSON only)."""
    if text is None or not text.strip():
        return RoomEventFilter()
    return parse_room_event_filter(_inline_json(text))


# ---- event_fields ---------------------------------------------------------------------------


def apply_event_fields(event: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """Only the listed fields of a serialized event (missing ones are skipped)."""
    out: dict[str, Any] = {}
    for path in fields:
        parts = split_dotted_path(path)
        src: Any = event
        for p in parts:
            if not isinstance(src, dict) or p not in src:
                break
            src = src[p]
        else:
            dst = out
            for p in parts[:-1]:
                nxt = dst.get(p)
                if not isinstance(nxt, dict):
                    nxt = dst[p] = {}
                dst = nxt
            dst[parts[-1]] = src
    return out


# ---- stored filters -------------------------------------------------------------------------

#: Parsed filters kept (``FilterHandler.resolve``).
PARSED_FILTERS = 4096


class FilterHandler:
    """Upload and fetch a user's filters; resolve a ``filter`` parameter (ID or JSON)."""

    def __init__(self, store: FilterStore, server_name: str) -> None:
        self.store = store
        self.server_name = server_name
        #: Parsed filters by inline JSON text or by (user, ID): a stored filter never
        #: changes and ``Filter`` is immutable, so a client syncing with the same filter
        #: (Element: by ID, every request) neither reads nor parses it again.
        self._parsed: LruCache[str, Filter] = LruCache(PARSED_FILTERS)

    def _own(self, requester_id: str, user_id: str, action: str) -> None:
        if requester_id != user_id:
            raise forbidden(f"Cannot {action} filters for other users")

    async def upload(self, requester_id: str, user_id: str, body: Any) -> str:
        self._own(requester_id, user_id, "create")
        parse_filter(body)
        text = orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()
        filter_id = await self.store.add_filter(user_id, text)
        return str(filter_id)

    async def get_json(self, requester_id: str, user_id: str, filter_id: str) -> Any:
        self._own(requester_id, user_id, "get")
        raw = await self._load(user_id, filter_id)
        if raw is None:
            raise MatrixError(404, "M_NOT_FOUND", "No such filter")
        return orjson.loads(raw)

    async def _load(self, user_id: str, filter_id: str) -> str | None:
        if not filter_id.isdigit() or len(filter_id) > 18:
            return None
        return await self.store.get_filter(user_id, int(filter_id))

    async def resolve(self, user_id: str, param: str | None) -> Filter:
        """A sync-style ``filter`` parameter: inline JSON (starts with ``{``) or an ID."""
        if param is None or not param.strip():
            return Filter()
        inline = param.lstrip().startswith("{")
        key = param if inline else f"{user_id}\n{param}"
        found = self._parsed.get(key)
        if found is not None:
            return found
        if inline:
            found = parse_filter(_inline_json(param))
        else:
            raw = await self._load(user_id, param)
            if raw is None:
                raise invalid_param(f"No such filter: {param}")
            found = parse_filter(orjson.loads(raw))
        self._parsed.set(key, found)
        return found


__all__ = [
    "MAX_FILTER_LIMIT", "EventFilterSpec", "Filter", "FilterHandler", "RoomEventFilter",
    "RoomFilter", "apply_event_fields", "parse_event_filter", "parse_filter",
    "parse_inline_room_event_filter", "parse_room_event_filter",
]
