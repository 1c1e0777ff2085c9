"""Split one event's evaluated outcomes into a per-event default and per-user exceptions.

The default is the most common outcome among the members the default row will cover
(the room's local members of the batch, the sender excepted: ``member_spans``), so a plain
message in a room of any size is one row. Every recipient whose outcome differs gets an
exception row; a covered member whose outcome is "nothing" gets a row with notify =
highlight = 0 (it hides the default); recipients the default does not cover (a local
invitee on its own invite event) get a row only when they are notified.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

#: (notify, highlight, actions JSON) of one outcome.
Outcome = tuple[int, int, str]
#: The outcome of a recipient that is neither notified nor highlighted.
NOTHING: Outcome = (0, 0, "[]")


class OutcomeCodec:
    """Encodes results to ``Outcome`` once per rule result (results are shared per
    compiled rule, so a batch sees few distinct ones)."""

    __slots__ = ("_by_id",)

    def __init__(self) -> None:
        #: id(result) -> (result kept alive, outcome).
        self._by_id: dict[int, tuple[Any, Outcome]] = {}

    def outcome(self, result: Any) -> Outcome:
        if result is None:
            return NOTHING
        hit = self._by_id.get(id(result))
        if hit is None:
            if result.notify or result.highlight:
                enc: Outcome = (int(result.notify), int(result.highlight),
                                orjson.dumps(list(result.actions)).decode())
            else:
                enc = NOTHING
            hit = self._by_id[id(result)] = (result, enc)
        return hit[1]


def split(covered: Sequence[tuple[str, Outcome]], extra: Sequence[tuple[str, Outcome]]
          ) -> tuple[Outcome, list[tuple[str, Outcome]]]:
    """``(default, exceptions)``: ``covered`` are the (user, outcome) pairs of the users
    the default applies to, ``extra`` those of recipients it does not apply to."""
    tally: dict[Outcome, int] = {}
    for _, out in covered:
        tally[out] = tally.get(out, 0) + 1
    default = max(tally, key=tally.__getitem__) if tally else NOTHING
    exceptions = [(u, o) for u, o in covered if o != default]
    exceptions += [(u, o) for u, o in extra if o != NOTHING]
    return default, exceptions


__all__ = ["NOTHING", "Outcome", "OutcomeCodec", "split"]
