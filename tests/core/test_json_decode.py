"""The strict JSON decoder: every rejection, the duplicate-key shortcut, both scan twins."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hs.core.json_decode as json_decode
from conftest import twin_params, twins
from hs._native._errors import JSONValueError
from hs.core.json_decode import (
    BAD_JSON,
    NOT_JSON,
    JSONDecodeError,
    decode_for_room_version,
    decode_json,
    decode_strict,
)
from hs.core.room_versions import get_room_version

SAFE = 2**53 - 1
SCAN_TWINS = twin_params("json_scan")


@pytest.fixture(params=SCAN_TWINS)
def scan_twin(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Run the public decoder on one twin of the scan (the selector picks only one)."""
    impl = request.param
    monkeypatch.setattr(json_decode, "parse", impl.parse)
    monkeypatch.setattr(json_decode, "scan", impl.scan)
    yield impl


def strict(raw: Any) -> Any:
    return decode_strict(raw, allow_floats=False)


def lenient(raw: Any) -> Any:
    return decode_strict(raw, allow_floats=True, allow_big_ints=True)


ALL_DECODERS: list[Callable[[Any], Any]] = [decode_json, strict, lenient]


def errcode(decode: Callable[[Any], Any], raw: Any) -> str:
    with pytest.raises(JSONDecodeError) as info:
        decode(raw)
    assert isinstance(info.value, ValueError)
    return info.value.errcode


def nested(depth: int, objects: bool = False) -> bytes:
    """``depth`` nested arrays (or objects) around a 1."""
    if objects:
        return b'{"k":' * depth + b"1" + b"}" * depth
    return b"[" * depth + b"1" + b"]" * depth


# --- accepted input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{}", {}),
        (b"[]", []),
        (b'""', ""),
        (b"null", None),
        (b' \t\r\n{ "a" : [ 1 , true , false ] } \n', {"a": [1, True, False]}),
        (
            b'{"a": [1, "b:c", {"@u:example.org": null}]}',
            {"a": [1, "b:c", {"@u:example.org": None}]},
        ),
        ('{"日本": "語"}', {"日本": "語"}),
        ('{"日本": "語"}'.encode(), {"日本": "語"}),
        (b'"\\ud83d\\ude00"', "\U0001f600"),
        (b'"\\u0000\\u001f\\"\\\\\\/\\b\\f\\n\\r\\t"', '\x00\x1f"\\/\b\f\n\r\t'),
        (b'{"a\\u003a": 1}', {"a:": 1}),  # an escaped colon: the shortcut defers to the exact path
        (b'{"\\u003A": "\\u003a", "b": 1}', {":": ":", "b": 1}),
        (b'{"a": "\\":", "b": ":"}', {"a": '":', "b": ":"}),
        (b"[-0]", [0]),
        (b"[9007199254740991, -9007199254740991]", [SAFE, -SAFE]),
        (b'[{"a": 1}, {"a": 2}]', [{"a": 1}, {"a": 2}]),  # the same key in sibling objects
        (nested(254), json.loads(nested(254))),
        (nested(254, objects=True), json.loads(nested(254, objects=True))),
    ],
    ids=lambda v: None if not isinstance(v, bytes | str) or len(v) < 60 else f"len{len(v)}",
)
def test_accepts(scan_twin: Any, raw: bytes | str, expected: Any) -> None:
    for decode in ALL_DECODERS:
        assert decode(raw) == expected


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview, lambda b: b.decode("utf-8")])
def test_accepts_every_buffer_type(scan_twin: Any, wrap: Callable[[bytes], Any]) -> None:
    raw = b'{"a": ["x:y", 1], "b": {"c": null}}'
    for decode in ALL_DECODERS:
        assert decode(wrap(raw)) == {"a": ["x:y", 1], "b": {"c": None}}


def test_rejects_other_input_types() -> None:
    with pytest.raises(TypeError):
        decode_json(123)  # type: ignore[arg-type]


