"""The command line of a private redis-server: the local stack's, and the tests'."""

from __future__ import annotations


def redis_server_argv(
    binary: str, port: int, directory: str, *, appendonly: bool = False, maxclients: int = 0
) -> list[str]:
    """redis-server on 127.0.0.1:`port`, no RDB snapshots, AOF only if asked, its files in
    `directory` (`maxclients` 0: Redis' default)."""
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "yes" if appendonly else "no", "--dir", directory]
    if maxclients:
        argv += ["--maxclients", str(maxclients)]
    return argv
