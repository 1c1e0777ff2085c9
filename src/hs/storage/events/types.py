"""Value types of the event store: what goes into ``persist_events`` and what comes out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hs.core.pdu import PDU, StateKey

#: ``(type, state_key) -> event_id``: a room state.
StateMap = dict[StateKey, str]


@dataclass(frozen=True, slots=True)
class StateAfter:
    """"The state before this event is the state after ``event_id``": the common case of
    an event with a single prev event. ``event_id`` may be stored or earlier in the batch."""

    event_id: str


@dataclass(frozen=True, slots=True)
class StateDelta:
    """A state expressed as changes on an existing group (``prev_group`` None = empty
    state). A ``None`` value removes the key. Cheap to store: only the changes are written."""

    prev_group: int | None
    changes: Mapping[StateKey, str | None]


#: How the state before an event is given: an existing group ID, the state after another
#: event, a delta on a group, or a full map (stored as a snapshot).
StateBefore = int | StateAfter | StateDelta | Mapping[StateKey, str]


@dataclass(frozen=True, slots=True)
class TxnKey:
    """A client's transaction ID for idempotent sends (scoped by device and room)."""

    user_id: str
    device_id: str
    txn_id: str


@dataclass(slots=True)
class EventToPersist:
    """One event of a batch plus what the pipeline decided about it.

    ``state_before`` is required for events in the DAG and ignored for outliers (which have
    no state). A rejected event does not change the state: its state after equals before.
    """

    pdu: PDU
    state_before: StateBefore | None = None
    outlier: bool = False
    soft_failed: bool = False
    #: History fetched with /backfill: gets a negative stream ordering (never "new" to
    #: sync) and leaves the current state alone.
    backfilled: bool = False
    txn: TxnKey | None = None
    received_ts: int | None = None

    @property
    def rejected_reason(self) -> str | None:
        return self.pdu.rejected_reason

    @property
    def excluded(self) -> bool:
        """Not part of the DAG we build on: never an extremity, not in timelines."""
        return self.outlier or self.soft_failed or self.pdu.rejected_reason is not None


@dataclass(frozen=True, slots=True)
class PersistedEvent:
    """The outcome for one ``EventToPersist``, in batch order.

    ``deduplicated``: the event was already stored (same event ID) or its transaction ID
    already named another event; ``event_id``/``stream_ordering`` then describe the stored
    event and nothing new was written for it.
    """

    event_id: str
    stream_ordering: int
    state_group: int | None
    deduplicated: bool = False


@dataclass(frozen=True, slots=True)
class EventMeta:
    """Per-event facts kept outside the PDU JSON."""

    event_id: str
    room_id: str
    stream_ordering: int
    depth: int
    received_ts: int
    outlier: bool
    soft_failed: bool
    rejected_reason: str | None
    redacted_by: str | None


@dataclass(frozen=True, slots=True)
class EventFilter:
    """The simple timeline filters (RoomEventFilter's types/not_types/senders/not_senders).

    A trailing ``*`` in a type matches any suffix, as the spec's filter types allow.
    """

    types: Sequence[str] | None = None
    not_types: Sequence[str] = ()
    senders: Sequence[str] | None = None
    not_senders: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class Member:
    """A user's membership in a room, from the m.room.member event that set it."""

    user_id: str
    membership: str
    event_id: str
    sender: str
    displayname: str | None
    avatar_url: str | None


@dataclass(frozen=True, slots=True)
class RoomForUser:
    room_id: str
    membership: str
    event_id: str
    stream_ordering: int
    room_version: str


@dataclass(frozen=True, slots=True)
class ThreadSummary:
    """m.thread aggregation: how many replies and the latest one (by stream ordering)."""

    count: int
    latest_event_id: str


@dataclass(frozen=True, slots=True)
class Page:
    """A page of events and the token to continue from (None when the end was reached)."""

    events: list[PDU]
    start: str
    end: str | None
