"""The benchmark runs: its jupyter_actors column prints the table (no timing is checked)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.helpers import GUARD

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_bench(*args: str) -> subprocess.CompletedProcess:
    """bench/bench.py --quick with these arguments, in a fresh interpreter; it must succeed."""
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "bench.py"), "--quick", *args],
        capture_output=True, text=True, timeout=4 * GUARD, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_bench_quick_prints_the_table(tmp_path):
    """`bench/bench.py --quick --only ...` with our column alone prints every chosen row."""
    out_json = tmp_path / "out.json"
    proc = run_bench("--reps", "1",
                     "--only", "init,sync_threaded,pipe_async", "--libs", "ours",
                     "--json", str(out_json))
    out = proc.stdout
    assert "machine:" in out and "jupyter_actors" in out
    for label in ("init()", "1:1 sync calls, threaded actor", "pipelined x1000, async actor"):
        assert label in out
    assert "column skipped" not in out
    data = json.loads(out_json.read_text())
    rows = data["results"]["ours"]["rows"]
    assert set(rows) == {"init", "sync_threaded", "pipe_async"}
    assert all(r["median"] > 0 for r in rows.values())


def _bench_module():
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    try:
        import bench
        import _workloads
    finally:
        sys.path.pop(0)
    return bench, _workloads


def test_bench_takes_the_floor_of_the_paired_rows_turn_about_with_ours(tmp_path):
    """With both columns asked for, the floor of the cold start, the call-rate rows and the
    tasks is sampled inside our column, turn about with ours, and shown in the floor's
    column with our figure as a share of it; rows not paired keep the floor's own column."""
    bench, _ = _bench_module()
    out_json = tmp_path / "out.json"
    paired = ["cold", "sync_threaded", "pipe_async", "task_pipe", "await_one", "await_gather",
              "sleep", "bar_ray"]
    proc = run_bench("--reps", "2", "--only", ",".join([*paired, "array"]),
                     "--libs", "ours,floor", "--json", str(out_json))
    lines = {line.split("  ")[0]: line for line in proc.stdout.splitlines()}
    for label in ("cold start: init + actor + 1st call", "1:1 sync calls, threaded actor",
                  "pipelined x1000, async actor", "remote tasks, pipelined x1000",
                  "await ref, one by one", "asyncio.gather of 1000 refs",
                  "1000 x await sleep(0.05), 1 actor",
                  "1,000,000 tqdm_ray update() in an actor"):
        assert "turn about with ours" in lines[label]
    assert "of floor (>=0.33: " in lines["1:1 sync calls, threaded actor"]
    assert "x floor" in lines["1000 x await sleep(0.05), 1 actor"]
    assert "turn about" not in lines["100 MiB numpy round trip"]
    data = json.loads(out_json.read_text())
    floor, ours = data["results"]["floor"], data["results"]["ours"]
    assert sorted(floor["paired"]) == sorted(paired)
    # As many floor samples as ours, MIN_PAIRED to MAX_PAIRED of each; the floor's own
    # column ran only the row that is not paired.
    for row in paired:
        count = len(ours["rows"][row]["samples"])
        assert len(floor["rows"][row]["samples"]) == count
        assert bench.MIN_PAIRED <= count <= bench.MAX_PAIRED
        assert floor["rows"][row]["median"] > 0
        assert data["floor_ratios"][row] > 0
    assert len(floor["rows"]["array"]["samples"]) == len(ours["rows"]["array"]["samples"]) == 2
    assert set(ours["rows"]) == {*paired, "array"}


def test_bench_floor_alone_samples_the_rate_rows_in_its_own_column(tmp_path):
    """`--libs floor` alone still runs the echo, asyncio and task floors by itself."""
    out_json = tmp_path / "out.json"
    proc = run_bench("--reps", "2", "--only", "sync_mc16,pipe_threaded,await_one,sleep",
                     "--libs", "floor", "--json", str(out_json))
    assert "turn about with ours)" not in proc.stdout and "column skipped" not in proc.stdout
    floor = json.loads(out_json.read_text())["results"]["floor"]
    assert "paired" not in floor
    assert set(floor["rows"]) == {"sync_mc16", "pipe_threaded", "await_one", "sleep"}
    assert all(len(r["samples"]) == 2 and r["median"] > 0 for r in floor["rows"].values())


