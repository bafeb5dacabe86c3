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
# The fields a Chunk packs into a column of machine numbers, by struct type code: those
# that are a new object per call (the call id, the times; the slot of an async actor's
# call, which is often past the small ints Python shares).
_PACKED = ("q", None, None, None, None, "d", "d", "d", "q", None, None, None, None)

# A chunk of fewer calls keeps their fields as they are.
_FEW = 16
# The fields of a run's chunk kept once: all but the numbers.
_RUN_SAME = tuple(k for k, code in enumerate(_PACKED) if code is None)
# A run's numbers when its message did not bring them packed: from its records.
_RUN_RECORD_GETTERS = tuple(map(operator.attrgetter, ("call_id", "started", "finished", "slot")))


def _packed(code: str, values, count: int) -> array:
    """``values`` as an array of ``count`` machine numbers (struct packs a list twice as
    fast as array() converts it)."""
    return array(code, _struct.pack(f"{count}{code}", *values))


class Chunk:
    """Finished calls, oldest first, by field: one column per row field, in the order of
    ``ROW_FIELDS``. The numbers that are a new object per call (the call id, the times)
    are packed into arrays; a field with one value for the whole chunk (most are: the
    calls of one method of one actor) is kept once (its index is in ``same``); any other
    is a tuple of shared objects. A chunk of a few calls keeps their rows as they came,
    end to end in one list (``same`` is None).

    Packing frees each call's own number objects while they are still in the CPU's
    caches; a chunk forgotten much later is a handful of objects, freed at once, that a
    garbage collection has no reason to walk. Its oldest calls are forgotten by counting
    them in ``first`` (under the tracer's lock; readers take ``first`` under it too): a
    chunk made long ago is out of the CPU's caches, and touching only that number costs
    a fraction of building a shorter chunk from it.
    """

    __slots__ = ("total", "first", "columns", "same")

    def __init__(self, rows: list, end: int):
        """The calls in ``rows[:end]``."""
        count = self.total = end // WIDTH
        self.first = 0
        if count < _FEW:
            # A few calls that ended alone just before a run of results (kept as a chunk
            # of its own, after them): packing would cost more than their objects do.
            self.columns = rows[:end]
            self.same = None
            return
        columns = []
        same = []
        for k, code in enumerate(_PACKED):
            column = rows[k:end:WIDTH]
            if code:
                try:
                    column = _packed(code, column, count)
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
    def of_run(cls, records: list, numbers) -> "Chunk | None":
        """The chunk of a run of calls that each returned a value (``_run_finished``), or
        None if they differ in more than their ids, times and slots. ``numbers``: the
        run's (call ids, started, finished, slots) as its message brought them, columns
        in the order of ``records`` (kept as they are); None: read from the records."""
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
        try:
            submitted = _packed("d", submitted, count)
            if numbers is None:
                numbers = [_packed(code, map(getter, records), count)
                           for code, getter in zip("qddq", _RUN_RECORD_GETTERS)]
        except _struct.error:  # (a slot of None: not from a run of results)
            return None
        chunk = object.__new__(cls)
        chunk.total = count
        chunk.first = 0
        # In a run of results every call finished without an error (a call that failed
        # or was cancelled is out of flight already), and actor_id is its owner's.
        call_ids, started, finished, slots = numbers
        chunk.columns = [call_ids, first.kind, label, first.actor_id, first.status, submitted,
                         started, finished, slots, first.pid, group, owner, None]
        chunk.same = _RUN_SAME
        return chunk

    def call_ids(self, first: int):
        """The ids of the calls from ``first`` on."""
        if self.same is None:
            return self.columns[first * WIDTH::WIDTH]
        return self.columns[0][first:]

    def calls(self, later: dict, first: int) -> list:
        """The calls from ``first`` on as FinishedCalls (``later``: newer rows of some)."""
        same = self.same
        if same is None:
            rows = self.columns
            columns = [rows[first * WIDTH + k::WIDTH] for k in range(WIDTH)]
        else:
            columns = [repeat(column, self.total - first) if k in same else column[first:]
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
