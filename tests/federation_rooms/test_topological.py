"""Ordering fetched events so each comes after the auth events it cites (send_join answers)."""

from __future__ import annotations

import random

from hs.handlers.federation.common import topological


class _Ev:
    def __init__(self, event_id: str, depth: int, auth: list[str]) -> None:
        self.event_id = event_id
        self.depth = depth
        self._auth = auth

    def auth_event_ids(self) -> list[str]:
        return self._auth


def test_auth_events_first_then_depth_and_id() -> None:
    create = _Ev("$c", 1, [])
    pl = _Ev("$p", 3, ["$c", "$j"])
    join = _Ev("$j", 2, ["$c"])
    members = [_Ev(f"$m{i:04d}", 4, ["$c", "$p", "$j"]) for i in range(2000)]
    order = [e.event_id for e in topological([*reversed(members), pl, join, create])]
    assert order[:3] == ["$c", "$j", "$p"]
    assert order[3:] == sorted(m.event_id for m in members)


def test_random_dags_respect_auth_order_and_cycles_fall_back() -> None:
    rng = random.Random(7)
    for _ in range(200):
        n = rng.randrange(1, 30)
        events = [_Ev(f"e{i}", rng.randrange(5), [f"e{rng.randrange(n)}"
                                                  for _ in range(rng.randrange(3))])
                  for i in range(n)]
        order = topological(events)
        assert sorted(e.event_id for e in order) == sorted(e.event_id for e in events)
        position = {e.event_id: i for i, e in enumerate(order)}
        for e in order:
            cyclic = any(position[a] > position[e.event_id] for a in e.auth_event_ids())
            # An event may precede one of its auth events only when both sit on a cycle.
            if cyclic:
                assert e.event_id in _on_cycles(events)


def _on_cycles(events: list[_Ev]) -> set[str]:
    graph = {e.event_id: set(e.auth_event_ids()) for e in events}
    reach: dict[str, set[str]] = {}
    for start in graph:
        seen: set[str] = set()
        stack = list(graph[start])
        while stack:
            node = stack.pop()
            if node in seen or node not in graph:
                continue
            seen.add(node)
            stack.extend(graph[node])
        reach[start] = seen
    # Events that cannot be ordered: on a cycle, or depending on one.
    stuck = {e for e in graph if e in reach[e]}
    changed = True
    while changed:
        changed = False
        for e, deps in graph.items():
            if e not in stuck and deps & stuck:
                stuck.add(e)
                changed = True
    return stuck
