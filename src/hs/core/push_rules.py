"""Push rules: the server-default rules, the merged client ruleset, and the evaluator.

Spec v1.19, client-server API "Push Rules" (modules/push.md): "Predefined Rules" gives
the defaults reproduced here as data. Spec v1.17 removed the legacy body-mention rules
(``.m.rule.contains_display_name``, ``.m.rule.roomnotif``, ``.m.rule.contains_user_name``,
MSC4210), but clients in the wild still send events without ``m.mentions``, so they are
kept by default (``legacy_mentions=True``) in their historical positions; the evaluator
skips them for events that carry ``m.mentions`` (MSC3952, see the note in
modules/mentions.md).

Public API:

* ``default_rules(user_id, legacy_mentions=True)`` - ``{kind: [rule, ...]}`` in priority
  order with the user's ID substituted.
* ``build_ruleset(user_id, user_rules, default_overrides)`` - the ``{"global": {...}}``
  body of GET /pushrules/ from what storage keeps: the user's own rules plus
  ``enabled``/``actions`` overrides of default rules. ``.m.rule.master`` stays first.
* ``compile_rules(ruleset, user_id) -> CompiledRules`` - once per (user, rules version);
  ``CompiledRulesCache`` keeps them keyed that way.
* ``flatten_event(event) -> FlatEvent`` - once per event, shared by every recipient.
* ``evaluate(compiled, flat, ctx) -> actions | None`` and ``evaluate_result`` (with
  notify/highlight/sound) - per (event, recipient). Compiled when ``hs._native`` is built.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from hs._native._push_py import KINDS, LEGACY_MENTION_RULE_IDS
from hs._native._push_py import split_path as split_dotted_path
from hs._native.push import (
    CompiledRules,
    EvaluationResult,
    FlatEvent,
    PushContext,
    compile_rules,
    evaluate,
    evaluate_result,
    flatten_event,
)

__all__ = [
    "KINDS",
    "LEGACY_MENTION_RULE_IDS",
    "CompiledRules",
    "CompiledRulesCache",
    "EvaluationResult",
    "FlatEvent",
    "PushContext",
    "build_ruleset",
    "compile_rules",
    "default_rules",
    "evaluate",
    "evaluate_result",
    "flatten_event",
    "split_dotted_path",
]

Rule = dict[str, Any]

_SOUND_DEFAULT: dict[str, Any] = {"set_tweak": "sound", "value": "default"}
_HIGHLIGHT: dict[str, Any] = {"set_tweak": "highlight"}
_USER = "[the user's Matrix ID]"
_LOCALPART = "[the local part of the user's Matrix ID]"


def _match(key: str, pattern: str) -> dict[str, Any]:
    return {"kind": "event_match", "key": key, "pattern": pattern}


def _rule(rule_id: str, conditions: list[dict[str, Any]], actions: list[Any]) -> Rule:
    return {
        "rule_id": rule_id,
        "default": True,
        "enabled": True,
        "conditions": conditions,
        "actions": actions,
    }


#: Spec "Default Override Rules", in order, with the legacy rules in their old places.
_OVERRIDE: tuple[Rule, ...] = (
    {**_rule(".m.rule.master", [], []), "enabled": False},
    _rule(".m.rule.suppress_notices", [_match("content.msgtype", "m.notice")], []),
    _rule(
        ".m.rule.invite_for_me",
        [
            _match("type", "m.room.member"),
            _match("content.membership", "invite"),
            _match("state_key", _USER),
        ],
        ["notify", _SOUND_DEFAULT],
    ),
    _rule(".m.rule.member_event", [_match("type", "m.room.member")], []),
    _rule(
        ".m.rule.is_user_mention",
        [
            {
                "kind": "event_property_contains",
                "key": "content.m\\.mentions.user_ids",
                "value": _USER,
            }
        ],
        ["notify", _SOUND_DEFAULT, _HIGHLIGHT],
    ),
    # Legacy (removed in v1.17): body contains the user's display name.
    _rule(
        ".m.rule.contains_display_name",
        [{"kind": "contains_display_name"}],
        ["notify", _SOUND_DEFAULT, _HIGHLIGHT],
    ),
    _rule(
        ".m.rule.is_room_mention",
        [
            {"kind": "event_property_is", "key": "content.m\\.mentions.room", "value": True},
            {"kind": "sender_notification_permission", "key": "room"},
        ],
        ["notify", _HIGHLIGHT],
    ),
    # Legacy (removed in v1.17): "@room" in the body from a sender allowed to use it.
    _rule(
        ".m.rule.roomnotif",
        [
            _match("content.body", "@room"),
            {"kind": "sender_notification_permission", "key": "room"},
        ],
        ["notify", _HIGHLIGHT],
    ),
    _rule(
        ".m.rule.tombstone",
        [_match("type", "m.room.tombstone"), _match("state_key", "")],
        ["notify", _HIGHLIGHT],
    ),
    _rule(".m.rule.reaction", [_match("type", "m.reaction")], []),
    _rule(
        ".m.rule.room.server_acl",
        [_match("type", "m.room.server_acl"), _match("state_key", "")],
        [],
    ),
    _rule(
        ".m.rule.suppress_edits",
        [
            {
                "kind": "event_property_is",
                "key": "content.m\\.relates_to.rel_type",
                "value": "m.replace",
            }
        ],
        [],
    ),
)

#: Legacy content rule (removed in v1.17): body contains the user's localpart.
_CONTENT: tuple[Rule, ...] = (
    {
        "rule_id": ".m.rule.contains_user_name",
        "default": True,
        "enabled": True,
        "pattern": _LOCALPART,
        "actions": ["notify", _SOUND_DEFAULT, _HIGHLIGHT],
    },
)

#: Spec "Default Underride Rules", in order.
_UNDERRIDE: tuple[Rule, ...] = (
    _rule(
        ".m.rule.call",
        [_match("type", "m.call.invite")],
        ["notify", {"set_tweak": "sound", "value": "ring"}],
    ),
    _rule(
        ".m.rule.encrypted_room_one_to_one",
        [{"kind": "room_member_count", "is": "2"}, _match("type", "m.room.encrypted")],
        ["notify", _SOUND_DEFAULT],
    ),
    _rule(
        ".m.rule.room_one_to_one",
        [{"kind": "room_member_count", "is": "2"}, _match("type", "m.room.message")],
        ["notify", _SOUND_DEFAULT],
    ),
    _rule(".m.rule.message", [_match("type", "m.room.message")], ["notify"]),
    _rule(".m.rule.encrypted", [_match("type", "m.room.encrypted")], ["notify"]),
)

_DEFAULTS: dict[str, tuple[Rule, ...]] = {
    "override": _OVERRIDE,
    "content": _CONTENT,
    "room": (),
    "sender": (),
    "underride": _UNDERRIDE,
}


def _localpart(user_id: str) -> str:
    """``@alice:example.org`` -> ``alice`` (what the legacy content rule looks for)."""
    body = user_id[1:] if user_id.startswith("@") else user_id
    return body.split(":", 1)[0]


def _substitute(value: Any, user_id: str, localpart: str) -> Any:
    """Deep-copy ``value`` replacing the spec's user placeholders."""
    if value == _USER:
        return user_id
    if value == _LOCALPART:
        return localpart
    if isinstance(value, dict):
        return {k: _substitute(v, user_id, localpart) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, user_id, localpart) for v in value]
    return value


