"""Batch persistence: round trip, atomicity, idempotency, outliers, concurrency."""

from __future__ import annotations

import asyncio

import pytest
from tests.storage_events.helpers import RoomBuilder, chain, new_room, open_store

from hs.storage.database import DatabaseConfig
from hs.storage.events import EventToPersist, MissingStateError, StateAfter, TxnKey
from hs.storage.events import persist as persist_mod
from hs.storage.state import UnknownStateGroupError

_TABLES = (
    "events", "event_edges", "event_auth", "event_forward_extremities", "event_txn_ids",
    "redactions", "event_relations", "state_groups", "state_group_entries",
    "event_to_state_group", "rooms", "current_state", "current_state_delta_stream",
    "room_memberships",
)


async def _counts(store) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return {t: int(await store.db.fetchval(f"SELECT count(*) FROM {t}")) for t in _TABLES}


async def test_round_trip_with_metadata(database_config: DatabaseConfig) -> None:
    async with open_store(database_config) as store:
        rb = RoomBuilder()
        pdus = await new_room(store, rb, "@bob:test")
        store._cache.clear()  # read from the database, not the write-through cache
        got = await store.get_events_with_meta([p.event_id for p in pdus] + ["$unknown"])
        assert set(got) == {p.event_id for p in pdus}
        positions = [got[p.event_id][1].stream_ordering for p in pdus]
        assert positions == sorted(positions) and len(set(positions)) == len(positions)
        for p in pdus:
            pdu, meta = got[p.event_id]
            assert pdu.data == p.data and pdu.room_version is rb.version
            assert not meta.outlier and meta.rejected_reason is None and meta.redacted_by is None
        assert await store.get_room_version(rb.room_id) == "10"
        room = await store.rooms.get_room(rb.room_id)
        assert room is not None and room.creator == "@alice:test"
        assert store.max_stream_ordering() == max(positions)
        assert await store.get_room_max_stream_ordering(rb.room_id) == max(positions)
        assert await store.get_event("$nope") is None


