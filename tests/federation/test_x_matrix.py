"""X-Matrix header building/parsing and request signature checks (spec "Request
Authentication"), cross-checked against signedjson."""

from __future__ import annotations

import pytest
import signedjson.sign

from hs.core.keys import generate_signing_key, get_verify_key
from hs.core.signing import SignatureVerifyError
from hs.core.x_matrix import (
    XMatrixAuth,
    XMatrixError,
    format_x_matrix,
    parse_x_matrix,
    request_object,
    sign_request,
    verify_request,
)

KEY = generate_signing_key("k1")
VK = get_verify_key(KEY)
ORIGIN, DEST = "origin.example.com", "destination.example.com:8448"
URI = "/_matrix/federation/v1/send/txn%2F1?limit=10&x=%C3%A9"
CONTENT = {"pdus": [{"a": 1}], "edus": []}


def _signed(method: str = "PUT", uri: str = URI, content: object = CONTENT) -> XMatrixAuth:
    return parse_x_matrix(sign_request(KEY, ORIGIN, DEST, method, uri, content))


def test_round_trip_and_header_form() -> None:
    header = sign_request(KEY, ORIGIN, DEST, "PUT", URI, CONTENT)
    assert header.startswith('X-Matrix origin="origin.example.com",destination=')
    assert " " not in header[len("X-Matrix ") :]
    auth = parse_x_matrix(header)
    assert (auth.origin, auth.destination, auth.key) == (ORIGIN, DEST, "ed25519:k1")
    verify_request(auth, "PUT", URI, CONTENT, VK)
    verify_request(auth, "put", URI, CONTENT, VK)  # the method is compared upper-cased


def test_signature_matches_signedjson_and_spec_example_code() -> None:
    # The spec's example: sign {method, uri, origin, destination, content} with signedjson.
    obj = {"method": "PUT", "uri": URI, "origin": ORIGIN, "destination": DEST,
           "content": CONTENT}
    signedjson.sign.sign_json(obj, ORIGIN, KEY)
    assert _signed().sig == obj["signatures"][ORIGIN]["ed25519:k1"]
    assert request_object("PUT", URI, ORIGIN, DEST, CONTENT) == {
        k: v for k, v in obj.items() if k != "signatures"}


def test_no_content_is_omitted_not_null() -> None:
    assert "content" not in request_object("GET", "/x", ORIGIN, DEST)
    auth = _signed("GET", "/_matrix/key/v2/server", None)
    verify_request(auth, "GET", "/_matrix/key/v2/server", None, VK)
    with pytest.raises(SignatureVerifyError):
        verify_request(auth, "GET", "/_matrix/key/v2/server", {}, VK)


@pytest.mark.parametrize("change", [
    {"method": "POST"},
    {"uri": URI.replace("limit=10", "limit=11")},
    {"uri": URI.split("?")[0]},  # the query string is signed too
    {"uri": URI.replace("%2F", "/")},  # the target exactly as sent, still encoded
    {"content": {"pdus": [{"a": 2}], "edus": []}},
    {"content": None},
    {"origin": "evil.example.com"},
    {"destination": "other.example.com"},
    {"destination": None},
    {"sig": "A" * 86},
    {"sig": "not base64!"},
    {"sig": ""},
    {"key": "ed25519:k2"},
    {"key": "curve25519:k1"},
])
def test_every_tampering_is_rejected(change: dict) -> None:
    auth = _signed()
    fields = {"origin": auth.origin, "destination": auth.destination, "key": auth.key,
              "sig": auth.sig}
    request = {"method": "PUT", "uri": URI, "content": CONTENT}
    for name, value in change.items():
        (fields if name in fields else request)[name] = value
    tampered = XMatrixAuth(**fields)
    with pytest.raises(SignatureVerifyError):
        verify_request(tampered, request["method"], request["uri"], request["content"], VK)


def test_wrong_key_rejected() -> None:
    other = get_verify_key(generate_signing_key("k1"))
    with pytest.raises(SignatureVerifyError):
        verify_request(_signed(), "PUT", URI, CONTENT, other)


def test_pre_v1_3_header_without_destination_verifies() -> None:
    obj = signedjson.sign.sign_json({"method": "GET", "uri": "/x", "origin": ORIGIN},
                                    ORIGIN, KEY)
    sig = obj["signatures"][ORIGIN]["ed25519:k1"]
    auth = parse_x_matrix(f'X-Matrix origin={ORIGIN},key="ed25519:k1",sig="{sig}"')
    assert auth.destination is None
    verify_request(auth, "GET", "/x", None, VK)


@pytest.mark.parametrize("header", [
    'X-Matrix origin="o.org",destination="d.org",key="ed25519:a",sig="c2ln"',
    'X-Matrix   origin=o.org , destination=d.org ,\tkey=ed25519:a,sig=c2ln',
    'x-matrix ORIGIN="o.org",Destination="d.org",KEY="ed25519:a",Sig="c2ln"',
    'X-Matrix sig="c2ln",key="ed25519:a",destination="d.org",origin="o.org"',
    'X-Matrix origin="o.org",unknown="x, y",destination="d.org",key="ed25519:a",sig="c2ln"',
    'X-Matrix origin = "o.org", destination="d.org", key="ed25519:a", sig="c2ln",',
    'X-Matrix origin="o\\.org",destination="d.org",key="ed25519:a",sig="c\\2ln"',
])
def test_parse_variants(header: str) -> None:
    assert parse_x_matrix(header) == XMatrixAuth("o.org", "d.org", "ed25519:a", "c2ln")


def test_parse_ports_colons_and_escapes() -> None:
    auth = parse_x_matrix('X-Matrix origin=o.org:8448,key=ed25519:a,sig=a/b+c')
    assert (auth.origin, auth.key, auth.sig) == ("o.org:8448", "ed25519:a", "a/b+c")
    auth = parse_x_matrix('X-Matrix origin="[::1]:8448",key="ed25519:a",sig="x\\"y"')
    assert (auth.origin, auth.sig) == ("[::1]:8448", 'x"y')


@pytest.mark.parametrize("header", [
    "", "Bearer abc", "X-Matrix", "X-Matrixorigin=a",
    'X-Matrix key="ed25519:a",sig="s"',  # no origin
    'X-Matrix origin="o.org",sig="s"',  # no key
    'X-Matrix origin="o.org",key="ed25519:a"',  # no sig
    'X-Matrix origin="o.org",origin="p.org",key="ed25519:a",sig="s"',  # duplicate
    'X-Matrix origin="o.org,key="ed25519:a",sig="s"',  # unterminated quote
    'X-Matrix origin="o.org" key="ed25519:a",sig="s"',  # missing comma
    'X-Matrix origin=,key="ed25519:a",sig="s"',  # empty unquoted value
    'X-Matrix origin="o.org",key,sig="s"',  # no value
    'X-Matrix origin="bad name!",key="ed25519:a",sig="s"',  # invalid server name
    'X-Matrix origin="o.org",destination="a b",key="ed25519:a",sig="s"',
    'X-Matrix origin="o.org",key="ed25519:a",sig="s\\',  # dangling escape
])
def test_parse_errors(header: str) -> None:
    with pytest.raises(XMatrixError):
        parse_x_matrix(header)


def test_format_quotes_and_escapes() -> None:
    text = format_x_matrix(XMatrixAuth("o.org", None, "ed25519:a", 'we"ird\\'))
    assert text == 'X-Matrix origin="o.org",key="ed25519:a",sig="we\\"ird\\\\"'
    assert parse_x_matrix(text).sig == 'we"ird\\'
