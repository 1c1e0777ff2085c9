"""Invite, knock and leave sections; filters; lazy-loaded members; full_state."""

from __future__ import annotations

from tests.server.harness import running_server
from tests.sync.helpers import bodies, new_user, timeline


async def test_invite_then_join_then_leave(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        room = await alice.create_room(preset="private_chat", name="secret")
        token = (await bob.sync())["next_batch"]
        await alice.invite(room, bob.user_id)
        body = await bob.sync(token)
        events = body["rooms"]["invite"][room]["invite_state"]["events"]
        by_type = {e["type"]: e for e in events}
        assert by_type["m.room.name"]["content"]["name"] == "secret"
        assert "m.room.create" in by_type and "m.room.join_rules" in by_type
        members = {e["state_key"]: e for e in events if e["type"] == "m.room.member"}
        assert members[alice.user_id]["content"]["membership"] == "join"
        invite = members[bob.user_id]
        assert (invite["sender"], invite["content"]["membership"]) == (alice.user_id, "invite")
        assert events[-1] is invite or events[-1] == invite
        # An initial sync shows the pending invite too.
        assert room in (await bob.sync())["rooms"]["invite"]

        await bob.join(room)
        body = await bob.sync(body["next_batch"])
        assert list(body["rooms"]) == ["join"]
        entry = body["rooms"]["join"][room]
        # A newly joined room comes whole: the state at the start of its timeline plus
        # the timeline (here the room's whole short history) give every state event.
        seen = entry["state"]["events"] + entry["timeline"]["events"]
        assert {e["type"] for e in seen} >= {"m.room.create", "m.room.name",
                                             "m.room.power_levels"}
        assert timeline(body, room)[-1]["state_key"] == bob.user_id
        assert entry["summary"]["m.joined_member_count"] == 2

        await alice.send(room, "bye soon")
        await bob.leave(room)
        await alice.send(room, "after bob left")
        left = await bob.sync(body["next_batch"])
        assert room not in left["rooms"].get("join", {})
        entry = left["rooms"]["leave"][room]
        events = entry["timeline"]["events"]
        assert [e["content"].get("body") for e in events if e["type"] == "m.room.message"] == [
            "bye soon"]
        assert events[-1]["content"]["membership"] == "leave"
        # Left rooms are left out of an initial sync unless include_leave.
        assert room not in (await bob.sync())["rooms"].get("leave", {})
        with_leave = await bob.sync(flt={"room": {"include_leave": True}})
        assert room in with_leave["rooms"]["leave"]


async def test_rejected_invite_shows_as_leave(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        room = await alice.create_room(preset="private_chat")
        await alice.invite(room, bob.user_id)
        token = (await bob.sync())["next_batch"]
        await bob.leave(room)
        body = await bob.sync(token)
        assert room in body["rooms"]["leave"]
        assert room not in body["rooms"].get("invite", {})


async def test_knock_section(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        room = await alice.create_room(preset="private_chat", room_version="10")
        await alice.ok("PUT", f"/rooms/{room}/state/m.room.join_rules", {"join_rule": "knock"})
        token = (await bob.sync())["next_batch"]
        await bob.ok("POST", f"/knock/{room}", {"reason": "let me in"})
        body = await bob.sync(token)
        events = body["rooms"]["knock"][room]["knock_state"]["events"]
        assert {"type": "m.room.join_rules", "state_key": "", "sender": alice.user_id,
                "content": {"join_rule": "knock"}} in events
        assert events[-1]["content"]["membership"] == "knock"
        assert room in (await bob.sync())["rooms"]["knock"]
        # The knocker is not a member: Alice's messages are not synced to Bob.
        await alice.send(room, "private")
        later = await bob.sync(body["next_batch"])
        assert room not in later["rooms"].get("join", {})


async def test_filters_types_senders_rooms_limit(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        room = await alice.create_room()
        quiet = await alice.create_room()
        await bob.join(room)
        await bob.join(quiet)
        await alice.send(room, "from alice")
        await bob.send(room, "from bob")
        await alice.send(room, "notice", event_type="m.room.notice")
        flt = {"room": {"rooms": [room], "timeline": {"senders": [alice.user_id],
                                                      "types": ["m.room.message"],
                                                      "limit": 5},
                        "state": {"types": ["m.room.name", "m.room.create"]}},
               "presence": {"types": []}, "account_data": {"not_types": ["*"]}}
        body = await bob.sync(flt=flt)
        assert list(body["rooms"]["join"]) == [room]
        assert bodies(body, room) == ["from alice"]
        state = body["rooms"]["join"][room]["state"]["events"]
        assert {e["type"] for e in state} == {"m.room.create"}
        # An uploaded filter works by ID; event_fields trims the events.
        fid = (await bob.ok("POST", f"/user/{bob.user_id}/filter", {
            "event_fields": ["type", "content.body"],
            "room": {"timeline": {"limit": 2}}}))["filter_id"]
        body = await bob.sync(flt=fid)
        events = timeline(body, room)
        assert len(events) == 2 and body["rooms"]["join"][room]["timeline"]["limited"]
        assert events[-1] == {"type": "m.room.notice", "content": {"body": "notice"}}
        # limit 0: bots skip timelines entirely.
        body = await bob.sync(flt={"room": {"timeline": {"limit": 0}}})
        assert timeline(body, room) == []
        assert body["rooms"]["join"][room]["timeline"]["limited"] is True


async def test_lazy_loading_members(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        room = await alice.create_room()
        others = [await new_user(hs, f"user{i}") for i in range(5)]
        for u in others:
            await u.join(room)
        await others[0].send(room, "hello from 0")
        await alice.send(room, "hello from alice")
        lazy = {"room": {"state": {"lazy_load_members": True}, "timeline": {"limit": 2}}}
        body = await alice.sync(flt=lazy)
        entry = body["rooms"]["join"][room]
        members = {e["state_key"] for e in entry["state"]["events"]
                   if e["type"] == "m.room.member"}
        assert members == {others[0].user_id, alice.user_id}
        assert entry["summary"]["m.joined_member_count"] == 6
        assert len(entry["summary"]["m.heroes"]) == 5
        # Incremental: a new sender's membership comes along once per device.
        await others[3].send(room, "hi from 3")
        inc = await alice.sync(body["next_batch"], flt=lazy)
        state = inc["rooms"]["join"][room]["state"]["events"]
        assert [e["state_key"] for e in state] == [others[3].user_id]
        await others[3].send(room, "again from 3")
        inc2 = await alice.sync(inc["next_batch"], flt=lazy)
        assert inc2["rooms"]["join"][room]["state"]["events"] == []
        redundant = {"room": {"state": {"lazy_load_members": True,
                                        "include_redundant_members": True}}}
        await others[3].send(room, "third from 3")
        inc3 = await alice.sync(inc2["next_batch"], flt=redundant)
        resent = {e["state_key"] for e in inc3["rooms"]["join"][room]["state"]["events"]}
        assert resent == {others[3].user_id, alice.user_id}


async def test_full_state_returns_everything(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        room = await alice.create_room(name="n")
        token = (await alice.sync())["next_batch"]
        body = await alice.sync(token, full_state="true")
        entry = body["rooms"]["join"][room]
        assert {"m.room.create", "m.room.name"} <= {e["type"] for e in entry["state"]["events"]}


async def test_unread_counts_split_by_thread(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        room = await alice.create_room()
        await bob.join(room)
        root = await alice.send(room, "root")
        await alice.send(room, "in thread", **{"m.relates_to": {
            "rel_type": "m.thread", "event_id": root}})
        await alice.send(room, "main again")
        whole = (await bob.sync())["rooms"]["join"][room]
        assert whole["unread_notifications"]["notification_count"] == 3
        assert "unread_thread_notifications" not in whole
        split = (await bob.sync(flt={"room": {"timeline": {
            "unread_thread_notifications": True}}}))["rooms"]["join"][room]
        assert split["unread_notifications"]["notification_count"] == 2
        assert split["unread_thread_notifications"] == {
            root: {"notification_count": 1, "highlight_count": 0}}
        # Reading up to the newest event clears the counts (via the receipt's sync).
        token = (await bob.sync())["next_batch"]
        last = (await bob.sync())["rooms"]["join"][room]["timeline"]["events"][-1]["event_id"]
        await bob.ok("POST", f"/rooms/{room}/receipt/m.read/{last}", {})
        body = await bob.sync(token)
        assert body["rooms"]["join"][room]["unread_notifications"] == {
            "notification_count": 0, "highlight_count": 0}


async def test_ignored_inviter_and_forgotten_rooms(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        mallory = await new_user(hs, "mallory")
        await bob.ok("PUT", f"/user/{bob.user_id}/account_data/m.ignored_user_list",
                     {"ignored_users": {mallory.user_id: {}}})
        spam = await mallory.create_room(preset="private_chat")
        await mallory.invite(spam, bob.user_id)
        wanted = await alice.create_room(preset="private_chat")
        await alice.invite(wanted, bob.user_id)
        assert set((await bob.sync())["rooms"]["invite"]) == {wanted}

        await bob.join(wanted)
        await bob.leave(wanted)
        flt = {"room": {"include_leave": True}}
        assert wanted in (await bob.sync(flt=flt))["rooms"]["leave"]
        token = (await bob.sync())["next_batch"]
        await bob.ok("POST", f"/rooms/{wanted}/forget", {})
        assert wanted not in (await bob.sync(flt=flt))["rooms"].get("leave", {})
        # Kicked again later (after a re-invite and join): an incremental sync shows it.
        await alice.invite(wanted, bob.user_id)
        await bob.join(wanted)
        await alice.ok("POST", f"/rooms/{wanted}/kick", {"user_id": bob.user_id})
        body = await bob.sync(token)
        assert wanted in body["rooms"]["leave"]