# --- not JSON at all ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b" ",
        b"{",
        b'{"a":1',
        b"not json",
        b"{'a': 1}",
        b"[1,]",
        b'{"a":1,}',
        b"[01]",
        b"[1.]",
        b"[.5]",
        b"[+1]",
        b'{"a" 1}',
        b"{a: 1}",
        b"[1] [2]",
        b'"\x01"',  # raw control character inside a string
        b'"\\x41"',
        b'"\\u12"',
        b"\xef\xbb\xbf{}",  # byte order mark
        b"\xff\xfe",
        b'"\xc0\xaf"',  # overlong encoding
        b'"\xed\xa0\x80"',  # a surrogate encoded as UTF-8
        b'"\xf4\x90\x80\x80"',  # beyond U+10FFFF
        b'"\\ud800"',
        b'"\\udc00"',
        b'"\\ude00\\ud83d"',  # the pair in the wrong order
        b'"\\ud83dx"',
        b'{"\\ud800": 1}',
        b"NaN",
        b"[NaN]",
        b"[Infinity]",
        b"[-Infinity]",
        b'{"a": nan}',
        b"[True]",
        b"[None]",
        "\ud800",
        '"\udfff"',
    ],
)
def test_not_json(scan_twin: Any, raw: bytes | str) -> None:
    for decode in ALL_DECODERS:
        assert errcode(decode, raw) == NOT_JSON


# --- JSON, but unacceptable ---------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 1, "a": 2}',
        b'{"a": 1, "a": 1}',
        b'{"x": {"k": 1, "k": 1}}',
        b'[{"a": "x:y", "b": 1, "b": 1}]',
        b'{"a": "x:y", "b": {"c": "d"}, "b": 1}',
        b'{"a\\u003a": 1, "a:": 2}',  # an escaped colon defeats the shortcut: exact path
        b'{"\\u0061": 1, "a": 2}',
        b'{"k": "::::", "k": ""}',
        b'{"a": 1.5, "a": 2}',  # found by the exact path floats send us down
        b'{"a": {"b": {"c": [1, {"d": 1, "e": 2, "d": 3}]}}}',
    ],
)
def test_duplicate_keys_are_bad_json(scan_twin: Any, raw: bytes) -> None:
    for decode in ALL_DECODERS:
        with pytest.raises(JSONDecodeError, match="duplicate") as info:
            decode(raw)
        assert info.value.errcode == BAD_JSON


@pytest.mark.parametrize(
    "raw",
    [
        b"[9007199254740992]",
        b"[-9007199254740992]",
        b'{"a": 9223372036854775807}',
        b"[18446744073709551615]",
        b"[18446744073709551616]",  # orjson reads this one as a float
        b"[-9223372036854775809]",
        b"[123456789012345678901234567890]",
    ],
)
def test_integers_outside_the_canonical_range(scan_twin: Any, raw: bytes) -> None:
    for decode in (decode_json, strict, lambda r: decode_strict(r, allow_floats=True)):
        with pytest.raises(JSONDecodeError, match="integer") as info:
            decode(raw)
        assert info.value.errcode == BAD_JSON
    # Room versions 1-5 may carry them: kept exactly, not as floats.
    assert lenient(raw) == json.loads(raw)
    assert all(type(v) is int for v in json_values(lenient(raw)))


