"""The output options of `render start` and `render estimate`: shape, fps, codec, alpha.

Flags in the stored vocabulary (render_common/output_shape.py), turned into the request
fields StartRenderRequest and EstimateRenderRequest share; the service checks them.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from render_common.output_shape import ASPECT_RATIOS, FRAME_RATES, RESOLUTIONS
from render_common.resources import (
    ASPECT_RATIO_TO_PROTO,
    RESOLUTION_TO_PROTO,
    VIDEO_CODEC_TO_PROTO,
)

SIZE = re.compile(r"^(\d{1,5})[xX](\d{1,5})$")


def size(text: str) -> tuple[int, int]:
    """`--size WxH` as (width, height)."""
    found = SIZE.match(text)
    if not found:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 1080x1350")
    return int(found[1]), int(found[2])


def add_output_options(command: argparse.ArgumentParser) -> None:
    """The output flags (all optional: the service's defaults apply)."""
    group = command.add_argument_group("output (default: 16:9 at the quality's tier, 30 fps)")
    group.add_argument("--aspect-ratio", choices=ASPECT_RATIOS, help="picture shape")
    group.add_argument(
        "--resolution", choices=RESOLUTIONS, help="shorter side (2160p with --quality high)"
    )
    group.add_argument(
        "--size", type=size, metavar="WxH", help="explicit size in pixels (even, 128-3840)"
    )
    group.add_argument("--fps", type=int, choices=FRAME_RATES, help="frames per second")
    group.add_argument(
        "--codec",
        choices=VIDEO_CODEC_TO_PROTO,
        help="video codec: h264/h265 (mp4), vp8/vp9 (webm), prores (mov)",
    )
    group.add_argument(
        "--transparent", action="store_true", help="keep alpha (webm vp9 or mov prores)"
    )


def output_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The request fields of the output flags given (unset ones left out)."""
    fields: dict[str, Any] = {}
    if args.aspect_ratio:
        fields["aspect_ratio"] = ASPECT_RATIO_TO_PROTO[args.aspect_ratio]
    if args.resolution:
        fields["resolution"] = RESOLUTION_TO_PROTO[args.resolution]
    if args.size:
        fields["width"], fields["height"] = args.size
    if args.fps:
        fields["fps"] = args.fps
    if args.codec:
        fields["video_codec"] = VIDEO_CODEC_TO_PROTO[args.codec]
    if args.transparent:
        fields["transparent"] = True
    return fields
