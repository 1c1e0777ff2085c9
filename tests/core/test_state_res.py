"""State resolution v1, v2 and v2.1: the native sorts (both twins) and whole scenarios."""

from __future__ import annotations

import asyncio
import math
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from state_res_fixtures import (
    ALICE,
    BOB,
    CHARLIE,
    CREATE,
    JR,
    PL,
    SERVER,
    TOPIC,
    ZARA,
    DagBuilder,
    Room,
    Spec,
    member,
    run_scenario,
)

from conftest import twin_params, twins
from hs._native import _state_sort_py
from hs._native._errors import StateSortError
from hs.core.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion

TWINS = twin_params("state_sort")
V1, V2, V11, V12 = (KNOWN_ROOM_VERSIONS[v] for v in ("1", "2", "11", "12"))
#: Versions running v2 (and v2.1 for 12) over which the classic scenarios are replayed.
V2_VERSIONS = [KNOWN_ROOM_VERSIONS[v] for v in ("2", "5", "6", "9", "10", "11", "12")]
DAVE = f"@dave:{SERVER}"


# ---- the sorts, both twins ------------------------------------------------------------


@pytest.mark.parametrize("m", TWINS)
def test_topological_sort_follows_auth_edges_then_power_ts_id(m: ModuleType) -> None:
    # c and b are both ready after a; c's sender has more power so it goes first even
    # though b is earlier; d and e tie on power and ts, so the event ID decides.
    edges = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": ["c"]}
    power = {"a": 100, "b": 0, "c": 50, "d": 0, "e": 0}
    ts = {"a": 1, "b": 2, "c": 3, "d": 5, "e": 5}
    assert m.reverse_topological_power_sort(list(edges), edges, power, ts) == [
        "a",
        "c",
        "b",
        "d",
        "e",
    ]


@pytest.mark.parametrize("m", TWINS)
def test_topological_sort_ignores_edges_leaving_the_set_and_infinite_power(
    m: ModuleType,
) -> None:
    edges = {"x": ["outside"], "y": ["outside", "x"], "z": []}
    power = {"x": 0, "y": 0, "z": math.inf}
    ts = {"x": 10, "y": 11, "z": 99}
    assert m.reverse_topological_power_sort({"x", "y", "z"}, edges, power, ts) == ["z", "x", "y"]


@pytest.mark.parametrize("m", TWINS)
def test_topological_sort_rejects_cycles_and_missing_keys(m: ModuleType) -> None:
    edges = {"a": ["b"], "b": ["a"]}
    with pytest.raises(StateSortError):
        m.reverse_topological_power_sort(["a", "b"], edges, {"a": 0, "b": 0}, {"a": 0, "b": 0})
    with pytest.raises(KeyError):
        m.reverse_topological_power_sort(["a"], {}, {}, {"a": 0})
    with pytest.raises(TypeError):
        m.reverse_topological_power_sort([1], {}, {1: 0}, {1: 0})
    assert m.reverse_topological_power_sort([], {}, {}, {}) == []


@pytest.mark.parametrize("m", TWINS)
def test_mainline_sort(m: ModuleType) -> None:
    # Mainline P2 -> P1 -> P0. t1 cites P0 (position 2), t2 cites P2 (position 0), t3 cites
    # an off-mainline PX whose parent is P1 (position 1), t4 cites nothing (infinity).
    mainline = ["P2", "P1", "P0"]
    parents = {"P2": "P1", "P1": "P0", "t1": "P0", "t2": "P2", "t3": "PX", "PX": "P1"}
    ts = {"t1": 50, "t2": 10, "t3": 40, "t4": 99, "t5": 50}
    parents["t5"] = "P0"
    out = m.mainline_sort(["t1", "t2", "t3", "t4", "t5"], mainline, parents, ts)
    assert out == ["t4", "t1", "t5", "t3", "t2"]
    assert m.mainline_sort([], mainline, parents, {}) == []
    # No power levels at all: everything ties at infinity.
    assert m.mainline_sort(["b", "a"], [], {}, {"a": 1, "b": 1}) == ["a", "b"]


@pytest.mark.parametrize("m", TWINS)
def test_mainline_sort_rejects_a_parent_cycle(m: ModuleType) -> None:
    with pytest.raises(StateSortError):
        m.mainline_sort(["e"], ["P"], {"e": "x", "x": "y", "y": "x"}, {"e": 0})


@pytest.mark.parametrize("m", TWINS)
def test_split_state(m: ModuleType) -> None:
    s1 = {("a", ""): "$1", ("b", ""): "$2", ("c", ""): "$3"}
    s2 = {("a", ""): "$1", ("b", ""): "$9", ("d", ""): "$4"}
    unconflicted, conflicted = m.split_state([s1, s2])
    assert unconflicted == {("a", ""): "$1"}
    assert conflicted == {("b", ""): ["$2", "$9"], ("c", ""): ["$3"], ("d", ""): ["$4"]}
    # v1: a key only some states have is not a conflict.
    unconflicted, conflicted = m.split_state([s1, s2], False)
    assert unconflicted == {("a", ""): "$1", ("c", ""): "$3", ("d", ""): "$4"}
    assert conflicted == {("b", ""): ["$2", "$9"]}
    assert m.split_state([]) == ({}, {})
    with pytest.raises(TypeError):
        m.split_state([{("a", ""): 5}])


@pytest.mark.parametrize("m", TWINS)
def test_auth_graph_walks(m: ModuleType) -> None:
    g = m.AuthGraph()
    g.add_event("create", [])
    g.add_event("join", ["create"])
    g.add_event("pl", ["create", "join"])
    g.add_event("pl2", ["create", "join", "pl"])
    g.add_event("jr", ["create", "join", "pl"])
    g.add_event("topic", ["create", "pl2", "ghost"])  # ghost: referenced, never added
    g.add_event("topic", ["create"])  # ignored: first version wins
    assert len(g) == 6 and "topic" in g and "ghost" not in g
    assert g.auth_event_ids("topic") == ("create", "pl2", "ghost")
    assert g.auth_chain(["topic"]) == {"create", "join", "pl", "pl2", "ghost"}
    assert g.auth_chain(["pl", "pl2"]) == {"create", "join", "pl"}
    assert g.missing(["topic", "nothing"]) == ["ghost", "nothing"]
    # {pl2} vs {jr}: pl2 and jr differ; pl is in both chains.
    assert g.auth_chain_difference([{"pl2"}, {"jr"}]) == {"pl2", "jr"}
    assert g.auth_chain_difference([{"pl2", "topic"}, {"pl2"}]) == {"topic", "ghost"}
    assert g.auth_chain_difference([]) == set()
    # Paths between the conflicted create and pl2: create <- join <- pl <- pl2.
    assert g.conflicted_subgraph({"pl2", "create"}) == {"pl2", "pl", "join", "create"}
    assert g.conflicted_subgraph({"jr", "pl2"}) == {"jr", "pl2"}
    with pytest.raises(TypeError):
        g.add_event(3, [])
    with pytest.raises(TypeError):
        g.add_event("x", [None])


