"""The read side of rooms: /messages, /context, /event, /state, members, relations,
threads and timestamp lookups. Each concern is a mixin module; ``TimelineHandler`` is
what ``Services.timeline`` holds."""

from __future__ import annotations

from hs.handlers.timeline.members import MembersMixin
from hs.handlers.timeline.messages import MessagesMixin
from hs.handlers.timeline.relations import RelationsMixin
from hs.handlers.timeline.timestamp import TimestampMixin


class TimelineHandler(MessagesMixin, MembersMixin, RelationsMixin, TimestampMixin):
    """All read endpoints over one ``EventsStore`` (see ``base.TimelineBase``)."""


__all__ = ["TimelineHandler"]
