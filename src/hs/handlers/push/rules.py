"""Push rules: the /pushrules/ API semantics, per-user rules versions, and compiled rules
for the bulk evaluator.

Spec v1.19 client-server "Push Rules: API" (pushrules.yaml): rule IDs starting with ``.``
are the server's; user rules may not take them and server-default rules cannot be
deleted, but their ``enabled``/``actions`` can be changed. ``before``/``after`` may only
name user rules of the same kind. Every change bumps the user's version on the
``push_rules`` stream and wakes the user's /sync, which sends the whole ruleset as
``m.push_rules`` global account data (``rules_for_sync``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

from hs.core.push_rules import (
    KINDS,
    CompiledRules,
    CompiledRulesCache,
    build_ruleset,
    default_rules,
)
from hs.http.errors import MatrixError, bad_json, invalid_param, missing_param, not_found
from hs.notifier import Notifier
from hs.storage.push import PushRulesStore, RuleNotFound, StoredRules

Rule = dict[str, Any]

#: Action strings the server accepts (``dont_notify``/``coalesce`` are historical no-ops
#: that older clients still send; the evaluator ignores them).
_ACTION_STRINGS = frozenset({"notify", "dont_notify", "coalesce"})
_MEMBER_COUNT = re.compile(r"(==|<=|>=|<|>)?[0-9]{1,18}\Z")
#: Bounds against abuse: a rule is evaluated for every event the user receives.
MAX_RULE_ID_LENGTH = 255
MAX_CONDITIONS = 32
MAX_ACTIONS = 32
MAX_STRING = 1024
_VERSION_CACHE_SIZE = 100_000


class _Miss(Exception):
    """Raised from a cache loader to learn that the compiled rules are not cached."""


def _constant(ruleset: Mapping[str, Any]) -> Callable[[], Mapping[str, Any]]:
    return lambda: ruleset


def check_kind(scope: str, kind: str) -> None:
    if scope != "global":
        raise invalid_param(f"Unknown push rule scope {scope!r}")
    if kind not in KINDS:
        raise invalid_param(f"Unknown push rule kind {kind!r}")


def _check_str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise bad_json(f"{what} must be a string")
    if len(value) > MAX_STRING:
        raise bad_json(f"{what} is too long")
    return value


def validate_actions(actions: Any) -> list[Any]:
    """Spec "Actions": ``notify``, the historical strings, or ``set_tweak`` objects."""
    if actions is None:
        raise missing_param("actions")
    if not isinstance(actions, list):
        raise bad_json("actions must be a list")
    if len(actions) > MAX_ACTIONS:
        raise bad_json("Too many actions")
    for action in actions:
        if isinstance(action, str):
            if action not in _ACTION_STRINGS:
                raise bad_json(f"Unrecognised action {action!r}")
        elif isinstance(action, dict):
            _check_str(action.get("set_tweak"), "set_tweak")
        else:
            raise bad_json("Each action must be a string or an object")
    return actions


def validate_condition(cond: Any) -> dict[str, Any]:
    """The required fields of the condition kinds the spec defines; other kinds are kept
    (spec: an unrecognised condition never matches, so the rule never applies)."""
    if not isinstance(cond, dict):
        raise bad_json("Each condition must be an object")
    kind = _check_str(cond.get("kind"), "condition kind")
    if kind == "event_match":
        _check_str(cond.get("key"), "event_match key")
        _check_str(cond.get("pattern"), "event_match pattern")
    elif kind in ("event_property_is", "event_property_contains"):
        _check_str(cond.get("key"), f"{kind} key")
        if "value" not in cond:
            raise bad_json(f"{kind} needs a value")
        value = cond["value"]
        if isinstance(value, (float, dict, list)):
            raise bad_json(f"{kind} value must be a string, integer, boolean or null")
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53 - 1:
            raise bad_json(f"{kind} value is out of the canonical JSON range")
    elif kind == "room_member_count":
        spec = _check_str(cond.get("is"), "room_member_count is")
        if not _MEMBER_COUNT.match(spec):
            raise bad_json("room_member_count 'is' must be a number with an optional"
                           " ==, <, >, <= or >= prefix")
    elif kind == "sender_notification_permission":
        _check_str(cond.get("key"), "sender_notification_permission key")
    return cond


def validate_rule(kind: str, rule_id: str, body: Mapping[str, Any]
                  ) -> tuple[list[Any] | None, str | None, list[Any]]:
    """(conditions, pattern, actions) of a PUT body for a user rule of ``kind``."""
    if not rule_id or len(rule_id) > MAX_RULE_ID_LENGTH:
        raise invalid_param("Invalid rule ID length")
    if rule_id.startswith("."):
        raise invalid_param("Rule IDs starting with '.' are reserved for server-default rules")
    if "/" in rule_id or "\\" in rule_id:
        raise invalid_param("Rule IDs may not contain slashes or backslashes")
    actions = validate_actions(body.get("actions"))
    if kind in ("override", "underride"):
        raw = body.get("conditions", [])
        if not isinstance(raw, list):
            raise bad_json("conditions must be a list")
        if len(raw) > MAX_CONDITIONS:
            raise bad_json("Too many conditions")
        return [validate_condition(c) for c in raw], None, actions
    if kind == "content":
        if body.get("pattern") is None:
            raise missing_param("pattern")
        return None, _check_str(body["pattern"], "pattern"), actions
    # room/sender rules match the room ID / sender exactly: the rule ID is that ID.
    # (v12 room IDs carry no server name, so only the sigil is checked for rooms.)
    if not (rule_id.startswith("!") if kind == "room" else
            rule_id.startswith("@") and ":" in rule_id):
        what = "room ID" if kind == "room" else "user ID"
        raise invalid_param(f"The rule ID of a {kind} rule must be a {what}")
    return None, None, actions


class PushRulesHandler:
    def __init__(self, store: PushRulesStore, notifier: Notifier, *,
                 legacy_mentions: bool = True, cache_size: int = 10_000) -> None:
        self.store = store
        self.notifier = notifier
        self.legacy_mentions = legacy_mentions
        self.compiled = CompiledRulesCache(cache_size)
        #: user -> rules version, kept current through the "push_rules" stream.
        self._versions: dict[str, int] = {}
        self._seen = store.stream.current()

    # -- reads ------------------------------------------------------------------------------

    def _build(self, user_id: str, stored: StoredRules) -> dict[str, dict[str, list[Rule]]]:
        return build_ruleset(user_id, stored.user_rules, stored.overrides,
                             self.legacy_mentions)

    async def ruleset(self, user_id: str) -> dict[str, dict[str, list[Rule]]]:
        """The GET /pushrules/ body: ``{"global": {kind: [rule, ...]}}``."""
        stored = (await self.store.get_rules([user_id]))[user_id]
        return self._build(user_id, stored)

    async def get_rule(self, user_id: str, kind: str, rule_id: str) -> Rule:
        for rule in (await self.ruleset(user_id))["global"][kind]:
            if rule["rule_id"] == rule_id:
                return rule
        raise not_found("The push rule was not found.")

    async def rules_for_sync(self, user_id: str, since_pos: int | None
                             ) -> dict[str, dict[str, list[Rule]]] | None:
        """The ``m.push_rules`` content for /sync: always on an initial sync
        (``since_pos`` None), else only when the user's rules changed after ``since_pos``
        (a ``push_rules`` stream position, 0 included); None otherwise."""
        if since_pos is not None:
            version = (await self.store.get_versions([user_id]))[user_id]
            if version <= since_pos:
                return None
        return await self.ruleset(user_id)

    async def versions(self, user_ids: Collection[str]) -> dict[str, int]:
        """Current rules versions, from memory where possible (the stream tells which
        users changed since we last looked, also on other processes)."""
        current = self.store.stream.current()
        if current > self._seen:
            changed = await self.store.get_changed_users(self._seen, current)
            for user_id, version in changed.items():
                if user_id in self._versions:
                    self._versions[user_id] = max(self._versions[user_id], version)
            self._seen = current
        missing = [u for u in user_ids if u not in self._versions]
        if missing:
            if len(self._versions) + len(missing) > _VERSION_CACHE_SIZE:
                self._versions.clear()
            self._versions.update(await self.store.get_versions(missing))
        return {u: self._versions[u] for u in user_ids}

    async def compiled_for(self, user_ids: Collection[str]) -> dict[str, CompiledRules]:
        """Compiled rules of many users: cached by (user, version); the rules of the users
        not cached are loaded with one batched read."""
        versions = await self.versions(user_ids)
        out: dict[str, CompiledRules] = {}
        misses: list[str] = []

        def miss() -> Mapping[str, Any]:
            raise _Miss

        for user_id, version in versions.items():
            try:
                out[user_id] = self.compiled.get(user_id, version, miss)
            except _Miss:
                misses.append(user_id)
        if misses:
            stored = await self.store.get_rules(misses)
            for user_id in misses:
                ruleset = self._build(user_id, stored[user_id])
                out[user_id] = self.compiled.get(user_id, versions[user_id],
                                                 _constant(ruleset))
        return out

    # -- writes -----------------------------------------------------------------------------

    def _changed(self, user_id: str, pos: int) -> None:
        if user_id in self._versions:
            self._versions[user_id] = max(self._versions[user_id], pos)
        self.notifier.notify("push_rules", pos, users=[user_id])

    async def set_rule(self, user_id: str, kind: str, rule_id: str, body: Mapping[str, Any],
                       before: str | None = None, after: str | None = None) -> None:
        conditions, pattern, actions = validate_rule(kind, rule_id, body)
        for anchor in (before, after):
            if anchor is not None and anchor.startswith("."):
                raise invalid_param("Cannot place a rule relative to a server-default rule")
        try:
            pos = await self.store.upsert_rule(user_id, kind, rule_id, conditions=conditions,
                                               pattern=pattern, actions=actions,
                                               before=before, after=after)
        except RuleNotFound as exc:
            raise MatrixError(400, "M_UNKNOWN", f"before/after rule not found: {exc}") from None
        self._changed(user_id, pos)

    async def delete_rule(self, user_id: str, kind: str, rule_id: str) -> None:
        if rule_id.startswith("."):
            if self._default_rule(user_id, kind, rule_id) is None:
                raise not_found("The push rule was not found.")
            raise MatrixError(400, "M_UNKNOWN", "Server-default rules cannot be deleted")
        pos = await self.store.delete_rule(user_id, kind, rule_id)
        if pos is None:
            raise not_found("The push rule was not found.")
        self._changed(user_id, pos)

    async def get_attr(self, user_id: str, kind: str, rule_id: str, attr: str) -> Any:
        return (await self.get_rule(user_id, kind, rule_id))[attr]

    async def set_attr(self, user_id: str, kind: str, rule_id: str, attr: str,
                       body: Mapping[str, Any]) -> None:
        """PUT ``.../enabled`` (``{"enabled": bool}``) or ``.../actions``."""
        if attr == "enabled":
            value: Any = body.get("enabled")
            if value is None:
                raise missing_param("enabled")
            if not isinstance(value, bool):
                raise bad_json("enabled must be a boolean")
        else:
            value = validate_actions(body.get("actions"))
        if rule_id.startswith("."):
            if self._default_rule(user_id, kind, rule_id) is None:
                raise not_found("The push rule was not found.")
            pos: int | None = await self.store.set_default_rule_attr(
                user_id, kind, rule_id, attr, value)
        else:
            pos = await self.store.set_user_rule_attr(user_id, kind, rule_id, attr, value)
        if pos is None:
            raise not_found("The push rule was not found.")
        self._changed(user_id, pos)

    def _default_rule(self, user_id: str, kind: str, rule_id: str) -> Rule | None:
        for rule in default_rules(user_id, self.legacy_mentions)[kind]:
            if rule["rule_id"] == rule_id:
                return rule
        return None


__all__ = ["PushRulesHandler", "check_kind", "validate_actions", "validate_rule"]
