"""What every settings section shares: the value types, and (from plain.py) the repository
root, ConfigError and the defaults that need no pydantic."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field
from pydantic_settings import NoDecode

from render_common.config.plain import (
    DEV_JWT_SECRET,
    MAX_DOWNLOAD_URL_TTL_SECONDS,
    ROOT,
    ConfigError,
    normalise_database_url,
)

__all__ = [
    "DEV_JWT_SECRET",
    "MAX_DOWNLOAD_URL_TTL_SECONDS",
    "ROOT",
    "AtLeastOne",
    "CommaSeparated",
    "ConfigError",
    "Environment",
    "LambdaPrivacy",
    "LogFormat",
    "NotNegative",
    "Positive",
    "RenderMode",
    "env",
    "normalise_database_url",
]

Environment = Literal["development", "production"]
LogFormat = Literal["json", "text"]
RenderMode = Literal["ssr", "lambda", "auto"]
LambdaPrivacy = Literal["public", "private", "no-acl"]


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
