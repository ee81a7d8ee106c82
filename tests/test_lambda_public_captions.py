"""A public Lambda output with captions stays public: its URL, and the `.vtt` sidecar's
beside it, are plain object URLs (no signature, no expiry) that anyone can read.

Against the fake Remotion Lambda (tests/support/fake_lambda.py) and the local S3 server
(tests/support/s3_server.py), whose gateway lets an anonymous GET through only for an
object whose ACL grants AllUsers READ.
"""

from __future__ import annotations

import httpx
from render.v1 import render_pb2

from render_common.captions import Cue, parse_vtt
from tests.support.fake_lambda import FakeRemotionLambda
from tests.support.scenes import scene
from tests.support.stack import StackFactory

SRT = "1\n00:00:00,500 --> 00:00:01,500\nIn public\n"


async def anonymous_get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.get(url)


async def test_public_output_with_captions_keeps_public_links(
    lambda_stack: StackFactory, fake_lambda: FakeRemotionLambda
) -> None:
    stack = await lambda_stack(lambda_privacy="public")
    render = await stack.start(
        [scene("color", 60, color="#123456")],
        engine=render_pb2.ENGINE_LAMBDA,
        captions=render_pb2.Captions(srt=SRT),
        poster_frame=10,
    )
    done = await stack.wait(render.render_id, timeout=60)
    assert done.state == render_pb2.Render.STATE_SUCCEEDED, done.error
    (sent,) = fake_lambda.starts()
    assert sent["privacy"] == "public"
    # The output's URL is the one Lambda reported: the object's, unsigned.
    base = f"{fake_lambda.s3.endpoint}/"
    assert done.output_url.startswith(base) and "?" not in done.output_url, done.output_url
    assert (await anonymous_get(done.output_url)).status_code == 200
    # The sidecar sits beside it, as public as the output.
    assert done.captions_url == done.output_url.rsplit(".", 1)[0] + ".vtt", done.captions_url
    sidecar = await anonymous_get(done.captions_url)
    assert sidecar.status_code == 200, sidecar.text
    assert parse_vtt(sidecar.text) == [Cue(0.5, 1.5, "In public")]
    # The poster is public too.
    assert done.thumbnail_url and "X-Amz-Signature=" not in done.thumbnail_url
    assert (await anonymous_get(done.thumbnail_url)).status_code == 200
    # A second read gives the same links (nothing is signed at read).
    again = await stack.get(render.render_id)
    assert (again.output_url, again.captions_url) == (done.output_url, done.captions_url)
