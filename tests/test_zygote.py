"""Workers forked from a zygote: their own session, no listening socket, death with the
driver, a dead zygote replaced, preloading, and fresh interpreters where fork is off."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import psutil
import pytest

import jupyter_actors as ray
from jupyter_actors import exceptions
from tests.helpers import GUARD, pid_gone

ROOT = os.path.dirname(os.path.dirname(__file__))


@ray.remote
class Probe:
    def where(self):
        return os.getpid(), os.getppid(), os.getsid(0)

    def imported_by(self, module):
        return __import__(module).IMPORTED_BY, os.getpid()

    def site_facts(self):
        import builtins
        return {"no_site": sys.flags.no_site, "exit": callable(getattr(builtins, "exit", None)),
                "help": callable(getattr(builtins, "help", None)),
                "distutils_shim": "_distutils_hack" in sys.modules, "sys_path": sys.path}

    def driver_runtime_loaded(self):
        return ("jupyter_actors._backend.local.runtime" in sys.modules
                or "JUPYTER_ACTORS_WORKER" in os.environ)


def zygotes() -> list:
    found = []
    for child in psutil.Process().children():
        try:
            if "zygote" in child.cmdline():
                found.append(child)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue  # another test's process, already ended
    return found


def test_actors_are_forked_by_one_zygote_in_their_own_session():
    """Each worker is the zygote's child, leads its own session, and listens on nothing."""
    ray.init()
    actors = [Probe.remote() for _ in range(3)]
    places = ray.get([a.where.remote() for a in actors], timeout=GUARD)
    [zygote] = zygotes()
    for pid, ppid, sid in places:
        assert ppid == zygote.pid and sid == pid
    for proc in [zygote] + [psutil.Process(pid) for pid, _, _ in places]:
        listening = [c for c in proc.net_connections(kind="all")
                     if c.status == psutil.CONN_LISTEN]
        assert not listening


def test_workers_hold_worker_code_only():
    """The driver's runtime is not imported in the zygote or its workers (less to start,
    less memory), and the marker that says so does not reach what a worker starts."""
    ray.init()
    assert ray.get(Probe.remote().driver_runtime_loaded.remote(), timeout=GUARD) is False


def test_a_dead_zygote_is_replaced_and_its_workers_live_on():
    """SIGKILL to the zygote: old actors keep answering, new ones start, exits still reported."""
    ray.init()
    old = Probe.remote()
    old_pid = ray.get(old.where.remote(), timeout=GUARD)[0]
    [zygote] = zygotes()
    zygote.kill()
    assert pid_gone(zygote.pid)
    assert ray.get(old.where.remote(), timeout=GUARD)[0] == old_pid
    new = Probe.remote()
    pid, ppid, _ = ray.get(new.where.remote(), timeout=GUARD)
    assert ppid != zygote.pid and ppid in [z.pid for z in zygotes()]
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(exceptions.ActorDiedError, match="killed by SIGKILL"):
        ray.get(new.where.remote(), timeout=GUARD)


DRIVER = textwrap.dedent("""
    import os, sys, threading, time
    import psutil
    import jupyter_actors as ray
    from tests.helpers import FileEvent

    @ray.remote
    class Idle:
        def pid(self):
            return os.getpid()

    @ray.remote
    class Stuck:
        async def pid(self):
            return os.getpid()

        def block(self, path):
            # A sync method blocks an async actor's loop, its only reader once the
            # reading thread is gone: then only the lifeline can tell it the driver died.
            deadline = time.monotonic() + 30
            while any(t.name == "reader" for t in threading.enumerate()):
                assert time.monotonic() < deadline
                time.sleep(0.005)
            FileEvent(path).set()
            time.sleep(600)

    @ray.remote
    def task_pid():
        return os.getpid()

    idle, stuck = Idle.remote(), Stuck.remote()
    pids = ray.get([idle.pid.remote(), stuck.pid.remote(), task_pid.remote()])
    stuck.block.remote(sys.argv[1])
    stuck.pid.remote()  # wakes the reading thread, which then leaves reading to the loop
    assert FileEvent(sys.argv[1]).wait()
    zygote = [p.pid for p in psutil.Process().children() if "zygote" in p.cmdline()]
    print(" ".join(map(str, pids + zygote)), flush=True)
    time.sleep(600)
""")


def test_killing_the_driver_ends_the_zygote_and_every_forked_worker(tmp_path):
    """Driver SIGKILLed: the zygote, idle actors, a blocked async actor, task workers end."""
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(tmp_path / "blocked")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        pids = [int(p) for p in line.split()]
        assert len(pids) == 4  # two actors, a task worker, the zygote
    finally:
        proc.kill()
        proc.wait(GUARD)
    for pid in pids:
        assert pid_gone(pid), f"process {pid} outlived its driver"


