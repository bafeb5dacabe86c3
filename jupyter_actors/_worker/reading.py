"""Reading the worker's socket: batches of messages, in order, to the executor and look-ups.

Who reads: threads, or an async actor's own event loop once its constructor
has run (one thread wake-up less per call). In a threaded actor without
concurrency groups the thread that reads a call also runs it: with
max_concurrency 1 the reading thread started here is one of two such threads
(InlineExecutor); with N > 1 the actor's N threads read for themselves and
this one reads only while all of them are busy (ReadingPoolExecutor).
"""
from __future__ import annotations

import collections
import os
import socket
import threading

from .._wire import frames
from .._wire.messages import (CallMethod, CancelCall, DefineFunction, ExitWhenDone,
                               ItemsConsumed, RefAnswer, Reply, RunTask, StreamItem)
from .._spin import Spin
from .channel import Poller, readers_epoll


def first_messages(sock: socket.socket, decoder: frames.FrameDecoder) -> list:
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


_CALLS = frozenset({CallMethod, RunTask})


def dispatch(worker, pending: collections.deque) -> None:
    """Hand the messages of ``pending``, in order, to the executor and the look-ups.

    They are taken off the front one by one: an async actor starts a call in
    this turn, and a call that then waits for the driver (and so reads and
    dispatches for itself, Worker.wait_reading) first handles what is left of
    this batch, so nothing is handled out of order.
    """
    executor = worker.executor
    calls = []
    while pending:
        msg = pending[0]
        kind = type(msg)
        if kind is CallMethod or kind is RunTask:
            pending.popleft()
            calls.append(msg)  # the executor runs the message itself
            continue
        if calls:
            executor.submit(calls)
            calls = []
            continue  # a call that read for itself may have handled ``msg`` already
        pending.popleft()
        if kind is CancelCall:
            executor.cancel(msg.call_id)
        elif kind is RefAnswer:
            worker.client.on_ref_answer(msg.ref_id, msg.ok, msg.payload)
        elif kind is Reply:
            worker.client.on_reply(msg.request_id, msg.ok, msg.payload)
        elif kind is DefineFunction:
            worker.functions_pending[msg.func_id] = msg.function_payload
        elif kind is ExitWhenDone:
            executor.stop()
        elif kind is StreamItem:
            worker.client.on_stream_item(msg.call_id, msg.ref_id, msg.payload)
        elif kind is ItemsConsumed:
            worker.producer.on_consumed(msg.call_id, msg.count)
    if calls:
        executor.submit(calls)


