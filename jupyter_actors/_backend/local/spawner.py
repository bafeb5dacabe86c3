"""Starting worker processes: forked from a zygote, a few kept idle so an actor starts at once.

    caller threads                    spawner thread
    ──────────────                    ──────────────
    acquire(callback): an idle        a new socketpair; its worker end goes to the zygote
      worker now, or the next one ──▶ (zygote.py), which forks a worker on it (never a
      started                         fork of the driver, nothing listening); hand it to
                                      the oldest waiting callback, or keep it idle

The zygote starts with the runtime and is replaced when it dies. Where fork is
unavailable (or the zygote cannot start), each worker is a fresh interpreter:
``python -m jupyter_actors._worker FD PPID`` on an inherited socketpair.
"""
from __future__ import annotations

import collections
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from .connection import Connection
from .zygote import Zygote, fork_available

# A zygote that dies this many times in a row is given up for fresh interpreters.
ZYGOTE_ATTEMPTS = 3
# Spare workers are forked once the last worker handed out has had this long to start
# its actor: a fork and a worker's start compete with it for the CPU (at init, the
# first actor's worker and the two spares would start together). On a busy machine that
# start takes 100 ms and more; a caller that needs a worker meanwhile ends the wait.
SETTLE = 0.2


def worker_options() -> dict:
    """What every worker needs to import what the driver imports."""
    alias = sys.modules.get("jupyter_actors._ray_alias")
    return {"sys_path": [p for p in sys.path if p], "cwd": os.getcwd(),
            "alias_ray": bool(alias is not None and alias.is_active())}


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "is no longer reachable"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with code {returncode}"


def kill_process(conn: Connection) -> None:
    try:
        conn.proc.kill()
    except OSError:
        pass


