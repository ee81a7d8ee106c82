"""`python -m services.local_stack up|down|demo|supervise`: the local stack (make up/down/demo)."""

from __future__ import annotations

import argparse
import sys

from render_common.config import ConfigError, Settings
from services.local_stack import control, demo
from services.local_stack.paths import StackPaths
from services.local_stack.supervisor import supervise


def main(argv: list[str] | None = None) -> int:
    """Dispatch a stack command."""
    parser = argparse.ArgumentParser(prog="python -m services.local_stack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "demo", "supervise"])
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    paths = StackPaths.from_settings(settings)
    if args.command == "up":
        control.up(settings, paths)
        return 0
    if args.command == "down":
        control.down(paths)
        return 0
    if args.command == "demo":
        return demo.run(settings)
    return supervise(paths)


if __name__ == "__main__":
    sys.exit(main())
