"""Download links are signed when a render is read, so they never go stale.

Real render_api, progress, worker (SSR for the end-to-end case), PostgreSQL, Redis, and S3
on moto behind a gateway that checks SigV4 signatures, expiry and ACLs as S3 does
(tests/support/s3_gateway.py). Lambda outputs are tested in test_lambda.py.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import grpc
import pytest
from redis.asyncio import Redis
from render.v1 import progress_service_pb2, progress_service_pb2_grpc, render_pb2
from render.v1 import render_service_pb2 as rs
from sqlalchemy import insert

from render_common.db.engine import create_engine
from render_common.db.schema import video_renders
from render_common.downloads import LOCAL, S3, DownloadLinks, StoredObject
from render_common.events import ProgressEvent, publish_event
from services.progress import app as progress_app
from tests.support.links import (
    download,
    expires_in,
    row_values,
    signed_at,
    wait_until_expired,
)
from tests.support.s3_server import S3Server
from tests.support.scenes import sample_scenes
from tests.support.stack import Stack, StackFactory, StartStack

TTL = 4  # seconds: links in these tests expire quickly (room for a loaded machine)
RENDER_TTL = 15  # the real render test reads links across several calls and a progress start


@pytest.fixture
def stack_factory(stack_factory: StackFactory) -> StackFactory:
    """Stacks without a worker unless a test asks for one."""
    return stack_factory.with_defaults(worker=False)


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


# --- reads sign fresh links -----------------------------------------------------------------


@dataclass(frozen=True)
class LinkRows:
    """Three succeeded renders of a user: on S3 (with a thumbnail), on local storage, and
    a row from before migration 0002 that has only URLs."""

    s3_id: str
    local_id: str
    legacy_id: str
    key: str
    body: bytes
    local_file: Path
    legacy_url: str = "https://cdn.example/old-presigned.mp4?X-Amz-Signature=abc"
    legacy_thumbnail: str = "https://cdn.example/old.jpg"


async def seed_link_rows(
    postgres_url: str, s3_server: S3Server, bucket: str, user: str, root: Path
) -> LinkRows:
    """Store LinkRows' objects and insert their rows (newest first: S3, local, legacy)."""
    s3_id, local_id, legacy_id = (str(uuid.uuid4()) for _ in range(3))
    key = f"videos/renders/links/{s3_id}.mp4"
    body = b"\x00\x00\x00\x18ftypmp42" + uuid.uuid4().bytes * 64
    s3 = s3_server.client()
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    s3.put_object(Bucket=bucket, Key=key[:-3] + "jpg", Body=b"\xff\xd8thumb")
    seeded = LinkRows(s3_id, local_id, legacy_id, key, body, root / f"renders/links/{local_id}.mp4")
    seeded.local_file.parent.mkdir(parents=True)
    seeded.local_file.write_bytes(b"local")
    earlier = datetime.now(UTC) - timedelta(minutes=1)
    s3_row = {"storage": S3, "storage_location": bucket, "output_key": key}
    local_row = {"storage": LOCAL, "storage_location": str(root), "created_at": earlier}
    legacy_row = {"output_url": seeded.legacy_url, "thumbnail_url": seeded.legacy_thumbnail}
    await insert_rows(
        postgres_url,
        [
            row_values(user, s3_id, **s3_row, thumbnail_key=key[:-3] + "jpg"),
            row_values(user, local_id, **local_row, output_key=f"renders/links/{local_id}.mp4"),
            row_values(user, legacy_id, **legacy_row, created_at=earlier - timedelta(minutes=1)),
        ],
    )
    return seeded


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
    rows = await seed_link_rows(postgres_url, s3_server, bucket, user, tmp_path / "local-store")

    first = await stack.get(rows.s3_id)
    assert first.output_url.startswith(f"{s3_server.endpoint}/{bucket}/{rows.key}?")
    assert expires_in(first.output_url) == TTL
    response = await download(first.output_url)
    assert response.status_code == 200 and response.content == rows.body
    assert (await download(first.thumbnail_url)).content == b"\xff\xd8thumb"
    await wait_until_expired(first.output_url)
    expired = await download(first.output_url)
    assert expired.status_code == 403 and b"Request has expired" in expired.content
    again = await stack.get(rows.s3_id)
    assert again.output_url != first.output_url
    response = await download(again.output_url)
    assert response.status_code == 200 and response.content == rows.body

    listed = await stack.stub.ListRenders(rs.ListRendersRequest(), metadata=stack.auth)
    by_id = {r.render_id: r for r in listed.renders}
    assert set(by_id) == {rows.s3_id, rows.local_id, rows.legacy_id}
    assert (await download(by_id[rows.s3_id].output_url)).content == rows.body
    assert (await download(by_id[rows.s3_id].thumbnail_url)).status_code == 200
    local = by_id[rows.local_id]
    assert local.output_url == rows.local_file.as_uri() and local.thumbnail_url == ""
    assert url2pathname(urlsplit(local.output_url).path) == str(rows.local_file)
    legacy = by_id[rows.legacy_id]
    assert (legacy.output_url, legacy.thumbnail_url) == (rows.legacy_url, rows.legacy_thumbnail)
    assert (await stack.get(rows.legacy_id)).output_url == rows.legacy_url


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


