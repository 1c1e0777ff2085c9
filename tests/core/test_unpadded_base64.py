"""Unpadded base64 (spec appendix "Unpadded Base64") against the spec's vectors and errors."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hs.core.unpadded_base64 import decode_base64, encode_base64, encode_base64_urlsafe


def _vectors(spec_vectors: list[dict[str, str]]) -> list[dict[str, str]]:
    cases = [v for v in spec_vectors if v["category"] == "unpadded_base64"]
    assert len(cases) >= 7
    return cases


def test_spec_vectors_encode(spec_vectors: list[dict[str, str]]) -> None:
    for case in _vectors(spec_vectors):
        assert encode_base64(case["input"].encode()) == case["expected"], case["name"]


def test_spec_vectors_decode_with_and_without_padding(spec_vectors: list[dict[str, str]]) -> None:
    # "implementations SHOULD accept input with or without padding characters"
    for case in _vectors(spec_vectors):
        raw = case["input"].encode()
        unpadded = case["expected"]
        padded = unpadded + "=" * (-len(unpadded) % 4)
        assert decode_base64(unpadded) == raw, case["name"]
        assert decode_base64(padded) == raw, case["name"]


def test_spec_vectors_urlsafe(spec_vectors: list[dict[str, str]]) -> None:
    # The ASCII vectors never use + or /, so the URL-safe form is the same text.
    for case in _vectors(spec_vectors):
        raw = case["input"].encode()
        assert encode_base64_urlsafe(raw) == case["expected"], case["name"]
        assert decode_base64(encode_base64_urlsafe(raw)) == raw


def test_the_two_alphabets() -> None:
    assert encode_base64(b"\xfb\xff") == "+/8"
    assert encode_base64_urlsafe(b"\xfb\xff") == "-_8"
    assert decode_base64("+/8") == b"\xfb\xff"
    assert decode_base64("-_8") == b"\xfb\xff"
    assert decode_base64("+/8=") == b"\xfb\xff"
    assert decode_base64("Zg==") == b"f"
    # A 32-byte ed25519 key and a 64-byte signature: the lengths Matrix uses most.
    assert len(encode_base64(bytes(32))) == 43
    assert len(encode_base64(bytes(64))) == 86


@pytest.mark.parametrize(
    "bad",
    [
        "Z",  # 6 bits: not a whole byte
        "Zm9vY",
        "Zm9v!",
        "Zm 9v",
        "Zm9v\n",
        "Zg=Zg",  # padding in the middle
        "+_8",  # the two alphabets mixed
        "-/8=",
        "Zm9vé",
        "\uff3a\uff3a",  # fullwidth Z: not ASCII
    ],
)
def test_decode_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        decode_base64(bad)


@pytest.mark.parametrize("bad", [b"Zm9v", None, 123])
def test_decode_rejects_non_strings(bad: object) -> None:
    with pytest.raises(ValueError):
        decode_base64(bad)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=100))
def test_property_round_trip(data: bytes) -> None:
    text = encode_base64(data)
    assert "=" not in text
    assert text == base64.b64encode(data).decode().rstrip("=")
    assert decode_base64(text) == data
    url = encode_base64_urlsafe(data)
    assert "=" not in url and "+" not in url and "/" not in url
    assert decode_base64(url) == data
    assert decode_base64(text + "=" * (-len(text) % 4)) == data
