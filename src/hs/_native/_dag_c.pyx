# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Cython twin of ``_dag_py``: extremities, auth chains, auth differences, subgraphs.

Same API and results as the pure twin (see its docstring for the protocol). The walks
intern each event ID to a dense int once, keep the adjacency as one flat int array
(CSR-like: per-node start/degree into a shared edge buffer) and per-node flag bytes, so
the walk itself never touches a Python set. Only the interning is a dict lookup per edge.
All buffers grow through checked ``PyMem_Realloc``; every index comes from the intern
table, so no input can index out of bounds.
"""

from collections.abc import Mapping

from cpython.dict cimport PyDict_GetItem
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.ref cimport PyObject

from hs._native._errors import MissingEventsError

__all__ = [
    "AuthChainWalk",
    "AuthDifferenceWalk",
    "ConflictedSubgraphWalk",
    "auth_chain",
    "auth_difference",
    "conflicted_subgraph",
    "update_forward_extremities",
]

ctypedef Py_ssize_t idx_t

cdef enum:
    QUEUED = 1    # pushed for expansion (at most once)
    REACHED = 2   # reached over >= 1 edge: in the auth chain
    MISSING = 4   # asked for, not supplied
    KNOWN = 8     # adjacency recorded


cdef struct IVec:
    idx_t *data
    idx_t size
    idx_t cap


cdef int ivec_grow(IVec *v) except -1:
    cdef idx_t newcap = v.cap * 2 if v.cap else 64
    cdef idx_t *p = <idx_t *> PyMem_Realloc(v.data, newcap * sizeof(idx_t))
    if p == NULL:
        raise MemoryError()
    v.data = p
    v.cap = newcap
    return 0


cdef inline int ivec_push(IVec *v, idx_t x) except -1:
    if v.size == v.cap:
        ivec_grow(v)
    v.data[v.size] = x
    v.size += 1
    return 0


cdef inline void ivec_free(IVec *v) noexcept:
    PyMem_Free(v.data)
    v.data = NULL
    v.size = 0
    v.cap = 0


cdef inline object _check_id(object value):
    if not isinstance(value, str):
        raise TypeError(f"event IDs must be str, not {type(value).__name__}")
    return value


cdef class _Walk:
    """Gathers the auth subgraph reachable from the seeds, one fetch round at a time."""

    cdef dict _index          # event ID -> node
    cdef list _ids            # node -> event ID
    cdef idx_t _n, _ncap
    cdef idx_t *_start        # node -> offset into _edges (valid when KNOWN)
    cdef idx_t *_deg          # node -> number of parents
    cdef unsigned char *_flags
    cdef IVec _edges
    cdef IVec _outstanding
    cdef idx_t _n_missing

    def __cinit__(self, *args, **kwargs):
        self._index = {}
        self._ids = []

    def __dealloc__(self):
        PyMem_Free(self._start)
        PyMem_Free(self._deg)
        PyMem_Free(self._flags)
        ivec_free(&self._edges)
        ivec_free(&self._outstanding)

    def __init__(self, seeds):
        cdef IVec stack
        stack.data = NULL
        stack.size = stack.cap = 0
        try:
            for seed in seeds:
                self._seed(seed, &stack)
            self._drain(&stack)
        finally:
            ivec_free(&stack)

    cdef idx_t _seed(self, object event_id, IVec *stack) except -1:
        cdef idx_t node = self._intern(_check_id(event_id))
        if not self._flags[node] & QUEUED:
            self._flags[node] |= QUEUED
            ivec_push(stack, node)
        return node

    cdef int _grow_nodes(self) except -1:
        cdef idx_t newcap = self._ncap * 2 if self._ncap else 256
        cdef idx_t *s = <idx_t *> PyMem_Realloc(self._start, newcap * sizeof(idx_t))
        if s == NULL:
            raise MemoryError()
        self._start = s
        s = <idx_t *> PyMem_Realloc(self._deg, newcap * sizeof(idx_t))
        if s == NULL:
            raise MemoryError()
        self._deg = s
        cdef unsigned char *f = <unsigned char *> PyMem_Realloc(self._flags, newcap)
        if f == NULL:
            raise MemoryError()
        self._flags = f
        self._ncap = newcap
        return 0

    cdef idx_t _intern(self, object event_id) except -1:
        cdef PyObject *hit = PyDict_GetItem(self._index, event_id)
        if hit != NULL:
            return <idx_t> (<object> hit)
        if self._n == self._ncap:
            self._grow_nodes()
        cdef idx_t node = self._n
        self._index[event_id] = node
        self._ids.append(event_id)
        self._start[node] = 0
        self._deg[node] = 0
        self._flags[node] = 0
        self._n = node + 1
        return node

    cdef int _drain(self, IVec *stack) except -1:
        cdef idx_t node, parent, i, end
        cdef unsigned char *flags = self._flags
        cdef idx_t *edges = self._edges.data
        self._outstanding.size = 0
        while stack.size:
            stack.size -= 1
            node = stack.data[stack.size]
            if not flags[node] & KNOWN:
                if not flags[node] & MISSING:
                    ivec_push(&self._outstanding, node)
                continue
            i = self._start[node]
            end = i + self._deg[node]
            while i < end:
                parent = edges[i]
                i += 1
                if not flags[parent] & REACHED:
                    flags[parent] |= REACHED
                    if not flags[parent] & QUEUED:
                        flags[parent] |= QUEUED
                        ivec_push(stack, parent)
        return 0

    def frontier(self):
        """The IDs whose auth events are needed next (empty once the walk is complete)."""
        cdef idx_t i
        cdef list ids = self._ids
        cdef list out = []
        for i in range(self._outstanding.size):
            out.append(ids[self._outstanding.data[i]])
        return out

    @property
    def done(self):
        return self._outstanding.size == 0

    @property
    def missing(self):
        """IDs that were asked for but not supplied: treated as having no auth events."""
        return frozenset(self._missing_list())

    cdef list _missing_list(self):
        cdef idx_t i
        cdef list out = []
        for i in range(self._n):
            if self._flags[i] & MISSING:
                out.append(self._ids[i])
        return out

    cdef int _store(self, object event_id, object parents) except -1:
        cdef idx_t node = self._intern(_check_id(event_id))
        if self._flags[node] & (KNOWN | MISSING):
            return 0
        if isinstance(parents, (str, bytes, bytearray)):
            raise TypeError("parent IDs must be a sequence of str, not a single string")
        cdef idx_t base = self._edges.size
        cdef idx_t parent
        try:
            for p in parents:
                parent = self._intern(_check_id(p))
                ivec_push(&self._edges, parent)
        except BaseException:
            self._edges.size = base
            raise
        self._start[node] = base
        self._deg[node] = self._edges.size - base
        self._flags[node] |= KNOWN
        return 0

    cdef int _finish_round(self) except -1:
        # Swap the outstanding list out as the stack (``_drain`` refills ``_outstanding``).
        cdef IVec stack = self._outstanding
        cdef idx_t i, node
        self._outstanding.data = NULL
        self._outstanding.size = self._outstanding.cap = 0
        try:
            for i in range(stack.size):
                node = stack.data[i]
                if not self._flags[node] & KNOWN:
                    self._flags[node] |= MISSING
                    self._n_missing += 1
            self._drain(&stack)
        finally:
            ivec_free(&stack)
        return 0

    def feed(self, auth_events):
        """Answer the frontier: ``auth_events`` maps event ID -> its auth event IDs.

        Frontier IDs absent from the mapping become ``missing``; extra entries are kept
        and save later rounds; an ID's first answer wins.
        """
        if not isinstance(auth_events, Mapping):
            raise TypeError(f"feed() needs a Mapping, not {type(auth_events).__name__}")
        for event_id, parents in auth_events.items():
            self._store(event_id, parents)
        self._finish_round()

    cdef int _feed_from(self, object graph) except -1:
        # Driver fast path: look the frontier up in a whole-graph mapping. The frontier is
        # copied first because a Mapping's ``get`` is arbitrary code that could re-enter.
        cdef object parents
        cdef bint is_dict = type(graph) is dict
        cdef PyObject *hit
        for event_id in self.frontier():
            if is_dict:
                hit = PyDict_GetItem(graph, event_id)
                if hit == NULL:
                    continue
                parents = <object> hit
            else:
                parents = graph.get(event_id)
            if parents is None:  # as absent, like ``Mapping.get``
                continue
            self._store(event_id, parents)
        self._finish_round()
        return 0

    cdef int _count_chains(self, list sets, bint include_seeds, int *counts) except -1:
        """``counts[v]`` += 1 for every set whose chain contains node ``v``."""
        cdef idx_t *reach_mark = NULL
        cdef idx_t *expand_mark = NULL
        cdef IVec stack
        stack.data = NULL
        stack.size = stack.cap = 0
        cdef idx_t n = self._n, i, j, end, node, parent, set_no = 0
        cdef idx_t *edges = self._edges.data
        cdef unsigned char *flags = self._flags
        cdef list seeds
        try:
            reach_mark = <idx_t *> PyMem_Malloc((n + 1) * sizeof(idx_t))
            expand_mark = <idx_t *> PyMem_Malloc((n + 1) * sizeof(idx_t))
            if reach_mark == NULL or expand_mark == NULL:
                raise MemoryError()
            for i in range(n):
                reach_mark[i] = -1
                expand_mark[i] = -1
                counts[i] = 0
            for seeds in sets:
                stack.size = 0
                for node in seeds:
                    if include_seeds and reach_mark[node] != set_no:
                        reach_mark[node] = set_no
                        counts[node] += 1
                    if expand_mark[node] != set_no:
                        expand_mark[node] = set_no
                        ivec_push(&stack, node)
                while stack.size:
                    stack.size -= 1
                    node = stack.data[stack.size]
                    if not flags[node] & KNOWN:
                        continue
                    j = self._start[node]
                    end = j + self._deg[node]
                    while j < end:
                        parent = edges[j]
                        j += 1
                        if reach_mark[parent] != set_no:
                            reach_mark[parent] = set_no
                            counts[parent] += 1
                            if expand_mark[parent] != set_no:
                                expand_mark[parent] = set_no
                                ivec_push(&stack, parent)
                set_no += 1
        finally:
            PyMem_Free(reach_mark)
            PyMem_Free(expand_mark)
            ivec_free(&stack)
        return 0


cdef class AuthChainWalk(_Walk):
    """Step-wise auth chain of a set of events (spec: rooms/v2 "Auth chain")."""

    def result(self):
        """The union of the auth chains of the seeds (missing IDs included)."""
        cdef idx_t i
        cdef set out = set()
        cdef list ids = self._ids
        for i in range(self._n):
            if self._flags[i] & REACHED:
                out.add(ids[i])
        return out


cdef class AuthDifferenceWalk(_Walk):
    """Step-wise auth difference of several state sets (spec: rooms/v2 "Auth difference").

    ``include_state_sets``: count each set's own events in its chain (see the pure twin).
    """

    cdef list _sets   # per state set: list of seed nodes
    cdef bint _include

    def __init__(self, state_sets, include_state_sets=True):
        cdef list sets = []
        cdef list nodes
        cdef IVec stack
        stack.data = NULL
        stack.size = stack.cap = 0
        try:
            for state_set in state_sets:
                if isinstance(state_set, (str, bytes, bytearray)):
                    raise TypeError("each state set must be a collection of event IDs")
                nodes = []
                for event_id in state_set:
                    nodes.append(self._seed(event_id, &stack))
                sets.append(nodes)
            self._drain(&stack)
        finally:
            ivec_free(&stack)
        self._sets = sets
        self._include = bool(include_state_sets)

    def result(self):
        """``union(C_i) - intersection(C_i)`` over the full auth chains ``C_i``."""
        cdef int k = len(self._sets)
        cdef set out = set()
        if k < 2:
            return out
        cdef idx_t i, n = self._n
        cdef int *counts = <int *> PyMem_Malloc((n + 1) * sizeof(int))
        if counts == NULL:
            raise MemoryError()
        cdef list ids = self._ids
        try:
            self._count_chains(self._sets, self._include, counts)
            for i in range(n):
                if 0 < counts[i] < k:
                    out.add(ids[i])
        finally:
            PyMem_Free(counts)
        return out


cdef class ConflictedSubgraphWalk(_Walk):
    """Step-wise conflicted state subgraph (spec: rooms/v12 "Conflicted state subgraph")."""

    cdef list _conflicted   # seed nodes

    def __init__(self, conflicted):
        cdef list nodes = []
        cdef IVec stack
        stack.data = NULL
        stack.size = stack.cap = 0
        try:
            for event_id in conflicted:
                nodes.append(self._seed(event_id, &stack))
            self._drain(&stack)
        finally:
            ivec_free(&stack)
        self._conflicted = nodes

    def result(self):
        """``{v: c1 ->+ v ->* c2}`` plus the ``c1`` that start such a path."""
        cdef idx_t n = self._n, i, j, end, node, parent, total
        cdef unsigned char *flags = self._flags
        cdef idx_t *edges = self._edges.data
        cdef idx_t *rev_start = NULL   # reverse CSR over expanded nodes: parent -> children
        cdef idx_t *rev = NULL
        cdef idx_t *fill = NULL
        cdef unsigned char *upstream = NULL
        cdef IVec stack, hits
        stack.data = hits.data = NULL
        stack.size = stack.cap = hits.size = hits.cap = 0
        cdef set out = set()
        cdef list ids = self._ids
        cdef list conflicted = self._conflicted if self._conflicted is not None else []
        try:
            rev_start = <idx_t *> PyMem_Malloc((n + 1) * sizeof(idx_t))
            fill = <idx_t *> PyMem_Malloc((n + 1) * sizeof(idx_t))
            upstream = <unsigned char *> PyMem_Malloc(n + 1)
            if rev_start == NULL or fill == NULL or upstream == NULL:
                raise MemoryError()
            for i in range(n + 1):
                rev_start[i] = 0
            for i in range(n):
                upstream[i] = 0
                if flags[i] & QUEUED and flags[i] & KNOWN:
                    j = self._start[i]
                    end = j + self._deg[i]
                    while j < end:
                        rev_start[edges[j] + 1] += 1
                        j += 1
            for i in range(n):
                rev_start[i + 1] += rev_start[i]
                fill[i] = rev_start[i]
            total = rev_start[n]
            rev = <idx_t *> PyMem_Malloc((total + 1) * sizeof(idx_t))
            if rev == NULL:
                raise MemoryError()
            for i in range(n):
                if flags[i] & QUEUED and flags[i] & KNOWN:
                    j = self._start[i]
                    end = j + self._deg[i]
                    while j < end:
                        parent = edges[j]
                        rev[fill[parent]] = i
                        fill[parent] += 1
                        j += 1
            # Nodes from which a conflicted event is reachable over >= 0 edges.
            for node in conflicted:
                if not upstream[node]:
                    upstream[node] = 1
                    ivec_push(&stack, node)
            while stack.size:
                stack.size -= 1
                node = stack.data[stack.size]
                j = rev_start[node]
                end = rev_start[node + 1]
                while j < end:
                    parent = rev[j]   # a child of ``node``, walking against the edges
                    j += 1
                    if not upstream[parent]:
                        upstream[parent] = 1
                        ivec_push(&stack, parent)
            # Collect first, build the set after: hashing a str subclass runs Python code,
            # which could re-enter the walk and move the buffers cached above.
            for i in range(n):
                if flags[i] & REACHED and upstream[i]:
                    ivec_push(&hits, i)
            for node in conflicted:
                if flags[node] & KNOWN:
                    j = self._start[node]
                    end = j + self._deg[node]
                    while j < end:
                        if upstream[edges[j]]:
                            ivec_push(&hits, node)
                            break
                        j += 1
            for i in range(hits.size):
                out.add(ids[hits.data[i]])
        finally:
            ivec_free(&hits)
            PyMem_Free(rev_start)
            PyMem_Free(rev)
            PyMem_Free(fill)
            PyMem_Free(upstream)
            ivec_free(&stack)
        return out


cdef _drive(_Walk walk, object fetch, bint allow_missing):
    if isinstance(fetch, Mapping):
        while walk._outstanding.size:
            walk._feed_from(fetch)
    elif callable(fetch):
        while walk._outstanding.size:
            walk.feed(fetch(walk.frontier()))
    else:
        raise TypeError("fetch must be a Mapping or a callable")
    if walk._n_missing and not allow_missing:
        raise MissingEventsError(sorted(walk._missing_list()))


def auth_chain(event_ids, fetch, allow_missing=False):
    """The auth chain of ``event_ids``; ``fetch`` answers one frontier per call."""
    cdef AuthChainWalk walk = AuthChainWalk(event_ids)
    _drive(walk, fetch, allow_missing)
    return walk.result()


def auth_difference(state_sets, fetch, allow_missing=False, include_state_sets=True):
    """The auth difference of ``state_sets`` (each an iterable of event IDs)."""
    cdef AuthDifferenceWalk walk = AuthDifferenceWalk(state_sets, include_state_sets)
    _drive(walk, fetch, allow_missing)
    return walk.result()


def conflicted_subgraph(conflicted, fetch, allow_missing=False):
    """The conflicted state subgraph of ``conflicted`` (room v12 state resolution)."""
    cdef ConflictedSubgraphWalk walk = ConflictedSubgraphWalk(conflicted)
    _drive(walk, fetch, allow_missing)
    return walk.result()


cdef tuple _unpack(object item):
    if not isinstance(item, (tuple, list)):
        raise TypeError("new events must be (event_id, prev_event_ids[, excluded]) tuples")
    cdef Py_ssize_t n = len(item)
    if n == 2:
        return _check_id(item[0]), item[1], False
    if n == 3:
        return _check_id(item[0]), item[1], bool(item[2])
    raise TypeError("new events must be (event_id, prev_event_ids[, excluded]) tuples")


def update_forward_extremities(current, new_events, referenced):
    """The forward extremities after persisting ``new_events`` (see the pure twin)."""
    cdef set extremities = set()
    cdef dict eligible = {}
    cdef set batch_refs = set()
    cdef set excluded = set()
    cdef list candidates
    for e in current:
        extremities.add(_check_id(e))
    for item in new_events:
        event_id, prevs, is_excluded = _unpack(item)
        if is_excluded:
            excluded.add(event_id)
            continue
        eligible[event_id] = None
        if isinstance(prevs, (str, bytes, bytearray)):
            raise TypeError("parent IDs must be a sequence of str, not a single string")
        for p in prevs:
            batch_refs.add(_check_id(p))
    candidates = [e for e in eligible if e not in batch_refs and e not in excluded]
    if candidates:
        known = referenced(candidates) if callable(referenced) else referenced
        if isinstance(known, (str, bytes, bytearray)):
            raise TypeError("referenced must give a collection of event IDs")
        known_set = known if isinstance(known, (set, frozenset)) else set(known)
        for e in candidates:
            if e not in known_set:
                extremities.add(e)
    extremities -= batch_refs
    extremities -= excluded
    return extremities
