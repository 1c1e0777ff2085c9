"""The end-to-end encryption parts of ``/sync`` (spec "End-to-End Encryption", "Extensions
to /sync"): ``to_device``, ``device_lists``, ``device_one_time_keys_count`` and
``device_unused_fallback_key_types``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hs.app import Services

#: To-device messages per response; the rest follow in the next one (Synapse: 100).
TO_DEVICE_LIMIT = 100


async def to_device(services: Services, user_id: str, device_id: str, since: int, upto: int
                    ) -> tuple[list[dict[str, Any]], int]:
    """Messages in ``(since, upto]`` and the position the next token carries: the last
    one returned when the limit cut the list short, else ``upto``. Reads up to our own
    upper bound (not the stream's current position) so the token matches what was sent."""
    if since >= upto:
        return [], since
    found = await services.to_device.store.get_messages(
        user_id, device_id, since, upto, TO_DEVICE_LIMIT)
    if len(found) >= TO_DEVICE_LIMIT:
        return [m for _, m in found], found[-1][0]
    return [m for _, m in found], upto


async def device_lists(services: Services, user_id: str, since_dl: int, upto_dl: int,
                       since_events: int, upto_events: int) -> dict[str, list[str]]:
    """Users whose device lists changed (or who newly share a room) and who left."""
    if since_dl >= upto_dl and since_events >= upto_events:
        return {"changed": [], "left": []}
    changed, left = await services.device_lists.device_list_changes_since(
        user_id, since_dl, upto_dl, events_from=since_events, events_to=upto_events)
    return {"changed": sorted(changed), "left": sorted(left)}


async def key_counts(services: Services, user_id: str, device_id: str) -> dict[str, Any]:
    return {
        "device_one_time_keys_count": await services.e2e_keys.one_time_key_counts(
            user_id, device_id),
        "device_unused_fallback_key_types": await services.e2e_keys.unused_fallback_key_types(
            user_id, device_id),
    }


__all__ = ["TO_DEVICE_LIMIT", "device_lists", "key_counts", "to_device"]
