"""Every message on the driver <-> worker channel: one named type per kind.

    tag               type              fields
    ────────────────  ────────────────  ──────────────────────────────────────────────
    driver → worker
    actor             CreateActor       call_id, class_payload, args, deps, options
    tasks             BecomeTaskWorker  options
    call              CallMethod        call_id, method, args, deps, num_returns, group
    define            DefineFunction    func_id, function_payload
    task              RunTask           call_id, func_id, args, deps, num_returns, label
    cancel            CancelCall        call_id
    ref               RefAnswer         ref_id, ok, payload
    reply             Reply             request_id, ok, payload
    exit              ExitWhenDone      (none)
    consumed          ItemsConsumed     call_id, count
    stream_item       StreamItem        call_id, ref_id, payload
    worker → driver
    init_ok           ActorReady        call_id
    init_err          ActorInitFailed   call_id, error
    start             CallStarted       call_id, t, slot
    ok                CallOk            call_id, payloads, t_start, t_end, slot
    oks               CallsOk           blobs, numbers
    err               CallFailed        call_id, error, t_start, t_end, slot
    cancelled         CallCancelled     call_id, t_end
    not_interrupted   NotInterrupted    call_id
    out               OutputLines       call_id, stream, text
    lookup            LookupRef         ref_id
    submit_actor      SubmitActor       call_id, actor_id, class_key, class_payload, args, deps, exported, options
    submit_call       SubmitCall        call_id, actor_id, method, label, args, deps, num_returns, return_ids, exported, parent_id, group, retry
    submit_task       SubmitTask        call_id, func_id, label, function_payload, args, deps, num_returns, return_ids, exported, options
    put               PutObject         ref_id, payload, exported
    cancel_ref        CancelRef         ref_id, force
    kill              KillActor         actor_id, no_restart
    release           Release           refs, actors
    request           Request           request_id, what, args
    exiting           ActorExiting      call_id, how, intended
    blocked           WorkerBlocked     blocked, ref_ids
    prompt_open       PromptOpen        request_id, call_id, kind
    prompt_line       PromptLine        request_id, call_id, prompt, password
    prompt_close      PromptClose       call_id
    items             GeneratorItems    call_id, index, payloads
    stream_consumed   StreamConsumed    call_id, count
    returned          CallsReturned     call_ids
    bar               BarState          call_id, bar_id, state, closed

What the fields hold:
- ``args`` is the payload of ``(args, kwargs)`` with top-level ObjectRef
  arguments replaced by ``DepArg`` placeholders; ``deps`` the payloads of those
  refs' values, in placeholder order.
- ``options`` (a dict) of ``CreateActor`` / ``BecomeTaskWorker``: ``sys_path``,
  ``cwd`` and ``alias_ray`` for every worker; for an actor also ``actor_id``,
  ``class_name``, ``name``, ``namespace``, ``max_concurrency``, ``is_async`` and
  ``concurrency_groups`` (``{name: size}`` or None).
  Of ``SubmitActor`` / ``SubmitTask``: the actor's or task's options, and
  ``parent_id``.
- ``group`` of ``CallMethod`` / ``SubmitCall``: the concurrency group the call
  runs in (the method's, or the one given with ``.options``); None for the
  default group, sized by ``max_concurrency``.
- ``payloads`` of ``CallOk``: a tuple, one payload per declared return value.
- ``CallsOk``: a run of ``CallOk`` sent together in one frame, which the driver
  decodes once for the run: calls that each returned one value pickled without
  out-of-band buffers (most calls), in the order they ended. ``blobs``: their
  values; ``numbers``: their call ids, then t_start, then t_end (floats), then
  slots, each a column of one 8-byte number per call in native byte order (the
  driver's trace keeps them as arrays: no number object per call).
- ``error``: ``(exception payload or None, type name, message, traceback text,
  frames, chained)``: ``frames`` are the user's frames that raised it, as plain
  tuples (``_wire/tracebacks.py``), ``chained`` whether the remote exception
  had a cause or context that only the text shows.
- ``t``, ``t_start``, ``t_end``: the worker's ``time.monotonic()``; ``slot``: the
  thread (threaded actor) or in-flight slot (async actor) that ran the call.
- ``text`` of ``OutputLines``: complete lines, each ending in ``"\\n"``.
- ``RefAnswer`` carries the value of a ref the worker holds: asked for with
  ``LookupRef``, or pushed when a call the worker submitted finishes. ``ok``
  says whether ``payload`` is the value or the exception the ref failed with.

Calls made inside a worker (the ``Submit*`` kinds, ``PutObject``,
``CancelRef``, ``KillActor``) go to the driver, which owns every actor and
object and routes them; the worker picks the ids of the refs it will hold
(``call_id``, ``return_ids``: its pid in the high bits keeps them unique).
- ``deps``: ids of top-level ref arguments; ``exported``: ``(ref ids, actor
  ids)`` pickled inside the arguments or the value, which the driver lends to
  whoever receives them.
- ``parent_id``: the call the worker was running when it made this one (its
  output goes where the parent's goes).
- ``retry`` of ``SubmitCall``: None, or ``(max_task_retries, retry_exceptions)``
  set for that method or call (None in either: the actor's own setting).
- ``no_restart`` of ``KillActor``: False lets ``max_restarts`` restart the actor.
- ``Release``: ``refs`` and ``actors`` are ``((id, count), ...)``: how many
  times the driver sent each to this worker before the worker dropped the
  last object that stood for it; the driver frees what nobody holds.
- ``Request``/``Reply``: a question the worker waits for (``what`` is
  ``"find_actor"``, ``"describe_actor"``, ``"describe_actors"``).
- ``ActorExiting``: the actor ends itself in that call; ``how`` says how
  (``"exit_actor()"``, ``"sys.exit(3)"``); ``intended`` is False for an exit
  with an error code (``sys.exit(3)``), which ``max_restarts`` may restart.
- ``WorkerBlocked``: a worker waits in ``get``/``wait`` for ``ref_ids`` (True) or
  goes on (False): meanwhile the task pool may start another worker, and the
  queued tasks it waits for run first, so tasks that wait for tasks (a
  recursive quicksort) never run out of workers.
- ``PromptOpen`` / ``PromptLine`` / ``PromptClose``: ``breakpoint()``,
  ``pdb.set_trace()`` or ``input()`` in a call. Open waits for the call's turn
  (one prompt session at a time) and is answered with a ``Reply`` whose value
  says whether anyone can answer (``kind`` is ``"debugger"`` or ``"input"``);
  each line is answered with the text the user typed, or an error (the cell was
  interrupted); Close lets the next session have the prompt.
- ``CallsReturned``: a task worker about to wait (or waiting) gives back the
  calls it was sent ahead and has not started, for other workers to run.
- ``BarState``: a tqdm bar in a call (``_worker/bars.py``), at most one per 0.1 s
  per bar and a last one, ``closed``, when the bar or its call ends; ``state``
  is a dict of tqdm's ``format_meter`` arguments (``n``, ``total``, ``elapsed``,
  ``prefix``, ``unit``, ``rate``, ``postfix`` ...).

Generators (a method or function that yields):
- ``num_returns`` of ``CallMethod`` / ``RunTask`` / ``Submit*`` is ``-1``
  (``STREAMING``) for a streaming generator, ``-(2 + N)`` for one whose
  producer pauses while ``N`` yielded items are not yet taken by the consumer
  (``_generator_backpressure_num_objects``), and ``-2`` (``DYNAMIC``) for
  ``num_returns="dynamic"``. The call's own result is ``None`` once the
  generator is exhausted; an exception raised in it fails the call.
- ``GeneratorItems``: items the call yielded, the first of them item ``index``
  (0, 1, ...); the driver ignores the indexes it has had (a retried task yields
  again from 0).
- ``ItemsConsumed``: the consumer has taken ``count`` items so far (sent only
  for calls with backpressure); ``StreamConsumed`` is the same, from a worker
  that consumes another call's items, for the driver to pass on.
- ``StreamItem``: the next item of a generator call this worker made, as a ref
  the driver lends it (``ref_id``) with its value.

On the wire a message is the plain tuple ``(tag, *fields)`` (see ``frames``).
"""
# No ``from __future__ import annotations`` here: NamedTuple compiles each string
# annotation into a ForwardRef, a third of building these classes, and every worker
# process builds them on its way to its first answer.
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
    group: Any
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
    ref_id: int
    ok: bool
    payload: Any
    TAG = "ref"


