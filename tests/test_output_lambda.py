"""The Lambda engine asks Remotion Lambda for the output's shape, frame rate, codec and alpha
(renderMediaOnLambda's payload, as the local Remotion-like function received it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from render_common.config import Settings
from render_common.output_shape import ShapeRequest, resolve_shape
from services.render_worker.app import build_engines
from tests.engine_contract import Reports, make_job
from tests.support.fake_lambda import FakeRemotionLambda
from tests.support.lambda_env import lambda_settings

CASES: dict[str, tuple[ShapeRequest, dict[str, Any]]] = {
    # name: (format, request, expected payload options)
    "prores-alpha": (
        ShapeRequest("mov", "high", "9:16", fps=60, transparent=True),
        {
            "codec": "prores",
            "crf": None,
            "forceWidth": 1080,
            "forceHeight": 1920,
            "forceFps": 60,
            "imageFormat": "png",
            "pixelFormat": "yuva444p10le",
            "proResProfile": "4444",
        },
    ),
    "h265": (
        ShapeRequest("mp4", "high", "4:5", fps=24, video_codec="h265"),
        {
            "codec": "h265",
            "crf": 18,
            "forceWidth": 1080,
            "forceHeight": 1350,
            "forceFps": 24,
            "imageFormat": "jpeg",
            "pixelFormat": "yuv420p",
        },
    ),
    "vp9-2160p": (
        ShapeRequest("webm", "high", "1:1", "2160p", fps=25, video_codec="vp9"),
        {
            "codec": "vp9",
            "forceWidth": 2160,
            "forceHeight": 2160,
            "forceFps": 25,
            "imageFormat": "jpeg",
            "pixelFormat": "yuv420p",
        },
    ),
}


async def test_start_payload_carries_the_output_shape(
    base_settings: Settings, fake_lambda: FakeRemotionLambda, tmp_path: Path
) -> None:
    engine = build_engines(lambda_settings(base_settings, webhook=False), tmp_path / "data")[
        "lambda"
    ]
    try:
        for name, (asked, _) in CASES.items():
            shape, problems = resolve_shape(asked)
            assert shape is not None, problems
            job = make_job(tmp_path / name, format=asked.format, quality="high", shape=shape)
            output = await engine.render(job, Reports())
            assert output.probe["fps"] == shape.fps
    finally:
        await engine.close()
    starts = fake_lambda.starts()
    assert len(starts) == len(CASES)
    for start, (name, (asked, expected)) in zip(starts, CASES.items(), strict=True):
        sent = {key: start.get(key) for key in expected}
        assert sent == expected, name
        props = json.loads(start["inputProps"]["payload"])
        size = (props["width"], props["height"], props["fps"], props["transparent"])
        assert size == (
            expected["forceWidth"],
            expected["forceHeight"],
            asked.fps,
            asked.transparent,
        )
        assert start["downloadBehavior"]["fileName"].endswith("." + asked.format)
