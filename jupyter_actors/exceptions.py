"""Exceptions raised by jupyter_actors, under the names Ray code already catches.

Every class has a Ray alias (``RayTaskError`` = ``TaskError`` and so on), so
``except ray.exceptions.RayActorError`` keeps working after
``import jupyter_actors as ray``.
"""
from __future__ import annotations

import sys

__all__ = [
    "ActorDiedError",
    "ActorUnavailableError",
    "ActorError",
    "Error",
    "GetTimeoutError",
    "PendingCallsLimitExceeded",
    "RayActorError",
    "RayError",
    "RayTaskError",
    "RemoteTraceback",
    "TaskCancelledError",
    "TaskError",
    "WorkerCrashedError",
]


class Error(Exception):
    """Base class of every error raised by jupyter_actors itself."""


class TaskError(Error):
    """A remote call raised an exception.

    ``get`` raises an instance of the remote exception's own class that is
    also a ``TaskError``; its ``__cause__`` is a :class:`RemoteTraceback`
    holding the traceback printed in the worker.
    """

    remote_traceback: str = ""
    function_name: str = ""
    pid: int | None = None

    def __init__(self, message: str = "", *, remote_traceback: str = "",
                 function_name: str = "", pid: int | None = None):
        super().__init__(message)
        self.remote_traceback = remote_traceback
        self.function_name = function_name
        self.pid = pid

    @property
    def _render_traceback_(self):
        """IPython's hook: draw the remote frames as the rest of the local traceback.

        Absent (AttributeError) when there are no remote frames or no IPython
        shell runs, so IPython then draws the error its usual way.
        """
        if self.__dict__.get("_remote_frames") and "IPython" in sys.modules:
            from ._jupyter.remote_tracebacks import renderer_for
            render = renderer_for(self)
            if render is not None:
                return render
        raise AttributeError("_render_traceback_")

    @property
    def cause(self) -> BaseException:
        """The exception the remote code raised, as a plain instance of its own class
        (Ray's ``RayTaskError.cause``); this error itself when the original could not
        be sent back (it could not be pickled)."""
        cause = self.__dict__.get("_cause")
        return self if cause is None else cause

    @cause.setter
    def cause(self, value: BaseException | None) -> None:
        self.__dict__["_cause"] = value

    def as_instanceof_cause(self) -> BaseException:
        """An error that is an instance of the cause's class and of ``TaskError`` (Ray's API).

        What ``get`` raises already is both whenever the cause's class can be
        subclassed, so this is the error itself.
        """
        return self


class RemoteTraceback(Exception):
    """Carries the traceback text of an exception raised in a worker."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


class ActorError(Error):
    """The actor could not run the call (it died, or never started)."""


class ActorDiedError(ActorError):
    """The actor process is gone: killed, crashed, exited, or failed in ``__init__``."""


class ActorUnavailableError(ActorError):
    """The actor's process died while running the call and the actor is being restarted
    (``max_restarts``); the call may or may not have run. Later calls go to the new process."""


class WorkerCrashedError(Error):
    """The process running a remote function died before returning."""


class PendingCallsLimitExceeded(Error):
    """An actor created with ``max_pending_calls=N`` already has N calls that have not finished."""


class GetTimeoutError(Error, TimeoutError):
    """``get`` gave up waiting; the call keeps running."""


class TaskCancelledError(Error):
    """The call was cancelled with ``cancel`` before it produced a result."""


# Ray's names, so code written for Ray catches the same errors.
RayError = Error
RayTaskError = TaskError
RayActorError = ActorError
