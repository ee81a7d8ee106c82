"""What every settings section shares: the repository root, the value types, ConfigError."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field
from pydantic_settings import NoDecode

ROOT = Path(__file__).resolve().parent.parent.parent
DEV_JWT_SECRET = "dev-insecure-change-me-render-export-jwt-secret"

# SigV4 presigned URLs live at most 7 days (S3 refuses longer X-Amz-Expires).
MAX_DOWNLOAD_URL_TTL_SECONDS = 7 * 24 * 3600

Environment = Literal["development", "production"]
LogFormat = Literal["json", "text"]
RenderMode = Literal["ssr", "lambda", "auto"]
LambdaPrivacy = Literal["public", "private", "no-acl"]


class ConfigError(ValueError):
    """Raised at start-up when an environment variable is missing or malformed."""


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


AtLeastOne = Annotated[int, Field(ge=1)]
Positive = Annotated[float, Field(gt=0)]
NotNegative = Annotated[float, Field(ge=0)]
# A comma-separated list in the environment ("a, b,c"), a tuple in code.
CommaSeparated = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split_commas)]


def env(default: Any, name: str) -> Any:
    """A field whose environment variable is not its upper-cased name."""
    return Field(default=default, validation_alias=name)


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
