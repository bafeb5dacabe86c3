"""Benchmark: jupyter_actors against Ray and against a bare two-process floor.

    python bench/bench.py                     # every row, every column
    python bench/bench.py --quick             # fewer calls and repetitions
    python bench/bench.py --only sync_threaded,array --libs ours,floor
    python bench/bench.py --only onray --libs ray,onray   # our API on Ray beside bare Ray
    python bench/bench.py --json out.json
    python bench/bench.py --libs ours --before bench/before.json   # beside earlier runs

Each column runs in its own fresh interpreter, one after the other, so the
runtimes never share a process or compete for the CPU. Every row is repeated
and its median reported (init: one sample per run; cold start: each sample a
fresh process). See bench/README.md for what each row measures.

The rows whose target is a multiple or a share of their floor (PAIRED: cold
start, the call-rate rows, remote tasks, sleep, progress bars) take their floor samples inside
our column when both our column and the floor's are asked for: turn about with
ours (ours, floor, floor, ours, ... after a warm-up of each; the same count; each
floor sample taken by the same code the floor column runs, _floor.Sampler, in
processes of its own that run no jupyter_actors code), not minutes later in the
floor's column. On a shared machine whose speed drifts over minutes, a burst of
load then slows both alike instead of whichever ran during it, and the ratio
measures the library, not the moment. The floor's figure is what it was; only
when it is sampled changes. These rows take at least MIN_PAIRED samples of each
(a sample is a fraction of a second), whatever --reps says: a median of three is
at the mercy of one burst; rows whose samples are brief (pipelined: milliseconds)
take more, up to MAX_PAIRED, until their rounds took PAIRED_SECONDS (not with
--quick). The column "ours vs floor" prints the ratio, and the issue's
share-of-the-floor targets (FLOOR_TARGETS) beside it.

``--before FILE`` (a ``--json`` output, or ``bench/before.json``: our figures from
the runs in README.md) adds our earlier figures to the table and says, per row,
whether ours now is better or worse than every one of them ("WORSE" only then:
single runs on a shared machine swing 20-40 %). Where an earlier run also gives
the floor of a PAIRED row (before.json: the cold start's), that row is compared
as ours/floor, so a busier machine does not read as a slower library.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# name: (label, unit, higher_is_better)
ROWS = {
    "init": ("init()", "ms", False),
    "cold": ("cold start: init + actor + 1st call", "ms", False),
    "create": ("actor creation (+ 1st call)", "ms", False),
    "scale_10": ("10 actors created + 1st calls, per actor", "ms", False),
    "scale_100": ("100 actors created + 1st calls, per actor", "ms", False),
    "scale_200": ("200 actors created + 1st calls, per actor", "ms", False),
    "scale_1000": ("1000 actors created + 1st calls, per actor", "ms", False),
    "memory": ("unique memory (USS) of an idle actor", "MiB", False),
    "sync_threaded": ("1:1 sync calls, threaded actor", "calls/s", True),
    "sync_mc16": ("1:1 sync calls, threaded mc=16", "calls/s", True),
    "sync_async": ("1:1 sync calls, async actor", "calls/s", True),
    "pipe_threaded": ("pipelined x1000, threaded actor", "calls/s", True),
    "pipe_mc16": ("pipelined x1000, threaded mc=16", "calls/s", True),
    "pipe_async": ("pipelined x1000, async actor", "calls/s", True),
    "sync_group": ("1:1 sync calls, threaded actor, method in a group", "calls/s", True),
    "pipe_group": ("pipelined x1000, threaded actor, method in a group", "calls/s", True),
    "pipe_group_async": ("pipelined x1000, async actor, method in a group", "calls/s", True),
    "task_sync": ("remote tasks, sync", "calls/s", True),
    "task_pipe": ("remote tasks, pipelined x1000", "calls/s", True),
    "await_one": ("await ref, one by one", "calls/s", True),
    "await_gather": ("asyncio.gather of 1000 refs", "calls/s", True),
    "sleep": ("1000 x await sleep(0.05), 1 actor", "s wall", False),
    "array": ("100 MiB numpy round trip", "GB/s", True),
    "a2a_sync": ("actor -> actor sync calls", "calls/s", True),
    "a2a_pipe": ("actor -> actor pipelined x1000", "calls/s", True),
    "task_fanout": ("task submitting 10 tasks, getting them", "calls/s", True),
    "pool_map": ("ActorPool.map, 1000 items, 2 actors", "calls/s", True),
    "queue": ("Queue, 10,000 items producer -> consumer", "calls/s", True),
    "stream_threaded": ("generator, 10,000 items, threaded actor", "calls/s", True),
    "stream_async": ("generator, 10,000 items, async actor", "calls/s", True),
    "bar_auto": ("1,000,000 tqdm.auto update() in an actor", "ms", False),
    "bar_ray": ("1,000,000 tqdm_ray update() in an actor", "ms", False),
    "restart": ("restart: kill -9 -> 1st call answered", "ms", False),
}

# Rows the "ours on Ray" column runs: what our layer over Ray costs (Ray backend).
ONRAY_ROWS = ("init", "sync_threaded", "sync_mc16", "sync_async", "pipe_threaded", "pipe_mc16",
              "pipe_async")
# Rows that name several: --only scale runs scale_10 ... scale_1000.
GROUPS = {"scale": ["scale_10", "scale_100", "scale_200", "scale_1000"],
          "onray": list(ONRAY_ROWS)}
# The Ray backend's targets: its rate at least 90 % of Ray's own, init at most 50 ms slower.
ONRAY_TARGETS = {"init": 0.050, "rate": 0.90}
# Rows Ray's column skips (too long: Ray takes about a second per actor here).
OURS_ONLY = {"scale_1000"}

# Targets (same machine, same run): ("ratio", x) = at least x times better
# than Ray; ("max", v) / ("min", v) = an absolute bound on our figure;
# ("floor", x) = our time at most x times the floor's.
TARGETS = {
    "init": ("ratio", 30),
    "cold": ("floor", 1.5),
    "scale_200": ("ratio", 50),
    "memory": ("max", 6),
    "sync_threaded": ("ratio", 5), "sync_mc16": ("ratio", 5), "sync_async": ("ratio", 5),
    "pipe_threaded": ("ratio", 10), "pipe_mc16": ("ratio", 10), "pipe_async": ("ratio", 10),
    "sleep": ("floor", 1.5),
    "array": ("min", 2.5),
    "a2a_sync": ("ratio", 5), "a2a_pipe": ("ratio", 5), "task_fanout": ("ratio", 5),
    "pool_map": ("ratio", 5), "queue": ("ratio", 5),
    "stream_threaded": ("ratio", 10), "stream_async": ("ratio", 10),
    "bar_auto": ("floor", 1.5), "bar_ray": ("floor", 1.5),
    "restart": ("ratio", 5),
}

# What the floor column runs for rows where a socketpair echo is not the floor.
FLOOR_NOTES = {
    "cold": "python -c 'import cloudpickle'",
    "create": "spawn python + echo",
    "task_sync": "ProcessPoolExecutor",
    "task_pipe": "ProcessPoolExecutor",
    "await_one": "asyncio socket echo",
    "await_gather": "asyncio socket echo",
    "sleep": "asyncio, 1 process",
    "array": "socketpair echo",
    "bar_auto": "plain tqdm, 1 process, null file",
    "bar_ray": "plain tqdm, 1 process, null file",
    "restart": "kill -9 + spawn python + echo",
}

# Rows whose floor samples are taken in our column, turn about with ours (see above):
# the cold start, and every row _floor.Sampler takes one sample of at a time.
PAIRED = ("cold", "sync_threaded", "sync_mc16", "sync_async", "pipe_threaded", "pipe_mc16",
          "pipe_async", "sync_group", "pipe_group", "pipe_group_async", "task_sync",
          "task_pipe", "await_one", "await_gather", "sleep", "bar_auto", "bar_ray")
MIN_PAIRED = 7
# Rounds of brief samples go on until they took PAIRED_SECONDS (up to MAX_PAIRED rounds).
MAX_PAIRED, PAIRED_SECONDS = 31, 1.0

# Our rate as a share of the floor's, at least (same run): the call-path targets.
FLOOR_TARGETS = {row: 1 / 3 for row in ("sync_threaded", "sync_mc16", "sync_async",
                                        "pipe_threaded", "pipe_mc16", "pipe_async",
                                        "await_one", "await_gather")}
FLOOR_TARGETS["task_pipe"] = 2

LIBS = ("ours", "ray", "onray", "floor")
LIB_TITLES = {"ours": "jupyter_actors", "ray": "Ray", "onray": "ours on Ray", "floor": "floor"}


def config(quick: bool, reps: int | None) -> dict:
    return {
        "reps": reps or (2 if quick else 5),
        "sync_n": 200 if quick else 1000,
        "pipe_n": 1000,
        "array_bytes": 100 * 1024 * 1024,
        "create_pause": 0.3 if quick else 0.5,
    }


# -- one column, in its own interpreter ----------------------------------------

def run_column(lib: str, rows: list, cfg: dict) -> dict:
    sys.path.insert(0, HERE)
    if lib == "floor":
        import _floor
        return _floor.run(rows, cfg)
    import _workloads
    if lib == "ours":
        import jupyter_actors as ray
        return _workloads.run(ray, rows, cfg)
    if lib == "onray":   # the same workloads through our API, on a new local Ray
        import jupyter_actors as ray
        return _workloads.run(ray, [r for r in rows if r in ONRAY_ROWS], cfg,
                              init_kwargs={"backend": "ray", "include_dashboard": False,
                                           "log_to_driver": False})
    # Ray on this machine alone, on 127.0.0.1 as our init() starts it, not on the network
    # address (Ray's own switch for single-node Ray, read when Ray is imported).
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray
    rows = [r for r in rows if r not in OURS_ONLY]
    return _workloads.run(ray, rows, cfg,
                          init_kwargs={"include_dashboard": False, "log_to_driver": False})


def spawn_column(lib: str, rows: list, cfg: dict, timeout: float) -> dict:
    """Run one column in a fresh interpreter; {"rows": {...}} or {"error": text}."""
    if lib in ("ray", "onray"):
        probe = subprocess.run([sys.executable, "-c", "import ray"], capture_output=True)
        if probe.returncode != 0:
            return {"error": "Ray is not installed (pip install 'ray[default]' to compare)"}
    with tempfile.TemporaryDirectory() as tmp:
        out_path = os.path.join(tmp, "out.json")
        log_path = os.path.join(tmp, "log.txt")
        cmd = [sys.executable, os.path.abspath(__file__), "--column", lib,
               "--column-out", out_path, "--column-config", json.dumps(cfg),
               "--only", ",".join(rows)]
        with open(log_path, "w") as log:
            try:
                proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT,
                                      timeout=timeout, cwd=tmp)
                code = proc.returncode
            except subprocess.TimeoutExpired:
                code = "timeout"
        if code == 0 and os.path.exists(out_path):
            with open(out_path) as f:
                return {"rows": json.load(f)}
        with open(log_path) as f:
            tail = f.read()[-2000:]
        return {"error": f"exited with {code}:\n{tail}"}


# -- the table -------------------------------------------------------------------

def machine() -> dict:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        try:
            model = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"],
                                   capture_output=True, text=True).stdout.strip() or model
        except OSError:
            pass
    return {"cores": os.cpu_count(), "cpu": model,
            "python": platform.python_version(), "platform": platform.platform(),
            "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def summarize(samples) -> dict:
    if not samples:
        return None
    return {"median": statistics.median(samples), "samples": samples}


def fmt(value, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value * 1000:,.1f} ms" if value < 10 else f"{value:,.1f} s"
    if unit == "calls/s":
        return f"{value:,.0f}/s"
    if unit == "s wall":
        return f"{value:.3f} s"
    if unit == "MiB":
        return f"{value:.1f} MiB"
    return f"{value:.2f} GB/s"


def advantage(ours, ray, higher_is_better: bool):
    """How many times better our figure is than Ray's (>1: we are faster)."""
    if ours is None or ray is None or ours <= 0 or ray <= 0:
        return None
    return ours / ray if higher_is_better else ray / ours


