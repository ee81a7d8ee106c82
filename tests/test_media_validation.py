"""Soundtrack and captions at intake: stored forms, and refusals with BadRequest field paths."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import duration_pb2
from render.v1 import render_pb2

from render_common.config import Settings
from render_common.errors import InvalidArgument
from services.render_api.catalogue import SceneCatalogue
from services.render_api.validation import RequestValidator
from tests.support.scenes import scene, start_request

TRACK = "https://cdn.example.com/music.mp3"


@pytest.fixture(scope="module")
def validator() -> RequestValidator:
    return RequestValidator(Settings(), SceneCatalogue.load())


def seconds(value: float) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromNanoseconds(round(value * 1e9))
    return out


def cue(start: float, end: float, text: str) -> render_pb2.CaptionCue:
    return render_pb2.CaptionCue(start=seconds(start), end=seconds(end), text=text)


def refused(validator: RequestValidator, **fields: Any) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        validator.start_request(start_request(**fields))
    return dict(caught.value.violations)


def test_soundtrack_and_cues_are_stored_for_the_composition(validator: RequestValidator) -> None:
    spec = validator.start_request(
        start_request(
            soundtrack=render_pb2.Soundtrack(
                src=TRACK, volume=0.5, fade_in_seconds=0.5, fade_out_seconds=1, loop=True
            ),
            captions=render_pb2.Captions(
                cues=[cue(1.0, 1.5, "second"), cue(0.0, 9.0, "first, cut at the end")],
                style=render_pb2.CAPTION_STYLE_OUTLINE,
            ),
        )
    )
    assert spec.soundtrack == {
        "src": TRACK,
        "volume": 0.5,
        "fadeInSeconds": 0.5,
        "fadeOutSeconds": 1.0,
        "startFromSeconds": 0.0,
        "loop": True,
    }
    # 50 frames at 30 fps: the first cue is cut at the video's end; cues are sorted.
    assert spec.captions == {
        "cues": [
            {"start": 0.0, "end": 50 / 30, "text": "first, cut at the end"},
            {"start": 1.0, "end": 1.5, "text": "second"},
        ],
        "style": "outline",
        "burn": True,
    }
    plain = validator.start_request(start_request())
    assert plain.soundtrack is None and plain.captions is None
    assert spec.fingerprint() != plain.fingerprint()


def test_srt_document_and_sidecar_only(validator: RequestValidator) -> None:
    srt = "1\r\n00:00:00,500 --> 00:00:01,000\r\n<i>Hi</i>\r\n"
    spec = validator.start_request(
        start_request(captions=render_pb2.Captions(srt=srt, sidecar_only=True))
    )
    assert spec.captions == {
        "cues": [{"start": 0.5, "end": 1.0, "text": "Hi"}],
        "style": "boxed",
        "burn": False,
    }


def test_soundtrack_refusals(validator: RequestValidator) -> None:
    bad = render_pb2.Soundtrack(
        src="ftp://example.com/a.mp3",
        volume=2.5,
        fade_in_seconds=-1,
        start_from_seconds=float("nan"),
    )
    violations = refused(validator, soundtrack=bad)
    assert set(violations) == {
        "soundtrack.src",
        "soundtrack.volume",
        "soundtrack.fade_in_seconds",
        "soundtrack.start_from_seconds",
    }
    long_fades = render_pb2.Soundtrack(src=TRACK, fade_in_seconds=1, fade_out_seconds=1)
    assert (
        "exceed the video's length"
        in refused(validator, soundtrack=long_fades)["soundtrack.fade_out_seconds"]
    )
    assert "soundtrack" in refused(
        validator, soundtrack=render_pb2.Soundtrack(src=TRACK), format=render_pb2.FORMAT_GIF
    )


def test_caption_refusals(validator: RequestValidator) -> None:
    cues = [cue(0, 1, "ok"), cue(0.5, 0.5, "empty span"), cue(2, 3, "after the end"), cue(0, 1, "")]
    violations = refused(validator, captions=render_pb2.Captions(cues=cues))
    assert set(violations) == {
        "captions.cues[1].end",
        "captions.cues[2].start",
        "captions.cues[3].text",
    }
    both = render_pb2.Captions(vtt="WEBVTT\n", srt="1\n")
    assert "exactly one" in refused(validator, captions=both)["captions"]
    broken = render_pb2.Captions(vtt="WEBVTT\n\n00:01.000 -> 00:02.000\nx\n")
    assert "line 3" in refused(validator, captions=broken)["captions.vtt"]
    late = render_pb2.Captions(vtt="WEBVTT\n\n00:05.000 --> 00:06.000\nlate\n")
    assert refused(validator, captions=late)["captions.vtt"].startswith("cue 1 (line 3): start")
    # In a long file the line finds the cue: empty and zero-length cues are not counted.
    skipped = "1\n00:00:00,500 --> 00:00:00,500\num\n\n2\n00:00:05,000 --> 00:00:06,000\nlate\n"
    problem = refused(validator, captions=render_pb2.Captions(srt=skipped))["captions.srt"]
    assert problem.startswith("cue 1 (line 6): start"), problem
    many = render_pb2.Captions(cues=[cue(0, 1, "x")] * 2001)
    assert "at most 2000 cues" in refused(validator, captions=many)["captions.cues"]


def test_audio_only_needs_sound(validator: RequestValidator) -> None:
    assert "needs a soundtrack" in refused(validator, format=render_pb2.FORMAT_MP3)["format"]
    clip = scene("video", 30, src="https://cdn.example.com/a.mp4", volume=0.5)
    spec = validator.start_request(start_request(format=render_pb2.FORMAT_WAV, scenes=[clip]))
    assert spec.format == "wav"
    silent = scene("video", 30, src="https://cdn.example.com/a.mp4", volume=0)
    assert "format" in refused(validator, format=render_pb2.FORMAT_WAV, scenes=[silent])
    loud = scene("video", 30, src="https://cdn.example.com/a.mp4", volume=3)
    assert "scenes[0].props.volume" in refused(validator, scenes=[loud])
