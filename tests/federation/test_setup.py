"""Building the federation pieces from the real config model and serving the key routes."""

from __future__ import annotations

from types import SimpleNamespace

import signedjson.key
import signedjson.sign
from aiohttp.test_utils import TestClient, TestServer
from tests.federation.helpers import app_with

from hs.config.model import TrustedKeyServer as ConfigEntry
from hs.config.model import parse_config
from hs.core.keys import generate_signing_key, get_verify_key
from hs.federation.auth import FEDERATION_AUTH
from hs.federation.setup import create_federation
from hs.storage.database import open_database


async def test_from_parsed_homeserver_config(database_config) -> None:
    config = parse_config({"server_name": "me.test", "federation_verify_certificates": False,
                           "ip_range_whitelist": ["10.0.0.0/8"], "trusted_key_servers": [
                               {"server_name": "notary.test", "accept_keys_insecurely": True}]})
    db = await open_database(database_config)
    fed = create_federation(config, db, [generate_signing_key("a")])
    try:
        assert fed.client.config.verify_certificates is False
        assert fed.client.ip_filter.is_allowed("10.1.2.3")
        assert not fed.client.ip_filter.is_allowed("127.0.0.1")  # default blacklist applies
        assert [t.server_name for t in fed.keyring.trusted_key_servers] == ["notary.test"]
        assert fed.local_keys.server_name == "me.test"
    finally:
        await fed.close()
        await db.close()


async def test_old_keys_rotation_and_routes(database_config) -> None:
    old = generate_signing_key("old")
    current = [generate_signing_key("new"), generate_signing_key("newer")]
    notary_key = generate_signing_key("n")
    config = SimpleNamespace(
        server_name="me.test", key_refresh_interval=3_600_000,
        old_signing_keys={"ed25519:old": {
            "key": signedjson.key.encode_verify_key_base64(get_verify_key(old)),
            "expired_ts": 99}},
        federation_domain_whitelist=["friend.test"],
        trusted_key_servers=[ConfigEntry("notary.test", {
            "ed25519:n": signedjson.key.encode_verify_key_base64(get_verify_key(notary_key))})],
    )
    db = await open_database(database_config)
    fed = create_federation(config, db, current)
    app = app_with({})
    fed.setup_routes(app)
    http = TestClient(TestServer(app))
    await http.start_server()
    try:
        assert app[FEDERATION_AUTH].domain_whitelist == {"friend.test"}
        for path in ("/_matrix/key/v2/server", "/_matrix/key/v2/server/ed25519:new"):
            body = await (await http.get(path)).json()
            for key in current:
                signedjson.sign.verify_signed_json(body, "me.test", get_verify_key(key))
            assert body["old_verify_keys"]["ed25519:old"]["expired_ts"] == 99
            assert set(body["verify_keys"]) == {"ed25519:new", "ed25519:newer"}
        # The keyring answers for our own keys, old ones included, without fetching.
        assert (await fed.keyring.get_verify_key("me.test", "ed25519:old"))[1] == 99
        assert fed.keyring.fetch_count == 0
    finally:
        await http.close()
        await fed.close()
        await db.close()
