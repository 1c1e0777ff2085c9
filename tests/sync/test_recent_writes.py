"""/sync's short range reads from this process's recent writes (``RecentWrites``) answer
exactly what the database does, and fall back whenever a position is not accounted for."""

from __future__ import annotations

from tests.storage_events.helpers import RoomBuilder, chain, new_room, open_store

from hs.handlers.sync.queries import (
    all_membership_changes,
    changed_rooms,
    no_member_deltas,
    recent_changed_rooms,
    recent_membership_changes,
    recent_timeline_ids,
    timeline_ids,
)
from hs.storage.database import DatabaseConfig
from hs.storage.events import EventToPersist, StateAfter
from hs.storage.events.recent import DEFAULT_SIZE, MAX_RANGE, RecentWrites, Written


def _w(room: str, eid: str) -> Written:
    return Written(room, eid, True, None, False)


def test_default_log_keeps_every_answerable_range() -> None:
    """The default bound keeps the newest ``MAX_RANGE`` positions with margin, and no more
    than a few times that (older entries could never answer a range)."""
    assert MAX_RANGE * 2 <= DEFAULT_SIZE <= MAX_RANGE * 8
    log = RecentWrites()
    top = 3 * DEFAULT_SIZE
    log.record((p, _w("!a", f"${p}")) for p in range(1, top + 1))
    assert len(log._log) == DEFAULT_SIZE
    assert log.span(top - MAX_RANGE, top) is not None
    assert log.span(top - DEFAULT_SIZE - 1, top - DEFAULT_SIZE + 10) is None


def test_span_needs_every_position() -> None:
    log = RecentWrites(size=4)
    log.record([(1, _w("!a", "$1")), (2, None), (4, _w("!a", "$4"))])
    assert log.span(0, 2) == [(1, _w("!a", "$1"))]
    assert log.span(1, 2) == []
    assert log.span(1, 4) is None  # position 3 belongs to someone else
    log.record([(3, _w("!b", "$3"))])
    assert [p for p, _ in log.span(0, 4) or []] == [1, 3, 4]
    log.record([(5, _w("!a", "$5"))])  # over the size: position 1 is dropped
    assert log.span(0, 5) is None
    assert [p for p, _ in log.span(1, 5) or []] == [3, 4, 5]
    log.record([(1, _w("!a", "$1"))])  # below what was dropped: ignored
    assert log.span(0, 5) is None


async def test_recent_reads_match_the_database(database_config: DatabaseConfig) -> None:
    async with open_store(database_config) as store:
        db, recent = store.db, store.recent
        rb = RoomBuilder()
        other = RoomBuilder("!other:test")
        await new_room(store, rb, "@bob:test")
        await new_room(store, other, "@bob:test")
        start = store.max_stream_ordering()
        for i in range(3):
            last = rb.last
            assert last is not None
            await store.persist_events(chain([rb.message(f"m{i}")], StateAfter(last)))
        # A join and a leave (membership rows and member state deltas).
        for pdu in (rb.member("@carol:test"), other.member("@bob:test", "leave")):
            builder = rb if pdu.room_id == rb.room_id else other
            prev = pdu.prev_event_ids()[0]
            await store.persist_events([EventToPersist(pdu, StateAfter(prev))])
            assert builder.last == pdu.event_id
        # A duplicate: its position is burned, nothing written there.
        dup = rb.events[rb.last or ""]
        [res] = await store.persist_events([EventToPersist(dup, StateAfter(
            dup.prev_event_ids()[0]))])
        assert res.deduplicated
        plain_top = store.max_stream_ordering()
        # An outlier: its batch is not recorded, so ranges over it go to the database.
        outlier = RoomBuilder("!far:test").create()
        await store.persist_events([EventToPersist(outlier, outlier=True)])
        last = rb.last
        assert last is not None
        await store.persist_events(chain([rb.message("after")], StateAfter(last)))
        top = store.max_stream_ordering()

        answered = 0
        for since in range(start, top):
            for upto in range(since + 1, top + 1):
                if recent.span(since, upto) is not None:
                    answered += 1
                else:
                    assert since < plain_top + 1 <= upto or since < start
                assert recent_changed_rooms(recent, since, upto) in (
                    None, await changed_rooms(db, since, upto))
                assert recent_membership_changes(recent, since, upto) in (
                    None, await all_membership_changes(db, since, upto))
                for room in (rb.room_id, other.room_id):
                    for limit in (1, 2, 10):
                        assert recent_timeline_ids(recent, room, since, upto, limit) in (
                            None, await timeline_ids(db, room, since, upto, limit))
                any_change = await db.fetchval(
                    "SELECT 1 FROM current_state_delta_stream WHERE type = ?"
                    " AND stream_ordering > ? AND stream_ordering <= ? LIMIT 1",
                    "m.room.member", since, upto)
                if no_member_deltas(recent, since, upto):
                    assert any_change is None
        assert answered > 10
        assert recent.span(start, plain_top) is not None
        assert recent.span(start, top) is None
