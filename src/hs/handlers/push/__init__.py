"""Push: rules (``rules``), bulk push-action evaluation after persistence (``actions``),
unread counts and /notifications (``counts``) and pushers (``pushers``).

``PushHandler`` (``services.push``) is the entry point; the read API /sync uses:

* ``rules_for_sync(user_id, since_pos)`` - the ``m.push_rules`` account data content when
  the user's rules changed after ``since_pos`` (a ``push_rules`` stream position; always
  on an initial sync, ``since_pos`` None), else None. Changes notify the user on the
  ``push_rules`` stream.
* ``unread_counts(user_id, room_ids)`` - per room totals, ``main`` and per-thread counts
  (see ``UnreadCounts.unread_counts``); one query for all rooms.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

from hs.handlers.push.actions import PushActionsHandler
from hs.handlers.push.counts import Serialize, UnreadCounts
from hs.handlers.push.pushers import PushersHandler
from hs.handlers.push.rules import PushRulesHandler, Rule
from hs.notifier import Notifier
from hs.storage.database import Database
from hs.storage.events import EventsStore
from hs.storage.events.types import EventToPersist, PersistedEvent
from hs.storage.push import PushActionsStore, PushersStore, PushRulesStore
from hs.storage.streams import StreamIdGenerator


class PushHandler:
    def __init__(self, server_name: str, db: Database, stream: StreamIdGenerator,
                 notifier: Notifier, events: EventsStore, clock: Callable[[], int],
                 serialize: Serialize) -> None:
        self.rules = PushRulesHandler(PushRulesStore(db, stream), notifier)
        store = PushActionsStore(db)
        self.actions = PushActionsHandler(server_name, events, self.rules, store, clock)
        self.counts = UnreadCounts(store, events, serialize)
        self.pushers = PushersHandler(PushersStore(db), clock)

    async def rules_for_sync(self, user_id: str, since_pos: int | None
                             ) -> dict[str, dict[str, list[Rule]]] | None:
        return await self.rules.rules_for_sync(user_id, since_pos)

    async def unread_counts(self, user_id: str, room_ids: Collection[str]
                            ) -> dict[str, dict[str, Any]]:
        return await self.counts.unread_counts(user_id, room_ids)

    async def on_persisted(self, room_id: str, batch: Sequence[EventToPersist],
                           results: Sequence[PersistedEvent]) -> None:
        await self.actions.on_persisted(room_id, batch, results)


__all__ = ["PushHandler"]
