# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Push rule compiler and evaluator: the Cython twin of ``_push_py``.

Same API and results as ``_push_py`` (see its docstring for the spec references and the
implementation-defined choices). What is native here: the flattened event, the compiled
rule/condition objects (cdef classes with a virtual ``match``), the word-bounded body
search and segment glob matcher (C-level ``PyUnicode_Find`` plus ASCII boundary tests)
and the evaluation loop.
Rule *parsing* helpers (paths, globs, member counts, actions) are imported from the pure
twin so both twins read rules identically; they run once per compile, not per event.
"""

from collections.abc import Mapping

from cpython.unicode cimport PyUnicode_Find

from hs._native._push_py import (
    DEFAULT_NOTIFICATION_LEVEL,
    LEGACY_MENTION_RULE_IDS,
    canonical_path,
    check_int,
    escape_component,
    is_literal_glob,
    iter_kinds,
    lowered_display_name,
    normalize_actions,
    normalize_levels,
    parse_member_count,
    split_glob,
    summarize_actions,
    value_kind,
)

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

cdef enum:
    OP_EQ = 0
    OP_LT = 1
    OP_GT = 2
    OP_LE = 3
    OP_GE = 4

cdef enum:
    VK_STR = 0
    VK_INT = 1
    VK_BOOL = 2
    VK_NULL = 3


cdef inline bint _is_word(Py_UCS4 c) noexcept:
    """Spec word characters: [A-Za-z0-9_] (ASCII only)."""
    return (
        (c >= 97 and c <= 122) or (c >= 65 and c <= 90) or (c >= 48 and c <= 57) or c == 95
    )


cdef bint _find_word(str haystack, str needle) except -1:
    """Whether ``needle`` occurs in ``haystack`` with non-word chars (or ends) around it."""
    cdef Py_ssize_t n = len(haystack)
    cdef Py_ssize_t m = len(needle)
    cdef Py_ssize_t i = PyUnicode_Find(haystack, needle, 0, n, 1)
    cdef Py_ssize_t end
    while i >= 0:
        end = i + m
        if (i == 0 or not _is_word(haystack[i - 1])) and (
            end == n or not _is_word(haystack[end])
        ):
            return True
        if i + 1 > n:
            break
        i = PyUnicode_Find(haystack, needle, i + 1, n, 1)
    return False


cdef bint _seg_at(str s, str seg, Py_ssize_t i) except -1:
    """Whether ``seg`` (``?`` = any one char) matches ``s`` at ``i``."""
    cdef Py_ssize_t m = len(seg)
    cdef Py_ssize_t k
    cdef Py_UCS4 c
    if i < 0 or i + m > len(s):
        return False
    for k in range(m):
        c = seg[k]
        if c != 63 and s[i + k] != c:  # 63 == "?"
            return False
    return True


cdef Py_ssize_t _seg_find(str s, str seg, Py_ssize_t start) except -2:
    """Leftmost index >= ``start`` where ``seg`` matches, or -1."""
    cdef Py_ssize_t n = len(s)
    cdef Py_ssize_t m = len(seg)
    cdef Py_ssize_t i
    if start > n:
        return -1
    if "?" not in seg:
        return PyUnicode_Find(s, seg, start, n, 1)
    for i in range(start, n - m + 1):
        if _seg_at(s, seg, i):
            return i
    return -1


cdef bint _glob_match(str s, tuple segs, bint bounded) except -1:
    """Same algorithm as ``_push_py.glob_match`` (see there for why it is correct)."""
    cdef Py_ssize_t n = len(s)
    cdef Py_ssize_t nsegs = len(segs)
    cdef str first = <str>segs[0]
    cdef str seg, last
    cdef Py_ssize_t i, j, p, q, end
    if nsegs == 1:
        if not bounded:
            return len(first) == n and _seg_at(s, first, 0)
        i = _seg_find(s, first, 0)
        while i != -1:
            end = i + len(first)
            if (i == 0 or not _is_word(s[i - 1])) and (end == n or not _is_word(s[end])):
                return True
            i = _seg_find(s, first, i + 1)
        return False
    if not bounded:
        if not _seg_at(s, first, 0):
            return False
        i = 0
    else:
        i = _seg_find(s, first, 0)
        while i > 0 and _is_word(s[i - 1]):
            i = _seg_find(s, first, i + 1)
        if i == -1:
            return False
    p = i + len(first)
    for j in range(1, nsegs - 1):
        seg = <str>segs[j]
        q = _seg_find(s, seg, p)
        if q == -1:
            return False
        p = q + len(seg)
    last = <str>segs[nsegs - 1]
    if not bounded:
        return n - len(last) >= p and _seg_at(s, last, n - len(last))
    q = _seg_find(s, last, p)
    while q != -1:
        end = q + len(last)
        if end == n or not _is_word(s[end]):
            return True
        q = _seg_find(s, last, q + 1)
    return False


def glob_match(s, segs, bounded):
    """Python-visible glob matcher (tests compare it with the pure twin)."""
    if not isinstance(s, str) or not isinstance(segs, tuple) or not segs:
        raise TypeError("glob_match takes a str and a non-empty tuple of str")
    for seg in segs:
        if not isinstance(seg, str):
            raise TypeError("glob segments must be str")
    return _glob_match(s, segs, bool(bounded))


def find_word(haystack, needle):
    """Python-visible word-bounded search (tests compare it with the pure twin)."""
    if not isinstance(haystack, str) or not isinstance(needle, str):
        raise TypeError("find_word takes two str")
    return _find_word(haystack, needle)


# ----------------------------------------------------------------------------------------
# Flattened event
# ----------------------------------------------------------------------------------------


cdef class FlatEvent:
    """An event's dotted-path view, built once and shared by every recipient's evaluation."""

    cdef readonly dict values
    cdef readonly bint has_mentions
    cdef readonly object sender
    cdef readonly object room_id
    cdef readonly object body_lower
    cdef dict _lower

    def __init__(self, dict values, bint has_mentions, sender, room_id):
        self.values = values
        self.has_mentions = has_mentions
        self.sender = sender
        self.room_id = room_id
        body = values.get("content.body")
        self.body_lower = body.lower() if isinstance(body, str) else None
        self._lower = {}

    cdef object _lowered(self, str path):
        cdef object low = self._lower.get(path)
        cdef object v
        if low is None:
            v = self.values.get(path)
            if not isinstance(v, str):
                return None
            low = v.lower()
            self._lower[path] = low
        return low

    def lowered(self, path):
        """The lowered string at ``path`` (cached), or None when absent/not a string."""
        if not isinstance(path, str):
            raise TypeError("path must be a str")
        return self._lowered(path)


def flatten_event(event):
    """Flatten nested objects into ``{escaped.dotted.path: leaf}``; arrays stay leaves.

    Iterative (no C recursion on hostile nesting); non-string keys are skipped.
    """
    if not isinstance(event, Mapping):
        raise TypeError("event must be a mapping")
    cdef dict values = {}
    cdef list stack = [("", event)]
    cdef str prefix, path
    cdef object obj, k, v, tv
    while stack:
        prefix, obj = stack.pop()
        for k, v in obj.items():
            if not isinstance(k, str):
                continue
            if "\\" in k or "." in k:
                path = prefix + escape_component(k)
            else:
                path = prefix + <str>k
            tv = type(v)
            if tv is dict:
                stack.append((path + ".", v))
            elif tv is str or tv is int or tv is list or v is None or tv is bool:
                values[path] = v
            elif isinstance(v, Mapping):
                stack.append((path + ".", v))
            else:
                values[path] = v
    content = event.get("content")
    cdef bint has_mentions = isinstance(content, Mapping) and "m.mentions" in content
    return FlatEvent(values, has_mentions, event.get("sender"), event.get("room_id"))


# ----------------------------------------------------------------------------------------
# Context and results
# ----------------------------------------------------------------------------------------


cdef class PushContext:
    """Per (event, recipient) facts the rules need but the event does not carry."""

    cdef readonly object room_member_count
    cdef readonly object sender_power_level
    cdef readonly dict notification_power_levels
    cdef readonly object display_name
    cdef readonly object display_name_lower

    def __init__(
        self,
        room_member_count,
        sender_power_level=0,
        notification_power_levels=None,
        display_name=None,
    ):
        self.room_member_count = check_int("room_member_count", room_member_count)
        self.sender_power_level = check_int("sender_power_level", sender_power_level)
        self.notification_power_levels = normalize_levels(notification_power_levels)
        self.display_name = display_name
        self.display_name_lower = lowered_display_name(display_name)


cdef class EvaluationResult:
    """The winning rule and what its actions mean (one per compiled rule: read-only)."""

    cdef readonly str rule_id
    cdef readonly str kind
    cdef readonly tuple actions
    cdef readonly bint notify
    cdef readonly bint highlight
    cdef readonly object sound

    def __init__(self, str rule_id, str kind, tuple actions, bint notify, bint highlight, sound):
        self.rule_id = rule_id
        self.kind = kind
        self.actions = actions
        self.notify = notify
        self.highlight = highlight
        self.sound = sound

    def __repr__(self):
        return (
            f"EvaluationResult(rule_id={self.rule_id!r}, kind={self.kind!r}, "
            f"actions={self.actions!r}, notify={self.notify!r}, "
            f"highlight={self.highlight!r}, sound={self.sound!r})"
        )

    def __eq__(self, other):
        if not isinstance(other, EvaluationResult):
            return NotImplemented
        cdef EvaluationResult o = <EvaluationResult>other
        return (
            self.rule_id == o.rule_id and self.kind == o.kind and self.actions == o.actions
            and self.notify == o.notify and self.highlight == o.highlight
            and self.sound == o.sound
        )

    def __hash__(self):
        return hash((self.rule_id, self.kind))


# ----------------------------------------------------------------------------------------
# Compiled conditions: one cdef class per kind, dispatched through a C vtable
# ----------------------------------------------------------------------------------------


cdef class _Cond:
    cdef int match(self, FlatEvent ev, PushContext ctx) except -1:
        return 0


cdef class _MatchLiteral(_Cond):
    cdef str path
    cdef str low

    cdef int match(self, FlatEvent ev, PushContext ctx) except -1:
        cdef object v = ev._lowered(self.path)
        return v is not None and <str>v == self.low


cdef class _MatchGlob(_Cond):
    cdef str path
    cdef tuple segs

    cdef int match(self, FlatEvent ev, PushContext ctx) except -1:
        cdef object v = ev._lowered(self.path)
        return v is not None and _glob_match(<str>v, self.segs, False)


cdef class _BodyLiteral(_Cond):
    cdef str low

    cdef int match(self, FlatEvent ev, PushContext ctx) except -1:
        cdef object body = ev.body_lower
        return body is not None and _find_word(<str>body, self.low)


cdef class _BodyGlob(_Cond):
    cdef tuple segs

    cdef int match(self, FlatEvent ev, PushContext ctx) except -1:
        cdef object body = ev.body_lower
        return body is not None and _glob_match(<str>body, self.segs, True)


cdef inline bint _strict_eq(int kind, object want, object v) except -1:
    """Spec event_property_is: exact match, no casts (``true`` is not ``1``)."""
    if kind == VK_STR:
        return isinstance(v, str) and v == want
    if kind == VK_BOOL:
        return isinstance(v, bool) and v is want
    if kind == VK_INT:
        return isinstance(v, int) and not isinstance(v, bool) and v == want
    return v is None


cdef class _PropIs(_Cond):
    cdef str path
    cdef object want
    cdef int vk

    cdef int match(self, FlatEvent ev, PushContext ctx) except -1:
        cdef dict values = ev.values
        if self.path not in values:
            return 0
        return _strict_eq(self.vk, self.want, values[self.path])


cdef class _PropContains(_Cond):
    cdef str path
    cdef object want
    cdef int vk

    cdef int match(self, FlatEvent ev, PushContext ctx) except -1:
        cdef object arr = ev.values.get(self.path)
        cdef object x
        if not isinstance(arr, (list, tuple)):
            return 0
        for x in arr:
            if _strict_eq(self.vk, self.want, x):
                return 1
        return 0


cdef class _DisplayName(_Cond):
    cdef int match(self, FlatEvent ev, PushContext ctx) except -1:
        cdef object name = ctx.display_name_lower
        cdef object body = ev.body_lower
        return name is not None and body is not None and _find_word(<str>body, <str>name)


cdef class _MemberCount(_Cond):
    cdef int op
    cdef object num

    cdef int match(self, FlatEvent ev, PushContext ctx) except -1:
        cdef object c = ctx.room_member_count
        if self.op == OP_EQ:
            return c == self.num
        if self.op == OP_LT:
            return c < self.num
        if self.op == OP_GT:
            return c > self.num
        if self.op == OP_LE:
            return c <= self.num
        return c >= self.num


cdef class _SenderPermission(_Cond):
    cdef str key

    cdef int match(self, FlatEvent ev, PushContext ctx) except -1:
        required = ctx.notification_power_levels.get(self.key, DEFAULT_NOTIFICATION_LEVEL)
        return ctx.sender_power_level >= required


cdef class _RoomIs(_Cond):
    cdef str want

    cdef int match(self, FlatEvent ev, PushContext ctx) except -1:
        return ev.room_id == self.want


cdef class _SenderIs(_Cond):
    cdef str want

    cdef int match(self, FlatEvent ev, PushContext ctx) except -1:
        return ev.sender == self.want


cdef _Cond _compile_match(str path, str pattern):
    """event_match: whole-value glob, except word-bounded substring for ``content.body``."""
    cdef str low = pattern.lower()
    cdef _MatchLiteral lit
    cdef _MatchGlob glob
    cdef _BodyLiteral blit
    cdef _BodyGlob bglob
    if path == "content.body":
        if is_literal_glob(low):
            blit = _BodyLiteral.__new__(_BodyLiteral)
            blit.low = low
            return blit
        bglob = _BodyGlob.__new__(_BodyGlob)
        bglob.segs = split_glob(low)
        return bglob
    if is_literal_glob(low):
        lit = _MatchLiteral.__new__(_MatchLiteral)
        lit.path = path
        lit.low = low
        return lit
    glob = _MatchGlob.__new__(_MatchGlob)
    glob.path = path
    glob.segs = split_glob(low)
    return glob


cdef _Cond _compile_condition(object cond):
    """One condition -> a ``_Cond``; None when it can never match (unknown/malformed)."""
    cdef _PropIs pis
    cdef _PropContains pcon
    cdef _MemberCount mc
    cdef _SenderPermission sp
    cdef int vk
    if not isinstance(cond, Mapping):
        return None
    kind = cond.get("kind")
    if kind == "event_match":
        key = cond.get("key")
        pattern = cond.get("pattern")
        if not isinstance(key, str) or not isinstance(pattern, str):
            return None
        return _compile_match(canonical_path(key), pattern)
    if kind == "event_property_is" or kind == "event_property_contains":
        key = cond.get("key")
        if not isinstance(key, str) or "value" not in cond:
            return None
        want = cond["value"]
        vk = value_kind(want)
        if vk < 0:
            return None
        if kind == "event_property_is":
            pis = _PropIs.__new__(_PropIs)
            pis.path = canonical_path(key)
            pis.want = want
            pis.vk = vk
            return pis
        pcon = _PropContains.__new__(_PropContains)
        pcon.path = canonical_path(key)
        pcon.want = want
        pcon.vk = vk
        return pcon
    if kind == "contains_display_name":
        return _DisplayName.__new__(_DisplayName)
    if kind == "room_member_count":
        parsed = parse_member_count(cond.get("is"))
        if parsed is None:
            return None
        mc = _MemberCount.__new__(_MemberCount)
        mc.op = parsed[0]
        mc.num = parsed[1]
        return mc
    if kind == "sender_notification_permission":
        nkey = cond.get("key")
        if not isinstance(nkey, str):
            return None
        sp = _SenderPermission.__new__(_SenderPermission)
        sp.key = nkey
        return sp
    return None


# ----------------------------------------------------------------------------------------
# Compiled ruleset
# ----------------------------------------------------------------------------------------


cdef class _Rule:
    cdef tuple conds
    cdef bint legacy
    cdef EvaluationResult result


cdef class CompiledRules:
    """A user's enabled rules in priority order, with every pattern pre-processed."""

    cdef readonly str user_id
    cdef readonly tuple rule_ids
    cdef tuple _rules

    def __init__(self, str user_id, list rules):
        cdef _Rule r
        self.user_id = user_id
        self._rules = tuple(rules)
        self.rule_ids = tuple([(r.result.kind, r.result.rule_id) for r in rules])

    def __len__(self):
        return len(self._rules)


