"""Push rule compiler and evaluator: the pure-Python twin of ``_push_c``.

A user's ruleset is compiled once (per user and rules version) into ``CompiledRules``;
an event is flattened once into a ``FlatEvent`` and then evaluated against the compiled
rules of every recipient. Semantics follow spec v1.19, client-server API "Push Rules"
(modules/push.md) and appendices "Glob-style matching" / "Dot-separated property paths".

Implementation-defined choices (both twins share them, the tests pin them):

* "case-insensitive" means both sides are compared after ``str.lower()``;
* a word boundary is the start/end of the value or any character outside
  ``[A-Za-z0-9_]`` (ASCII, as the spec words it), tested on the lowered value;
* room and sender rules match ``room_id`` / ``sender`` exactly (IDs are case-sensitive);
* a missing ``notifications`` level defaults to 50 for every key (spec: ``room`` is 50);
* legacy body-mention rules (``LEGACY_MENTION_RULE_IDS``) are skipped when the event's
  content has an ``m.mentions`` property (spec, "User and room mentions", note);
* events the user sent themselves never notify (spec: "MUST NOT notify ... for events
  that the user has sent themselves").

The Cython twin imports the rule-parsing helpers defined before the classes, so both
twins read rules identically; it has its own C versions of the per-event matchers
(``find_word``, ``glob_match``), which the tests check against these.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CompiledRules",
    "EvaluationResult",
    "FlatEvent",
    "PushContext",
    "compile_rules",
    "evaluate",
    "evaluate_result",
    "flatten_event",
]

#: Rule kinds in evaluation order (spec: override, content, room, sender, underride).
KINDS: tuple[str, ...] = ("override", "content", "room", "sender", "underride")

#: Pre-v1.17 defaults that looked for mentions in ``content.body``; MSC3952 disables
#: them for events that carry ``m.mentions``.
LEGACY_MENTION_RULE_IDS: frozenset[str] = frozenset(
    {".m.rule.contains_display_name", ".m.rule.contains_user_name", ".m.rule.roomnotif"}
)

#: Actions the spec says to ignore ("Historical Actions").
HISTORICAL_ACTIONS: frozenset[str] = frozenset({"dont_notify", "coalesce"})

#: Spec: ``notifications.room`` defaults to 50; we use 50 for any missing key.
DEFAULT_NOTIFICATION_LEVEL = 50

WORD_CHARS: frozenset[str] = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"
)
_NOT_WORD_BEFORE = r"(?<![A-Za-z0-9_])"
_NOT_WORD_AFTER = r"(?![A-Za-z0-9_])"
_MEMBER_COUNT_RE = re.compile(r"(==|<=|>=|<|>)?([0-9]{1,18})\Z")

#: room_member_count operators.
OP_EQ, OP_LT, OP_GT, OP_LE, OP_GE = range(5)
_OPS = {None: OP_EQ, "==": OP_EQ, "<": OP_LT, ">": OP_GT, "<=": OP_LE, ">=": OP_GE}

#: Value kinds for event_property_is/contains: the JSON scalar types the spec allows.
VK_STR, VK_INT, VK_BOOL, VK_NULL = range(4)
_CANONICAL_INT_MAX = 2**53 - 1

# ----------------------------------------------------------------------------------------
# Compile-time helpers (shared with the Cython twin)
# ----------------------------------------------------------------------------------------


def split_path(key: str) -> list[str]:
    """Split a dot-separated property path into property names.

    Appendix "Dot-separated property paths": ``\\.`` is a literal dot, ``\\\\`` a literal
    backslash, any other ``\\x`` stays as the two characters.
    """
    parts: list[str] = []
    cur: list[str] = []
    i, n = 0, len(key)
    while i < n:
        ch = key[i]
        if ch == "\\" and i + 1 < n and key[i + 1] in ".\\":
            cur.append(key[i + 1])
            i += 2
            continue
        if ch == ".":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


def escape_component(name: str) -> str:
    """Escape one property name so joined paths are unambiguous (canonical form)."""
    if "\\" in name:
        name = name.replace("\\", "\\\\")
    if "." in name:
        name = name.replace(".", "\\.")
    return name


def canonical_path(key: str) -> str:
    """The flattened-view key for a rule's ``key``: parsed, then re-escaped canonically."""
    return ".".join(escape_component(p) for p in split_path(key))


def is_literal_glob(pattern: str) -> bool:
    """True when the glob has no wildcard, so plain string comparison suffices."""
    return "*" not in pattern and "?" not in pattern


