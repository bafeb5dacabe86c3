"""A progress bar for ``get`` of many refs that takes a while.

In a notebook, ``%load_ext jupyter_actors`` turns it on. In a script or a
terminal it is off unless asked for::

    from jupyter_actors import progress
    progress.enable()            # bar after 1 s of waiting (tqdm.auto)
    progress.enable(delay=5.0)   # ... after 5 s
    progress.disable()

The bar appears only once a ``get`` has waited ``delay`` seconds without every
ref being done, so quick gets print nothing. ``get`` still returns the same
values and raises the same error as without the bar: the first failed ref in
list order, as soon as every ref before it is done. tqdm is imported only when
a bar is shown.
"""
from __future__ import annotations

import threading
import time

from ._api import ops

__all__ = ["enable", "disable", "is_enabled"]

DEFAULT_DELAY = 1.0
_REFRESH = 0.1   # seconds between bar updates while waiting


def enable(delay: float = DEFAULT_DELAY) -> None:
    """Show a progress bar when ``get(list_of_refs)`` waits longer than ``delay`` seconds."""
    if delay < 0:
        raise ValueError(f"delay must be >= 0 seconds, got {delay!r}")
    ops.get_progress = _ProgressGet(delay)


def disable() -> None:
    ops.get_progress = None


def is_enabled() -> bool:
    return isinstance(ops.get_progress, _ProgressGet)


class _ProgressGet:
    """``get(refs)`` for a list of refs, with a tqdm bar once the wait passes ``delay``."""

    def __init__(self, delay: float):
        self.delay = delay

    def __call__(self, refs: list, started: float | None = None):
        """``started``: when the get began (time.monotonic()), if before this call."""
        __tracebackhide__ = True  # an interrupted get() shows the user's frame, not ours
        futures = [r._future for r in refs]
        counter = _DoneCounter(futures)
        show_at = (time.monotonic() if started is None else started) + self.delay
        bar = None
        try:
            for future in futures:
                while not future.done():
                    now = time.monotonic()
                    if bar is None and now >= show_at:
                        bar = _new_bar(len(futures), counter.count)
                    wait = _REFRESH if bar is not None else max(show_at - now, 0.0)
                    counter.wait_for_change(wait)
                    if bar is not None:
                        bar.update(counter.count - bar.n)
                if future.exception() is not None:
                    break  # the error plain get would raise; later refs do not matter
            if bar is not None:
                bar.update(counter.count - bar.n)
        finally:
            if bar is not None:
                bar.close()
        return [f.result() for f in futures]


class _DoneCounter:
    """How many of the futures are done; waiting wakes at the next completion."""

    def __init__(self, futures: list):
        self._cond = threading.Condition()
        self.count = 0
        for f in futures:
            f.add_done_callback(self._one_done)

    def _one_done(self, _future) -> None:
        with self._cond:
            self.count += 1
            self._cond.notify_all()

    def wait_for_change(self, timeout: float) -> None:
        __tracebackhide__ = True
        with self._cond:
            seen = self.count
            self._cond.wait_for(lambda: self.count != seen, timeout)


def _new_bar(total: int, done: int):
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=done, desc="get", unit="ref", dynamic_ncols=True)
