"""The Settings object: every section's fields, read from the environment, checked together.

`pydantic-settings` reads the environment (`Settings.from_env`); pydantic checks each
value's type, range and allowed words, and `_check_rules` the rules across fields, whenever
a Settings is made (from the environment, in code, or by `with_overrides`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import AliasGenerator, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from render_common.config.base import DEV_JWT_SECRET, MAX_DOWNLOAD_URL_TTL_SECONDS, ConfigError
from render_common.config.core import CoreSection
from render_common.config.edge import EdgeSection, ProgressSection
from render_common.config.environ import EnvironSource, explain
from render_common.config.render_api import CallerWebhookSection, IntakeSection
from render_common.config.serving import AuthSection, ServingSection
from render_common.config.storage import StorageSection
from render_common.config.worker import LambdaSection, QueueSection, RemotionSection


class Settings(  # the sections in reverse: pydantic lists the last base's fields first
    CallerWebhookSection,
    EdgeSection,
    LambdaSection,
    RemotionSection,
    StorageSection,
    ProgressSection,
    QueueSection,
    IntakeSection,
    ServingSection,
    AuthSection,
    CoreSection,
    BaseSettings,
):
    """All settings of all services, one section per module of this package. Field names are
    the lower-cased environment variables (the few others name theirs with `env`).
    `Settings()` is the defaults, whatever the environment says; `Settings.from_env()` reads
    the environment."""

    model_config = SettingsConfigDict(
        # Each field's environment variable: its name upper-cased, unless `env` names another.
        alias_generator=AliasGenerator(validation_alias=str.upper),
        frozen=True,
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        case_sensitive=True,
        env_ignore_empty=True,
    )

    @property
    def effective_storage_url(self) -> str:
        """STORAGE_URL, or the data directory (outputs land in renders/ under it)."""
        return self.storage_url or f"file://{Path(self.data_dir)}"

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
        source = EnvironSource(cls, os.environ if environ is None else environ)
        raw = source()
        try:
            settings = cls(**raw)
        except ValidationError as exc:
            raise ConfigError(explain(cls, exc.errors()[0], raw)) from None
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
        self.check_edge_origins()
        if self.webhook_url and len(self.webhook_secret) < 16:
            raise ConfigError(
                "WEBHOOK_SECRET of at least 16 characters is required when WEBHOOK_URL is set"
            )
        if not 1 <= self.download_url_ttl_seconds <= MAX_DOWNLOAD_URL_TTL_SECONDS:
            raise ConfigError(
                f"DOWNLOAD_URL_TTL_SECONDS must be between 1 and {MAX_DOWNLOAD_URL_TTL_SECONDS} "
                "(7 days, the longest a SigV4 presigned URL may live)"
            )
        self.check_caller_webhooks()
        url = self.effective_storage_url
        if not (url.startswith("file://") or url.startswith("s3://")):
            raise ConfigError("STORAGE_URL must start with file:// or s3://")
        return self
