"""How an async actor runs calls: every method on one event loop in the main thread, at
most max_concurrency in flight, admitted strictly in arrival order (``FifoGate``).

Concurrency groups share the loop: each group has its own gate (the default
group's is sized by max_concurrency), so a full group makes only its own calls
wait.
"""
from __future__ import annotations

import asyncio
import collections
import inspect
import selectors
import threading
import time
import types
from heapq import heappop, heappush
from pickle import dumps as pickle_dumps
from pickle import loads as pickle_loads
from time import monotonic

from .._spin import Spin
from .._wire.messages import CallCancelled, CallFailed, CallMethod, CallOk, new
from .._wire.payloads import NONE_PAYLOAD, PROTOCOL, Payload
from . import calls
from .calls import _SCALARS, ActorExit, describe_error, encode_returns, load_arguments
from .capture import current_call
from .eager_tasks import EagerStarter

_COROUTINE = types.CoroutineType  # what an async def method returns


class _PollFirst(selectors.DefaultSelector):
    """The loop's selector: a wait for input polls a little before it sleeps (Spin)."""

    def __init__(self):
        super().__init__()
        self.spin = Spin()
        self.poll_now = super().select

    def select(self, timeout=None):
        if (timeout is None or timeout > Spin.TIME) and self.spin.due():
            start = monotonic()
            ready = self.spin.poll(self.poll_now)
            if ready:
                return ready
            if timeout is not None:
                timeout = max(timeout - (monotonic() - start), 0)
        return super().select(timeout)


class FifoGate:
    """An asyncio semaphore that admits waiters strictly in arrival order."""

    def __init__(self, size: int):
        self.free = size
        self.waiters: collections.deque = collections.deque()

    async def acquire(self) -> None:
        if self.free > 0 and not self.waiters:
            self.free -= 1
            return
        fut = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # admitted and cancelled at once: pass the place on
            else:
                try:
                    self.waiters.remove(fut)
                except ValueError:
                    pass
            raise

    def release(self) -> None:
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        self.free += 1


class _Cancel:
    """A cancel, queued in line with the calls received around it."""

    __slots__ = ("call_id",)

    def __init__(self, call_id):
        self.call_id = call_id


