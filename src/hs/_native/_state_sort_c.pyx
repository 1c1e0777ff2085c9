# cython: language_level=3, boundscheck=False, wraparound=False
"""Cython twin of ``_state_sort_py``: state resolution's graph loops at C speed.

Event IDs are interned to dense ints so auth-chain walks, the Kahn sort and the
reachability passes run over C arrays; only the inputs and outputs are Python objects.
Every Python value is type-checked before it reaches C, so bad input raises
``TypeError``/``KeyError``/``StateSortError`` exactly where the pure twin does.
"""

from cpython.dict cimport PyDict_Next
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject


cdef extern from "Python.h":
    # ``PyDict_GetItem`` without its save/restore of the error indicator (the keys here
    # are hashable): NULL with no error set means "missing".
    PyObject* _dict_find "PyDict_GetItemWithError"(object mp, object key) except? NULL
from libc.stdint cimport uintptr_t
from libc.string cimport memset


cdef extern from "Python.h":
    # The object behind ``dict.values()`` (CPython's dict view layout, stable since 3.0):
    # walking the dict it views reads the IDs in place, without copying them to a list.
    ctypedef struct PyDictObject:
        pass
    ctypedef struct _PyDictViewObject:
        PyDictObject* dv_dict

cdef object _DICT_VALUES = type({}.values())

from hs._native import _auth_rules_c as auth_rules  # the twins paired with this one
from hs._native import _power_levels_c as power_levels
from hs._native._errors import StateSortError

