"""Content/reference hashes, event and room IDs, and checks on received events."""

from __future__ import annotations

import base64
import copy
import hashlib
import re
from typing import Any

import canonicaljson
import pytest
import signedjson.key
import signedjson.sign
from bench.corpus import event_corpus
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import twin_params, twins
from hs._native._errors import CanonicalJSONError, EventHashError
from hs.core import events
from hs.core.keys import decode_signing_key_base64, get_verify_key, static_key_lookup
from hs.core.room_versions import KNOWN_ROOM_VERSIONS, get_room_version
from hs.core.signing import SignatureVerifyError, sign_json

SEED = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"
FAR_FUTURE = 2**62


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def independent_reference_hash(event: dict[str, Any], rules: int) -> bytes:
    """The reference hash via canonicaljson + hashlib (redaction from the pure twin)."""
    from hs._native import _event_hash_py

    redacted = _event_hash_py.redact(event, rules)
    redacted.pop("signatures", None)
    redacted.pop("unsigned", None)
    return hashlib.sha256(canonicaljson.encode_canonical_json(redacted)).digest()


def independent_content_hash(event: dict[str, Any]) -> bytes:
    stripped = {k: v for k, v in event.items() if k not in ("unsigned", "signatures", "hashes")}
    return hashlib.sha256(canonicaljson.encode_canonical_json(stripped)).digest()


# ---- spec vectors ----------------------------------------------------------------------


def test_spec_event_signing_vectors(spec_vectors: list[dict[str, Any]]) -> None:
    cases = [v for v in spec_vectors if v["category"] == "event_signing"]
    assert cases
    for case in cases:
        data = case["input"]
        version = data["key_id"].split(":", 1)[1]
        key = decode_signing_key_base64("ed25519", version, data["signing_key_seed_base64"])
        event = copy.deepcopy(data["event"])
        # The vectors were made with the v1-v10 redaction algorithm (origin protected).
        out = events.add_hashes_and_sign(event, "10", data["server_name"], key)
        assert out == case["expected"], case["name"]
        assert events.compute_content_hash(data["event"]) == case["expected"]["hashes"]["sha256"]


@pytest.mark.parametrize("impl", twin_params("event_hash"))
def test_spec_content_hashes_on_twins(impl: Any, spec_vectors: list[dict[str, Any]]) -> None:
    for case in (v for v in spec_vectors if v["category"] == "event_signing"):
        digest = impl.content_hash(case["input"]["event"])
        assert _b64(digest) == case["expected"]["hashes"]["sha256"]


# ---- twins -----------------------------------------------------------------------------

CORPUS = event_corpus(60)


@pytest.mark.parametrize("impl", twin_params("event_hash"))
@pytest.mark.parametrize("rules", [1, 6, 8, 9, 11])
def test_hashes_match_canonicaljson_and_hashlib(impl: Any, rules: int) -> None:
    results = impl.hash_events(CORPUS, rules)
    assert len(results) == len(CORPUS)
    for event, (chash, rhash, signed) in zip(CORPUS, results, strict=True):
        assert chash == independent_content_hash(event)
        assert rhash == independent_reference_hash(event, rules)
        assert hashlib.sha256(signed).digest() == rhash
        assert impl.hash_event(event, rules) == (chash, rhash, signed)
        assert impl.content_hash(event) == chash
        assert impl.reference_hash(event, rules) == rhash


@pytest.mark.parametrize("impl", twin_params("event_hash"))
def test_hash_errors_are_typed(impl: Any) -> None:
    with pytest.raises(EventHashError):
        impl.hash_event([], 11)
    with pytest.raises(EventHashError):
        impl.content_hash("event")
    with pytest.raises(EventHashError):
        impl.hash_events([{}, None], 11)
    with pytest.raises(EventHashError):
        impl.hash_events([], 5)
    with pytest.raises(EventHashError):
        impl.reference_hash({}, "11")
    with pytest.raises(CanonicalJSONError):
        impl.hash_event({"content": {"x": 1.5}}, 11)
    with pytest.raises(CanonicalJSONError):  # hashes is outside the content hash only
        impl.hash_event({"hashes": {"sha256": 2**60}}, 11)
    with pytest.raises(CanonicalJSONError):
        impl.content_hash({"content": {1: "non-string key"}})
    # Floats in parts the hashes leave out are fine.
    assert impl.hash_event({"unsigned": {"x": 1.5}}, 11)


