"""ray.util's ActorPool and Queue, Ray's module paths, and running Ray programs as they are."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import pytest

import jupyter_actors as ray
from jupyter_actors.util import ActorPool
from jupyter_actors.util.queue import Empty, Full, Queue
from tests.helpers import GUARD, FileEvent

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@ray.remote
class Doubler:
    def double(self, v):
        return 2 * v

    def wait_then_double(self, v, gate):
        FileEvent(gate).wait(GUARD)
        return 2 * v

    def pid(self):
        return os.getpid()


def test_actor_pool_map_keeps_order_and_map_unordered_gives_all():
    pool = ActorPool([Doubler.remote(), Doubler.remote()])
    assert list(pool.map(lambda a, v: a.double.remote(v), range(10))) == [2 * v for v in range(10)]
    assert sorted(pool.map_unordered(lambda a, v: a.double.remote(v), range(10))) == \
        [2 * v for v in range(10)]


def test_actor_pool_submit_get_next_and_idle_actors(events):
    a, b = Doubler.remote(), Doubler.remote()
    pool = ActorPool([a, b])
    assert pool.has_free() and not pool.has_next()
    gate = events("gate")
    pool.submit(lambda actor, v: actor.wait_then_double.remote(v, gate.path), 1)
    pool.submit(lambda actor, v: actor.double.remote(v), 2)
    pool.submit(lambda actor, v: actor.double.remote(v), 3)   # waits for a free actor
    assert not pool.has_free() and pool.pop_idle() is None
    with pytest.raises(TimeoutError):
        pool.get_next(timeout=0.05)  # the first call waits on the gate; it stays pending
    assert pool.get_next_unordered(timeout=GUARD) == 4  # the free actor's call
    assert pool.get_next_unordered(timeout=GUARD) == 6  # the one that waited for an actor
    gate.set()
    assert pool.get_next_unordered(timeout=GUARD) == 2 and not pool.has_next()
    assert pool.has_free()
    idle = pool.pop_idle()
    assert idle in (a, b)
    with pytest.raises(ValueError, match="already belongs"):
        pool.push(a if idle == b else b)
    pool.push(idle)
    with pytest.raises(StopIteration):
        pool.get_next()


@ray.remote
def pool_inside_a_task(actors):
    pool = ActorPool(actors)
    return list(pool.map(lambda a, v: a.double.remote(v), [5, 6, 7]))


def test_actor_pool_inside_a_worker():
    actors = [Doubler.remote(), Doubler.remote()]
    assert ray.get(pool_inside_a_task.remote(actors), timeout=GUARD) == [10, 12, 14]


def test_queue_put_get_nowait_timeouts_and_sizes():
    q = Queue(maxsize=2)
    assert q.empty() and not q.full() and q.qsize() == 0 and len(q) == 0
    q.put(1)
    q.put_nowait(2)
    assert q.full() and q.size() == 2
    with pytest.raises(Full):
        q.put_nowait(3)
    with pytest.raises(Full):
        q.put(3, timeout=0.05)
    assert q.get() == 1 and q.get_nowait() == 2
    with pytest.raises(Empty):
        q.get_nowait()
    with pytest.raises(Empty):
        q.get(timeout=0.05)
    q.put_nowait_batch([7, 8])
    assert q.get_nowait_batch(2) == [7, 8]
    with pytest.raises(ValueError):
        q.get(timeout=-1)
    import queue
    assert issubclass(Empty, queue.Empty) and issubclass(Full, queue.Full)
    q.shutdown()


def test_queue_async_methods():
    q = Queue()

    async def main():
        await q.put_async("a")
        return await q.get_async(timeout=GUARD)

    assert asyncio.run(main()) == "a"


@ray.remote
def producer(q, n):
    for i in range(n):
        q.put(i)
    q.put(None)
    return n


@ray.remote
class Consumer:
    def drain(self, q):
        items = []
        while True:
            item = q.get(timeout=GUARD)
            if item is None:
                return items
            items.append(item)


def test_queue_between_a_task_and_an_actor():
    """A blocking get in one worker waits for a put from another: the queue is shared."""
    q = Queue()
    consumer = Consumer.remote()
    drained = consumer.drain.remote(q)  # blocks in get() until the producer puts
    assert ray.get(producer.remote(q, 50), timeout=GUARD) == 50
    assert ray.get(drained, timeout=GUARD) == list(range(50))


def test_ray_module_paths_exist():
    import jupyter_actors.actor as actor
    import jupyter_actors.runtime_context as runtime_context
    import jupyter_actors.util.queue as util_queue
    assert actor.ActorHandle is ray.ActorHandle and callable(actor.exit_actor)
    assert callable(runtime_context.get_runtime_context)
    assert util_queue.Queue is Queue and ray.util.ActorPool is ActorPool


RAY_PROGRAM = """\
import sys
import ray
from ray.util.queue import Queue
from ray.util import ActorPool
from ray.exceptions import RayActorError

@ray.remote
class Squarer:
    def square(self, x):
        return x * x

ray.init()
pool = ActorPool([Squarer.remote(), Squarer.remote()])
print("squares", list(pool.map(lambda a, v: a.square.remote(v), [1, 2, 3])))
q = Queue()
q.put("hello")
print("queue", q.get())
print("module", ray.__name__, sys.argv[1:])
try:
    import ray.dag
except ImportError as exc:
    print("missing", "ray.dag" in str(exc))
"""


def test_python_m_jupyter_actors_run_runs_a_ray_program_unchanged(tmp_path):
    """`import ray` in the script (and in its workers) gives jupyter_actors."""
    script = tmp_path / "program.py"
    script.write_text(RAY_PROGRAM)
    proc = subprocess.run([sys.executable, "-m", "jupyter_actors", "run", str(script), "x", "y"],
                          capture_output=True, text=True, timeout=4 * GUARD, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == ["squares [1, 4, 9]", "queue hello",
                                        "module jupyter_actors ['x', 'y']", "missing True"]


def test_use_as_ray_reaches_modules_the_workers_import(tmp_path):
    """A module that says `import ray`, imported by an actor's code, gets jupyter_actors."""
    (tmp_path / "helper_mod.py").write_text(textwrap.dedent("""\
        import ray
        def backend_name():
            return ray.__name__
        """))
    (tmp_path / "main.py").write_text(textwrap.dedent("""\
        import jupyter_actors
        jupyter_actors.use_as_ray()
        import ray
        @ray.remote
        def where():
            import helper_mod
            return helper_mod.backend_name()
        print(ray.get(where.remote()))
        """))
    proc = subprocess.run([sys.executable, "main.py"], capture_output=True, text=True,
                          timeout=4 * GUARD, cwd=tmp_path,
                          env=dict(os.environ, PYTHONPATH=ROOT + os.pathsep + str(tmp_path)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "jupyter_actors"
