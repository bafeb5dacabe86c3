"""RayBackend: the Backend interface over real Ray.

    API spec ──▶ RayBackend ──▶ Ray: host actor / task function (host.py) per class / function
                  │  a RayCall per call (records.py) ─▶ the trace
                  └─ RayObjectRef per returned ref (refs.py), completed by Ray's callback

Ray owns processes, scheduling, objects and handle counting; this module maps
specs onto Ray's calls, passes the caller's options through (resources,
scheduling, restarts, runtime_env are Ray's to honour) and keeps the few facts
``%actors`` and the Timeline need. The same class runs inside Ray's workers
(``in_worker``) so that calls made there go straight to Ray too.
"""
from __future__ import annotations

import concurrent.futures
import os
import threading

from ... import _ids
from ..._api import refs as _refs
from ..._api.refs import ObjectRef
from ..._trace import RECENT, tracer
from ..base import ActorSpec, Backend, CallSpec, TaskSpec
from . import generators, host
from .errors import actor_died
from .options import actor_options, call_options, class_options, task_options
from ...exceptions import TaskCancelledError
from .records import PENDING, RUNNING, CallKeys, RayActor, RayCall, TaskOwner, task_key
from . import refs as _ray_refs
from .refs import LateArming, RayObjectRef, fail_pending, ref_of
from .arguments import check_foreign, foreign_ref, ray_args, ray_kwargs


SHUTDOWN_WAIT = 60.0        # seconds shutdown() waits for Ray to disconnect
LOST_SHUTDOWN_WAIT = 10.0   # ... when the cluster is gone already
CANCEL_TIMEOUT = 10.0   # seconds to wait for an actor to note a cancelled queued call


