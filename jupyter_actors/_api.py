"""The public API: ``remote``, actor classes and handles, remote functions, get/wait/put.

Every ``.remote()`` checks its arguments against the signature and pickles them
in the caller's thread, so a mistake raises where the user made it; the call
itself then runs in a worker process (see ``_driver``).
"""
from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import inspect
import os
import threading
import time
from typing import Any

from . import _driver, _refs
from ._refs import ObjectRef
from ._serialization import deserialize, serialize
from .exceptions import GetTimeoutError

# The pieces of the API live in their own modules; their names are re-exported
# here for the package namespace and for the Jupyter integration.
from ._actors import ActorClass, ActorHandle, ActorMethod  # noqa: E402
from ._functions import RemoteFunction  # noqa: E402
from ._options import (ACTOR_OPTIONS, METHOD_OPTIONS, TASK_OPTIONS,  # noqa: E402
                       _RESOURCE_OPTIONS, _check_options)

__all__ = ["ACTOR_OPTIONS", "METHOD_OPTIONS", "TASK_OPTIONS", "_RESOURCE_OPTIONS", "ActorClass",
           "ActorHandle", "ActorMethod", "RemoteFunction", "available_resources", "cancel",
           "cluster_resources", "get", "get_actor", "init", "is_initialized", "kill", "method",
           "put", "remote", "runtime", "shutdown", "wait"]

_runtime: _driver.Runtime | None = None
_runtime_lock = threading.Lock()


_INIT_IGNORED = {"include_dashboard", "dashboard_host", "dashboard_port", "logging_level",
                 "logging_format", "configure_logging", "local_mode", "object_store_memory",
                 "num_gpus", "resources", "job_config", "_temp_dir", "_system_config",
                 "_metrics_export_port", "runtime_env", "labels", "log_to_driver_level"}


# -- runtime lifecycle ----------------------------------------------------------

