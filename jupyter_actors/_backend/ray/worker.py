"""The session inside a Ray worker.

A call made inside an actor or task that runs on Ray (``other.m.remote()``,
``get``, ``put`` ...) goes straight to Ray: the worker's session gets a
RayBackend of its own the first time the wrapper runs there.
"""
from __future__ import annotations

from ..._api import refs as _refs
from ..._api import session
from .backend import RayBackend
from .nested import forward_worker_calls


class WorkerSetup:
    """Sent with every host class and task function; installs the worker's session once."""

    def __init__(self, driver_pid: int):
        self.driver_pid = driver_pid

    def install_in_worker(self) -> None:
        if session.current_backend() is not None:
            return   # Ray runs this in the driver itself (a local-mode call)
        _refs.IN_WORKER = True
        forward_worker_calls()   # its calls in the driver's trace (nested.py)
        session.use_backend(RayBackend(session.output_router(), in_worker=True, setup=self),
                            self.driver_pid)


# -- what code running on Ray asks about itself ---------------------------------------------

def runtime_context():
    """Ray's own runtime context: its ids, names and namespace are those of this call."""
    import ray
    return ray.get_runtime_context()


def own_handle(backend):
    """Our handle to the actor this Ray worker runs, made from the actor's own instance:
    asking the actor for its facts would wait behind the very call that asks."""
    import ray

    from ... import _ids
    from ..._api.actors import handle_of_found
    from ..._wire.payloads import Payload
    from .host import _facts
    from .records import RayActor
    worker = ray._private.worker.global_worker
    context = ray.get_runtime_context()
    instance = worker.actors.get(worker.actor_id)
    if instance is None or not hasattr(instance, "_user_class"):
        raise RuntimeError("current_actor is only available inside an actor")
    class_name, key, is_async, blob, groups = _facts(instance)
    actor = RayActor(_ids.new_actor_id(), context.current_actor, class_name,
                     context.get_actor_name(), context.namespace, is_async,
                     worker.core_worker.current_actor_max_concurrency(), groups)
    return handle_of_found((actor, key, Payload(blob), groups), backend)


def exit_actor() -> None:
    """Ray's exit_actor() inside an actor: the call fails, the actor ends; elsewhere nothing
    (the caller says where it may be called)."""
    import ray.actor
    worker = ray._private.worker.global_worker
    if worker.mode == ray.WORKER_MODE and not worker.actor_id.is_nil():
        ray.actor.exit_actor()
