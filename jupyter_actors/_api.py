"""The public API: ``remote``, actor classes and handles, remote functions, get/wait/put.

Every ``.remote()`` checks its arguments against the signature and pickles them
in the caller's thread, so a mistake raises where the user made it; the call
itself then runs in a worker process (see ``_driver``).
"""
from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import difflib
import functools
import inspect
import os
import threading
import time
import weakref
from typing import Any

from . import _driver, _refs
from ._refs import DepArg, ObjectRef
from ._serialization import EMPTY_ARGS_PAYLOAD, deserialize, serialize, serialize_definition
from .exceptions import GetTimeoutError

_runtime: _driver.Runtime | None = None
_runtime_lock = threading.Lock()

# Options Ray accepts that mean nothing on one machine: accepted and ignored.
_RESOURCE_OPTIONS = {"num_cpus", "num_gpus", "memory", "resources", "scheduling_strategy",
                     "accelerator_type", "label_selector", "placement_group",
                     "placement_group_bundle_index", "_metadata", "enable_task_events"}
ACTOR_OPTIONS = {"max_concurrency", "name", "namespace", "get_if_exists", "lifetime",
                 "max_restarts", "max_task_retries", "runtime_env", "concurrency_groups",
                 "max_pending_calls"} | _RESOURCE_OPTIONS
TASK_OPTIONS = {"num_returns", "max_retries", "retry_exceptions", "name", "runtime_env",
                "max_calls"} | _RESOURCE_OPTIONS
METHOD_OPTIONS = {"num_returns", "name", "concurrency_group"}

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

def _check_options(options: dict, allowed: set, what: str) -> dict:
    unknown = set(options) - allowed
    if unknown:
        raise TypeError(f"unknown option(s) for {what}: {', '.join(sorted(unknown))}; "
                        f"valid options are {', '.join(sorted(allowed - _RESOURCE_OPTIONS))}")
    if "max_concurrency" in options:
        mc = options["max_concurrency"]
        if not isinstance(mc, int) or isinstance(mc, bool) or mc < 1:
            raise ValueError(f"max_concurrency must be an int >= 1, got {mc!r}")
    if "num_returns" in options:
        n = options["num_returns"]
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"num_returns must be an int >= 0, got {n!r}")
    if "max_retries" in options:
        n = options["max_retries"]
        if not isinstance(n, int) or isinstance(n, bool) or n < -1:
            raise ValueError(f"max_retries must be an int >= -1, got {n!r}")
    for key in ("max_restarts", "max_task_retries"):
        if options.get(key, 0) not in (0, None):
            raise NotImplementedError(f"{key} is not supported yet: a dead actor stays dead")
    if options.get("runtime_env"):
        raise NotImplementedError("runtime_env is not supported: workers share the driver's "
                                  "environment")
    if options.get("concurrency_groups"):
        raise NotImplementedError("concurrency_groups are not supported yet")
    if options.get("retry_exceptions"):
        raise NotImplementedError("retry_exceptions is not supported yet")
    if options.get("lifetime") not in (None, "non_detached"):
        raise ValueError("lifetime='detached' is not possible here: actors end with the driver")
    if "name" in options and options["name"] is not None and not isinstance(options["name"], str):
        raise TypeError(f"name must be a string, got {type(options['name']).__name__}")
    return options


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

class Signature:
    """Checks call arguments against a callable's signature, caching what passed."""

    __slots__ = ("sig", "label", "_ok")

    def __init__(self, sig: inspect.Signature | None, label: str):
        self.sig = sig
        self.label = label
        self._ok: set = set()

    def check(self, args: tuple, kwargs: dict) -> None:
        if self.sig is None:
            return
        key = (len(args), tuple(kwargs))
        if key in self._ok:
            return
        try:
            self.sig.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.label}(): {exc}") from None
        self._ok.add(key)


def _signature(fn, drop_first: bool, label: str) -> Signature:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return Signature(None, label)
    if drop_first:
        params = list(sig.parameters.values())
        if params and params[0].kind in (params[0].POSITIONAL_ONLY,
                                         params[0].POSITIONAL_OR_KEYWORD):
            sig = sig.replace(parameters=params[1:])
        elif not params or params[0].kind is not params[0].VAR_POSITIONAL:
            return Signature(None, label)
    return Signature(sig, label)


_export_capture = threading.local()


