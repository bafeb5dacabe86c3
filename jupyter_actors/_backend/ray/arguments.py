"""Arguments as Ray takes them: our refs become Ray's; the embedded runtime's are refused.

Ray resolves refs passed at the top level of a call before the call runs, so those
go to Ray as Ray's own refs. A ref or actor handle of the embedded runtime (made
before the session switched backends) cannot work on Ray: it is refused with an
error that says why, where it is passed or pickled.
"""
from __future__ import annotations

from ..._api.refs import ObjectRef
from .records import RayActor
from .refs import RayObjectRef


def ray_args(args: tuple) -> tuple:
    """Top-level refs go to Ray as Ray's refs (Ray resolves them before the call)."""
    for value in args:
        if isinstance(value, ObjectRef):
            return tuple(_ray_ref(v) if isinstance(v, ObjectRef) else v for v in args)
    return args


def ray_kwargs(kwargs: dict) -> dict:
    for value in kwargs.values():
        if isinstance(value, ObjectRef):
            return {k: _ray_ref(v) if isinstance(v, ObjectRef) else v for k, v in kwargs.items()}
    return kwargs


def _ray_ref(ref: ObjectRef):
    if type(ref) is RayObjectRef:
        return ref._ray_ref
    raise _mixing_error(ref)


def _mixing_error(item) -> ValueError:
    what = "an ObjectRef" if isinstance(item, ObjectRef) else "an actor handle"
    return ValueError(f"{what} of the embedded runtime cannot be used on Ray: it was made "
                      f"before the session switched backends, and its value or actor lives "
                      f"in a worker process of that runtime. Make it again on Ray (call "
                      f"the actor or put() the value again).")


def check_foreign(item) -> None:
    """Called for each ref or actor token pickled on Ray (Ray's serializer runs it)."""
    if type(item) is RayObjectRef or isinstance(item, RayActor):
        return
    raise _mixing_error(item)


def foreign_ref(ref_id: int):
    raise ValueError(f"ObjectRef {ref_id:032x} belongs to the embedded runtime, not to Ray")