def glob_to_regex(pattern_lower: str, word_boundary: bool) -> re.Pattern[str]:
    """The glob as a regex: the reference the tests check ``glob_match`` against.

    Not used for evaluation: patterns like ``*a*a*a*b`` backtrack exponentially.
    """
    out: list[str] = []
    prev_star = False
    for ch in pattern_lower:
        if ch == "*":
            if not prev_star:
                out.append(".*")
            prev_star = True
            continue
        prev_star = False
        out.append("." if ch == "?" else re.escape(ch))
    body = "".join(out)
    if word_boundary:
        body = _NOT_WORD_BEFORE + "(?:" + body + ")" + _NOT_WORD_AFTER
    return re.compile(body, re.DOTALL)


def split_glob(pattern_lower: str) -> tuple[str, ...]:
    """A glob as its ``*``-separated segments (``?`` stays inside segments)."""
    return tuple(pattern_lower.split("*"))


def _seg_at(s: str, seg: str, i: int) -> bool:
    """Whether ``seg`` (``?`` = any one char) matches ``s`` at ``i``."""
    if i < 0 or i + len(seg) > len(s):
        return False
    return all(c == "?" or s[i + k] == c for k, c in enumerate(seg))


def _seg_find(s: str, seg: str, start: int) -> int:
    """Leftmost index >= ``start`` where ``seg`` matches, or -1."""
    if "?" not in seg:
        return s.find(seg, start) if start <= len(s) else -1
    for i in range(start, len(s) - len(seg) + 1):
        if _seg_at(s, seg, i):
            return i
    return -1


def glob_match(s: str, segs: tuple[str, ...], bounded: bool) -> bool:
    """Glob match without regex backtracking (no pathological patterns).

    ``bounded=False``: the glob must match all of ``s``. ``bounded=True``: some substring
    starting and ending at a word boundary must match (the ``content.body`` rule).
    With ``S0*S1*...*Sk``: place S0 at the earliest valid start, each middle segment
    leftmost after the previous one (earliest placements leave the most room, so they
    are optimal), then look for any Sk ending at a valid end.
    """
    n = len(s)
    first = segs[0]
    if len(segs) == 1:
        if not bounded:
            return len(first) == n and _seg_at(s, first, 0)
        i = _seg_find(s, first, 0)
        while i != -1:
            end = i + len(first)
            if (i == 0 or s[i - 1] not in WORD_CHARS) and (end == n or s[end] not in WORD_CHARS):
                return True
            i = _seg_find(s, first, i + 1)
        return False
    if not bounded:
        if not _seg_at(s, first, 0):
            return False
        i = 0
    else:
        i = _seg_find(s, first, 0)
        while i > 0 and s[i - 1] in WORD_CHARS:
            i = _seg_find(s, first, i + 1)
        if i == -1:
            return False
    p = i + len(first)
    for seg in segs[1:-1]:
        q = _seg_find(s, seg, p)
        if q == -1:
            return False
        p = q + len(seg)
    last = segs[-1]
    if not bounded:
        return n - len(last) >= p and _seg_at(s, last, n - len(last))
    q = _seg_find(s, last, p)
    while q != -1:
        end = q + len(last)
        if end == n or s[end] not in WORD_CHARS:
            return True
        q = _seg_find(s, last, q + 1)
    return False


def find_word(haystack: str, needle: str) -> bool:
    """Whether ``needle`` occurs in ``haystack`` bounded by non-word chars or the ends."""
    n = len(haystack)
    m = len(needle)
    i = haystack.find(needle)
    while i != -1:
        end = i + m
        if (i == 0 or haystack[i - 1] not in WORD_CHARS) and (
            end == n or haystack[end] not in WORD_CHARS
        ):
            return True
        i = haystack.find(needle, i + 1)
    return False


def parse_member_count(spec: Any) -> tuple[int, int] | None:
    """Parse a room_member_count ``is`` into (operator, number); None if malformed."""
    if not isinstance(spec, str):
        return None
    m = _MEMBER_COUNT_RE.match(spec)
    if m is None:
        return None
    return _OPS[m.group(1)], int(m.group(2))


def value_kind(value: Any) -> int:
    """Classify an event_property_is/contains value; -1 when the spec never matches it."""
    if value is None:
        return VK_NULL
    if isinstance(value, bool):
        return VK_BOOL
    if isinstance(value, int):
        return VK_INT if -_CANONICAL_INT_MAX <= value <= _CANONICAL_INT_MAX else -1
    if isinstance(value, str):
        return VK_STR
    return -1


def normalize_actions(actions: Any) -> list[Any] | None:
    """Drop the historical ``dont_notify``/``coalesce`` actions; None if not a list."""
    if not isinstance(actions, list):
        return None
    return [a for a in actions if not (isinstance(a, str) and a in HISTORICAL_ACTIONS)]


