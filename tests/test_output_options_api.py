"""Output options over real gRPC: stored in their columns, echoed on Render and estimates,
and refused on Lambda where Remotion Lambda cannot honour them."""

from __future__ import annotations

from typing import Any

import grpc
from render.v1 import render_pb2, render_service_pb2
from sqlalchemy import select

from render_common.db.schema import video_renders
from tests.conftest import bearer
from tests.support.render_api import StartApi, expect_error
from tests.support.scenes import simple_scenes, start_request

VERTICAL = {
    "aspect_ratio": render_pb2.ASPECT_RATIO_9_16,
    "resolution": render_pb2.RESOLUTION_1080P,
    "fps": 60,
    "format": render_pb2.FORMAT_MOV,
    "quality": render_pb2.QUALITY_MEDIUM,
}


async def test_shape_is_stored_and_echoed(start_api: StartApi, user: str, token_for: Any) -> None:
    api, stub = await start_api()
    auth = bearer(token_for(user))
    started = (await stub.StartRender(start_request(**VERTICAL), metadata=auth)).render
    fetched = (
        await stub.GetRender(
            render_service_pb2.GetRenderRequest(render_id=started.render_id), metadata=auth
        )
    ).render
    for render in (started, fetched):
        assert (render.width, render.height, render.fps) == (1080, 1920, 60)
        assert render.aspect_ratio == render_pb2.ASPECT_RATIO_9_16
        assert render.resolution == render_pb2.RESOLUTION_1080P
        assert render.video_codec == render_pb2.VIDEO_CODEC_PRORES
        assert render.format == render_pb2.FORMAT_MOV and not render.transparent
    async with api.engine.connect() as connection:
        row = (
            (
                await connection.execute(
                    select(video_renders).where(video_renders.c.id == started.render_id)
                )
            )
            .mappings()
            .one()
        )
    assert (row["aspect_ratio"], row["resolution"], row["width"], row["height"]) == (
        "9:16",
        "1080p",
        1080,
        1920,
    )
    assert (row["fps"], row["video_codec"], bool(row["transparent"])) == (60, "prores", False)


async def test_default_render_echoes_its_quality_shape(
    start_api: StartApi, user: str, token_for: Any
) -> None:
    api, stub = await start_api()
    render = (await stub.StartRender(start_request(), metadata=bearer(token_for(user)))).render
    assert (render.width, render.height, render.fps) == (1280, 720, 30)
    assert render.aspect_ratio == render_pb2.ASPECT_RATIO_16_9
    assert render.resolution == render_pb2.RESOLUTION_720P
    assert render.video_codec == render_pb2.VIDEO_CODEC_H264


async def test_estimate_follows_fps_and_size(
    start_api: StartApi, user: str, token_for: Any
) -> None:
    api, stub = await start_api()
    request = render_service_pb2.EstimateRenderRequest(
        scenes=simple_scenes(),
        format=render_pb2.FORMAT_MP4,
        quality=render_pb2.QUALITY_HIGH,
        aspect_ratio=render_pb2.ASPECT_RATIO_4_5,
        fps=60,
    )
    estimate = await stub.EstimateRender(request, metadata=bearer(token_for(user)))
    assert (estimate.width, estimate.height, estimate.fps) == (1080, 1350, 60)
    # the two scenes' 50 frames (a 10-frame fade overlaps them) play in 50/60 s at 60 fps
    assert estimate.frames_total == 50
    assert estimate.duration.ToNanoseconds() == round(50 / 60 * 1e9)
    bad = await expect_error(
        stub.EstimateRender(
            render_service_pb2.EstimateRenderRequest(
                scenes=simple_scenes(),
                format=render_pb2.FORMAT_MP4,
                quality=render_pb2.QUALITY_LOW,
                resolution=render_pb2.RESOLUTION_2160P,
            ),
            metadata=bearer(token_for(user)),
        )
    )
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "resolution" in bad.field_violations


async def test_lambda_refuses_transparent_webm_and_auto_avoids_it(
    start_api: StartApi, user: str, token_for: Any
) -> None:
    api, stub = await start_api(
        lambda_function_name="remotion-render-test", lambda_serve_url="https://example.com/site"
    )
    auth = bearer(token_for(user))
    alpha = {"format": render_pb2.FORMAT_WEBM, "transparent": True}
    error = await expect_error(
        stub.StartRender(start_request(engine=render_pb2.ENGINE_LAMBDA, **alpha), metadata=auth)
    )
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert error.reason == "LAMBDA_UNSUPPORTED_OPTION"
    estimate = await stub.EstimateRender(
        render_service_pb2.EstimateRenderRequest(
            scenes=simple_scenes(),
            format=render_pb2.FORMAT_WEBM,
            quality=render_pb2.QUALITY_LOW,
            engine=render_pb2.ENGINE_AUTO,
            transparent=True,
        ),
        metadata=auth,
    )
    assert estimate.engine == render_pb2.ENGINE_SSR
    assert "chunk boundaries" in estimate.engine_reason
    # ProRes 4444 with alpha is fine on Lambda
    render = (
        await stub.StartRender(
            start_request(
                engine=render_pb2.ENGINE_LAMBDA, format=render_pb2.FORMAT_MOV, transparent=True
            ),
            metadata=auth,
        )
    ).render
    assert render.engine == render_pb2.ENGINE_LAMBDA and render.transparent
