"""How a worker runs calls: a FIFO queue served by threads, or one event loop.

Threaded actors and remote functions use ``SyncExecutor`` (max_concurrency
threads on one queue; 1 = submission order). Async actors use
``AsyncExecutor``: every method on one loop, at most max_concurrency calls in
flight, admitted strictly in arrival order.
"""
from __future__ import annotations

import _thread
import asyncio
import collections
import heapq
import inspect
import os
import queue
import signal
import threading
import time
import traceback

from . import _refs
from ._capture import current_call
from ._serialization import NONE_PAYLOAD, deserialize, serialize

# Frames of the worker's own machinery, left out of the tracebacks users see.
_OWN_FILES = {os.path.join(os.path.dirname(__file__), name)
              for name in ("_executors.py", "_worker.py")}

_EXIT = object()


class Call:
    __slots__ = ("call_id", "target", "args_payload", "deps", "num_returns", "label")

    def __init__(self, call_id, target, args_payload, deps, num_returns, label):
        self.call_id = call_id
        self.target = target            # method name, or function id for tasks
        self.args_payload = args_payload
        self.deps = deps
        self.num_returns = num_returns
        self.label = label


def load_arguments(call: Call):
    args, kwargs = deserialize(call.args_payload)
    if call.deps:
        values = [deserialize(p) for p in call.deps]
        args = tuple(values[a.index] if isinstance(a, _refs.DepArg) else a for a in args)
        kwargs = {k: values[v.index] if isinstance(v, _refs.DepArg) else v
                  for k, v in kwargs.items()}
    return args, kwargs


def encode_returns(value, num_returns: int, label: str) -> tuple:
    try:
        if num_returns == 1:
            return (NONE_PAYLOAD if value is None else serialize(value, handoff=True),)
        if num_returns == 0:
            return ()
        values = tuple(value)
        if len(values) != num_returns:
            raise ValueError(f"{label} declares num_returns={num_returns} "
                             f"but returned {len(values)} values")
        return tuple(serialize(v, handoff=True) for v in values)
    except ValueError:
        raise
    except Exception as exc:
        raise ReturnValueError(
            f"could not pickle the return value of {label}: {type(exc).__name__}: {exc}") from exc


class ReturnValueError(TypeError):
    """The call ran, but what it returned cannot be sent back."""


def describe_error(exc: BaseException) -> tuple:
    tb = exc.__traceback__
    # Drop this module's own frames: the user wants to see their code.
    while tb is not None and tb.tb_frame.f_code.co_filename in _OWN_FILES:
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    try:
        payload = serialize(exc.with_traceback(None))
    except Exception:
        payload = None
    return (payload, f"{type(exc).__module__}.{type(exc).__qualname__}", str(exc), text)


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

    def submit(self, calls) -> None:
        with self.lock:
            self.queued.update(call.call_id for call in calls)
        for call in calls:
            self.queue.put(call)

    def cancel(self, call_id) -> None:
        """Answer at once whether the call was skipped or is running on (or interrupted).

        Only this worker knows whether a call has started, so it tells the
        driver, which then fails the ref with the right reason; a call that
        already ended needs no answer (its result is on its way).
        """
        with self.lock:
            if call_id in self.queued:
                self.queued.discard(call_id)  # so it is skipped when reached
                answer = ("cancelled", call_id, time.monotonic())
            elif call_id not in self.running:
                return
            elif self.interruptible:
                self.interrupt_target = call_id
                _thread.interrupt_main(signal.SIGINT)
                return
            else:
                answer = ("not_interrupted", call_id)
        self.worker.channel.send(answer)

    def on_sigint(self, signum, frame) -> None:
        """Raise KeyboardInterrupt in the running call only if that call was cancelled."""
        with self.lock:
            hit = self.interrupt_target is not None and self.interrupt_target in self.running
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

    def _serve(self, slot: int) -> None:
        while True:
            call = self.queue.get()
            if call is _EXIT:
                self.queue.put(_EXIT)  # let the other slots see it too
                return
            self._execute(call, slot)

    def _execute(self, call: Call, slot: int, more: bool = False) -> None:
        """Run one call unless it was cancelled while queued (``more``: others wait behind it)."""
        with self.lock:
            if call.call_id not in self.queued:
                return  # cancelled while queued (cancel() has answered)
            self.queued.discard(call.call_id)
            self.running.add(call.call_id)
        try:
            self._run(call, slot, more)
        except KeyboardInterrupt:
            pass  # a cancel that landed just after the call ended
        finally:
            with self.lock:
                self.running.discard(call.call_id)
                if self.interrupt_target == call.call_id:
                    self.interrupt_target = None

    def _run(self, call: Call, slot: int, more: bool = False) -> None:
        worker = self.worker
        token = current_call.set(call.call_id)
        start = time.monotonic()
        worker.channel.send_soon(("start", call.call_id, start, slot))
        try:
            args, kwargs = load_arguments(call)
            result = self.resolve_target(call.target)(*args, **kwargs)
            payloads = encode_returns(result, call.num_returns, call.label)
        except BaseException as exc:  # reported to the caller, never kills the worker
            message = ("err", call.call_id, describe_error(exc), start, time.monotonic(), slot)
        else:
            message = ("ok", call.call_id, payloads, start, time.monotonic(), slot)
        finally:
            current_call.reset(token)
        # With calls waiting behind this one, its result may ride with theirs
        # (held HOLD seconds at most): one write and one driver wake-up for a run.
        worker.finish(message, soon=more)


