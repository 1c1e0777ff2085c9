"""Remote server signing keys and cached key responses (federation keyring, notary)."""

from hs.storage.server_keys.store import KeyResponseRow, ServerKeysStore, StoredKey

__all__ = ["KeyResponseRow", "ServerKeysStore", "StoredKey"]
