"""Trace records of calls that run on Ray, and the actors they run on.

The fields are the trace contract of ``_trace.py``: the driver stamps
``submitted``, the worker's wrapper reports ``started``, ``finished``, ``slot``
and ``pid`` through the log stream (``logs.py``). A record ends with whichever
comes first: a ``get`` of the call's first ref (or Ray's callback for it), or
the worker's report that the call returned. A call that raised ends with Ray's
error: its report asks for Ray's callback (refs.arm_refs).
"""
from __future__ import annotations

import collections
import threading
import time

from ... import _ids
from ..._trace import tracer
from ...exceptions import TaskCancelledError

PENDING, RUNNING, FINISHED, FAILED, CANCELLED = "pending", "running", "finished", "failed", "cancelled"
_ending = threading.Lock()   # a call ends once, whichever thread ends it first


class RayActor:
    """The backend's token for one actor: Ray's handle and what ``%actors`` shows."""

    __slots__ = ("actor_id", "handle", "class_name", "name", "namespace", "is_async",
                 "max_concurrency", "concurrency_groups", "pid", "killed", "counts", "death",
                 "call_method", "direct", "restartable",
                 "__weakref__")

    def __init__(self, actor_id, handle, class_name, name, namespace, is_async,
                 max_concurrency, concurrency_groups=None):
        self.actor_id = actor_id
        self.handle = handle
        self.class_name = class_name
        self.name = name
        self.namespace = namespace
        self.is_async = is_async
        self.max_concurrency = max_concurrency
        self.pid = None
        self.killed = False
        self.counts = {FINISHED: 0, FAILED: 0, CANCELLED: 0}
        self.death = None
        self.call_method = None     # Ray's handle.call, once looked up (backend.call_actor)
        self.direct: dict = {}      # method -> Ray's method of its direct entry, or None
        self.concurrency_groups = concurrency_groups   # {"io": 2, ...} or None
        self.restartable = False    # max_restarts given: Ray may bring it back after a crash

    @property
    def named_key(self):
        """What an ActorHandle carries when pickled: Ray's own handle (Ray tracks it)."""
        from ..._api import session
        current = session.current_backend()
        if current is None or current.name != "ray":
            from .errors import made_on_ray
            raise made_on_ray(f"The handle of actor {self.class_name}")
        return _HandleKey(self.handle, current.setup)


class _HandleKey:
    """Ray's handle, pickled with the session's setup for the worker that unpickles it."""

    __slots__ = ("handle", "setup")

    def __init__(self, handle, setup):
        self.handle, self.setup = handle, setup

    def __reduce__(self):
        return (_handle_here, (self.handle, self.setup))


def _handle_here(handle, setup):
    """Ray unpickles a call's arguments before the call's wrapper runs: a handle among them
    sets up a fresh worker's session first, or the handle would look for its actor in an
    embedded runtime started there by mistake."""
    if setup is not None:
        setup.install_in_worker()
    return handle


class TaskOwner:
    """What runs remote functions on Ray: the cluster's CPUs."""

    class_name = None
    name = None
    is_async = False
    max_concurrency = 1
    pid = None
    actor_id = None

    def __init__(self, size: int):
        self.size = size
        self.counts = {FINISHED: 0, FAILED: 0, CANCELLED: 0}


def task_key(ref_id: int) -> int:
    """The key of the call whose first ref has this id: the first 8 bytes of Ray's
    object id (28 bytes), which are the first 8 of its task's id (host._task_key)."""
    return ref_id >> 160


