"""Signing and verifying events: ``add_hashes_and_sign`` and ``check_event(s)``.

Each round covers ``len(EVENTS)`` events; divide for per-event figures. Ed25519 itself
(PyNaCl/libsodium) dominates; this shows what the hashing and bookkeeping add to it.
"""

from __future__ import annotations

import copy
from typing import Any

from bench.corpus import event_corpus
from hs.core.events import add_hashes_and_sign, check_event, check_events
from hs.core.keys import generate_signing_key, get_verify_key, static_key_lookup

SERVER = "bench.example.org"
KEY = generate_signing_key("bench")
LOOKUP = static_key_lookup({SERVER: {"ed25519:bench": (get_verify_key(KEY), 2**62)}})
VERSION = "11"


def _fresh() -> list[dict[str, Any]]:
    events = copy.deepcopy(event_corpus(100))
    for event in events:
        event["signatures"] = {}
    return events


EVENTS = [add_hashes_and_sign(e, VERSION, SERVER, KEY) for e in _fresh()]


def test_sign_events(benchmark: Any) -> None:
    benchmark.group = f"sign/verify ({len(EVENTS)} events)"
    events = _fresh()
    benchmark(lambda: [add_hashes_and_sign(e, VERSION, SERVER, KEY) for e in events])


def test_check_event_each(benchmark: Any) -> None:
    benchmark.group = f"sign/verify ({len(EVENTS)} events)"
    results = benchmark(lambda: [check_event(e, VERSION, LOOKUP) for e in EVENTS])
    assert all(r.ok and not r.redacted for r in results)


def test_check_events_batch(benchmark: Any) -> None:
    benchmark.group = f"sign/verify ({len(EVENTS)} events)"
    results = benchmark(check_events, EVENTS, VERSION, LOOKUP)
    assert all(r.ok and not r.redacted for r in results)


def test_ed25519_verify_floor(benchmark: Any) -> None:
    """Only the libsodium signature checks over precomputed bytes: the lower bound."""
    from hs._native.event_hash import hash_event
    from hs.core.unpadded_base64 import decode_base64

    verify_key = get_verify_key(KEY)
    pairs = [
        (hash_event(e, 11)[2], decode_base64(e["signatures"][SERVER]["ed25519:bench"]))
        for e in EVENTS
    ]
    benchmark.group = f"sign/verify ({len(EVENTS)} events)"
    benchmark(lambda: [verify_key.verify(message, sig) for message, sig in pairs])
