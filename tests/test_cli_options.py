"""The CLI's output flags become the request's output fields."""

from __future__ import annotations

from pathlib import Path

import pytest
from render.v1 import render_pb2, render_service_pb2

from services.cli.__main__ import _spec_fields, parser
from services.cli.output import render_summary


def test_output_flags_fill_the_request_fields() -> None:
    args = parser().parse_args(
        [
            "estimate",
            "s.json",
            "--format",
            "mov",
            "--aspect-ratio",
            "9:16",
            "--resolution",
            "2160p",
            "--fps",
            "60",
            "--codec",
            "prores",
            "--transparent",
        ]
    )
    fields = _spec_fields(args)
    assert fields["format"] == render_pb2.FORMAT_MOV
    assert fields["aspect_ratio"] == render_pb2.ASPECT_RATIO_9_16
    assert fields["resolution"] == render_pb2.RESOLUTION_2160P
    assert fields["fps"] == 60 and fields["transparent"] is True
    assert fields["video_codec"] == render_pb2.VIDEO_CODEC_PRORES
    sized = _spec_fields(parser().parse_args(["start", "s.json", "--size", "1080x1350"]))
    assert (sized["width"], sized["height"]) == (1080, 1350)
    plain = _spec_fields(parser().parse_args(["start", "s.json"]))
    assert set(plain) == {"format", "quality", "engine"}  # the service's defaults apply


@pytest.mark.parametrize("flags", [["--size", "1080"], ["--fps", "29"], ["--aspect-ratio", "2:1"]])
def test_bad_flags_are_usage_errors(flags: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parser().parse_args(["start", "s.json", *flags])
    assert caught.value.code == 2


def test_sound_caption_and_poster_flags_fill_the_request_fields(tmp_path: Path) -> None:
    srt = tmp_path / "talk.SRT"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n")
    args = parser().parse_args(
        [
            "start",
            "s.json",
            "--soundtrack",
            "https://cdn.example.com/music.mp3",
            "--soundtrack-volume",
            "0.5",
            "--fade-out",
            "2",
            "--loop",
            "--captions",
            str(srt),
            "--caption-style",
            "outline",
            "--poster-frame",
            "0",
        ]
    )
    fields = _spec_fields(args)
    soundtrack = fields["soundtrack"]
    assert soundtrack.src == "https://cdn.example.com/music.mp3" and soundtrack.loop
    assert soundtrack.volume == 0.5 and soundtrack.fade_out_seconds == 2.0
    assert fields["captions"].srt.startswith("1\n") and not fields["captions"].vtt
    assert fields["captions"].style == render_pb2.CAPTION_STYLE_OUTLINE
    assert fields["poster_frame"] == 0  # frame 0 is a real choice, not "unset"
    request = render_service_pb2.StartRenderRequest(**fields)
    assert request.HasField("poster_frame") and request.soundtrack.HasField("volume")
    plain = _spec_fields(parser().parse_args(["start", "s.json", "--soundtrack", "https://a/b"]))
    assert not plain["soundtrack"].HasField("volume")  # the service's default, 1


def test_estimate_has_no_poster_flag() -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["estimate", "s.json", "--poster-frame", "3"])


def test_the_summary_links_the_captions_sidecar() -> None:
    """`render start --captions ... --watch` and `render get` print where the .vtt is."""
    render = render_pb2.Render(
        render_id="r",
        output_url="file:///data/renders/p/r.mp4",
        captions_url="file:///data/renders/p/r.vtt",
    )
    summary = render_summary(render).splitlines()
    assert "output   file:///data/renders/p/r.mp4" in summary
    assert "captions file:///data/renders/p/r.vtt" in summary
    assert not [
        line for line in render_summary(render_pb2.Render()).splitlines() if "captions" in line
    ]
