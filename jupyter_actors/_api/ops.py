"""get, wait, put, kill, cancel, get_actor: what the API does with refs and handles.

``get`` and ``wait`` only wait on each ref's future, whichever backend
completes it; the rest ask the session's backend.
"""
from __future__ import annotations

import concurrent.futures
import time
from typing import Any

from ..exceptions import Error, GetTimeoutError
from . import futures as _futures
from . import refs as _refs
from . import session
from .actors import ActorHandle, handle_of_found
from .generators import ObjectRefGenerator
from .refs import ObjectRef

# The Jupyter integration installs a progress-bar version of "get many refs".
get_progress = None


def _check_not_in_async_actor(what: str) -> None:
    if _refs.IN_WORKER and _futures.loop_running():
        raise RuntimeError(
            f"{what}() would block this async actor's event loop, and with it every other "
            f"call of the actor. Use 'await ref' (or 'await asyncio.gather(*refs)') instead.")


def get(refs, *, timeout: float | None = None):
    """The value of a ref, or a list of values for a list of refs; raises the call's error."""
    __tracebackhide__ = True  # IPython and pytest show the user's frame, not ours
    try:
        return _get(refs, timeout)
    except Error as exc:
        # The error object is shared by every get and await of the ref: start
        # its traceback here, not after the frames of an earlier raise.
        raise exc.with_traceback(None)


def _get(refs, timeout):
    __tracebackhide__ = True
    _check_not_in_async_actor("get")
    deadline = None if timeout is None else time.monotonic() + max(timeout, 0)
    if isinstance(refs, ObjectRef):
        if _refs.IN_WORKER:
            with session.backend().blocking_get((refs,)):
                return _get_one(refs, deadline, timeout, 1)
        return _get_one(refs, deadline, timeout, 1)
    if isinstance(refs, (list, tuple)):
        for r in refs:
            if not isinstance(r, ObjectRef):
                raise TypeError(f"get() expects ObjectRefs, got {type(r).__name__} in the list")
        if _refs.IN_WORKER:
            with session.backend().blocking_get(refs):
                return [_get_one(r, deadline, timeout, len(refs)) for r in refs]
        backend = session.current_backend()
        if deadline is None and len(refs) > 1 and get_progress is not None:
            started = time.monotonic()
            if backend is not None:
                # What is done before a bar would show comes in one go (Ray: one ray.get,
                # and no done-callback per ref).
                backend.fetch_many(refs, getattr(get_progress, "delay", 0.0))
            return get_progress(refs, started)
        if backend is not None and len(refs) > 1:
            backend.fetch_many(refs, timeout)
        return [_get_one(r, deadline, timeout, len(refs)) for r in refs]
    if isinstance(refs, ObjectRefGenerator):
        raise TypeError("get() cannot take an ObjectRefGenerator: iterate it and get each "
                        "item, e.g. [get(ref) for ref in gen]; get(gen.completed()) waits "
                        "for the call to finish.")
    raise TypeError(f"get() expects an ObjectRef or a list of ObjectRefs, "
                    f"got {type(refs).__name__}")


def _get_one(ref: ObjectRef, deadline, timeout, total: int):
    __tracebackhide__ = True
    remaining = None if deadline is None else max(deadline - time.monotonic(), 0)
    future = ref._future
    try:
        # Its state, not done(): done() of a ref on Ray asks Ray for a callback, which a
        # blocking get does not need (it asks Ray itself).
        if future._state not in _futures._DONE:
            if _futures.before_wait is not None:
                _futures.before_wait()  # calls still queued go out first
            waits = _futures.caller_waits
            if waits is not None and waits(ref._owner, future, remaining) is False:
                raise concurrent.futures.TimeoutError
        return future.result(remaining)
    except concurrent.futures.TimeoutError:
        raise GetTimeoutError(f"get() timed out after {timeout} s: {ref!r} is not ready "
                              f"({total} ref(s) requested); the call keeps running.") from None


def wait(refs, *, num_returns: int = 1, timeout: float | None = None, fetch_local: bool = True):
    """(ready, not_ready): the first ``num_returns`` refs done, in the order given."""
    _check_not_in_async_actor("wait")
    if isinstance(refs, ObjectRef) or not isinstance(refs, list):
        raise TypeError(f"wait() expects a list of ObjectRefs, got {type(refs).__name__}")
    for r in refs:
        if not isinstance(r, ObjectRef):
            if isinstance(r, ObjectRefGenerator):
                return _wait_with_generators(refs, num_returns, timeout)
            raise TypeError(f"wait() expects ObjectRefs, got {type(r).__name__} in the list")
    if not refs:
        return [], []  # as Ray: nothing to wait for, whatever num_returns says
    if len(set(refs)) != len(refs):
        raise ValueError("wait() requires a list of unique ObjectRefs")
    if not 0 <= num_returns <= len(refs):
        raise ValueError(f"num_returns must be between 0 and {len(refs)}, got {num_returns}")
    if _refs.IN_WORKER:
        with session.backend().blocking_get(refs if num_returns else ()):
            return _wait(refs, num_returns, timeout)
    return _wait(refs, num_returns, timeout)


