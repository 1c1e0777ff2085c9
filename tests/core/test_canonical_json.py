"""Canonical JSON: spec vectors, the canonicaljson oracle, every rejection, both twins."""

from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import enum
import json
import uuid
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


def nested(depth: int, leaf: Any = 1, as_dict: bool = False) -> Any:
    """``depth`` arrays (or objects) around ``leaf``."""
    value = leaf
    for _ in range(depth):
        value = {"k": value} if as_dict else [value]
    return value


def outcome(impl: Any, value: Any) -> tuple[str, Any]:
    """What an encoder does with ``value``: its bytes, or its error's type and message."""
    try:
        return ("ok", impl.encode_canonical_json(value))
    except Exception as exc:  # compared across twins, so any type counts
        return (type(exc).__name__, str(exc))


# --- fixtures of unusual but legal Python values ------------------------------------------


class FrozenMapping(Mapping[str, Any]):
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class Level(enum.IntEnum):
    HIGH = 100


class Flags(enum.IntFlag):
    A = 1
    B = 2


class Colour(enum.StrEnum):
    RED = "red"


class Plain(enum.Enum):
    ONE = 1


class SubStr(str):
    pass


class SubInt(int):
    pass


class SubDict(dict):  # type: ignore[type-arg]
    pass


class SubList(list):  # type: ignore[type-arg]
    pass


class SubFloat(float):
    pass


Point = collections.namedtuple("Point", "x y")


@dataclasses.dataclass
class Record:
    a: int


# --- the public selector and the spec -----------------------------------------------------


def test_public_api_is_the_selected_twin() -> None:
    assert encode_canonical_json({"b": 1, "a": [True, None]}) == b'{"a":[true,null],"b":1}'


@pytest.mark.parametrize("impl", TWINS)
def test_spec_examples(impl: Any, spec_vectors: list[dict[str, Any]]) -> None:
    cases = [v for v in spec_vectors if v["category"] == "canonical_json"]
    assert len(cases) >= 10
    for case in cases:
        # The spec's inputs write 1e10 and -0 for integers; canonical JSON has integers only.
        value = json.loads(case["input"], parse_float=_integral)
        assert impl.encode_canonical_json(value) == case["expected"].encode("utf-8"), case["name"]


def _integral(text: str) -> int:
    number = decimal.Decimal(text)
    assert number == number.to_integral_value(), text
    return int(number)


@pytest.mark.parametrize("impl", TWINS)
def test_spec_snippet_agrees(impl: Any) -> None:
    # The appendix's own Python definition of canonical JSON, applied to a rich value.
    value = {"é": ["\x00\x1f\x7f", -SAFE, SAFE, {"\U0001f600": None, "~": False}], "a": ""}
    snippet = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    assert impl.encode_canonical_json(value) == snippet.encode("UTF-8")


# --- byte-identical to canonicaljson ------------------------------------------------------

ALL_CONTROLS = "".join(chr(c) for c in range(0x20)) + "\x7f\x80\x9f"


@pytest.mark.parametrize("impl", TWINS)
@pytest.mark.parametrize(
    "value",
    [
        {},
        [],
        "",
        0,
        -0,
        1,
        -1,
        SAFE,
        -SAFE,
        True,
        False,
        None,
        {"b": 1, "a": 2, "é": 3, "日": 4, "\U0001f600": 5, "A": 6, "": 7},
        # Code-point order, not UTF-16 order: U+FB01 sorts before U+1F600 (a surrogate pair).
        {"\U0001f600": 1, "\ufb01": 2, "\uffff": 3, "\U00010000": 4},
        ALL_CONTROLS,
        {ALL_CONTROLS: ALL_CONTROLS},
        'quote " backslash \\ slash / \u2028 \u2029 \ufeff \ufffe \U0010ffff',
        {"nested": {"z": [1, {"y": None, "x": [[], {}]}]}},
        ("tuple", 1, ("inner",)),
        {"level": Level.HIGH, "flags": Flags.A | Flags.B, "colour": Colour.RED},
        SubDict(b=1, a=2),
        {"d": SubDict(z=SubList([1, 2]), y=SubInt(3))},
        SubList([SubStr("s"), SubInt(-5)]),
        {SubStr("sub"): 1, "plain": 2},
        [Point(1, 2), {"p": Point(x=[3], y="4")}],
        nested(254),
        nested(254, as_dict=True),
    ],
)
def test_matches_canonicaljson(impl: Any, value: Any) -> None:
    assert impl.encode_canonical_json(value) == canonicaljson.encode_canonical_json(value)


