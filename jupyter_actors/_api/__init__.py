"""The public API: specs built here, run by the session's backend (see ``_backend.base``)."""
from .actors import ActorClass, ActorHandle, ActorMethod
from .functions import RemoteFunction
from .generators import DynamicObjectRefGenerator, ObjectRefGenerator
from .ops import cancel, get, get_actor, kill, put, wait
from .refs import ObjectRef
from .remote import method, remote
from .session import (available_resources, backend_name, cluster_resources, is_initialized,
                      shutdown)
from .startup import init

__all__ = ["ActorClass", "ActorHandle", "ActorMethod", "DynamicObjectRefGenerator", "ObjectRef",
           "ObjectRefGenerator", "RemoteFunction",
           "available_resources", "backend_name", "cancel", "cluster_resources", "get", "get_actor", "init",
           "is_initialized", "kill", "method", "put", "remote", "shutdown", "wait"]
