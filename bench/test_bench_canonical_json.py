"""Canonical JSON encoding and strict decoding over the realistic event corpus.

Targets: native encoder >= 5x ``canonicaljson`` and within 1.5x of orjson with
``OPT_SORT_KEYS`` (which validates nothing). The decoder is measured against a bare
``orjson.loads`` (no checks at all) with each twin of its scan.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import canonicaljson
import orjson
import pytest

import hs.core.json_decode as json_decode
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


def _strict_with(
    monkeypatch: pytest.MonkeyPatch, scan_module: ModuleType
) -> Callable[[bytes], Any]:
    """``decode_strict`` (v6+ rules) running on the given twin of the scan."""
    for name in ("parse", "scan"):
        monkeypatch.setattr(json_decode, name, getattr(scan_module, name))
    return lambda raw: json_decode.decode_strict(raw, allow_floats=False)


@pytest.mark.benchmark(group="json-decode-strict")
def test_decode_strict_native(benchmark: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    benchmark(_decode_all, _strict_with(monkeypatch, native("json_scan")))


@pytest.mark.benchmark(group="json-decode-strict")
def test_decode_strict_pure(benchmark: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    benchmark(_decode_all, _strict_with(monkeypatch, pure("json_scan")))


@pytest.mark.benchmark(group="json-decode-strict")
def test_decode_ref_orjson(benchmark: Any) -> None:
    benchmark(_decode_all, orjson.loads)


@pytest.mark.benchmark(group="json-decode-strict")
def test_decode_ref_stdlib_exact(benchmark: Any) -> None:
    # The decoder's slow, exact path (stdlib json + duplicate-key hook) on every event.
    benchmark(_decode_all, json_decode._decode_exact)