def _export(ref: ObjectRef) -> None:
    """A ref nested in arguments: remember it so its worker can look it up."""
    bucket = getattr(_export_capture, "refs", None)
    if bucket is None:
        raise TypeError("an ObjectRef can only be pickled as an argument of a remote call")
    bucket.append(ref)


def _resolve_returned_ref(ref_id: int):
    """A worker returned a ref the driver passed it: find the driver's own future."""
    rt = _runtime
    for conn in list(rt.conns) if rt is not None else ():
        ref = conn.pins.get(ref_id)
        if ref is not None:
            return ref._future
    raise KeyError(f"ObjectRef {ref_id:032x} is no longer known to the driver")


_refs.set_exporter(_export)
if not _refs.IN_WORKER:
    _refs.set_resolver(_resolve_returned_ref)


def prepare_arguments(signature: Signature, args: tuple, kwargs: dict):
    """(payload, top-level ref deps, nested refs) for a call; raises at the caller on bad input."""
    signature.check(args, kwargs)
    if not args and not kwargs:
        return EMPTY_ARGS_PAYLOAD, (), None
    deps: list = []
    if any(type(a) is ObjectRef for a in args) or any(type(v) is ObjectRef
                                                       for v in kwargs.values()):
        def swap(value):
            if type(value) is ObjectRef:
                deps.append(value)
                return DepArg(len(deps) - 1)
            return value
        args = tuple(swap(a) for a in args)
        kwargs = {k: swap(v) for k, v in kwargs.items()}
    _export_capture.refs = exported = []
    try:
        # handoff: the worker owns the shared-memory files of big arguments
        # once it has them, and reuses them (see _serialization).
        payload = serialize((args, kwargs), handoff=True)
    except Exception as exc:
        raise _argument_error(signature, args, kwargs, exc) from exc
    finally:
        _export_capture.refs = None
    return payload, tuple(deps), exported or None


def _argument_error(signature: Signature, args, kwargs, exc: Exception) -> TypeError:
    names: list = []
    try:
        bound = signature.sig.bind(*args, **kwargs) if signature.sig else None
        items = list(bound.arguments.items()) if bound else None
    except TypeError:
        items = None
    if items is None:
        items = [(f"#{i}", a) for i, a in enumerate(args)] + list(kwargs.items())
    _export_capture.refs = []
    try:
        for name, value in items:
            try:
                serialize(value)
            except Exception:
                names.append(name)
    finally:
        _export_capture.refs = None
    which = ", ".join(repr(n) for n in names) if names else "the arguments"
    return TypeError(f"Could not pickle argument {which} of {signature.label}(): "
                     f"{type(exc).__name__}: {exc}")


# -- actors ------------------------------------------------------------------------

class MethodInfo:
    __slots__ = ("name", "signature", "is_async", "num_returns")

    def __init__(self, name, signature, is_async, num_returns):
        self.name = name
        self.signature = signature
        self.is_async = is_async
        self.num_returns = num_returns


def _inspect_methods(cls) -> dict:
    methods = {}
    for name in dir(cls):
        if name.startswith("__") and name.endswith("__") and name != "__call__":
            continue
        raw = inspect.getattr_static(cls, name)
        if isinstance(raw, staticmethod):
            fn, drop = raw.__func__, False
        elif isinstance(raw, classmethod):
            fn, drop = raw.__func__, True
        elif inspect.isfunction(raw):
            fn, drop = raw, True
        else:
            continue
        label = f"{cls.__name__}.{name}"
        is_async = inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)
        num_returns = getattr(fn, "__jupyter_actors_num_returns__",
                              getattr(fn, "__ray_num_returns__", 1))
        methods[name] = MethodInfo(name, _signature(fn, drop, label), is_async, num_returns)
    return methods