class Reply(NamedTuple):
    request_id: int
    ok: bool
    payload: Any
    TAG = "reply"


class ExitWhenDone(NamedTuple):
    TAG = "exit"


class ItemsConsumed(NamedTuple):
    call_id: int
    count: int
    TAG = "consumed"


class StreamItem(NamedTuple):
    call_id: int
    ref_id: int
    payload: Any
    TAG = "stream_item"


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


class CallsOk(NamedTuple):
    blobs: tuple
    numbers: bytes
    TAG = "oks"


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
    ref_id: int
    TAG = "lookup"


class SubmitActor(NamedTuple):
    call_id: int
    actor_id: str
    class_key: str
    class_payload: Any
    args: Any
    deps: tuple
    exported: tuple
    options: dict
    TAG = "submit_actor"


class SubmitCall(NamedTuple):
    call_id: int
    actor_id: str
    method: str
    label: str
    args: Any
    deps: tuple
    num_returns: int
    return_ids: tuple
    exported: tuple
    parent_id: Any
    group: Any
    retry: Any
    TAG = "submit_call"


class SubmitTask(NamedTuple):
    call_id: int
    func_id: str
    label: str
    function_payload: Any
    args: Any
    deps: tuple
    num_returns: int
    return_ids: tuple
    exported: tuple
    options: dict
    TAG = "submit_task"


