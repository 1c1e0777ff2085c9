"""Auth rules, room versions 1-12: for each rule an allowed and a rejected event, per
version where the rule differs (spec, rooms/vN "Authorisation rules")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from auth_helpers import ALICE, BOB, CAROL, DAVE, Room, creator_pl, standard_room
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from hs.core.auth import AuthError, auth_types_for_event, check_auth_rules
from hs.core.canonical_json import encode_canonical_json
from hs.core.power_levels import (
    INFINITE_POWER,
    get_event_power_level,
    get_named_level,
    get_notification_level,
    get_room_creators,
    get_user_power_level,
    is_valid_power_level,
    parse_power_level,
)
from hs.core.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion, get_room_version
from hs.core.unpadded_base64 import encode_base64, encode_base64_urlsafe

ALL = list(KNOWN_ROOM_VERSIONS)
USERS = [ALICE, BOB, CAROL, DAVE]


def versions(pred: Callable[[RoomVersion], bool]) -> list[str]:
    return [v for v in ALL if pred(get_room_version(v))]


def rejects(room: Room, pdu: Any, match: str = "") -> None:
    with pytest.raises(AuthError, match=match) as info:
        room.check(pdu)
    assert info.value.reason


# ---- 1: m.room.create ------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_create_allowed(version: str) -> None:
    room = Room(version)
    check_auth_rules(room.create, {})


@pytest.mark.parametrize("version", ALL)
def test_create_with_prev_events_rejected(version: str) -> None:
    room = Room(version)
    pdu = room.make("m.room.create", ALICE, dict(room.create.content), "", prev=["$x"])
    with pytest.raises(AuthError, match="prev_events"):
        check_auth_rules(pdu, {})


@pytest.mark.parametrize("version", versions(lambda rv: not rv.room_id_from_create_event))
def test_create_room_id_domain_must_match_sender(version: str) -> None:
    room = Room(version)
    pdu = room.make(
        "m.room.create", ALICE, dict(room.create.content), "", prev=[], room_id="!r:b.example"
    )
    with pytest.raises(AuthError, match="server"):
        check_auth_rules(pdu, {})


def test_v12_create_must_not_have_room_id() -> None:
    room = Room("12")
    data = dict(room.create.data, room_id="!createroom")
    pdu = type(room.create)(data, room.rv, event_id="$createroom")
    with pytest.raises(AuthError, match="room_id"):
        check_auth_rules(pdu, {})


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("declared", ["999", 7])
def test_create_unknown_room_version_rejected(version: str, declared: object) -> None:
    room = Room(version, create_content={"room_version": declared})
    with pytest.raises(AuthError, match="room version"):
        check_auth_rules(room.create, {})


@pytest.mark.parametrize("version", ALL)
def test_create_without_creator(version: str) -> None:
    room = Room(version)
    content = {k: v for k, v in room.create.content.items() if k != "creator"}
    pdu = room.make("m.room.create", ALICE, content, "", prev=[])
    if get_room_version(version).implicit_room_creator:
        check_auth_rules(pdu, {})
    else:
        with pytest.raises(AuthError, match="creator"):
            check_auth_rules(pdu, {})


@pytest.mark.parametrize(
    ("extra", "ok"),
    [
        ([BOB, CAROL], True),
        ([], True),
        ([BOB, "not-a-user"], False),
        ([BOB, 5], False),
        (BOB, False),
        (["@bob"], False),
    ],
)
def test_v12_additional_creators_validation(extra: object, ok: bool) -> None:
    room = Room("12", create_content={"additional_creators": extra})
    if ok:
        check_auth_rules(room.create, {})
    else:
        with pytest.raises(AuthError, match="additional_creators"):
            check_auth_rules(room.create, {})


def test_additional_creators_not_validated_before_v12() -> None:
    room = Room("11", create_content={"additional_creators": "junk"})
    check_auth_rules(room.create, {})


# ---- auth_events list (rule 2, v12 rules 2 and 3) --------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_duplicate_auth_event_keys_rejected(version: str) -> None:
    room = standard_room(version)
    old_pl = room.state[("m.room.power_levels", "")]
    new_pl = room.send("m.room.power_levels", ALICE, dict(old_pl.content, ban=60), "")
    msg = room.make("m.room.message", BOB, {"body": "x"})
    dup = room.make(
        "m.room.message", BOB, {"body": "x"}, auth=[*msg.auth_event_ids(), old_pl.event_id]
    )
    auth = room.auth_map(msg)
    assert auth[("m.room.power_levels", "")] is new_pl
    room.check(msg)
    with pytest.raises(AuthError, match="two events"):
        check_auth_rules(dup, {**auth, ("x", "old"): old_pl})
    # A map built from the cited list keeps one of the pair; the other reads as missing.
    with pytest.raises(AuthError, match="duplicates another"):
        check_auth_rules(dup, auth)


@pytest.mark.parametrize("version", ALL)
def test_auth_event_not_selected_rejected(version: str) -> None:
    room = standard_room(version)
    msg = room.make("m.room.message", BOB, {"body": "x"})
    join_rules = room.state[("m.room.join_rules", "")]
    extra = room.make(
        "m.room.message", BOB, {"body": "x"}, auth=[*msg.auth_event_ids(), join_rules.event_id]
    )
    room.check(msg)
    rejects(room, extra, "does not need")


@pytest.mark.parametrize("version", ALL)
def test_rejected_auth_event_rejected(version: str) -> None:
    room = standard_room(version)
    room.add(room.make("m.room.member", BOB, {"membership": "join"}, BOB, rejected="bad"))
    rejects(room, room.make("m.room.message", BOB, {"body": "x"}), "rejected")


@pytest.mark.parametrize("version", ALL)
def test_missing_auth_event_rejected(version: str) -> None:
    room = standard_room(version)
    msg = room.make("m.room.message", BOB, {"body": "x"}, auth=["$nowhere"])
    rejects(room, msg, "missing")


@pytest.mark.parametrize("version", versions(lambda rv: not rv.room_id_from_create_event))
def test_create_must_be_cited_before_v12(version: str) -> None:
    room = standard_room(version)
    msg = room.make("m.room.message", BOB, {"body": "x"})
    no_create = [i for i in msg.auth_event_ids() if i != room.create.event_id]
    rejects(room, room.make("m.room.message", BOB, {"body": "x"}, auth=no_create), "create")


def test_v12_create_must_not_be_cited() -> None:
    room = standard_room("12")
    msg = room.make("m.room.message", BOB, {"body": "x"})
    cited = room.make(
        "m.room.message", BOB, {"body": "x"}, auth=[*msg.auth_event_ids(), "$createroom"]
    )
    room.check(msg)
    rejects(room, cited, "does not need")


def test_v12_room_id_must_be_create_event_id() -> None:
    room = standard_room("12")
    msg = room.make("m.room.message", BOB, {"body": "x"}, room_id="!otherroom")
    rejects(room, msg, "room ID")


def test_v12_create_event_must_be_accepted() -> None:
    room = standard_room("12")
    msg = room.make("m.room.message", BOB, {"body": "x"})
    auth = room.auth_map(msg)
    check_auth_rules(msg, auth)
    rejected_create = type(room.create)(room.create.data, room.rv, "$createroom", "bad")
    with pytest.raises(AuthError, match="accepted"):
        check_auth_rules(msg, {**auth, ("m.room.create", ""): rejected_create})
    with pytest.raises(AuthError, match="accepted"):
        check_auth_rules(msg, {k: v for k, v in auth.items() if k[0] != "m.room.create"})


@pytest.mark.parametrize("version", ALL)
def test_auth_event_from_other_room_rejected(version: str) -> None:
    room = standard_room(version)
    other = room.make("m.room.member", BOB, {"membership": "join"}, BOB, room_id="!else:x")
    room.add(other)
    rejects(room, room.make("m.room.message", BOB, {"body": "x"}), "another room")


@pytest.mark.parametrize("version", ALL)
def test_against_state_without_selection_check(version: str) -> None:
    """Checking against the full state (e.g. the state before the event) is allowed."""
    room = standard_room(version)
    msg = room.make("m.room.message", BOB, {"body": "x"})
    check_auth_rules(msg, room.state, check_auth_event_selection=False)
    check_auth_rules(msg, room.state)  # only the cited events are used
    room.member(BOB, "leave")
    with pytest.raises(AuthError, match="not in the room"):
        check_auth_rules(msg, room.state, check_auth_event_selection=False)


@pytest.mark.parametrize("version", ALL)
def test_only_relevant_state_is_checked_for_room_id(version: str) -> None:
    room = standard_room(version)
    msg = room.make("m.room.message", BOB, {"body": "x"})
    room.add(room.make("m.room.topic", ALICE, {"topic": "t"}, "", room_id="!else:x"))
    check_auth_rules(msg, room.state, check_auth_event_selection=False)
    room.add(room.make("m.room.member", BOB, {"membership": "join"}, BOB, room_id="!else:x"))
    with pytest.raises(AuthError, match="another room"):
        check_auth_rules(msg, room.state, check_auth_event_selection=False)


# ---- m.federate ------------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_m_federate_false(version: str) -> None:
    room = Room(version, create_content={"m.federate": False})
    room.send("m.room.member", ALICE, {"membership": "join"}, ALICE)
    room.send("m.room.join_rules", ALICE, {"join_rule": "public"}, "")
    room.send("m.room.member", DAVE, {"membership": "join"}, DAVE)  # same server
    rejects(room, room.member_event(BOB, "join"), "federate")


# ---- m.room.aliases (v1-v5) ------------------------------------------------------------


@pytest.mark.parametrize("version", versions(lambda rv: rv.special_case_aliases_auth))
def test_aliases_special_case(version: str) -> None:
    room = standard_room(version)
    # Carol is not even in the room: only the state_key matters.
    room.check(room.make("m.room.aliases", CAROL, {"aliases": ["#a:c.example"]}, "c.example"))
    rejects(room, room.make("m.room.aliases", CAROL, {"aliases": []}, "a.example"), "server")
    rejects(room, room.make("m.room.aliases", CAROL, {"aliases": []}), "state_key")


@pytest.mark.parametrize("version", versions(lambda rv: not rv.special_case_aliases_auth))
def test_aliases_ordinary_state_from_v6(version: str) -> None:
    room = standard_room(version)
    room.check(room.make("m.room.aliases", ALICE, {"aliases": []}, "a.example"))
    rejects(room, room.make("m.room.aliases", CAROL, {"aliases": []}, "c.example"), "not in")
    rejects(room, room.make("m.room.aliases", BOB, {"aliases": []}, "b.example"), "too low")


# ---- m.room.member: join ---------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_creator_first_join(version: str) -> None:
    room = Room(version)
    room.check(room.member_event(ALICE, "join"))
    # Anyone else, or the creator later in the DAG, needs a join rule.
    rejects(room, room.member_event(BOB, "join"), "join rule")
    later = room.make(
        "m.room.member", ALICE, {"membership": "join"}, ALICE, prev=[room.create.event_id, "$x"]
    )
    rejects(room, later, "join rule")


def test_v12_additional_creator_has_no_first_join() -> None:
    room = Room("12", create_content={"additional_creators": [BOB]})
    room.check(room.member_event(ALICE, "join"))
    rejects(room, room.member_event(BOB, "join"), "join rule")


@pytest.mark.parametrize("version", ALL)
def test_join_public(version: str) -> None:
    room = standard_room(version)
    room.check(room.member_event(CAROL, "join"))
    rejects(room, room.member_event(CAROL, "join", sender=BOB), "another user")


@pytest.mark.parametrize("version", ALL)
def test_banned_cannot_join(version: str) -> None:
    room = standard_room(version)
    room.member(CAROL, "ban", sender=ALICE)
    rejects(room, room.member_event(CAROL, "join"), "banned")


@pytest.mark.parametrize("version", ALL)
def test_join_invite_only(version: str) -> None:
    room = standard_room(version, join_rule="invite")
    rejects(room, room.member_event(CAROL, "join"), "invite-only")
    room.member(CAROL, "invite", sender=ALICE)
    room.check(room.member_event(CAROL, "join"))
    room.check(room.member_event(BOB, "join"))  # already joined: a profile change


@pytest.mark.parametrize("version", ALL)
def test_join_knock_rule(version: str) -> None:
    room = standard_room(version, join_rule="knock")
    room.member(CAROL, "invite", sender=ALICE)
    if get_room_version(version).knock:
        room.check(room.member_event(CAROL, "join"))
        rejects(room, room.member_event(DAVE, "join"), "invite-only")
    else:
        rejects(room, room.member_event(CAROL, "join"), "join rule")


@pytest.mark.parametrize("version", ALL)
def test_join_without_join_rules(version: str) -> None:
    room = Room(version)
    room.send("m.room.member", ALICE, {"membership": "join"}, ALICE)
    rejects(room, room.member_event(BOB, "join"), "join rule")


RESTRICTED = [
    ("restricted", lambda rv: rv.restricted_join_rule),
    ("knock_restricted", lambda rv: rv.knock_restricted_join_rule),
]


def _authorised_join(room: Room, user: str, authoriser: str, server: str | None = None) -> Any:
    server = server or authoriser.split(":", 1)[1]
    sigs = {user.split(":", 1)[1]: {"ed25519:1": "c2ln"}, server: {"ed25519:1": "c2ln"}}
    return room.make(
        "m.room.member",
        user,
        {"membership": "join", "join_authorised_via_users_server": authoriser},
        user,
        signatures=sigs,
    )


@pytest.mark.parametrize(("rule", "supported"), RESTRICTED)
@pytest.mark.parametrize("version", ALL)
def test_restricted_join(version: str, rule: str, supported: Callable[[RoomVersion], bool]) -> None:
    room = standard_room(version, join_rule=rule)
    join = _authorised_join(room, CAROL, BOB)
    if not supported(room.rv):
        rejects(room, join, "join rule")
        return
    room.check(join)
    # No authoriser at all, or one who is not joined.
    rejects(room, room.member_event(CAROL, "join"), "authorised")
    rejects(room, _authorised_join(room, CAROL, DAVE), "authorised")
    # An invited user needs no authoriser.
    room.member(DAVE, "invite", sender=ALICE)
    room.check(room.member_event(DAVE, "join"))


@pytest.mark.parametrize("version", versions(lambda rv: rv.restricted_join_rule))
def test_restricted_join_authoriser_needs_invite_level(version: str) -> None:
    room = standard_room(version, join_rule="restricted", invite=50)
    rejects(room, _authorised_join(room, CAROL, BOB), "cannot invite")
    room.check(_authorised_join(room, CAROL, ALICE))


@pytest.mark.parametrize("version", versions(lambda rv: rv.restricted_join_rule))
def test_join_authorised_via_must_be_signed_by_its_server(version: str) -> None:
    room = standard_room(version, join_rule="restricted")
    unsigned = room.make(
        "m.room.member",
        CAROL,
        {"membership": "join", "join_authorised_via_users_server": BOB},
        CAROL,
    )
    rejects(room, unsigned, "signed")
    bad_id = _authorised_join(room, CAROL, "bob", server="b.example")
    rejects(room, bad_id, "signed")


def test_join_authorised_via_ignored_before_v8() -> None:
    room = standard_room("7")
    join = room.make(
        "m.room.member",
        CAROL,
        {"membership": "join", "join_authorised_via_users_server": BOB},
        CAROL,
    )
    room.check(join)  # public room; the key means nothing before v8


# ---- m.room.member: invite -------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_invite(version: str) -> None:
    room = standard_room(version)
    room.check(room.member_event(CAROL, "invite", sender=BOB))
    rejects(room, room.member_event(BOB, "invite", sender=ALICE), "already joined")
    rejects(room, room.member_event(DAVE, "invite", sender=CAROL), "not in the room")
    room.member(CAROL, "ban", sender=ALICE)
    rejects(room, room.member_event(CAROL, "invite", sender=BOB), "banned")


@pytest.mark.parametrize("version", ALL)
def test_invite_level(version: str) -> None:
    stringy = not get_room_version(version).integer_power_levels
    room = standard_room(version, invite="50" if stringy else 50)
    rejects(room, room.member_event(CAROL, "invite", sender=BOB), "invite level")
    room.check(room.member_event(CAROL, "invite", sender=ALICE))


class ThirdParty:
    """An identity server's key, an m.room.third_party_invite and matching invites."""

    def __init__(self, room: Room, token: str = "tok", sender: str = BOB) -> None:
        self.room = room
        self.key = SigningKey.generate()
        self.token = token
        public = encode_base64(bytes(self.key.verify_key))
        content = {
            "display_name": "c...@e",
            "key_validity_url": "https://is/v",
            "public_key": public,
        }
        self.event = room.add(room.make("m.room.third_party_invite", sender, content, token))

    def signed(self, mxid: str = CAROL, key: SigningKey | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"mxid": mxid, "token": self.token}
        sig = (key or self.key).sign(encode_canonical_json(body)).signature
        return {**body, "signatures": {"is.example": {"ed25519:0": encode_base64(sig)}}}

    def invite(self, third_party: object, target: str = CAROL, sender: str = BOB) -> Any:
        content = {"membership": "invite", "third_party_invite": third_party}
        return self.room.make("m.room.member", sender, content, target)


