"""Settings from the environment: names, defaults, parsing, the rules and their messages."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from render_common.config import ConfigError, Settings


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("1", True), ("Yes", True), ("false", False), ("0", False), ("no", False)],
)
def test_boolean_settings_parse(raw: str, expected: bool) -> None:
    assert Settings.from_env({"SKIP_STATIC_FRAMES": raw}).skip_static_frames is expected


def test_boolean_settings_default_and_refuse_other_words() -> None:
    assert Settings.from_env({}).skip_static_frames is True
    with pytest.raises(ConfigError, match="SKIP_STATIC_FRAMES='sometimes' is not a boolean"):
        Settings.from_env({"SKIP_STATIC_FRAMES": "sometimes"})


def test_settings_ignore_the_environment_unless_read_from_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`Settings()` is the defaults; `from_env()` reads os.environ (empty counts as unset)."""
    monkeypatch.setenv("MAX_SCENES", "7")
    monkeypatch.setenv("PROGRESS_PORT", "")
    assert Settings().max_scenes == 200
    from_env = Settings.from_env()
    assert (from_env.max_scenes, from_env.progress_port) == (7, 50052)


def test_same_variable_names_including_the_renamed_ones() -> None:
    settings = Settings.from_env(
        {
            "RENDER_ENV": "production",
            "JWT_SECRET": "a-real-secret",
            "RENDER_DATA_DIR": "/tmp/render-data",
            "USER_DAILY_EXPORT_LIMIT": "9",
            "MAX_RENDER_COST": "2.5",
            "REMOTION_FUNCTION_NAME": "fn",
            "REMOTION_PRIVACY": "private",
            "REMOTION_POLL_INTERVAL_SECONDS": "0.5",
            "REDIS_OUTAGE_SECONDS": "0",
        }
    )
    assert settings.environment == "production"
    assert settings.data_dir == "/tmp/render-data"
    assert settings.daily_render_limit == 9
    assert settings.max_render_cost_usd == 2.5
    assert settings.lambda_function_name == "fn"
    assert settings.lambda_privacy == "private"
    assert settings.lambda_poll_interval_seconds == 0.5
    assert settings.redis_outage_seconds == 0.0


def test_comma_separated_lists() -> None:
    settings = Settings.from_env(
        {"JWT_ALGORITHMS": "HS256, RS256,", "ASSET_ALLOWED_NETWORKS": "10.0.0.0/8"}
    )
    assert settings.jwt_algorithms == ("HS256", "RS256")
    assert settings.asset_allowed_networks == ("10.0.0.0/8",)
    assert Settings().edge_allowed_origins == ()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"RENDER_ENV": "staging"}, "RENDER_ENV='staging': must be one of"),
        ({"RENDER_MODE": "gpu"}, "RENDER_MODE='gpu': must be one of 'ssr', 'lambda' or 'auto'"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT='xml': must be one of"),
        ({"X264_PRESET": "fastest"}, "X264_PRESET='fastest': must be one of 'ultrafast'"),
        ({"REMOTION_PRIVACY": "secret"}, "REMOTION_PRIVACY='secret': must be one of"),
        ({"MAX_SCENES": "0"}, "MAX_SCENES must be at least 1"),
        ({"WORKER_CONCURRENCY": "many"}, "WORKER_CONCURRENCY='many' is not a valid int"),
        ({"SHUTDOWN_GRACE_SECONDS": "soon"}, "SHUTDOWN_GRACE_SECONDS='soon' is not a valid float"),
        ({"DB_STATEMENT_TIMEOUT_SECONDS": "0"}, "DB_STATEMENT_TIMEOUT_SECONDS must be positive"),
        ({"MAX_RENDER_COST": "-1"}, "MAX_RENDER_COST must be positive"),
        ({"REDIS_OUTAGE_SECONDS": "-1"}, "REDIS_OUTAGE_SECONDS must not be negative"),
        ({"RENDER_ENV": "production"}, "JWT_SECRET or JWT_PUBLIC_KEY must be set in production"),
        ({"STORAGE_URL": "ftp://host/dir"}, "STORAGE_URL must start with file:// or s3://"),
        ({"EDGE_ALLOWED_ORIGINS": "https://a.example/"}, "must be an exact origin"),
    ],
)
def test_bad_values_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(environ)
    assert message in str(raised.value)


def test_overrides_are_checked_like_the_environment() -> None:
    settings = Settings().with_overrides(max_scenes=5, render_mode="auto")
    assert (settings.max_scenes, settings.render_mode) == (5, "auto")
    with pytest.raises(ValidationError):
        Settings().with_overrides(max_scenes=0)
    with pytest.raises(ValidationError):
        Settings().with_overrides(render_mode="gpu")
    with pytest.raises(ValidationError):
        Settings().with_overrides(no_such_setting=1)
    with pytest.raises(ValidationError):
        settings.max_scenes = 6  # frozen
