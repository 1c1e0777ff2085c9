"""Outbound federation state (destination health, catch-up positions) and remote users'
device lists."""

from hs.storage.federation.store import (
    DestinationHealth,
    FederationSenderStore,
    RemoteDevicesStore,
)

__all__ = ["DestinationHealth", "FederationSenderStore", "RemoteDevicesStore"]
