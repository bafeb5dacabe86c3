"""The seam between the public API and whatever runs the calls.

    public API (_api)                       a backend
    ─────────────────                       ─────────
    Cls.remote()   → ActorSpec    ──▶  create_actor(spec)        → actor token
    h.m.remote()   → CallSpec     ──▶  call_actor(token, spec)   → refs
    f.remote()     → TaskSpec     ──▶  submit_task(spec)         → refs
    put / cancel / kill / get_actor ─▶  put, cancel_call, kill, find_actor ...
    %actors, reprs, widgets        ◀──  describe_actor(s); the trace (_trace)

The API checks and pickles arguments in the caller's thread, then hands a
plain spec to the backend; it never reads a backend's internals. An actor
token is opaque to the API (it reads only its ``actor_id``): the handle keeps
it and passes it back.
ObjectRefs are the same type everywhere: a backend completes each ref's
``concurrent.futures.Future``, and ``get``/``wait``/``await`` only see that.

Three implement it: the embedded runtime (``local``), the client inside
each of its workers (``_worker.client``), and Ray (``ray``). A backend whose
``raw_arguments`` is true gets each call's ``(args, kwargs)`` as given (after
the signature check) instead of a payload: Ray pickles them itself.
"""
from __future__ import annotations

import abc
import contextlib
from typing import Any, NamedTuple


class ActorSpec(NamedTuple):
    """What ``Cls.remote(...)`` asks for."""
    actor_id: str
    class_name: str
    class_key: str            # names the class across processes (see find_actor)
    definition: Any           # LazyDefinition of the class: .payload() pickles it once
    args: Any                 # payload of (args, kwargs)
    deps: tuple               # top-level ObjectRef arguments
    exported: Any             # refs nested in the arguments, or None
    is_async: bool
    max_concurrency: int
    name: str | None
    namespace: str | None
    max_pending_calls: int    # -1: no limit
    context: Any              # output-router context of the caller
    # {"io": 2, ...}: the actor's named concurrency groups and their sizes; the default
    # group (methods with no group) is sized by max_concurrency.
    concurrency_groups: dict | None = None
    max_restarts: int = 0     # -1: for ever
    max_task_retries: int = 0 # -1: for ever
    options: Any = None       # every option as given: a backend that places work (Ray)
                              # reads resources, scheduling, restarts, runtime_env from it


class CallSpec(NamedTuple):
    """What ``handle.method.remote(...)`` asks for."""
    label: str                # "Class.method"
    method: str
    args: Any
    deps: tuple
    num_returns: int
    context: Any
    exported: Any
    ref_ids: tuple | None = None   # ids chosen by the caller (a worker), else the backend's
    group: str | None = None       # the concurrency group it runs in; None: the default group
    # None, or (max_task_retries or None, retry_exceptions or None) set for this method/call
    retry: Any = None


class TaskSpec(NamedTuple):
    """What ``f.remote(...)`` asks for."""
    label: str                # the function's name
    func_id: str              # unique per RemoteFunction
    definition: Any           # LazyDefinition of the function
    args: Any
    deps: tuple
    num_returns: int
    context: Any
    exported: Any
    max_retries: int          # -1: retry for ever
    max_calls: int            # 0: no limit
    ref_ids: tuple | None = None
    retry_exceptions: Any = False  # True, or exception classes: retried as a crash would be
    options: Any = None       # every option as given (see ActorSpec.options)


# ``new_spec(CallSpec, (fields...))``: a spec built in one C call, for the per-call path.
new_spec = tuple.__new__


class Backend(abc.ABC):
    """One session's runner of actors and tasks."""

    name: str = "?"
    # True: specs carry (args, kwargs) unpickled, with refs in place (see above).
    raw_arguments: bool = False
    # True: an actor call's CallSpec.args may be the bytes of a payload without buffers
    # (a call of positional scalars) instead of the Payload.
    blob_arguments: bool = False

    # -- actors -----------------------------------------------------------------
    @abc.abstractmethod
    def create_actor(self, spec: ActorSpec) -> Any:
        """Start the actor; its token. Raises ValueError if ``spec.name`` is taken."""

    @abc.abstractmethod
    def call_actor(self, actor: Any, spec: CallSpec):
        """Submit one method call: a ref, a list of refs (num_returns > 1) or None (0)."""

    @abc.abstractmethod
    def kill(self, actor: Any, no_restart: bool = True) -> None:
        """End the actor's process now; its pending calls fail with ActorDiedError
        (``no_restart=False``: ``max_restarts`` may start it again)."""

    @abc.abstractmethod
    def add_handle(self, actor: Any) -> None:
        """A new handle to an unnamed actor exists."""

    @abc.abstractmethod
    def drop_handle(self, actor: Any) -> None:
        """A handle went away; after the last one the actor finishes its calls and exits."""

    @abc.abstractmethod
    def find_actor(self, name: str, namespace: str | None):
        """``(token, class_key, class payload, concurrency groups)`` of the live actor with
        that name, or None."""

    @abc.abstractmethod
    def adopt_actor(self, actor_id: str, named_key):
        """The token for an actor whose handle was just unpickled here."""

    @abc.abstractmethod
    def describe_actor(self, actor: Any) -> dict:
        """A snapshot: class_name, name, pid, kind, max_concurrency, running, queued,
        done, failed, alive, death, and groups: one row per concurrency group (the
        default one first, named None) with name, max_concurrency, running, queued;
        restarts, max_restarts and restarting (may be absent)."""

    @abc.abstractmethod
    def describe_actors(self) -> list:
        """``describe_actor`` of every actor still known, oldest first."""

    # -- tasks and objects ------------------------------------------------------------
    @abc.abstractmethod
    def submit_task(self, spec: TaskSpec):
        """Submit one remote-function call: a ref, a list of refs, or None."""

    @abc.abstractmethod
    def put(self, value: Any):
        """A ref whose value is (a copy of) ``value``."""

    @abc.abstractmethod
    def cancel_call(self, record: Any, force: bool) -> None:
        """Cancel the call behind a ref (``ref._owner``, the call's trace record)."""

    def fetch_many(self, refs, timeout) -> None:
        """Before ``get`` of a list: complete what it can in one go (Ray: one ``ray.get``
        for them all). Nothing to do where each ref completes on its own."""

    def blocking_get(self, refs):
        """A context for a ``get`` that may wait for ``refs``: raises if the wait could never
        end (an actor waiting on its own queued call). Nothing to do in the driver."""
        return contextlib.nullcontext()

    # -- the session ------------------------------------------------------------------
    @abc.abstractmethod
    def set_output_router(self, router) -> None:
        """Where worker output goes from now on (the Jupyter layer swaps it)."""

    @abc.abstractmethod
    def resources(self) -> dict:
        """``{"CPU": n, ...}``, as Ray's ``available_resources``."""

    @abc.abstractmethod
    def info(self) -> dict:
        """What ``init()`` returns."""

    @abc.abstractmethod
    def shutdown(self) -> None:
        """Stop everything; fail what is pending with an error that says so."""
