"""The outbound sender against a real recording server on 127.0.0.1: batching limits, one
transaction in flight, signed requests, backoff after 500s and refused connections,
persisted destination health, catch-up, and bounded memory for a dead destination."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

from tests.federation_sender.helpers import env, make_pdus, wait_for

from hs.federation.sender import RetryPolicy
from hs.federation.sender.queue import MAX_PENDING_PDUS
from hs.federation.sender.transaction import TxnIds
from hs.storage.federation import FederationSenderStore


async def test_transactions_batch_within_limits_one_in_flight(tmp_path: Path,
                                                               database_config) -> None:
    async with env(tmp_path, database_config) as e:
        e.recorder.delay = 0.05
        sender = e.make_sender()
        pdus = make_pdus(e, "!abc:x", 120)
        await sender.send_pdus("!abc:x", pdus, [e.dest, sender.server_name])
        for i in range(250):
            sender.send_edu(e.dest, "m.test", {"n": i})
        await wait_for(lambda: len(e.recorder.pdu_ids()) == 120
                       and len(e.recorder.edus()) == 250)
        await sender.flush()
        # Every request verified against the origin's key fetched by the real keyring.
        assert set(e.recorder.origins) == {e.origin}
        assert e.recorder.pdu_ids() == [p.event_id for p in pdus]  # order kept
        assert [edu["content"]["n"] for edu in e.recorder.edus()] == list(range(250))
        for _, body in e.recorder.txns:
            assert len(body["pdus"]) <= 50 and len(body["edus"]) <= 100
            assert body["origin"] == e.origin and isinstance(body["origin_server_ts"], int)
        assert e.recorder.max_in_flight == 1
        txn_ids = [t for t, _ in e.recorder.txns]
        assert len(set(txn_ids)) == len(txn_ids) >= 3
        # Nothing was queued for ourselves.
        assert set(sender.queues) == {e.dest}
        # The acknowledged position is persisted for catch-up.
        health = await FederationSenderStore(e.db).get_health(e.dest)
        assert health is not None and health.last_successful_stream_ordering == 120


async def test_keyed_edus_keep_latest_only(tmp_path: Path, database_config) -> None:
    async with env(tmp_path, database_config) as e:
        sender = e.make_sender()
        e.recorder.fail_with = [500]  # first attempt fails; the keyed EDUs then coalesce
        sender.send_edu(e.dest, "m.typing", {"typing": True}, key=("!r", "@u"))
        await wait_for(lambda: sender.queues[e.dest].backing_off)
        for flag in (False, True, False):
            sender.send_edu(e.dest, "m.typing", {"typing": flag}, key=("!r", "@u"))
        await wait_for(lambda: len(e.recorder.edus()) >= 1)
        await sender.flush()
        assert [x["content"] for x in e.recorder.edus()] == [{"typing": False}]


async def test_backoff_on_500_then_catch_up(tmp_path: Path, database_config) -> None:
    async with env(tmp_path, database_config) as e:
        sender = e.make_sender()
        store = FederationSenderStore(e.db)
        first = make_pdus(e, "!aaa:x", 2)
        await sender.send_pdus("!aaa:x", first, [e.dest])
        await wait_for(lambda: len(e.recorder.pdu_ids()) == 2)
        await sender.flush()
        e.recorder.fail_with = [500, 502, 503]
        room_a = make_pdus(e, "!aaa:x", 5, start=3)
        for pdu in room_a:
            await sender.send_pdus("!aaa:x", [pdu], [e.dest])
        room_b = make_pdus(e, "!bbb:x", 3, start=8)
        await sender.send_pdus("!bbb:x", room_b, [e.dest])
        queue = sender.queues[e.dest]
        await wait_for(lambda: queue.catching_up and queue.retry_interval_ms > 0)
        # Down: PDUs are not kept in memory, and the health is persisted.
        assert not queue.pending_pdus
        health = await store.get_health(e.dest)
        assert health is not None and health.failure_ts is not None
        assert health.retry_interval_ms >= 45
        await wait_for(lambda: not e.recorder.fail_with and not queue.catching_up
                       and not queue.has_work())
        await sender.flush()
        # Catch-up sent only the latest event of each room the destination missed.
        assert e.recorder.pdu_ids()[2:] == ["$aaa7", "$bbb10"]
        assert queue.retry_interval_ms == 0
        health = await store.get_health(e.dest)
        assert health is not None and health.failure_ts is None
        assert health.last_successful_stream_ordering == 10
        # Healthy again: new PDUs go straight out.
        more = make_pdus(e, "!aaa:x", 1, start=11)
        await sender.send_pdus("!aaa:x", more, [e.dest])
        await wait_for(lambda: e.recorder.pdu_ids()[-1] == "$aaa11")


async def test_connection_refused_backs_off_and_is_remembered(tmp_path: Path,
                                                              database_config) -> None:
    async with env(tmp_path, database_config) as e:
        policy = RetryPolicy(min_interval_ms=100, max_interval_ms=400, jitter=0.0)
        sender = e.make_sender(policy=policy)
        await sender.send_pdus("!ccc:x", make_pdus(e, "!ccc:x", 3), [e.dead])
        queue = sender.queues[e.dead]
        await wait_for(lambda: queue.retry_interval_ms >= 400, timeout=15)
        intervals = []
        health = await FederationSenderStore(e.db).get_health(e.dead)
        assert health is not None
        intervals.append(health.retry_interval_ms)
        assert health.retry_interval_ms == 400  # 100, 200, 400: capped
        await sender.close()
        # A new process remembers the backoff and that catch-up is needed.
        again = e.make_sender(policy=policy)
        again.start()  # resumes the failed destination without new traffic to it
        await wait_for(lambda: e.dead in again.queues)
        q2 = again.queues[e.dead]
        await wait_for(lambda: q2.retry_interval_ms > 0)
        assert q2.catching_up and q2.failure_ts == health.failure_ts


async def test_dead_destination_memory_is_bounded(tmp_path: Path, database_config) -> None:
    async with env(tmp_path, database_config) as e:
        sender = e.make_sender(max_queued_edus=100)
        await sender.send_pdus("!ddd:x", make_pdus(e, "!ddd:x", 1), [e.dead])
        queue = sender.queues[e.dead]
        await wait_for(lambda: queue.catching_up)
        for i in range(3000):
            await sender.send_pdus("!ddd:x", make_pdus(e, "!ddd:x", 1, start=2 + i),
                                   [e.dead])
            sender.send_edu(e.dead, "m.test", {"n": i})
            sender.send_edu(e.dead, "m.presence", {"n": i}, key=f"@u{i}:x")
        assert len(queue.pending_pdus) == 0
        assert len(queue.pending_edus) <= 100 and len(queue.keyed_edus) <= 100
        assert queue.dropped_edus >= 5800
        # The newest EDUs are the ones kept.
        assert queue.pending_edus[-1]["content"] == {"n": 2999}
        # Catch-up state is one row per room, not per event.
        rows = await FederationSenderStore(e.db).catch_up_events(e.dead, 0, 100)
        assert rows == [("$ddd3001", 3001)]


async def test_slow_destination_falls_back_to_catch_up(tmp_path: Path,
                                                       database_config) -> None:
    async with env(tmp_path, database_config) as e:
        e.recorder.delay = 0.3
        sender = e.make_sender()
        await sender.send_pdus("!eee:x", make_pdus(e, "!eee:x", MAX_PENDING_PDUS + 100),
                               [e.dest])
        queue = sender.queues[e.dest]
        assert len(queue.pending_pdus) <= MAX_PENDING_PDUS
        await wait_for(lambda: not queue.has_work(), timeout=20)
        assert e.recorder.pdu_ids()[-1] == f"$eee{MAX_PENDING_PDUS + 100}"


async def test_4xx_drops_transaction_without_backoff(tmp_path: Path,
                                                     database_config) -> None:
    async with env(tmp_path, database_config) as e:
        sender = e.make_sender()
        e.recorder.fail_with = [400]
        sender.send_edu(e.dest, "m.test", {"n": 1})
        await wait_for(lambda: not e.recorder.fail_with)
        await sender.flush()
        sender.send_edu(e.dest, "m.test", {"n": 2})
        await wait_for(lambda: len(e.recorder.edus()) == 1)
        assert e.recorder.edus()[0]["content"] == {"n": 2}
        assert sender.queues[e.dest].retry_interval_ms == 0


def test_retry_policy_grows_and_caps() -> None:
    policy = RetryPolicy(min_interval_ms=1000, max_interval_ms=10_000, jitter=0.2)
    interval, seen = 0, []
    for _ in range(10):
        interval = policy.next_interval(interval)
        seen.append(interval)
    assert 1000 <= seen[0] <= 1200 and seen[-1] == 10_000
    assert all(b >= a or b == 10_000 for a, b in itertools.pairwise(seen))
    ids = TxnIds()
    assert len({ids.next() for _ in range(1000)}) == 1000


async def test_close_stops_loops(tmp_path: Path, database_config) -> None:
    async with env(tmp_path, database_config) as e:
        sender = e.make_sender()
        await sender.send_pdus("!fff:x", make_pdus(e, "!fff:x", 1), [e.dead])
        await sender.close()
        task = sender.queues[e.dead]._task
        assert task is not None and task.done()
        sender.send_edu(e.dead, "m.test", {})  # ignored after close
        await asyncio.sleep(0)
        assert not sender.queues[e.dead].pending_edus


async def test_catch_up_covers_pdus_queued_out_of_stream_order(tmp_path: Path,
                                                                database_config) -> None:
    async with env(tmp_path, database_config) as e:
        sender = e.make_sender()
        (b12,) = make_pdus(e, "!bbb:x", 1, start=12)
        await sender.send_pdus("!bbb:x", [b12], [e.dest])
        await wait_for(lambda: e.recorder.pdu_ids() == ["$bbb12"])
        await sender.flush()
        # Room A's event has an older stream ordering but is queued later, and is lost.
        e.recorder.fail_with = [500]
        (a11,) = make_pdus(e, "!aaa:x", 1, start=11)
        await sender.send_pdus("!aaa:x", [a11], [e.dest])
        await wait_for(lambda: "$aaa11" in e.recorder.pdu_ids())
        await sender.flush()
        health = await FederationSenderStore(e.db).get_health(e.dest)
        assert health is not None and health.last_successful_stream_ordering == 12


async def test_restart_while_healthy_catches_up_lost_pdus(tmp_path: Path,
                                                          database_config) -> None:
    async with env(tmp_path, database_config) as e:
        first = e.make_sender()
        await first.send_pdus("!aaa:x", make_pdus(e, "!aaa:x", 1), [e.dest])
        await wait_for(lambda: e.recorder.pdu_ids() == ["$aaa1"])
        await first.flush()
        # Recorded for the destination but never sent: the process stopped first.
        make_pdus(e, "!aaa:x", 1, start=3)
        await FederationSenderStore(e.db).record_room_pdu([e.dest], "!aaa:x", "$aaa3", 3)
        await first.close()
        second = e.make_sender()
        await second.send_pdus("!bbb:x", make_pdus(e, "!bbb:x", 1, start=4), [e.dest])
        await wait_for(lambda: "$bbb4" in e.recorder.pdu_ids())
        assert e.recorder.pdu_ids() == ["$aaa1", "$aaa3", "$bbb4"]


async def test_resident_relays_a_remote_join_to_the_other_servers(tmp_path: Path,
                                                                  database_config) -> None:
    from hs.core.pdu import PDU
    from hs.core.room_versions import KNOWN_ROOM_VERSIONS

    async with env(tmp_path, database_config) as e:
        sender = e.make_sender()
        joiner = "joiner.test:1"
        for user in (f"@a:{e.dest}", f"@b:{joiner}", f"@c:{e.origin}"):
            await e.db.execute(
                "INSERT INTO current_state (room_id, type, state_key, event_id, membership)"
                " VALUES (?, 'm.room.member', ?, ?, 'join')", "!r:x", user, "$m" + user)
        join = {"type": "m.room.member", "state_key": f"@b:{joiner}", "sender": f"@b:{joiner}",
                "room_id": "!r:x", "content": {"membership": "join"}, "depth": 5,
                "origin_server_ts": 1, "prev_events": [], "auth_events": [],
                "hashes": {"sha256": "x"}, "signatures": {}, "unsigned": {"age": 1}}
        pdu = PDU(join, KNOWN_ROOM_VERSIONS["10"], event_id="$join")
        await sender.relay_pdu("!r:x", pdu, 7, {joiner})
        await wait_for(lambda: len(e.recorder.txns) == 1)
        await sender.flush()
        # Only the third server gets it: not the joining server, not ourselves.
        assert set(sender.queues) == {e.dest}
        [(_, body)] = e.recorder.txns
        [sent] = body["pdus"]
        assert sent["state_key"] == f"@b:{joiner}" and "unsigned" not in sent
