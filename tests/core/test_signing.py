"""JSON signing (spec appendix "Signing JSON"), cross-checked against signedjson."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import signedjson.key
import signedjson.sign

from hs.core.keys import decode_signing_key_base64, generate_signing_key, get_verify_key
from hs.core.signing import SignatureVerifyError, sign_json, signature_ids, verify_signed_json


def test_spec_json_signing_vectors(spec_vectors: list[dict[str, Any]]) -> None:
    cases = [v for v in spec_vectors if v["category"] == "json_signing"]
    assert cases
    for case in cases:
        data = case["input"]
        alg, version = data["key_id"].split(":", 1)
        key = decode_signing_key_base64(alg, version, data["signing_key_seed_base64"])
        signed = sign_json(copy.deepcopy(data["json"]), data["server_name"], key)
        assert signed == case["expected"], case["name"]
        verify_signed_json(signed, data["server_name"], get_verify_key(key))


def test_we_sign_signedjson_verifies() -> None:
    key = generate_signing_key("a_1")
    obj = {"name": "example.org", "nested": {"é": ["ü", 1, None, True]}, "unsigned": {"a": 1}}
    sign_json(obj, "example.org", key)
    signedjson.sign.verify_signed_json(obj, "example.org", get_verify_key(key))
    assert obj["unsigned"] == {"a": 1}


def test_signedjson_signs_we_verify() -> None:
    key = signedjson.key.generate_signing_key("b")
    obj = signedjson.sign.sign_json({"x": "y", "n": -5}, "srv.example", key)
    verify_signed_json(obj, "srv.example", signedjson.key.get_verify_key(key))
    # And their key objects sign with our function too.
    ours = sign_json({"x": "y"}, "srv.example", key)
    signedjson.sign.verify_signed_json(ours, "srv.example", signedjson.key.get_verify_key(key))


def test_unsigned_is_ignored_and_kept() -> None:
    key = generate_signing_key("k")
    plain = sign_json({"a": 1}, "s", key)
    with_unsigned = sign_json({"a": 1, "unsigned": {"age": 5}}, "s", key)
    assert with_unsigned["signatures"] == plain["signatures"]
    assert with_unsigned["unsigned"] == {"age": 5}
    with_unsigned["unsigned"]["age"] = 99  # may change in transit
    verify_signed_json(with_unsigned, "s", get_verify_key(key))


def test_signatures_are_merged_not_replaced() -> None:
    first, second = generate_signing_key("one"), generate_signing_key("two")
    theirs = {"other": {"ed25519:z": "sig"}}
    obj = {"a": 1, "signatures": theirs}
    sign_json(obj, "s", first)
    sign_json(obj, "s", second)
    assert set(obj["signatures"]) == {"other", "s"}
    assert set(obj["signatures"]["s"]) == {"ed25519:one", "ed25519:two"}
    assert theirs == {"other": {"ed25519:z": "sig"}}  # the caller's dict was not mutated
    verify_signed_json(obj, "s", get_verify_key(first))
    verify_signed_json(obj, "s", get_verify_key(second))
    assert signature_ids(obj, "s") == ["ed25519:one", "ed25519:two"]
    assert signature_ids(obj, "other") == ["ed25519:z"]
    assert signature_ids(obj, "nobody") == []
    assert signature_ids({"signatures": {"s": {"curve25519:x": "y"}}}, "s") == []
    assert signature_ids({"signatures": "bad"}, "s") == []


def test_verify_failures_raise_typed_error() -> None:
    key = generate_signing_key("k")
    vk = get_verify_key(key)
    signed = sign_json({"a": 1}, "s", key)
    bad_cases = [
        {**signed, "a": 2},  # tampered
        {"a": 1},  # no signatures
        {**signed, "signatures": {"other": signed["signatures"]["s"]}},  # wrong server
        {**signed, "signatures": {"s": {"ed25519:k": "not base64!"}}},
        {**signed, "signatures": {"s": {"ed25519:k": "AAAA"}}},  # wrong length
        {**signed, "signatures": {"s": "x"}},
        {**signed, "signatures": {"s": {"ed25519:k": 5}}},
        {**signed, "x": 1.5},  # no canonical form
    ]
    for case in bad_cases:
        with pytest.raises(SignatureVerifyError):
            verify_signed_json(case, "s", vk)
    with pytest.raises(SignatureVerifyError):
        verify_signed_json(signed, "s", get_verify_key(generate_signing_key("k")))
    # A verify key for another key ID finds no signature.
    with pytest.raises(SignatureVerifyError):
        verify_signed_json(signed, "s", get_verify_key(generate_signing_key("other")))