class RayBackend(Backend):
    """Actors and tasks on a Ray cluster."""

    name = "ray"
    raw_arguments = True

    def __init__(self, router, address=None, *, owns_ray: bool = False,
                 in_worker: bool = False, setup=None):
        import ray
        self._ray = ray
        self.router = router
        self.address = address
        self.owns_ray = owns_ray
        self.in_worker = in_worker
        self.setup = setup            # how a worker installs its session (see worker.py)
        self.records = CallKeys(RECENT)   # key -> RayCall, while the trace may show it
        self.actors: dict = {}        # actor_id -> RayActor, while a handle exists here
        self.handle_counts: dict = {}
        self.names: dict = {}         # (namespace, name) -> RayActor created here
        self._lock = threading.Lock()
        # Held by a direct call from its submit to Ray until its record is registered (its
        # key is Ray's task id, known only once Ray has the call); a lookup that misses
        # waits for it (record_of), so the call's first line or trace event never
        # arrives to find no record, whichever thread runs first.
        self._registering = threading.RLock()
        self._host_classes: dict = {}
        self._task_functions: dict = {}
        self.tasks = TaskOwner(0)
        self.logs = None
        self.watch = None             # watch.ClusterWatch: notices the cluster going away
        self.closed = None            # the error pending and new calls get after shutdown
        self.lost = False             # the cluster went away: init() may join again
        self.ray_init_seconds = 0.0   # what ray.init took (the rest of init() is ours)
        _refs.set_resolver(foreign_ref, check_foreign)
        _ray_refs.current = _ray_refs.Session()
        self.arming = LateArming(RayCall)
        if not in_worker:
            from .logs import LogRouter
            self.logs = LogRouter(self)

    # -- actors -----------------------------------------------------------------------
    def create_actor(self, spec: ActorSpec) -> RayActor:
        self._check_open()
        args, kwargs = spec.args
        remote_class = self._host_class(spec)
        options = actor_options(spec)
        actor = RayActor(spec.actor_id, None, spec.class_name, spec.name, spec.namespace,
                         spec.is_async, spec.max_concurrency, spec.concurrency_groups)
        actor.restartable = bool(options.get("max_restarts"))
        record = RayCall("init", f"{spec.class_name}.__init__", actor, spec.context)
        route = self._route(record)
        self._submitted(record)
        try:
            actor.handle = remote_class.options(**options).remote(
                self.setup, route, record.call_id, *ray_args(args), **ray_kwargs(kwargs))
            # Ray creates actors in the background; this ref ends the init record.
            ready = actor.handle.__ray_ready__.remote()
        except BaseException as exc:
            record.end(exc)
            raise
        record.ray_ref = ready
        record.refs = (ref_of(ready, record),)
        if spec.name is not None:
            self.names[(spec.namespace, spec.name)] = actor
        return actor

    def call_actor(self, actor: RayActor, spec: CallSpec):
        if self.closed is not None:
            raise self.closed
        label, method, (args, kwargs) = spec[0], spec[1], spec[2]
        num_returns, context, group = spec[4], spec[5], spec.group
        record = RayCall("call", label, actor, context, group)
        if num_returns == 1 and not self.in_worker and not actor.killed:
            direct = actor.direct.get(method, False)
            if direct is False:
                direct = actor.direct[method] = _direct_method(actor.handle, method)
            if direct is not None:
                return self._call_direct(record, direct, spec, args, kwargs)
        route = self._route(record)
        self._submitted(record)
        if actor.killed and num_returns >= 0:
            # Ray's kill is on its way; a call sent now could still reach the actor first.
            return _failed_refs(record, actor_died(None, label, actor), num_returns)
        if num_returns >= 0:
            call = actor.call_method
            if call is None:   # Ray makes a new one on each lookup: made once here
                call = actor.call_method = actor.handle.call
        else:
            call = actor.handle.stream
        if num_returns != 1 or group is not None or spec.retry is not None:
            call = call.options(**call_options(num_returns, group, spec.retry))
        try:
            out = call.remote(host.pack(route, record.call_id, method, num_returns == 1),
                              *ray_args(args),
                              **ray_kwargs(kwargs))
        except BaseException as exc:
            record.end(exc)
            raise _translated(exc, label, actor) from None
        return self._refs_of(record, out, num_returns)

    def _call_direct(self, record: RayCall, direct, spec: CallSpec, args, kwargs):
        """A call the driver makes with one return value: by the method's own name on the
        host, no argument of ours added (it costs Ray's submit a few microseconds), the
        Ray task's id as the call's key."""
        if spec.group is not None or spec.retry is not None:
            direct = direct.options(**call_options(1, spec.group, spec.retry))
        with self._registering:
            try:
                out = direct.remote(*ray_args(args), **ray_kwargs(kwargs))
            except BaseException as exc:
                self._submitted(record)
                record.end(exc)
                raise _translated(exc, record.label, record.owner) from None
            ref = ref_of(out, record)
            record.key = task_key(ref._id)
            record.ray_ref = out
            record.refs = (ref,)
            self._submitted(record)
        return ref

    def kill(self, actor: RayActor, no_restart: bool = True) -> None:
        actor.killed = no_restart
        self._ray.kill(actor.handle, no_restart=no_restart)

    def add_handle(self, actor: RayActor) -> None:
        with self._lock:
            self.actors[actor.actor_id] = actor
            self.handle_counts[actor.actor_id] = self.handle_counts.get(actor.actor_id, 0) + 1

    def drop_handle(self, actor: RayActor) -> None:
        # Ray counts handles itself: once no token holds Ray's handle, Ray ends the actor.
        with self._lock:
            left = self.handle_counts.get(actor.actor_id, 1) - 1
            if left > 0:
                self.handle_counts[actor.actor_id] = left
                return
            self.handle_counts.pop(actor.actor_id, None)
            self.actors.pop(actor.actor_id, None)
            if actor.name is not None and self.names.get((actor.namespace, actor.name)) is actor:
                del self.names[(actor.namespace, actor.name)]

    def find_actor(self, name: str, namespace):
        self._check_open()
        actor = self.names.get((namespace, name))
        if actor is None:
            try:
                handle = self._ray.get_actor(name, namespace=namespace)
            except ValueError:
                return None
            actor = self.adopt_actor(None, handle)
        from .state import class_of
        key, payload = class_of(actor)
        return (actor, key, payload, actor.concurrency_groups)

    def adopt_actor(self, actor_id, named_key):
        handle = named_key
        ray_id = handle._actor_id.hex()
        with self._lock:
            for known in self.actors.values():
                if known.handle._actor_id.hex() == ray_id:
                    return known
        from .state import actor_facts
        class_name, is_async, max_concurrency, our_id, groups = actor_facts(handle)
        return RayActor(actor_id or our_id, handle, class_name, None, None, is_async,
                        max_concurrency, groups)

    def describe_actor(self, actor: RayActor) -> dict:
        from .state import describe
        return describe(self, [actor])[0]

    def describe_actors(self) -> list:
        from .state import describe
        with self._lock:
            actors = list(self.actors.values())
        return describe(self, actors)

    # -- tasks and objects ----------------------------------------------------------------
    def submit_task(self, spec: TaskSpec):
        self._check_open()
        args, kwargs = spec.args
        options = task_options(spec)
        key = (spec.func_id, tuple(sorted(options.items(), key=lambda kv: kv[0]))
               if _hashable(options) else None)
        remote_function = self._task_functions.get(key) if key[1] is not None else None
        if remote_function is None:
            remote_function = self._ray.remote(**options)(
                host.task_function(spec.definition.value, self.setup, spec.num_returns == 1)
                if spec.num_returns >= 0 else
                generators.stream_task_function(spec.definition.value, self.setup))
            if key[1] is not None:
                self._task_functions[key] = remote_function
        record = RayCall("task", spec.label, self.tasks, spec.context)
        route = self._route(record)
        self._submitted(record)
        try:
            out = remote_function.remote(route, record.call_id, *ray_args(args),
                                         **ray_kwargs(kwargs))
        except BaseException as exc:
            record.end(exc)
            raise _translated(exc, spec.label, None) from None
        return self._refs_of(record, out, spec.num_returns)

    def fetch_many(self, refs, timeout) -> None:
        # One ray.get for the whole list, not one per ref; errors are left for each
        # ref's own get to raise, in list order.
        pending = [r for r in refs if type(r) is RayObjectRef and not r._future.settled()]
        if len(pending) < 2:
            return
        try:
            values = self._ray.get([r._ray_ref for r in pending], timeout=timeout)
        except Exception:
            return
        for ref, value in zip(pending, values):
            ref._future.complete(value)

    def put(self, value):
        self._check_open()
        return ref_of(self._ray.put(value))

    def cancel_call(self, record: RayCall, force: bool) -> None:
        """Tasks: Ray's cancel. Actor calls: a queued one is skipped by the host when its
        turn comes (Ray's cancel of a queued call of an ordered actor stalls the calls
        behind it); a running async one gets asyncio cancellation from Ray; a running
        threaded one runs on and its ref fails now, as on the embedded runtime."""
        ray_ref = record.ray_ref
        if ray_ref is None or record.kind == "init" or record.status not in (PENDING, RUNNING):
            return
        if record.kind == "task":
            self._ray.cancel(ray_ref, force=force)
            return
        actor = record.owner
        if record.status == RUNNING and actor.is_async:
            self._ray.cancel(ray_ref)
            return
        try:
            # Waited for, so the mark is there before the call's turn can come.
            self._ray.get(actor.handle.cancel_queued.remote(record.key),
                          timeout=CANCEL_TIMEOUT)
        except Exception:
            pass   # the actor is gone or unreachable: its calls fail on their own
        started = record.status == RUNNING
        error = TaskCancelledError(
            f"{record.label} was running; a threaded actor's call is not interrupted, so it "
            f"runs to its end and its result is dropped." if started else
            f"{record.label} was cancelled before it started.")
        refs = record.refs
        record.end(error)
        fail_pending(refs, error)

    # -- the session ----------------------------------------------------------------------
    def set_output_router(self, router) -> None:
        self.router = router

    def resources(self) -> dict:
        return self._ray.available_resources()

    def info(self) -> dict:
        ray = self._ray
        context = ray.get_runtime_context()
        cpus = ray.cluster_resources().get("CPU", 0)
        return {"backend": self.name, "address": self.gcs_address(),
                "num_cpus": int(cpus), "node_id": context.get_node_id(),
                "namespace": context.namespace, "ray_version": ray.__version__,
                "ray_init_seconds": self.ray_init_seconds}

    def shutdown(self) -> None:
        from ...exceptions import Error
        if self.closed is None:
            self.closed = Error("the session was shut down (jupyter_actors.shutdown()); call "
                                "init() again to start a new one")
        self._let_go()

    def cluster_lost(self) -> None:
        """The head node stopped answering (watch thread): fail what is pending, let go of Ray."""
        from ...exceptions import ActorDiedError
        pending = sum(1 for r in list(tracer.active.values()) if isinstance(r, RayCall))
        self.closed = ActorDiedError(
            f"The Ray cluster at {self.gcs_address()} went away (its head node stopped "
            f"answering); {pending} pending call(s) failed. Call init() to join a cluster again.")
        self.lost = True
        self._let_go()

    def _let_go(self) -> None:
        if self.watch is not None:
            self.watch.stop()
        self.arming.stop()
        _ray_refs.current.closed = self.closed   # refs not fetched yet fail with this
        if self.logs is not None:
            self.logs.close()
        for record in list(tracer.active.values()):
            if isinstance(record, RayCall):
                refs = record.refs
                record.end(self.closed)
                fail_pending(refs, self.closed)
        if self.owns_ray and not self.in_worker:
            self.owns_ray = False
            # Ray's shutdown talks to the cluster; when it is gone that may take a while,
            # so it runs aside and the caller goes on.
            done = threading.Event()

            def disconnect():
                try:
                    self._ray.shutdown()
                finally:
                    done.set()
            threading.Thread(target=disconnect, name="jupyter_actors-ray-shutdown",
                             daemon=True).start()
            done.wait(SHUTDOWN_WAIT if not self.lost else LOST_SHUTDOWN_WAIT)
        _refs.set_resolver(None, None)

    def gcs_address(self) -> str | None:
        try:
            return self._ray.get_runtime_context().gcs_address
        except Exception:
            return self.address

    # -- helpers ----------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed is not None:
            raise self.closed

    def _route(self, record: RayCall):
        """The call whose cell gets this call's output: this one, or the worker's caller."""
        if self.in_worker:
            route = host.route_here()
            if route is not None:
                return route
        return record.call_id

    def record_of(self, key):
        """The record of the call with this key (what its worker tags lines and events
        with), or None: a call made inside a worker, or one the trace let go of."""
        record = self.records.get(key)
        if record is None:
            with self._registering:   # a direct call on its way registers first
                record = self.records.get(key)
        return record

    def _submitted(self, record: RayCall) -> None:
        self.records.add(record)
        tracer.record_submitted(record)

    def _refs_of(self, record: RayCall, out, num_returns: int):
        if num_returns < 0:
            return generators.open_stream(self, record, out, num_returns)
        if num_returns == 0 or out is None:
            record.refs = ()
            return None
        if num_returns == 1:
            record.ray_ref = out
            ref = ref_of(out, record)
            record.refs = (ref,)
            return ref
        record.ray_ref = out[0]
        refs = [ref_of(r, record) for r in out]
        record.refs = tuple(refs)
        return refs

    def _host_class(self, spec: ActorSpec):
        key = (spec.class_key, tuple(sorted((spec.concurrency_groups or {}).items())))
        remote_class = self._host_classes.get(key)
        if remote_class is None:
            cls = generators.with_streams(host.host_class(
                spec.definition.value, spec.is_async, spec.class_key, spec.concurrency_groups),
                spec.is_async)
            remote_class = self._ray.remote(**class_options(spec))(cls)
            self._host_classes[key] = remote_class
        return remote_class


def _failed_refs(record: RayCall, error: BaseException, num_returns: int):
    """Refs of a call that cannot run, failed with ``error`` already."""
    record.end(error)
    refs = []
    for i in range(num_returns):
        future: concurrent.futures.Future = concurrent.futures.Future()
        future.set_exception(error)
        refs.append(ObjectRef(record.call_id if i == 0 else _ids.next_id(), future))
    return None if num_returns == 0 else refs[0] if num_returns == 1 else refs


def _direct_method(handle, method: str):
    """Ray's method for the direct entry of ``method`` on the actor's host, or None."""
    if not host.has_direct_entry(method):
        return None
    return getattr(handle, method, None)


def _translated(exc: BaseException, label: str, actor) -> BaseException:
    import ray.exceptions as rx
    if isinstance(exc, rx.RayError):
        from .errors import translate
        return translate(exc, label, actor)
    return exc


def _hashable(options: dict) -> bool:
    try:
        hash(tuple(options.items()))
        return True
    except TypeError:
        return False


def driver_pid() -> int:
    return os.getpid()
