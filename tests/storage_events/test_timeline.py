"""Pagination (stream and topological), context, relations and redactions."""

from __future__ import annotations

import pytest
from tests.storage_events.helpers import RoomBuilder, chain, new_room, open_store

from hs.core.pdu import PDU
from hs.storage.database import DatabaseConfig
from hs.storage.events import (
    EventFilter,
    EventsStore,
    EventToPersist,
    InvalidTokenError,
    RoomToken,
    StateAfter,
)


async def _append(store: EventsStore, rb: RoomBuilder, pdus: list[PDU]) -> None:
    assert rb.last is not None
    first = pdus[0].prev_event_ids()[0]
    await store.persist_events(chain(pdus, StateAfter(first)))


def _ids(events: list[PDU]) -> list[str]:
    return [e.event_id for e in events]


async def test_tokens() -> None:
    assert str(RoomToken(3, 17)) == "t3-17" and str(RoomToken(None, 9)) == "s9"
    assert RoomToken.parse("t3-17") == RoomToken(3, 17)
    assert RoomToken.parse("s9") == RoomToken(None, 9)
    for bad in ("", "x1", "t3", "tA-1", "s", "t1-"):
        with pytest.raises(InvalidTokenError):
            RoomToken.parse(bad)


async def test_paginate_both_ways_with_filters(database_config: DatabaseConfig) -> None:
    async with open_store(database_config) as store:
        rb = RoomBuilder()
        setup = await new_room(store, rb, "@bob:test")
        msgs = [rb.message(str(i), sender="@bob:test" if i % 3 == 0 else "@alice:test")
                for i in range(25)]
        await _append(store, rb, msgs)
        everything = setup + msgs

        # Topological, backwards from the end, page by page.
        seen: list[str] = []
        token: str | None = None
        while True:
            page = await store.paginate_messages(rb.room_id, token, limit=7)
            seen += _ids(page.events)
            if page.end is None:
                break
            token = page.end
        assert seen == _ids(everything)[::-1]

        # Forwards from the beginning.
        seen, token = [], None
        while True:
            page = await store.paginate_messages(rb.room_id, token, direction="f", limit=6)
            seen += _ids(page.events)
            if page.end is None:
                break
            token = page.end
        assert seen == _ids(everything)

        # A backwards page's end, paged forwards, returns to where it started.
        back = await store.paginate_messages(rb.room_id, None, limit=5)
        assert back.end is not None
        fwd = await store.paginate_messages(rb.room_id, back.end, direction="f", limit=5)
        assert _ids(fwd.events) == _ids(back.events)[::-1]

        # A stream token (from sync) converts to the matching topological point.
        pos = (await store.get_event_meta([msgs[9].event_id]))[msgs[9].event_id].stream_ordering
        page = await store.paginate_messages(rb.room_id, f"s{pos}", limit=3)
        assert _ids(page.events) == _ids(msgs[7:10])[::-1]
        page = await store.paginate_messages(rb.room_id, f"s{pos}", direction="f", limit=2,
                                             to_token=None)
        assert _ids(page.events) == _ids(msgs[10:12])

        # to_token bounds the page.
        page = await store.paginate_messages(rb.room_id, None, limit=100,
                                             to_token=f"s{pos}")
        assert _ids(page.events) == _ids(msgs[10:])[::-1]

        # Filters.
        bob_only = EventFilter(senders=["@bob:test"], types=["m.room.message"])
        page = await store.paginate_messages(rb.room_id, None, limit=100, flt=bob_only)
        assert _ids(page.events) == _ids(msgs[::3])[::-1]
        no_msgs = EventFilter(not_types=["m.room.mess*"])
        page = await store.paginate_messages(rb.room_id, None, limit=100, flt=no_msgs)
        assert _ids(page.events) == _ids(setup)[::-1]
        page = await store.paginate_messages(rb.room_id, None, limit=100,
                                             flt=EventFilter(types=["m.room.*"],
                                                             not_senders=["@alice:test"]))
        assert all(e.sender == "@bob:test" for e in page.events) and page.events
        page = await store.paginate_messages(rb.room_id, None, limit=100,
                                             flt=EventFilter(types=[]))
        assert page.events == []

        # Stream order (sync): newest first backwards, then forwards from a position.
        events, next_pos = await store.paginate_stream(rb.room_id, store.max_stream_ordering(),
                                                       limit=4)
        assert _ids(events) == _ids(everything[-4:])[::-1]
        older, _ = await store.paginate_stream(rb.room_id, next_pos, limit=2)
        assert _ids(older) == _ids(everything[-6:-4])[::-1]
        newer, end = await store.paginate_stream(rb.room_id, next_pos, direction="f", limit=10)
        assert _ids(newer) == _ids(everything[-4:]) and end == store.max_stream_ordering()
        filtered, _ = await store.paginate_stream(rb.room_id, store.max_stream_ordering(),
                                                  limit=50, flt=EventFilter(
                                                      senders=["@bob:test"]))
        assert {e.sender for e in filtered} == {"@bob:test"}


