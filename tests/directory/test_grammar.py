"""Alias grammar (appendices "Room Aliases") and /publicRooms pagination tokens."""

from __future__ import annotations

import pytest

from hs.handlers.directory import _decode_token, _encode_token, parse_alias
from hs.http.errors import MatrixError
from hs.storage.directory import PageKey


@pytest.mark.parametrize("alias, expected", [
    ("#room:example.org", ("room", "example.org")),
    ("#with spaces and émoji 🎉:example.org", ("with spaces and émoji 🎉", "example.org")),
    ("#r:example.org:8448", ("r", "example.org:8448")),
    ("#r:[::1]:8448", ("r", "[::1]:8448")),
    ("#r:1.2.3.4", ("r", "1.2.3.4")),
])
def test_valid_aliases(alias: str, expected: tuple[str, str]) -> None:
    assert parse_alias(alias) == expected


@pytest.mark.parametrize("alias", [
    "room:example.org", "#room", "#:example.org", "#room:", "#a\x00b:example.org",
    "#r:exa mple.org", "#r:example.org:", "#r:example.org:99999x", "#r:[::1",
    "#" + "a" * 250 + ":example.org", "#r:ex_ample.org",
])
def test_invalid_aliases(alias: str) -> None:
    with pytest.raises(MatrixError) as info:
        parse_alias(alias)
    assert (info.value.status, info.value.errcode) == (400, "M_INVALID_PARAM")


def test_tokens_round_trip_and_reject_garbage() -> None:
    key = PageKey(12, "!room:example.org")
    assert _decode_token(_encode_token("n", key)) == ("n", key)
    assert _decode_token(_encode_token("p", key)) == ("p", key)
    for bad in ("", "x", "n", "nnot-base64!", "q" + _encode_token("n", key)[1:],
                "n" + "WyJhIiwxXQ"):  # ["a",1]: wrong types
        with pytest.raises(MatrixError) as info:
            _decode_token(bad)
        assert info.value.errcode == "M_INVALID_PARAM", bad