@pytest.mark.parametrize("version", ALL)
def test_third_party_invite_member(version: str) -> None:
    room = standard_room(version)
    tp = ThirdParty(room)
    room.check(tp.invite({"display_name": "c", "signed": tp.signed()}))
    rejects(room, tp.invite({"display_name": "c"}), "no signed")
    rejects(room, tp.invite({"signed": {"mxid": CAROL}}), "mxid or token")
    rejects(room, tp.invite({"signed": tp.signed(mxid=DAVE)}), "not the invitee")
    rejects(room, tp.invite({"signed": tp.signed()}, sender=ALICE), "someone other")
    rejects(room, tp.invite({"signed": tp.signed(key=SigningKey.generate())}), "not signed")
    forged = dict(tp.signed(), mxid=DAVE)
    rejects(room, tp.invite({"signed": forged}, target=DAVE), "not signed")
    room.member(CAROL, "ban", sender=ALICE)
    rejects(room, tp.invite({"signed": tp.signed()}), "banned")


@pytest.mark.parametrize("version", ALL)
def test_third_party_invite_needs_matching_token(version: str) -> None:
    room = standard_room(version)
    tp = ThirdParty(room, token="other")
    tp.token = "tok"
    rejects(room, tp.invite({"signed": tp.signed()}), "no m.room.third_party_invite")


