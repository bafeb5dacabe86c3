"""init(): which backend runs the session, chosen by its arguments or the environment.

    init()                              the embedded runtime (local worker processes)
    init(address="auto" | "HOST:PORT")  join a running Ray cluster
    init(address="ray://HOST:10001")    join it through Ray Client (needs ray[client])
    init(backend="ray")                 start a local Ray, as ray.init() does

With no arguments (and on the first remote call without any init()), the
environment decides: ``JUPYTER_ACTORS_BACKEND=ray`` starts or joins Ray, at
``RAY_ADDRESS`` when that is set, so a notebook runs on a cluster unchanged.
"""
from __future__ import annotations

import importlib.util
import os

from . import refs as _refs
from . import session

BACKEND_VARIABLE = "JUPYTER_ACTORS_BACKEND"
_BACKENDS = ("local", "ray")

_LOCAL_IGNORED = {"include_dashboard", "dashboard_host", "dashboard_port", "logging_level",
                  "logging_format", "configure_logging", "local_mode", "object_store_memory",
                  "num_gpus", "resources", "job_config", "_temp_dir", "_system_config",
                  "_metrics_export_port", "runtime_env", "labels", "log_to_driver_level"}


class RuntimeInfo(dict):
    """What ``init`` returns: a dict of facts about the session, the backend first."""

    @property
    def address_info(self) -> dict:
        return dict(self)

    def __repr__(self) -> str:
        where = self.get("address")
        return f"RuntimeInfo(backend={self.get('backend')!r}, address={where!r}, {dict(self)!r})"


def requested_backend(address=None, backend=None) -> str:
    """"local" or "ray", from init()'s arguments, else the environment."""
    if backend is not None:
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be 'local' or 'ray', got {backend!r}")
        if backend == "local" and address not in (None, "local"):
            raise ValueError(f"address={address!r} names a Ray cluster, and backend='local' "
                             f"runs on this machine; drop one of them")
        return backend
    if address is not None:
        return "local" if address == "local" else "ray"
    chosen = os.environ.get(BACKEND_VARIABLE, "").strip().lower()
    if chosen in ("", "local", "embedded"):
        return "local"
    if chosen == "ray":
        return "ray"
    raise ValueError(f"{BACKEND_VARIABLE}={chosen!r}: use 'ray' or 'local'")


def init(address: str | None = None, *, backend: str | None = None,
         num_cpus: int | None = None, ignore_reinit_error: bool = False,
         log_to_driver: bool = True, namespace: str | None = None,
         idle_workers: int | None = None, preload=(), **ray_options):
    """Start the session's backend (optional: the first remote call starts it).

    The embedded runtime: ``num_cpus`` bounds the pool that runs remote
    functions (default: the machine's cores); ``idle_workers`` is how many spare
    worker processes are kept started so that creating an actor is fast (default 2).
    Workers are forked from a template process that has imported jupyter_actors
    only; ``preload`` names modules it imports too (e.g. ``["numpy"]``), so that
    every actor shares them instead of importing its own copy.
    Ray (``address=...`` or ``backend="ray"``): every argument goes to ``ray.init``.
    """
    if _refs.IN_WORKER:
        raise RuntimeError("init() cannot be called inside an actor or remote function")
    which = requested_backend(address, backend)
    if which == "local":
        unknown = set(ray_options) - _LOCAL_IGNORED
        if unknown:
            raise TypeError(f"init() got unexpected keyword argument(s): "
                            f"{', '.join(sorted(unknown))}")
        if num_cpus is not None and num_cpus < 1:
            raise ValueError("num_cpus must be at least 1")
        preload = _check_preload(preload)
    with session._lock:
        current = session._backend
        if current is not None and getattr(current, "lost", False):
            current = session._backend = None   # its cluster went away: join again
        if current is not None:
            if ignore_reinit_error:
                return RuntimeInfo(current.info())
            raise RuntimeError("Maybe you called init() twice by accident? The runtime is "
                               "already running; pass ignore_reinit_error=True to allow this, "
                               "or call shutdown() first.")
        router = session.output_router()
        if which == "local":
            # Imported here: workers import the package, and need none of the driver's runtime.
            from .._backend.local import LocalBackend
            started = LocalBackend(router, num_cpus=num_cpus, idle_workers=idle_workers,
                                   log_to_driver=log_to_driver, preload=preload)
        else:
            from .._backend.ray import start_ray   # ray is optional: imported when asked for
            if address in (None, "local"):
                address = os.environ.get("RAY_ADDRESS") or None
            if num_cpus is not None:
                ray_options["num_cpus"] = num_cpus
            started = start_ray(router, address, namespace=namespace,
                                log_to_driver=log_to_driver, ray_options=ray_options)
        session._backend = started
        session.default_namespace = namespace
        return RuntimeInfo(started.info())


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


def _start_default() -> None:
    init(ignore_reinit_error=True)


session.start_default = _start_default
