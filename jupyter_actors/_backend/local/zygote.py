"""The driver's end of the zygote (``_worker/zygote.py``): start it, ask it for workers,
learn how each of them ended.

    spawner thread                    zygote-reader thread (one per zygote)
    ──────────────                    ─────────────────────────────────────
    fork(sock, env, cwd): send the    ("ready", failed) → warn of a preload that failed
      worker's end of a socketpair    ("forked", pid)   → a ForkedProcess to fork()
      (SCM_RIGHTS); wait for its pid  ("exited", pid, code) → that process's wait() returns
                                      end-of-file: the zygote is gone; every process it
                                      forked reports "unknown", fork() returns None
"""
from __future__ import annotations

import glob
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import warnings

from ..._wire.control import recv_frame, send_frame

# How long a fork may take before the zygote is deemed stuck (it then is replaced).
FORK_TIMEOUT = 30.0


# Our own modules' bytecode is cached whatever PYTHONDONTWRITEBYTECODE says (as a pip
# install caches it): compiling them again at every start would cost the zygote about
# as much as importing them. The user's setting (Setup) holds for everything else.
# The cyclic collector is off while they are imported (serve() turns it on): imports
# make little cyclic garbage, and its passes over each new object cost more than that.
ZYGOTE_MAIN = ("import gc, sys; gc.disable(); sys.dont_write_bytecode = False; "
               "from jupyter_actors._worker.__main__ import main; main()")


def fork_available() -> bool:
    """Whether workers can be forked from a zygote here (else each is a fresh interpreter)."""
    if os.environ.get("JUPYTER_ACTORS_START_METHOD") == "spawn":
        return False
    return hasattr(os, "fork") and hasattr(socket, "send_fds") and sys.platform != "win32"


def start_options(env: dict) -> tuple:
    """The zygote's command line, environment, and what it replays of ``site``.

    Where ``site`` did nothing for the driver that its sys.path does not carry
    (see ``site_replay``), the zygote starts with ``python -S`` and that sys.path:
    ``site`` is about a third of an interpreter's start.
    """
    env = {**env, "JUPYTER_ACTORS_WORKER": "1"}
    # -c, not -m: runpy and what it imports are no part of a worker.
    command = [sys.executable, "-c", ZYGOTE_MAIN]
    replay = site_replay()
    if replay is not None:
        package_parent = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.dirname(os.path.abspath(__file__)))))
        env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p] + [package_parent])
        command.insert(1, "-S")
    return command, env, replay or []


def site_replay() -> list | None:
    """What a zygote started without ``site`` must do itself ([] for nothing more than
    the driver's sys.path), or None where it needs ``site`` after all.

    ``site`` adds the paths of ``.pth`` files (the driver's sys.path has them) and
    runs their ``import`` lines, ``sitecustomize`` and ``usercustomize``. The lines
    known here: this package's editable-install finder (not needed: the zygote
    gets the package's folder), setuptools' distutils shim (replayed), and
    coverage's subprocess hook (idle unless its variables are set).
    """
    if sys.flags.no_site:
        return []
    if "sitecustomize" in sys.modules or "usercustomize" in sys.modules:
        return None
    try:
        import site
        folders = site.getsitepackages()
        if site.ENABLE_USER_SITE:
            folders.append(site.getusersitepackages())
    except Exception:
        return None
    replay = []
    for folder in folders:
        for path in sorted(glob.glob(os.path.join(glob.escape(folder), "*.pth"))):
            try:
                with open(path, encoding="utf-8") as f:
                    lines = [line.strip() for line in f]
            except (OSError, UnicodeDecodeError):
                return None
            for line in lines:
                if not line.startswith(("import ", "import\t")):
                    continue  # a path (already in sys.path) or a comment
                if "__editable___jupyter_actors_" in line:
                    continue
                if "_distutils_hack" in line:
                    if any(type(f).__module__ == "_distutils_hack" for f in sys.meta_path):
                        replay.append("distutils")
                    continue
                if "COVERAGE_PROCESS_START" in line and not (
                        os.environ.get("COVERAGE_PROCESS_START")
                        or os.environ.get("COVERAGE_PROCESS_CONFIG")):
                    continue
                return None
    return replay


