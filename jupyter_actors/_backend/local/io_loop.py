"""The driver's I/O thread: one selector over every worker's socket and exit fd.

    other threads                      I/O thread (this module)
    ─────────────                      ────────────────────────
    call_soon(fn, *args) ──wake-up──▶  run fn(*args)
    Connection.send: a frame that      select() over sockets, pidfds, the wake-up socket
      did not fit, or a burst   ────▶  flush what is queued when the socket is writable
                                       frames in → handlers[type(message)](conn, message)
                                       EOF or an exited pidfd → on_exit(conn), once

A thread blocked in ``get()`` may read its own reply instead (Linux,
``waiting``): whoever reads and handles frames, or runs queued functions, holds
``IOLoop.lock``, so they are still handled one batch at a time and in order.
The I/O thread watches each socket with EPOLLEXCLUSIVE, behind the watches of
the threads that wait on it, so input is handed to a waiting caller alone.

A bug in a handler or a queued function must not stop this thread (every
pending ref would then wait for ever): the record it was handling fails with
an error that says so, and the traceback is logged once per kind of failure.
"""
from __future__ import annotations

import collections
import os
import select
import selectors
import socket
import subprocess
import sys
import threading
import time
import traceback

from ..._api import futures
from ...exceptions import TaskError
from . import waiting

_STOP = object()


def _exclusive_flag() -> int:
    """EPOLLEXCLUSIVE where the kernel takes it (Linux ≥ 4.5), else 0."""
    flag = getattr(select, "EPOLLEXCLUSIVE", 0) if hasattr(select, "epoll") else 0
    if not flag:
        return 0
    try:
        probe = select.epoll()
    except OSError:
        return 0
    a, b = socket.socketpair()
    try:
        probe.register(a, select.EPOLLIN | flag)
    except OSError:
        return 0
    finally:
        probe.close()
        a.close()
        b.close()
    return flag


# Input on a socket wakes one waiter, the first to watch it (see waiting.py).
EXCLUSIVE = _exclusive_flag()


if EXCLUSIVE:
    class _ExclusiveEpollSelector(selectors.EpollSelector):
        """The selector with every watch EPOLLEXCLUSIVE; such a watch cannot be modified,
        only made again (which also puts it last among the socket's watchers)."""

        _EVENT_READ = select.EPOLLIN | EXCLUSIVE
        _EVENT_WRITE = select.EPOLLOUT | EXCLUSIVE

        def modify(self, fileobj, events, data=None):
            self.unregister(fileobj)
            return self.register(fileobj, events, data)


