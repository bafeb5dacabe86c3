"""Progress bars in actors: what 1,000,000 ``update()`` calls cost the actor.

    bar_auto   ``from tqdm.auto import tqdm`` in an actor method, 1,000,000 ``update()``
    bar_ray    Ray's ``tqdm_ray.tqdm`` API (``<ray>.experimental.tqdm_ray``), the same
    floor      plain tqdm in one process, writing to a null file (no runtime at all)

The time is measured inside the method, around the loop (bar created and closed).
"""
from __future__ import annotations

import importlib
import time

ROWS = ("bar_auto", "bar_ray")
UPDATES = 1_000_000


def _define(ray):
    @ray.remote
    class Progress:
        def auto(self, n):
            from tqdm.auto import tqdm
            t = time.perf_counter()
            bar = tqdm(total=n, desc="auto")
            for _ in range(n):
                bar.update()
            bar.close()
            return time.perf_counter() - t

        def ray_api(self, module, n):
            tqdm = importlib.import_module(module).tqdm
            t = time.perf_counter()
            bar = tqdm(total=n, desc="tqdm_ray")
            for _ in range(n):
                bar.update()
            bar.close()
            return time.perf_counter() - t

    return Progress


def _updates(cfg) -> int:
    return UPDATES if cfg["sync_n"] >= 1000 else UPDATES // 10


def run(ray, rows, cfg, measure=None) -> dict:
    """{row: [seconds]} for the rows of this module in ``rows``; the runtime is running.

    ``measure(row, sample)``, if given, takes a row's samples instead (``sample()``
    takes one): bench's turn about with the floor."""
    if not any(r in rows for r in ROWS):
        return {}
    n = _updates(cfg)
    scale = UPDATES / n
    actor = _define(ray).remote()
    out: dict = {}
    if measure is None:
        def measure(row, sample):
            out[row] = [sample() for _ in range(cfg["reps"] + 1)][1:]
    if "bar_auto" in rows:
        measure("bar_auto", lambda: ray.get(actor.auto.remote(n)) * scale)
    if "bar_ray" in rows:
        module = ray.__name__ + ".experimental.tqdm_ray"
        measure("bar_ray", lambda: ray.get(actor.ray_api.remote(module, n)) * scale)
    return out


def floor_sample(cfg) -> float:
    """One sample of the floor: the same loop with plain tqdm in this process, drawing to
    a null file."""
    import os
    from tqdm.std import tqdm
    n = _updates(cfg)
    with open(os.devnull, "w") as null:
        t = time.perf_counter()
        bar = tqdm(total=n, file=null)
        for _ in range(n):
            bar.update()
        bar.close()
        return (time.perf_counter() - t) * UPDATES / n


def run_floor(rows, cfg) -> dict:
    """The floor's samples of the rows of this module in ``rows`` (one loop serves both)."""
    wanted = [r for r in ROWS if r in rows]
    if not wanted:
        return {}
    samples = [floor_sample(cfg) for _ in range(cfg["reps"] + 1)][1:]
    return {row: samples for row in wanted}
