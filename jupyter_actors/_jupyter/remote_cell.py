"""Reading a ``%%remote`` cell: its options line and the one definition it must hold.

Everything here only checks and parses; nothing of the cell runs until the
options and the cell's shape are known to be right, so a usage mistake never
leaves half a cell executed. Problems are raised as ``CellUsageError`` with a
one-line message that names the problem.
"""
from __future__ import annotations

import ast
import shlex

from .._api.options import ACTOR, OPTIONS, TASK, check_options, names_for, shown_names


class CellUsageError(ValueError):
    """A ``%%remote`` line or cell that cannot be used, explained in one line."""


# How each option's value is read (from the options table); any other is a Python literal.
_INT = {n for n, o in OPTIONS.items() if o.kind is int}
_FLOAT = {n for n, o in OPTIONS.items() if o.kind is float}
_FLAG = {n for n, o in OPTIONS.items() if o.kind is bool}
_TEXT = {n for n, o in OPTIONS.items() if o.kind is str}

ALL_OPTIONS = names_for(ACTOR) | names_for(TASK)
USAGE = "%%remote [--max-concurrency N] [--name NAME] [--OPTION VALUE ...]"


def parse_options(line: str) -> dict:
    """``--max-concurrency 4 --name=counter`` -> {"max_concurrency": 4, "name": "counter"}."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise CellUsageError(f"cannot read the options ({exc}); usage: {USAGE}") from None
    options: dict = {}
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if not word.startswith("--") or word == "--":
            raise CellUsageError(f"unexpected argument {word!r}; usage: {USAGE}")
        flag, has_value, value = word[2:].partition("=")
        key = flag.replace("-", "_")
        if key not in ALL_OPTIONS:
            raise CellUsageError(f"unknown option --{flag}; valid options are "
                                 f"{_option_list(ALL_OPTIONS)}")
        if key in options:
            raise CellUsageError(f"option --{flag} is given twice")
        if not has_value:
            if key in _FLAG and (i >= len(words) or words[i].startswith("--")):
                value = "True"
            elif i < len(words) and not words[i].startswith("--"):
                value = words[i]
                i += 1
            else:
                raise CellUsageError(f"option --{flag} needs a value")
        options[key] = _convert(key, flag, value)
    return options


def _convert(key: str, flag: str, value: str):
    if key in _TEXT:
        return value
    try:
        if key in _INT:
            return int(value)
        if key in _FLOAT:
            return float(value)
        if key in _FLAG and value.lower() in ("true", "false"):
            return value.lower() == "true"
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        kind = ("an integer" if key in _INT else "a number" if key in _FLOAT
                else "True or False" if key in _FLAG else "a Python literal")
        raise CellUsageError(f"option --{flag} expects {kind}, got {value!r}") from None


def _option_list(keys) -> str:
    return ", ".join("--" + k.replace("_", "-") for k in shown_names(keys))


def find_definition(tree: ast.Module) -> ast.stmt:
    """The one top-level class or function of the cell, which must also end it."""
    definitions = [node for node in tree.body
                   if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))]
    if not definitions:
        raise CellUsageError("the cell defines no class or function; %%remote needs exactly "
                             "one top-level class or def")
    if len(definitions) > 1:
        names = ", ".join(d.name for d in definitions)
        raise CellUsageError(f"the cell defines {len(definitions)} classes/functions ({names}); "
                             f"%%remote needs exactly one (move the others to another cell)")
    definition = definitions[0]
    if tree.body[-1] is not definition:
        line = tree.body[tree.body.index(definition) + 1].lineno
        raise CellUsageError(f"{definition.name} must be the last statement of the cell, but "
                             f"line {line} follows it; move that code to another cell")
    if isinstance(definition, ast.AsyncFunctionDef):
        raise CellUsageError(f"'async def {definition.name}' cannot be a remote function: make it "
                             f"a method of an actor class, or wrap it in a def that calls "
                             f"asyncio.run(...)")
    return definition


def check_options_for(definition: ast.stmt, options: dict) -> None:
    """Are these options right for an actor class (a class) or a remote function?"""
    is_class = isinstance(definition, ast.ClassDef)
    target = ACTOR if is_class else TASK
    allowed = names_for(target)
    what = "an actor class" if is_class else "a remote function"
    wrong = sorted(set(options) - allowed)
    if wrong:
        flags = ", ".join("--" + k.replace("_", "-") for k in wrong)
        raise CellUsageError(f"{flags} cannot be used for {what} ({definition.name}); valid "
                             f"options are {_option_list(allowed)}")
    try:
        check_options(dict(options), target)
    except (TypeError, ValueError, NotImplementedError) as exc:
        raise CellUsageError(str(exc).splitlines()[0]) from None
