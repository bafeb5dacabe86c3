"""Command line: ``python -m jupyter_actors demo [--quick]`` and ``run script.py [args]``."""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jupyter_actors")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the async-actor tutorial's scenarios and show "
                                       "their interleavings and wall times")
    demo.add_argument("--quick", action="store_true",
                      help="shrink every sleep tenfold (the tutorial uses 1-2 s)")
    run = sub.add_parser("run", help="run a Ray program as it is: `import ray` gives "
                                     "jupyter_actors (no cluster)")
    run.add_argument("script", help="the Python file to run")
    run.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run as run_demo
        run_demo(0.1 if args.quick else 1.0)
    elif args.command == "run":
        return _run_script(args.script, args.args)
    return 0


def _run_script(script: str, args: list) -> int:
    import os
    import runpy

    from . import use_as_ray
    if not os.path.isfile(script):
        print(f"python -m jupyter_actors run: no such file: {script}", file=sys.stderr)
        return 2
    use_as_ray()
    sys.argv = [script] + list(args)
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
