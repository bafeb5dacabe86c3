"""How actor handles, ObjectRefs and the ``%actors`` table look in a notebook.

Each repr is a snapshot taken when it is displayed: nothing updates behind the
user's back. HTML for the notebook, short plain text for everything else.
"""
from __future__ import annotations

import html
import reprlib


_preview = reprlib.Repr()
_preview.maxstring = 60
_preview.maxother = 60
_preview.maxlist = _preview.maxtuple = _preview.maxdict = _preview.maxset = 8

_COLOURS = {"done": "#2e7d32", "failed": "#c62828", "cancelled": "#6d4c41",
            "running": "#1565c0", "queued": "#757575", "alive": "#2e7d32", "dead": "#c62828"}


# -- ObjectRef ------------------------------------------------------------------

def ref_state(ref) -> tuple:
    """(state, detail): state is queued / running / done / failed / cancelled."""
    future = ref._future
    if not future.done():
        owner = ref._owner
        running = owner is not None and owner.status == "running"
        return ("running" if running else "queued"), ""
    if future.cancelled():
        return "cancelled", ""
    error = future.exception()
    if error is not None:
        from ..exceptions import TaskCancelledError
        state = "cancelled" if isinstance(error, TaskCancelledError) else "failed"
        return state, _one_line_error(error)
    return "done", value_preview(future.result())


def ref_label(ref) -> str:
    owner = ref._owner
    return owner.label if owner is not None else "put"


def ref_text(ref) -> str:
    state, detail = ref_state(ref)
    tail = f": {detail}" if detail else ""
    return f"ObjectRef(#{ref._id} {ref_label(ref)}, {state}{tail})"


def ref_html(ref) -> str:
    state, detail = ref_state(ref)
    detail_html = f" <code>{html.escape(detail)}</code>" if detail else ""
    return (f"<span class='jupyter-actors-ref'><b>ObjectRef</b> #{ref._id} "
            f"<code>{html.escape(ref_label(ref))}</code> {_badge(state)}{detail_html}</span>")


def value_preview(value) -> str:
    try:
        return _preview.repr(value)
    except Exception as exc:  # a broken __repr__ must not break the display
        return f"<{type(value).__name__} object; repr failed: {type(exc).__name__}>"


def _one_line_error(error: BaseException) -> str:
    message = str(error).strip().splitlines()
    first = message[0] if message else ""
    text = f"{type(error).__name__}: {first}" if first else type(error).__name__
    return text if len(text) <= 120 else text[:117] + "..."


# -- ActorHandle ------------------------------------------------------------------

def actor_text(row: dict) -> str:
    """``row``: an actor as the backend describes it (``describe_actor``)."""
    return f"Actor({_summary(row)})"


def actor_html(row: dict) -> str:
    name = f" <code>{html.escape(row['name'])}</code>" if row["name"] else ""
    death = (f"<br><small>{html.escape(row['death'])}</small>"
             if row["death"] else "")
    return (f"<div class='jupyter-actors-actor'><b>{html.escape(row['class_name'])}</b>{name} "
            f"{_badge('alive' if row['alive'] else 'dead')} "
            f"<small>{row['kind']} actor · pid {row['pid'] if row['pid'] else '–'} · "
            f"max_concurrency {html.escape(concurrency_cell(row))} · "
            f"running {html.escape(running_cell(row))} · "
            f"queued {row['queued']} · done {row['done']} · failed {row['failed']}"
            f"{' · ' + _restarts(row) if _restarts(row) else ''}</small>"
            f"{death}</div>")


def _restarts(row: dict) -> str:
    """"restarted 1 of 3" for an actor with max_restarts; "" for the others."""
    limit = row.get("max_restarts", 0)
    if not limit:
        return ""
    of = "unlimited" if limit == -1 else limit
    what = "restarting" if row.get("restarting") else "restarted"
    return f"{what} {row.get('restarts', 0)} of {of}"


def _status(row: dict) -> str:
    """alive / dead, with the restart count of an actor that may be restarted."""
    restarts = _restarts(row)
    state = "alive" if row["alive"] else "dead"
    return f"{state}, {restarts}" if restarts else state


