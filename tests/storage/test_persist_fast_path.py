"""The PostgreSQL fast path of the event persister (``hs_persist_events_fast``) writes
exactly what the general path writes: the same batches persisted both ways into two empty
databases leave identical tables, results, errors and ``recent`` entries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from tests.storage_events.helpers import RoomBuilder, chain, open_store

from hs.storage.database import DatabaseConfig
from hs.storage.events import EventToPersist, StateAfter, TxnKey
from hs.storage.events import persist as persist_mod
from hs.storage.events.persist import StaleExtremitiesError
from hs.storage.streams import StreamIdGenerator

_NOW = 1_750_000_000_000


def _steps() -> list[tuple[list[EventToPersist], dict[str, Any]]]:
    """Batches (with persist_events keyword arguments), mostly fast-path material."""
    rb = RoomBuilder("!one:test")
    steps: list[tuple[list[EventToPersist], dict[str, Any]]] = []
    setup = [rb.create(), rb.member("@alice:test"), rb.member("@bob:test")]
    steps.append((chain(setup), {}))
    tip = setup[-1].event_id

    def after(pdu_id: str) -> StateAfter:
        return StateAfter(pdu_id)

    key = TxnKey("@alice:test", "DEV", "t1")
    m1 = rb.message("one")
    steps.append(([EventToPersist(m1, after(tip), txn=key)],
                  {"expected_extremities": {rb.room_id: [tip]}}))
    # A chain of three, with a reaction (aggregation key) and a reply, txn IDs on two.
    m2 = rb.message("two", sender="@bob:test")
    react = rb.event("m.reaction", content={"m.relates_to": {
        "rel_type": "m.annotation", "event_id": m1.event_id, "key": "+1"}})
    thread = rb.message("in thread", extra={})
    thread_data = rb.event("m.room.message", content={
        "msgtype": "m.text", "body": "reply",
        "m.relates_to": {"rel_type": "m.thread", "event_id": m1.event_id}})
    steps.append(([
        EventToPersist(m2, after(m1.event_id), txn=TxnKey("@bob:test", "B", "t1")),
        EventToPersist(react, after(m2.event_id), txn=TxnKey("@alice:test", "DEV", "t2")),
        EventToPersist(thread, after(react.event_id)),
        EventToPersist(thread_data, after(thread.event_id), received_ts=123),
    ], {}))
    # The same txn ID again (new event): deduplicated; the same event again: deduplicated.
    retry = rb.message("one", prev=[tip])
    steps.append(([EventToPersist(retry, after(tip), txn=key)], {}))
    steps.append(([EventToPersist(m2, after(m1.event_id))], {}))
    # Stale expectation: nothing written.
    m3 = rb.message("three", prev=[thread_data.event_id])
    steps.append(([EventToPersist(m3, after(thread_data.event_id))],
                  {"expected_extremities": {rb.room_id: [m1.event_id]}}))
    # Redacting a stored event, with a relation removed by it (the reaction).
    red = rb.redaction(react.event_id)
    steps.append(([EventToPersist(red, after(thread_data.event_id))], {}))
    # A redaction arriving before its target; then the target (marked at once).
    early_target = rb.message("soon gone", prev=[red.event_id])
    rb.last = red.event_id
    red2 = rb.redaction(early_target.event_id)
    steps.append(([EventToPersist(red2, after(red.event_id))], {}))
    steps.append(([EventToPersist(early_target, after(red.event_id))], {}))
    # A fork, then an event merging it (two prev events).
    fork_a = rb.message("fork a", prev=[red2.event_id])
    fork_b = rb.message("fork b", prev=[red2.event_id])
    steps.append(([EventToPersist(fork_a, after(red2.event_id))], {}))
    steps.append(([EventToPersist(fork_b, after(red2.event_id))], {}))
    merge = rb.message("merge", prev=[fork_a.event_id, fork_b.event_id, early_target.event_id])
    steps.append(([EventToPersist(merge, after(fork_a.event_id))], {}))
    # An event stored before its prev event: the prev, persisted later, is no extremity.
    late = rb.message("late", prev=[merge.event_id])
    child = rb.message("child", prev=[late.event_id])
    steps.append(([EventToPersist(child, after(merge.event_id))], {}))
    steps.append(([EventToPersist(late, after(merge.event_id))], {}))
    # State before unknown: MissingStateError on both paths.
    lost = rb.message("lost", prev=[child.event_id])
    steps.append(([EventToPersist(lost, after("$nowhere"))], {}))
    # Two rooms in one batch, with a state event in a later batch (general path).
    rb2 = RoomBuilder("!two:test")
    setup2 = [rb2.create(), rb2.member("@alice:test")]
    steps.append((chain(setup2), {}))
    x1 = rb.message("x1", prev=[child.event_id])
    y1 = rb2.message("y1")
    y2 = rb2.message("y2")
    steps.append(([
        EventToPersist(y1, after(setup2[-1].event_id), txn=TxnKey("@alice:test", "D", "y")),
        EventToPersist(x1, after(child.event_id), txn=TxnKey("@alice:test", "D", "y")),
        EventToPersist(y2, after(y1.event_id)),
    ], {"expected_extremities": {rb2.room_id: [setup2[-1].event_id]}}))
    topic = rb2.event("m.room.topic", content={"topic": "t"}, state_key="")
    y3 = rb2.message("y3")
    steps.append(([EventToPersist(topic, after(y2.event_id)),
                   EventToPersist(y3, after(topic.event_id))], {}))
    y4 = rb2.message("y4")
    steps.append(([EventToPersist(y4, after(y3.event_id))], {}))
    return steps


async def _run(config: DatabaseConfig, fast: bool,
               steps: list[tuple[list[EventToPersist], dict[str, Any]]]
               ) -> tuple[list[Any], dict[str, list[tuple[Any, ...]]], int]:
    outcomes: list[Any] = []
    async with open_store(config) as store:
        persister = store._persister
        persister.fast_path = fast
        recorded: list[Any] = []
        assert persister.recent is not None
        original = persister.recent.record
        used = 0
        real_fast = persist_mod._BatchWriter.run_fast

        def record(entries: Any) -> None:
            recorded.append(list(entries))
            original(entries)

        async def counting(self: Any) -> Any:
            nonlocal used
            out = await real_fast(self)
            used += out is not None
            return out

        persister.recent.record = record  # type: ignore[method-assign]
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(persist_mod._BatchWriter, "run_fast", counting)
            for batch, kwargs in steps:
                try:
                    outcomes.append(await store.persist_events(batch, **kwargs))
                except (StaleExtremitiesError, persist_mod.MissingStateError) as exc:
                    outcomes.append(type(exc).__name__)
                # After every batch: the extremities (later batches could hide a slip).
                rows = await store.db.fetchall(
                    "SELECT room_id, event_id FROM event_forward_extremities")
                outcomes.append(sorted(tuple(r) for r in rows))
        outcomes.append(recorded)
        tables: dict[str, list[tuple[Any, ...]]] = {}
        for table in await store.db.table_names():
            if table in ("schema_migrations",):
                continue
            rows = await store.db.fetchall(f"SELECT * FROM {table}")
            tables[table] = sorted((tuple(r) for r in rows), key=repr)
    return outcomes, tables, used


@pytest.fixture
def twin_configs(database_config: DatabaseConfig, request: pytest.FixtureRequest,
                 tmp_path: Path) -> Iterator[tuple[DatabaseConfig, DatabaseConfig]]:
    """Two empty databases of the same dialect."""
    if database_config.dialect == "sqlite":
        yield database_config, DatabaseConfig(dialect="sqlite",
                                              sqlite_path=str(tmp_path / "twin.db"))
        return
    server = request.getfixturevalue("pg_server")
    name = server.create_database()
    try:
        yield database_config, server.config(name)
    finally:
        server.drop_database(name)


async def test_fast_path_writes_what_the_general_path_writes(
    twin_configs: tuple[DatabaseConfig, DatabaseConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(persist_mod, "_now_ms", lambda: _NOW)
    steps = _steps()
    fast_config, general_config = twin_configs
    fast_out, fast_tables, used = await _run(fast_config, True, steps)
    general_out, general_tables, unused = await _run(general_config, False, steps)
    assert unused == 0
    if fast_config.dialect == "postgres":
        assert used >= 10  # the fast path took most batches
    else:
        assert used == 0
    assert fast_out == general_out
    assert fast_tables.keys() == general_tables.keys()
    for table, rows in general_tables.items():
        assert fast_tables[table] == rows, table
    events = {r[1]: r for r in general_tables["events"]}
    assert len(events) > 15
    assert any(r[13] for r in events.values())  # some event is redacted


async def test_fast_path_completes_its_positions_in_the_same_statement(
    database_config: DatabaseConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast call also completes the batch's positions (no completion round trip, the
    stream's current position is the batch's at once); a batch it declines is completed
    the usual way."""
    if database_config.dialect != "postgres":
        pytest.skip("the fast path is PostgreSQL's")
    completions: list[list[int]] = []
    real = StreamIdGenerator._persist_completion

    async def counting(self: StreamIdGenerator, positions: list[int],
                       instance_name: str | None = None) -> None:
        completions.append(list(positions))
        await real(self, positions, instance_name)

    monkeypatch.setattr(StreamIdGenerator, "_persist_completion", counting)
    rb = RoomBuilder("!fast:test")
    setup = [rb.create(), rb.member("@alice:test")]
    async with open_store(database_config) as store:
        await store.persist_events(chain(setup))
        completions.clear()
        tip = setup[-1].event_id
        m1, m2 = rb.message("one"), rb.message("two")
        results = await store.persist_events([EventToPersist(m1, StateAfter(tip)),
                                              EventToPersist(m2, StateAfter(m1.event_id))])
        stream = store._persister.stream
        assert completions == []
        assert stream.current() == max(r.stream_ordering for r in results)
        assert await stream.refresh() == stream.current()
        assert await store.db.fetchval("SELECT count(*) FROM stream_inflight") == 0
        # Stale expectation: the fast call declines, the positions are completed (burnt).
        m3 = rb.message("three")
        with pytest.raises(StaleExtremitiesError):
            await store.persist_events([EventToPersist(m3, StateAfter(m2.event_id))],
                                       expected_extremities={rb.room_id: [tip]})
        assert len(completions) == 1
        assert stream.current() == completions[0][0]
        assert await store.db.fetchval("SELECT count(*) FROM stream_inflight") == 0