def verdict(row: str, ours, ratio, floor=None, times_floor=None):
    target = TARGETS.get(row)
    if target is None:
        return "", None
    kind, bound = target
    if kind == "ratio":
        text = f">={bound}x Ray"
        ok = None if ratio is None else ratio >= bound
    elif kind == "floor":
        text = f"<={bound}x floor"
        if times_floor is not None:  # our time / the floor's, as the table prints it
            ok = times_floor <= bound
        else:
            ok = None if ours is None or floor is None else ours <= bound * floor
    elif kind == "max":
        text = f"<={bound} " + ("MiB" if ROWS[row][1] == "MiB" else "s")
        ok = None if ours is None else ours <= bound
    else:
        text = f">={bound} GB/s"
        ok = None if ours is None else ours >= bound
    return text, ok


def _better(ratio: float, unit: str) -> str:
    if unit == "MiB":
        return "less" if ratio >= 1 else "more"
    return "faster" if ratio >= 1 else "slower"


def floor_ratio(ours: dict, floor: dict, paired: bool):
    """Our figure beside the floor's: our rate as a share of the floor's, or our time as
    a multiple of it. For a row sampled turn about, the median of the rounds' ratios
    (each round's two samples ran moments apart, under the same load), else the ratio
    of the medians."""
    if not ours or not floor:
        return None
    pairs = list(zip(ours["samples"], floor["samples"])) if paired else [
        (ours["median"], floor["median"])]
    if any(o <= 0 or f <= 0 for o, f in pairs):
        return None
    return statistics.median(o / f for o, f in pairs)


