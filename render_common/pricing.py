"""The seed's render cost estimate: Lambda GB-seconds plus storage."""

from __future__ import annotations

from dataclasses import dataclass

FPS = 30
LAMBDA_USD_PER_GB_SECOND = 0.0000166667
S3_USD_PER_GB = 0.023


@dataclass(frozen=True, slots=True)
class CostEstimate:
    """Estimated cost of one render in US dollars."""

    compute_usd: float
    storage_usd: float

    @property
    def total_usd(self) -> float:
        """Compute plus storage."""
        return self.compute_usd + self.storage_usd

    def as_dict(self) -> dict[str, float]:
        """JSON form, as stored on the render row."""
        return {
            "total_usd": self.total_usd,
            "compute_usd": self.compute_usd,
            "storage_usd": self.storage_usd,
        }


def duration_seconds(frames: int) -> float:
    """Playing time of `frames` at 30 fps."""
    return frames / FPS


def estimate_cost(frames: int, quality: str) -> CostEstimate:
    """The seed's estimateRenderCost(duration, quality).

    Memory 3 GB for high quality else 2 GB, rendering twice real time, output 0.5 GB a
    minute for high quality else 0.2 GB.
    """
    duration = duration_seconds(frames)
    memory_gb = 3 if quality == "high" else 2
    compute = memory_gb * duration * 2 * LAMBDA_USD_PER_GB_SECOND
    size_gb = (duration / 60) * (0.5 if quality == "high" else 0.2)
    return CostEstimate(compute_usd=compute, storage_usd=size_gb * S3_USD_PER_GB)
