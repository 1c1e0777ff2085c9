"""Selector: the Cython state-resolution sorts and graph walks, or their pure twin."""

from hs._native._errors import StateSortError
from hs._native._loader import load

_impl = load("state_sort")

AuthGraph = _impl.AuthGraph
split_state = _impl.split_state
reverse_topological_power_sort = _impl.reverse_topological_power_sort
mainline_sort = _impl.mainline_sort

__all__ = [
    "AuthGraph",
    "StateSortError",
    "mainline_sort",
    "reverse_topological_power_sort",
    "split_state",
]