cdef _Rule _compile_rule(str kind, object rule):
    """A rule -> ``_Rule``; None if disabled, malformed or containing a never-matching part."""
    cdef list conds = []
    cdef _Cond c
    cdef _RoomIs room
    cdef _SenderIs sender
    cdef _Rule out
    if not isinstance(rule, Mapping) or rule.get("enabled", True) is not True:
        return None
    rule_id = rule.get("rule_id")
    actions = normalize_actions(rule.get("actions"))
    if not isinstance(rule_id, str) or actions is None:
        return None
    if kind == "override" or kind == "underride":
        raw = rule.get("conditions", [])
        if not isinstance(raw, list):
            return None
        for item in raw:
            c = _compile_condition(item)
            if c is None:
                return None  # spec: an unrecognised condition never matches
            conds.append(c)
    elif kind == "content":
        pattern = rule.get("pattern")
        if not isinstance(pattern, str):
            return None
        conds.append(_compile_match("content.body", pattern))
    elif kind == "room":
        room = _RoomIs.__new__(_RoomIs)
        room.want = rule_id
        conds.append(room)
    else:
        sender = _SenderIs.__new__(_SenderIs)
        sender.want = rule_id
        conds.append(sender)
    notify, highlight, sound = summarize_actions(actions)
    out = _Rule.__new__(_Rule)
    out.conds = tuple(conds)
    out.legacy = rule_id in LEGACY_MENTION_RULE_IDS
    out.result = EvaluationResult(rule_id, kind, tuple(actions), notify, highlight, sound)
    return out


