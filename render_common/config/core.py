"""Settings every service reads: environment, data directory, database, Redis, logs, timeouts."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from render_common.config.base import (
    ROOT,
    Environment,
    LogFormat,
    Positive,
    env,
    normalise_database_url,
)


def _default_data_dir() -> str:
    return str(ROOT / ".data")


class CoreSection(BaseModel):
    """Where state lives and how long a call to it may take."""

    environment: Environment = env("development", "RENDER_ENV")
    data_dir: str = Field(default_factory=_default_data_dir, validation_alias="RENDER_DATA_DIR")
    database_url: str = ""  # DATABASE_URL; empty means SQLite under data_dir
    redis_url: str = "redis://127.0.0.1:6379/0"  # REDIS_URL
    log_level: str = "INFO"  # LOG_LEVEL
    log_format: LogFormat = "json"  # LOG_FORMAT

    # Timeouts of every call to PostgreSQL and Redis: a silent dependency answers UNAVAILABLE
    # within a few seconds instead of hanging the caller until its deadline.
    db_connect_timeout_seconds: Positive = 3.0  # DB_CONNECT_TIMEOUT_SECONDS: connect + handshake
    # DB_STATEMENT_TIMEOUT_SECONDS: PostgreSQL's statement_timeout; the client gives up half a
    # second later (a stalled connection) and discards that connection.
    db_statement_timeout_seconds: Positive = 5.0
    db_pool_timeout_seconds: Positive = 5.0  # DB_POOL_TIMEOUT_SECONDS: wait for a pooled connection
    redis_connect_timeout_seconds: Positive = 2.0  # REDIS_CONNECT_TIMEOUT_SECONDS
    # REDIS_SOCKET_TIMEOUT_SECONDS: a command's reply; blocking reads (XREAD/XREADGROUP BLOCK,
    # BLMOVE) wait their block time plus this.
    redis_socket_timeout_seconds: Positive = 3.0

    @property
    def effective_database_url(self) -> str:
        """DATABASE_URL, or the embedded SQLite file under the data directory."""
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite+aiosqlite:///{Path(self.data_dir) / 'render.db'}"
