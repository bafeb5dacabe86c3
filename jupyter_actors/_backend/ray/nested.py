"""Calls made inside Ray's workers (actor → actor, task → actor), in the driver's trace.

    caller worker (its RayBackend)            driver (logs.LogRouter → NestedCalls)
    ──────────────────────────────            ─────────────────────────────────────
    the call is submitted ─ "n" event ──────▶ a RayCall for it: label, actor, the cell of
                                              the driver's call that started the chain
    the callee runs it    ─ "sf" (or "s" ─▶ its start, slot, pid and finish (as any call)
                            then "f"/"x")
    its first ref is done ─ "e" event ──────▶ the record ends: finished, failed or cancelled

The driver makes no record of such a call when it is submitted (Ray takes it straight
from the worker), so the worker that makes it says so on the same log stream that
carries its output; the callee's own start and finish may come first, and wait here
until the record exists.
"""
from __future__ import annotations

import collections

from ... import _ids
from ..._trace import tracer
from ...exceptions import TaskCancelledError, TaskError
from . import host
from .records import CANCELLED, FAILED, RayActor, RayCall, report_event

SUBMITTED, ENDED = "n", "e"
NESTED_EVENTS = (SUBMITTED, ENDED)   # what only nested calls send (besides the callee's)
EARLY_LIMIT = 10_000     # start/finish events kept for records not announced yet


# -- in a Ray worker ------------------------------------------------------------------------

def forward_worker_calls() -> None:
    """Once per worker: ids of its own (never a driver's), and its calls announced."""
    _ids.use_process_prefix()
    tracer.add_listener(_announce)


def _announce(event: str, record) -> None:
    if not isinstance(record, RayCall) or host._events is None:
        return
    if event == "submit":
        owner = record.owner
        actor = None if record.kind == "task" else (
            owner.actor_id, owner.class_name, owner.is_async, owner.max_concurrency)
        host._events.add((record.call_id, SUBMITTED, host.now(), host.route_here(),
                          record.kind, record.label, actor))
    elif event == "finish" and record.error is not None:
        host._events.add((record.call_id, ENDED, host.now(), record.status,
                          f"{type(record.error).__name__}: {record.error}"))
    elif event == "finish":
        host._events.add((record.call_id, ENDED, host.now(), record.status, None))


# -- in the driver ----------------------------------------------------------------------------

class NestedCalls:
    """The driver's records of calls made inside workers."""

    def __init__(self, backend):
        self.backend = backend
        self.early: collections.OrderedDict = collections.OrderedDict()
        self.actors: dict = {}    # actor_id -> RayActor for actors this driver holds no handle to

    def handle(self, item, pid) -> None:
        """One event the driver has no record for, or one announcing or ending such a call
        (its times on the driver's clock already: logs.LogRouter)."""
        call_id, kind = item[0], item[1]
        if kind == SUBMITTED:
            self._submitted(call_id, item)
        elif kind == ENDED:
            self._ended(call_id, item)
        else:
            self.early.setdefault(call_id, []).append((item, pid))
            while len(self.early) > EARLY_LIMIT:
                self.early.popitem(last=False)

    def _submitted(self, call_id, item) -> None:
        _, _, at, route, kind, label, actor = item
        backend = self.backend
        owner = backend.tasks if actor is None else self._actor(*actor)
        caller = backend.record_of(route) if route is not None else None
        record = RayCall(kind, label, owner, caller.context if caller is not None else None)
        record.call_id = record.key = call_id
        record.submitted = at
        backend.records.add(record)
        tracer.record_submitted(record)
        for early, pid in self.early.pop(call_id, ()):
            report_event(record, early, pid)

    def _ended(self, call_id, item) -> None:
        record = self.backend.records.get(call_id)
        if record is None:
            return
        _, _, at, status, text = item
        error = (TaskCancelledError(text) if status == CANCELLED else
                 TaskError(text) if status == FAILED else None)
        if record.finished is None:
            record.finished = at
        record.end(error)

    def _actor(self, actor_id, class_name, is_async, max_concurrency) -> RayActor:
        known = self.backend.actors.get(actor_id) or self.actors.get(actor_id)
        if known is None:
            # An actor made inside a worker: no handle here, a row in the trace all the same.
            known = self.actors[actor_id] = RayActor(actor_id, None, class_name, None, None,
                                                     is_async, max_concurrency)
        return known
