"""Cold start: each sample a fresh driver process, from before ``init()`` until a new
actor has answered its first call (the library's import is done before the clock starts).

    python bench/_cold.py ours|ray      # prints the seconds of one cold start

``samples(lib, n)`` runs it n times, one process after the other. The floor's samples:
``floor_samples(n)``, each a fresh ``python -c "import cloudpickle"`` start to exit.
``paired_samples(lib, n)`` takes both turn about (n rounds of a floor start and a cold
start of ``lib``, each going first in every other round), so a load spike on this machine
lands on both rows alike instead of on whichever ran during it; bench.py uses it when the
floor column is asked for.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

FLOOR = "import cloudpickle"


def _one(lib: str) -> float:
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), lib],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"cold start of {lib} failed:\n{proc.stderr[-2000:]}")
    return float(proc.stdout.split()[-1])


def _one_floor() -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", FLOOR], check=True)
    return time.perf_counter() - t


def samples(lib: str, n: int) -> list:
    return [_one(lib) for _ in range(n)]


def floor_samples(n: int) -> list:
    return [_one_floor() for _ in range(n)]


def paired_samples(lib: str, n: int) -> tuple:
    """(cold starts of ``lib``, floor starts), n of each, taken turn about."""
    ours, floor = [], []
    for i in range(n):
        if i % 2:
            ours.append(_one(lib))
            floor.append(_one_floor())
        else:
            floor.append(_one_floor())
            ours.append(_one(lib))
    return ours, floor


def main(lib: str) -> None:
    if lib == "ours":
        import jupyter_actors as ray
        kwargs = {}
    else:
        import ray
        kwargs = {"include_dashboard": False, "log_to_driver": False}
    t0 = time.perf_counter()
    ray.init(**kwargs)

    @ray.remote
    class Threaded:
        def f(self, x=None):
            return x

    ray.get(Threaded.remote().f.remote(1))
    elapsed = time.perf_counter() - t0
    print(elapsed, flush=True)
    ray.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
