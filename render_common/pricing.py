"""What a render is estimated to cost, each engine on its own terms.

- Lambda: the seed's estimateRenderCost (Lambda GB-seconds plus S3 storage), whose
  figures hold for 30 fps at the quality's own size (low 1280x720, medium and high
  1920x1080); both parts scale with the frames and the pixels of each frame.
- SSR: our own workers' time, SSR_WORKER_SECONDS_PER_FRAME per 1920x1080 frame (scaled
  by the frame's pixels) priced at SSR_COST_PER_WORKER_SECOND, plus the same storage.

So an SSR estimate is a price of worker time, never a Lambda price. README ("Cost model")
states the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from render_common.output_shape import quality_size

FPS = 30  # the default frame rate, and the one the seed's figures are for
LAMBDA_USD_PER_GB_SECOND = 0.0000166667
S3_USD_PER_GB = 0.023
SSR_REFERENCE_PIXELS = 1920 * 1080  # SSR_WORKER_SECONDS_PER_FRAME is for this size


@dataclass(frozen=True, slots=True)
class Output:
    """What is priced: the frames of the video and the size of each."""

    frames: int
    quality: str
    width: int = 0  # 0: the quality preset's size
    height: int = 0
    fps: int = FPS

    @property
    def pixels(self) -> int:
        """Pixels of one frame."""
        if self.width and self.height:
            return self.width * self.height
        width, height = quality_size(self.quality)
        return width * height

    @property
    def duration_seconds(self) -> float:
        """Playing time."""
        return self.frames / (self.fps or FPS)


@dataclass(frozen=True, slots=True)
class CostEstimate:
    """Estimated cost of one render in US dollars, on one engine."""

    compute_usd: float
    storage_usd: float
    engine: str = "lambda"
    worker_seconds: float = 0.0  # SSR only: estimated seconds of one worker

    @property
    def total_usd(self) -> float:
        """Compute plus storage."""
        return self.compute_usd + self.storage_usd

    def as_dict(self) -> dict[str, Any]:
        """JSON form, as stored on the render row (`engine`: whose price it is)."""
        stored: dict[str, Any] = {
            "total_usd": self.total_usd,
            "compute_usd": self.compute_usd,
            "storage_usd": self.storage_usd,
            "engine": self.engine,
        }
        if self.engine == "ssr":
            stored["worker_seconds"] = self.worker_seconds
        return stored


def _seed_scale(output: Output) -> float:
    """How much more work than the seed's reference (30 fps at the quality's own size)."""
    width, height = quality_size(output.quality)
    return (output.frames / FPS) * output.pixels / (width * height)


def storage_usd(output: Output) -> float:
    """The seed's storage: 0.5 GB a minute for high quality else 0.2 GB, at S3's price;
    per 1,800 frames (a minute at 30 fps) of the quality's own size."""
    minutes = _seed_scale(output) / 60
    size_gb = minutes * (0.5 if output.quality == "high" else 0.2)
    return size_gb * S3_USD_PER_GB


def lambda_cost(output: Output) -> CostEstimate:
    """The seed's estimateRenderCost(duration, quality).

    Memory 3 GB for high quality else 2 GB, rendering twice real time; at another frame
    rate or size, twice the time of the same frames at 30 fps, scaled by the pixels.
    """
    seconds = _seed_scale(output)
    memory_gb = 3 if output.quality == "high" else 2
    compute = memory_gb * seconds * 2 * LAMBDA_USD_PER_GB_SECOND
    return CostEstimate(compute_usd=compute, storage_usd=storage_usd(output), engine="lambda")


def ssr_cost(
    output: Output, *, usd_per_worker_second: float, worker_seconds_per_frame: float
) -> CostEstimate:
    """Worker time: `worker_seconds_per_frame` per 1920x1080 frame, scaled by the pixels,
    at `usd_per_worker_second`; plus the same storage as Lambda."""
    seconds = output.frames * worker_seconds_per_frame * output.pixels / SSR_REFERENCE_PIXELS
    return CostEstimate(
        compute_usd=seconds * usd_per_worker_second,
        storage_usd=storage_usd(output),
        engine="ssr",
        worker_seconds=seconds,
    )


def estimate_cost(frames: int, quality: str) -> CostEstimate:
    """The seed's Lambda estimate at 30 fps and the quality's own size."""
    return lambda_cost(Output(frames=frames, quality=quality))
