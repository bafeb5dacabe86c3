"""How a worker runs calls on threads: a FIFO queue served by max_concurrency threads
(``SyncExecutor``; 1 = submission order), or, for a threaded actor with
max_concurrency 1, whichever thread read the call (``InlineExecutor``), or, with
concurrency groups, a pool per group of threads each woken with its own call
(``PoolExecutor``, ``GroupedExecutor``). With max_concurrency N > 1 and no groups,
see ``reading_pool``.
Remote functions use a SyncExecutor in the main thread, where a cancel can
interrupt them; the driver sends a task worker a few calls ahead, and while a
task waits in ``get`` its worker gives back those it has not started.
"""
from __future__ import annotations

import _thread
import collections
import operator
import queue
import signal
import threading
import time
from pickle import dumps as pickle_dumps
from pickle import loads as pickle_loads
from time import monotonic

from .._wire.messages import (CallCancelled, CallFailed, CallOk, CallsReturned, CallStarted,
                               NotInterrupted, new)
from .._wire.payloads import NONE_PAYLOAD, PROTOCOL
from .calls import _SCALARS, ActorExit, describe_error, encode_returns, load_arguments
from .capture import current_call

_EXIT = object()
_call_id = operator.attrgetter("call_id")


class SyncExecutor:
    """Calls served from one FIFO queue by max_concurrency threads (1 = submission order)."""

    def __init__(self, worker, max_concurrency: int, resolve_target):
        self.worker = worker
        self.max_concurrency = max_concurrency
        self.resolve_target = resolve_target
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.queued: set = set()   # received, not started, not cancelled
        self.running: set = set()
        self.lock = threading.Lock()
        # Remote functions run in the main thread and can be interrupted there;
        # actor calls cannot (their state could be left half-changed).
        self.interruptible = False
        self.interrupt_target = None
        # The call whose own code runs now (a task): a cancel's interrupt is raised only
        # there, never after the call's end is made, where it would lose that end.
        self.in_call = None
        self.waits = 0             # a task worker: its running call waits in get()

    def submit(self, calls) -> None:
        with self.lock:
            if self.waits:
                # A waiting task's worker holds no calls: they could wait on it.
                self.worker.channel.send(CallsReturned(tuple(c.call_id for c in calls)))
                return
            self.queued.update(call.call_id for call in calls)
        for call in calls:
            self.queue.put(call)

    def waiting(self, waits: bool) -> None:
        """A task worker's call starts (or stops) waiting for other calls: give back the
        calls sent ahead that it has not started (they are skipped when reached)."""
        with self.lock:
            self.waits += 1 if waits else -1
            if not waits or not self.queued:
                return
            returned = tuple(self.queued)
            self.queued.clear()
            self.worker.channel.send(CallsReturned(returned))

    def cancel(self, call_id) -> None:
        """Answer at once whether the call was skipped or is running on (or interrupted).

        Only this worker knows whether a call has started, so it tells the
        driver, which then fails the ref with the right reason; a call that
        already ended needs no answer (its result is on its way).
        """
        with self.lock:
            if call_id in self.queued:
                self.queued.discard(call_id)  # so it is skipped when reached
                answer = CallCancelled(call_id, time.monotonic())
            elif call_id not in self.running:
                return
            elif self.interruptible:
                self.interrupt_target = call_id
                _thread.interrupt_main(signal.SIGINT)
                return
            else:
                answer = NotInterrupted(call_id)
        self.worker.channel.send(answer)

    def on_sigint(self, signum, frame) -> None:
        """Raise KeyboardInterrupt in the running call only if that call was cancelled."""
        with self.lock:
            hit = self.interrupt_target is not None and self.interrupt_target == self.in_call
            self.interrupt_target = None
        if hit:
            raise KeyboardInterrupt("cancelled")

    def stop(self) -> None:
        self.queue.put(_EXIT)

    def run(self) -> None:
        threads = [threading.Thread(target=self._serve, args=(slot,), daemon=True,
                                    name=f"actor-slot-{slot}")
                   for slot in range(1, self.max_concurrency)]
        for t in threads:
            t.start()
        self._serve(0)
        for t in threads:
            t.join()

    def _serve(self, slot: int, source: queue.SimpleQueue | None = None) -> None:
        source = source or self.queue
        while True:
            call = source.get()
            if call is _EXIT:
                source.put(_EXIT)  # let the other slots see it too
                return
            self._execute(call, slot)

    def _execute(self, call, slot: int, more: bool = False, start=None) -> None:
        """Run one call unless it was cancelled while queued (``more``: others wait behind it;
        ``start``: when a thread was given to it, if not now)."""
        with self.lock:
            if call.call_id not in self.queued:
                return  # cancelled while queued (cancel() has answered)
            self.queued.discard(call.call_id)
            self.running.add(call.call_id)
        try:
            self._run(call, slot, more, start)
        except KeyboardInterrupt:
            pass  # a cancel that landed just after the call ended
        finally:
            with self.lock:
                self.running.discard(call.call_id)
                if self.interrupt_target == call.call_id:
                    self.interrupt_target = None

    def _run(self, call, slot: int, more: bool = False, start=None) -> None:
        """Announce, run and end a call (``more``: calls wait behind it)."""
        if start is None:
            start = monotonic()
        channel = self.worker.channel
        if self.interruptible:
            # A task's "start" is on its way before it runs: if the worker dies
            # in it, the driver knows which call died and which never started
            # (those are run elsewhere without using up a retry).
            channel.send(new(CallStarted, (call.call_id, start, slot)))
        else:
            channel.started(call.call_id, start, slot)
        outcome, *_values = self._call(call, slot, start)
        # With calls waiting behind this one, its result may ride with theirs
        # (held HOLD seconds at most): one write and one driver wake-up for a run.
        if self.interruptible:
            more = bool(self.queued)  # the next task's "start" takes it along
        self._finish(outcome, more)

    def _call(self, call, slot: int, start: float):
        """Run a ``CallMethod`` or ``RunTask`` (the same shape, see ``calls``) whose start
        is announced: ``(end, args, kwargs, result)``. The end is a ``frames.ok_end``
        tuple (one scalar returned: most calls) or a message; the values are kept by the
        caller until the end is sent, so that refs they held are released after it."""
        worker = self.worker
        call_id, target, payload, deps, num_returns, _ = call
        token = current_call.set(call_id)
        args = kwargs = result = None
        interruptible = self.interruptible
        try:
            if interruptible:
                self.in_call = call_id  # an interrupt from here on fails the call (below)
            if deps or payload.buffers:
                args, kwargs = load_arguments(payload, deps)
            else:
                args, kwargs = pickle_loads(payload.blob)  # most calls: small, no refs
            result = self.resolve_target(target)(*args, **kwargs)
            if num_returns == 1 and type(result) in _SCALARS:
                # Pickled as encode_returns would, sent without a message around it.
                blob = NONE_PAYLOAD.blob if result is None else pickle_dumps(result, PROTOCOL)
                if interruptible:
                    self.in_call = None  # a cancel from now on comes too late
                return (call_id, blob, start, monotonic(), slot), args, kwargs, result
            payloads = encode_returns(result, num_returns, self._label(call))
            if interruptible:
                self.in_call = None
        except (ActorExit, SystemExit) as exc:
            self.in_call = None
            if worker.actor_info is None:  # a remote function: its caller gets the SystemExit
                return CallFailed(call_id, describe_error(exc), start, monotonic(), slot), \
                    args, kwargs, result
            worker.exit_actor(call_id, exc)
        except BaseException as exc:  # reported to the caller, never kills the worker
            self.in_call = None
            return CallFailed(call_id, describe_error(exc), start, monotonic(), slot), \
                args, kwargs, result
        finally:
            current_call.reset(token)
        return new(CallOk, (call_id, payloads, start, monotonic(), slot)), args, kwargs, result

    def _finish(self, outcome, soon: bool, next_start=None) -> None:
        """Send a call's end (``_call``'s outcome; None: no end to send), then
        ``next_start``: ``(call_id, t, slot)`` of the call this thread runs next, if any."""
        worker = self.worker
        if outcome is None:
            if next_start is not None:
                worker.channel.started(*next_start)
            return
        if type(outcome) is tuple:
            worker.finish_end(outcome, soon, next_start)
            return
        worker.finish(outcome, soon)
        if next_start is not None:
            worker.channel.started(*next_start)

    def _label(self, call) -> str:
        """``Class.method`` of an actor's call, the function's name of a task."""
        info = self.worker.actor_info
        return call.label if info is None else f"{info['class_name']}.{call.method}"