async def test_failing_batch_leaves_nothing(
    database_config: DatabaseConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_store(database_config) as store:
        rb = RoomBuilder()
        pdus = [rb.create(), rb.member("@alice:test"), rb.message("hi")]
        batch = chain(pdus)
        batch[2].txn = TxnKey("@alice:test", "DEV", "t1")
        empty = await _counts(store)

        async def boom(self: object, rooms: list[str]) -> None:
            raise RuntimeError("disk on fire")

        # Fail at the very last step, after every other table was written.
        monkeypatch.setattr(persist_mod._BatchWriter, "_update_current_state", boom)
        with pytest.raises(RuntimeError):
            await store.persist_events(batch)
        assert await _counts(store) == empty
        assert await store.get_events([p.event_id for p in pdus]) == {}
        monkeypatch.undo()

        # A bad state reference fails the whole batch up front.
        bad = chain(pdus)
        bad[1] = EventToPersist(pdus[1], state_before=12345)
        with pytest.raises(UnknownStateGroupError):
            await store.persist_events(bad)
        bad[1] = EventToPersist(pdus[1], state_before=StateAfter("$missing"))
        with pytest.raises(MissingStateError):
            await store.persist_events(bad)
        with pytest.raises(MissingStateError):
            await store.persist_events([EventToPersist(pdus[0])])
        assert await _counts(store) == empty

        # The same batch then goes through, at positions after the burnt ones.
        results = await store.persist_events(batch)
        assert [r.event_id for r in results] == [p.event_id for p in pdus]
        assert all(not r.deduplicated for r in results)
        assert await store.event_id_for_txn("@alice:test", "DEV", rb.room_id, "t1") == (
            pdus[2].event_id
        )


async def test_duplicate_in_batch_is_an_error(database_config: DatabaseConfig) -> None:
    async with open_store(database_config) as store:
        rb = RoomBuilder()
        create = rb.create()
        with pytest.raises(ValueError):
            await store.persist_events(chain([create, create]))


async def test_txn_ids_are_idempotent(database_config: DatabaseConfig) -> None:
    async with open_store(database_config) as store:
        rb = RoomBuilder()
        await new_room(store, rb)
        key = TxnKey("@alice:test", "DEV", "txn1")
        first = rb.message("once")
        [r1] = await store.persist_events(
            [EventToPersist(first, state_before=StateAfter(first.prev_event_ids()[0]), txn=key)]
        )
        # A retried send built a new event (new timestamp) with the same txn ID.
        retry = rb.message("once", prev=first.prev_event_ids())
        [r2] = await store.persist_events(
            [EventToPersist(retry, state_before=StateAfter(first.prev_event_ids()[0]), txn=key)]
        )
        assert r2.deduplicated and r2.event_id == first.event_id
        assert r2.stream_ordering == r1.stream_ordering
        assert await store.get_event(retry.event_id) is None
        assert await store.event_id_for_txn("@alice:test", "DEV", rb.room_id, "txn1") == (
            first.event_id
        )
        # Other device, other room: distinct transactions.
        assert await store.event_id_for_txn("@alice:test", "OTHER", rb.room_id, "txn1") is None
        assert await store.event_id_for_txn("@alice:test", "DEV", "!other:test", "txn1") is None
        # Two events with one txn ID inside a batch: the second is the duplicate.
        a = rb.message("a")
        b = rb.message("b")
        res = await store.persist_events([
            EventToPersist(a, state_before=StateAfter(first.event_id),
                           txn=TxnKey("@alice:test", "DEV", "t2")),
            EventToPersist(b, state_before=StateAfter(a.event_id),
                           txn=TxnKey("@alice:test", "DEV", "t2")),
        ])
        assert not res[0].deduplicated and res[1].deduplicated and res[1].event_id == a.event_id
        # Re-persisting a stored event is a no-op reporting the stored position.
        [again] = await store.persist_events(
            [EventToPersist(first, state_before=StateAfter(first.prev_event_ids()[0]))]
        )
        assert again.deduplicated and again.stream_ordering == r1.stream_ordering
        assert again.state_group == r1.state_group


async def test_outlier_then_promoted(database_config: DatabaseConfig) -> None:
    async with open_store(database_config) as store:
        rb = RoomBuilder()
        pdus = await new_room(store, rb)
        msg = rb.message("late")
        [r1] = await store.persist_events([EventToPersist(msg, outlier=True)])
        assert r1.state_group is None
        assert await store.get_forward_extremities(rb.room_id) == {pdus[-1].event_id}
        page = await store.paginate_messages(rb.room_id, None, limit=10)
        assert msg.event_id not in [e.event_id for e in page.events]
        assert await store.get_state_ids_at(msg.event_id) is None
        # Persisting it again as an outlier changes nothing; as part of the DAG promotes it.
        [dup] = await store.persist_events([EventToPersist(msg, outlier=True)])
        assert dup.deduplicated
        [r2] = await store.persist_events(
            [EventToPersist(msg, state_before=StateAfter(pdus[-1].event_id))]
        )
        assert not r2.deduplicated and r2.stream_ordering > r1.stream_ordering
        assert await store.get_forward_extremities(rb.room_id) == {msg.event_id}
        meta = (await store.get_event_meta([msg.event_id]))[msg.event_id]
        assert not meta.outlier and meta.stream_ordering == r2.stream_ordering
        page = await store.paginate_messages(rb.room_id, None, limit=1)
        assert [e.event_id for e in page.events] == [msg.event_id]
        assert await store.get_state_ids_at(msg.event_id) == await store.get_current_state_ids(
            rb.room_id
        )


async def test_rejected_and_soft_failed(database_config: DatabaseConfig) -> None:
    async with open_store(database_config) as store:
        rb = RoomBuilder()
        pdus = await new_room(store, rb)
        head = pdus[-1].event_id
        rejected = rb.event("m.room.topic", content={"topic": "x"}, state_key="",
                            prev=[head], rejected="auth")
        soft = rb.event("m.room.name", content={"name": "n"}, state_key="", prev=[head])
        res = await store.persist_events([
            EventToPersist(rejected, state_before=StateAfter(head)),
            EventToPersist(soft, state_before=StateAfter(head), soft_failed=True),
        ])
        assert await store.get_forward_extremities(rb.room_id) == {head}
        current = await store.get_current_state_ids(rb.room_id)
        assert ("m.room.topic", "") not in current and ("m.room.name", "") not in current
        got = await store.get_events([rejected.event_id])
        assert got[rejected.event_id].rejected_reason == "auth"
        # A rejected state event does not change the state; a soft-failed one does (for
        # events that build on it), just not the room's current state.
        state_head = await store.get_state_group_for_event(head)
        assert res[0].state_group == state_head
        after_soft = await store.get_state_ids_at(soft.event_id)
        assert after_soft is not None and after_soft[("m.room.name", "")] == soft.event_id
        page = await store.paginate_messages(rb.room_id, None, limit=50)
        ids = {e.event_id for e in page.events}
        assert rejected.event_id not in ids and soft.event_id not in ids
        assert await store.is_referenced([head]) == set()


async def test_concurrent_batches_into_different_rooms(database_config: DatabaseConfig) -> None:
    async with open_store(database_config) as store:
        rooms = [RoomBuilder(f"!r{i}:test") for i in range(8)]

        async def fill(rb: RoomBuilder) -> list[str]:
            pdus = await new_room(store, rb)
            ids = [p.event_id for p in pdus]
            for n in range(5):
                batch = [rb.message(f"{n}-{k}") for k in range(4)]
                await store.persist_events(chain(batch, StateAfter(ids[-1])))
                ids += [p.event_id for p in batch]
            return ids

        results = await asyncio.gather(*(fill(rb) for rb in rooms))
        all_ids = [e for ids in results for e in ids]
        meta = await store.get_event_meta(all_ids)
        assert len(meta) == len(all_ids) == 8 * 22
        assert len({m.stream_ordering for m in meta.values()}) == len(all_ids)
        assert store.max_stream_ordering() >= max(m.stream_ordering for m in meta.values())
        for rb, ids in zip(rooms, results, strict=True):
            assert await store.get_forward_extremities(rb.room_id) == {ids[-1]}
            page = await store.paginate_messages(rb.room_id, None, limit=100)
            assert [e.event_id for e in page.events] == ids[::-1]


async def test_concurrent_sends_into_one_room(database_config: DatabaseConfig) -> None:
    """Writers racing on one room serialize on its lock: no extremity update is lost."""
    async with open_store(database_config) as store:
        rb = RoomBuilder()
        pdus = await new_room(store, rb)
        head = pdus[-1].event_id
        forks = [rb.message(f"fork {i}", prev=[head]) for i in range(12)]
        results = await asyncio.gather(*(
            store.persist_events([EventToPersist(p, state_before=StateAfter(head),
                                                 txn=TxnKey("@alice:test", "D", f"t{i}"))])
            for i, p in enumerate(forks)
        ))
        assert all(not r[0].deduplicated for r in results)
        assert await store.get_forward_extremities(rb.room_id) == {p.event_id for p in forks}
        merge = rb.message("merge", prev=[p.event_id for p in forks])
        await store.persist_events([EventToPersist(merge, state_before=StateAfter(head))])
        assert await store.get_forward_extremities(rb.room_id) == {merge.event_id}


async def test_txn_id_cleanup(database_config: DatabaseConfig) -> None:
    async with open_store(database_config) as store:
        rb = RoomBuilder()
        pdus = await new_room(store, rb)
        a, b = rb.message("a"), rb.message("b")
        await store.persist_events([
            EventToPersist(a, state_before=StateAfter(pdus[-1].event_id),
                           txn=TxnKey("@alice:test", "D1", "x"), received_ts=1_000),
            EventToPersist(b, state_before=StateAfter(a.event_id),
                           txn=TxnKey("@alice:test", "D2", "x")),
        ])
        assert await store.delete_txn_ids_for_device("@alice:test", "D2") == 1
        assert await store.event_id_for_txn("@alice:test", "D2", rb.room_id, "x") is None
        assert await store.event_id_for_txn("@alice:test", "D1", rb.room_id, "x") == a.event_id
        # inserted_ts is the persist time, not the event's received_ts.
        assert await store.prune_txn_ids(0) == 0
        assert await store.prune_txn_ids(2**62) == 1
        assert await store.event_id_for_txn("@alice:test", "D1", rb.room_id, "x") is None


async def test_txn_duplicate_within_batch_reports_group(database_config: DatabaseConfig) -> None:
    async with open_store(database_config) as store:
        rb = RoomBuilder()
        pdus = await new_room(store, rb)
        a, b = rb.message("a"), rb.message("b")
        key = TxnKey("@alice:test", "D", "same")
        res = await store.persist_events([
            EventToPersist(a, state_before=StateAfter(pdus[-1].event_id), txn=key),
            EventToPersist(b, state_before=StateAfter(a.event_id), txn=key),
        ])
        assert res[1] == type(res[0])(a.event_id, res[0].stream_ordering, res[0].state_group,
                                      deduplicated=True)
        assert res[0].state_group is not None
