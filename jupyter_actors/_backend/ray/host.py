"""What runs inside Ray's workers: the user's actor or function, wrapped thinly.

    driver (RayBackend)                        a Ray worker process
    ───────────────────                        ────────────────────
    host.METHOD.remote(...)                  ─▶ its direct entry (a driver's call, one return):
                                                the call's key is Ray's id of the task
    host.call.remote("KEY METHOD [ROUTE]", ...) ▶ ActorHost.call (any other call): mark the
    task.remote(route, call_id, ...)         ─▶ call's output with its route, note start and
                                                finish, run it
    Ray's log stream ◀──────────────────────── "<RS>ja:ROUTE PROCESS SEQ<RS>line" (output.py)
                     ◀──────────────────────── "<RS>jt:[pid, events]<RS>" (≤ 50 ms; bars too)
    Ray's reply      ◀──────────────────────── the result, carrying the recent lines
    logs.LogRouter: lines to the cell of the call that made them, events to the trace

Ray owns the processes, the scheduling and the objects; the wrapper adds only
what the Jupyter layer needs, riding on Ray's own log streaming and replies so
that it works wherever Ray runs the call. The *route* of a call is the key of
the call the driver made: calls made inside a worker carry their caller's
route, so their output lands in the cell that started the chain. A call's key
is its call id, except for a direct call: nothing of ours rides with it (an
extra argument costs Ray's submit more than the rest of our layer), so both
sides read its key off Ray's task id.
"""
from __future__ import annotations

import collections
import inspect
import json
import os
import sys
import threading
import time
from types import GeneratorType

import ray

from .bars import relay_bars
from .output import (STDERR, STDOUT, TAG, CallOutput, TaggingStream, current_call, mark_error,
                     with_output)

EVENTS_MARK = TAG + "jt:"    # a batch of trace events: EVENTS_MARK json TAG
FLUSH_EVERY = 0.05           # seconds between trace-event batches

_setup_lock = threading.Lock()
_installed = False


def route_here():
    """The route of the call running in this thread or asyncio task (None: not in a call)."""
    call = current_call.get()
    return None if call is None else call.route


def now() -> int:
    """This worker's clock for trace events: microseconds since ORIGIN (time.time())."""
    return time.time_ns() // 1000 - ORIGIN


ORIGIN = time.time_ns() // 1000


