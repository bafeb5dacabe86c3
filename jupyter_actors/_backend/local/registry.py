"""Every actor of the session by id, the names of named actors, and live handles per actor.

An unnamed actor lives while a handle to it does: a handle in the driver, or
a worker that holds one (``objects.Lent``). The last one dropped lets it
finish its queued calls and exit. A named actor lives until it is killed or
the session ends (the name table holds it), as does an actor whose handle was
pickled outside any call (it could turn up anywhere), as in Ray.
"""
from __future__ import annotations

import threading
import weakref


class Registry:
    """Actor ids, names and handle counts of one runtime (thread-safe)."""

    def __init__(self):
        self.lock = threading.Lock()
        # Weak: an actor nobody refers to any more (no handle, no traced call) is forgotten.
        self._by_id: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self._named: dict = {}      # (namespace, name) -> ActorState
        self._handles: dict = {}    # actor_id -> live handles of an unnamed actor
        self._pinned: set = set()
        self._strong: list = []     # pinned actors, kept alive

    # -- ids -------------------------------------------------------------------------
    def add(self, actor) -> None:
        """A new actor; raises ValueError if its name is taken by a live actor."""
        with self.lock:
            key = actor.named_key
            if key is not None:
                existing = self._named.get(key)
                if existing is not None and existing.alive:
                    raise ValueError(f"The name {key[1]!r} is already taken by another actor; "
                                     f"pass get_if_exists=True to get that one instead.")
                self._named[key] = actor
            self._by_id[actor.actor_id] = actor

    def get(self, actor_id: str):
        return self._by_id.get(actor_id)

    def all(self) -> list:
        """Every actor still known, oldest first."""
        with self.lock:
            actors = list(self._by_id.values())
        return sorted(actors, key=lambda a: a.created)

    # -- names -----------------------------------------------------------------------
    def find(self, namespace, name: str):
        """The live actor with that name, or None."""
        with self.lock:
            actor = self._named.get((namespace, name))
        return actor if actor is not None and actor.alive else None

    def forget_name(self, actor) -> None:
        if actor.named_key is None:
            return
        with self.lock:
            if self._named.get(actor.named_key) is actor:
                del self._named[actor.named_key]

    # -- handles ---------------------------------------------------------------------
    def add_handle(self, actor) -> None:
        if actor.named_key is not None:
            return  # the name table keeps it
        with self.lock:
            self._handles[actor.actor_id] = self._handles.get(actor.actor_id, 0) + 1

    def drop_handle(self, actor) -> None:
        if actor.named_key is not None:
            return
        with self.lock:
            n = self._handles.get(actor.actor_id, 1) - 1
            if n or actor.actor_id in self._pinned:
                self._handles[actor.actor_id] = n
                return
            self._handles.pop(actor.actor_id, None)
        actor.release()

    # A worker holding handles to an actor counts as one handle.
    add_holder = add_handle

    def drop_holder(self, actor_id: str) -> None:
        actor = self._by_id.get(actor_id)
        if actor is not None:
            self.drop_handle(actor)

    def pin(self, actor) -> None:
        """A handle pickled outside any call: the actor lives for the session."""
        with self.lock:
            self._pinned.add(actor.actor_id)
            self._strong.append(actor)
