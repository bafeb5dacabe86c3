"""The public API: specs built here, run by the session's backend (see ``_backend.base``).

Each name loads its module on first use, so that a worker process, which needs
only refs and the session, starts without the rest of the API.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what __getattr__ below loads, for readers and type checkers
    from .actors import ActorClass, ActorHandle, ActorMethod
    from .functions import RemoteFunction
    from .generators import DynamicObjectRefGenerator, ObjectRefGenerator
    from .ops import cancel, get, get_actor, kill, put, wait
    from .refs import ObjectRef
    from .remote import method, remote
    from .session import (available_resources, backend_name, cluster_resources,
                          is_initialized, shutdown)
    from .startup import init

# name -> the module of this package that defines it
HOMES = {
    "ActorClass": "actors", "ActorHandle": "actors", "ActorMethod": "actors",
    "RemoteFunction": "functions",
    "DynamicObjectRefGenerator": "generators", "ObjectRefGenerator": "generators",
    "cancel": "ops", "get": "ops", "get_actor": "ops", "kill": "ops", "put": "ops", "wait": "ops",
    "ObjectRef": "refs",
    "method": "remote", "remote": "remote",
    "available_resources": "session", "backend_name": "session",
    "cluster_resources": "session", "is_initialized": "session", "shutdown": "session",
    "init": "startup",
}

__all__ = sorted(HOMES)


def __getattr__(name: str):
    home = HOMES.get(name)
    if home is None:  # (a submodule not imported yet: the import system loads it)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
