"""Workers' ``breakpoint()`` and ``input()``, asked through the kernel's input requests.

    a prompt thread (driver)                      the frontend
    ────────────────────────                      ────────────
    wait until a cell runs (an idle kernel's
      frontend would drop the request)
    flush the cell's output, then send
      input_request with the running cell's  ──▶  an input box under that cell
      parent, on the stdin channel
    poll for input_reply (an interrupt of   ◀──   the line typed
      the cell ends the wait)

This is what ipykernel's own ``raw_input`` does, written out so that it can
run in a thread other than the cell's and be ended by an interrupt (the
kernel's version only notices ``KeyboardInterrupt`` in the main thread).
Whether the frontend answers input requests at all is the running request's
``allow_stdin`` (False under nbconvert, nbclient and nbval).
"""
from __future__ import annotations

import threading

from .. import _prompting

_cell_running = threading.Event()
# One ask at a time uses the kernel's stdin socket: an ask whose worker died may still
# be polling it, and must not take the line typed for the next one.
_socket_turn = threading.Lock()


def cell_started() -> None:
    _cell_running.set()


def cell_ended() -> None:
    _cell_running.clear()


def kernel():
    """The running ipykernel, or None (terminal IPython, a plain script)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    found = getattr(shell, "kernel", None)
    if found is None or getattr(found, "stdin_socket", None) is None:
        return None
    return found


def can_ask(found) -> bool:
    return bool(getattr(found, "_allow_stdin", False))


def ask(found, prompt: str, password: bool, streams=(), cancel=None) -> str:
    """Send an input request for the running cell and wait for the line typed."""
    token = _prompting.start(cancel)
    while not _cell_running.wait(0.1):
        _prompting.check(token)
    if not can_ask(found):
        raise EOFError("the running cell's frontend does not answer input requests")
    while not _socket_turn.acquire(timeout=0.1):
        _prompting.check(token)
    try:
        return _request_line(found, prompt, password, streams, token)
    finally:
        _socket_turn.release()


def _request_line(found, prompt: str, password: bool, streams, token) -> str:
    import zmq

    for stream in streams:
        try:
            stream.flush()  # the lines before the prompt (pdb's "> file(line)") first
        except Exception:
            pass
    session, socket = found.session, found.stdin_socket
    while True:  # drop stale replies, as ipykernel does
        try:
            socket.recv_multipart(zmq.NOBLOCK)
        except zmq.ZMQError:
            break
    parent = found.get_parent("shell")
    ident = found._parent_ident["shell"]
    session.send(socket, "input_request", {"prompt": prompt, "password": password},
                 parent, ident=ident)
    while True:
        _prompting.check(token)
        if socket.poll(100):
            _ident, reply = session.recv(socket)
            if reply is not None:
                break
    value = reply.get("content", {}).get("value", "")
    if value == "\x04":
        raise EOFError("end of input")
    return value
