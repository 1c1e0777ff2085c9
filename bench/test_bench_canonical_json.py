"""Canonical JSON encoding and strict decoding over the realistic event corpus.

Targets (issue #2): native >= 5x ``canonicaljson``; native within 1.5x of orjson with
``OPT_SORT_KEYS`` (which validates nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import canonicaljson
import orjson
import pytest

from bench.conftest import native, pure
from bench.corpus import event_corpus

CORPUS = event_corpus()
RAW = [orjson.dumps(e) for e in CORPUS]


def _encode_all(encode: Callable[[Any], bytes]) -> None:
    for event in CORPUS:
        encode(event)


@pytest.mark.benchmark(group="canonical-json-encode")
def test_encode_native(benchmark: Any) -> None:
    benchmark(_encode_all, native("canonical_json").encode_canonical_json)


@pytest.mark.benchmark(group="canonical-json-encode")
def test_encode_pure(benchmark: Any) -> None:
    benchmark(_encode_all, pure("canonical_json").encode_canonical_json)


@pytest.mark.benchmark(group="canonical-json-encode")
def test_encode_ref_canonicaljson(benchmark: Any) -> None:
    benchmark(_encode_all, canonicaljson.encode_canonical_json)


@pytest.mark.benchmark(group="canonical-json-encode")
def test_encode_ref_orjson_sorted(benchmark: Any) -> None:
    benchmark(_encode_all, lambda v: orjson.dumps(v, option=orjson.OPT_SORT_KEYS))


def _decode_all(decode: Callable[[bytes], Any]) -> None:
    for raw in RAW:
        decode(raw)


@pytest.mark.benchmark(group="json-decode-strict")
def test_decode_strict(benchmark: Any) -> None:
    from hs.core.json_decode import decode_strict

    benchmark(_decode_all, decode_strict)


@pytest.mark.benchmark(group="json-decode-strict")
def test_decode_ref_orjson(benchmark: Any) -> None:
    benchmark(_decode_all, orjson.loads)
