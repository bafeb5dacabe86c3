"""The backend inside a worker: calls made here go to the driver, which runs them.

    this worker                                   the driver (_backend/local/worker_calls)
    ───────────                                   ────────────────────────────────────────
    other.m.remote() / f.remote() / Cls.remote()  ──▶ runs them as its own calls
      refs with ids picked here, futures pending  ◀── RefAnswer: each value when ready
    a ref or handle arrives in a payload:         ──▶ LookupRef (a ref's value)
      one object per id in this process
    the last object for an id is dropped          ──▶ Release((id, times it arrived))
    get_actor / repr of a handle                  ──▶ Request, answered by Reply

The driver owns every actor and object; this process only holds refs and
handles to them, and says when it holds one no more. Drops are queued and sent
at the next frame this worker sends (and by the flushing thread), never from
inside a garbage-collection callback, which may run while a send holds the
channel's lock.
"""
from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import itertools
import os
import threading
import weakref

from .. import _ids
from .._api import refs as _refs
from .._api.refs import ObjectRef
from .._backend.base import Backend
from .._wire.messages import (DYNAMIC, CancelRef, KillActor, LookupRef, PutObject, Release,
                              Request, StreamConsumed, SubmitActor, SubmitCall, SubmitTask,
                              WorkerBlocked, backpressure_of)
from .._wire.payloads import Payload, deserialize
from .capture import current_call


class RemoteActor:
    """This worker's token for an actor the driver runs."""

    __slots__ = ("actor_id", "named_key", "__weakref__")

    def __init__(self, actor_id: str, named_key):
        self.actor_id = actor_id
        self.named_key = named_key


class WorkerCall:
    """What a worker knows of a call it made (``ref._owner`` here)."""

    __slots__ = ("call_id", "kind", "label", "actor_id", "group")

    def __init__(self, call_id, kind, label, actor_id, group=None):
        self.call_id, self.kind, self.label, self.actor_id = call_id, kind, label, actor_id
        self.group = group   # an actor call's concurrency group (None: the default)


