"""The worker process: one actor, or a slot of the remote-function pool.

Started by the driver as ``python -m jupyter_actors._worker FD PPID`` with its
end of a socketpair inherited as FD. Threads:

    reader thread            main thread (executor)         other threads
    ─────────────            ──────────────────────         ─────────────
    recv frames  ──calls──▶  async actor: event loop,       threaded actor with
    EOF → exit               FIFO gate of max_concurrency   max_concurrency N:
    cancel / ref answers     threaded actor / tasks: a      N-1 more executors
                             queue served in order          on the same queue

Results, output lines and look-ups go back on the same socket under a lock;
each call's output lines are sent before its result.
"""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextvars
import _thread
import ctypes
import heapq
import inspect
import io
import itertools
import os
import queue
import select
import shutil
import signal
import socket
import sys
import threading
import time
import traceback

from . import _protocol, _refs
from ._serialization import (NONE_PAYLOAD, deserialize, deserialize_definition, serialize,
                             set_session_dir)

current_call: contextvars.ContextVar = contextvars.ContextVar("jupyter_actors_call", default=None)

_EXIT = object()


# -- channel ----------------------------------------------------------------

class Channel:
    """The worker's end of the socket: thread-safe sends, one reader.

    ``send_soon`` holds a frame back so that it travels with the next one (a
    short call's "start" and its result then cost one write, and wake the
    driver once). Held frames always go out before any later frame, and the
    reader thread sends them when nothing else did within ``HOLD``: it waits
    for input in polls that end by then (``wait_readable``).
    """

    HOLD = 0.002              # longest a frame is held back, in seconds
    MAX_POLL = 1.0            # the reader's poll when the worker is quiet

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.lock = threading.Lock()
        self.held = bytearray()
        self.poll = self.HOLD
        self.flush_by = float("inf")   # when the reader's current poll ends

    def send(self, message: tuple) -> None:
        parts = _protocol.encode(message)
        with self.lock:
            if self.held:
                parts = [bytes(self.held)] + parts
                self.held.clear()
            _sendmsg_all(self.sock, parts)

    def send_soon(self, message: tuple) -> None:
        """Send ``message`` with the next frame, and within HOLD seconds at the latest."""
        parts = _protocol.encode(message)
        with self.lock:
            if self.flush_by - time.monotonic() <= self.HOLD:
                for p in parts:   # copied: the frame must not change while held
                    self.held += p
                return
        self.send(message)  # the reader is in a long poll: do not hold anything back

    def flush(self) -> None:
        with self.lock:
            if self.held:
                data = bytes(self.held)
                self.held.clear()
                _sendmsg_all(self.sock, [data])

    def wait_readable(self, wait) -> bool:
        """Reader thread: wait for input; send held frames when their time is up.

        ``wait(timeout)`` returns true when the socket is readable. The poll
        grows while the worker is quiet and shrinks again on any activity.
        """
        with self.lock:
            self.flush_by = time.monotonic() + self.poll
        if wait(self.poll):
            self.poll = self.HOLD
            return True
        with self.lock:
            self.flush_by = float("inf")
            if self.held:
                data = bytes(self.held)
                self.held.clear()
                _sendmsg_all(self.sock, [data])
                self.poll = self.HOLD
            else:
                self.poll = min(self.poll * 2, self.MAX_POLL)
        return False


def _sendmsg_all(sock: socket.socket, parts: list) -> None:
    views = [memoryview(p).cast("B") for p in parts]
    while views:
        sent = sock.sendmsg(views)
        while views and sent >= views[0].nbytes:
            sent -= views[0].nbytes
            views.pop(0)
        if sent and views:
            views[0] = views[0][sent:]


# -- output -----------------------------------------------------------------

class CapturedStream(io.TextIOBase):
    """Replaces sys.stdout / sys.stderr: complete lines go to the driver, tagged with their call."""

    def __init__(self, name: str, channel: Channel, original):
        self.name = name
        self._channel = channel
        self._original = original
        self._partial: dict = {}
        self._lock = threading.Lock()

    @property
    def encoding(self):
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._original.fileno()

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        call_id = current_call.get()
        with self._lock:
            pending = self._partial.pop(call_id, "") + text
            head, newline, tail = pending.rpartition("\n")
            if tail:
                self._partial[call_id] = tail
            if newline:
                self._channel.send(("out", call_id, self.name, head + "\n"))
        return len(text)

    def flush_call(self, call_id) -> None:
        """Send what is left of a call's last line, before the call's result."""
        with self._lock:
            tail = self._partial.pop(call_id, None)
            if tail:
                self._channel.send(("out", call_id, self.name, tail + "\n"))