@pytest.mark.parametrize("version", ["1", "12"])
def test_third_party_invite_public_keys_list(version: str) -> None:
    room = standard_room(version)
    key = SigningKey.generate()
    content = {
        "display_name": "c",
        "key_validity_url": "https://is/v",
        "public_key": "not base64!",
        "public_keys": [{"public_key": encode_base64_urlsafe(bytes(key.verify_key))}],
    }
    room.add(room.make("m.room.third_party_invite", BOB, content, "tok"))
    body = {"mxid": CAROL, "token": "tok"}
    sig = encode_base64(key.sign(encode_canonical_json(body)).signature)
    signed = {**body, "signatures": {"is.example": {"ed25519:0": sig}}}
    invite = room.make(
        "m.room.member",
        BOB,
        {"membership": "invite", "third_party_invite": {"signed": signed}},
        CAROL,
    )
    room.check(invite)


# ---- m.room.member: leave --------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_leave_self(version: str) -> None:
    room = standard_room(version)
    room.check(room.member_event(BOB, "leave"))
    rejects(room, room.member_event(CAROL, "leave"), "not in")
    room.member(CAROL, "invite", sender=ALICE)
    room.check(room.member_event(CAROL, "leave"))  # rejecting an invite
    room.member(DAVE, "ban", sender=ALICE)
    rejects(room, room.member_event(DAVE, "leave"), "not in")


