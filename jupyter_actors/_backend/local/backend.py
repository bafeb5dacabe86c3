"""The embedded runtime behind the Backend interface: specs in, records and refs out."""
from __future__ import annotations

import concurrent.futures
import os

from ... import _ids
from ..._api import refs as _refs
from ..._api.futures import RefFuture
from ..._api.refs import ObjectRef
from ..._wire.payloads import deserialize
from ..base import ActorSpec, Backend, CallSpec, TaskSpec
from .actors import ActorState
from .records import CallRecord
from .runtime import Runtime
from .spawner import worker_options
from .streams import StreamHandlers, open_stream
from .worker_calls import WorkerCalls


class LocalBackend(Backend):
    """Actors and tasks in worker processes on this machine."""

    name = "local"
    blob_arguments = True   # (Connection.send_call takes both)

    def __init__(self, router, num_cpus=None, idle_workers=None, log_to_driver=True,
                 preload=()):
        self.runtime = Runtime(router, num_cpus, idle_workers, log_to_driver, preload)
        calls = WorkerCalls(self)
        calls.results = self.runtime.results
        self.runtime.io.handlers.update(calls.table())  # before any worker starts
        self.runtime.io.handlers.update(StreamHandlers(self.runtime).table())
        # A ref that arrives from a worker (in a result) is the driver's own ref
        # again; one pickled outside any call is kept for the session.
        _refs.set_resolver(self._resolve_ref, self._pin)

    # -- actors -----------------------------------------------------------------------
    def create_actor(self, spec: ActorSpec) -> ActorState:
        rt = self.runtime
        key = None if spec.name is None else (spec.namespace, spec.name)
        state = ActorState(rt, spec.actor_id, spec.class_name, spec.name, spec.is_async,
                           spec.max_concurrency, key, spec.max_pending_calls,
                           spec.concurrency_groups, spec.max_restarts, spec.max_task_retries)
        state.class_key, state.definition = spec.class_key, spec.definition
        rt.registry.add(state)  # raises if the name is taken
        options = worker_options()
        options.update(actor_id=spec.actor_id, class_key=spec.class_key,
                       class_name=spec.class_name, name=spec.name,
                       namespace=spec.namespace, max_concurrency=spec.max_concurrency,
                       is_async=spec.is_async, concurrency_groups=spec.concurrency_groups)
        record = CallRecord("init", f"{spec.class_name}.__init__",
                            (spec.definition.payload(), options), state, spec.args, spec.deps,
                            1, spec.context, spec.exported)
        if spec.max_restarts:
            # Kept to run the constructor again in a new process (the record lets go of its own).
            state.creation = (record.target[0], options, spec.args, spec.deps, spec.exported,
                              spec.context)
        state.submit(record)
        rt.spawner.acquire(state.attach)
        return state

    def call_actor(self, actor: ActorState, spec: CallSpec):
        if actor.max_pending_calls >= 0:
            actor.check_pending_limit()
        label, method, args, deps, num_returns, context, exported, ref_ids, group, retry = spec
        record = CallRecord("call", label, method, actor, args, deps, num_returns, context,
                            exported, actor.call_retries, 0, ref_ids[0] if ref_ids else None)
        if group is not None:
            record.group = group
        if retry is not None:
            retries, record.retry_exceptions = retry
            if retries is not None:
                record.retries_left = _retries(retries)
        if num_returns == 1 and not ref_ids:  # the common call: one ref, made here
            refs = ObjectRef(record.call_id, RefFuture())
            refs._owner = record
            record.refs = refs  # (the ref itself: see records.take_refs)
        else:
            refs = _new_refs(record, ref_ids)
        actor.submit(record)
        return refs

    def call_refs(self, actor: ActorState, spec: CallSpec) -> list:
        """``call_actor``, with every ref of the call as a list (for a worker's call)."""
        return _as_list(self.call_actor(actor, spec), spec.ref_ids)

    def kill(self, actor: ActorState, no_restart: bool = True) -> None:
        actor.kill(no_restart)

    def add_handle(self, actor: ActorState) -> None:
        self.runtime.registry.add_handle(actor)

    def drop_handle(self, actor: ActorState) -> None:
        self.runtime.registry.drop_handle(actor)

    def find_actor(self, name: str, namespace):
        actor = self.runtime.registry.find(namespace, name)
        if actor is None:
            return None
        return (actor, actor.class_key, actor.definition.payload(), actor.concurrency_groups)

    def adopt_actor(self, actor_id: str, named_key):
        actor = self.runtime.registry.get(actor_id)
        if actor is None:
            raise ValueError(f"the actor {actor_id} is no longer known to this session")
        return actor

    def describe_actor(self, actor: ActorState) -> dict:
        return actor.describe()

    def describe_actors(self) -> list:
        return [a.describe() for a in self.runtime.registry.all()]

    # -- tasks and objects ----------------------------------------------------------------
    def submit_task(self, spec: TaskSpec, function_payload=None, nested: bool = False):
        pool = self.runtime.task_pool
        if spec.func_id not in pool.functions:
            # Pickled here, in the caller's thread, so a mistake raises at .remote().
            pool.define(spec.func_id, function_payload or spec.definition.payload())
        retries = _retries(spec.max_retries)
        ref_ids = spec.ref_ids
        record = CallRecord("task", spec.label, spec.func_id, pool, spec.args, spec.deps,
                            spec.num_returns, spec.context, spec.exported, retries=retries,
                            max_calls=spec.max_calls, call_id=ref_ids[0] if ref_ids else None)
        record.nested = nested
        record.retry_exceptions = spec.retry_exceptions
        refs = _new_refs(record, ref_ids)
        pool.submit(record)
        return refs

    def task_refs(self, spec: TaskSpec, function_payload) -> list:
        """``submit_task`` with every ref as a list (for a worker's call)."""
        return _as_list(self.submit_task(spec, function_payload, nested=True), spec.ref_ids)

    def put(self, value) -> ObjectRef:
        payload, inner = _refs.serialize_noting(value)
        return self.put_payload(_ids.next_id(), payload, inner)

    def put_payload(self, ref_id: int, payload, inner) -> ObjectRef:
        """A ref for a value already pickled (by a worker's put), with what it holds."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        ref = ObjectRef(ref_id, fut)
        ref._payload = payload
        ref._inner = inner or None
        fut.set_result(deserialize(payload))
        return ref

    def cancel_call(self, record, force: bool) -> None:
        self.runtime.cancel(record, force)

    # -- the session ----------------------------------------------------------------------
    def set_output_router(self, router) -> None:
        self.runtime.router = router

    def resources(self) -> dict:
        return {"CPU": float(self.runtime.num_cpus)}

    def info(self) -> dict:
        rt = self.runtime
        return {"num_cpus": rt.num_cpus, "session_dir": rt.session_dir, "address": "local",
                "node_id": f"local-{os.getpid()}", "backend": self.name}

    def shutdown(self) -> None:
        self.runtime.shutdown()

    # -- refs and handles that left the driver ----------------------------------------------
    def _resolve_ref(self, ref_id: int) -> ObjectRef:
        ref = self.runtime.lent.get(ref_id)
        if ref is None:
            raise KeyError(f"ObjectRef {ref_id:032x} is no longer known to the driver")
        return ref

    def _pin(self, item) -> None:
        if type(item) is ObjectRef:
            self.runtime.lent.pin(item)
        else:
            self.runtime.registry.pin(item)


def _retries(n: int) -> int:
    return 10**9 if n == -1 else n  # -1: for ever


def _as_list(refs, ref_ids) -> list:
    if refs is None:
        return []
    return refs if isinstance(refs, list) else [refs]


def _new_refs(record: CallRecord, ref_ids=None):
    """The refs of a call (the first one's id is the call's): one, a list, None, or a
    generator's (see streams.open_stream)."""
    n = record.num_returns
    if ref_ids:
        refs = [ObjectRef(i, RefFuture()) for i in ref_ids]
    elif n == 1:
        refs = [ObjectRef(record.call_id, RefFuture())]
    else:
        refs = [ObjectRef(record.call_id if i == 0 else _ids.next_id(),
                          RefFuture()) for i in range(max(n, 1))]
    for ref in refs:
        ref._owner = record
    record.refs = refs
    if n == 1:
        return refs[0]
    if n > 1:
        return refs
    return None if n == 0 else open_stream(record, refs[0], bool(ref_ids))
