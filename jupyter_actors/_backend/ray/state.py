"""What ``%actors`` and handle reprs show for actors on Ray: Ray's state, our call counts.

The actor's state (alive, restarting, dead and why) and pid come from Ray's
control store; running / queued / done / failed come from the trace of the
calls this session made.
"""
from __future__ import annotations

from ..._trace import tracer
from ..._wire.payloads import Payload
from .records import CANCELLED, FAILED, FINISHED, PENDING, RUNNING


def describe(backend, actors: list) -> list:
    """``describe_actor`` rows for ``actors`` (RayActor tokens)."""
    states = _ray_states([a for a in actors if a.handle is not None])
    busy: dict = {}
    for record in list(tracer.active.copy().values()):
        if record.kind == "call" and record.status in (PENDING, RUNNING):
            counts = busy.setdefault(record.actor_id, [0, 0])
            counts[0 if record.status == RUNNING else 1] += 1
    rows = []
    for actor in actors:
        state = states.get(_ray_id(actor)) or {}
        ray_state = state.get("State", "PENDING_CREATION")
        pid = state.get("Pid") or actor.pid
        if pid and actor.pid is None:
            actor.pid = pid
        running, queued = busy.get(actor.actor_id, (0, 0))
        alive = ray_state != "DEAD" and not actor.killed
        death = None
        if not alive:
            death = ("killed by jupyter_actors.kill()" if actor.killed
                     else _death_text(state.get("DeathCause")))
        groups = [{"name": None, "max_concurrency": actor.max_concurrency,
                   "running": running, "queued": queued}]
        groups += [{"name": n, "max_concurrency": size, "running": 0, "queued": 0}
                   for n, size in (actor.concurrency_groups or {}).items()]
        rows.append({"actor_id": actor.actor_id, "class_name": actor.class_name,
                     "name": actor.name, "pid": pid or None,
                     "kind": "async" if actor.is_async else "threaded",
                     "max_concurrency": actor.max_concurrency, "groups": groups,
                     "running": running,
                     "queued": queued, "done": actor.counts[FINISHED],
                     "failed": actor.counts[FAILED] + actor.counts[CANCELLED],
                     "alive": alive, "death": death,
                     "state": ray_state.lower().replace("_", " ")})
    return rows


def _ray_id(actor) -> str | None:
    return actor.handle._actor_id.hex() if actor.handle is not None else None


def _ray_states(actors: list) -> dict:
    """Ray's actor table rows by Ray's actor id (empty if Ray cannot say)."""
    try:
        from ray._private import state
        if len(actors) <= 16:
            rows = {}
            for actor in actors:
                info = state.actors(actor_id=_ray_id(actor))
                if info:
                    rows[_ray_id(actor)] = info
            return rows
        return state.actors()
    except Exception:
        return {}


def _death_text(cause) -> str:
    if cause is None:
        return "dead"
    for field in ("actor_died_error_context", "creation_task_failure_context",
                  "runtime_env_failed_context", "oom_context", "node_died_context"):
        try:
            if cause.HasField(field):
                message = getattr(cause, field).error_message.strip()
                return message.splitlines()[0] if message else field.replace("_", " ")
        except Exception:
            continue
    return "dead"


def actor_facts(handle) -> tuple:
    """(class name, is async, max_concurrency, our actor id) of an actor found by name."""
    import ray
    from ... import _ids
    name, _key, is_async, _blob, groups = ray.get(handle.jupyter_actors_facts.remote(),
                                                  timeout=60)
    return name, is_async, 1000 if is_async else 1, _ids.new_actor_id(), groups


def class_of(actor) -> tuple:
    """(class key, class payload) of an actor, for a handle made from it."""
    import ray
    _name, key, _is_async, blob, _groups = ray.get(actor.handle.jupyter_actors_facts.remote(),
                                                   timeout=60)
    return key, Payload(blob)
