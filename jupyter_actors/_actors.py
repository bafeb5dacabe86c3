"""Actor classes, handles and methods: what ``@remote`` makes of a class."""
from __future__ import annotations

import concurrent.futures
import difflib
import functools
import inspect
import threading
import weakref

from . import _api, _driver, _refs
from ._arguments import Signature, _signature, prepare_arguments
from ._options import ACTOR_OPTIONS, METHOD_OPTIONS, _check_options
from ._refs import ObjectRef
from ._serialization import LazyDefinition

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
        self._definition = LazyDefinition(self._cls)
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
        return self._definition.payload()

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
    rt = _api.runtime()
    cls = actor_class._cls
    payload, deps, exported = prepare_arguments(actor_class._init_signature, args, kwargs)
    is_async = actor_class._is_async
    max_concurrency = options.get("max_concurrency") or (1000 if is_async else 1)
    name = options.get("name")
    key = None
    if name is not None:
        key = (options.get("namespace", _api._default_namespace), name)
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
