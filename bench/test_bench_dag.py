"""DAG walks, native vs pure: auth difference and conflicted subgraph on a 10,000-event room,
auth chains of 100 events, forward-extremity updates.

Run: ``PYTHONPATH=src:. pytest bench/test_bench_dag.py --benchmark-timer=time.process_time``

The room: create, creator join, power levels, join rules, then 10,000 state events (joins,
leaves, profile changes, topic and power-level changes) whose ``auth_events`` point at
what the auth rules select: create, current power levels, join rules for joins, the
sender's membership and the target's previous membership. After 7,000 events the room
forks into three branches of 1,000 events each; the three state sets are the state maps
at the branch tips, as state resolution would see them.
"""

from __future__ import annotations

import contextlib
import importlib
import random
from types import ModuleType
from typing import Any

import pytest

Graph = dict[str, list[str]]


def _twins() -> list[Any]:
    out: list[Any] = [pytest.param(importlib.import_module("hs._native._dag_py"), id="py")]
    with contextlib.suppress(ImportError):
        out.append(pytest.param(importlib.import_module("hs._native._dag_c"), id="c"))
    return out


TWINS = _twins()


def _eid(n: int) -> str:
    # Room v4+ event IDs: "$" + 43 characters of URL-safe unpadded base64.
    return "$" + f"{n:010d}".ljust(43, "A")


def build_room(seed: int = 1, trunk: int = 7000, branches: int = 3, per_branch: int = 1000):
    """Return (auth graph, [state map per branch tip])."""
    rng = random.Random(seed)
    graph: Graph = {}
    counter = iter(range(10**9))

    def add(auth: list[str]) -> str:
        eid = _eid(next(counter))
        graph[eid] = auth
        return eid

    create = add([])
    state: dict[tuple[str, str], str] = {}
    state[("m.room.create", "")] = create
    state[("m.room.member", "@u0")] = add([create])
    state[("m.room.power_levels", "")] = add([create, state[("m.room.member", "@u0")]])
    state[("m.room.join_rules", "")] = add(
        [create, state[("m.room.power_levels", "")], state[("m.room.member", "@u0")]]
    )
    users = ["@u0"]

    def step(st: dict[tuple[str, str], str], users: list[str]) -> None:
        pl = st[("m.room.power_levels", "")]
        roll = rng.random()
        if roll < 0.45 or len(users) < 5:  # a new user joins
            user = f"@u{len(graph)}"
            users.append(user)
            st[("m.room.member", user)] = add([create, pl, st[("m.room.join_rules", "")]])
            return
        sender = rng.choice(users)
        sender_member = st[("m.room.member", sender)]
        if roll < 0.75:  # leave / rejoin / profile change of the sender
            st[("m.room.member", sender)] = add([create, pl, sender_member])
        elif roll < 0.85:  # kick someone else
            target = rng.choice(users)
            auth = [create, pl, sender_member]
            if target != sender:
                auth.append(st[("m.room.member", target)])
            st[("m.room.member", target)] = add(auth)
        elif roll < 0.95:
            st[("m.room.topic", "")] = add([create, pl, sender_member])
        else:
            st[("m.room.power_levels", "")] = add([create, pl, sender_member])

    for _ in range(trunk):
        step(state, users)
    tips = []
    for _ in range(branches):
        branch_state, branch_users = dict(state), list(users)
        for _ in range(per_branch):
            step(branch_state, branch_users)
        tips.append(branch_state)
    return graph, tips


GRAPH, TIPS = build_room()
STATE_SETS = [list(t.values()) for t in TIPS]


def _fetch(ids: list[str]) -> dict[str, list[str]]:
    # What a storage layer's per-frontier query hands back.
    return {i: GRAPH[i] for i in ids if i in GRAPH}


def test_room_shape() -> None:
    from hs._native import _dag_py

    assert len(GRAPH) == 4 + 7000 + 3000
    union = _dag_py.auth_chain([e for s in STATE_SETS for e in s], GRAPH)
    diff = _dag_py.auth_difference(STATE_SETS, GRAPH)
    assert len(union) > 4000
    assert 0 < len(diff) < len(union)


@pytest.mark.parametrize("m", TWINS)
def test_auth_difference_10k_mapping(benchmark: Any, m: ModuleType) -> None:
    result = benchmark.pedantic(
        m.auth_difference, (STATE_SETS, GRAPH), rounds=15, iterations=1, warmup_rounds=1
    )
    assert result


@pytest.mark.parametrize("m", TWINS)
def test_auth_difference_10k_frontier_fetch(benchmark: Any, m: ModuleType) -> None:
    result = benchmark.pedantic(
        m.auth_difference, (STATE_SETS, _fetch), rounds=15, iterations=1, warmup_rounds=1
    )
    assert result


def _conflicted() -> list[str]:
    keys = set().union(*TIPS)
    return sorted(
        {t[k] for k in keys for t in TIPS if len({u.get(k) for u in TIPS}) > 1 and k in t}
    )


CONFLICTED = _conflicted()


@pytest.mark.parametrize("m", TWINS)
def test_conflicted_subgraph_10k(benchmark: Any, m: ModuleType) -> None:
    result = benchmark.pedantic(
        m.conflicted_subgraph, (CONFLICTED, GRAPH), rounds=15, iterations=1, warmup_rounds=1
    )
    assert result


CHAIN_SEEDS = random.Random(7).sample(STATE_SETS[0], 100)


@pytest.mark.parametrize("m", TWINS)
def test_auth_chain_of_100_events(benchmark: Any, m: ModuleType) -> None:
    result = benchmark.pedantic(
        m.auth_chain, (CHAIN_SEEDS, GRAPH), rounds=20, iterations=1, warmup_rounds=1
    )
    assert result


SMALL_SEEDS = random.Random(8).sample(sorted(GRAPH)[-200:], 100)


@pytest.mark.parametrize("m", TWINS)
def test_auth_chain_100_events_frontier_fetch(benchmark: Any, m: ModuleType) -> None:
    result = benchmark.pedantic(
        m.auth_chain, (SMALL_SEEDS, _fetch), rounds=20, iterations=1, warmup_rounds=1
    )
    assert result


def _extremity_batches() -> list[list[tuple[str, list[str], bool]]]:
    rng = random.Random(3)
    batches, tips = [], [_eid(10**6)]
    n = 10**6 + 1
    for _ in range(100):
        batch = []
        for _ in range(50):
            prevs = rng.sample(tips, min(len(tips), rng.randint(1, 2)))
            eid = _eid(n)
            n += 1
            batch.append((eid, prevs, rng.random() < 0.05))
            tips = [t for t in tips if t not in prevs] + [eid]
        batches.append(batch)
    return batches


BATCHES = _extremity_batches()


def _run_extremities(m: ModuleType) -> set[str]:
    ext: set[str] = set()
    for batch in BATCHES:
        ext = m.update_forward_extremities(ext, batch, ())
    return ext


@pytest.mark.parametrize("m", TWINS)
def test_extremities_100_batches_of_50(benchmark: Any, m: ModuleType) -> None:
    result = benchmark.pedantic(_run_extremities, (m,), rounds=20, iterations=1, warmup_rounds=1)
    assert result
