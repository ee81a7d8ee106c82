"""Settings from the environment: one typed, frozen object, validated at start-up (fail fast).

One module per section (core, serving, render_api, worker, edge, storage); `settings.py`
joins them into `Settings`, `environ.py` reads and explains the environment. Every variable,
its default and its meaning is listed in README ("Configuration").
"""

from render_common.config.base import (
    DEV_JWT_SECRET,
    MAX_DOWNLOAD_URL_TTL_SECONDS,
    ROOT,
    ConfigError,
    normalise_database_url,
)
from render_common.config.settings import Settings

__all__ = [
    "DEV_JWT_SECRET",
    "MAX_DOWNLOAD_URL_TTL_SECONDS",
    "ROOT",
    "ConfigError",
    "Settings",
    "normalise_database_url",
]
