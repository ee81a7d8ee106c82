"""Where the local stack keeps its state, logs and data (under RENDER_DATA_DIR, default .data)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from render_common.config import Settings


@dataclass(frozen=True, slots=True)
class StackPaths:
    """The stack's files."""

    data: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> StackPaths:
        """Paths under the configured data directory."""
        return cls(Path(settings.data_dir).resolve())

    @property
    def stack(self) -> Path:
        """State directory."""
        return self.data / "stack"

    @property
    def pid(self) -> Path:
        """The supervisor's pid file."""
        return self.stack / "supervisor.pid"

    @property
    def state(self) -> Path:
        """JSON describing the running stack."""
        return self.stack / "state.json"

    @property
    def logs(self) -> Path:
        """One log file per service."""
        return self.data / "logs"

    @property
    def redis_dir(self) -> Path:
        """Working directory of the stack's own redis-server."""
        return self.data / "redis"
