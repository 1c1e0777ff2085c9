"""Building the federation transport from the homeserver config, for ``hs.app`` to wire.

Config keys read (Synapse names): ``server_name``, ``federation_verify_certificates``,
``federation_custom_ca_list``, ``federation_certificate_verification_whitelist``,
``federation_domain_whitelist``, ``ip_range_blacklist``, ``ip_range_whitelist``,
``trusted_key_servers``, ``old_signing_keys``, ``key_refresh_interval`` (ms here). Keys the
config model does not carry yet fall back to Synapse's defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from nacl.signing import SigningKey

from hs.federation.auth import FEDERATION_AUTH, FederationAuthenticator
from hs.federation.client import FederationClient, FederationClientConfig
from hs.federation.discovery import SrvResolver
from hs.federation.key_server import KeyServer, setup_key_routes
from hs.federation.keyring import Keyring, trusted_key_servers_from_config
from hs.federation.local_keys import DEFAULT_KEY_VALIDITY_MS, LocalKeys, parse_old_signing_keys
from hs.storage.database import Database
from hs.storage.server_keys import ServerKeysStore


@dataclass
class Federation:
    """The transport pieces sharing one client, keyring and store."""

    local_keys: LocalKeys
    client: FederationClient
    keyring: Keyring
    key_server: KeyServer
    authenticator: FederationAuthenticator

    def setup_routes(self, app: web.Application) -> None:
        """Key endpoints plus the authenticator used by ``auth.authenticate_request``."""
        setup_key_routes(app, self.key_server)
        app[FEDERATION_AUTH] = self.authenticator

    async def close(self) -> None:
        await self.client.close()


def create_federation(
    config: Any,
    db: Database,
    signing_keys: Sequence[SigningKey],
    *,
    srv_resolver: SrvResolver | None = None,
) -> Federation:
    """Everything from ``HomeserverConfig`` (attributes it lacks use Synapse defaults)."""
    refresh = getattr(config, "key_refresh_interval", None)
    local = LocalKeys(
        config.server_name,
        list(signing_keys),
        parse_old_signing_keys(getattr(config, "old_signing_keys", None)),
        key_validity_ms=int(refresh) if refresh else DEFAULT_KEY_VALIDITY_MS,
    )
    client_config = FederationClientConfig.from_homeserver_config(config)
    client = FederationClient(local.server_name, local.signing_key, client_config,
                              srv_resolver=srv_resolver)
    store = ServerKeysStore(db)
    keyring = Keyring(
        store, client, local_keys=local,
        trusted_key_servers=trusted_key_servers_from_config(
            getattr(config, "trusted_key_servers", None) or []),
    )
    return Federation(
        local_keys=local,
        client=client,
        keyring=keyring,
        key_server=KeyServer(local, keyring, store),
        authenticator=FederationAuthenticator(local.server_name, keyring,
                                              domain_whitelist=client_config.domain_whitelist),
    )
