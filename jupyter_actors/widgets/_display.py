"""Keep the static snapshot of a displayed widget current for notebooks saved or converted.

A widget's output carries its live view plus a ``text/html`` snapshot for
frontends without widgets (nbconvert, GitHub). The snapshot is taken when the
widget is displayed, often before the calls it should show have run. So each
display gets a display id, and after every cell, in the kernel's main thread
while that cell is still the current request, the snapshot of each displayed
widget whose data changed is re-published with ``update_display``.

A displayable object provides ``_repr_mimebundle_()``, ``_snapshot_version()``
and ``_display_ids`` (a list).
"""
from __future__ import annotations

import weakref

_shown: "weakref.WeakSet" = weakref.WeakSet()
_hooked = False
MAX_DISPLAYS = 8  # per widget: older displays keep their last snapshot


def show(widget) -> None:
    """``_ipython_display_`` of our widgets: display with an id we can update later."""
    from IPython.display import display
    data, metadata = widget._repr_mimebundle_()
    handle = display(data, metadata=metadata, raw=True, display_id=True)
    if handle is not None:
        widget._display_ids.append(handle.display_id)
        del widget._display_ids[:-MAX_DISPLAYS]
    widget._shown_version = widget._snapshot_version()
    _shown.add(widget)
    _install_hook()


def _install_hook() -> None:
    global _hooked
    if _hooked:
        return
    try:
        from IPython import get_ipython
    except ImportError:
        return
    ip = get_ipython()
    if ip is None:
        return
    ip.events.register("post_run_cell", refresh_snapshots)
    _hooked = True


def refresh_snapshots(_result=None) -> None:
    """Re-publish the snapshot of every displayed widget whose data changed."""
    from IPython.display import update_display
    for widget in list(_shown):
        if not widget._display_ids:
            continue
        try:
            flush = getattr(widget, "_flush", None)
            if flush is not None:
                flush(timeout=2.0)
            version = widget._snapshot_version()
            if version == widget._shown_version:
                continue
            data, metadata = widget._repr_mimebundle_()
            for display_id in widget._display_ids:
                update_display(data, metadata=metadata, raw=True, display_id=display_id)
            widget._shown_version = version
        except Exception:  # a snapshot must never break the user's cell
            continue
