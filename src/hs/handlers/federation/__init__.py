"""Rooms over federation: receiving PDUs (``inbound``), filling gaps (``missing``),
membership on both sides (``joins`` resident, ``remote`` our users), read endpoints
(``queries``) and server ACLs (``acl``). ``FederationRooms`` wires them for ``Services``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hs.handlers.federation.inbound import FederationEventHandler
from hs.handlers.federation.joins import ResidentMembership
from hs.handlers.federation.queries import FederationQueries
from hs.handlers.federation.remote import RemoteMembership

if TYPE_CHECKING:
    from hs.app import Services


class FederationRooms:
    """The room side of federation, built from the services (``services.federation_rooms``)."""

    def __init__(self, services: Services) -> None:
        name = services.config.server_name
        fed = services.federation
        self.inbound = FederationEventHandler(name, services.events, services.rooms.pipeline,
                                              fed.client, fed.keyring)
        self.queries = FederationQueries(name, services.events, services.clock)
        self.resident = ResidentMembership(name, services.rooms, services.store,
                                           self.inbound, services.clock)
        self.remote = RemoteMembership(name, services.rooms, services.directory, fed.client,
                                       fed.keyring, services.clock, self.inbound)


__all__ = ["FederationRooms"]