class PutObject(NamedTuple):
    ref_id: int
    payload: Any
    exported: tuple
    TAG = "put"


class CancelRef(NamedTuple):
    ref_id: int
    force: bool
    TAG = "cancel_ref"


class KillActor(NamedTuple):
    actor_id: str
    no_restart: bool
    TAG = "kill"


class Release(NamedTuple):
    refs: tuple
    actors: tuple
    TAG = "release"


class Request(NamedTuple):
    request_id: int
    what: str
    args: tuple
    TAG = "request"


class ActorExiting(NamedTuple):
    call_id: int
    how: str
    intended: bool
    TAG = "exiting"


class WorkerBlocked(NamedTuple):
    blocked: bool
    ref_ids: tuple
    TAG = "blocked"


class PromptOpen(NamedTuple):
    request_id: int
    call_id: int
    kind: str
    TAG = "prompt_open"


class PromptLine(NamedTuple):
    request_id: int
    call_id: int
    prompt: str
    password: bool
    TAG = "prompt_line"


class PromptClose(NamedTuple):
    call_id: int
    TAG = "prompt_close"
class GeneratorItems(NamedTuple):
    call_id: int
    index: int
    payloads: tuple
    TAG = "items"


class StreamConsumed(NamedTuple):
    call_id: int
    count: int
    TAG = "stream_consumed"


class CallsReturned(NamedTuple):
    call_ids: tuple
    TAG = "returned"


class BarState(NamedTuple):
    call_id: Any
    bar_id: int
    state: dict
    closed: bool
    TAG = "bar"


TO_WORKER = (CreateActor, BecomeTaskWorker, CallMethod, DefineFunction, RunTask, CancelCall,
             RefAnswer, Reply, ExitWhenDone, ItemsConsumed, StreamItem)
TO_DRIVER = (ActorReady, ActorInitFailed, CallStarted, CallOk, CallsOk, CallFailed,
             CallCancelled, NotInterrupted, OutputLines, LookupRef, SubmitActor, SubmitCall, SubmitTask,
             PutObject, CancelRef, KillActor, Release, Request, ActorExiting, WorkerBlocked,
             PromptOpen, PromptLine, PromptClose, GeneratorItems, StreamConsumed,
             CallsReturned, BarState)

# num_returns of a generator call (see the docstring).
STREAMING = -1
DYNAMIC = -2


def streaming_num_returns(backpressure: int) -> int:
    """The num_returns of a streaming call whose producer keeps at most ``backpressure``
    items not yet taken (-1: no limit)."""
    return STREAMING if backpressure < 1 else -(2 + backpressure)


def backpressure_of(num_returns: int) -> int:
    """The item limit of a streaming call (0: none)."""
    return -num_returns - 2 if num_returns < DYNAMIC else 0


# tag -> message type, for decoding.
BY_TAG = {kind.TAG: kind for kind in TO_WORKER + TO_DRIVER}

# ``new(CallOk, (call_id, ...))`` builds the same message as ``CallOk(call_id, ...)``
# in one C call; the per-call paths use it (a NamedTuple's own __new__ is Python).
new = tuple.__new__
