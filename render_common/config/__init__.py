"""Settings from the environment: one typed, frozen object, validated at start-up (fail fast).

One module per section (core, serving, render_api, worker, edge, storage); `settings.py`
joins them into `Settings`, `environ.py` reads and explains the environment. Every variable,
its default and its meaning is listed in README ("Configuration").

`Settings` is imported on first use: importing this package costs no pydantic, so the
`render` CLI, which reads its own few settings (`client.py`), starts without it.
"""

from typing import TYPE_CHECKING, Any

from render_common.config.plain import (
    DEV_JWT_SECRET,
    MAX_DOWNLOAD_URL_TTL_SECONDS,
    ROOT,
    ConfigError,
    normalise_database_url,
)

if TYPE_CHECKING:
    from render_common.config.settings import Settings


def __getattr__(name: str) -> Any:
    """`Settings`, imported when first asked for (PEP 562)."""
    if name == "Settings":
        from render_common.config.settings import Settings

        return Settings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEV_JWT_SECRET",
    "MAX_DOWNLOAD_URL_TTL_SECONDS",
    "ROOT",
    "ConfigError",
    "Settings",
    "normalise_database_url",
]