__all__ = [
    "AuthGraph",
    "auth_rules",
    "auth_prefetch_ids",
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

cdef tuple CREATE = ("m.room.create", "")
cdef tuple POWER_LEVELS = ("m.room.power_levels", "")


cdef inline str _check_id(object event_id):
    if type(event_id) is not str:
        raise TypeError(f"event IDs must be str, not {type(event_id).__name__}")
    return <str>event_id


# ---- growable C int arrays -------------------------------------------------------------

cdef int _grow(int** buf, Py_ssize_t* cap, Py_ssize_t need) except -1:
    """Make ``*buf`` hold at least ``need`` ints (amortised doubling)."""
    cdef Py_ssize_t new_cap
    cdef int* new_buf
    if need <= cap[0]:
        return 0
    new_cap = cap[0] * 2 if cap[0] else 64
    while new_cap < need:
        new_cap *= 2
    new_buf = <int*>PyMem_Realloc(buf[0], new_cap * sizeof(int))
    if new_buf == NULL:
        raise MemoryError()
    buf[0] = new_buf
    cap[0] = new_cap
    return 0


cdef class _IntBuf:
    """A scratch int array freed with its owner (so exceptions cannot leak it)."""

    cdef int* data
    cdef Py_ssize_t size

    def __cinit__(self, Py_ssize_t size, bint zero=True):
        self.size = size
        self.data = <int*>PyMem_Malloc((size if size > 0 else 1) * sizeof(int))
        if self.data == NULL:
            raise MemoryError()
        if zero:
            memset(self.data, 0, (size if size > 0 else 1) * sizeof(int))

    def __dealloc__(self):
        PyMem_Free(self.data)


# ---- split_state -----------------------------------------------------------------------

cdef int _judge(list sets, Py_ssize_t i, object key, object value, bint missing_is_conflict,
                dict unconflicted, dict conflicted, int* present_in) except -1:
    """Judge ``key``, first met in ``sets[i]`` with ``value``; maps before ``i`` lack it.

    Returns 1 if it is unconflicted (and stores its value unless it is already there as
    ``value``), 0 if conflicted. ``present_in[j]`` counts keys found in map ``j``.
    """
    cdef Py_ssize_t j, n = len(sets), present
    cdef PyObject* found
    cdef object first_value, candidate
    cdef list values = None
    if value is None:
        first_value = None
        present = 0
    else:
        first_value = _check_id(value)
        present = 1
    for j in range(i + 1, n):
        found = _dict_find(<dict>sets[j], key)
        if found == NULL:
            continue
        present_in[j] += 1
        candidate = <object>found
        if candidate is None:
            continue
        present += 1
        if first_value is None:
            first_value = _check_id(candidate)
        elif values is None:
            if candidate is not first_value and candidate != first_value:
                values = [first_value, _check_id(candidate)]
        elif candidate not in values:
            values.append(_check_id(candidate))
    if values is None and first_value is not None and (present == n or not missing_is_conflict):
        if first_value is not value:
            unconflicted[key] = first_value
        return 1
    if values is None:
        values = [] if first_value is None else [first_value]
    values.sort()
    conflicted[key] = values
    return 0


cdef class _PosBuf:
    """Scratch ``Py_ssize_t`` array (dict iteration positions) freed with its owner."""

    cdef Py_ssize_t* data

    def __cinit__(self, Py_ssize_t size):
        self.data = <Py_ssize_t*>PyMem_Malloc((size if size > 0 else 1) * sizeof(Py_ssize_t))
        if self.data == NULL:
            raise MemoryError()
        memset(self.data, 0, (size if size > 0 else 1) * sizeof(Py_ssize_t))

    def __dealloc__(self):
        PyMem_Free(self.data)


def split_state(object state_sets, bint missing_is_conflict=True):
    """Split state maps into the unconflicted map and the sorted conflicted IDs per key.

    Each key is judged once, when met in the first map that has it. The unconflicted map
    starts as a copy of the first map (a C-level clone, no rehashing) with its conflicted
    keys deleted afterwards; a later map whose keys were all met in the first is skipped.

    Forks of one state are copies of one dict, so their keys usually sit in the same
    order: while every map yields the very same key object at the same step, the maps are
    walked in lockstep and a key whose values are one ``str`` object everywhere is settled
    without hashing it. At the first difference the walk falls back to lookups.
    """
    cdef list sets = [s if type(s) is dict else dict(s) for s in state_sets]
    cdef Py_ssize_t n = len(sets), i, j, pos
    cdef dict conflicted = {}
    cdef dict unconflicted
    cdef PyObject* key
    cdef PyObject* value
    cdef PyObject* other_key
    cdef PyObject* other_value
    cdef dict state
    cdef bint seen, lockstep, same
    cdef list dropped = []
    cdef object k, v  # strong references: a key's __eq__/__hash__ may mutate the maps
    if n == 0:
        return {}, conflicted
    cdef _IntBuf present_in = _IntBuf(n, True)
    # resume[i]: where map i's own walk starts (the keys before it were met in lockstep).
    cdef _PosBuf resume = _PosBuf(n)
    cdef _PosBuf step = _PosBuf(n)
    state = <dict>sets[0]
    unconflicted = state.copy()
    pos = 0
    lockstep = n > 1
    while PyDict_Next(state, &pos, &key, &value):
        if lockstep:
            # Borrowed pointers only: nothing in this step runs Python code.
            same = type(<object>value) is str
            for j in range(1, n):
                step.data[j] = resume.data[j]
                if not PyDict_Next(<dict>sets[j], &resume.data[j], &other_key, &other_value) \
                        or other_key != key:
                    # Lockstep is over: undo this step in every map advanced so far.
                    for i in range(1, j + 1):
                        resume.data[i] = step.data[i]
                    lockstep = False
                    break
                if other_value != value:
                    same = False
            if lockstep and same:
                for j in range(1, n):
                    present_in.data[j] += 1
                continue
        k = <object>key
        v = <object>value
        if not _judge(sets, 0, k, v, missing_is_conflict, unconflicted, conflicted,
                      present_in.data):
            dropped.append(k)
    for k in dropped:
        del unconflicted[k]
    for i in range(1, n):
        state = <dict>sets[i]
        # Keys met in earlier maps that this map also has are counted in present_in[i]
        # (each key is judged once); if that is all of them there is nothing new here.
        if present_in.data[i] == len(state):
            continue
        pos = resume.data[i]
        while PyDict_Next(state, &pos, &key, &value):
            k = <object>key
            v = <object>value
            seen = False
            for j in range(i):
                if _dict_find(<dict>sets[j], k) != NULL:
                    seen = True
                    break
            if seen:
                continue
            if _judge(sets, i, k, v, missing_is_conflict, unconflicted, conflicted,
                      present_in.data):
                if _dict_find(unconflicted, k) == NULL:
                    unconflicted[k] = v
    return unconflicted, conflicted


# ---- AuthGraph -------------------------------------------------------------------------

cdef class AuthGraph:
    """The auth-event DAG of some events, interned to ints for walks at C speed.

    An ID that is referenced but never added is a leaf: walks include it and stop there.
    """

    cdef dict _index            # event ID -> node
    cdef list _ids              # node -> event ID
    cdef int* _start            # node -> offset of its edges in _edges, or -1 if not added
    cdef int* _count            # node -> number of auth events
    cdef int* _edges            # all edge targets, each node's contiguous
    cdef unsigned int* _mark    # node -> stamp of the last walk that reached it
    # Identity table: the address of each ID object held in ``_ids`` -> its node (open
    # addressing). The objects are kept alive by ``_ids``, so an address cannot be reused
    # while it is in the table; an equal ID that is another object misses and is looked
    # up in ``_index`` instead. Saves hashing and touching the ID strings themselves.
    cdef PyObject** _pkeys
    cdef int* _pnodes
    cdef Py_ssize_t _pmask      # table size - 1 (a power of two), 0 before the first add
    cdef Py_ssize_t _cap
    cdef Py_ssize_t _ecap
    cdef Py_ssize_t _ne
    cdef Py_ssize_t _added
    cdef unsigned int _stamp

    def __cinit__(self):
        self._index = {}
        self._ids = []
        self._start = NULL
        self._count = NULL
        self._edges = NULL
        self._mark = NULL
        self._pkeys = NULL
        self._pnodes = NULL
        self._pmask = 0
        self._cap = 0
        self._ecap = 0
        self._ne = 0
        self._added = 0
        self._stamp = 0

    def __dealloc__(self):
        PyMem_Free(self._start)
        PyMem_Free(self._count)
        PyMem_Free(self._edges)
        PyMem_Free(self._mark)
        PyMem_Free(self._pkeys)
        PyMem_Free(self._pnodes)

    cdef inline int _pfind(self, PyObject* obj) noexcept:
        """The node of the ID object at address ``obj``, or -1 if it is not in the table."""
        cdef uintptr_t h
        cdef Py_ssize_t i
        cdef PyObject* k
        if self._pmask == 0:
            return -1
        h = (<uintptr_t>obj) >> 4
        h ^= h >> 15
        i = <Py_ssize_t>(h & <uintptr_t>self._pmask)
        while True:
            k = self._pkeys[i]
            if k == obj:
                return self._pnodes[i]
            if k == NULL:
                return -1
            i = (i + 1) & self._pmask

    cdef int _pinsert(self, PyObject* obj, int node) except -1:
        """Add an ID object of ``_ids`` to the identity table (grown at half full)."""
        cdef Py_ssize_t size = self._pmask + 1 if self._pmask else 0, i, new_size
        cdef PyObject** old_keys = self._pkeys
        cdef int* old_nodes = self._pnodes
        cdef PyObject** keys
        cdef int* nodes
        if 2 * (len(self._ids) + 1) > size:
            new_size = size * 2 if size else 1024
            while 2 * (len(self._ids) + 1) > new_size:
                new_size *= 2
            keys = <PyObject**>PyMem_Malloc(new_size * sizeof(PyObject*))
            nodes = <int*>PyMem_Malloc(new_size * sizeof(int))
            if keys == NULL or nodes == NULL:
                PyMem_Free(keys)
                PyMem_Free(nodes)
                raise MemoryError()
            memset(keys, 0, new_size * sizeof(PyObject*))
            self._pkeys = keys
            self._pnodes = nodes
            self._pmask = new_size - 1
            for i in range(size):
                if old_keys[i] != NULL:
                    self._pput(old_keys[i], old_nodes[i])
            PyMem_Free(old_keys)
            PyMem_Free(old_nodes)
        self._pput(obj, node)
        return 0

    cdef inline void _pput(self, PyObject* obj, int node) noexcept:
        cdef uintptr_t h = (<uintptr_t>obj) >> 4
        cdef Py_ssize_t i
        h ^= h >> 15
        i = <Py_ssize_t>(h & <uintptr_t>self._pmask)
        while self._pkeys[i] != NULL:
            i = (i + 1) & self._pmask
        self._pkeys[i] = obj
        self._pnodes[i] = node

    cdef inline int _node(self, PyObject* obj) except -1:
        """The node of the ID ``<object>obj`` (a borrowed reference), interning it if new;
        ``TypeError`` unless it is a str."""
        cdef int node = self._pfind(obj)
        if node >= 0:
            return node
        return self._intern(_check_id(<object>obj))

    cdef int _intern(self, str event_id) except -1:
        cdef PyObject* found = _dict_find(self._index, event_id)
        cdef Py_ssize_t node, cap
        if found != NULL:
            return <int><object>found
        node = len(self._ids)
        if node >= 0x7FFFFFFF:
            raise MemoryError("auth graph too large")
        if node >= self._cap:
            cap = self._cap
            _grow(&self._start, &cap, node + 1)
            cap = self._cap
            _grow(&self._count, &cap, node + 1)
            cap = self._cap
            _grow(<int**>&self._mark, &cap, node + 1)
            self._cap = cap
        self._start[node] = -1
        self._count[node] = 0
        self._mark[node] = 0
        self._ids.append(event_id)
        self._index[event_id] = node
        self._pinsert(<PyObject*>event_id, <int>node)
        return <int>node

    cdef unsigned int _new_stamp(self):
        cdef Py_ssize_t i
        self._stamp += 1
        if self._stamp == 0:  # wrapped: forget every old mark
            for i in range(len(self._ids)):
                self._mark[i] = 0
            self._stamp = 1
        return self._stamp

    def add_event(self, event_id, auth_event_ids):
        """Record an event's ``auth_events``; a second call for the same ID is ignored."""
        cdef str eid = _check_id(event_id)
        cdef list auth = [_check_id(a) for a in auth_event_ids]
        cdef int node = self._intern(eid)
        cdef int target
        cdef Py_ssize_t k, start, m = len(auth)
        if self._start[node] != -1:
            return
        if self._ne + m >= 0x7FFFFFFF:  # edge offsets are C ints
            raise MemoryError("auth graph too large")
        _grow(&self._edges, &self._ecap, self._ne + m)
        start = self._ne
        for k in range(m):
            target = self._intern(<str>auth[k])
            self._edges[self._ne] = target
            self._ne += 1
        self._start[node] = <int>start
        self._count[node] = <int>m
        self._added += 1

    def __contains__(self, event_id):
        cdef PyObject* found
        if type(event_id) is not str:
            return False
        found = _dict_find(self._index, event_id)
        return found != NULL and self._start[<int><object>found] != -1

    def __len__(self):
        return self._added

    def auth_event_ids(self, event_id):
        """The recorded auth events of ``event_id`` (empty for an unknown event)."""
        cdef PyObject* found = _dict_find(self._index, _check_id(event_id))
        cdef int node, k
        if found == NULL:
            return ()
        node = <int><object>found
        if self._start[node] == -1:
            return ()
        return tuple([self._ids[self._edges[self._start[node] + k]]
                      for k in range(self._count[node])])

    cdef _IntBuf _intern_all(self, object event_ids, Py_ssize_t* n):
        """Intern ``event_ids`` (checking each is a str) into a fresh int array."""
        cdef list ids
        cdef Py_ssize_t k, m
        cdef _IntBuf buf
        if type(event_ids) is _DICT_VALUES:
            return self._intern_values(event_ids, n)
        ids = event_ids if type(event_ids) is list else list(event_ids)
        m = len(ids)
        buf = _IntBuf(m, False)
        for k in range(m):
            # ``ids`` holds a reference to each item (only this loop reads the list).
            buf.data[k] = self._node(<PyObject*>ids[k])
        n[0] = m
        return buf

    cdef bint _intern_forks(self, list sets, list interned, list sizes) except -1:
        """``_intern_all`` of each of several ``dict.values()`` views of equal size, walked
        in lockstep: forks of one state hold the very same ID object at most positions,
        and such a position is looked up once. False (nothing done) for other inputs."""
        cdef Py_ssize_t n_sets = len(sets), i, k, m
        cdef list maps = []
        cdef PyObject* first
        cdef PyObject* value
        cdef int node
        if n_sets < 2:
            return False
        for i in range(n_sets):
            if type(sets[i]) is not _DICT_VALUES:
                return False
            maps.append(<dict><PyObject*>(<_PyDictViewObject*><PyObject*>sets[i]).dv_dict)
        m = len(<dict>maps[0])
        for i in range(1, n_sets):
            if len(<dict>maps[i]) != m:
                return False
        cdef _PosBuf pos = _PosBuf(n_sets)
        cdef list bufs = [_IntBuf(m, False) for i in range(n_sets)]
        for k in range(m):
            if not PyDict_Next(<dict>maps[0], &pos.data[0], NULL, &first):
                raise RuntimeError("dictionary changed size during iteration")
            # Borrowed: as in ``_intern_values``, nothing here can drop the reference.
            node = self._node(first)
            (<_IntBuf>bufs[0]).data[k] = node
            for i in range(1, n_sets):
                if not PyDict_Next(<dict>maps[i], &pos.data[i], NULL, &value):
                    raise RuntimeError("dictionary changed size during iteration")
                (<_IntBuf>bufs[i]).data[k] = node if value == first else self._node(value)
        for i in range(n_sets):
            if PyDict_Next(<dict>maps[i], &pos.data[i], NULL, &value):
                raise RuntimeError("dictionary changed size during iteration")
            interned.append(bufs[i])
            sizes.append(m)
        return True

    cdef _IntBuf _intern_values(self, object view, Py_ssize_t* n):
        """``_intern_all`` of a ``dict.values()`` view, read in place from its dict."""
        cdef dict mapping = <dict><PyObject*>(<_PyDictViewObject*><PyObject*>view).dv_dict
        cdef Py_ssize_t pos = 0, k = 0, m = len(mapping)
        cdef PyObject* value
        cdef _IntBuf buf = _IntBuf(m, False)
        while PyDict_Next(mapping, &pos, NULL, &value):
            if k >= m:
                raise RuntimeError("dictionary changed size during iteration")
            # Borrowed, but nothing below runs Python code that could drop it: a hit
            # only reads the table, a miss type-checks it and takes a reference first.
            buf.data[k] = self._node(value)
            k += 1
        if k != m:
            raise RuntimeError("dictionary changed size during iteration")
        n[0] = m
        return buf

    cdef int _walk(self, int* starts, Py_ssize_t n_starts, bint include_start, _IntBuf out,
                   Py_ssize_t* n_out) except -1:
        """Mark (with a fresh stamp) everything reachable; write reached nodes to ``out``,
        which must have room for every node of the graph."""
        cdef unsigned int stamp = self._new_stamp()
        cdef int* queue = out.data
        cdef Py_ssize_t top = 0, bottom = 0, k, s, end, i
        cdef int node, child
        # ``out`` doubles as the work queue: nodes are appended once, when first marked.
        for i in range(n_starts):
            node = starts[i]
            if include_start:
                if self._mark[node] != stamp:
                    self._mark[node] = stamp
                    queue[top] = node
                    top += 1
            elif self._start[node] != -1:
                s = self._start[node]
                end = s + self._count[node]
                for k in range(s, end):
                    child = self._edges[k]
                    if self._mark[child] != stamp:
                        self._mark[child] = stamp
                        queue[top] = child
                        top += 1
        while bottom < top:
            node = queue[bottom]
            bottom += 1
            if self._start[node] == -1:
                continue
            s = self._start[node]
            end = s + self._count[node]
            for k in range(s, end):
                child = self._edges[k]
                if self._mark[child] != stamp:
                    self._mark[child] = stamp
                    queue[top] = child
                    top += 1
        n_out[0] = top
        return 0

    def missing(self, event_ids):
        """The IDs among ``event_ids`` and their known auth chains that were never added."""
        cdef Py_ssize_t m = 0, n = 0, k
        cdef _IntBuf starts = self._intern_all(event_ids, &m)
        cdef _IntBuf out = _IntBuf(len(self._ids), False)
        self._walk(starts.data, m, True, out, &n)
        result = [self._ids[out.data[k]] for k in range(n) if self._start[out.data[k]] == -1]
        result.sort()
        return result

    def auth_chain(self, event_ids):
        """The union of the auth chains of ``event_ids``."""
        cdef Py_ssize_t m = 0, n = 0, k
        cdef _IntBuf starts = self._intern_all(event_ids, &m)
        cdef _IntBuf out = _IntBuf(len(self._ids), False)
        self._walk(starts.data, m, False, out, &n)
        return {self._ids[out.data[k]] for k in range(n)}

    def auth_chain_difference(self, state_sets):
        """``union(C_i) - intersection(C_i)``; ``C_i`` is state set *i* plus its auth chain.

        As in the pure twin, the closure of the events common to every set is walked once
        and the per-set walks stop where they reach it; here the sets are interned once and
        "common" is found with per-node counters instead of set operations.
        """
        cdef list interned = []
        cdef list sizes = []
        cdef list sets = list(state_sets)
        cdef Py_ssize_t n_sets = len(sets), m = 0, n = 0, k, i, size
        cdef int node
        if n_sets == 0:
            return set()
        # Each set is interned once, straight from a state map's values() view (no copy):
        # the identity table answers for the ID objects the graph already holds.
        if not self._intern_forks(sets, interned, sizes):
            for i in range(n_sets):
                interned.append(self._intern_all(sets[i], &size))
                sizes.append(size)
        cdef Py_ssize_t total = len(self._ids)
        cdef _IntBuf counts = _IntBuf(total, True)
        cdef _IntBuf out = _IntBuf(total, False)
        cdef _IntBuf starts
        cdef unsigned int stamp
        # How many sets hold each node (a node listed twice in one set counts once).
        for i in range(n_sets):
            starts = <_IntBuf>interned[i]
            size = <Py_ssize_t>sizes[i]
            stamp = self._new_stamp()
            for k in range(size):
                node = starts.data[k]
                if self._mark[node] != stamp:
                    self._mark[node] = stamp
                    counts.data[node] += 1
        # The common events, then their closure: counts == n_sets marks "in every C_i".
        cdef _IntBuf common = _IntBuf(total, False)
        m = 0
        for node in range(total):
            if counts.data[node] == n_sets:
                common.data[m] = node
                m += 1
            counts.data[node] = 0
        self._walk(common.data, m, True, out, &n)
        for k in range(n):
            counts.data[out.data[k]] = <int>n_sets
        for i in range(n_sets):
            starts = <_IntBuf>interned[i]
            self._walk_counted(starts.data, <Py_ssize_t>sizes[i], counts.data, <int>n_sets,
                               out, &n)
        result = set()
        for node in range(total):
            if 0 < counts.data[node] < n_sets:
                result.add(self._ids[node])
        return result

    cdef int _walk_counted(self, int* starts, Py_ssize_t n_starts, int* counts, int full,
                           _IntBuf out, Py_ssize_t* n_out) except -1:
        """Walk from ``starts`` (inclusive), not entering nodes whose count is ``full``;
        add one to the count of every node reached."""
        cdef unsigned int stamp = self._new_stamp()
        cdef int* queue = out.data
        cdef Py_ssize_t top = 0, bottom = 0, k, s, end, i
        cdef int node, child
        for i in range(n_starts):
            node = starts[i]
            if self._mark[node] != stamp and counts[node] != full:
                self._mark[node] = stamp
                counts[node] += 1
                queue[top] = node
                top += 1
        while bottom < top:
            node = queue[bottom]
            bottom += 1
            if self._start[node] == -1:
                continue
            s = self._start[node]
            end = s + self._count[node]
            for k in range(s, end):
                child = self._edges[k]
                if self._mark[child] != stamp and counts[child] != full:
                    self._mark[child] = stamp
                    counts[child] += 1
                    queue[top] = child
                    top += 1
        n_out[0] = top
        return 0

    def add_loaded(self, event_ids, events):
        """Record the auth events of those of ``event_ids`` that ``events`` holds (PDUs);
        return every ID they cite (the next level of an auth-chain walk)."""
        cdef set cited = set()
        cdef object e, ev, auth_ids
        for e in event_ids:
            ev = events.get(e)
            if ev is None:
                continue
            auth_ids = ev.auth_event_ids()
            self.add_event(e, auth_ids)
            cited.update(auth_ids)
        return cited

    def conflicted_subgraph(self, conflicted):
        """Events on an auth path between two conflicted events, endpoints included
        (rooms/v12.md "Conflicted state subgraph")."""
        cdef Py_ssize_t m = 0, n = 0, k, i, s, end, top, bottom
        cdef _IntBuf targets = self._intern_all({_check_id(e) for e in conflicted}, &m)
        cdef Py_ssize_t total = len(self._ids)
        cdef _IntBuf below = _IntBuf(total, False)
        self._walk(targets.data, m, True, below, &n)
        cdef unsigned int stamp
        # Reverse adjacency (CSR) restricted to ``below``: node -> the nodes citing it.
        cdef _IntBuf rdeg = _IntBuf(total + 1, True)
        cdef int node, child
        for i in range(n):
            node = below.data[i]
            if self._start[node] == -1:
                continue
            s = self._start[node]
            end = s + self._count[node]
            for k in range(s, end):
                rdeg.data[self._edges[k] + 1] += 1
        for i in range(total):
            rdeg.data[i + 1] += rdeg.data[i]
        cdef _IntBuf fill = _IntBuf(total, True)
        cdef _IntBuf radj = _IntBuf(rdeg.data[total], False)
        for i in range(n):
            node = below.data[i]
            if self._start[node] == -1:
                continue
            s = self._start[node]
            end = s + self._count[node]
            for k in range(s, end):
                child = self._edges[k]
                radj.data[rdeg.data[child] + fill.data[child]] = node
                fill.data[child] += 1
        # Walk the reversed edges from the conflicted events (marks: a new stamp).
        stamp = self._new_stamp()
        cdef _IntBuf queue = _IntBuf(total, False)
        top = 0
        bottom = 0
        for i in range(m):
            node = targets.data[i]
            if self._mark[node] != stamp:
                self._mark[node] = stamp
                queue.data[top] = node
                top += 1
        while bottom < top:
            node = queue.data[bottom]
            bottom += 1
            for k in range(rdeg.data[node], rdeg.data[node + 1]):
                child = radj.data[k]
                if self._mark[child] != stamp:
                    self._mark[child] = stamp
                    queue.data[top] = child
                    top += 1
        return {self._ids[queue.data[k]] for k in range(top)}


# ---- the sorts -------------------------------------------------------------------------

cdef inline void _heap_push(int* heap, Py_ssize_t* size, int value) noexcept:
    cdef Py_ssize_t i = size[0], parent
    size[0] += 1
    while i > 0:
        parent = (i - 1) >> 1
        if heap[parent] <= value:
            break
        heap[i] = heap[parent]
        i = parent
    heap[i] = value


cdef inline int _heap_pop(int* heap, Py_ssize_t* size) noexcept:
    cdef int top = heap[0]
    cdef Py_ssize_t n = size[0] - 1, i = 0, child
    cdef int last = heap[n]
    size[0] = n
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and heap[child + 1] < heap[child]:
            child += 1
        if heap[child] >= last:
            break
        heap[i] = heap[child]
        i = child
    if n > 0:
        heap[i] = last
    return top


def reverse_topological_power_sort(event_ids, auth_edges, power, origin_ts):
    """Kahn's algorithm over the auth DAG restricted to ``event_ids``, earliest first,
    choosing the smallest ready event by (-sender power, origin_server_ts, event_id)."""
    cdef list ids = sorted({_check_id(e) for e in event_ids})
    cdef Py_ssize_t n = len(ids), i, k, m, size = 0
    # Rank every event by its full tie-break key once; Kahn's heap then compares ints.
    cdef dict keys = {}
    cdef str e
    for e in ids:
        keys[e] = (-power[e], origin_ts[e], e)
    cdef list ranked = sorted(ids, key=keys.__getitem__)
    cdef dict rank = {}
    for i in range(n):
        rank[ranked[i]] = i
    # Parents of each ranked node inside the set, deduplicated, as CSR child lists.
    cdef _IntBuf pending = _IntBuf(n, True)
    cdef _IntBuf cdeg = _IntBuf(n + 1, True)
    cdef list parent_lists = []
    cdef list parents
    cdef set unique
    cdef PyObject* found
    cdef int p
    for i in range(n):
        parents = []
        unique = set()
        for a in auth_edges.get(ranked[i], ()):
            if type(a) is not str:
                continue  # cannot be one of ``ids``
            found = _dict_find(rank, a)
            if found != NULL and a not in unique:
                unique.add(a)
                p = <int><object>found
                parents.append(p)
                cdeg.data[p + 1] += 1
        pending.data[i] = len(parents)
        parent_lists.append(parents)
    for i in range(n):
        cdeg.data[i + 1] += cdeg.data[i]
    cdef _IntBuf fill = _IntBuf(n, True)
    cdef _IntBuf children = _IntBuf(cdeg.data[n], False)
    for i in range(n):
        for p in <list>parent_lists[i]:
            children.data[cdeg.data[p] + fill.data[p]] = <int>i
            fill.data[p] += 1
    cdef _IntBuf heap = _IntBuf(n, False)
    for i in range(n):
        if pending.data[i] == 0:
            _heap_push(heap.data, &size, <int>i)
    cdef list out = []
    cdef int node, child
    while size > 0:
        node = _heap_pop(heap.data, &size)
        out.append(ranked[node])
        for k in range(cdeg.data[node], cdeg.data[node + 1]):
            child = children.data[k]
            pending.data[child] -= 1
            if pending.data[child] == 0:
                _heap_push(heap.data, &size, child)
    if len(out) != n:
        raise StateSortError("the auth events of the events to sort contain a cycle")
    return out


def mainline_sort(event_ids, mainline, pl_parent, origin_ts):
    """Order events by (-mainline position, origin_server_ts, event_id) (rooms/v2.md)."""
    cdef dict index = {}
    cdef Py_ssize_t i = 0, steps, limit = len(pl_parent) + 1
    cdef Py_ssize_t infinity = len(mainline)
    for p in mainline:
        index.setdefault(_check_id(p), i)
        i += 1
    cdef dict memo = {}
    cdef list path
    cdef list keyed = []
    cdef object node, pos, nxt, parent
    for e in {_check_id(x) for x in event_ids}:
        parent = pl_parent.get(e)
        if parent is None:
            pos = infinity
        else:
            node = _check_id(parent)
            path = []
            steps = 0
            pos = infinity
            while node is not None:
                if node in memo:
                    pos = memo[node]
                    break
                if node in index:
                    pos = index[node]
                    break
                path.append(node)
                steps += 1
                if steps > limit:
                    raise StateSortError("the power-levels auth chain contains a cycle")
                nxt = pl_parent.get(node)
                node = None if nxt is None else _check_id(nxt)
            for x in path:
                memo[x] = pos
        keyed.append((-pos, origin_ts[e], e))
    keyed.sort()
    return [k[2] for k in keyed]


# ---- the resolver's per-event loops (rooms/v2.md) ----------------------------------------
#
# The same code as the pure twin's, compiled: PDUs are read only through their public
# attributes and the auth rules are a callable, so these stay generic; what C saves is
# the interpreter overhead of the loops and the dict/set traffic around them.

# ``hs.core.pdu.PDU``, bound on first use (``hs.core`` imports ``hs._native``). For an
# exact PDU the readers below take the fields straight from its JSON dict, exactly as its
# properties do, without a Python call each; anything else goes through its attributes.
cdef object _PDU = None


cdef inline dict _pdu_data(object ev):
    global _PDU
    cdef object data
    if _PDU is None:
        from hs.core.pdu import PDU
        _PDU = PDU
    if type(ev) is not _PDU:
        return None
    data = ev.data
    return <dict>data if type(data) is dict else None


cdef inline bint _is_state(object ev) except -1:
    cdef dict data = _pdu_data(ev)
    if data is None:
        return bool(ev.is_state())
    return "state_key" in data


cdef inline object _state_tuple(object ev):
    cdef dict data = _pdu_data(ev)
    if data is None:
        return ev.state_tuple
    return (data["type"], data["state_key"])


cdef inline object _sender(object ev):
    cdef dict data = _pdu_data(ev)
    if data is None:
        return ev.sender
    return data["sender"]


cdef inline object _origin_ts(object ev):
    cdef dict data = _pdu_data(ev)
    cdef object ts
    if data is None:
        return ev.origin_server_ts
    ts = data.get("origin_server_ts", 0)
    return ts if type(ts) is int else int(ts)


cdef inline object _get(object mapping, object key):
    """``mapping.get(key)``, without the method call for a plain dict."""
    cdef PyObject* found
    if type(mapping) is dict:
        found = _dict_find(<dict>mapping, key)
        return <object>found if found != NULL else None
    return mapping.get(key)


def conflicted_event_ids(conflicted):
    """Every event ID of the conflicted state map."""
    cdef set ids = set()
    cdef object values
    for values in conflicted.values():
        ids.update(values)
    return ids


cdef bint _is_power_event(object event) except -1:
    cdef object etype
    if not _is_state(event):
        return False
    etype = event.type
    if etype == "m.room.power_levels" or etype == "m.room.join_rules":
        return True
    if etype == "m.room.member":
        return event.membership in ("leave", "ban") and event.sender != event.state_key
    return False


def select_power_events(full, events):
    """The full conflicted set reduced to loaded state events, and its power events."""
    cdef set state = set()
    cdef list power = []
    cdef object e
    for e in full:
        if e in events and _is_state(events[e]):
            state.add(e)
    for e in state:
        if _is_power_event(events[e]):
            power.append(e)
    return state, power


cdef object _cited_state(object event, object events, object create, object cache):
    cdef object cached, event_id = event.event_id, a, ev
    cdef dict cited
    cdef bint complete = True
    cached = _get(cache, event_id)
    if cached is not None:
        return cached
    cited = {}
    if create is not None:
        cited[CREATE] = create
    for a in event.auth_event_ids():
        ev = _get(events, a)
        if ev is None:
            complete = False
        elif _is_state(ev):
            cited[_state_tuple(ev)] = ev
    if complete:
        cache[event_id] = cited
    return cited


def cited_state(event, events, create, cache):
    """The event's own loaded auth events by key, plus ``create`` when not None (cached in
    ``cache`` once every auth event is loaded; do not mutate the result)."""
    return _cited_state(event, events, create, cache)


def power_sort_inputs(event_ids, events, create, cache, levels):
    """``reverse_topological_power_sort``'s inputs: auth events, sender power, timestamp."""
    cdef dict edges = {}, power = {}, origin_ts = {}
    cdef object e, ev, cited, user_level = levels.user_level
    for e in event_ids:
        ev = events[e]
        edges[e] = ev.auth_event_ids()
        cited = _cited_state(ev, events, create, cache)
        power[e] = user_level(_sender(ev), _get(cited, CREATE), _get(cited, POWER_LEVELS))
        origin_ts[e] = _origin_ts(ev)
    return edges, power, origin_ts


def auth_prefetch_ids(todo, required, base, changes):
    """Every auth event the events cite and every state event at the keys they need."""
    cdef set wanted = set()
    cdef object ev, keys, key, sid
    for ev, keys in zip(todo, required, strict=True):
        wanted.update(ev.auth_event_ids())
        for key in keys:
            sid = _get(changes, key)
            if sid is None:
                sid = _get(base, key)
            if sid is not None:
                wanted.add(sid)
    return wanted


def iterative_auth_checks(todo, required, base, changes, events, create, cache, is_allowed):
    """rooms/v2.md "Iterative auth checks" (see the pure twin); returns ``changes``."""
    cdef object ev, keys, key, sid, found, fallback
    cdef dict auth_events
    for ev, keys in zip(todo, required, strict=True):
        auth_events = {}
        if create is not None:
            auth_events[CREATE] = create
        for key in keys:
            sid = _get(changes, key)
            if sid is None:
                sid = _get(base, key)
            if sid is not None:
                found = _get(events, sid)
                if found is not None:
                    auth_events[key] = found
                    continue
            fallback = _get(_cited_state(ev, events, create, cache), key)
            if fallback is not None and fallback.rejected_reason is None:
                auth_events[key] = fallback
        if is_allowed(ev, auth_events):
            changes[_state_tuple(ev)] = ev.event_id
    return changes