def default_rules(user_id: str, legacy_mentions: bool = True) -> dict[str, list[Rule]]:
    """The server-default rules for ``user_id``, ``{kind: [rule, ...]}`` in priority order.

    Fresh objects every call, so callers may mutate them.
    """
    localpart = _localpart(user_id)
    out: dict[str, list[Rule]] = {}
    for kind in KINDS:
        out[kind] = [
            _substitute(rule, user_id, localpart)
            for rule in _DEFAULTS[kind]
            if legacy_mentions or rule["rule_id"] not in LEGACY_MENTION_RULE_IDS
        ]
    return out


def _apply_override(rule: Rule, override: Mapping[str, Any] | None) -> Rule:
    """A default rule with the user's stored ``enabled``/``actions`` applied."""
    if override:
        if isinstance(override.get("enabled"), bool):
            rule["enabled"] = override["enabled"]
        actions = override.get("actions")
        if isinstance(actions, list):
            rule["actions"] = copy.deepcopy(actions)
    return rule


def _user_rule(kind: str, rule: Any) -> Rule | None:
    """A stored user rule in client format (only the fields its kind uses); None if unusable."""
    if not isinstance(rule, Mapping) or not isinstance(rule.get("rule_id"), str):
        return None
    if kind == "content" and not isinstance(rule.get("pattern"), str):
        return None
    out: Rule = {
        "rule_id": rule["rule_id"],
        "default": False,
        "enabled": bool(rule.get("enabled", True)),
        "actions": copy.deepcopy(list(rule.get("actions", []))),
    }
    if kind in ("override", "underride"):
        out["conditions"] = copy.deepcopy(list(rule.get("conditions", [])))
    elif kind == "content":
        out["pattern"] = rule["pattern"]
    return out


def build_ruleset(
    user_id: str,
    user_rules: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    default_overrides: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
    legacy_mentions: bool = True,
) -> dict[str, dict[str, list[Rule]]]:
    """Merge defaults and the user's rules into the GET /pushrules/ body.

    ``user_rules`` maps kind -> the user's rules in priority order; ``default_overrides``
    maps (kind, rule_id) -> ``{"enabled": bool, "actions": [...]}`` (either key optional).
    User rules outrank defaults of the same kind, except ``.m.rule.master`` which the spec
    places above everything ("Predefined Rules").
    """
    defaults = default_rules(user_id, legacy_mentions)
    overrides = default_overrides or {}
    users = user_rules or {}
    out: dict[str, list[Rule]] = {}
    for kind in KINDS:
        dflt = [_apply_override(r, overrides.get((kind, r["rule_id"]))) for r in defaults[kind]]
        mine = [u for u in (_user_rule(kind, r) for r in users.get(kind, ())) if u is not None]
        if kind == "override":
            head = [r for r in dflt if r["rule_id"] == ".m.rule.master"]
            rest = [r for r in dflt if r["rule_id"] != ".m.rule.master"]
            out[kind] = head + mine + rest
        else:
            out[kind] = mine + dflt
    return {"global": out}


class CompiledRulesCache:
    """LRU of ``CompiledRules`` keyed by (user, rules version): compile once, evaluate often.

    ``version`` is whatever the storage layer bumps when a user's rules change (a stream
    position, a counter); a new version simply misses and recompiles.
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        self._max = max_entries
        self._entries: OrderedDict[tuple[str, Hashable], CompiledRules] = OrderedDict()

    def get(
        self, user_id: str, version: Hashable, load: Callable[[], Mapping[str, Any]]
    ) -> CompiledRules:
        """The compiled rules for ``user_id`` at ``version``; ``load()`` gives the ruleset."""
        key = (user_id, version)
        hit = self._entries.get(key)
        if hit is not None:
            self._entries.move_to_end(key)
            return hit
        compiled = compile_rules(load(), user_id)
        self._entries[key] = compiled
        if len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return compiled

    def invalidate(self, user_id: str) -> None:
        """Drop every cached version for ``user_id`` (e.g. on account deactivation)."""
        for key in [k for k in self._entries if k[0] == user_id]:
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
