"""The read-side SQL of push actions: unread counts and /notifications over per-event
default rows (``event_push_defaults``), the member spans they cover
(``event_push_members``) and per-user exception rows (``event_push_actions``).

What a user U has for event E (identical to the per-(event, member) rows written before):

* U's row in ``event_push_actions`` for E if there is one (notif = highlight = 0 means
  "nothing": it only hides the default);
* else E's default row, if U has a span covering E's position in E's room and U is not E's
  sender (the hook never evaluates the sender);
* else nothing.

Counts are computed in SQL, one statement per chunk of rooms. Read positions are the
``m.read``/``m.read.private`` receipts (``''`` = unthreaded) and the user's own latest event
per thread. Per span, the default rows are scanned only from the furthest position that
applies to all of them: main-timeline rows from max(unthreaded, main) on, thread rows
(their own partial index) from the unthreaded position, each then checked against its
thread's positions with index lookups. Fully read history is never touched.
"""

from __future__ import annotations

from hs.storage.events._util import qmarks

READ_RECEIPT_TYPES = ("m.read", "m.read.private")


def _greatest(dialect: str, *terms: str) -> str:
    """SQL for the largest of non-NULL ``terms`` (SQLite's scalar max, PostgreSQL's
    GREATEST)."""
    return f"{'GREATEST' if dialect == 'postgres' else 'MAX'}({', '.join(terms)})"


def _receipt_pos(room: str, user: str, thread: str) -> str:
    """SQL for the furthest ``m.read``/``m.read.private`` receipt position of ``user`` in
    ``room`` for ``thread`` (SQL expressions; ``user``'s parameter if any, then two
    receipt-type parameters), 0 if none."""
    return ("COALESCE((SELECT MAX(r.event_stream_ordering) FROM receipts r"
            f" WHERE r.room_id = {room} AND r.user_id = {user} AND r.receipt_type IN (?, ?)"
            f" AND r.thread_id = {thread}), 0)")


def _sent_pos(room: str, user: str, thread: str) -> str:
    """SQL for the position of ``user``'s latest own event in ``room``/``thread``, or 0."""
    return ("COALESCE((SELECT s.stream_ordering FROM push_sender_reads s"
            f" WHERE s.user_id = {user} AND s.room_id = {room} AND s.thread_id = {thread}), 0)")


def _unread(alias: str) -> str:
    """Row ``alias`` (room_id, thread_id, stream_ordering; ``m.user_id`` or a parameter as
    the user) is after every read position of its thread. Index lookups per row: only for
    the few rows that are not main-timeline defaults. Parameters: user, 2 receipt types,
    user, 2 receipt types, user."""
    room, so = f"{alias}.room_id", f"{alias}.stream_ordering"
    return (f" {so} > {_receipt_pos(room, '?', chr(39) * 2)}"
            f" AND {so} > {_receipt_pos(room, '?', f'{alias}.thread_id')}"
            f" AND {so} > {_sent_pos(room, '?', f'{alias}.thread_id')}")


