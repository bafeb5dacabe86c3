"""The embedded runtime behind the Backend interface: specs in, records and refs out."""
from __future__ import annotations

import concurrent.futures
import os

from ... import _ids
from ..._api import refs as _refs
from ..._api.refs import ObjectRef
from ..._wire.payloads import deserialize, serialize
from ..base import ActorSpec, Backend, CallSpec, TaskSpec
from .actors import ActorState
from .records import CallRecord
from .runtime import Runtime
from .spawner import worker_options


class LocalBackend(Backend):
    """Actors and tasks in worker processes on this machine."""

    name = "local"

    def __init__(self, router, num_cpus=None, idle_workers=None, log_to_driver=True):
        self.runtime = Runtime(router, num_cpus, idle_workers, log_to_driver)
        # A worker may return a ref the driver passed it: unpickled here, it is
        # the driver's own ref again.
        _refs.set_resolver(self._resolve_returned_ref)

    # -- actors -----------------------------------------------------------------------
    def create_actor(self, spec: ActorSpec) -> ActorState:
        rt = self.runtime
        key = None if spec.name is None else (spec.namespace, spec.name)
        state = ActorState(rt, spec.actor_id, spec.class_name, spec.name, spec.is_async,
                           spec.max_concurrency, key, spec.max_pending_calls)
        state.actor_class = spec.actor_class
        rt.registry.add(state)  # raises if the name is taken
        options = worker_options()
        options.update(class_name=spec.class_name, max_concurrency=spec.max_concurrency,
                       is_async=spec.is_async)
        record = CallRecord("init", f"{spec.class_name}.__init__",
                            (spec.definition.payload(), options), state, spec.args, spec.deps,
                            1, spec.context, spec.exported)
        state.submit(record)
        rt.spawner.acquire(state.attach)
        return state

    def call_actor(self, actor: ActorState, spec: CallSpec):
        if actor.max_pending_calls >= 0:
            actor.check_pending_limit()
        record = CallRecord("call", spec.label, spec.method, actor, spec.args, spec.deps,
                            spec.num_returns, spec.context, spec.exported)
        refs = _new_refs(record)
        actor.submit(record)
        return refs

    def kill(self, actor: ActorState, no_restart: bool = True) -> None:
        actor.kill()

    def add_handle(self, actor: ActorState) -> None:
        self.runtime.registry.add_handle(actor)

    def drop_handle(self, actor: ActorState) -> None:
        self.runtime.registry.drop_handle(actor)

    def find_actor(self, name: str, namespace):
        actor = self.runtime.registry.find(namespace, name)
        return None if actor is None else (actor, actor.actor_class)

    def actor_by_id(self, actor_id: str):
        actor = self.runtime.registry.get(actor_id)
        return None if actor is None else (actor, actor.actor_class)

    def describe_actor(self, actor: ActorState) -> dict:
        return actor.describe()

    def describe_actors(self) -> list:
        return [a.describe() for a in self.runtime.registry.all()]

    # -- tasks and objects ----------------------------------------------------------------
    def submit_task(self, spec: TaskSpec):
        pool = self.runtime.task_pool
        if spec.func_id not in pool.functions:
            # Pickled here, in the caller's thread, so a mistake raises at .remote().
            pool.define(spec.func_id, spec.definition.payload())
        retries = 10**9 if spec.max_retries == -1 else spec.max_retries
        record = CallRecord("task", spec.label, spec.func_id, pool, spec.args, spec.deps,
                            spec.num_returns, spec.context, spec.exported, retries=retries,
                            max_calls=spec.max_calls)
        refs = _new_refs(record)
        pool.submit(record)
        return refs

    def put(self, value) -> ObjectRef:
        payload = serialize(value)
        fut: concurrent.futures.Future = concurrent.futures.Future()
        ref = ObjectRef(_ids.next_id(), fut)
        ref._payload = payload
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

    # -- refs the driver lent to workers ------------------------------------------------
    def _resolve_returned_ref(self, ref_id: int):
        for conn in list(self.runtime.spawner.conns):
            ref = conn.pins.get(ref_id)
            if ref is not None:
                return ref._future
        raise KeyError(f"ObjectRef {ref_id:032x} is no longer known to the driver")


def _new_refs(record: CallRecord):
    """The refs of a call (the first one's id is the call's): one, a list, or None."""
    n = record.num_returns
    refs = [ObjectRef(record.call_id if i == 0 else _ids.next_id(), concurrent.futures.Future())
            for i in range(max(n, 1))]
    for ref in refs:
        ref._owner = record
    record.refs = refs
    if n == 0:
        return None
    return refs[0] if n == 1 else refs
