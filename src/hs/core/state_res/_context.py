"""What v1 and v2 share: an event cache over the store and auth checks against a state map."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import partial
from types import ModuleType

from hs._native import auth_rules as _default_auth
from hs._native import power_levels as _default_levels
from hs.core.auth import AuthError, auth_types_for_event, check_auth_rules
from hs.core.pdu import PDU, StateKey
from hs.core.room_versions import RoomVersion
from hs.core.state_res.store import StateResolutionStore

CREATE: StateKey = ("m.room.create", "")
POWER_LEVELS: StateKey = ("m.room.power_levels", "")
JOIN_RULES: StateKey = ("m.room.join_rules", "")
MEMBER = "m.room.member"

#: What a malformed event may raise from inside the auth rules. Treated as "not allowed":
#: resolution must not fail because one event in a fork is junk.
_NOT_ALLOWED: tuple[type[BaseException], ...] = (KeyError, TypeError, ValueError)


class ResolutionContext:
    """One resolution's view of the room: loaded events and the pieces of the auth rules.

    Events are fetched from the store in batches and kept for the rest of the run, so each
    event is asked for at most once.
    """

    __slots__ = (
        "_create_id",
        "allowed",
        "auth",
        "cited",
        "events",
        "levels",
        "room_id",
        "room_version",
        "sorts",
        "store",
    )

    def __init__(
        self,
        room_id: str,
        room_version: RoomVersion,
        store: StateResolutionStore,
        sorts: ModuleType,
    ) -> None:
        self.room_id = room_id
        self.room_version = room_version
        self.store = store
        self.sorts = sorts
        # The power-levels twin paired with the sorts twin (both native or both pure).
        self.levels: ModuleType = getattr(sorts, "power_levels", None) or _default_levels
        # Likewise the auth-rules verdict twin (compiled common cases, or the full rules).
        self.auth: ModuleType = getattr(sorts, "auth_rules", None) or _default_auth
        #: ``is_allowed`` as one callable straight into the auth twin (no Python frame
        #: per event on the compiled path).
        self.allowed: Callable[[PDU, Mapping[StateKey, PDU]], bool] = partial(
            self.auth.is_allowed, fallback=self.rules_verdict
        )
        self.events: dict[str, PDU] = {}
        #: event ID -> its cited state (``cited_state``), once all its auth events are loaded.
        self.cited: dict[str, Mapping[StateKey, PDU]] = {}
        # v12 events do not cite the create event: its ID is the room ID's hash part
        # (rooms/v12.md "Event format"), and the auth rules need it in the map.
        self._create_id: str | None = None
        if room_version.room_id_from_create_event and room_id.startswith("!"):
            self._create_id = "$" + room_id[1:]

    async def load(self, event_ids: Iterable[str]) -> None:
        """Fetch the given events that are not cached yet (one store call)."""
        events = self.events
        missing = {e for e in event_ids if e not in events}
        if missing:
            events.update(await self.store.get_events(missing))

    async def load_auth_chains(self, event_ids: Iterable[str], graph: object) -> None:
        """Fetch ``event_ids`` and their whole auth chains, recording edges in ``graph``
        (an ``AuthGraph``). One store call per level of the walk."""
        add_loaded = graph.add_loaded  # type: ignore[attr-defined]
        frontier = set(event_ids)
        done: set[str] = set()
        while frontier:
            await self.load(frontier)
            done |= frontier
            frontier = add_loaded(frontier, self.events) - done

    async def load_create(self) -> None:
        if self._create_id is not None:
            await self.load((self._create_id,))

    def create_event(self) -> PDU | None:
        """The v12 create event (derived from the room ID); None for earlier versions."""
        return None if self._create_id is None else self.events.get(self._create_id)

    def required_keys(self, event: PDU) -> list[StateKey]:
        return auth_types_for_event(
            event.type, event.sender, event.state_key, event.content, self.room_version
        )

    def required_keys_of(self, events: list[PDU]) -> list[list[StateKey]]:
        """``required_keys`` of each event (the auth twin answers the common shapes)."""
        keys: list[list[StateKey]] = self.auth.auth_keys(events, self.required_keys)
        return keys

    def cited_state(self, event: PDU) -> Mapping[StateKey, PDU]:
        """The event's own auth events by key (loaded ones only), plus the v12 create.

        Cached per event once all its auth events are loaded; do not mutate the result.
        """
        cited: Mapping[StateKey, PDU] = self.sorts.cited_state(
            event, self.events, self.create_event(), self.cited
        )
        return cited

    def is_allowed(self, event: PDU, auth_events: Mapping[StateKey, PDU]) -> bool:
        """The auth rules' verdict on ``event`` given exactly ``auth_events`` (the auth
        twin decides the common shapes in C and asks ``rules_verdict`` for the rest)."""
        allowed: bool = self.auth.is_allowed(event, auth_events, self.rules_verdict)
        return allowed

    def rules_verdict(self, event: PDU, auth_events: Mapping[StateKey, PDU]) -> bool:
        """``hs.core.auth``'s verdict; a malformed event is not allowed."""
        try:
            check_auth_rules(
                event, auth_events, check_auth_event_selection=False, levels=self.levels
            )
        except AuthError:
            return False
        except _NOT_ALLOWED:
            return False
        return True