def floor_ratios(results: dict, rows: list) -> dict:
    """{row: floor_ratio} for the rows that have both our figure and the floor's."""
    ours = (results.get("ours") or {}).get("rows") or {}
    floor = (results.get("floor") or {}).get("rows") or {}
    paired = (results.get("floor") or {}).get("paired", ())
    ratios = {row: floor_ratio(ours.get(row), floor.get(row), row in paired) for row in rows}
    return {row: r for row, r in ratios.items() if r is not None}


def floor_cell(row: str, ratio, higher: bool) -> str:
    """The "ours vs floor" cell, with the row's share-of-the-floor target, if any."""
    if ratio is None:
        return "-"
    if not higher:
        return f"{ratio:.2f}x floor"
    text = f"{ratio:.2f} of floor"
    bound = FLOOR_TARGETS.get(row)
    if bound is not None:
        text += f" (>={bound:.2f}: {'met' if ratio >= bound else 'NOT MET'})"
    return text


def onray_cells(row: str, onray, ray, unit: str, higher: bool, layer=None) -> list:
    """The Ray backend's cells: its figure, its cost beside bare Ray, the target.

    For init, the cost is what our init() spent outside ray.init in the same run
    (``layer``): two runs of ray.init differ by more than that from one to the next."""
    if row not in ONRAY_ROWS:
        return ["", "", "", ""]
    if row == "init" and layer is not None:
        bound = ONRAY_TARGETS["init"]
        return [fmt(onray, unit), f"+{layer * 1000:,.1f} ms (our part)",
                f"<=+{bound * 1000:.0f} ms", "met" if layer <= bound else "NOT MET"]
    if onray is None or ray is None:
        return [fmt(onray, unit), "-", "", ""]
    share = onray / ray if higher else ray / onray
    bound = ONRAY_TARGETS["rate"]
    return [fmt(onray, unit), f"{share:.0%} of Ray", f">={bound:.0%} of Ray",
            "met" if share >= bound else "NOT MET"]


