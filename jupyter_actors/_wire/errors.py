"""Rebuilding exceptions that happened in a worker (an ``error`` field of a message)."""
from __future__ import annotations

from ..exceptions import RemoteTraceback, TaskError
from .payloads import deserialize

_dual_classes: dict = {}


def remote_exception(error: tuple, where: str, pid: int | None) -> BaseException:
    """The exception to raise at ``get`` for an ``error`` tuple sent by a worker.

    It is an instance of the remote exception's own class and of ``TaskError``,
    with the remote traceback attached as its ``__cause__``.
    """
    payload, type_name, message, tb_text = error[:4]
    original = None
    if payload is not None:
        try:
            original = deserialize(payload)
        except Exception:
            original = None
    exc = as_task_error(original) if isinstance(original, BaseException) else None
    if exc is None:
        text = f"{type_name}: {message}" if message else type_name
        exc = TaskError(text)
    exc.cause = original if isinstance(original, BaseException) else None
    exc.remote_traceback = tb_text
    exc.function_name = where
    exc.pid = pid
    exc.__cause__ = RemoteTraceback(f"\n{where} failed in pid {pid}:\n\n{tb_text}")
    # What IPython draws as the rest of the local traceback (_jupyter/remote_tracebacks.py).
    exc._remote_frames = error[4] if len(error) > 4 else ()
    exc._remote_chained = error[5] if len(error) > 5 else True
    return exc


def as_task_error(original: BaseException) -> BaseException | None:
    """A copy of ``original`` whose class also derives from TaskError, or None."""
    cls = type(original)
    if isinstance(original, TaskError):
        return original
    if not issubclass(cls, Exception):
        # SystemExit, KeyboardInterrupt, CancelledError raised remotely must
        # not exit or cancel the driver: they arrive as a plain TaskError.
        return None
    dual = _dual_classes.get(cls)
    if dual is None:
        try:
            dual = type(cls.__name__, (cls, TaskError),
                        {"__module__": cls.__module__, "__qualname__": cls.__qualname__})
        except TypeError:
            return None
        _dual_classes[cls] = dual
    try:
        exc = dual.__new__(dual, *original.args)
        exc.__dict__.update(getattr(original, "__dict__", {}))
        exc.args = original.args
    except Exception:
        return None
    return exc