# -- calls ------------------------------------------------------------------

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
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    try:
        payload = serialize(exc.with_traceback(None))
    except Exception:
        payload = None
    return (payload, f"{type(exc).__module__}.{type(exc).__qualname__}", str(exc), text)


class Worker:
    """State shared by the reader thread and the executors."""

    def __init__(self, channel: Channel):
        self.channel = channel
        self.pid = os.getpid()
        self.stdout = CapturedStream("stdout", channel, sys.__stdout__)
        self.stderr = CapturedStream("stderr", channel, sys.__stderr__)
        self.executor = None
        self.lookups: dict = {}
        self._lookup_ids = itertools.count(1)
        self._lookup_lock = threading.Lock()

    # Output of a call is flushed before its result.
    def finish(self, message: tuple) -> None:
        call_id = message[1]
        self.stdout.flush_call(call_id)
        self.stderr.flush_call(call_id)
        self.channel.send(message)

    def lookup(self, ref_id: int) -> concurrent.futures.Future:
        fut: concurrent.futures.Future = concurrent.futures.Future()
        with self._lookup_lock:
            lookup_id = next(self._lookup_ids)
            self.lookups[lookup_id] = fut
        self.channel.send(("lookup", lookup_id, ref_id))
        return fut

    def on_ref_answer(self, lookup_id: int, ok: bool, payload) -> None:
        with self._lookup_lock:
            fut = self.lookups.pop(lookup_id, None)
        if fut is None:
            return
        try:
            value = deserialize(payload)
        except BaseException as exc:
            fut.set_exception(exc)
            return
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)


class SyncExecutor:
    """Calls served from one FIFO queue by max_concurrency threads (1 = submission order)."""

    def __init__(self, worker: Worker, max_concurrency: int, resolve_target):
        self.worker = worker
        self.max_concurrency = max_concurrency
        self.resolve_target = resolve_target
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.cancelled: set = set()
        self.running: set = set()
        self.lock = threading.Lock()
        # Remote functions run in the main thread and can be interrupted there;
        # actor calls cannot (their state could be left half-changed).
        self.interruptible = False
        self.interrupt_target = None

    def submit(self, calls) -> None:
        for call in calls:
            self.queue.put(call)

    def cancel(self, call_id) -> None:
        with self.lock:
            if call_id not in self.running:
                self.cancelled.add(call_id)
            elif self.interruptible:
                self.interrupt_target = call_id
                _thread.interrupt_main(signal.SIGINT)

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
            with self.lock:
                if call.call_id in self.cancelled:
                    self.cancelled.discard(call.call_id)
                    skip = True
                else:
                    self.running.add(call.call_id)
                    skip = False
            if skip:
                self.worker.channel.send(("cancelled", call.call_id, time.monotonic()))
                continue
            try:
                self._run(call, slot)
            except KeyboardInterrupt:
                pass  # a cancel that landed just after the call ended
            finally:
                with self.lock:
                    self.running.discard(call.call_id)
                    if self.interrupt_target == call.call_id:
                        self.interrupt_target = None

    def _run(self, call: Call, slot: int) -> None:
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
        worker.finish(message)


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

    def __init__(self, worker: Worker, max_concurrency: int):
        self.worker = worker
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.gate = FifoGate(max_concurrency)
        self.free_slots: list = []
        self.next_slot = 0
        self.tasks: dict = {}
        self.cancelled: set = set()
        self.instance = None
        self.exiting = False

    # Called from the reader thread.
    def submit(self, calls) -> None:
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


# -- reader -----------------------------------------------------------------

def read_messages(sock: socket.socket, decoder: _protocol.FrameDecoder, early=(),
                  channel: Channel | None = None):
    """Blocking generator of message batches; returns at end of file.

    With ``channel``, waits in polls that let the channel send held frames.
    """
    if early:
        yield list(early)
    wait = None
    if channel is not None:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            wait = lambda timeout: poller.poll(timeout * 1000)  # noqa: E731
        else:
            wait = lambda timeout: select.select([sock], [], [], timeout)[0]  # noqa: E731
    while True:
        if wait is not None and not channel.wait_readable(wait):
            continue
        try:
            batch = decoder.read(sock)
        except OSError:
            return
        if batch is None:
            return
        if batch:
            yield batch


