"""Ray's ``ray.experimental.tqdm_ray``: a progress bar usable in any actor or task.

    from jupyter_actors.experimental.tqdm_ray import tqdm

    @ray.remote
    def f(name):
        for x in tqdm(range(100), desc=name):
            ...

The same API as Ray's (``desc``, ``total``, ``unit``, ``position``,
``flush_interval_s``; ``update``, ``set_description``, ``refresh``, ``close``,
``n``, ``total``, iteration). Here every tqdm bar in a worker is drawn by the
driver where the call's output goes (the calling cell, or the terminal), so
this class is a thin front to ``tqdm.auto.tqdm``: in a worker its state goes to
the driver at most once per ``flush_interval_s`` (0.1 s by default: Ray's 1 s
suits log lines, a bar redrawn in place can go faster), and on the driver it is
an ordinary tqdm bar.
"""
from __future__ import annotations

import builtins
import sys
from typing import Iterable, Optional

__all__ = ["safe_print", "tqdm"]


class tqdm:
    """A progress bar from any actor or task, drawn by the driver (Ray's tqdm_ray API)."""

    # Ray sends a state once a second; here the driver redraws each bar in place,
    # so states go at the rate of every other bar in a worker (10 per second).
    DEFAULT_FLUSH_INTERVAL_SECONDS = 0.1

    def __init__(self, iterable: Optional[Iterable] = None, desc: Optional[str] = None,
                 total: Optional[int] = None, unit: Optional[str] = None,
                 position: Optional[int] = None, flush_interval_s: Optional[float] = None):
        from tqdm.auto import tqdm as auto_tqdm
        if total is None and iterable is not None:
            try:
                total = len(iterable)
            except (TypeError, AttributeError):
                total = None
        self._iterable = iterable
        interval = (self.DEFAULT_FLUSH_INTERVAL_SECONDS if flush_interval_s is None
                    else flush_interval_s)
        self._bar = auto_tqdm(desc=desc or "", total=total, unit=unit or "it",
                              position=position, mininterval=interval)
        # The hot path without a call of ours in between (same signature).
        self.update = self._bar.update

    def set_description(self, desc) -> None:
        self._bar.set_description(desc)

    def update(self, n=1) -> None:
        self._bar.update(n)

    def close(self) -> None:
        self._bar.close()

    def refresh(self) -> None:
        self._bar.refresh()

    @property
    def total(self) -> Optional[int]:
        return self._bar.total

    @total.setter
    def total(self, total: int) -> None:
        self._bar.total = total

    @property
    def n(self) -> int:
        return self._bar.n

    @n.setter
    def n(self, n: int) -> None:
        self._bar.n = n

    def __iter__(self):
        if self._iterable is None:
            raise ValueError("No iterable provided")
        for x in iter(self._iterable):
            self.update(1)
            yield x


def safe_print(*args, **kwargs) -> None:
    """``print`` that leaves this process's tqdm bars readable (Ray's ``safe_print``)."""
    file = kwargs.get("file")
    if file not in (None, sys.stdout, sys.stderr) or "tqdm.std" not in sys.modules:
        builtins.print(*args, **kwargs)
        return
    from tqdm.std import tqdm as std_tqdm
    with std_tqdm.external_write_mode(file=file or sys.stdout):
        builtins.print(*args, **kwargs)
