"""Our ObjectRef over one of Ray's: the same future-based ref the API knows, fed by Ray.

A blocking ``get`` asks Ray in the caller's thread and completes the ref's
future with the value (or Ray's error, translated into ours). Ray's callback
(from its own thread) is asked for only when something waits otherwise:
``await``, ``wait``, ``done()``, a done-callback, or a call still unfinished
after ``ARM_AFTER`` seconds. A callback per ref costs Ray a second fetch and
a hop through its I/O thread on every call; most refs never need it. A ref
pickles to Ray's ref, so Ray tracks who borrows it wherever it goes, and it
becomes one of ours again where it lands.
"""
from __future__ import annotations

import concurrent.futures
import threading
import time

from ..._api.futures import _DONE, _PENDING, RefFuture
from ..._api.refs import ObjectRef
from ..._trace import tracer
from .errors import made_on_ray, translate
from .output import deliver

ARM_AFTER = 1.0    # seconds: calls unfinished this long get Ray's callback


class Session:
    """The Ray connection refs were made on; once let go, their gets fail with ``closed``."""

    closed: BaseException | None = None


current = Session()


class RayObjectRef(ObjectRef):
    """An ObjectRef whose value Ray holds."""

    __slots__ = ("_ray_ref",)

    def __reduce__(self):
        if not _on_ray():
            raise made_on_ray(f"ObjectRef {self.hex()}")
        return (ref_of, (self._ray_ref,))


def _on_ray() -> bool:
    """Ray runs this process's session (or none runs yet: a Ray worker unpickling)."""
    from ..._api import session
    current = session.current_backend()
    return current is None or current.name == "ray"


class _RayFuture(RefFuture):
    """A future Ray completes; ``result()`` asks Ray directly, in the caller's thread.

    Waiting in ``ray.get`` instead of for Ray's callback saves the hop through Ray's
    callback thread on every blocking ``get``. Anything that waits another way arms
    the callback first (``arm``): ``done()`` and ``add_done_callback`` do, and every
    waiter of the API (wait, await, progress bars, reprs) goes through one of them.

    Its fields live in slots, and its condition and lists are made only when someone
    waits or adds a callback: a pipelined call keeps one object here where a
    ``Future`` keeps seven, and fewer live objects make Python's collector run less
    often and scan less (it ran every few thousand pipelined calls). It settles as
    every RefFuture does (``RefFuture._settle``), its lazy fields in slots.
    """

    __slots__ = ("_state", "_result", "_exception", "_lazy_condition", "_waiter_list",
                 "_done_callbacks", "ray_ref", "record", "armed", "session")

    def __init__(self, ray_ref, record):  # no RefFuture.__init__: it fills a __dict__
        self._state = _PENDING
        self._result = None
        self._exception = None
        self._lazy_condition = None
        self._waiter_list = None
        self._done_callbacks = None
        self.ray_ref = ray_ref
        self.record = record
        self.armed = False
        self.session = current

    # -- Ray ------------------------------------------------------------------------
    def arm(self) -> None:
        """Ask Ray to call back when the object is ready (once)."""
        if self.armed:
            return
        self.armed = True
        closed = self.session.closed
        if closed is not None:
            _settle(self, closed, True)
        elif self._state not in _DONE:
            self.ray_ref._on_completed(self.complete)

    def settled(self) -> bool:
        """done(), without arming the callback."""
        return self._state in _DONE

    def done(self) -> bool:
        if not self.armed:
            self.arm()
        return self._state in _DONE

    def add_done_callback(self, fn) -> None:
        if not self.armed:
            self.arm()
        super().add_done_callback(fn)

    def exception(self, timeout=None):
        if not self.armed:
            self.arm()
        return super().exception(timeout)

    def result(self, timeout=None):
        if self._state not in _DONE:
            closed = self.session.closed
            if closed is not None:
                _settle(self, closed, True)
                return super().result(0)
            get, rx = _RAY or _load_ray()
            try:
                value = get(self.ray_ref, timeout=timeout)
            except rx.GetTimeoutError:
                raise concurrent.futures.TimeoutError() from None
            except rx.RayError:
                # Ray raises a copy without the remote traceback: the callback, about to
                # run now that the object is there, has Ray's full error.
                self.arm()
                return super().result(timeout)
            # A value (Ray raised any error): complete() without its checks, on every call.
            record = self.record
            if record is not None:
                record.end(None)
            if self._settle(value, None):
                return value
        return super().result(0)

    def complete(self, result) -> None:
        """The value Ray has for the ref (Ray's done-callback, or a get): sets this future,
        finishes the call's trace record."""
        record = self.record
        if isinstance(result, _ray_error()):
            # A call that printed and raised: its last lines ride on the error (output.py).
            deliver(getattr(getattr(result, "cause", None), "_jupyter_actors_output", None))
            error = translate(result, record.label if record is not None else "get",
                              record.owner if record is not None and record.kind != "task"
                              else None)
            if record is not None:
                record.end(error)
            _settle(self, error, True)
            return
        if record is not None:
            record.end(None)
        _settle(self, result, False)


def _load_ray() -> tuple:
    """(ray.get, ray.exceptions), looked up once: a get should not pay for imports."""
    global _RAY
    import ray
    import ray.exceptions
    _RAY = (ray.get, ray.exceptions)
    return _RAY


_RAY = None


def _ray_error() -> type:
    global _RAY_ERROR
    if _RAY_ERROR is None:
        import ray.exceptions as rx
        _RAY_ERROR = rx.RayError
    return _RAY_ERROR


_RAY_ERROR = None


def ref_of(ray_ref, record=None) -> RayObjectRef:
    """Our ref for Ray's ``ray_ref``, completed when Ray has the value."""
    ref = RayObjectRef(int.from_bytes(ray_ref.binary(), "big"), _RayFuture(ray_ref, record))
    ref._ray_ref = ray_ref
    ref._owner = record
    return ref


def _settle(future, value, failed: bool) -> None:
    """Done with ``value``, unless done already (failed by a cancel, the cluster gone)."""
    if isinstance(future, RefFuture):
        if failed:
            future._settle(None, value)
        else:
            future._settle(value, None)
        return
    try:
        if failed:
            future.set_exception(value)
        else:
            future.set_result(value)
    except concurrent.futures.InvalidStateError:
        pass


def fail_pending(refs, error: BaseException) -> None:
    """Fail refs Ray will never complete (the cluster went away)."""
    for ref in refs:
        _settle(ref._future, error, True)


def arm_refs(refs) -> None:
    """Ray's callback for these refs: their call will not end by itself (see records)."""
    for ref in refs:
        future = ref._future
        if type(future) is _RayFuture:
            future.arm()


class LateArming:
    """Arms the refs of calls still unfinished after ARM_AFTER seconds, so that a call
    nobody waits for still ends in the trace when its worker cannot say so (it died)."""

    def __init__(self, record_type):
        self.record_type = record_type
        self.stopped = threading.Event()
        threading.Thread(target=self._run, name="jupyter_actors-ray-arming",
                         daemon=True).start()

    def stop(self) -> None:
        self.stopped.set()

    def _run(self) -> None:
        while not self.stopped.wait(ARM_AFTER / 2):
            before = time.monotonic() - ARM_AFTER
            for record in list(tracer.active.values()):
                if type(record) is self.record_type and record.submitted < before:
                    arm_refs(record.refs[:1])
