"""The zygote: a fresh, single-threaded interpreter that has imported the worker's code and
forks a worker for each request (as multiprocessing's forkserver does).

    driver (_backend/local/zygote.py)           zygote (this module, one thread)
    ─────────────────────────────────           ────────────────────────────────
    Setup(sys_path, preload, replay,  ─────▶    import them, freeze the heap, ("ready",);
      no_bytecode)
                                                 then, while no fork is asked for, import
                                                 what many workers share (LATER)
    Fork(env, cwd) + the worker's end of a ──▶  fork: the child closes the zygote's fds,
      fresh socketpair (SCM_RIGHTS)              starts its own session, runs the worker
    ◀── ("forked", pid)                          on the received socket
    ◀── ("exited", pid, returncode)             SIGCHLD: reap every child, report its status
    EOF (the driver closed or died) ──────▶    exit (and the parent-death signal on Linux)

A forked worker is not the driver's child, so the zygote reports each exit
status (signals included) for the driver's ActorDiedError. Workers do not die
with the zygote: a killed zygote is replaced and its workers keep serving.
They end with the driver through the lifeline, a pipe whose only write end the
driver holds: a thread in each worker waits for its end-of-file.

The first worker is forked as soon as the worker's own code is in: the
rest of the API and asyncio load afterwards, between requests, so a cold
start waits for no more than one worker needs (a worker forked before they
are in imports what it uses itself).

Frames both ways: ``_wire/control.py``.
"""
from __future__ import annotations

import gc
import os
import selectors
import signal
import socket
import sys
import threading

from .._wire.control import recv_frame, send_frame

# Imported after "ready", one at a time while no fork is asked for: what async actors,
# generators and calls made inside workers need, shared by every worker forked later.
LATER = ("asyncio", "concurrent.futures", "jupyter_actors._worker.async_executor",
         "jupyter_actors._worker.reading_pool",
         "jupyter_actors._api.generators", "jupyter_actors._api.actors",
         "jupyter_actors._api.ops", "jupyter_actors._api.functions",
         "jupyter_actors._api.remote", "jupyter_actors._api.startup",
         "jupyter_actors.runtime_context", "jupyter_actors.tracing")
# How long the zygote must have had no request before it imports the next of LATER:
# a burst of forks (the first actor, the idle pool) goes first, and so does the start of
# the workers just forked, which these imports would compete with for the CPU (on a
# busy machine a worker's start to its first answer can take 100 ms and more).
IDLE_BEFORE_LATER = 0.2


def serve(control_fd: int, lifeline_fd: int, driver_pid: int, run_worker,
          die_with_parent) -> None:
    """The zygote's main loop (``_worker/__main__.py``'s ``main``); each child runs
    ``run_worker(fd, driver_pid, lifeline_fd)``.

    ``die_with_parent(driver_pid)`` (the parent-death signal; its ``ctypes`` import
    costs as much as a fork) is asked for before the user's preloads, or else at the
    first pause in requests, when the first workers are forked and started; until
    then the driver's end of ``control`` closing ends the zygote (its next read sees
    end-of-file).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    control = socket.socket(fileno=control_fd)
    setup, _ = recv_frame(control)
    if setup is None:
        os._exit(0)
    sys_path, preload, replay, no_bytecode = setup
    if sys.path and sys.path[0] == "":   # started with -c: the folder it started in, as -m
        sys.path[0] = os.getcwd()         # would put there (a worker may chdir)
    for path in reversed(sys_path):
        if path not in sys.path:
            sys.path.insert(0, path)
    if sys.flags.no_site:
        sys.path[:] = dict.fromkeys(sys.path)   # the driver's path came in PYTHONPATH too
        _replay_site(replay)
    failed = _preload(["jupyter_actors._worker.__main__", "cloudpickle"])
    gc.enable()   # off while ours were imported (ZYGOTE_MAIN)
    guarded = bool(preload)
    if guarded:   # the user's modules may take long to import: not without the guard
        die_with_parent(driver_pid)
        sys.dont_write_bytecode = no_bytecode   # the user's setting for the user's modules
        failed += _preload(preload)
        sys.dont_write_bytecode = False
    # Forked children share the zygote's heap until they write to it: keep the
    # collector from touching (and so copying) every inherited object.
    gc.freeze()
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    wake_w.setblocking(False)
    signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    _tell(control, ("ready", failed))
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ, "control")
    selector.register(wake_r, selectors.EVENT_READ, "child")
    zygote_fds = (control, wake_r, wake_w)
    later = list(LATER)
    while True:
        events = selector.select(IDLE_BEFORE_LATER if later else None)
        if not events:
            if not guarded:   # the first pause: the first workers are started
                guarded = True
                die_with_parent(driver_pid)
                continue
            _preload([later.pop(0)])
            if not later:
                gc.freeze()
            continue
        for key, _ in events:
            if key.data == "child":
                try:
                    while wake_r.recv(4096):
                        pass
                except OSError:
                    pass
                _reap(control)
                continue
            request, fds = recv_frame(control, want_fds=True)
            if request is None:
                os._exit(0)
            if not fds:
                continue
            env, cwd = request
            pid = _fork_worker(run_worker, fds[0], lifeline_fd, driver_pid, env, cwd,
                               zygote_fds, selector, no_bytecode)
            os.close(fds[0])
            for extra in fds[1:]:
                os.close(extra)
            _tell(control, ("forked", pid))
        _reap(control)


def _replay_site(replay: list) -> None:
    """Started with ``python -S`` (the driver's sys.path instead of ``site``): what else of
    ``site`` a worker may meet (see ``local/zygote.py``'s ``site_replay``)."""
    import site
    site.setquit()       # exit() and quit()
    site.setcopyright()
    site.sethelper()     # help()
    if "distutils" in replay:
        try:
            import _distutils_hack
            _distutils_hack.add_shim()
        except Exception:
            pass


def _preload(names: list) -> list:
    """Import what workers should share (ours, and the user's ``preload``); what failed."""
    failed = []
    for name in names:
        try:
            __import__(name)
        except BaseException as exc:  # a bad preload must not keep workers from starting
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
    return failed


def _tell(control: socket.socket, message) -> None:
    """Send the driver a message; a driver that is gone (it exited right after ``init``,
    or was killed) ends the zygote quietly, as end-of-file on ``control`` would."""
    try:
        send_frame(control, message)
    except OSError:  # BrokenPipeError, ConnectionResetError
        os._exit(0)


def _reap(control: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _tell(control, ("exited", pid, os.waitstatus_to_exitcode(status)))


def _fork_worker(run_worker, fd, lifeline_fd, driver_pid, env, cwd, zygote_fds, selector,
                 no_bytecode) -> int:
    if threading.active_count() != 1:  # never fork a process with threads
        return -1
    pid = os.fork()
    if pid:
        return pid
    try:
        selector.close()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for sock in zygote_fds:
            sock.close()
        os.setsid()  # its own session: a kernel's Ctrl-C is the driver's to handle
        sys.dont_write_bytecode = no_bytecode
        os.environ.clear()
        os.environ.update(env)
        if cwd and os.path.isdir(cwd):
            os.chdir(cwd)
        sys.argv[1:] = [str(fd), str(driver_pid)]
        run_worker(fd, driver_pid, lifeline_fd)
    finally:
        os._exit(1)
