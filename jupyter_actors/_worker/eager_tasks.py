"""Tasks whose first step runs at once, in the caller, as Python 3.12's eager tasks do.

Most calls of an async actor finish without ever suspending (``return x``).
A task started this way is a real ``asyncio.Task`` from its first line on
(``current_task()``, cancel, its own copy of the context), but a call that
finishes at once never waits for a turn of the loop, and no loop callback is
made for it.

Before 3.12 there is no ``eager_start``: the task is built while the loop's
``call_soon`` is shadowed on the instance, so the first step the task asks
to schedule is handed back instead, and run here in the task's context,
which is what the loop would have done a turn later.
"""
from __future__ import annotations

import asyncio
import sys


class EagerStarter:
    """Starts tasks on ``loop`` (which must be running, in this thread) with their first
    step run at once. Never from inside a running task's step (nested steps are not
    allowed): use ``loop.create_task`` there."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.asked: list = []       # what a task being built asked call_soon for

    if sys.version_info >= (3, 12):
        def start(self, coro) -> asyncio.Task:
            return asyncio.Task(coro, loop=self.loop, eager_start=True)
    else:
        def start(self, coro) -> asyncio.Task:
            loop, asked = self.loop, self.asked
            loop.call_soon = self._take_step
            try:
                task = asyncio.Task(coro, loop=loop)
            finally:
                del loop.call_soon
            if len(asked) == 1:
                callback, args, context = asked.pop()
                if context is None:
                    callback(*args)
                else:
                    context.run(callback, *args)
            else:
                # Not the one step expected (something else ran call_soon meanwhile,
                # say a finalizer): schedule all of it as asked, in order.
                for callback, args, context in asked:
                    loop.call_soon(callback, *args, context=context)
                asked.clear()
            return task

        def _take_step(self, callback, *args, context=None):
            self.asked.append((callback, args, context))