def hundred_rows(signed_user: str, stored_user: str, bucket: str) -> list[dict[str, Any]]:
    """100 renders on S3 (output and thumbnail keys) and 100 with stored URLs."""
    rows = []
    for index in range(100):
        key = f"renders/p/{index}.mp4"
        on_s3 = {"storage": S3, "storage_location": bucket, "output_key": key}
        rows.append(
            row_values(signed_user, str(uuid.uuid4()), **on_s3, thumbnail_key=key[:-3] + "jpg")
        )
        urls = {
            "output_url": f"https://cdn.example/{index}.mp4",
            "thumbnail_url": f"https://cdn.example/{index}.jpg",
        }
        rows.append(row_values(stored_user, str(uuid.uuid4()), **urls))
    return rows


async def page_timings(stacks: dict[str, Stack], rounds: int = 15) -> dict[str, float]:
    """Median seconds of a ListRenders page of 100 per stack, warmed, calls interleaved."""

    async def page(of: Stack) -> float:
        started = time.perf_counter()
        response = await of.stub.ListRenders(rs.ListRendersRequest(page_size=100), metadata=of.auth)
        assert len(response.renders) == 100
        return time.perf_counter() - started

    timings: dict[str, list[float]] = {name: [] for name in stacks}
    for round_ in range(3 + rounds):  # three to warm both paths
        for name, of in stacks.items():
            elapsed = await page(of)
            if round_ >= 3:
                timings[name].append(elapsed)
    return {name: statistics.median(values) for name, values in timings.items()}


async def test_list_page_of_100_signs_quickly(
    stack_factory: StartStack, s3_server: S3Server, bucket: str, postgres_url: str, user: str
) -> None:
    """A page of 100 renders with output and thumbnail signed, against the same page
    returning stored URLs. Figures are printed (run with -s), not asserted."""
    stack = await stack_factory(storage_url=f"s3://{bucket}", s3_endpoint_url=s3_server.endpoint)
    stored_user = f"{user}-stored"
    await insert_rows(postgres_url, hundred_rows(user, stored_user, bucket))
    s3_server.client().put_object(Bucket=bucket, Key="renders/p/99.mp4", Body=b"last")
    stored_stack = Stack(stack.settings, stack.api, None, stack.channel, stored_user)
    medians = await page_timings({"signed": stack, "stored": stored_stack})
    request = rs.ListRendersRequest(page_size=100)
    stored = await stored_stack.stub.ListRenders(request, metadata=stored_stack.auth)
    assert all(r.output_url.startswith("https://cdn.example/") for r in stored.renders)
    signed = await stack.stub.ListRenders(request, metadata=stack.auth)
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
        f"\nListRenders page of 100 (ms, median of 15): signed {medians['signed'] * 1000:.1f},"
        f" stored URLs {medians['stored'] * 1000:.1f}; one link {per_url * 1e6:.0f} us"
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
