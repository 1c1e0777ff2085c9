"""PostgreSQL: a stream position drawn ahead for a send that did not come (released
unused) is known to hold nothing, so /sync still answers the range from memory."""

from __future__ import annotations

import asyncio

import pytest
from tests.rooms.helpers import new_user
from tests.server.harness import running_server

import hs.storage.streams as streams_mod
from hs.storage.database import DatabaseConfig


async def test_released_position_keeps_the_recent_range_whole(
        database_config: DatabaseConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    if database_config.dialect != "postgres":
        pytest.skip("positions are drawn ahead on PostgreSQL only")
    monkeypatch.setattr(streams_mod, "RESERVE_IDLE_S", 0.1)
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        room = await alice.create_room()
        events = hs.services.events
        status, _ = await alice.send(room, "t1", {"msgtype": "m.text", "body": "one"})
        assert status == 200
        before = events.stream.current()
        await asyncio.sleep(0.3)  # the position drawn for the next send is released
        status, _ = await alice.send(room, "t2", {"msgtype": "m.text", "body": "two"})
        assert status == 200
        after = events.stream.current()
        assert after > before + 1  # a position between held nothing
        span = events.recent.span(before, after)
        assert span is not None and len(span) == 1