@pytest.mark.parametrize("version", ALL)
def test_leave_retracts_knock_from_v7(version: str) -> None:
    room = standard_room(version)
    room.member(CAROL, "knock")
    if room.rv.knock:
        room.check(room.member_event(CAROL, "leave"))
    else:
        rejects(room, room.member_event(CAROL, "leave"), "not in")


@pytest.mark.parametrize("version", ALL)
def test_kick(version: str) -> None:
    room = standard_room(version, users={DAVE: 50})
    room.member(DAVE, "join")
    room.check(room.member_event(BOB, "leave", sender=ALICE))
    room.check(room.member_event(BOB, "leave", sender=DAVE))
    rejects(room, room.member_event(DAVE, "leave", sender=BOB), "kick level")
    rejects(room, room.member_event(BOB, "leave", sender=CAROL), "not in the room")


@pytest.mark.parametrize("version", ALL)
def test_kick_needs_more_power_than_target(version: str) -> None:
    room = standard_room(version, users={BOB: 50, DAVE: 50})
    room.member(DAVE, "join")
    rejects(room, room.member_event(BOB, "leave", sender=DAVE), "equal or higher")


@pytest.mark.parametrize("version", ALL)
def test_unban_needs_ban_level(version: str) -> None:
    room = standard_room(version, users={DAVE: 50}, ban=75)
    room.member(DAVE, "join")
    room.member(CAROL, "ban", sender=ALICE)
    rejects(room, room.member_event(CAROL, "leave", sender=DAVE), "ban level")
    room.check(room.member_event(CAROL, "leave", sender=ALICE))