@pytest.mark.parametrize("m", TWINS)
def test_deep_graphs_need_no_recursion(m: ModuleType) -> None:
    # A 20,000-event auth chain: walks and sorts are iterative, so depth is no problem.
    n = 20_000
    ids = [f"$e{i:05d}" for i in range(n)]
    g = m.AuthGraph()
    edges: dict[str, list[str]] = {}
    for i, e in enumerate(ids):
        edges[e] = [ids[i - 1]] if i else []
        g.add_event(e, edges[e])
    assert len(g.auth_chain([ids[-1]])) == n - 1
    assert g.conflicted_subgraph({ids[0], ids[-1]}) == set(ids)
    assert g.auth_chain_difference([{ids[-1]}, {ids[0]}]) == set(ids[1:])
    zero = dict.fromkeys(ids, 0)
    # Power and timestamps favour the *latest* events; the auth edges still win.
    power = {e: i for i, e in enumerate(ids)}
    assert m.reverse_topological_power_sort(ids, edges, power, zero) == ids
    parents = {e: ids[i - 1] for i, e in enumerate(ids) if i}
    assert m.mainline_sort([ids[-1], ids[5]], ids[::-1][:10], parents, zero) == [ids[5], ids[-1]]


@st.composite
def random_dags(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(min_value=0, max_value=40))
    ids = [f"${draw(st.text('abcdef', min_size=1, max_size=3))}{i}" for i in range(n)]
    edges: dict[str, list[str]] = {}
    for i, e in enumerate(ids):
        parents = draw(st.lists(st.integers(0, max(i - 1, 0)), max_size=4)) if i else []
        edges[e] = [ids[p] for p in parents]
    levels = st.one_of(st.integers(-5, 100), st.just(math.inf))
    power = {e: draw(levels) for e in ids}
    ts = {e: draw(st.integers(0, 6)) for e in ids}
    subset = draw(st.sets(st.sampled_from(ids))) if ids else set()
    return {"ids": ids, "edges": edges, "power": power, "ts": ts, "subset": subset}


def _all_twins() -> list[ModuleType]:
    return twins("state_sort")


