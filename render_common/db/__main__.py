"""`python -m render_common.db migrate`: bring DATABASE_URL's schema to head, once, under a
lock (safe to run concurrently). `check` exits 1 unless the schema is at head."""

from __future__ import annotations

import argparse
import asyncio
import sys

from render_common.config import Settings
from render_common.db.engine import engine_for
from render_common.db.migrate import SchemaNotCurrent, migrate, require_current_schema
from render_common.logs import configure_logging


async def _check(settings: Settings) -> int:
    engine = engine_for(settings, pool_size=1)
    try:
        await require_current_schema(engine)
    except SchemaNotCurrent as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    print("schema at head")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command; the exit status is the result."""
    parser = argparse.ArgumentParser(prog="python -m render_common.db")
    parser.add_argument("command", choices=["migrate", "check"])
    parser.add_argument(
        "--lock-wait-seconds",
        type=float,
        default=300.0,
        help="how long to wait for another migration to finish (migrate)",
    )
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    if args.command == "check":
        return asyncio.run(_check(settings))
    outcome = asyncio.run(
        migrate(
            settings.effective_database_url,
            lock_wait_seconds=args.lock_wait_seconds,
            connect_timeout=max(10.0, settings.db_connect_timeout_seconds),
        )
    )
    state = "migrated" if outcome.applied else "already at head"
    print(f"schema {state}: {outcome.before or 'empty'} -> {outcome.after}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
