"""Push actions computed after events go through the room pipeline, unread counts per
room and thread (dropping as receipts advance or the user speaks), and /notifications."""

from __future__ import annotations

from typing import Any

from tests.rooms.helpers import User, new_user, q
from tests.server.harness import Client, running_server

from hs.storage.database import DatabaseConfig

SOUND = {"set_tweak": "sound", "value": "default"}
HIGHLIGHT = {"set_tweak": "highlight"}


async def _send(u: User, room_id: str, body: str, **content: Any) -> str:
    status, resp = await u.send(room_id, f"t{id(content)}{body}",
                                {"msgtype": "m.text", "body": body, **content})
    assert status == 200, resp
    return str(resp["event_id"])


async def _actions(hs: Client, user_id: str) -> dict[str, list[Any]]:
    """event_id -> actions of the user's stored rows."""
    rows = await hs.services.push.actions.store.notifications(user_id, None, 1000, False)
    return {r.event_id: r.actions for r in rows}


async def _counts(hs: Client, user_id: str, room_id: str) -> dict[str, Any]:
    return (await hs.services.push.unread_counts(user_id, [room_id]))[room_id]


async def alice_and_bob_talking(hs: Client) -> tuple[User, User, User, str]:
    """alice, bob and carol; a public room of alice's that bob joined and that has one
    message (so the push hook has run once); carol is not in it."""
    alice, bob, carol = [await new_user(hs, n) for n in ("alice", "bob", "carol")]
    room = await alice.create_room(preset="public_chat")
    assert (await bob.join(room))[0] == 200
    await _send(alice, room, "warm up")
    return alice, bob, carol, room


async def _receipt(u: User, room_id: str, event_id: str, rtype: str = "m.read",
                   thread: str | None = None) -> None:
    body = {} if thread is None else {"thread_id": thread}
    status, resp = await u.call("POST", f"/rooms/{q(room_id)}/receipt/{rtype}/{q(event_id)}",
                                body)
    assert status == 200, resp


