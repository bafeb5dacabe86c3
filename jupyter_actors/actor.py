"""``jupyter_actors.actor``: the module path Ray code imports actor things from.

``ActorHandle``, ``ActorClass``, ``ActorMethod`` and ``exit_actor()``, which
ends the current actor: its pending calls fail with ``ActorDiedError`` saying
it exited on purpose.
"""
from __future__ import annotations

from ._api import ActorClass, ActorHandle, ActorMethod
from ._api import refs as _refs

__all__ = ["ActorClass", "ActorHandle", "ActorMethod", "exit_actor"]


def exit_actor() -> None:
    """End the actor this runs in, now: the calling method does not return, and calls still
    queued fail with ``ActorDiedError`` saying the actor exited on purpose."""
    from ._api import session
    backend = session.current_backend()
    if backend is not None and backend.name == "ray":
        from ._backend.ray import worker
        worker.exit_actor()
    info = _worker_actor_info()
    if info is None:
        raise TypeError("exit_actor() can only be called inside an actor's method")
    from ._worker.calls import ActorExit
    raise ActorExit()


def _worker_actor_info():
    if not _refs.IN_WORKER:
        return None
    from ._api import session
    backend = session.current_backend()
    worker = getattr(backend, "worker", None)
    return getattr(worker, "actor_info", None)

