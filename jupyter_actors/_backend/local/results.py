"""What the driver does with each message a worker sends (on the I/O thread).

Results complete the call's refs, errors fail them with the remote exception,
output lines go to the output router with the context of the call that
printed them, and look-ups of refs nested in arguments are answered when the
ref is ready.
"""
from __future__ import annotations

import pickle
import time

from ..._api import refs as _refs
from ..._api.futures import RefFuture
from ..._api.refs import ObjectRef
from ..._trace import tracer
from ..._wire import errors
from ..._wire.frames import unpack_oks
from ..._wire.messages import (ActorInitFailed, ActorReady, CallCancelled, CallFailed, CallOk,
                               CallsOk, CallStarted, LookupRef, NotInterrupted, OutputLines,
                               RefAnswer, new)
from ..._wire.payloads import Payload, deserialize, serialize
from ...exceptions import TaskCancelledError, TaskError
from .records import (CANCELLED, FINISHED, PENDING, RUNNING, _count, fail_record, release_inputs,
                      take_refs)


# Every pickled ref or handle names one of these (_rebuild_ref, _rebuild_handle).
_REBUILD = b"_rebuild_"


def _unpickle_error(record, exc: Exception) -> TaskError:
    error = TaskError(f"could not unpickle the result of {record.label}: "
                      f"{type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


def not_started(record) -> TaskCancelledError:
    return TaskCancelledError(f"{record.label} was cancelled before it started.")


def not_interrupted(record) -> TaskCancelledError:
    return TaskCancelledError(f"{record.label} was running; a threaded actor's call is not "
                              "interrupted and runs to its end.")


def interruptible(record) -> bool:
    """Async actor calls and remote functions can be interrupted; threaded actor calls cannot."""
    owner = record.owner
    return owner.actor_id is None or owner.is_async


def _worth_retrying(retry_exceptions, error: BaseException) -> bool:
    if retry_exceptions is True:
        return True
    return isinstance(error, tuple(retry_exceptions))


class ResultHandlers:
    """The handler of every worker → driver message, for the IOLoop's table."""

    def __init__(self, runtime):
        self.runtime = runtime

    def table(self) -> dict:
        return {CallStarted: self.started, CallOk: self.ok, CallsOk: self.oks,
                CallFailed: self.failed,
                CallCancelled: self.cancelled, NotInterrupted: self.not_interrupted,
                OutputLines: self.output, ActorReady: self.actor_ready,
                ActorInitFailed: self.actor_init_failed, LookupRef: self.lookup}

    def fail_call(self, conn, call_id, error: BaseException) -> None:
        """A handler failed on a message about this call: the call fails, nothing hangs."""
        record = self._finish(conn, call_id)
        if record is not None:
            fail_record(record, error)

    def started(self, conn, message: CallStarted) -> None:
        record = conn.pending.get(message.call_id)
        if record is None:
            return
        record.started = message.t
        record.slot = message.slot
        if record.status == PENDING:
            record.status = RUNNING
        tracer.record_started(record)

    def _finish(self, conn, call_id, ended=None):
        record = conn.pending.pop(call_id, None)
        if record is not None:
            # The worker is done with it; the trace keeps the record a while,
            # so it must not keep the worker's connection or the cell alive.
            record.conn = record.context = None
            if ended is not None:  # the worker's times of a call that ran to its end
                unseen = record.started is None
                record.started, record.finished, record.slot = \
                    ended.t_start, ended.t_end, ended.slot
                if unseen and tracer.listeners:
                    # The worker dropped the call's "start" (its end carries the
                    # time): listeners still hear of it, before the end.
                    tracer.record_started(record)
            bars = self.runtime.bars
            if bars.views:  # bars the call left open close with it
                bars.call_ended(conn, call_id)
            if record.kind == "task":
                record.owner.call_done(conn, record)
        return record

    def _ended(self, conn, message):
        """The record of a call that ran to its end (ok or failed), with the worker's times;
        None when there is nothing left to report (unknown, or already cancelled)."""
        record = self._finish(conn, message.call_id, message)
        if record is None:
            return None
        if record.status == CANCELLED:
            tracer.record_finished(record)  # the trace gets the worker's times
            return None
        return record

    def ok(self, conn, message: CallOk) -> None:
        record = self._ended(conn, message)
        if record is None:
            return
        payloads, refs = message.payloads, record.refs
        if len(payloads) == 1 and (type(refs) is ObjectRef or len(refs) == 1):
            payload = payloads[0]
            if _REBUILD not in payload.blob:  # most results: one value, no refs inside
                try:
                    value = (pickle.loads(payload.blob) if not payload.buffers
                             else deserialize(payload))
                except Exception as exc:
                    fail_record(record, _unpickle_error(record, exc))
                    return
                record.status = FINISHED
                _count(record)
                record.refs = ()
                release_inputs(record)
                tracer.record_finished(record)
                ref = refs if type(refs) is ObjectRef else refs[0]
                ref._payload = payload  # (ref._inner stays None: the value holds no refs)
                future = ref._future
                if not future.done():  # last: see _ok_many
                    future.set_result(value)
                return
        self._ok_many(record, payloads)

    def oks(self, conn, message: CallsOk) -> None:
        """A run of calls that each returned one plain value: ``ok`` for each, with the
        common case (one ref, no refs inside, nothing else to close) done here."""
        pending = conn.pending
        views = self.runtime.bars.views
        owner = conn.owner
        counts = getattr(owner, "counts", None)  # (an actor's per-status counts)
        # The trace records the run's calls in one step after the loop, unless someone
        # listens: then each call's end is told before its ref is set, as in ``ok``. One
        # answer for the whole run (a listener added by a done-callback meanwhile hears
        # the rest of the run after the loop), and a call that takes ``ok``'s way has the
        # calls before it recorded first: the trace keeps the run's order.
        ended: list = []
        listening = bool(tracer.listeners)
        finished = tracer.record_finished if listening else ended.append
        numbers = unpack_oks(message)
        blobs = message.blobs
        call_ids, starts, finishes, slots = numbers
        for call_id, blob, t_start, t_end, slot in zip(call_ids, blobs, starts, finishes, slots):
            record = pending.get(call_id)
            try:
                if record is None or views or record.status == CANCELLED \
                        or record.kind == "init" or _REBUILD in blob \
                        or (type(record.refs) is not ObjectRef and len(record.refs) != 1) \
                        or (record.started is None and listening):
                    if ended:
                        tracer.record_run_finished(ended.copy(), None)
                        ended.clear()
                    self.ok(conn, new(CallOk, (call_id, (Payload(blob),), t_start, t_end, slot)))
                    continue
                # _finish and ok, for this case.
                del pending[call_id]
                record.conn = record.context = None
                record.started, record.finished, record.slot = t_start, t_end, slot
                if record.kind == "task":
                    record.owner.call_done(conn, record)
                try:
                    value = pickle.loads(blob)
                except Exception as exc:
                    fail_record(record, _unpickle_error(record, exc))
                    continue
                record.status = FINISHED
                if record.owner is not owner:
                    _count(record)
                elif counts is not None:
                    counts[FINISHED] += 1
                ref = record.refs
                if type(ref) is not ObjectRef:
                    ref = ref[0]
                record.refs = ()
                record.args_payload = record.deps = record.exported = None  # release_inputs
                finished(record)
                ref._serialized = blob  # (its Payload is made if ever needed)
                future = ref._future
                # Last: see _ok_many. (set_result unless done already: one call.)
                if type(future) is RefFuture:
                    future._settle(value, None)
                elif not future.done():
                    future.set_result(value)
            except Exception as exc:  # this call fails; the others in the run go on
                self.runtime.io.handler_failed(
                    conn, new(CallOk, (call_id, (), t_start, t_end, slot)), exc)
        if ended:
            # (The run's numbers line up with its calls when each took the path above.)
            tracer.record_run_finished(
                ended, numbers if len(ended) == len(blobs) else None)

    def _ok_many(self, record, payloads) -> None:
        """``ok`` for several values, or values holding refs or handles."""
        values = []
        inners = []
        for payload in payloads:
            # Note the refs and handles a result holds (they pickle by those two
            # names; most results hold none, and skip the bookkeeping).
            capture = _REBUILD in payload.blob
            previous = _refs.start_capture() if capture else None
            try:
                values.append(deserialize(payload))
            except Exception as exc:
                fail_record(record, _unpickle_error(record, exc))
                return
            finally:
                inners.append(_refs.stop_capture(previous) if capture else None)
        record.status = FINISHED
        _count(record)
        refs = take_refs(record)
        release_inputs(record)
        tracer.record_finished(record)
        # Last: a caller blocked in get() wakes here, and should find this
        # thread about to let go of the interpreter, not still busy.
        for ref, payload, value, inner in zip(refs, payloads, values, inners):
            ref._payload = payload
            ref._inner = inner or None
            if not ref._future.done():
                ref._future.set_result(value)

    def failed(self, conn, message: CallFailed) -> None:
        record = conn.pending.get(message.call_id)
        context = record.context if record is not None else None
        record = self._ended(conn, message)
        if record is None:
            return
        remote = errors.remote_exception(message.error, record.label, conn.pid)
        if record.retry_exceptions and record.retries_left > 0 and not record.cancel_requested \
                and _worth_retrying(record.retry_exceptions, remote) \
                and not self.runtime.stopping:
            # retry_exceptions: the call goes again, as after a crash (the last error stays).
            record.retries_left -= 1
            record.context = context
            record.owner.run_again(record)
            return
        if record.cancel_requested and interruptible(record):
            # The interrupt surfaced as an exception.
            cancelled = TaskCancelledError(f"{record.label} was interrupted while running.")
            cancelled.__cause__ = remote
            fail_record(record, cancelled)
            return
        fail_record(record, remote)

    def cancelled(self, conn, message: CallCancelled) -> None:
        record = self._finish(conn, message.call_id)
        if record is None:
            return
        record.finished = message.t_end
        if record.status == CANCELLED:
            tracer.record_finished(record)
        elif record.started is None:
            fail_record(record, not_started(record))
        else:
            fail_record(record, TaskCancelledError(
                f"{record.label} was interrupted while running."))

    def not_interrupted(self, conn, message: NotInterrupted) -> None:
        """A threaded actor's call was running when cancelled: it runs on, its ref fails now."""
        record = conn.pending.get(message.call_id)
        if record is not None:
            fail_record(record, not_interrupted(record))

    def output(self, conn, message: OutputLines) -> None:
        runtime = self.runtime
        if not runtime.log_to_driver:
            return
        record = conn.pending.get(message.call_id)
        context = record.context if record is not None else None
        owner = conn.owner
        if owner is not None and owner.actor_id is not None:
            name = owner.class_name
        elif record is not None:
            name = record.label
        else:
            name = "worker"
        runtime.router.write(context, message.stream, f"({name} pid={conn.pid})", message.text)

    def actor_ready(self, conn, message: ActorReady) -> None:
        record = conn.pending.pop(message.call_id, None)
        if record is not None:
            record.status = FINISHED
            record.finished = time.monotonic()
            for ref in take_refs(record):
                ref._future.set_result(None)
            release_inputs(record)
            tracer.record_finished(record)  # else it stays in tracer.active for ever

    def actor_init_failed(self, conn, message: ActorInitFailed) -> None:
        actor = conn.owner
        record = conn.pending.pop(message.call_id, None)
        cause = errors.remote_exception(message.error, f"{actor.class_name}.__init__", conn.pid)
        actor.death_cause = cause
        type_name, text = message.error[1], message.error[2]
        short = type_name.rsplit(".", 1)[-1]
        actor.death_summary = f"{short}: {text}" if text else short
        if record is not None:
            fail_record(record, cause)
        # The worker exits next; its exit fails the other calls with ActorDiedError.

    def lookup(self, conn, message: LookupRef) -> None:
        ref_id = message.ref_id
        ref = self.runtime.lent.get(ref_id)
        if ref is None:
            error = serialize(KeyError(f"ObjectRef {ref_id:032x} is not known to the driver"))
            conn.send(RefAnswer(ref_id, False, error))
            return
        self.send_value_when_ready(conn, ref)

    def send_value_when_ready(self, conn, ref) -> None:
        """Send the ref's value (or error) to this worker once it is known."""
        lent = self.runtime.lent

        def answer(fut):
            exc = fut.exception()
            if exc is None:
                lent.lend_with_value(conn, ref)
                conn.send(RefAnswer(ref._id, True, ref._payload))
            else:
                try:
                    payload = serialize(exc)
                except Exception:
                    payload = serialize(TaskError(str(exc)))
                conn.send(RefAnswer(ref._id, False, payload))
        ref._future.add_done_callback(answer)