def summarize_actions(actions: list[Any]) -> tuple[bool, bool, Any]:
    """(notify, highlight, sound) from an actions list.

    Spec "set_tweak": highlight without a value is true; no highlight tweak is false.
    The last tweak of a name wins.
    """
    notify = False
    highlight = False
    sound: Any = None
    for a in actions:
        if a == "notify":
            notify = True
        elif isinstance(a, Mapping):
            tweak = a.get("set_tweak")
            if tweak == "highlight":
                v = a.get("value", True)
                highlight = v if isinstance(v, bool) else False
            elif tweak == "sound":
                sound = a.get("value")
    return notify, highlight, sound


def normalize_levels(levels: Mapping[str, Any] | None) -> dict[str, int]:
    """Keep the usable ``notifications`` entries: int levels, or decimal strings (old rooms)."""
    out: dict[str, int] = {}
    if not levels:
        return out
    for k, v in levels.items():
        if not isinstance(k, str):
            continue
        if isinstance(v, int) and not isinstance(v, bool):
            out[k] = v
        elif isinstance(v, str):
            s = v.strip()
            body = s[1:] if s[:1] in ("-", "+") else s
            if body.isascii() and body.isdigit():
                out[k] = int(s)
    return out


def check_int(name: str, value: Any) -> int:
    """Reject non-integers early (a typed error, not a wrong answer later)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return value


_DISPLAY_NAME_CACHE: dict[str, str] = {}


def lowered_display_name(name: Any) -> str | None:
    """The lowered display name, cached per name; None when it can never match."""
    if not isinstance(name, str) or not name:
        return None
    low = _DISPLAY_NAME_CACHE.get(name)
    if low is None:
        if len(_DISPLAY_NAME_CACHE) >= 65536:
            _DISPLAY_NAME_CACHE.clear()
        low = name.lower()
        _DISPLAY_NAME_CACHE[name] = low
    return low


def iter_kinds(ruleset: Mapping[str, Any]) -> Iterator[tuple[str, list[Any]]]:
    """Yield (kind, rules) in priority order from ``{"global": {...}}`` or the bare kinds."""
    if not isinstance(ruleset, Mapping):
        raise TypeError("ruleset must be a mapping")
    scope = ruleset.get("global", ruleset)
    if not isinstance(scope, Mapping):
        raise TypeError("ruleset['global'] must be a mapping")
    for kind in KINDS:
        rules = scope.get(kind)
        if isinstance(rules, list):
            yield kind, rules


# ----------------------------------------------------------------------------------------
# Flattened event
# ----------------------------------------------------------------------------------------


class FlatEvent:
    """An event's dotted-path view, built once and shared by every recipient's evaluation."""

    __slots__ = ("_lower", "body_lower", "has_mentions", "room_id", "sender", "values")

    def __init__(
        self, values: dict[str, Any], has_mentions: bool, sender: Any, room_id: Any
    ) -> None:
        self.values = values
        self.has_mentions = has_mentions
        self.sender = sender
        self.room_id = room_id
        body = values.get("content.body")
        self.body_lower: str | None = body.lower() if isinstance(body, str) else None
        self._lower: dict[str, str] = {}

    def lowered(self, path: str) -> str | None:
        """The lowered string at ``path`` (cached), or None when absent/not a string."""
        low = self._lower.get(path)
        if low is None:
            v = self.values.get(path)
            if not isinstance(v, str):
                return None
            low = v.lower()
            self._lower[path] = low
        return low


_LEAF_TYPES = frozenset({str, int, list, bool, type(None)})


def flatten_event(event: Mapping[str, Any]) -> FlatEvent:
    """Flatten nested objects into ``{escaped.dotted.path: leaf}``; arrays stay leaves.

    Iterative (no recursion limit on hostile nesting); non-string keys are skipped.
    """
    if not isinstance(event, Mapping):
        raise TypeError("event must be a mapping")
    values: dict[str, Any] = {}
    stack: list[tuple[str, Mapping[Any, Any]]] = [("", event)]
    while stack:
        prefix, obj = stack.pop()
        for k, v in obj.items():
            if not isinstance(k, str):
                continue
            path = prefix + escape_component(k)
            tv = type(v)
            if tv is dict or (tv not in _LEAF_TYPES and isinstance(v, Mapping)):
                stack.append((path + ".", v))
            else:
                values[path] = v
    content = event.get("content")
    has_mentions = isinstance(content, Mapping) and "m.mentions" in content
    return FlatEvent(values, has_mentions, event.get("sender"), event.get("room_id"))


# ----------------------------------------------------------------------------------------
# Context and results
# ----------------------------------------------------------------------------------------


class PushContext:
    """Per (event, recipient) facts the rules need but the event does not carry."""

    __slots__ = (
        "display_name",
        "display_name_lower",
        "notification_power_levels",
        "room_member_count",
        "sender_power_level",
    )

    def __init__(
        self,
        room_member_count: int,
        sender_power_level: int = 0,
        notification_power_levels: Mapping[str, Any] | None = None,
        display_name: str | None = None,
    ) -> None:
        self.room_member_count = check_int("room_member_count", room_member_count)
        self.sender_power_level = check_int("sender_power_level", sender_power_level)
        self.notification_power_levels = normalize_levels(notification_power_levels)
        self.display_name = display_name
        self.display_name_lower = lowered_display_name(display_name)


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    """The winning rule and what its actions mean.

    One instance per compiled rule, shared by every evaluation: treat it (and the tweak
    dicts inside ``actions``) as read-only; ``evaluate`` hands out a fresh list instead.
    """

    rule_id: str
    kind: str
    actions: tuple[Any, ...]
    notify: bool
    highlight: bool
    sound: Any


# ----------------------------------------------------------------------------------------
# Compiled conditions
# ----------------------------------------------------------------------------------------

_Cond = Callable[[FlatEvent, PushContext], bool]


def _strict_eq(kind: int, want: Any, v: Any) -> bool:
    """Spec event_property_is: exact match, no casts (``true`` is not ``1``)."""
    if kind == VK_STR:
        return isinstance(v, str) and v == want
    if kind == VK_BOOL:
        return isinstance(v, bool) and v is want
    if kind == VK_INT:
        return isinstance(v, int) and not isinstance(v, bool) and v == want
    return v is None


def _compile_condition(cond: Any) -> _Cond | None:
    """One condition -> a predicate; None when it can never match (unknown/malformed)."""
    if not isinstance(cond, Mapping):
        return None
    kind = cond.get("kind")
    if kind == "event_match":
        key, pattern = cond.get("key"), cond.get("pattern")
        if not isinstance(key, str) or not isinstance(pattern, str):
            return None
        return _compile_match(canonical_path(key), pattern)
    if kind in ("event_property_is", "event_property_contains"):
        key = cond.get("key")
        if not isinstance(key, str) or "value" not in cond:
            return None
        want = cond["value"]
        vk = value_kind(want)
        if vk < 0:
            return None
        path = canonical_path(key)
        if kind == "event_property_is":

            def prop_is(ev: FlatEvent, ctx: PushContext) -> bool:
                return path in ev.values and _strict_eq(vk, want, ev.values[path])

            return prop_is

        def prop_contains(ev: FlatEvent, ctx: PushContext) -> bool:
            arr = ev.values.get(path)
            if not isinstance(arr, (list, tuple)):
                return False
            return any(_strict_eq(vk, want, x) for x in arr)

        return prop_contains
    if kind == "contains_display_name":

        def display_name(ev: FlatEvent, ctx: PushContext) -> bool:
            name = ctx.display_name_lower
            body = ev.body_lower
            return name is not None and body is not None and find_word(body, name)

        return display_name
    if kind == "room_member_count":
        parsed = parse_member_count(cond.get("is"))
        if parsed is None:
            return None
        op, num = parsed

        def member_count(ev: FlatEvent, ctx: PushContext) -> bool:
            c = ctx.room_member_count
            if op == OP_EQ:
                return c == num
            if op == OP_LT:
                return c < num
            if op == OP_GT:
                return c > num
            if op == OP_LE:
                return c <= num
            return c >= num

        return member_count
    if kind == "sender_notification_permission":
        nkey = cond.get("key")
        if not isinstance(nkey, str):
            return None

        def permission(ev: FlatEvent, ctx: PushContext) -> bool:
            required = ctx.notification_power_levels.get(nkey, DEFAULT_NOTIFICATION_LEVEL)
            return ctx.sender_power_level >= required

        return permission
    return None


def _compile_match(path: str, pattern: str) -> _Cond:
    """event_match: whole-value glob, except word-bounded substring for ``content.body``."""
    low = pattern.lower()
    if path == "content.body":
        if is_literal_glob(low):

            def body_literal(ev: FlatEvent, ctx: PushContext) -> bool:
                body = ev.body_lower
                return body is not None and find_word(body, low)

            return body_literal
        bsegs = split_glob(low)

        def body_glob(ev: FlatEvent, ctx: PushContext) -> bool:
            body = ev.body_lower
            return body is not None and glob_match(body, bsegs, True)

        return body_glob
    if is_literal_glob(low):

        def literal(ev: FlatEvent, ctx: PushContext) -> bool:
            return ev.lowered(path) == low

        return literal
    segs = split_glob(low)

    def glob(ev: FlatEvent, ctx: PushContext) -> bool:
        v = ev.lowered(path)
        return v is not None and glob_match(v, segs, False)

    return glob


def _compile_exact(attr: str, want: str) -> _Cond:
    """Room/sender rules: the rule_id equals the event's room_id/sender exactly."""
    if attr == "room_id":
        return lambda ev, ctx: ev.room_id == want
    return lambda ev, ctx: ev.sender == want


