"""ObjectRef: the future of one remote result, usable from any thread or event loop.

A ref wraps a ``concurrent.futures.Future`` that the backend completes. A ref
pickles to its id: where it lands, the process's backend gives back its own
object for that id (in a worker, one whose value the driver sends).

Pickling and unpickling note every ref and actor handle they meet (``note``),
so that whoever makes or reads a payload (a call's arguments, a result, a
``put`` value) knows what it carries: the driver lends those to the process
that receives them, and frees them once no process holds them.
"""
from __future__ import annotations

import concurrent.futures
import sys
import threading
from typing import Any, Callable

from .._wire.payloads import Payload, serialize
from ..exceptions import Error
from . import futures as _futures
from .futures import _loop_waiter

# True inside a worker process, where refs resolve through the driver.
IN_WORKER = False


class ObjectRef:
    """A handle to the result of ``.remote()`` or ``put``.

    ``get(ref)``, ``await ref``, ``ref.future()`` and ``wait([ref])`` all see
    the same result.
    """

    __slots__ = ("_id", "_future", "_serialized", "_owner", "_relays", "_inner", "__weakref__")

    def __init__(self, ref_id: int, future: concurrent.futures.Future):
        self._id = ref_id
        self._future = future
        # The serialized value once known, so forwarding it to another worker
        # does not pickle it again: a Payload, or the blob of one without
        # buffers (most results: no Payload object is made unless it is needed).
        self._serialized = None
        # The trace record of the call that makes this ref (None for put()):
        # it keeps what the result depends on alive, and says how the call is doing.
        self._owner = None
        self._relays = None
        # The refs and actors the value holds (the driver lends them with it).
        self._inner = None

    @property
    def _payload(self):
        """The serialized value (a Payload), once known."""
        serialized = self._serialized
        if type(serialized) is bytes:
            serialized = self._serialized = Payload(serialized)
        return serialized

    @_payload.setter
    def _payload(self, payload) -> None:
        self._serialized = payload

    # -- Ray's ObjectRef surface ---------------------------------------
    def hex(self) -> str:
        return f"{self._id:032x}"

    def binary(self) -> bytes:
        return self._id.to_bytes(16, "big")

    def task_id(self) -> str:
        return self.hex()

    def future(self) -> concurrent.futures.Future:
        """A new ``concurrent.futures.Future`` that completes with this ref."""
        out: concurrent.futures.Future = concurrent.futures.Future()
        _chain(self._future, out)
        return out

    def done(self) -> bool:
        return self._future.done()

    def __await__(self):
        fut = self._future
        if not fut.done():
            if _futures.caller_polls is not None and self._owner is not None:
                yield from _futures.poll_in_loop(self._owner, fut)
            if not fut.done():
                # A future of the awaiting loop that only says "done": cancelling
                # the awaiting task (asyncio.wait_for timing out) cancels it, never
                # the ref that get() and other awaiters share.
                yield from _loop_waiter(fut).__await__()
        try:
            return fut.result()
        except Error as exc:
            # The error object is shared by every get and await of this ref:
            # start its traceback here, not after an earlier raise's frames.
            raise exc.with_traceback(None)

    def as_future(self):
        """An ``asyncio.Future`` in the running loop (Ray's ``ObjectRef.as_future``)."""
        import asyncio
        return asyncio.wrap_future(self.future())

    # -- enough of asyncio.Future for asyncio.wait([ref, ...]) on 3.11+ ------
    # (asyncio.wait no longer wraps awaitables there; it calls these directly.)
    def cancelled(self) -> bool:
        return False

    def result(self):
        """The value if done (asyncio.Future semantics: never blocks)."""
        if not self._future.done():
            from asyncio import InvalidStateError
            raise InvalidStateError("the call has not finished")
        return self._future.result()

    def exception(self):
        if not self._future.done():
            from asyncio import InvalidStateError
            raise InvalidStateError("the call has not finished")
        return self._future.exception()

    def add_done_callback(self, fn: Callable[["ObjectRef"], Any], *, context=None) -> None:
        """Run ``fn(ref)`` when done: in the event loop running here, if any."""
        asyncio = sys.modules.get("asyncio")  # not imported: no loop runs here
        try:
            loop = asyncio and asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        relay = _Relay(self, fn, loop, context)
        if self._relays is None:
            self._relays = []
        self._relays.append(relay)
        self._future.add_done_callback(relay)

    def remove_done_callback(self, fn) -> int:
        removed = 0
        for relay in list(self._relays or ()):
            if relay.fn == fn and relay.active:
                relay.active = False
                self._relays.remove(relay)
                removed += 1
        return removed

    def __repr__(self) -> str:
        return f"ObjectRef({self.hex()})"

    # Notebook display (a snapshot of the state): see _jupyter.display.
    def _repr_html_(self) -> str:
        from .._jupyter.display import ref_html
        return ref_html(self)

    def _repr_pretty_(self, p, cycle) -> None:
        from .._jupyter.display import ref_text
        p.text(ref_text(self))

    def __hash__(self) -> int:
        return hash(self._id)

    def __eq__(self, other) -> bool:
        return isinstance(other, ObjectRef) and other._id == self._id

    def __reduce__(self):
        # A ref travels as its id; where it lands, the value comes from the driver.
        note(self)
        return (_rebuild_ref, (self._id,))