class InlineExecutor(SyncExecutor):
    """A threaded actor with max_concurrency 1, run by whichever thread read its calls.

    Handing a call from a reader thread to an executor thread costs a thread
    wake-up, about a fifth of a short call's round trip. Here two threads
    both wait for input (``_worker.Reading``);
    the one that reads a call runs it, calls that arrive meanwhile queue
    behind it in arrival order, and the other thread goes on reading
    (cancels, ref answers, the driver's end of file).
    """

    def __init__(self, worker, on_exit):
        super().__init__(worker, 1, None)
        self.pending: collections.deque = collections.deque()
        self.on_exit = on_exit       # called, in the running thread, after "exit"
        self.busy = True             # until the constructor has run (start())

    def submit(self, calls) -> None:
        # Called under the read lock, so calls queue in arrival order.
        with self.lock:
            self.queued.update(call.call_id for call in calls)
            self.pending.extend(calls)

    def stop(self) -> None:
        with self.lock:
            self.pending.append(_EXIT)

    def start(self, resolve_target) -> None:
        """The instance exists: run what queued while it was being built."""
        self.resolve_target = resolve_target
        self._drain()

    def run_pending(self) -> None:
        """Run queued calls in this thread, unless another thread already does."""
        with self.lock:
            if self.busy or not self.pending:
                return
            self.busy = True
        self._drain()

    def _drain(self) -> None:
        while True:
            with self.lock:
                if not self.pending:
                    self.busy = False
                    return
                call = self.pending.popleft()
                more = bool(self.pending)
            if call is _EXIT:
                self.on_exit()
                return
            self._execute(call, 0, more)


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


class AsyncExecutor:
    """Every method of an async actor runs on one event loop in the main thread."""

    def __init__(self, worker, max_concurrency: int):
        self.worker = worker
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop_thread = threading.get_ident()   # run() is called in this thread
        self.gate = FifoGate(max_concurrency)
        self.free_slots: list = []
        self.next_slot = 0
        self.tasks: dict = {}
        self.cancelled: set = set()
        self.instance = None
        self.exiting = False

    # Called by whoever reads the socket: a thread, or this loop itself.
    def submit(self, calls) -> None:
        if threading.get_ident() == self.loop_thread:
            self.loop.call_soon(self._start_all, calls)  # no self-wake needed
        else:
            self.loop.call_soon_threadsafe(self._start_all, calls)

    def cancel(self, call_id) -> None:
        self.loop.call_soon_threadsafe(self._cancel, call_id)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self._stop_when_idle)

    def run(self) -> None:
        self.loop.run_forever()

    # On the loop.
    def _start_all(self, calls) -> None:
        for call in calls:
            self.tasks[call.call_id] = self.loop.create_task(self._run(call))

    def _cancel(self, call_id) -> None:
        task = self.tasks.get(call_id)
        if task is not None:
            task.cancel()

    def _stop_when_idle(self) -> None:
        self.exiting = True
        if not self.tasks:
            self.loop.stop()

    def _take_slot(self) -> int:
        if self.free_slots:
            return heapq.heappop(self.free_slots)
        self.next_slot += 1
        return self.next_slot - 1

    async def _run(self, call: Call) -> None:
        worker = self.worker
        current_call.set(call.call_id)  # this task's own context
        try:
            await self.gate.acquire()
        except asyncio.CancelledError:
            self._done(call, ("cancelled", call.call_id, time.monotonic()))
            return
        slot = self._take_slot()
        start = time.monotonic()
        worker.channel.send_soon(("start", call.call_id, start, slot))
        try:
            args, kwargs = load_arguments(call)
            result = getattr(self.instance, call.target)(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            payloads = encode_returns(result, call.num_returns, call.label)
        except asyncio.CancelledError:
            message = ("cancelled", call.call_id, time.monotonic())
        except BaseException as exc:
            message = ("err", call.call_id, describe_error(exc), start, time.monotonic(), slot)
        else:
            message = ("ok", call.call_id, payloads, start, time.monotonic(), slot)
        heapq.heappush(self.free_slots, slot)
        self.gate.release()
        self._done(call, message)

    def _done(self, call: Call, message: tuple) -> None:
        self.tasks.pop(call.call_id, None)
        self.worker.finish(message)
        if self.exiting and not self.tasks:
            self.loop.stop()
