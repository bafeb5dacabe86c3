"""Workers' progress bars in the cell that made the call, redrawn in place.

Each bar is one display in the calling cell: ``display_data`` with a display id
when its first state arrives, then ``update_display_data`` with the same id,
all sent with the cell's parent header, from the driver's I/O thread, even
after the cell finished or while another cell runs. The frontend replaces the
display each time, so a bar never becomes a line per update; a frontend that
no longer shows that cell (its output cleared, the cell run again) drops them.

A display carries ``text/plain`` (tqdm's own meter line, also what nbconvert
and plain frontends keep) and ``text/html``: the same line with a drawn bar,
blue while running, green when done, red when the call ended short of its total.
"""
from __future__ import annotations

import html
import uuid

_COLOURS = {"running": "#2f7ed8", "done": "#3c9a3c", "short": "#d9534f"}


class CellBar:
    """One worker bar drawn as a display of the calling cell."""

    def __init__(self, stream, parent: dict, prefix: str):
        self.stream = stream
        self.parent = parent
        self.prefix = prefix
        self.display_id = uuid.uuid4().hex
        self.shown = False

    def update(self, state: dict, closed: bool) -> None:
        content = {"data": bar_bundle(self.prefix, state, closed), "metadata": {},
                   "transient": {"display_id": self.display_id}}
        kind = "update_display_data" if self.shown else "display_data"
        session = self.stream.session
        msg = session.msg(kind, content, parent=self.parent)
        session.send(self.stream.pub_thread, msg, ident=b"display_data")
        self.shown = True


def bar_bundle(prefix: str, state: dict, closed: bool) -> dict:
    """The display data of a bar: tqdm's meter line as text, and as HTML with a drawn bar."""
    from tqdm.std import tqdm
    fields = dict(state)
    desc = fields.pop("prefix", None) or ""
    label = f"{prefix} {desc}".rstrip(": ")
    n, total = fields.get("n") or 0, fields.get("total")
    text = tqdm.format_meter(prefix=label, ncols=100, **fields)
    stats = tqdm.format_meter(prefix="", bar_format=_STATS_KNOWN if total else _STATS_UNKNOWN,
                              **{k: v for k, v in fields.items() if k != "bar_format"})
    if closed:
        colour = _COLOURS["done"] if not total or n >= total else _COLOURS["short"]
    else:
        colour = _COLOURS["running"]
    width = 100.0 if not total else max(0.0, min(100.0, 100.0 * n / total))
    page = (f'<div style="display:flex;align-items:center;gap:0.6em;font-family:monospace">'
            f'<span>{html.escape(label)}:</span>'
            f'<div style="flex:0 0 16em;height:0.9em;background:#e6e6e6;border-radius:2px">'
            f'<div style="width:{width:.1f}%;height:100%;background:{colour};'
            f'border-radius:2px"></div></div>'
            f'<span>{html.escape(stats)}</span></div>')
    return {"text/plain": text, "text/html": page}


_STATS_KNOWN = "{percentage:3.0f}% {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
_STATS_UNKNOWN = "{n_fmt} [{elapsed}, {rate_fmt}{postfix}]"
