"""ObjectRefGenerator: the refs a generator call yields, one by one as the worker yields them.

    worker                         backend (driver, or a worker's client)      consumer
    ──────                         ──────────────────────────────────────      ────────
    yield item  ── item frame ──▶  a ref with the item's value → Stream.push   next(gen) / async for
    returns     ── result ─────▶   the call's own ref is done  → Stream.end    StopIteration
    raises      ── error ──────▶   ... failed: one last ref holding the error, then the end

A backend makes one ``Stream`` per call and hands the consumer an
``ObjectRefGenerator`` over it. Whatever ends the call (an exception in it, a
cancel, the actor's death) ends the stream the same way: the next item is a
ref that raises that error, and iteration stops after it, as in Ray.
``DynamicObjectRefGenerator`` is what ``num_returns="dynamic"`` gives: the
value of one ref, holding every item's ref once the call has finished.
"""
from __future__ import annotations

import collections
import concurrent.futures
import inspect
from concurrent.futures._base import FINISHED as _FINISHED
from concurrent.futures._base import Future as _Future
import threading
import weakref

from .. import _ids
from .._wire.messages import DYNAMIC, streaming_num_returns
from .._wire.payloads import NONE_PAYLOAD
from ..exceptions import GetTimeoutError, TaskError
from .futures import loop_running
from .refs import ObjectRef

# The consumer went away: the producer must never wait for it again.
ALL = 1 << 60


class Stream:
    """The item refs of one generator call, in order, as they arrive (thread-safe)."""

    __slots__ = ("_lock", "_items", "_ended", "_waiters", "received", "consumed", "on_consume",
                 "__weakref__")

    def __init__(self, on_consume=None):
        self._lock = threading.Lock()
        self._items: collections.deque = collections.deque()
        self._ended = False
        self._waiters: list = []      # futures woken by the next item or the end
        self.received = 0
        self.consumed = 0
        # on_consume(count): the consumer has taken ``count`` items (backpressure).
        self.on_consume = on_consume

    def push(self, refs: list) -> None:
        """Items arrived, in order."""
        with self._lock:
            if self._ended:
                return
            self._items.extend(refs)
            self.received += len(refs)
            waiters = self._waiters
            if waiters:
                self._waiters = []
        if waiters:
            _wake(waiters)

    def end(self, last: ObjectRef | None = None) -> None:
        """No more items; ``last`` (a ref holding the call's error), if given, comes first."""
        with self._lock:
            if self._ended:
                return
            if last is not None:
                self._items.append(last)
            self._ended = True
            waiters, self._waiters = self._waiters, []
        _wake(waiters)

    def end_with(self, completion: ObjectRef) -> None:
        """End when the call behind ``completion`` ends; a failure becomes the last item."""
        def ended(fut):
            error = fut.exception()
            self.end(None if error is None else failed_ref(error, completion._owner))
        completion._future.add_done_callback(ended)

    def _poll(self):
        """(ready, ref or None at the end); the lock is held."""
        if self._items:
            self.consumed += 1
            return True, self._items.popleft()
        return self._ended, None

    def _waiter(self):
        """A future that is done once the next item or the end is here (None: it is)."""
        with self._lock:
            if self._items or self._ended:
                return None
            fut: concurrent.futures.Future = concurrent.futures.Future()
            self._waiters.append(fut)
            return fut

    def _try_take(self):
        """(True, the next item's ref or None at the end), marked consumed; (False, None)
        while the next item has not arrived."""
        with self._lock:
            ready, ref = self._poll()
        if ready:
            self._consumed(ref)
        return ready, ref

    def take(self, timeout: float | None = None):
        """The next item's ref, waiting for it; None at the end."""
        while True:
            ready, ref = self._try_take()
            if ready:
                return ref
            fut = self._waiter()
            if fut is not None:
                try:
                    fut.result(timeout)
                except concurrent.futures.TimeoutError:
                    raise GetTimeoutError(f"no item arrived within {timeout} s") from None

    async def take_async(self):
        while True:
            ready, ref = self._try_take()
            if ready:
                return ref
            fut = self._waiter()
            if fut is not None:
                import asyncio   # a loop runs: in sys.modules already
                await asyncio.wrap_future(fut)

    def _consumed(self, ref) -> None:
        if ref is not None and self.on_consume is not None:
            self.on_consume(self.consumed)

    def ready(self) -> bool:
        return bool(self._items) or self._ended

    def finished(self) -> bool:
        return self._ended and not self._items

    def ready_future(self) -> concurrent.futures.Future:
        """Done once ``next()`` would not wait (for ``wait``)."""
        fut = self._waiter()
        if fut is None:
            fut = concurrent.futures.Future()
            fut.set_result(None)
        return fut

    def abandon(self) -> None:
        """The consumer is gone: a producer with backpressure must not wait for it."""
        if self.on_consume is not None and not self._ended:
            # Run by the garbage collector, maybe while this thread holds the lock of
            # the channel the message goes on: sent from another thread.
            try:
                threading.Thread(target=self.on_consume, args=(ALL,), daemon=True).start()
            except RuntimeError:
                pass  # the interpreter is exiting, and the workers with it


def _wake(waiters) -> None:
    for fut in waiters:
        try:
            fut.set_result(None)
        except concurrent.futures.InvalidStateError:
            pass  # its awaiting task was cancelled


# One condition for every future made done (done_future): it is only ever held for an
# instant, since nothing waits on a future that is already done.
_DONE_CONDITION = threading.Condition()


