"""A generator call in the worker: each yielded item goes to the driver as it comes.

    executor thread or event loop            reading thread or loop
    ─────────────────────────────            ──────────────────────
    for item in gen (async for ...):         ItemsConsumed(call_id, count) ─▶ on_consumed:
      GeneratorItems(call_id, i, payloads) ─▶  wakes a producer that waits
      with backpressure N: wait while N
      items are not yet taken by the consumer
    then the call's result: None

Items are held back up to the channel's HOLD so that a fast generator sends
many in one message: the first item held starts a timer (a thread of the
Producer's) that sends the held items HOLD seconds later, so an item never
waits longer than that, however long the generator takes for the next one.
A producer about to wait for its consumer, or ending, sends what it holds first.
"""
from __future__ import annotations

import threading
import time

from .._wire.messages import GeneratorItems, backpressure_of, new
from .._wire.payloads import NONE_PAYLOAD, serialize
from .calls import ReturnValueError
from .capture import current_call

# What run_async returns: the items went out, the call's result is None.
STREAMED = object()
_FINAL = (NONE_PAYLOAD,)
MAX_BATCH = 1000   # items in one message at most


def encode_item(item, index: int, label: str):
    if item is None:
        return NONE_PAYLOAD
    try:
        return serialize(item, handoff=True)
    except Exception as exc:
        raise ReturnValueError(f"could not pickle item {index} yielded by {label}: "
                               f"{type(exc).__name__}: {exc}") from exc


def _not_a_generator(value, label: str) -> TypeError:
    return TypeError(f"{label} was called as a generator (num_returns='streaming' or "
                     f"'dynamic') but returned {type(value).__name__}, not a generator")


class Producer:
    """Sends the items of this worker's generator calls; waits for consumers that lag."""

    def __init__(self, worker):
        self.channel = worker.channel
        self.worker = worker
        self.cond = threading.Condition()
        self.consumed: dict = {}   # call_id -> items taken (calls with backpressure)
        self.events: dict = {}     # call_id -> (loop, asyncio.Event) of an async producer
        self.lock = threading.Lock()
        self.batches: dict = {}    # call_id -> (index of the first, [payloads]) held back
        self.flush_due = False     # a flush of the held items is on its way
        self.flush_wanted = threading.Condition()
        self.flusher = None

    def add(self, call_id, index: int, payload) -> None:
        """Hold an item back (many travel in one message); it goes within HOLD seconds."""
        with self.lock:
            batch = self.batches.get(call_id)
            if batch is None:
                self.batches[call_id] = (index, [payload])
            else:
                batch[1].append(payload)
                if len(batch[1]) >= MAX_BATCH:
                    self._send(call_id)
        if not self.flush_due:
            with self.flush_wanted:
                self.flush_due = True
                if self.flusher is None:
                    self.flusher = threading.Thread(target=self._flush_loop, daemon=True,
                                                    name="item-flusher")
                    self.flusher.start()
                self.flush_wanted.notify()

    def _send(self, call_id) -> None:
        # Under self.lock, so one call's batches leave in order whoever sends them.
        batch = self.batches.pop(call_id, None)
        if batch is not None:
            self.channel.send(new(GeneratorItems, (call_id, batch[0], tuple(batch[1]))))

    def send_now(self, call_id) -> None:
        """Send the call's held items (it ends, or waits for its consumer)."""
        with self.lock:
            self._send(call_id)

    def _flush_loop(self) -> None:
        while True:
            with self.flush_wanted:
                while not self.flush_due:
                    self.flush_wanted.wait()
            time.sleep(self.channel.HOLD)
            # Cleared before sending: an item held from now on asks for the next flush.
            self.flush_due = False
            with self.lock:
                for call_id in list(self.batches):
                    self._send(call_id)

    # -- from the reading thread or loop ----------------------------------------------
    def on_consumed(self, call_id, count: int) -> None:
        with self.cond:
            if count <= self.consumed.get(call_id, count):
                return
            self.consumed[call_id] = count
            self.cond.notify_all()
            waiter = self.events.get(call_id)
        if waiter is not None:
            loop, event = waiter
            loop.call_soon_threadsafe(event.set)

    # -- a generator on a thread ----------------------------------------------------------
    def run(self, gen, num_returns: int, label: str) -> tuple:
        """Send every item of ``gen`` (in the calling thread); the call's result payloads."""
        if gen is STREAMED:
            return _FINAL
        if not hasattr(gen, "__next__"):
            raise _not_a_generator(gen, label)
        call_id = current_call.get()
        limit = backpressure_of(num_returns)
        if limit:
            with self.cond:
                self.consumed[call_id] = 0
        add = self.add
        index = 0
        try:
            for item in gen:
                add(call_id, index, encode_item(item, index, label))
                index += 1
                if limit and index - self.consumed[call_id] >= limit:
                    self._wait(call_id, index - limit + 1)
        finally:
            self.send_now(call_id)  # before the call's result or error
            if limit:
                with self.cond:
                    self.consumed.pop(call_id, None)
        return _FINAL

    def _wait(self, call_id, need: int) -> None:
        self.send_now(call_id)  # the consumer needs what is held back to go on
        self.worker.want_reader()  # (the driver says when items are taken)
        with self.cond:
            while self.consumed[call_id] < need:
                self.cond.wait(0.5)  # short waits: a cancel can interrupt a task between them

    # -- a generator on an async actor's loop -----------------------------------------------
    async def run_async(self, gen, num_returns: int, label: str, call_id):
        """Send every item of an async (or plain) generator, on the loop."""
        is_async = hasattr(gen, "__anext__")
        if not is_async and not hasattr(gen, "__next__"):
            raise _not_a_generator(gen, label)
        limit = backpressure_of(num_returns)
        event = None
        if limit:
            import asyncio  # on an async actor's loop: already loaded
            event = asyncio.Event()
            with self.cond:
                self.consumed[call_id] = 0
                self.events[call_id] = (asyncio.get_running_loop(), event)
        add = self.add
        index = 0
        try:
            while True:
                if is_async:
                    try:
                        item = await gen.__anext__()
                    except StopAsyncIteration:
                        break
                else:
                    try:
                        item = next(gen)
                    except StopIteration:
                        break
                add(call_id, index, encode_item(item, index, label))
                index += 1
                if limit:
                    need = index - limit + 1
                    while self.consumed[call_id] < need:
                        self.send_now(call_id)
                        event.clear()
                        await event.wait()
        finally:
            self.send_now(call_id)  # before the call's result or error
            if limit:
                with self.cond:
                    self.consumed.pop(call_id, None)
                    self.events.pop(call_id, None)
        return STREAMED