class IOLoop:
    """Reads every worker channel and runs what other threads hand it, on one thread."""

    def __init__(self, handlers: dict, on_exit, fail_call):
        self.handlers = handlers      # message type -> handler(conn, message)
        self.on_exit = on_exit        # on_exit(conn): the worker process ended
        self.fail_call = fail_call    # fail_call(conn, call_id, error): a handler failed
        # Callers read their own replies where the kernel hands input to one watcher.
        # (JUPYTER_ACTORS_CALLERS_READ=0: the I/O thread reads every reply, as elsewhere)
        self.callers_read = bool(EXCLUSIVE) and \
            os.environ.get("JUPYTER_ACTORS_CALLERS_READ", "1") != "0"
        self.selector = (_ExclusiveEpollSelector() if self.callers_read
                         else selectors.DefaultSelector())
        self.lock = threading.Lock()  # held while frames are read and handled (see above)
        if self.callers_read:
            futures.caller_waits = waiting.wait_for_reply
            futures.caller_polls = waiting.poll_for_reply
        futures.before_wait = self.write_later_now
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._calls: collections.deque = collections.deque()
        self._later: list = []        # (when, conn): writes put off while calls keep coming
        self.queued: set = set()      # connections with frames queued (Connection.send)
        self._unlocked: collections.deque = collections.deque()  # (call_soon_unlocked)
        self.unwatched: dict = {}     # conn -> callers reading its socket with our watch off
        self._logged: set = set()
        self.thread = threading.Thread(target=self._loop, name="jupyter_actors-io", daemon=True)
        self.thread.start()

    # -- from any thread -------------------------------------------------------------
    def call_soon(self, fn, *args) -> None:
        self._calls.append((fn, args))
        self._wake()

    def call_soon_unlocked(self, fn, *args) -> None:
        """``call_soon``, but run without the lock: a user's done-callback may block, or
        wait for a reply that a caller has to read (``waiting``)."""
        self._unlocked.append((fn, args))
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # a wake-up is already pending, or we are closing

    def stop(self, timeout: float = 5) -> None:
        if futures.before_wait == self.write_later_now:
            futures.before_wait = None
            futures.caller_polls = None  # (an await of a ref on another backend: no turn)
        self.call_soon(_STOP)
        self.thread.join(timeout)
        self.selector.close()
        self._wake_r.close()
        self._wake_w.close()

    # -- on the I/O thread, or a caller that holds the lock (waiting.py) ------------
    def register(self, conn) -> None:
        if conn.exited:
            return
        self.selector.register(conn.sock, selectors.EVENT_READ, conn)
        if conn.pidfd is not None:
            self.selector.register(conn.pidfd, selectors.EVENT_READ, ("exit", conn))

    def requeue(self, conn) -> None:
        """Watch the socket again, so that this thread's watch comes after those of the
        callers that started waiting on it since (they are then woken first)."""
        try:
            key = self.selector.get_key(conn.sock)
        except (KeyError, ValueError):
            return  # not watched (yet, or any more)
        self.selector.modify(conn.sock, key.events, conn)

    def unwatch(self, conn) -> bool:
        """Stop this thread's watch of ``conn``'s input while a caller reads it itself
        without sleeping in poll() (``waiting``): input would wake this thread instead.
        False (nothing changed) when it waits to write there, or the worker is gone."""
        with self.lock:
            count = self.unwatched.get(conn, 0)
            if not count:
                if conn.exited:
                    return False
                try:
                    key = self.selector.get_key(conn.sock)
                except (KeyError, ValueError):
                    return False
                if key.events != selectors.EVENT_READ:
                    return False
                try:
                    self.selector._selector.unregister(key.fd)
                except OSError:
                    return False
            self.unwatched[conn] = count + 1
            return True

    def rewatch(self, conn) -> None:
        """The caller that called ``unwatch`` is done: watch ``conn`` again (input that
        came meanwhile and is still unread wakes this thread at once)."""
        with self.lock:
            count = self.unwatched.pop(conn, 0) - 1
            if count > 0:
                self.unwatched[conn] = count
                return
            if count < 0 or conn.exited:
                return
            try:
                key = self.selector.get_key(conn.sock)
            except (KeyError, ValueError):
                return
            events = self.selector._EVENT_READ
            if key.events & selectors.EVENT_WRITE:
                events |= self.selector._EVENT_WRITE
            try:
                self.selector._selector.register(key.fd, events)
            except FileExistsError:
                pass  # watched again meanwhile (requeue, watch_writable)

    def watch_writable(self, conn) -> None:
        if conn.exited:
            return
        wait = conn.burst_wait()
        if wait > 0:
            # Calls are still coming: written together a little later, by the
            # caller once RUN are queued or once it waits for a result, not a
            # few at a time now (each write also wakes the worker).
            self._later.append((time.monotonic() + wait, conn))
            return
        if conn.flush():
            self.queued.discard(conn)
        else:
            self.selector.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)

    def closed(self, conn) -> None:
        """The worker is gone: stop watching it and collect its exit status (lock held)."""
        self.queued.discard(conn)
        self.unwatched.pop(conn, None)
        for epoll in conn.watchers:  # callers' watches (waiting.py)
            try:
                epoll.unregister(conn.sock)
            except (OSError, ValueError):
                pass  # that thread ended, or its watch did
        conn.watchers.clear()
        for fileobj in (conn.sock, conn.pidfd):
            if fileobj is not None:
                try:
                    self.selector.unregister(fileobj)
                except (KeyError, ValueError):
                    pass
        try:
            conn.returncode = conn.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            conn.proc.kill()
            conn.returncode = conn.proc.wait()
        conn.sock.close()
        if conn.pidfd is not None:
            os.close(conn.pidfd)

    def _loop(self) -> None:
        selector, lock = self.selector, self.lock
        while True:
            later = self._later
            timeout = None
            if later:
                timeout = max(min(t for t, _ in later) - time.monotonic(), 0)
            ready = selector.select(timeout)
            with lock:
                if later:
                    self._run_later()
                for key, mask in ready:
                    data = key.data
                    if data is None:
                        if not self._run_calls():
                            return
                    elif type(data) is tuple:
                        # The process ended: what it wrote before (a result, a
                        # call's start) is read first.
                        self._read(data[1], until_empty=True)
                        self.on_exit(data[1])
                    else:
                        if mask & selectors.EVENT_READ:
                            self._read(data)
                        if mask & selectors.EVENT_WRITE and not data.exited and data.flush():
                            selector.modify(data.sock, selectors.EVENT_READ, data)
            unlocked = self._unlocked
            while unlocked:
                fn, args = unlocked.popleft()
                try:
                    fn(*args)
                except Exception as exc:  # see the module docstring
                    self._log(f"running {getattr(fn, '__qualname__', fn)}", exc)

    def write_later_now(self) -> None:
        """Write what is queued (from a thread about to wait for a result)."""
        if self.queued:
            for conn in list(self.queued):
                if conn.flush():  # (else the socket is full: the I/O thread goes on)
                    self.queued.discard(conn)

    def _run_later(self) -> None:
        now = time.monotonic()
        due = [conn for t, conn in self._later if t <= now]
        if due:
            self._later = [(t, conn) for t, conn in self._later if t > now]
            for conn in due:
                self.watch_writable(conn)

    def read_here(self, conn, post) -> bool:
        """Read and handle what ``conn`` has, in a caller's thread (``waiting``); the
        done-callbacks of the futures it completes go through ``post``. True when the
        read filled the decoder's buffer: more may wait in the socket."""
        with self.lock:
            if conn.exited:
                return False
            handling = futures.handling
            handling.post = post
            try:
                return self._read_once(conn) and conn.decoder.filled()
            finally:
                handling.post = None

    def _run_calls(self) -> bool:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass
        while self._calls:
            fn, args = self._calls.popleft()
            if fn is _STOP:
                return False
            try:
                fn(*args)
            except Exception as exc:  # see the module docstring
                self._log(f"running {getattr(fn, '__qualname__', fn)}", exc)
        return True

    def _read(self, conn, until_empty: bool = False) -> None:
        while self._read_once(conn) and until_empty and not conn.exited:
            pass

    def _read_once(self, conn) -> bool:
        """Read and handle what the socket has; False when it had nothing (or ended)."""
        try:
            messages = conn.decoder.read(conn.sock)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            messages = None
        except Exception as exc:  # a frame that does not decode: the channel is unusable
            self._log("decoding a frame", exc)
            conn.proc.kill()
            messages = None
        if messages is None:
            self.on_exit(conn)
            return False
        handlers = self.handlers
        for message in messages:
            try:
                handlers[type(message)](conn, message)
            except Exception as exc:  # see the module docstring
                self.handler_failed(conn, message, exc)
        return True

    def handler_failed(self, conn, message, exc: Exception) -> None:
        """A handler raised on ``message``: log it, and fail the call it was about."""
        self._log(f"handling {type(message).__name__}", exc)
        call_id = getattr(message, "call_id", None)
        if call_id is not None:
            error = TaskError(f"jupyter_actors failed while handling the worker's "
                              f"{type(message).__name__} message for this call: "
                              f"{type(exc).__name__}: {exc}")
            error.__cause__ = exc
            self.fail_call(conn, call_id, error)

    def _log(self, what: str, exc: Exception) -> None:
        key = (what, type(exc))
        out = sys.__stderr__
        if out is None:
            return
        if key in self._logged:
            print(f"jupyter_actors: error {what} again: {exc!r}", file=out)
            return
        self._logged.add(key)
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        print(f"jupyter_actors: internal error {what} (the call it concerned failed; "
              f"please report this):\n{text}", file=out)
