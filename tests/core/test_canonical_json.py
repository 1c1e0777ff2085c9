"""Canonical JSON: spec vectors, the canonicaljson oracle, every rejection, both twins."""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator, Mapping
from typing import Any

import canonicaljson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import twin_params, twins
from hs._native._errors import CanonicalJSONError
from hs.core.canonical_json import encode_canonical_json

TWINS = twin_params("canonical_json")

SAFE = 2**53 - 1


def test_public_api_is_the_selected_twin() -> None:
    assert encode_canonical_json({"b": 1, "a": [True, None]}) == b'{"a":[true,null],"b":1}'


@pytest.mark.parametrize("impl", TWINS)
def test_spec_examples(impl: Any, spec_vectors: list[dict]) -> None:
    cases = [v for v in spec_vectors if v["category"] == "canonical_json"]
    assert len(cases) >= 10
    for case in cases:
        # The spec writes 1e10 for an integer; canonical JSON has integers only.
        value = json.loads(case["input"], parse_float=_integral)
        assert impl.encode_canonical_json(value) == case["expected"].encode("utf-8"), case["name"]


def _integral(text: str) -> int | float:
    number = float(text)
    return int(number) if number.is_integer() else number


class _FrozenMapping(Mapping[str, Any]):
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class _Level(enum.IntEnum):
    HIGH = 100


class _Sub(dict):  # type: ignore[type-arg]
    pass


@pytest.mark.parametrize("impl", TWINS)
@pytest.mark.parametrize(
    "value",
    [
        {},
        [],
        "",
        0,
        -0,
        SAFE,
        -SAFE,
        True,
        False,
        None,
        {"b": 1, "a": 2, "é": 3, "日": 4, "\U0001f600": 5, "A": 6},
        "control \x00\x01\x1f\b\f\n\r\t \" \\ / \x7f \u2028 \ufeff",
        {"nested": {"z": [1, {"y": None, "x": [[], {}]}]}},
        ("tuple", 1),
        {"level": _Level.HIGH},
        _Sub(b=1, a=2),
    ],
)
def test_matches_canonicaljson(impl: Any, value: Any) -> None:
    assert impl.encode_canonical_json(value) == canonicaljson.encode_canonical_json(value)


@pytest.mark.parametrize("impl", TWINS)
def test_any_mapping_encodes_like_a_dict(impl: Any) -> None:
    # canonicaljson itself only knows dict and frozendict; hs accepts any Mapping.
    value = {"m": _FrozenMapping({"b": 2, "a": 1})}
    assert impl.encode_canonical_json(value) == b'{"m":{"a":1,"b":2}}'


@pytest.mark.parametrize("impl", TWINS)
@pytest.mark.parametrize(
    "value",
    [
        1.0,
        0.5,
        float("nan"),
        float("inf"),
        -float("inf"),
        SAFE + 1,
        -SAFE - 1,
        2**64,
        -(2**70),
        {"a": [1, 2.5]},
        {1: "int key"},
        {None: "none key"},
        {("t",): 1},
        "\ud800",
        {"\udc00": 1},
        b"bytes",
        {1, 2},
        object(),
    ],
)
def test_rejects(impl: Any, value: Any) -> None:
    with pytest.raises(CanonicalJSONError):
        impl.encode_canonical_json(value)


@pytest.mark.parametrize("impl", TWINS)
def test_rejects_excessive_nesting(impl: Any) -> None:
    value: Any = 1
    for _ in range(300):
        value = [value]
    with pytest.raises(CanonicalJSONError):
        impl.encode_canonical_json(value)


@pytest.mark.parametrize("impl", TWINS)
def test_error_is_a_value_error(impl: Any) -> None:
    with pytest.raises(ValueError, match="float"):
        impl.encode_canonical_json({"a": 1.5})


# --- property tests -----------------------------------------------------------------------

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
_ints = st.integers(min_value=-SAFE, max_value=SAFE)
_json = st.recursive(
    st.none() | st.booleans() | _ints | _text,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(_text, children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(_json)
def test_property_twins_match_canonicaljson(value: Any) -> None:
    expected = canonicaljson.encode_canonical_json(value)
    for impl in twins("canonical_json"):
        assert impl.encode_canonical_json(value) == expected


@settings(max_examples=200, deadline=None)
@given(_json, st.sampled_from([1.5, SAFE + 1, -SAFE - 1, float("nan")]))
def test_property_twins_agree_on_rejection(value: Any, poison: Any) -> None:
    bad = {"ok": value, "bad": [value, {"x": poison}]}
    for impl in twins("canonical_json"):
        with pytest.raises(CanonicalJSONError):
            impl.encode_canonical_json(bad)
