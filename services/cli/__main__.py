"""`render`: command-line client of render-export."""

from __future__ import annotations

import argparse
import sys

from render_common.auth import mint_token
from render_common.config import ConfigError, Settings


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `render` command."""
    parser = argparse.ArgumentParser(prog="render", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    token = commands.add_parser(
        "token", help="print a JWT for USER that the running config accepts"
    )
    token.add_argument("user")
    token.add_argument("--ttl", type=int, default=24 * 3600, help="lifetime in seconds")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"render: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command == "token":
        print(mint_token(settings, args.user, ttl_seconds=args.ttl))
    return 0


if __name__ == "__main__":
    sys.exit(main())