class ForkedProcess:
    """What a Connection needs of a worker the zygote forked: ``pid``, ``kill``, ``wait``."""

    def __init__(self, pid: int, zygote):
        self.pid = pid
        self.zygote = zygote
        self.returncode = None
        self._ended = threading.Event()

    def kill(self) -> None:
        # Once the zygote reported the exit, the pid may belong to someone else.
        if self._ended.is_set():
            return
        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass

    def wait(self, timeout: float | None = None):
        """The exit code (negative: the signal), or None when the zygote could not tell."""
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout)
        return self.returncode

    def ended(self, returncode) -> None:
        self.returncode = returncode
        self._ended.set()


class Zygote:
    """One zygote process and the thread that reads its reports."""

    def __init__(self, env: dict, lifeline_fd: int, preload: list, on_lost=None):
        control, theirs = socket.socketpair()
        # Only worker code is imported there (not the driver's runtime).
        command, env, replay = start_options(env)
        try:
            self.proc = subprocess.Popen(
                command + ["zygote", str(theirs.fileno()), str(lifeline_fd), str(os.getpid())],
                pass_fds=(theirs.fileno(), lifeline_fd), env=env, stdin=subprocess.DEVNULL,
                cwd=os.getcwd(), start_new_session=True)
        except BaseException:
            control.close()
            raise
        finally:
            theirs.close()
        self.control = control
        self.on_lost = on_lost            # on_lost(zygote): it ended (killed, or stopped)
        self.alive = True
        self.children: dict = {}          # pid -> ForkedProcess not yet seen to exit
        self.lock = threading.Lock()
        self._forked: queue.SimpleQueue = queue.SimpleQueue()
        send_frame(control, ([p for p in sys.path if p], list(preload), replay,
                             sys.dont_write_bytecode))
        self.reader = threading.Thread(target=self._read, name="jupyter_actors-zygote",
                                       daemon=True)
        self.reader.start()

    def fork(self, sock: socket.socket, env: dict, cwd: str) -> ForkedProcess | None:
        """A worker running on ``sock`` (the zygote gets a copy); None if the zygote is gone."""
        return self.forked() if self.request(sock, env, cwd) else None

    def request(self, sock: socket.socket, env: dict, cwd: str) -> bool:
        """Ask for a worker on ``sock`` without waiting (``forked()`` answers, in order);
        False if the zygote is gone."""
        try:
            send_frame(self.control, (env, cwd), fds=(sock.fileno(),))
        except OSError:
            self.stop()
            return False
        return True

    def forked(self) -> ForkedProcess | None:
        """The worker of the oldest request not yet answered; None if the zygote is gone."""
        try:
            proc = self._forked.get(timeout=FORK_TIMEOUT)
        except queue.Empty:
            proc = None
        if proc is None:
            self.stop()
        return proc

    def stop(self) -> None:
        """End the zygote (closing its socket is enough); its workers live on."""
        self.alive = False
        try:
            self.control.shutdown(socket.SHUT_RDWR)  # wakes the reader
        except OSError:
            pass

    def join(self, timeout: float = 5) -> None:
        self.stop()
        self.reader.join(timeout)

    def _read(self) -> None:
        while True:
            try:
                report, _ = recv_frame(self.control)
            except (OSError, ValueError, EOFError):
                report = None
            if report is None:
                break
            kind = report[0]
            if kind == "forked":
                pid = report[1]
                proc = ForkedProcess(pid, self) if pid > 0 else None
                if proc is not None:
                    with self.lock:
                        self.children[pid] = proc
                self._forked.put(proc)
            elif kind == "exited":
                with self.lock:
                    proc = self.children.pop(report[1], None)
                if proc is not None:
                    proc.ended(report[2])
            elif kind == "ready" and report[1]:
                warnings.warn("jupyter_actors: preload failed in the worker template: "
                              + "; ".join(report[1]), RuntimeWarning, stacklevel=1)
        self.alive = False
        self._forked.put(None)
        with self.lock:
            orphans, self.children = list(self.children.values()), {}
        for proc in orphans:
            proc.ended(None)
        if self.on_lost is not None:
            self.on_lost(self)
        self.control.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