def load_before(paths: str) -> list:
    """Our figures from earlier runs, [(label, {row: ours}, {row: floor})]: from ``--json``
    outputs, or files like bench/before.json (``{"runs": [{"label": ..., "rows": {row:
    value}, "floor": {row: value}}]}``)."""
    runs = []
    for path in [p for p in paths.split(",") if p]:
        with open(path) as f:
            data = json.load(f)
        if "runs" in data:
            runs += [(r.get("label") or f"run {i + 1}", r["rows"], r.get("floor") or {})
                     for i, r in enumerate(data["runs"])]
        else:
            results = data.get("results", {})
            medians = [{k: v["median"] for k, v in ((results.get(lib) or {}).get("rows") or {})
                        .items() if v} for lib in ("ours", "floor")]
            runs.append((os.path.basename(path), *medians))
    return runs


def before_cells(row: str, ours, before: list, unit: str, higher: bool, floor=None) -> list:
    """Our earlier figures of ``row`` and whether ours now is better or worse than all.

    Where this run and an earlier one both have the floor's figure of a row whose floor
    is sampled turn about with ours (PAIRED), that run is compared as ours/floor: the
    load of the moment then weighs on both sides."""
    earlier = [(figures[row], floors.get(row)) for _, figures, floors in before
               if figures.get(row) is not None]
    if not earlier:
        return ["-", ""]
    text = " / ".join(fmt(v, unit) for v, _ in earlier)
    if ours is None:
        return [text, ""]
    better = []
    for value, their_floor in earlier:
        if row in PAIRED and floor and their_floor:
            value, now = value / their_floor, ours / floor
            text_suffix = " (as x floor)"
        else:
            now, text_suffix = ours, ""
        better.append(now > value if higher else now < value)
    verdict = "better" if all(better) else "WORSE" if not any(better) else "within"
    return [text, verdict + text_suffix]


