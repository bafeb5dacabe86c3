"""Our API on Ray beside bare Ray, in ONE process, turn and turn about.

    python bench/onray_interleaved.py [--rounds 7] [--sync-n 1000] [--pipe-n 1000]
                                      [--only sync_threaded,pipe_async]

bench.py runs each column in a fresh interpreter one after the other; Ray's
own rate swings a lot from minute to minute on a busy machine, so the two
columns can be measured under different loads. Here one local Ray serves both:
``jupyter_actors`` (backend "ray") and ``ray`` itself define the same actors,
and each round measures every row once for each, alternating which goes
first. Each row's median over the rounds is printed, and ours as a share of
Ray's (the target: at least 90 %).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _workloads import _define  # noqa: E402  (the benchmark's own actor classes)

ROWS = ("sync_threaded", "sync_mc16", "sync_async", "pipe_threaded", "pipe_mc16", "pipe_async")


def _actors(api):
    Threaded, Async, *_ = _define(api)
    made = {"threaded": Threaded.remote(), "mc16": Threaded.options(max_concurrency=16).remote(),
            "async": Async.remote()}
    api.get([a.f.remote(1) for a in made.values()])
    return made


def _measure(api, actor, row: str, sync_n: int, pipe_n: int) -> float:
    call = actor.f.remote
    get = api.get
    t = time.perf_counter()
    if row.startswith("sync"):
        for _ in range(sync_n):
            get(call(1))
        n = sync_n
    else:
        get([call(1) for _ in range(pipe_n)])
        n = pipe_n
    return n / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--sync-n", type=int, default=1000)
    parser.add_argument("--pipe-n", type=int, default=1000)
    parser.add_argument("--only", default=",".join(ROWS))
    args = parser.parse_args()
    rows = [r for r in args.only.split(",") if r]

    import ray

    import jupyter_actors as ours
    ours.init(backend="ray", include_dashboard=False, num_cpus=4)
    apis = {"ours": ours, "ray": ray}
    actors = {name: _actors(api) for name, api in apis.items()}
    samples = {(name, row): [] for name in apis for row in rows}
    for name, api in apis.items():      # a warm-up pass, not counted
        for row in rows:
            _measure(api, actors[name][row.split("_")[1]], row, args.sync_n // 4,
                     args.pipe_n // 4)
    for i in range(args.rounds):
        for row in rows:
            order = ("ours", "ray") if (i % 2 == 0) else ("ray", "ours")
            for name in order:
                samples[(name, row)].append(_measure(apis[name], actors[name][row.split("_")[1]],
                                                     row, args.sync_n, args.pipe_n))
    print(f"{'row':<16}{'ours on Ray':>14}{'bare Ray':>12}{'share':>8}   (median of "
          f"{args.rounds} interleaved rounds, calls/s)")
    for row in rows:
        mine = statistics.median(samples[("ours", row)])
        theirs = statistics.median(samples[("ray", row)])
        print(f"{row:<16}{mine:>14,.0f}{theirs:>12,.0f}{mine / theirs:>8.0%}")
    ours.shutdown()


if __name__ == "__main__":
    main()
