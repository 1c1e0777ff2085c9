"""Transaction bodies and IDs (server-server API "Transactions").

A transaction carries at most 50 PDUs and 100 EDUs. Its ID only has to be unique per
(origin, destination) so that the receiver can de-duplicate retries of the same
transaction: a retry re-sends the same ID and body; a new transaction gets a new ID. The
process start time in the ID keeps IDs unique across restarts without a database row.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

MAX_PDUS_PER_TRANSACTION = 50
MAX_EDUS_PER_TRANSACTION = 100


class TxnIds:
    """``<process start ms>.<counter>``: unique per process lifetime and across restarts."""

    def __init__(self) -> None:
        self._prefix = str(int(time.time() * 1000))
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}.{next(self._counter)}"


def transaction_body(origin: str, now_ms: int, pdus: list[dict[str, Any]],
                     edus: list[dict[str, Any]]) -> dict[str, Any]:
    if len(pdus) > MAX_PDUS_PER_TRANSACTION or len(edus) > MAX_EDUS_PER_TRANSACTION:
        raise ValueError("transaction over the spec's 50 PDU / 100 EDU limits")
    return {"origin": origin, "origin_server_ts": now_ms, "pdus": pdus, "edus": edus}


__all__ = ["MAX_EDUS_PER_TRANSACTION", "MAX_PDUS_PER_TRANSACTION", "TxnIds",
           "transaction_body"]
