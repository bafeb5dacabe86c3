"""The package's shape: one home per public name, no import cycles, small modules, one options table."""
from __future__ import annotations

import ast
import importlib
import os
import re

import pytest

import jupyter_actors as ray
from jupyter_actors._api.options import OPTIONS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "jupyter_actors")
PUBLIC_MODULES = ["jupyter_actors", "jupyter_actors.exceptions", "jupyter_actors.tracing",
                  "jupyter_actors.progress", "jupyter_actors.magics",
                  "jupyter_actors.widgets", "jupyter_actors.experimental.tqdm_ray"]


def _modules() -> dict:
    """dotted name -> path of every module of the package."""
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                dotted = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                found[dotted.removesuffix(".__init__")] = path
    return found


def _imports(module: str, path: str, modules: dict) -> set:
    """Modules of the package that ``module`` imports anywhere (function bodies too)."""
    is_package = path.endswith("__init__.py")
    out = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".")[: None if is_package else -1]
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in modules and target != module:
                out.add(target)
    return out


def test_no_import_cycles_between_modules():
    """No module reaches itself through imports, module-level or inside functions."""
    modules = _modules()
    graph = {m: _imports(m, p, modules) for m, p in modules.items()}
    for start in graph:
        seen, stack = set(), [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                assert nxt != start, "import cycle: " + " -> ".join(path + [nxt])
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))


def test_no_module_is_too_long():
    """Each module has one job: none grows past ~450 lines."""
    long = {m: n for m, p in _modules().items()
            if (n := sum(1 for _ in open(p, encoding="utf-8"))) > 450}
    assert not long, long


def test_public_names_have_one_home():
    """A name exported by two public modules is one object (a re-export), defined once."""
    exported: dict = {}
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", []):
            exported.setdefault(attr, []).append(getattr(module, attr))
    copies = {k: v for k, v in exported.items() if any(o is not v[0] for o in v)}
    assert not copies, copies
    for name in ray.__all__:
        obj = getattr(ray, name)
        home = getattr(obj, "__module__", None) or getattr(obj, "__name__", "")
        assert home.startswith("jupyter_actors"), (name, home)


def _documented_tree() -> set:
    """The files the module tree in docs/architecture.md lists, as paths in the package."""
    text = open(os.path.join(ROOT, "docs", "architecture.md"), encoding="utf-8").read()
    block = text.split("## Modules", 1)[1].split("```")[1]
    folders: list = []   # (indent, name) of the folders the current line sits in
    files = set()
    for line in block.splitlines()[2:]:  # after "jupyter_actors/"
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        word = line.split()[0]
        while folders and folders[-1][0] >= indent:
            folders.pop()
        if word.endswith("/"):
            folders.append((indent, word.rstrip("/")))
        else:
            files.add("/".join([f for _, f in folders] + [word]))
    return files


def test_architecture_doc_lists_every_module():
    """docs/architecture.md has one line for every module of the package, and no others."""
    actual = {os.path.relpath(p, PACKAGE).replace(os.sep, "/") for p in _modules().values()}
    assert _documented_tree() == actual


def _readme_options() -> dict:
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = text.split("### Options", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            for name in re.findall(r"`(\w+)`", cells[0]):
                rows[name] = (cells[1], cells[2].split(":")[0].split(" ")[0],
                              cells[3].split(":")[0].split(" ")[0])
    return rows


def test_readme_options_table_says_what_the_code_does():
    """The README's options table lists every option with what it applies to and its status,
    on the embedded runtime and on Ray."""
    rows = _readme_options()
    assert set(rows) == set(OPTIONS)
    for name, option in OPTIONS.items():
        applies, status, on_ray = rows[name]
        assert status == option.status, name
        assert on_ray == option.on_ray, name
        assert sorted(a.strip() for a in applies.split(",")) == sorted(option.applies), name


@pytest.mark.parametrize("name", sorted(n for n, o in OPTIONS.items() if o.status == "refused"))
def test_refused_options_raise_where_given(name):
    """A refused option with a value that would matter raises at the decorator, saying why."""
    option = OPTIONS[name]
    value = {int: 2, str: "detached", bool: True}.get(option.kind, {"x": 1})
    target = sorted(option.applies)[0]
    with pytest.raises((NotImplementedError, ValueError), match=re.escape(option.why[:20])):
        if target == "method":
            ray.method(**{name: value})
        elif target == "actor":
            ray.remote(**{name: value})(type("A", (), {}))
        else:
            ray.remote(**{name: value})(lambda: None)