# ----------------------------------------------------------------------------------------
# Compiled ruleset
# ----------------------------------------------------------------------------------------


class _Rule:
    __slots__ = ("conds", "legacy", "result")

    def __init__(self, conds: tuple[_Cond, ...], legacy: bool, result: EvaluationResult):
        self.conds = conds
        self.legacy = legacy
        self.result = result


class CompiledRules:
    """A user's enabled rules in priority order, with every pattern pre-processed."""

    __slots__ = ("_rules", "rule_ids", "user_id")

    def __init__(self, user_id: str, rules: list[_Rule]) -> None:
        self.user_id = user_id
        self._rules = tuple(rules)
        #: (kind, rule_id) of the rules that can match, in evaluation order.
        self.rule_ids = tuple((r.result.kind, r.result.rule_id) for r in rules)

    def __len__(self) -> int:
        return len(self._rules)


def _compile_rule(kind: str, rule: Any) -> _Rule | None:
    """A rule -> ``_Rule``; None if disabled, malformed or containing a never-matching part."""
    if not isinstance(rule, Mapping) or rule.get("enabled", True) is not True:
        return None
    rule_id = rule.get("rule_id")
    actions = normalize_actions(rule.get("actions"))
    if not isinstance(rule_id, str) or actions is None:
        return None
    conds: list[_Cond] = []
    if kind in ("override", "underride"):
        raw = rule.get("conditions", [])
        if not isinstance(raw, list):
            return None
        for c in raw:
            compiled = _compile_condition(c)
            if compiled is None:
                return None  # spec: an unrecognised condition never matches
            conds.append(compiled)
    elif kind == "content":
        pattern = rule.get("pattern")
        if not isinstance(pattern, str):
            return None
        conds.append(_compile_match("content.body", pattern))
    else:
        conds.append(_compile_exact("room_id" if kind == "room" else "sender", rule_id))
    notify, highlight, sound = summarize_actions(actions)
    result = EvaluationResult(rule_id, kind, tuple(actions), notify, highlight, sound)
    return _Rule(tuple(conds), rule_id in LEGACY_MENTION_RULE_IDS, result)


