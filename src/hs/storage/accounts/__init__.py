"""Storage for accounts: users, devices, access/refresh/login tokens, profiles, UIA sessions."""

from hs.storage.accounts.store import AccountStore, TokenInfo, UserExistsError, UserRow

__all__ = ["AccountStore", "TokenInfo", "UserExistsError", "UserRow"]
