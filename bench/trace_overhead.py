"""What call tracing costs on pipelined actor calls (target: at most 5 %).

    python bench/trace_overhead.py            # 1000 calls x 30 repetitions per mode
    python bench/trace_overhead.py --reps 30 --calls 2000

Modes, interleaved repetition by repetition (in rotating order) so that load
from other processes hits all of them alike:

    off        the tracer's three hooks replaced by no-ops (what tracing adds is gone)
    on         the default: every call recorded
    on+widget  a live Timeline widget listening (its owner thread redraws at 10 Hz)

Also prints the cost of the three hooks alone, measured in a tight loop, next
to the cost of one pipelined call.
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time

import jupyter_actors as ray
from jupyter_actors import _trace

sys.path.insert(0, os.path.dirname(__file__))
from _workloads import _define  # noqa: E402  (the benchmark's own actor classes)

Threaded, Async, *_ = _define(ray)


def pipelined(actor, n: int) -> tuple:
    """(calls per second, driver CPU µs per call) for n calls submitted at once, then collected.

    The driver's CPU time (all its threads) is what tracing adds to; unlike wall
    time it hardly moves when other processes load the machine.
    """
    t0, c0 = time.perf_counter(), time.process_time()
    ray.get([actor.f.remote(i) for i in range(n)])
    return n / (time.perf_counter() - t0), (time.process_time() - c0) / n * 1e6


class Hooks:
    """Switches the tracer's hooks off (instance attributes shadow the methods) and on."""

    names = ("record_submitted", "record_started", "record_finished")

    @classmethod
    def off(cls) -> None:
        for name in cls.names:
            setattr(_trace.tracer, name, lambda record: None)

    @classmethod
    def on(cls) -> None:
        for name in cls.names:
            _trace.tracer.__dict__.pop(name, None)


def hook_cost_ns(loops: int = 200_000) -> float:
    """ns for submitted + started + finished of one call, with nobody listening."""
    from jupyter_actors._backend.local.records import CallRecord
    from jupyter_actors._backend.local.tasks import TaskPool
    tracer = _trace.Tracer(capacity=1000)
    record = CallRecord("call", "A.f", "f", TaskPool(None, 1), b"", (), 1, None)
    t0 = time.perf_counter()
    for _ in range(loops):
        tracer.record_submitted(record)
        tracer.record_started(record)
        tracer.record_finished(record)
    return (time.perf_counter() - t0) / loops * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--no-widget", action="store_true", help="skip the on+widget mode")
    args = parser.parse_args()

    timeline = None
    modes = ["off", "on"]
    if not args.no_widget:
        try:
            from jupyter_actors.widgets import Timeline  # noqa: F401
            modes.append("on+widget")
        except ImportError:
            print("(ipywidgets/anywidget not installed: no on+widget mode)")

    ray.init(ignore_reinit_error=True)
    actors = {"threaded": Threaded.remote(), "async": Async.remote()}
    for actor in actors.values():
        for _ in range(3):  # warm up: workers, imports, caches
            pipelined(actor, args.calls)

    samples = {(kind, mode): [] for kind in actors for mode in modes}
    for rep in range(args.reps):
        for kind, actor in actors.items():
            # Rotate the order, so that no mode always runs first.
            for mode in modes[rep % len(modes):] + modes[:rep % len(modes)]:
                if mode == "off":
                    Hooks.off()
                else:
                    Hooks.on()
                if mode == "on+widget":
                    from jupyter_actors.widgets import Timeline
                    timeline = Timeline(actor, history=False, max_bars=5000)
                gc.collect()
                samples[(kind, mode)].append(pipelined(actor, args.calls))
                if timeline is not None:
                    timeline.close()
                    timeline = None
                _trace.tracer.clear()  # the same deque length for every sample
    Hooks.on()

    print(f"pipelined x{args.calls}, {args.reps} interleaved repetitions "
          f"(Python {sys.version.split()[0]}); overhead: median over repetitions of the "
          f"change against 'off' in the same repetition")
    per_call_us = []
    for title, column, unit in (("wall", 0, "calls/s"), ("driver CPU", 1, "µs/call")):
        print(f"{title:<10}" + "".join(f"{m + ' ' + unit:>20}" for m in modes)
              + "".join(f"{'overhead ' + m:>22}" for m in modes[1:]))
        for kind in actors:
            values = {m: [x[column] for x in samples[(kind, m)]] for m in modes}
            median = {m: statistics.median(values[m]) for m in modes}
            if column == 0:
                per_call_us.append(1e6 / median["off"])
            fmt = ">20,.0f" if column == 0 else ">20.1f"
            row = f"{kind:<10}" + "".join(f"{median[m]:{fmt}}" for m in modes)
            for m in modes[1:]:
                # Neighbouring samples share the machine's load, which drifts slowly.
                pairs = zip(values["off"], values[m])
                change = [(off / on if column == 0 else on / off) - 1 for off, on in pairs]
                row += f"{statistics.median(change) * 100:>21.1f}%"
            print(row)
    ns = hook_cost_ns()
    print(f"the three hooks alone: {ns:.0f} ns per call, "
          f"{ns / 1e3 / min(per_call_us) * 100:.2f} % of the fastest pipelined call "
          f"({min(per_call_us):.1f} µs)")
    ray.shutdown()


if __name__ == "__main__":
    main()
