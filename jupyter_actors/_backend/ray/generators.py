"""Generator methods and functions on Ray: Ray's streaming generators behind our ObjectRefGenerator.

    a Ray worker                              the caller (driver or worker)
    ────────────                              ─────────────────────────────
    host.stream(meta, ...)  (a generator)     Ray's ObjectRefGenerator
      yields the user's items one by one ──▶    ─▶ a pump thread: next() on it, each item ref
      (output tagged, start/finish timed)          ─▶ our ref ─▶ Stream ─▶ ObjectRefGenerator
                                                   (or, "dynamic": one ref holding them all)
    the generator ends / raises / is cancelled ▶ the stream ends; the call's record and its
                                                 completion ref (completed(), cancel) end too

Every call of a generator runs on Ray with ``num_returns="streaming"``: Ray sends
each item as it is yielded, and an error (raised by the generator, a cancel, the
actor's death) arrives as the last item, as on the embedded runtime. With
``_generator_backpressure_num_objects=N`` Ray pauses the producer while N items
are unread; the pump reads the next one only once the consumer has taken the one
it holds, so the producer runs at most N + 1 items ahead of the consumer.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
import time

from ... import _ids
from ..._api.generators import DynamicObjectRefGenerator, ObjectRefGenerator, Stream
from ..._api.refs import ObjectRef
from ..._wire.messages import DYNAMIC, backpressure_of
from . import host
from .errors import translate
from .records import PENDING
from .refs import ref_of


# -- in Ray's workers --------------------------------------------------------------------------

class ThreadedStreams:
    """The generator entry point of a threaded actor's host (mixed into host.ActorHost)."""

    def stream(self, meta, /, *args, **kwargs):
        route, call_id, method = host._unpack(meta)
        if self._cancelled:
            host._skip_if_cancelled(self, call_id)
        token = host._begin(route, call_id, self._slots.of_thread())
        try:
            yield from getattr(self._instance, method)(*args, **kwargs)
        finally:
            _end(route, call_id, token)


class AsyncStreams:
    """The generator entry point of an async actor's host: async and sync generators alike
    run on the actor's event loop."""

    async def stream(self, meta, /, *args, **kwargs):
        route, call_id, method = host._unpack(meta)
        if self._cancelled:
            host._skip_if_cancelled(self, call_id)
        if self._starting is not None:
            await self._started()
        slot = self._slots.take()
        token = host._begin(route, call_id, slot)
        try:
            items = getattr(self._instance, method)(*args, **kwargs)
            if inspect.isasyncgen(items):
                async for item in items:
                    yield item
            else:
                for item in items:
                    yield item
        finally:
            _end(route, call_id, token)
            self._slots.give(slot)


def _end(route, call_id, token) -> None:
    try:
        host._end(route, call_id, token)
    except ValueError:
        pass   # closed by the garbage collector in another context: the times are noted


def with_streams(host_class: type, is_async: bool) -> type:
    """``host_class`` with a ``stream`` method for generator calls (named as before)."""
    mixin = AsyncStreams if is_async else ThreadedStreams
    return type(host_class.__name__, (host_class, mixin), {
        "__qualname__": host_class.__qualname__, "__module__": host_class.__module__})


def stream_task_function(fn, setup):
    """The generator Ray runs for a generator function: ``fn``'s items, timed and tagged."""
    def task(route, call_id, /, *args, **kwargs):
        host.install(setup)
        token = host._begin(route, call_id, 0)
        try:
            items = fn(*args, **kwargs)
            yield from (_drive(items) if inspect.isasyncgen(items) else items)
        finally:
            _end(route, call_id, token)
    task.__name__ = getattr(fn, "__name__", "task")
    task.__qualname__ = getattr(fn, "__qualname__", task.__name__)
    return task


def _drive(items):
    """An async generator's items, from a loop of its own (a task has no running loop)."""
    loop = asyncio.new_event_loop()
    try:
        while True:
            try:
                yield loop.run_until_complete(items.__anext__())
            except StopAsyncIteration:
                return
    finally:
        loop.run_until_complete(items.aclose())
        loop.close()