def compile_rules(ruleset: Mapping[str, Any], user_id: str) -> CompiledRules:
    """Compile a client-format ruleset (as served by GET /pushrules/) for ``user_id``."""
    if not isinstance(user_id, str):
        raise TypeError("user_id must be a str")
    rules: list[_Rule] = []
    for kind, items in iter_kinds(ruleset):
        for rule in items:
            compiled = _compile_rule(kind, rule)
            if compiled is not None:
                rules.append(compiled)
    return CompiledRules(user_id, rules)


# ----------------------------------------------------------------------------------------
# Evaluation (the hot loop)
# ----------------------------------------------------------------------------------------


def evaluate_result(
    compiled: CompiledRules, event: FlatEvent | Mapping[str, Any], ctx: PushContext
) -> EvaluationResult | None:
    """The first matching enabled rule's result, or None (no rule, or the user's own event)."""
    if not isinstance(compiled, CompiledRules):
        raise TypeError("compiled must be CompiledRules")
    if not isinstance(ctx, PushContext):
        raise TypeError("ctx must be PushContext")
    ev = event if isinstance(event, FlatEvent) else flatten_event(event)
    if ev.sender == compiled.user_id:
        return None
    has_mentions = ev.has_mentions
    for rule in compiled._rules:
        if rule.legacy and has_mentions:
            continue
        for cond in rule.conds:
            if not cond(ev, ctx):
                break
        else:
            return rule.result
    return None


def evaluate(
    compiled: CompiledRules, event: FlatEvent | Mapping[str, Any], ctx: PushContext
) -> list[Any] | None:
    """The winning rule's actions (a fresh list, possibly empty), or None if nothing matched."""
    res = evaluate_result(compiled, event, ctx)
    return None if res is None else list(res.actions)
