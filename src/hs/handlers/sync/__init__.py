"""``/sync``: tokens, the builder (initial and incremental), rooms, E2EE extensions and the
caches that keep incremental syncs cheap."""

from hs.handlers.sync.handler import MAX_TIMEOUT_MS, SyncHandler, SyncParams
from hs.handlers.sync.tokens import SyncToken, device_list_positions

__all__ = ["MAX_TIMEOUT_MS", "SyncHandler", "SyncParams", "SyncToken", "device_list_positions"]