def render(results: dict, rows: list, info: dict, versions: dict, before=None) -> str:
    lines = []
    load = info.get("loadavg")
    lines.append(f"machine: {info['cores']} cores, {info['cpu']}; Python {info['python']}; "
                 f"{info['platform']}")
    if load:
        lines.append(f"load average before / after: {info['loadavg_before'][0]:.2f} / "
                     f"{load[0]:.2f} (1 min)")
    lines.append("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    onray = "onray" in results
    header = ["row", "jupyter_actors", "Ray", "floor", "ours vs Ray", "ours vs floor",
              "target", ""]
    if onray:
        header += ["ours on Ray", "on Ray vs Ray", "target", ""]
    if before:
        header += ["ours before (" + " / ".join(run[0] for run in before) + ")",
                   "now vs all before"]
    table = [header]
    ratios = floor_ratios(results, rows)
    for row in rows:
        label, unit, higher = ROWS[row]
        med = {lib: (results.get(lib, {}).get("rows") or {}).get(row) for lib in LIBS}
        med = {lib: (m["median"] if m else None) for lib, m in med.items()}
        ratio = advantage(med["ours"], med["ray"], higher)
        target, ok = verdict(row, med["ours"], ratio, med["floor"], ratios.get(row))
        floor = fmt(med["floor"], unit)
        paired = row in results.get("floor", {}).get("paired", ())
        if row in FLOOR_NOTES and med["floor"] is not None:
            floor += f" ({FLOOR_NOTES[row]}{', turn about with ours' if paired else ''})"
        elif paired and med["floor"] is not None:
            floor += " (turn about with ours)"
        table.append([label, fmt(med["ours"], unit), fmt(med["ray"], unit), floor,
                      "-" if ratio is None else f"{ratio:,.1f}x " + _better(ratio, unit),
                      floor_cell(row, ratios.get(row), higher),
                      target, {True: "met", False: "NOT MET", None: ""}[ok]])
        if onray:
            layer = (results["onray"].get("rows") or {}).get("init_layer")
            table[-1] += onray_cells(row, med["onray"], med["ray"], unit, higher,
                                     layer["median"] if layer else None)
        if before:
            table[-1] += before_cells(row, med["ours"], before, unit, higher, med["floor"])
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    left = {0, 6, 7, 10, 11} if onray else {0, 6, 7}
    if before:
        left.add(len(header) - 1)
    for i, r in enumerate(table):
        lines.append("  ".join(c.ljust(w) if j in left else c.rjust(w)
                               for j, (c, w) in enumerate(zip(r, widths))).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    for lib in LIBS:
        err = results.get(lib, {}).get("error")
        if err:
            lines.append(f"{LIB_TITLES[lib]} column skipped: {err.strip()}")
    lines.append("")
    lines.append("Medians of the repetitions. 'ours vs Ray' is how many times faster "
                 "jupyter_actors is (Ray's time / ours, or our rate / Ray's).")
    lines.append("Array row: GB/s = (bytes sent + bytes received) / wall time of one "
                 "get(actor.echo.remote(array)), 1 GB = 1e9 bytes; measured the same way "
                 "for Ray and for the floor.")
    lines.append("Floor: a fresh Python process echoing pickled frames over a socketpair "
                 "(no runtime at all), except where noted in brackets.")
    lines.append("'ours vs floor': our rate as a share of the floor's (time: as a multiple); "
                 "for rows sampled turn about with ours, the median of the rounds' ratios.")
    return "\n".join(lines)


def compile_package() -> None:
    """Byte-compile jupyter_actors, as installing a package does, so that an editable
    install in an environment that writes no .pyc files (PYTHONDONTWRITEBYTECODE) is
    not timed compiling its modules at every start; Ray's were compiled by pip."""
    import compileall
    import importlib.util
    spec = importlib.util.find_spec("jupyter_actors")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            compileall.compile_dir(folder, quiet=1)


def versions(libs) -> dict:
    out = {}
    for lib, module in (("ours", "jupyter_actors"), ("ray", "ray"), ("numpy", "numpy")):
        if lib in ("ours", "ray") and lib not in libs:
            continue
        proc = subprocess.run([sys.executable, "-c",
                               f"import {module}; print(getattr({module}, '__version__', '?'))"],
                              capture_output=True, text=True)
        if proc.returncode == 0:
            out[module] = proc.stdout.strip()
    return out


def take_paired_floor(results: dict, paired: list) -> None:
    """Move the floor samples our column took turn about with ours ("floor:ROW") into
    the floor's column."""
    ours = (results.get("ours") or {}).get("rows")
    floor = results.get("floor")
    if ours is None or floor is None:
        return
    for row in paired:
        samples = ours.pop(f"floor:{row}", None)
        if samples is not None and "rows" in floor:
            floor["rows"][row] = samples
            floor.setdefault("paired", []).append(row)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and repetitions")
    parser.add_argument("--only", help="comma-separated rows: " + ",".join([*ROWS, *GROUPS]))
    parser.add_argument("--libs", default=",".join(LIBS),
                        help="comma-separated columns (ours, ray, floor)")
    parser.add_argument("--reps", type=int, help="repetitions per row (median reported)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--before", help="earlier runs to compare ours with: --json outputs "
                        "or bench/before.json (comma-separated)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per column")
    parser.add_argument("--column", help=argparse.SUPPRESS)
    parser.add_argument("--column-out", help=argparse.SUPPRESS)
    parser.add_argument("--column-config", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    chosen = list(ROWS) if not args.only else [r.strip() for r in args.only.split(",") if r]
    chosen = [name for r in chosen for name in GROUPS.get(r, [r])]
    unknown = [r for r in chosen if r not in ROWS]
    if unknown:
        parser.error(f"unknown row(s) {', '.join(unknown)}; choose from {', '.join(ROWS)}")
    rows = [r for r in ROWS if r in chosen]

    if args.column:  # inside a column's own interpreter
        data = run_column(args.column, rows, json.loads(args.column_config))
        with open(args.column_out, "w") as f:
            json.dump(data, f)
        return 0

    libs = [lib.strip() for lib in args.libs.split(",") if lib.strip()]
    for lib in libs:
        if lib not in LIBS:
            parser.error(f"unknown column {lib!r}; choose from {', '.join(LIBS)}")
    cfg = config(args.quick, args.reps)
    paired = [r for r in PAIRED if r in rows] if {"ours", "floor"} <= set(libs) else []
    compile_package()
    info = machine()
    info["loadavg_before"] = info["loadavg"]
    results = {}
    for lib in libs:
        print(f"running {LIB_TITLES[lib]} ...", file=sys.stderr, flush=True)
        t = time.perf_counter()
        if lib == "ours":
            pairing = {"paired": paired, "min_paired": MIN_PAIRED, "max_paired": MAX_PAIRED,
                       "paired_seconds": 0.0 if args.quick else PAIRED_SECONDS}
            res = spawn_column(lib, rows, {**cfg, **pairing}, args.timeout)
        elif lib == "floor":
            own = [r for r in rows if r not in paired]
            res = spawn_column(lib, own, cfg, args.timeout) if own else {"rows": {}}
        else:
            res = spawn_column(lib, rows, cfg, args.timeout)
        res["seconds"] = time.perf_counter() - t
        results[lib] = res
    take_paired_floor(results, paired)
    for res in results.values():
        if "rows" in res:
            res["rows"] = {k: summarize(v) for k, v in res["rows"].items()}
    info["loadavg"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    vers = versions(libs)
    print(render(results, rows, info, vers, load_before(args.before) if args.before else None))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "versions": vers, "config": cfg, "rows": rows,
                       "results": results, "floor_ratios": floor_ratios(results, rows)},
                      f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
