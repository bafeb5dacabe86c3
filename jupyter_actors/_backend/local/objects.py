"""What the driver has lent to workers: refs and actor handles, counted per worker.

    driver sends a payload to worker W          W drops the last object for an id
    ───────────────────────────────────         ───────────────────────────────────
    lend(W, item) for each ref / actor     ──▶  Release((id, n), ...): n = times the
    it carries (args, a ref's value,            driver sent it there; the driver
    the refs of W's own calls)                  subtracts, and forgets what no worker holds

Counting sends against arrivals (not a yes/no "holds it") keeps a send that is
still on the way from being undone by the release of an earlier one. A ref
stays here (so any worker can look it up by id) while some worker holds it; an
actor counts as one more handle while some worker holds one (registry). When a
worker exits, everything it held is released at once.
"""
from __future__ import annotations

import threading

from ..._api.refs import ObjectRef


class Lent:
    """The driver's table of refs and actors that workers hold (thread-safe)."""

    def __init__(self, registry):
        self.registry = registry
        self.lock = threading.Lock()
        self.refs: dict = {}          # ref_id -> ObjectRef some worker holds (or pinned)
        self._holders: dict = {}      # ref_id -> number of workers holding it
        self.pinned: set = set()      # ref ids kept for the session (sent out of band)

    # -- lending ------------------------------------------------------------------------
    def lend(self, conn, items) -> None:
        """``conn``'s worker receives these refs and actor tokens (in a frame sent now)."""
        actors = []
        with self.lock:
            for item in items:
                if type(item) is not ObjectRef:
                    actors.append(item)  # an actor's token
                    continue
                ref_id = item._id
                n = conn.lent_refs.get(ref_id, 0)
                conn.lent_refs[ref_id] = n + 1
                if n == 0:
                    self.refs[ref_id] = item
                    self._holders[ref_id] = self._holders.get(ref_id, 0) + 1
        for actor in actors:
            n = conn.lent_actors.get(actor.actor_id, 0)
            conn.lent_actors[actor.actor_id] = n + 1
            if n == 0:
                self.registry.add_holder(actor)

    def lend_with_value(self, conn, ref) -> None:
        """A ref's value goes to ``conn``: so do the refs and actors inside it."""
        if ref._inner:
            self.lend(conn, ref._inner)

    def pin(self, ref) -> None:
        """A ref pickled outside any call (captured in a closure): kept for the session."""
        with self.lock:
            self.refs[ref._id] = ref
            self.pinned.add(ref._id)

    # -- releasing (I/O thread) -----------------------------------------------------------
    def release(self, conn, refs, actors) -> None:
        with self.lock:
            for ref_id, count in refs:
                if _returned(conn.lent_refs, ref_id, count):
                    self._drop_holder(ref_id)
        for actor_id, count in actors:
            if _returned(conn.lent_actors, actor_id, count):
                self.registry.drop_holder(actor_id)

    def worker_gone(self, conn) -> None:
        """Everything a dead worker held is released."""
        with self.lock:
            for ref_id in conn.lent_refs:
                self._drop_holder(ref_id)
            conn.lent_refs.clear()
        actor_ids = list(conn.lent_actors)
        conn.lent_actors.clear()
        for actor_id in actor_ids:
            self.registry.drop_holder(actor_id)

    def _drop_holder(self, ref_id) -> None:
        # Caller holds self.lock.
        left = self._holders.get(ref_id, 1) - 1
        if left > 0:
            self._holders[ref_id] = left
            return
        self._holders.pop(ref_id, None)
        if ref_id not in self.pinned:
            self.refs.pop(ref_id, None)

    # -- looking up ----------------------------------------------------------------------
    def get(self, ref_id):
        return self.refs.get(ref_id)


def _returned(lent: dict, key, count: int) -> bool:
    """Subtract ``count`` arrivals from what was lent; True when none is left out."""
    n = lent.get(key, 0) - count
    if n > 0:
        lent[key] = n
        return False
    # More arrivals than sends: a copy made by hand in the worker; never below zero.
    return lent.pop(key, None) is not None