class BacklogCalls:
    """``submit``/``stop`` for executors whose own threads take calls off ``self.backlog``."""

    def submit(self, calls) -> None:
        # Called under the read lock, so calls queue in arrival order.
        with self.lock:
            self.queued.update(map(_call_id, calls))
            self.backlog.extend(calls)

    def stop(self) -> None:
        with self.lock:
            self.backlog.append(_EXIT)


class InlineExecutor(BacklogCalls, SyncExecutor):
    """A threaded actor with max_concurrency 1, run by whichever thread read its calls.

    Handing a call from a reader thread to an executor thread costs a thread
    wake-up, about a fifth of a short call's round trip. Here two threads
    take turns (``reading.Reading``): the one waiting for input reads a call
    and runs it, calls that arrive meanwhile queue behind it in arrival
    order, and the other thread, parked, reads while that call waits for the
    driver or runs on (cancels, ref answers, the driver's end of file).
    """

    runs_what_it_reads = True   # its reading threads poll for the next call (channel.Spin)

    def __init__(self, worker, on_exit):
        super().__init__(worker, 1, None)
        self.backlog: collections.deque = collections.deque()
        self.on_exit = on_exit       # called, in the running thread, after "exit"
        self.busy = True             # until the constructor has run (start())

    def start(self, resolve_target) -> None:
        """The instance exists: run what queued while it was being built."""
        self.resolve_target = resolve_target
        with self.lock:
            item = self._next()
        self._drain(item)

    def run_pending(self) -> None:
        """Run queued calls in this thread, unless another thread already does."""
        with self.lock:
            if self.busy or not self.backlog:
                return
            self.busy = True
            item = self._next()
        self._drain(item)

    def _next(self, keep_busy: bool = False):
        """The next call, now running, or _EXIT, or None when nothing is left to run (lock
        held by the thread that runs calls; ``keep_busy``: it still has an end to send)."""
        backlog, queued = self.backlog, self.queued
        while backlog:
            call = backlog.popleft()
            if call is _EXIT:
                return _EXIT
            if call.call_id in queued:
                queued.discard(call.call_id)
                self.running.add(call.call_id)
                return call
            # else: cancelled while queued (cancel() has answered): skipped
        if not keep_busy:
            self.busy = False
        return None

    def _drain(self, item) -> None:
        """Run ``item`` and the calls queued behind it, in this thread.

        The next call is taken before the end of the one before is sent: a run's
        ends are then held to go out together (``Channel.send_end``), each with the
        start of the call after it in the same step. The actor stays busy until the
        last end is sent, so no other thread starts a call before it is out.
        """
        lock, running, channel = self.lock, self.running, self.worker.channel
        start = None
        while item is not None:
            if item is _EXIT:
                self.on_exit()
                return
            call = item
            if start is None:
                start = monotonic()
                channel.started(call.call_id, start, 0)
            try:
                outcome, *values = self._call(call, 0, start)  # values: kept until sent
            except KeyboardInterrupt:
                outcome = None  # raised after the call ended (it is not interruptible)
            with lock:
                running.discard(call.call_id)
                item = self._next(keep_busy=True)
            if item is None or item is _EXIT:
                start = None
                self._finish(outcome, False)
                outcome = values = None  # nothing of the call outlives its end
                if item is None:
                    with lock:  # calls that came meanwhile, or the actor is idle
                        item = self._next()
            else:
                start = monotonic()
                self._finish(outcome, True, (item.call_id, start, 0))
                outcome = values = None  # nothing of the call outlives its end


