"""The session: which backend runs calls now, and its end (shutdown).

Everything in the public API reaches the backend through ``backend()``; the
first use starts the default backend (``_api.startup``: the embedded runtime,
or Ray when the environment asks for it), as Ray's first remote call starts a
local Ray. The output router (where worker output is printed) belongs to the
session too, so the Jupyter layer can swap it whichever backend runs.
"""
from __future__ import annotations

import atexit
import os
import threading

from .._output import OutputRouter

_backend = None
_lock = threading.Lock()
_router = OutputRouter()
default_namespace: str | None = None
_job_pid = os.getpid()   # the driver's pid (a worker is told its driver's)

# Starts the default backend on first use; installed by _api.startup (which owns init()),
# so that this module imports no backend and backends may import it.
start_default = None


def is_initialized() -> bool:
    return _backend is not None


def shutdown() -> None:
    """Stop every worker, fail what is pending, remove the session's files."""
    global _backend
    with _lock:
        backend, _backend = _backend, None
    if backend is not None:
        backend.shutdown()


atexit.register(shutdown)


def backend():
    """The session's backend, started on first use."""
    current = _backend
    if current is not None:
        return current
    start_default()
    return _backend


def install(backend_) -> bool:
    """Make ``backend_`` the session's backend unless one runs already (init())."""
    global _backend
    with _lock:
        if _backend is not None:
            return False
        _backend = backend_
        return True


def backend_name() -> str | None:
    """Which backend runs this session's calls: ``"local"`` (the embedded runtime),
    ``"ray"``, or None before the first use."""
    current = _backend
    return None if current is None else current.name


def use_backend(backend_, driver_pid: int) -> None:
    """Inside a worker: calls go through the worker's client backend."""
    global _backend, _job_pid
    _backend = backend_
    _job_pid = driver_pid


def job_pid() -> int:
    """The pid of the session's driver, in the driver and in every worker."""
    return _job_pid


def current_backend():
    """The session's backend if one runs, else None (never starts one)."""
    return _backend


def output_router():
    return _router


def set_output_router(router) -> None:
    """Where worker output is printed from now on (the Jupyter layer installs its own)."""
    global _router
    _router = router
    if _backend is not None:
        _backend.set_output_router(router)


def available_resources() -> dict:
    return backend().resources()


cluster_resources = available_resources