# ---- m.room.member: ban ----------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_ban(version: str) -> None:
    room = standard_room(version, users={DAVE: 50, BOB: 50}, ban=50)
    room.member(DAVE, "join")
    room.check(room.member_event(CAROL, "ban", sender=DAVE))  # need not be in the room
    room.check(room.member_event(BOB, "ban", sender=ALICE))
    rejects(room, room.member_event(BOB, "ban", sender=DAVE), "equal or higher")
    rejects(room, room.member_event(ALICE, "ban", sender=CAROL), "not in the room")
    room.member(CAROL, "join")
    rejects(room, room.member_event(BOB, "ban", sender=CAROL), "ban level")


# ---- m.room.member: knock --------------------------------------------------------------


@pytest.mark.parametrize("rule", ["knock", "knock_restricted"])
@pytest.mark.parametrize("version", ALL)
def test_knock(version: str, rule: str) -> None:
    room = standard_room(version, join_rule=rule)
    knock = room.member_event(CAROL, "knock")
    rv = room.rv
    if not rv.knock:
        rejects(room, knock, "unknown membership")
        return
    if rule == "knock_restricted" and not rv.knock_restricted_join_rule:
        rejects(room, knock, "does not allow knocking")
        return
    room.check(knock)
    rejects(room, room.member_event(CAROL, "knock", sender=BOB), "behalf")
    rejects(room, room.member_event(BOB, "knock"), "joined")
    room.member(CAROL, "invite", sender=ALICE)
    rejects(room, room.member_event(CAROL, "knock"), "invited")
    room.member(DAVE, "ban", sender=ALICE)
    rejects(room, room.member_event(DAVE, "knock"), "banned")


@pytest.mark.parametrize("version", versions(lambda rv: rv.knock))
def test_knock_needs_knock_rule(version: str) -> None:
    for rule in ("public", "invite", "restricted"):
        room = standard_room(version, join_rule=rule)
        rejects(room, room.member_event(CAROL, "knock"), "does not allow knocking")


# ---- m.room.member: malformed ----------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_member_malformed(version: str) -> None:
    room = standard_room(version)
    rejects(room, room.make("m.room.member", CAROL, {"membership": "join"}), "state_key")
    rejects(room, room.make("m.room.member", CAROL, {}, CAROL), "membership")
    rejects(room, room.member_event(CAROL, "dance"), "unknown membership")


# ---- rules 6-9: sender joined, third-party invite, required level, @-state keys ---------


@pytest.mark.parametrize("version", ALL)
def test_sender_must_be_joined(version: str) -> None:
    room = standard_room(version)
    room.check(room.make("m.room.message", BOB, {"body": "x"}))
    rejects(room, room.make("m.room.message", CAROL, {"body": "x"}), "not in the room")
    room.member(CAROL, "invite", sender=ALICE)
    rejects(room, room.make("m.room.message", CAROL, {"body": "x"}), "not in the room")


@pytest.mark.parametrize("version", ALL)
def test_third_party_invite_event(version: str) -> None:
    room = standard_room(version, invite=10, events={"m.room.third_party_invite": 100})
    content = {"display_name": "x", "key_validity_url": "u", "public_key": "k"}
    # Needs only the invite level: the events table is not consulted.
    room.check(room.make("m.room.third_party_invite", ALICE, content, "t"))
    rejects(room, room.make("m.room.third_party_invite", BOB, content, "t"), "invite level")


@pytest.mark.parametrize("version", ALL)
def test_required_power_level(version: str) -> None:
    room = standard_room(version, events={"m.room.topic": 10, "m.sticker": 5}, events_default=1)
    rejects(room, room.make("m.room.message", BOB, {}), "too low")
    rejects(room, room.make("m.sticker", BOB, {}), "too low")
    rejects(room, room.make("m.room.name", BOB, {"name": "n"}, ""), "too low")
    rejects(room, room.make("m.room.topic", BOB, {"topic": "n"}, ""), "too low")
    room.check(room.make("m.room.topic", ALICE, {"topic": "n"}, ""))
    room.check(room.make("m.room.message", ALICE, {}))


@pytest.mark.parametrize("version", ALL)
def test_no_power_levels_event_defaults(version: str) -> None:
    room = Room(version)
    room.send("m.room.member", ALICE, {"membership": "join"}, ALICE)
    room.send("m.room.join_rules", ALICE, {"join_rule": "public"}, "")
    room.member(BOB, "join")
    room.check(room.make("m.room.message", BOB, {}))  # events_default 0
    rejects(room, room.make("m.room.name", BOB, {"name": "n"}, ""), "too low")  # state 50
    room.check(room.make("m.room.name", ALICE, {"name": "n"}, ""))  # creator 100 / inf


