from collections.abc import Callable, Hashable, Iterable, Mapping, MutableMapping, Sequence
from types import ModuleType
from typing import Any

auth_rules: ModuleType
power_levels: ModuleType

class AuthGraph:
    def __init__(self) -> None: ...
    def add_event(self, event_id: str, auth_event_ids: Iterable[str]) -> None: ...
    def __contains__(self, event_id: object) -> bool: ...
    def __len__(self) -> int: ...
    def auth_event_ids(self, event_id: str) -> tuple[str, ...]: ...
    def missing(self, event_ids: Iterable[str]) -> list[str]: ...
    def auth_chain(self, event_ids: Iterable[str]) -> set[str]: ...
    def auth_chain_difference(self, state_sets: Sequence[Iterable[str]]) -> set[str]: ...
    def add_loaded(self, event_ids: Iterable[str], events: Mapping[str, Any]) -> set[str]: ...
    def conflicted_subgraph(self, conflicted: Iterable[str]) -> set[str]: ...

def split_state(
    state_sets: Sequence[Mapping[Hashable, str]], missing_is_conflict: bool = True
) -> tuple[dict[Hashable, str], dict[Hashable, list[str]]]: ...
def reverse_topological_power_sort(
    event_ids: Iterable[str],
    auth_edges: Mapping[str, Sequence[str]],
    power: Mapping[str, int | float],
    origin_ts: Mapping[str, int],
) -> list[str]: ...
def mainline_sort(
    event_ids: Iterable[str],
    mainline: Sequence[str],
    pl_parent: Mapping[str, str],
    origin_ts: Mapping[str, int],
) -> list[str]: ...
def conflicted_event_ids(conflicted: Mapping[Any, Sequence[str]]) -> set[str]: ...
def select_power_events(
    full: Iterable[str], events: Mapping[str, Any]
) -> tuple[set[str], list[str]]: ...
def cited_state(
    event: Any, events: Mapping[str, Any], create: Any, cache: MutableMapping[str, Any]
) -> Mapping[tuple[str, str], Any]: ...
def power_sort_inputs(
    event_ids: Iterable[str],
    events: Mapping[str, Any],
    create: Any,
    cache: MutableMapping[str, Any],
    levels: Any,
) -> tuple[dict[str, tuple[str, ...]], dict[str, int | float], dict[str, int]]: ...
def auth_prefetch_ids(
    todo: Sequence[Any],
    required: Sequence[Sequence[tuple[str, str]]],
    base: Mapping[tuple[str, str], str],
    changes: Mapping[tuple[str, str], str],
) -> set[str]: ...
def iterative_auth_checks(
    todo: Sequence[Any],
    required: Sequence[Sequence[tuple[str, str]]],
    base: Mapping[tuple[str, str], str],
    changes: dict[tuple[str, str], str],
    events: Mapping[str, Any],
    create: Any,
    cache: MutableMapping[str, Any],
    is_allowed: Callable[[Any, Mapping[tuple[str, str], Any]], bool],
) -> dict[tuple[str, str], str]: ...