class ActorClass:
    """What ``@remote`` makes of a class: ``Cls.remote(...)`` starts an actor."""

    def __init__(self, cls: type, options: dict):
        self._cls = cls
        self._options = options
        self._methods = _inspect_methods(cls)
        self._is_async = any(m.is_async for m in self._methods.values())
        init = inspect.getattr_static(cls, "__init__", None)
        self._init_signature = (_signature(init, True, f"{cls.__name__}.__init__")
                                if inspect.isfunction(init)
                                else Signature(None, f"{cls.__name__}.__init__"))
        self._payload = None
        self._payload_lock = threading.Lock()
        functools.update_wrapper(self, cls, updated=())

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Actors cannot be instantiated directly. Instead of "
                        f"'{self._cls.__name__}()', use '{self._cls.__name__}.remote()'.")

    def remote(self, *args, **kwargs) -> "ActorHandle":
        return _create_actor(self, self._options, args, kwargs)

    def options(self, **options) -> "_ActorClassWithOptions":
        merged = dict(self._options)
        merged.update(_check_options(dict(options), ACTOR_OPTIONS, "an actor class"))
        return _ActorClassWithOptions(self, merged)

    @property
    def is_async(self) -> bool:
        return self._is_async

    def class_payload(self):
        with self._payload_lock:
            if self._payload is None:
                self._payload = serialize_definition(self._cls)
            return self._payload

    def __repr__(self) -> str:
        kind = "async actor" if self._is_async else "threaded actor"
        return f"<ActorClass {self._cls.__qualname__} ({kind})>"


class _ActorClassWithOptions:
    def __init__(self, actor_class: ActorClass, options: dict):
        self._actor_class = actor_class
        self._options = options

    def remote(self, *args, **kwargs) -> "ActorHandle":
        return _create_actor(self._actor_class, self._options, args, kwargs)


def _create_actor(actor_class: ActorClass, options: dict, args, kwargs) -> "ActorHandle":
    rt = runtime()
    cls = actor_class._cls
    payload, deps, exported = prepare_arguments(actor_class._init_signature, args, kwargs)
    is_async = actor_class._is_async
    max_concurrency = options.get("max_concurrency") or (1000 if is_async else 1)
    name = options.get("name")
    key = None
    if name is not None:
        key = (options.get("namespace", _default_namespace), name)
        with rt.lock:
            existing = rt.named.get(key)
            if existing is not None and existing[0].alive:
                if options.get("get_if_exists"):
                    return ActorHandle(existing[0], existing[1])
                raise ValueError(f"The name {name!r} is already taken by another actor; "
                                 f"pass get_if_exists=True to get that one instead.")
    state = _driver.ActorState(rt, cls.__name__, name, is_async, max_concurrency, key)
    worker_options = rt.worker_options()
    worker_options.update(class_name=cls.__name__, max_concurrency=max_concurrency,
                          is_async=is_async)
    record = _driver.CallRecord("init", f"{cls.__name__}.__init__",
                                (actor_class.class_payload(), worker_options), state, payload,
                                deps, 1, rt.router.capture(), exported)
    ready = ObjectRef(record.call_id, concurrent.futures.Future())
    record.refs = [ready]
    state.ready_ref = ready
    handle = ActorHandle(state, actor_class)
    rt.actors.add(state)
    if key is not None:
        with rt.lock:
            rt.named[key] = (state, actor_class)
    state.submit(record)
    rt.acquire_worker(state.attach)
    return handle


class ActorHandle:
    """A reference to a running actor; ``handle.method.remote(...)`` calls it."""

    def __init__(self, state: _driver.ActorState, actor_class: ActorClass):
        self._state = state
        self._actor_class = actor_class
        if state.named_key is None:
            _HandleCount.add(state)
            weakref.finalize(self, _HandleCount.drop, state)

    def __getattr__(self, name: str) -> "ActorMethod":
        if name.startswith("__") and name.endswith("__") and name != "__call__":
            raise AttributeError(name)
        info = self._actor_class._methods.get(name)
        if info is None:
            close = difflib.get_close_matches(name, list(self._actor_class._methods), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise AttributeError(f"The actor {self._state.class_name} has no method "
                                 f"{name!r}{hint}")
        return ActorMethod(self, info)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._actor_class._methods))

    def __repr__(self) -> str:
        s = self._state
        status = "alive" if s.alive else "dead"
        return f"Actor({s.class_name}, pid={s.pid}, {status})"

    # Notebook display (a snapshot of the state): see _display.
    def _repr_html_(self) -> str:
        from ._display import actor_html
        return actor_html(self)

    def _repr_pretty_(self, p, cycle) -> None:
        from ._display import actor_text
        p.text(actor_text(self))

    def __reduce__(self):
        raise TypeError("Actor handles cannot be passed to other actors or remote functions "
                        "yet; call the actor from the driver and pass the results instead.")

    def __hash__(self) -> int:
        return id(self._state)

    def __eq__(self, other) -> bool:
        return isinstance(other, ActorHandle) and other._state is self._state


