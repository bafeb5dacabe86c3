"""The worker process: one actor, or a slot of the remote-function pool.

Started by the driver as ``python -m jupyter_actors._worker FD PPID`` with its
end of a socketpair inherited as FD. Threads:

    remote functions,        async actor                    threaded actor,
    threaded actor, N > 1    ───────────                    max_concurrency 1
    ─────────────────────    main thread: the event loop    ─────────────────
    reader thread: frames    reads the socket and runs      two threads that each
    → queue → main thread    every method                   read and run what they
    (+ N-1 threads on it)                                   read, one at a time

Handing each call from a reading thread to a running one costs a thread
wake-up, about a fifth of a short call's round trip, so the two common
actors skip it (see Reading and InlineExecutor). Before an actor's
constructor has run, a reader thread reads for it (the constructor may
get() a ref argument), and in actors a timer thread sends frames held back
too long (Channel.send_soon). A threaded actor with max_concurrency N > 1
keeps the queue: N threads taking calls from one queue pipeline best.

Results, output lines and look-ups go back on the same socket under a lock;
each call's output lines are sent before its result.
"""
from __future__ import annotations

import concurrent.futures
import ctypes
import itertools
import os
import select
import shutil
import signal
import socket
import sys
import threading
import time

from . import _protocol, _refs
from ._capture import CapturedStream, current_call
from ._executors import (AsyncExecutor, Call, InlineExecutor, SyncExecutor, describe_error,
                         load_arguments)
from ._serialization import deserialize, deserialize_definition, set_session_dir


# -- channel ----------------------------------------------------------------

class Channel:
    """The worker's end of the socket: thread-safe sends; reading threads wait through it.

    ``send_soon`` holds a frame back so that it travels with the next one (a
    short call's "start" and its result then cost one write, and wake the
    driver once). Held frames always go out before any later frame, and the
    flushing thread (see Reading) sends them when nothing else did within
    ``HOLD``: its waits end by then (``wait_readable``). A frame is held only
    while that thread's current wait ends within ``HOLD``.
    """

    HOLD = 0.002              # longest a frame is held back, in seconds
    MAX_POLL = 1.0            # the longest wait of a thread watching the socket

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.lock = threading.Lock()
        self.held = bytearray()
        self.poll_ends: dict = {}   # Poller -> when its current poll ends
        self.writes = 0             # counts writes, so a waiting thread sees activity

    def send(self, message: tuple) -> None:
        parts = _protocol.encode(message)
        with self.lock:
            if self.held:
                parts = [bytes(self.held)] + parts
                self.held.clear()
            _sendmsg_all(self.sock, parts)
            self.writes += 1

    def send_soon(self, message: tuple) -> None:
        """Send ``message`` with the next frame, and within HOLD seconds at the latest."""
        parts = _protocol.encode(message)
        with self.lock:
            ends = self.poll_ends
            if ends and min(ends.values()) - time.monotonic() <= self.HOLD:
                for p in parts:   # copied: the frame must not change while held
                    self.held += p
                return
        self.send(message)  # no poll ends soon enough: do not hold anything back

    def flush(self) -> None:
        with self.lock:
            self._send_held()

    def _send_held(self) -> bool:
        """Write the held frames, if any (lock held); whether there were some."""
        if not self.held:
            return False
        data = bytes(self.held)
        self.held.clear()
        _sendmsg_all(self.sock, [data])
        return True

    def wait_readable(self, poller: "Poller") -> bool:
        """Wait for input; send held frames when their time is up.

        True when the socket is readable. The flushing thread's poll grows
        while the worker is quiet (no input, nothing written) and shrinks
        again on any activity; the other threads' polls stay long.
        """
        if not poller.flushes:
            return bool(poller.wait(self.MAX_POLL))
        with self.lock:
            self.poll_ends[poller] = time.monotonic() + poller.timeout
            writes = self.writes
        ready = poller.wait(poller.timeout)
        with self.lock:
            del self.poll_ends[poller]
            if ready:
                poller.timeout = self.HOLD
                return True
            if self._send_held():
                poller.timeout = self.HOLD
            elif self.writes != writes:
                poller.timeout = self.HOLD
            else:
                poller.timeout = min(poller.timeout * 2, self.MAX_POLL)
        return False


class Poller:
    """One thread's wait for input on the worker's socket (``sock=None``: only a timed wait).

    Only a ``flushes`` poller wakes on time to send held-back frames: one
    is enough, and a threaded actor with many threads must not have them
    all waking every HOLD seconds while it is busy.
    """

    def __init__(self, sock: socket.socket | None, flushes: bool):
        self.flushes = flushes
        self.timeout = Channel.HOLD
        if sock is None:
            self.wait = lambda timeout: time.sleep(timeout)  # never "readable"
        elif hasattr(select, "EPOLLEXCLUSIVE"):
            # Linux: input wakes one of the threads waiting, not all of them.
            epoll = select.epoll()
            epoll.register(sock, select.EPOLLIN | select.EPOLLEXCLUSIVE)
            self.wait = lambda timeout: epoll.poll(timeout)
        elif hasattr(select, "poll"):
            poll = select.poll()
            poll.register(sock, select.POLLIN)
            self.wait = lambda timeout: poll.poll(timeout * 1000)
        else:
            self.wait = lambda timeout: select.select([sock], [], [], timeout)[0]


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


# -- calls ------------------------------------------------------------------


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
    def finish(self, message: tuple, soon: bool = False) -> None:
        call_id = message[1]
        self.stdout.flush_call(call_id)
        self.stderr.flush_call(call_id)
        if soon:
            self.channel.send_soon(message)
        else:
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