class _IdleSlot:
    """An idle slot thread's wake-up: its own lock, released with a call in ``call``."""

    __slots__ = ("wake", "call", "since")

    def __init__(self):
        self.wake = threading.Lock()
        self.wake.acquire()
        self.call = None
        self.since = None   # when the call was handed over


class _Lane:
    """The calls of one pool of threads: a FIFO backlog, or the threads waiting for calls."""

    __slots__ = ("backlog", "idle")

    def __init__(self):
        self.backlog: collections.deque = collections.deque()
        self.idle: list = []   # _IdleSlot of threads waiting (only while the backlog is empty)


class PoolExecutor(SyncExecutor):
    """A threaded actor with max_concurrency N > 1 and no groups: N threads.

    A call goes straight to the thread that went idle last, woken by its own
    lock, or waits in a FIFO backlog while all N are busy. (N threads waiting
    on one queue contend for it: several thread wake-ups per call instead of
    one.)
    """

    def __init__(self, worker, max_concurrency: int, resolve_target):
        super().__init__(worker, max_concurrency, resolve_target)
        self.lane = _Lane()
        self.lanes = {None: self.lane}

    def submit(self, calls) -> None:
        with self.lock:
            queued, lanes, default = self.queued, self.lanes, self.lane
            for call in calls:
                queued.add(call.call_id)
                lane = lanes.get(call.group, default)
                if lane.idle:
                    slot = lane.idle.pop()
                    slot.call = call
                    # The call starts when it gets its thread, not when that thread
                    # gets the CPU: calls start in the order they came, as from
                    # one FIFO queue, and a call handed over later cannot look as
                    # if it ran before this one.
                    slot.since = time.monotonic()
                    slot.wake.release()
                else:
                    lane.backlog.append(call)

    def stop(self) -> None:
        with self.lock:
            for lane in self.lanes.values():
                for slot in lane.idle:  # idle: nothing is left to run
                    slot.call = _EXIT
                    slot.wake.release()
                lane.idle.clear()
                lane.backlog.append(_EXIT)  # busy threads see it after the calls before it

    def _serve(self, slot: int, lane: _Lane | None = None) -> None:
        me = _IdleSlot()
        lane = lane or self.lane
        backlog = lane.backlog
        while True:
            since = None
            with self.lock:
                if backlog:
                    call = backlog[0]
                    if call is not _EXIT:  # "exit" stays for the other threads
                        backlog.popleft()
                        since = time.monotonic()  # under the lock: starts in FIFO order
                else:
                    call = None
                    lane.idle.append(me)
            if call is None:
                me.wake.acquire()
                call, since = me.call, me.since
            if call is _EXIT:
                return
            self._execute(call, slot, start=since)