def reader_loop(worker: Worker, sock: socket.socket, decoder: _protocol.FrameDecoder,
                make_call, early) -> None:
    executor = worker.executor
    for batch in read_messages(sock, decoder, early, worker.channel):
        calls = []
        for msg in batch:
            kind = msg[0]
            if kind in ("call", "task"):
                calls.append(make_call(msg))
                continue
            if calls:
                executor.submit(calls)
                calls = []
            if kind == "cancel":
                executor.cancel(msg[1])
            elif kind == "ref":
                worker.on_ref_answer(msg[1], msg[2], msg[3])
            elif kind == "define":
                worker.functions_pending[msg[1]] = msg[2]
            elif kind == "exit":
                executor.stop()
        if calls:
            executor.submit(calls)
    driver_gone()


def driver_gone() -> None:
    """The driver closed the channel or died: leave at once, taking its shared memory with us."""
    session = os.environ.get("JUPYTER_ACTORS_SESSION_DIR")
    if session:
        shutil.rmtree(session, ignore_errors=True)
    os._exit(0)


def die_with_parent(parent_pid: int) -> None:
    """On Linux, ask the kernel to kill us if the driver dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except Exception:
            pass
    if os.getppid() != parent_pid:
        os._exit(0)


# -- roles ------------------------------------------------------------------

def run_actor(worker: Worker, sock, decoder, first: tuple, early: list) -> None:
    _, init_id, cls_payload, init_args, init_deps, options = first
    apply_environment(options)
    name = options["class_name"]
    max_concurrency = options["max_concurrency"]
    if options["is_async"]:
        executor = AsyncExecutor(worker, max_concurrency)
    else:
        executor = SyncExecutor(worker, max_concurrency, None)
    worker.executor = executor

    def make_call(msg):
        _, call_id, method, args_payload, deps, num_returns = msg
        return Call(call_id, method, args_payload, deps, num_returns, f"{name}.{method}")

    threading.Thread(target=reader_loop, args=(worker, sock, decoder, make_call, early),
                     daemon=True, name="reader").start()
    token = current_call.set(init_id)
    try:
        cls = deserialize_definition(cls_payload)
        args, kwargs = load_arguments(Call(init_id, None, init_args, init_deps, 1, name))
        instance = cls(*args, **kwargs)
    except BaseException as exc:
        worker.finish(("init_err", init_id, describe_error(exc)))
        os._exit(0)
    finally:
        current_call.reset(token)
    worker.finish(("init_ok", init_id))
    if options["is_async"]:
        executor.instance = instance
    else:
        executor.resolve_target = lambda method: getattr(instance, method)
    executor.run()
    worker.channel.flush()
    os._exit(0)


def run_tasks(worker: Worker, sock, decoder, first: tuple, early: list) -> None:
    apply_environment(first[1])
    functions: dict = {}
    worker.functions_pending = {}

    def resolve(func_id):
        fn = functions.get(func_id)
        if fn is None:
            fn = functions[func_id] = deserialize_definition(worker.functions_pending.pop(func_id))
        return fn

    executor = SyncExecutor(worker, 1, resolve)
    executor.interruptible = True
    signal.signal(signal.SIGINT, executor.on_sigint)
    worker.executor = executor

    def make_call(msg):
        _, call_id, func_id, args_payload, deps, num_returns, label = msg
        return Call(call_id, func_id, args_payload, deps, num_returns, label)

    threading.Thread(target=reader_loop, args=(worker, sock, decoder, make_call, early),
                     daemon=True, name="reader").start()
    executor.run()
    worker.channel.flush()
    os._exit(0)


def apply_environment(options: dict) -> None:
    """Import from where the driver imports, so classes pickled by reference load here too."""
    for path in reversed(options.get("sys_path", [])):
        if path not in sys.path:
            sys.path.insert(0, path)
    cwd = options.get("cwd")
    if cwd and os.path.isdir(cwd):
        os.chdir(cwd)


def main() -> None:
    fd, parent_pid = int(sys.argv[1]), int(sys.argv[2])
    die_with_parent(parent_pid)
    # The driver handles Ctrl-C; a worker never dies of the kernel's SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    set_session_dir(os.environ.get("JUPYTER_ACTORS_SESSION_DIR"))
    sock = socket.socket(fileno=fd)
    channel = Channel(sock)
    worker = Worker(channel)
    sys.stdout = worker.stdout
    sys.stderr = worker.stderr
    _refs.IN_WORKER = True
    _refs.set_resolver(worker.lookup)
    channel.send(("ready", worker.pid))
    decoder = _protocol.FrameDecoder()
    for batch in read_messages(sock, decoder):
        first, early = batch[0], batch[1:]
        break
    else:
        driver_gone()
    if first[0] == "actor":
        run_actor(worker, sock, decoder, first, early)
    elif first[0] == "tasks":
        run_tasks(worker, sock, decoder, first, early)
    else:
        driver_gone()


if __name__ == "__main__":
    main()
