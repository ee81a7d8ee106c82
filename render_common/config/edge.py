"""Settings of progress (fan-out of render events) and edge (HTTP for browsers)."""

from __future__ import annotations

from pydantic import BaseModel

from render_common.config.base import AtLeastOne, CommaSeparated, ConfigError, NotNegative, Positive


class ProgressSection(BaseModel):
    """The progress service's readers and watcher buffers."""

    progress_buffer_events: AtLeastOne = 256  # PROGRESS_BUFFER_EVENTS: per watcher, then ABORTED
    progress_read_block_ms: AtLeastOne = 100  # PROGRESS_READ_BLOCK_MS: XREAD BLOCK of the reader
    progress_redis_outage_seconds: NotNegative = (
        5.0  # PROGRESS_REDIS_OUTAGE_SECONDS: then UNAVAILABLE
    )
    progress_redis_pool_size: AtLeastOne = 4  # PROGRESS_REDIS_POOL_SIZE: history/snapshot reads
    # PROGRESS_READERS: blocking XREAD connections (shards). Each event makes its shard
    # name all of its streams again, which Redis registers key by key: at 1,000 watched
    # renders 16 shards cost Redis ~430 us of CPU per event, 4 shards ~690 us.
    progress_readers: AtLeastOne = 16


class EdgeSection(BaseModel):
    """services/edge: HTTP for browsers, a gRPC client of render_api and progress."""

    edge_port: int = 8080  # EDGE_PORT
    edge_allowed_origins: CommaSeparated = ()  # EDGE_ALLOWED_ORIGINS: CORS, comma separated
    edge_heartbeat_seconds: Positive = 15.0  # EDGE_HEARTBEAT_SECONDS: SSE comment when idle
    edge_session_max_ttl_seconds: int = 3600  # EDGE_SESSION_MAX_TTL_SECONDS: cookie/query tokens
    edge_cookie_secure: bool = False  # EDGE_COOKIE_SECURE: session cookie only over HTTPS

    def check_edge_origins(self) -> None:
        """Raise ConfigError unless every allowed origin is an exact http(s) origin."""
        for origin in self.edge_allowed_origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ConfigError(f"EDGE_ALLOWED_ORIGINS: {origin!r} is not an http(s) origin")
            if origin == "*" or origin.endswith("/"):
                raise ConfigError(
                    f"EDGE_ALLOWED_ORIGINS: {origin!r} must be an exact origin like "
                    "https://editor.example (no wildcard, no trailing slash)"
                )