def json_values(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for v in value.values():
            yield from json_values(v)
    elif isinstance(value, list):
        for v in value:
            yield from json_values(v)
    else:
        yield value


@pytest.mark.parametrize("raw", [b"[1.5]", b'{"a": 1e3}', b"[1E-2]", b"[-0.0]", b"[1.0]"])
def test_floats(scan_twin: Any, raw: bytes) -> None:
    with pytest.raises(JSONDecodeError, match="float") as info:
        strict(raw)
    assert info.value.errcode == BAD_JSON
    expected = json.loads(raw)
    assert decode_json(raw) == expected
    assert decode_strict(raw, allow_floats=True) == expected
    assert lenient(raw) == expected


@pytest.mark.parametrize("raw", [b"[1e400]", b"[-1e400]", b"[" + b"9" * 400 + b"]"])
def test_numbers_beyond_double_range(scan_twin: Any, raw: bytes) -> None:
    for decode in ALL_DECODERS:
        assert errcode(decode, raw) == BAD_JSON


@pytest.mark.parametrize(
    "raw",
    [
        nested(255),
        nested(255, objects=True),
        b'{"a":' * 200 + b"[" * 55 + b"]" * 55 + b"}" * 200,
        b"[" * 1_000_000,  # orjson alone would overflow the C stack on this
        nested(1_000_000),
    ],
    ids=["arrays", "objects", "mixed", "unclosed-1e6", "closed-1e6"],
)
def test_too_deep(scan_twin: Any, raw: bytes) -> None:
    for decode in ALL_DECODERS:
        with pytest.raises(JSONDecodeError, match="nested") as info:
            decode(raw)
        assert info.value.errcode == BAD_JSON


def test_brackets_inside_strings_do_not_count_as_nesting(scan_twin: Any) -> None:
    raw = b'["' + b"[{" * 1000 + b'\\"[", ' + nested(250) + b"]"
    assert decode_json(raw) == json.loads(raw)


def test_room_versions() -> None:
    v1, v5, v6, v12 = (get_room_version(v) for v in ("1", "5", "6", "12"))
    legacy = b'{"a": 1.5, "b": 18446744073709551616}'
    for rv in (v1, v5):
        assert decode_for_room_version(legacy, rv) == {"a": 1.5, "b": 2**64}
    for rv in (v6, v12):
        with pytest.raises(JSONDecodeError) as info:
            decode_for_room_version(legacy, rv)
        assert info.value.errcode == BAD_JSON
        assert decode_for_room_version(b'{"a": 1}', rv) == {"a": 1}


# --- the scan twins -----------------------------------------------------------------------


@pytest.mark.parametrize("impl", SCAN_TWINS)
def test_scan_counts(impl: Any) -> None:
    value = {"a:b": ["c:d:e", {"f": 1, "g": [2.5]}], "h": None, "日:": "🙂:"}
    assert impl.scan(value, True, True) == (5, 5, 1)
    with pytest.raises(JSONValueError, match=r"float 2\.5"):
        impl.scan(value, False, True)
    with pytest.raises(JSONValueError, match="integer 9007199254740992"):
        impl.scan([SAFE + 1], True, True)
    with pytest.raises(JSONValueError, match="integer of 81 bits"):
        impl.scan([2**80], True, True)
    assert impl.scan([SAFE + 1, 2**80], True, False) == (0, 0, 0)
    assert impl.scan(["x" * 100 + ":" * 7, "é:" * 40, "🙂:" * 3], True, True) == (0, 50, 0)


@pytest.mark.parametrize("impl", SCAN_TWINS)
def test_scan_depth(impl: Any) -> None:
    assert impl.scan(json.loads(nested(254)), True, True) == (0, 0, 0)
    with pytest.raises(JSONValueError, match="nested"):
        impl.scan(json.loads(nested(255)), True, True)


@pytest.mark.parametrize("impl", SCAN_TWINS)
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", 0),
        (b'{"a:b":1}', 2),
        (b'{"a\\u003a":1}', -1),
        (b'{"a\\u003A":1}', -1),
        (b'"\\u003', 0),
        (b'"\\\\u0030":', 1),
        (b'"\\\\u003a"', -1),  # an escaped backslash before u003a: still refused, conservatively
    ],
)
def test_raw_colons(impl: Any, raw: bytes, expected: int) -> None:
    assert impl.raw_colons(raw) == expected


@pytest.mark.parametrize("impl", SCAN_TWINS)
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", False),
        (nested(254), False),
        (nested(255), True),
        (b"[" * 255, True),
        (b"[" * 254 + b'"' + b"[" * 300, False),  # the rest is one unterminated string
        (b"[" * 254 + b'"\\"' + b"[" * 300, False),  # an escaped quote does not end it
        (b"[" * 254 + b'"\\\\"' + b"[", True),  # an escaped backslash does not hide the quote
        (b"[" * 200 + b"]" * 200 + b"{" * 200, False),
        (b"[" * 254 + b"]" + b"{", False),
        (b"[" * 254 + b"{", True),
        (b"]" * 300 + b"[" * 300, False),  # closers first: never more than 0 deep
    ],
    ids=range(11),
)
def test_raw_too_deep(impl: Any, raw: bytes, expected: bool) -> None:
    assert impl.raw_too_deep(raw) is expected


@pytest.mark.parametrize("impl", SCAN_TWINS)
def test_parse_verdicts(impl: Any) -> None:
    assert impl.parse(b'{"a": "b:c"}', True) == ({"a": "b:c"}, impl.OK)
    assert impl.parse(b'{"a": 1, "a": 2}', True) == ({"a": 2}, impl.CHECK_DUPLICATES)
    assert impl.parse(b'{"a\\u003a": 1}', True) == ({"a:": 1}, impl.CHECK_DUPLICATES)
    assert impl.parse(b"[1.5]", True) == ([1.5], impl.HAS_FLOATS)
    assert impl.parse(b"[18446744073709551616]", True)[1] == impl.HAS_FLOATS
    assert impl.parse(b"[1, 2]", True) == ([1, 2], impl.OK)
    with pytest.raises(JSONValueError):
        impl.parse(b"[9007199254740992]", True)
    assert impl.parse(b"[9007199254740992]", False) == ([2**53], impl.OK)
    with pytest.raises(JSONValueError, match="nested"):
        impl.parse(b"[" * 100_000, True)
    with pytest.raises(json.JSONDecodeError):  # orjson's error is a json.JSONDecodeError
        impl.parse(b"[", True)