def init(address: str | None = None, *, num_cpus: int | None = None,
         ignore_reinit_error: bool = False, log_to_driver: bool = True,
         namespace: str | None = None, idle_workers: int | None = None, **ray_options):
    """Start the embedded runtime (optional: the first remote call starts it).

    ``num_cpus`` bounds the pool that runs remote functions (default: the
    machine's cores); ``idle_workers`` is how many spare worker processes are
    kept started so that creating an actor is fast (default 2).
    """
    global _runtime, _default_namespace
    if address not in (None, "local"):
        raise ValueError(f"jupyter_actors runs on this machine only; address={address!r} "
                         f"names a cluster. Use init() or init('local').")
    unknown = set(ray_options) - _INIT_IGNORED
    if unknown:
        raise TypeError(f"init() got unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    if _refs.IN_WORKER:
        raise RuntimeError("init() cannot be called inside an actor or remote function")
    with _runtime_lock:
        if _runtime is not None:
            if ignore_reinit_error:
                return RuntimeInfo(_runtime)
            raise RuntimeError("Maybe you called init() twice by accident? The runtime is "
                               "already running; pass ignore_reinit_error=True to allow this, "
                               "or call shutdown() first.")
        if num_cpus is not None and num_cpus < 1:
            raise ValueError("num_cpus must be at least 1")
        _runtime = _driver.Runtime(num_cpus=num_cpus, idle_workers=idle_workers,
                                   log_to_driver=log_to_driver)
        _default_namespace = namespace
        return RuntimeInfo(_runtime)


class RuntimeInfo(dict):
    """What ``init`` returns: a dict of facts about the local runtime."""

    def __init__(self, runtime: _driver.Runtime):
        super().__init__(num_cpus=runtime.num_cpus, session_dir=runtime.session_dir,
                         address="local", node_id=f"local-{os.getpid()}")

    @property
    def address_info(self) -> dict:
        return dict(self)


_default_namespace = None


def is_initialized() -> bool:
    return _runtime is not None


def shutdown() -> None:
    """Stop every worker, fail what is pending, remove the session's files."""
    global _runtime
    with _runtime_lock:
        runtime, _runtime = _runtime, None
    if runtime is not None:
        runtime.shutdown()


atexit.register(shutdown)


def runtime() -> _driver.Runtime:
    """The running runtime, started on first use."""
    rt = _runtime
    if rt is not None:
        return rt
    if _refs.IN_WORKER:
        raise NotImplementedError(
            "calling actors or remote functions from inside an actor or remote function is "
            "not supported yet; call them from the notebook or script and pass results in")
    init(ignore_reinit_error=True)
    return _runtime


def available_resources() -> dict:
    return {"CPU": float(runtime().num_cpus)}


cluster_resources = available_resources


# -- options ---------------------------------------------------------------------


def remote(*args, **options):
    """Make a class an actor class, or a function a remote function.

    Use as ``@remote`` or ``@remote(max_concurrency=4, ...)``.
    """
    if len(args) == 1 and not options and (inspect.isclass(args[0]) or callable(args[0])):
        return _make_remote(args[0], {})
    if args:
        raise TypeError("remote() takes a class or a function, or only keyword options: "
                        "@remote or @remote(max_concurrency=2)")
    return lambda obj: _make_remote(obj, options)


def _make_remote(obj, options: dict):
    if inspect.isclass(obj):
        return ActorClass(obj, _check_options(dict(options), ACTOR_OPTIONS, "an actor class"))
    if inspect.iscoroutinefunction(obj) or inspect.isasyncgenfunction(obj):
        name = getattr(obj, "__name__", "f")
        raise ValueError(
            f"'async def' should not be used for remote tasks: {name}() is a coroutine function, "
            f"and remote functions run as plain calls in a worker. Wrap it in a regular function "
            f"that runs it with asyncio.run(...):\n\n"
            f"    @remote\n    def {name}_sync(*args, **kwargs):\n"
            f"        return asyncio.run({name}(*args, **kwargs))\n\n"
            f"or make it a method of an async actor (a class with async def methods).")
    if callable(obj):
        return RemoteFunction(obj, _check_options(dict(options), TASK_OPTIONS,
                                                  "a remote function"))
    raise TypeError(f"@remote needs a class or a function, not {type(obj).__name__}")


def method(*, num_returns: int | None = None, concurrency_group: str | None = None, **kw):
    """Per-method options for an actor method: ``@method(num_returns=2)``."""
    _check_options(dict(kw, **({} if num_returns is None else {"num_returns": num_returns})),
                   METHOD_OPTIONS, "a method")
    if concurrency_group is not None:
        raise NotImplementedError("concurrency groups are not supported yet")

    def decorate(fn):
        if num_returns is not None:
            fn.__jupyter_actors_num_returns__ = num_returns
        return fn
    return decorate


# -- arguments -------------------------------------------------------------------


# -- actors ------------------------------------------------------------------------


# -- remote functions --------------------------------------------------------------


# -- get / wait / put / kill / cancel -----------------------------------------------

def _check_not_in_async_actor(what: str) -> None:
    if _refs.IN_WORKER:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        raise RuntimeError(
            f"{what}() would block this async actor's event loop, and with it every other "
            f"call of the actor. Use 'await ref' (or 'await asyncio.gather(*refs)') instead.")


def get(refs, *, timeout: float | None = None):
    """The value of a ref, or a list of values for a list of refs; raises the call's error."""
    __tracebackhide__ = True  # IPython and pytest show the user's frame, not ours
    _check_not_in_async_actor("get")
    deadline = None if timeout is None else time.monotonic() + max(timeout, 0)
    if isinstance(refs, ObjectRef):
        return _get_one(refs, deadline, timeout, 1)
    if isinstance(refs, (list, tuple)):
        for r in refs:
            if not isinstance(r, ObjectRef):
                raise TypeError(f"get() expects ObjectRefs, got {type(r).__name__} in the list")
        if deadline is None and len(refs) > 1 and _get_progress is not None:
            return _get_progress(refs)
        return [_get_one(r, deadline, timeout, len(refs)) for r in refs]
    raise TypeError(f"get() expects an ObjectRef or a list of ObjectRefs, "
                    f"got {type(refs).__name__}")


# The Jupyter integration installs a progress-bar version of "get many refs".
_get_progress = None


def _get_one(ref: ObjectRef, deadline, timeout, total: int):
    __tracebackhide__ = True
    remaining = None if deadline is None else max(deadline - time.monotonic(), 0)
    try:
        return ref._future.result(remaining)
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
            raise TypeError(f"wait() expects ObjectRefs, got {type(r).__name__} in the list")
    if len(set(refs)) != len(refs):
        raise ValueError("wait() requires a list of unique ObjectRefs")
    if not 0 <= num_returns <= len(refs):
        raise ValueError(f"num_returns must be between 0 and {len(refs)}, got {num_returns}")
    # concurrent.futures.wait registers and removes its own waiters, so polling
    # wait() in a loop leaves nothing behind on the futures.
    deadline = None if timeout is None else time.monotonic() + max(timeout, 0)
    pending = [r._future for r in refs if not r._future.done()]
    need = num_returns - (len(refs) - len(pending))
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


def put(value: Any) -> ObjectRef:
    """Store a value for passing to calls; ``get`` returns a copy of it."""
    if isinstance(value, ObjectRef):
        raise TypeError("Calling put() on an ObjectRef is not allowed; pass the ref itself")
    if _refs.IN_WORKER:
        raise NotImplementedError("put() inside an actor or remote function is not supported "
                                  "yet; return the value instead")
    runtime()
    payload = serialize(value)
    fut: concurrent.futures.Future = concurrent.futures.Future()
    ref = ObjectRef(_refs.next_ref_id(), fut)
    ref._payload = payload
    fut.set_result(deserialize(payload))
    return ref


def kill(actor: ActorHandle, *, no_restart: bool = True) -> None:
    """Kill the actor's process now; its pending calls fail with ActorDiedError."""
    if not isinstance(actor, ActorHandle):
        raise TypeError(f"kill() expects an actor handle, got {type(actor).__name__}")
    actor._state.kill()


def cancel(ref: ObjectRef, *, force: bool = False, recursive: bool = True) -> None:
    """Cancel the call behind ``ref``; ``get`` on it then raises TaskCancelledError.

    A queued call never runs. A running async-actor call gets asyncio
    cancellation and a running remote function a KeyboardInterrupt
    (``force=True`` kills its worker instead). A running call of a threaded
    actor is not interrupted: it runs to its end and its result is dropped.
    """
    if not isinstance(ref, ObjectRef):
        raise TypeError(f"cancel() expects an ObjectRef, got {type(ref).__name__}")
    record = ref._owner
    if record is None:
        return  # a put() value: nothing runs
    if force and isinstance(record.owner, _driver.ActorState):
        raise ValueError("force=True is not supported for actor calls; use kill(actor)")
    record.owner.runtime.cancel(record, force)


def get_actor(name: str, namespace: str | None = None) -> ActorHandle:
    """The handle of a live actor created with ``options(name=...)``."""
    rt = runtime()
    with rt.lock:
        entry = rt.named.get((namespace if namespace is not None else _default_namespace, name))
    if entry is None or not entry[0].alive:
        raise ValueError(f"Failed to look up actor with name {name!r}: no live actor has it")
    return ActorHandle(entry[0], entry[1])
