"""Client filters and the read queries of the client timeline endpoints.

``FilterStore`` keeps the filters clients upload; ``ClientReadStore`` holds the few reads
the client read side needs beyond ``EventsStore`` (transaction IDs by event, the thread
list, timestamp lookups).
"""

from hs.storage.filters.reads import ClientReadStore, ThreadRoot
from hs.storage.filters.store import FilterStore

__all__ = ["ClientReadStore", "FilterStore", "ThreadRoot"]
