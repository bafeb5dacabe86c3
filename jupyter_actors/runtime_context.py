"""``get_runtime_context()``: where the running code is (driver, actor or task), as in Ray."""
from __future__ import annotations

import os

from ._api import refs as _refs
from ._api import session

__all__ = ["RuntimeContext", "get_runtime_context"]


class RuntimeContext:
    """Facts about the process and call this code runs in (a snapshot per call of its methods).
    On Ray they are Ray's own (its ids, names, namespace), in the driver and workers alike."""

    def _ray(self):
        """Ray's runtime context when the session runs on Ray, else None."""
        backend = session.current_backend()
        if backend is None or backend.name != "ray":
            return None
        from ._backend.ray import worker
        return worker.runtime_context()

    def _worker(self):
        backend = session.current_backend()
        return getattr(backend, "worker", None) if _refs.IN_WORKER else None

    def _actor_info(self):
        worker = self._worker()
        return getattr(worker, "actor_info", None) if worker is not None else None

    def get_actor_id(self) -> str | None:
        """The id of the actor this runs in (None in the driver and in tasks)."""
        on_ray = self._ray()
        if on_ray is not None:
            return on_ray.get_actor_id()
        info = self._actor_info()
        return info["actor_id"] if info else None

    def get_task_id(self) -> str | None:
        """The id of the call running now (None in the driver)."""
        on_ray = self._ray()
        if on_ray is not None:
            return on_ray.get_task_id()
        if not _refs.IN_WORKER:
            return None
        from ._worker.capture import current_call
        call_id = current_call.get()
        return None if call_id is None else f"{call_id:032x}"

    def get_job_id(self) -> str:
        """The session's id: the same in the driver and every worker."""
        on_ray = self._ray()
        if on_ray is not None:
            return on_ray.get_job_id()
        return f"{session.job_pid():08x}"

    def get_node_id(self) -> str:
        on_ray = self._ray()
        if on_ray is not None:
            return on_ray.get_node_id()
        return f"local-{session.job_pid()}"

    def get_actor_name(self) -> str | None:
        on_ray = self._ray()
        if on_ray is not None:
            return on_ray.get_actor_name()
        info = self._actor_info()
        return info.get("name") if info else None

    @property
    def namespace(self) -> str | None:
        on_ray = self._ray()
        if on_ray is not None:
            return on_ray.namespace
        info = self._actor_info()
        if info is not None:
            return info.get("namespace")
        return session.default_namespace

    @property
    def current_actor(self):
        """A handle to the actor this runs in."""
        if self._ray() is not None:
            from ._backend.ray import worker as ray_worker
            return ray_worker.own_handle(session.current_backend())
        worker = self._worker()
        info = self._actor_info()
        if info is None:
            raise RuntimeError("current_actor is only available inside an actor")
        return worker.client.own_handle()

    @property
    def was_current_actor_reconstructed(self) -> bool:
        """True in an actor's process that ``max_restarts`` started after a crash."""
        on_ray = self._ray()
        if on_ray is not None:
            return on_ray.was_current_actor_reconstructed
        info = self._actor_info()
        return bool(info and info.get("restarts"))

    def get_pid(self) -> int:
        return os.getpid()


def get_runtime_context() -> RuntimeContext:
    return RuntimeContext()