async def test_topological_order_beats_arrival_order(database_config: DatabaseConfig) -> None:
    """An older branch arriving late sorts by depth, not by arrival."""
    async with open_store(database_config) as store:
        rb = RoomBuilder()
        setup = await new_room(store, rb)
        head = setup[-1].event_id
        late = rb.message("late", prev=[head])  # depth 3
        m1 = rb.message("m1", prev=[head])  # depth 3
        m2 = rb.message("m2", prev=[m1.event_id])  # depth 4
        await store.persist_events(chain([m1, m2], StateAfter(head)))
        await store.persist_events([EventToPersist(late, state_before=StateAfter(head))])
        page = await store.paginate_messages(rb.room_id, None, limit=3)
        assert _ids(page.events) == [m2.event_id, late.event_id, m1.event_id]
        events, _ = await store.paginate_stream(rb.room_id, store.max_stream_ordering(), limit=3)
        assert _ids(events) == [late.event_id, m2.event_id, m1.event_id]


async def test_event_context(database_config: DatabaseConfig) -> None:
    async with open_store(database_config) as store:
        rb = RoomBuilder()
        await new_room(store, rb)
        msgs = [rb.message(str(i)) for i in range(10)]
        await _append(store, rb, msgs)
        ctx = await store.get_event_context(msgs[5].event_id, before=2, after=3)
        assert ctx is not None
        assert ctx.event.event_id == msgs[5].event_id
        assert _ids(ctx.before) == [msgs[4].event_id, msgs[3].event_id]
        assert _ids(ctx.after) == _ids(msgs[6:9])
        more = await store.paginate_messages(rb.room_id, ctx.start, limit=2)
        assert _ids(more.events) == [msgs[2].event_id, msgs[1].event_id]
        more = await store.paginate_messages(rb.room_id, ctx.end, direction="f", limit=5)
        assert _ids(more.events) == [msgs[9].event_id]
        assert await store.get_event_context("$nope", 1, 1) is None


