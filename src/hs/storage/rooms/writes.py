"""The rooms area's part of the event persister's transaction: membership history and the
incremental current state (with its delta stream for sync). Called only from
``hs.storage.events.persist``, with that transaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hs.core.pdu import PDU, StateKey
from hs.storage.database import Queryable
from hs.storage.events._util import chunks, qmarks

MEMBER = "m.room.member"


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


async def write_memberships(txn: Queryable, events: Iterable[tuple[PDU, int]]) -> None:
    """History rows for the accepted m.room.member events among ``(pdu, position)``."""
    rows = [
        (
            pdu.event_id, pdu.state_key, pdu.room_id, pdu.membership, pdu.sender,
            _str_or_none(pdu.content.get("displayname")),
            _str_or_none(pdu.content.get("avatar_url")), position,
        )
        for pdu, position in events
        if pdu.type == MEMBER
        and pdu.state_key is not None
        and pdu.membership is not None
        and pdu.rejected_reason is None
    ]
    if rows:
        await txn.executemany(
            "INSERT INTO room_memberships (event_id, user_id, room_id, membership, sender,"
            " displayname, avatar_url, stream_ordering) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (event_id) DO UPDATE SET stream_ordering = EXCLUDED.stream_ordering",
            rows,
        )


async def apply_current_state(
    txn: Queryable,
    deltas: Mapping[str, Mapping[StateKey, str | None]],
    positions: Mapping[str, int],
    batch_pdus: Mapping[str, PDU],
) -> dict[str, str]:
    """Apply per-room ``deltas`` to ``current_state`` and log the real changes in the delta
    stream at the room's ``positions``. Membership of member events comes from
    ``batch_pdus`` or, for events persisted earlier, from ``room_memberships``. Returns
    ``event_id -> the event it replaced ('' for none)`` of the events that entered."""
    deltas = {r: d for r, d in deltas.items() if d}
    if not deltas:
        return {}
    outside = [
        eid
        for d in deltas.values()
        for (etype, _), eid in d.items()
        if etype == MEMBER and eid is not None and eid not in batch_pdus
    ]
    memberships: dict[str, str | None] = {}
    for part in chunks(outside):
        rows = await txn.fetchall(
            "SELECT event_id, membership FROM room_memberships"
            f" WHERE event_id IN ({qmarks(part)})",
            *part,
        )
        memberships.update({r[0]: r[1] for r in rows})
    rooms = sorted(deltas)
    types = sorted({t for d in deltas.values() for t, _ in d})
    rows = await txn.fetchall(
        "SELECT room_id, type, state_key, event_id FROM current_state"
        f" WHERE room_id IN ({qmarks(rooms)}) AND type IN ({qmarks(types)})",
        *rooms,
        *types,
    )
    old = {(r[0], r[1], r[2]): r[3] for r in rows}
    upserts: list[tuple[Any, ...]] = []
    deletes: list[tuple[str, str, str]] = []
    stream_rows: list[tuple[Any, ...]] = []
    for room_id in rooms:
        for (etype, skey), eid in deltas[room_id].items():
            prev = old.get((room_id, etype, skey))
            if prev == eid:
                continue
            stream_rows.append((positions[room_id], room_id, etype, skey, eid, prev))
            if eid is None:
                deletes.append((room_id, etype, skey))
                continue
            membership = None
            if etype == MEMBER:
                pdu = batch_pdus.get(eid)
                membership = pdu.membership if pdu is not None else memberships.get(eid)
            upserts.append((room_id, etype, skey, eid, membership))
    if upserts:
        await txn.executemany(
            "INSERT INTO current_state (room_id, type, state_key, event_id, membership)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (room_id, type, state_key)"
            " DO UPDATE SET event_id = EXCLUDED.event_id, membership = EXCLUDED.membership",
            upserts,
        )
    if deletes:
        await txn.executemany(
            "DELETE FROM current_state WHERE room_id = ? AND type = ? AND state_key = ?",
            deletes,
        )
    if stream_rows:
        await txn.executemany(
            "INSERT INTO current_state_delta_stream (stream_ordering, room_id, type,"
            " state_key, event_id, prev_event_id) VALUES (?, ?, ?, ?, ?, ?)",
            stream_rows,
        )
    return {r[4]: r[5] or "" for r in stream_rows if r[4] is not None}


__all__ = ["apply_current_state", "write_memberships"]
