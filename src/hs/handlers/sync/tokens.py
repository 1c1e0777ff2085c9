"""The ``/sync`` token: one position per stream, opaque to clients.

Layout ``s<events>_<presence>_<typing>_<receipts>_<account_data>_<to_device>_<device_lists>
_<push_rules>``: Synapse's order for the first seven (device lists 7th), so ``GET
/keys/changes`` and the device-list helper's default parser read it unchanged; the first
part is also a valid room stream token, so ``/messages`` accepts a ``next_batch`` as
``from``. Membership and invites ride on the events stream.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from hs.handlers.device_lists import TokenPositions, parse_sync_token
from hs.http.errors import MatrixError

#: Positions must fit the BIGINT columns they are compared with.
_MAX = 2**63 - 1


def invalid_token(text: str) -> MatrixError:
    return MatrixError(400, "M_INVALID_PARAM", f"Invalid sync token {text[:100]!r}")


@dataclass(frozen=True, slots=True)
class SyncToken:
    events: int = 0
    presence: int = 0
    typing: int = 0
    receipts: int = 0
    account_data: int = 0
    to_device: int = 0
    device_lists: int = 0
    #: Push rule changes are delivered as ``m.push_rules`` account data (helper S2's
    #: stream); an 8th field keeps the first seven in Synapse's layout.
    push_rules: int = 0

    def __str__(self) -> str:
        return "s" + "_".join(str(getattr(self, f.name)) for f in fields(self))

    @classmethod
    def parse(cls, text: str) -> SyncToken:
        """A token this server handed out; anything else is 400 M_INVALID_PARAM."""
        parts = text[1:].split("_") if text.startswith("s") else []
        # Seven fields: a token from before push rules had a field (their position is 0).
        if len(parts) not in (7, len(fields(cls))) or not all(
                p.isdigit() and len(p) < 19 for p in parts):
            raise invalid_token(text)
        values = [int(p) for p in parts]
        if any(v > _MAX for v in values):
            raise invalid_token(text)
        return cls(*values)

    def capped(self, upper: SyncToken) -> SyncToken:
        """Each position at most ``upper``'s (a token from a reset or restored database
        must not make a range run backwards)."""
        return SyncToken(*(min(getattr(self, f.name), getattr(upper, f.name))
                           for f in fields(self)))

    def covers(self, upper: SyncToken) -> bool:
        """Every position at least ``upper``'s: nothing happened after this token."""
        return all(getattr(self, f.name) >= getattr(upper, f.name) for f in fields(self))

    def with_to_device(self, position: int) -> SyncToken:
        return replace(self, to_device=position)


def device_list_positions(text: str) -> TokenPositions:
    """``DeviceListHandler.token_parser``: (device_lists, events) of a ``next_batch``;
    anything else goes to the helper's own parser (bare device-list positions)."""
    try:
        token = SyncToken.parse(text)
    except MatrixError:
        return parse_sync_token(text)
    return token.device_lists, token.events


__all__ = ["SyncToken", "device_list_positions", "invalid_token"]
