"""jupyter_actors: Ray's actor model (async and threaded actors, max_concurrency,
ObjectRefs that are futures) in local subprocesses, with no cluster to start.

    import jupyter_actors as ray

runs Ray's async-actor code unchanged. In Jupyter, ``%load_ext jupyter_actors``
adds the ``%%remote`` magic and routes actor output to the cell that made the call.
"""
from __future__ import annotations

import importlib as _importlib
import os as _os
from typing import TYPE_CHECKING as _TYPE_CHECKING

from . import exceptions

if _TYPE_CHECKING:  # what __getattr__ below loads, for readers and type checkers
    from ._api import (ActorClass, ActorHandle, ActorMethod, DynamicObjectRefGenerator,
                       ObjectRef, ObjectRefGenerator, RemoteFunction, available_resources,
                       backend_name, cancel, cluster_resources, get, get_actor, init,
                       is_initialized, kill, method, put, remote, shutdown, wait)
    from .runtime_context import get_runtime_context
    from .tracing import timeline

# Where each public name is defined (the API's own names: ``_api/__init__.py``).
_HOMES = {"get_runtime_context": ".runtime_context", "timeline": ".tracing"}

__version__ = "0.1.0"

__all__ = [
    "ActorClass",
    "ActorHandle",
    "ActorMethod",
    "DynamicObjectRefGenerator",
    "ObjectRef",
    "ObjectRefGenerator",
    "RemoteFunction",
    "available_resources",
    "backend_name",
    "cancel",
    "cluster_resources",
    "exceptions",
    "get",
    "get_actor",
    "get_runtime_context",
    "init",
    "is_initialized",
    "kill",
    "load_ipython_extension",
    "method",
    "put",
    "remote",
    "shutdown",
    "timeline",
    "unload_ipython_extension",
    "use_as_ray",
    "wait",
]


def use_as_ray(quiet: bool = False) -> None:
    """Make ``import ray`` (``ray.util``, ``ray.util.queue``, ``ray.actor`` ...) give
    jupyter_actors in this process and its workers, so Ray code runs unchanged."""
    from ._ray_alias import use_as_ray as use
    use(quiet)


def load_ipython_extension(ipython) -> None:
    """``%load_ext jupyter_actors``: imported lazily so plain imports stay light."""
    from .magics import load_ipython_extension as load
    load(ipython)


def unload_ipython_extension(ipython) -> None:
    from .magics import unload_ipython_extension as unload
    unload(ipython)


def __getattr__(name: str):
    home = _HOMES.get(name) or _api_home(name)
    if home is not None:
        value = getattr(_importlib.import_module(home, __name__), name)
        globals()[name] = value
        return value
    # After ``import ray``, Ray code reaches ``ray.util.pdb`` or ``ray.actor.exit_actor``
    # without importing them: load those subpackages on first use (in workers too).
    if name in ("util", "actor"):
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | set(__all__))


def _api_home(name: str) -> str | None:
    from ._api import HOMES
    home = HOMES.get(name)
    # The defining module itself (``_api.remote`` is also the name of a module).
    return None if home is None else f"._api.{home}"


if _os.environ.get("JUPYTER_ACTORS_WORKER"):
    # A worker process loads the API on first use: a worker's start is on the
    # way to every new actor's first answer, and most workers never need it.
    pass
else:
    for _name in __all__:
        if _name not in globals():
            __getattr__(_name)
    del _name
    # The driver's runtime, ready for init(); worker processes never need it.
    from ._backend import local as _local  # noqa: F401