async def test_fast_path_probes_indexes_whatever_the_table_sizes(
    database_config: DatabaseConfig
) -> None:
    """Every statement of the fast call reaches its rows through an index. Its generic
    plans assume ten-element arrays; against tables of a few thousand rows (a young
    server) that costing preferred hashing whole-table scans, 0.1-0.2 ms each and growing
    with the table. auto_explain reports the plan of each statement the call runs."""
    if database_config.dialect != "postgres":
        pytest.skip("the fast path is PostgreSQL's")
    rb = RoomBuilder("!probe:test")
    setup = [rb.create(), rb.member("@alice:test")]
    async with open_store(database_config) as store:
        await store.persist_events(chain(setup))
        # Rows of other rooms, as a server that has been running a while has them.
        await store.db.execute(
            "INSERT INTO event_to_state_group (event_id, state_group, state_group_before)"
            " SELECT '$filler' || i, 1, 1 FROM generate_series(1, 4000) AS i")
        await store.db.execute(
            "INSERT INTO event_txn_ids (user_id, device_id, room_id, txn_id, event_id,"
            " inserted_ts) SELECT '@u' || i || ':test', 'D', '!r:test', 't', '$filler' || i, 0"
            " FROM generate_series(1, 4000) AS i")
        await store.db.execute(
            "INSERT INTO event_forward_extremities (room_id, event_id)"
            " SELECT '!r' || i || ':test', '$filler' || i FROM generate_series(1, 4000) AS i")
        await store.db.execute(
            "INSERT INTO event_edges (event_id, prev_event_id, is_excluded)"
            " SELECT '$filler' || i, '$filler' || (i - 1), FALSE"
            " FROM generate_series(1, 4000) AS i")
        await store.db.execute("ANALYZE")
        name = await store.db.fetchval("SELECT current_database()")
        try:
            for setting in ("session_preload_libraries = 'auto_explain'",
                            "auto_explain.log_min_duration = 0",
                            "auto_explain.log_nested_statements = on",
                            "auto_explain.log_level = notice"):
                await store.db.execute(f'ALTER DATABASE "{name}" SET {setting}')
        except Exception as exc:  # an external server where the test user may not
            pytest.skip(f"auto_explain unavailable: {exc}")

    plans: list[str] = []

    def heard(_con: Any, fields: dict[str, str], _query: Any) -> None:
        # Each server message of every connection ("W": its context, "M": the text).
        if "hs_persist_events_fast" in fields.get("W", ""):
            plans.append(fields.get("M", ""))

    async with open_store(database_config) as store:  # new connections, new plans
        tip = setup[-1].event_id
        m1 = rb.message("one")
        m2 = rb.message("two")
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(asyncpg.Connection, "_process_log_message", heard)
            results = await store.persist_events(
                [EventToPersist(m1, StateAfter(tip), txn=TxnKey("@alice:test", "D", "a")),
                 EventToPersist(m2, StateAfter(m1.event_id),
                                txn=TxnKey("@alice:test", "D", "b"))],
                expected_extremities={rb.room_id: [tip]})
        assert [r.event_id for r in results] == [m1.event_id, m2.event_id]
    assert len(plans) >= 10, plans  # the fast call ran its statements
    scans = [p for p in plans if "Seq Scan on" in p]
    assert scans == []
