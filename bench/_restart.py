"""A restart, timed (run against jupyter_actors or Ray).

    restart   an actor with max_restarts=-1 is killed with SIGKILL; the clock stops at the
              first call that succeeds on its restarted process (calls that fail while it
              restarts are made again at once, as a caller would)
"""
from __future__ import annotations

import os
import signal
import time

ROWS = ("restart",)


def run(ray, rows, cfg) -> dict:
    """{row: [samples]} for the rows of this module in ``rows``; the runtime is running."""
    if "restart" not in rows:
        return {}

    @ray.remote(max_restarts=-1)
    class Restartable:
        def pid(self):
            return os.getpid()

    actor = Restartable.remote()
    pid = ray.get(actor.pid.remote())
    samples = []
    for _ in range(cfg["reps"] + 1):  # the first repetition warms up
        time.sleep(cfg["create_pause"])  # pre-started workers come back up, as for "create"
        t = time.perf_counter()
        os.kill(pid, signal.SIGKILL)
        while True:
            try:
                new = ray.get(actor.pid.remote())
            except ray.exceptions.RayActorError:  # unavailable while it restarts
                continue
            if new != pid:
                break
        samples.append(time.perf_counter() - t)
        pid = new
    ray.kill(actor)
    return {"restart": samples[1:]}
