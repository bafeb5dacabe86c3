"""Workers' progress bars on the driver's terminal: one tqdm bar each, on stderr.

tqdm places bars that are open at once on lines of their own and redraws them
in place. Lines that workers print while bars are open are written with
``tqdm.external_write_mode``: the bars are cleared, the lines written, the
bars drawn again, so neither breaks the other.
"""
from __future__ import annotations

import contextlib
import sys
import time

_open = 0   # bars drawn now (read without a lock: a stale 0 only skips the clearing)


class TerminalBar:
    """One worker bar, drawn by a driver-side tqdm bar that shows the worker's state."""

    def __init__(self, prefix: str, file=None):
        from tqdm.std import tqdm
        global _open
        self.prefix = prefix
        # (delay: nothing drawn until the first state arrives)
        self.bar = tqdm(total=None, desc=prefix, file=file or sys.stderr, leave=True,
                        mininterval=0, miniters=0, delay=1e9)
        self.bar.delay = 0
        _open += 1

    def update(self, state: dict, closed: bool) -> None:
        global _open
        bar = self.bar
        if bar.disable:
            return
        desc = state.get("prefix") or ""
        bar.desc = f"{self.prefix} {desc}".rstrip(": ") + ": "
        bar.total = state.get("total")
        bar.n = state.get("n") or 0
        bar.unit = state.get("unit") or "it"
        bar.unit_scale = state.get("unit_scale") or False
        bar.unit_divisor = state.get("unit_divisor") or 1000
        bar.postfix = state.get("postfix")
        bar.initial = state.get("initial") or 0
        # The worker's clock: the elapsed time and rate are the call's.
        bar.start_t = bar._time() - (state.get("elapsed") or 0.0)
        bar.last_print_t = time.time()
        bar.refresh()
        if closed:
            bar.close()
            _open -= 1


def writing_around_bars(out):
    """A context in which writing ``out`` leaves the open bars readable."""
    if not _open or "tqdm.std" not in sys.modules:
        return contextlib.nullcontext()
    from tqdm.std import tqdm
    return tqdm.external_write_mode(file=out)
