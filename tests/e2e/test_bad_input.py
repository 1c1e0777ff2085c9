"""Every E2EE endpoint answers malformed fields with a 4xx Matrix error, never a 500."""

from __future__ import annotations

from typing import Any

from tests.e2e.helpers import new_device
from tests.server.harness import running_server

WEIRD: list[Any] = [None, 0, -1, 2**60, "x", "", True, [], [1, "a"], {}, {"a": 1},
                    {"@u:test.local": None}, {"@u:test.local": {"D": None}},
                    {"@u:test.local": ["D", 1]}, {"ed25519:x": {"key": 1}},
                    {"signed_curve25519:a": {"key": "k", "signatures": 5}}]

ENDPOINTS: list[tuple[str, str, list[str]]] = [
    ("POST", "/keys/upload", ["device_keys", "one_time_keys", "fallback_keys"]),
    ("POST", "/keys/query", ["device_keys", "timeout"]),
    ("POST", "/keys/claim", ["one_time_keys", "timeout"]),
    ("POST", "/keys/device_signing/upload", ["master_key", "self_signing_key",
                                             "user_signing_key", "auth"]),
    ("POST", "/keys/signatures/upload", ["@u:test.local", "bad"]),
    ("PUT", "/sendToDevice/m.test/{n}", ["messages"]),
]


async def test_weird_field_values_never_500(database_config):
    async with running_server(database_config) as hs:
        dev = await new_device(hs, "u")
        n = 0
        for method, path, fields in ENDPOINTS:
            for field in fields:
                for value in WEIRD:
                    n += 1
                    status, body = await dev.req(method, path.format(n=n), {field: value})
                    assert status in (200, 400, 401, 403, 404), (path, field, value, body)
                    if status != 200:
                        assert body["errcode"].startswith("M_"), (path, field, value, body)
        for method, path, _ in ENDPOINTS:
            for raw in (b"[]", b"nope", b'"s"', b"{\"a\": 1e400}"):
                n += 1
                status, body = await hs.request(method, "/_matrix/client/v3"
                                                + path.format(n=n), data=raw,
                                                token=dev.token)
                assert status == 400 and body["errcode"] in ("M_NOT_JSON", "M_BAD_JSON")
        for query in ("", "?from=1", "?to=1", "?from=x&to=y", "?from=-1&to=s1_2"):
            status, body = await dev.req("GET", "/keys/changes" + query)
            assert status == 400 and body["errcode"].startswith("M_"), query
