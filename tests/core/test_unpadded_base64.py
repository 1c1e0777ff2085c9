"""Unpadded base64 (spec appendix) against the spec's vectors and the error cases."""

from __future__ import annotations

import pytest

from hs.core.unpadded_base64 import decode_base64, encode_base64, encode_base64_urlsafe


def test_spec_vectors(spec_vectors: list[dict]) -> None:
    cases = [v for v in spec_vectors if v["category"] == "unpadded_base64"]
    assert len(cases) >= 7
    for case in cases:
        raw = case["input"].encode()
        assert encode_base64(raw) == case["expected"]
        assert decode_base64(case["expected"]) == raw


def test_decode_accepts_padding_and_both_alphabets() -> None:
    assert decode_base64("Zg==") == b"f"
    assert decode_base64("+/8") == b"\xfb\xff"
    assert decode_base64("-_8") == b"\xfb\xff"
    assert encode_base64_urlsafe(b"\xfb\xff") == "-_8"


@pytest.mark.parametrize("bad", ["Z", "Zm9v!", "Zm 9v", "Zm9vY", "+_8="])
def test_decode_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        decode_base64(bad)
