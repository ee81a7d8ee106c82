"""render_api refuses what it must, over real gRPC: invalid requests with their field
violations, oversized and too expensive ones, limits, reused request ids, bad tokens and
other users' renders.
"""

from __future__ import annotations

import time
from typing import Any

import grpc
import jwt
import pytest
from render.v1 import render_pb2, render_service_pb2

from tests.conftest import TEST_SECRET, bearer
from tests.support.render_api import (
    StartApi,
    count_rows,
    expect_error,
)
from tests.support.scenes import scene, start_request

# --- validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"project_id": ""}, "project_id"),
        ({"project_id": "has spaces"}, "project_id"),
        ({"format": render_pb2.FORMAT_UNSPECIFIED}, "format"),
        ({"quality": 99}, "quality"),
        ({"engine": 42}, "engine"),
        ({"scenes": []}, "scenes"),
        ({"request_id": "x" * 200}, "request_id"),
        ({"scenes": [scene("nope", 30)]}, "scenes[0].type"),
        ({"scenes": [scene("title", 30)]}, "scenes[0].props"),
        ({"scenes": [scene("title", 30, text="a", bogus=1)]}, "scenes[0].props"),
        ({"scenes": [scene("title", 0, text="a")]}, "scenes[0].duration_in_frames"),
        # JSON Schema patterns follow ECMA-262: `$` is the very end, not before a newline.
        ({"scenes": [scene("color", 30, color="red\n")]}, "scenes[0].props.color"),
        ({"scenes": [scene("image", 30, src="https://a.example/x.png\n")]}, "scenes[0].props.src"),
        (
            {
                "scenes": [
                    scene("color", 30, ("spin", 5), color="red"),
                    scene("color", 30, color="red"),
                ]
            },
            "scenes[0].transition.type",
        ),
        ({"scenes": [scene("title", 30, text="a")] * 201}, "scenes"),
        ({"scenes": [scene("title", 18000, text="a")] * 4}, "scenes"),
    ],
)
async def test_invalid_requests_list_field_violations(
    start_api: StartApi, user: str, token_for: Any, overrides: dict[str, Any], field: str
) -> None:
    api, stub = await start_api()
    error = await expect_error(
        stub.StartRender(start_request(**overrides), metadata=bearer(token_for(user)))
    )
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.reason == "INVALID_ARGUMENT" and error.domain == "render.v1"
    assert any(path == field or path.startswith(field + ".") for path in error.field_violations), (
        error.field_violations
    )
    assert "Traceback" not in error.message
    assert await count_rows(api, user) == 0


async def test_many_violations_still_fit_the_clients_metadata_limit(
    start_api: StartApi, user: str, token_for: Any
) -> None:
    # 200 bad scenes (non-ASCII in the values too) once made a status over the client's
    # 8 KiB metadata limit: RESOURCE_EXHAUSTED "Stream removed", no details at all.
    api, stub = await start_api()
    scenes = [
        scene("image", 30, src=f"ftp://cdn.example.com/\u753b\u50cf/{i}-{'z' * 60}.png")
        for i in range(200)
    ]
    error = await expect_error(
        stub.StartRender(start_request(scenes=scenes), metadata=bearer(token_for(user)))
    )
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT and error.reason == "INVALID_ARGUMENT"
    assert 5 <= len(error.field_violations) < 200
    assert next(iter(error.field_violations)) == "scenes[0].props.src"
    assert error.metadata["violations"] == "200"
    assert error.metadata["listed"] == str(len(error.field_violations))
    assert await count_rows(api, user) == 0


async def test_oversized_message_is_rejected(
    start_api: StartApi, user: str, token_for: Any
) -> None:
    api, stub = await start_api(max_message_bytes=64 * 1024)
    big = [scene("text", 30, text="x" * 4000) for _ in range(40)]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.StartRender(start_request(scenes=big), metadata=bearer(token_for(user)))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert await count_rows(api, user) == 0


async def test_too_expensive_is_failed_precondition(
    start_api: StartApi, user: str, token_for: Any
) -> None:
    api, stub = await start_api(max_render_cost_usd=0.00001)
    error = await expect_error(stub.StartRender(start_request(), metadata=bearer(token_for(user))))
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert error.reason == "RENDER_TOO_EXPENSIVE"
    assert float(error.metadata["estimated_usd"]) > 0.00001
    assert error.metadata["engine"] == "ssr"
    assert await count_rows(api, user) == 0