@pytest.mark.parametrize("version", ALL)
def test_user_state_key_must_be_sender(version: str) -> None:
    room = standard_room(version, state_default=0)
    room.check(room.make("org.example.state", BOB, {}, BOB))
    room.check(room.make("org.example.state", BOB, {}, "plain"))
    rejects(room, room.make("org.example.state", BOB, {}, ALICE), "another user")
    rejects(room, room.make("org.example.state", ALICE, {}, BOB), "another user")


# ---- rule 10: m.room.power_levels ------------------------------------------------------


def _pl(room: Room, sender: str, content: dict[str, Any]) -> Any:
    return room.make("m.room.power_levels", sender, content, "")


@pytest.mark.parametrize("version", ALL)
def test_first_power_levels_event_is_free(version: str) -> None:
    room = Room(version)
    room.send("m.room.member", ALICE, {"membership": "join"}, ALICE)
    room.check(_pl(room, ALICE, creator_pl(room, {BOB: 100}, ban=0)))


@pytest.mark.parametrize("version", ALL)
def test_power_levels_users_shape(version: str) -> None:
    room = standard_room(version)
    rejects(room, _pl(room, ALICE, {"users": []}), "users")
    rejects(room, _pl(room, ALICE, creator_pl(room, {"bob": 1})), "user ID")
    rejects(room, _pl(room, ALICE, creator_pl(room, {BOB: "x"})), "users")
    rejects(room, _pl(room, ALICE, creator_pl(room, {BOB: True})), "users")
    room.check(_pl(room, ALICE, {k: v for k, v in creator_pl(room).items() if k != "users"}))


@pytest.mark.parametrize("version", ALL)
def test_power_levels_string_values(version: str) -> None:
    room = standard_room(version)
    stringy = _pl(room, ALICE, creator_pl(room, {BOB: " +010 "}))
    named = _pl(room, ALICE, creator_pl(room, kick="40"))
    table = _pl(room, ALICE, creator_pl(room, events={"m.room.name": "40"}))
    if room.rv.integer_power_levels:
        rejects(room, stringy, "users")
        rejects(room, named, "not an integer")
        rejects(room, table, "not an object of integers")
    else:
        for pdu in (stringy, named, table):
            room.check(pdu)


@pytest.mark.parametrize("version", ALL)
def test_power_levels_float_values(version: str) -> None:
    room = standard_room(version)
    floaty = _pl(room, ALICE, creator_pl(room, {BOB: 50.57}))
    if room.rv.strict_canonical_json:
        rejects(room, floaty, "users")
    else:
        room.check(floaty)
        rejects(room, _pl(room, ALICE, creator_pl(room, ban=float("inf"))), "non-finite")


@pytest.mark.parametrize("version", versions(lambda rv: rv.integer_power_levels))
def test_power_levels_v10_tables_must_be_objects(version: str) -> None:
    room = standard_room(version)
    rejects(room, _pl(room, ALICE, creator_pl(room, notifications=[])), "notifications")
    room.check(_pl(room, ALICE, creator_pl(room, notifications={"room": 20})))


@pytest.mark.parametrize("version", ALL)
def test_power_levels_named_levels(version: str) -> None:
    room = standard_room(version, users={BOB: 50}, kick=60)
    base = creator_pl(room, {BOB: 50}, kick=60)
    rejects(room, _pl(room, BOB, {**base, "ban": 60}), "above your own")  # new > own
    rejects(room, _pl(room, BOB, {**base, "kick": 40}), "current level")  # current > own
    rejects(room, _pl(room, BOB, {k: v for k, v in base.items() if k != "kick"}), "current")
    room.check(_pl(room, BOB, {**base, "invite": 50}))
    room.check(_pl(room, BOB, {**base, "kick": 60}))  # unchanged


@pytest.mark.parametrize("version", versions(lambda rv: not rv.integer_power_levels))
def test_power_levels_same_value_as_string_is_unchanged(version: str) -> None:
    room = standard_room(version, users={BOB: 50}, kick=60)
    room.check(_pl(room, BOB, creator_pl(room, {BOB: 50}, kick="60")))


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("table", ["events", "notifications"])
def test_power_levels_tables(version: str, table: str) -> None:
    room = standard_room(version, users={BOB: 50}, **{table: {"a": 60}})
    base = creator_pl(room, {BOB: 50}, **{table: {"a": 60}})
    checked = table == "events" or room.rv.limit_notifications_power_levels
    raise_b = _pl(room, BOB, {**base, table: {"a": 60, "b": 70}})
    lower_a = _pl(room, BOB, {**base, table: {"a": 10}})
    remove_a = _pl(room, BOB, {**base, table: {}})
    if checked:
        rejects(room, raise_b, "above your own")
        rejects(room, lower_a, "current level")
        rejects(room, remove_a, "current level")
    else:
        for pdu in (raise_b, lower_a, remove_a):
            room.check(pdu)
    room.check(_pl(room, BOB, {**base, table: {"a": 60, "b": 50}}))


