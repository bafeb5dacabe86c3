"""Watching the cluster: when its head node goes away, fail what is pending and let go.

Ray's driver, cut off from the cluster's control store, waits for it (and by
default ends the whole process after a minute: a notebook's kernel). A probe
of the head node's port every second notices much sooner; then every pending
call fails with an error that says what happened, the session lets go of Ray,
and ``init()`` can join again.
"""
from __future__ import annotations

import os
import socket
import threading
import time

PROBE_EVERY = 1.0      # seconds between probes of the head node's port
LOST_AFTER = 3         # failed probes in a row that mean the cluster is gone
# Ray ends a driver that cannot reach the control store for this long; a kernel must
# not die with the cluster, so the session allows far longer and acts on its own.
os.environ.setdefault("RAY_gcs_rpc_server_reconnect_timeout_s", "86400")


class ClusterWatch:
    def __init__(self, address: str, on_lost):
        host, _, port = address.rpartition(":")
        self.target = (host, int(port))
        self.address = address
        self.on_lost = on_lost
        self.stopped = threading.Event()
        threading.Thread(target=self._run, name="jupyter_actors-ray-watch", daemon=True).start()

    def stop(self) -> None:
        self.stopped.set()

    def _run(self) -> None:
        failures = 0
        while not self.stopped.wait(PROBE_EVERY):
            try:
                with socket.create_connection(self.target, timeout=PROBE_EVERY):
                    failures = 0
            except OSError:
                failures += 1
                if failures >= LOST_AFTER:
                    self.on_lost()
                    return