class CallKeys:
    """The session's calls by key (what their workers tag lines and events with), kept
    while the trace may still show them: the newest ``keep`` to ``2 * keep`` calls, and
    every call not ended yet. A plain dict let go of in batches: a weak dict made and
    later collected a weak reference per call, both in Python, on every call."""

    def __init__(self, keep: int):
        self.keep = keep
        self.limit = 2 * keep     # let go of some once this many keys are kept
        self.by_key: dict = {}
        self.order: collections.deque = collections.deque()   # keys, oldest first
        self.get = self.by_key.get
        self._letting_go = threading.Lock()

    def add(self, record) -> None:
        key = record.key
        self.by_key[key] = record
        order = self.order
        order.append(key)
        if len(order) > self.limit and self._letting_go.acquire(False):
            try:
                self._let_go()
            finally:
                self._letting_go.release()

    def _let_go(self) -> None:
        """Forget the oldest ``keep`` calls, except those still queued or running."""
        by_key, order = self.by_key, self.order
        for _ in range(self.keep):
            key = order.popleft()
            record = by_key.get(key)
            if record is not None and record.key == key and record.status in (PENDING, RUNNING):
                order.append(key)   # still under way: its worker's events are to come
            else:
                by_key.pop(key, None)
        self.limit = len(order) + self.keep   # many under way: not again at the next call

    def __len__(self) -> int:
        return len(self.by_key)


def report_event(record, item, pid) -> None:
    """One of the worker's trace events for ``record`` (host._Events), times on the
    driver's clock: "s" started, "f" returned, "x" raised, "sf" / "sx" both at once."""
    kind = item[1]
    if kind == "sf" or kind == "sx":
        record.report(started=item[2], slot=item[3], pid=pid, finished=item[4],
                      failed=kind == "sx")
    elif kind == "s":
        record.report(started=item[2], slot=item[3], pid=pid)
    else:
        record.report(finished=item[2], failed=kind == "x")


class RayCall:
    """One call on Ray, as the trace, the widgets, %actors and interrupts read it."""

    __slots__ = ("call_id", "key", "kind", "label", "owner", "actor_id", "refs", "ray_ref",
                 "context", "submitted", "started", "finished", "slot", "status", "pid",
                 "error", "group", "__weakref__")

    def __init__(self, kind, label, owner, context, group=None):
        # The call's key: what its worker tags its output and trace events with; the
        # call id, or (a direct call, see host.has_direct_entry) its Ray task's (task_key).
        self.call_id = self.key = _ids.next_id()
        self.kind = kind                  # "call", "init" or "task"
        self.label = label
        self.owner = owner
        self.group = group                # the concurrency group of an actor call, or None
        self.actor_id = owner.actor_id
        self.refs = ()
        self.ray_ref = None
        self.context = context
        self.submitted = time.monotonic()
        self.started = None
        self.finished = None
        self.slot = None
        self.status = PENDING
        self.pid = None
        self.error = None

    def report(self, started=None, finished=None, slot=None, pid=None, failed=False) -> None:
        """What the worker's wrapper reported (log stream); it may arrive after Ray's reply."""
        if started is not None:
            self.started, self.slot, self.pid = started, slot, pid
            if self.kind != "task" and self.owner.pid is None:
                self.owner.pid = pid
            if self.status == PENDING:
                self.status = RUNNING
                tracer.record_started(self)
        if finished is not None:
            self.finished = finished   # the worker's own time, more exact than the reply's
            from .refs import RayObjectRef, arm_refs
            if self.status in (PENDING, RUNNING) and (
                    not self.refs or type(self.refs[0]) is RayObjectRef):   # not a generator
                if not failed:
                    self.end(None)
                    return
                arm_refs(self.refs[:1])    # Ray's callback brings the error and ends it
                return
        if self.status in (FINISHED, FAILED, CANCELLED):
            # Reported after Ray's reply: the live widgets redraw the call with these times.
            tracer.record_finished(self)

    def end(self, error: BaseException | None) -> None:
        """The call ended: Ray completed its first ref, or its worker said it returned."""
        with _ending:
            if self.status in (FINISHED, FAILED, CANCELLED):
                return
            self.status = (FINISHED if error is None else
                           CANCELLED if isinstance(error, TaskCancelledError) else FAILED)
        self.error = error
        now = time.monotonic()
        if self.finished is None:
            self.finished = now
        if self.started is None:
            self.started = self.finished
        if self.kind != "init":
            counts = self.owner.counts
            counts[self.status] = counts.get(self.status, 0) + 1
        self.refs = ()          # the refs live on with their holders, not in the trace
        self.ray_ref = None
        tracer.record_finished(self)