@pytest.mark.parametrize("version", ALL)
def test_power_levels_users(version: str) -> None:
    room = standard_room(version, users={BOB: 50, DAVE: 50, CAROL: 10})
    base = creator_pl(room, {BOB: 50, DAVE: 50, CAROL: 10})
    room.check(_pl(room, BOB, {**base, "users": {**base["users"], BOB: 20}}))  # self-demotion
    room.check(_pl(room, BOB, {**base, "users": {**base["users"], CAROL: 50}}))  # up to own
    room.check(_pl(room, BOB, {**base, "users": {**base["users"], "@new:x": 50}}))
    rejects(room, _pl(room, BOB, {**base, "users": {**base["users"], CAROL: 51}}), "raise")
    rejects(room, _pl(room, BOB, {**base, "users": {**base["users"], BOB: 51}}), "raise")
    rejects(room, _pl(room, BOB, {**base, "users": {**base["users"], DAVE: 0}}), "not below")
    gone = {k: v for k, v in base["users"].items() if k != DAVE}
    rejects(room, _pl(room, BOB, {**base, "users": gone}), "not below")


def test_v12_creators_cannot_be_listed() -> None:
    room = Room("12", create_content={"additional_creators": [BOB]})
    room.send("m.room.member", ALICE, {"membership": "join"}, ALICE)
    rejects(room, _pl(room, ALICE, {"users": {ALICE: 100}}), "creators")
    rejects(room, _pl(room, ALICE, {"users": {BOB: 100}}), "creators")
    room.check(_pl(room, ALICE, {"users": {CAROL: 100}}))


@pytest.mark.parametrize("version", ["11", "12"])
def test_creator_power(version: str) -> None:
    """v12 creators are infinitely powerful; before v12 a creator is an ordinary 100."""
    room = standard_room(version, users={BOB: 100})
    demote_alice = _pl(room, BOB, {"users": {BOB: 100, ALICE: 0}})
    kick_alice = room.member_event(ALICE, "leave", sender=BOB)
    kick_bob = room.member_event(BOB, "leave", sender=ALICE)
    if room.rv.privileged_creators:
        rejects(room, demote_alice, "creators")
        rejects(room, kick_alice, "equal or higher")
        room.check(kick_bob)
        room.check(_pl(room, ALICE, {"users": {BOB: 0}, "ban": 10**15}))
    else:
        rejects(room, demote_alice, "not below")
        rejects(room, kick_alice, "equal or higher")
        rejects(room, kick_bob, "equal or higher")


def test_v12_additional_creators_are_peers() -> None:
    room = Room("12", create_content={"additional_creators": [BOB]})
    room.send("m.room.member", ALICE, {"membership": "join"}, ALICE)
    room.send("m.room.join_rules", ALICE, {"join_rule": "public"}, "")
    room.send("m.room.member", BOB, {"membership": "join"}, BOB)
    room.send("m.room.member", CAROL, {"membership": "join"}, CAROL)
    room.check(room.member_event(CAROL, "ban", sender=BOB))
    rejects(room, room.member_event(ALICE, "ban", sender=BOB), "equal or higher")


# ---- rule 11 (v1-v2): m.room.redaction -------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_redaction(version: str) -> None:
    room = standard_room(version)
    content: dict[str, Any] = {}
    top: dict[str, Any] = {}
    if room.rv.redacts_in_content:
        content["redacts"] = "$1:a.example"
    else:
        top["redacts"] = "$1:a.example"
    by_bob = room.make("m.room.redaction", BOB, content, **top)
    room.check(room.make("m.room.redaction", ALICE, content, **top))
    if version in ("1", "2"):
        rejects(room, by_bob, "own server")
        own = room.make("m.room.redaction", BOB, {}, redacts="$9:b.example")
        room.check(own)
    else:
        room.check(by_bob)  # the redaction algorithm, not auth, checks the redact level


@pytest.mark.parametrize("version", ALL)
def test_redaction_event_level(version: str) -> None:
    room = standard_room(version, events={"m.room.redaction": 10})
    rejects(room, room.make("m.room.redaction", BOB, {}, redacts="$9:b.example"), "too low")


# ---- auth_types_for_event --------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_auth_types_for_message(version: str) -> None:
    rv = get_room_version(version)
    got = auth_types_for_event("m.room.message", BOB, None, {}, rv)
    base = [("m.room.power_levels", ""), ("m.room.member", BOB)]
    assert got == (base if rv.room_id_from_create_event else [("m.room.create", ""), *base])
    assert auth_types_for_event("m.room.create", BOB, "", {}, rv) == []


@pytest.mark.parametrize("version", ALL)
def test_auth_types_for_members(version: str) -> None:
    rv = get_room_version(version)

    def keys(sender: str, content: dict[str, Any], target: str = CAROL) -> set[tuple[str, str]]:
        got = auth_types_for_event("m.room.member", sender, target, content, rv)
        assert len(got) == len(set(got))
        return set(got) - {("m.room.create", ""), ("m.room.power_levels", "")}

    jr = ("m.room.join_rules", "")
    assert keys(CAROL, {"membership": "join"}) == {("m.room.member", CAROL), jr}
    assert keys(BOB, {"membership": "ban"}) == {("m.room.member", BOB), ("m.room.member", CAROL)}
    assert jr in keys(CAROL, {"membership": "knock"})
    tp = {"membership": "invite", "third_party_invite": {"signed": {"token": "t"}}}
    assert ("m.room.third_party_invite", "t") in keys(BOB, tp)
    assert not any(
        k[0] == "m.room.third_party_invite"
        for k in keys(BOB, {"membership": "invite", "third_party_invite": {}})
    )
    via = {"membership": "join", "join_authorised_via_users_server": DAVE}
    assert (("m.room.member", DAVE) in keys(CAROL, via)) == rv.restricted_join_rule
    assert ("m.room.member", DAVE) not in keys(CAROL, {**via, "membership": "leave"})