def _wait(refs, num_returns, timeout):
    # concurrent.futures.wait registers and removes its own waiters, so polling
    # wait() in a loop leaves nothing behind on the futures.
    deadline = None if timeout is None else time.monotonic() + max(timeout, 0)
    pending = [r._future for r in refs if not r._future.done()]
    need = num_returns - (len(refs) - len(pending))
    if pending and _futures.before_wait is not None:
        _futures.before_wait()  # calls still queued go out first
    while need > 0 and pending:
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0)
        when = (concurrent.futures.ALL_COMPLETED if need >= len(pending)
                else concurrent.futures.FIRST_COMPLETED)
        done, not_done = concurrent.futures.wait(pending, remaining, when)
        if not done:
            break
        need -= len(done)
        pending = list(not_done)
    ready = [r for r in refs if r._future.done()][:num_returns]
    chosen = set(ready)
    return ready, [r for r in refs if r not in chosen]


def _wait_with_generators(refs, num_returns, timeout):
    """wait() over refs and generators: a generator is ready when next() would not wait."""
    for r in refs:
        if not isinstance(r, (ObjectRef, ObjectRefGenerator)):
            raise TypeError(f"wait() expects ObjectRefs, got {type(r).__name__} in the list")
    if len({id(r) for r in refs}) != len(refs):
        raise ValueError("wait() requires a list of unique ObjectRefs")
    if not 0 <= num_returns <= len(refs):
        raise ValueError(f"num_returns must be between 0 and {len(refs)}, got {num_returns}")
    deadline = None if timeout is None else time.monotonic() + max(timeout, 0)

    def done(r) -> bool:
        return r._future.done() if isinstance(r, ObjectRef) else r.next_ready()
    while True:
        ready = [r for r in refs if done(r)][:num_returns]
        remaining = None if deadline is None else deadline - time.monotonic()
        if len(ready) >= num_returns or (remaining is not None and remaining <= 0):
            break
        futures = [r._future if isinstance(r, ObjectRef) else r._stream.ready_future()
                   for r in refs if not done(r)]
        concurrent.futures.wait(futures, remaining, concurrent.futures.FIRST_COMPLETED)
    chosen = {id(r) for r in ready}
    return ready, [r for r in refs if id(r) not in chosen]


def put(value: Any) -> ObjectRef:
    """Store a value for passing to calls; ``get`` returns a copy of it."""
    if isinstance(value, ObjectRef):
        raise TypeError("Calling put() on an ObjectRef is not allowed; pass the ref itself")
    return session.backend().put(value)


def kill(actor: ActorHandle, *, no_restart: bool = True) -> None:
    """Kill the actor's process now; its pending calls fail with ActorDiedError.

    ``no_restart=False`` lets an actor with ``max_restarts`` start again, as after a
    crash (calls made meanwhile wait for the new process)."""
    if not isinstance(actor, ActorHandle):
        raise TypeError(f"kill() expects an actor handle, got {type(actor).__name__}")
    actor._backend.kill(actor._actor, no_restart)


def cancel(ref: ObjectRef, *, force: bool = False, recursive: bool = True) -> None:
    """Cancel the call behind ``ref``; ``get`` on it then raises TaskCancelledError.

    A queued call never runs. A running async-actor call gets asyncio
    cancellation and a running remote function a KeyboardInterrupt
    (``force=True`` kills its worker instead). A running call of a threaded
    actor is not interrupted: it runs to its end and its result is dropped.
    """
    if isinstance(ref, ObjectRefGenerator):
        ref = ref._completion  # the generator call itself
    elif not isinstance(ref, ObjectRef):
        raise TypeError(f"cancel() expects an ObjectRef, got {type(ref).__name__}")
    record = ref._owner
    if record is None:
        return  # a put() value: nothing runs
    if force and record.kind != "task":
        raise ValueError("force=True is not supported for actor calls; use kill(actor)")
    backend = session.current_backend()
    if backend is not None:
        backend.cancel_call(record, force)


def get_actor(name: str, namespace: str | None = None) -> ActorHandle:
    """The handle of a live actor created with ``options(name=...)``."""
    backend = session.backend()
    found = backend.find_actor(name, namespace if namespace is not None
                               else session.default_namespace)
    if found is None:
        raise ValueError(f"Failed to look up actor with name {name!r}: no live actor has it")
    return handle_of_found(found, backend)
