"""Quality presets and format codecs, exactly as the seed's qualitySettings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class QualityPreset:
    """Encoder settings of one quality level."""

    crf: int
    jpeg_quality: int
    width: int
    height: int
    video_bitrate: str


QUALITY_PRESETS: dict[str, QualityPreset] = {
    "low": QualityPreset(crf=28, jpeg_quality=70, width=1280, height=720, video_bitrate="1M"),
    "medium": QualityPreset(crf=23, jpeg_quality=80, width=1920, height=1080, video_bitrate="2.5M"),
    "high": QualityPreset(crf=18, jpeg_quality=90, width=1920, height=1080, video_bitrate="5M"),
}

# What every SSR render asks of Remotion besides the quality preset (the render host's
# request, services/render_worker/engines/ssr.py): frames are captured as JPEG and encoded
# to 4:2:0 (Remotion's defaults, named here so that `bench/ssr.py` gives `npx remotion
# render` exactly the settings the worker uses).
FRAME_IMAGE_FORMAT = "jpeg"
PIXEL_FORMAT = "yuv420p"

# Remotion codec per output format (webm uses VP8: much faster to encode than VP9 here).
# mp3 and wav are audio only: the timeline's sound, no picture and no thumbnail.
FORMAT_CODECS: dict[str, str] = {
    "mp4": "h264",
    "webm": "vp8",
    "gif": "gif",
    "mp3": "mp3",
    "wav": "wav",
}
FORMAT_EXTENSIONS: dict[str, str] = {
    "mp4": "mp4",
    "webm": "webm",
    "gif": "gif",
    "mp3": "mp3",
    "wav": "wav",
}
FORMAT_CONTENT_TYPES: dict[str, str] = {
    "mp4": "video/mp4",
    "webm": "video/webm",
    "gif": "image/gif",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
}
AUDIO_ONLY_FORMATS = frozenset({"mp3", "wav"})