def _summary(row: dict) -> str:
    parts = [row["class_name"]]
    if row["name"]:
        parts.append(f"name={row['name']!r}")
    parts += [f"pid={row['pid']}", row["kind"], f"max_concurrency={concurrency_cell(row)}",
              f"running={running_cell(row)}", f"queued={row['queued']}", f"done={row['done']}",
              f"failed={row['failed']}", _status(row)]
    return ", ".join(parts)


def _named_groups(row: dict) -> list:
    return [g for g in row.get("groups") or () if g["name"] is not None]


def concurrency_cell(row: dict) -> str:
    """``2``, or with concurrency groups ``2 (io=2, compute=4)``: the default group first."""
    named = _named_groups(row)
    if not named:
        return str(row["max_concurrency"])
    sizes = ", ".join(f"{g['name']}={g['max_concurrency']}" for g in named)
    return f"{row['max_concurrency']} ({sizes})"


def running_cell(row: dict) -> str:
    """``3``, or with concurrency groups ``3 (default=0, io=2, compute=1)``: running calls
    per group."""
    if not _named_groups(row):
        return str(row["running"])
    running = ", ".join(f"{g['name'] or 'default'}={g['running']}" for g in row["groups"])
    return f"{row['running']} ({running})"


# -- %actors ------------------------------------------------------------------------

COLUMNS = ("class", "name", "pid", "kind", "max_concurrency", "running", "queued", "done",
           "failed", "status")


class ActorTable:
    """The actors of the session when ``%actors`` ran (dead ones still referenced too)."""

    def __init__(self, rows: list, restarts: bool | None = None, header: str = ""):
        self.rows = rows       # the backend's describe_actors()
        # The restarts column: when asked for, else when some actor may be restarted.
        if restarts is None:
            restarts = any(row.get("max_restarts") for row in rows)
        self.restarts = restarts
        self.columns = COLUMNS[:-1] + ("restarts", "status") if restarts else COLUMNS
        # Which backend runs them, when it is not the embedded runtime ("Ray at HOST:PORT").
        self.header = header

    def _cells(self, row: dict) -> list:
        status = _status(row)
        if not row["alive"]:
            status += f": {row['death'] or 'unknown cause'}"
        cells = [row["class_name"], row["name"] or "", str(row["pid"] or ""), row["kind"],
                 concurrency_cell(row), running_cell(row), str(row["queued"]),
                 str(row["done"]), str(row["failed"])]
        if self.restarts:
            cells.append(str(row.get("restarts", 0)))
        return cells + [status]

    def __repr__(self) -> str:
        if self.header:
            return f"{self.header}\n{self._body()}"
        return self._body()

    def _body(self) -> str:
        if not self.rows:
            return "No actors."
        columns = self.columns
        table = [list(columns)] + [self._cells(r) for r in self.rows]
        widths = [max(len(line[i]) for line in table) for i in range(len(columns) - 1)]
        lines = []
        for line in table:
            cells = [c.ljust(w) for c, w in zip(line, widths)] + [line[-1]]
            lines.append("  ".join(cells).rstrip())
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(repr(self))

    def _repr_html_(self) -> str:
        header = f"<p><b>{html.escape(self.header)}</b></p>" if self.header else ""
        return header + self._body_html()

    def _body_html(self) -> str:
        if not self.rows:
            return "<p><i>No actors.</i></p>"
        head = "".join(f"<th>{c}</th>" for c in self.columns)
        body = []
        for row in self.rows:
            cells = [html.escape(c) for c in self._cells(row)[:-1]]
            status = _badge("alive" if row["alive"] else "dead")
            if _restarts(row):
                status += f" <small>{html.escape(_restarts(row))}</small>"
            if row["death"]:
                status += f" <small>{html.escape(row['death'])}</small>"
            body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells)
                        + f"<td style='text-align:left'>{status}</td></tr>")
        return (f"<table class='jupyter-actors-table'><thead><tr>{head}</tr></thead>"
                f"<tbody>{''.join(body)}</tbody></table>")


def _badge(state: str) -> str:
    colour = _COLOURS.get(state, "#757575")
    return (f"<span style='color:{colour};font-weight:bold'>{html.escape(state)}</span>")
