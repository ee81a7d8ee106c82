"""Download links are signed when a render is read, so they never go stale.

Real render_api, progress, worker (SSR for the end-to-end case), PostgreSQL, Redis, and S3
on moto behind a gateway that checks SigV4 signatures, expiry and ACLs as S3 does
(tests/support/s3_gateway.py). Lambda outputs are tested in test_lambda.py.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from urllib.request import url2pathname

import boto3
import grpc
import pytest
import pytest_asyncio
from botocore.config import Config
from redis.asyncio import Redis
from render.v1 import progress_service_pb2, progress_service_pb2_grpc, render_pb2
from render.v1 import render_service_pb2 as rs
from sqlalchemy import insert

from render_common.config import ConfigError, Settings
from render_common.db.engine import create_engine
from render_common.db.schema import video_renders
from render_common.downloads import LOCAL, S3, DownloadLinks, S3Signer, StoredObject
from render_common.events import ProgressEvent, publish_event
from services.progress import app as progress_app
from tests.support import isolation
from tests.support.links import (
    download,
    expires_in,
    row_values,
    signed_at,
    wait_until_expired,
)
from tests.support.s3_server import S3Server
from tests.support.scenes import sample_scenes
from tests.support.stack import Stack, close_all, start_stack

# This module runs on its own Redis and database (see tests/support/isolation.py).
base_settings = isolation.base_settings
module_redis = isolation.module_redis
postgres_url = isolation.postgres_url

StartStack = Callable[..., Awaitable[Stack]]
TTL = 4  # seconds: links in these tests expire quickly (room for a loaded machine)
RENDER_TTL = 15  # the real render test reads links across several calls and a progress start


@pytest_asyncio.fixture
async def stack_factory(
    base_settings: Settings, postgres_url: str, tmp_path: Path, user: str
) -> AsyncIterator[StartStack]:
    stacks: list[Stack] = []

    async def _start(**overrides: Any) -> Stack:
        worker = overrides.pop("worker", False)
        settings = base_settings.with_overrides(
            database_url=postgres_url, data_dir=str(tmp_path / "data"), **overrides
        )
        stack = await start_stack(settings, user, worker=worker)
        stacks.append(stack)
        return stack

    yield _start
    await close_all(stacks)


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    name = f"exports-{uuid.uuid4().hex[:10]}"
    s3_server.client().create_bucket(Bucket=name)
    return name


async def insert_rows(database_url: str, rows: list[dict[str, Any]]) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(insert(video_renders), rows)
    finally:
        await engine.dispose()


# --- the signer --------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:9000", "https://r2.example.com", ""])
@pytest.mark.parametrize("key", ["videos/renders/p/abc.mp4", "a b/ü+x=y&z~.mp4"])
@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdz/EAo+session=="])
def test_signer_gives_botocores_url(endpoint: str, key: str, token: str | None) -> None:
    """The same URL as boto3's generate_presigned_url at the same second (temporary
    credentials too)."""
    session = boto3.session.Session(
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        aws_session_token=token,
        region_name="eu-west-1",
    )
    client = session.client(
        "s3", endpoint_url=endpoint or None, config=Config(signature_version="s3v4")
    )
    signer = S3Signer(client, session.get_credentials())
    while True:
        now = datetime.now(UTC)
        expected = client.generate_presigned_url(
            "get_object", Params={"Bucket": "exports", "Key": key}, ExpiresIn=604800
        )
        ours = signer.presign("exports", key, 604800, now)
        if datetime.now(UTC).replace(microsecond=0) == now.replace(microsecond=0):
            break
    assert urlsplit(ours)[:3] == urlsplit(expected)[:3]
    assert sorted(parse_qsl(urlsplit(ours).query)) == sorted(parse_qsl(urlsplit(expected).query))


def test_ttl_is_bounded_by_sigv4s_seven_days() -> None:
    assert Settings.from_env({}).download_url_ttl_seconds == 7 * 24 * 3600
    assert Settings.from_env({"DOWNLOAD_URL_TTL_SECONDS": "60"}).download_url_ttl_seconds == 60
    for bad in ("0", "604801"):
        with pytest.raises(ConfigError, match="DOWNLOAD_URL_TTL_SECONDS"):
            Settings.from_env({"DOWNLOAD_URL_TTL_SECONDS": bad})


def test_local_link_is_the_files_url(tmp_path: Path) -> None:
    links = DownloadLinks(Settings(data_dir=str(tmp_path)))
    stored = StoredObject(LOCAL, str(tmp_path / "out dir"), "renders/p/r.mp4")
    assert links.url(stored) == (tmp_path / "out dir" / "renders/p/r.mp4").as_uri()


# --- reads sign fresh links -----------------------------------------------------------------


async def test_get_and_list_sign_fresh_links_old_rows_keep_theirs(
    stack_factory: StartStack,
    s3_server: S3Server,
    bucket: str,
    postgres_url: str,
    user: str,
    tmp_path: Path,
) -> None:
    """S3 rows get a new link per read (an expired one is refused, the next works); a
    local row gets its file URL from the key; a row from before migration 0002 that has
    only a URL keeps returning it."""
    stack = await stack_factory(
        storage_url=f"s3://{bucket}/videos",
        s3_endpoint_url=s3_server.endpoint,
        download_url_ttl_seconds=TTL,
    )
    s3 = s3_server.client()
    s3_id, local_id, legacy_id = (str(uuid.uuid4()) for _ in range(3))
    key = f"videos/renders/links/{s3_id}.mp4"
    body = b"\x00\x00\x00\x18ftypmp42" + uuid.uuid4().bytes * 64
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    s3.put_object(Bucket=bucket, Key=key[:-3] + "jpg", Body=b"\xff\xd8thumb")
    root = tmp_path / "local-store"
    (root / "renders/links").mkdir(parents=True)
    (root / f"renders/links/{local_id}.mp4").write_bytes(b"local")
    legacy_url = "https://cdn.example/old-presigned.mp4?X-Amz-Signature=abc"
    earlier = datetime.now(UTC) - timedelta(minutes=1)
    await insert_rows(
        postgres_url,
        [
            row_values(
                user,
                s3_id,
                storage=S3,
                storage_location=bucket,
                output_key=key,
                thumbnail_key=key[:-3] + "jpg",
            ),
            row_values(
                user,
                local_id,
                storage=LOCAL,
                storage_location=str(root),
                output_key=f"renders/links/{local_id}.mp4",
                created_at=earlier,
            ),
            row_values(
                user,
                legacy_id,
                output_url=legacy_url,
                thumbnail_url="https://cdn.example/old.jpg",
                created_at=earlier - timedelta(minutes=1),
            ),
        ],
    )

    first = await stack.get(s3_id)
    assert first.output_url.startswith(f"{s3_server.endpoint}/{bucket}/{key}?")
    assert expires_in(first.output_url) == TTL
    response = await download(first.output_url)
    assert response.status_code == 200 and response.content == body
    assert (await download(first.thumbnail_url)).content == b"\xff\xd8thumb"

    await wait_until_expired(first.output_url)
    expired = await download(first.output_url)
    assert expired.status_code == 403 and b"Request has expired" in expired.content

    again = await stack.get(s3_id)
    assert again.output_url != first.output_url
    response = await download(again.output_url)
    assert response.status_code == 200 and response.content == body

    listed = await stack.stub.ListRenders(rs.ListRendersRequest(), metadata=stack.auth)
    by_id = {r.render_id: r for r in listed.renders}
    assert set(by_id) == {s3_id, local_id, legacy_id}
    assert (await download(by_id[s3_id].output_url)).content == body
    assert (await download(by_id[s3_id].thumbnail_url)).status_code == 200
    local_url = by_id[local_id].output_url
    assert local_url == (root / f"renders/links/{local_id}.mp4").as_uri()
    assert url2pathname(urlsplit(local_url).path) == str(root / f"renders/links/{local_id}.mp4")
    assert by_id[local_id].thumbnail_url == ""
    assert by_id[legacy_id].output_url == legacy_url
    assert by_id[legacy_id].thumbnail_url == "https://cdn.example/old.jpg"
    assert (await stack.get(legacy_id)).output_url == legacy_url


async def test_terminal_event_carries_a_fresh_link(
    stack_factory: StartStack,
    s3_server: S3Server,
    bucket: str,
    postgres_url: str,
    user: str,
    redis: Redis,
    channel_to: Callable[[int], grpc.aio.Channel],
) -> None:
    """WatchRender's terminal event signs the render's links when it is sent: a watcher
    after the first link expired gets a working one."""
    stack = await stack_factory(
        storage_url=f"s3://{bucket}",
        s3_endpoint_url=s3_server.endpoint,
        download_url_ttl_seconds=TTL,
    )
    render_id = str(uuid.uuid4())
    key = f"renders/links/{render_id}.mp4"
    s3_server.client().put_object(Bucket=bucket, Key=key, Body=b"final")
    await insert_rows(
        postgres_url,
        [row_values(user, render_id, storage=S3, storage_location=bucket, output_key=key)],
    )
    await publish_event(
        redis,
        ProgressEvent(render_id=render_id, state="succeeded", stage="done", progress=1.0),
        user_id=user,
    )
    progress = await progress_app.start(stack.settings, port=0)
    stub = progress_service_pb2_grpc.ProgressServiceStub(channel_to(progress.port))

    async def terminal_event() -> progress_service_pb2.RenderEvent:
        request = progress_service_pb2.WatchRenderRequest(render_id=render_id)
        events: list[progress_service_pb2.RenderEvent] = [
            r.event async for r in stub.WatchRender(request, metadata=stack.auth)
        ]
        assert events[-1].state == render_pb2.Render.STATE_SUCCEEDED
        return events[-1]

    try:
        first = await terminal_event()
        assert first.render.output_url.startswith(f"{s3_server.endpoint}/{bucket}/{key}?")
        assert (await download(first.render.output_url)).content == b"final"
        await wait_until_expired(first.render.output_url)
        assert (await download(first.render.output_url)).status_code == 403
        second = await terminal_event()
        assert (await download(second.render.output_url)).content == b"final"
    finally:
        await progress.stop(0)


async def test_list_page_of_100_signs_quickly(
    stack_factory: StartStack, s3_server: S3Server, bucket: str, postgres_url: str, user: str
) -> None:
    """A page of 100 renders with output and thumbnail signed, against the same page
    returning stored URLs. Figures are printed (run with -s), not asserted."""
    stack = await stack_factory(storage_url=f"s3://{bucket}", s3_endpoint_url=s3_server.endpoint)
    signed_user, stored_user = user, f"{user}-stored"
    rows = []
    for index in range(100):
        key = f"renders/p/{index}.mp4"
        rows.append(
            row_values(
                signed_user,
                str(uuid.uuid4()),
                storage=S3,
                storage_location=bucket,
                output_key=key,
                thumbnail_key=key[:-3] + "jpg",
            )
        )
        rows.append(
            row_values(
                stored_user,
                str(uuid.uuid4()),
                output_url=f"https://cdn.example/{index}.mp4",
                thumbnail_url=f"https://cdn.example/{index}.jpg",
            )
        )
    await insert_rows(postgres_url, rows)
    s3_server.client().put_object(Bucket=bucket, Key="renders/p/99.mp4", Body=b"last")
    stored_stack = Stack(stack.settings, stack.api, None, stack.channel, stored_user)

    async def page(of: Stack) -> tuple[float, rs.ListRendersResponse]:
        started = time.perf_counter()
        response = await of.stub.ListRenders(rs.ListRendersRequest(page_size=100), metadata=of.auth)
        return time.perf_counter() - started, response

    timings: dict[str, list[float]] = {"signed": [], "stored": []}
    for _ in range(3):  # warm both paths
        await page(stack)
        await page(stored_stack)
    for _ in range(15):  # interleaved, same state
        for name, of in (("signed", stack), ("stored", stored_stack)):
            elapsed, response = await page(of)
            timings[name].append(elapsed)
            assert len(response.renders) == 100
    _, stored = await page(stored_stack)
    assert all(r.output_url.startswith("https://cdn.example/") for r in stored.renders)
    _, signed = await page(stack)
    assert all("X-Amz-Signature=" in r.thumbnail_url for r in signed.renders)
    last = next(r for r in signed.renders if r.output_url.split("?")[0].endswith("/99.mp4"))
    assert (await download(last.output_url)).content == b"last"

    links = DownloadLinks(stack.settings)
    links.url(StoredObject(S3, bucket, "warm"))  # the client, and the bucket's URL form
    started = time.perf_counter()
    for index in range(1000):
        links.url(StoredObject(S3, bucket, f"renders/p/{index}.mp4"))
    per_url = (time.perf_counter() - started) / 1000
    print(
        f"\nListRenders page of 100 (ms, median of 15): signed "
        f"{statistics.median(timings['signed']) * 1000:.1f}, stored URLs "
        f"{statistics.median(timings['stored']) * 1000:.1f}; one link {per_url * 1e6:.0f} us"
    )


@pytest.mark.slow
async def test_rendered_output_link_outlives_its_first_expiry(
    stack_factory: StartStack,
    s3_server: S3Server,
    bucket: str,
    channel_to: Callable[[int], grpc.aio.Channel],
) -> None:
    """A real render to S3: GetRender's link expires, the next read signs a working one;
    the terminal progress event and ListRenders carry fresh links too."""
    stack = await stack_factory(
        worker=True,
        storage_url=f"s3://{bucket}/videos",
        s3_endpoint_url=s3_server.endpoint,
        download_url_ttl_seconds=RENDER_TTL,
    )
    project, scenes = sample_scenes("tiny")
    render = await stack.start(scenes, project=project)
    done = await stack.wait(render.render_id)
    assert done.state == render_pb2.Render.STATE_SUCCEEDED, done.error
    done = await stack.get(render.render_id)  # signed now, not when the wait began
    first = await download(done.output_url)
    key = f"videos/renders/{project}/{render.render_id}.mp4"
    stored = s3_server.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    assert first.status_code == 200 and first.content == stored

    await wait_until_expired(done.output_url)
    assert (await download(done.output_url)).status_code == 403
    assert (await download(done.thumbnail_url)).status_code == 403

    fresh = await stack.get(render.render_id)
    assert (await download(fresh.output_url)).content == stored
    thumbnail = await download(fresh.thumbnail_url)
    assert thumbnail.status_code == 200 and thumbnail.content[:2] == b"\xff\xd8"

    listed = await stack.stub.ListRenders(rs.ListRendersRequest(), metadata=stack.auth)
    (item,) = [r for r in listed.renders if r.render_id == render.render_id]
    assert (await download(item.output_url)).content == stored

    progress = await progress_app.start(stack.settings, port=0)
    try:
        stub = progress_service_pb2_grpc.ProgressServiceStub(channel_to(progress.port))
        call = stub.WatchRender(
            progress_service_pb2.WatchRenderRequest(render_id=render.render_id),
            metadata=stack.auth,
        )
        watched = [response.event async for response in call]
    finally:
        await progress.stop(0)
    terminal = watched[-1]
    assert terminal.state == render_pb2.Render.STATE_SUCCEEDED
    assert signed_at(terminal.render.output_url) > signed_at(done.output_url)
    assert (await download(terminal.render.output_url)).content == stored
