"""breakpoint() and input() in actors of a script: asked on the driver's terminal, or skipped."""
from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import textwrap
import time

from tests.helpers import GUARD

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent("""\
    import jupyter_actors as ray

    @ray.remote
    class Counter:
        def __init__(self):
            self.n = 0

        def incr(self, by):
            total = self.n + by
            breakpoint()
            self.n = total
            return self.n

        def ask(self):
            return input("name? ")

    c = Counter.remote()
    print("got", ray.get(c.incr.remote(5)), ray.get(c.incr.remote(1)))
    try:
        print("asked", ray.get(c.ask.remote()))
    except EOFError as exc:
        print("no answer:", exc)
    """)


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    env.pop("PYTHONBREAKPOINT", None)
    return env


def test_a_script_on_a_terminal_gets_the_prompt(tmp_path):
    """pdb and input() of an actor read the driver's terminal (a pseudo-terminal here)."""
    script = tmp_path / "debug_me.py"
    script.write_text(SCRIPT)
    fd, terminal = pty.openpty()  # the script's stdin, stdout and stderr are this terminal
    proc = subprocess.Popen([sys.executable, str(script)], stdin=terminal, stdout=terminal,
                            stderr=terminal, cwd=str(tmp_path), env=_env(),
                            start_new_session=True)
    os.close(terminal)
    # (prompt seen, line typed), in order; then the script ends.
    dialogue = [("(Pdb) ", "p total"), ("(Pdb) ", "n"), ("(Pdb) ", "c"),
                ("(Pdb) ", "p total"), ("(Pdb) ", "c"), ("name? ", "Ada")]
    out = b""
    deadline = time.monotonic() + GUARD
    step = 0
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # the script ended
                    break
                if not chunk:
                    break
                out += chunk
            if step < len(dialogue) and out.endswith(dialogue[step][0].encode()):
                os.write(fd, dialogue[step][1].encode() + b"\n")
                out += b"<typed>"  # so that the same prompt is not answered twice
                step += 1
        else:
            proc.kill()
            raise AssertionError(f"the script did not end:\n{out.decode(errors='replace')}")
    finally:
        returncode = proc.wait(GUARD)
        os.close(fd)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.decode(errors="replace")).replace("\r", "")
    assert returncode == 0, text
    assert step == len(dialogue), text
    assert re.search(r"\(Counter pid=\d+\) \(Pdb\) <typed>p total\n\(Counter pid=\d+\) 5\n", text)
    # "n" went to the next line (pdb stops at the breakpoint() line itself from 3.13 on).
    assert ("-> self.n = total" if sys.version_info >= (3, 13) else "-> return self.n") in text
    assert "got 5 6" in text
    assert "asked Ada" in text


def test_a_script_without_a_terminal_goes_on(tmp_path):
    """No terminal: breakpoint() is skipped with one notice, input() raises EOFError."""
    script = tmp_path / "debug_me.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=GUARD, env=_env(),
                          cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "got 5 6" in done.stdout
    assert "no answer: input(): nobody can answer here" in done.stdout
    assert done.stderr.count("breakpoint() in Counter.incr was skipped") == 1, done.stderr
