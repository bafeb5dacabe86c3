"""Command line: ``python -m jupyter_actors demo [--quick]``."""
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
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run
        run(0.1 if args.quick else 1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