class _HandleCount:
    """Counts live handles per actor; the last one dropped lets the actor exit."""

    _counts: dict = {}
    _lock = threading.Lock()

    @classmethod
    def add(cls, state) -> None:
        with cls._lock:
            cls._counts[id(state)] = cls._counts.get(id(state), 0) + 1

    @classmethod
    def drop(cls, state) -> None:
        with cls._lock:
            n = cls._counts.get(id(state), 1) - 1
            if n:
                cls._counts[id(state)] = n
                return
            cls._counts.pop(id(state), None)
        state.release()


class ActorMethod:
    """``handle.method``: call it with ``.remote(...)``."""

    __slots__ = ("_handle", "_info", "_num_returns")

    def __init__(self, handle: ActorHandle, info: MethodInfo, num_returns=None):
        self._handle = handle
        self._info = info
        self._num_returns = info.num_returns if num_returns is None else num_returns

    def remote(self, *args, **kwargs):
        info = self._info
        state = self._handle._state
        payload, deps, exported = prepare_arguments(info.signature, args, kwargs)
        record = _driver.CallRecord("call", info.signature.label, info.name, state, payload,
                                    deps, self._num_returns, state.runtime.router.capture(),
                                    exported)
        refs = _new_refs(record)
        state.submit(record)
        return refs

    def options(self, **options) -> "ActorMethod":
        _check_options(dict(options), METHOD_OPTIONS, "a method")
        return ActorMethod(self._handle, self._info, options.get("num_returns"))

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Actor methods cannot be called directly. Instead of "
                        f"'{self._info.name}()', use '{self._info.name}.remote()'.")

    def __repr__(self) -> str:
        return f"<ActorMethod {self._info.signature.label}>"


def _new_refs(record: _driver.CallRecord):
    n = record.num_returns
    refs = [ObjectRef(record.call_id if i == 0 else _refs.next_ref_id(),
                      concurrent.futures.Future()) for i in range(max(n, 1))]
    for ref in refs:
        ref._owner = record
    if n == 0:
        record.refs = refs
        record.num_returns = 0
        return None
    record.refs = refs
    return refs[0] if n == 1 else refs


# -- remote functions --------------------------------------------------------------

class RemoteFunction:
    """What ``@remote`` makes of a function: ``f.remote(...)`` runs it in a worker."""

    def __init__(self, fn, options: dict):
        self._function = fn
        self._options = options
        name = getattr(fn, "__name__", "function")
        self._signature = _signature(fn, False, name)
        self._id = f"{name}-{id(self):x}-{time.monotonic_ns():x}"
        self._payload = None
        self._payload_lock = threading.Lock()
        functools.update_wrapper(self, fn, updated=())

    def __call__(self, *args, **kwargs):
        name = self._signature.label
        raise TypeError(f"Remote functions cannot be called directly. Instead of running "
                        f"'{name}()', try '{name}.remote()'.")

    def remote(self, *args, **kwargs):
        return _submit_task(self, self._options, args, kwargs)

    def options(self, **options) -> "_RemoteFunctionWithOptions":
        merged = dict(self._options)
        merged.update(_check_options(dict(options), TASK_OPTIONS, "a remote function"))
        return _RemoteFunctionWithOptions(self, merged)

    def function_payload(self):
        with self._payload_lock:
            if self._payload is None:
                self._payload = serialize_definition(self._function)
            return self._payload

    def __repr__(self) -> str:
        return f"<RemoteFunction {self._signature.label}>"


class _RemoteFunctionWithOptions:
    def __init__(self, fn: RemoteFunction, options: dict):
        self._fn = fn
        self._options = options

    def remote(self, *args, **kwargs):
        return _submit_task(self._fn, self._options, args, kwargs)


def _submit_task(fn: RemoteFunction, options: dict, args, kwargs):
    rt = runtime()
    payload, deps, exported = prepare_arguments(fn._signature, args, kwargs)
    pool = rt.task_pool
    if fn._id not in pool.functions:
        pool.define(fn._id, fn.function_payload())
    retries = options.get("max_retries", 3)
    record = _driver.CallRecord("task", fn._signature.label, fn._id, pool, payload, deps,
                                options.get("num_returns", 1), rt.router.capture(), exported,
                                retries=10**9 if retries == -1 else retries)
    refs = _new_refs(record)
    pool.submit(record)
    return refs


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
