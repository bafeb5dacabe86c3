"""The actors the ConcurrencyPlayground runs (plain classes: workers import them by name).

Three kinds, from Ray's "AsyncIO / Concurrency for Actors" guide:

    AsyncActor      async methods on one event loop: up to max_concurrency
                    calls wait on ``asyncio.sleep`` together
    ThreadedActor   sync methods on a pool of max_concurrency threads
                    (default 1: one call at a time, in submission order)
    BlockingActor   an async actor whose sync method calls ``time.sleep``: while
                    it runs, the event loop and every other call of the actor wait
"""
from __future__ import annotations

import asyncio
import time


class AsyncActor:
    def ready(self) -> bool:
        return True

    async def run_task(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ThreadedActor:
    def ready(self) -> bool:
        return True

    def run_task(self, seconds: float) -> None:
        time.sleep(seconds)


class BlockingActor:
    def ready(self) -> bool:
        return True

    async def run_task(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def blocking_task(self, seconds: float) -> None:
        time.sleep(seconds)  # blocks the actor's event loop: nothing else of it runs meanwhile


KINDS = {
    "async": (AsyncActor, "async actor: await asyncio.sleep"),
    "threaded": (ThreadedActor, "threaded actor: time.sleep in a thread pool"),
    "blocking": (BlockingActor, "async actor, every other call a blocking sync method"),
}


def method_for(kind: str, index: int) -> str:
    """Which method the index-th task calls: the blocking kind alternates."""
    if kind == "blocking" and index % 2:
        return "blocking_task"
    return "run_task"
