"""tqdm inside actors and tasks: each bar's state goes to the driver, which draws it.

    a call's thread in the worker                 the driver
    ─────────────────────────────                 ──────────
    tqdm(...), bar.update(n)       ── BarState ─▶ one bar per (call, bar) where the call's
      tqdm's own throttle: at most                output goes (the calling cell, or the
      one state per 0.1 s per bar                 terminal), updated in place
    the call ends: the last state  ── BarState ─▶ closed (also when the call failed)
      of each bar it left open        closed

``tqdm`` is not imported here: the first ``import tqdm`` (or ``tqdm.auto``,
``tqdm.notebook``, an unpickled reference to one of them) in the worker loads
it, and a hook swaps ``tqdm.std.tqdm`` for a subclass that writes nothing and
sends its state instead. ``tqdm.auto``, ``tqdm.asyncio`` and ``trange`` build on
that class; ``tqdm.notebook``'s names point to it too (no widgets here).
"""
from __future__ import annotations

import itertools
import sys
import threading

from .._wire.messages import BarState, new
from .capture import current_call

MIN_INTERVAL = 0.1          # seconds between two states of one bar, at most 10 per s
# What the driver needs to draw the bar (tqdm's format_meter arguments).
_STATE_KEYS = ("n", "total", "elapsed", "prefix", "unit", "unit_scale", "unit_divisor",
               "postfix", "bar_format", "initial", "rate")
_PLAIN = (int, float, str, bool, type(None))

_bars = None                # the worker's Bars, once installed


class Bars:
    """The bars a worker's calls have open, and the hook that makes tqdm send them."""

    def __init__(self, channel, current=current_call.get):
        self.channel = channel
        self.current = current          # the call running here (None: not in a call)
        self.open: dict = {}            # call id -> {bar id: bar}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def install(self) -> None:
        global _bars
        _bars = self
        patch_on_import({"tqdm.std": _patch_std, "tqdm.notebook": _patch_notebook})

    # -- called by the bars ------------------------------------------------------------------
    def opened(self, bar) -> None:
        if bar._relay_call is None:
            return
        with self._lock:
            self.open.setdefault(bar._relay_call, {})[bar._relay_id] = bar

    def send(self, bar, closed: bool) -> None:
        call_id = bar._relay_call
        if call_id is None or bar._relay_detached:
            return  # made outside a call, or its call has ended
        if closed:
            bar._relay_detached = True
            with self._lock:
                bars = self.open.get(call_id)
                if bars is not None:
                    bars.pop(bar._relay_id, None)
                    if not bars:
                        del self.open[call_id]
        try:
            fields = bar.format_dict
        except Exception:
            return
        state = {}
        for key in _STATE_KEYS:
            value = fields.get(key)
            state[key] = value if isinstance(value, _PLAIN) else str(value)
        self.channel.send(new(BarState, (call_id, bar._relay_id, state, closed)))

    def finish_call(self, call_id) -> None:
        """The call ends: the bars it left open send their last state, closed."""
        with self._lock:
            bars = self.open.pop(call_id, None)
        for bar in (bars or {}).values():
            self.send(bar, closed=True)


def _relay_class(base):
    """A subclass of tqdm ``base`` that draws nothing here and sends its state."""

    class tqdm(base):
        monitor_interval = 0     # no monitor thread per worker
        _relays_to_driver = True

        def __init__(self, *args, **kwargs):
            self._relay_call = _bars.current() if _bars is not None else None
            self._relay_id = next(_bars._ids) if _bars is not None else 0
            self._relay_detached = False
            self._relay_quiet = False
            kwargs["file"] = _NULL
            kwargs["mininterval"] = max(kwargs.get("mininterval") or 0, MIN_INTERVAL)
            super().__init__(*args, **kwargs)
            if not self.disable and _bars is not None:
                _bars.opened(self)

        def display(self, msg=None, pos=None):
            if not self._relay_quiet and _bars is not None:
                _bars.send(self, closed=False)
            return True

        def close(self):
            if getattr(self, "disable", True):
                return
            self._relay_quiet = True
            try:
                super().close()
            finally:
                if _bars is not None:
                    _bars.send(self, closed=True)

    tqdm.__module__ = base.__module__
    tqdm.__qualname__ = base.__qualname__
    return tqdm


def _patch_std(module) -> None:
    original = module.tqdm
    if getattr(original, "_relays_to_driver", False):
        return
    relaying = module.tqdm = _relay_class(original)
    # tqdm loaded before the hook (Ray's workers import tqdm.auto at start): the classes
    # already built on tqdm's own (tqdm.auto's, tqdm.asyncio's) now build on the relaying one.
    for sub in original.__subclasses__():
        if sub is not relaying:
            sub.__bases__ = tuple(relaying if b is original else b for b in sub.__bases__)
    package = sys.modules.get("tqdm")
    if getattr(package, "tqdm", None) is original:
        package.tqdm = relaying


def _patch_notebook(module) -> None:
    """``tqdm.notebook`` in a worker: the relaying class under the notebook names."""
    from tqdm.std import tqdm as relaying

    def trange(*args, **kwargs):
        return relaying(range(*args), **kwargs)

    module.tqdm = module.tqdm_notebook = relaying
    module.trange = module.tnrange = trange


class _NullFile:
    """Where a relaying bar 'writes': nowhere (the driver draws it)."""

    def write(self, text) -> int:
        return len(text)

    def flush(self) -> None:
        pass


_NULL = _NullFile()


def patch_on_import(patches: dict) -> None:
    """Run ``patch(module)`` for each named module: now if it is loaded (a preloaded
    module imported it), else right after it is first imported."""
    sys.meta_path.insert(0, _PatchOnImport(patches))
    for name, patch in patches.items():
        if name in sys.modules:
            patch(sys.modules[name])


class _PatchOnImport:
    """Runs ``patch(module)`` right after one of the named modules is first imported.

    (A meta path finder needs only ``find_spec``; importlib.abc's base classes add
    nothing here and cost a worker's start the import of importlib.resources.)
    """

    def __init__(self, patches: dict):
        self.patches = patches

    def find_spec(self, name, path=None, target=None):
        patch = self.patches.get(name)
        if patch is None:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _PatchingLoader(spec.loader, patch)
        return spec


class _PatchingLoader:
    def __init__(self, loader, patch):
        self._loader = loader
        self._patch = patch

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        self._patch(module)

    def __getattr__(self, name):  # get_source, get_code ...: the real loader's
        return getattr(self._loader, name)
