from collections.abc import Callable, Iterable, Mapping
from typing import Any

def is_allowed(
    event: Any,
    auth_events: Mapping[tuple[str, str], Any],
    fallback: Callable[[Any, Mapping[tuple[str, str], Any]], bool],
) -> bool: ...
def auth_keys(
    events: Iterable[Any], fallback: Callable[[Any], list[tuple[str, str]]]
) -> list[list[tuple[str, str]]]: ...
