"""The IPython extension: ``%load_ext jupyter_actors``.

Loading it (or listing ``jupyter_actors`` in ``c.InteractiveShellApp.extensions``)

- registers ``%%remote`` (a cell that defines one actor class or remote
  function) and ``%actors`` (a table of the runtime's actors);
- routes every line an actor prints to the cell that made the call
  (``_jupyter.cell_output``);
- lets ``asyncio.run(...)`` run in a cell (``_jupyter.asyncio_run``);
- shows a progress bar for a long ``get`` of many refs (``progress``);
- cancels the not-yet-started calls of a cell the user interrupts
  (``_jupyter.interrupts``);
- asks a worker's ``breakpoint()`` / ``input()`` in the running cell
  (``_jupyter.cell_input``).

``%unload_ext jupyter_actors`` undoes all of it. IPython is imported here and
nowhere on the plain ``import jupyter_actors`` path.
"""
from __future__ import annotations

import sys

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class

from . import _api, progress
from ._api import session
from ._api.remote import remote as make_remote
from ._jupyter.display import ActorTable
from ._jupyter import asyncio_run, cell_input, interrupts
from ._jupyter.cell_output import CellOutputRouter, _parent_of
from ._jupyter.remote_cell import (CellUsageError, check_options_for, find_definition,
                                   parse_options)

# load_ipython_extension / unload_ipython_extension are reached through the package
# (``%load_ext jupyter_actors``), whose namespace exports them.
__all__ = ["ActorMagics"]


@magics_class
class ActorMagics(Magics):
    """``%%remote`` and ``%actors``."""

    @cell_magic
    def remote(self, line: str, cell: str):
        """Define an actor class or remote function: %%remote [--max-concurrency N] [--name NAME]

        The cell must define exactly one top-level class or function, as its
        last statement (imports and other statements may come before it). The
        cell runs in the notebook's namespace and the name is bound to
        ``remote(**options)(definition)``. Running the cell again redefines
        it: actors created before keep their code, new ones get the new code.
        """
        __tracebackhide__ = True  # noqa: F841 (IPython hides this frame in tracebacks)
        try:
            options = parse_options(line)
        except CellUsageError as exc:
            raise UsageError(f"%%remote: {exc}") from None
        shell = self.shell
        source, filename = _cache_cell(shell, cell)
        try:
            tree = shell.compile.ast_parse(source, filename=filename)
        except SyntaxError as exc:
            raise _cell_syntax_error(exc, shell) from None
        try:
            definition = find_definition(tree)
            check_options_for(definition, options)
        except CellUsageError as exc:
            raise UsageError(f"%%remote: {exc}") from None
        code = shell.compile(tree, filename, "exec")
        exec(code, shell.user_global_ns, shell.user_ns)
        defined = shell.user_ns[definition.name]
        if isinstance(defined, (_api.ActorClass, _api.RemoteFunction)):
            raise UsageError(f"%%remote: {definition.name} is already remote; drop either its "
                             f"@remote decorator or the %%remote line")
        try:
            remote = make_remote(**options)(defined) if options else make_remote(defined)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"%%remote: {str(exc).splitlines()[0]}") from None
        shell.user_ns[definition.name] = remote

    @line_magic
    def actors(self, line: str):
        """Show the runtime's actors: class, name, pid, kind, concurrency, call counts, status.

        ``%actors --live`` shows them in an ActorsView, which updates while calls run and
        has buttons to cancel an actor's queued calls or kill it.
        """
        option = line.strip()
        if option == "--live":
            from .widgets import ActorsView
            return ActorsView()
        if option:
            raise UsageError(f"%actors takes no arguments but --live, got {option!r}")
        backend = session.current_backend()
        if backend is None:
            return ActorTable([])
        header = ""
        if backend.name != "local":
            info = backend.info()
            header = f"Actors on {backend.name.capitalize()} at {info.get('address')}"
        return ActorTable(backend.describe_actors(), header=header)


