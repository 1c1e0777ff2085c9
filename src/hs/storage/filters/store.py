"""Per-user filter storage. Filter IDs are small integers per user; uploading a filter
identical to one already stored returns its ID (Element uploads the same filter on every
start, so storing each copy would only grow the table)."""

from __future__ import annotations

from hs.storage.database import Database, Transaction, UniqueViolation


class FilterStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_filter(self, user_id: str, filter_json: str) -> int:
        """Store ``filter_json`` (canonical JSON text) for the user; returns its ID."""

        async def txn(t: Transaction) -> int:
            existing = await t.fetchval(
                "SELECT filter_id FROM user_filters WHERE user_id = ? AND filter_json = ?",
                user_id, filter_json,
            )
            if existing is not None:
                return int(existing)
            last = await t.fetchval(
                "SELECT max(filter_id) FROM user_filters WHERE user_id = ?", user_id
            )
            new_id = 0 if last is None else int(last) + 1
            await t.execute(
                "INSERT INTO user_filters (user_id, filter_id, filter_json) VALUES (?, ?, ?)",
                user_id, new_id, filter_json,
            )
            return new_id

        # Two concurrent uploads may pick the same next ID: the loser retries.
        for attempt in range(5):
            try:
                return await self.db.run_transaction(txn)
            except UniqueViolation:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    async def get_filter(self, user_id: str, filter_id: int) -> str | None:
        value = await self.db.fetchval(
            "SELECT filter_json FROM user_filters WHERE user_id = ? AND filter_id = ?",
            user_id, filter_id,
        )
        return None if value is None else str(value)
