"""The strict JSON decoder: every rejection, the duplicate-key shortcut, both scan twins."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import twin_params, twins
from hs._native._errors import JSONValueError
from hs.core.json_decode import JSONDecodeError, decode_json, decode_strict

SAFE = 2**53 - 1


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{}", {}),
        (
            b' {"a": [1, "b:c", {"@u:example.org": null}]} ',
            {"a": [1, "b:c", {"@u:example.org": None}]},
        ),
        ('{"日本": "語"}', {"日本": "語"}),
        (b'"\\ud83d\\ude00"', "\U0001f600"),
        (b'{"a\\u003a": 1, "a:": 2}'.replace(b', "a:": 2', b""), {"a:": 1}),
        (b"[-0]", [0]),
    ],
)
def test_accepts(raw: bytes | str, expected: Any) -> None:
    assert decode_json(raw) == expected
    assert decode_strict(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"not json", b"\xff\xfe", b'"\xed\xa0\x80"', b'"\\ud800"', b'"\\udc00"', b"NaN",
     b"[Infinity]", b"[-Infinity]", b"{'a': 1}", b"[1,]"],
)
def test_not_json(raw: bytes) -> None:
    for decode in (decode_json, decode_strict):
        with pytest.raises(JSONDecodeError) as info:
            decode(raw)
        assert info.value.errcode == "M_NOT_JSON"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 1, "a": 2}',
        b'{"x": {"k": 1, "k": 1}}',
        b'[{"a": "x:y", "b": 1, "b": 1}]',
        b'{"a\\u003a": 1, "a:": 2}',  # an escaped colon defeats the shortcut: exact path
        b'{"\\u0061": 1, "a": 2}',
    ],
)
def test_duplicate_keys_are_bad_json(raw: bytes) -> None:
    for decode in (decode_json, decode_strict):
        with pytest.raises(JSONDecodeError, match="duplicate") as info:
            decode(raw)
        assert info.value.errcode == "M_BAD_JSON"


def test_floats_and_integer_range() -> None:
    assert decode_json(b"[1.5, 9007199254740993]") == [1.5, 9007199254740993]
    for raw in (b"[1.5]", b'{"a": 1e3}', b"[9007199254740992]", b"[-9007199254740992]"):
        with pytest.raises(JSONDecodeError) as info:
            decode_strict(raw)
        assert info.value.errcode == "M_BAD_JSON"
    assert decode_strict(b"[1.5]", allow_floats=True) == [1.5]
    with pytest.raises(JSONDecodeError):
        decode_strict(b"[9007199254740992]", allow_floats=True)


@pytest.mark.parametrize("impl", twin_params("json_scan"))
def test_scan_counts(impl: Any) -> None:
    value = {"a:b": ["c:d:e", {"f": 1, "g": [2.5]}], "h": None}
    assert impl.scan(value, True, True) == (4, 3)
    with pytest.raises(JSONValueError):
        impl.scan(value, False, True)
    with pytest.raises(JSONValueError):
        impl.scan([SAFE + 1], True, True)
    assert impl.scan([SAFE + 1, 2**80], True, False) == (0, 0)


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(_json)
def test_property_scan_twins_agree(value: Any) -> None:
    results = []
    for impl in twins("json_scan"):
        for allow_floats in (True, False):
            for check_ints in (True, False):
                try:
                    results.append(impl.scan(value, allow_floats, check_ints))
                except JSONValueError:
                    results.append("error")
    half = len(results) // len(twins("json_scan"))
    assert results[:half] == results[half:] or len(twins("json_scan")) == 1


@settings(max_examples=300, deadline=None)
@given(_json)
def test_property_round_trip_and_duplicates(value: Any) -> None:
    raw = json.dumps(value, ensure_ascii=False).encode()
    assert decode_json(raw) == json.loads(raw)
    # Append a duplicate of an existing key to some object, if there is one.
    if isinstance(value, dict) and value:
        key = next(iter(value))
        dup = raw[:-1] + b"," + json.dumps(key).encode() + b":null}"
        with pytest.raises(JSONDecodeError, match="duplicate"):
            decode_json(dup)


@pytest.mark.parametrize("impl", twin_params("json_scan"))
@pytest.mark.parametrize(
    ("raw", "expected"),
    [(b"", 0), (b'{"a:b":1}', 2), (b'{"a\\u003a":1}', -1), (b'{"a\\u003A":1}', -1),
     (b'"\\u003', 0), (b'"\\\\u0030":', 1)],
)
def test_raw_colons(impl: Any, raw: bytes, expected: int) -> None:
    assert impl.raw_colons(raw) == expected
