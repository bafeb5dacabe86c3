"""Actor classes, handles and methods: what ``@remote`` makes of a class."""
from __future__ import annotations

import functools
import inspect
import time
import weakref

from .. import _ids
from .._backend.base import ActorSpec, CallSpec, new_spec
from .._wire.payloads import LazyDefinition, Payload, deserialize_definition
from . import refs as _refs
from . import session
from .arguments import (Signature, _signature, blob_arguments, prepare_arguments,
                        raw_arguments)
from .generators import is_generator_function, wire_num_returns
from .options import ACTOR, METHOD, check_actor_options, check_options


class MethodInfo:
    __slots__ = ("name", "signature", "is_async", "num_returns", "group", "is_generator",
                 "declared", "backpressure", "retry")

    def __init__(self, name, signature, is_async, fn, group=None):
        self.name = name
        self.signature = signature
        self.is_async = is_async
        self.group = group          # @method(concurrency_group=...), None: the default group
        self.is_generator = is_generator_function(fn)
        # As given to @method (None: not given).
        self.declared = getattr(fn, "__jupyter_actors_num_returns__",
                                getattr(fn, "__ray_num_returns__", None))
        self.backpressure = getattr(fn, "__jupyter_actors_backpressure__", None)
        # None, or (max_task_retries, retry_exceptions) given to @method.
        self.retry = getattr(fn, "__jupyter_actors_retry__", None)
        # What a call sends (see _wire.messages): a generator streams by default.
        self.num_returns = wire_num_returns(self.declared, self.is_generator,
                                            self.backpressure, signature.label)

    def with_options(self, options: dict) -> int:
        """The num_returns a call with these ``.options()`` sends."""
        num_returns = options.get("num_returns", self.declared)
        backpressure = options.get("_generator_backpressure_num_objects", self.backpressure)
        return wire_num_returns(num_returns, self.is_generator, backpressure,
                                self.signature.label)


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
        group = getattr(fn, "__jupyter_actors_concurrency_group__",
                        getattr(fn, "__ray_concurrency_group__", None))
        methods[name] = MethodInfo(name, _signature(fn, drop, label), is_async, fn, group)
    return methods


def _terminate_info(cls) -> MethodInfo:
    """``handle.__ray_terminate__``: ends the actor after the calls queued before it."""
    def __ray_terminate__(self):
        pass
    label = f"{cls.__name__}.{TERMINATE}"
    return MethodInfo(TERMINATE, _signature(__ray_terminate__, True, label), False,
                      __ray_terminate__)


TERMINATE = "__ray_terminate__"


def check_method_groups(cls_name: str, methods: dict, groups) -> None:
    """Every ``@method(concurrency_group=...)`` of the class names one of ``groups``."""
    for info in methods.values():
        if info.group is not None and (not groups or info.group not in groups):
            declared = (f"the class declares {', '.join(map(repr, groups))}" if groups else
                        "the class declares none (@remote(concurrency_groups={...}))")
            raise ValueError(f"{cls_name}.{info.name} is in concurrency group {info.group!r}, "
                             f"which {cls_name} does not declare: {declared}")


def unknown_group(label: str, group: str, groups) -> ValueError:
    declared = (f"its groups are {', '.join(map(repr, groups))}" if groups else
                "it declares none (@remote(concurrency_groups={...}) on the class, or "
                "Cls.options(concurrency_groups={...}))")
    return ValueError(f"{label}: unknown concurrency group {group!r}; {declared}")


class ActorClass:
    """What ``@remote`` makes of a class: ``Cls.remote(...)`` starts an actor."""

    def __init__(self, cls: type, options: dict, key: str | None = None,
                 definition: LazyDefinition | None = None):
        self._cls = cls
        self._options = options
        # Names this class across processes (handles and pickled copies carry it).
        self._key = key or f"{cls.__qualname__}-{id(self):x}-{time.monotonic_ns():x}"
        self._methods = _inspect_methods(cls)
        self._is_async = (any(m.is_async for m in self._methods.values())
                          or inspect.iscoroutinefunction(getattr(cls, "__init__", None)))
        init = inspect.getattr_static(cls, "__init__", None)
        self._init_signature = (_signature(init, True, f"{cls.__name__}.__init__")
                                if inspect.isfunction(init)
                                else Signature(None, f"{cls.__name__}.__init__"))
        self._definition = definition or LazyDefinition(self._cls)
        if options.get("concurrency_groups") is not None:
            check_method_groups(cls.__name__, self._methods, options["concurrency_groups"])
        functools.update_wrapper(self, cls, updated=())
        _classes.setdefault(self._key, self)

    def __reduce__(self):
        # Inside another remote class or function (a Supervisor that creates
        # Trainers): the class travels with it, and is made once per process.
        return (_actor_class_from, (self._key, self._cls, self._options))

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Actors cannot be instantiated directly. Instead of "
                        f"'{self._cls.__name__}()', use '{self._cls.__name__}.remote()'.")

    def remote(self, *args, **kwargs) -> "ActorHandle":
        return _create_actor(self, self._options, args, kwargs)

    def options(self, **options) -> "_ActorClassWithOptions":
        merged = dict(self._options)
        merged.update(check_options(dict(options), ACTOR))
        return _ActorClassWithOptions(self, check_actor_options(merged))

    @property
    def is_async(self) -> bool:
        return self._is_async

    def __repr__(self) -> str:
        kind = "async actor" if self._is_async else "threaded actor"
        return f"<ActorClass {self._cls.__qualname__} ({kind})>"