def test_a_driver_that_exits_right_after_init_leaves_no_traceback_and_no_zygote():
    """The zygote may still be starting when the driver exits: its "ready" meets a closed
    socket, and it ends quietly instead of printing a BrokenPipeError traceback."""
    script = textwrap.dedent("""
        import os, psutil
        import jupyter_actors as ray
        ray.init()
        print(*[p.pid for p in psutil.Process().children()], flush=True)
    """)
    for _ in range(3):   # the exit races the zygote's start: more than one try
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              cwd=ROOT, timeout=GUARD * 2)
        assert done.returncode == 0 and done.stderr == "", done.stderr
        children = [int(pid) for pid in done.stdout.split()]
        assert children, "init() started no zygote"
        for pid in children:
            assert pid_gone(pid), f"the zygote {pid} outlived its driver"


def test_the_zygote_starts_without_site_and_workers_have_what_it_gave():
    """Where site did nothing beyond sys.path, the zygote skips it (python -S): workers
    import from the driver's sys.path and keep site's builtins and setuptools' shim."""
    ray.init()
    facts = ray.get(Probe.remote().site_facts.remote(), timeout=GUARD)
    assert facts["no_site"] == 1
    assert facts["exit"] and facts["help"]
    assert facts["distutils_shim"] == any(type(f).__module__ == "_distutils_hack"
                                          for f in sys.meta_path)
    assert set(facts["sys_path"]) >= {p for p in sys.path if p}


def test_a_sitecustomize_makes_the_zygote_run_site(tmp_path):
    """What site runs (here a sitecustomize) cannot be known in advance: then the zygote
    starts with site, and workers see its effect."""
    (tmp_path / "sitecustomize.py").write_text("import builtins\nbuiltins.CUSTOMIZED = 42\n")
    script = textwrap.dedent("""
        import builtins, sys
        import jupyter_actors as ray

        @ray.remote
        class A:
            def facts(self):
                import builtins, sys
                return sys.flags.no_site, getattr(builtins, "CUSTOMIZED", None)

        print(*ray.get(A.remote().facts.remote(), timeout=60), builtins.CUSTOMIZED)
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT]))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=GUARD * 2)
    assert done.stdout.split() == ["0", "42", "42"], done.stderr


def test_fresh_interpreters_where_fork_is_not_used():
    """The spawn fallback: workers are the driver's own children and nothing forks them."""
    script = textwrap.dedent("""
        import os, psutil
        import jupyter_actors as ray

        @ray.remote
        class A:
            def ppid(self):
                return os.getppid()

        actor = A.remote()
        print(ray.get(actor.ppid.remote()) == os.getpid(),
              any("zygote" in p.cmdline() for p in psutil.Process().children()))
    """)
    env = dict(os.environ, JUPYTER_ACTORS_START_METHOD="spawn")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=GUARD * 2)
    assert done.stdout.split() == ["True", "False"], done.stderr


def test_preload_imports_once_in_the_zygote_and_user_modules_in_each_worker(tmp_path,
                                                                            monkeypatch):
    """init(preload=[m]): m was imported before the fork; a module an actor imports, after."""
    for name in ("preloaded_mod", "lazy_mod"):
        (tmp_path / f"{name}.py").write_text("import os\nIMPORTED_BY = os.getpid()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ray.init(preload=["preloaded_mod"])
    actor = Probe.remote()
    imported_by, pid = ray.get(actor.imported_by.remote("preloaded_mod"), timeout=GUARD)
    assert imported_by == zygotes()[0].pid and imported_by != pid
    imported_by, pid = ray.get(actor.imported_by.remote("lazy_mod"), timeout=GUARD)
    assert imported_by == pid


@pytest.mark.parametrize("preload, error", [
    (["no_such_module_here"], ValueError),
    ("numpy", TypeError),
])
def test_a_bad_preload_fails_at_init(preload, error):
    with pytest.raises(error, match="preload"):
        ray.init(preload=preload)
    assert not ray.is_initialized()


def test_the_zygote_caches_our_bytecode_and_keeps_the_users_setting(tmp_path):
    """With PYTHONDONTWRITEBYTECODE set, the zygote still caches jupyter_actors' bytecode
    (compiling it at every start would double the zygote's start), while the user's
    modules, preloaded or imported by an actor, are written nowhere, as asked."""
    import shutil
    package = tmp_path / "pkg" / "jupyter_actors"
    shutil.copytree(os.path.join(ROOT, "jupyter_actors"), package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    user = tmp_path / "user"
    user.mkdir()
    for name in ("preloaded_mod", "lazy_mod"):
        (user / f"{name}.py").write_text("VALUE = 1\n")
    script = textwrap.dedent("""
        import jupyter_actors as ray
        ray.init(preload=["preloaded_mod"])

        @ray.remote
        class A:
            def value(self):
                import lazy_mod
                return lazy_mod.VALUE

        print(ray.__file__, ray.get(A.remote().value.remote(), timeout=60))
    """)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1",
               PYTHONPATH=os.pathsep.join([str(tmp_path / "pkg"), str(user)]))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=str(tmp_path), env=env, timeout=GUARD * 2)
    assert done.stdout.split() == [str(package / "__init__.py"), "1"], done.stderr
    cached = {p.name.split(".")[0] for p in (package / "_worker" / "__pycache__").iterdir()}
    assert {"__main__", "zygote", "channel"} <= cached
    assert not (user / "__pycache__").exists()
