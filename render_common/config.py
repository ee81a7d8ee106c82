"""Settings from the environment: one typed, frozen object, validated at start-up (fail fast).

`pydantic-settings` reads the environment (`Settings.from_env`); pydantic checks each
value's type, range and allowed words, and `_check_rules` the rules across fields, whenever
a Settings is made (from the environment, in code, or by `with_overrides`).
Every variable, its default and its meaning is listed in README ("Configuration").
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasGenerator, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails, PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from render_common.host_protocol import X264_PRESETS
from render_common.outbound import parse_networks

ROOT = Path(__file__).resolve().parent.parent
DEV_JWT_SECRET = "dev-insecure-change-me-render-export-jwt-secret"

Environment = Literal["development", "production"]
LogFormat = Literal["json", "text"]
RenderMode = Literal["ssr", "lambda", "auto"]
LambdaPrivacy = Literal["public", "private", "no-acl"]

AtLeastOne = Annotated[int, Field(ge=1)]
Positive = Annotated[float, Field(gt=0)]
NotNegative = Annotated[float, Field(ge=0)]
# A comma-separated list in the environment ("a, b,c"), a tuple in code.
CommaSeparated = Annotated[tuple[str, ...], NoDecode]


# SigV4 presigned URLs live at most 7 days (S3 refuses longer X-Amz-Expires).
MAX_DOWNLOAD_URL_TTL_SECONDS = 7 * 24 * 3600


class ConfigError(ValueError):
    """Raised at start-up when an environment variable is missing or malformed."""


def _default_data_dir() -> str:
    return str(ROOT / ".data")


def _env(default: Any, name: str) -> Any:
    """A field whose environment variable is not its upper-cased name."""
    return Field(default=default, validation_alias=name)


class Settings(BaseSettings):
    """All settings of all services. Field names are the lower-cased environment variables
    (the few others name theirs with `_env`). `Settings()` is the defaults, whatever the
    environment says; `Settings.from_env()` reads the environment."""

    model_config = SettingsConfigDict(
        # Each field's environment variable: its name upper-cased, unless `_env` names another.
        alias_generator=AliasGenerator(validation_alias=str.upper),
        frozen=True,
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        case_sensitive=True,
        env_ignore_empty=True,
    )

    environment: Environment = _env("development", "RENDER_ENV")
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

    # Auth (JWT bearer tokens).
    jwt_secret: str = DEV_JWT_SECRET  # JWT_SECRET (HS256)
    jwt_public_key: str = ""  # JWT_PUBLIC_KEY: PEM, enables RS256/ES256
    jwt_algorithms: CommaSeparated = ("HS256",)  # JWT_ALGORITHMS, comma separated
    jwt_issuer: str = ""  # JWT_ISSUER: required `iss` when set
    jwt_audience: str = ""  # JWT_AUDIENCE: required `aud` when set
    jwt_leeway_seconds: int = 30  # JWT_LEEWAY_SECONDS

    # Serving.
    bind_host: str = "[::]"  # BIND_HOST
    render_api_port: int = 50051  # RENDER_API_PORT
    progress_port: int = 50052  # PROGRESS_PORT
    worker_health_port: int = 50053  # WORKER_HEALTH_PORT
    max_message_bytes: int = 1 << 20  # MAX_MESSAGE_BYTES: largest request accepted
    shutdown_grace_seconds: float = 10.0  # SHUTDOWN_GRACE_SECONDS

    # Intake limits.
    max_scenes: AtLeastOne = 200  # MAX_SCENES
    max_total_frames: AtLeastOne = 30 * 60 * 30  # MAX_TOTAL_FRAMES (30 min at 30 fps)
    max_scene_frames: int = 30 * 60 * 10  # MAX_SCENE_FRAMES (10 min)
    daily_render_limit: AtLeastOne = _env(50, "USER_DAILY_EXPORT_LIMIT")  # (seed)
    concurrent_render_limit: AtLeastOne = 5  # CONCURRENT_RENDER_LIMIT
    max_render_cost_usd: Positive = _env(1.0, "MAX_RENDER_COST")  # (seed)

    # Engines and routing.
    render_mode: RenderMode = "ssr"  # RENDER_MODE (seed)
    auto_lambda_min_frames: int = 30 * 60  # AUTO_LAMBDA_MIN_FRAMES: longer goes to Lambda
    auto_max_ssr_queue: int = 20  # AUTO_MAX_SSR_QUEUE: deeper SSR queue goes to Lambda

    # Queue and worker.
    worker_concurrency: AtLeastOne = 1  # WORKER_CONCURRENCY (seed: 1 to avoid OOM)
    worker_name: str = ""  # WORKER_NAME: consumer name; default host-pid
    visibility_timeout_seconds: float = 60.0  # VISIBILITY_TIMEOUT_SECONDS
    max_attempts: AtLeastOne = 3  # MAX_ATTEMPTS (seed)
    # MAX_DELIVERIES: deliveries of one attempt's entry (the first read plus each reclaim
    # from a worker that went silent); past it the render fails RENDER_CRASHED_WORKER.
    max_deliveries: AtLeastOne = 3
    # REDIS_OUTAGE_SECONDS: how long a worker retries the Redis side of an ending attempt
    # (its terminal event, retry entry, dead letter, ack) before leaving it to the sweeper.
    redis_outage_seconds: NotNegative = 60.0
    retry_base_delay_seconds: float = 2.0  # RETRY_BASE_DELAY_SECONDS (seed, exponential)
    render_timeout_seconds: float = 1800.0  # RENDER_TIMEOUT_SECONDS (seed: 30 min)
    sweeper_interval_seconds: float = 5.0  # SWEEPER_INTERVAL_SECONDS
    sweeper_grace_seconds: float = 10.0  # SWEEPER_GRACE_SECONDS: age before re-enqueue
    render_concurrency: int = 0  # RENDER_CONCURRENCY: Chromium tabs per render; 0 = half cores
    events_maxlen: int = 1000  # EVENTS_MAXLEN: cap of render:events:{id}
    events_ttl_seconds: int = 24 * 3600  # EVENTS_TTL_SECONDS after completion

    # Progress service (fan-out of render events).
    progress_buffer_events: AtLeastOne = 256  # PROGRESS_BUFFER_EVENTS: per watcher, then ABORTED
    progress_read_block_ms: AtLeastOne = 100  # PROGRESS_READ_BLOCK_MS: XREAD BLOCK of the reader
    progress_redis_outage_seconds: NotNegative = (
        5.0  # PROGRESS_REDIS_OUTAGE_SECONDS: then UNAVAILABLE
    )
    progress_redis_pool_size: AtLeastOne = 4  # PROGRESS_REDIS_POOL_SIZE: history/snapshot reads
    progress_readers: AtLeastOne = 4  # PROGRESS_READERS: blocking XREAD connections (shards)

    # Assets.
    asset_max_bytes: int = 512 << 20  # ASSET_MAX_BYTES
    asset_timeout_seconds: float = 30.0  # ASSET_TIMEOUT_SECONDS
    asset_allowed_networks: CommaSeparated = ()  # ASSET_ALLOWED_NETWORKS: CIDRs exempt

    # Storage.
    storage_url: str = ""  # STORAGE_URL: file:///dir or s3://bucket/prefix; default data_dir
    s3_endpoint_url: str = ""  # S3_ENDPOINT_URL (R2, MinIO, moto)
    # DOWNLOAD_URL_TTL_SECONDS: lifetime of the download links signed each time a render is
    # read (S3 and private Lambda outputs); SigV4 allows at most 7 days.
    download_url_ttl_seconds: int = MAX_DOWNLOAD_URL_TTL_SECONDS

    # Remotion.
    remotion_dir: str = str(ROOT / "remotion")  # REMOTION_DIR
    browser_executable: str = _env(
        "/usr/bin/chromium-headless-shell", "REMOTION_BROWSER_EXECUTABLE"
    )
    node_binary: str = "node"  # NODE_BINARY
    # X264_PRESET: h264 encoder speed/size trade-off. veryfast: measured here 1.2x faster
    # end to end than Remotion's default (medium) at the same CRF, files no larger.
    x264_preset: str = "veryfast"  # one of the render host protocol's x264Preset enum
    # SKIP_STATIC_FRAMES: capture one frame of each still stretch the compositions report
    # (a title after its entrance, a color card) and let the encoder repeat it; the output
    # is the same, byte for byte (h264 only). false captures every frame.
    skip_static_frames: bool = True

    # Lambda.
    aws_region: str = "us-east-1"  # AWS_REGION
    lambda_function_name: str = _env("", "REMOTION_FUNCTION_NAME")
    lambda_serve_url: str = _env("", "REMOTION_SERVE_URL")
    lambda_bucket: str = _env("", "REMOTION_BUCKET")
    lambda_frames_per_lambda: int = _env(20, "REMOTION_FRAMES_PER_LAMBDA")  # (seed)
    lambda_max_retries: int = _env(3, "REMOTION_MAX_RETRIES")  # (seed)
    lambda_timeout_seconds: int = _env(900, "REMOTION_TIMEOUT_SECONDS")  # function timeout
    lambda_poll_interval_seconds: Positive = _env(2.0, "REMOTION_POLL_INTERVAL_SECONDS")
    lambda_privacy: LambdaPrivacy = _env("public", "REMOTION_PRIVACY")  # (seed)
    webhook_url: str = ""  # WEBHOOK_URL
    webhook_secret: str = ""  # WEBHOOK_SECRET
    webhook_port: int = 8090  # WEBHOOK_PORT

    # Edge (services/edge: HTTP for browsers, a gRPC client of render_api and progress).
    edge_port: int = 8080  # EDGE_PORT
    render_api_addr: str = ""  # RENDER_API_ADDR: host:port; default 127.0.0.1:RENDER_API_PORT
    progress_addr: str = ""  # PROGRESS_ADDR: host:port; default 127.0.0.1:PROGRESS_PORT
    edge_allowed_origins: CommaSeparated = ()  # EDGE_ALLOWED_ORIGINS: CORS, comma separated
    edge_heartbeat_seconds: Positive = 15.0  # EDGE_HEARTBEAT_SECONDS: SSE comment when idle
    edge_session_max_ttl_seconds: int = 3600  # EDGE_SESSION_MAX_TTL_SECONDS: cookie/query tokens
    edge_cookie_secure: bool = False  # EDGE_COOKIE_SECURE: session cookie only over HTTPS

    # Webhooks to callers (StartRender's `webhook`), delivered by render_api.
    caller_webhook_allow_http: bool = False  # CALLER_WEBHOOK_ALLOW_HTTP: dev/tests only
    caller_webhook_allowed_networks: CommaSeparated = ()  # CALLER_WEBHOOK_ALLOWED_NETWORKS
    caller_webhook_timeout_seconds: Positive = 10.0  # CALLER_WEBHOOK_TIMEOUT_SECONDS per attempt
    caller_webhook_poll_interval_seconds: Positive = 1.0  # CALLER_WEBHOOK_POLL_INTERVAL_SECONDS
    caller_webhook_concurrency: AtLeastOne = 16  # CALLER_WEBHOOK_CONCURRENCY: sends in flight
    # CALLER_WEBHOOK_RETRY_SCHEDULE: seconds before each retry (Svix's: 5 s, 5 min, 30 min,
    # 2 h, 5 h, 10 h, 10 h: eight attempts over 27.6 hours), each +-20% jitter.
    caller_webhook_retry_schedule: CommaSeparated = (
        "5",
        "300",
        "1800",
        "7200",
        "18000",
        "36000",
        "36000",
    )
    caller_webhook_secret_grace_seconds: float = 24 * 3600.0  # default rotation grace

    @property
    def effective_database_url(self) -> str:
        """DATABASE_URL, or the embedded SQLite file under the data directory."""
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite+aiosqlite:///{Path(self.data_dir) / 'render.db'}"

    @property
    def effective_render_api_addr(self) -> str:
        """RENDER_API_ADDR, or render_api on this host."""
        return self.render_api_addr or f"127.0.0.1:{self.render_api_port}"

    @property
    def effective_progress_addr(self) -> str:
        """PROGRESS_ADDR, or progress on this host."""
        return self.progress_addr or f"127.0.0.1:{self.progress_port}"

    @property
    def caller_webhook_delays(self) -> tuple[float, ...]:
        """CALLER_WEBHOOK_RETRY_SCHEDULE as seconds."""
        return tuple(float(delay) for delay in self.caller_webhook_retry_schedule)

    @property
    def lambda_configured(self) -> bool:
        """Whether the Lambda engine has what it needs to start renders."""
        return bool(self.lambda_function_name and self.lambda_serve_url)

    @property
    def effective_storage_url(self) -> str:
        """STORAGE_URL, or the data directory (outputs land in renders/ under it)."""
        return self.storage_url or f"file://{Path(self.data_dir)}"

    @field_validator("x264_preset")
    @classmethod
    def _known_x264_preset(cls, value: str) -> str:
        """The presets are listed once, in remotion/protocol/host-protocol.schema.json."""
        if value not in X264_PRESETS:
            expected = ", ".join(repr(preset) for preset in X264_PRESETS)
            raise PydanticCustomError(
                "literal_error", "Input should be {expected}", {"expected": expected}
            )
        return value

    @field_validator(
        "jwt_algorithms",
        "asset_allowed_networks",
        "edge_allowed_origins",
        "caller_webhook_allowed_networks",
        "caller_webhook_retry_schedule",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some fields replaced and checked again (tests, benchmarks)."""
        return type(self).model_validate({**self.model_dump(), **changes})

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only what the caller passes: `Settings()` is the defaults (see from_env)."""
        return (init_settings,)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate settings; raise ConfigError naming the bad variable.

        Empty variables count as unset (their default applies).
        """
        source = _EnvironSource(cls, os.environ if environ is None else environ)
        raw = source()
        try:
            settings = cls(**raw)
        except ValidationError as exc:
            raise ConfigError(_explain(exc.errors()[0], raw)) from None
        return settings

    @model_validator(mode="after")
    def _check_rules(self) -> Settings:
        """Rules across fields (ConfigError, wrapped by pydantic in its ValidationError)."""
        if (
            self.environment == "production"
            and self.jwt_secret == DEV_JWT_SECRET
            and not (self.jwt_public_key)
        ):
            raise ConfigError("JWT_SECRET or JWT_PUBLIC_KEY must be set in production")
        for origin in self.edge_allowed_origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ConfigError(f"EDGE_ALLOWED_ORIGINS: {origin!r} is not an http(s) origin")
            if origin == "*" or origin.endswith("/"):
                raise ConfigError(
                    f"EDGE_ALLOWED_ORIGINS: {origin!r} must be an exact origin like "
                    "https://editor.example (no wildcard, no trailing slash)"
                )
        if self.webhook_url and len(self.webhook_secret) < 16:
            raise ConfigError(
                "WEBHOOK_SECRET of at least 16 characters is required when WEBHOOK_URL is set"
            )
        if not 1 <= self.download_url_ttl_seconds <= MAX_DOWNLOAD_URL_TTL_SECONDS:
            raise ConfigError(
                f"DOWNLOAD_URL_TTL_SECONDS must be between 1 and {MAX_DOWNLOAD_URL_TTL_SECONDS} "
                "(7 days, the longest a SigV4 presigned URL may live)"
            )
        self._validate_caller_webhooks()
        url = self.effective_storage_url
        if not (url.startswith("file://") or url.startswith("s3://")):
            raise ConfigError("STORAGE_URL must start with file:// or s3://")
        return self

    def _validate_caller_webhooks(self) -> None:
        try:
            delays = self.caller_webhook_delays
        except ValueError as exc:
            raise ConfigError("CALLER_WEBHOOK_RETRY_SCHEDULE must be numbers of seconds") from exc
        if any(delay <= 0 for delay in delays):
            raise ConfigError("CALLER_WEBHOOK_RETRY_SCHEDULE must hold positive seconds")
        try:
            parse_networks(self.caller_webhook_allowed_networks)
        except ValueError as exc:
            raise ConfigError(f"CALLER_WEBHOOK_ALLOWED_NETWORKS: {exc}") from exc


