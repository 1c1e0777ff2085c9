"""Selector: the Cython state-resolution sorts and graph walks, or their pure twin."""

from hs._native._errors import StateSortError
from hs._native._loader import load

_impl = load("state_sort")

AuthGraph = _impl.AuthGraph
auth_rules = _impl.auth_rules
auth_prefetch_ids = _impl.auth_prefetch_ids
cited_state = _impl.cited_state
conflicted_event_ids = _impl.conflicted_event_ids
iterative_auth_checks = _impl.iterative_auth_checks
power_levels = _impl.power_levels
power_sort_inputs = _impl.power_sort_inputs
select_power_events = _impl.select_power_events
split_state = _impl.split_state
reverse_topological_power_sort = _impl.reverse_topological_power_sort
mainline_sort = _impl.mainline_sort

__all__ = [
    "AuthGraph",
    "StateSortError",
    "auth_prefetch_ids",
    "auth_rules",
    "cited_state",
    "conflicted_event_ids",
    "iterative_auth_checks",
    "mainline_sort",
    "power_levels",
    "power_sort_inputs",
    "reverse_topological_power_sort",
    "select_power_events",
    "split_state",
]
