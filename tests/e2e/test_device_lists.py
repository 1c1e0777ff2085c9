"""Device-list change tracking: who is told, /keys/changes, newly shared / left rooms."""

from __future__ import annotations

import pytest
from tests.e2e.helpers import Room, new_device, uid
from tests.server.harness import running_server

from hs.handlers.device_lists import InvalidSyncToken, parse_sync_token


def test_parse_sync_token():
    assert parse_sync_token("42") == (42, None)
    assert parse_sync_token("s72594_4483_1934_1_2_3_77_0") == (77, 72594)
    for bad in ("", "s1_2", "abc", "s1_2_3_4_5_6_x"):
        with pytest.raises(InvalidSyncToken):
            parse_sync_token(bad)


async def test_changes_visible_only_to_users_sharing_a_room(database_config):
    async with running_server(database_config) as hs:
        alice = await new_device(hs, "alice")
        bob = await new_device(hs, "bob")
        eve = await new_device(hs, "eve")
        await Room(hs, "r1", alice.user_id).create(bob.user_id)
        lists = hs.services.device_lists
        start = lists.current()
        notifier = hs.services.notifier
        with notifier.watch(users=[bob.user_id]) as bob_wait, \
                notifier.watch(users=[eve.user_id]) as eve_wait:
            await alice.upload(device_keys=alice.device_keys())
            assert bob_wait.woken and "device_lists" in bob_wait.woken_by
            assert not eve_wait.woken
        assert lists.current() > start
        assert await lists.device_list_changes_since(bob.user_id, start) == (
            {alice.user_id}, set())
        assert await lists.device_list_changes_since(eve.user_id, start) == (set(), set())
        # The user's own changes are always reported to it.
        assert await lists.device_list_changes_since(alice.user_id, start) == (
            {alice.user_id}, set())
        # Re-uploading identical keys is not a change.
        mid = lists.current()
        await alice.upload(device_keys=alice.device_keys())
        assert lists.current() == mid
        # Ranges are half-open: (from, to].
        assert await lists.device_list_changes_since(bob.user_id, mid) == (set(), set())
        assert await lists.device_list_changes_since(bob.user_id, start, start) == (
            set(), set())

        status, body = await bob.req("GET", f"/keys/changes?from={start}&to={mid}")
        assert (status, body) == (200, {"changed": [alice.user_id], "left": []})
        status, body = await eve.req("GET", f"/keys/changes?from={start}&to={mid}")
        assert body == {"changed": [], "left": []}
        status, err = await bob.req("GET", f"/keys/changes?from={start}")
        assert (status, err["errcode"]) == (400, "M_MISSING_PARAM")
        status, err = await bob.req("GET", "/keys/changes?from=garbage&to=1")
        assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")


async def test_joins_and_leaves_with_events_positions(database_config):
    async with running_server(database_config) as hs:
        alice = await new_device(hs, "alice")
        bob = await new_device(hs, "bob")
        carol = await new_device(hs, "carol")
        lists = hs.services.device_lists
        events = hs.services.events
        room = await Room(hs, "shared", alice.user_id).create(carol.user_id)
        ev0, dl0 = events.max_stream_ordering(), lists.current()
        await room.set(bob.user_id, "join")
        ev1 = events.max_stream_ordering()
        # Bob joined a room with alice and carol: alice must fetch his devices, and bob
        # must fetch theirs, although nobody's keys changed.
        assert await lists.device_list_changes_since(
            alice.user_id, dl0, events_from=ev0, events_to=ev1) == ({bob.user_id}, set())
        assert await lists.device_list_changes_since(
            bob.user_id, dl0, events_from=ev0, events_to=ev1) == (
            {alice.user_id, carol.user_id}, set())
        # The same through /keys/changes with Synapse-layout sync tokens.
        status, body = await alice.req("GET", f"/keys/changes?from=s{ev0}_0_0_0_0_0_{dl0}_0"
                                       f"&to=s{ev1}_0_0_0_0_0_{dl0}_0")
        assert (status, body) == (200, {"changed": [uid("bob")], "left": []})
        await room.set(bob.user_id, "leave")
        ev2 = events.max_stream_ordering()
        assert await lists.device_list_changes_since(
            alice.user_id, dl0, events_from=ev1, events_to=ev2) == (set(), {bob.user_id})
        assert await lists.device_list_changes_since(
            bob.user_id, dl0, events_from=ev1, events_to=ev2) == (
            set(), {alice.user_id, carol.user_id})
        # Still sharing another room: not "left".
        await Room(hs, "other", alice.user_id).create(carol.user_id)
        ev3 = events.max_stream_ordering()
        await room.set(carol.user_id, "leave")
        ev4 = events.max_stream_ordering()
        assert await lists.device_list_changes_since(
            alice.user_id, dl0, events_from=ev3, events_to=ev4) == (set(), set())


async def test_cross_signing_and_deletion_are_changes(database_config):
    async with running_server(database_config) as hs:
        alice = await new_device(hs, "alice")
        bob = await new_device(hs, "bob")
        await Room(hs, "r", alice.user_id).create(bob.user_id)
        lists = hs.services.device_lists
        start = lists.current()
        from tests.e2e.test_cross_signing import setup_cross_signing

        await setup_cross_signing(alice)
        assert (await lists.device_list_changes_since(bob.user_id, start))[0] == {
            alice.user_id}
        mid = lists.current()
        second = await new_device(hs, "alice", register=False)
        await hs.services.devices.delete(alice.user_id, [second.device_id])
        assert (await lists.device_list_changes_since(bob.user_id, mid))[0] == {
            alice.user_id}
