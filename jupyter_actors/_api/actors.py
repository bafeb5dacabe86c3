"""Actor classes, handles and methods: what ``@remote`` makes of a class."""
from __future__ import annotations

import difflib
import functools
import inspect
import weakref

from .. import _ids
from .._backend.base import ActorSpec, CallSpec
from .._wire.payloads import LazyDefinition
from . import session
from .arguments import Signature, _signature, exporting, prepare_arguments
from .options import ACTOR, METHOD, check_options


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
        merged.update(check_options(dict(options), ACTOR))
        return _ActorClassWithOptions(self, merged)

    @property
    def is_async(self) -> bool:
        return self._is_async

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
    backend = session.backend()
    payload, deps, exported = prepare_arguments(actor_class._init_signature, args, kwargs)
    name = options.get("name")
    namespace = options.get("namespace", session.default_namespace)
    if name is not None and options.get("get_if_exists"):
        found = backend.find_actor(name, namespace)
        if found is not None:
            return ActorHandle(found[0], found[1], backend)
    is_async = actor_class._is_async
    spec = ActorSpec(
        actor_id=_ids.new_actor_id(), class_name=actor_class._cls.__name__,
        actor_class=actor_class, definition=actor_class._definition, args=payload, deps=deps,
        exported=exported, is_async=is_async,
        max_concurrency=options.get("max_concurrency") or (1000 if is_async else 1),
        name=name, namespace=namespace,
        max_pending_calls=options.get("max_pending_calls", -1),
        context=session.output_router().capture())
    return ActorHandle(backend.create_actor(spec), actor_class, backend)


class ActorHandle:
    """A reference to a running actor; ``handle.method.remote(...)`` calls it.

    It holds the backend's token for the actor (opaque here) and pickles to the
    actor's id, which the session's backend maps back to the actor.
    """

    def __init__(self, actor, actor_class: ActorClass, backend):
        self._actor = actor                  # the backend's token
        self._actor_id = actor.actor_id
        self._actor_class = actor_class
        self._backend = backend
        # Unnamed actors live while a handle does (the backend counts them).
        backend.add_handle(actor)
        weakref.finalize(self, backend.drop_handle, actor)

    def __getattr__(self, name: str) -> "ActorMethod":
        if name.startswith("__") and name.endswith("__") and name != "__call__":
            raise AttributeError(name)
        info = self._actor_class._methods.get(name)
        if info is None:
            close = difflib.get_close_matches(name, list(self._actor_class._methods), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise AttributeError(f"The actor {self._actor_class._cls.__name__} has no method "
                                 f"{name!r}{hint}")
        return ActorMethod(self, info)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._actor_class._methods))

    def _describe(self) -> dict:
        """A snapshot of the actor from its backend (pid, state, call counts ...)."""
        return self._backend.describe_actor(self._actor)

    def __repr__(self) -> str:
        row = self._describe()
        status = "alive" if row["alive"] else "dead"
        return f"Actor({row['class_name']}, pid={row['pid']}, {status})"

    # Notebook display (a snapshot of the state): see _jupyter.display.
    def _repr_html_(self) -> str:
        from .._jupyter.display import actor_html
        return actor_html(self._describe())

    def _repr_pretty_(self, p, cycle) -> None:
        from .._jupyter.display import actor_text
        p.text(actor_text(self._describe()))

    def __reduce__(self):
        if exporting():
            raise TypeError("Actor handles cannot be passed to other actors or remote "
                            "functions yet; call the actor from the driver and pass the "
                            "results instead.")
        return (_handle_from_id, (self._actor_id,))

    def __hash__(self) -> int:
        return hash(self._actor_id)

    def __eq__(self, other) -> bool:
        return isinstance(other, ActorHandle) and other._actor_id == self._actor_id


def _handle_from_id(actor_id: str) -> ActorHandle:
    """Unpickling a handle: the same actor, looked up in the session's backend."""
    backend = session.backend()
    found = backend.actor_by_id(actor_id)
    if found is None:
        raise ValueError(f"no actor with id {actor_id} is known to this session")
    return ActorHandle(found[0], found[1], backend)


class ActorMethod:
    """``handle.method``: call it with ``.remote(...)``."""

    __slots__ = ("_handle", "_info", "_num_returns")

    def __init__(self, handle: ActorHandle, info: MethodInfo, num_returns=None):
        self._handle = handle
        self._info = info
        self._num_returns = info.num_returns if num_returns is None else num_returns

    def remote(self, *args, **kwargs):
        info = self._info
        handle = self._handle
        payload, deps, exported = prepare_arguments(info.signature, args, kwargs)
        spec = CallSpec(info.signature.label, info.name, payload, deps, self._num_returns,
                        session.output_router().capture(), exported)
        return handle._backend.call_actor(handle._actor, spec)

    def options(self, **options) -> "ActorMethod":
        check_options(dict(options), METHOD)
        return ActorMethod(self._handle, self._info, options.get("num_returns"))

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Actor methods cannot be called directly. Instead of "
                        f"'{self._info.name}()', use '{self._info.name}.remote()'.")

    def __repr__(self) -> str:
        return f"<ActorMethod {self._info.signature.label}>"