def _cache_cell(shell, cell: str) -> tuple:
    """The cell's Python source, padded so line numbers match the cell as the user sees it.

    Line 1 of the cell is the ``%%remote`` line, and IPython's transforms drop
    leading blank lines; blank lines put back in front keep every error and
    traceback pointing at the line the user sees. The source is registered
    with IPython's compiler so tracebacks show it as ``Cell In[n]``.
    """
    transformed = shell.transform_cell(cell)
    # Line up the first line of code with where it stands in the cell (whose
    # line 1 is %%remote): IPython versions differ in the blank lines their
    # transforms drop or add, so measure instead of assuming.
    first_in_cell = _first_code_line(cell.splitlines())
    first_in_source = _first_code_line(transformed.splitlines())
    source = "\n" * max(0, 1 + first_in_cell - first_in_source) + transformed
    filename = shell.compile.cache(source, _running_cell_number(shell))
    return source, filename


def _running_cell_number(shell) -> int:
    """The number the frontend shows for the running cell (``In [N]``).

    IPython 9 counts the next cell as soon as one starts, IPython 8 when it
    ends: the running cell's own result knows its number in both.
    """
    running = getattr(shell.displayhook, "exec_result", None)
    number = getattr(running, "execution_count", None)
    return number if isinstance(number, int) else shell.execution_count


def _first_code_line(lines: list) -> int:
    return next((i for i, line in enumerate(lines) if line.strip()), 0)


class _CellSyntaxError(Exception):
    """A SyntaxError in a ``%%remote`` cell, shown exactly as in a plain cell.

    Raised as is, a SyntaxError would be shown with the frames of the magic
    machinery that compiled it; this shows only the cell's line, and the
    kernel still reports the cell as failed with ``SyntaxError``.
    """

    def __init__(self, error: SyntaxError, shell):
        super().__init__(str(error))
        self.error = error
        self._stb = shell.SyntaxTB.structured_traceback(type(error), error, [])

    def _render_traceback_(self) -> list:
        return self._stb


def _cell_syntax_error(error: SyntaxError, shell) -> _CellSyntaxError:
    """Named like the original (SyntaxError, IndentationError...) for the kernel's reply.

    Private subclasses (3.13's ``_IncompleteInputError``) go by their public base.
    """
    name = next(c.__name__ for c in type(error).__mro__ if not c.__name__.startswith("_"))
    return type(name, (_CellSyntaxError,), {"__qualname__": name})(error, shell)


class _Extension:
    """Everything loading the extension changed, so that unloading can undo it."""

    def __init__(self):
        self.shell = None
        self.previous_router = None
        self.enabled_progress = False

    def load(self, shell) -> None:
        if self.shell is not None:
            return
        self.shell = shell
        shell.register_magics(ActorMagics)
        router = CellOutputRouter()
        self.previous_router = session.output_router()
        session.set_output_router(router)
        asyncio_run.install()
        if not progress.is_enabled():
            progress.enable()
            self.enabled_progress = True
        shell.events.register("pre_run_cell", self.pre_run_cell)
        shell.events.register("post_run_cell", self.post_run_cell)
        cell_input.cell_started()  # the cell that loads the extension runs now

    def unload(self, shell) -> None:
        if self.shell is None:
            return
        for event, callback in (("pre_run_cell", self.pre_run_cell),
                                ("post_run_cell", self.post_run_cell)):
            try:
                shell.events.unregister(event, callback)
            except ValueError:
                pass
        magics = shell.magics_manager.magics
        for kind, name in (("cell", "remote"), ("line", "actors")):
            magics[kind].pop(name, None)
        shell.magics_manager.registry.pop(ActorMagics.__name__, None)
        session.set_output_router(self.previous_router)
        asyncio_run.uninstall()
        if self.enabled_progress:
            progress.disable()
        self.shell = None
        self.enabled_progress = False

    def pre_run_cell(self, info=None) -> None:
        cell_input.cell_started()
        interrupts.wake_loop_on_interrupt()

    def post_run_cell(self, result) -> None:
        cell_input.cell_ended()
        if interrupts.was_interrupted(result):
            # A worker's debugger or input() prompt ends with the cell: its call fails.
            session.output_router().abort_prompts("the cell was interrupted")
            parent = _parent_of(sys.stdout)
            interrupts.cancel_queued_calls(parent.get("msg_id") if parent else None)


_extension = _Extension()


def load_ipython_extension(ipython) -> None:
    _extension.load(ipython)


def unload_ipython_extension(ipython) -> None:
    _extension.unload(ipython)
