"""Export traced calls as Chrome trace events (Perfetto, chrome://tracing) and measure them.

    timeline()                      every call still remembered, as a list of events
    timeline("trace.json")          the same, also written to a file
    timeline(actor)                 one actor (or a list of actors)
    timeline(last=5)                calls that overlap the last 5 seconds
    timeline(since=t0, until=t1)    a window of time.monotonic() values

Layout of the trace: one process per worker process (an actor, or a worker of
the remote-function pool) and, inside it, one thread track per slot: a thread
of a threaded actor, or the in-flight slot of an async actor (the smallest
free slot when a call starts, so calls on one track never overlap). Each call
is a complete ("X") event from start to end; the time it waited in the queue
is an async span ("b"/"e", category ``queued``) on its process, since queued
calls have no slot yet. Failed and cancelled calls say so in their names, in
``args.status`` and with chrome://tracing's reserved colours.
"""
from __future__ import annotations

import json
import time
from typing import Iterable

from ._trace import tracer

__all__ = ["timeline", "select", "max_overlap", "overlaps"]

_US = 1e6
LIFECYCLE_TID = 1_000_000  # the track of an actor's creation, below its slots


def actor_ids(actors) -> set | None:
    """The ids of the actors given as a handle or a list of handles (or ids), or None for all."""
    if actors is None:
        return None
    if not isinstance(actors, (list, tuple, set, frozenset)):
        actors = [actors]
    return {getattr(a, "_actor_id", a) for a in actors}


def select(actors=None, *, since: float | None = None, until: float | None = None,
           last: float | None = None, kinds: Iterable[str] = ("call", "task")) -> list:
    """The traced ``CallRecord``s that match, oldest first.

    ``actors``: a handle or list of handles (None: every actor and task).
    ``since``/``until``: ``time.monotonic()`` bounds; a call is kept if its
    lifetime (submitted to finished, or now) overlaps them. ``last``: seconds
    before now, a shortcut for ``since``.
    """
    wanted = actor_ids(actors)
    now = time.monotonic()
    if last is not None:
        since = now - last if since is None else max(since, now - last)
    kinds = frozenset(kinds)
    out = []
    for r in tracer.snapshot():
        if r.kind not in kinds or (wanted is not None and r.actor_id not in wanted):
            continue
        end = r.finished if r.finished is not None else now
        if since is not None and end < since:
            continue
        if until is not None and r.submitted > until:
            continue
        out.append(r)
    return out


def overlaps(records, now: float | None = None) -> list:
    """(time, running) after each start or end, in time order; ends sort before starts at a tie."""
    now = time.monotonic() if now is None else now
    edges = []
    for r in records:
        if r.started is None:
            continue
        edges.append((r.started, 1))
        edges.append((r.finished if r.finished is not None else now, -1))
    edges.sort()
    running = 0
    out = []
    for t, delta in edges:
        running += delta
        out.append((t, running))
    return out


def max_overlap(records) -> int:
    """The most calls that ran at the same time."""
    return max((n for _, n in overlaps(records)), default=0)


# -- Chrome trace events ---------------------------------------------------------

def _owner_kind(owner) -> str:
    if getattr(owner, "class_name", None) is None:
        return "tasks"
    return "async" if owner.is_async else "threaded"


def _group_sizes(owner) -> str:
    groups = getattr(owner, "concurrency_groups", None)
    return "".join(f", {name}={size}" for name, size in groups.items()) if groups else ""


def _process_name(owner, pid) -> str:
    if _owner_kind(owner) == "tasks":
        return f"tasks pid={pid}"
    name = f" {owner.name!r}" if owner.name else ""
    return f"{owner.class_name}{name} pid={pid}"


def _thread_name(owner, tid) -> str:
    if tid == LIFECYCLE_TID:
        return "actor creation"
    kind = _owner_kind(owner)
    if kind == "tasks":
        return "task"
    return f"{'slot' if kind == 'async' else 'thread'} {tid}"


def _short_error(error) -> str:
    if error is None:
        return ""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