# key -> ActorClass made in this process, so a class arriving again is not rebuilt.
_classes: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def _actor_class_from(key: str, cls: type, options: dict) -> ActorClass:
    found = _classes.get(key)
    return found if found is not None else ActorClass(cls, options, key)


def actor_class_from_payload(key: str, payload: Payload) -> ActorClass:
    """The class a handle or a worker's ``Cls.remote()`` names (its definition payload)."""
    found = _classes.get(key)
    if found is None:
        cls = deserialize_definition(payload)
        found = ActorClass(cls, {}, key, LazyDefinition.of_payload(cls, payload))
    return found


class _ActorClassWithOptions:
    def __init__(self, actor_class: ActorClass, options: dict):
        self._actor_class = actor_class
        self._options = options

    def remote(self, *args, **kwargs) -> "ActorHandle":
        return _create_actor(self._actor_class, self._options, args, kwargs)


def _create_actor(actor_class: ActorClass, options: dict, args, kwargs) -> "ActorHandle":
    backend = session.backend()
    prepare = raw_arguments if backend.raw_arguments else prepare_arguments
    payload, deps, exported = prepare(actor_class._init_signature, args, kwargs)
    name = options.get("name")
    namespace = options.get("namespace", session.default_namespace)
    if name is not None and options.get("get_if_exists"):
        # Get or create, as Ray: the constructor's arguments matter only if it is created.
        found = backend.find_actor(name, namespace)
        if found is not None:
            return handle_of_found(found, backend)
        try:
            return _start_actor(backend, actor_class, options, payload, deps, exported)
        except ValueError:
            # Another thread or worker created it between the look-up and here.
            found = backend.find_actor(name, namespace)
            if found is None:
                raise
            return handle_of_found(found, backend)
    return _start_actor(backend, actor_class, options, payload, deps, exported)


def _start_actor(backend, actor_class: ActorClass, options: dict, payload, deps,
                 exported) -> "ActorHandle":
    name = options.get("name")
    namespace = options.get("namespace", session.default_namespace)
    is_async = actor_class._is_async
    groups = options.get("concurrency_groups") or None
    check_method_groups(actor_class._cls.__name__, actor_class._methods, groups)
    spec = ActorSpec(
        actor_id=_ids.new_actor_id(), class_name=actor_class._cls.__name__,
        class_key=actor_class._key, definition=actor_class._definition, args=payload, deps=deps,
        exported=exported, is_async=is_async,
        max_concurrency=options.get("max_concurrency") or (1000 if is_async else 1),
        name=name, namespace=namespace,
        max_pending_calls=options.get("max_pending_calls", -1),
        context=session.output_router().capture(),
        concurrency_groups=dict(groups) if groups else None,
        max_restarts=options.get("max_restarts") or 0,
        max_task_retries=options.get("max_task_retries") or 0, options=options)
    return ActorHandle(backend.create_actor(spec), actor_class, backend, spec.concurrency_groups)