async def test_lambda_not_configured(start_api: StartApi, user: str, token_for: Any) -> None:
    api, stub = await start_api()
    error = await expect_error(
        stub.StartRender(
            start_request(engine=render_pb2.ENGINE_LAMBDA), metadata=bearer(token_for(user))
        )
    )
    assert (
        error.code == grpc.StatusCode.FAILED_PRECONDITION
        and error.reason == "LAMBDA_NOT_CONFIGURED"
    )


async def test_daily_and_concurrent_limits(start_api: StartApi, user: str, token_for: Any) -> None:
    api, stub = await start_api(daily_render_limit=2, concurrent_render_limit=1)
    auth = bearer(token_for(user))
    first = (await stub.StartRender(start_request(), metadata=auth)).render
    error = await expect_error(stub.StartRender(start_request(), metadata=auth))
    assert (
        error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        and error.reason == "CONCURRENT_RENDER_LIMIT"
    )
    assert error.quota_violations == [f"user:{user}"]
    await stub.CancelRender(
        render_service_pb2.CancelRenderRequest(render_id=first.render_id), metadata=auth
    )
    await stub.StartRender(start_request(), metadata=auth)
    error = await expect_error(stub.StartRender(start_request(), metadata=auth))
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED and error.reason == "DAILY_RENDER_LIMIT"
    assert error.metadata["limit"] == "2"


async def test_request_id_reused_for_another_request(
    start_api: StartApi, user: str, token_for: Any
) -> None:
    api, stub = await start_api()
    auth = bearer(token_for(user))
    await stub.StartRender(start_request(request_id="same"), metadata=auth)
    error = await expect_error(
        stub.StartRender(start_request(request_id="same", project_id="other"), metadata=auth)
    )
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION and error.reason == "REQUEST_ID_REUSED"


# --- auth and isolation ----------------------------------------------------------------


# Tokens below are minted when the module is collected, which may be long before their test
# runs in a full suite: they stay valid for a day, not minutes.
DAY = 24 * 3600


def _token(secret: str, **claims: Any) -> str:
    body = {"sub": "someone", "exp": int(time.time()) + DAY, **claims}
    return jwt.encode(body, secret, algorithm="HS256")


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ((), "TOKEN_MISSING"),
        ((("authorization", "Basic abc"),), "TOKEN_MALFORMED"),
        ((("authorization", "Bearer not-a-jwt"),), "TOKEN_INVALID"),
        (bearer(_token(TEST_SECRET, exp=int(time.time()) - 3600)), "TOKEN_EXPIRED"),
        (bearer(_token("another-secret-another-secret-another-secret")), "TOKEN_INVALID"),
        (
            bearer(
                jwt.encode({"sub": "someone", "exp": int(time.time()) + DAY}, "", algorithm="none")
            ),
            "TOKEN_INVALID",
        ),
        (bearer(_token(TEST_SECRET, sub="")), "TOKEN_INVALID"),
    ],
    ids=["missing", "malformed", "garbage", "expired", "forged", "alg-none", "no-subject"],
)
async def test_bad_tokens_are_unauthenticated(
    start_api: StartApi, metadata: Any, reason: str
) -> None:
    api, stub = await start_api()
    for call in (
        stub.StartRender(start_request(), metadata=metadata),
        stub.GetQuota(render_service_pb2.GetQuotaRequest(), metadata=metadata),
        stub.ListRenders(render_service_pb2.ListRendersRequest(), metadata=metadata),
    ):
        error = await expect_error(call)
        assert error.code == grpc.StatusCode.UNAUTHENTICATED
        assert error.reason == reason


async def test_other_users_render_is_not_found_everywhere(
    start_api: StartApi, user: str, token_for: Any
) -> None:
    api, stub = await start_api()
    render = (await stub.StartRender(start_request(), metadata=bearer(token_for(user)))).render
    intruder = bearer(token_for(user + "-intruder"))
    for call in (
        stub.GetRender(
            render_service_pb2.GetRenderRequest(render_id=render.render_id), metadata=intruder
        ),
        stub.CancelRender(
            render_service_pb2.CancelRenderRequest(render_id=render.render_id), metadata=intruder
        ),
    ):
        error = await expect_error(call)
        assert error.code == grpc.StatusCode.NOT_FOUND and error.reason == "RENDER_NOT_FOUND"
    listed = await stub.ListRenders(render_service_pb2.ListRendersRequest(), metadata=intruder)
    assert list(listed.renders) == []
    still = await stub.GetRender(
        render_service_pb2.GetRenderRequest(render_id=render.render_id),
        metadata=bearer(token_for(user)),
    )
    assert still.render.state == render_pb2.Render.STATE_QUEUED
    error = await expect_error(
        stub.GetRender(render_service_pb2.GetRenderRequest(render_id="../etc"), metadata=intruder)
    )
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