class Spawner:
    """Starts workers on its own thread and keeps ``idle_target`` of them idle."""

    def __init__(self, session_dir: str, idle_target: int, preload: tuple = ()):
        self.io = None                 # the I/O loop, given by start()
        self.session_dir = session_dir
        self.idle_target = idle_target
        self.preload = list(preload)
        self.zygote = None
        self.zygote_failures = 0 if fork_available() else ZYGOTE_ATTEMPTS
        # Every forked worker holds the read end; the driver alone the write end,
        # so its end-of-file tells a worker that the driver is gone.
        self.lifeline_r, self.lifeline_w = os.pipe()
        self.lock = threading.Lock()
        self.stopping = False
        self.conns: set = set()        # every worker process not yet seen to exit
        self.idle: list = []
        self.waiting: collections.deque = collections.deque()
        self.spawning = 0
        self.handed_at = 0.0           # when a worker last went to an actor (see SETTLE)
        self._requests: collections.deque = collections.deque()
        self._cv = threading.Condition()
        self.first = None  # (zygote, driver's end) of the worker asked for below
        if self.zygote_failures < ZYGOTE_ATTEMPTS:
            # Started here, on the caller's thread, and asked for the first worker at
            # once: the zygote's start is most of the way to the first actor's first
            # answer, and it then forks without waiting for a thread of ours.
            try:
                env = self._worker_env()
                self.zygote = Zygote(env, self.lifeline_r, self.preload, self._zygote_lost)
            except OSError:
                self.zygote_failures = ZYGOTE_ATTEMPTS
            else:
                parent, child = socket.socketpair()
                try:
                    if self.zygote.request(child, env, os.getcwd()):
                        self.first = (self.zygote, parent)
                    else:
                        parent.close()
                finally:
                    child.close()
        self.thread = threading.Thread(target=self._loop, name="jupyter_actors-spawner",
                                       daemon=True)

    def start(self, io) -> None:
        """Hand started workers to ``io`` from now on; the idle pool fills."""
        self.io = io
        self.thread.start()
        with self.lock:
            self._request()

    def acquire(self, callback) -> None:
        """Hand a started worker to ``callback(conn)``: an idle one now, or the next one started.

        ``callback(None, error)`` when no worker can be had.
        """
        with self.lock:
            if self.stopping:
                conn = None
            elif self.idle:
                conn = self.idle.pop()
                self.handed_at = time.monotonic()
                self._request()  # keep the idle pool topped up
            else:
                self.waiting.append(callback)
                self._request()
                return
        if conn is None:
            callback(None, RuntimeError("the runtime was shut down"))
        else:
            callback(conn)

    def exited(self, conn: Connection) -> None:
        """A worker ended (I/O thread): an idle one is replaced."""
        with self.lock:
            self.conns.discard(conn)
            if conn in self.idle:
                self.idle.remove(conn)
                if not self.stopping:
                    self._request()

    def stop(self) -> tuple:
        """No more workers: (every live worker, the callbacks still waiting for one)."""
        with self.lock:
            self.stopping = True
            conns = list(self.conns)
            self.idle.clear()
            waiting = list(self.waiting)
            self.waiting.clear()
        return conns, waiting

    def join(self, timeout: float = 5) -> None:
        with self._cv:
            self._requests.append(None)
            self._cv.notify()
        if self.thread.ident is not None:   # started
            self.thread.join(timeout)
        first, self.first = self.first, None
        if first is not None:   # never taken: its worker (if forked) sees end-of-file
            first[1].close()
        zygote = self.zygote
        if zygote is not None:
            zygote.join(timeout)
        for fd in (self.lifeline_r, self.lifeline_w):
            os.close(fd)

    def _request(self) -> None:
        # Caller holds self.lock.
        needed = len(self.waiting) + self.idle_target - len(self.idle)
        while self.spawning < needed:
            self.spawning += 1
            with self._cv:
                self._requests.append(True)
                self._cv.notify()

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._requests:
                    self._cv.wait()
                request = self._requests.popleft()
            if request is None:
                return
            self._settle()
            if self.stopping:  # no worker is needed any more
                with self.lock:
                    self.spawning -= 1
                continue
            try:
                conn = self._start_worker()
                error = None
            except Exception as exc:  # e.g. the interpreter cannot start
                conn, error = None, exc
            with self.lock:
                self.spawning -= 1
                if self.stopping:
                    callback = None
                elif self.waiting:
                    callback = self.waiting.popleft()
                    self.handed_at = time.monotonic()
                else:
                    callback = None
                    if conn is not None:
                        self.idle.append(conn)
            if conn is not None and self.stopping:
                kill_process(conn)
            elif callback is not None:
                callback(conn, error) if conn is None else callback(conn)

    def _settle(self) -> None:
        """Before forking a spare worker: let the worker last handed out start first
        (SETTLE). A caller waiting for a worker (acquire notifies) or a stop ends the wait."""
        left = self.handed_at + SETTLE - time.monotonic()
        if left > 0:
            with self._cv:
                self._cv.wait_for(lambda: self.waiting or self.stopping, timeout=left)

    def _worker_env(self) -> dict:
        env = dict(os.environ)
        env["JUPYTER_ACTORS_SESSION_DIR"] = self.session_dir
        # A kernel's inline plotting backend means nothing in a worker.
        env.pop("MPLBACKEND", None)
        return env

    def _start_worker(self) -> Connection:
        proc, parent = self._fork()
        if proc is None:
            parent, child = socket.socketpair()
            try:
                proc = self._spawn(child)
            except BaseException:
                parent.close()
                raise
            finally:
                child.close()
        parent.setblocking(False)
        conn = Connection(self.io, proc, parent)
        if hasattr(os, "pidfd_open"):
            try:
                conn.pidfd = os.pidfd_open(proc.pid)
            except OSError:
                conn.pidfd = None
        with self.lock:
            self.conns.add(conn)
        self.io.call_soon(self.io.register, conn)
        return conn

    def _fork(self) -> tuple:
        """(a worker forked by the zygote, started or replaced as needed, and the driver's
        end of its socket), or (None, None): spawn one instead."""
        first, self.first = self.first, None
        if first is not None:   # asked for at init: its answer comes first
            zygote, parent = first
            proc = zygote.forked()
            if proc is not None:
                return proc, parent
            parent.close()
            self.zygote_failures += 1
        while self.zygote_failures < ZYGOTE_ATTEMPTS and not self.stopping:
            env = self._worker_env()
            zygote = self.zygote
            if zygote is None or not zygote.alive:
                try:
                    zygote = self.zygote = Zygote(env, self.lifeline_r, self.preload,
                                                  self._zygote_lost)
                except OSError:
                    self.zygote_failures = ZYGOTE_ATTEMPTS
                    break
            # A fresh socketpair for each attempt: a zygote given up on may still
            # fork a worker on the socket it was sent, which must then see EOF.
            parent, child = socket.socketpair()
            try:
                proc = zygote.fork(child, env, os.getcwd())
            finally:
                child.close()
            if proc is not None:
                self.zygote_failures = 0
                return proc, parent
            parent.close()
            self.zygote_failures += 1
        return None, None

    def _zygote_lost(self, zygote) -> None:
        """Idle workers of a zygote that ended could not report their exit: replace them."""
        with self.lock:
            stale = [c for c in self.idle if getattr(c.proc, "zygote", None) is zygote]
            for conn in stale:
                self.idle.remove(conn)
            if stale and not self.stopping:
                self._request()
        for conn in stale:
            kill_process(conn)

    def _spawn(self, child: socket.socket) -> subprocess.Popen:
        env = self._worker_env()
        return subprocess.Popen(
            [sys.executable, "-m", "jupyter_actors._worker", str(child.fileno()),
             str(os.getpid())],
            pass_fds=(child.fileno(),), env={**env, "JUPYTER_ACTORS_WORKER": "1"},
            stdin=subprocess.DEVNULL,
            cwd=os.getcwd(),
            # Its own process group: a kernel interrupt (SIGINT to the
            # kernel's group) must not kill a worker still starting up,
            # before it ignores SIGINT. EOF and the parent-death signal
            # still end it with the driver.
            start_new_session=True)
