"""OpenID tokens for integrations, stored hashed."""

from hs.storage.openid.store import OpenIdStore

__all__ = ["OpenIdStore"]
