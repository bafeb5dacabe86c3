"""State shared by a worker's reading threads and its executor: streams, look-ups, results."""
from __future__ import annotations

import concurrent.futures
import os
import select
import sys
import threading

from .._wire.messages import ActorExiting, CallOk, new
from .._wire.payloads import Payload
from .bars import Bars
from .capture import CapturedStream
from .prompts import Prompts


class Worker:
    """State shared by the reading threads, the executor and the client backend."""

    def __init__(self, channel):
        self.channel = channel
        self.pid = os.getpid()
        self.stdout = CapturedStream("stdout", channel, sys.__stdout__)
        self.stderr = CapturedStream("stderr", channel, sys.__stderr__)
        self.executor = None
        self.client = None        # the ClientBackend: calls made here go through it
        self.producer = None      # streams.Producer: sends the items of generator calls
        self.reading = None       # who reads the socket (roles sets it)
        self.actor_info = None    # an actor's id, class, name, namespace, kind, concurrency
        self.thread_groups = {}   # thread id -> the concurrency group it serves (GroupedExecutor)
        self.prompts = Prompts(self)  # breakpoint() and input() ask the driver's user
        self.bars = Bars(channel)     # tqdm bars, drawn by the driver

    # Output of a call is flushed before its result.
    def finish(self, message, soon: bool = False) -> None:
        call_id = message.call_id
        self.stdout.flush_call(call_id)
        self.stderr.flush_call(call_id)
        if self.prompts.open_calls:  # a debugger session ends with its call
            self.prompts.close(call_id)
        if self.bars.open:  # and so do its progress bars, with their last state
            self.bars.finish_call(call_id)
        if self.client.dropped:  # refs and handles this worker let go of, first
            self.client.flush_releases()
        if soon:
            self.channel.send_soon(message)
        else:
            self.channel.send(message)

    def finish_end(self, end: tuple, soon: bool = False, next_start=None) -> None:
        """``finish`` of a plain ``CallOk`` given as its ``frames.ok_end`` tuple (most calls),
        then ``Channel.started(*next_start)``: in one step when nothing has to go before it."""
        if self.nothing_before_ends():
            self.channel.send_end(end, soon, next_start)
        else:
            call_id, blob, t_start, t_end, slot = end
            self.finish(new(CallOk, (call_id, (Payload(blob),), t_start, t_end, slot)), soon)
            if next_start is not None:
                self.channel.started(*next_start)

    def nothing_before_ends(self) -> bool:
        """Whether calls' ends may go out as they are: no call has an unfinished output
        line, a debugger session or a bar to close, and no release waits to go first
        (what ``finish`` would send before each end)."""
        return not (self.stdout._partial or self.stderr._partial or self.prompts.open_calls
                    or self.bars.open or self.client.dropped)

    def exit_actor(self, call_id, exc: BaseException | None = None) -> None:
        """``exit_actor()`` or ``sys.exit()`` in this call: tell the driver how, then leave.

        As in Ray the actor ends (neither is an error of the call); ``sys.exit``
        with an error code is an exit the driver may restart (``max_restarts``).
        """
        self.stdout.flush_call(call_id)
        self.stderr.flush_call(call_id)
        self.client.flush_releases()
        code = 0
        how = "exit_actor()"
        if isinstance(exc, SystemExit):
            how = f"sys.exit({'' if exc.code is None else repr(exc.code)})"
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        self.channel.send(ActorExiting(call_id, how, code == 0))
        self.channel.flush()
        os._exit(code)

    def want_reader(self) -> None:
        """A call is about to wait for the driver: someone must read its answer."""
        reading = self.reading
        if reading is not None:
            reading.want_reader()

    def wait_reading(self, fut: concurrent.futures.Future) -> None:
        """Wait for an answer from the driver; read it ourselves if nobody else reads.

        An async actor's loop reads the socket, so a method that waits on the
        loop reads for itself (other calls that arrive meanwhile are queued on
        the loop, as usual).
        """
        reading = self.reading
        if reading is None or not reading.loop_reads or threading.current_thread() is not \
                threading.main_thread():
            self.want_reader()
            fut.result()
            return
        while not fut.done():
            select.select([reading.sock], [], [], 0.05)
            reading.loop_read_once()