def done_future(value) -> concurrent.futures.Future:
    """A Future that already holds ``value``, made for a fraction of ``Future()`` +
    ``set_result`` (a stream of small items makes one per item).

    It has the attributes ``Future.__init__`` gives (CPython 3.10-3.13), in the
    state ``set_result`` leaves; only its condition is shared.
    """
    fut = _Future.__new__(_Future)
    fut._condition = _DONE_CONDITION
    fut._state = _FINISHED
    fut._result = value
    fut._exception = None
    fut._waiters = []
    fut._done_callbacks = []
    return fut


def failed_ref(error: BaseException, owner) -> ObjectRef:
    """A ref (of a new id) that raises ``error``."""
    fut: concurrent.futures.Future = concurrent.futures.Future()
    fut.set_exception(error)
    ref = ObjectRef(_ids.next_id(), fut)
    ref._owner = owner
    return ref


class ObjectRefGenerator:
    """What calling a generator method or function returns: an iterator of ObjectRefs.

    ``for ref in gen``, ``next(gen)``, ``async for ref in gen``: each ref is
    there as soon as the worker has yielded its item. ``completed()`` is a ref
    that is ready when the call has finished.
    """

    def __init__(self, stream: Stream, completion: ObjectRef, label: str, blocking=None):
        self._stream = stream
        # In a worker: the backend's blocking_get (a task that waits lets another run).
        self._blocking = blocking
        self._completion = completion   # the call's own ref (cancel, completed)
        self._completed = None
        self._label = label
        stream.end_with(completion)
        weakref.finalize(self, stream.abandon)

    def __iter__(self) -> "ObjectRefGenerator":
        return self

    def __next__(self) -> ObjectRef:
        stream = self._stream
        if self._blocking is not None and not stream.ready():
            ref = self._next_in_worker()
        else:
            ref = stream.take()
        if ref is None:
            raise StopIteration
        return ref

    def _next_in_worker(self):
        if loop_running():
            raise RuntimeError(
                f"next() on the generator of {self._label} would block this async actor's "
                f"event loop. Use 'async for ref in gen' (or 'await gen.__anext__()') instead.")
        with self._blocking((self._completion,)):
            return self._stream.take()

    def __aiter__(self) -> "ObjectRefGenerator":
        return self

    async def __anext__(self) -> ObjectRef:
        ref = await self._stream.take_async()
        if ref is None:
            raise StopAsyncIteration
        return ref

    def completed(self) -> ObjectRef:
        """A ref that is ready (``None``) when the call has finished.

        As in Ray, an exception raised by the generator belongs to the item
        where it happened; this ref fails only when the call could not finish
        (cancelled, or its actor died).
        """
        if self._completed is None:
            fut: concurrent.futures.Future = concurrent.futures.Future()

            def copy(done):
                error = done.exception()
                if error is None or isinstance(error, TaskError):
                    fut.set_result(None)
                else:
                    fut.set_exception(error)
            ref = ObjectRef(_ids.next_id(), fut)
            ref._owner = self._completion._owner
            ref._payload = NONE_PAYLOAD
            self._completion._future.add_done_callback(copy)
            self._completed = ref
        return self._completed

    def is_finished(self) -> bool:
        """True when the call has ended and every item has been taken."""
        return self._stream.finished()

    def next_ready(self) -> bool:
        """True when ``next()`` would not wait."""
        return self._stream.ready()

    def send(self, value):
        raise NotImplementedError("an ObjectRefGenerator supports next() only, not send()")

    def throw(self, *args):
        raise NotImplementedError("an ObjectRefGenerator supports next() only, not throw()")

    def close(self):
        raise NotImplementedError("an ObjectRefGenerator cannot be closed; use cancel(gen)")

    def __reduce__(self):
        raise TypeError(f"The ObjectRefGenerator of {self._label} cannot be passed to another "
                        f"task or actor, nor returned from one (as in Ray). Pass its item "
                        f"refs instead: [ref for ref in gen].")

    def __repr__(self) -> str:
        state = "finished" if self._stream._ended else "running"
        return (f"ObjectRefGenerator({self._label}, {self._stream.received} item(s) so far, "
                f"{state})")


class DynamicObjectRefGenerator:
    """The value of a ``num_returns="dynamic"`` call: the refs of the items it yielded."""

    def __init__(self, refs):
        self._refs = list(refs)

    def __iter__(self):
        return iter(self._refs)

    def __len__(self) -> int:
        return len(self._refs)

    def __repr__(self) -> str:
        return f"DynamicObjectRefGenerator({len(self._refs)} item(s))"


def wire_num_returns(num_returns, is_generator: bool, backpressure, label: str) -> int:
    """The num_returns a call sends (see ``_wire.messages``) for the options given.

    A generator function streams unless told otherwise, as in Ray.
    """
    if num_returns is None:
        num_returns = "streaming" if is_generator else 1
    if num_returns in ("streaming", "dynamic"):
        if not is_generator:
            raise ValueError(f"num_returns={num_returns!r} can only be used with generator "
                             f"functions (that use 'yield'); {label} is not one.")
        if num_returns == "dynamic":
            return DYNAMIC
        return streaming_num_returns(-1 if backpressure is None else backpressure)
    if backpressure not in (None, -1):
        raise ValueError(f"_generator_backpressure_num_objects applies to streaming generators "
                         f"only; {label} has num_returns={num_returns!r}.")
    return num_returns


def is_generator_function(fn) -> bool:
    return inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn)
