"""``ActorPool``: spread calls over a fixed set of actors, as Ray's ``ray.util.ActorPool``.

    pool = ActorPool([A.remote(), A.remote()])
    list(pool.map(lambda a, v: a.double.remote(v), [1, 2, 3, 4]))   # in order
    pool.submit(fn, v); pool.get_next_unordered()                    # as they finish

``fn(actor, value)`` makes one call and returns its ref. A call goes to an idle
actor; with none idle it waits in the pool until one is returned to it.
"""
from __future__ import annotations

from .._api.ops import get, wait
from ..exceptions import GetTimeoutError

__all__ = ["ActorPool"]


class ActorPool:
    """A fixed set of actors that take one submitted call each at a time."""

    def __init__(self, actors: list):
        self._idle = list(actors)
        self._busy: dict = {}          # ref (or tuple of refs) -> (index, actor)
        self._by_index: dict = {}      # submission index -> ref
        self._next_index = 0           # index of the next submission
        self._next_result = 0          # index get_next returns next
        self._waiting: list = []       # (fn, value) submitted while no actor was idle

    # -- submitting --------------------------------------------------------------------
    def submit(self, fn, value) -> None:
        """Call ``fn(actor, value)`` on an idle actor now, or when one is free."""
        if not self._idle:
            self._waiting.append((fn, value))
            return
        actor = self._idle.pop()
        ref = fn(actor, value)
        key = tuple(ref) if isinstance(ref, list) else ref
        self._busy[key] = (self._next_index, actor)
        self._by_index[self._next_index] = ref
        self._next_index += 1

    def map(self, fn, values):
        """Results of ``fn(actor, v)`` for every value, in the order of ``values``."""
        self._drop_unread()
        for value in values:
            self.submit(fn, value)
        while self.has_next():
            yield self.get_next()

    def map_unordered(self, fn, values):
        """Results of ``fn(actor, v)`` for every value, as the calls finish."""
        self._drop_unread()
        for value in values:
            self.submit(fn, value)
        while self.has_next():
            yield self.get_next_unordered()

    # -- results -----------------------------------------------------------------------------
    def has_next(self) -> bool:
        """Whether a submitted call's result has not been returned yet."""
        return bool(self._busy)

    def get_next(self, timeout: float | None = None, ignore_if_timedout: bool = False):
        """The result of the oldest submission not returned yet (submission order)."""
        if not self.has_next():
            raise StopIteration("No more results to get")
        if self._next_result >= self._next_index:
            raise ValueError("It is not allowed to call get_next() after get_next_unordered().")
        ref = self._by_index[self._next_result]
        timed_out = False
        if timeout is not None:
            ready, _ = wait(_as_list(ref), num_returns=len(_as_list(ref)), timeout=timeout)
            if not ready:
                if not ignore_if_timedout:
                    raise TimeoutError("Timed out waiting for result")
                timed_out = True
        del self._by_index[self._next_result]
        self._next_result += 1
        _, actor = self._busy.pop(_key(ref))
        self._return(actor)
        if timed_out:
            raise TimeoutError(f"Timed out waiting for result. The call {ref} has been ignored.")
        return get(ref)

    def get_next_unordered(self, timeout: float | None = None, ignore_if_timedout: bool = False):
        """The result of whichever submitted call finishes first."""
        if not self.has_next():
            raise StopIteration("No more results to get")
        firsts = [k[0] if isinstance(k, tuple) else k for k in self._busy]
        ready, _ = wait(firsts, num_returns=1, timeout=timeout)
        if not ready:
            suffix = "" if not ignore_if_timedout else ". No call has been ignored."
            raise TimeoutError("Timed out waiting for result" + suffix)
        key = next(k for k in self._busy if (k[0] if isinstance(k, tuple) else k) == ready[0])
        index, actor = self._busy.pop(key)
        self._return(actor)
        ref = self._by_index.pop(index)
        self._next_result = max(self._next_result, index + 1)
        return get(ref)

    # -- actors ------------------------------------------------------------------------------
    def has_free(self) -> bool:
        """Whether an actor is idle and nothing waits for one."""
        return bool(self._idle) and not self._waiting

    def pop_idle(self):
        """Take an idle actor out of the pool (None if there is none)."""
        return self._idle.pop() if self.has_free() else None

    def push(self, actor) -> None:
        """Add an actor to the pool (it must not be in it already)."""
        if actor in self._idle or any(a == actor for _, a in self._busy.values()):
            raise ValueError("Actor already belongs to current ActorPool")
        self._return(actor)

    def _return(self, actor) -> None:
        self._idle.append(actor)
        if self._waiting:
            fn, value = self._waiting.pop(0)
            self.submit(fn, value)

    def _drop_unread(self) -> None:
        """``map`` starts afresh: results nobody read are dropped (their actors freed)."""
        while self.has_next():
            try:
                self.get_next(timeout=0, ignore_if_timedout=True)
            except (TimeoutError, GetTimeoutError):
                pass


def _as_list(ref) -> list:
    return list(ref) if isinstance(ref, list) else [ref]


def _key(ref):
    return tuple(ref) if isinstance(ref, list) else ref
