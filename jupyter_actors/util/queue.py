"""``Queue``: a first-in first-out queue that any process of the session can use, as Ray's.

The items live in an async actor (one ``asyncio.Queue``); a ``Queue`` object is
a thin client of it, so it pickles into actors and tasks and works there too.
``Empty`` and ``Full`` are the ``queue`` module's exceptions, subclassed.
"""
from __future__ import annotations

import asyncio
import queue as _queue

from .._api.ops import get, kill
from .._api.remote import remote

__all__ = ["Empty", "Full", "Queue"]


class Empty(_queue.Empty):
    """``get`` found no item (non-blocking, or not before its timeout)."""


class Full(_queue.Full):
    """``put`` found no room (non-blocking, or not before its timeout)."""


class _QueueActor:
    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self.queue = asyncio.Queue(maxsize)

    def qsize(self) -> int:
        return self.queue.qsize()

    def empty(self) -> bool:
        return self.queue.empty()

    def full(self) -> bool:
        return self.queue.full()

    async def put(self, item, timeout=None) -> None:
        try:
            await asyncio.wait_for(self.queue.put(item), timeout)
        except asyncio.TimeoutError:
            raise Full from None

    async def get(self, timeout=None):
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except asyncio.TimeoutError:
            raise Empty from None

    def put_nowait(self, item) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            raise Full from None

    def put_nowait_batch(self, items) -> None:
        if self.maxsize > 0 and len(items) + self.qsize() > self.maxsize:
            raise Full(f"Cannot add {len(items)} items to queue of size {self.qsize()} "
                       f"and maxsize {self.maxsize}.")
        for item in items:
            self.queue.put_nowait(item)

    def get_nowait(self):
        try:
            return self.queue.get_nowait()
        except asyncio.QueueEmpty:
            raise Empty from None

    def get_nowait_batch(self, num_items: int) -> list:
        if num_items > self.qsize():
            raise Empty(f"Cannot get {num_items} items from queue of size {self.qsize()}.")
        return [self.queue.get_nowait() for _ in range(num_items)]


_QueueActorClass = None


def _actor_class():
    global _QueueActorClass
    if _QueueActorClass is None:
        _QueueActorClass = remote(_QueueActor)
    return _QueueActorClass


class Queue:
    """A FIFO queue shared by the driver, actors and tasks.

    ``maxsize <= 0`` means no limit. ``actor_options`` go to the actor that
    holds the items (e.g. ``{"name": "jobs"}``).
    """

    def __init__(self, maxsize: int = 0, actor_options: dict | None = None):
        self.maxsize = maxsize
        self.actor = _actor_class().options(**(actor_options or {})).remote(self.maxsize)

    def __len__(self) -> int:
        return self.size()

    def size(self) -> int:
        return get(self.actor.qsize.remote())

    def qsize(self) -> int:
        return self.size()

    def empty(self) -> bool:
        return get(self.actor.empty.remote())

    def full(self) -> bool:
        return get(self.actor.full.remote())

    def put(self, item, block: bool = True, timeout: float | None = None) -> None:
        """Add an item; wait for room if ``block`` (at most ``timeout`` s), else raise ``Full``."""
        if not block:
            return get(self.actor.put_nowait.remote(item))
        _check_timeout(timeout)
        return get(self.actor.put.remote(item, timeout))

    async def put_async(self, item, block: bool = True, timeout: float | None = None) -> None:
        if not block:
            return await self.actor.put_nowait.remote(item)
        _check_timeout(timeout)
        return await self.actor.put.remote(item, timeout)

    def get(self, block: bool = True, timeout: float | None = None):
        """Take the oldest item; wait for one if ``block`` (at most ``timeout`` s), else raise
        ``Empty``."""
        if not block:
            return get(self.actor.get_nowait.remote())
        _check_timeout(timeout)
        return get(self.actor.get.remote(timeout))

    async def get_async(self, block: bool = True, timeout: float | None = None):
        if not block:
            return await self.actor.get_nowait.remote()
        _check_timeout(timeout)
        return await self.actor.get.remote(timeout)

    def put_nowait(self, item) -> None:
        return self.put(item, block=False)

    def put_nowait_batch(self, items) -> None:
        if not isinstance(items, list):
            raise TypeError("Argument 'items' must be a list")
        return get(self.actor.put_nowait_batch.remote(items))

    def get_nowait(self):
        return self.get(block=False)

    def get_nowait_batch(self, num_items: int) -> list:
        if not isinstance(num_items, int) or isinstance(num_items, bool):
            raise TypeError("Argument 'num_items' must be an int")
        if num_items < 0:
            raise ValueError("'num_items' must be nonnegative")
        return get(self.actor.get_nowait_batch.remote(num_items))

    def shutdown(self, force: bool = False, grace_period_s: int = 5) -> None:
        """End the actor that holds the items (what is still queued is lost)."""
        if self.actor is not None:
            kill(self.actor)
        self.actor = None


def _check_timeout(timeout) -> None:
    if timeout is not None and timeout < 0:
        raise ValueError("'timeout' must be a non-negative number")
