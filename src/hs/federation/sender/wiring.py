"""Building the sender, outbound EDUs, inbound EDU handler and outbound queries from the
homeserver's ``Services`` (called from ``Services.__post_init__``)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from hs.federation.edus import EduHandler
from hs.federation.sender import events_pdu_source, retry_policy_from_config
from hs.federation.sender.edus_out import OutboundEdus
from hs.federation.sender.sender import FederationSender
from hs.handlers.federation_queries import FederationQueries
from hs.storage.federation import FederationSenderStore, RemoteDevicesStore
from hs.storage.receipts import ReceiptsStore

if TYPE_CHECKING:
    from hs.app import Services


def wire_federation_sending(services: Services
                            ) -> tuple[FederationSender, EduHandler, FederationQueries]:
    """Hooks: the event pipeline's ``on_persisted`` (PDUs) and the notifier (EDUs)."""
    name = services.config.server_name
    client = services.federation.client
    store = FederationSenderStore(services.db)
    sender = FederationSender(
        name, client, store, events_pdu_source(services.events),
        to_device=services.to_device.store,
        policy=retry_policy_from_config(services.config), clock=services.clock)
    receipts: ReceiptsStore = services.receipts.store
    outbound = OutboundEdus(
        sender, store, typing=services.typing, receipts=receipts, presence=services.presence,
        e2e=services.device_lists.store, to_device_stream=services.to_device.stream,
        clock=services.clock)
    sender.outbound = outbound
    outbound.tap(services.notifier)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        outbound.start()
        sender.start()
    services.rooms.pipeline.on_persisted.append(sender.on_persisted)
    services.rooms.pipeline.on_state_changed.append(sender.forget_room)
    queries = FederationQueries(name, client)
    # Client handlers that expose a ``remote`` hook for other servers' users get the
    # outbound queries (profiles: ``query_profile``; E2E keys: ``query_keys``/``claim_keys``).
    for handler, hook in ((services.profiles, queries.query_profile),
                          (services.e2e_keys, queries)):
        if hasattr(handler, "remote"):
            handler.remote = hook
    edu_handler = EduHandler(
        name, store, RemoteDevicesStore(services.db), services.notifier, services.clock,
        typing=services.typing, receipts=receipts, events=services.events,
        presence=services.presence, to_device=services.to_device.store,
        to_device_stream=services.to_device.stream, device_lists=services.device_lists,
        fetch_devices=queries.user_devices)
    return sender, edu_handler, queries


__all__ = ["wire_federation_sending"]
