"""Our ObjectRef over one of Ray's: the same future-based ref the API knows, fed by Ray.

Ray calls back (from its own thread) when the object is ready; the callback
completes the ref's future with the value, or with Ray's error translated into
ours. A ref pickles to Ray's ref, so Ray tracks who borrows it wherever it goes,
and it becomes one of ours again where it lands.
"""
from __future__ import annotations

import concurrent.futures

from ..._api.refs import ObjectRef
from .errors import translate


class RayObjectRef(ObjectRef):
    """An ObjectRef whose value Ray holds."""

    __slots__ = ("_ray_ref",)

    def __reduce__(self):
        return (ref_of, (self._ray_ref,))


class _RayFuture(concurrent.futures.Future):
    """A future Ray completes; ``result()`` asks Ray directly, in the caller's thread.

    Waiting in ``ray.get`` instead of for Ray's callback saves the hop through Ray's
    callback thread on every blocking ``get`` (the callback still ends the trace record
    and wakes ``wait``, ``await`` and done-callbacks)."""

    __slots__ = ("ray_ref", "completion")

    def result(self, timeout=None):
        if not self.done():
            import ray
            import ray.exceptions as rx
            try:
                value = ray.get(self.ray_ref, timeout=timeout)
            except rx.GetTimeoutError:
                raise concurrent.futures.TimeoutError() from None
            except rx.RayError:
                # Ray raises a copy without the remote traceback: the callback, about to
                # run now that the object is there, has Ray's full error.
                return super().result(timeout)
            else:
                self.completion(value)
        return super().result(0)


def ref_of(ray_ref, record=None) -> RayObjectRef:
    """Our ref for Ray's ``ray_ref``, completed when Ray has the value."""
    future = _RayFuture()
    future.ray_ref = ray_ref
    ref = RayObjectRef(int.from_bytes(ray_ref.binary(), "big"), future)
    ref._ray_ref = ray_ref
    ref._owner = record
    future.completion = _Completion(future, record)
    ray_ref._on_completed(future.completion)
    return ref


class _Completion:
    """Ray's done-callback for one ref: sets our future, finishes the call's trace record."""

    __slots__ = ("future", "record")

    def __init__(self, future, record):
        self.future = future
        self.record = record

    def __call__(self, result) -> None:
        import ray.exceptions as rx
        record = self.record
        if isinstance(result, rx.RayError):
            error = translate(result, record.label if record is not None else "get",
                              record.owner if record is not None and record.kind != "task"
                              else None)
            if record is not None:
                record.end(error)
            _settle(self.future, error, True)
            return
        if record is not None:
            record.end(None)
        _settle(self.future, result, False)


def _settle(future, value, failed: bool) -> None:
    try:
        if failed:
            future.set_exception(value)
        else:
            future.set_result(value)
    except concurrent.futures.InvalidStateError:
        pass   # already failed by a cancel or by the cluster going away


def fail_pending(refs, error: BaseException) -> None:
    """Fail refs Ray will never complete (the cluster went away)."""
    for ref in refs:
        _settle(ref._future, error, True)
