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
from ._executors import AsyncExecutor, Call, SyncExecutor, describe_error, load_arguments
from ._serialization import deserialize, deserialize_definition, set_session_dir


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