async def test_actions_for_message_kinds(database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as hs:
        alice, bob, carol = [await new_user(hs, n) for n in ("alice", "bob", "carol")]
        dm = await alice.create_room(preset="public_chat")
        assert (await bob.join(dm))[0] == 200
        plain = await _send(alice, dm, "hi there")
        mention = await _send(bob, dm, "hey", **{"m.mentions": {"user_ids": [alice.user_id]}})
        notice = await _send(alice, dm, "bot says", msgtype="m.notice")
        by_name = await _send(alice, dm, "hello bob, you there?")
        bob_rows = await _actions(hs, bob.user_id)
        alice_rows = await _actions(hs, alice.user_id)
        # Two members: the one-to-one rule (notify + sound); own messages never notify.
        assert bob_rows[plain] == ["notify", SOUND]
        assert alice_rows[mention] == ["notify", SOUND, HIGHLIGHT]
        assert notice not in bob_rows and plain not in alice_rows
        # No m.mentions: the legacy localpart rule still highlights (older clients).
        assert bob_rows[by_name] == ["notify", SOUND, HIGHLIGHT]

        group = await alice.create_room(preset="public_chat")
        for u in (bob, carol):
            assert (await u.join(group))[0] == 200
        msg = await _send(alice, group, "morning all")
        room_ping = await _send(alice, group, "all", **{"m.mentions": {"room": True}})
        carol_rows = await _actions(hs, carol.user_id)
        assert carol_rows[msg] == ["notify"]
        assert carol_rows[room_ping] == ["notify", HIGHLIGHT]
        # Only the room admin may @room: bob's ping is a plain message for carol.
        bob_ping = await _send(bob, group, "all", **{"m.mentions": {"room": True}})
        assert (await _actions(hs, carol.user_id))[bob_ping] == ["notify"]

        # A user rule: mute the group for carol.
        status, _ = await carol.call("PUT", f"/pushrules/global/room/{q(group)}",
                                     {"actions": []})
        assert status == 200
        muted = await _send(alice, group, "anyone?")
        assert muted not in await _actions(hs, carol.user_id)
        assert muted in await _actions(hs, bob.user_id)

        # An invite notifies the (local) invitee, who is not joined yet.
        dave = await new_user(hs, "dave")
        status, _ = await alice.member_op("invite", group, {"user_id": dave.user_id})
        assert status == 200
        dave_rows = list((await _actions(hs, dave.user_id)).values())
        assert dave_rows == [["notify", SOUND]]


async def test_counts_threads_and_receipts(database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as hs:
        alice, bob, carol = [await new_user(hs, n) for n in ("alice", "bob", "carol")]
        room = await alice.create_room(preset="public_chat")
        other = await alice.create_room(preset="public_chat")
        for u in (bob, carol):
            assert (await u.join(room))[0] == 200
        assert (await bob.join(other))[0] == 200
        m1 = await _send(alice, room, "one")
        root = await _send(alice, room, "thread root")
        thread = {"m.relates_to": {"rel_type": "m.thread", "event_id": root}}
        t1 = await _send(alice, room, "in thread 1", **thread)
        t2 = await _send(alice, room, "in thread 2 bob",
                         **{**thread, "m.mentions": {"user_ids": [bob.user_id]}})
        m2 = await _send(alice, room, "two")
        await _send(alice, other, "elsewhere")

        counts = await hs.services.push.unread_counts(bob.user_id, [room, other, "!none:x"])
        assert counts[room] == {
            "notification_count": 5, "highlight_count": 1,
            "main": {"notification_count": 3, "highlight_count": 0},
            "threads": {root: {"notification_count": 2, "highlight_count": 1}}}
        assert counts[other]["notification_count"] == 1
        assert counts["!none:x"] == {"notification_count": 0, "highlight_count": 0,
                                     "main": {"notification_count": 0, "highlight_count": 0},
                                     "threads": {}}

        # A threaded receipt in the thread clears that thread only.
        await _receipt(bob, room, t1, thread=root)
        c = await _counts(hs, bob.user_id, room)
        assert c["threads"][root] == {"notification_count": 1, "highlight_count": 1}
        assert c["main"]["notification_count"] == 3
        await _receipt(bob, room, t2, thread=root)
        c = await _counts(hs, bob.user_id, room)
        assert c["threads"] == {} and c["notification_count"] == 3
        # A main-timeline receipt clears the main timeline up to it.
        await _receipt(bob, room, m1, thread="main")
        assert (await _counts(hs, bob.user_id, room))["main"]["notification_count"] == 2
        # A private receipt further ahead wins; an older public one changes nothing.
        await _receipt(bob, room, root, rtype="m.read.private")
        assert (await _counts(hs, bob.user_id, room))["notification_count"] == 1
        await _receipt(bob, room, m1)
        assert (await _counts(hs, bob.user_id, room))["notification_count"] == 1
        # An unthreaded receipt covers every thread; other rooms are untouched.
        t3 = await _send(alice, room, "in thread 3", **thread)
        assert (await _counts(hs, bob.user_id, room))["threads"][root][
            "notification_count"] == 1
        await _receipt(bob, room, t3)
        c = await _counts(hs, bob.user_id, room)
        assert c["notification_count"] == 0 and c["threads"] == {}
        assert (await _counts(hs, bob.user_id, other))["notification_count"] == 1
        assert m2  # (read by the unthreaded receipt at t3, which comes after it)

        # Carol never sent a receipt, but speaking marks the main timeline read.
        assert (await _counts(hs, carol.user_id, room))["notification_count"] == 6
        await _send(carol, room, "catching up")
        c = await _counts(hs, carol.user_id, room)
        assert c["main"]["notification_count"] == 0
        assert c["threads"][root]["notification_count"] == 3
        await _send(carol, room, "thread reply", **thread)
        assert (await _counts(hs, carol.user_id, room))["notification_count"] == 0


async def test_notifications_endpoint(database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as hs:
        alice, bob, carol = [await new_user(hs, n) for n in ("alice", "bob", "carol")]
        room = await alice.create_room(preset="public_chat")
        for u in (bob, carol):
            assert (await u.join(room))[0] == 200
        sent = [await _send(alice, room, f"message {i}") for i in range(5)]
        ping = await _send(alice, room, "ping", **{"m.mentions": {"user_ids": [bob.user_id]}})
        await _receipt(bob, room, sent[2])

        status, body = await bob.call("GET", "/notifications")
        assert status == 200 and "next_token" not in body
        notes = body["notifications"]
        assert [n["event"]["event_id"] for n in notes] == [ping, *reversed(sent)]
        assert [n["read"] for n in notes] == [False, False, False, True, True, True]
        first = notes[0]
        assert first["room_id"] == room and first["actions"] == ["notify", SOUND, HIGHLIGHT]
        assert first["event"]["content"]["body"] == "ping" and isinstance(first["ts"], int)

        status, body = await bob.call("GET", "/notifications?only=highlight")
        assert [n["event"]["event_id"] for n in body["notifications"]] == [ping]

        seen: list[str] = []
        token = None
        while True:
            path = "/notifications?limit=2" + (f"&from={token}" if token else "")
            status, body = await bob.call("GET", path)
            assert status == 200 and len(body["notifications"]) <= 2
            seen += [n["event"]["event_id"] for n in body["notifications"]]
            token = body.get("next_token")
            if token is None:
                break
        assert seen == [ping, *reversed(sent)]

        for bad in ("limit=0", "limit=x", "from=abc", "from=" + "9" * 30, "limit=%D9%A3"):
            status, body = await bob.call("GET", f"/notifications?{bad}")
            assert (status, body["errcode"]) == (400, "M_INVALID_PARAM"), bad
        status, body = await alice.call("GET", "/notifications")
        assert status == 200 and body == {"notifications": []}


async def test_counts_in_sync(database_config: DatabaseConfig) -> None:
    """The count for a new event arrives in the same /sync response as the event, and
    drops after a receipt."""
    async with running_server(database_config) as hs:
        alice, bob = [await new_user(hs, n) for n in ("alice", "bob")]
        room = await alice.create_room(preset="public_chat")
        assert (await bob.join(room))[0] == 200
        status, body = await bob.call("GET", "/sync")
        assert status == 200
        since = body["next_batch"]
        event_id = await _send(alice, room, "are you there?")
        status, body = await bob.call("GET", f"/sync?since={since}&timeout=0")
        entry = body["rooms"]["join"][room]
        assert [e["event_id"] for e in entry["timeline"]["events"]] == [event_id]
        assert entry["unread_notifications"] == {"notification_count": 1,
                                                 "highlight_count": 0}
        await _receipt(bob, room, event_id)
        status, body = await bob.call("GET", f"/sync?since={body['next_batch']}&timeout=0")
        assert body["rooms"]["join"][room]["unread_notifications"]["notification_count"] == 0


async def test_woken_client_sees_counts_and_notifications_of_a_slow_push_hook(
        database_config: DatabaseConfig) -> None:
    """/sync is woken right after the commit, before the push hook has written the new
    event's actions: the woken sync's counts and a /notifications call made at once
    still include the event (they wait for the hook of what they cover)."""
    import asyncio

    async with running_server(database_config) as hs:
        alice, bob = [await new_user(hs, n) for n in ("alice", "bob")]
        room = await alice.create_room(preset="public_chat")
        assert (await bob.join(room))[0] == 200
        status, body = await bob.call("GET", "/sync")
        since = body["next_batch"]
        actions = hs.services.push.actions
        original = actions.on_persisted
        release = asyncio.Event()

        async def slow(*args: Any) -> None:
            await release.wait()
            await original(*args)

        hooks = hs.services.rooms.pipeline.on_persisted
        index = next(i for i, h in enumerate(hooks) if getattr(h, "__self__", None)
                     in (hs.services.push, actions))
        hooks[index] = slow
        poll = asyncio.ensure_future(bob.call("GET", f"/sync?since={since}&timeout=10000"))
        await asyncio.sleep(0.1)
        send = asyncio.ensure_future(_send(alice, room, "are you there?"))
        await asyncio.sleep(0.3)
        assert not poll.done()  # woken, but its counts wait for the hook
        notes = asyncio.ensure_future(bob.call("GET", "/notifications"))
        await asyncio.sleep(0.1)
        assert not notes.done()
        release.set()
        event_id = await send
        status, body = await poll
        entry = body["rooms"]["join"][room]
        assert [e["event_id"] for e in entry["timeline"]["events"]] == [event_id]
        assert entry["unread_notifications"]["notification_count"] == 1
        status, body = await notes
        assert status == 200
        assert [n["event"]["event_id"] for n in body["notifications"]] == [event_id]


async def test_room_members_are_read_again_only_after_a_state_change(
        database_config: DatabaseConfig) -> None:
    """The hook keeps a room's members and power levels between messages and drops them
    when the room's state changes: a new member is counted from its join on, and a
    power-levels change (who may @room) applies to the next message."""
    async with running_server(database_config) as hs:
        alice, bob, carol, room = await alice_and_bob_talking(hs)
        events = hs.services.push.actions.events
        reads = 0
        original = events.get_members

        async def counting(*args: Any, **kwargs: Any) -> Any:
            nonlocal reads
            reads += 1
            return await original(*args, **kwargs)

        events.get_members = counting  # type: ignore[method-assign]
        try:
            await _send(alice, room, "one")
            await _send(alice, room, "two")
            assert reads == 0
            assert (await carol.join(room))[0] == 200
            await _send(alice, room, "three")
            assert reads >= 1
        finally:
            events.get_members = original  # type: ignore[method-assign]
        assert (await _counts(hs, carol.user_id, room))["notification_count"] == 1
        # bob (level 0) may not notify the whole room until the room level is lowered.
        mention_room = {"m.mentions": {"room": True}}
        await _send(bob, room, "@room one", **mention_room)
        assert (await _counts(hs, carol.user_id, room))["highlight_count"] == 0
        status, levels = await alice.call(
            "GET", f"/rooms/{q(room)}/state/m.room.power_levels/")
        assert status == 200
        levels["notifications"] = {"room": 0}
        status, _ = await alice.call("PUT", f"/rooms/{q(room)}/state/m.room.power_levels/",
                                     levels)
        assert status == 200
        await _send(bob, room, "@room two", **mention_room)
        assert (await _counts(hs, carol.user_id, room))["highlight_count"] == 1
