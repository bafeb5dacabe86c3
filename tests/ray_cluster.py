"""A Ray head node started for the tests as a user would (``ray start --head``), and stopped.

The node runs in its own temporary folder, so it is found, joined and stopped
by that folder alone: other Ray clusters on the machine are never touched (no
``ray stop``, which ends every cluster of the user).
"""
from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import psutil

START_GUARD = 420.0   # a head node starts in 5-30 s; minutes on a machine shared and overloaded
START_ATTEMPTS = 3    # starts of a head node whose raylet gave up starting


_PORTS = ("dashboard-agent-listen-port", "dashboard-agent-grpc-port", "metrics-export-port",
          "runtime-env-agent-port", "node-manager-port",
          "object-manager-port", "dashboard-port")


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list:
    """``count`` different free ports (held open together, so none is given twice)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class HeadNode:
    """``ray start --head --block`` on a free port; ``address`` is what init() joins."""

    def __init__(self, num_cpus: int = 2, client_server: bool = False):
        # Ray Client's server (ray://), for the modules that test it.
        self.client_server = client_server
        for attempt in range(START_ATTEMPTS):
            if self._start(num_cpus, last=attempt == START_ATTEMPTS - 1):
                return

    def _start(self, num_cpus: int, last: bool) -> bool:
        """Start the node; False when it gave up starting (its raylet's agents came too late
        on a busy machine, or a port was taken meanwhile) and was stopped, to start again."""
        self.port, client_port, *ports = free_ports(2 + len(_PORTS))
        self.address = f"127.0.0.1:{self.port}"
        client_port = client_port if self.client_server else None
        self.client_address = f"ray://127.0.0.1:{client_port}" if client_port else None
        self.temp_dir = tempfile.mkdtemp(prefix="jar", dir="/tmp")  # short: socket paths
        ray_cli = os.path.join(os.path.dirname(sys.executable), "ray")
        env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0",
                   RAY_raylet_start_wait_time_s="400")  # a busy machine starts slowly
        env.pop("RAY_ADDRESS", None)
        self.output: list = []
        self.process = subprocess.Popen(
            [ray_cli, "start", "--head", "--block", f"--port={self.port}",
             f"--num-cpus={num_cpus}", "--include-dashboard=false", "--disable-usage-stats",
             f"--temp-dir={self.temp_dir}", "--node-ip-address=127.0.0.1",
             # Ports of its own: other Ray clusters on this machine take Ray's defaults.
             *[f"--{name}={port}" for name, port in zip(_PORTS, ports)],
             *([f"--ray-client-server-port={client_port}"] if client_port else [])],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
            start_new_session=True)
        started = threading.Event()
        threading.Thread(target=self._drain, args=(started,), daemon=True).start()
        try:
            deadline = time.monotonic() + START_GUARD
            while not started.wait(1.0) and time.monotonic() < deadline:
                if not last and self._raylet_gave_up():
                    self.stop()
                    return False
            if not any("Ray runtime started" in line for line in self.output):
                if not last and self.process.poll() is not None:   # e.g. a port taken meanwhile
                    self.stop()
                    return False
                raise RuntimeError("ray start --head did not start:\n"
                                   + "".join(self.output[-40:]))
        except BaseException:   # a test timeout too: leave nothing running
            self.stop()
            raise
        return True

    def _raylet_gave_up(self) -> bool:
        """Whether the node's raylet ended on a failed check while starting (Ray's
        ``ray start`` then waits for it until its own start-up timeout)."""
        for path in glob.glob(os.path.join(self.temp_dir, "session_*", "logs", "raylet.out")):
            try:
                with open(path, errors="replace") as log:
                    if "Check failed" in log.read():
                        return True
            except OSError:
                continue
        return False

    def _drain(self, started: threading.Event) -> None:
        for line in self.process.stdout:
            self.output.append(line)
            if "Ray runtime started" in line:
                started.set()
        started.set()

    def processes(self) -> list:
        """Every process of this node (found by its temporary folder), never this one."""
        found = []
        for proc in psutil.process_iter(["pid", "cmdline"]):
            try:
                if proc.pid != os.getpid() and self.temp_dir in " ".join(proc.info["cmdline"] or ()):
                    found.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return found

    def stop(self) -> None:
        """End the node and every process it started; nothing is left behind."""
        procs = self.processes()
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for proc in procs:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        self.process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while self.processes() and time.monotonic() < deadline:
            for proc in self.processes():
                try:
                    proc.kill()
                except psutil.NoSuchProcess:
                    pass
            time.sleep(0.1)
        left = self.processes()
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        assert not left, f"processes of the head node left behind: {[p.pid for p in left]}"
