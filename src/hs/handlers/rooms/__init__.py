"""Rooms: the local event pipeline, room creation, membership, sending and upgrades.

``RoomHandler`` (``services.rooms``) is the entry point; see ``service.py``. The pipeline
(``pipeline.py``) builds, signs, authorizes and persists events through one writer task
per room (``linearizer.py``) that commits queued sends in batches.
"""

from hs.handlers.rooms.pipeline import Draft, SentEvent
from hs.handlers.rooms.service import RoomHandler

__all__ = ["Draft", "RoomHandler", "SentEvent"]