class ClientBackend(Backend):
    """Actors, tasks and objects as a worker reaches them: through the driver."""

    name = "worker"

    def __init__(self, worker):
        self.worker = worker
        self.channel = worker.channel
        self.lock = threading.RLock()
        self.refs: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self.futures: dict = {}          # ref_id -> the future of this process's ref
        self.arrivals: dict = {}         # ref_id -> times the driver sent it since last released
        self.tokens: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self.actor_arrivals: dict = {}   # actor_id -> likewise, for handles
        self.handles: dict = {}          # actor_id -> live handles here
        self.dropped: collections.deque = collections.deque()  # ("ref"|"actor", id, count)
        self.defined: set = set()        # functions already sent to the driver
        self.replies: dict = {}          # request_id -> future
        self.streams: dict = {}          # call_id -> (Stream, owner) of a generator call made here
        self._request_ids = itertools.count(1)

    # -- refs ----------------------------------------------------------------------------
    def ref_arrived(self, ref_id: int) -> ObjectRef:
        """A ref unpickled here (the resolver): this process's object for that id."""
        with self.lock:
            self.arrivals[ref_id] = self.arrivals.get(ref_id, 0) + 1
            ref = self.refs.get(ref_id)
            if ref is not None:
                return ref
            ref = self._new_ref(ref_id)
        self.send(LookupRef(ref_id))
        return ref

    def _new_ref(self, ref_id: int, owner=None) -> ObjectRef:
        # Caller holds self.lock. A future still waiting for its value (an
        # earlier object for this id was dropped while someone awaited it) is
        # shared by the new object.
        fut = self.futures.get(ref_id)
        if fut is None:
            fut = self.futures[ref_id] = concurrent.futures.Future()
        ref = ObjectRef(ref_id, fut)
        ref._owner = owner
        self.refs[ref_id] = ref
        weakref.finalize(ref, self._ref_dropped, ref_id)
        return ref

    def _own_ref(self, ref_id: int, owner) -> ObjectRef:
        """A ref of a call made here: the driver lent it to us once."""
        with self.lock:
            self.arrivals[ref_id] = self.arrivals.get(ref_id, 0) + 1
            return self._new_ref(ref_id, owner)

    def _ref_dropped(self, ref_id: int) -> None:
        with self.lock:
            if ref_id in self.refs:  # a newer object for the id exists already
                return
            fut = self.futures.get(ref_id)
            # A value still on its way is kept for whoever awaits it (``await
            # f.remote()`` holds no ref object, only the future).
            if fut is not None and fut.done():
                del self.futures[ref_id]
            count = self.arrivals.pop(ref_id, 0)
        if count:
            self.dropped.append(("ref", ref_id, count))

    def on_ref_answer(self, ref_id: int, ok: bool, payload) -> None:
        """A value (or error) the driver sent for a ref held here."""
        try:
            value = deserialize(payload)  # also counts the refs and handles inside it
        except BaseException as exc:
            value, ok = exc, False
        with self.lock:
            fut = self.futures.get(ref_id)
            if fut is not None and ref_id not in self.refs:
                del self.futures[ref_id]  # its ref object is gone: only awaiters want it
        if fut is None or fut.done():
            return
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)

    # -- sending -------------------------------------------------------------------------
    def send(self, message) -> None:
        self.flush_releases()
        self.channel.send(message)

    def flush_releases(self) -> None:
        """Tell the driver about refs and handles dropped here since the last time."""
        if not self.dropped:
            return
        refs, actors = [], []
        while self.dropped:
            kind, item_id, count = self.dropped.popleft()
            (refs if kind == "ref" else actors).append((item_id, count))
        self.channel.send(Release(tuple(refs), tuple(actors)))

    def _exported(self, items) -> tuple:
        refs, actors = [], []
        for item in items or ():
            if type(item) is ObjectRef:
                refs.append(item._id)
            else:
                actors.append(item.actor_id)
        return (tuple(refs), tuple(actors))

    def _call_refs(self, kind, label, num_returns, actor_id, group=None):
        ids = tuple(_ids.next_id() for _ in range(max(num_returns, 1)))
        owner = WorkerCall(ids[0], kind, label, actor_id, group)
        refs = [self._own_ref(i, owner) for i in ids]
        if num_returns == 1:
            result = refs[0]
        elif num_returns >= 0:
            result = refs if num_returns else None
        elif num_returns == DYNAMIC:
            result = refs[0]   # its value, when the call ends, holds the items' refs
        else:
            result = self._open_stream(ids[0], refs[0], num_returns, label)
        return ids, refs, result

    # -- generator calls made here --------------------------------------------------------
    def _open_stream(self, call_id, first: ObjectRef, num_returns: int, label: str):
        # Loaded here, not with the worker: most workers never make a generator call.
        from .._api.generators import ObjectRefGenerator, Stream

        def consumed(count):
            self.send(StreamConsumed(call_id, count))
        stream = Stream(consumed if backpressure_of(num_returns) else None)
        self.streams[call_id] = (stream, first._owner)
        first._future.add_done_callback(lambda _: self.streams.pop(call_id, None))
        return ObjectRefGenerator(stream, first, label, self.blocking_get)

    def on_stream_item(self, call_id, ref_id: int, payload) -> None:
        """The next item of a generator call made here: a ref the driver lent us."""
        stream, owner = self.streams.get(call_id, (None, None))
        ref = self._own_ref(ref_id, owner)  # dropped at once if nobody consumes any more
        try:
            value = deserialize(payload)  # also counts the refs and handles inside it
        except BaseException as exc:
            ref._future.set_exception(exc)
        else:
            ref._future.set_result(value)
        if stream is not None:
            stream.push([ref])

    # -- actors ----------------------------------------------------------------------------
    def create_actor(self, spec):
        options = {"class_name": spec.class_name, "is_async": spec.is_async,
                   "max_concurrency": spec.max_concurrency, "name": spec.name,
                   "concurrency_groups": spec.concurrency_groups,
                   "namespace": spec.namespace, "max_pending_calls": spec.max_pending_calls,
                   "max_restarts": spec.max_restarts, "max_task_retries": spec.max_task_retries,
                   "parent_id": current_call.get()}
        message = SubmitActor(_ids.next_id(), spec.actor_id, spec.class_key,
                              spec.definition.payload(), spec.args,
                              tuple(d._id for d in spec.deps), self._exported(spec.exported),
                              options)
        if spec.name is not None:
            # A taken name raises here, at Cls.remote(), as in the driver.
            self.request(None, message=message)
        else:
            self.send(message)
        token = self.adopt_actor(spec.actor_id, None if spec.name is None
                                 else (spec.namespace, spec.name))
        return token

    def call_actor(self, actor: RemoteActor, spec):
        label, method, args, deps, num_returns, context, exported, _, group, retry = spec
        ids, refs, result = self._call_refs("call", label, num_returns, actor.actor_id, group)
        self.send(SubmitCall(ids[0], actor.actor_id, method, label, args,
                             tuple(d._id for d in deps), num_returns, ids,
                             self._exported(exported), current_call.get(), group, retry))
        return result

    def adopt_actor(self, actor_id: str, named_key) -> RemoteActor:
        with self.lock:
            self.actor_arrivals[actor_id] = self.actor_arrivals.get(actor_id, 0) + 1
            token = self.tokens.get(actor_id)
            if token is None:
                token = self.tokens[actor_id] = RemoteActor(actor_id, named_key)
            return token

    def add_handle(self, actor: RemoteActor) -> None:
        with self.lock:
            self.handles[actor.actor_id] = self.handles.get(actor.actor_id, 0) + 1

    def drop_handle(self, actor: RemoteActor) -> None:
        with self.lock:
            n = self.handles.get(actor.actor_id, 1) - 1
            if n > 0:
                self.handles[actor.actor_id] = n
                return
            self.handles.pop(actor.actor_id, None)
            count = self.actor_arrivals.pop(actor.actor_id, 0)
        if count:
            self.dropped.append(("actor", actor.actor_id, count))

    def own_handle(self):
        """A handle to the actor this worker runs (get_runtime_context().current_actor)."""
        from .._api.actors import handle_of_found
        info = self.worker.actor_info
        with self.lock:
            token = self.tokens.get(info["actor_id"])
            if token is None:
                named = None if info["name"] is None else (info["namespace"], info["name"])
                token = self.tokens[info["actor_id"]] = RemoteActor(info["actor_id"], named)
        return handle_of_found((token, info["class_key"], self.worker.actor_class_payload,
                                info.get("concurrency_groups")), self)

    def kill(self, actor: RemoteActor, no_restart: bool = True) -> None:
        self.send(KillActor(actor.actor_id, no_restart))

    def find_actor(self, name: str, namespace):
        found = self.request("find_actor", (name, namespace))
        if found is None:
            return None
        actor_id, named_key, class_key, blob, groups = found
        return (self.adopt_actor(actor_id, named_key), class_key, Payload(blob), groups)

    def describe_actor(self, actor: RemoteActor) -> dict:
        return self.request("describe_actor", (actor.actor_id,))

    def describe_actors(self) -> list:
        return self.request("describe_actors", ())

    # -- tasks and objects -------------------------------------------------------------------
    def submit_task(self, spec):
        ids, refs, result = self._call_refs("task", spec.label, spec.num_returns, None)
        function = None
        if spec.func_id not in self.defined:
            function = spec.definition.payload()
            self.defined.add(spec.func_id)
        options = {"max_retries": spec.max_retries, "max_calls": spec.max_calls,
                   "retry_exceptions": spec.retry_exceptions,
                   "parent_id": current_call.get()}
        self.send(SubmitTask(ids[0], spec.func_id, spec.label, function, spec.args,
                             tuple(d._id for d in spec.deps), spec.num_returns, ids,
                             self._exported(spec.exported), options))
        return result

    def put(self, value) -> ObjectRef:
        payload, inner = _refs.serialize_noting(value)
        ref_id = _ids.next_id()
        with self.lock:
            self.arrivals[ref_id] = 1
            ref = self._new_ref(ref_id)
        self.send(PutObject(ref_id, payload, self._exported(inner)))
        ref._future.set_result(deserialize(payload))
        return ref

    def cancel_call(self, record: WorkerCall, force: bool) -> None:
        self.send(CancelRef(record.call_id, force))

    @contextlib.contextmanager
    def blocking_get(self, refs):
        """A task worker that waits tells the driver (its pool may start another worker);
        an actor that would wait on its own queued call is told why it never could."""
        info = self.worker.actor_info
        if info is not None:
            self._check_self_wait(refs, info)
            self.worker.want_reader()  # its values come from the driver
            # An actor tells only of tasks it waits for (they may be queued behind
            # tasks that wait too); its own process needs no room in the pool.
            waiting = tuple(r._id for r in refs if not r._future.done()
                            and getattr(r._owner, "kind", "task") == "task")
        else:
            waiting = tuple(r._id for r in refs if not r._future.done())
        if not waiting:
            yield
            return
        executor = self.worker.executor if info is None else None
        if executor is not None:
            executor.waiting(True)
        self.send(WorkerBlocked(True, waiting))
        try:
            yield
        finally:
            if executor is not None:
                executor.waiting(False)
            self.send(WorkerBlocked(False, ()))

    def _check_self_wait(self, refs, info) -> None:
        if info["is_async"]:
            return
        groups = info.get("concurrency_groups")
        if groups:
            # Each group has its own threads: only a call of this thread's group, when
            # the group runs one call at a time, can never start while this one waits.
            thread_groups = self.worker.thread_groups
            if threading.get_ident() not in thread_groups:
                return  # a thread of the user's own, which holds up no group
            group = thread_groups[threading.get_ident()]
            size = info["max_concurrency"] if group is None else groups[group]
        else:
            group, size = None, info["max_concurrency"]
        if size != 1:
            return
        for ref in refs:
            owner = ref._owner
            if (isinstance(owner, WorkerCall) and owner.actor_id == info["actor_id"]
                    and owner.group == group and not ref._future.done()):
                runs = ("the actor runs one call at a time (max_concurrency=1)" if not groups
                        else f"its concurrency group {group!r} runs one call at a time"
                        if group is not None else
                        "its default group runs one call at a time (max_concurrency=1)")
                fix = ("give the actor max_concurrency > 1 or async methods" if not groups
                       else "run it in another concurrency group, or make this one larger")
                raise RuntimeError(
                    f"get() of {owner.label} inside the same actor would wait for ever: "
                    f"{runs}, and that call is queued behind the one waiting for it. Call "
                    f"the method directly (self.{owner.label.rsplit('.', 1)[-1]}(...)), "
                    f"or {fix}.")

    # -- requests the worker waits for ----------------------------------------------------
    def request(self, what, args=(), message=None):
        """Ask the driver and wait for its answer (a Request, SubmitActor for a named actor,
        or what ``message(request_id)`` builds)."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        request_id = next(self._request_ids)
        self.replies[request_id] = fut
        if message is None:
            message = Request(request_id, what, args)
        elif callable(message):  # builds a message of its own kind around the id
            message = message(request_id)
        else:
            message.options["reply_id"] = request_id
        self.send(message)
        self.worker.wait_reading(fut)
        return fut.result()

    def on_reply(self, request_id: int, ok: bool, payload) -> None:
        fut = self.replies.pop(request_id, None)
        if fut is None:
            return
        value = deserialize(payload)
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)

    # -- the session -------------------------------------------------------------------------
    def set_output_router(self, router) -> None:
        pass  # output goes to the driver, which routes it

    def resources(self) -> dict:
        return {"CPU": float(os.cpu_count() or 1)}

    def info(self) -> dict:
        return {"address": "local", "backend": self.name}

    def shutdown(self) -> None:
        pass  # the driver ends the session