# -- reader -----------------------------------------------------------------

def first_messages(sock: socket.socket, decoder: _protocol.FrameDecoder) -> list:
    """Block until the driver's first frames arrive (the role, maybe calls); [] at EOF."""
    while True:
        try:
            batch = decoder.read(sock)
        except OSError:
            return []
        if batch is None:
            return []
        if batch:
            return batch


def dispatch(worker: Worker, batch: list, make_call) -> None:
    """Hand one batch of messages, in order, to the executor and the look-ups."""
    executor = worker.executor
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


class Reading:
    """Who reads the worker's socket: threads, or an async actor's loop.

    A lock keeps each batch whole and the batches in order, and reads never
    block, so a reader that lost the race to the input just waits again.
    Held-back frames are sent on time by one thread: the reader of a task
    worker (it never runs calls), a timer thread in an actor (its readers
    run calls, and its loop may be blocked by one).
    """

    def __init__(self, worker: Worker, sock: socket.socket, decoder: _protocol.FrameDecoder,
                 make_call):
        self.worker = worker
        self.sock = sock
        self.decoder = decoder
        self.make_call = make_call
        self.lock = threading.Lock()
        self.loop_reads = False

    def read_once(self) -> None:
        with self.lock:
            try:
                batch = self.decoder.read(self.sock, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                batch = None
            if batch is None:
                driver_gone()
            dispatch(self.worker, batch, self.make_call)

    def start_thread(self, flushes: bool = False) -> None:
        threading.Thread(target=self.thread_loop, args=(flushes,), daemon=True,
                         name="reader").start()

    def start_flusher(self) -> None:
        threading.Thread(target=self.flush_loop, daemon=True, name="flusher").start()

    def thread_loop(self, flushes: bool = False) -> None:
        """Wait and read (and run calls, for an InlineExecutor) until a loop reads instead."""
        run_pending = getattr(self.worker.executor, "run_pending", None)
        if run_pending is not None:
            run_pending()  # calls that queued while the constructor ran
        channel = self.worker.channel
        poller = Poller(self.sock, flushes)
        while not self.loop_reads:
            if channel.wait_readable(poller):
                self.read_once()
                if run_pending is not None:
                    run_pending()

    def flush_loop(self) -> None:
        """Only wake to send frames held back too long: a call that runs long (or
        blocks an async actor's loop) must not keep its "start" from the driver."""
        poller = Poller(None, flushes=True)
        while True:
            self.worker.channel.wait_readable(poller)

    def hand_to_loop(self, loop) -> None:
        """An async actor's loop reads from now on: one thread wake-up less per call.

        The reading thread stops reading after its current wait. While the
        loop runs a blocking method nothing reads, but nothing could be
        served then anyway; on Linux the parent-death signal still ends the
        worker with the driver.
        """
        self.loop_reads = True
        loop.add_reader(self.sock.fileno(), self.read_once)


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
    elif max_concurrency == 1:
        executor = InlineExecutor(worker, on_exit=lambda: exit_after_calls(worker))
    else:
        executor = SyncExecutor(worker, max_concurrency, None)
    worker.executor = executor

    def make_call(msg):
        _, call_id, method, args_payload, deps, num_returns = msg
        return Call(call_id, method, args_payload, deps, num_returns, f"{name}.{method}")

    # A thread reads while the constructor runs (it may get() a ref argument).
    reading = start_reading(worker, sock, decoder, make_call, early, actor=True)
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
        reading.hand_to_loop(executor.loop)
        executor.run()
        exit_after_calls(worker)
    elif isinstance(executor, InlineExecutor):
        executor.start(lambda method: getattr(instance, method))
        # This thread now reads and runs calls too, until "exit" or the driver's EOF.
        reading.thread_loop()
    else:
        executor.resolve_target = lambda method: getattr(instance, method)
        executor.run()
        exit_after_calls(worker)


def run_tasks(worker: Worker, sock, decoder, first: tuple, early: list) -> None:
    apply_environment(first[1])
    functions: dict = {}
    worker.functions_pending = {}

    def resolve(func_id):
        fn = functions.get(func_id)
        if fn is None:
            fn = functions[func_id] = deserialize_definition(worker.functions_pending.pop(func_id))
        return fn

    # Remote functions run in the main thread, where a cancel can interrupt them.
    executor = SyncExecutor(worker, 1, resolve)
    executor.interruptible = True
    signal.signal(signal.SIGINT, executor.on_sigint)
    worker.executor = executor

    def make_call(msg):
        _, call_id, func_id, args_payload, deps, num_returns, label = msg
        return Call(call_id, func_id, args_payload, deps, num_returns, label)

    start_reading(worker, sock, decoder, make_call, early, actor=False)
    executor.run()
    exit_after_calls(worker)


def start_reading(worker: Worker, sock, decoder, make_call, early: list,
                  actor: bool) -> Reading:
    """Dispatch what came with the role, then read on in a thread (and flush in another)."""
    dispatch(worker, early, make_call)
    reading = Reading(worker, sock, decoder, make_call)
    reading.start_thread(flushes=not actor)
    if actor:
        reading.start_flusher()
    return reading


def exit_after_calls(worker: Worker) -> None:
    """The driver's "exit" came after the last call: send what is held back and leave."""
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
    decoder = _protocol.FrameDecoder()
    batch = first_messages(sock, decoder)
    if not batch:
        driver_gone()
    first, early = batch[0], batch[1:]
    if first[0] == "actor":
        run_actor(worker, sock, decoder, first, early)
    elif first[0] == "tasks":
        run_tasks(worker, sock, decoder, first, early)
    else:
        driver_gone()


if __name__ == "__main__":
    main()
