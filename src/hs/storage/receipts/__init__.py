"""Read receipts (public, private, threaded) on the ``receipts`` stream."""

from hs.storage.receipts.store import PRIVATE_READ, ReceiptRow, ReceiptsStore

__all__ = ["PRIVATE_READ", "ReceiptRow", "ReceiptsStore"]
