"""Push rules storage: the user's own rules (ordered by priority per kind), their
``enabled``/``actions`` changes to server-default rules, and the per-user rules version.

Every change takes a position on the ``push_rules`` stream in the same transaction and
records it as the user's version, so compiled rules can be cached by (user, version) and
sync can tell whether the ruleset changed since a token.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from hs.storage.database import Database, Transaction
from hs.storage.events._util import chunks, qmarks
from hs.storage.streams import StreamIdGenerator

JsonDict = dict[str, Any]


@dataclass(slots=True)
class StoredRules:
    """One user's stored rules: what ``build_ruleset`` merges with the defaults."""

    #: kind -> the user's rules in priority order (client format, ``default`` False).
    user_rules: dict[str, list[JsonDict]]
    #: (kind, rule_id) -> {"enabled"?: bool, "actions"?: [...]} for default rules.
    overrides: dict[tuple[str, str], JsonDict]


class RuleNotFound(Exception):
    """A ``before``/``after`` anchor that is not one of the user's rules of that kind."""


def _loads(raw: Any) -> Any:
    return None if raw is None else orjson.loads(raw)


class PushRulesStore:
    def __init__(self, db: Database, stream: StreamIdGenerator) -> None:
        self.db = db
        self.stream = stream

    # -- reads ------------------------------------------------------------------------------

    async def get_rules(self, user_ids: Collection[str]) -> dict[str, StoredRules]:
        """Stored rules of many users (two queries per chunk); users without any get empty
        ``StoredRules``."""
        out = {u: StoredRules({}, {}) for u in user_ids}
        for part in chunks(list(out)):
            rows = await self.db.fetchall(
                "SELECT user_id, kind, rule_id, enabled, conditions, pattern, actions"
                f" FROM push_rules WHERE user_id IN ({qmarks(part)})"
                " ORDER BY user_id, kind, priority DESC", *part)
            for user_id, kind, rule_id, enabled, conditions, pattern, actions in rows:
                rule: JsonDict = {"rule_id": rule_id, "enabled": bool(enabled),
                                  "actions": orjson.loads(actions)}
                if conditions is not None:
                    rule["conditions"] = orjson.loads(conditions)
                if pattern is not None:
                    rule["pattern"] = pattern
                out[user_id].user_rules.setdefault(kind, []).append(rule)
            rows = await self.db.fetchall(
                "SELECT user_id, kind, rule_id, enabled, actions FROM push_rule_overrides"
                f" WHERE user_id IN ({qmarks(part)})", *part)
            for user_id, kind, rule_id, enabled, actions in rows:
                override: JsonDict = {}
                if enabled is not None:
                    override["enabled"] = bool(enabled)
                if actions is not None:
                    override["actions"] = orjson.loads(actions)
                out[user_id].overrides[(kind, rule_id)] = override
        return out

    async def get_versions(self, user_ids: Collection[str]) -> dict[str, int]:
        """Rules versions (0 = never changed) of many users."""
        out = dict.fromkeys(user_ids, 0)
        for part in chunks(list(out)):
            rows = await self.db.fetchall(
                "SELECT user_id, stream_id FROM push_rules_versions"
                f" WHERE user_id IN ({qmarks(part)})", *part)
            out.update({r[0]: int(r[1]) for r in rows})
        return out

    async def get_changed_users(self, since: int, upto: int) -> dict[str, int]:
        """Users whose rules changed in ``(since, upto]``, with their new version."""
        if since >= upto:
            return {}
        rows = await self.db.fetchall(
            "SELECT user_id, stream_id FROM push_rules_versions"
            " WHERE stream_id > ? AND stream_id <= ?", since, upto)
        return {r[0]: int(r[1]) for r in rows}

    # -- writes (each one transaction + one stream position) --------------------------------

    async def _bump(self, txn: Transaction, user_id: str, pos: int) -> None:
        await txn.execute(
            "INSERT INTO push_rules_versions (user_id, stream_id) VALUES (?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET stream_id = excluded.stream_id",
            user_id, pos)

    async def upsert_rule(self, user_id: str, kind: str, rule_id: str, *,
                          conditions: Sequence[Any] | None, pattern: str | None,
                          actions: Sequence[Any], before: str | None = None,
                          after: str | None = None) -> int:
        """Create or update a user rule; returns the new version.

        A new rule without ``before``/``after`` becomes the most important of its kind; an
        existing one keeps its place (and its ``enabled``) unless an anchor moves it.
        Raises ``RuleNotFound`` for an unknown anchor.
        """
        async with self.stream.next() as pos, self.db.transaction() as txn:
            rows = await txn.fetchall(
                "SELECT rule_id FROM push_rules WHERE user_id = ? AND kind = ?"
                " ORDER BY priority DESC", user_id, kind)
            order = [r[0] for r in rows]
            exists = rule_id in order
            anchor = before if before is not None else after
            if anchor is not None or not exists:
                if exists:
                    order.remove(rule_id)
                if anchor is None:
                    order.insert(0, rule_id)
                elif anchor not in order:
                    raise RuleNotFound(anchor)
                else:
                    at = order.index(anchor)
                    order.insert(at if before is not None else at + 1, rule_id)
            cond_json = None if conditions is None else orjson.dumps(conditions).decode()
            act_json = orjson.dumps(actions).decode()
            top = len(order)
            await txn.execute(
                "INSERT INTO push_rules (user_id, kind, rule_id, priority, enabled,"
                " conditions, pattern, actions) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (user_id, kind, rule_id) DO UPDATE SET"
                " conditions = excluded.conditions, pattern = excluded.pattern,"
                " actions = excluded.actions",
                user_id, kind, rule_id, top - order.index(rule_id), True, cond_json,
                pattern, act_json)
            await txn.executemany(
                "UPDATE push_rules SET priority = ? WHERE user_id = ? AND kind = ?"
                " AND rule_id = ?",
                [(top - i, user_id, kind, rid) for i, rid in enumerate(order)])
            await self._bump(txn, user_id, pos)
        return pos

    async def delete_rule(self, user_id: str, kind: str, rule_id: str) -> int | None:
        """Delete a user rule; the new version, or None when there was no such rule."""
        async with self.stream.next() as pos, self.db.transaction() as txn:
            count = await txn.execute(
                "DELETE FROM push_rules WHERE user_id = ? AND kind = ? AND rule_id = ?",
                user_id, kind, rule_id)
            if count > 0:
                await self._bump(txn, user_id, pos)
        return pos if count > 0 else None

    async def set_user_rule_attr(self, user_id: str, kind: str, rule_id: str,
                                 attr: str, value: Any) -> int | None:
        """Set ``enabled`` or ``actions`` of a user rule; None when it does not exist."""
        column, stored = _attr_value(attr, value)
        async with self.stream.next() as pos, self.db.transaction() as txn:
            count = await txn.execute(
                f"UPDATE push_rules SET {column} = ? WHERE user_id = ? AND kind = ?"
                " AND rule_id = ?", stored, user_id, kind, rule_id)
            if count > 0:
                await self._bump(txn, user_id, pos)
        return pos if count > 0 else None

    async def set_default_rule_attr(self, user_id: str, kind: str, rule_id: str,
                                    attr: str, value: Any) -> int:
        """Record the user's ``enabled`` or ``actions`` for a server-default rule."""
        column, stored = _attr_value(attr, value)
        async with self.stream.next() as pos, self.db.transaction() as txn:
            await txn.execute(
                f"INSERT INTO push_rule_overrides (user_id, kind, rule_id, {column})"
                " VALUES (?, ?, ?, ?) ON CONFLICT (user_id, kind, rule_id)"
                f" DO UPDATE SET {column} = excluded.{column}",
                user_id, kind, rule_id, stored)
            await self._bump(txn, user_id, pos)
        return pos


def _attr_value(attr: str, value: Any) -> tuple[str, Any]:
    """The column and stored value for an ``enabled``/``actions`` change."""
    if attr == "enabled":
        return "enabled", bool(value)
    if attr == "actions":
        return "actions", orjson.dumps(value).decode()
    raise ValueError(f"unknown rule attribute {attr!r}")


__all__ = ["PushRulesStore", "RuleNotFound", "StoredRules"]