# --- property tests -----------------------------------------------------------------------

_chars = st.characters(blacklist_categories=("Cs",)) | st.sampled_from(list(':"\\\x00\n\u2028🙂'))
_text = st.text(alphabet=_chars, max_size=12)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-SAFE, max_value=SAFE)
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=25,
)


def _outcome(call: Callable[[], Any]) -> Any:
    try:
        return ("ok", call())
    except (JSONValueError, json.JSONDecodeError) as exc:
        return (type(exc).__name__, str(exc))


@settings(max_examples=200, deadline=None)
@given(_json)
def test_property_scan_twins_agree(value: Any) -> None:
    impls = twins("json_scan")
    for allow_floats in (True, False):
        for check_ints in (True, False):
            results = [
                _outcome(lambda m=m, f=allow_floats, i=check_ints: m.scan(value, f, i))
                for m in impls
            ]
            assert all(r == results[0] for r in results), results


@settings(max_examples=200, deadline=None)
@given(_json, st.booleans(), st.booleans())
def test_property_parse_twins_agree(value: Any, ensure_ascii: bool, indent: bool) -> None:
    raw = json.dumps(value, ensure_ascii=ensure_ascii, indent=1 if indent else None).encode()
    impls = twins("json_scan")
    for check_ints in (True, False):
        results = [_outcome(lambda m=m, i=check_ints: m.parse(raw, i)) for m in impls]
        assert all(r == results[0] for r in results), results


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600) | st.text(alphabet='[]{}"\\ x', max_size=700).map(str.encode))
def test_property_raw_twins_agree(raw: bytes) -> None:
    impls: list[ModuleType] = twins("json_scan")
    assert len({m.raw_too_deep(raw) for m in impls}) == 1
    assert len({m.raw_colons(raw) for m in impls}) == 1


def _expected(value: Any) -> tuple[str, Any]:
    """What decode_json should make of json.dumps(value)."""
    ints = [v for v in json_values(value) if type(v) is int]
    if any(not -SAFE <= v <= SAFE for v in ints):
        return ("error", BAD_JSON)
    return ("ok", value)


@settings(max_examples=200, deadline=None)
@given(_json, st.booleans())
def test_property_round_trip(value: Any, ensure_ascii: bool) -> None:
    raw = json.dumps(value, ensure_ascii=ensure_ascii).encode()
    kind, expected = _expected(value)
    if kind == "ok":
        assert decode_json(raw) == json.loads(raw)
    else:
        assert errcode(decode_json, raw) == expected
    assert lenient(raw) == json.loads(raw)


def _with_duplicate(value: Any, rng: random.Random) -> bytes | None:
    """json.dumps(value) with one object's first key repeated, or None if no object has keys."""
    objects = [v for v in _containers(value) if isinstance(v, dict) and v]
    if not objects:
        return None
    target = rng.choice(objects)
    marker = "\x00dup-marker\x00"
    key = next(iter(target))
    target[marker] = None
    raw = json.dumps(value)
    del target[marker]
    return raw.replace(json.dumps(marker), json.dumps(key), 1).encode()


def _containers(value: Any) -> Iterator[Any]:
    if isinstance(value, dict | list):
        yield value
        for v in value.values() if isinstance(value, dict) else value:
            yield from _containers(v)


@settings(max_examples=200, deadline=None)
@given(_json, st.randoms(use_true_random=False))
def test_property_duplicates_are_always_found(value: Any, rng: random.Random) -> None:
    raw = _with_duplicate(value, rng)
    if raw is None:
        return
    decoders = [lenient] + [decode_json] * (_expected(value)[0] == "ok")
    for decode in decoders:
        with pytest.raises(JSONDecodeError, match="duplicate"):
            decode(raw)


def test_nesting_limit_matches_the_encoder() -> None:
    from hs._native import _canonical_json_py

    assert json_decode.MAX_NESTING == _canonical_json_py.MAX_NESTING
    for impl in twins("json_scan"):
        assert impl.MAX_NESTING == json_decode.MAX_NESTING


@settings(max_examples=200, deadline=None)
@given(_json)
def test_property_strictly_decoded_values_have_a_canonical_form(value: Any) -> None:
    from hs.core.canonical_json import encode_canonical_json

    raw = json.dumps(value).encode()
    try:
        decoded = strict(raw)
    except JSONDecodeError as exc:
        assert exc.errcode == BAD_JSON  # a float or an integer out of range
        return
    assert encode_canonical_json(decoded) == encode_canonical_json(json.loads(raw))
