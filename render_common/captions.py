"""Caption tracks: WebVTT and SubRip documents parsed into one cue list, and WebVTT out.

Parsing is lenient where real files are sloppy and strict where the meaning is unclear:
a byte-order mark, CRLF or CR line ends, cue identifiers, cue settings (`align:start`),
NOTE/STYLE/REGION blocks, hour-less timestamps (`01:02.500`), a comma or a dot before the
milliseconds, and styling (`<i>`, `<v Speaker>`, `<c.red>`, `{\\an8}`, `<font ...>`) are
all accepted; tags are dropped and entities decoded, line breaks kept; empty and
zero-length cues are dropped. A timing line that cannot be read is an error naming its
line number. Overlapping cues are kept as given.

Times are seconds (floats, millisecond precision). The stored and composition form of a
cue is `{"start": s, "end": s, "text": str}`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

_TIMESTAMP = r"(?:(\d{1,3}):)?(\d{1,2}):(\d{1,2})[.,](\d{1,3})"
_TIMING = re.compile(rf"^\s*{_TIMESTAMP}\s*-->\s*{_TIMESTAMP}(?:\s+.*)?$")
_TAG = re.compile(r"<[^>\n]*>")
_ASS_OVERRIDE = re.compile(r"\{\\[^}\n]*\}")
_BLANK_RUN = re.compile(r"\n{2,}")
_VTT_BLOCKS = ("NOTE", "STYLE", "REGION")


class CaptionSyntaxError(ValueError):
    """A caption document that cannot be read; the message names the line."""


@dataclass(frozen=True, slots=True)
class Cue:
    """One caption: text shown from `start` to `end` (seconds from the video's start)."""

    start: float
    end: float
    text: str
    # The timing line's number in the document it was read from (0: not from a document).
    line: int = field(default=0, compare=False)

    def as_json(self) -> dict[str, float | str]:
        """The stored and composition form."""
        return {"start": self.start, "end": self.end, "text": self.text}

    @classmethod
    def from_json(cls, value: dict[str, object]) -> Cue:
        """From the stored form."""
        return cls(float(str(value["start"])), float(str(value["end"])), str(value["text"]))


def _lines(document: str) -> list[str]:
    """The document's lines: BOM dropped, any line end accepted."""
    return document.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _seconds(hours: str | None, minutes: str, seconds: str, millis: str) -> float:
    if int(minutes) > 59 or int(seconds) > 59:
        raise ValueError("minutes and seconds must be below 60")
    total_ms = ((int(hours or 0) * 60 + int(minutes)) * 60 + int(seconds)) * 1000
    return (total_ms + int(millis.ljust(3, "0"))) / 1000


def parse_timing(line: str, number: int) -> tuple[float, float]:
    """`start --> end [settings]` of a cue; CaptionSyntaxError naming line `number`."""
    match = _TIMING.match(line)
    if match is None:
        raise CaptionSyntaxError(f"line {number}: expected 'start --> end', got {line[:60]!r}")
    groups = match.groups()
    try:
        return _seconds(*groups[:4]), _seconds(*groups[4:])
    except ValueError as exc:
        raise CaptionSyntaxError(f"line {number}: {exc}") from None


def clean_text(lines: Iterable[str]) -> str:
    """Cue text as people read it: tags dropped, entities decoded, lines trimmed."""
    text = "\n".join(lines)
    text = html.unescape(_TAG.sub("", _ASS_OVERRIDE.sub("", text)))
    text = text.replace("\u00a0", " ")
    return "\n".join(line.strip() for line in text.split("\n")).strip()


def _blocks(lines: list[str], first: int) -> Iterator[tuple[int, list[str]]]:
    """Runs of non-blank lines, with the (1-based) number of their first line."""
    block: list[str] = []
    start = first
    for number, line in enumerate(lines[first - 1 :], start=first):
        if line.strip():
            if not block:
                start = number
            block.append(line)
        elif block:
            yield start, block
            block = []
    if block:
        yield start, block


def _cue(block: list[str], start_line: int) -> Cue | None:
    """The cue of a block (an optional identifier line, the timing, the text)."""
    timing_at = next((i for i, line in enumerate(block[:2]) if "-->" in line), None)
    if timing_at is None:
        raise CaptionSyntaxError(f"line {start_line}: a cue without a 'start --> end' line")
    start, end = parse_timing(block[timing_at], start_line + timing_at)
    text = clean_text(block[timing_at + 1 :])
    # A zero-length cue (speech-to-text and editors leave them) shows on no frame, in
    # players as here: dropped like an empty one. An end before the start stays an error.
    line = start_line + timing_at
    return Cue(start, end, text, line) if text and end != start else None


def parse_vtt(document: str) -> list[Cue]:
    """The cues of a WebVTT document (empty cues dropped)."""
    lines = _lines(document)
    header = lines[0] if lines else ""
    if not (header == "WEBVTT" or header.startswith(("WEBVTT ", "WEBVTT\t"))):
        raise CaptionSyntaxError("line 1: a WebVTT document starts with 'WEBVTT'")
    cues: list[Cue] = []
    for start_line, block in _blocks(lines, 2):
        keyword = block[0].split(" ", 1)[0].split("\t", 1)[0]
        if (start_line == 2 or keyword in _VTT_BLOCKS) and "-->" not in block[0]:
            continue  # header metadata, NOTE, STYLE, REGION
        cue = _cue(block, start_line)
        if cue is not None:
            cues.append(cue)
    return cues


def parse_srt(document: str) -> list[Cue]:
    """The cues of a SubRip document (index lines optional, empty cues dropped)."""
    cues: list[Cue] = []
    for start_line, block in _blocks(_lines(document), 1):
        cue = _cue(block, start_line)
        if cue is not None:
            cues.append(cue)
    return cues


def _timestamp(seconds: float) -> str:
    total_ms = max(0, round(seconds * 1000))
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def _escaped(text: str) -> str:
    """Cue text safe in WebVTT: markup characters escaped, no blank line inside."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BLANK_RUN.sub("\n", escaped).strip("\n")


def to_vtt(cues: Iterable[Cue]) -> str:
    """A WebVTT document of the cues, numbered in order."""
    parts = ["WEBVTT", ""]
    for number, cue in enumerate(cues, start=1):
        parts += [str(number), f"{_timestamp(cue.start)} --> {_timestamp(cue.end)}"]
        parts += [_escaped(cue.text), ""]
    return "\n".join(parts)