def timeline(filename=None, *, actors=None, since: float | None = None,
             until: float | None = None, last: float | None = None) -> list:
    """Chrome trace events of traced calls; also written as JSON when ``filename`` is given.

    ``timeline(actor)`` and ``timeline([a, b])`` narrow it to actors, like
    ``actors=``. Times are microseconds of ``time.monotonic()``; open the file
    in https://ui.perfetto.dev or chrome://tracing.
    """
    if filename is not None and not isinstance(filename, (str, bytes)) and \
            not hasattr(filename, "__fspath__"):
        actors, filename = filename, None  # timeline(actor)
    records = select(actors, since=since, until=until, last=last,
                     kinds=("call", "task", "init"))
    now = time.monotonic()
    events: list = []
    processes: dict = {}     # pid -> (sort index, owner)
    threads: set = set()

    def track(record):
        owner = record.owner
        pid = record.pid or getattr(owner, "pid", None) or 0
        if pid not in processes:
            processes[pid] = (len(processes), owner)
        return pid

    for r in records:
        pid = track(r)
        label = r.label
        status = r.status
        end = r.finished if r.finished is not None else now
        args = {"call_id": r.call_id, "status": status}
        group = getattr(r, "group", None)
        if group is not None:
            args["concurrency_group"] = group
        if status == "failed":
            args["error"] = _short_error(r.error)
        if r.kind == "init":
            # Creation has no start stamped by the worker: one span for the wait and __init__.
            tid = LIFECYCLE_TID
            threads.add((pid, tid))
            events.append({"name": label + _suffix(status), "cat": "init", "ph": "X",
                           "ts": round(r.submitted * _US, 3),
                           "dur": round(max(end - r.submitted, 0) * _US, 3),
                           "pid": pid, "tid": tid, "args": args, **_colour(status)})
            continue
        queued_until = r.started if r.started is not None else end
        args["queued_ms"] = round((queued_until - r.submitted) * 1e3, 3)
        if queued_until > r.submitted or r.started is None:
            span = {"cat": "queued", "id": hex(r.call_id), "pid": pid, "tid": 0,
                    "name": f"queued: {label}{_suffix(status) if r.started is None else ''}"}
            events.append({**span, "ph": "b", "ts": round(r.submitted * _US, 3),
                           "args": {"call_id": r.call_id}})
            events.append({**span, "ph": "e", "ts": round(queued_until * _US, 3)})
        if r.started is None:
            continue  # never ran (cancelled or failed while queued): its queued span says so
        tid = r.slot if r.slot is not None else 0
        threads.add((pid, tid))
        events.append({"name": label + _suffix(status), "cat": r.kind, "ph": "X",
                       "ts": round(r.started * _US, 3),
                       "dur": round(max(end - r.started, 0) * _US, 3),
                       "pid": pid, "tid": tid, "args": args, **_colour(status)})

    meta: list = []
    for pid, (index, owner) in processes.items():
        meta.append({"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
                     "args": {"name": _process_name(owner, pid)}})
        meta.append({"name": "process_sort_index", "ph": "M", "pid": pid, "tid": 0,
                     "args": {"sort_index": index}})
        if _owner_kind(owner) != "tasks":
            meta.append({"name": "process_labels", "ph": "M", "pid": pid, "tid": 0,
                         "args": {"labels": f"{_owner_kind(owner)} actor, "
                                            f"max_concurrency={owner.max_concurrency}"
                                            f"{_group_sizes(owner)}"}})
    for pid, tid in sorted(threads):
        owner = processes[pid][1]
        meta.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                     "args": {"name": _thread_name(owner, tid)}})
        meta.append({"name": "thread_sort_index", "ph": "M", "pid": pid, "tid": tid,
                     "args": {"sort_index": tid}})
    events.sort(key=lambda e: e["ts"])
    events = meta + events
    if filename is not None:
        with open(filename, "w", encoding="utf-8") as f:
            json.dump({"traceEvents": events, "displayTimeUnit": "ms"}, f)
    return events


def _suffix(status: str) -> str:
    return {"failed": " (failed)", "cancelled": " (cancelled)",
            "running": " (running)", "pending": " (queued)"}.get(status, "")


def _colour(status: str) -> dict:
    # chrome://tracing's reserved colour names; Perfetto colours by name instead.
    colour = {"failed": "terrible", "cancelled": "grey"}.get(status)
    return {"cname": colour} if colour else {}
