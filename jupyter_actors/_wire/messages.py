"""Every message on the driver <-> worker channel: one named type per kind.

    tag               type              fields
    ────────────────  ────────────────  ──────────────────────────────────────────────
    driver → worker
    actor             CreateActor       call_id, class_payload, args, deps, options
    tasks             BecomeTaskWorker  options
    call              CallMethod        call_id, method, args, deps, num_returns
    define            DefineFunction    func_id, function_payload
    task              RunTask           call_id, func_id, args, deps, num_returns, label
    cancel            CancelCall        call_id
    ref               RefAnswer         lookup_id, ok, payload
    exit              ExitWhenDone      (none)
    worker → driver
    init_ok           ActorReady        call_id
    init_err          ActorInitFailed   call_id, error
    start             CallStarted       call_id, t, slot
    ok                CallOk            call_id, payloads, t_start, t_end, slot
    err               CallFailed        call_id, error, t_start, t_end, slot
    cancelled         CallCancelled     call_id, t_end
    not_interrupted   NotInterrupted    call_id
    out               OutputLines       call_id, stream, text
    lookup            LookupRef         lookup_id, ref_id

What the fields hold:
- ``args`` is the payload of ``(args, kwargs)`` with top-level ObjectRef
  arguments replaced by ``DepArg`` placeholders; ``deps`` the payloads of those
  refs' values, in placeholder order.
- ``options`` (a dict): ``sys_path`` and ``cwd`` for every worker; for an actor
  also ``class_name``, ``max_concurrency`` and ``is_async``.
- ``payloads`` of ``CallOk``: a tuple, one payload per declared return value.
- ``error``: ``(exception payload or None, type name, message, traceback text)``.
- ``t``, ``t_start``, ``t_end``: the worker's ``time.monotonic()``; ``slot``: the
  thread (threaded actor) or in-flight slot (async actor) that ran the call.
- ``text`` of ``OutputLines``: complete lines, each ending in ``"\\n"``.
- ``RefAnswer`` answers a ``LookupRef``: ``ok`` says whether ``payload`` is the
  value, or the exception the ref failed with.

On the wire a message is the plain tuple ``(tag, *fields)`` (see ``frames``).
"""
from __future__ import annotations

from typing import Any, NamedTuple


# -- driver -> worker -------------------------------------------------------------

class CreateActor(NamedTuple):
    call_id: int
    class_payload: Any
    args: Any
    deps: tuple
    options: dict
    TAG = "actor"


class BecomeTaskWorker(NamedTuple):
    options: dict
    TAG = "tasks"


class CallMethod(NamedTuple):
    call_id: int
    method: str
    args: Any
    deps: tuple
    num_returns: int
    TAG = "call"


class DefineFunction(NamedTuple):
    func_id: str
    function_payload: Any
    TAG = "define"


class RunTask(NamedTuple):
    call_id: int
    func_id: str
    args: Any
    deps: tuple
    num_returns: int
    label: str
    TAG = "task"


class CancelCall(NamedTuple):
    call_id: int
    TAG = "cancel"


class RefAnswer(NamedTuple):
    lookup_id: int
    ok: bool
    payload: Any
    TAG = "ref"


class ExitWhenDone(NamedTuple):
    TAG = "exit"


# -- worker -> driver -------------------------------------------------------------

class ActorReady(NamedTuple):
    call_id: int
    TAG = "init_ok"


class ActorInitFailed(NamedTuple):
    call_id: int
    error: tuple
    TAG = "init_err"


class CallStarted(NamedTuple):
    call_id: int
    t: float
    slot: int
    TAG = "start"


class CallOk(NamedTuple):
    call_id: int
    payloads: tuple
    t_start: float
    t_end: float
    slot: int
    TAG = "ok"


class CallFailed(NamedTuple):
    call_id: int
    error: tuple
    t_start: float
    t_end: float
    slot: int
    TAG = "err"


class CallCancelled(NamedTuple):
    call_id: int
    t_end: float
    TAG = "cancelled"


class NotInterrupted(NamedTuple):
    call_id: int
    TAG = "not_interrupted"


class OutputLines(NamedTuple):
    call_id: Any
    stream: str
    text: str
    TAG = "out"


class LookupRef(NamedTuple):
    lookup_id: int
    ref_id: int
    TAG = "lookup"


TO_WORKER = (CreateActor, BecomeTaskWorker, CallMethod, DefineFunction, RunTask, CancelCall,
             RefAnswer, ExitWhenDone)
TO_DRIVER = (ActorReady, ActorInitFailed, CallStarted, CallOk, CallFailed, CallCancelled,
             NotInterrupted, OutputLines, LookupRef)

# tag -> message type, for decoding.
BY_TAG = {kind.TAG: kind for kind in TO_WORKER + TO_DRIVER}
