"""Caption documents as editors and subtitle sites write them, parsed into one cue list."""

from __future__ import annotations

import pytest

from render_common.captions import CaptionSyntaxError, Cue, parse_srt, parse_vtt, to_vtt

YOUTUBE_VTT = (
    "\ufeffWEBVTT\r\nKind: captions\r\nLanguage: en\r\n\r\n"
    "NOTE exported by an editor\r\nspanning two lines\r\n\r\n"
    "STYLE\r\n::cue { color: yellow }\r\n\r\n"
    "intro\r\n00:00.500 --> 00:02.000 align:start position:10% line:90%\r\n"
    "<v Roger Bingham>We are in New York City</v>\r\n\r\n"
    "00:01.500 --> 00:03.250\r\n<i>Overlapping</i> &amp; <c.yellow>styled</c>\r\n"
    "second <00:02.000>line\r\n\r\n"
    "01:00:00.000 --> 01:00:01.000\r\nan hour in\r\n"
)

EDITOR_SRT = (
    '\ufeff1\r\n00:00:00,000 --> 00:00:01,200\r\n{\\an8}<font color="#ffff00">Top</font>\r\n\r\n'
    "2\r\n00:00:01,200 --> 00:00:02,5 X1:100 X2:600 Y1:50 Y2:100\r\n"
    "<b>Two</b>\r\nlines\r\n\r\n\r\n"
    "3\r\n00:00:03,000 --> 00:00:04,000\r\n\r\n"  # an empty cue: dropped
    "00:00:05,000 --> 00:00:06,000\r\nno index line"
)


def test_vtt_from_a_caption_site() -> None:
    assert parse_vtt(YOUTUBE_VTT) == [
        Cue(0.5, 2.0, "We are in New York City"),
        Cue(1.5, 3.25, "Overlapping & styled\nsecond line"),
        Cue(3600.0, 3601.0, "an hour in"),
    ]


def test_srt_from_an_editor() -> None:
    assert parse_srt(EDITOR_SRT) == [
        Cue(0.0, 1.2, "Top"),
        Cue(1.2, 2.5, "Two\nlines"),
        Cue(5.0, 6.0, "no index line"),
    ]


def test_zero_length_cues_are_dropped_not_refused() -> None:
    """Speech-to-text exports hold cues that start and end together; no frame shows them."""
    document = (
        "1\r\n00:00:00,500 --> 00:00:01,000\r\nfirst\r\n\r\n"
        "2\r\n00:00:01,000 --> 00:00:01,000\r\num\r\n\r\n"
        "3\r\n00:00:01,000 --> 00:00:02,000\r\nsecond\r\n"
    )
    assert parse_srt(document) == [Cue(0.5, 1.0, "first"), Cue(1.0, 2.0, "second")]
    vtt = "WEBVTT\n\n00:01.000 --> 00:01.000\num\n\n00:01.000 --> 00:00.500\nbackwards\n"
    assert parse_vtt(vtt) == [Cue(1.0, 0.5, "backwards")]  # refused by validation


def test_cr_only_and_dot_millis_in_srt() -> None:
    assert parse_srt("1\r00:00:01.000 --> 00:00:02.000\rMac line ends\r") == [
        Cue(1.0, 2.0, "Mac line ends")
    ]


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ("1\n00:00:01,000 -> 00:00:02,000\nx\n", "line 1"),
        ("1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:61:00,000 --> 00:62:00,000\nx\n", "line 6"),
        ("just text\n", "line 1"),
    ],
)
def test_srt_errors_name_the_line(document: str, problem: str) -> None:
    with pytest.raises(CaptionSyntaxError, match=problem):
        parse_srt(document)


def test_vtt_needs_its_header() -> None:
    with pytest.raises(CaptionSyntaxError, match="WEBVTT"):
        parse_vtt("00:01.000 --> 00:02.000\nno header\n")


def test_written_vtt_reads_back() -> None:
    cues = [
        Cue(0.0, 1.5, "a <b> & c --> d"),
        Cue(1.0, 3723.004, "two\n\n\nlines"),
    ]
    document = to_vtt(cues)
    assert "-->" not in document.split("\n")[4]  # the text's arrow is escaped
    assert "01:02:03.004" in document
    assert parse_vtt(document) == [
        Cue(0.0, 1.5, "a <b> & c --> d"),
        Cue(1.0, 3723.004, "two\nlines"),
    ]
