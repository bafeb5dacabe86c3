"""The session: which backend runs calls now, and its start and end (init, shutdown).

Everything in the public API reaches the backend through ``backend()``; the
first use starts the embedded runtime, as Ray's first remote call starts a
local Ray. The output router (where worker output is printed) belongs to the
session too, so the Jupyter layer can swap it whichever backend runs.
"""
from __future__ import annotations

import atexit
import importlib.util
import os
import threading

from .._output import OutputRouter
from . import refs as _refs

_backend = None
_lock = threading.Lock()
_router = OutputRouter()
default_namespace: str | None = None
_job_pid = os.getpid()   # the driver's pid (a worker is told its driver's)

_INIT_IGNORED = {"include_dashboard", "dashboard_host", "dashboard_port", "logging_level",
                 "logging_format", "configure_logging", "local_mode", "object_store_memory",
                 "num_gpus", "resources", "job_config", "_temp_dir", "_system_config",
                 "_metrics_export_port", "runtime_env", "labels", "log_to_driver_level"}


def init(address: str | None = None, *, num_cpus: int | None = None,
         ignore_reinit_error: bool = False, log_to_driver: bool = True,
         namespace: str | None = None, idle_workers: int | None = None,
         preload=(), **ray_options):
    """Start the embedded runtime (optional: the first remote call starts it).

    ``num_cpus`` bounds the pool that runs remote functions (default: the
    machine's cores); ``idle_workers`` is how many spare worker processes are
    kept started so that creating an actor is fast (default 2). Workers are
    forked from a template process that has imported jupyter_actors only;
    ``preload`` names modules it imports too (e.g. ``["numpy"]``), so that every
    actor shares them instead of importing its own copy.
    """
    global _backend, default_namespace
    if address not in (None, "local"):
        raise ValueError(f"jupyter_actors runs on this machine only; address={address!r} "
                         f"names a cluster. Use init() or init('local').")
    unknown = set(ray_options) - _INIT_IGNORED
    if unknown:
        raise TypeError(f"init() got unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    if _refs.IN_WORKER:
        raise RuntimeError("init() cannot be called inside an actor or remote function")
    with _lock:
        if _backend is not None:
            if ignore_reinit_error:
                return RuntimeInfo(_backend.info())
            raise RuntimeError("Maybe you called init() twice by accident? The runtime is "
                               "already running; pass ignore_reinit_error=True to allow this, "
                               "or call shutdown() first.")
        if num_cpus is not None and num_cpus < 1:
            raise ValueError("num_cpus must be at least 1")
        preload = _check_preload(preload)
        from .._backend.local import LocalBackend
        _backend = LocalBackend(_router, num_cpus=num_cpus, idle_workers=idle_workers,
                                log_to_driver=log_to_driver, preload=preload)
        default_namespace = namespace
        return RuntimeInfo(_backend.info())


def _check_preload(preload) -> tuple:
    """Module names, each one importable here (a typo fails now, not in the workers)."""
    if isinstance(preload, str) or not all(isinstance(name, str) for name in preload):
        raise TypeError(f"init(preload=...) takes a list of module names, "
                        f"e.g. preload=['numpy'], not {preload!r}")
    for name in preload:
        try:
            found = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            found = None
        if found is None:
            raise ValueError(f"init(preload=...): no module named {name!r} can be imported "
                             f"here, so workers could not import it either")
    return tuple(preload)


class RuntimeInfo(dict):
    """What ``init`` returns: a dict of facts about the session."""

    @property
    def address_info(self) -> dict:
        return dict(self)


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
    init(ignore_reinit_error=True)
    return _backend


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
