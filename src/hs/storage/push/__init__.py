"""Push: user push rules (+ default-rule overrides, per-user versions), event push
actions and the unread counts built on them, and pushers."""

from hs.storage.push.actions import (
    MAIN_THREAD,
    ActionRow,
    DefaultRow,
    NotificationRow,
    PushActionsStore,
)
from hs.storage.push.pushers import Pusher, PushersStore
from hs.storage.push.rules import PushRulesStore, RuleNotFound, StoredRules

__all__ = [
    "MAIN_THREAD",
    "ActionRow",
    "DefaultRow",
    "NotificationRow",
    "PushActionsStore",
    "PushRulesStore",
    "Pusher",
    "PushersStore",
    "RuleNotFound",
    "StoredRules",
]
