"""The trace's finished calls, packed: a ``Chunk`` of columns per run of calls, and
``FinishedCall``, the form readers get back (``_trace.Tracer.snapshot``)."""
from __future__ import annotations

import operator
import struct as _struct
from array import array
from itertools import repeat

# A finished call's row. (Records kept in the trace were walked by every full garbage
# collection and kept alive past their refs; a tuple per call made collections of the
# youngest generation come more often, and a long list of them was walked by every
# full one: each cost pipelined calls 100s of ns.)
ROW_FIELDS = ("call_id", "kind", "label", "actor_id", "status", "submitted", "started",
              "finished", "slot", "pid", "group", "owner", "error")
WIDTH = len(ROW_FIELDS)
_ERROR = ROW_FIELDS.index("error")
# The fields a Chunk packs into an array, by array type code: those that are a new
# object per call (the call id, the times; the slot of an async actor's call, which
# is often past the small ints Python shares).
_PACKED = ("q", None, None, None, None, "d", "d", "d", "q", None, None, None, None)

# The fields of a run's chunk kept once: all but the numbers.
_RUN_SAME = tuple(k for k, code in enumerate(_PACKED) if code is None)
# A run's numbers, from its message's ends (call_id, result, started, finished, slot) or
# from its records: call id, started, finished, slot.
_RUN_END_GETTERS = tuple(map(operator.itemgetter, (0, 2, 3, 4)))
_RUN_RECORD_GETTERS = tuple(map(operator.attrgetter, ("call_id", "started", "finished", "slot")))


class Chunk:
    """Finished calls, oldest first, by field: one column per row field, in the order of
    ``ROW_FIELDS``. The numbers that are a new object per call (the call id, the times)
    are packed into arrays; a field with one value for the whole chunk (most are: the
    calls of one method of one actor) is kept once (its index is in ``same``); any other
    is a tuple of shared objects.

    Packing frees each call's own number objects while they are still in the CPU's
    caches; a chunk forgotten much later is a handful of objects, freed at once, that a
    garbage collection has no reason to walk.
    """

    __slots__ = ("count", "columns", "same")

    def __init__(self, rows: list, end: int):
        """The calls in ``rows[:end]``."""
        count = self.count = end // WIDTH
        columns = []
        same = []
        for k, code in enumerate(_PACKED):
            column = rows[k:end:WIDTH]
            if code:
                try:  # (struct packs a list twice as fast as array() converts it)
                    column = array(code, _struct.pack(f"{count}{code}", *column))
                except _struct.error:  # a None (a call that never started), or too big
                    column = tuple(column)
            elif k == _ERROR:
                # Errors are the users' objects: compared by identity only (their __eq__
                # may say unlike errors are equal, or raise).
                if all(map(operator.is_, column, repeat(None))):
                    column = None
                    same.append(k)
                else:
                    column = tuple(column)
            elif count and column.count(column[0]) == count:
                # (Strings, small ints, None and the backends' owners: equal is the same.)
                column = column[0]
                same.append(k)
            else:
                column = tuple(column)
            columns.append(column)
        self.columns = columns
        self.same = tuple(same)

    @classmethod
    def of_run(cls, records: list, ends) -> "Chunk | None":
        """The chunk of a run of calls that each returned a value (``_run_finished``), or
        None if they differ in more than their ids, times and slots."""
        first = records[0]
        # One worker's run: one pid, and one kind for one owner (an actor's calls or the
        # pool's tasks; an actor's creation is never in a run). The submission times are
        # read in the same pass as the test (slot reads by the interpreter: a third of
        # operator.attrgetter's cost).
        label, group, owner = first.label, first.group, first.owner
        submitted = [r.submitted for r in records
                     if r.label is label and r.group is group and r.owner is owner]
        count = len(records)
        if len(submitted) != count:
            return None
        # Columns read by map(), never zip(*ends): that makes an iterator per call, a
        # burst of objects that sets off the garbage collector's youngest generation
        # early (each collection walks every call in flight).
        getters = _RUN_END_GETTERS if ends is not None else _RUN_RECORD_GETTERS
        source = ends if ends is not None else records
        numbers = (map(getters[0], source), submitted, map(getters[1], source),
                   map(getters[2], source), map(getters[3], source))
        packed = []
        try:
            for column, code in zip(numbers, "qdddq"):
                packed.append(array(code, _struct.pack(f"{count}{code}", *column)))
        except _struct.error:  # (a slot of None: not from a run of results)
            return None
        chunk = object.__new__(cls)
        chunk.count = count
        # In a run of results every call finished without an error (a call that failed
        # or was cancelled is out of flight already), and actor_id is its owner's.
        call_ids, submitted, started, finished, slots = packed
        chunk.columns = [call_ids, first.kind, label, first.actor_id, first.status, submitted,
                         started, finished, slots, first.pid, group, owner, None]
        chunk.same = _RUN_SAME
        return chunk

    def call_ids(self):
        return self.columns[0]

    def without_first(self, drop: int) -> "Chunk":
        chunk = object.__new__(type(self))
        chunk.count = self.count - drop
        same = chunk.same = self.same
        chunk.columns = [column if k in same else column[drop:]
                         for k, column in enumerate(self.columns)]
        return chunk

    def calls(self, later: dict) -> list:
        """The chunk's calls as FinishedCalls (``later``: newer rows of some)."""
        same = self.same
        columns = [repeat(column, self.count) if k in same else column
                   for k, column in enumerate(self.columns)]
        out = list(map(FinishedCall, zip(*columns)))
        if later:
            out = [FinishedCall(later[c.call_id]) if c.call_id in later else c for c in out]
        return out


class FinishedCall:
    """A finished call, as ``snapshot`` gives it: the fields readers use (see the module
    docstring), rebuilt from its row."""

    __slots__ = ROW_FIELDS + ("context",)

    def __init__(self, row: tuple):
        (self.call_id, self.kind, self.label, self.actor_id, self.status, self.submitted,
         self.started, self.finished, self.slot, self.pid, self.group, self.owner,
         self.error) = row
        self.context = None

    def __repr__(self) -> str:
        return f"<FinishedCall {self.label} {self.status} call_id={self.call_id}>"