class _Events:
    """Start and finish times of this worker's calls, written to the log in batches.

    A call that ends before its batch goes out sends one event, start and finish
    together ("sf", or "sx" when it raised); a call still running at that moment
    sends its start ("s") then, and its finish ("f" / "x") in a later batch. Times
    are whole microseconds since ORIGIN, which each batch carries: a batch of
    short calls is a fraction of one with two events and full timestamps per call,
    for Ray's log monitor, its pubsub and the driver alike.
    """

    def __init__(self, stream):
        self.stream = stream
        # No lock: the calls' threads only append and pop, each one step under the GIL,
        # so a busy threaded actor's calls never queue for one another here.
        self.items: collections.deque = collections.deque()
        self.running: dict = {}     # call id -> (start, slot), start not sent yet
        self.wake = threading.Event()
        threading.Thread(target=self._run, name="jupyter_actors-trace", daemon=True).start()

    def add(self, item) -> None:
        self.items.append(item)
        if not self.wake.is_set():
            self.wake.set()

    def started(self, call_id, slot) -> None:
        self.running[call_id] = (time.time_ns() // 1000 - ORIGIN, slot)
        if not self.wake.is_set():
            self.wake.set()

    def ended(self, call_id, failed: bool) -> None:
        end = time.time_ns() // 1000 - ORIGIN
        # Whichever of this and the batch (_run) pops the start sends it.
        start = self.running.pop(call_id, None)
        if start is None:   # its start went out already
            self.items.append((call_id, "x" if failed else "f", end))
        else:
            self.items.append((call_id, "sx" if failed else "sf", start[0], start[1], end))

    def _run(self) -> None:
        pid = os.getpid()
        running, pending = self.running, self.items
        while True:
            self.wake.wait()
            time.sleep(FLUSH_EVERY)   # let a batch gather
            self.wake.clear()
            # Calls still running: their start now (first: a finish popped after it
            # goes after it), their finish later.
            batch = []
            for call_id in list(running):
                start = running.pop(call_id, None)
                if start is not None:
                    batch.append((call_id, "s", start[0], start[1]))
            for _ in range(len(pending)):   # those there now; later ones: the next batch
                batch.append(pending.popleft())
            if batch:
                try:
                    self.stream.write(f"{EVENTS_MARK}{json.dumps([pid, ORIGIN, batch], separators=(',', ':'))}{TAG}\n")
                    self.stream.flush()
                except (OSError, ValueError):
                    return


_events = _bars = None       # the trace's batches (_Events), tqdm's bars (bars.py)
_stdout = _stderr = None     # the TaggingStreams, once installed


def install(setup) -> None:
    """Once per worker process: tagged output, the trace events, the session's backend."""
    global _installed, _events, _stdout, _stderr, _bars
    if _installed:
        return
    with _setup_lock:
        if _installed:
            return
        _stdout = sys.stdout = TaggingStream(sys.stdout, STDOUT)
        _stderr = sys.stderr = TaggingStream(sys.stderr, STDERR)
        _events = _Events(_stdout.raw)
        _bars = relay_bars(_events, now)
        if setup is not None:
            setup.install_in_worker()
        _installed = True


class _Slots:
    """Which lane of the Timeline a call runs in: its thread, or a free async slot."""

    def __init__(self):
        self.threads: dict = {}
        self.free: list = []
        self.next = 0

    def of_thread(self) -> int:
        ident = threading.get_ident()
        slot = self.threads.get(ident)
        if slot is None:
            slot = self.threads[ident] = len(self.threads)
        return slot

    def take(self) -> int:
        if self.free:
            return self.free.pop()
        self.next += 1
        return self.next - 1

    def give(self, slot: int) -> None:
        self.free.append(slot)


CONTROL_GROUP = "jupyter_actors_control"   # a concurrency group of its own: never queued


class CancelledBeforeStart(Exception):
    """Raised by the wrapper in place of a call the driver cancelled while it was queued."""


def _skip_if_cancelled(host, call_id) -> None:
    if call_id in host._cancelled:
        host._cancelled.discard(call_id)
        raise CancelledBeforeStart(call_id)


def pack(route, call_id, method: str, carries: bool = True) -> str:
    """A call's id, method and route as one short string: one argument for Ray to send.
    A call the driver made whose result may carry its output sends no route."""
    if route == call_id and carries:
        return f"{call_id} {method}"
    return f"{call_id} {method} {route}"


def _unpack(meta: str) -> tuple:
    parts = meta.split(" ")
    call_id = int(parts[0])
    return (int(parts[2]) if len(parts) > 2 else call_id), call_id, parts[1]


def _unpack_call(meta: str) -> tuple:
    """(route, call id, method, whether the result carries the call's output)."""
    parts = meta.split(" ")
    call_id = int(parts[0])
    if len(parts) == 2:
        return call_id, call_id, parts[1], True
    return int(parts[2]), call_id, parts[1], False


def _begin(route, call_id, slot, carries: bool = False, name=None) -> CallOutput:
    call = CallOutput(route, call_id, carries, name)
    call.token = current_call.set(call)
    _events.started(call_id, slot)
    return call


def _end(route, call_id, call: CallOutput, failed=False, reset=True) -> CallOutput:
    if call.partial is not None:   # it printed
        _stdout.end_call(call)
        _stderr.end_call(call)
    if _bars.open:   # the bars it left open close with it, before its end
        _bars.finish_call(call)
    _events.ended(call_id, failed)
    if reset:
        current_call.reset(call.token)
    return call


def _items_of(items, call_id, call: CallOutput):
    """A generator returned for a fixed number of returns: Ray takes its items once the method
    returned, so each step runs in the call again and the call ends with the generator."""
    current_call.reset(call.token)

    def each():
        failed = False
        try:
            while True:
                token = current_call.set(call)
                try:
                    item = next(items)
                except StopIteration:
                    return
                except BaseException as exc:
                    failed = True
                    mark_error(exc, call)
                    raise
                finally:
                    current_call.reset(token)
                yield with_output(item, call)
        finally:   # also when Ray lets go of it after the items it needs
            _end(None, call_id, call, failed, reset=False)
    return each()


class ActorHost:
    """A threaded actor on Ray: the user's instance, and one entry point for every method."""

    def __init__(self, setup, route, call_id, /, *args, **kwargs):
        install(setup)
        self._slots = _Slots()
        self._cancelled: set = set()
        token = _begin(route, call_id, 0)
        try:
            self._instance = self._user_class(*args, **kwargs)
        except BaseException:
            _end(route, call_id, token, True)
            raise
        _end(route, call_id, token)

    @ray.method(concurrency_group=CONTROL_GROUP)
    def cancel_queued(self, call_id) -> None:
        """The driver cancelled this call before it started: skip it when its turn comes."""
        self._cancelled.add(call_id)

    def call(self, meta, /, *args, **kwargs):
        return _run_threaded(self, *_unpack_call(meta), type(self).__name__, args, kwargs)

    def jupyter_actors_facts(self):
        """What a handle made elsewhere (get_actor) needs: the class, its key and kind."""
        return _facts(self)


class AsyncActorHost:
    """An async actor on Ray: every method (sync ones too) runs on the actor's event loop."""

    def __init__(self, setup, route, call_id, /, *args, **kwargs):
        install(setup)
        self._slots = _Slots()
        self._cancelled: set = set()
        self._starting = None
        cls = self._user_class
        token = _begin(route, call_id, 0)
        try:
            if inspect.iscoroutinefunction(getattr(cls, "__init__", None)):
                # ``async def __init__`` runs on the actor's loop, before any call.
                self._instance = cls.__new__(cls)
                self._starting = (self._instance.__init__(*args, **kwargs), route)
            else:
                self._instance = cls(*args, **kwargs)
        except BaseException:
            _end(route, call_id, token, True)
            raise
        _end(route, call_id, token)

    async def _started(self) -> None:
        starting = self._starting
        if isinstance(starting, tuple):
            import asyncio
            coroutine, route = starting

            async def run():
                token = current_call.set(CallOutput(route, None, False))
                try:
                    await coroutine
                finally:
                    current_call.reset(token)
            self._starting = starting = asyncio.ensure_future(run())
        await starting
        self._starting = None

    def jupyter_actors_facts(self):
        return _facts(self)

    @ray.method(concurrency_group=CONTROL_GROUP)
    def cancel_queued(self, call_id) -> None:
        self._cancelled.add(call_id)

    async def call(self, meta, /, *args, **kwargs):
        return await _run_async(self, *_unpack_call(meta), type(self).__name__, args, kwargs)


def _run_threaded(host, route, call_id, method: str, carries: bool, name: str, args, kwargs):
    """Run ``method`` on a threaded actor's instance, its output tagged with the call."""
    if host._cancelled:
        _skip_if_cancelled(host, call_id)
    call = _begin(route, call_id, host._slots.of_thread(), carries, name)
    return _call_and_end(route, call_id, call, getattr(host._instance, method), args, kwargs)


def _call_and_end(route, call_id, call, fn, args, kwargs):
    """Run ``fn`` for a begun call: its value carries the call's output, an error is marked
    with the call's end, and a generator's items are made inside the call."""
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        mark_error(exc, _end(route, call_id, call, True))
        raise
    if type(result) is GeneratorType:
        return _items_of(result, call_id, call)
    return with_output(result, _end(route, call_id, call))


async def _run_async(host, route, call_id, method: str, carries: bool, name: str, args, kwargs):
    """The same on an async actor's loop, once its ``__init__`` has run."""
    if host._cancelled:
        _skip_if_cancelled(host, call_id)
    if host._starting is not None:
        await host._started()
    slot = host._slots.take()
    call = _begin(route, call_id, slot, carries, name)
    try:
        result = getattr(host._instance, method)(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
    except BaseException as exc:
        mark_error(exc, _end(route, call_id, call, True))
        raise
    finally:
        host._slots.give(slot)
    if type(result) is GeneratorType:
        return _items_of(result, call_id, call)
    return with_output(result, _end(route, call_id, call))


def _facts(host) -> tuple:
    from ..._wire.payloads import serialize_definition
    cls = host._user_class
    return (cls.__name__, host._class_key, isinstance(host, AsyncActorHost),
            serialize_definition(cls).blob, host._groups)


def host_class(user_class: type, is_async: bool, class_key: str, groups=None) -> type:
    """A host class named like the user's (Ray shows that name), holding the user's class,
    with a direct entry point per public method (see ``has_direct_entry``)."""
    base = AsyncActorHost if is_async else ActorHost
    namespace = {
        "_user_class": user_class, "_class_key": class_key, "_groups": groups,
        "__qualname__": user_class.__qualname__,
        "__module__": getattr(user_class, "__module__", "__main__")}
    make = _async_direct if is_async else _threaded_direct
    for name, _ in inspect.getmembers(user_class, _is_method):
        if has_direct_entry(name):
            entry = namespace[name] = make(name, user_class.__name__)
            entry.__qualname__ = f"{user_class.__qualname__}.{name}"
    return type(user_class.__name__, (base,), namespace)


def _is_method(value) -> bool:
    return inspect.isfunction(value) or inspect.ismethod(value)


# The host's own attributes (and those of the generator mix-ins): a user method of one of
# these names is reached through ``call`` / ``stream`` only.
_HOST_NAMES = frozenset(("call", "stream", "cancel_queued", "jupyter_actors_facts"))


def has_direct_entry(name: str) -> bool:
    """Whether a method of this name has a direct entry point on the host, so the driver
    calls it by its own name (Ray then names the call after it too)."""
    return not name.startswith("_") and name not in _HOST_NAMES


def _task_key() -> int:
    """The running call's key: the first 8 bytes of Ray's id of this task (its driver
    reads the same bytes off the call's ref; see records.task_key)."""
    global _current_task_id
    if _current_task_id is None:
        _current_task_id = ray._private.worker.global_worker.core_worker.get_current_task_id
    return int.from_bytes(_current_task_id().binary()[:8], "big")


_current_task_id = None


def _threaded_direct(method: str, class_name: str):
    """``method`` of a threaded actor called by the driver with one return value: no
    argument of ours rides along; Ray's task id is the call's key, its route too."""
    def entry(self, *args, **kwargs):
        key = _task_key()
        return _run_threaded(self, key, key, method, True, class_name, args, kwargs)
    entry.__name__ = method
    return entry


def _async_direct(method: str, class_name: str):
    """The same, for an async actor: on the actor's event loop."""
    async def entry(self, *args, **kwargs):
        key = _task_key()
        return await _run_async(self, key, key, method, True, class_name, args, kwargs)
    entry.__name__ = method
    return entry


def task_function(fn, setup, single_return: bool = True):
    """The function Ray runs for a remote function: ``fn`` with its route and call id first."""
    def task(route, call_id, /, *args, **kwargs):
        install(setup)
        call = _begin(route, call_id, 0, single_return and route == call_id, task.__name__)
        return _call_and_end(route, call_id, call, fn, args, kwargs)
    task.__name__ = getattr(fn, "__name__", "task")
    task.__qualname__ = getattr(fn, "__qualname__", task.__name__)
    return task
