"""Ray's exceptions, translated at the boundary into the ones the embedded runtime raises.

Code that catches ``jupyter_actors.exceptions.ActorDiedError`` or a remote
``ValueError`` behaves the same whichever backend ran the call.
"""
from __future__ import annotations

from ..._wire.errors import as_task_error
from ...exceptions import (ActorDiedError, ActorUnavailableError, Error, GetTimeoutError,
                           PendingCallsLimitExceeded, RemoteTraceback, TaskCancelledError,
                           TaskError, WorkerCrashedError)


def translate(error: BaseException, label: str, actor=None) -> BaseException:
    """Our exception for ``error`` raised by Ray for the call ``label`` (of ``actor``, if any)."""
    import ray.exceptions as rx
    if isinstance(error, Error):
        return error
    if isinstance(error, rx.TaskCancelledError):
        return TaskCancelledError(f"{label} was cancelled.")
    if isinstance(error, rx.RayTaskError):
        cause = getattr(error, "cause", None)
        if type(cause).__name__ == "CancelledBeforeStart":
            return TaskCancelledError(f"{label} was cancelled before it started.")
        if isinstance(cause, rx.RayError) and not isinstance(cause, rx.RayTaskError):
            return translate(cause, label, actor)   # the call failed on a dead actor it used
        if isinstance(cause, rx.RayTaskError):
            return translate(cause, label, actor)
        exc = as_task_error(cause) if isinstance(cause, BaseException) else None
        if exc is None:
            text = f"{type(cause).__name__}: {cause}" if cause is not None else str(error)
            exc = TaskError(text)
        tb = getattr(error, "traceback_str", "") or ""
        pid = getattr(error, "pid", None)
        exc.remote_traceback = tb
        exc.function_name = label
        exc.pid = pid
        exc.__cause__ = RemoteTraceback(f"\n{label} failed in pid {pid}:\n\n{tb}")
        return exc
    if isinstance(error, rx.ActorUnavailableError) and getattr(actor, "restartable", False):
        return actor_unavailable(error, label, actor)
    if isinstance(error, rx.RayActorError):   # unavailable with no restart to come: gone
        return actor_died(error, label, actor)
    if isinstance(error, rx.WorkerCrashedError):
        return WorkerCrashedError(f"The worker running {label} died before it returned "
                                  f"(Ray: {_first_line(error)}).")
    if isinstance(error, rx.GetTimeoutError):
        return GetTimeoutError(str(error))
    if isinstance(error, rx.PendingCallsLimitExceeded):
        return PendingCallsLimitExceeded(str(error))
    if isinstance(error, rx.RayError):
        wrapped = Error(f"{label} failed on Ray: {type(error).__name__}: {_first_line(error)}")
        wrapped.__cause__ = error
        return wrapped
    return error


def actor_died(error, label: str, actor=None) -> ActorDiedError:
    """An ActorDiedError worded as the embedded runtime words it."""
    name = actor.class_name if actor is not None else label.split(".")[0]
    pid = actor.pid if actor is not None else None
    where = f" (pid={pid})" if pid else ""
    if actor is not None and actor.killed:
        how = "was killed by jupyter_actors.kill()"
    else:
        how = f"died: {_first_line(error)}"
    died = ActorDiedError(f"The actor {name}{where} {how}; {label} failed.")
    cause = getattr(error, "cause", None) if error is not None else None
    if isinstance(cause, BaseException):
        died.__cause__ = cause
    return died


def actor_unavailable(error, label: str, actor=None) -> ActorUnavailableError:
    """The actor's process went away while it ran the call, and Ray may restart it."""
    name = actor.class_name if actor is not None else label.split(".")[0]
    where = f" (pid={actor.pid})" if actor is not None and actor.pid else ""
    return ActorUnavailableError(
        f"The actor {name}{where} is unavailable, its process died or cannot be reached "
        f"(Ray restarts it when max_restarts allows). {label} may or may not have run; give "
        f"it max_task_retries to have it sent again. (Ray: {_first_line(error)})")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def made_on_ray(what: str) -> ValueError:
    """``what`` (a ref or a handle of a Ray session) is being sent to the embedded runtime."""
    return ValueError(
        f"{what} was made while Ray ran the session and cannot be used on the embedded "
        f"runtime that runs it now: its value or actor lives on the Ray cluster, which this "
        f"session left when it switched backends. Make it again here (call the actor or "
        f"put() the value again), or init(address=...) to go back to Ray.")
