"""The single failure type of the auth rules."""

from __future__ import annotations

__all__ = ["AuthError"]


class AuthError(Exception):
    """An event is not allowed by the authorization rules.

    ``reason`` is written for humans: the client API returns it as the message of an
    ``M_FORBIDDEN`` error and storage keeps it as the event's rejection reason.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