def unread_counts_sql(dialect: str, user_id: str, room_ids: list[str]
                      ) -> tuple[str, list[object]]:
    """``(room_id, thread_id, notifications, highlights)`` rows for the user's unread push
    actions in ``room_ids`` (groups with nothing are absent)."""
    rooms = qmarks(room_ids)
    types = READ_RECEIPT_TYPES
    unread_args = [user_id, *types, user_id, *types, user_id]
    # Defaults that U has no exception row for (and did not send).
    not_excepted = (
        " AND d.sender <> ? AND NOT EXISTS (SELECT 1 FROM event_push_actions x"
        " WHERE x.user_id = ? AND x.room_id = d.room_id"
        " AND x.stream_ordering = d.stream_ordering)")
    sql = (
        # The user's spans in these rooms with the read positions that bound every event
        # of the room (unthreaded) and of the main timeline (+ main receipt, own events).
        "WITH spans AS ("
        " SELECT m.room_id, m.since_so, m.until_so,"
        f"  {_receipt_pos('m.room_id', 'm.user_id', chr(39) * 2)} AS unthreaded,"
        f"  {_greatest(dialect, _receipt_pos('m.room_id', 'm.user_id', chr(39) + 'main' + chr(39)), _sent_pos('m.room_id', 'm.user_id', chr(39) + 'main' + chr(39)))} AS main"  # noqa: E501
        f" FROM event_push_members m WHERE m.user_id = ? AND m.room_id IN ({rooms})),"
        " hits AS ("
        # Main timeline: a range scan from the main timeline's read position.
        " SELECT d.room_id, d.thread_id, d.notif, d.highlight"
        " FROM spans s JOIN event_push_defaults d ON d.room_id = s.room_id"
        "  AND d.stream_ordering > "
        + _greatest(dialect, "s.since_so - 1", "s.unthreaded", "s.main") +
        "  AND d.stream_ordering < s.until_so"
        " WHERE d.thread_id = 'main'" + not_excepted +
        " UNION ALL"
        # Threads: a range scan of thread events from the unthreaded read position.
        " SELECT d.room_id, d.thread_id, d.notif, d.highlight"
        " FROM spans s JOIN event_push_defaults d ON d.room_id = s.room_id"
        "  AND d.thread_id <> 'main'"
        "  AND d.stream_ordering > " + _greatest(dialect, "s.since_so - 1", "s.unthreaded") +
        "  AND d.stream_ordering < s.until_so"
        " WHERE" + _unread("d") + not_excepted +
        " UNION ALL"
        # The user's own rows (exceptions, and every row written before defaults existed).
        " SELECT a.room_id, a.thread_id, a.notif, a.highlight FROM event_push_actions a"
        f" WHERE a.user_id = ? AND a.room_id IN ({rooms})"
        "  AND (a.notif <> 0 OR a.highlight <> 0) AND" + _unread("a") + ")"
        " SELECT room_id, thread_id, SUM(notif), SUM(highlight) FROM hits"
        " GROUP BY room_id, thread_id")
    args: list[object] = [
        *types, *types, user_id, *room_ids,
        user_id, user_id,
        *unread_args, user_id, user_id,
        user_id, *room_ids, *unread_args,
    ]
    return sql, args


def notifications_sql(user_id: str, before: int | None, limit: int, only_highlight: bool
                      ) -> tuple[str, list[object]]:
    """The user's push actions that notify or highlight, newest first: ``room_id,
    stream_ordering, event_id, thread_id, highlight, actions, ts``."""
    d_extra = ""
    a_extra = ""
    d_args: list[object] = []
    a_args: list[object] = []
    if before is not None:
        d_extra += " AND d.stream_ordering < ?"
        a_extra += " AND a.stream_ordering < ?"
        d_args.append(before)
        a_args.append(before)
    if only_highlight:
        d_extra += " AND d.highlight <> 0"
        a_extra += " AND a.highlight <> 0"
    sql = (
        "SELECT room_id, stream_ordering, event_id, thread_id, highlight, actions, ts FROM ("
        " SELECT d.room_id, d.stream_ordering, d.event_id, d.thread_id, d.highlight,"
        "  d.actions, d.ts"
        " FROM event_push_members m JOIN event_push_defaults d ON d.room_id = m.room_id"
        "  AND d.stream_ordering >= m.since_so AND d.stream_ordering < m.until_so" + d_extra +
        " WHERE m.user_id = ? AND d.sender <> ?"
        "  AND NOT EXISTS (SELECT 1 FROM event_push_actions x WHERE x.user_id = m.user_id"
        "  AND x.room_id = d.room_id AND x.stream_ordering = d.stream_ordering)"
        " UNION ALL"
        " SELECT a.room_id, a.stream_ordering, a.event_id, a.thread_id, a.highlight,"
        "  a.actions, a.ts FROM event_push_actions a"
        " WHERE a.user_id = ? AND (a.notif <> 0 OR a.highlight <> 0)" + a_extra +
        ") n ORDER BY stream_ordering DESC LIMIT ?")
    return sql, [*d_args, user_id, user_id, user_id, *a_args, limit]


__all__ = ["READ_RECEIPT_TYPES", "notifications_sql", "unread_counts_sql"]