# -- the caller's side ------------------------------------------------------------------------

def stream_options(num_returns: int) -> dict:
    """Ray's options for a generator call whose wire ``num_returns`` is negative."""
    options = {"num_returns": "streaming"}
    limit = backpressure_of(num_returns)
    if limit:
        options["_generator_backpressure_num_objects"] = limit
    return options


def open_stream(backend, record, ray_generator, num_returns: int):
    """What a generator call gives its caller: an ObjectRefGenerator, or for
    ``num_returns="dynamic"`` the ref of a DynamicObjectRefGenerator."""
    completion = ObjectRef(_ids.next_id(), concurrent.futures.Future())
    completion._owner = record
    record.ray_ref = ray_generator          # what cancel() hands to Ray
    record.refs = (completion,)
    dynamic = num_returns == DYNAMIC
    limited = bool(backpressure_of(num_returns))
    pump = _Pump(record, ray_generator, completion, limited)
    if dynamic:
        result = completion
    else:
        stream = Stream(on_consume=pump.consumed if limited else None)
        pump.stream = stream
        blocking = backend.blocking_get if backend.in_worker else None
        result = ObjectRefGenerator(stream, completion, record.label, blocking)
    threading.Thread(target=pump.run, name="jupyter_actors-ray-stream", daemon=True).start()
    return result


class _ItemOf:
    """The owner an item ref reports its error with: the call's label and actor, without
    ending the call's record (its last item, not its first, does that)."""

    __slots__ = ("label", "owner", "kind")

    def __init__(self, record):
        self.label, self.owner, self.kind = record.label, record.owner, record.kind

    def end(self, error) -> None:
        pass


class _Pump:
    """Reads Ray's generator in a thread of its own and feeds our stream (or item list)."""

    def __init__(self, record, ray_generator, completion, limited: bool):
        self.record = record
        self.ray_generator = ray_generator
        self.completion = completion
        self.stream = None            # None: "dynamic", the items are collected
        self.limited = limited
        self.cond = threading.Condition()
        self.taken = 0
        if limited:
            completion._future.add_done_callback(lambda _: self.consumed(1 << 60))

    def consumed(self, count: int) -> None:
        """The consumer has taken ``count`` items (or went away: a huge count)."""
        with self.cond:
            self.taken = count
            self.cond.notify_all()

    def run(self) -> None:
        items: list = []
        owner = _ItemOf(self.record)
        error = None
        try:
            while True:
                if self.limited:
                    with self.cond:   # hold one unread item at most: Ray pauses the producer
                        self.cond.wait_for(lambda: self.taken >= len(items))
                try:
                    ray_ref = next(self.ray_generator)
                except StopIteration:
                    break
                ref = ref_of(ray_ref, owner)
                ref._owner = self.record
                if not items and self.record.status == PENDING:
                    # An item means the call runs (the worker's own report may come later).
                    self.record.report(started=time.monotonic(), slot=0)
                items.append(ref)
                if self.stream is not None:
                    self.stream.push([ref])
        except Exception as exc:    # Ray went away under the reading thread
            import ray.exceptions as rx
            error = (translate(exc, self.record.label, _actor_of(self.record))
                     if isinstance(exc, rx.RayError) else exc)
        self.ray_generator = None
        if self.stream is not None:
            self.stream.end()
        if error is not None or not items:
            self._finish(items, error)
        else:
            items[-1]._future.add_done_callback(lambda last: self._finish(items, last.exception()))

    def _finish(self, items: list, error) -> None:
        """The call ended: its last item (or Ray) said how; the record and completion follow."""
        self.record.end(error)
        future = self.completion._future
        try:
            if self.stream is None:
                future.set_result(DynamicObjectRefGenerator(items))
            elif error is not None:
                future.set_exception(error)
            else:
                future.set_result(None)
        except concurrent.futures.InvalidStateError:
            pass   # failed already by a cancel or by the cluster going away


def _actor_of(record):
    return record.owner if record.kind != "task" else None
