"""How an async actor runs calls: every method on one event loop in the main thread, at
most max_concurrency in flight, admitted strictly in arrival order (``FifoGate``).

Concurrency groups share the loop: each group has its own gate (the default
group's is sized by max_concurrency), so a full group makes only its own calls
wait.
"""
from __future__ import annotations

import asyncio
import collections
import heapq
import inspect
import threading
import time
import types

from .._wire.messages import CallCancelled, CallFailed, CallOk, new
from . import calls
from .calls import ActorExit, Call, describe_error, encode_returns, load_arguments
from .capture import current_call

_COROUTINE = types.CoroutineType  # what an async def method returns


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
    """Every method of an async actor runs on one event loop in the main thread."""

    def __init__(self, worker, max_concurrency: int, groups: dict | None = None):
        self.worker = worker
        self.loop = asyncio.new_event_loop()
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

    def set_instance(self, instance) -> None:
        """The constructor has run: calls held until now start, in arrival order."""
        self.instance = instance
        if self.inbox:
            self.loop.call_soon(self._start_received)

    # Called by whoever reads the socket: a thread, or this loop itself.
    def submit(self, calls) -> None:
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
        with self.inbox_lock:
            if self.instance is None:
                # The constructor still runs (set_instance starts the calls): only
                # cancels act now, on calls that wait for it.
                items = [item for item in self.inbox if type(item) is _Cancel]
                if items:
                    self.inbox = [item for item in self.inbox if type(item) is not _Cancel]
            else:
                items, self.inbox = self.inbox, []
        tasks, create_task = self.tasks, self.loop.create_task
        for item in items:
            if type(item) is _Cancel:
                self._cancel(item.call_id)
            else:
                tasks[item.call_id] = create_task(self._run(item))

    def _cancel(self, call_id) -> None:
        task = self.tasks.get(call_id)
        if task is not None:
            task.cancel()
            # A task cancelled before its first step never enters _run's body: then
            # nothing has answered for it when it ends, and this does.
            task.add_done_callback(lambda _task: self._never_started(call_id))
            return
        with self.inbox_lock:
            waiting = [c for c in self.inbox if type(c) is Call and c.call_id == call_id]
            if waiting:
                self.inbox.remove(waiting[0])
        if waiting:
            self.worker.finish(CallCancelled(call_id, time.monotonic()))

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

    def _take_slot(self) -> int:
        if self.free_slots:
            return heapq.heappop(self.free_slots)
        self.next_slot += 1
        return self.next_slot - 1

    async def _run(self, call: Call) -> None:
        worker = self.worker
        current_call.set(call.call_id)  # this task's own context
        gate = self.gate if call.group is None else self.gates[call.group]
        if gate.free > 0 and not gate.waiters:
            gate.free -= 1  # a free place: taken without a coroutine of its own
        else:
            try:
                await gate.acquire()
            except asyncio.CancelledError:
                self._done(call, CallCancelled(call.call_id, time.monotonic()))
                return
        slot = self._take_slot()
        start = time.monotonic()
        worker.channel.started(call.call_id, start, slot)
        try:
            args, kwargs = load_arguments(call)
            result = getattr(self.instance, call.target)(*args, **kwargs)
            if type(result) is _COROUTINE or inspect.isawaitable(result):
                result = await result
            elif call.num_returns < 0:  # a generator: items go out as it yields them
                result = await calls.stream_producer.run_async(
                    result, call.num_returns, call.label, call.call_id)
            payloads = encode_returns(result, call.num_returns, call.label)
        except asyncio.CancelledError:
            message = CallCancelled(call.call_id, time.monotonic())
        except (ActorExit, SystemExit) as exc:
            self._send_ends()
            self.worker.exit_actor(call.call_id, exc)
        except BaseException as exc:
            message = CallFailed(call.call_id, describe_error(exc), start, time.monotonic(), slot)
        else:
            message = new(CallOk, (call.call_id, payloads, start, time.monotonic(), slot))
        heapq.heappush(self.free_slots, slot)
        gate.release()
        self._done(call, message)

    def _done(self, call: Call, message) -> None:
        tasks = self.tasks
        tasks.pop(call.call_id, None)
        if not tasks and not self.ends:
            self.worker.finish(message)  # alone: nothing to wait for
        else:
            # Others may finish in this turn of the loop (1000 sleeps ending together):
            # their ends go out together, in one write, at the start of the next turn.
            if not self.ends:
                self.loop.call_soon(self._send_ends)
            self.ends.append(message)
        if self.exiting and not tasks:
            self._stop()

    def _send_ends(self) -> None:
        ends, self.ends = self.ends, []
        if not ends:
            return
        channel = self.worker.channel
        channel.cork()
        try:
            for message in ends:
                self.worker.finish(message)
        finally:
            channel.uncork()