@pytest.mark.parametrize("version", ["1", "12"])
def test_non_state_auth_event_rejected(version: str) -> None:
    room = standard_room(version)
    msg = room.send("m.room.message", BOB, {"body": "x"})
    cites = room.make("m.room.message", BOB, {}, auth=[msg.event_id])
    with pytest.raises(AuthError, match="not a state event"):
        check_auth_rules(cites, {("m.room.create", ""): room.create, ("m.room.message", ""): msg})


# ---- hs.core.power_levels --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "level"),
    [
        (50, 50),
        (-3, -3),
        ("100", 100),
        ("000100", 100),
        ("+100", 100),
        (" -100 ", -100),
        ("\t7\n", 7),
        (51146.98, 51146),
        (5.114698e4, 51146),
        (-0.5, 0),
        ("1_0", None),
        ("1.5", None),
        ("++1", None),
        ("", None),
        ("\u0661", None),  # a non-ASCII digit
        (True, None),
        (None, None),
        ([1], None),
        (float("nan"), None),
        (float("inf"), None),
    ],
)
def test_parse_power_level(value: object, level: int | None) -> None:
    assert parse_power_level(value) == level


@pytest.mark.parametrize("version", ALL)
def test_is_valid_power_level(version: str) -> None:
    rv = get_room_version(version)
    assert is_valid_power_level(10, rv)
    assert not is_valid_power_level(False, rv)
    assert not is_valid_power_level("x", rv)
    assert is_valid_power_level(" 10", rv) == (not rv.integer_power_levels)
    assert is_valid_power_level(10.5, rv) == (not rv.strict_canonical_json)


def test_named_and_event_levels() -> None:
    assert get_named_level("ban", None, 50) == 50
    assert get_named_level("ban", {"ban": "20"}, 50) == 20
    assert get_named_level("ban", {"ban": "x"}, 50) == 50
    content = {"events": {"m.room.name": 5}, "state_default": 40, "events_default": 3}
    assert get_event_power_level("m.room.name", "", content) == 5
    assert get_event_power_level("m.room.topic", "", content) == 40
    assert get_event_power_level("m.room.message", None, content) == 3
    assert get_event_power_level("m.room.topic", "", None) == 50
    assert get_event_power_level("m.room.message", None, None) == 0
    assert get_notification_level("room", None) == 50
    assert get_notification_level("room", {"notifications": {"room": 9}}) == 9


@pytest.mark.parametrize("version", ALL)
def test_get_room_creators(version: str) -> None:
    room = Room(version, create_content={"additional_creators": [BOB, 3]})
    creators = get_room_creators(room.create)
    assert creators == ({ALICE, BOB} if room.rv.privileged_creators else {ALICE})


@pytest.mark.parametrize("version", ALL)
def test_get_user_power_level(version: str) -> None:
    room = Room(version)
    creator_level = INFINITE_POWER if room.rv.privileged_creators else 100
    assert get_user_power_level(ALICE, room.state) == creator_level
    assert get_user_power_level(BOB, room.state) == 0
    assert get_user_power_level(BOB, {}) == 0
    room.member(ALICE, "join")
    room.add(room.make("m.room.power_levels", ALICE, {"users": {BOB: 7}, "users_default": 3}, ""))
    # With a power levels event a pre-v12 creator is only what it says.
    assert get_user_power_level(ALICE, room.state) == (creator_level if version == "12" else 3)
    assert get_user_power_level(BOB, room.state) == 7
    assert get_user_power_level(CAROL, room.state) == 3


# ---- robustness: malformed content is rejected or allowed, never a crash ----------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.sampled_from(USERS),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_member_content = st.fixed_dictionaries(
    {},
    optional={
        "membership": st.sampled_from(["join", "invite", "leave", "ban", "knock", 1]),
        "third_party_invite": _json | st.fixed_dictionaries({"signed": _json}),
        "join_authorised_via_users_server": _json,
    },
)
_pl_content = st.dictionaries(
    st.sampled_from(["users", "events", "notifications", "ban", "kick", "users_default"]),
    _json | st.dictionaries(st.sampled_from(USERS), _json, max_size=3),
    max_size=4,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    version=st.sampled_from(ALL),
    sender=st.sampled_from(USERS),
    target=st.sampled_from(USERS),
    member=_member_content,
    pl=_pl_content,
)
def test_malformed_content_never_crashes(
    version: str, sender: str, target: str, member: dict[str, Any], pl: dict[str, Any]
) -> None:
    room = standard_room(version, join_rule="knock_restricted")
    for pdu in (
        room.make("m.room.member", sender, member, target),
        room.make("m.room.power_levels", sender, pl, ""),
    ):
        try:
            room.check(pdu)
        except AuthError as exc:
            assert exc.reason