_scalars = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text()
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
_events = st.dictionaries(
    st.sampled_from(
        ["type", "content", "sender", "hashes", "signatures", "unsigned", "origin", "depth",
         "event_id", "state_key", "prev_state", "membership", "redacts", "extra"]
    ),
    _json,
) | st.builds(
    lambda t, c: {"type": t, "content": c},
    st.sampled_from(["m.room.member", "m.room.create", "m.room.power_levels", "m.room.redaction"]),
    st.dictionaries(st.sampled_from(["membership", "users", "invite", "redacts", "a"]), _json),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(event=_events, rules=st.sampled_from([1, 6, 8, 9, 11]))
def test_twins_agree_on_random_events(event: dict[str, Any], rules: int) -> None:
    results = [impl.hash_event(event, rules) for impl in twins("event_hash")]
    assert all(r == results[0] for r in results)
    assert results[0][0] == independent_content_hash(event)


@settings(max_examples=100, deadline=None)
@given(value=st.floats(allow_nan=True) | st.integers(min_value=2**53))
def test_twins_agree_on_errors(value: Any) -> None:
    for impl in twins("event_hash"):
        with pytest.raises(CanonicalJSONError):
            impl.hash_event({"content": {"v": value}}, 11)


# ---- event IDs and room IDs ------------------------------------------------------------

ID_EVENT: dict[str, Any] = {
    "type": "m.room.message",
    "room_id": "!room:example.org",
    "sender": "@alice:example.org",
    "origin_server_ts": 1_700_000_000_000,
    "depth": 4,
    "prev_events": [],
    "auth_events": [],
    "content": {"body": "hello"},
    "hashes": {"sha256": "abc"},
}


@pytest.mark.parametrize("version", sorted(KNOWN_ROOM_VERSIONS, key=int))
def test_event_id_formats(version: str) -> None:
    rv = get_room_version(version)
    if int(version) <= 2:
        event = {**ID_EVENT, "event_id": "$abc:example.org"}
        assert events.compute_event_id(event, version) == "$abc:example.org"
        with pytest.raises(EventHashError):
            events.compute_event_id(ID_EVENT, version)
        return
    digest = independent_reference_hash(ID_EVENT, int(rv.redaction_rules))
    expected = base64.b64encode(digest) if int(version) == 3 else base64.urlsafe_b64encode(digest)
    event_id = events.compute_event_id(ID_EVENT, version)
    assert event_id == "$" + expected.decode().rstrip("=")
    assert event_id == events.compute_event_id(ID_EVENT, rv)
    assert len(event_id) == 44


def test_v3_and_v4_differ_only_in_alphabet() -> None:
    # Find an event whose hash has a '+' or '/' in standard base64.
    for n in range(200):
        event = {**ID_EVENT, "depth": n}
        v3 = events.compute_event_id(event, "3")
        if "+" in v3 or "/" in v3:
            break
    else:
        pytest.fail("no hash with + or / found")
    v4 = events.compute_event_id(event, "4")
    assert v4 == v3.replace("+", "-").replace("/", "_")
    assert "+" not in v4 and "/" not in v4


def test_event_id_ignores_unsigned_and_signatures_and_redactable_keys() -> None:
    base = events.compute_event_id(ID_EVENT, "11")
    changed = {**ID_EVENT, "unsigned": {"age": 5}, "signatures": {"x": {"ed25519:a": "s"}}}
    assert events.compute_event_id(changed, "11") == base
    # The body is redactable: the reference hash only sees it through the content hash.
    assert events.compute_event_id({**ID_EVENT, "content": {"body": "bye"}}, "11") == base
    assert events.compute_event_id({**ID_EVENT, "hashes": {"sha256": "x"}}, "11") != base


def test_make_event_id_v1() -> None:
    first = events.make_event_id_v1("example.org:8448")
    assert re.fullmatch(r"\$[A-Za-z0-9]{18}:example\.org:8448", first)
    assert first != events.make_event_id_v1("example.org:8448")


def test_compute_room_id_v12() -> None:
    create = {
        "type": "m.room.create",
        "state_key": "",
        "sender": "@creator:example.org",
        "origin_server_ts": 1_700_000_000_000,
        "depth": 1,
        "prev_events": [],
        "auth_events": [],
        "content": {"room_version": "12", "additional_creators": ["@b:example.org"]},
        "hashes": {"sha256": "x"},
    }
    room_id = events.compute_room_id(create)
    assert room_id == "!" + events.compute_event_id(create, "12")[1:]
    assert ":" not in room_id and len(room_id) == 44
    # v11+ create events keep all content, so it is part of the room ID.
    other = {**create, "content": {"room_version": "12"}}
    assert events.compute_room_id(other) != room_id
    with pytest.raises(EventHashError):
        events.compute_room_id(create, "11")


# ---- receiving events ------------------------------------------------------------------

ORIGIN = "origin.example"
KEY = decode_signing_key_base64("ed25519", "1", SEED)
OTHER_KEY = signedjson.key.generate_signing_key("2")
LOOKUP = static_key_lookup({ORIGIN: {"ed25519:1": (get_verify_key(KEY), FAR_FUTURE)}})


def make_event(version: str, **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "m.room.message",
        "room_id": f"!room:{ORIGIN}",
        "sender": f"@alice:{ORIGIN}",
        "origin_server_ts": 1_700_000_000_000,
        "depth": 5,
        "prev_events": [],
        "auth_events": [],
        "content": {"body": "hi"},
        "unsigned": {"age": 10},
    }
    if int(version) <= 2:
        event["event_id"] = events.make_event_id_v1(ORIGIN)
    event.update(extra)
    return events.add_hashes_and_sign(event, version, ORIGIN, KEY)


@pytest.mark.parametrize("version", sorted(KNOWN_ROOM_VERSIONS, key=int))
def test_signed_event_checks_out(version: str) -> None:
    event = make_event(version)
    checked = events.check_event(event, version, LOOKUP)
    assert checked.ok and not checked.redacted
    assert checked.event is event
    assert checked.event_id == events.compute_event_id(event, version)
    assert checked.signed_by == {ORIGIN}
    # signedjson verifies our signature over the redacted event...
    redacted = events.redact(event, version)
    signedjson.sign.verify_signed_json(redacted, ORIGIN, get_verify_key(KEY))
    # ...and a redacted copy still passes the signature check, but must be redacted.
    copy_checked = events.check_event(redacted, version, LOOKUP)
    assert copy_checked.redacted and copy_checked.event == redacted
    assert copy_checked.event_id == checked.event_id


def test_event_signed_with_signedjson_checks_out() -> None:
    event = make_event("11", sender="@bob:other.example")
    event["signatures"] = {}
    redacted = events.redact(event, "11")
    signedjson.sign.sign_json(redacted, "other.example", OTHER_KEY)
    event["signatures"] = redacted["signatures"]
    lookup = static_key_lookup({"other.example": {"ed25519:2": (OTHER_KEY.verify_key, FAR_FUTURE)}})
    checked = events.check_event(event, "11", lookup)
    assert checked.ok and not checked.redacted
    assert checked.signed_by == {"other.example"}


def test_hash_mismatch_means_redact() -> None:
    event = make_event("11")
    event["content"] = {"body": "tampered"}
    checked = events.check_event(event, "11", LOOKUP)
    assert checked.ok and checked.redacted
    assert checked.event == events.redact(event, "11")
    for bad in ({"sha256": "!!notbase64"}, {}, "x", {"sha256": 5}):
        tampered = {**make_event("11"), "hashes": bad}
        # hashes are signed: changing them breaks the signature rather than the hash.
        with pytest.raises(SignatureVerifyError):
            events.check_event(tampered, "11", LOOKUP)
        # Signed but unusable hashes: the event is kept, redacted.
        resigned = sign_json(events.redact(tampered, "11"), ORIGIN, KEY)
        tampered["signatures"] = resigned["signatures"]
        assert events.check_event(tampered, "11", LOOKUP).redacted


def test_bad_or_missing_signatures_are_dropped() -> None:
    event = make_event("11")
    event["depth"] = 6  # protected key: the signature no longer verifies
    with pytest.raises(SignatureVerifyError):
        events.check_event(event, "11", LOOKUP)
    unknown_key_only = static_key_lookup({ORIGIN: {}})
    with pytest.raises(SignatureVerifyError):
        events.check_event(make_event("11"), "11", unknown_key_only)
    no_sigs = make_event("11")
    no_sigs["signatures"] = {}
    with pytest.raises(SignatureVerifyError):
        events.check_event(no_sigs, "11", LOOKUP)
    garbled = make_event("11")
    garbled["signatures"][ORIGIN]["ed25519:1"] = "%%%"
    with pytest.raises(SignatureVerifyError):
        events.check_event(garbled, "11", LOOKUP)
    with pytest.raises(SignatureVerifyError):
        events.check_event({"content": {"x": 0.5}}, "11", LOOKUP)


def test_unknown_keys_and_algorithms_are_skipped() -> None:
    event = make_event("11")
    event["signatures"][ORIGIN]["ed25519:unknown"] = "AAAA"
    event["signatures"][ORIGIN]["curve25519:1"] = "AAAA"
    assert events.check_event(event, "11", LOOKUP).signed_by == {ORIGIN}


@pytest.mark.parametrize("version", ["4", "5", "11"])
def test_key_validity_enforced_from_v5(version: str) -> None:
    event = make_event(version)
    ts = event["origin_server_ts"]
    expired = static_key_lookup({ORIGIN: {"ed25519:1": (get_verify_key(KEY), ts - 1)}})
    if get_room_version(version).enforce_key_validity:
        with pytest.raises(SignatureVerifyError):
            events.check_event(event, version, expired)
    else:
        assert events.check_event(event, version, expired).ok
    just_valid = static_key_lookup({ORIGIN: {"ed25519:1": (get_verify_key(KEY), ts)}})
    assert events.check_event(event, version, just_valid).ok


def test_v1_needs_the_event_id_servers_signature() -> None:
    event = make_event("1", event_id="$abc:elsewhere.example")
    assert events.required_signers(event, "1") == {ORIGIN, "elsewhere.example"}
    with pytest.raises(SignatureVerifyError):
        events.check_event(event, "1", LOOKUP)
    other = signedjson.key.generate_signing_key("x")
    redacted = events.redact(event, "1")
    sign_json(redacted, "elsewhere.example", other)
    event["signatures"] = redacted["signatures"]
    lookup = static_key_lookup(
        {
            ORIGIN: {"ed25519:1": (get_verify_key(KEY), FAR_FUTURE)},
            "elsewhere.example": {"ed25519:x": (other.verify_key, FAR_FUTURE)},
        }
    )
    assert events.check_event(event, "1", lookup).signed_by == {ORIGIN, "elsewhere.example"}
    # From v3 the event ID is not consulted.
    v3 = make_event("3")
    assert events.required_signers(v3, "3") == {ORIGIN}


def test_restricted_join_needs_the_authorising_server() -> None:
    content = {"membership": "join", "join_authorised_via_users_server": "@mod:auth.example"}
    for version, needed in (("7", {ORIGIN}), ("8", {ORIGIN, "auth.example"})):
        event = make_event(
            version, type="m.room.member", state_key=f"@alice:{ORIGIN}", content=content
        )
        assert events.required_signers(event, version) == needed
    with pytest.raises(SignatureVerifyError):
        events.check_event(event, "8", LOOKUP)
    bad = {**content, "join_authorised_via_users_server": "not-a-user-id"}
    with pytest.raises(SignatureVerifyError):
        events.required_signers({**event, "content": bad}, "8")


def test_third_party_invite_exempts_the_sender() -> None:
    content = {"membership": "invite", "third_party_invite": {"signed": {"token": "t"}}}
    event = make_event(
        "11",
        type="m.room.member",
        sender="@inviter:inviter.example",
        state_key=f"@alice:{ORIGIN}",
        content=content,
    )
    assert events.required_signers(event, "11") == frozenset()
    assert events.check_event(event, "11", LOOKUP).signed_by == {ORIGIN}
    odd = {**event, "signatures": {**event["signatures"], 5: {"ed25519:1": "x"}}}
    assert events.check_event(odd, "11", LOOKUP).signed_by == {ORIGIN}
    unsigned_invite = {**event, "signatures": {}}
    with pytest.raises(SignatureVerifyError):
        events.check_event(unsigned_invite, "11", LOOKUP)


def test_batch_check_reports_each_event() -> None:
    good = make_event("11")
    tampered = make_event("11")
    tampered["content"] = {"body": "changed"}
    forged = make_event("11")
    forged["depth"] = 99
    results = events.check_events([good, tampered, forged, {"x": 1.5}, None], "11", LOOKUP)  # type: ignore[list-item]
    assert [r.ok for r in results] == [True, True, False, False, False]
    assert [r.redacted for r in results[:2]] == [False, True]
    assert results[0].event_id == events.compute_event_id(good, "11")
    assert isinstance(results[2].error, SignatureVerifyError)
    assert results[3].event_id is None
    assert events.check_events([], "11", LOOKUP) == []
    # Same answers as one at a time.
    assert events.check_events([good, tampered], "11", LOOKUP) == [
        events.check_event(good, "11", LOOKUP),
        events.check_event(tampered, "11", LOOKUP),
    ]


def test_add_hashes_and_sign_merges() -> None:
    event = make_event("11", hashes={"sha512": "keep"})
    assert set(event["hashes"]) == {"sha256", "sha512"}
    assert event["unsigned"] == {"age": 10}
    other = signedjson.key.generate_signing_key("o")
    events.add_hashes_and_sign(event, "11", "other.example", other)
    assert set(event["signatures"]) == {ORIGIN, "other.example"}
    signedjson.sign.verify_signed_json(events.redact(event, "11"), ORIGIN, get_verify_key(KEY))


@settings(max_examples=200, deadline=None)
@given(event=_events, version=st.sampled_from(["1", "3", "5", "8", "11", "12"]))
def test_junk_events_fail_with_typed_errors_only(event: dict[str, Any], version: str) -> None:
    try:
        checked = events.check_event(event, version, LOOKUP)
    except SignatureVerifyError:
        return
    assert checked.signed_by  # anything accepted was signed by a known key
    (batch,) = events.check_events([event], version, LOOKUP)
    assert batch.ok


def test_pdu_room_id_of_a_v12_create_event_is_derived_from_its_id() -> None:
    from hs.core.pdu import PDU
    from hs.core.room_versions import KNOWN_ROOM_VERSIONS

    create = {"type": "m.room.create", "state_key": "", "sender": "@a:x", "content": {},
              "origin_server_ts": 1, "depth": 1, "prev_events": [], "auth_events": [],
              "hashes": {"sha256": "x"}, "signatures": {}}
    pdu = PDU(create, KNOWN_ROOM_VERSIONS["12"])
    assert pdu.room_id == "!" + pdu.event_id[1:]
    other = PDU({**create, "type": "m.room.topic"}, KNOWN_ROOM_VERSIONS["12"], event_id="$t")
    with pytest.raises(KeyError):
        _ = other.room_id