@pytest.mark.parametrize("impl", TWINS)
def test_any_mapping_encodes_like_a_dict(impl: Any) -> None:
    # canonicaljson itself only knows dict (and frozendict); hs accepts any Mapping.
    inner = FrozenMapping({"b": 2, "a": FrozenMapping({SubStr("y"): (1,), "x": "é"})})
    expected = canonicaljson.encode_canonical_json({"m": {"b": 2, "a": {"y": [1], "x": "é"}}})
    assert impl.encode_canonical_json({"m": inner}) == expected
    assert impl.encode_canonical_json(inner) == expected[5:-1]


# --- rejections ---------------------------------------------------------------------------

REJECTED = [
    1.0,
    0.5,
    -0.0,
    1e100,
    float("nan"),
    float("inf"),
    -float("inf"),
    SubFloat(2.0),
    SAFE + 1,
    -SAFE - 1,
    2**63,
    2**64,
    -(2**70),
    10**5000,  # too big even to format as a string
    SubInt(2**60),
    {"a": [1, 2.5]},
    {1: "int key"},
    {None: "none key"},
    {True: "bool key"},
    {Level.HIGH: "IntEnum key"},
    {("t",): 1},
    {b"k": 1},
    "\ud800",
    "pair as two units \ud83d\ude00",
    {"\udc00": 1},
    [SubStr("\ud800")],
    {SubStr("k"): "\ud800"},  # lone surrogate on the stdlib path
    FrozenMapping({"a": "\udfff"}),
    b"bytes",
    bytearray(b"x"),
    {1, 2},
    frozenset(),
    object(),
    decimal.Decimal(1),
    Plain.ONE,  # orjson would write 1
    uuid.UUID(int=1),  # orjson would write a string
    datetime.datetime(2020, 1, 1),  # orjson would write a string
    Record(1),  # orjson would write an object
    FrozenMapping({"a": 1.5}),
    FrozenMapping({"a": [{1: 2}]}),
    (1, 2.0),
    Point(1, 2**60),
    nested(255),
    nested(255, as_dict=True),
    nested(100_000),
]


@pytest.mark.parametrize("impl", TWINS)
@pytest.mark.parametrize("value", REJECTED, ids=range(len(REJECTED)))
def test_rejects(impl: Any, value: Any) -> None:
    with pytest.raises(CanonicalJSONError):
        impl.encode_canonical_json(value)


@pytest.mark.parametrize("value", REJECTED, ids=range(len(REJECTED)))
def test_twins_give_the_same_error(value: Any) -> None:
    results = {outcome(impl, value) for impl in twins("canonical_json")}
    assert len(results) == 1, results
    ((kind, message),) = results
    assert kind == "CanonicalJSONError" and message


@pytest.mark.parametrize("impl", TWINS)
def test_error_messages_name_the_problem(impl: Any) -> None:
    cases = {
        "float 1.5 is not allowed": {"a": 1.5},
        "integer 9007199254740992 is outside": [SAFE + 1],
        "integer of 16610 bits": [10**5000],
        "keys must be strings, not int": {1: 1},
        "cannot encode set": {"a": {1}},
        "nested more than 254": nested(255),
        "surrogates not allowed": ["\ud800"],
    }
    for fragment, value in cases.items():
        with pytest.raises(CanonicalJSONError, match=fragment):
            impl.encode_canonical_json(value)


@pytest.mark.parametrize("impl", TWINS)
def test_error_is_a_value_error(impl: Any) -> None:
    with pytest.raises(ValueError, match="float"):
        impl.encode_canonical_json({"a": 1.5})