class GroupedExecutor(PoolExecutor):
    """A threaded actor with concurrency groups: a lane (a backlog and threads) per group.

    The default group (methods with no group) has max_concurrency threads, each
    named group its size; a cancel finds a queued call in any group, since all
    share the ``queued`` set. Threads are numbered across groups (the slot a
    call reports), default group first.
    """

    def __init__(self, worker, max_concurrency: int, groups: dict, resolve_target):
        super().__init__(worker, max_concurrency, resolve_target)
        self.sizes = {None: max_concurrency, **groups}
        for name in groups:
            self.lanes[name] = _Lane()

    def run(self) -> None:
        threads = []
        slot = 0
        for name, size in self.sizes.items():
            for _ in range(size):
                if slot:  # slot 0, of the default group, is this thread
                    threads.append(threading.Thread(
                        target=self._serve_group, args=(name, slot), daemon=True,
                        name=f"actor-{name or 'default'}-{slot}"))
                slot += 1
        for t in threads:
            t.start()
        self._serve_group(None, 0)
        for t in threads:
            t.join()

    def _serve_group(self, name, slot: int) -> None:
        # Known per thread, so a blocking get() can tell which group it holds up.
        self.worker.thread_groups[threading.get_ident()] = name
        self._serve(slot, self.lanes[name])
