"""State resolution of a 1,000-member room forked by 10 power-level/join-rule changes.

Target: the whole native resolution (``_state_sort_c``) >= 10x the pure twin. Both runs
use the same in-memory store, inputs and asserted results; only the ``state_sort`` twin
differs, together with the twins paired with it: ``power_levels`` (user levels and the
``m.room.power_levels`` rule) and ``auth_rules`` (the compiled auth verdict; the pure twin
is ``hs.core.auth`` itself, which the compiled one also falls back to for rare shapes).

The coroutine is driven without an event loop (the
in-memory store never suspends), so loop overhead does not dilute the comparison.
"""

from __future__ import annotations

from collections.abc import Coroutine
from types import ModuleType
from typing import Any

import pytest
from tests.core.state_res_fixtures import big_room_forks, big_room_topic_forks

from bench.conftest import native, pure
from hs.core.room_versions import KNOWN_ROOM_VERSIONS
from hs.core.state_res import InMemoryStateResolutionStore, resolve_state

V11, V12 = KNOWN_ROOM_VERSIONS["11"], KNOWN_ROOM_VERSIONS["12"]
FORKS = {rv.identifier: big_room_forks(rv, members=1000, conflicts=10) for rv in (V11, V12)}
#: Secondary case: 10,000 members, the forks differ by one topic each.
FORKS["12-topic"] = big_room_topic_forks(V12, members=10_000)


def _drive(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never awaits anything pending (in-memory store)."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("the store suspended; use an event loop")


def _resolver(version: str, sorts: ModuleType) -> Any:
    builder, state_a, state_b = FORKS[version]
    store = InMemoryStateResolutionStore(builder.events.values(), sorts=sorts)
    rv = KNOWN_ROOM_VERSIONS[version.split("-")[0]]

    def run() -> dict[tuple[str, str], str]:
        result: dict[tuple[str, str], str] = _drive(
            resolve_state(builder.room_id, rv, [state_a, state_b], store, sorts=sorts)
        )
        return result

    return run


def _check(result: dict[tuple[str, str], str]) -> None:
    assert len(result) == 1 + 1000 + 2  # create, members, PL and join rules
    assert result[("m.room.power_levels", "")].startswith("$F")


@pytest.mark.parametrize("version", ["12", "11"])
@pytest.mark.benchmark(group="state-res-1000-members")
def test_resolve_native(benchmark: Any, version: str) -> None:
    _check(benchmark(_resolver(version, native("state_sort"))))


@pytest.mark.parametrize("version", ["12", "11"])
@pytest.mark.benchmark(group="state-res-1000-members")
def test_resolve_pure(benchmark: Any, version: str) -> None:
    _check(benchmark(_resolver(version, pure("state_sort"))))


def _split(m: ModuleType) -> Any:
    _, state_a, state_b = FORKS["12"]
    return lambda: m.split_state([state_a, state_b])


@pytest.mark.benchmark(group="state-res-split")
def test_split_native(benchmark: Any) -> None:
    assert benchmark(_split(native("state_sort")))[1]


@pytest.mark.benchmark(group="state-res-split")
def test_split_pure(benchmark: Any) -> None:
    assert benchmark(_split(pure("state_sort")))[1]


def _difference(m: ModuleType) -> Any:
    builder, state_a, state_b = FORKS["12"]
    store = InMemoryStateResolutionStore(builder.events.values(), sorts=m)
    sets = [set(state_a.values()), set(state_b.values())]
    return lambda: store.graph.auth_chain_difference(sets)


@pytest.mark.benchmark(group="state-res-auth-difference")
def test_auth_difference_native(benchmark: Any) -> None:
    assert benchmark(_difference(native("state_sort")))


@pytest.mark.benchmark(group="state-res-auth-difference")
def test_auth_difference_pure(benchmark: Any) -> None:
    assert benchmark(_difference(pure("state_sort")))


@pytest.mark.benchmark(group="state-res-10000-members-topic")
def test_resolve_topic_native(benchmark: Any) -> None:
    result = benchmark(_resolver("12-topic", native("state_sort")))
    assert result[("m.room.topic", "")] in ("$TA", "$TB")


@pytest.mark.benchmark(group="state-res-10000-members-topic")
def test_resolve_topic_pure(benchmark: Any) -> None:
    result = benchmark(_resolver("12-topic", pure("state_sort")))
    assert result[("m.room.topic", "")] in ("$TA", "$TB")


def _power_levels_rule(m: ModuleType) -> Any:
    """Rule 10 for one of the forks' power levels events against the room's first."""
    builder, _, _ = FORKS["12"]
    new, old = builder.events["$F01"], builder.events["$P0"]
    args = (new.content, old.content, new.sender, 100, new.room_version, frozenset())
    return lambda: m.power_levels_violation(*args)


@pytest.mark.benchmark(group="state-res-power-levels-rule")
def test_power_levels_rule_native(benchmark: Any) -> None:
    assert benchmark(_power_levels_rule(native("power_levels"))) is None


@pytest.mark.benchmark(group="state-res-power-levels-rule")
def test_power_levels_rule_pure(benchmark: Any) -> None:
    assert benchmark(_power_levels_rule(pure("power_levels"))) is None
