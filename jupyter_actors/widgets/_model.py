"""What a timeline shows, as plain data: sections, actor groups, lanes, methods and bars.

No widget code here, so the static snapshot, the text summary and the tests
use it without ipywidgets. The widget's owner thread feeds it ``CallRecord``s
and sends what changed to the browser.

    section   one experiment (the playground's runs) or everything (a Timeline);
              its times are shown relative to its own start ``t0``
    group     one actor, or the remote-function pool, inside a section
    lane      one slot of a group: a thread of a threaded actor, the in-flight
              slot of an async actor, or one worker process of the pool
    bar       one call: [call_id, group, lane, method, queued_at, started, ended, status,
              concurrency group] with times in ms since its section's t0 (None: not
              yet), lane -1 while it waits in the queue, and the actor's concurrency
              group the call ran in (None: its default group, or a task)
"""
from __future__ import annotations

import threading
import time

from .._trace import EPOCH
from ..tracing import max_overlap

STATUS = {"pending": 0, "running": 1, "finished": 2, "failed": 3, "cancelled": 4}
STATUS_NAMES = {v: k for k, v in STATUS.items()}

# Bar row indices.
ID, GROUP, LANE, METHOD, QUEUED, STARTED, ENDED, STATE, CONCURRENCY_GROUP = range(9)


def _ms(t: float | None, t0: float) -> float | None:
    return None if t is None else round((t - t0) * 1e3, 3)


def _abs_ms(t: float | None) -> float | None:
    return None if t is None else round((t - EPOCH) * 1e3, 3)


class Section:
    __slots__ = ("title", "owners", "since", "until", "t0")

    def __init__(self, title: str, owners, since, until):
        self.title = title
        self.owners = owners      # set of actor ids, or None for all
        self.since = since
        self.until = until
        self.t0 = since           # fixed once known, so sent times never shift

    def wants(self, record) -> bool:
        if self.owners is not None and record.actor_id not in self.owners:
            return False
        if self.since is not None and record.submitted < self.since:
            return False
        if self.until is not None and record.submitted > self.until:
            return False
        return True


