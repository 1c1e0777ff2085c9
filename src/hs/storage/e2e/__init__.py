"""End-to-end encryption: device, one-time, fallback and cross-signing keys, signatures,
and the device-list change stream."""

from hs.storage.e2e.store import DeviceKeysRow, E2EStore, MembershipChange, SignatureRow

__all__ = ["DeviceKeysRow", "E2EStore", "MembershipChange", "SignatureRow"]
