"""Helpers for tests that cross process boundaries without sleeping on luck."""
from __future__ import annotations

import os
import time

import psutil

GUARD = 30.0  # deadlock guard for any single wait in a test, in seconds


class FileEvent:
    """A one-shot event that crosses processes: set() creates a file, wait() sees it."""

    def __init__(self, path):
        self.path = str(path)

    def set(self) -> None:
        with open(self.path, "w"):
            pass

    def is_set(self) -> bool:
        return os.path.exists(self.path)

    def wait(self, timeout: float = GUARD) -> bool:
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.path):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.002)
        return True


def pid_gone(pid: int, timeout: float = GUARD) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.01)
    return False


def wait_until_started(ref, timeout: float = GUARD) -> None:
    """Wait until the driver has heard from the worker that ``ref``'s call started."""
    deadline = time.monotonic() + timeout
    while ref._owner.started is None:  # the I/O thread sets it on the worker's "start"
        assert time.monotonic() < deadline, "the driver never heard that the call started"
        time.sleep(0.002)


def value_when_set(path, value):
    """Body of a remote function whose result is ready only once FileEvent(path) is set:
    ``ray.remote(value_when_set)`` gives a ref to hand out before it can resolve."""
    FileEvent(path).wait(GUARD)
    return value
