"""The one thread that changes live widgets' state.

    caller / I/O threads             owner thread (this module), ≤ 10 Hz
    ────────────────────             ──────────────────────────────────────
    tracer listener: append the ──▶  drain the records, feed every client's
    record to a deque (no lock,      model, run queued commands, then let
    nothing else)                    each client send what changed
    other threads: call(fn) ──────▶  (comm messages from this thread reach the
                                     browser even while a cell blocks in get)

ipywidgets state is not thread-safe, so every trait change of a live widget
happens here; other threads hand work over with ``call``. The thread runs only
while some client is registered, and the tracer calls the listener only then.
"""
from __future__ import annotations

import collections
import threading
import time

from .._trace import tracer

INTERVAL = 0.1  # seconds between two sends: at most 10 updates a second
CHUNK = 256     # records fed at a time before giving other threads the GIL


class Pump:
    def __init__(self):
        self._records: collections.deque = collections.deque()
        self._commands: collections.deque = collections.deque()
        self._clients: list = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_send = 0.0
        self._listener = self._listen  # one bound method, so that removing it finds it

    # -- the tracer's side: must stay tiny -----------------------------------------
    def _listen(self, _event, record) -> None:
        self._records.append(record)

    # -- registration ------------------------------------------------------------------
    def add(self, client) -> None:
        """Start feeding ``client`` (``_ingest(records)``, ``_publish(now, force)``)."""
        with self._lock:
            if client in self._clients:
                return
            self._clients.append(client)
            if len(self._clients) == 1:
                tracer.add_listener(self._listener)
            self._ensure_thread()

    def remove(self, client) -> None:
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)
            if not self._clients:
                tracer.remove_listener(self._listener)
                self._records.clear()  # nobody left to show them
        self._wake.set()

    def _ensure_thread(self) -> None:
        # Caller holds the lock.
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="jupyter_actors-widgets",
                                            daemon=True)
            self._thread.start()

    # -- handing work to the owner thread ---------------------------------------------------
    def on_owner_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def call(self, fn, *args, wait: bool = False, timeout: float = 10.0):
        """Run ``fn(*args)`` on the owner thread, after the records seen so far are fed in.

        With ``wait``, block until it ran (at most ``timeout`` seconds) and
        return its result. On the owner thread itself it runs at once.
        """
        if self.on_owner_thread():
            return fn(*args)
        done = threading.Event() if wait else None
        box: list = []
        with self._lock:
            self._commands.append((fn, args, done, box))
            self._ensure_thread()
        self._wake.set()
        if done is not None:
            if not done.wait(timeout):
                raise TimeoutError(f"the widget thread did not answer within {timeout} s")
            if box and isinstance(box[0], BaseException):
                raise box[0]
            return box[0] if box else None
        return None

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every record traced so far is in the widgets' models and sent."""
        self.call(self._publish_all, True, wait=True, timeout=timeout)

    # -- the owner thread -----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            self._wake.wait(INTERVAL)
            self._wake.clear()
            with self._lock:
                clients = list(self._clients)
                if not clients and not self._commands and not self._records:
                    self._thread = None
                    return
            self._feed(clients)
            while self._commands:
                fn, args, done, box = self._commands.popleft()
                try:
                    box.append(fn(*args))
                except BaseException as exc:  # reported to the waiter, never kills the thread
                    box.append(exc)
                    if done is None:
                        _report(exc)
                if done is not None:
                    done.set()
            if time.monotonic() - self._last_send >= INTERVAL:
                self._publish_all(False)

    def _feed(self, clients) -> None:
        records = self._records
        while records:
            batch: dict = {}
            while records and len(batch) < CHUNK:
                r = records.popleft()
                batch[r.call_id] = r  # the latest fields are read below: one entry per call
            values = list(batch.values())
            for client in clients:
                try:
                    client._ingest(values)
                except Exception as exc:
                    _report(exc)
            if records:
                # Let the runtime's I/O thread in: holding the GIL for a whole
                # burst would stall its socket reads for the switch interval.
                time.sleep(0)

    def _publish_all(self, force: bool) -> None:
        with self._lock:
            clients = list(self._clients)
        self._feed(clients)
        now = time.monotonic()
        self._last_send = now
        for client in clients:
            try:
                client._publish(now, force)
            except Exception as exc:
                _report(exc)


def _report(exc: BaseException) -> None:
    import sys
    import traceback
    print("jupyter_actors widgets: " + "".join(traceback.format_exception(exc)).rstrip(),
          file=sys.__stderr__)


pump = Pump()
