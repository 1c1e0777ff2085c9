"""Content + reference hash per event: native twin vs pure twin vs canonicaljson + hashlib.

Each round hashes the whole corpus (202 events); divide the timings by ``len(CORPUS)`` for
per-event figures. Target: native >= 3x the canonicaljson + hashlib baseline.
"""

from __future__ import annotations

import hashlib
from typing import Any

import canonicaljson
import pytest

from bench.corpus import event_corpus
from hs._native import _canonical_json_py, _event_hash_py

CORPUS = event_corpus()
RULES = 11  # v11/v12, what new rooms use


def _baseline(event: dict[str, Any]) -> tuple[bytes, bytes, bytes]:
    """The same work with the reference libraries: canonicaljson and hashlib."""
    stripped = {k: v for k, v in event.items() if k not in ("unsigned", "signatures", "hashes")}
    chash = hashlib.sha256(canonicaljson.encode_canonical_json(stripped)).digest()
    redacted = _event_hash_py.redact(event, RULES)
    redacted.pop("signatures", None)
    redacted.pop("unsigned", None)
    signed = canonicaljson.encode_canonical_json(redacted)
    return chash, hashlib.sha256(signed).digest(), signed


def test_canonicaljson_hashlib(benchmark: Any) -> None:
    benchmark.group = "event hash (corpus of 202)"
    result = benchmark(lambda: [_baseline(e) for e in CORPUS])
    assert result == _event_hash_py.hash_events(CORPUS, RULES)


def test_pure_twin(benchmark: Any) -> None:
    benchmark.group = "event hash (corpus of 202)"
    assert len(benchmark(_event_hash_py.hash_events, CORPUS, RULES)) == len(CORPUS)


def test_pure_twin_pure_encoder(benchmark: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Everything in Python (what HS_NO_EXTENSIONS=1 runs)."""
    benchmark.group = "event hash (corpus of 202)"
    monkeypatch.setattr(
        _event_hash_py, "encode_canonical_json", _canonical_json_py.encode_canonical_json
    )
    assert len(benchmark(_event_hash_py.hash_events, CORPUS, RULES)) == len(CORPUS)


def test_native_twin(benchmark: Any) -> None:
    benchmark.group = "event hash (corpus of 202)"
    native = pytest.importorskip("hs._native._event_hash_c")
    result = benchmark(native.hash_events, CORPUS, RULES)
    assert result == _event_hash_py.hash_events(CORPUS, RULES)
