"""The session's folder for shared-memory files, and the clean-up of abandoned ones."""
from __future__ import annotations

import os
import shutil
import tempfile

from ..._wire.payloads import session_dir_root, set_session_dir


def make_session_dir() -> str:
    """A fresh folder named after this driver's pid (so a later driver can tell it is abandoned)."""
    root = session_dir_root()
    sweep_abandoned_sessions(root)
    path = tempfile.mkdtemp(prefix=f"jupyter_actors-{os.getpid()}-", dir=root)
    set_session_dir(path)
    return path


def remove_session_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
    set_session_dir(None)


def sweep_abandoned_sessions(root: str) -> None:
    """Remove shared-memory folders of drivers that died without cleaning up.

    A driver killed with SIGKILL takes its workers with it (parent-death
    signal) before anyone can remove its folder; the folder name carries the
    driver's pid, so the next runtime on this machine removes it.
    """
    try:
        names = os.listdir(root)
    except OSError:
        return
    for name in names:
        parts = name.split("-")
        if len(parts) < 3 or parts[0] != "jupyter_actors" or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        try:
            os.kill(pid, 0)
            continue  # its driver still runs (or the pid was reused: leave it)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
        except OSError:
            continue  # another user's process: not ours to judge
