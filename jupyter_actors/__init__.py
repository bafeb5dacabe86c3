"""jupyter_actors: Ray's actor model (async and threaded actors, max_concurrency,
ObjectRefs that are futures) in local subprocesses, with no cluster to start.

    import jupyter_actors as ray

runs Ray's async-actor code unchanged. In Jupyter, ``%load_ext jupyter_actors``
adds the ``%%remote`` magic and routes actor output to the cell that made the call.
"""
from __future__ import annotations

import os as _os

from . import exceptions
from ._api import (ActorClass, ActorHandle, ActorMethod, DynamicObjectRefGenerator, ObjectRef,
                   ObjectRefGenerator, RemoteFunction,
                   available_resources, backend_name, cancel, cluster_resources, get, get_actor, init,
                   is_initialized, kill, method, put, remote, shutdown, wait)
from .runtime_context import get_runtime_context
from .tracing import timeline

if not _os.environ.get("JUPYTER_ACTORS_WORKER"):
    # The driver's runtime, ready for init(); worker processes never need it.
    from ._backend import local as _local  # noqa: F401

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
    # After ``import ray``, Ray code reaches ``ray.util.pdb`` or ``ray.actor.exit_actor``
    # without importing them: load those subpackages on first use (in workers too).
    if name in ("util", "actor"):
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
