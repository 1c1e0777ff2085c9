"""A deterministic, realistic corpus of Matrix events for the micro-benchmarks.

Mixes what a busy homeserver actually hashes, signs and encodes: plain and formatted
messages (some non-ASCII), member events carrying signatures, a 500-user power-levels
event, a ~20 KB state event, reactions and edits.
"""

from __future__ import annotations

import random
from typing import Any

SERVER = "bench.example.org"
ROOM_ID = "!bench:" + SERVER

_WORDS = (
    'the', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'matrix',
    'federation', 'homeserver', 'sync', 'room', 'event', 'état', 'château', 'naïve',
    'résumé', '日本語', '中文', 'русский', 'ελληνικά', '🙂', '🚀', 'emoji',
)


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n))


def _base(rng: random.Random, i: int, etype: str, sender: str) -> dict[str, Any]:
    return {
        "type": etype,
        "room_id": ROOM_ID,
        "sender": sender,
        "origin_server_ts": 1_700_000_000_000 + i * 1013,
        "depth": 10 + i,
        "prev_events": [f"$prev{i - 1:06d}abcdefghijklmnopqrstuvwxyzABCDEFGHIJK"],
        "auth_events": [
            "$create000000abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLM",
            "$power000000abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN",
            f"$member{i % 50:05d}abcdefghijklmnopqrstuvwxyzABCDEFGHIJ",
        ],
        "hashes": {"sha256": "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE"},
        "signatures": {
            SERVER: {
                "ed25519:a_key": "x" * 86,
            }
        },
        "unsigned": {"age_ts": 1_700_000_000_000 + i * 1013},
    }


def power_levels_event(users: int = 500) -> dict[str, Any]:
    rng = random.Random(500)
    event = _base(rng, 0, "m.room.power_levels", f"@admin:{SERVER}")
    event["state_key"] = ""
    event["content"] = {
        "users": {f"@user{u:04d}:{SERVER}": rng.choice((0, 0, 0, 50, 100)) for u in range(users)},
        "users_default": 0,
        "events": {"m.room.name": 50, "m.room.power_levels": 100, "m.room.history_visibility": 100},
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 0,
        "notifications": {"room": 50},
    }
    return event


def large_state_event(size: int = 20_000) -> dict[str, Any]:
    rng = random.Random(20)
    event = _base(rng, 1, "org.example.big_state", f"@admin:{SERVER}")
    event["state_key"] = "blob"
    items = []
    while sum(len(x["text"]) + 40 for x in items) < size:
        items.append({"id": len(items), "text": _text(rng, 12), "flag": rng.random() < 0.5})
    event["content"] = {"items": items}
    return event


def event_corpus(n: int = 200, seed: int = 42) -> list[dict[str, Any]]:
    """``n`` events plus the 500-user power levels and the 20 KB state event."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = [power_levels_event(), large_state_event()]
    for i in range(n):
        sender = f"@user{rng.randrange(500):04d}:{SERVER}"
        kind = rng.random()
        if kind < 0.6:
            ev = _base(rng, i, "m.room.message", sender)
            ev["content"] = {"msgtype": "m.text", "body": _text(rng, rng.randrange(3, 40))}
            if rng.random() < 0.3:
                ev["content"]["format"] = "org.matrix.custom.html"
                ev["content"]["formatted_body"] = "<b>" + _text(rng, 8) + "</b>"
        elif kind < 0.8:
            ev = _base(rng, i, "m.room.member", sender)
            ev["state_key"] = sender
            ev["content"] = {
                "membership": "join",
                "displayname": _text(rng, 2),
                "avatar_url": f"mxc://{SERVER}/{rng.getrandbits(64):016x}",
            }
            ev["signatures"]["other.example.com"] = {"ed25519:auto": "y" * 86}
        elif kind < 0.9:
            ev = _base(rng, i, "m.reaction", sender)
            ev["content"] = {
                "m.relates_to": {
                    "rel_type": "m.annotation",
                    "event_id": f"$target{i:05d}abcdefghijklmnopqrstuvwxyzABCDEF",
                    "key": rng.choice(["👍", "❤️", "😂"]),
                }
            }
        else:
            ev = _base(rng, i, "m.room.message", sender)
            body = _text(rng, 10)
            ev["content"] = {
                "msgtype": "m.text",
                "body": "* " + body,
                "m.new_content": {"msgtype": "m.text", "body": body},
                "m.relates_to": {
                    "rel_type": "m.replace",
                    "event_id": f"$orig{i:05d}abcdefghijklmnopqrstuvwxyzABCDEFGH",
                },
            }
        events.append(ev)
    return events
