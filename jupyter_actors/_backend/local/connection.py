"""The driver's end of one worker's socket: framed, thread-safe, non-blocking writes."""
from __future__ import annotations

import collections
import itertools
import socket
import subprocess
import threading
import time
from time import monotonic as _monotonic

from ..._wire import frames
from ..._wire.payloads import Payload

# Frames to one worker closer together than this are written in batches (Connection.send).
BURST = 50e-6
# A run of queued frames this long is written by the thread that queues the next one: a
# thread submitting in a loop holds the GIL, and the I/O thread may not get it for
# milliseconds, while the worker waits for calls it could already be running. Not much
# shorter: each write gives the GIL away, and the I/O thread, busy with results, may
# keep it for a while (measured: 256 beats 64 and 16 for pipelined calls).
RUN = 256


class Connection:
    """The driver's end of one worker's socket, plus the process behind it."""

    def __init__(self, io, proc: subprocess.Popen, sock: socket.socket):
        self.io = io                     # the IOLoop that reads this socket
        self.proc = proc
        self.pid = proc.pid
        self.sock = sock
        self.decoder = frames.FrameDecoder()
        self.lock = threading.Lock()
        self.outbox: collections.deque = collections.deque()
        self.calls: list = []            # call records queued after the outbox, not yet encoded
        self.pending: dict = {}          # call_id -> CallRecord sent to this worker
        self.lent_refs: dict = {}        # ref_id -> times sent, not yet released (objects.Lent)
        self.lent_actors: dict = {}      # actor_id -> likewise
        self.defined: set = set()        # function ids a task worker has
        self.task_runs: dict = {}        # func_id -> calls run (for max_calls)
        self.owner = None
        self.exited = False
        self.returncode = None
        self.pidfd = None
        self.writing = False
        self.put_off = False             # see _queued
        self.last_send = 0.0
        self.waited = False              # a caller read a reply here since the last send
        self.watchers: list = []         # epolls of callers that wait on this socket

    def send(self, message, parts=None) -> None:
        """Write a frame now if the socket takes it; queue the rest for the I/O thread.

        A frame that follows the previous one within ``BURST`` seconds (calls
        submitted in a loop) is queued too: the I/O thread then writes the
        whole run at once, one write and one wake-up of the worker for many
        calls. A lone call goes at once, and so does the first frame after a
        caller waited for a reply here (``get(h.m.remote())`` in a loop,
        however fast its round trips).
        """
        if parts is None:  # (else the caller encoded the frame already; message may be None)
            parts = frames.encode(message)
        with self.lock:
            if self.exited:
                return
            if self._queues():
                self._close_calls()
                # Kept as they are: bytes, or byte views of the payload's own
                # copies of its buffers (made when the call was submitted).
                self.outbox.extend(parts)
                if self.put_off:  # only a run of calls is put off: this goes soon
                    self.put_off = False
                    self.io.call_soon(self.io.watch_writable, self)
                self._queued(False)
                return
            self._write_now(parts)

    def send_call(self, record) -> None:
        """Send a call record without ref arguments (its refs and handles lent already):
        it becomes pending here, then as ``send``. Calls queued one after another are
        kept as their records and written as one frame (``frames.encode_calls``): the
        frame is made once, by whichever thread writes the run, and queuing a call
        makes no object. (Runs on every call: ``_queues`` and ``_queued`` inlined.)"""
        record.conn = self
        record.pid = self.pid
        self.pending[record.call_id] = record
        args = record.args_payload
        group = record.group
        # (frames.call_fields' test, inlined)
        if type(args) is not bytes:  # a Payload (most calls bring the bytes of one)
            if args.buffers or type(args.blob) is not bytes:
                self.send(None, frames.encode_call(record.call_id, record.target, args,
                                                   record.num_returns, group))
                return
            args = record.args_payload = args.blob
        if type(record.target) is not str or type(record.num_returns) is not int \
                or (group is not None and type(group) is not str):
            self.send(None, frames.encode_call(record.call_id, record.target, Payload(args),
                                               record.num_returns, group))
            return
        with self.lock:
            if self.exited:
                return
            now = _monotonic()
            burst = now - self.last_send < BURST and not self.waited
            self.waited = False
            self.last_send = now
            calls = self.calls
            if burst or calls or self.outbox:
                calls.append(record)
                if not self.writing or len(calls) + len(self.outbox) >= RUN:
                    self._queued(True)
                return
            self._write_now([frames.encode_calls([(record.call_id, record.target, args,
                                                   record.num_returns, group)])])

    def _queues(self) -> bool:
        """Whether the frame being sent joins the queue (lock held): frames are queued
        already, or it follows the previous one within BURST and no caller waited for
        a reply here since."""
        now = time.monotonic()
        # (right after a caller waited for a reply here, a call is a lone one)
        burst = now - self.last_send < BURST and not self.waited
        self.waited = False
        self.last_send = now
        return burst or bool(self.outbox) or bool(self.calls)

    def _queued(self, calls: bool) -> None:
        """Something was queued (lock held; ``calls``: a call): a long run is written
        now, the rest by the I/O thread."""
        if len(self.outbox) + len(self.calls) >= RUN:
            self._write_queued()
        if (self.outbox or self.calls) and not self.writing:
            self.writing = True
            # A caller's burst of calls may be written later (burst_wait); one from
            # the I/O thread (calls made in workers) goes when that thread is done.
            self.put_off = calls and threading.get_ident() != self.io.thread.ident
            self.io.queued.add(self)
            self.io.call_soon(self.io.watch_writable, self)

    def _write_now(self, parts) -> None:
        """Write a frame, nothing queued before it (lock held); queue what is left."""
        try:
            sent = self.sock.sendmsg(parts)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            return  # the worker is gone; its exit fails the pending calls
        rest = _remainder(parts, sent)
        if rest:
            self.outbox.extend(rest)
            if not self.writing:
                self.writing = True
                self.put_off = False
                self.io.call_soon(self.io.watch_writable, self)

    def _close_calls(self) -> None:
        """The calls queued so far become one frame at the end of the outbox (lock held)."""
        calls = self.calls
        if calls:
            # (A record finished meanwhile, its arguments let go, is not sent.)
            fields = [(r.call_id, r.target, r.args_payload, r.num_returns, r.group)
                      for r in calls if r.args_payload is not None]
            calls.clear()
            if fields:
                self.outbox.append(frames.encode_calls(fields))

    def burst_wait(self) -> float:
        """Seconds to put off writing the queue while calls keep coming (0: write now)."""
        with self.lock:
            if not self.put_off or not (self.outbox or self.calls) \
                    or len(self.outbox) + len(self.calls) >= RUN:
                return 0.0
            quiet = time.monotonic() - self.last_send
            return BURST - quiet if quiet < BURST else 0.0

    def flush(self) -> bool:
        """Write queued bytes (I/O thread). True when the outbox is empty."""
        with self.lock:
            if not self._write_queued():
                return False
            self.writing = False
            return True

    def _write_queued(self) -> bool:
        """Write queued bytes while the socket takes them (lock held); False if some
        are left for when it is writable again."""
        self._close_calls()
        while self.outbox:
            batch = list(itertools.islice(self.outbox, 64))
            try:
                sent = self.sock.sendmsg(batch)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:
                self.outbox.clear()
                break
            for _ in range(len(batch)):
                head = self.outbox[0]
                if sent >= len(head):
                    sent -= len(head)
                    self.outbox.popleft()
                else:
                    # A view, not a slice: slicing bytes copies the rest, and a big
                    # frame written a socket buffer at a time would be copied over
                    # and over (quadratic in its size).
                    self.outbox[0] = memoryview(head)[sent:]
                    break
        return True


def _remainder(parts: list, sent: int) -> list:
    """Copies of what sendmsg did not write (the caller may reuse its buffers)."""
    rest = []
    for p in parts:
        view = memoryview(p).cast("B")
        if sent >= view.nbytes:
            sent -= view.nbytes
            continue
        rest.append(bytes(view[sent:]))
        sent = 0
    return rest
