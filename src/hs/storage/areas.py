"""The storage areas, in dependency order: an area's migrations may reference tables of the
areas listed before it, never after. Each is a package ``hs.storage.<area>`` with a
``schema/`` directory of numbered migration files (see ``hs.storage.migrations``)."""

from __future__ import annotations

AREAS: tuple[str, ...] = (
    "core",  # migration bookkeeping and stream positions
    "accounts",  # users, devices, tokens, profiles, UI auth
    "events",  # events, DAG edges, extremities, txn IDs, redactions, relations
    "state",  # state groups (deltas + snapshots), event -> state group
    "rooms",  # rooms, current state, membership history, aliases, directory
    "server_keys",  # remote servers' signing keys and cached key responses
    "receipts",  # read receipts (public, private, threaded)
    "account_data",  # global and per-room account data
    "filters",  # client filters; read-side indexes on events/relations
    "e2e",  # device/one-time/fallback/cross-signing keys, signatures, device-list stream
    "to_device",  # to-device inboxes, federation outbox, sendToDevice txn IDs
    "presence",  # latest presence per user on the "presence" stream
    "push",  # push rules (+ default overrides, versions), event push actions, pushers
    "federation",  # outbound destination health/catch-up, remote device lists
    "openid",  # OpenID tokens for integrations (hashed)
)

#: SQLite-only counter tables that stand in for a PostgreSQL sequence, as
#: table -> (column holding the last value handed out, sequence name). ``port_db`` moves the
#: counter into the sequence instead of copying the table; register every such pair here.
SQLITE_COUNTERS: dict[str, tuple[str, str]] = {
    "state_group_id_counter": ("last_id", "state_group_id_seq"),
}

__all__ = ["AREAS", "SQLITE_COUNTERS"]
