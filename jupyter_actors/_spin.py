"""Polling a little before sleeping, where it pays: for the reply or the call that is due next.

On an idle machine a core that went to sleep takes tens of µs to wake (a VM's
halted core more), about as long as the other side of a sync call takes to
answer. A thread that is about to sleep waiting for it may poll instead for a
short while (``Spin.TIME``). That pays only while the machine has cores to
spare; where other work is waiting for a core, or the other side shares this
one, the polling takes the CPU it needs. So a thread polls only

- while no more tasks are runnable than there are cores (``/proc/loadavg``'s
  count of runnable tasks, read at most every ``CHECK`` seconds), and
- while its polls see what they wait for: a poll that saw nothing in time
  makes its next waits sleep at once, twice as many after each miss in a
  row (a hit takes one miss back).

``JUPYTER_ACTORS_SPIN=0`` turns it off.

Elsewhere than on Linux it never polls.
"""
from __future__ import annotations

import os
from time import monotonic


class _Cores:
    """Whether the machine has a core to spare now (Linux), checked every CHECK seconds."""

    CHECK = 0.005

    def __init__(self):
        self.fd = None        # /proc/loadavg, opened at the first check
        self.off = os.environ.get("JUPYTER_ACTORS_SPIN", "1") == "0"
        self.cores = 1
        self.next_check = 0.0
        self.free = False

    def spare(self, now: float) -> bool:
        if now < self.next_check:
            return self.free
        self.next_check = now + self.CHECK
        if self.fd is None:
            if self.off:
                return False
            try:
                self.fd = os.open("/proc/loadavg", os.O_RDONLY | os.O_CLOEXEC)
                self.cores = len(os.sched_getaffinity(0))
            except (OSError, AttributeError):  # not Linux
                self.off = True
                return False
        try:
            # "0.61 0.77 0.94 2/345 6789": the 4th field is runnable/total tasks (this
            # thread, which is running, among them)
            running = int(os.pread(self.fd, 64, 0).split()[3].split(b"/")[0])
        except (OSError, ValueError, IndexError):
            self.off = True
            self.free = False
            return False
        self.free = running <= self.cores and self.cores > 1
        return self.free


_cores = _Cores()


def cores_spare() -> bool:
    """Whether polling may pay now: it is on, and the machine has a core to spare."""
    return _cores.spare(monotonic())


class Spin:
    """One thread's polls before it sleeps (see the module's text)."""

    TIME = 100e-6
    MAX_SKIP = 256
    __slots__ = ("skip", "misses")

    def __init__(self):
        self.skip = 0       # waits left that sleep at once
        self.misses = 0     # polls in a row that saw nothing

    def due(self) -> bool:
        """Whether this wait may poll before it sleeps."""
        if self.skip:
            self.skip -= 1
            return False
        return _cores.spare(monotonic())

    def poll(self, poll):
        """Call ``poll(0)`` until it returns something true, within TIME: that, else None
        (then sleep as usual)."""
        end = monotonic() + self.TIME
        while True:
            got = poll(0)
            if got:
                if self.misses:
                    self.misses -= 1  # (one hit does not undo a run of misses)
                return got
            if monotonic() >= end:
                break
        self.misses += 1
        self.skip = min(1 << self.misses, self.MAX_SKIP)
        return None
