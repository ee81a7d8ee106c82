"""The sound, caption and poster flags of `render start` and `render estimate`.

`--soundtrack URL` with its volume, fades, start offset and loop; `--captions FILE` (a
WebVTT or SubRip file, told apart by its `.srt` extension) with a style or sidecar only;
`--poster-frame N` on `start`. The service checks every value (BadRequest field paths).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from render.v1 import render_pb2

from render_common.resources import CAPTION_STYLE_TO_PROTO, SOUNDTRACK_FIELDS
from services.cli.scenes import ScenesFileError


def add_media_options(command: argparse.ArgumentParser) -> None:
    """The soundtrack and caption flags (all optional)."""
    sound = command.add_argument_group("soundtrack")
    sound.add_argument("--soundtrack", metavar="URL", help="music under the whole render")
    # Each flag's dest is its render.v1.Soundtrack field (SOUNDTRACK_FIELDS).
    sound.add_argument(
        "--soundtrack-volume", dest="volume", type=float, metavar="0-2", help="default 1"
    )
    sound.add_argument(
        "--fade-in", dest="fade_in_seconds", type=float, default=0.0, metavar="SECONDS"
    )
    sound.add_argument(
        "--fade-out", dest="fade_out_seconds", type=float, default=0.0, metavar="SECONDS"
    )
    sound.add_argument(
        "--soundtrack-start",
        dest="start_from_seconds",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="skip into it",
    )
    sound.add_argument("--loop", action="store_true", help="repeat music shorter than the video")
    captions = command.add_argument_group("captions")
    captions.add_argument("--captions", type=Path, metavar="FILE", help=".vtt or .srt file")
    captions.add_argument("--caption-style", choices=CAPTION_STYLE_TO_PROTO, help="default boxed")
    captions.add_argument(
        "--captions-sidecar-only", action="store_true", help="write the .vtt, do not burn in"
    )


def add_poster_option(command: argparse.ArgumentParser) -> None:
    """`--poster-frame N`: the frame the thumbnail shows (default: the service's)."""
    command.add_argument("--poster-frame", type=int, metavar="N", help="thumbnail frame")


def media_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The request fields of the sound and caption flags given (unset ones left out)."""
    fields: dict[str, Any] = {}
    if args.soundtrack:
        fields["soundtrack"] = render_pb2.Soundtrack(
            src=args.soundtrack,
            **{name: getattr(args, name) for name, _, _ in SOUNDTRACK_FIELDS if name != "src"},
        )
    if args.captions:
        fields["captions"] = read_captions(
            args.captions, args.caption_style, args.captions_sidecar_only
        )
    if getattr(args, "poster_frame", None) is not None:
        fields["poster_frame"] = args.poster_frame
    return fields


def read_captions(path: Path, style: str | None, sidecar_only: bool) -> render_pb2.Captions:
    """A Captions message from a caption file; unreadable files are ScenesFileError."""
    try:
        document = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenesFileError(f"cannot read captions {path}: {exc}") from exc
    captions = render_pb2.Captions(
        style=CAPTION_STYLE_TO_PROTO[style] if style else render_pb2.CAPTION_STYLE_UNSPECIFIED,
        sidecar_only=sidecar_only,
    )
    if path.suffix.lower() == ".srt":
        captions.srt = document
    else:
        captions.vtt = document
    return captions
