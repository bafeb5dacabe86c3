"""Calls made inside workers, as the driver runs them (on the I/O thread).

    worker (its client backend)            driver (this module)
    ───────────────────────────            ─────────────────────
    other.m.remote() → SubmitCall    ──▶   a call record for that actor, as if the driver
    f.remote()       → SubmitTask    ──▶   had made it; its refs are lent to the worker and
    Cls.remote()     → SubmitActor   ──▶   their values sent to it when ready (RefAnswer)
    put(v)           → PutObject     ──▶   a ref of the driver's, lent to the worker
    cancel / kill / get_actor / repr ──▶   the same operations on the driver's objects
    dropped refs and handles: Release ──▶  objects.Lent forgets what no worker holds

The driver stays the owner of every actor and object, so one place knows who
holds what. The output of a call made inside a worker goes where the output
of the call that made it goes (its parent).
"""
from __future__ import annotations

from ..._wire.messages import (ActorExiting, CallsReturned, CancelRef, KillActor, PutObject,
                               RefAnswer, Release, Reply, Request, SubmitActor, SubmitCall,
                               SubmitTask, WorkerBlocked)
from ..._wire.payloads import LazyDefinition, serialize
from ...exceptions import ActorDiedError, TaskError
from ..base import ActorSpec, CallSpec, TaskSpec
from .streams import forward