def test_turn_about_alternates_which_goes_first():
    """After a warm-up of each, ours and the floor take turns going first."""
    _, workloads = _bench_module()
    order = []

    def sampler(name):
        def sample():
            order.append(name)
            return len(order)
        return sample

    ours, floor = workloads.turn_about(sampler("ours"), sampler("floor"), 4)
    assert order == ["ours", "floor",                        # the warm-ups, dropped
                     "ours", "floor", "floor", "ours", "ours", "floor", "floor", "ours"]
    assert ours == [3, 6, 7, 10] and floor == [4, 5, 8, 9]
    # Brief samples go on, up to ``most`` rounds, until the rounds took ``seconds``.
    assert len(workloads.turn_about(sampler("ours"), sampler("floor"), 3, 9, 3600)[1]) == 9
    assert len(workloads.turn_about(sampler("ours"), sampler("floor"), 3, 9, 0.0)[1]) == 3


def test_the_ratio_to_the_floor_of_a_paired_row_is_the_median_of_its_rounds():
    """Each round's two samples ran under the same load: their ratios are compared."""
    bench, _ = _bench_module()
    # The machine got 4x faster during the third round, between its two samples: the
    # medians fall on either side of the change, the rounds' ratios do not.
    ours = {"median": 1, "samples": [1, 1, 1, 4, 4]}
    floor = {"median": 16, "samples": [4, 4, 16, 16, 16]}
    assert bench.floor_ratio(ours, floor, paired=True) == 0.25
    assert bench.floor_ratio(ours, floor, paired=False) == 1 / 16
    assert bench.floor_cell("sync_threaded", 0.25, True) == "0.25 of floor (>=0.33: NOT MET)"
    assert bench.floor_cell("sleep", 1.2, False) == "1.20x floor"


def test_bench_before_compares_ours_with_earlier_runs(tmp_path):
    """--before puts our earlier figures beside ours and says whether ours beat them all."""
    before = tmp_path / "before.json"
    before.write_text(json.dumps({"runs": [
        {"label": "slow", "rows": {"init": 100.0, "sync_threaded": 1e9}},
        {"label": "slower", "rows": {"init": 200.0, "sync_threaded": 2e9}}]}))
    proc = run_bench("--reps", "1",
                     "--only", "init,sync_threaded", "--libs", "ours", "--before", str(before))
    lines = {line.split("  ")[0]: line for line in proc.stdout.splitlines()}
    assert "ours before (slow / slower)" in proc.stdout
    assert lines["init()"].rstrip().endswith("better")        # ours: far below 100 s
    assert lines["1:1 sync calls, threaded actor"].rstrip().endswith("WORSE")


def test_bench_before_compares_the_cold_start_as_a_multiple_of_its_floor():
    """A cold start slower in ms but nearer its floor than before is not called worse."""
    bench, _ = _bench_module()
    before = [("busy", {"cold": 0.050}, {"cold": 0.025}), ("quiet", {"cold": 0.040}, {})]
    # 60 ms at a 50 ms floor (1.2x) beats 2x; against the run without a floor, 60 > 40 ms.
    assert bench.before_cells("cold", 0.060, before, "ms", False, 0.050)[1].startswith("within")
    assert bench.before_cells("cold", 0.030, before, "ms", False, 0.050)[1].startswith("better")
    assert bench.before_cells("cold", 0.060, before[:1], "ms", False, 0.020)[1].startswith("WORSE")


def test_trace_overhead_prints_the_cost_of_every_row_and_mode():
    """`bench/trace_overhead.py`, tiny: a cost in % and ns per row for "on" and "on+widget"
    against "off", and the hooks alone (no timing is checked)."""
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "trace_overhead.py"), "--rounds", "2",
         "--sync", "20", "--pipe", "50", "--pipe-batches", "1", "--fill", "0", "--widget"],
        capture_output=True, text=True, timeout=4 * GUARD, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    head = next(line for line in lines if line.startswith("row"))
    assert "on wall" in head and "on+widget CPU" in head
    for row in ("sync_threaded", "sync_async", "pipe_threaded", "pipe_async"):
        (line,) = [line for line in lines if line.startswith(row + " ")]
        assert line.count("%") == 4 and line.count("ns") == 4
    assert "the hooks alone:" in proc.stdout