class ActorHandle:
    """A reference to a running actor; ``handle.method.remote(...)`` calls it.

    It holds the backend's token for the actor (opaque here) and pickles to the
    actor's id, which the session's backend maps back to the actor.
    """

    def __init__(self, actor, actor_class: ActorClass, backend, groups=None):
        self._actor = actor                  # the backend's token
        self._actor_id = actor.actor_id
        self._actor_class = actor_class
        self._backend = backend
        self._groups = groups                # {name: size} of its concurrency groups, or None
        # What this handle's methods call through; it counts as the handle for the
        # backend: unnamed actors live while it does (the handle or a method of it).
        self._target = target = _CallTarget(actor, backend, groups)
        backend.add_handle(actor)
        weakref.finalize(target, backend.drop_handle, actor)

    def __getattr__(self, name: str) -> "ActorMethod":
        info = self._actor_class._methods.get(name)  # (dunder names are not in it)
        if info is not None:
            # Made once per handle and name, then found in the instance dict: ``h.f``
            # runs on every call. The method holds the handle's target, not the
            # handle, so the cache makes no reference cycle.
            method = self.__dict__[name] = ActorMethod(self._target, info)
            return method
        if name == TERMINATE:
            return ActorMethod(self._target, _terminate_info(self._actor_class._cls))
        if name.startswith("__") and name.endswith("__") and name != "__call__":
            raise AttributeError(name)
        info = self._actor_class._methods.get(name)
        if info is None:
            import difflib   # here: only a misspelt method needs it
            close = difflib.get_close_matches(name, list(self._actor_class._methods), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise AttributeError(f"The actor {self._actor_class._cls.__name__} has no method "
                                 f"{name!r}{hint}")
        return ActorMethod(self._target, info)

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
        # A handle travels as its actor's id and its class (pickled once per
        # class, and rebuilt once per process); where it lands it calls the same actor.
        _refs.note(self._actor)
        cls = self._actor_class
        return (_rebuild_handle, (self._actor_id, self._actor.named_key, cls._key,
                                  cls._definition.payload().blob, self._groups))

    def __hash__(self) -> int:
        return hash(self._actor_id)

    def __eq__(self, other) -> bool:
        return isinstance(other, ActorHandle) and other._actor_id == self._actor_id


def handle_of_found(found, backend) -> ActorHandle:
    """A handle for what ``backend.find_actor`` found: (token, class key, class payload, groups)."""
    actor, class_key, payload, groups = found
    return ActorHandle(actor, actor_class_from_payload(class_key, payload), backend, groups)


def _rebuild_handle(actor_id: str, named_key, class_key: str, class_blob: bytes,
                    groups=None) -> ActorHandle:
    """Unpickling a handle: the same actor, as this process's backend reaches it."""
    backend = session.backend()
    actor = backend.adopt_actor(actor_id, named_key)
    if _refs.capturing():
        _refs.note(actor)
    return ActorHandle(actor, actor_class_from_payload(class_key, Payload(class_blob)), backend,
                       groups)


class _CallTarget:
    """What a handle's methods call: the backend's token for the actor, the backend and the
    actor's groups. The handle and its methods share it; the backend's count of the handle
    drops when the last of them is gone."""

    __slots__ = ("actor", "backend", "groups", "prepare", "__weakref__")

    def __init__(self, actor, backend, groups):
        self.actor = actor
        self.backend = backend
        self.groups = groups
        # How a call's arguments become what the backend takes (see Backend).
        self.prepare = (raw_arguments if backend.raw_arguments else
                        blob_arguments if backend.blob_arguments else prepare_arguments)


class ActorMethod:
    """``handle.method``: call it with ``.remote(...)``."""

    __slots__ = ("_target", "_info", "_num_returns", "_group", "_retry")

    def __init__(self, target: _CallTarget, info: MethodInfo, num_returns=None, group=None,
                 retry=None):
        self._target = target
        self._info = info
        self._num_returns = info.num_returns if num_returns is None else num_returns
        self._group = info.group if group is None else group
        self._retry = info.retry if retry is None else retry

    def remote(self, *args, **kwargs):
        info = self._info
        target = self._target
        group = self._group
        if group is not None and (target.groups is None or group not in target.groups):
            raise unknown_group(f"{info.signature.label}.remote()", group, target.groups)
        payload, deps, exported = target.prepare(info.signature, args, kwargs)
        spec = new_spec(CallSpec, (info.signature.label, info.name, payload, deps,
                                   self._num_returns, session._router.capture(), exported, None,
                                   group, self._retry))
        return target.backend.call_actor(target.actor, spec)

    def options(self, **options) -> "ActorMethod":
        check_options(dict(options), METHOD)
        retry = self._retry
        if "max_task_retries" in options or "retry_exceptions" in options:
            retries, exceptions = retry or (None, None)
            retry = (options.get("max_task_retries", retries),
                     options.get("retry_exceptions", exceptions))
        return ActorMethod(self._target, self._info, self._info.with_options(options),
                           options.get("concurrency_group"), retry)

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Actor methods cannot be called directly. Instead of "
                        f"'{self._info.name}()', use '{self._info.name}.remote()'.")

    def __repr__(self) -> str:
        return f"<ActorMethod {self._info.signature.label}>"

