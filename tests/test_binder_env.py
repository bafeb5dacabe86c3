"""The files in binder/ alone make an environment in which every notebook runs.

Binder cannot be reached from here, so this does what repo2docker does with
binder/: a fresh virtual environment on the Python that binder/runtime.txt
names (when this machine has it), ``pip install -r binder/requirements.txt``
run from the repository root, then binder/postBuild if there is one. Every
notebook then runs top to bottom in a kernel of that environment, driven by
nbclient from the test's own environment, the way JupyterLab from
repo2docker's base image drives the kernel on Binder.

Takes about a minute and a half; skipped, with the reason, when the package
registry cannot be reached.
"""
from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BINDER = REPO / "binder"
NOTEBOOKS = REPO / "notebooks"

# What pip prints when it cannot reach the package index at all.
_NETWORK_TROUBLE = re.compile(
    r"NewConnectionError|Max retries exceeded|Temporary failure in name resolution|"
    r"Name or service not known|Network is unreachable|ConnectTimeout|ReadTimeout|"
    r"Connection refused|ProxyError|No route to host")


def _binder_python() -> tuple[str, str]:
    """(interpreter, note): the Python of binder/runtime.txt if installed here, else this one."""
    runtime = BINDER / "runtime.txt"
    if runtime.exists():
        match = re.fullmatch(r"python-(\d+\.\d+)\S*", runtime.read_text().strip())
        if match:
            version = match.group(1)
            pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
            candidates = [shutil.which(f"python{version}")]
            candidates += sorted(glob.glob(f"{pyenv_root}/versions/{version}*/bin/python{version}"))
            for candidate in filter(None, candidates):
                probe = subprocess.run([candidate, "-c", "import sys, venv; print(sys.version)"],
                                       capture_output=True, text=True)
                if probe.returncode == 0:
                    return candidate, f"Python {version}, as binder/runtime.txt asks"
            return sys.executable, (f"Python {version} (binder/runtime.txt) is not installed "
                                    f"here; using {sys.version.split()[0]}")
    return sys.executable, f"no binder/runtime.txt; using {sys.version.split()[0]}"


def _run(cmd, *, cwd, env, timeout):
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _clean_env(venv: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PYENV_VERSION", "CONDA"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_TIMEOUT"] = "20"  # an unreachable index fails fast instead of hanging
    env["PIP_RETRIES"] = "1"
    return env


def _workers_of(venv: Path) -> list:
    import psutil
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if (len(cmdline) > 2 and cmdline[0].startswith(str(venv))
                and "jupyter_actors._worker" in cmdline):
            found.append(proc.pid)
    return found


@pytest.mark.kernel
@pytest.mark.timeout(300)
def test_every_notebook_runs_in_an_environment_built_from_binder_files(tmp_path, monkeypatch):
    """binder/ files → fresh venv → every notebook executes without an unexpected error."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    started = time.monotonic()
    requirements = BINDER / "requirements.txt"
    assert requirements.exists(), "binder/requirements.txt is missing"
    notebooks = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert notebooks, "no notebooks to run"

    python, python_note = _binder_python()
    venv = tmp_path / "binder-venv"
    made = _run([python, "-m", "venv", str(venv)], cwd=tmp_path, env=dict(os.environ),
                timeout=120)
    if made.returncode != 0:
        pytest.skip(f"cannot create a virtual environment with {python}: {made.stderr[-500:]}")
    env = _clean_env(venv)
    vpython = str(venv / "bin" / "python")

    # As repo2docker does: from the repository root, so "." is the repository.
    install = _run([vpython, "-m", "pip", "install", "--quiet", "-r",
                    str(requirements.relative_to(REPO))], cwd=REPO, env=env, timeout=240)
    if install.returncode != 0:
        output = install.stdout + install.stderr
        if _NETWORK_TROUBLE.search(output):
            pytest.skip("the package registry cannot be reached, so the Binder environment "
                        "cannot be built here:\n" + output[-800:])
        pytest.fail(f"pip install -r binder/requirements.txt failed:\n{output[-3000:]}")
    post_build = BINDER / "postBuild"
    if post_build.exists():
        built = _run(["bash", str(post_build)], cwd=REPO, env=env, timeout=120)
        assert built.returncode == 0, f"binder/postBuild failed:\n{built.stdout}{built.stderr}"

    # The installed package, not the checkout, is what the notebooks import.
    where = _run([vpython, "-c", "import jupyter_actors, sys; "
                  "print(jupyter_actors.__file__); print(sys.version.split()[0])"],
                 cwd=NOTEBOOKS, env=env, timeout=60)
    assert where.returncode == 0, where.stderr
    module_file, kernel_version = where.stdout.split()
    assert Path(module_file).is_relative_to(venv), module_file
    installed = time.monotonic()

    # A kernelspec for the venv's Python; nbclient finds it through JUPYTER_PATH.
    kernel_dir = tmp_path / "jupyter" / "kernels" / "binder-venv"
    kernel_dir.mkdir(parents=True)
    (kernel_dir / "kernel.json").write_text(json.dumps({
        "argv": [vpython, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Binder environment", "language": "python",
        "env": {"PATH": env["PATH"], "VIRTUAL_ENV": str(venv)},
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    for name in ("PYTHONPATH", "PYTHONHOME"):
        monkeypatch.delenv(name, raising=False)

    timings = {}
    printed = ""
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        t0 = time.monotonic()
        client = nbclient.NotebookClient(nb, kernel_name="binder-venv", timeout=120,
                                         startup_timeout=60,
                                         resources={"metadata": {"path": str(NOTEBOOKS)}})
        # Raises CellExecutionError for any error in a cell not tagged "raises-exception".
        client.execute()
        timings[path.name] = time.monotonic() - t0
        printed += "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                           for out in cell.get("outputs", ()))
    assert "pid=" in printed, "no output of an actor or a task came back to a notebook"

    # The kernels are gone, and their workers with them.
    deadline = time.monotonic() + 10
    left = _workers_of(venv)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = _workers_of(venv)
    assert not left, f"worker processes outlived their kernel: {left}"

    summary = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in timings.items())
    print(f"\nBinder environment on Python {kernel_version} ({python_note}): built in "
          f"{installed - started:.0f} s; notebooks: {summary}; total "
          f"{time.monotonic() - started:.0f} s")
