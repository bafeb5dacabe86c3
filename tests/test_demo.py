"""The README's main job: `python -m jupyter_actors demo` shows the seed's interleavings."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.helpers import GUARD


def test_demo_prints_the_seed_interleavings():
    out = subprocess.run([sys.executable, "-m", "jupyter_actors", "demo"], capture_output=True,
                         text=True, timeout=4 * GUARD, check=True,
                         cwd=os.path.dirname(os.path.dirname(__file__))).stdout
    words = [re.sub(r"^\(AsyncActor pid=\d+\) ", "", line) for line in out.splitlines()
             if line.startswith("(AsyncActor pid=")]
    assert words[:20] == (["started"] * 4 + ["finished"] * 4     # 4 x run_concurrent
                          + ["started", "finished"]               # asyncio.run(async_get())
                          + ["started"] * 5 + ["ended"] * 5)      # five at once
    # max_concurrency=2: eight calls of `await asyncio.sleep(1)`, never more than two at
    # once. (Mostly in pairs, as in the seed text, but a call may start as soon as one
    # ends, before its partner's timer comes due, as on Ray.)
    pairs = words[20:]
    assert sorted(pairs) == ["ended"] * 8 + ["started"] * 8
    running = [pairs[:i + 1].count("started") - pairs[:i + 1].count("ended")
               for i in range(len(pairs))]
    assert max(running) == 2 and min(running) >= 0 and running[-1] == 0
    walls = {m.group(1): float(m.group(2)) for m in re.finditer(r"-- (.+?): ([\d.]+) s wall", out)}
    # Loose bounds only: the figures are for the reader; the order above is the requirement.
    assert 1.9 < walls["8 calls, max_concurrency=2"] < 3 * 4.0
    assert "ValueError: 'async def' should not be used for remote tasks" in out
    assert "I'm running in a thread!" in out and "I'm running in another thread!" in out
    assert "wrapper: ran inside asyncio.run" in out
