"""Selector: the Cython DAG walks, or their pure twin."""

from hs._native._errors import MissingEventsError
from hs._native._loader import load

_impl = load("dag")

AuthChainWalk = _impl.AuthChainWalk
AuthDifferenceWalk = _impl.AuthDifferenceWalk
ConflictedSubgraphWalk = _impl.ConflictedSubgraphWalk
auth_chain = _impl.auth_chain
auth_difference = _impl.auth_difference
conflicted_subgraph = _impl.conflicted_subgraph
update_forward_extremities = _impl.update_forward_extremities

__all__ = [
    "AuthChainWalk",
    "AuthDifferenceWalk",
    "ConflictedSubgraphWalk",
    "MissingEventsError",
    "auth_chain",
    "auth_difference",
    "conflicted_subgraph",
    "update_forward_extremities",
]