class WorkerCalls:
    """The handler of every message by which a worker asks the driver to do something."""

    def __init__(self, backend):
        self.backend = backend
        self.runtime = backend.runtime
        self.results = None   # the ResultHandlers, for sending values when ready

    def table(self) -> dict:
        return {SubmitActor: self.submit_actor, SubmitCall: self.submit_call,
                SubmitTask: self.submit_task, PutObject: self.put, CancelRef: self.cancel,
                KillActor: self.kill, Release: self.release, Request: self.request,
                ActorExiting: self.exiting, WorkerBlocked: self.blocked,
                CallsReturned: self.returned}

    # -- helpers --------------------------------------------------------------------------
    def _context(self, conn, parent_id):
        parent = conn.pending.get(parent_id) if parent_id is not None else None
        return parent.context if parent is not None else None

    def _refs(self, ids) -> list:
        lent = self.runtime.lent
        out = []
        for ref_id in ids:
            ref = lent.get(ref_id)
            if ref is None:
                raise KeyError(f"ObjectRef {ref_id:032x} is no longer known to the driver")
            out.append(ref)
        return out

    def _exported(self, exported):
        """The driver's refs and actor tokens for ``(ref ids, actor ids)`` a worker sent."""
        ref_ids, actor_ids = exported
        items = self._refs(ref_ids)
        registry = self.runtime.registry
        for actor_id in actor_ids:
            actor = registry.get(actor_id)
            if actor is not None:
                items.append(actor)
        return items or None

    def _hand_over(self, conn, refs) -> None:
        """The worker holds these refs now; their values go to it when known."""
        self.runtime.lent.lend(conn, refs)
        for ref in refs:
            self.results.send_value_when_ready(conn, ref)

    def _fail(self, conn, ref_ids, error: BaseException) -> None:
        payload = serialize(error)
        for ref_id in ref_ids:
            conn.send(RefAnswer(ref_id, False, payload))

    # -- submissions ------------------------------------------------------------------------
    def submit_call(self, conn, m: SubmitCall) -> None:
        actor = self.runtime.registry.get(m.actor_id)
        try:
            if actor is None:
                raise ActorDiedError(f"The actor {m.actor_id} of {m.label} is gone.")
            spec = CallSpec(m.label, m.method, m.args, tuple(self._refs(m.deps)),
                            m.num_returns, self._context(conn, m.parent_id),
                            self._exported(m.exported), m.return_ids, m.group, m.retry)
            refs = self.backend.call_refs(actor, spec)
        except Exception as exc:
            self._fail(conn, m.return_ids, exc)
            return
        self._hand_over(conn, refs)
        if m.num_returns < 0:
            forward(self.runtime, m.call_id, conn)

    def submit_task(self, conn, m: SubmitTask) -> None:
        options = m.options
        try:
            spec = TaskSpec(m.label, m.func_id, None, m.args, tuple(self._refs(m.deps)),
                            m.num_returns, self._context(conn, options.get("parent_id")),
                            self._exported(m.exported), options["max_retries"],
                            options["max_calls"], m.return_ids,
                            options.get("retry_exceptions", False))
            refs = self.backend.task_refs(spec, m.function_payload)
        except Exception as exc:
            self._fail(conn, m.return_ids, exc)
            return
        self._hand_over(conn, refs)
        if m.num_returns < 0:
            forward(self.runtime, m.call_id, conn)

    def submit_actor(self, conn, m: SubmitActor) -> None:
        options = m.options
        reply_id = options.get("reply_id")
        try:
            spec = ActorSpec(m.actor_id, options["class_name"], m.class_key,
                             LazyDefinition.of_payload(None, m.class_payload), m.args,
                             tuple(self._refs(m.deps)),
                             self._exported(m.exported), options["is_async"],
                             options["max_concurrency"], options.get("name"),
                             options.get("namespace"), options.get("max_pending_calls", -1),
                             self._context(conn, options.get("parent_id")),
                             options.get("concurrency_groups"),
                             options.get("max_restarts", 0), options.get("max_task_retries", 0))
            actor = self.backend.create_actor(spec)
        except Exception as exc:
            if reply_id is not None:
                conn.send(Reply(reply_id, False, serialize(exc)))
            return
        self.runtime.lent.lend(conn, [actor])  # the worker's handle
        if reply_id is not None:
            conn.send(Reply(reply_id, True, serialize(None)))

    def put(self, conn, m: PutObject) -> None:
        ref = self.backend.put_payload(m.ref_id, m.payload, self._exported(m.exported))
        self.runtime.lent.lend(conn, [ref])

    # -- operations on what the driver owns ----------------------------------------------------
    def cancel(self, conn, m: CancelRef) -> None:
        ref = self.runtime.lent.get(m.ref_id)
        if ref is not None and ref._owner is not None:
            self.backend.cancel_call(ref._owner, m.force)

    def kill(self, conn, m: KillActor) -> None:
        actor = self.runtime.registry.get(m.actor_id)
        if actor is not None:
            actor.kill(m.no_restart)

    def release(self, conn, m: Release) -> None:
        self.runtime.lent.release(conn, m.refs, m.actors)

    def blocked(self, conn, m: WorkerBlocked) -> None:
        lent = self.runtime.lent
        awaited = []
        for ref_id in m.ref_ids:
            ref = lent.get(ref_id)
            if ref is not None and ref._owner is not None and ref._owner.kind == "task":
                awaited.append(ref._owner)
        self.runtime.task_pool.worker_blocked(conn, m.blocked, awaited)

    def returned(self, conn, m: CallsReturned) -> None:
        self.runtime.task_pool.calls_returned(conn, m.call_ids)

    def exiting(self, conn, m: ActorExiting) -> None:
        if conn.owner is not None and conn.owner.actor_id is not None:
            conn.owner.exit_how = m.how
            conn.owner.exited_on_purpose = m.intended

    def request(self, conn, m: Request) -> None:
        try:
            value = getattr(self, f"_{m.what}")(conn, *m.args)
            conn.send(Reply(m.request_id, True, serialize(value)))
        except Exception as exc:
            try:
                payload = serialize(exc)
            except Exception:
                payload = serialize(TaskError(f"{type(exc).__name__}: {exc}"))
            conn.send(Reply(m.request_id, False, payload))

    def _find_actor(self, conn, name, namespace):
        actor = self.runtime.registry.find(namespace, name)
        if actor is None:
            return None
        self.runtime.lent.lend(conn, [actor])
        return (actor.actor_id, actor.named_key, actor.class_key, actor.definition.payload().blob,
                actor.concurrency_groups)

    def _describe_actor(self, conn, actor_id):
        actor = self.runtime.registry.get(actor_id)
        if actor is None:
            raise ValueError(f"the actor {actor_id} is no longer known to this session")
        return actor.describe()

    def _describe_actors(self, conn):
        return self.backend.describe_actors()