class _Relay:
    """A done-callback of an ObjectRef, moved into the loop that registered it."""

    __slots__ = ("ref", "fn", "loop", "context", "active")

    def __init__(self, ref, fn, loop, context):
        self.ref, self.fn, self.loop, self.context = ref, fn, loop, context
        self.active = True

    def __call__(self, _future) -> None:
        if not self.active:
            return
        if self.loop is None:
            self.fn(self.ref)
            return
        try:
            self.loop.call_soon_threadsafe(self._run_in_loop, context=self.context)
        except RuntimeError:
            pass  # that loop is closed: nobody is waiting any more

    def _run_in_loop(self) -> None:
        if self.active:
            self.fn(self.ref)


def _chain(source: concurrent.futures.Future, target: concurrent.futures.Future) -> None:
    def copy(f: concurrent.futures.Future) -> None:
        if target.done():
            return
        if f.cancelled():
            target.cancel()
            return
        exc = f.exception()
        if exc is not None:
            target.set_exception(exc)
        else:
            target.set_result(f.result())
    source.add_done_callback(copy)


# -- what a payload carries ----------------------------------------------------------

_capture = threading.local()
# Called for a ref or actor pickled outside any capture (captured in a closure,
# pickled by hand): the backend keeps it alive for the session, as Ray does.
_out_of_band: Callable[[Any], None] | None = None


def start_capture():
    """Note refs and actors pickled or unpickled in this thread from now on; returns
    what ``stop_capture`` needs to restore."""
    previous = getattr(_capture, "items", None)
    _capture.items = []
    return previous


def stop_capture(previous) -> list:
    """What was noted since ``start_capture`` (refs, and backend tokens of actors)."""
    items = _capture.items
    _capture.items = previous
    return items


def note(item) -> None:
    """A ref or actor token is being pickled or was just unpickled."""
    items = getattr(_capture, "items", None)
    if items is not None:
        items.append(item)
    elif _out_of_band is not None:
        _out_of_band(item)


def serialize_noting(value, handoff: bool = False):
    """``(payload, the refs and actor tokens it holds)`` for ``value``."""
    previous = start_capture()
    try:
        payload = serialize(value, handoff=handoff)
    finally:
        inner = stop_capture(previous)
    return payload, inner


def capturing() -> bool:
    return getattr(_capture, "items", None) is not None


# The process's backend turns a ref id into its own ObjectRef for that id.
_resolver: Callable[[int], "ObjectRef"] | None = None


def set_resolver(fn, out_of_band=None) -> None:
    global _resolver, _out_of_band
    _resolver = fn
    _out_of_band = out_of_band


def _rebuild_ref(ref_id: int) -> ObjectRef:
    if _resolver is None:
        raise RuntimeError("this ObjectRef belongs to another jupyter_actors session")
    ref = _resolver(ref_id)
    items = getattr(_capture, "items", None)
    if items is not None:
        items.append(ref)
    return ref