async def test_relations_edits_threads_reactions(database_config: DatabaseConfig) -> None:
    async with open_store(database_config) as store:
        rb = RoomBuilder()
        await new_room(store, rb, "@bob:test")
        root = rb.message("root")
        rel = {"rel_type": "m.thread", "event_id": root.event_id}
        replies = [rb.event("m.room.message", "@bob:test",
                            {"body": f"r{i}", "m.relates_to": rel}) for i in range(5)]
        edit1 = rb.event("m.room.message", "@alice:test", {
            "body": "* e1", "m.new_content": {"body": "e1"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": root.event_id}})
        edit2 = rb.event("m.room.message", "@alice:test", {
            "body": "* e2", "m.new_content": {"body": "e2"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": root.event_id}})
        foreign_edit = rb.event("m.room.message", "@bob:test", {
            "body": "* hack", "m.relates_to": {"rel_type": "m.replace",
                                               "event_id": root.event_id}})
        reactions = [rb.event("m.reaction", u, {"m.relates_to": {
            "rel_type": "m.annotation", "event_id": root.event_id, "key": k}})
            for u, k in (("@alice:test", "👍"), ("@bob:test", "👍"), ("@bob:test", "🎉"))]
        await _append(store, rb, [root, *replies, edit1, edit2, foreign_edit, *reactions])

        page = await store.get_relations(root.event_id, rel_type="m.thread", limit=2)
        got = _ids(page.events)
        while page.end is not None:
            page = await store.get_relations(root.event_id, rel_type="m.thread", limit=2,
                                             from_token=page.end)
            got += _ids(page.events)
        assert got == _ids(replies)[::-1]
        fwd = await store.get_relations(root.event_id, rel_type="m.thread", limit=10,
                                        direction="f")
        assert _ids(fwd.events) == _ids(replies) and fwd.end is None
        all_rel = await store.get_relations(root.event_id, limit=50)
        assert len(all_rel.events) == 5 + 3 + 3
        by_type = await store.get_relations(root.event_id, event_type="m.reaction", limit=50)
        assert _ids(by_type.events) == _ids(reactions)[::-1]

        edits = await store.get_latest_edits([root.event_id, replies[0].event_id])
        assert set(edits) == {root.event_id}
        assert edits[root.event_id].event_id == edit2.event_id

        summaries = await store.get_thread_summaries([root.event_id, edit1.event_id])
        assert set(summaries) == {root.event_id}
        assert summaries[root.event_id].count == 5
        assert summaries[root.event_id].latest_event_id == replies[-1].event_id

        assert await store.get_annotation_counts(root.event_id) == [
            ("m.reaction", "👍", 2), ("m.reaction", "🎉", 1),
        ]


async def test_redactions(database_config: DatabaseConfig) -> None:
    async with open_store(database_config) as store:
        rb = RoomBuilder()
        await new_room(store, rb)
        target = rb.message("secret")
        await _append(store, rb, [target])
        assert (await store.get_event_meta([target.event_id]))[target.event_id].redacted_by is None
        red = rb.redaction(target.event_id)
        await _append(store, rb, [red])
        # Visible through the (invalidated) cache and in the database.
        meta = await store.get_event_meta([target.event_id])
        assert meta[target.event_id].redacted_by == red.event_id
        assert await store.get_redactions_of(target.event_id) == [red.event_id]
        assert await store.db.fetchval(
            "SELECT redacted FROM events WHERE event_id = ?", target.event_id
        )

        # A redaction that arrives before its target (federation): applied on arrival.
        head = red.event_id
        early_target = rb.message("later", prev=[head])
        early_red = rb.redaction(early_target.event_id, prev=[head])
        await store.persist_events([EventToPersist(early_red, state_before=StateAfter(head))])
        assert await store.get_redactions_of(early_target.event_id) == [early_red.event_id]
        await store.persist_events(
            [EventToPersist(early_target, state_before=StateAfter(head))]
        )
        meta = await store.get_event_meta([early_target.event_id])
        assert meta[early_target.event_id].redacted_by == early_red.event_id

        # Rejected redactions are not recorded.
        victim = rb.message("keep", prev=[head])
        bad = rb.redaction(victim.event_id, prev=[head], rejected="power")
        await store.persist_events([
            EventToPersist(victim, state_before=StateAfter(head)),
            EventToPersist(bad, state_before=StateAfter(head)),
        ])
        assert await store.get_redactions_of(victim.event_id) == []
        meta = await store.get_event_meta([victim.event_id])
        assert meta[victim.event_id].redacted_by is None


async def test_redaction_in_content_from_v11(database_config: DatabaseConfig) -> None:
    async with open_store(database_config) as store:
        rb = RoomBuilder("!v11:test", version="11")
        await new_room(store, rb)
        target = rb.message("secret")
        red = rb.redaction(target.event_id)
        assert "redacts" in red.data["content"] and "redacts" not in red.data
        await _append(store, rb, [target, red])
        meta = await store.get_event_meta([target.event_id])
        assert meta[target.event_id].redacted_by == red.event_id


async def test_cross_room_redactions_and_relations_do_not_count(
    database_config: DatabaseConfig,
) -> None:
    async with open_store(database_config) as store:
        a, b = RoomBuilder("!a:test"), RoomBuilder("!b:test")
        await new_room(store, a)
        await new_room(store, b)
        target = a.message("mine")
        await _append(store, a, [target])
        evil_red = b.redaction(target.event_id)
        evil_rel = b.event("m.reaction", content={"m.relates_to": {
            "rel_type": "m.annotation", "event_id": target.event_id, "key": "x"}})
        evil_thread = b.event("m.room.message", content={"body": "t", "m.relates_to": {
            "rel_type": "m.thread", "event_id": target.event_id}})
        await _append(store, b, [evil_red, evil_rel, evil_thread])
        meta = await store.get_event_meta([target.event_id])
        assert meta[target.event_id].redacted_by is None
        assert await store.get_redactions_of(target.event_id) == []
        assert (await store.get_relations(target.event_id, limit=10)).events == []
        assert await store.get_annotation_counts(target.event_id) == []
        assert await store.get_thread_summaries([target.event_id]) == {}


async def test_backfilled_history(database_config: DatabaseConfig) -> None:
    """History fetched later sorts into /messages by depth, stays out of sync (negative
    positions) and does not touch the current state."""
    async with open_store(database_config) as store:
        rb = RoomBuilder()
        create, join = rb.create(), rb.member("@alice:test")
        h1 = rb.message("h1")
        h2 = rb.event("m.room.topic", content={"topic": "old"}, state_key="")
        h3 = rb.message("h3")
        live = rb.message("live")
        await store.persist_events(chain([create, join]))
        await store.persist_events([EventToPersist(live, state_before=StateAfter(join.event_id))])
        assert await store.get_forward_extremities(rb.room_id) == {join.event_id, live.event_id}
        sync_pos = store.max_stream_ordering()
        res = await store.persist_events([
            EventToPersist(e.pdu, state_before=e.state_before, backfilled=True)
            for e in chain([h1, h2, h3], StateAfter(join.event_id))
        ])
        assert all(r.stream_ordering < 0 for r in res)
        assert store.max_stream_ordering() == sync_pos
        assert await store.get_forward_extremities(rb.room_id) == {live.event_id}
        assert ("m.room.topic", "") not in await store.get_current_state_ids(rb.room_id)
        state = await store.get_state_ids_at(h3.event_id)
        assert state is not None and state[("m.room.topic", "")] == h2.event_id

        events, _ = await store.paginate_stream(rb.room_id, sync_pos, limit=10)
        assert _ids(events) == [live.event_id, join.event_id, create.event_id]
        page = await store.paginate_messages(rb.room_id, None, limit=10)
        assert _ids(page.events) == _ids([live, h3, h2, h1, join, create])


async def test_redacted_relations_stop_counting(database_config: DatabaseConfig) -> None:
    async with open_store(database_config) as store:
        rb = RoomBuilder()
        await new_room(store, rb)
        root = rb.message("root")
        like = rb.event("m.reaction", content={"m.relates_to": {
            "rel_type": "m.annotation", "event_id": root.event_id, "key": "👍"}})
        await _append(store, rb, [root, like])
        assert await store.get_annotation_counts(root.event_id) == [("m.reaction", "👍", 1)]
        await _append(store, rb, [rb.redaction(like.event_id)])
        assert await store.get_annotation_counts(root.event_id) == []
        assert (await store.get_relations(root.event_id)).events == []
