"""Call records: what one actor call, actor creation or task is, and how it ends.

A record is created in the caller's thread, sent by its owner (an actor or the
task pool) and finished by the I/O thread; finished records stay in the trace.
"""
from __future__ import annotations

import time

from ... import _ids
from ..._api.refs import ObjectRef
from ..._trace import tracer
from ..._wire.messages import CallMethod, CreateActor, RunTask, new
from ..._wire.payloads import Payload
from ...exceptions import TaskCancelledError

PENDING, RUNNING, FINISHED, FAILED, CANCELLED = "pending", "running", "finished", "failed", "cancelled"


class CallRecord:
    """One actor call, actor creation or task: what to send, where it ran, how it ended."""

    __slots__ = ("call_id", "kind", "label", "target", "owner", "actor_id", "refs", "context",
                 "args_payload", "deps", "num_returns", "retries_left", "submitted",
                 "started", "finished", "slot", "status", "pid", "conn", "waiting",
                 "exported", "error", "cancel_requested", "max_calls", "nested", "group",
                 "retry_exceptions",
                 "__weakref__")

    def __init__(self, kind, label, target, owner, args_payload, deps, num_returns,
                 context, exported=None, retries=0, max_calls=0, call_id=None):
        self.call_id = call_id or _ids.next_id()
        self.kind = kind                  # "call", "init" or "task"
        self.label = label                # "Class.method" or "function"
        self.target = target              # method name or function id
        self.owner = owner                # ActorState or TaskPool
        self.actor_id = owner.actor_id    # None for tasks
        self.args_payload = args_payload  # a Payload, or (calls) the bytes of one without buffers
        self.deps = deps                  # top-level ObjectRef arguments
        self.num_returns = num_returns
        self.context = context            # output router context of the submitter
        self.exported = exported          # refs and actor tokens pickled in the arguments
        self.retries_left = retries
        self.refs = ()                    # a list of refs, or most calls' one ref itself
        self.submitted = time.monotonic()
        self.started = None
        self.finished = None
        self.slot = None
        self.status = PENDING
        self.pid = None
        self.conn = None
        self.waiting = False
        self.error = None
        self.cancel_requested = False
        self.max_calls = max_calls        # tasks: runs of this function a worker may make
        self.nested = False               # tasks: submitted inside a worker (runs first)
        self.group = None                 # calls: the concurrency group, None: the default
        self.retry_exceptions = False     # True, or exception classes worth another try

    def deps_ready(self) -> bool:
        deps = self.deps
        return not deps or all(d._future.done() for d in deps)

    def failed_dep(self):
        for d in self.deps:
            if d._future.exception() is not None:
                return d._future.exception()
        return None

    def dep_payloads(self) -> tuple:
        deps = self.deps
        return tuple([d._payload for d in deps]) if deps else ()


def send_record(conn, record: CallRecord) -> None:
    deps = record.deps
    if record.exported or deps:
        lent = record.owner.runtime.lent
        if record.exported:
            lent.lend(conn, record.exported)  # refs and handles pickled in the arguments
        for dep in deps:
            if dep._inner:
                lent.lend(conn, dep._inner)   # ... and in the values of ref arguments
    if record.kind == "call" and not deps:
        conn.send_call(record)  # most calls: pending there, the frame made with its run
        return
    record.conn = conn
    record.pid = conn.pid
    conn.pending[record.call_id] = record
    if record.kind == "call":
        args = record.args_payload
        message = new(CallMethod, (record.call_id, record.target,
                                   Payload(args) if type(args) is bytes else args,
                                   record.dep_payloads(), record.num_returns, record.group))
    elif record.kind == "task":
        message = RunTask(record.call_id, record.target, record.args_payload,
                          record.dep_payloads(), record.num_returns, record.label)
    else:  # "init": the target is (class payload, worker options)
        cls_payload, options = record.target
        message = CreateActor(record.call_id, cls_payload, record.args_payload,
                              record.dep_payloads(), options)
    conn.send(message)


def fail_record(record, error: BaseException) -> None:
    if not isinstance(record, CallRecord) or record.status in (FINISHED, FAILED, CANCELLED):
        return
    record.status = CANCELLED if isinstance(error, TaskCancelledError) else FAILED
    record.error = error
    record.finished = record.finished or time.monotonic()
    _count(record)
    for ref in take_refs(record):
        if not ref._future.done():
            ref._future.set_exception(error)
    release_inputs(record)
    tracer.record_finished(record)


def take_refs(record: CallRecord):
    """The record's refs, taken off it (a call with one ref holds the ref itself, no list:
    an object fewer per call for the garbage collector while the call is in flight)."""
    refs = record.refs
    record.refs = ()
    return (refs,) if type(refs) is ObjectRef else refs


def release_inputs(record: CallRecord) -> None:
    """A finished call keeps only its timings: drop what it held for sending."""
    record.args_payload = record.deps = record.exported = None
    record.target = record.target if record.kind != "init" else None


def _count(record: CallRecord) -> None:
    counts = getattr(record.owner, "counts", None)  # actors keep per-status counts
    if counts is not None:
        counts[record.status] += 1
