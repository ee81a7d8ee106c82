"""Settings from the environment: booleans."""

from __future__ import annotations

import pytest

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
