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
