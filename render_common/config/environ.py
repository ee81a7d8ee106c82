"""Reading the environment, and explaining a bad value the way an operator reads it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, EnvSettingsSource

from render_common.config.base import ConfigError


class EnvironSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping (os.environ, or a test's)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.env_vars = {name: value for name, value in environ.items() if value != ""}


def env_name(settings_cls: type[BaseSettings], field_name: str) -> str:
    """The environment variable that sets a Settings field."""
    alias = settings_cls.model_fields[field_name].validation_alias
    return alias if isinstance(alias, str) else field_name.upper()


def explain(settings_cls: type[BaseSettings], error: ErrorDetails, raw: Mapping[str, Any]) -> str:
    """One pydantic error as the operator should read it: the variable, its value, the rule."""
    field_name = str(error["loc"][0]) if error["loc"] else ""
    known = field_name in settings_cls.model_fields
    name = env_name(settings_cls, field_name) if known else field_name
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
