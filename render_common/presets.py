"""Quality presets and the output formats' containers.

A quality is a CRF and a JPEG quality; the picture's size comes from the output shape
(render_common/output_shape.py: aspect ratio and tier, LOW 720p and MEDIUM/HIGH 1080p by
default). There is no bitrate: the seed's 1M/2.5M/5M were never applied (Remotion takes
CRF or a bitrate, and CRF won), and a fixed cap per quality would starve 2160p while being
no cap at all at 720p. CRF keeps the quality constant at every size.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class QualityPreset:
    """Encoder settings of one quality level."""

    crf: int
    jpeg_quality: int


QUALITY_PRESETS: dict[str, QualityPreset] = {
    "low": QualityPreset(crf=28, jpeg_quality=70),
    "medium": QualityPreset(crf=23, jpeg_quality=80),
    "high": QualityPreset(crf=18, jpeg_quality=90),
}

# What every opaque SSR render asks of Remotion besides the quality preset (the render
# host's request, services/render_worker/engines/ssr.py): frames are captured as JPEG and
# encoded to 4:2:0 (Remotion's defaults, named here so that `bench/ssr.py` gives `npx
# remotion render` exactly the settings the worker uses).
FRAME_IMAGE_FORMAT = "jpeg"
PIXEL_FORMAT = "yuv420p"


@dataclass(frozen=True, slots=True)
class Encoding:
    """How frames are captured and encoded for one codec (with or without alpha)."""

    image_format: str
    pixel_format: str | None  # None: the codec's own (GIF)
    prores_profile: str | None = None


def encoding(codec: str, transparent: bool) -> Encoding:
    """Capture and pixel format of a codec: PNG frames and an alpha pixel format to keep
    transparency (VP9 yuva420p, ProRes 4444 yuva444p10le); otherwise JPEG and 4:2:0, except
    ProRes, which is 4:2:2 10-bit (422 HQ) as editors expect."""
    if codec == "gif":
        return Encoding(FRAME_IMAGE_FORMAT, None)
    if codec == "prores":
        if transparent:
            return Encoding("png", "yuva444p10le", "4444")
        return Encoding(FRAME_IMAGE_FORMAT, "yuv422p10le", "hq")
    if transparent:
        return Encoding("png", "yuva420p")
    return Encoding(FRAME_IMAGE_FORMAT, PIXEL_FORMAT)


# Codecs Remotion takes no CRF for: GIF has none, ProRes is steered by its profile.
NO_CRF_CODECS = frozenset({"gif", "prores"})

# Default Remotion codec per output format (webm uses VP8: much faster to encode than VP9
# here); a request may choose another (render_common/output_shape.py). mp3 and wav are
# audio only: the timeline's sound, no picture and no thumbnail.
FORMAT_CODECS: dict[str, str] = {
    "mp4": "h264",
    "webm": "vp8",
    "gif": "gif",
    "mov": "prores",
    "mp3": "mp3",
    "wav": "wav",
}
FORMAT_EXTENSIONS: dict[str, str] = {
    "mp4": "mp4",
    "webm": "webm",
    "gif": "gif",
    "mov": "mov",
    "mp3": "mp3",
    "wav": "wav",
}
FORMAT_CONTENT_TYPES: dict[str, str] = {
    "mp4": "video/mp4",
    "webm": "video/webm",
    "gif": "image/gif",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "mov": "video/quicktime",
}
AUDIO_ONLY_FORMATS = frozenset({"mp3", "wav"})


@dataclass(frozen=True, slots=True)
class OutputEncoding:
    """What either engine asks of Remotion to encode a render (the same on SSR and Lambda)."""

    codec: str
    extension: str
    crf: int | None  # None: audio only, or a codec without CRF (NO_CRF_CODECS)
    jpeg_quality: int
    image_format: str
    pixel_format: str | None  # None: audio only, or the codec's own (GIF)
    prores_profile: str | None
    audio_only: bool


def output_encoding(fmt: str, quality: str, video_codec: str, transparent: bool) -> OutputEncoding:
    """A render's encoding: an audio-only format's own codec (no picture: no CRF, no pixel
    format), else the shape's video codec; the quality's CRF and JPEG quality; the
    codec's capture and pixel format (`encoding`)."""
    preset = QUALITY_PRESETS[quality]
    audio_only = fmt in AUDIO_ONLY_FORMATS
    codec = FORMAT_CODECS[fmt] if audio_only else video_codec
    encoder = encoding(codec, transparent)
    return OutputEncoding(
        codec=codec,
        extension=FORMAT_EXTENSIONS[fmt],
        crf=None if audio_only or codec in NO_CRF_CODECS else preset.crf,
        jpeg_quality=preset.jpeg_quality,
        image_format=encoder.image_format,
        pixel_format=None if audio_only else encoder.pixel_format,
        prores_profile=encoder.prores_profile,
        audio_only=audio_only,
    )