class _EnvironSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping (os.environ, or a test's)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.env_vars = {name: value for name, value in environ.items() if value != ""}


def _env_name(field_name: str) -> str:
    """The environment variable that sets a Settings field."""
    alias = Settings.model_fields[field_name].validation_alias
    return alias if isinstance(alias, str) else field_name.upper()


def _explain(error: ErrorDetails, raw: Mapping[str, Any]) -> str:
    """One pydantic error as the operator should read it: the variable, its value, the rule."""
    field_name = str(error["loc"][0]) if error["loc"] else ""
    name = _env_name(field_name) if field_name in Settings.model_fields else field_name
    value = raw.get(name, raw.get(field_name))
    context = error.get("ctx") or {}
    kind = error["type"]
    if isinstance(context.get("error"), ConfigError):
        return str(context["error"])  # a rule across fields (_check_rules)
    if kind == "bool_parsing":
        return f"{name}={value!r} is not a boolean (true or false)"
    if kind in ("int_parsing", "float_parsing"):
        return f"{name}={value!r} is not a valid {kind.removesuffix('_parsing')}"
    if kind == "literal_error":
        return f"{name}={value!r}: must be one of {context.get('expected', '')}"
    if kind == "greater_than_equal":
        bound = context.get("ge")
        return f"{name} must not be negative" if bound == 0 else f"{name} must be at least {bound}"
    if kind == "greater_than":
        return f"{name} must be positive"
    return f"{name}={value!r}: {error['msg']}"


def normalise_database_url(url: str) -> str:
    """Map plain postgresql:// and sqlite:// URLs onto their async drivers."""
    for plain, async_driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return async_driver + url[len(plain) :]
    return url