def compile_rules(ruleset, user_id):
    """Compile a client-format ruleset (as served by GET /pushrules/) for ``user_id``."""
    if not isinstance(user_id, str):
        raise TypeError("user_id must be a str")
    cdef list rules = []
    cdef _Rule r
    for kind, items in iter_kinds(ruleset):
        for rule in items:
            r = _compile_rule(kind, rule)
            if r is not None:
                rules.append(r)
    return CompiledRules(user_id, rules)


# ----------------------------------------------------------------------------------------
# Evaluation (the hot loop)
# ----------------------------------------------------------------------------------------


cdef EvaluationResult _run(CompiledRules compiled, FlatEvent ev, PushContext ctx):
    cdef tuple rules = compiled._rules
    cdef tuple conds
    cdef Py_ssize_t i, j, nconds
    cdef Py_ssize_t nrules = len(rules)
    cdef _Rule rule
    cdef bint has_mentions = ev.has_mentions
    cdef bint ok
    if ev.sender == compiled.user_id:
        return None
    for i in range(nrules):
        rule = <_Rule>rules[i]
        if rule.legacy and has_mentions:
            continue
        conds = rule.conds
        nconds = len(conds)
        ok = True
        for j in range(nconds):
            if not (<_Cond>conds[j]).match(ev, ctx):
                ok = False
                break
        if ok:
            return rule.result
    return None


cdef FlatEvent _as_flat(object event):
    if isinstance(event, FlatEvent):
        return <FlatEvent>event
    return <FlatEvent>flatten_event(event)


def evaluate_result(compiled, event, ctx):
    """The first matching enabled rule's result, or None (no rule, or the user's own event)."""
    if not isinstance(compiled, CompiledRules):
        raise TypeError("compiled must be CompiledRules")
    if not isinstance(ctx, PushContext):
        raise TypeError("ctx must be PushContext")
    return _run(<CompiledRules>compiled, _as_flat(event), <PushContext>ctx)


def evaluate(compiled, event, ctx):
    """The winning rule's actions (a fresh list, possibly empty), or None if nothing matched."""
    if not isinstance(compiled, CompiledRules):
        raise TypeError("compiled must be CompiledRules")
    if not isinstance(ctx, PushContext):
        raise TypeError("ctx must be PushContext")
    cdef EvaluationResult res = _run(<CompiledRules>compiled, _as_flat(event), <PushContext>ctx)
    if res is None:
        return None
    return list(res.actions)
