"""Global and per-room account data on the ``account_data`` stream."""

from hs.storage.account_data.store import AccountDataChanges, AccountDataStore

__all__ = ["AccountDataChanges", "AccountDataStore"]
