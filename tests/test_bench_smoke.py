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


def test_bench_takes_the_floor_of_cold_start_and_tasks_turn_about_with_ours(tmp_path):
    """With both columns asked for, the cold-start and task floors are sampled inside our
    column, one floor sample after each of ours, and shown in the floor's column."""
    out_json = tmp_path / "out.json"
    proc = run_bench("--reps", "2",
                     "--only", "cold,task_pipe,sync_threaded", "--libs", "ours,floor",
                     "--json", str(out_json))
    lines = {line.split("  ")[0]: line for line in proc.stdout.splitlines()}
    assert "turn about with ours" in lines["cold start: init + actor + 1st call"]
    assert "turn about with ours" in lines["remote tasks, pipelined x1000"]
    assert "turn about" not in lines["1:1 sync calls, threaded actor"]
    data = json.loads(out_json.read_text())
    floor, ours = data["results"]["floor"], data["results"]["ours"]
    assert sorted(floor["paired"]) == ["cold", "task_pipe"]
    # As many floor samples as ours; the paired rows take at least MIN_PAIRED of each.
    for row, count in (("cold", 5), ("task_pipe", 5), ("sync_threaded", 2)):
        assert len(floor["rows"][row]["samples"]) == len(ours["rows"][row]["samples"]) == count
    assert set(ours["rows"]) == {"cold", "task_pipe", "sync_threaded"}


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
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    try:
        import bench
    finally:
        sys.path.pop(0)
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
