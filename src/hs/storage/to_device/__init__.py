"""To-device messages: per-device inboxes, the federation outbox and txn dedupe."""

from hs.storage.to_device.store import ToDeviceStore

__all__ = ["ToDeviceStore"]