class Reading:
    """Who reads the worker's socket: threads, or an async actor's loop.

    A lock keeps each batch whole and the batches in order, and reads never
    block, so a reader that lost the race to the input just waits again.
    Held-back frames are sent on time by one thread: the reader of a task
    worker (it never runs calls), a timer thread in an actor (its readers
    run calls, and its loop may be blocked by one).

    Of the two threads of an actor that runs what it reads (InlineExecutor),
    one waits for input (it has the seat, ``_sit``) and the other is parked:
    both waiting would wake both for each frame, or the parked one while the
    other polls for it (``Spin``). The one that reads a call runs it, and
    leaves the seat empty meanwhile; the parked thread takes the seat when a
    call waits for the driver (``want_reader``), or when a call still runs
    as the timer thread wakes (within ``Channel.HOLD`` of its start: its
    "start" is held or nudges that thread), so a cancel or a ref's value is
    read while a call runs; short calls cost no thread wake-up.
    """

    def __init__(self, worker, sock: socket.socket, decoder: frames.FrameDecoder):
        self.worker = worker
        self.sock = sock
        self.decoder = decoder
        self.lock = threading.Lock()
        self.loop_reads = False
        self.loop_pending: collections.deque = collections.deque()  # read by the loop, not handled yet
        self.epoll = readers_epoll(sock)   # the reading threads wait on it (None: each polls)
        self.seat_lock = threading.Lock()
        self.seat_taken = False   # a thread waits for input, or reads (see the class's text)
        self.parked = None        # the wake-up lock of the thread parked meanwhile

    def read_once(self) -> None:
        """A thread reads: the lock is held until the batch is handed on, so batches
        read by different threads are handled in the order they came."""
        with self.lock:
            if self.loop_reads:
                return  # the loop reads now (a reading thread on its way out)
            batch = self._read()
            if batch:
                if set(map(type, batch)) <= _CALLS:  # most batches: only calls
                    self.worker.executor.submit(batch)
                else:
                    dispatch(self.worker, collections.deque(batch))

    def loop_read_once(self) -> None:
        """An async actor's loop reads (the only reader now). It hands the batch on
        outside the lock: a call it starts may block the loop, or read for itself."""
        with self.lock:
            batch = self._read()
        pending = self.loop_pending
        if batch:
            pending.extend(batch)
        if pending:
            dispatch(self.worker, pending)

    def _read(self) -> list:
        """What the socket holds, all of it: input is edge-triggered (``readers_epoll``),
        so what a full buffer left would wake nobody."""
        decoder, sock = self.decoder, self.sock
        batch = []
        try:
            while True:
                more = decoder.read(sock, socket.MSG_DONTWAIT)
                if more is None:
                    break
                batch += more
                if not decoder.filled():
                    return batch
        except (BlockingIOError, InterruptedError):
            return batch
        except OSError:
            pass
        driver_gone()

    def start_thread(self, flushes: bool = False) -> None:
        threading.Thread(target=self.thread_loop, args=(flushes,), daemon=True,
                         name="reader").start()

    def start_flusher(self) -> None:
        threading.Thread(target=self.flush_loop, daemon=True, name="flusher").start()

    def thread_loop(self, flushes: bool = False) -> None:
        """Wait and read until a loop reads instead; after each read the executor's
        ``run_pending`` runs calls in this thread (InlineExecutor) or makes it wait
        while the actor's own threads read (ReadingPoolExecutor)."""
        run_pending = getattr(self.worker.executor, "run_pending", None)
        if run_pending is not None:
            run_pending()  # calls that queued while the constructor ran
        channel = self.worker.channel
        poller = Poller(self.sock, flushes, self.epoll)
        client = self.worker.client
        seats = getattr(self.worker.executor, "runs_what_it_reads", False)
        # A thread that runs the calls it reads polls a little for the next one first.
        spin = Spin() if seats and self.epoll is not None else None
        seated = False
        while not self.loop_reads:
            if seats and not seated:
                self._sit()
                seated = True
            if (spin is not None and spin.due() and spin.poll(self.epoll.poll)) \
                    or channel.wait_readable(poller):
                self.read_once()
                if seats:
                    with self.seat_lock:  # run_pending may run calls in this thread
                        self.seat_taken = False
                    seated = False
                if run_pending is not None:
                    run_pending()
            elif flushes:
                client.flush_releases()

    def _sit(self) -> None:
        """Take the seat, or park until ``want_reader`` gives it to this thread."""
        with self.seat_lock:
            if not self.seat_taken:
                self.seat_taken = True
                return
            wake = self.parked = threading.Lock()
            wake.acquire()
        wake.acquire()

    def want_reader(self) -> None:
        """A call waits for the driver, or runs on: the parked thread (if any) reads now."""
        promote = getattr(self.worker.executor, "want_reader", None)
        if promote is not None:
            promote()  # a ReadingPoolExecutor's
            return
        with self.seat_lock:
            wake = self.parked
            if wake is None or self.seat_taken:
                return
            self.parked = None
            self.seat_taken = True
        wake.release()

    def flush_loop(self) -> None:
        """Only wake to send frames held back too long: a call that runs long (or
        blocks an async actor's loop) must not keep its "start" from the driver."""
        poller = Poller(None, flushes=True)
        client = self.worker.client
        channel = self.worker.channel
        executor = self.worker.executor
        # Threads that read only while no call runs (see the class's text, and reading_pool).
        seats = getattr(executor, "runs_what_it_reads", False) or hasattr(executor, "want_reader")
        while True:
            if seats and self._reader_missing():
                # A call runs and nobody reads: this wait ends within HOLD, and if the
                # call still runs then, a parked thread reads for it.
                poller.timeout = min(poller.timeout, channel.HOLD)
            channel.wait_readable(poller)
            client.flush_releases()  # refs and handles dropped while nothing else was sent
            if seats and self._reader_missing():
                self.want_reader()

    def _reader_missing(self) -> bool:
        """Whether calls run while no thread waits for input and a parked one could."""
        executor = self.worker.executor
        if hasattr(executor, "want_reader"):  # a ReadingPoolExecutor
            return bool(executor.busy and not executor.readers and executor.parked)
        return bool(executor.busy and not self.seat_taken and self.parked is not None)

    def hand_to_loop(self, loop) -> None:
        """An async actor's loop reads from now on: one thread wake-up less per call.

        The reading thread stops reading after its current wait. While the
        loop runs a blocking method nothing reads, but nothing could be
        served then anyway; the lifeline (a forked worker) or the parent-death
        signal (a spawned one, on Linux) still ends the
        worker with the driver.
        """
        self.loop_reads = True
        loop.add_reader(self.sock.fileno(), self.loop_read_once)


def driver_gone() -> None:
    """The driver closed the channel or died: leave at once, taking its shared memory with us."""
    session = os.environ.get("JUPYTER_ACTORS_SESSION_DIR")
    if session:
        import shutil  # here: only a worker whose driver is gone needs it
        shutil.rmtree(session, ignore_errors=True)
    os._exit(0)