class TimelineModel:
    """Thread-safe store of the bars one timeline shows (fed by one thread, read by any)."""

    def __init__(self, max_bars: int = 10_000):
        self.lock = threading.RLock()
        self.max_bars = max_bars
        self.sections: list = []
        self.evicted = 0
        self._reset_layout()

    def _reset_layout(self) -> None:
        self.groups: list = []        # [section, owner]
        self._group_index: dict = {}
        self.lanes: list = []         # [group, key]
        self._lane_index: dict = {}
        self.methods: list = []
        self._method_index: dict = {}
        self.bars: dict = {}          # call_id -> [record fields, see _row]
        self.records: dict = {}       # call_id -> CallRecord (for stats)
        self._dirty: set = set()
        self._open: set = set()       # call_ids still queued or running
        self._sent_layout = None
        self.version = 0              # bumps on every change, for "changed since" checks

    # -- configuration -----------------------------------------------------------------
    def add_section(self, title: str = "", owners=None, since=None, until=None) -> int:
        with self.lock:
            self.sections.append(Section(title, None if owners is None else set(owners),
                                         since, until))
            self.version += 1
            return len(self.sections) - 1

    def clear(self) -> None:
        with self.lock:
            self.sections = []
            self.evicted = 0
            self._reset_layout()
            self.version += 1

    # -- feeding ---------------------------------------------------------------------------
    def ingest(self, records) -> bool:
        """Add or update calls; True if anything visible changed."""
        changed = False
        with self.lock:
            for record in records:
                changed |= self._add(record)
            if len(self.bars) > self.max_bars:
                self._evict()
                changed = True
            if changed:
                self.version += 1
        return changed

    def _add(self, record) -> bool:
        if record.kind == "init":
            return False
        call_id = record.call_id
        bar = self.bars.get(call_id)
        if bar is None:
            for index, section in enumerate(self.sections):
                if section.wants(record):
                    break
            else:
                return False
            if section.t0 is None:
                section.t0 = record.submitted
            group = self._group(index, record.owner)
            method = self._method_index.get(record.label)
            if method is None:
                method = self._method_index[record.label] = len(self.methods)
                self.methods.append(record.label)
            bar = self.bars[call_id] = [group, -1, method, None, None, None, None, -1]
            self.records[call_id] = record
        lane = -1
        if record.started is not None:
            is_tasks = getattr(record.owner, "class_name", None) is None
            lane = self._lane(bar[0], record.pid if is_tasks else (record.slot or 0))
        new = (lane, record.submitted, record.started, record.finished, STATUS[record.status])
        if tuple(bar[1:2] + bar[3:7]) == new:
            return False
        bar[1], bar[3], bar[4], bar[5], bar[6] = new
        if new[4] < STATUS["finished"]:
            self._open.add(call_id)
        else:
            self._open.discard(call_id)
        self._dirty.add(call_id)
        return True

    def _group(self, section: int, owner) -> int:
        key = (section, id(owner))
        index = self._group_index.get(key)
        if index is None:
            index = self._group_index[key] = len(self.groups)
            self.groups.append([section, owner])  # holding owner keeps id(owner) unique
        return index

    def _lane(self, group: int, key) -> int:
        index = self._lane_index.get((group, key))
        if index is None:
            index = self._lane_index[(group, key)] = len(self.lanes)
            self.lanes.append([group, key])
        return index

    def _evict(self) -> None:
        """Forget the oldest finished calls, a tenth at a time so this stays rare."""
        target = int(self.max_bars * 0.9)
        for call_id in list(self.bars):
            if len(self.bars) <= target:
                break
            if self.bars[call_id][6] >= STATUS["finished"]:
                del self.bars[call_id]
                del self.records[call_id]
                self._dirty.discard(call_id)
                self.evicted += 1
        self._sent_layout = None  # forces a full state: the browser must drop them too

    # -- what the browser gets ------------------------------------------------------------------
    def _row(self, call_id: int, bar: list) -> list:
        t0 = self.sections[self.groups[bar[0]][0]].t0
        return [call_id, bar[0], bar[1], bar[2], _ms(bar[3], t0), _ms(bar[4], t0),
                _ms(bar[5], t0), bar[6], getattr(self.records[call_id], "group", None)]

    _LAYOUT_KEYS = ("sections", "groups", "lanes", "methods", "evicted")

    def layout(self) -> dict:
        with self.lock:
            return {
                "sections": [{"title": s.title, "t0": _abs_ms(s.t0)} for s in self.sections],
                "groups": [_describe_group(section, owner) for section, owner in self.groups],
                "lanes": [[group, _lane_label(self.groups[group][1], key), _lane_sort(key)]
                          for group, key in self.lanes],
                "methods": list(self.methods),
                "evicted": self.evicted,
            }

    def state(self, now: float | None = None) -> dict:
        """Everything, as the browser gets it (no side effects: for snapshots)."""
        with self.lock:
            return {"kind": "full", "now": _abs_ms(now or time.monotonic()), **self.layout(),
                    "bars": [self._row(i, b) for i, b in self.bars.items()]}

    def full(self, now: float | None = None) -> dict:
        """Everything, for a new view or the saved widget state; later deltas start from here."""
        with self.lock:
            out = self.state(now)
            self._dirty.clear()
            self._sent_layout = {k: out[k] for k in self._LAYOUT_KEYS}
            return out

    def delta(self, now: float | None = None):
        """What changed since the last ``full``/``delta`` (``bars`` may be empty).

        A changed layout (new lane, group or method, a pid now known) travels
        whole: it is small. After an eviction the answer is a full state.
        """
        with self.lock:
            if self._sent_layout is None:
                return self.full(now)
            layout = self.layout()
            bars = [self._row(i, self.bars[i]) for i in self._dirty if i in self.bars]
            self._dirty.clear()
            out = {"kind": "delta", "now": _abs_ms(now or time.monotonic()), "bars": bars}
            if layout != self._sent_layout:
                self._sent_layout = layout
                out.update(layout)
            return out

    def busy(self) -> bool:
        """Some call is queued or running (so "now" keeps moving on screen)."""
        return bool(self._open)

    # -- numbers for people ------------------------------------------------------------
    def stats(self, now: float | None = None) -> list:
        """Per section: calls, wall time and, per group, calls and max overlap."""
        now = now or time.monotonic()
        with self.lock:
            by_group: dict = {}
            for call_id, bar in self.bars.items():
                by_group.setdefault(bar[0], []).append(self.records[call_id])
            out = []
            for index, section in enumerate(self.sections):
                groups = []
                records = []
                for g, (s, owner) in enumerate(self.groups):
                    if s != index:
                        continue
                    rs = by_group.get(g, [])
                    records += rs
                    desc = _describe_group(s, owner)
                    groups.append({
                        "label": desc["label"], "detail": desc["detail"], "calls": len(rs),
                        "max_overlap": max_overlap(rs),
                        "failed": sum(r.status == "failed" for r in rs),
                        "cancelled": sum(r.status == "cancelled" for r in rs),
                        "slots": sum(1 for lane in self.lanes if lane[0] == g),
                    })
                busy = any(r.finished is None for r in records)
                wall = None
                if records:
                    start = section.since if section.since is not None else \
                        min(r.submitted for r in records)
                    end = now if busy else max(r.finished for r in records)
                    wall = end - start
                out.append({"title": section.title, "calls": len(records), "groups": groups,
                            "wall": wall, "busy": busy})
            return out


def _describe_group(section: int, owner) -> dict:
    if getattr(owner, "class_name", None) is None:
        return {"section": section, "label": "remote functions",
                "detail": f"pool of {getattr(owner, 'size', '?')} workers", "kind": "tasks"}
    name = f" '{owner.name}'" if owner.name else ""
    pid = f" · pid {owner.pid}" if owner.pid else ""
    kind = "async" if owner.is_async else "threaded"
    groups = getattr(owner, "concurrency_groups", None)
    sizes = "".join(f" · {g}={n}" for g, n in groups.items()) if groups else ""
    return {"section": section, "label": f"{owner.class_name}{name}{pid}",
            "detail": f"{kind} · max_concurrency={owner.max_concurrency}{sizes}", "kind": kind}


def _lane_label(owner, key) -> str:
    if getattr(owner, "class_name", None) is None:
        return f"pid {key}"
    return f"{'slot' if owner.is_async else 'thread'} {key}"


def _lane_sort(key) -> int:
    return key if isinstance(key, int) else 0
