"""What the settings share that needs no pydantic: the `render` CLI reads its few settings
(render_common/config/client.py) without importing pydantic-settings, about 0.5 s of CPU
at every command's start."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
DEV_JWT_SECRET = "dev-insecure-change-me-render-export-jwt-secret"
RENDER_API_PORT = 50051
PROGRESS_PORT = 50052

# SigV4 presigned URLs live at most 7 days (S3 refuses longer X-Amz-Expires).
MAX_DOWNLOAD_URL_TTL_SECONDS = 7 * 24 * 3600


class ConfigError(ValueError):
    """Raised at start-up when an environment variable is missing or malformed."""


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
