"""``ConcurrencyPlayground``: run a small experiment on a fresh actor and watch it interleave.

    controls (kernel main thread) ── Run ──▶ experiment thread ──▶ fresh actor per run
                                              submits N calls,      (a worker process)
                                              waits for them
    owner thread (_pump) ◀── traced calls ── the runtime
      draws them live into the Timeline, one stacked section per run

Compare mode runs the same tasks with max_concurrency 1, 2, 4 and the actor's
default, each on its own actor, stacked on one time scale with the wall time
of each: the lesson of Ray's async-actor guide at a glance.
"""
from __future__ import annotations

import threading
import time

import ipywidgets as w

from . import _display, _static
from ._experiments import KINDS, method_for
from ._pump import pump
from ._timeline import Timeline

GUARD = 120.0  # longest wait for one call before the run gives up (a deadlock guard)
COMPARE = (1, 2, 4, None)  # None: the actor kind's default


class ConcurrencyPlayground(w.VBox):
    """Controls for max_concurrency, number of tasks, task duration and actor kind, a Run
    button, and a live Timeline of the run. ``run()`` does what the button does and returns
    per run: max_concurrency, calls, max overlap and wall time.
    """

    def __init__(self, kind: str = "async", max_concurrency: int | None = 2, n_tasks: int = 8,
                 duration: float = 0.5, compare: bool = False, **kwargs):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        style = {"description_width": "initial"}
        self.kind = w.Dropdown(
            options=[("async", "async"), ("threaded", "threaded"),
                     ("async + blocking sync method", "blocking")],
            value=kind, description="actor", style=style, layout=w.Layout(width="300px"))
        self.max_concurrency = w.BoundedIntText(
            value=max_concurrency or 2, min=1, max=1000, description="max_concurrency",
            style=style, layout=w.Layout(width="190px"))
        self.use_default = w.Checkbox(value=max_concurrency is None, description="default",
                                      indent=False, layout=w.Layout(width="110px"))
        self.n_tasks = w.IntSlider(value=n_tasks, min=1, max=200, description="tasks",
                                   style=style, continuous_update=False)
        self.duration = w.FloatSlider(value=duration, min=0.01, max=3.0, step=0.01,
                                      description="task seconds", style=style,
                                      readout_format=".2f", continuous_update=False)
        self.compare = w.Checkbox(value=compare, indent=False,
                                  description="compare max_concurrency 1, 2, 4, default",
                                  layout=w.Layout(width="300px"))
        self.run_button = w.Button(description="Run", icon="play", button_style="primary",
                                   layout=w.Layout(width="110px"))
        self.status = w.HTML(value="")
        self.timeline = Timeline(section=False, history=False)
        self.max_concurrency.disabled = self.use_default.value
        self.use_default.observe(self._on_default, names="value")
        self.run_button.on_click(lambda _button: self._start())
        self.results: list = []
        self._running = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._display_ids: list = []
        self._shown_version = -1
        super().__init__([
            w.HBox([self.kind, self.max_concurrency, self.use_default]),
            w.HBox([self.n_tasks, self.duration]),
            w.HBox([self.compare, self.run_button]),
            self.status,
            self.timeline,
        ], **kwargs)
        self.add_class("jupyter-actors-playground")

    # -- running ---------------------------------------------------------------------------
    def params(self) -> dict:
        """The experiment the controls describe now."""
        return {"kind": self.kind.value,
                "max_concurrency": None if self.use_default.value else self.max_concurrency.value,
                "n_tasks": self.n_tasks.value, "duration": self.duration.value,
                "compare": self.compare.value}

    def run(self, wait: bool = True, **overrides) -> list:
        """Run the experiment (what the Run button does); returns one dict per run.

        ``overrides`` replace control values for this run (kind, max_concurrency,
        n_tasks, duration, compare). With ``wait=False`` it runs in a background
        thread and returns at once (then see ``results`` / ``join()``).
        """
        params = {**self.params(), **overrides}
        with self._lock:
            if self._running:
                raise RuntimeError("the playground is already running an experiment")
            self._running = True
        if wait:
            return self._experiment(params)
        self._thread = threading.Thread(target=self._experiment, args=(params,), daemon=True,
                                        name="jupyter_actors-playground")
        self._thread.start()
        return []

    def join(self, timeout: float | None = None) -> list:
        """Wait for a run started with ``wait=False`` (or the button); returns its results."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.results

    @property
    def running(self) -> bool:
        return self._running

    def _start(self) -> None:
        try:
            self.run(wait=False)
        except RuntimeError:
            pass  # a second click while running

    def _experiment(self, params: dict) -> list:
        try:
            pump.call(self._show_running, True)
            self.timeline.clear()
            self.results = []
            for mc in self._values(params):
                pump.call(self._set_status, f"running max_concurrency={mc or 'default'}…")
                self.results.append(self._run_one(params, mc))
            pump.call(self._set_status, self._done_text())
            self.timeline._flush()  # every bar drawn before run() returns
            return self.results
        except BaseException as exc:
            pump.call(self._set_status, f"<b>failed</b>: {type(exc).__name__}: {exc}")
            raise
        finally:
            # Wait, so that when run() returns the controls say so too.
            pump.call(self._show_running, False, wait=True)
            with self._lock:
                self._running = False

    @staticmethod
    def _values(params: dict) -> list:
        if not params["compare"]:
            return [params["max_concurrency"]]
        if params["kind"] == "threaded":
            return [1, 2, 4]  # the default of a threaded actor is 1: no fourth run
        return list(COMPARE)

    def _run_one(self, params: dict, max_concurrency: int | None) -> dict:
        from .. import _api
        from .._api.remote import remote
        kind = params["kind"]
        actor_class = remote(KINDS[kind][0])
        options = {} if max_concurrency is None else {"max_concurrency": max_concurrency}
        actor = actor_class.options(**options).remote()
        _api.get(actor.ready.remote(), timeout=GUARD)
        effective = actor._describe()["max_concurrency"]
        label = f"max_concurrency={effective}" + (" (default)" if max_concurrency is None else "")
        t0 = time.monotonic()
        self.timeline.add_section(label, [actor], since=t0)
        refs = [getattr(actor, method_for(kind, i)).remote(params["duration"])
                for i in range(params["n_tasks"])]
        for ref in refs:
            _api.get(ref, timeout=GUARD)
        records = [ref._owner for ref in refs]
        from ..tracing import max_overlap
        result = {"max_concurrency": effective, "default": max_concurrency is None,
                  "calls": len(records), "max_overlap": max_overlap(records),
                  "wall": max(r.finished for r in records) - t0}
        del actor  # the last handle: the actor exits once its calls are done
        return result

    def _done_text(self) -> str:
        runs = " · ".join(f"max_concurrency={r['max_concurrency']}"
                          f"{' (default)' if r['default'] else ''}: "
                          f"<b>{_static.seconds(r['wall'])}</b>" for r in self.results)
        return f"done — wall time {runs}"

    # -- owner thread ------------------------------------------------------------------------
    def _show_running(self, running: bool) -> None:
        self.run_button.disabled = running
        self.run_button.description = "Running" if running else "Run"
        self.run_button.icon = "spinner" if running else "play"

    def _set_status(self, html: str) -> None:
        self.status.value = html

    def _on_default(self, change) -> None:
        self.max_concurrency.disabled = change["new"]

    # -- display -----------------------------------------------------------------------------
    def __repr__(self) -> str:
        # Only the configuration given: stable across runs for nbval.
        p = self.params()
        mc = "default" if p["max_concurrency"] is None else p["max_concurrency"]
        return (f"ConcurrencyPlayground(kind={p['kind']!r}, max_concurrency={mc}, "
                f"n_tasks={p['n_tasks']}, duration={p['duration']:g}, compare={p['compare']})")

    def _repr_mimebundle_(self, **kwargs):
        data = super()._repr_mimebundle_(**kwargs)
        metadata = {}
        if isinstance(data, tuple):
            data, metadata = data
        data["text/plain"] = repr(self)
        data["text/html"] = self.timeline.to_html(flush_timeout=2.0)
        return data, metadata

    def _ipython_display_(self):
        _display.show(self)

    def _snapshot_version(self) -> int:
        return self.timeline.model.version

    def _flush(self, timeout: float = 10.0) -> None:
        self.timeline._flush(timeout)

    def close(self) -> None:
        timeline = getattr(self, "timeline", None)  # None if __init__ raised early
        if timeline is not None:
            timeline.close()
        super().close()
