"""Ray Client (``init(address="ray://HOST:PORT")``): the cluster's log stream, routed as on a driver.

A Ray Client session has no log stream of its own: the client server sends the
workers' lines to the client, whose log thread prints them. Our tagged lines (see
host.py) are taken out of that print and handed to the session's LogRouter, so
output still reaches the cell that made the call and the trace still gets the
workers' times; any other line is printed as Ray prints it.
"""
from __future__ import annotations

import re
import weakref

from .host import EVENTS_MARK
from .output import LINE_MARK

# "(Name pid=123)" or "(Name pid=123, ip=10.0.0.1)", maybe coloured, before each line.
_PREFIX = re.compile(r"(?:\x1b\[[0-9;]*m)?\((?P<name>[^()]*?)(?: pid=(?P<pid>\d+))?"
                     r"(?:, ip=[^()]*)?\)(?:\x1b\[0m)? ?")
_STDERR = -2     # the level Ray Client gives a line a worker wrote to stderr
_active = None   # weakref to the LogRouter of the running Ray Client session


def route_client_logs(log_router) -> None:
    """From now on, lines of this Ray Client session's workers go through ``log_router``."""
    global _active
    from ray.util.client.logsclient import LogstreamClient
    if not getattr(LogstreamClient.stdstream, "routed", False):
        # The client's log thread calls the class's method (its instance is not the one
        # the client API hands out), so the routing goes there, once per process.
        LogstreamClient.stdstream = _routing(LogstreamClient.stdstream)
    _active = weakref.ref(log_router)


def _routing(printer):
    def stdstream(self, level: int, msg: str) -> None:
        router = _active() if _active is not None else None
        if router is None or router.backend.closed is not None:
            return printer(self, level, msg)
        plain: list = []
        # (Not splitlines(): it splits at our record separator too.)
        is_err = level == _STDERR
        for line in msg.split("\n"):
            if not line:
                continue
            match = _PREFIX.match(line)
            rest = line[match.end():] if match else ""
            pid = match.group("pid") if match else None
            pid = int(pid) if pid else None
            # A trace-event line the log monitor read half-written comes as two lines:
            # the second (no mark of its own) goes where the first went, to be joined.
            if rest.startswith(LINE_MARK) or rest.startswith(EVENTS_MARK) \
                    or (match and (pid, is_err) in router.cut):
                router.handle({"lines": [rest], "pid": pid,
                               "actor_name": match.group("name"), "is_err": is_err})
            else:
                plain.append(line + "\n")
        if plain:
            printer(self, level, "".join(plain))
    stdstream.routed = True
    return stdstream
