"""One call as a worker runs it: its arguments in, its return values or error out.

Executors run the driver's messages themselves: a ``CallMethod`` (an actor's
call) or a ``RunTask`` (a remote function's), which have the same shape:
``(call_id, method or function id, args, deps, num_returns, group or label)``.
"""
from __future__ import annotations

import os
import traceback
import types

from .._wire.payloads import NONE_PAYLOAD, DepArg, deserialize, serialize
from .._wire.tracebacks import describe_frames
from ..exceptions import RemoteTraceback

# Return values that encode_returns pickles with the plain C pickler (see builtin_only).
_SCALARS = frozenset({type(None), bool, int, float, str, bytes})

# Frames of the worker's own machinery, left out of the tracebacks users see.
_HERE = os.path.dirname(__file__)
_OWN_FILES = {os.path.join(_HERE, name) for name in os.listdir(_HERE) if name.endswith(".py")}


def load_arguments(payload, deps: tuple):
    """``(args, kwargs)`` of a call: its ``args`` payload, with the values of its top-level
    ref arguments (``deps``) put in place of their placeholders."""
    args, kwargs = deserialize(payload)
    if deps:
        values = [deserialize(p) for p in deps]
        args = tuple(values[a.index] if isinstance(a, DepArg) else a for a in args)
        kwargs = {k: values[v.index] if isinstance(v, DepArg) else v
                  for k, v in kwargs.items()}
    return args, kwargs


# The worker's streams.Producer (set at start): a generator call's items go out through it.
stream_producer = None


def encode_returns(value, num_returns: int, label: str) -> tuple:
    try:
        if num_returns == 1:
            return (NONE_PAYLOAD if value is None else serialize(value, handoff=True),)
        if num_returns == 0:
            return ()
        if num_returns < 0:  # a generator: its items go out one by one as it yields them
            return stream_producer.run(value, num_returns, label)
        values = tuple(value)
        if len(values) != num_returns:
            raise ValueError(f"{label} declares num_returns={num_returns} "
                             f"but returned {len(values)} values")
        return tuple(serialize(v, handoff=True) for v in values)
    except (ValueError, ReturnValueError):
        raise
    except Exception as exc:
        if num_returns < 0:
            raise  # raised by the generator itself, at the item where it happened
        if num_returns == 1 and isinstance(value, types.GeneratorType):
            return _one_yielded(value, label)  # a generator with num_returns=1, as in Ray
        raise ReturnValueError(
            f"could not pickle the return value of {label}: {type(exc).__name__}: {exc}") from exc


def _one_yielded(gen, label: str) -> tuple:
    values = tuple(gen)
    if len(values) != 1:
        raise ValueError(f"{label} declares num_returns=1 but yielded {len(values)} values")
    return encode_returns(values[0], 1, label)


class ActorExit(BaseException):
    """Raised by ``exit_actor()``: ends the actor (not an error of the call)."""


class ReturnValueError(TypeError):
    """The call ran, but what it returned cannot be sent back."""


def describe_error(exc: BaseException) -> tuple:
    tb = exc.__traceback__
    # Drop the worker's own frames: the user wants to see their code.
    while tb is not None and tb.tb_frame.f_code.co_filename in _OWN_FILES:
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    try:
        frames = describe_frames(exc)
    except Exception:
        frames = ()  # the text above still tells what happened
    try:
        payload = serialize(exc.with_traceback(None))
    except Exception:
        payload = None
    return (payload, f"{type(exc).__module__}.{type(exc).__qualname__}", str(exc), text,
            frames, is_chained(exc))


def is_chained(exc: BaseException) -> bool:
    """Whether the traceback text says more than the frames: a cause or a context."""
    cause = exc.__cause__
    if cause is not None:
        return not isinstance(cause, RemoteTraceback)
    return exc.__context__ is not None and not exc.__suppress_context__