class AsyncExecutor:
    """Every method of an async actor runs on one event loop in the main thread.

    Calls start as they are taken from the inbox: each call's task runs its first
    step at once (``EagerStarter``), so a call that does not suspend has its
    answer before the next call starts, and the answers of the calls started
    together go out in one write.
    """

    ENDS_PER_WRITE = 256   # a long batch sends its answers in writes of this many

    def __init__(self, worker, max_concurrency: int, groups: dict | None = None):
        self.worker = worker
        self.loop = asyncio.SelectorEventLoop(_PollFirst())
        asyncio.set_event_loop(self.loop)
        self.loop_thread = threading.get_ident()   # run() is called in this thread
        self.gate = FifoGate(max_concurrency)    # the default group's
        self.gates = {None: self.gate}
        for name, size in (groups or {}).items():
            self.gates[name] = FifoGate(size)
        self.free_slots: list = []
        self.next_slot = 0
        self.tasks: dict = {}
        self.cancelled: set = set()
        self.instance = None
        # Calls and cancels received and not acted on yet, in arrival order (readers
        # append under the read lock; the loop takes them): before the instance
        # exists, and between a reading thread's hand-over and the loop's next turn.
        self.inbox: list = []
        self.inbox_lock = threading.Lock()
        self.exiting = False
        self.ends: list = []     # ends of calls that finished in this turn of the loop
        # Their return values until the ends are written: a ref inside one, dropped here
        # meanwhile, would be released before the driver has read the end that holds it.
        self.ends_values: list = []
        self.eager = EagerStarter(self.loop)
        self.started = worker.channel.started
        self.starting = False    # _start_received runs: the ends it makes go out together
        self.cancel_settling = False  # a cancelled task's step is due: calls wait for it

    def set_instance(self, instance) -> None:
        """The constructor has run: calls held until now start, in arrival order."""
        self.instance = instance
        if self.inbox:
            self.loop.call_soon(self._start_received)

    # Called by whoever reads the socket: a thread, or this loop itself. Readers hold
    # the read lock (Reading), so one submit or cancel runs at a time.
    def submit(self, calls) -> None:
        if not self.inbox and threading.get_ident() == self.loop_thread and \
                self.instance is not None and not self.starting and not self.cancel_settling:
            self._start(calls)  # the loop read them and nothing waits ahead: start now
            return
        with self.inbox_lock:
            self.inbox.extend(calls)
        self._take_received()

    def cancel(self, call_id) -> None:
        # In line with the calls: a call read after the cancel starts after it took effect.
        with self.inbox_lock:
            self.inbox.append(_Cancel(call_id))
        self._take_received()

    def _take_received(self) -> None:
        if threading.get_ident() == self.loop_thread:
            # The loop read them: tasks exist now, not a turn of the loop later
            # (what a thread received before is ahead of them in the inbox).
            self._start_received()
        else:
            self.loop.call_soon_threadsafe(self._start_received)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self._stop_when_idle)

    def run(self) -> None:
        self.loop.run_forever()

    # On the loop.
    def _start_received(self) -> None:
        if self.starting or self.cancel_settling:
            # A call started below is reading for itself (a blocking get), or a
            # cancelled task has yet to run its step: what was read waits in the
            # inbox, and is taken, in order, when that is over.
            return
        items = self._take_inbox()
        if items:
            self._start(items)

    def _take_inbox(self) -> list:
        with self.inbox_lock:
            if self.instance is None:
                # The constructor still runs (set_instance starts the calls): only
                # cancels act now, on calls that wait for it.
                items = [item for item in self.inbox if type(item) is _Cancel]
                if items:
                    self.inbox = [item for item in self.inbox if type(item) is not _Cancel]
                return items
            items, self.inbox = self.inbox, []
            return items

    def _start(self, items: list) -> None:
        """Start ``items`` (calls and cancels) in order, then what was read meanwhile;
        the ends of the calls that finish at once go out together."""
        # Inside a task's step (a method reading for itself) no other step may run:
        # the calls start a turn later, as plain tasks.
        start = self.eager.start if asyncio.current_task(self.loop) is None \
            else self.loop.create_task
        self.starting = True
        try:
            while self._start_batch(items, start) and self.inbox:
                items = self._take_inbox()
        finally:
            self.starting = False
        self._send_ends()

    def _start_batch(self, items: list, start) -> bool:
        """Start ``items`` in order; False when a cancel holds the rest back."""
        tasks, run, ends = self.tasks, self._run, self.ends
        for i, item in enumerate(items):
            if type(item) is _Cancel:
                if self._cancel(item.call_id):
                    # What comes after the cancel (in this batch or read later) starts
                    # once the cancelled task has run its step, scheduled already.
                    with self.inbox_lock:
                        self.inbox[:0] = items[i + 1:]
                    self.cancel_settling = True
                    self.loop.call_soon(self._after_cancel)
                    return False
                continue
            call_id = item.call_id
            tasks[call_id] = None  # in flight: a call that ends at once takes it out
            task = start(run(item))
            if not task.done():
                tasks[call_id] = task
            if len(ends) >= self.ENDS_PER_WRITE:
                self._send_ends()  # the driver starts on these while the rest run
                ends = self.ends
        return True

    def _after_cancel(self) -> None:
        self.cancel_settling = False
        self._start_received()

    def _cancel(self, call_id) -> bool:
        """Cancel a call, running or waiting; whether a running task was cancelled."""
        task = self.tasks.get(call_id)
        if task is not None:
            task.cancel()
            # A task cancelled before its first step never enters _run's body: then
            # nothing has answered for it when it ends, and this does.
            task.add_done_callback(lambda _task: self._never_started(call_id))
            return True
        with self.inbox_lock:
            waiting = [c for c in self.inbox if type(c) is CallMethod and c.call_id == call_id]
            if waiting:
                self.inbox.remove(waiting[0])
        if waiting:
            self.worker.finish(CallCancelled(call_id, time.monotonic()))
        return False

    def _never_started(self, call_id) -> None:
        if self.tasks.pop(call_id, None) is not None:
            self.worker.finish(CallCancelled(call_id, time.monotonic()))
            if self.exiting and not self.tasks:
                self._stop()

    def _stop_when_idle(self) -> None:
        self.exiting = True
        if not self.tasks:
            self._stop()

    def _stop(self) -> None:
        self._send_ends()
        self.loop.stop()

    def _new_slot(self) -> int:
        self.next_slot += 1
        return self.next_slot - 1

    def _label(self, method: str) -> str:
        return f"{self.worker.actor_info['class_name']}.{method}"

    async def _run(self, call: CallMethod) -> None:
        call_id, method, payload, deps, num_returns, group = call
        current_call.set(call_id)  # this task's own context
        gate = self.gate if group is None else self.gates[group]
        if gate.free > 0 and not gate.waiters:
            gate.free -= 1  # a free place: taken without a coroutine of its own
        else:
            try:
                await gate.acquire()
            except asyncio.CancelledError:
                self._done(call, CallCancelled(call_id, monotonic()))
                return
        free_slots = self.free_slots
        slot = heappop(free_slots) if free_slots else self._new_slot()
        start = monotonic()
        self.started(call_id, start, slot)
        value = None  # a return value that may hold refs, kept until its end is written
        try:
            if deps or payload.buffers:
                args, kwargs = load_arguments(payload, deps)
            else:
                args, kwargs = pickle_loads(payload.blob)  # most calls: small, no refs
            result = getattr(self.instance, method)(*args, **kwargs)
            if type(result) is _COROUTINE or inspect.isawaitable(result):
                result = await result
            elif num_returns < 0:  # a generator: items go out as it yields them
                result = await calls.stream_producer.run_async(
                    result, num_returns, self._label(method), call_id)
            if num_returns == 1 and type(result) in _SCALARS:
                # What encode_returns makes of a scalar, without its checks.
                payloads = (NONE_PAYLOAD if result is None
                            else Payload(pickle_dumps(result, PROTOCOL)),)
            else:
                payloads = encode_returns(result, num_returns, self._label(method))
        except asyncio.CancelledError:
            message = CallCancelled(call_id, monotonic())
        except (ActorExit, SystemExit) as exc:
            self._send_ends()
            self.worker.exit_actor(call_id, exc)
        except BaseException as exc:
            message = CallFailed(call_id, describe_error(exc), start, monotonic(), slot)
        else:
            message = new(CallOk, (call_id, payloads, start, monotonic(), slot))
            if type(result) not in _SCALARS:
                value = result
        heappush(free_slots, slot)
        if gate.waiters:
            gate.release()
        else:
            gate.free += 1
        self._done(call, message, value)

    def _done(self, call: CallMethod, message, value=None) -> None:
        tasks = self.tasks
        tasks.pop(call.call_id, None)
        if self.starting:
            self.ends.append(message)  # sent with the others started with it
        elif not tasks and not self.ends:
            self.worker.finish(message)  # alone: nothing to wait for
            value = None  # (written: refs in it may be released)
        else:
            # Others may finish in this turn of the loop (1000 sleeps ending together):
            # their ends go out together, in one write, at the start of the next turn.
            if not self.ends:
                self.loop.call_soon(self._send_ends)
            self.ends.append(message)
        if value is not None:
            self.ends_values.append(value)
        if self.exiting and not tasks:
            self._stop()

    def _send_ends(self) -> None:
        ends, self.ends = self.ends, []
        if not ends:
            return
        values, self.ends_values = self.ends_values, []
        self._write_ends(ends)
        del values  # only now: the ends that hold their refs are written

    def _write_ends(self, ends: list) -> None:
        worker = self.worker
        if len(ends) == 1:
            worker.finish(ends[0])
            return
        if worker.nothing_before_ends():
            worker.channel.send_ends(ends)  # one write, one lock
            return
        channel = worker.channel
        channel.cork()
        try:
            for message in ends:
                worker.finish(message)
        finally:
            channel.uncork()
