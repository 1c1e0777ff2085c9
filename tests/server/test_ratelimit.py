"""Rate limiting: 429 M_LIMIT_EXCEEDED with retry_after_ms and Retry-After; switchable off."""

from __future__ import annotations

from tests.server.harness import running_server

from hs.config import RateLimit
from hs.http.errors import MatrixError
from hs.http.ratelimit import Ratelimiter


def test_token_bucket_refills():
    now = [0.0]
    limiter = Ratelimiter(RateLimit(per_second=0.5, burst_count=2), clock=lambda: now[0])
    limiter.check("k")
    limiter.check("k")
    try:
        limiter.check("k")
    except MatrixError as exc:
        assert exc.status == 429 and exc.extra["retry_after_ms"] == 2000
    else:
        raise AssertionError("third action should be limited")
    limiter.check("other")  # keys are independent
    now[0] = 2.0
    limiter.check("k")


def test_zero_rate_means_unlimited():
    limiter = Ratelimiter(RateLimit(per_second=0, burst_count=0))
    for _ in range(100):
        limiter.check("k")


async def test_login_rate_limited(database_config):
    async with running_server(database_config, rc_enabled=True,
                              rc_login={"address": {"per_second": 0.1, "burst_count": 2}}) as hs:
        for _ in range(2):
            status, _ = await hs.login("nobody", "x")
            assert status == 403
        async with hs.session.post(hs.base + "/_matrix/client/v3/login", json={
                "type": "m.login.password", "user": "nobody", "password": "x"}) as resp:
            body = await resp.json()
            assert resp.status == 429
            assert body["errcode"] == "M_LIMIT_EXCEEDED"
            assert 0 < body["retry_after_ms"] <= 10_000
            assert int(resp.headers["Retry-After"]) >= 1


async def test_global_switch_disables_limits(database_config):
    async with running_server(database_config, rc_enabled=False,
                              rc_login={"address": {"per_second": 0.1, "burst_count": 1}}) as hs:
        for _ in range(4):
            status, _ = await hs.login("nobody", "x")
            assert status == 403


async def test_x_forwarded_for_keys_the_address_limiter(database_config):
    async with running_server(database_config, x_forwarded=True, rc_enabled=True,
                              rc_login={"address": {"per_second": 0.1, "burst_count": 1}}) as hs:
        body = {"type": "m.login.password", "user": "nobody", "password": "x"}
        first = {"X-Forwarded-For": "203.0.113.1"}
        assert (await hs.request("POST", "/_matrix/client/v3/login", body, headers=first))[0] \
            == 403
        assert (await hs.request("POST", "/_matrix/client/v3/login", body, headers=first))[0] \
            == 429
        other = {"X-Forwarded-For": "203.0.113.2, 10.0.0.1"}
        assert (await hs.request("POST", "/_matrix/client/v3/login", body, headers=other))[0] \
            == 403

