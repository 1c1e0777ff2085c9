"""Outbound federation: per-destination transaction queues with backoff and catch-up
(``queue``), the fan-out of local PDUs/EDUs (``sender``), outbound EDU production
(``edus_out``) and their wiring from the homeserver config (``build_sender``)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from hs.federation.sender.backoff import RetryPolicy
from hs.federation.sender.edus_out import OutboundEdus
from hs.federation.sender.queue import DestinationQueue, QueuedPdu
from hs.federation.sender.sender import FederationSender


def retry_policy_from_config(config: Any) -> RetryPolicy:
    """Synapse's ``federation.destination_min_retry_interval`` /
    ``destination_max_retry_interval`` (ms here) when the config carries them."""
    default = RetryPolicy()
    low = getattr(config, "federation_destination_min_retry_interval_ms", None)
    high = getattr(config, "federation_destination_max_retry_interval_ms", None)
    return RetryPolicy(min_interval_ms=int(low or default.min_interval_ms),
                       max_interval_ms=int(high or default.max_interval_ms))


def events_pdu_source(events: Any) -> Any:
    """Catch-up's PDU loader over ``EventsStore.get_events``."""

    async def load(event_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        found = await events.get_events(list(event_ids))
        return {eid: {k: v for k, v in pdu.data.items() if k != "unsigned"}
                for eid, pdu in found.items()}

    return load


__all__ = ["DestinationQueue", "FederationSender", "OutboundEdus", "QueuedPdu",
           "RetryPolicy", "events_pdu_source", "retry_policy_from_config"]