@pytest.mark.parametrize("impl", TWINS)
def test_first_error_in_document_order(impl: Any) -> None:
    # Keys are checked before their values; dicts are walked in insertion order.
    with pytest.raises(CanonicalJSONError, match="keys must be strings"):
        impl.encode_canonical_json({"a": [1], 2: 1.5})
    with pytest.raises(CanonicalJSONError, match="float"):
        impl.encode_canonical_json({"a": [1.5], 2: 1})


class Mutating(Mapping[str, Any]):
    """A Mapping whose items() mutates the dict that contains it."""

    def __init__(self, parent: dict[str, Any]) -> None:
        self.parent = parent

    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        self.parent.clear()
        self.parent.update({f"k{i}": i for i in range(50)})
        return iter(())

    def __len__(self) -> int:
        return 0


@pytest.mark.parametrize("impl", TWINS)
def test_mutation_during_the_walk_is_an_error_not_a_crash(impl: Any) -> None:
    parent: dict[str, Any] = {"a": [1, 2], "b": "x"}
    parent["m"] = Mutating(parent)
    parent["z"] = [3]
    with pytest.raises(RuntimeError, match="changed size"):
        impl.encode_canonical_json(parent)


# --- property tests -----------------------------------------------------------------------

# All of Unicode except surrogates, with the characters that need escaping over-represented.
_chars = st.characters(blacklist_categories=("Cs",)) | st.sampled_from(
    list(ALL_CONTROLS + '"\\/\u2028\u2029\ufeff\U0001f600\U0010ffff')
)
_text = st.text(alphabet=_chars, max_size=20)
_ints = st.integers(min_value=-SAFE, max_value=SAFE) | st.sampled_from([0, 1, -1, SAFE, -SAFE])
_json = st.recursive(
    st.none() | st.booleans() | _ints | _text,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(_text, children, max_size=5),
    max_leaves=40,
)


@settings(max_examples=250, deadline=None)
@given(_json)
def test_property_twins_match_canonicaljson(value: Any) -> None:
    expected = canonicaljson.encode_canonical_json(value)
    for impl in twins("canonical_json"):
        assert impl.encode_canonical_json(value) == expected


def _wrap(value: Any, draw: Any) -> Any:
    """The same JSON value spelled with tuples, Mappings and subclasses."""
    if isinstance(value, dict):
        items = {
            (SubStr(k) if draw(st.booleans()) else k): _wrap(v, draw) for k, v in value.items()
        }
        return draw(st.sampled_from([dict, SubDict, FrozenMapping]))(items)
    if isinstance(value, list):
        items = [_wrap(v, draw) for v in value]
        return draw(st.sampled_from([list, tuple, SubList]))(items)
    if isinstance(value, int) and not isinstance(value, bool) and draw(st.booleans()):
        return SubInt(value)
    if isinstance(value, str) and draw(st.booleans()):
        return SubStr(value)
    return value


@settings(max_examples=200, deadline=None)
@given(_json, st.data())
def test_property_wrapped_values_encode_like_plain_ones(value: Any, data: Any) -> None:
    expected = canonicaljson.encode_canonical_json(value)
    wrapped = _wrap(value, data.draw)
    for impl in twins("canonical_json"):
        assert impl.encode_canonical_json(wrapped) == expected


_poison = st.sampled_from(
    [
        1.5,
        -0.0,
        float("nan"),
        SAFE + 1,
        -SAFE - 1,
        2**64,
        {1: 1},
        "\ud800",
        {"\udfff": 1},
        {1, 2},
        b"x",
        Plain.ONE,
        nested(255),
    ]
)


@settings(max_examples=200, deadline=None)
@given(_json, _poison, st.integers(min_value=0, max_value=3))
def test_property_twins_agree_on_rejection(value: Any, poison: Any, where: int) -> None:
    bad = [
        {"ok": value, "bad": [value, {"x": poison}]},
        [value, poison],
        {"\x00": value, "z": poison},
        (value, {"k": (poison,)}),
    ][where]
    results = {outcome(impl, bad) for impl in twins("canonical_json")}
    assert len(results) == 1, results
    assert next(iter(results))[0] == "CanonicalJSONError"