@settings(max_examples=150, deadline=None)
@given(random_dags())
def test_twins_agree_on_random_dags(dag: dict[str, Any]) -> None:
    ids, edges, power, ts, subset = (dag[k] for k in ("ids", "edges", "power", "ts", "subset"))
    results = []
    for m in _all_twins():
        order = m.reverse_topological_power_sort(subset, edges, power, ts)
        # Kahn's order is a topological order of the subset.
        seen: set[str] = set()
        for e in order:
            assert all(a in seen for a in edges[e] if a in subset)
            seen.add(e)
        assert seen == subset
        # Mainline: the chain of first parents from the last event, parents = first edge.
        parents = {e: es[0] for e, es in edges.items() if es}
        mainline: list[str] = []
        p = ids[-1] if ids else None
        while p is not None:
            mainline.append(p)
            p = parents.get(p)
        mainline_order = m.mainline_sort(subset, mainline, parents, ts)
        g = m.AuthGraph()
        for e in ids:
            g.add_event(e, edges[e])
        half = set(ids[: len(ids) // 2])
        results.append(
            (
                order,
                mainline_order,
                g.auth_chain(subset),
                g.auth_chain_difference([subset, half]),
                g.conflicted_subgraph(subset),
                m.split_state([{(e, ""): e for e in subset}, {(e, ""): e for e in half}]),
            )
        )
    assert all(r == results[0] for r in results)


@settings(max_examples=100, deadline=None)
@given(random_dags())
def test_conflicted_subgraph_matches_its_definition(dag: dict[str, Any]) -> None:
    g = _state_sort_py.AuthGraph()
    for e in dag["ids"]:
        g.add_event(e, dag["edges"][e])
    conflicted = dag["subset"]

    def reach(start: str) -> set[str]:
        return g.auth_chain([start]) | {start}

    expected = {x for a in conflicted for x in reach(a) if any(b in reach(x) for b in conflicted)}
    for m in _all_twins():
        graph = m.AuthGraph()
        for e in dag["ids"]:
            graph.add_event(e, dag["edges"][e])
        assert graph.conflicted_subgraph(conflicted) == expected


@settings(max_examples=100, deadline=None)
@given(random_dags(), st.integers(1, 3), st.randoms(use_true_random=False))
def test_auth_chain_difference_matches_its_definition(
    dag: dict[str, Any], n_sets: int, rnd: Any
) -> None:
    ids = dag["ids"]
    sets = [{e for e in ids if rnd.random() < 0.4} for _ in range(n_sets)]
    reference = _state_sort_py.AuthGraph()
    for e in ids:
        reference.add_event(e, dag["edges"][e])
    chains = [s | reference.auth_chain(s) for s in sets]
    expected = set().union(*chains) - set.intersection(*chains)
    for m in _all_twins():
        graph = m.AuthGraph()
        for e in ids:
            graph.add_event(e, dag["edges"][e])
        assert graph.auth_chain_difference(sets) == expected
        assert graph.auth_chain_difference([list(s) for s in sets]) == expected


def _fresh(text: str) -> str:
    """An equal str that is another object than ``text`` (defeats identity lookups)."""
    return "".join(list(text))


@settings(max_examples=100, deadline=None)
@given(random_dags(), st.integers(1, 3), st.randoms(use_true_random=False))
def test_auth_chain_difference_of_state_map_views(
    dag: dict[str, Any], n_sets: int, rnd: Any
) -> None:
    """The resolver passes ``dict.values()`` views; the IDs in them may be the graph's own
    objects, equal copies, or IDs the graph has never seen (leaves)."""
    ids = [*dag["ids"], "$unknown"]
    maps = []
    for _ in range(n_sets):
        chosen = [e for e in ids if rnd.random() < 0.4]
        maps.append(
            {("t", str(k)): e if rnd.random() < 0.5 else _fresh(e) for k, e in enumerate(chosen)}
        )
    sets = [set(m.values()) for m in maps]
    reference = _state_sort_py.AuthGraph()
    for e in dag["ids"]:
        reference.add_event(e, dag["edges"][e])
    chains = [s | reference.auth_chain(s) for s in sets]
    expected = set().union(*chains) - set.intersection(*chains)
    for m in _all_twins():
        graph = m.AuthGraph()
        for e in dag["ids"]:
            graph.add_event(_fresh(e), [_fresh(a) for a in dag["edges"][e]])
        assert graph.auth_chain_difference([x.values() for x in maps]) == expected
        assert graph.auth_chain_difference([x.values() for x in maps]) == expected  # again
        assert graph.auth_chain([e for x in maps for e in x.values()]) == reference.auth_chain(
            [e for x in maps for e in x.values()]
        )


@pytest.mark.parametrize("bad", [None, 3, b"$a", ("$a",)])
def test_auth_chain_difference_rejects_non_str_ids_in_views(bad: object) -> None:
    for m in _all_twins():
        graph = m.AuthGraph()
        graph.add_event("$a", [])
        with pytest.raises(TypeError):
            graph.auth_chain_difference([{1: "$a", 2: bad}.values(), {1: "$a"}.values()])
        assert graph.auth_chain_difference([{1: "$a"}.values(), {}.values()]) == {"$a"}


def test_auth_chain_difference_of_forked_views() -> None:
    """Equal-sized maps (forks of one state) are walked in lockstep: same objects, equal
    copies, different IDs and unknown IDs at the same positions all count as usual."""
    for m in _all_twins():
        graph = m.AuthGraph()
        graph.add_event("$c", [])
        graph.add_event("$p1", ["$c"])
        graph.add_event("$p2", ["$p1"])
        graph.add_event("$m", ["$c", "$p1"])
        a = {"c": "$c", "p": "$p1", "m": "$m", "x": "$ghost"}
        b = {"c": _fresh("$c"), "p": "$p2", "m": "$m", "x": "$ghost"}
        c = {"c": "$c", "p": "$p2", "m": _fresh("$m"), "y": "$other"}
        assert graph.auth_chain_difference([a.values(), b.values()]) == {"$p2"}
        assert graph.auth_chain_difference([a.values(), b.values(), c.values()]) == {
            "$p2",
            "$ghost",
            "$other",
        }
        with pytest.raises(TypeError):
            graph.auth_chain_difference([a.values(), {**a, "m": 7}.values()])


def test_auth_graph_identity_table_survives_growth() -> None:
    """Thousands of IDs (the identity table is rehashed several times), looked up both as
    the added objects and as equal copies."""
    for m in _all_twins():
        graph = m.AuthGraph()
        ids = [f"$e{i}" for i in range(5000)]
        for i, e in enumerate(ids):
            graph.add_event(e, [ids[i - 1]] if i else [])
        assert graph.auth_chain_difference([{0: ids[10]}.values(), {0: ids[5]}.values()]) == {
            *ids[6:11]
        }
        copies = {k: _fresh(e) for k, e in enumerate(ids[:100])}
        assert graph.auth_chain_difference([copies.values(), [ids[99]]]) == set()
        assert len(graph) == 5000


# ---- whole resolutions -----------------------------------------------------------------


def _check(result: dict[tuple[str, str], str], events: dict[str, Any], expected: list[str]) -> None:
    for e in expected:
        assert result[events[e].state_tuple] == e, f"{e} is not in the resolved state"


def _pl(users: dict[str, int], **extra: Any) -> dict[str, Any]:
    return {"users": users, **extra}


JOIN = {"membership": "join"}


@pytest.mark.parametrize("rv", V2_VERSIONS, ids=lambda v: f"v{v}")
@pytest.mark.parametrize("m", TWINS)
def test_ban_vs_pl(m: ModuleType, rv: RoomVersion) -> None:
    specs = [
        Spec("$PA", "m.room.power_levels", ALICE, _pl({ALICE: 100, BOB: 50}), ""),
        Spec("$MA", "m.room.member", ALICE, JOIN, ALICE),
        Spec("$MB", "m.room.member", ALICE, {"membership": "ban"}, BOB),
        Spec("$PB", "m.room.power_levels", BOB, _pl({ALICE: 100, BOB: 50}), ""),
    ]
    edges = [["$END", "$MB", "$MA", "$PA", "$START"], ["$END", "$PB", "$PA"]]
    r = run_scenario(rv, specs, edges, m)
    _check(r.state_at_end, r.events, ["$PA", "$MA", "$MB"])


@pytest.mark.parametrize("rv", V2_VERSIONS, ids=lambda v: f"v{v}")
@pytest.mark.parametrize("m", TWINS)
def test_join_rule_evasion(m: ModuleType, rv: RoomVersion) -> None:
    specs = [
        Spec("$JR", "m.room.join_rules", ALICE, {"join_rule": "invite"}, ""),
        Spec("$ME", "m.room.member", DAVE, JOIN, DAVE),
    ]
    edges = [["$END", "$JR", "$START"], ["$END", "$ME", "$START"]]
    r = run_scenario(rv, specs, edges, m)
    _check(r.state_at_end, r.events, ["$JR"])
    assert member(DAVE) not in r.state_at_end


@pytest.mark.parametrize("rv", V2_VERSIONS, ids=lambda v: f"v{v}")
@pytest.mark.parametrize("m", TWINS)
def test_offtopic_pl(m: ModuleType, rv: RoomVersion) -> None:
    specs = [
        Spec("$PA", "m.room.power_levels", ALICE, _pl({ALICE: 100, BOB: 50}), ""),
        Spec("$PB", "m.room.power_levels", BOB, _pl({ALICE: 100, BOB: 50, CHARLIE: 50}), ""),
        Spec("$PC", "m.room.power_levels", CHARLIE, _pl({ALICE: 100, BOB: 50, CHARLIE: 0}), ""),
    ]
    edges = [["$END", "$PC", "$PB", "$PA", "$START"], ["$END", "$PA"]]
    r = run_scenario(rv, specs, edges, m)
    _check(r.state_at_end, r.events, ["$PC"])


@pytest.mark.parametrize("rv", V2_VERSIONS, ids=lambda v: f"v{v}")
@pytest.mark.parametrize("m", TWINS)
def test_topic_basic(m: ModuleType, rv: RoomVersion) -> None:
    specs = [
        Spec("$T1", "m.room.topic", ALICE, {"topic": "1"}, ""),
        Spec("$PA1", "m.room.power_levels", ALICE, _pl({ALICE: 100, BOB: 50}), ""),
        Spec("$T2", "m.room.topic", ALICE, {"topic": "2"}, ""),
        Spec("$PA2", "m.room.power_levels", ALICE, _pl({ALICE: 100, BOB: 0}), ""),
        Spec("$PB", "m.room.power_levels", BOB, _pl({ALICE: 100, BOB: 50}), ""),
        Spec("$T3", "m.room.topic", BOB, {"topic": "3"}, ""),
    ]
    edges = [
        ["$END", "$PA2", "$T2", "$PA1", "$T1", "$START"],
        ["$END", "$T3", "$PB", "$PA1"],
    ]
    r = run_scenario(rv, specs, edges, m)
    _check(r.state_at_end, r.events, ["$PA2", "$T2"])


@pytest.mark.parametrize("rv", V2_VERSIONS, ids=lambda v: f"v{v}")
@pytest.mark.parametrize("m", TWINS)
def test_topic_reset(m: ModuleType, rv: RoomVersion) -> None:
    specs = [
        Spec("$T1", "m.room.topic", ALICE, {"topic": "1"}, ""),
        Spec("$PA", "m.room.power_levels", ALICE, _pl({ALICE: 100, BOB: 50}), ""),
        Spec("$T2", "m.room.topic", BOB, {"topic": "2"}, ""),
        Spec("$MB", "m.room.member", ALICE, {"membership": "ban"}, BOB),
    ]
    edges = [["$END", "$MB", "$T2", "$PA", "$T1", "$START"], ["$END", "$T1"]]
    r = run_scenario(rv, specs, edges, m)
    _check(r.state_at_end, r.events, ["$T1", "$MB", "$PA"])


@pytest.mark.parametrize("rv", V2_VERSIONS, ids=lambda v: f"v{v}")
@pytest.mark.parametrize("m", TWINS)
def test_topic_setting(m: ModuleType, rv: RoomVersion) -> None:
    specs = [
        Spec("$T1", "m.room.topic", ALICE, {"topic": "1"}, ""),
        Spec("$PA1", "m.room.power_levels", ALICE, _pl({ALICE: 100, BOB: 50}), ""),
        Spec("$T2", "m.room.topic", ALICE, {"topic": "2"}, ""),
        Spec("$PA2", "m.room.power_levels", ALICE, _pl({ALICE: 100, BOB: 0}), ""),
        Spec("$PB", "m.room.power_levels", BOB, _pl({ALICE: 100, BOB: 50}), ""),
        Spec("$T3", "m.room.topic", BOB, {"topic": "3"}, ""),
        Spec("$MZ1", "m.room.message", ZARA, {"body": "hi"}),
        Spec("$T4", "m.room.topic", ALICE, {"topic": "4"}, ""),
    ]
    edges = [
        ["$END", "$T4", "$MZ1", "$PA2", "$T2", "$PA1", "$T1", "$START"],
        ["$END", "$MZ1", "$T3", "$PB", "$PA1"],
    ]
    r = run_scenario(rv, specs, edges, m)
    _check(r.state_at_end, r.events, ["$T4", "$PA2"])


@pytest.mark.parametrize("rv", V2_VERSIONS, ids=lambda v: f"v{v}")
@pytest.mark.parametrize("m", TWINS)
def test_mainline_sort_scenario(m: ModuleType, rv: RoomVersion) -> None:
    specs = [
        Spec("$T1", "m.room.topic", ALICE, {"topic": "1"}, ""),
        Spec("$PA1", "m.room.power_levels", ALICE, _pl({ALICE: 100, BOB: 50}), ""),
        Spec("$T2", "m.room.topic", ALICE, {"topic": "2"}, ""),
        Spec(
            "$PA2",
            "m.room.power_levels",
            ALICE,
            _pl({ALICE: 100, BOB: 50}, events={"m.room.power_levels": 100}),
            "",
        ),
        Spec("$PB", "m.room.power_levels", BOB, _pl({ALICE: 100, BOB: 50}), ""),
        Spec("$T3", "m.room.topic", BOB, {"topic": "3"}, ""),
        Spec("$T4", "m.room.topic", ALICE, {"topic": "4"}, ""),
    ]
    edges = [
        ["$END", "$T3", "$PA2", "$T2", "$PA1", "$T1", "$START"],
        ["$END", "$T4", "$PB", "$PA1"],
    ]
    r = run_scenario(rv, specs, edges, m)
    _check(r.state_at_end, r.events, ["$T3", "$PA2"])


# ---- direct resolutions over hand-built forks -------------------------------------------


def _base_room(rv: RoomVersion, users: dict[str, int], joined: list[str]) -> Room:
    room = Room(DagBuilder(rv))
    room.send("$CREATE", "m.room.create", ALICE, room.builder.create_content(), "")
    room.send("$JA", "m.room.member", ALICE, JOIN, ALICE)
    room.send("$P0", "m.room.power_levels", ALICE, _pl(users), "")
    room.send("$J0", "m.room.join_rules", ALICE, {"join_rule": "public"}, "")
    for i, user in enumerate(joined):
        room.send(f"$J{user[1:4]}{i}", "m.room.member", user, JOIN, user)
    return room


def _resolve(room: Room, m: ModuleType, *sets: dict[Any, str]) -> dict[Any, str]:
    from hs.core.state_res import InMemoryStateResolutionStore, resolve_state

    store = InMemoryStateResolutionStore(room.builder.events.values(), sorts=m)
    rv = room.builder.room_version
    result = asyncio.run(resolve_state(room.builder.room_id, rv, list(sets), store, sorts=m))
    # Resolution must not depend on the order of the state sets.
    again = asyncio.run(
        resolve_state(room.builder.room_id, rv, list(reversed(sets)), store, sorts=m)
    )
    assert result == again
    return result


@pytest.mark.parametrize("rv", [V2, V11], ids=lambda v: f"v{v}")
@pytest.mark.parametrize("m", TWINS)
def test_ban_racing_power_level_change(m: ModuleType, rv: RoomVersion) -> None:
    # Bob (50) raises charlie while alice (100) concurrently bans bob: the ban is applied
    # first (alice outranks bob), so bob's PL change fails against the partial state.
    room = _base_room(rv, {ALICE: 100, BOB: 50}, [BOB, CHARLIE])
    a, b = room.fork(), room.fork()
    a.send("$BAN", "m.room.member", ALICE, {"membership": "ban"}, BOB)
    b.send("$PB", "m.room.power_levels", BOB, _pl({ALICE: 100, BOB: 50, CHARLIE: 50}), "")
    result = _resolve(room, m, a.state, b.state)
    assert result[member(BOB)] == "$BAN"
    assert result[PL] == "$P0"


@pytest.mark.parametrize("rv", [V2, V11], ids=lambda v: f"v{v}")
@pytest.mark.parametrize("m", TWINS)
def test_join_rules_flip_race(m: ModuleType, rv: RoomVersion) -> None:
    # Alice makes the room invite-only while dave joins (public) and sets a topic on the
    # other fork: the join fails once the invite rule is in place. The topic still passes:
    # dave's membership is absent from the partial state, so the check falls back to the
    # topic's own auth events, which hold his (not rejected) join (rooms/v2.md "Iterative
    # auth checks").
    room = _base_room(rv, {ALICE: 100, DAVE: 50}, [BOB])
    a, b = room.fork(), room.fork()
    a.send("$INV", "m.room.join_rules", ALICE, {"join_rule": "invite"}, "")
    b.send("$JD", "m.room.member", DAVE, JOIN, DAVE)
    b.send("$TD", "m.room.topic", DAVE, {"topic": "dave was here"}, "")
    result = _resolve(room, m, a.state, b.state)
    assert result[JR] == "$INV"
    assert member(DAVE) not in result
    assert result[TOPIC] == "$TD"


@pytest.mark.parametrize("rv", [V2, V11], ids=lambda v: f"v{v}")
@pytest.mark.parametrize("m", TWINS)
def test_rejected_auth_events_are_not_a_fallback(m: ModuleType, rv: RoomVersion) -> None:
    # As above, but this server rejected dave's join: a rejected auth event may not stand
    # in for missing state, so dave is not in the room and his topic fails.
    room = _base_room(rv, {ALICE: 100, DAVE: 50}, [BOB])
    a, b = room.fork(), room.fork()
    a.send("$INV", "m.room.join_rules", ALICE, {"join_rule": "invite"}, "")
    b.send("$JD", "m.room.member", DAVE, JOIN, DAVE, rejected="not allowed")
    b.send("$TD", "m.room.topic", DAVE, {"topic": "dave was here"}, "")
    result = _resolve(room, m, a.state, b.state)
    assert result[JR] == "$INV"
    assert member(DAVE) not in result
    assert TOPIC not in result


@pytest.mark.parametrize("rv", [V2, V11, V12], ids=lambda v: f"v{v}")
@pytest.mark.parametrize("m", TWINS)
def test_conflicting_topic(m: ModuleType, rv: RoomVersion) -> None:
    # Same mainline position, so origin_server_ts orders the two and the later one wins.
    users = {BOB: 50} if rv.privileged_creators else {ALICE: 100, BOB: 50}
    room = _base_room(rv, users, [BOB])
    a, b = room.fork(), room.fork()
    b.send("$TB", "m.room.topic", BOB, {"topic": "bob"}, "", ts=5_000)
    a.send("$TA", "m.room.topic", ALICE, {"topic": "alice"}, "", ts=6_000)
    result = _resolve(room, m, a.state, b.state)
    assert result[TOPIC] == "$TA"
    assert result[PL] == "$P0" and result[CREATE] == "$CREATE"


@pytest.mark.parametrize("rv", [V2, V11], ids=lambda v: f"v{v}")
@pytest.mark.parametrize("m", TWINS)
def test_power_level_race(m: ModuleType, rv: RoomVersion) -> None:
    # Two admins of equal power change PL concurrently: the earlier goes first and the
    # later, still allowed against it, wins.
    room = _base_room(rv, {ALICE: 100, BOB: 100}, [BOB, CHARLIE])
    a, b = room.fork(), room.fork()
    a.send("$PA", "m.room.power_levels", ALICE, _pl({ALICE: 100, BOB: 100, CHARLIE: 10}), "")
    b.send("$PB", "m.room.power_levels", BOB, _pl({ALICE: 100, BOB: 100, CHARLIE: 20}), "")
    assert _resolve(room, m, a.state, b.state)[PL] == "$PB"


@pytest.mark.parametrize("m", TWINS)
def test_unconflicted_state_is_returned_as_is(m: ModuleType) -> None:
    room = _base_room(V11, {ALICE: 100}, [BOB])
    assert _resolve(room, m, room.state, dict(room.state)) == room.state
    assert _resolve(room, m, room.state) == room.state


# ---- v2.1 (room version 12) --------------------------------------------------------------


@pytest.mark.parametrize("m", TWINS)
@pytest.mark.parametrize(
    ("rv", "users", "winner"),
    [(V11, {ALICE: 100, BOB: 100}, "$PB"), (V12, {BOB: 100}, "$PA")],
    ids=["v11", "v12"],
)
def test_creator_power_orders_first(
    m: ModuleType, rv: RoomVersion, users: dict[str, int], winner: str
) -> None:
    # Bob (100) edits PL before alice (the creator) demotes him. v11: equal power, bob's
    # earlier event goes first and alice may not demote an equal. v12: the creator's
    # infinite power sorts her event first and lets her demote bob; bob's then fails.
    room = _base_room(rv, users, [BOB, CHARLIE])
    a, b = room.fork(), room.fork()
    b.send("$PB", "m.room.power_levels", BOB, _pl({**users, CHARLIE: 50}), "", ts=5_000)
    demoted = {u: (0 if u == BOB else lvl) for u, lvl in users.items()}
    a.send("$PA", "m.room.power_levels", ALICE, _pl(demoted), "", ts=6_000)
    assert _resolve(room, m, a.state, b.state)[PL] == winner


@pytest.mark.parametrize("m", TWINS)
def test_additional_creators_are_equals(m: ModuleType) -> None:
    room = Room(DagBuilder(V12))
    content = room.builder.create_content(additional_creators=[BOB])
    room.send("$CREATE", "m.room.create", ALICE, content, "")
    room.send("$JA", "m.room.member", ALICE, JOIN, ALICE)
    room.send("$JB", "m.room.member", BOB, JOIN, BOB)
    room.send("$P0", "m.room.power_levels", ALICE, _pl({}), "")
    a, b = room.fork(), room.fork()
    a.send("$PA", "m.room.power_levels", ALICE, _pl({CHARLIE: 10}), "", ts=9_000)
    b.send("$PB", "m.room.power_levels", BOB, _pl({CHARLIE: 20}), "", ts=8_000)
    # Both infinite: bob's earlier event first, alice's later one (still allowed) wins.
    assert _resolve(room, m, a.state, b.state)[PL] == "$PA"


@pytest.mark.parametrize("m", TWINS)
@pytest.mark.parametrize(("rv", "winner"), [(V11, "$J2"), (V12, "$J1")], ids=["v11", "v12"])
def test_v2_1_iterative_checks_start_from_empty_state(
    m: ModuleType, rv: RoomVersion, winner: str
) -> None:
    # Bob sets invite (J1, while he had 100), alice then demotes bob (P1), and on one fork
    # alice sets public again (J2, timestamped before J1). PL P1 is unconflicted. v2 checks
    # J1 against the unconflicted P1 (bob 0: rejected); v2.1 starts from an empty map, so
    # J1 is checked against its own auth events (P0: bob 100) and, applied last, wins.
    users = {ALICE: 100, BOB: 100} if rv is V11 else {BOB: 100}
    room = _base_room(rv, users, [BOB])
    room.send("$J1", "m.room.join_rules", BOB, {"join_rule": "invite"}, "", ts=7_000)
    demoted = {u: (0 if u == BOB else lvl) for u, lvl in users.items()}
    room.send("$P1", "m.room.power_levels", ALICE, _pl(demoted), "", ts=7_100)
    a, b = room.fork(), room.fork()
    b.send("$J2", "m.room.join_rules", ALICE, {"join_rule": "public"}, "", ts=6_000)
    result = _resolve(room, m, a.state, b.state)
    assert result[PL] == "$P1"
    assert result[JR] == winner


@pytest.mark.parametrize("m", TWINS)
def test_v2_1_uses_conflicted_subgraph(m: ModuleType) -> None:
    from hs.core.state_res import InMemoryStateResolutionStore
    from hs.core.state_res._context import ResolutionContext
    from hs.core.state_res.v2 import _conflicted_subgraph  # the walk without store help

    room = _base_room(V12, {BOB: 100}, [BOB])
    room.send("$T1", "m.room.topic", BOB, {"topic": "1"}, "")
    room.send("$P1", "m.room.power_levels", ALICE, _pl({BOB: 90}), "")
    room.send("$T2", "m.room.topic", BOB, {"topic": "2"}, "")

    class Plain:  # hides get_conflicted_subgraph so the resolver walks itself
        def __init__(self, inner: InMemoryStateResolutionStore) -> None:
            self.inner = inner

        async def get_events(self, ids: Any) -> Any:
            return await self.inner.get_events(ids)

        async def get_auth_chain_difference(self, room_id: str, sets: Any) -> Any:
            return await self.inner.get_auth_chain_difference(room_id, sets)

    inner = InMemoryStateResolutionStore(room.builder.events.values(), sorts=m)
    ctx = ResolutionContext(room.builder.room_id, V12, Plain(inner), m)
    walked = asyncio.run(_conflicted_subgraph(ctx, {"$T2", "$P0"}))
    # T2 -> P1 -> P0 and T2 -> bob's join -> (join rules J0 ->) P0; alice's join reaches no P0.
    assert walked == {"$T2", "$P1", "$P0", "$Jbob0", "$J0"}
    assert inner.graph.conflicted_subgraph({"$T2", "$P0"}) == walked


# ---- v1 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("m", TWINS)
def test_v1_simple_conflict(m: ModuleType) -> None:
    room = _base_room(V1, {ALICE: 100, BOB: 50}, [BOB])
    a, b = room.fork(), room.fork()
    a.send("$TA", "m.room.topic", ALICE, {"topic": "a"}, "", depth=20)
    b.send("$TB", "m.room.topic", BOB, {"topic": "b"}, "", depth=30)
    result = _resolve(room, m, a.state, b.state)
    assert result[TOPIC] == "$TB"  # highest depth wins among those that pass auth


@pytest.mark.parametrize("m", TWINS)
def test_v1_power_levels_then_topic(m: ModuleType) -> None:
    # PL conflict: the shallower PL is taken as is; the deeper one (bob raising himself)
    # fails auth against it, so R keeps alice's. Bob's deeper topic then needs 50 and
    # alice's PL set him to 0: it fails, and alice's topic is picked.
    room = _base_room(V1, {ALICE: 100, BOB: 50}, [BOB])
    a, b = room.fork(), room.fork()
    a.send("$PA", "m.room.power_levels", ALICE, _pl({ALICE: 100, BOB: 0}), "", depth=10)
    a.send("$TA", "m.room.topic", ALICE, {"topic": "a"}, "", depth=11)
    b.send("$PB", "m.room.power_levels", BOB, _pl({ALICE: 100, BOB: 100}), "", depth=12)
    b.send("$TB", "m.room.topic", BOB, {"topic": "b"}, "", depth=13)
    result = _resolve(room, m, a.state, b.state)
    assert result[PL] == "$PA"
    assert result[TOPIC] == "$TA"
    assert result[member(BOB)].startswith("$J")


# ---- random forks: both twins resolve identically ---------------------------------------

EVE = f"@eve:{SERVER}"
_ACTORS = [ALICE, BOB, CHARLIE, DAVE]


@st.composite
def random_forks(draw: st.DrawFn) -> tuple[Room, list[dict[Any, str]]]:
    rv = draw(st.sampled_from([V1, V2, V11, V12]))
    users = {BOB: 100, CHARLIE: 50} if rv.privileged_creators else {ALICE: 100, BOB: 100}
    room = _base_room(rv, users, [BOB, CHARLIE, DAVE])
    forks = [room.fork() for _ in range(draw(st.integers(2, 3)))]
    counter = 0
    for fork in forks:
        for _ in range(draw(st.integers(0, 5))):
            counter += 1
            eid = f"$R{counter:03d}"
            sender = draw(st.sampled_from(_ACTORS))
            kind = draw(st.sampled_from(["pl", "jr", "ban", "kick", "join", "topic"]))
            ts = draw(st.integers(10_000, 10_020))
            depth = draw(st.integers(10, 14))
            if kind == "pl":
                levels = {
                    u: draw(st.sampled_from([0, 50, 100]))
                    for u in (BOB, CHARLIE, DAVE)
                    if draw(st.booleans())
                }
                if not rv.privileged_creators:
                    levels[ALICE] = 100
                fork.send(eid, "m.room.power_levels", sender, _pl(levels), "", ts=ts, depth=depth)
            elif kind == "jr":
                rule = draw(st.sampled_from(["public", "invite"]))
                fork.send(eid, "m.room.join_rules", sender, {"join_rule": rule}, "", ts=ts)
            elif kind in ("ban", "kick"):
                target = draw(st.sampled_from(_ACTORS))
                membership = "ban" if kind == "ban" else "leave"
                fork.send(eid, "m.room.member", sender, {"membership": membership}, target, ts=ts)
            elif kind == "join":
                fork.send(eid, "m.room.member", EVE, JOIN, EVE, ts=ts, depth=depth)
            else:
                fork.send(eid, "m.room.topic", sender, {"topic": eid}, "", ts=ts, depth=depth)
    return room, [f.state for f in forks]


@settings(max_examples=60, deadline=None)
@given(random_forks())
def test_twins_resolve_random_forks_identically(case: tuple[Room, list[dict[Any, str]]]) -> None:
    room, states = case
    results = [_resolve(room, m, *states) for m in _all_twins()]
    assert all(r == results[0] for r in results)
    # Keys every fork agrees on come through untouched.
    for key, value in states[0].items():
        if all(s.get(key) == value for s in states[1:]):
            assert results[0][key] == value


# ---- junk input: the Cython twin raises where the pure one does, never crashes ----------

_junk_id = st.one_of(st.sampled_from(["$a", "$b", "$c", "$d"]), st.none(), st.integers(0, 3))
_junk_value = st.one_of(
    _junk_id, st.lists(_junk_id, max_size=3), st.floats(allow_nan=False), st.text(max_size=2)
)


def _outcome(fn: Any, *args: Any) -> Any:
    try:
        return ("ok", fn(*args))
    except (TypeError, KeyError, ValueError) as exc:  # StateSortError is a ValueError
        return ("error", type(exc))


@settings(max_examples=200, deadline=None)
@given(
    ids=st.lists(_junk_id, max_size=5),
    edges=st.dictionaries(_junk_id, _junk_value, max_size=5),
    power=st.dictionaries(_junk_id, _junk_value, max_size=5),
    ts=st.dictionaries(_junk_id, _junk_value, max_size=5),
    states=st.lists(st.dictionaries(_junk_id, _junk_value, max_size=4), max_size=3),
)
def test_twins_agree_on_junk(ids: Any, edges: Any, power: Any, ts: Any, states: Any) -> None:
    outcomes = []
    for m in _all_twins():
        graph = m.AuthGraph()
        per_twin = [
            _outcome(m.reverse_topological_power_sort, ids, edges, power, ts),
            _outcome(m.mainline_sort, ids, list(edges), edges, ts),
            _outcome(m.split_state, states),
            _outcome(m.split_state, states, False),
        ]
        for key, value in edges.items():
            per_twin.append(
                _outcome(graph.add_event, key, value if isinstance(value, list) else [value])
            )
        per_twin += [
            _outcome(graph.auth_chain, ids),
            _outcome(graph.auth_chain_difference, [ids, list(edges)]),
            _outcome(graph.conflicted_subgraph, ids),
            _outcome(graph.missing, ids),
            len(graph),
        ]
        outcomes.append(per_twin)
    for o in outcomes[1:]:
        assert o == outcomes[0]


@pytest.mark.parametrize("rv", [V1, V11, V12], ids=lambda v: f"v{v}")
@pytest.mark.parametrize("m", TWINS)
def test_events_missing_from_the_store_are_left_out(m: ModuleType, rv: RoomVersion) -> None:
    users = {BOB: 50} if rv.privileged_creators else {ALICE: 100, BOB: 50}
    room = _base_room(rv, users, [BOB])
    a, b = room.fork(), room.fork()
    a.send("$TA", "m.room.topic", ALICE, {"topic": "a"}, "")
    b.state[TOPIC] = "$NOWHERE"  # a state map naming an event the store never saw
    result = _resolve(room, m, a.state, b.state)
    assert result[TOPIC] == "$TA"
    assert result[PL] == "$P0"


def test_store_protocols() -> None:
    from hs.core.state_res import ConflictedSubgraphStore, InMemoryStateResolutionStore

    store = InMemoryStateResolutionStore(sorts=_state_sort_py)
    assert isinstance(store, ConflictedSubgraphStore)
    assert asyncio.run(store.get_events(["$x"])) == {}
    assert asyncio.run(store.get_auth_chain_difference("!r", [{"$x"}, {"$y"}])) == {"$x", "$y"}


# ---- forks of one dict: split_state's lockstep walk and views for the auth difference ----


@st.composite
def forked_maps(draw: st.DrawFn) -> list[dict[Any, Any]]:
    """State maps that start as copies of one dict, then diverge (values replaced, keys
    added, deleted or re-added, ``None`` values): the lockstep walk and its fallbacks."""
    keys = [("m.room.member", f"@u{i}:x") for i in range(draw(st.integers(0, 8)))]
    base = {k: f"$e{i}" for i, k in enumerate(keys)}
    maps = []
    for _ in range(draw(st.integers(1, 3))):
        state: dict[Any, Any] = dict(base)
        for _ in range(draw(st.integers(0, 4))):
            op = draw(st.sampled_from(["set", "add", "del", "none", "readd", "junk"]))
            key = draw(st.sampled_from(keys)) if keys else ("k", "")
            if op == "set":
                state[key] = draw(st.sampled_from(["$x", "$y", f"$e{len(keys)}"]))
            elif op == "add":
                state[("m.room.topic", draw(st.sampled_from(["", "a"])))] = "$t"
            elif op == "del":
                state.pop(key, None)
            elif op == "none":
                state[key] = None
            elif op == "readd" and key in state:
                state[key] = state.pop(key)
            elif op == "junk":
                state[key] = draw(st.sampled_from([1, b"$e0", ["$e0"]]))
        maps.append(state)
    return maps


def _split_outcome(m: ModuleType, maps: list[dict[Any, Any]], missing: bool) -> Any:
    try:
        unconflicted, conflicted = m.split_state(maps, missing)
    except TypeError as exc:
        return ("error", type(exc))
    # Order is part of the contract (keys keep their order of first appearance).
    return list(unconflicted.items()), list(conflicted.items())


@settings(max_examples=300, deadline=None)
@given(forked_maps(), st.booleans())
def test_twins_split_forked_maps_identically(maps: list[dict[Any, Any]], missing: bool) -> None:
    outcomes = [_split_outcome(m, maps, missing) for m in _all_twins()]
    assert all(o == outcomes[0] for o in outcomes)


@settings(max_examples=100, deadline=None)
@given(random_dags(), st.integers(1, 3), st.randoms(use_true_random=False))
def test_auth_chain_difference_of_views(dag: dict[str, Any], n_sets: int, rnd: Any) -> None:
    ids = dag["ids"]
    # Maps from state keys to IDs: aligned positions, repeated IDs, differing lengths.
    maps = [
        {(str(i), ""): e if rnd.random() < 0.7 else rnd.choice(ids) for i, e in enumerate(ids)}
        for _ in range(n_sets)
    ]
    for state in maps:
        for _ in range(rnd.randrange(3)):
            if state:
                state.pop(rnd.choice(list(state)))
    expected = None
    for m in _all_twins():
        graph = m.AuthGraph()
        for e in ids:
            graph.add_event(e, dag["edges"][e])
        as_sets = graph.auth_chain_difference([set(s.values()) for s in maps])
        assert graph.auth_chain_difference([s.values() for s in maps]) == as_sets
        expected = as_sets if expected is None else expected
        assert as_sets == expected


# ---- the resolver's loops, both twins --------------------------------------------------------


@pytest.mark.parametrize("m", TWINS)
def test_resolver_loops(m: ModuleType) -> None:
    room = _base_room(V12, {BOB: 50}, [BOB, CHARLIE])
    a, b = room.fork(), room.fork()
    a.send("$PA", "m.room.power_levels", ALICE, _pl({BOB: 100}), "")
    b.send("$KB", "m.room.member", BOB, {"membership": "leave"}, CHARLIE)
    b.send("$TB", "m.room.topic", BOB, {"topic": "b"}, "")
    events = dict(room.builder.events)
    conflicted = {PL: ["$P0", "$PA"], TOPIC: ["$TB"], ("x", ""): ["$PA"]}
    assert m.conflicted_event_ids(conflicted) == {"$P0", "$PA", "$TB"}
    state, power = m.select_power_events({"$PA", "$KB", "$TB", "$NOPE"}, events)
    assert state == {"$PA", "$KB", "$TB"}
    assert sorted(power) == ["$KB", "$PA"]
    create = events["$CREATE"]
    cache: dict[str, Any] = {}
    cited = m.cited_state(events["$TB"], events, create, cache)
    assert cited[CREATE] is create
    assert cited[PL] is events["$P0"]
    assert m.cited_state(events["$TB"], events, create, cache) is cited  # cached
    assert m.cited_state(events["$TB"], {}, None, {}) == {}
    edges, power_of, ts = m.power_sort_inputs(["$PA", "$KB"], events, create, {}, m.power_levels)
    assert power_of == {"$PA": math.inf, "$KB": 50}
    assert edges["$KB"] == events["$KB"].auth_event_ids()
    assert ts["$PA"] == events["$PA"].origin_server_ts
    todo = [events["$PA"], events["$KB"]]
    required = [[PL, member(ALICE)], [PL, member(BOB), member(CHARLIE)]]
    assert m.auth_prefetch_ids(todo, required, {PL: "$P0"}, {}) >= {"$P0", "$JA"}
    seen: list[tuple[str, dict[Any, Any]]] = []

    def allowed(ev: Any, auth: dict[Any, Any]) -> bool:
        seen.append((ev.event_id, dict(auth)))
        return ev.event_id == "$PA"

    changes = m.iterative_auth_checks(todo, required, {PL: "$P0"}, {}, events, create, {}, allowed)
    assert changes == {PL: "$PA"}
    # $KB saw the state ($PA accepted before it), and its own cited events elsewhere.
    assert seen[1][1][PL] is events["$PA"]
    assert seen[1][1][member(BOB)] is m.cited_state(events["$KB"], events, create, {})[member(BOB)]
    assert seen[1][1][CREATE] is create


def test_resolution_uses_the_paired_power_levels_twin() -> None:
    from hs._native import _power_levels_py
    from hs.core.state_res import InMemoryStateResolutionStore
    from hs.core.state_res._context import ResolutionContext

    store = InMemoryStateResolutionStore(sorts=_state_sort_py)
    ctx = ResolutionContext("!r:x", V11, store, _state_sort_py)
    assert ctx.levels is _power_levels_py
    for m in _all_twins():
        assert m.power_levels.__name__ == m.__name__.replace("_state_sort_", "_power_levels_")


class _NotAPDU:
    event_id = "$n"


_LOOP_JUNK: list[tuple[str, tuple[Any, ...]]] = [
    ("conflicted_event_ids", (None,)),
    ("conflicted_event_ids", ({"k": [1, None]},)),
    ("select_power_events", (["$a", 1], {"$a": _NotAPDU()})),
    ("select_power_events", (None, {})),
    ("cited_state", (_NotAPDU(), {}, None, {})),
    ("cited_state", (None, {}, None, {})),
    ("power_sort_inputs", (["$n"], {"$n": _NotAPDU()}, None, {}, None)),
    ("auth_prefetch_ids", ([_NotAPDU()], [], {}, {})),
    ("auth_prefetch_ids", ([], [[PL]], {}, {})),
    ("iterative_auth_checks", ([_NotAPDU()], [[]], {}, {}, {}, None, {}, None)),
    ("iterative_auth_checks", ([], [], {}, {}, {}, None, {}, None)),
]


@pytest.mark.parametrize(("name", "args"), _LOOP_JUNK, ids=[n for n, _ in _LOOP_JUNK])
def test_twins_loops_fail_alike_on_junk(name: str, args: tuple[Any, ...]) -> None:
    outcomes = []
    for m in _all_twins():
        try:
            outcomes.append(("ok", getattr(m, name)(*args)))
        except Exception as exc:
            outcomes.append(("error", type(exc)))
    assert all(o == outcomes[0] for o in outcomes)


@pytest.mark.parametrize("m", TWINS)
@pytest.mark.parametrize("version", ["11", "12"])
def test_store_without_auth_chain_helper_resolves_the_same(m: ModuleType, version: str) -> None:
    """``get_auth_chain`` is an optional store extra: walking the auth events instead gives
    the same resolution."""
    from state_res_fixtures import big_room_forks

    from hs.core.state_res import InMemoryStateResolutionStore, resolve_state

    rv = KNOWN_ROOM_VERSIONS[version]
    builder, state_a, state_b = big_room_forks(rv, members=60, conflicts=10)
    inner = InMemoryStateResolutionStore(builder.events.values(), sorts=m)

    class Plain:  # only the required methods
        async def get_events(self, ids: Any) -> Any:
            return await inner.get_events(ids)

        async def get_auth_chain_difference(self, room_id: str, sets: Any) -> Any:
            return await inner.get_auth_chain_difference(room_id, sets)

    sets = [state_a, state_b]
    walked = asyncio.run(resolve_state(builder.room_id, rv, sets, Plain(), sorts=m))  # type: ignore[arg-type]
    helped = asyncio.run(resolve_state(builder.room_id, rv, sets, inner, sorts=m))
    assert walked == helped
    assert helped[("m.room.power_levels", "")].startswith("$F")
