"""What every read endpoint shares: the stores, the serializer, access and visibility."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hs.core.pdu import PDU
from hs.handlers.auth import Requester
from hs.handlers.client_events import ClientEventSerializer, Viewer
from hs.handlers.timeline.access import RoomAccess, check_room_access, filter_visible
from hs.http.errors import invalid_param
from hs.storage.account_data import AccountDataStore
from hs.storage.events import EventsStore, InvalidTokenError, RoomToken
from hs.storage.filters import ClientReadStore

IGNORED_USERS = "m.ignored_user_list"
#: Token parts and timestamps must fit the BIGINT columns they are compared with.
INT64 = 2**63
#: Largest page any read endpoint returns (Synapse's pagination cap).
MAX_LIMIT = 1000


def viewer_of(requester: Requester) -> Viewer:
    return Viewer(requester.user_id, requester.device_id)


def parse_token(text: str, name: str = "from") -> RoomToken:
    """A room token; a composite sync token contributes its first (room) part."""
    for candidate in (text, text.split("_", 1)[0]):
        try:
            token = RoomToken.parse(candidate)
        except InvalidTokenError:
            continue
        if all(-INT64 <= v < INT64 for v in (token.depth or 0, token.stream)):
            return token
    raise invalid_param(f"Invalid '{name}' token: {text!r}")


def parse_limit(value: str | None, default: int, maximum: int = MAX_LIMIT) -> int:
    if value is None or value == "":
        return default
    try:
        limit = int(value)
    except ValueError:
        raise invalid_param("limit must be an integer") from None
    if limit < 0:
        raise invalid_param("limit must not be negative")
    return min(limit, maximum)


class TimelineBase:
    def __init__(self, events: EventsStore, reads: ClientReadStore,
                 clock: Callable[[], int], account_data: AccountDataStore | None = None
                 ) -> None:
        self.events = events
        self.reads = reads
        self.account_data = account_data
        self.serializer = ClientEventSerializer(events, reads, clock)

    async def access(self, room_id: str, user_id: str, *, allow_left: bool = True
                     ) -> RoomAccess:
        return await check_room_access(self.events, self.reads, room_id, user_id,
                                       allow_left=allow_left)

    async def visible(self, events: Sequence[PDU], user_id: str) -> list[PDU]:
        """History visibility, and no messages from users the user ignores
        (``m.ignored_user_list``; their state events stay, as in Synapse)."""
        ignored = await self.ignored_users(user_id) if events else set()
        if ignored:
            events = [e for e in events if e.is_state() or e.sender not in ignored]
        return await filter_visible(self.events, self.serializer.entries, events, user_id)

    async def ignored_users(self, user_id: str) -> set[str]:
        if self.account_data is None:
            return set()
        data = await self.account_data.get_global_account_data(user_id, IGNORED_USERS)
        users = data.get("ignored_users") if isinstance(data, dict) else None
        return set(users) if isinstance(users, dict) else set()

    async def serialize(self, events: Sequence[PDU], requester: Requester, *,
                        bundle: bool = True) -> list[dict[str, Any]]:
        """Timeline events: everything the client format offers."""
        return await self.serializer.serialize(events, viewer_of(requester), bundle=bundle)

    async def serialize_state(self, events: Sequence[PDU], requester: Requester
                              ) -> list[dict[str, Any]]:
        """A state list: no aggregations and no per-event state facts (see
        ``ClientEventSerializer.serialize``)."""
        return await self.serializer.serialize(events, viewer_of(requester), bundle=False,
                                               state_facts=False)

    async def token_at(self, event_id: str) -> RoomToken | None:
        """The topological point just after ``event_id``."""
        meta = (await self.events.get_event_meta([event_id])).get(event_id)
        return None if meta is None else RoomToken(meta.depth, meta.stream_ordering)

    async def visible_event(self, room_id: str, event_id: str, user_id: str) -> PDU | None:
        """The timeline event ``event_id`` of ``room_id`` if the user may see it."""
        found = await self.events.get_events_with_meta([event_id])
        if event_id not in found:
            return None
        pdu, meta = found[event_id]
        if (meta.room_id != room_id or meta.outlier or meta.soft_failed
                or meta.rejected_reason is not None):
            return None
        return pdu if await self.visible([pdu], user_id) else None
